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
    /// The message as a catalogue code (`msg-CODE` in the coordinator's
    /// locales) and its parameters, so the coordinator can say it in the
    /// admin's language. Empty for a message without a code (the English
    /// `message` is then the only text).
    pub(crate) code: String,
    pub(crate) params: Vec<(String, String)>,
}

impl Finding {
    pub(crate) fn new(status: CheckStatus, message: impl Into<String>) -> Finding {
        Finding {
            status,
            message: message.into(),
            evidence: Vec::new(),
            code: String::new(),
            params: Vec::new(),
        }
    }

    /// Sets the message's catalogue code.
    pub(crate) fn code(mut self, code: &str) -> Finding {
        self.code = code.to_string();
        self
    }

    /// Adds one parameter of the coded message.
    pub(crate) fn param(mut self, name: &str, value: impl ToString) -> Finding {
        self.params.push((name.to_string(), value.to_string()));
        self
    }

    /// An error finding for a product-state read error, coded.
    pub(crate) fn product_error(error: &rollcall_common::product::ProductError) -> Finding {
        let mut finding = Finding::error(error.to_string()).code(error.code());
        finding.params = error.params();
        finding
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
        let mut coded_parts: Vec<&Finding> = parts.iter().filter(|part| part.status == status).collect();
        coded_parts.extend(
            parts
                .iter()
                .filter(|part| part.status != status && part.status != CheckStatus::Pass),
        );
        // One cause (an unreadable document) can surface in several parts.
        let mut seen = std::collections::BTreeSet::new();
        message_parts.retain(|message| !message.is_empty() && seen.insert(message.clone()));
        let mut seen = std::collections::BTreeSet::new();
        coded_parts.retain(|part| !part.message.is_empty() && seen.insert(part.message.clone()));
        let mut combined = Finding::new(status, message_parts.join("; "));
        // Several parts: their codes joined by ",", each part's parameters
        // prefixed by its index; a part without a code leaves the whole
        // message uncoded (the English message is then the text).
        if coded_parts.iter().all(|part| !part.code.is_empty()) {
            match coded_parts.as_slice() {
                [] => {}
                [only] => {
                    combined.code = only.code.clone();
                    combined.params = only.params.clone();
                }
                several => {
                    combined.code = several
                        .iter()
                        .map(|part| part.code.as_str())
                        .collect::<Vec<_>>()
                        .join(",");
                    for (index, part) in several.iter().enumerate() {
                        for (name, value) in &part.params {
                            combined.params.push((format!("{index}.{name}"), value.clone()));
                        }
                    }
                }
            }
        }
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
    fn combine_codes_each_part_with_prefixed_parameters() {
        let combined = Finding::combine(vec![
            Finding::fail("disk").code("disk-low").param("free", 1),
            Finding::pass(""),
            Finding::error("memory").code("memory-unknown").param("detail", "x"),
        ]);
        assert_eq!(combined.code, "disk-low,memory-unknown");
        assert_eq!(
            combined.params,
            vec![
                ("0.free".to_string(), "1".to_string()),
                ("1.detail".to_string(), "x".to_string())
            ]
        );
        let one = Finding::combine(vec![
            Finding::fail("disk").code("disk-low").param("free", 1),
            Finding::pass(""),
        ]);
        assert_eq!((one.code.as_str(), one.params.len()), ("disk-low", 1));
        let uncoded = Finding::combine(vec![Finding::fail("disk").code("disk-low"), Finding::fail("other")]);
        assert_eq!(uncoded.code, "");
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
