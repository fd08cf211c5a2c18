//! Which probe is which roster entry (docs/ROSTER.md, "Matching"): the host
//! name first, case-insensitive, as written (FQDN to FQDN, short to short)
//! and then by its short form when either side is a short name; then the
//! IP addresses; then the MAC addresses. The first step that finds
//! candidates decides: one candidate is a match, several are *ambiguous*
//! and shown as such, never guessed. An entry that several probes match is
//! ambiguous for each of them, and counted as without a probe.

use std::collections::HashMap;

use crate::store::roster::RosterEntry;

/// What a probe says about itself that matching may use.
#[derive(Debug, Clone, Copy)]
pub struct Probe<'a> {
    pub hostname: &'a str,
    pub ip_addresses: &'a [String],
    pub mac_addresses: &'a [String],
}

/// A probe's place in the roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// The index of its entry.
    Matched(usize),
    NotListed,
    /// The entries it could be (or the one entry other probes claim too).
    Ambiguous(Vec<usize>),
}

impl Match {
    /// The word the admin API and the CLI show.
    pub fn word(&self) -> &'static str {
        match self {
            Match::Matched(_) => "matched",
            Match::NotListed => "not_listed",
            Match::Ambiguous(_) => "ambiguous",
        }
    }
}

/// Every probe matched, and each entry's probe.
#[derive(Debug, Clone, Default)]
pub struct Reconciled {
    /// Per probe, in the order given.
    pub probes: Vec<Match>,
    /// Per entry: the index of its one probe.
    pub probe_of: Vec<Option<usize>>,
}

fn short(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// A MAC address as its twelve hex digits, lowercase (`08-00-27-…`,
/// `08:00:27:…` and `0800.27…` are one address).
pub fn mac_key(mac: &str) -> String {
    mac.chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The roster's entries by name and address, built once per roster
/// generation (the roster cache keeps it) and matched against every fleet
/// snapshot.
#[derive(Debug, Default)]
pub struct Index {
    full: HashMap<String, Vec<usize>>,
    short: HashMap<String, Vec<usize>>,
    ip: HashMap<String, Vec<usize>>,
    mac: HashMap<String, Vec<usize>>,
}

impl Index {
    pub fn new(entries: &[RosterEntry]) -> Self {
        let mut index = Index {
            full: HashMap::with_capacity(entries.len()),
            short: HashMap::with_capacity(entries.len()),
            ip: HashMap::new(),
            mac: HashMap::new(),
        };
        for (at, entry) in entries.iter().enumerate() {
            let name = entry.host_name.trim().to_lowercase();
            if !name.is_empty() {
                index.short.entry(short(&name).to_string()).or_default().push(at);
                index.full.entry(name).or_default().push(at);
            }
            for ip in &entry.ip_addresses {
                index.ip.entry(ip.trim().to_lowercase()).or_default().push(at);
            }
            for mac in &entry.mac_addresses {
                let key = mac_key(mac);
                if !key.is_empty() {
                    index.mac.entry(key).or_default().push(at);
                }
            }
        }
        index
    }

    fn candidates(&self, entries: &[RosterEntry], probe: &Probe<'_>) -> Vec<usize> {
        let name = probe.hostname.trim().to_lowercase();
        if !name.is_empty() {
            if let Some(found) = self.full.get(&name) {
                return found.clone();
            }
            // By the short name only when one side is short: pc01 is
            // pc01.corp.example, but pc01.a.example is not pc01.b.example.
            let probe_is_short = !name.contains('.');
            if let Some(found) = self.short.get(short(&name)) {
                let found: Vec<usize> = found
                    .iter()
                    .copied()
                    .filter(|at| probe_is_short || entries.get(*at).is_some_and(|e| !e.host_name.contains('.')))
                    .collect();
                if !found.is_empty() {
                    return found;
                }
            }
        }
        for (keys, map) in [
            (
                probe
                    .ip_addresses
                    .iter()
                    .map(|ip| ip.trim().to_lowercase())
                    .collect::<Vec<_>>(),
                &self.ip,
            ),
            (probe.mac_addresses.iter().map(|mac| mac_key(mac)).collect(), &self.mac),
        ] {
            let mut found: Vec<usize> = keys
                .iter()
                .filter(|key| !key.is_empty())
                .filter_map(|key| map.get(key))
                .flatten()
                .copied()
                .collect();
            found.sort_unstable();
            found.dedup();
            if !found.is_empty() {
                return found;
            }
        }
        Vec::new()
    }
}

/// Matches every probe against the roster.
pub fn reconcile(entries: &[RosterEntry], probes: &[Probe<'_>]) -> Reconciled {
    reconcile_with(&Index::new(entries), entries, probes)
}

/// [`reconcile`] with the entries' index already built (`index` must be
/// `Index::new(entries)`).
pub fn reconcile_with(index: &Index, entries: &[RosterEntry], probes: &[Probe<'_>]) -> Reconciled {
    let mut matches: Vec<Match> = probes
        .iter()
        .map(|probe| {
            let mut found = index.candidates(entries, probe);
            match found.len() {
                0 => Match::NotListed,
                1 => Match::Matched(found.remove(0)),
                _ => Match::Ambiguous(found),
            }
        })
        .collect();
    // An entry several probes claim belongs to none of them.
    let mut claims: HashMap<usize, Vec<usize>> = HashMap::new();
    for (probe, found) in matches.iter().enumerate() {
        if let Match::Matched(at) = found {
            claims.entry(*at).or_default().push(probe);
        }
    }
    let mut probe_of = vec![None; entries.len()];
    for (at, claimants) in claims {
        if let [only] = claimants.as_slice() {
            if let Some(slot) = probe_of.get_mut(at) {
                *slot = Some(*only);
            }
        } else {
            for probe in claimants {
                if let Some(found) = matches.get_mut(probe) {
                    *found = Match::Ambiguous(vec![at]);
                }
            }
        }
    }
    Reconciled {
        probes: matches,
        probe_of,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(host: &str, ip: &str, mac: &str) -> RosterEntry {
        RosterEntry {
            host_name: host.into(),
            ip_addresses: crate::store::roster::split(ip),
            mac_addresses: crate::store::roster::split(mac),
            ..Default::default()
        }
    }

    fn probe<'a>(hostname: &'a str, ips: &'a [String], macs: &'a [String]) -> Probe<'a> {
        Probe {
            hostname,
            ip_addresses: ips,
            mac_addresses: macs,
        }
    }

    /// Each probe on its own against the roster.
    fn check(entries: &[RosterEntry], hostnames: &[&str], expect: &[Match]) {
        let found: Vec<Match> = hostnames
            .iter()
            .map(|name| reconcile(entries, &[probe(name, &[], &[])]).probes.remove(0))
            .collect();
        assert_eq!(found, expect, "{hostnames:?}");
    }

    #[test]
    fn host_names_match_case_insensitively_fqdn_or_short() {
        let entries = [
            entry("PC01", "", ""),
            entry("pc02.corp.example", "", ""),
            entry("PC03.Corp.Example", "", ""),
        ];
        check(
            &entries,
            &["pc01", "PC01.corp.example", "PC02", "pc03.corp.example", "pc04"],
            &[
                Match::Matched(0),
                Match::Matched(0),
                Match::Matched(1),
                Match::Matched(2),
                Match::NotListed,
            ],
        );
        // Two FQDNs in different domains are two machines.
        check(&entries, &["pc02.other.example"], &[Match::NotListed]);
    }

    #[test]
    fn ambiguity_is_shown_never_guessed() {
        let entries = [entry("pc01.a.example", "", ""), entry("pc01.b.example", "", "")];
        check(&entries, &["pc01"], &[Match::Ambiguous(vec![0, 1])]);
        // One entry, two probes claiming it: neither gets it.
        let entries = [entry("pc01", "", "")];
        let reconciled = reconcile(&entries, &[probe("pc01", &[], &[]), probe("PC01.corp", &[], &[])]);
        assert_eq!(
            reconciled.probes,
            vec![Match::Ambiguous(vec![0]), Match::Ambiguous(vec![0])]
        );
        assert_eq!(reconciled.probe_of, vec![None]);
    }

    #[test]
    fn addresses_match_when_the_name_does_not() {
        let entries = [
            entry("one", "10.0.0.1,10.0.0.2", "08-00-27-96-86-8E"),
            entry("two", "10.0.0.3", ""),
        ];
        let ips = vec!["10.0.0.2".to_string()];
        let macs = vec!["08:00:27:96:86:8e".to_string()];
        let reconciled = reconcile(&entries, &[probe("renamed", &ips, &[])]);
        assert_eq!(reconciled.probes, vec![Match::Matched(0)]);
        assert_eq!(reconciled.probe_of, vec![Some(0), None]);
        let reconciled = reconcile(&entries, &[probe("renamed-too", &[], &macs)]);
        assert_eq!(reconciled.probes, vec![Match::Matched(0)]);
        // Both at once claim one entry: ambiguous, and the entry has no probe.
        let reconciled = reconcile(
            &entries,
            &[probe("renamed", &ips, &[]), probe("renamed-too", &[], &macs)],
        );
        assert_eq!(
            reconciled.probes,
            vec![Match::Ambiguous(vec![0]), Match::Ambiguous(vec![0])]
        );
        assert_eq!(reconciled.probe_of, vec![None, None]);
    }
}
