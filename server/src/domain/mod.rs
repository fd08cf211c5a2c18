//! Values several parts share that depend on nothing of the coordinator's:
//! labels bound at enrolment, clock skew, selectors.

pub mod bound_labels;
pub mod clock_skew;
pub mod selector;
