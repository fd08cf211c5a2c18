//! Labels bound at enrolment, and what an agent may add to them.
//!
//! An agent testifies only about itself. The labels given when its
//! enrolment token was created (`rollcall token create --label k=v`) are
//! the admin's word: they are bound to the agent when it enrols and no
//! hello can change or remove them. A hello (the agent's `agent.toml`
//! `[labels]`) may add labels under other keys; a hello label that
//! contradicts a bound one is ignored for that key, the bound value kept,
//! and the coordinator logs it, so an edited `agent.toml` cannot move an
//! endpoint out of (or into) a selector such as `site=osaka`.

use std::collections::BTreeMap;

/// A hello label that contradicted a bound one and was ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredLabel {
    pub key: String,
    /// What the hello said.
    pub told: String,
    /// What the token bound, and what is kept.
    pub bound: String,
}

/// The agent's labels after a hello: the bound ones, plus the hello's
/// labels under keys the token did not bind.
pub fn merge(
    bound: &BTreeMap<String, String>,
    told: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<IgnoredLabel>) {
    let mut labels = told.clone();
    let mut ignored = Vec::new();
    for (key, bound_value) in bound {
        if let Some(told_value) = labels.insert(key.clone(), bound_value.clone())
            && told_value != *bound_value
        {
            ignored.push(IgnoredLabel {
                key: key.clone(),
                told: told_value,
                bound: bound_value.clone(),
            });
        }
    }
    (labels, ignored)
}

/// Logs every ignored hello label once, where the hello is handled.
pub fn warn_ignored(agent_id: &str, ignored: &[IgnoredLabel]) {
    for label in ignored {
        tracing::warn!(
            agent_id,
            key = label.key,
            told = label.told,
            bound = label.bound,
            "hello label contradicts the label bound by the enrolment token; the bound value is kept"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn a_hello_adds_labels_but_never_changes_or_removes_a_bound_one() {
        let bound = labels(&[("site", "osaka"), ("tier", "gold")]);
        let told = labels(&[("site", "kyoto"), ("rack", "r1")]);
        let (merged, ignored) = merge(&bound, &told);
        // "tier" is kept although the hello left it out; "rack" is added.
        assert_eq!(merged, labels(&[("rack", "r1"), ("site", "osaka"), ("tier", "gold")]));
        assert_eq!(
            ignored,
            [IgnoredLabel {
                key: "site".into(),
                told: "kyoto".into(),
                bound: "osaka".into(),
            }]
        );
    }

    #[test]
    fn agreeing_or_unbound_labels_are_not_reported() {
        let bound = labels(&[("site", "osaka")]);
        let (merged, ignored) = merge(&bound, &labels(&[("site", "osaka")]));
        assert_eq!(merged, bound);
        assert!(ignored.is_empty());
        let (merged, ignored) = merge(&BTreeMap::new(), &labels(&[("site", "kyoto")]));
        assert_eq!(merged, labels(&[("site", "kyoto")]));
        assert!(ignored.is_empty());
    }
}
