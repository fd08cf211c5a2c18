//! Linux: systemd readiness for the `Type=notify` agent unit and the host
//! name from `/proc`.
//!
//! Readiness: `READY=1` once the probe's config is loaded and its runner
//! starts; a no-op when `NOTIFY_SOCKET` is unset (run by hand or by the
//! tests). The agent is ready before it reaches a coordinator on purpose: an
//! endpoint whose coordinator is away must still start, spool its reports
//! and retry, and must not hold up boot while it does. A failed notification
//! is logged and otherwise ignored. Children (the product's state and update
//! commands) inherit `NOTIFY_SOCKET`, but systemd ignores their messages
//! under `NotifyAccess=main`.

use sd_notify::NotifyState;

/// The runner starts: configuration, identity paths and spool are in place.
pub fn ready() {
    if let Err(error) = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status("running")]) {
        tracing::warn!(%error, "could not notify systemd");
    }
}

/// The system host name, or "localhost" when it cannot be read.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// A command's process tree on Unix: the product's commands start in a
/// process group of their own (`process_group(0)` in
/// `product_source/command.rs`), so killing the group ends the command and
/// everything it started (the Windows counterpart is a job object).
#[derive(Debug)]
pub struct ProcessTree {
    group: rustix::process::Pid,
}

impl ProcessTree {
    /// The group of a child spawned with `process_group(0)` (its id is the
    /// child's pid); `None` once the child has been reaped.
    pub fn of(child: &tokio::process::Child) -> Option<ProcessTree> {
        let group = child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .and_then(rustix::process::Pid::from_raw)?;
        Some(ProcessTree { group })
    }

    /// Kills every process of the group now.
    pub fn kill(&self) {
        // ESRCH (the group is gone) is the expected case after exit.
        let _ = rustix::process::kill_process_group(self.group, rustix::process::Signal::KILL);
    }
}
