//! The agent side's machinery the coordinator holds: live streams (hub and
//! the outbound half), agent messages checked into domain types, batched
//! durable ingest, per-agent budgets, health.

pub mod batch_progress;
pub mod budget;
pub mod health;
pub mod hub;
pub mod inbound;
pub mod ingest;
pub mod session_stream;
