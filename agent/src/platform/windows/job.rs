//! Process trees on Windows: the product's commands (`state_command`,
//! `update_command`) run inside a job object, so a timeout or a refused
//! output ends the command and everything it started, the counterpart of
//! killing a process group on Unix.
//!
//! The tree is killed only when the command is abandoned (timeout, too
//! much output, the agent dropping the run); a command that exits on its
//! own keeps whatever it deliberately left running (an updater it
//! launched), as on Unix.
//!
//! A child is assigned right after it starts, so a grandchild started in
//! that instant could escape the job; the product's tools start nothing
//! that fast, and tokio does not offer a suspended start.
#![allow(unsafe_code)]

use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::ptr::null;

use windows_sys::Win32::System::JobObjects::{AssignProcessToJobObject, CreateJobObjectW, TerminateJobObject};

/// A job holding one command's process tree; kills it on drop unless
/// [`KillTree::disarm`]ed.
#[derive(Debug)]
pub struct KillTree {
    job: OwnedHandle,
    armed: bool,
}

impl KillTree {
    /// Puts the process (a child's raw handle) in a new job.
    pub fn adopt(process: RawHandle) -> std::io::Result<KillTree> {
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
        Ok(KillTree { job, armed: true })
    }

    /// Kills every process in the job now.
    pub fn kill(&self) {
        // SAFETY: the job handle is open (owned by self).
        unsafe { TerminateJobObject(self.job.as_raw_handle(), 1) };
    }

    /// The command exited on its own: leave what it started alone.
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for KillTree {
    fn drop(&mut self) {
        if self.armed {
            self.kill();
        }
    }
}
