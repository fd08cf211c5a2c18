//! The rows of the roster (docs/ROSTER.md), shared by both stores: every
//! endpoint the managed product lists, from Apex Central or a console
//! export, and how the last refresh went.
//!
//! A refresh replaces the whole roster, never half of it, and never holds
//! the store's writer for long: its entries are written in batches of
//! [`BATCH`] under a new *generation*, each batch its own short
//! transaction, and one small transaction then makes that generation the
//! current one. Readers only see the current generation, so until that
//! switch they see the old roster whole, and after it the new one whole.
//! Older generations (and those a crash abandoned) are deleted afterwards,
//! in batches too.

/// Entries written or deleted per transaction.
pub const BATCH: usize = 5000;

/// One endpoint as the product lists it. Lists are stored comma-joined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RosterEntry {
    pub host_name: String,
    pub entity_id: String,
    pub ip_addresses: Vec<String>,
    pub mac_addresses: Vec<String>,
    /// The product version; `None` when the source gives none.
    pub version: Option<String>,
    pub connection_status: Option<String>,
    pub managing_server: Option<String>,
    pub domain: Option<String>,
    pub folder_path: Option<String>,
    pub os: Option<String>,
    pub product: Option<String>,
}

/// Where the roster stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RosterStatusRow {
    /// `apex_central`, `csv:<file>`; empty before the first roster.
    pub source: String,
    pub entries: u64,
    /// When the current roster was stored; `None` before the first.
    pub refreshed_at_ms: Option<i64>,
    /// The last failed pass, cleared by a good one.
    pub last_error: Option<String>,
    pub last_error_at_ms: Option<i64>,
    /// The current generation (0 before the first roster): a refresh
    /// anywhere, on any replica, changes it (the roster cache's key).
    pub generation: i64,
}

pub(crate) fn join(list: &[String]) -> String {
    list.join(",")
}

pub(crate) fn split(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_round_trip_through_their_column() {
        let list = vec!["10.0.0.1".to_string(), "fe80::1".to_string()];
        assert_eq!(split(&join(&list)), list);
        assert!(split("").is_empty());
        assert_eq!(split(" a, ,b "), vec!["a", "b"]);
    }
}
