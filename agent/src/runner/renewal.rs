//! When to ask for a new certificate: once it passes half its life, and
//! again after [`RENEWAL_RETRY`] while unanswered.

use std::time::Duration;

use time::OffsetDateTime;

use crate::identity::Identity;

/// How long a renewal request may go unanswered before it is asked again.
/// The coordinator does not answer one it throttles (at most one signature
/// per agent per `--renewal-interval`), nor can it answer one whose stream
/// broke; without a retry the agent would wait for an answer forever.
pub(crate) const RENEWAL_RETRY: Duration = Duration::from_secs(15 * 60);

/// When the certificate passes half its life (time to renew), as a timer
/// deadline. Computed once per certificate: parsing it on every inbox poll
/// cost a simulated fleet of 19,000 agents ~10,000 parses a second.
pub(crate) fn renewal_due(identity: &Identity) -> tokio::time::Instant {
    let far = tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let Ok((not_before, not_after)) = identity.validity() else {
        return far;
    };
    let due = not_before + (not_after - not_before) / 2;
    let remaining: time::Duration = due - OffsetDateTime::now_utc();
    let wait = remaining.max(time::Duration::ZERO);
    tokio::time::Instant::now()
        .checked_add(wait.unsigned_abs())
        .unwrap_or(far)
}
