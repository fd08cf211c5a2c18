//! A report on an agent's stream: what ingest stores.

use rollcall_common::proto;

use super::facts::{host, product};
use super::numbers::{MAX_DROPPED, MAX_RUNBOOK_STEP, MAX_SEQ, at_most, known, time_ms};
use super::{MAX_CHECKS, MAX_EVIDENCE, Refused, refuse, short, text};

/// A report that passed the edge checks: seq from 1, at most
/// [`MAX_CHECKS`] checks of at most [`MAX_EVIDENCE`] evidence entries and
/// message parameters each, every string bounded. Ingest takes only this,
/// so an unchecked report cannot reach the store.
#[derive(Debug, Clone)]
pub struct ValidReport(proto::Report);

impl ValidReport {
    pub fn into_inner(self) -> proto::Report {
        self.0
    }
}

impl std::ops::Deref for ValidReport {
    type Target = proto::Report;

    fn deref(&self) -> &proto::Report {
        &self.0
    }
}

impl TryFrom<proto::Report> for ValidReport {
    type Error = Refused;

    fn try_from(mut report: proto::Report) -> Result<Self, Refused> {
        if report.seq == 0 {
            return refuse("report seq must start at 1");
        }
        at_most("report seq", report.seq, MAX_SEQ)?;
        at_most("dropped_before", report.dropped_before, MAX_DROPPED)?;
        at_most("dead_lettered_before", report.dead_lettered_before, MAX_DROPPED)?;
        time_ms("observed_at_ms", report.observed_at_ms)?;
        time_ms("sent_at_ms", report.sent_at_ms)?;
        known::<proto::ReportKind>("report kind", report.kind)?;
        short("command_id", &report.command_id)?;
        if report.checks.len() > MAX_CHECKS {
            return refuse(format!("more than {MAX_CHECKS} checks in one report"));
        }
        for check in &mut report.checks {
            check_result(check)?;
        }
        if let Some(product_summary) = &mut report.product {
            product(product_summary)?;
        }
        if let Some(host_facts) = &report.host {
            host(host_facts)?;
        }
        if let Some(outcome) = &mut report.update_now {
            text("update_now.output_tail", &mut outcome.output_tail)?;
            text("update_now.error", &mut outcome.error)?;
        }
        Ok(ValidReport(report))
    }
}

fn check_result(check: &mut proto::CheckResult) -> Result<(), Refused> {
    short("check.name", &check.name)?;
    at_most(
        "check.runbook_step",
        u64::from(check.runbook_step),
        u64::from(MAX_RUNBOOK_STEP),
    )?;
    known::<proto::CheckStatus>("check.status", check.status)?;
    text("check.message", &mut check.message)?;
    text("check.remediation", &mut check.remediation)?;
    if check.evidence.len() > MAX_EVIDENCE {
        return refuse(format!(
            "check {} has more than {MAX_EVIDENCE} evidence entries",
            check.name
        ));
    }
    for evidence in &mut check.evidence {
        short("evidence.key", &evidence.key)?;
        text("evidence.value", &mut evidence.value)?;
    }
    short("check.code", &check.code)?;
    if check.params.len() > MAX_EVIDENCE {
        return refuse(format!(
            "check {} has more than {MAX_EVIDENCE} message parameters",
            check.name
        ));
    }
    for (name, value) in &mut check.params {
        short("check.params key", name)?;
        text("check.params value", value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::inbound::{MAX_SHORT, MAX_TEXT};

    fn report(checks: Vec<proto::CheckResult>) -> proto::Report {
        proto::Report {
            seq: 1,
            checks,
            ..Default::default()
        }
    }

    fn check() -> proto::CheckResult {
        proto::CheckResult {
            name: "version".into(),
            ..Default::default()
        }
    }

    /// Sets one string field of a check, for the per-field limit tests.
    type SetField = fn(&mut proto::CheckResult, String);

    fn refused(report: proto::Report) -> Option<String> {
        ValidReport::try_from(report).err().map(|refused| refused.0)
    }

    /// The probe's bounding and this edge agree: whatever strings and
    /// counts a product hands the probe, the bounded report passes.
    #[test]
    fn a_report_bounded_by_the_probe_always_passes_the_edge() {
        let long = "x\u{1b}]52;c;".repeat(2000);
        let check = proto::CheckResult {
            name: long.clone(),
            code: long.clone(),
            message: long.clone(),
            remediation: long.clone(),
            evidence: vec![
                proto::Evidence {
                    key: long.clone(),
                    value: long.clone(),
                };
                MAX_EVIDENCE * 2
            ],
            params: (0..MAX_EVIDENCE * 2)
                .map(|i| (format!("{i}{long}"), long.clone()))
                .chain([("p\u{1b}".to_string(), "v".to_string())])
                .collect(),
            ..Default::default()
        };
        let mut hostile = report(vec![check; MAX_CHECKS * 2]);
        hostile.command_id = long.clone();
        hostile.product = Some(proto::ProductSummary {
            version: long.clone(),
            server_address: long.clone(),
            read_error: long.clone(),
            pattern_date: long.clone(),
            upgrade_refused: long.clone(),
            adapter: long.clone(),
            field_sources: (0..100).map(|i| (format!("{i}{long}"), long.clone())).collect(),
            ..Default::default()
        });
        hostile.host = Some(proto::HostFacts {
            os_version: long.clone(),
            ..Default::default()
        });
        assert!(ValidReport::try_from(hostile.clone()).is_err());
        rollcall_common::limits::bound_report(&mut hostile);
        assert_eq!(refused(hostile), None);
        // One parameter whose name holds an escape, nothing else over.
        let mut quiet = report(vec![proto::CheckResult {
            name: "license".into(),
            params: [("p\u{1b}".to_string(), "v".to_string())].into(),
            ..Default::default()
        }]);
        assert!(ValidReport::try_from(quiet.clone()).is_err());
        rollcall_common::limits::bound_report(&mut quiet);
        assert_eq!(refused(quiet), None);
    }

    #[test]
    fn seq_zero_is_refused() {
        let mut zero = report(vec![]);
        zero.seq = 0;
        assert_eq!(refused(zero).as_deref(), Some("report seq must start at 1"));
        assert!(ValidReport::try_from(report(vec![])).is_ok());
    }

    #[test]
    fn command_id_accepts_the_limit_and_refuses_one_over() {
        let mut at_limit = report(vec![]);
        at_limit.command_id = "c".repeat(MAX_SHORT);
        assert!(ValidReport::try_from(at_limit).is_ok());
        let mut over = report(vec![]);
        over.command_id = "c".repeat(MAX_SHORT + 1);
        assert_eq!(
            refused(over),
            Some(format!("command_id is longer than {MAX_SHORT} bytes"))
        );
    }

    #[test]
    fn check_count_accepts_the_limit_and_refuses_one_over() {
        assert!(ValidReport::try_from(report(vec![check(); MAX_CHECKS])).is_ok());
        assert_eq!(
            refused(report(vec![check(); MAX_CHECKS + 1])),
            Some(format!("more than {MAX_CHECKS} checks in one report"))
        );
    }

    #[test]
    fn evidence_count_accepts_the_limit_and_refuses_one_over() {
        let mut at_limit = check();
        at_limit.evidence = vec![proto::Evidence::default(); MAX_EVIDENCE];
        assert!(ValidReport::try_from(report(vec![at_limit])).is_ok());
        let mut over = check();
        over.evidence = vec![proto::Evidence::default(); MAX_EVIDENCE + 1];
        assert_eq!(
            refused(report(vec![over])),
            Some(format!("check version has more than {MAX_EVIDENCE} evidence entries"))
        );
    }

    #[test]
    fn param_count_accepts_the_limit_and_refuses_one_over() {
        let params = |count: usize| (0..count).map(|i| (format!("p{i}"), "v".to_string())).collect();
        let mut at_limit = check();
        at_limit.params = params(MAX_EVIDENCE);
        assert!(ValidReport::try_from(report(vec![at_limit])).is_ok());
        let mut over = check();
        over.params = params(MAX_EVIDENCE + 1);
        assert_eq!(
            refused(report(vec![over])),
            Some(format!("check version has more than {MAX_EVIDENCE} message parameters"))
        );
    }

    #[test]
    fn check_strings_accept_the_limit_and_refuse_one_over() {
        let fields: [(&str, usize, SetField); 8] = [
            ("check.name", MAX_SHORT, |c, v| c.name = v),
            ("check.code", MAX_SHORT, |c, v| c.code = v),
            ("evidence.key", MAX_SHORT, |c, v| {
                c.evidence = vec![proto::Evidence {
                    key: v,
                    value: String::new(),
                }]
            }),
            ("check.params key", MAX_SHORT, |c, v| {
                c.params = [(v, String::new())].into()
            }),
            ("check.message", MAX_TEXT, |c, v| c.message = v),
            ("check.remediation", MAX_TEXT, |c, v| c.remediation = v),
            ("evidence.value", MAX_TEXT, |c, v| {
                c.evidence = vec![proto::Evidence {
                    key: String::new(),
                    value: v,
                }]
            }),
            ("check.params value", MAX_TEXT, |c, v| {
                c.params = [("p".to_string(), v)].into()
            }),
        ];
        for (field, limit, set) in fields {
            let mut at_limit = check();
            set(&mut at_limit, "x".repeat(limit));
            assert!(ValidReport::try_from(report(vec![at_limit])).is_ok(), "{field}");
            let mut over = check();
            set(&mut over, "x".repeat(limit + 1));
            assert_eq!(
                refused(report(vec![over])),
                Some(format!("{field} is longer than {limit} bytes"))
            );
        }
    }

    #[test]
    fn update_now_output_accepts_the_limit_and_refuses_one_over() {
        let outcome = |tail: usize, error: usize| proto::UpdateNowOutcome {
            output_tail: "t".repeat(tail),
            error: "e".repeat(error),
            ..Default::default()
        };
        let mut at_limit = report(vec![]);
        at_limit.update_now = Some(outcome(MAX_TEXT, MAX_TEXT));
        assert!(ValidReport::try_from(at_limit).is_ok());
        let mut tail = report(vec![]);
        tail.update_now = Some(outcome(MAX_TEXT + 1, 0));
        assert_eq!(
            refused(tail),
            Some(format!("update_now.output_tail is longer than {MAX_TEXT} bytes"))
        );
        let mut error = report(vec![]);
        error.update_now = Some(outcome(0, MAX_TEXT + 1));
        assert_eq!(
            refused(error),
            Some(format!("update_now.error is longer than {MAX_TEXT} bytes"))
        );
    }

    #[test]
    fn product_and_host_in_a_report_are_checked() {
        let mut product = report(vec![]);
        product.product = Some(proto::ProductSummary {
            update_source: "s".repeat(MAX_SHORT + 1),
            ..Default::default()
        });
        assert_eq!(
            refused(product),
            Some(format!("product.update_source is longer than {MAX_SHORT} bytes"))
        );
        let mut host = report(vec![]);
        host.host = Some(proto::HostFacts {
            os_version: "o".repeat(MAX_SHORT + 1),
            ..Default::default()
        });
        assert_eq!(
            refused(host),
            Some(format!("host.os_version is longer than {MAX_SHORT} bytes"))
        );
    }
}
