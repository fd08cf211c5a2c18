//! Shared by every rollcall binary: the generated wire types (`proto`), the
//! PKI and TLS set-up both ends use, and small domain helpers.
//!
//! Keep this crate slim: it is linked into the probe that runs on every
//! endpoint.
//!
//! - [`proto`]: generated gRPC types, package `rollcall.v1`.
//! - [`pki`]: certificate authority, CSRs, identities inside certificates.
//! - [`tls`]: rustls configurations (TLS 1.3 only) for both ends.
//! - [`policy`], [`product`], [`version`]: the fleet policy, the managed
//!   product's state document, dotted version ordering.
//! - [`files`], [`net`], [`timefmt`]: careful I/O, URLs, RFC 3339.
//! - [`secret`]: key PEMs and tokens in memory (never printed, wiped on drop).

pub mod checks;
pub mod files;
pub mod logging;
pub mod net;
pub mod pki;
pub mod policy;
pub mod product;
pub mod proto;
pub mod secret;
pub mod timefmt;
pub mod tls;
pub mod version;
