//! The last policy received, kept in `policy.toml` in the data dir so an
//! agent that starts while the coordinator is away checks under it. Its
//! first line carries the policy's version, which the hello reports.

use std::path::Path;

use rollcall_common::policy::Policy;
use rollcall_common::proto;

const FILE: &str = "policy.toml";
const VERSION_PREFIX: &str = "# rollcall policy version ";
const MAX_BYTES: u64 = 256 * 1024;

/// The saved policy and its version (0 when the line is missing); none
/// without a data dir, a file, or a valid policy.
pub(crate) fn load(data_dir: Option<&Path>) -> Option<(u64, Policy)> {
    let dir = data_dir?;
    let text = rollcall_common::files::read_bounded_utf8(&dir.join(FILE), MAX_BYTES).ok()?;
    let version = text
        .lines()
        .next()
        .and_then(|line| line.strip_prefix(VERSION_PREFIX))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    match Policy::from_toml_str(&text) {
        Ok(policy) => Some((version, policy)),
        Err(error) => {
            tracing::warn!(%error, "ignoring the saved policy");
            None
        }
    }
}

/// Keeps `doc` for the next start; a failure is logged, not fatal (the
/// policy is in force until then anyway).
pub(crate) fn save(data_dir: Option<&Path>, doc: &proto::PolicyDoc) {
    if let Some(dir) = data_dir {
        let text = format!("{VERSION_PREFIX}{}\n{}", doc.version, doc.toml);
        if let Err(error) = rollcall_common::files::write_atomic(&dir.join(FILE), text.as_bytes(), true) {
            tracing::warn!(error = format!("{error:#}"), "could not save the policy");
        }
    }
}
