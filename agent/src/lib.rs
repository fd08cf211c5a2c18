//! rollcall-agent: the probe on every endpoint.
//!
//! Entry points: [`runner::run`] (the daemon's life), [`enroll::enroll`],
//! [`checks::run_all`] (one run of the runbook checks), [`main_entry`] (the
//! command line).
//!
//! - [`config`]: the `agent.toml` file.
//! - [`checks`]: runbook steps 1–6, run locally, each with evidence and
//!   remediation; [`product_source`] (state file, command, or the Apex One
//!   registry adapter), [`host`]: their inputs.
//! - [`update_action`]: the local "Update Now" action, if the config allows one.
//! - [`runner`], [`spool`], [`backoff`], [`identity`], [`enroll`], [`prober`]:
//!   the link to the coordinator.
//! - [`check_cmd`]: `rollcall-agent check`; [`product_show`]:
//!   `rollcall-agent product show` (what the product adapter reads).
//! - [`platform`]: what differs between Linux and Windows (host name,
//!   service manager, certificate stores, process trees).
//! - [`sim`]: the fleet simulator behind `rollcall-sim` (benchmarks).

pub mod backoff;
pub mod check_cmd;
pub mod checks;
pub mod collect;
pub mod config;
pub mod coordinator_clock;
pub mod enroll;
pub mod host;
pub mod identity;
pub mod main_entry;
pub mod platform;
pub mod prober;
pub mod product_show;
pub mod product_source;
pub mod runner;
pub mod setup;
pub mod sim;
pub mod spool;
pub mod trust;
pub mod update_action;
