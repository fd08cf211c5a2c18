//! One integration-test binary: real coordinator, agent and CLI processes
//! on loopback.

#![allow(clippy::unwrap_used)]

mod bad_input;
mod foundation;
mod harness;
mod rollouts;
