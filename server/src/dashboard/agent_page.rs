//! One agent's page (`/agents/{id}`) and its live JSON twin
//! (`/api/live/agents/{id}`): its place in the current rollout, its facts,
//! and the checks of its latest report, every word from the catalogue in
//! the reader's language.
//!
//! Every string that an agent could have chosen goes through [`esc`].

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use rollcall_common::cause::Cause;
use rollcall_common::i18n::{Catalog, Lang, catalog};
use rollcall_common::member_state::MemberState;
use rollcall_common::timefmt::rfc3339;
use rollcall_common::{check_text, locale_fmt, proto, words};
use serde_json::json;

use super::access::Viewer;
use super::data::{self, AgentPage};
use super::html::{Frame, esc, page, query, time_element, truncate, url_component};
use super::pages::{cause_advice, error_page, html_response, json_response, status_code, step_title, viewer_text};
use super::{App, Nonce};

fn valid_agent_path(id: &str) -> bool {
    rollcall_common::pki::valid_agent_id(id)
}

pub async fn agent(
    State(app): State<App>,
    Extension(viewer): Extension<Viewer>,
    Extension(nonce): Extension<Nonce>,
    Extension(lang): Extension<Lang>,
    Path(id): Path<String>,
) -> Response {
    let c = catalog(lang);
    if !valid_agent_path(&id) {
        return error_page(
            Some(&viewer),
            &nonce.0,
            lang,
            StatusCode::NOT_FOUND,
            &c.tr("dash-no-such-agent"),
        );
    }
    let detail = match data::agent(&app.coordinator, &id).await {
        Ok(Some(detail)) => detail,
        Ok(None) => {
            return error_page(
                Some(&viewer),
                &nonce.0,
                lang,
                StatusCode::NOT_FOUND,
                &c.tr("dash-no-such-agent"),
            );
        }
        Err(status) => return error_page(Some(&viewer), &nonce.0, lang, status_code(&status), status.message()),
    };
    let live_url = format!("/api/live/agents/{}", url_component(&id));
    let viewer_label = viewer_text(&viewer);
    let title = truncate(&detail.row.hostname, 64);
    let frame = Frame {
        title: &title,
        nonce: &nonce.0,
        live_url: Some(&live_url),
        viewer: &viewer_label,
        lang,
    };
    let ua = if detail.row.role == proto::Role::UpdateAgent as i32 {
        format!(
            " <span class=\"badge ua\">{}</span>",
            esc(&words::role(c, detail.row.role))
        )
    } else {
        String::new()
    };
    let body = format!(
        "<p><a href=\"/\">\u{2190} {back}</a></p><h1>{}{ua}</h1><p class=\"sub mono\">{}</p>\
<div class=\"grid\"><div class=\"card\"><h2>{in_rollout}</h2><section id=\"agent-rollout\">{}</section></div>\
<div class=\"card\"><h2>{agent}</h2><section id=\"agent-facts\">{}</section></div></div>\
<div class=\"card\"><h2>{checks}</h2><section id=\"agent-checks\">{}</section></div>",
        esc(&detail.row.hostname),
        esc(&detail.row.id),
        agent_rollout_fragment(c, &detail),
        agent_facts_fragment(c, &detail),
        agent_checks_fragment(c, &detail),
        back = esc(&c.tr("dash-back-to-rollout")),
        in_rollout = esc(&c.tr("dash-in-the-rollout")),
        agent = esc(&c.tr("dash-agent")),
        checks = esc(&c.tr("dash-latest-checks")),
    );
    html_response(StatusCode::OK, page(&frame, &body))
}

pub async fn agent_live(
    State(app): State<App>,
    Extension(_viewer): Extension<Viewer>,
    Extension(lang): Extension<Lang>,
    Path(id): Path<String>,
) -> Response {
    let c = catalog(lang);
    if !valid_agent_path(&id) {
        return json_response(StatusCode::NOT_FOUND, json!({ "error": c.tr("dash-no-such-agent") }));
    }
    match data::agent(&app.coordinator, &id).await {
        Ok(Some(detail)) => json_response(
            StatusCode::OK,
            json!({
                "generated_at": rfc3339(detail.now_ms),
                "fragments": {
                    "agent-rollout": agent_rollout_fragment(c, &detail),
                    "agent-facts": agent_facts_fragment(c, &detail),
                    "agent-checks": agent_checks_fragment(c, &detail),
                },
            }),
        ),
        Ok(None) => json_response(StatusCode::NOT_FOUND, json!({ "error": c.tr("dash-no-such-agent") })),
        Err(status) => json_response(status_code(&status), json!({ "error": status.message() })),
    }
}

fn fact(out: &mut String, name: &str, value: &str) {
    let shown = if value.is_empty() {
        "<span class=\"muted\">\u{2014}</span>".to_string()
    } else {
        esc(value)
    };
    let _ = write!(out, "<dt>{}</dt><dd>{shown}</dd>", esc(name));
}

fn agent_rollout_fragment(c: &Catalog, detail: &AgentPage) -> String {
    let (Some(rollout), Some(member)) = (&detail.rollout, &detail.member) else {
        return format!("<p class=\"empty\">{}</p>", esc(&c.tr("dash-not-a-member")));
    };
    // The badge class: a straggler's severity, else the state (codes, for CSS).
    let class = member.state.severity().unwrap_or(member.state.storage());
    let mut out = String::new();
    let _ = write!(
        out,
        "<p>{}</p>",
        c.tr_args(
            "dash-member-line",
            &[
                (
                    "state",
                    format!(
                        "<span class=\"badge {}\" id=\"member-state\">{}</span>",
                        esc(class),
                        esc(&words::state(c, member.state))
                    )
                ),
                (
                    "rollout",
                    format!(
                        "<a href=\"/{}\" class=\"mono\">{}</a>",
                        esc(&query(&[("rollout", &rollout.id)])),
                        esc(&rollout.id)
                    )
                ),
                ("target", esc(&rollout.target)),
                ("since", time_element(c, member.since_ms, detail.now_ms)),
            ]
        )
    );
    if member.state.is_straggler() {
        let step = Cause::step_of_code(&member.cause);
        let _ = write!(
            out,
            "<p><strong>{}</strong> \u{b7} {}</p><p class=\"remedy\">{}</p>",
            esc(&c.tr_args("dash-cause-line", &[("cause", member.cause.clone())])),
            esc(&c.tr_args(
                "dash-step-line",
                &[("step", step.to_string()), ("title", step_title(c, step))]
            )),
            esc(&cause_advice(c, &member.cause))
        );
        let _ = write!(out, "<p class=\"muted\">{}</p>", esc(&words::cause(c, &member.cause)));
    }
    out.push_str("<dl class=\"facts\">");
    let failing: Vec<String> = member.failing.iter().map(|name| words::check(c, name)).collect();
    fact(
        &mut out,
        &c.tr("dash-fact-failing"),
        &failing.join(&c.tr("list-separator")),
    );
    if !member.update_agent.is_empty() {
        let name = if detail.update_agent_hostname.is_empty() {
            &member.update_agent
        } else {
            &detail.update_agent_hostname
        };
        let _ = write!(
            out,
            "<dt>{}</dt><dd><a href=\"/agents/{}\">{}</a></dd>",
            esc(&c.tr("dash-fact-update-agent")),
            url_component(&member.update_agent),
            esc(name)
        );
    }
    if member.blocks > 0 {
        let _ = write!(
            out,
            "<dt>{}</dt><dd>{}</dd>",
            esc(&c.tr("dash-fact-blocks")),
            c.tr_args(
                "dash-blocks-clients",
                &[("count", format!("<strong>{}</strong>", member.blocks))]
            )
        );
    }
    fact(
        &mut out,
        &c.tr("dash-fact-rechecks"),
        &c.tr_args(
            "dash-n-of-m",
            &[
                ("n", member.attempts.to_string()),
                ("m", rollout.max_attempts.to_string()),
            ],
        ),
    );
    if member.next_recheck_ms > 0 && member.state == (MemberState::Straggler { hard: false }) {
        fact(
            &mut out,
            &c.tr("dash-fact-next-recheck"),
            &locale_fmt::datetime(c.lang(), member.next_recheck_ms),
        );
    }
    out.push_str("</dl>");
    out
}

fn agent_facts_fragment(c: &Catalog, detail: &AgentPage) -> String {
    let row = &detail.row;
    let mut out = String::from("<dl class=\"facts\">");
    let presence = if row.revoked {
        "revoked"
    } else if detail.connected {
        "online"
    } else if detail.offline {
        "offline"
    } else {
        "disconnected"
    };
    fact(&mut out, &c.tr("dash-fact-status"), &words::presence(c, presence));
    if row.unreadable {
        fact(&mut out, &c.tr("dash-fact-store"), &c.tr("dash-store-unreadable"));
    }
    let _ = write!(
        out,
        "<dt>{}</dt><dd>{}</dd>",
        esc(&c.tr("dash-fact-last-seen")),
        time_element(c, detail.last_seen_ms, detail.now_ms)
    );
    fact(&mut out, &c.tr("dash-fact-role"), &words::role(c, row.role));
    fact(&mut out, &c.tr("dash-fact-product-version"), &row.product.version);
    fact(&mut out, &c.tr("dash-fact-probe-version"), &row.agent_version);
    let clock = words::clock(c, row.clock_skew_ms);
    if detail.clock_skew_flagged {
        let flagged = c.tr_args("dash-clock-flagged", &[("clock", clock)]);
        fact(&mut out, &c.tr("dash-fact-clock"), &flagged);
    } else {
        fact(&mut out, &c.tr("dash-fact-clock"), &clock);
    }
    fact(
        &mut out,
        &c.tr("dash-fact-labels"),
        &row.labels
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let os = if row.host.os_id.is_empty() {
        String::new()
    } else {
        format!("{} {} ({})", row.host.os_id, row.host.os_version, row.host.arch)
    };
    fact(&mut out, &c.tr("dash-fact-os"), &os);
    let source_key = format!("value-source-{}", row.product.update_source);
    let source = if c.has(&source_key) {
        c.tr(&source_key)
    } else {
        row.product.update_source.clone()
    };
    fact(&mut out, &c.tr("check-update_source"), &source);
    fact(&mut out, &c.tr("dash-fact-source-address"), &row.product.source_address);
    let permission_key = format!("value-permission-{}", row.product.update_permission);
    let permission = if c.has(&permission_key) {
        c.tr(&permission_key)
    } else {
        row.product.update_permission.clone()
    };
    fact(&mut out, &c.tr("check-update_permission"), &permission);
    fact(
        &mut out,
        &c.tr("dash-fact-license-expires"),
        &row.product.license_expires,
    );
    fact(&mut out, &c.tr("value-service-server"), &row.product.server_address);
    if row.role == proto::Role::UpdateAgent as i32 {
        fact(
            &mut out,
            &c.tr("dash-fact-serves-at"),
            &row.product.update_agent_address,
        );
        fact(
            &mut out,
            &c.tr("dash-fact-program-and-hotfix"),
            &c.tr(if row.product.program_and_hotfix {
                "dash-enabled"
            } else {
                "dash-disabled"
            }),
        );
    }
    if !row.product.read_error.is_empty() {
        fact(&mut out, &c.tr("dash-fact-product-error"), &row.product.read_error);
    }
    fact(
        &mut out,
        &c.tr("dash-fact-enrolled"),
        &locale_fmt::datetime(c.lang(), row.enrolled_at_ms),
    );
    out.push_str("</dl>");
    out
}

fn agent_checks_fragment(c: &Catalog, detail: &AgentPage) -> String {
    if detail.checks.is_empty() {
        return format!("<p class=\"empty\">{}</p>", esc(&c.tr("dash-no-checks")));
    }
    let mut out = format!(
        "<p class=\"muted\">{}</p><table id=\"checks-table\"><thead><tr><th class=\"num\">{}</th>\
<th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        c.tr_args(
            "dash-checked-at",
            &[("at", time_element(c, detail.checked_at_ms, detail.now_ms))]
        ),
        esc(&c.tr("dash-col-step")),
        esc(&c.tr("dash-col-check")),
        esc(&c.tr("dash-col-status")),
        esc(&c.tr("dash-col-message")),
        esc(&c.tr("report-evidence")),
        esc(&c.tr("report-remediation")),
    );
    for check in &detail.checks {
        let status = proto::status_word(check.status);
        let mut evidence = String::from("<ul class=\"evidence\">");
        for item in &check.evidence {
            let (key, phrase) = words::evidence(c, &item.key, &item.value);
            let value = phrase.unwrap_or_else(|| item.value.clone());
            let _ = write!(
                evidence,
                "<li><span class=\"muted\">{}</span> {}</li>",
                esc(&key),
                esc(&value)
            );
        }
        evidence.push_str("</ul>");
        // The catalogue's remediation for the check's cause; the probe's own
        // words only for a check this build does not know.
        let remedy_text = words::check_remediation(c, &check.name, &check.remediation);
        let remediation = if status == "pass" || remedy_text.is_empty() {
            String::new()
        } else {
            format!("<div class=\"remedy\">{}</div>", esc(&remedy_text))
        };
        let params = check.params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let message = check_text::message(c, &check.code, &params, &check.message, &esc);
        let _ = write!(
            out,
            "<tr data-check=\"{name}\"><td class=\"num\" title=\"{title}\">{step}</td><td>{shown}</td>\
<td><span class=\"badge {status}\">{status_text}</span></td><td>{message}</td><td>{evidence}</td><td>{remediation}</td></tr>",
            name = esc(&check.name),
            shown = esc(&words::check(c, &check.name)),
            status_text = esc(&words::status(c, check.status)),
            title = esc(&step_title(c, check.runbook_step)),
            step = if check.runbook_step == 0 {
                "\u{2014}".to_string()
            } else {
                check.runbook_step.to_string()
            },
        );
    }
    out.push_str("</tbody></table>");
    out
}
