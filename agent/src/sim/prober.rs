//! Synthetic endpoints for the fleet simulator: a [`Prober`] that returns a
//! full run of the seven runbook checks without touching the host, its
//! product version and failing cause chosen by the agent's index so a
//! simulated fleet shows every cause in realistic proportions.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use rollcall_common::policy::Policy;
use rollcall_common::proto::{CheckResult, CheckStatus, Evidence, HostFacts, ProductSummary, Role, UpdateNowOutcome};

use crate::checks::{CHECK_NAMES, CheckRun};
use crate::prober::Prober;

/// The version most simulated endpoints are stuck on.
pub const FROM_VERSION: &str = "14.0.12737";
/// The version a tenth of the fleet already runs.
pub const TARGET_VERSION: &str = "14.0.13000";

/// Counters shared by every simulated agent of one process.
#[derive(Debug, Default)]
pub struct SimCounters {
    /// Check runs made (each becomes one report of seven check results).
    pub checks: AtomicU64,
}

/// One simulated endpoint.
pub struct SimProber {
    index: u64,
    counters: Arc<SimCounters>,
}

impl SimProber {
    pub fn new(index: u64, counters: Arc<SimCounters>) -> Self {
        SimProber { index, counters }
    }
}

/// The check (by position in [`CHECK_NAMES`]) that fails for this agent, if
/// any: most agents pass everything but the version, a few fail one step.
fn failing_check(index: u64) -> Option<usize> {
    match index % 20 {
        1 => Some(1), // license
        2 => Some(2), // update_permission
        3 => Some(3), // update_source
        4 => Some(4), // certificates
        5 => Some(5), // connectivity
        6 => Some(6), // system_requirements
        _ => None,
    }
}

/// A synthetic run for agent `index`, as the real checks would shape it.
pub fn synthetic_run(index: u64, target_version: Option<&str>) -> CheckRun {
    let version = if index.is_multiple_of(10) {
        TARGET_VERSION
    } else {
        FROM_VERSION
    };
    let failing = failing_check(index);
    let behind =
        target_version.is_some_and(|target| !rollcall_common::version::is_at_least(version, target).unwrap_or(true));
    let checks = CHECK_NAMES
        .iter()
        .enumerate()
        .map(|(position, name)| {
            let failed = if position == 0 {
                behind
            } else {
                failing == Some(position)
            };
            CheckResult {
                name: (*name).to_string(),
                runbook_step: u32::try_from(position).unwrap_or(0),
                status: if failed { CheckStatus::Fail } else { CheckStatus::Pass } as i32,
                message: if failed {
                    format!("simulated failure of {name}")
                } else {
                    format!("{name} ok")
                },
                evidence: vec![
                    Evidence {
                        key: "simulated".into(),
                        value: "true".into(),
                    },
                    Evidence {
                        key: "agent_index".into(),
                        value: index.to_string(),
                    },
                ],
                remediation: if failed {
                    "see the runbook step of this check".into()
                } else {
                    String::new()
                },
                duration_ms: 1,
                // Simulated: no catalogue code, the English message stands.
                ..Default::default()
            }
        })
        .collect();
    CheckRun {
        product: ProductSummary {
            version: version.to_string(),
            role: Role::Endpoint as i32,
            update_source: "standard".into(),
            update_permission: "all_components".into(),
            license_expires: "2099-03-31".into(),
            server_address: "product.example:443".into(),
            ..ProductSummary::default()
        },
        host: HostFacts {
            os_id: "debian".into(),
            os_version: "12".into(),
            arch: "x86_64".into(),
            memory_mb: 8192,
            free_disk_mb: 20_000,
            ..Default::default()
        },
        checks,
    }
}

#[async_trait]
impl Prober for SimProber {
    async fn check(&self, _policy: Arc<Policy>, target_version: Option<String>) -> CheckRun {
        self.counters.checks.fetch_add(1, Ordering::Relaxed);
        synthetic_run(self.index, target_version.as_deref())
    }

    async fn update_now(&self) -> UpdateNowOutcome {
        UpdateNowOutcome::default()
    }

    fn update_allowed(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_has_seven_checks_in_runbook_order() {
        let run = synthetic_run(3, Some(TARGET_VERSION));
        let names: Vec<&str> = run.checks.iter().map(|check| check.name.as_str()).collect();
        assert_eq!(names, CHECK_NAMES.to_vec());
        assert_eq!(run.checks[0].status, CheckStatus::Fail as i32, "behind the target");
        assert_eq!(
            run.checks[3].status,
            CheckStatus::Fail as i32,
            "index 3 fails update_source"
        );
        assert_eq!(
            synthetic_run(10, Some(TARGET_VERSION)).checks[0].status,
            CheckStatus::Pass as i32
        );
    }
}
