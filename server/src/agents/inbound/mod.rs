//! What agents (and token requests) send, checked once at the receiving
//! edge and turned into domain types: [`ValidHello`], [`ValidReport`],
//! [`ValidChunk`], [`ValidLabels`]. Each is built only by `TryFrom` over the
//! protobuf message, so code past the edge (ingest, the store) takes a value
//! that has passed the checks and cannot be handed one that has not.
//!
//! The gRPC layer already bounds the message size; these bound the shape
//! inside it (how many labels, how long a string) so one agent cannot bloat
//! the store. A refusal is a [`Refused`], which becomes
//! `Status::invalid_argument` in one place (its `From` impl below).

mod bundle;
mod facts;
mod hello;
mod labels;
pub mod limits;
mod numbers;
mod report;

pub use bundle::ValidChunk;
pub use hello::ValidHello;
pub use labels::ValidLabels;
pub use limits::*;
pub use numbers::{MAX_DROPPED, MAX_MEGABYTES, MAX_POLICY_VERSION, MAX_RUNBOOK_STEP, MAX_SEQ, MAX_TIME_MS};
pub use report::ValidReport;
use rollcall_common::printable as steering;
use tonic::Status;

/// Why a message was refused at the edge; the text is what the sender
/// reads in its `INVALID_ARGUMENT` status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

impl From<Refused> for Status {
    fn from(refused: Refused) -> Self {
        Status::invalid_argument(refused.0)
    }
}

fn refuse<T>(message: impl Into<String>) -> Result<T, Refused> {
    Err(Refused(message.into()))
}

/// A host name, in a hello or an enrolment request: 1 to [`MAX_HOSTNAME`]
/// bytes (DNS's limit).
pub fn hostname(name: &str) -> Result<(), Refused> {
    if name.is_empty() || name.len() > MAX_HOSTNAME {
        return refuse("hostname must be 1-253 bytes");
    }
    no_steering("hostname", name)
}

/// A name holds no character that steers a terminal ([`steering`]).
fn no_steering(field: &str, value: &str) -> Result<(), Refused> {
    match steering::first_in(value) {
        Some(c) => refuse(format!(
            "{field} holds the control character U+{:04X}, which names may not",
            u32::from(c)
        )),
        None => Ok(()),
    }
}

/// A short field: a name, a version, an address.
fn short(field: &str, value: &str) -> Result<(), Refused> {
    if value.len() > MAX_SHORT {
        return refuse(format!("{field} is longer than {MAX_SHORT} bytes"));
    }
    no_steering(field, value)
}

/// A text field: a message, a remediation, an output tail. Kept, with
/// terminal escapes written out ([`steering::escape_text`]).
fn text(field: &str, value: &mut String) -> Result<(), Refused> {
    if value.len() > MAX_TEXT {
        return refuse(format!("{field} is longer than {MAX_TEXT} bytes"));
    }
    steering::escape_text(value, MAX_TEXT);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_becomes_invalid_argument_with_its_text() {
        let status = Status::from(Refused("report seq must start at 1".into()));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "report seq must start at 1");
    }

    #[test]
    fn names_with_terminal_escapes_are_refused_and_text_is_escaped() {
        let osc52 = "pc-01\u{1b}]52;c;cm0gLXJmIH4=\u{7}";
        assert_eq!(
            hostname(osc52),
            Err(Refused(
                "hostname holds the control character U+001B, which names may not".into()
            ))
        );
        assert!(hostname("pc-01\nforged log line").is_err());
        assert!(short("product.version", "14.0\u{202e}1").is_err());
        assert!(hostname("大阪-pc-01").is_ok());
        let mut message = format!("see {osc52}");
        assert!(text("check.message", &mut message).is_ok());
        assert!(
            !message.contains('\u{1b}') && message.contains("\\u{1b}]52"),
            "{message}"
        );
    }

    #[test]
    fn short_and_text_accept_the_limit_and_refuse_one_over() {
        assert!(short("f", &"a".repeat(MAX_SHORT)).is_ok());
        assert_eq!(
            short("f", &"a".repeat(MAX_SHORT + 1)),
            Err(Refused(format!("f is longer than {MAX_SHORT} bytes")))
        );
        assert!(text("f", &mut "a".repeat(MAX_TEXT)).is_ok());
        assert_eq!(
            text("f", &mut "a".repeat(MAX_TEXT + 1)),
            Err(Refused(format!("f is longer than {MAX_TEXT} bytes")))
        );
    }
}
