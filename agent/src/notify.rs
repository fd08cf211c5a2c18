//! systemd readiness for the `Type=notify` agent unit: `READY=1` once the
//! probe's config is loaded and its runner starts.
//!
//! A no-op when `NOTIFY_SOCKET` is unset (run by hand or by the tests). The
//! agent is ready before it reaches a coordinator on purpose: an endpoint
//! whose coordinator is away must still start, spool its reports and retry,
//! and must not hold up boot while it does. A failed notification is logged
//! and otherwise ignored. Children (the product's state and update
//! commands) inherit `NOTIFY_SOCKET`, but systemd ignores their messages
//! under `NotifyAccess=main`.

use sd_notify::NotifyState;

/// The runner starts: configuration, identity paths and spool are in place.
pub fn ready() {
    if let Err(error) = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status("running")]) {
        tracing::warn!(%error, "could not notify systemd");
    }
}
