//! rollcall-server: the coordinator (the `rollcall` admin CLI is the
//! `rollcall-cli` crate, the demo and the configuration reference `xtask`).
//!
//! Entry points: [`server::run`] serves one coordinator on a listener the
//! caller bound until the caller's cancellation token fires;
//! [`data_dir::DataDir::init`] creates a data dir; [`main_entry`] is the
//! `rollcall-server` command line.
//!
//! Code map:
//! - [`agent_service`], [`admin_service`]: the two gRPC services.
//! - [`hub`]: live agent streams; [`ingest`]: batched durable ingest.
//! - [`store`]: the storage trait and its SQLite implementation.
//! - [`listener`]: bounded TLS accept loop; [`auth`], [`revocation`]: who is calling.
//! - [`budget`] (with [`rate`]): per-agent budgets; [`retention`]: old reports deleted.
//! - [`roster`]: every endpoint the product lists (Apex Central, console exports), N of M.
//! - [`health`], [`inbound`] (agent messages checked into domain types), [`selector`], [`config`], [`state`].

pub mod admin_bundles;
pub mod admin_identities;
pub mod admin_rollouts;
pub mod admin_roster;
pub mod admin_service;
pub mod admin_watch;
pub mod agent_service;
pub mod audit;
pub mod audit_limit;
pub mod auth;
pub mod batch_progress;
pub mod bound_labels;
pub mod budget;
pub mod bundle_receive;
pub mod clock_skew;
pub mod config;
pub mod dashboard;
pub mod data_dir;
pub mod diagnosis;
pub mod engine;
pub mod events;
pub mod fleet;
pub mod health;
pub mod hub;
pub mod inbound;
pub mod ingest;
pub mod listener;
pub mod main_entry;
pub mod metrics;
pub mod notify;
pub mod policy_apply;
pub mod proxy_protocol;
pub mod rate;
pub mod replication;
pub mod report;
pub mod retention;
pub mod retention_args;
pub mod retention_prune;
pub mod revocation;
pub mod rollout_view;
pub mod roster;
pub mod selector;
pub mod server;
pub mod session_stream;
pub mod source_limits;
pub mod state;
pub mod status;
pub mod store;
#[cfg(any(test, feature = "test-support"))]
pub mod test_skip;
pub mod tokens;
