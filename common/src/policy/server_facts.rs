//! `[[server_facts]]`: facts that live only on the product server (the
//! Apex One console's license and its update-settings permission), stated
//! on the coordinator side for endpoints that cannot read them locally.
//!
//! The first entry whose `match` labels an endpoint carries applies. A fact
//! is used only where the endpoint's own product state lacks the field (a
//! value the endpoint reports always wins), and every check that uses one
//! says so in its evidence (`source`), so the report shows where each fact
//! came from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{PolicyError, invalid};
use crate::product::UpdatePermission;

/// One `[[server_facts]]` entry, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFacts {
    /// Labels an endpoint must carry; empty matches every endpoint.
    pub match_labels: BTreeMap<String, String>,
    /// The license's last valid day, as the console shows it.
    pub license_expires: Option<time::Date>,
    /// The console's "update settings permission".
    pub update_permission: Option<UpdatePermission>,
}

impl ServerFacts {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
    }

    /// Evidence text: where the fact came from.
    pub fn source(&self, index: usize) -> String {
        if self.match_labels.is_empty() {
            format!("coordinator policy server_facts[{index}] (every endpoint)")
        } else {
            let labels: Vec<String> = self
                .match_labels
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            format!("coordinator policy server_facts[{index}] (match {})", labels.join(","))
        }
    }
}

/// The file form.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServerFactsFile {
    #[serde(default, rename = "match", skip_serializing_if = "BTreeMap::is_empty")]
    match_labels: BTreeMap<String, String>,
    /// `"YYYY-MM-DD"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    license_expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    update_permission: Option<UpdatePermission>,
}

const DATE: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

pub(super) fn validate(entries: Vec<ServerFactsFile>) -> Result<Vec<ServerFacts>, PolicyError> {
    entries
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            let key = format!("server_facts[{index}]");
            if entry.license_expires.is_none() && entry.update_permission.is_none() {
                return Err(invalid(key, "states no fact (license_expires, update_permission)"));
            }
            let license_expires = entry
                .license_expires
                .map(|text| {
                    time::Date::parse(text.trim(), DATE).map_err(|_| {
                        invalid(
                            format!("{key}.license_expires"),
                            format!("{text:?} is not a date (YYYY-MM-DD)"),
                        )
                    })
                })
                .transpose()?;
            Ok(ServerFacts {
                match_labels: entry.match_labels,
                license_expires,
                update_permission: entry.update_permission,
            })
        })
        .collect()
}

impl From<ServerFacts> for ServerFactsFile {
    fn from(facts: ServerFacts) -> ServerFactsFile {
        ServerFactsFile {
            match_labels: facts.match_labels,
            license_expires: facts.license_expires.and_then(|date| date.format(DATE).ok()),
            update_permission: facts.update_permission,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Policy;
    use super::*;

    #[test]
    fn the_first_matching_entry_applies_and_says_where_it_is() {
        let policy = Policy::from_toml_str(
            "[[server_facts]]\nmatch = { site = \"osaka\" }\nlicense_expires = \"2027-03-31\"\n\
             [[server_facts]]\nupdate_permission = \"pattern_files\"\n",
        )
        .expect("policy");
        let osaka: BTreeMap<String, String> = [("site".to_string(), "osaka".to_string())].into();
        let (index, facts) = policy.server_facts_for(&osaka).expect("osaka");
        assert_eq!(index, 0);
        assert_eq!(facts.license_expires, Some(time::macros::date!(2027 - 03 - 31)));
        assert_eq!(
            facts.source(index),
            "coordinator policy server_facts[0] (match site=osaka)"
        );
        let (index, facts) = policy.server_facts_for(&BTreeMap::new()).expect("catch-all");
        assert_eq!(index, 1);
        assert_eq!(facts.update_permission, Some(UpdatePermission::PatternFiles));
        // Round trip through the written form.
        let again = Policy::from_toml_str(&policy.to_toml_string().expect("write")).expect("reparse");
        assert_eq!(again.server_facts_for(&osaka), policy.server_facts_for(&osaka));
    }

    #[test]
    fn bad_entries_are_refused_by_key() {
        let error = Policy::from_toml_str("[[server_facts]]\nlicense_expires = \"31/03/2027\"\n")
            .expect_err("bad date")
            .to_string();
        assert!(error.contains("server_facts[0].license_expires"), "{error}");
        let error = Policy::from_toml_str("[[server_facts]]\nmatch = { site = \"x\" }\n")
            .expect_err("no fact")
            .to_string();
        assert!(error.contains("states no fact"), "{error}");
    }
}
