//! What one check concluded, before the runner adds its name, runbook step,
//! remediation and duration; and how partial conclusions combine.

use rollcall_common::proto::{CheckResult, CheckStatus, Evidence};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finding {
    pub(crate) status: CheckStatus,
    /// One line.
    pub(crate) message: String,
    /// Keys are unique within a finding (the JSON output is an object).
    pub(crate) evidence: Vec<Evidence>,
}

impl Finding {
    pub(crate) fn new(status: CheckStatus, message: impl Into<String>) -> Finding {
        Finding {
            status,
            message: message.into(),
            evidence: Vec::new(),
        }
    }

    pub(crate) fn pass(message: impl Into<String>) -> Finding {
        Finding::new(CheckStatus::Pass, message)
    }

    pub(crate) fn warn(message: impl Into<String>) -> Finding {
        Finding::new(CheckStatus::Warn, message)
    }

    pub(crate) fn fail(message: impl Into<String>) -> Finding {
        Finding::new(CheckStatus::Fail, message)
    }

    /// The check could not be evaluated (a field is missing, a file unreadable).
    pub(crate) fn error(message: impl Into<String>) -> Finding {
        Finding::new(CheckStatus::Error, message)
    }

    /// Adds (or replaces) one piece of evidence.
    pub(crate) fn with(mut self, key: &str, value: impl ToString) -> Finding {
        self.add(key, value);
        self
    }

    pub(crate) fn add(&mut self, key: &str, value: impl ToString) {
        let value = value.to_string();
        match self.evidence.iter_mut().find(|evidence| evidence.key == key) {
            Some(existing) => existing.value = value,
            None => self.evidence.push(Evidence {
                key: key.to_string(),
                value,
            }),
        }
    }

    /// One finding from several parts of a check: the most severe status,
    /// the messages of the parts that have it ("; "-joined, so the headline
    /// is the problem), and all the evidence.
    pub(crate) fn combine(parts: Vec<Finding>) -> Finding {
        let status = parts
            .iter()
            .map(|part| part.status)
            .max_by_key(|status| severity(*status))
            .unwrap_or(CheckStatus::Pass);
        let mut message_parts: Vec<String> = parts
            .iter()
            .filter(|part| part.status == status)
            .map(|part| part.message.clone())
            .collect();
        // Lesser problems still belong in the line, after the worst.
        message_parts.extend(
            parts
                .iter()
                .filter(|part| part.status != status && part.status != CheckStatus::Pass)
                .map(|part| part.message.clone()),
        );
        // One cause (an unreadable document) can surface in several parts.
        let mut seen = std::collections::BTreeSet::new();
        message_parts.retain(|message| !message.is_empty() && seen.insert(message.clone()));
        let mut combined = Finding::new(status, message_parts.join("; "));
        for part in parts {
            for evidence in part.evidence {
                combined.add(&evidence.key, evidence.value);
            }
        }
        combined
    }
}

/// A definite failure outranks "could not tell": it is the actionable
/// diagnosis, and the exit code and coordinator treat both as not passing.
pub(crate) fn severity(status: CheckStatus) -> u8 {
    match status {
        CheckStatus::Pass => 0,
        CheckStatus::Unspecified => 1,
        CheckStatus::Warn => 2,
        CheckStatus::Error => 3,
        CheckStatus::Fail => 4,
    }
}

/// The status of a result, `Unspecified` if the number is unknown.
pub fn status_of(result: &CheckResult) -> CheckStatus {
    CheckStatus::try_from(result.status).unwrap_or(CheckStatus::Unspecified)
}

/// Lowercase status word for messages, tables and JSON.
pub fn status_word(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Unspecified => "unspecified",
        CheckStatus::Pass => "pass",
        CheckStatus::Warn => "warn",
        CheckStatus::Fail => "fail",
        CheckStatus::Error => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combine_leads_with_the_worst_part() {
        let combined = Finding::combine(vec![
            Finding::pass("os fine").with("os_id", "debian"),
            Finding::error("no MemTotal").with("memory", "?"),
            Finding::fail("disk too small").with("free_disk_mb", 10),
        ]);
        assert_eq!(combined.status, CheckStatus::Fail);
        assert_eq!(combined.message, "disk too small; no MemTotal");
        assert_eq!(combined.evidence.len(), 3);
    }

    #[test]
    fn combine_of_passes_keeps_every_message() {
        let combined = Finding::combine(vec![Finding::pass("a"), Finding::pass("b")]);
        assert_eq!(combined.status, CheckStatus::Pass);
        assert_eq!(combined.message, "a; b");
    }

    #[test]
    fn combine_says_a_repeated_cause_once() {
        let combined = Finding::combine(vec![Finding::error("unreadable"), Finding::error("unreadable")]);
        assert_eq!(combined.message, "unreadable");
    }

    #[test]
    fn evidence_keys_stay_unique() {
        let finding = Finding::pass("x").with("k", 1).with("k", 2);
        assert_eq!(finding.evidence.len(), 1);
        assert_eq!(finding.evidence[0].value, "2");
    }
}
