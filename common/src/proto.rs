//! Generated gRPC and protobuf types, package `rollcall.v1`.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

tonic::include_proto!("rollcall.v1");

/// The encoded file descriptor set, served through gRPC reflection so
/// `grpcurl` works against the coordinator.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("rollcall_descriptor");

/// Largest admin answer: the coordinator encodes and the CLI decodes up to
/// this many bytes (a full fleet listing).
pub const ADMIN_MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

/// The word for an agent role in JSON, tables and the report.
pub fn role_name(role: i32) -> &'static str {
    match Role::try_from(role) {
        Ok(Role::UpdateAgent) => "update_agent",
        Ok(Role::Endpoint) => "endpoint",
        _ => "unknown",
    }
}

/// The lowercase word for a check status in JSON and tables.
pub fn status_word(status: i32) -> &'static str {
    match CheckStatus::try_from(status) {
        Ok(CheckStatus::Pass) => "pass",
        Ok(CheckStatus::Warn) => "warn",
        Ok(CheckStatus::Fail) => "fail",
        Ok(CheckStatus::Error) => "error",
        _ => "unknown",
    }
}
