//! rollcall-agent: the probe on every endpoint.
//!
//! - [`config`]: `agent.toml`.
//! - [`checks`]: runbook steps 1–6, run locally, each with evidence and
//!   remediation.
//! - [`product_source`]: reads the managed product's state document.
//! - [`host`]: host facts under `host_root`.
//! - [`update_action`]: the local "Update Now" action, if the config allows one.
//! - [`check_cmd`]: `rollcall-agent check`.

pub mod check_cmd;
pub mod checks;
pub mod config;
pub mod host;
pub mod product_source;
pub mod update_action;
