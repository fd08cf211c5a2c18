//! Azure Code Signing readiness, part of `certificates` (runbook step 4):
//! from build 12011 on, Apex One's binaries are signed through Microsoft's
//! Azure Code Signing program, which an older Windows trusts only once a
//! minimum update is installed; without it the endpoint stays at its old
//! build with no error on the console. The per-OS minimum is data
//! (`agent/data/acs-minimum.toml`, with its sources); this reads the OS
//! build, its update revision (UBR) and the installed updates against it.
//!
//! Pure: the Windows facts come from `platform::windows::host::read_acs`.

use std::collections::BTreeSet;

use anyhow::{Context, bail};
use serde::Deserialize;

use super::finding::Finding;

/// The table, with its sources (issue 25: KA-0013628, Microsoft KB5022661).
pub(crate) const TABLE_TOML: &str = include_str!("../../data/acs-minimum.toml");

/// The first Apex One build signed through Azure Code Signing.
pub(crate) const FIRST_ACS_BUILD: u64 = 12011;

/// What the endpoint says of its Windows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AcsFacts {
    /// `CurrentBuildNumber`.
    pub build: u64,
    /// `UBR`, the update revision (`19044.1586` has UBR 1586).
    pub ubr: Option<u64>,
    /// Installed updates by KB number (`KB5011487`), upper case.
    pub updates: BTreeSet<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableFile {
    os: Vec<Row>,
}

/// One OS of the table.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Row {
    pub name: String,
    /// One build, several, or every build from `min_build` on.
    #[serde(default)]
    pub build: Option<u64>,
    #[serde(default)]
    pub builds: Vec<u64>,
    #[serde(default)]
    pub min_build: Option<u64>,
    /// Supports ACS with no update.
    #[serde(default)]
    pub native: bool,
    /// At or above this UBR the update is in.
    #[serde(default)]
    pub min_ubr: Option<u64>,
    /// Any of these installed is enough.
    #[serde(default)]
    pub kb: Vec<String>,
    /// A public source states the row.
    pub confirmed: bool,
    pub source: String,
}

impl Row {
    fn covers(&self, build: u64) -> bool {
        self.build == Some(build) || self.builds.contains(&build) || self.min_build.is_some_and(|min| build >= min)
    }
}

/// Parses and checks the table (once per check run; it is a few rows).
pub(crate) fn table() -> anyhow::Result<Vec<Row>> {
    let file: TableFile = toml::from_str(TABLE_TOML).context("parse agent/data/acs-minimum.toml")?;
    for row in &file.os {
        if row.build.is_none() && row.builds.is_empty() && row.min_build.is_none() {
            bail!("acs-minimum.toml: {:?} names no build", row.name);
        }
        if !row.native && row.kb.is_empty() {
            bail!("acs-minimum.toml: {:?} is neither native nor names a KB", row.name);
        }
    }
    Ok(file.os)
}

/// The verdict for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// Native support, a UBR at or above the minimum, or the KB installed.
    Ready { os: String, why: String },
    /// Below the minimum UBR and none of the KBs installed.
    Lacks {
        os: String,
        kb: Vec<String>,
        confirmed: bool,
    },
    /// The table names a KB but no UBR, and the KB is not listed as
    /// installed (a later cumulative update may hold it): cannot tell.
    Unknown { os: String, kb: Vec<String>, why: String },
}

/// Does an Apex One target version need ACS? `14.0.12737` (its third part
/// is the build) does from build 12011 on.
pub(crate) fn target_needs_acs(target: &str) -> bool {
    let parts: Vec<u64> = target
        .trim()
        .split('.')
        .map_while(|part| part.parse::<u64>().ok())
        .collect();
    match parts.as_slice() {
        [major, _, build, ..] => *major >= 14 && *build >= FIRST_ACS_BUILD,
        _ => false,
    }
}

/// The endpoint against the table.
pub(crate) fn readiness(rows: &[Row], facts: &AcsFacts) -> Readiness {
    let described = |ubr: Option<u64>| match ubr {
        Some(ubr) => format!("{}.{ubr}", facts.build),
        None => facts.build.to_string(),
    };
    let Some(row) = rows.iter().find(|row| row.covers(facts.build)) else {
        return Readiness::Unknown {
            os: format!("Windows build {}", facts.build),
            kb: Vec::new(),
            why: "this build is not in the ACS table".to_string(),
        };
    };
    let os = format!("{} (build {})", row.name, described(facts.ubr));
    if row.native {
        return Readiness::Ready {
            os,
            why: "supports Azure Code Signing natively".to_string(),
        };
    }
    if let Some(installed) = row
        .kb
        .iter()
        .find(|kb| facts.updates.contains(&kb.to_ascii_uppercase()))
    {
        return Readiness::Ready {
            os,
            why: format!("{installed} is installed"),
        };
    }
    match (row.min_ubr, facts.ubr) {
        (Some(min), Some(ubr)) if ubr >= min => Readiness::Ready {
            os,
            why: format!("build {} is at or above {}.{min}", described(Some(ubr)), facts.build),
        },
        (Some(_), Some(_)) => Readiness::Lacks {
            os,
            kb: row.kb.clone(),
            confirmed: row.confirmed,
        },
        (Some(min), None) => Readiness::Unknown {
            os,
            kb: row.kb.clone(),
            why: format!("no UBR to compare with {}.{min}", facts.build),
        },
        (None, _) => Readiness::Unknown {
            os,
            kb: row.kb.clone(),
            why: "the table names no minimum UBR for this build and the update is not listed as installed".to_string(),
        },
    }
}

/// The certificates check's part for ACS: `None` when the target does not
/// need it or the endpoint is not Windows.
pub(crate) fn finding(target: Option<&str>, facts: Option<anyhow::Result<AcsFacts>>) -> Option<Finding> {
    let target = target?;
    if !target_needs_acs(target) {
        return None;
    }
    let facts = match facts? {
        Ok(facts) => facts,
        Err(error) => {
            return Some(
                Finding::warn(format!("Azure Code Signing readiness could not be read: {error:#}"))
                    .code("certificates-acs-unreadable")
                    .param("detail", format!("{error:#}")),
            );
        }
    };
    let rows = match table() {
        Ok(rows) => rows,
        Err(error) => {
            return Some(Finding::error(format!("{error:#}")).code("certificates-acs-table"));
        }
    };
    Some(match readiness(&rows, &facts) {
        Readiness::Ready { os, why } => Finding::pass(format!("{os} trusts Azure Code Signing: {why}"))
            .code("certificates-acs-ready")
            .param("os", &os)
            .param("why", &why)
            .with("acs", format!("ready: {why}")),
        Readiness::Lacks { os, kb, confirmed } => {
            let kb = kb.join(" or ");
            Finding::fail(format!(
                "{os} lacks the Azure Code Signing update that Apex One {target} needs (build {FIRST_ACS_BUILD} and \
                 later): install {kb} or a later cumulative update"
            ))
            .code("certificates-acs-missing")
            .param("os", &os)
            .param("target", target)
            .param("kb", &kb)
            .with("acs_required_update", &kb)
            .with("acs_row_confirmed", confirmed)
        }
        Readiness::Unknown { os, kb, why } => {
            let kb = if kb.is_empty() {
                "the update Microsoft KB5022661 lists for it".to_string()
            } else {
                kb.join(" or ")
            };
            Finding::warn(format!(
                "cannot tell whether {os} trusts Azure Code Signing ({why}): make sure {kb} or a later cumulative \
                 update is installed before Apex One {target}"
            ))
            .code("certificates-acs-unknown")
            .param("os", &os)
            .param("why", &why)
            .param("kb", &kb)
            .param("target", target)
        }
    })
}

/// `KB5011487` from names such as Component Based Servicing's
/// `Package_for_KB5011487~31bf3856ad364e35~amd64~~19041.1586.1.3`.
pub fn kb_numbers<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for name in names {
        let upper = name.to_ascii_uppercase();
        let mut rest = upper.as_str();
        while let Some(at) = rest.find("KB") {
            let digits: String = rest[at + 2..].chars().take_while(char::is_ascii_digit).collect();
            if digits.len() >= 6 {
                found.insert(format!("KB{digits}"));
            }
            rest = &rest[at + 2..];
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(build: u64, ubr: Option<u64>, updates: &[&str]) -> AcsFacts {
        AcsFacts {
            build,
            ubr,
            updates: updates.iter().map(|kb| kb.to_string()).collect(),
        }
    }

    fn verdict(build: u64, ubr: Option<u64>, updates: &[&str]) -> Readiness {
        readiness(&table().expect("the shipped table"), &facts(build, ubr, updates))
    }

    #[test]
    fn the_shipped_table_parses_and_every_row_names_its_source() {
        let rows = table().expect("table");
        assert!(rows.len() >= 10);
        for row in &rows {
            assert!(!row.source.trim().is_empty(), "{}", row.name);
        }
        let unconfirmed: Vec<&str> = rows
            .iter()
            .filter(|row| !row.confirmed)
            .map(|row| row.name.as_str())
            .collect();
        assert_eq!(
            unconfirmed,
            [
                "Windows Server 2012 R2",
                "Windows 7 SP1, Windows Server 2008 R2 SP1 (ESU)"
            ]
        );
    }

    #[test]
    fn windows_10_21h2_needs_ubr_1586_or_kb5011487() {
        assert!(
            matches!(verdict(19044, Some(1585), &[]), Readiness::Lacks { ref kb, confirmed: true, .. } if kb == &["KB5011487"])
        );
        assert!(matches!(verdict(19044, Some(1586), &[]), Readiness::Ready { .. }));
        assert!(matches!(verdict(19044, Some(1587), &[]), Readiness::Ready { .. }));
        assert!(matches!(
            verdict(19044, Some(100), &["KB5011487"]),
            Readiness::Ready { .. }
        ));
        assert!(matches!(verdict(19044, None, &[]), Readiness::Unknown { .. }));
    }

    #[test]
    fn native_builds_and_unknown_builds() {
        for build in [19045, 22000, 22631, 26100] {
            assert!(
                matches!(verdict(build, Some(0), &[]), Readiness::Ready { .. }),
                "{build}"
            );
        }
        // A row with a KB but no minimum UBR: installed is ready, else "cannot tell".
        assert!(matches!(
            verdict(17763, Some(9999), &["KB5005625"]),
            Readiness::Ready { .. }
        ));
        assert!(matches!(verdict(17763, Some(9999), &[]), Readiness::Unknown { ref kb, .. } if kb == &["KB5005625"]));
        assert!(matches!(verdict(20348, Some(1), &[]), Readiness::Unknown { .. }));
        assert!(matches!(verdict(9600, None, &["KB5006729"]), Readiness::Ready { .. }));
        assert!(matches!(verdict(10240, Some(1), &[]), Readiness::Unknown { ref kb, .. } if kb.is_empty()));
    }

    #[test]
    fn only_acs_era_targets_need_it() {
        assert!(target_needs_acs("14.0.12011"));
        assert!(target_needs_acs("14.0.12737"));
        assert!(!target_needs_acs("14.0.12010"));
        assert!(!target_needs_acs("14.0.2"));
        assert!(!target_needs_acs("14"));
        assert!(!target_needs_acs(""));
    }

    #[test]
    fn the_finding_fails_with_the_kb_to_install() {
        let lacking = finding(Some("14.0.12737"), Some(Ok(facts(19044, Some(1500), &[])))).expect("applies");
        assert_eq!(lacking.status, rollcall_common::proto::CheckStatus::Fail);
        assert!(lacking.message.contains("install KB5011487"), "{}", lacking.message);
        assert!(finding(Some("14.0.11564"), Some(Ok(facts(19044, Some(1500), &[])))).is_none());
        assert!(finding(Some("14.0.12737"), None).is_none(), "not Windows");
        assert!(finding(None, Some(Ok(facts(19044, Some(1500), &[])))).is_none());
        let unreadable = finding(Some("14.0.12737"), Some(Err(anyhow::anyhow!("denied")))).expect("applies");
        assert_eq!(unreadable.status, rollcall_common::proto::CheckStatus::Warn);
    }

    #[test]
    fn kb_numbers_are_read_from_package_names() {
        let found = kb_numbers([
            "Package_for_KB5011487~31bf3856ad364e35~amd64~~19041.1586.1.3",
            "Package_for_RollupFix~31bf3856ad364e35~amd64~~19041.1586.1.7",
            "kb123",
            "Microsoft-Windows-Foo-Package~KB4580325~x",
        ]);
        assert_eq!(found.into_iter().collect::<Vec<_>>(), ["KB4580325", "KB5011487"]);
    }
}
