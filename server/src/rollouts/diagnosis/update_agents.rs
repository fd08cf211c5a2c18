//! Update agents by the address their clients pull from, and who claims it.
//!
//! An agent says it is an update agent, and at which address, in its own
//! hello: that is testimony, not proof. When two agents claim one address
//! the coordinator cannot tell which of them a client really pulls from, so
//! it says so (`update_agent_conflict`, naming the claimants) rather than
//! blaming the clients on whichever hello came last. Addresses on both sides
//! go through [`address_key`], so spelling (case, scheme, default port,
//! path) never decides a link.

use std::collections::HashMap;

use rollcall_common::product::address_key;

/// What the engine knows of an update agent.
#[derive(Debug, Clone)]
pub struct UpdateAgentView {
    pub id: String,
    pub at_target: bool,
    pub program_and_hotfix: bool,
    pub online: bool,
}

impl UpdateAgentView {
    /// Why this update agent blocks its clients, if it does.
    pub fn blocking(&self) -> Option<&'static str> {
        if !self.online {
            Some("the update agent is offline")
        } else if !self.program_and_hotfix {
            Some("the update agent does not serve \"Security agent program and HotFix\"")
        } else if !self.at_target {
            Some("the update agent has not finished upgrading itself")
        } else {
            None
        }
    }
}

/// Who serves an address, as far as the coordinator can tell.
#[derive(Debug, Clone, Copy)]
pub enum Claim<'a> {
    /// Exactly one agent claims it.
    One(&'a UpdateAgentView),
    /// Two or more agents claim it (by id, sorted): none is blamed.
    Contested(&'a [UpdateAgentView]),
}

/// Update agents keyed by [`address_key`] of the address they claim.
#[derive(Debug, Clone, Default)]
pub struct UpdateAgentIndex {
    by_address: HashMap<String, Vec<UpdateAgentView>>,
}

impl UpdateAgentIndex {
    pub fn new() -> UpdateAgentIndex {
        UpdateAgentIndex::default()
    }

    /// Records that `view` claims `address`; a later claim by the same agent
    /// replaces its earlier one.
    pub fn insert(&mut self, address: &str, view: UpdateAgentView) {
        let claimants = self.by_address.entry(address_key(address)).or_default();
        claimants.retain(|claimant| claimant.id != view.id);
        claimants.push(view);
        claimants.sort_by(|left, right| left.id.cmp(&right.id));
    }

    /// Who claims the address a client pulls from, however it is spelt.
    pub fn claim(&self, address: &str) -> Option<Claim<'_>> {
        match self.by_address.get(&address_key(address))?.as_slice() {
            [] => None,
            [only] => Some(Claim::One(only)),
            several => Some(Claim::Contested(several)),
        }
    }

    /// Every contested address (normalised) with its claimants' ids.
    pub fn conflicts(&self) -> Vec<(String, Vec<String>)> {
        let mut conflicts: Vec<(String, Vec<String>)> = self
            .by_address
            .iter()
            .filter(|(_, claimants)| claimants.len() > 1)
            .map(|(address, claimants)| {
                (
                    address.clone(),
                    claimants.iter().map(|claimant| claimant.id.clone()).collect(),
                )
            })
            .collect();
        conflicts.sort();
        conflicts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: &str) -> UpdateAgentView {
        UpdateAgentView {
            id: id.into(),
            at_target: true,
            program_and_hotfix: true,
            online: true,
        }
    }

    #[test]
    fn one_claimant_is_found_under_any_spelling() {
        let mut index = UpdateAgentIndex::new();
        index.insert("UA-1.example:8080", view("a"));
        for spelling in [
            "ua-1.example:8080",
            "http://ua-1.example:8080/",
            "HTTPS://Ua-1.Example:8080/x",
        ] {
            assert!(
                matches!(index.claim(spelling), Some(Claim::One(ua)) if ua.id == "a"),
                "{spelling}"
            );
        }
        assert!(index.claim("ua-1.example:8081").is_none());
        assert!(index.conflicts().is_empty());
    }

    #[test]
    fn two_claimants_of_one_address_are_a_conflict_not_the_last_one() {
        let mut index = UpdateAgentIndex::new();
        index.insert("http://ua-1.example:8080/", view("b"));
        index.insert("UA-1.example:8080", view("a"));
        // The same agent claiming again is not a second claimant.
        index.insert("ua-1.example:8080", view("a"));
        match index.claim("ua-1.example:8080") {
            Some(Claim::Contested(claimants)) => {
                let ids: Vec<&str> = claimants.iter().map(|claimant| claimant.id.as_str()).collect();
                assert_eq!(ids, ["a", "b"]);
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(
            index.conflicts(),
            vec![("ua-1.example:8080".to_string(), vec!["a".to_string(), "b".to_string()])]
        );
    }
}
