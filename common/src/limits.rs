//! The shape limits on what an agent sends, in one place for both ends
//! (issue 24 point 6): the coordinator refuses a message over them
//! (server/src/agents/inbound), and the probe bounds every report to them before
//! it spools it ([`bound_report`]), so an over-long product value can no
//! longer get every report of an endpoint refused. docs/SECURITY.md lists
//! them.

mod bound;

pub use bound::{TRUNCATED_MARK, bound_hello, bound_report};

pub const MAX_LABELS: usize = 64;
pub const MAX_LABEL_KEY: usize = 63;
pub const MAX_LABEL_VALUE: usize = 256;
pub const MAX_HOSTNAME: usize = 253;
pub const MAX_CHECKS: usize = 32;
pub const MAX_EVIDENCE: usize = 64;
pub const MAX_TEXT: usize = 4096;
pub const MAX_SHORT: usize = 256;
/// IP addresses, and MAC addresses, a probe's host facts carry at most
/// (each list on its own): enough for a laptop with docks, VPNs and
/// virtual switches; a roster is matched by them (docs/ROSTER.md).
pub const MAX_HOST_ADDRESSES: usize = 32;
/// One address at most: an IPv6 address with a zone (`fe80::…%eth0`) fits.
pub const MAX_HOST_ADDRESS_LEN: usize = 64;
/// One log-bundle chunk's data at most (the agent sends 256 KiB chunks,
/// well inside the gRPC message limit).
pub const MAX_BUNDLE_CHUNK: usize = 256 * 1024;
/// One log bundle at most, whatever the agent's own `max_bundle_bytes`
/// says; the agent's setting is capped lower (agent/src/collect).
pub const MAX_BUNDLE_BYTES: u64 = 64 * 1024 * 1024;
