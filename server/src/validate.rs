//! Checks on what agents send, done once at the receiving edge. The gRPC
//! layer already bounds the message size; these bound the shape inside it
//! (how many labels, how long a string) so one agent cannot bloat the store.

use std::collections::BTreeMap;

use rollcall_common::proto;
use tonic::Status;

pub const MAX_LABELS: usize = 64;
pub const MAX_LABEL_KEY: usize = 63;
pub const MAX_LABEL_VALUE: usize = 256;
pub const MAX_HOSTNAME: usize = 253;
pub const MAX_CHECKS: usize = 32;
pub const MAX_EVIDENCE: usize = 64;
pub const MAX_TEXT: usize = 4096;
pub const MAX_SHORT: usize = 256;
/// One log-bundle chunk's data at most (the agent sends 256 KiB chunks,
/// well inside the gRPC message limit).
pub const MAX_BUNDLE_CHUNK: usize = 256 * 1024;
/// One log bundle at most, whatever the agent's own `max_bundle_bytes`
/// says; the agent's setting is capped lower (agent/src/collect).
pub const MAX_BUNDLE_BYTES: u64 = 64 * 1024 * 1024;

fn bad(message: impl Into<String>) -> Status {
    Status::invalid_argument(message.into())
}

fn short(field: &str, value: &str) -> Result<(), Status> {
    if value.len() > MAX_SHORT {
        return Err(bad(format!("{field} is longer than {MAX_SHORT} bytes")));
    }
    Ok(())
}

fn text(field: &str, value: &str) -> Result<(), Status> {
    if value.len() > MAX_TEXT {
        return Err(bad(format!("{field} is longer than {MAX_TEXT} bytes")));
    }
    Ok(())
}

/// Label keys: letters, digits, `-`, `_`, `.`, `/`; they appear in selectors.
pub fn labels(labels: &BTreeMap<String, String>) -> Result<(), Status> {
    if labels.len() > MAX_LABELS {
        return Err(bad(format!("more than {MAX_LABELS} labels")));
    }
    for (key, value) in labels {
        if key.is_empty()
            || key.len() > MAX_LABEL_KEY
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        {
            return Err(bad(format!(
                "label key {key:?} must be 1-{MAX_LABEL_KEY} of [A-Za-z0-9-_./]"
            )));
        }
        if value.len() > MAX_LABEL_VALUE || value.contains([',', '\n']) {
            return Err(bad(format!("label {key} value is too long or holds ',' or a newline")));
        }
    }
    Ok(())
}

pub fn product(product: &proto::ProductSummary) -> Result<(), Status> {
    for (field, value) in [
        ("product.version", &product.version),
        ("product.update_source", &product.update_source),
        ("product.source_address", &product.source_address),
        ("product.update_agent_address", &product.update_agent_address),
        ("product.update_permission", &product.update_permission),
        ("product.license_expires", &product.license_expires),
        ("product.server_address", &product.server_address),
    ] {
        short(field, value)?;
    }
    text("product.read_error", &product.read_error)
}

pub fn host(host: &proto::HostFacts) -> Result<(), Status> {
    short("host.os_id", &host.os_id)?;
    short("host.os_version", &host.os_version)?;
    short("host.arch", &host.arch)
}

pub fn hello(hello: &proto::Hello) -> Result<(), Status> {
    if hello.hostname.is_empty() || hello.hostname.len() > MAX_HOSTNAME {
        return Err(bad("hostname must be 1-253 bytes"));
    }
    short("agent_version", &hello.agent_version)?;
    labels(&hello.labels.clone().into_iter().collect())?;
    if let Some(product_summary) = &hello.product {
        product(product_summary)?;
    }
    if let Some(host_facts) = &hello.host {
        host(host_facts)?;
    }
    Ok(())
}

pub fn bundle_chunk(chunk: &proto::BundleChunk) -> Result<(), Status> {
    short("bundle.command_id", &chunk.command_id)?;
    if chunk.command_id.is_empty() {
        return Err(bad("bundle.command_id is empty"));
    }
    if chunk.data.len() > MAX_BUNDLE_CHUNK {
        return Err(bad(format!("bundle chunk is larger than {MAX_BUNDLE_CHUNK} bytes")));
    }
    Ok(())
}

pub fn report(report: &proto::Report) -> Result<(), Status> {
    if report.seq == 0 {
        return Err(bad("report seq must start at 1"));
    }
    short("command_id", &report.command_id)?;
    if report.checks.len() > MAX_CHECKS {
        return Err(bad(format!("more than {MAX_CHECKS} checks in one report")));
    }
    for check in &report.checks {
        short("check.name", &check.name)?;
        text("check.message", &check.message)?;
        text("check.remediation", &check.remediation)?;
        if check.evidence.len() > MAX_EVIDENCE {
            return Err(bad(format!(
                "check {} has more than {MAX_EVIDENCE} evidence entries",
                check.name
            )));
        }
        for evidence in &check.evidence {
            short("evidence.key", &evidence.key)?;
            text("evidence.value", &evidence.value)?;
        }
        short("check.code", &check.code)?;
        if check.params.len() > MAX_EVIDENCE {
            return Err(bad(format!(
                "check {} has more than {MAX_EVIDENCE} message parameters",
                check.name
            )));
        }
        for (name, value) in &check.params {
            short("check.params key", name)?;
            text("check.params value", value)?;
        }
    }
    if let Some(product_summary) = &report.product {
        product(product_summary)?;
    }
    if let Some(host_facts) = &report.host {
        host(host_facts)?;
    }
    if let Some(outcome) = &report.update_now {
        text("update_now.output_tail", &outcome.output_tail)?;
        text("update_now.error", &outcome.error)?;
    }
    Ok(())
}
