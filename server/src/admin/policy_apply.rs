//! Applying a fleet policy: check it, store it as the next version, load
//! it here, tell the other replicas, and push it to the agents this
//! coordinator holds.

use std::sync::Arc;

use rollcall_common::policy::Policy;
use rollcall_common::proto::{self, coordinator_message::Body};

use crate::state::Coordinator;
use crate::store::{Notice, StoreError};

pub const MAX_POLICY_BYTES: usize = 256 * 1024;

/// Why a policy was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("policy is larger than 256 KiB")]
    TooLarge,
    #[error("invalid policy: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A policy applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub version: u64,
    /// Agent streams held here that took the push.
    pub pushed: u32,
}

/// The policy `text` describes, if it is within the size limit and valid.
pub fn check(text: &str) -> Result<Policy, ApplyError> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(ApplyError::TooLarge);
    }
    Policy::from_toml_str(text).map_err(|error| ApplyError::Invalid(error.to_string()))
}

/// Makes `doc` (already checked: `parsed`) this coordinator's policy and
/// pushes it to every agent stream held here; returns how many took it.
/// Used for a policy applied here and for one another replica applied.
pub fn load_and_push(coordinator: &Coordinator, doc: proto::PolicyDoc, parsed: Policy) -> u32 {
    let doc = Arc::new(doc);
    coordinator.set_policy(doc.clone(), parsed);
    let message = proto::CoordinatorMessage {
        body: Some(Body::Policy((*doc).clone())),
    };
    let mut pushed = 0u32;
    for (_, session) in coordinator.hub.all() {
        // A stream whose queue is full is skipped: the agent gets the
        // policy after its next hello, which carries the version it holds.
        if session.tx.try_send(Ok(message.clone())).is_ok() {
            pushed += 1;
        }
    }
    pushed
}

/// Stores `text` as the next policy version (by `applied_by`), loads it
/// and pushes it to every agent stream held here.
pub async fn apply(
    coordinator: &Arc<Coordinator>,
    text: String,
    applied_by: &str,
    now_ms: i64,
) -> Result<Applied, ApplyError> {
    let parsed = check(&text)?;
    let version = coordinator.store.put_policy(&text, applied_by, now_ms).await?;
    let bytes = text.len();
    let pushed = load_and_push(coordinator, proto::PolicyDoc { version, toml: text }, parsed);
    // Other replicas load it and push it to the agents they hold.
    coordinator.tell_others(Notice::Policy { version }).await;
    tracing::info!(version, pushed, bytes, by = applied_by, "policy applied");
    Ok(Applied { version, pushed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_policy_passes_the_check() {
        assert!(check("").is_ok(), "an empty policy takes every default");
    }

    #[test]
    fn too_large_and_invalid_policies_are_refused_with_their_words() {
        let large = format!("# {}\n", "x".repeat(MAX_POLICY_BYTES));
        let error = check(&large).expect_err("too large");
        assert!(matches!(error, ApplyError::TooLarge));
        assert_eq!(error.to_string(), "policy is larger than 256 KiB");

        let error = check("offline_after = [").expect_err("invalid");
        assert!(matches!(error, ApplyError::Invalid(_)));
        assert!(error.to_string().starts_with("invalid policy: "), "{error}");
    }
}
