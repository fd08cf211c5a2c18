//! The step-8 report as Markdown, in the chosen language.

use std::fmt::Write;

use super::Report;
use crate::cause::{Cause, NO_STEP};
use crate::check_text;
use crate::i18n::Catalog;

/// Escapes text from agents so it cannot break the Markdown structure.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            // Terminal escapes written out: the report is read in terminals.
            c if crate::printable::is_steering(c) => out.extend(c.escape_unicode()),
            _ => out.push(c),
        }
    }
    out
}

/// One check of a straggler, with its evidence, indented by `indent`.
fn write_check(out: &mut String, catalog: &Catalog, check: &crate::report::FailingCheck, indent: &str) {
    let _ = writeln!(
        out,
        "{indent}- **{}** ({}): {}",
        crate::words::check(catalog, &check.name),
        crate::words::status_word(catalog, &check.status),
        check_text::message(catalog, &check.code, &check.params, &check.message, &escape)
    );
    if !check.evidence.is_empty() {
        // Evidence is data (values as the probe read them), quoted as code;
        // in Japanese the key and the probe's fixed phrases are said in
        // words and only the values read stay code (English keeps `key=value`).
        let evidence: Vec<String> = check
            .evidence
            .iter()
            .map(|(k, v)| match catalog.lang() {
                crate::i18n::Lang::En => format!("`{}={}`", check_text::code_safe(k), check_text::code_safe(v)),
                crate::i18n::Lang::Ja => {
                    let (key, phrase) = crate::words::evidence(catalog, k, v);
                    let value = phrase.map_or_else(|| format!("`{}`", check_text::code_safe(v)), |text| escape(&text));
                    format!("{}: {value}", escape(&key))
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "{indent}  - {}: {}",
            catalog.tr("report-evidence"),
            evidence.join("; ")
        );
    }
}

/// The heading of a runbook step; causes that name no step say so.
fn step_text(catalog: &Catalog, step: u32) -> String {
    if step == NO_STEP {
        catalog.tr("step-none")
    } else {
        catalog.tr(&format!("step-{step}"))
    }
}

/// A length of time in the reader's units (`1h59m59s`, `1時間59分59秒`),
/// to the second; one token.
fn span(catalog: &Catalog, ms: i64) -> String {
    crate::locale_fmt::duration(catalog.lang(), ms)
}

/// A moment as the reader writes dates (RFC 3339 in English).
fn datetime(catalog: &Catalog, rfc3339: &str) -> String {
    crate::locale_fmt::datetime_text(catalog.lang(), rfc3339)
}

fn cause_text(catalog: &Catalog, cause: &str) -> String {
    if Cause::from_code(cause).is_some() {
        format!("{} (`{cause}`)", catalog.tr(&format!("cause-{cause}")))
    } else {
        escape(cause)
    }
}

pub fn render(report: &Report, catalog: &Catalog) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", catalog.tr("report-title"));
    let _ = writeln!(
        out,
        "{}  \n{}\n",
        catalog.tr_args(
            "report-rollout",
            &[
                ("id", report.rollout.id.clone()),
                ("target", report.rollout.target.clone()),
                ("started", datetime(catalog, &report.rollout.started_at))
            ]
        ),
        catalog.tr_args("report-generated", &[("at", datetime(catalog, &report.generated_at))])
    );

    let _ = writeln!(out, "## {}\n", catalog.tr("report-affected-heading"));
    let _ = writeln!(
        out,
        "{}\n",
        catalog.tr_args(
            "report-affected",
            &[
                ("count", report.affected.count.to_string()),
                ("total", report.affected.total.to_string())
            ]
        )
    );
    if let Some(roster) = &report.roster {
        let _ = writeln!(
            out,
            "{}\n",
            catalog.tr_args(
                "report-roster",
                &[
                    ("count", (roster.behind + roster.no_probe).to_string()),
                    ("listed", roster.listed.to_string()),
                    ("behind", roster.behind.to_string()),
                    ("no_probe", roster.no_probe.to_string()),
                    ("completed", roster.completed.to_string()),
                    ("probed", roster.probed.to_string()),
                    ("unlisted", roster.unlisted_probes.to_string()),
                    ("source", escape(&roster.source)),
                    (
                        "age",
                        span(catalog, i64::try_from(roster.age_s).unwrap_or(i64::MAX / 1000) * 1000)
                    ),
                ]
            )
        );
    }
    if let Some(cause) = &report.fleet_cause {
        let _ = writeln!(
            out,
            "**{}**\n",
            catalog.tr_args("report-fleet-cause", &[("cause", cause_text(catalog, cause))])
        );
    }
    if !report.by_cause.is_empty() {
        let mut causes: Vec<_> = report.by_cause.iter().collect();
        causes.sort_by_key(|(cause, _)| Cause::rank(cause));
        for (cause, count) in causes {
            let step = Cause::step_of_code(cause);
            let _ = writeln!(
                out,
                "- {} — {} ({count})",
                step_text(catalog, step),
                cause_text(catalog, cause)
            );
        }
        out.push('\n');
    }
    if !report.affected_by_label.is_empty() {
        let _ = writeln!(out, "### {}\n", catalog.tr("report-by-label-heading"));
        for entry in &report.affected_by_label {
            let _ = writeln!(
                out,
                "- {}={}: {}/{}",
                escape(&entry.label),
                escape(&entry.value),
                entry.count,
                entry.total
            );
        }
        out.push('\n');
    }

    let _ = writeln!(out, "## {}\n", catalog.tr("report-update-agents-heading"));
    if report.update_agents.is_empty() {
        let _ = writeln!(out, "{}\n", catalog.tr("report-update-agents-none"));
    } else {
        for ua in &report.update_agents {
            let state = if ua.completed {
                catalog.tr("report-ua-completed")
            } else {
                catalog.tr("report-ua-not-completed")
            };
            let _ = writeln!(
                out,
                "- {}",
                catalog.tr_args(
                    "report-update-agent-line",
                    &[
                        ("hostname", escape(&ua.hostname)),
                        ("address", escape(&ua.address)),
                        ("state", state),
                        ("blocks", ua.blocks.to_string())
                    ]
                )
            );
            if !ua.contested_by.is_empty() {
                let _ = writeln!(
                    out,
                    "  - {}",
                    catalog.tr_args(
                        "report-update-agent-contested",
                        &[("claimants", escape(&ua.contested_by.join(", ")))]
                    )
                );
            }
        }
        out.push('\n');
    }

    let _ = writeln!(out, "## {}\n", catalog.tr("report-differences-heading"));
    if report.differences.is_empty() {
        let _ = writeln!(out, "{}\n", catalog.tr("report-differences-none"));
    } else {
        for difference in &report.differences {
            let (attribute, value) = match catalog.lang() {
                // English keeps the attribute codes it always printed.
                crate::i18n::Lang::En => (difference.attribute.clone(), difference.value.clone()),
                crate::i18n::Lang::Ja => crate::words::attribute(catalog, &difference.attribute, &difference.value),
            };
            let _ = writeln!(
                out,
                "- {}",
                catalog.tr_args(
                    "report-difference-line",
                    &[
                        ("attribute", escape(&attribute)),
                        ("value", escape(&value)),
                        ("stragglers", difference.stragglers.to_string()),
                        ("stragglers_total", difference.stragglers_total.to_string()),
                        ("completed", difference.completed.to_string()),
                        ("completed_total", difference.completed_total.to_string())
                    ]
                )
            );
        }
        out.push('\n');
    }

    let _ = writeln!(out, "## {}\n", catalog.tr("report-update-now-heading"));
    let now = &report.update_now;
    let window = span(catalog, i64::try_from(now.window_ms).unwrap_or(i64::MAX));
    let side = |key: &str, side: &super::Tried| {
        catalog.tr_args(
            key,
            &[
                ("tried", side.tried.to_string()),
                ("completed", side.completed.to_string()),
                ("refused", side.refused.to_string()),
                ("window", window.clone()),
            ],
        )
    };
    let _ = writeln!(
        out,
        "- {}\n- {}\n\n{}\n",
        side("report-update-now-agent", &now.agent_side),
        side("report-update-now-server", &now.server_side),
        catalog.tr("report-update-now-note")
    );

    if !report.clock_skew_flagged.is_empty() {
        let _ = writeln!(out, "## {}\n", catalog.tr("report-clock-skew-heading"));
        for agent in &report.clock_skew_flagged {
            let key = if agent.clock_skew_ms > 0 {
                "report-clock-skew-ahead"
            } else {
                "report-clock-skew-behind"
            };
            let args = [
                ("hostname", escape(&agent.hostname)),
                ("amount", span(catalog, agent.clock_skew_ms)),
            ];
            let _ = writeln!(out, "- {} (`{}`)", catalog.tr_args(key, &args), agent.id);
        }
        let _ = writeln!(out, "\n{}\n", catalog.tr("report-clock-skew-note"));
    }

    let _ = writeln!(out, "## {}\n", catalog.tr("report-stragglers-heading"));
    if !report.stragglers.is_empty() {
        let collected = report.stragglers.iter().filter(|s| s.bundle.is_some()).count();
        let _ = writeln!(
            out,
            "{}\n",
            catalog.tr_args(
                "report-bundles-summary",
                &[
                    ("count", collected.to_string()),
                    ("total", report.stragglers.len().to_string())
                ]
            )
        );
    }
    for straggler in &report.stragglers {
        let line_key = if straggler.runbook_step == NO_STEP {
            "report-straggler-line-no-step"
        } else {
            "report-straggler-line"
        };
        let _ = writeln!(
            out,
            "### {}\n",
            catalog.tr_args(
                line_key,
                &[
                    ("hostname", escape(&straggler.hostname)),
                    ("cause", cause_text(catalog, &straggler.cause)),
                    ("step", straggler.runbook_step.to_string()),
                    ("state", crate::words::state_word(catalog, &straggler.state))
                ]
            )
        );
        let _ = writeln!(out, "- id: `{}`", straggler.id);
        if !straggler.signal.is_empty() {
            let key = format!("signal-{}", straggler.signal);
            let signal = if catalog.has(&key) {
                catalog.tr(&key)
            } else {
                escape(&straggler.signal)
            };
            let marker = if straggler.inferred {
                format!(" **({})**", catalog.tr("report-inferred"))
            } else {
                String::new()
            };
            let _ = writeln!(out, "- {}: {signal}{marker}", catalog.tr("report-signal"));
        } else if straggler.inferred {
            let _ = writeln!(out, "- **{}**", catalog.tr("report-inferred"));
        }
        // The evidence list repeats the failing check's English message and
        // its `key = value` pairs, which the check lines below say in the
        // reader's words; in Japanese only what they do not say (the values
        // a signal read) is kept, quoted as code.
        let repeated = |item: &str| {
            catalog.lang() != crate::i18n::Lang::En
                && straggler.failing.iter().any(|check| {
                    item == format!("{}: {}", check.name, check.message)
                        || check
                            .evidence
                            .iter()
                            .any(|(key, value)| item == format!("{key} = {value}"))
                })
        };
        let kept: Vec<&String> = straggler.evidence.iter().filter(|item| !repeated(item)).collect();
        if !kept.is_empty() {
            let evidence: Vec<String> = kept
                .iter()
                .map(|item| format!("`{}`", check_text::code_safe(item)))
                .collect();
            let _ = writeln!(out, "- {}: {}", catalog.tr("report-evidence"), evidence.join("; "));
        }
        // The checks below carry the evidence; without any (`no_data`) the
        // detail says which are missing; a contested update agent is named
        // by no check, so its detail is always shown.
        // A client's blocking update agent is named by no check of its own either.
        let detail_is_evidence = straggler.failing.is_empty()
            || !straggler.update_agent_claimants.is_empty()
            || straggler.detail_code.starts_with("update-agent-");
        if detail_is_evidence && !straggler.detail.is_empty() {
            let key = format!("detail-{}", straggler.detail_code);
            let text = if !straggler.detail_code.is_empty() && catalog.has(&key) {
                let args: Vec<(&str, String)> = straggler
                    .detail_params
                    .iter()
                    .map(|(name, value)| (name.as_str(), check_text::param_value(catalog, name, value, &escape)))
                    .collect();
                catalog.tr_args(&key, &args)
            } else {
                // A report from an older coordinator: its English detail.
                escape(&straggler.detail)
            };
            let _ = writeln!(out, "- {text}");
        }
        for check in &straggler.failing {
            write_check(&mut out, catalog, check, "");
        }
        if !straggler.consequences.is_empty() {
            let update_agent = straggler
                .detail_params
                .get("update_agent")
                .cloned()
                .or_else(|| straggler.update_agent.clone())
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- {}",
                catalog.tr_args("report-consequences", &[("update_agent", escape(&update_agent))])
            );
            for check in &straggler.consequences {
                write_check(&mut out, catalog, check, "  ");
            }
        }
        let bundle_line = match &straggler.bundle {
            Some(bundle) => catalog.tr_args(
                "report-bundle",
                &[
                    ("at", datetime(catalog, &bundle.collected_at)),
                    ("files", bundle.files.to_string()),
                    ("bytes", bundle.bytes.to_string()),
                    ("skipped", bundle.skipped.to_string()),
                    ("agent", check_text::code_safe(&straggler.id)),
                ],
            ),
            None => catalog.tr_args("report-bundle-none", &[("agent", check_text::code_safe(&straggler.id))]),
        };
        let _ = writeln!(out, "- {bundle_line}");
        let _ = writeln!(
            out,
            "- {}: {}\n",
            catalog.tr("report-remediation"),
            crate::words::remediation(catalog, &straggler.cause)
        );
    }
    if !report.awaiting_restart.is_empty() {
        let _ = writeln!(out, "## {}\n", catalog.tr("report-awaiting-restart-heading"));
        let _ = writeln!(
            out,
            "{}\n",
            catalog.tr_args(
                "report-awaiting-restart",
                &[("count", report.awaiting_restart.len().to_string())]
            )
        );
        for entry in &report.awaiting_restart {
            let _ = writeln!(
                out,
                "- {} (`{}`): `{}`",
                escape(&entry.hostname),
                check_text::code_safe(&entry.id),
                check_text::code_safe(&entry.marker)
            );
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    /// A report with one inferred straggler and one member waiting for a restart.
    fn report() -> Report {
        serde_json::from_value(serde_json::json!({
            "rollout": {"id": "r-1", "target": "14.0.12737", "started_at": "2026-12-07T00:00:00Z", "state": "active"},
            "generated_at": "2026-12-07T01:00:00Z",
            "affected": {"count": 2, "total": 3},
            "affected_by_label": [],
            "fleet_cause": null,
            "by_cause": {"update_permission": 1},
            "update_agents": [],
            "differences": [],
            "update_now": {"agent_side": {"tried": 0, "completed": 0}, "server_side": {"tried": 0, "completed": 0}},
            "stragglers": [{
                "id": "a1", "hostname": "apex-patterns", "cause": "update_permission", "runbook_step": 2,
                "state": "soft", "update_agent": null, "blocks": 0, "failing": [],
                "inferred": true, "signal": "patterns_without_program",
                "evidence": ["Misc.\\PatternDate = 20261207", "Misc.\\ProgramVer = 14.0.11564, target 14.0.12737"]
            }],
            "awaiting_restart": [{"id": "a2", "hostname": "apex-restart", "version": "14.0.11564",
                                  "marker": "HKLM\\SOFTWARE\\…\\RebootRequired"}]
        }))
        .expect("a report")
    }

    #[test]
    fn signals_inference_evidence_and_restarts_are_named_in_both_languages() {
        let english = render(&report(), &Catalog::new(Lang::En));
        for words in [
            "patterns arrive but the agent program does not",
            "inferred, not read",
            "`Misc.\\PatternDate = 20261207`",
            "## Awaiting restart",
            "1 machines have the upgrade installed",
        ] {
            assert!(english.contains(words), "{words:?} in:\n{english}");
        }
        let japanese = render(&report(), &Catalog::new(Lang::Ja));
        for words in [
            "推定",
            "「アップデート設定権限」",
            "## 再起動待ち",
            "`Misc.\\PatternDate = 20261207`",
        ] {
            assert!(japanese.contains(words), "{words:?} in:\n{japanese}");
        }
    }
}
