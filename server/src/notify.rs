//! systemd readiness for `Type=notify` units: `READY=1` once the coordinator
//! accepts connections, `STOPPING=1` when a shutdown begins.
//!
//! Both are no-ops when `NOTIFY_SOCKET` is unset (started by hand, by the
//! tests, by the demo). A failed notification is logged and otherwise
//! ignored: refusing to serve would be worse than systemd timing the start
//! out, which it does on its own when READY never arrives. systemd accepts
//! these messages from the main process only (`NotifyAccess=main`), so they
//! are sent from this process, never from a helper.

use sd_notify::NotifyState;

/// The listener is bound and the gRPC server is about to be polled: agents
/// and admins can connect from now on.
pub fn ready() {
    send(&[NotifyState::Ready, NotifyState::Status("serving")], "ready");
}

/// A shutdown was requested; the drain (bounded by `--shutdown-grace`)
/// follows. Tells systemd the stop is under way, so it is not mistaken for a
/// crash and `systemctl status` shows why the process is still there.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("draining")], "stopping");
}

fn send(states: &[NotifyState<'_>], what: &'static str) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, state = what, "could not notify systemd");
    }
}
