//! Agent selectors: `all`, an agent id, or `key=value[,key=value]` over
//! labels and fields (`hostname`, `version`, `role`, `online`, `os_id`,
//! `os_version`, `arch`, `update_source`, `source_address`, and later issues'
//! `state` and `cause`). A key that is not a field is a label.

use anyhow::bail;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    All,
    Id(String),
    Match(Vec<(String, String)>),
}

impl Selector {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let text = text.trim();
        if text.is_empty() || text == "all" {
            return Ok(Selector::All);
        }
        if rollcall_common::pki::valid_agent_id(text) {
            return Ok(Selector::Id(text.to_string()));
        }
        let mut pairs = Vec::new();
        for part in text.split(',') {
            let Some((key, value)) = part.split_once('=') else {
                bail!("selector part {part:?} is not key=value (use `all`, an agent id, or key=value[,key=value])");
            };
            let (key, value) = (key.trim(), value.trim());
            if key.is_empty() {
                bail!("selector part {part:?} has an empty key");
            }
            pairs.push((key.to_string(), value.to_string()));
        }
        Ok(Selector::Match(pairs))
    }

    /// `lookup(key)` gives the agent's value of a field or label.
    pub fn matches(&self, id: &str, lookup: impl Fn(&str) -> Option<String>) -> bool {
        match self {
            Selector::All => true,
            Selector::Id(wanted) => wanted == id,
            Selector::Match(pairs) => pairs
                .iter()
                .all(|(key, value)| lookup(key).is_some_and(|actual| &actual == value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_form() {
        assert_eq!(Selector::parse("all").expect("all"), Selector::All);
        let id = "0191c3a4-7d1e-7c3a-9a4b-0123456789ab";
        assert_eq!(Selector::parse(id).expect("id"), Selector::Id(id.into()));
        let selector = Selector::parse("site=osaka,cause=license").expect("pairs");
        assert!(selector.matches("x", |key| Some(if key == "site" { "osaka" } else { "license" }.into())));
        assert!(!selector.matches("x", |_| Some("other".into())));
        assert!(Selector::parse("site").is_err());
        assert!(Selector::parse("=x").is_err());
    }
}
