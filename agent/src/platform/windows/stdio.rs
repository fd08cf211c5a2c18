//! A service's standard handles. The service manager starts the agent
//! with no console and null standard handles (Windows, and Wine 8 alike:
//! "stdout none, stderr none"), which Rust's `print!`/`eprint!` treat as a
//! sink, so a stray print cannot fail the service; what it writes is lost,
//! which is why the service's progress goes to its log. `describe` logs
//! what the service got (at debug level), for a machine where that is in
//! doubt.
#![allow(unsafe_code)]

use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::GetFileType;
use windows_sys::Win32::System::Console::{GetStdHandle, STD_ERROR_HANDLE, STD_HANDLE, STD_OUTPUT_HANDLE};

fn kind(which: STD_HANDLE) -> String {
    // SAFETY: reads the process's standard handle; no memory is passed.
    let handle: HANDLE = unsafe { GetStdHandle(which) };
    if handle.is_null() || handle == INVALID_HANDLE_VALUE {
        return "none".to_string();
    }
    // SAFETY: GetFileType only queries the handle; an invalid one returns
    // FILE_TYPE_UNKNOWN with an error, which is reported as such.
    let file_type = unsafe { GetFileType(handle) };
    let name = match file_type {
        1 => "file",
        2 => "character device",
        3 => "pipe",
        _ => "unknown",
    };
    format!("{handle:?} ({name})")
}

/// Logs the standard output and error handles the service started with.
pub fn describe() {
    tracing::debug!(
        "the service's standard handles: stdout {}, stderr {}",
        kind(STD_OUTPUT_HANDLE),
        kind(STD_ERROR_HANDLE)
    );
}
