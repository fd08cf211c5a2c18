//! The read model: what the admin API, `/metrics` and the dashboard all
//! read (the current rollout, the step-8 report, the metric gauges), so
//! none of them calls another's handlers.

pub mod gauges;
pub mod report;
pub mod rollouts;
