//! Outcomes an admin looks for outside the agent's own log: the install's
//! and the enrolment's. Each goes to the log (tracing) and, on Windows, to
//! the Application event log under the source `rollcall-agent` too
//! (`windows::event_log`); on Linux the log is journald's already.
//!
//! Event ids are stable (monitoring rules match on them); docs/WINDOWS.md
//! lists them.

/// An event's severity, as the Windows event log has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Information,
    Warning,
    Error,
}

/// What happened; the id is the event log's event id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Setup enrolled the endpoint at install.
    InstalledEnrolled,
    /// Setup found an agent.toml: an upgrade or a repair, identity kept.
    InstalledKept,
    /// Setup could not finish the enrolment; the service carries on.
    EnrolmentLeftToService,
    /// Setup cannot do its job (the install fails).
    SetupFailed,
    /// The service started with an enrolment still pending and retries it.
    EnrolmentPending,
    /// The service finished the enrolment the installer left.
    EnrolmentFinished,
    /// The service cannot run (a refused config, a bad pending enrolment).
    ServiceFailed,
}

impl Event {
    pub fn id(self) -> u32 {
        match self {
            Event::InstalledEnrolled => 100,
            Event::InstalledKept => 101,
            Event::EnrolmentLeftToService => 102,
            Event::SetupFailed => 103,
            Event::EnrolmentPending => 200,
            Event::EnrolmentFinished => 201,
            Event::ServiceFailed => 202,
        }
    }

    pub fn level(self) -> Level {
        match self {
            Event::InstalledEnrolled | Event::InstalledKept | Event::EnrolmentFinished => Level::Information,
            Event::EnrolmentLeftToService | Event::EnrolmentPending => Level::Warning,
            Event::SetupFailed | Event::ServiceFailed => Level::Error,
        }
    }
}

/// Logs `text` and, on Windows, writes it to the event log; a failure to
/// write the event is logged, never fatal (the outcome is in the log).
pub fn record(event: Event, text: &str) {
    match event.level() {
        Level::Information => tracing::info!(event_id = event.id(), "{text}"),
        Level::Warning => tracing::warn!(event_id = event.id(), "{text}"),
        Level::Error => tracing::error!(event_id = event.id(), "{text}"),
    }
    #[cfg(windows)]
    match crate::platform::windows::event_log::report(event, text) {
        Ok(()) => tracing::info!(
            "written to the Windows event log (Application, source {}, event {})",
            crate::platform::windows::event_log::SOURCE,
            event.id()
        ),
        Err(error) => tracing::warn!("could not write event {} to the Windows event log: {error}", event.id()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_failures_are_errors() {
        let all = [
            Event::InstalledEnrolled,
            Event::InstalledKept,
            Event::EnrolmentLeftToService,
            Event::SetupFailed,
            Event::EnrolmentPending,
            Event::EnrolmentFinished,
            Event::ServiceFailed,
        ];
        let ids: std::collections::BTreeSet<u32> = all.iter().map(|event| event.id()).collect();
        assert_eq!(ids.len(), all.len());
        assert_eq!(Event::SetupFailed.level(), Level::Error);
        assert_eq!(Event::ServiceFailed.level(), Level::Error);
        // Recording works with or without a subscriber or an event log.
        record(Event::InstalledKept, "test event");
    }
}
