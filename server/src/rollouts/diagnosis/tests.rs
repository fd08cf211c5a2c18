//! The diagnosis, one rule per test: what may be named, and when.
//!
//! Longer than ~400 lines: tests, one rule each, sharing the fixtures at the
//! top.

use rollcall_common::proto::{self, CheckStatus};

use super::*;

fn check(name: &str, step: u32, status: CheckStatus) -> proto::CheckResult {
    proto::CheckResult {
        name: name.into(),
        runbook_step: step,
        status: status as i32,
        message: format!("{name} said so"),
        ..Default::default()
    }
}

/// Every check of steps 1–6 plus `version`, all passing (version warns:
/// the agent is behind).
fn all_pass() -> Vec<proto::CheckResult> {
    let mut checks: Vec<proto::CheckResult> = RUNBOOK_CHECKS
        .iter()
        .copied()
        .enumerate()
        .map(|(index, name)| check(name, u32::try_from(index).unwrap_or(0) + 1, CheckStatus::Pass))
        .collect();
    checks.push(check("version", 0, CheckStatus::Warn));
    checks
}

fn with(mut checks: Vec<proto::CheckResult>, name: &str, status: CheckStatus) -> Vec<proto::CheckResult> {
    for check in checks.iter_mut().filter(|check| check.name == name) {
        check.status = status as i32;
    }
    checks
}

/// Facts after one recheck at t=1000, the run observed at `observed`.
fn facts<'a>(product: &'a proto::ProductSummary, checks: &'a [proto::CheckResult], observed: i64) -> Facts<'a> {
    Facts {
        product,
        checks,
        checks_observed_at_ms: observed,
        online: true,
        rechecks_sent: 1,
        last_recheck_at_ms: 1000,
        signals: &[],
    }
}

fn cause_of(checks: &[proto::CheckResult]) -> Diagnosis {
    diagnose(&facts(&Default::default(), checks, 2000), &UpdateAgentIndex::new())
}

fn custom(address: &str) -> proto::ProductSummary {
    proto::ProductSummary {
        update_source: "custom".into(),
        source_address: address.into(),
        ..Default::default()
    }
}

#[test]
fn first_failing_step_wins_and_all_are_kept() {
    let checks = [
        check("connectivity", 5, CheckStatus::Fail),
        check("update_permission", 2, CheckStatus::Fail),
        check("license", 1, CheckStatus::Pass),
    ];
    let diagnosis = cause_of(&checks);
    assert_eq!(diagnosis.cause, Cause::UpdatePermission);
    assert_eq!(diagnosis.failing, vec!["update_permission", "connectivity"]);
}

#[test]
fn an_error_is_not_a_cause_it_is_a_probe_error() {
    // The product state file is missing: every check that reads it errors.
    let mut checks = all_pass();
    for name in ["version", "license", "update_permission", "update_source"] {
        checks = with(checks, name, CheckStatus::Error);
    }
    let diagnosis = cause_of(&checks);
    assert_eq!(diagnosis.cause, Cause::ProbeError);
    assert_eq!(diagnosis.cause.runbook_step(), NO_STEP);
    assert_eq!(
        diagnosis.failing,
        vec!["version", "license", "update_permission", "update_source"]
    );
    assert!(
        diagnosis.detail.contains("license: license said so"),
        "{}",
        diagnosis.detail
    );
    assert!(
        diagnosis.detail.contains("version: version said so"),
        "{}",
        diagnosis.detail
    );
}

#[test]
fn a_failing_step_stands_whether_the_error_is_earlier_or_later() {
    let later_error = with(
        with(all_pass(), "update_permission", CheckStatus::Fail),
        "system_requirements",
        CheckStatus::Error,
    );
    assert_eq!(cause_of(&later_error).cause, Cause::UpdatePermission);
    // An error at step 1 says nothing about the license: step 5's failure stands.
    let earlier_error = with(
        with(all_pass(), "license", CheckStatus::Error),
        "connectivity",
        CheckStatus::Fail,
    );
    let diagnosis = cause_of(&earlier_error);
    assert_eq!(diagnosis.cause, Cause::Connectivity);
    assert_eq!(diagnosis.failing, vec!["license", "connectivity"]);
}

#[test]
fn a_result_without_a_status_is_an_error_too() {
    let checks = with(all_pass(), "certificates", CheckStatus::Unspecified);
    let diagnosis = cause_of(&checks);
    assert_eq!(diagnosis.cause, Cause::ProbeError);
    assert!(diagnosis.detail.contains("certificates"));
}

#[test]
fn no_check_results_is_no_data_and_so_is_a_missing_step() {
    let diagnosis = cause_of(&[]);
    assert_eq!(diagnosis.cause, Cause::NoData);
    assert!(diagnosis.failing.is_empty());
    let partial: Vec<proto::CheckResult> = all_pass()
        .into_iter()
        .filter(|check| check.name != "certificates")
        .collect();
    let diagnosis = cause_of(&partial);
    assert_eq!(diagnosis.cause, Cause::NoData);
    assert_eq!(diagnosis.detail, "no result for: certificates");
}

#[test]
fn step_seven_needs_a_recheck_and_an_all_pass_run_observed_after_it() {
    let checks = all_pass();
    let product = proto::ProductSummary::default();
    let index = UpdateAgentIndex::new();
    let fresh = facts(&product, &checks, 1000);
    assert_eq!(diagnose(&fresh, &index).cause, Cause::Unknown);
    assert_eq!(Cause::Unknown.runbook_step(), 7);
    let stale = facts(&product, &checks, 999);
    assert_eq!(diagnose(&stale, &index).cause, Cause::AwaitingRecheck);
    let never_rechecked = Facts {
        rechecks_sent: 0,
        last_recheck_at_ms: 0,
        ..facts(&product, &checks, 5000)
    };
    assert_eq!(diagnose(&never_rechecked, &index).cause, Cause::AwaitingRecheck);
    // A failure on stale facts still names its step.
    let stale_failure = with(all_pass(), "license", CheckStatus::Fail);
    assert_eq!(
        diagnose(&facts(&product, &stale_failure, 10), &index).cause,
        Cause::License
    );
}

#[test]
fn a_blocking_update_agent_is_the_cause_unless_an_earlier_step_fails() {
    let mut index = UpdateAgentIndex::new();
    index.insert(
        "ua:8080",
        UpdateAgentView {
            id: "ua".into(),
            at_target: false,
            program_and_hotfix: true,
            online: true,
        },
    );
    let product = custom("ua:8080");
    let diagnosis = diagnose(&facts(&product, &[], 2000), &index);
    assert_eq!(diagnosis.cause, Cause::UpdateAgent);
    assert_eq!(diagnosis.update_agent.as_deref(), Some("ua"));
    let license = with(all_pass(), "license", CheckStatus::Fail);
    let diagnosis = diagnose(&facts(&product, &license, 2000), &index);
    assert_eq!(diagnosis.cause, Cause::License);
    // A healthy update agent is linked but blames nothing.
    index.insert(
        "ua:8080",
        UpdateAgentView {
            id: "ua".into(),
            at_target: true,
            program_and_hotfix: true,
            online: true,
        },
    );
    let checks = all_pass();
    let diagnosis = diagnose(&facts(&product, &checks, 2000), &index);
    assert_eq!(diagnosis.cause, Cause::Unknown);
    assert_eq!(diagnosis.update_agent.as_deref(), Some("ua"));
}

#[test]
fn offline_ranks_at_step_five_and_beats_no_data() {
    let product = proto::ProductSummary::default();
    let index = UpdateAgentIndex::new();
    let checks = with(all_pass(), "system_requirements", CheckStatus::Fail);
    let offline = Facts {
        online: false,
        ..facts(&product, &checks, 2000)
    };
    assert_eq!(diagnose(&offline, &index).cause, Cause::Offline);
    let silent = Facts {
        online: false,
        ..facts(&product, &[], 0)
    };
    assert_eq!(diagnose(&silent, &index).cause, Cause::Offline);
}

#[test]
fn the_report_detail_names_erroring_and_missing_checks_only() {
    let checks = with(
        with(all_pass(), "license", CheckStatus::Error),
        "connectivity",
        CheckStatus::Error,
    );
    assert_eq!(
        detail_of(Cause::ProbeError, &checks),
        "license: license said so; connectivity: connectivity said so"
    );
    assert_eq!(detail_of(Cause::NoData, &[]), "the probe has reported no check results");
    assert_eq!(detail_of(Cause::License, &checks), "");
}

#[test]
fn a_contested_update_agent_address_names_the_claimants_and_blames_none() {
    let mut index = UpdateAgentIndex::new();
    for (id, address) in [("ua-b", "http://ua-1.example:8080/"), ("ua-a", "UA-1.example:8080")] {
        index.insert(
            address,
            UpdateAgentView {
                id: id.into(),
                at_target: false,
                program_and_hotfix: false,
                online: true,
            },
        );
    }
    let product = custom("ua-1.example:8080");
    let diagnosis = diagnose(&facts(&product, &all_pass(), 2000), &index);
    assert_eq!(diagnosis.cause, Cause::UpdateAgentConflict);
    assert_eq!(diagnosis.update_agent, None);
    assert_eq!(
        diagnosis.detail,
        "2 agents claim to be the update agent at ua-1.example:8080: ua-a, ua-b"
    );
    assert_eq!(claimants_of(&product, &index), ["ua-a", "ua-b"]);
    // An earlier failing step still comes first.
    let license = with(all_pass(), "license", CheckStatus::Fail);
    assert_eq!(diagnose(&facts(&product, &license, 2000), &index).cause, Cause::License);
}

#[test]
fn a_client_is_linked_to_its_update_agent_however_the_address_is_spelt() {
    let mut index = UpdateAgentIndex::new();
    index.insert(
        "ua-1.example:8080",
        UpdateAgentView {
            id: "ua".into(),
            at_target: false,
            program_and_hotfix: true,
            online: true,
        },
    );
    let product = custom("HTTP://UA-1.Example:8080/");
    let diagnosis = diagnose(&facts(&product, &all_pass(), 2000), &index);
    assert_eq!(diagnosis.cause, Cause::UpdateAgent);
    assert_eq!(diagnosis.update_agent.as_deref(), Some("ua"));
}

// === signals (issue 25) ===

mod signals {
    use std::collections::BTreeMap;

    use rollcall_common::policy::Policy;

    use super::*;
    use crate::rollouts::diagnosis::signals::{SignalContext, escaped, is_activeupdate, signals};

    const DAY_MS: i64 = 86_400_000;
    /// 2026-12-08T00:00:00Z.
    const NOW_MS: i64 = 1_796_688_000_000;

    fn context() -> SignalContext {
        SignalContext {
            now_ms: NOW_MS,
            target: "14.0.12737".into(),
            pattern_window_ms: 7 * DAY_MS,
            ..Default::default()
        }
    }

    /// An Apex One agent behind the target, its fields named as the mapping reads them.
    fn behind() -> proto::ProductSummary {
        proto::ProductSummary {
            version: "14.0.11564".into(),
            field_sources: [
                ("version".to_string(), r"Misc.\ProgramVer".to_string()),
                ("pattern.date".to_string(), r"Misc.\PatternDate".to_string()),
                ("update.last_at".to_string(), r"UpdateInfo\LastUpdate".to_string()),
                ("update.last_from".to_string(), r"Misc.\UpdateFrom".to_string()),
                ("server.certificate_sha256".to_string(), "OfcNTCer.dat".to_string()),
                ("upgrade.refused".to_string(), r"Temp\upgrade_20261201.log".to_string()),
            ]
            .into(),
            ..Default::default()
        }
    }

    fn policy(text: &str) -> Policy {
        Policy::from_toml_str(text).expect("policy")
    }

    fn read(product: &proto::ProductSummary, policy: &Policy, context: &SignalContext) -> Vec<Signal> {
        signals(product, &BTreeMap::new(), policy, context)
    }

    /// The checks of a Windows agent whose mapping has no update.permission.
    fn permission_unknown() -> Vec<proto::CheckResult> {
        with(all_pass(), "update_permission", CheckStatus::Error)
    }

    fn diagnose_with(product: &proto::ProductSummary, checks: &[proto::CheckResult], found: &[Signal]) -> Diagnosis {
        let facts = Facts {
            signals: found,
            ..facts(product, checks, 2000)
        };
        diagnose(&facts, &UpdateAgentIndex::new())
    }

    #[test]
    fn recent_patterns_without_the_program_infer_a_pattern_only_permission() {
        let product = proto::ProductSummary {
            pattern_date: "20261206".into(),
            ..behind()
        };
        let found = read(&product, &Policy::default(), &context());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, SignalKind::PatternsWithoutProgram);
        assert!(found[0].inferred);
        assert!(
            found[0].evidence.contains(&r"Misc.\PatternDate = 20261206".to_string()),
            "{:?}",
            found[0].evidence
        );
        assert!(
            found[0]
                .evidence
                .contains(&r"Misc.\ProgramVer = 14.0.11564, target 14.0.12737".to_string())
        );
        let diagnosis = diagnose_with(&product, &permission_unknown(), &found);
        assert_eq!(diagnosis.cause, Cause::UpdatePermission);
        assert!(diagnosis.inferred);
        assert_eq!(diagnosis.signal, Some(SignalKind::PatternsWithoutProgram));
        assert!(diagnosis.evidence.iter().any(|item| item.contains("PatternDate")));
        // The last update's time alone is enough, named with its time.
        let by_time = proto::ProductSummary {
            update_last_at: (NOW_MS - DAY_MS) / 1000,
            ..behind()
        };
        let found = read(&by_time, &Policy::default(), &context());
        assert!(
            found[0].evidence[0].starts_with(r"UpdateInfo\LastUpdate = 1796601600 (2026-12-07T"),
            "{:?}",
            found
        );
    }

    #[test]
    fn old_patterns_or_a_declared_privilege_infer_nothing() {
        let old = proto::ProductSummary {
            pattern_date: "20261130".into(),
            ..behind()
        };
        assert!(
            read(&old, &Policy::default(), &context()).is_empty(),
            "8 days ago is outside 7 days"
        );
        let window = policy("[diagnosis]\npattern_window = \"10d\"\n");
        let wide = SignalContext::new(&window, "14.0.12737", NOW_MS, []);
        assert_eq!(read(&old, &window, &wide).len(), 1, "the policy's window counts");
        let recent = proto::ProductSummary {
            pattern_date: "20261207".into(),
            ..behind()
        };
        // Declared by the endpoint, or by [[server_facts]]: the check decides.
        let declared = proto::ProductSummary {
            update_permission: "all_components".into(),
            ..recent.clone()
        };
        assert!(read(&declared, &Policy::default(), &context()).is_empty());
        let stated = policy("[[server_facts]]\nupdate_permission = \"all_components\"\n");
        assert!(read(&recent, &stated, &context()).is_empty());
        // A declared privilege that fails its check: update_permission, read, not inferred.
        let failing = with(all_pass(), "update_permission", CheckStatus::Fail);
        let diagnosis = diagnose_with(&declared, &failing, &[]);
        assert_eq!((diagnosis.cause, diagnosis.inferred), (Cause::UpdatePermission, false));
        assert_eq!(diagnosis.evidence, ["update_permission: update_permission said so"]);
    }

    #[test]
    fn an_activeupdate_source_is_step_three_and_explains_the_patterns() {
        let product = proto::ProductSummary {
            pattern_date: "20261207".into(),
            update_last_from: "https://osce14-p.activeupdate.trendmicro.com/activeupdate".into(),
            ..behind()
        };
        let found = read(&product, &Policy::default(), &context());
        assert_eq!(
            found.iter().map(|signal| signal.kind).collect::<Vec<_>>(),
            [SignalKind::ActiveUpdateSource]
        );
        let diagnosis = diagnose_with(&product, &permission_unknown(), &found);
        assert_eq!((diagnosis.cause, diagnosis.inferred), (Cause::UpdateSource, false));
        assert_eq!(
            diagnosis.evidence[0],
            r"Misc.\UpdateFrom = https://osce14-p.activeupdate.trendmicro.com/activeupdate"
        );
        for (address, expected) in [
            ("http://activeupdate.trendmicro.com/activeupdate", true),
            ("OSCE14-P.ActiveUpdate.TrendMicro.com:443", true),
            ("http://apex.example:8080/officescan", false),
            ("http://activeupdate.trendmicro.com.evil.example/", false),
            ("", false),
        ] {
            assert_eq!(is_activeupdate(address), expected, "{address}");
        }
    }

    #[test]
    fn a_refused_upgrade_is_step_six_with_the_escaped_line() {
        let product = proto::ProductSummary {
            upgrade_refused: "[ERROR] \"Client environment is not qualified to do upgrade or hotfix\"\u{7}".into(),
            ..behind()
        };
        let found = read(&product, &Policy::default(), &context());
        let diagnosis = diagnose_with(&product, &permission_unknown(), &found);
        assert_eq!(diagnosis.cause, Cause::SystemRequirements);
        assert_eq!(
            diagnosis.evidence,
            [
                r#"Temp\upgrade_20261201.log: "[ERROR] \"Client environment is not qualified to do upgrade or hotfix\"\u{7}""#
            ]
        );
        assert_eq!(escaped(&"x".repeat(400), 300).chars().count(), 301);
    }

    #[test]
    fn a_server_certificate_apart_from_the_majority_or_the_policy_is_connectivity() {
        let majority = "a".repeat(64);
        let odd = "b".repeat(64);
        let fleet: Vec<proto::ProductSummary> = [&majority, &majority, &odd]
            .into_iter()
            .map(|hash| proto::ProductSummary {
                server_certificate_sha256: hash.clone(),
                ..Default::default()
            })
            .collect();
        let context = SignalContext::new(&Policy::default(), "14.0.12737", NOW_MS, &fleet);
        assert_eq!(context.fleet_certificate, Some((majority.clone(), 2, 3)));
        let product = proto::ProductSummary {
            server_certificate_sha256: odd.clone(),
            ..behind()
        };
        let found = read(&product, &Policy::default(), &context);
        let diagnosis = diagnose_with(&product, &all_pass(), &found);
        assert_eq!(diagnosis.cause, Cause::Connectivity);
        assert_eq!(
            diagnosis.evidence,
            [
                format!("OfcNTCer.dat SHA-256 = {odd}"),
                format!("fleet majority (2 of 3 agents) = {majority}")
            ]
        );
        let agreeing = proto::ProductSummary {
            server_certificate_sha256: majority.clone(),
            ..behind()
        };
        assert!(read(&agreeing, &Policy::default(), &context).is_empty());
        // The policy's hash wins over the majority.
        let pinned = policy(&format!(
            "[diagnosis]\nserver_certificate_sha256 = \"{}\"\n",
            odd.to_uppercase()
        ));
        let context = SignalContext::new(&pinned, "14.0.12737", NOW_MS, &fleet);
        let found = read(&agreeing, &pinned, &context);
        assert_eq!(
            found[0].evidence[1],
            format!("policy diagnosis.server_certificate_sha256 = {odd}")
        );
        // No strict majority: nothing to compare with.
        let split = SignalContext::new(&Policy::default(), "t", NOW_MS, &fleet[1..]);
        assert_eq!(split.fleet_certificate, None);
    }

    #[test]
    fn a_read_cause_beats_the_inference() {
        let product = proto::ProductSummary {
            pattern_date: "20261207".into(),
            upgrade_refused: "Client environment is not qualified to do upgrade or hotfix".into(),
            ..behind()
        };
        let found = read(&product, &Policy::default(), &context());
        assert_eq!(found.len(), 2);
        let diagnosis = diagnose_with(&product, &permission_unknown(), &found);
        assert_eq!(
            (diagnosis.cause, diagnosis.inferred),
            (Cause::SystemRequirements, false)
        );
        // Without anything read, the erroring check alone is a probe error.
        let diagnosis = diagnose_with(&behind(), &permission_unknown(), &[]);
        assert_eq!(diagnosis.cause, Cause::ProbeError);
    }
}

#[test]
fn an_update_agent_without_program_and_hotfix_has_its_own_cause_not_update_source() {
    let product = proto::ProductSummary {
        role: proto::Role::UpdateAgent as i32,
        update_agent_address: "ua:8080".into(),
        program_and_hotfix: false,
        ..Default::default()
    };
    let mut checks = with(all_pass(), "update_source", CheckStatus::Fail);
    for check in checks.iter_mut().filter(|check| check.name == "update_source") {
        check.code = "update-agent-lacks-program".into();
    }
    let diagnosis = diagnose(&facts(&product, &checks, 2000), &UpdateAgentIndex::new());
    assert_eq!(diagnosis.cause, Cause::UpdateAgentProgram);
    assert_eq!(diagnosis.failing, vec!["update_source"]);
    // An update source that is merely not the intended one stays update_source.
    for check in checks.iter_mut().filter(|check| check.name == "update_source") {
        check.code = "update-source-unexpected".into();
    }
    let diagnosis = diagnose(&facts(&product, &checks, 2000), &UpdateAgentIndex::new());
    assert_eq!(diagnosis.cause, Cause::UpdateSource);
    // An earlier step still wins.
    let checks = with(checks, "license", CheckStatus::Fail);
    let diagnosis = diagnose(&facts(&product, &checks, 2000), &UpdateAgentIndex::new());
    assert_eq!(diagnosis.cause, Cause::License);
}

#[test]
fn an_unreachable_update_source_behind_an_offline_update_agent_is_a_consequence_not_a_fault() {
    let mut index = UpdateAgentIndex::new();
    let offline = UpdateAgentView {
        id: "ua".into(),
        at_target: true,
        program_and_hotfix: true,
        online: false,
    };
    index.insert("ua:8080", offline.clone());
    let product = custom("ua:8080");
    let mut checks = with(all_pass(), "connectivity", CheckStatus::Fail);
    for check in checks.iter_mut().filter(|check| check.name == "connectivity") {
        check.code = "connectivity-unreachable".into();
        check.params = [("service".to_string(), "update_source".to_string())].into();
    }
    let diagnosis = diagnose(&facts(&product, &checks, 2000), &index);
    assert_eq!(diagnosis.cause, Cause::UpdateAgent);
    assert!(diagnosis.failing.is_empty(), "{:?}", diagnosis.failing);
    assert!(diagnosis.detail.contains("offline"), "{}", diagnosis.detail);
    assert_eq!(consequences(&checks, Some(&offline)), vec!["connectivity"]);
    // The product server unreachable as well: a fault of the client's own.
    for check in checks.iter_mut().filter(|check| check.name == "connectivity") {
        check.code = "connectivity-unreachable,connectivity-unreachable".into();
        check.params = [
            ("0.service".to_string(), "server".to_string()),
            ("1.service".to_string(), "update_source".to_string()),
        ]
        .into();
    }
    let diagnosis = diagnose(&facts(&product, &checks, 2000), &index);
    assert_eq!(diagnosis.cause, Cause::UpdateAgent);
    assert_eq!(diagnosis.failing, vec!["connectivity"]);
    // An online update agent (lacking the program) makes no network fault.
    let online = UpdateAgentView {
        online: true,
        program_and_hotfix: false,
        ..offline
    };
    assert!(consequences(&checks, Some(&online)).is_empty());
    assert_eq!(blocking_code(&online), Some("lacks-program"));
}
