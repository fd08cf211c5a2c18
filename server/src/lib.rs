//! rollcall-server: the coordinator (the `rollcall` admin CLI is the
//! `rollcall-cli` crate, the demo and the configuration reference `xtask`).
//!
//! Entry points: [`server::run`] serves one coordinator on a listener the
//! caller bound until the caller's cancellation token fires;
//! [`data_dir::DataDir::init`] creates a data dir; [`main_entry`] is the
//! `rollcall-server` command line.
//!
//! Code map (ARCHITECTURE.md has the long form):
//! - [`edge`]: the TLS accept loop, per-source limits, PROXY v2, who is calling.
//! - [`agents`]: live agent streams, inbound checks, batched durable ingest, budgets.
//! - [`agent_api`]: the agent gRPC service (Enroll, Connect, bundles, tokens).
//! - [`admin`]: the admin gRPC service, one module per service area, audit.
//! - [`rollouts`]: engine, fleet snapshot, rollout view, diagnosis.
//! - [`read`]: the read model the admin API, `/metrics` and the dashboard share
//!   (current rollout, step-8 report, metric gauges).
//! - [`domain`]: values shared by the parts (bound labels, clock skew, selectors).
//! - [`roster`]: every endpoint the product lists (Apex Central, console exports), N of M;
//!   [`apex_central`]: the Automation API it reads.
//! - [`dashboard`]: the read-only web dashboard and `/metrics`.
//! - [`store`]: the storage trait and its SQLite and PostgreSQL backends.
//! - [`state`]: the [`state::Coordinator`] every part is reached through;
//!   [`server`] wires it; [`config`], [`data_dir`], [`events`], [`metrics`],
//!   [`notify`], [`replication`], [`retention`], [`status`].

pub mod admin;
pub mod agent_api;
pub mod agents;
pub mod apex_central;
pub mod config;
pub mod dashboard;
pub mod data_dir;
pub mod domain;
pub mod edge;
pub mod events;
pub mod main_entry;
pub mod metrics;
pub mod notify;
pub mod read;
pub mod replication;
pub mod retention;
pub mod rollouts;
pub mod roster;
pub mod server;
pub mod state;
pub mod status;
pub mod store;
#[cfg(any(test, feature = "test-support"))]
pub mod test_skip;
