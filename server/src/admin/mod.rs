//! The admin-facing gRPC service: `admin_service` authorises and delegates
//! to one module per service area; audit and policy application.

pub mod admin_bundles;
pub mod admin_identities;
pub mod admin_rollouts;
pub mod admin_roster;
pub mod admin_service;
pub mod admin_watch;
pub mod audit;
pub mod policy_apply;
