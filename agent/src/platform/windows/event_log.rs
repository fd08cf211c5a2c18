//! The Windows event log (Application log, source `rollcall-agent`): the
//! install's and the enrolment's outcome, where Windows admins and their
//! monitoring (Event Viewer, `Get-WinEvent`, a SIEM's event forwarding)
//! look first. The service's own log file keeps the detail; an event is
//! one line of outcome.
//!
//! The MSI registers the source (deploy/windows/rollcall-agent.wxs) with
//! .NET Framework's `EventLogMessages.dll` as its message file, whose
//! messages are all "%1": the event's text is the one string given here,
//! so no message table has to be compiled into the exe.
//!
//! Under Wine `RegisterEventSourceW` and `ReportEventW` are stubs: they
//! succeed and write the string to Wine's `eventlog` debug channel
//! (`WINEDEBUG=warn+eventlog`), and nothing is kept (docs/WINDOWS.md).
#![allow(unsafe_code)]

use std::ptr::{null, null_mut};

use windows_sys::Win32::System::EventLog::{
    DeregisterEventSource, EVENTLOG_ERROR_TYPE, EVENTLOG_INFORMATION_TYPE, EVENTLOG_WARNING_TYPE, REPORT_EVENT_TYPE,
    RegisterEventSourceW, ReportEventW,
};

use crate::platform::event::{Event, Level};

/// The source name the MSI registers under
/// `HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application`.
pub const SOURCE: &str = "rollcall-agent";

fn wide(text: &str) -> Vec<u16> {
    // An interior NUL would cut the string short; none of ours has one.
    text.encode_utf16().filter(|unit| *unit != 0).chain(Some(0)).collect()
}

/// Writes one event to the Application log.
pub fn report(event: Event, text: &str) -> std::io::Result<()> {
    let kind: REPORT_EVENT_TYPE = match event.level() {
        Level::Information => EVENTLOG_INFORMATION_TYPE,
        Level::Warning => EVENTLOG_WARNING_TYPE,
        Level::Error => EVENTLOG_ERROR_TYPE,
    };
    let source = wide(SOURCE);
    // SAFETY: a NUL-terminated UTF-16 name that outlives the call; a null
    // server name is the local computer.
    let handle = unsafe { RegisterEventSourceW(null(), source.as_ptr()) };
    if handle.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    let message = wide(text);
    let strings = [message.as_ptr()];
    // SAFETY: `handle` is the open event source from above; one string
    // (NUL-terminated, alive until the call returns), no user SID, no raw
    // data.
    let written = unsafe { ReportEventW(handle, kind, 0, event.id(), null_mut(), 1, 0, strings.as_ptr(), null()) };
    let outcome = if written == 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    };
    // SAFETY: closes the handle opened above, once.
    unsafe { DeregisterEventSource(handle) };
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_written() {
        // On Windows the event lands in the Application log; under Wine the
        // stub takes it and succeeds, so this checks the call's arguments.
        report(Event::InstalledKept, "rollcall-agent unit test: an event log entry").expect("ReportEventW");
    }
}
