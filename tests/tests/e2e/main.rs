//! One integration-test binary: real coordinator, agent and CLI processes
//! on loopback.

#![allow(clippy::unwrap_used)]

mod admin;
mod admin_audit;
mod agent_trust;
mod apex_double;
mod bad_input;
mod budgets;
mod clock;
mod collect;
mod crates;
mod dashboard;
mod demo;
mod deploy;
mod diagnosis;
mod faults;
mod foundation;
mod hardening;
mod harness;
mod hostile;
mod japanese;
mod nat;
mod parsers;
mod postgres_tls;
mod replicas;
mod retention;
mod retention_tables;
mod rollouts;
mod roster;
mod scale;
mod sim;
mod step3;
mod testimony;
mod update_now;
mod windows;
mod windows_msi;
mod wine;
