//! Windows: host facts from the registry and Win32, the LocalMachine
//! certificate stores, job objects for process trees, the service and
//! the event log.
//!
//! The agent's only `unsafe` lives here (and in common's `files`
//! ACL module): Win32 calls the kept crates (`winreg`, `schannel`,
//! `windows-service`) do not cover, each block with its SAFETY argument.

pub mod addresses;
pub mod cert_store;
pub mod event_log;
pub mod host;
pub mod job;
pub mod service;
pub mod stdio;

/// Nothing to tell: as a service the agent reports "running" to the
/// service manager itself ([`service`]); run by hand there is no manager.
pub fn ready() {}

/// The computer name (`COMPUTERNAME`, which Windows sets for every
/// process, services included), or "localhost" when it is missing.
pub fn hostname() -> String {
    std::env::var("COMPUTERNAME")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
