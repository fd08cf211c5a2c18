//! Process trees on Windows: the product's commands (`state_command`,
//! `update_command`) run inside a job object, so killing the job ends the
//! command and everything it started, the counterpart of killing a process
//! group on Unix. When to kill is `product_source/command.rs`'s decision.
//!
//! A child is assigned right after it starts, so a grandchild started in
//! that instant could escape the job; the product's tools start nothing
//! that fast, and tokio does not offer a suspended start.
#![allow(unsafe_code)]

use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::ptr::null;

use windows_sys::Win32::System::JobObjects::{AssignProcessToJobObject, CreateJobObjectW, TerminateJobObject};

/// A job holding one command's process tree.
#[derive(Debug)]
pub struct ProcessTree {
    job: OwnedHandle,
}

impl ProcessTree {
    /// Puts a started child in a new job; `None` (after a warning) when
    /// that fails, so a timeout then ends only the command itself.
    pub fn of(child: &tokio::process::Child) -> Option<ProcessTree> {
        let process = child.raw_handle()?;
        match ProcessTree::adopt(process) {
            Ok(tree) => Some(tree),
            Err(error) => {
                tracing::warn!(%error, "could not put the command in a job object; a timeout ends only the command itself");
                None
            }
        }
    }

    fn adopt(process: RawHandle) -> std::io::Result<ProcessTree> {
        // SAFETY: no security attributes and no name: an anonymous job.
        let job = unsafe { CreateJobObjectW(null(), null()) };
        if job.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `job` is a fresh handle that nothing else owns.
        let job = unsafe { OwnedHandle::from_raw_handle(job) };
        // SAFETY: both handles are open for the duration of the call.
        if unsafe { AssignProcessToJobObject(job.as_raw_handle(), process) } == 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(ProcessTree { job })
    }

    /// Kills every process in the job now.
    pub fn kill(&self) {
        // SAFETY: the job handle is open (owned by self).
        unsafe { TerminateJobObject(self.job.as_raw_handle(), 1) };
    }
}
