//! What reaches the coordinator before anyone is known: the TLS accept
//! loop, per-source limits, the PROXY v2 header, who is calling
//! (certificates and the revocation list), and the token bucket they share.

pub mod auth;
pub mod listener;
pub mod proxy_protocol;
pub mod rate;
pub mod revocation;
pub mod source_limits;
