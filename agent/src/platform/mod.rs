//! What the probe asks of the operating system, where Linux and Windows
//! differ: the host name, readiness for the service manager, host facts
//! (in [`crate::host`]), the system certificate stores, process trees and
//! the service itself. Everything above this module (the checks, the
//! runner) is platform-free and compiles unchanged on both.
//!
//! - [`unix`]: systemd readiness, `/proc` host name.
//! - `windows`: registry and Win32 host facts, the LocalMachine certificate
//!   stores, job objects, the Windows service, owner-only ACLs (in
//!   `rollcall_common::files`). The only module of the agent allowed
//!   `unsafe` (Win32 calls), each block with its SAFETY argument.

pub mod event;
#[cfg(unix)]
pub mod unix;
#[cfg(unix)]
pub use unix::{ProcessTree, hostname, ready};

#[cfg(windows)]
pub mod windows;
#[cfg(windows)]
pub use windows::job::ProcessTree;
#[cfg(windows)]
pub use windows::{hostname, ready};
