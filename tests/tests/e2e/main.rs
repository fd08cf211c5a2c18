//! One integration-test binary: real coordinator, agent and CLI processes
//! on loopback.

#![allow(clippy::unwrap_used)]

mod admin;
mod bad_input;
mod budgets;
mod dashboard;
mod deploy;
mod diagnosis;
mod faults;
mod foundation;
mod harness;
mod parsers;
mod postgres_tls;
mod replicas;
mod retention;
mod rollouts;
mod scale;
mod sim;
mod testimony;
mod windows;
mod wine;
