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
//! - [`limits`]: what an agent may send, and bounding a report to it.
//! - [`printable`]: characters that steer a terminal, refused or written out.
//! - [`cause`], [`member_state`], [`receipt`], [`i18n`], [`check_text`],
//!   [`report`], [`clock_skew`]: what the coordinator and the admin CLI both
//!   show: cause codes and their runbook steps, a rollout member's state and
//!   its words, a command receipt's storage text, the Fluent catalogue
//!   (`locales/`), check messages in the admin's language, the step-8 report
//!   (JSON contract and Markdown), clock skew as text. Not used by the probe.

pub mod cause;
pub mod check_text;
pub mod checks;
pub mod clock_skew;
pub mod console_path;
pub mod files;
pub mod i18n;
pub mod limits;
pub mod locale_fmt;
pub mod logging;
pub mod member_state;
pub mod net;
pub mod pki;
pub mod policy;
pub mod printable;
pub mod product;
pub mod proto;
pub mod receipt;
pub mod report;
pub mod secret;
pub mod test_skip;
pub mod timefmt;
pub mod tls;
pub mod version;
#[cfg(test)]
mod vocabulary_tests;
pub mod words;
