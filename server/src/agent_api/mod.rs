//! The agent-facing gRPC service: Enroll and Connect, log bundle upload,
//! enrolment tokens.

pub mod agent_service;
pub mod bundle_receive;
pub mod tokens;
