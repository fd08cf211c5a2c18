//! An agent's receipt for a command, as the coordinator stores it: one
//! table of the words, so the ingest, the command tallies, the update-now
//! report and the bundle list agree on what a refusal is.
//!
//! Storage encoding (the `commands.receipt` column): empty until a receipt
//! arrives, `accepted`, or `refused: <reason>`. The `commands.refused`
//! column (schema 10 on SQLite, 11 on PostgreSQL) holds
//! [`Receipt::is_refused`] so the stores' queries need not match the text.

/// What an agent said of a command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Receipt {
    /// No receipt stored (the coordinator stores refusals only; an accepted
    /// command is settled by the report that answers it).
    #[default]
    NotReceived,
    Accepted,
    /// The agent refused the command, and why.
    Refused(String),
}

/// A stored receipt that is none of the encodings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownReceipt(pub String);

impl std::fmt::Display for UnknownReceipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown command receipt {:?}", self.0)
    }
}

impl std::error::Error for UnknownReceipt {}

const ACCEPTED: &str = "accepted";
/// What every refusal starts with; the migration that added
/// `commands.refused` matched it (`LIKE 'refused%'`) and so does parsing.
const REFUSED: &str = "refused";
const REFUSED_PREFIX: &str = "refused: ";

impl Receipt {
    /// The `commands.receipt` column's text.
    pub fn storage(&self) -> String {
        match self {
            Receipt::NotReceived => String::new(),
            Receipt::Accepted => ACCEPTED.to_string(),
            Receipt::Refused(reason) => format!("{REFUSED_PREFIX}{reason}"),
        }
    }

    /// Reads the column back. Any text starting with `refused` is a
    /// refusal (the reason is what follows `refused: `, else what follows
    /// `refused`), as the text match this replaces counted it.
    pub fn from_storage(text: &str) -> Result<Receipt, UnknownReceipt> {
        if text.is_empty() {
            return Ok(Receipt::NotReceived);
        }
        if text == ACCEPTED {
            return Ok(Receipt::Accepted);
        }
        if let Some(rest) = text.strip_prefix(REFUSED) {
            let reason = rest.strip_prefix(": ").unwrap_or(rest);
            return Ok(Receipt::Refused(reason.to_string()));
        }
        Err(UnknownReceipt(text.to_string()))
    }

    /// The `commands.refused` column.
    pub fn is_refused(&self) -> bool {
        matches!(self, Receipt::Refused(_))
    }

    /// The agent's reason, for a refusal.
    pub fn refusal_reason(&self) -> Option<&str> {
        match self {
            Receipt::Refused(reason) => Some(reason),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_round_trips_every_receipt() {
        for receipt in [
            Receipt::NotReceived,
            Receipt::Accepted,
            Receipt::Refused("no update_command".into()),
            Receipt::Refused(String::new()),
            Receipt::Refused("refused: twice".into()),
        ] {
            assert_eq!(Receipt::from_storage(&receipt.storage()), Ok(receipt));
        }
        assert_eq!(Receipt::NotReceived.storage(), "");
        assert_eq!(Receipt::Accepted.storage(), "accepted");
        assert_eq!(Receipt::Refused("busy".into()).storage(), "refused: busy");
    }

    #[test]
    fn every_text_starting_with_refused_is_a_refusal() {
        assert_eq!(Receipt::from_storage("refused"), Ok(Receipt::Refused(String::new())));
        assert_eq!(
            Receipt::from_storage("refused:busy"),
            Ok(Receipt::Refused(":busy".into()))
        );
        assert!(Receipt::from_storage("refused: busy").is_ok_and(|receipt| receipt.is_refused()));
        assert!(!Receipt::Accepted.is_refused());
        assert!(!Receipt::NotReceived.is_refused());
        assert_eq!(Receipt::Refused("busy".into()).refusal_reason(), Some("busy"));
        assert_eq!(Receipt::Accepted.refusal_reason(), None);
    }

    #[test]
    fn unknown_text_is_an_error_not_a_default() {
        assert_eq!(Receipt::from_storage("spoofed"), Err(UnknownReceipt("spoofed".into())));
        assert!(Receipt::from_storage("Accepted").is_err());
        assert!(Receipt::from_storage(" refused").is_err());
    }
}
