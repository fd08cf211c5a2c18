//! The pages: the rollout overview (`/`), one page per agent
//! (`/agents/{id}`), and their live JSON twins under `/api/live`, which
//! return the same server-rendered fragments the pages are built from.
//!
//! Every string that an agent could have chosen goes through [`esc`].

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rollcall_common::member_state::{MemberState, severity_word};
use rollcall_common::proto;
use rollcall_common::timefmt::{now_ms, rfc3339};
use serde_json::json;
use tonic::{Code, Status};

use super::access::Viewer;
use super::data::{self, AgentPage, Counts, FilterQuery, Filters, Overview};
use super::html::{Frame, esc, page, query, time_element, truncate, url_component};
use super::svg::{self, Bar};
use super::{App, Nonce};
use crate::rollouts::diagnosis::Cause;
use rollcall_common::proto::role_name;

/// Rows in the stragglers table at most; the filters narrow the rest down.
const MAX_TABLE_ROWS: usize = 500;

pub fn step_title(step: u32) -> &'static str {
    match step {
        0 => "No runbook step",
        1 => "License expiry",
        2 => "Update settings permission",
        3 => "Update source and update agents",
        4 => "Code-signing certificates",
        5 => "Connectivity",
        6 => "System requirements",
        7 => "Overwrite install",
        8 => "Facts for support",
        _ => "",
    }
}

fn cause_advice(cause: &str) -> &'static str {
    match Cause::from_code(cause) {
        Some(Cause::License) => "Renew the license: while it is expired no agent can upgrade.",
        Some(Cause::UpdatePermission) => {
            "Set \u{201c}Update settings permission\u{201d} to \u{201c}All components\u{201d}, then send update now."
        }
        Some(Cause::UpdateSource) => "Point the agent at the update source it is meant to use.",
        Some(Cause::UpdateAgentProgram) => {
            "Enable \u{201c}Security agent program and HotFix\u{201d} for this update agent in the web console: its clients cannot upgrade until it serves them."
        }
        Some(Cause::UpdateAgent) => {
            "Fix its update agent first: it must finish upgrading and serve \u{201c}Security agent program and HotFix\u{201d}."
        }
        Some(Cause::UpdateAgentConflict) => {
            "Several agents claim to be its update agent: find the real one and correct or revoke the others."
        }
        Some(Cause::Certificates) => "Install the missing code-signing certificates.",
        Some(Cause::Connectivity) => {
            "Restore name resolution and reachability of the product server and update source."
        }
        Some(Cause::Offline) => "The probe has not been seen lately: check that the machine is on and connected.",
        Some(Cause::SystemRequirements) => "The endpoint does not meet the system requirements.",
        Some(Cause::AwaitingRecheck) => {
            "Every check passes, but on facts older than the last recheck: waiting for the agent's fresh report."
        }
        Some(Cause::NoData) => {
            "The probe has not reported the checks of steps 1\u{2013}6: check that rollcall-agent runs and read its log."
        }
        Some(Cause::ProbeError) => {
            "Checks could not run on the probe (not a runbook cause): fix its product adapter or the product state source it reads."
        }
        Some(Cause::Unknown) | None => {
            "No cause found in steps 1\u{2013}6: overwrite install (step 7), then collect facts for support (step 8)."
        }
    }
}

fn viewer_text(viewer: &Viewer) -> String {
    format!("{} ({})", viewer.name, viewer.role)
}

fn html_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn json_response(status: StatusCode, value: serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

fn status_code(status: &Status) -> StatusCode {
    match status.code() {
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A whole error page.
pub fn error_page(viewer: Option<&Viewer>, nonce: &str, code: StatusCode, message: &str) -> Response {
    let viewer = viewer.map(viewer_text).unwrap_or_default();
    let frame = Frame {
        title: code.canonical_reason().unwrap_or("error"),
        nonce,
        live_url: None,
        viewer: &viewer,
    };
    let body = format!(
        "<div class=\"card\"><h1>{} {}</h1><p>{}</p></div>",
        code.as_u16(),
        esc(code.canonical_reason().unwrap_or("")),
        esc(message)
    );
    html_response(code, page(&frame, &body))
}

// === the rollout page ===

pub async fn index(
    State(app): State<App>,
    Extension(viewer): Extension<Viewer>,
    Extension(nonce): Extension<Nonce>,
    Query(query_params): Query<FilterQuery>,
) -> Response {
    let filters = match Filters::parse(query_params) {
        Ok(filters) => filters,
        Err(message) => return error_page(Some(&viewer), &nonce.0, StatusCode::BAD_REQUEST, &message),
    };
    let overview = match data::overview(&app.coordinator, &filters).await {
        Ok(overview) => overview,
        Err(status) => {
            return error_page(Some(&viewer), &nonce.0, status_code(&status), status.message());
        }
    };
    let live_url = format!("/api/live{}", filters.query());
    let viewer_label = viewer_text(&viewer);
    let frame = Frame {
        title: "Rollout",
        nonce: &nonce.0,
        live_url: Some(&live_url),
        viewer: &viewer_label,
    };
    let Some(overview) = overview else {
        let body = "<div class=\"card empty\"><h1>No rollout yet</h1><p>Start one with \
<code>rollcall rollout start --target VERSION</code>; this page follows it as it runs.</p></div>";
        return html_response(StatusCode::OK, page(&frame, body));
    };
    html_response(StatusCode::OK, page(&frame, &overview_body(&overview, &filters)))
}

pub async fn index_live(
    State(app): State<App>,
    Extension(_viewer): Extension<Viewer>,
    Query(query_params): Query<FilterQuery>,
) -> Response {
    let filters = match Filters::parse(query_params) {
        Ok(filters) => filters,
        Err(message) => return json_response(StatusCode::BAD_REQUEST, json!({ "error": message })),
    };
    match data::overview(&app.coordinator, &filters).await {
        Ok(Some(overview)) => json_response(
            StatusCode::OK,
            json!({
                "generated_at": rfc3339(overview.now_ms),
                "rollout": overview.rollout.id,
                "fragments": {
                    "summary": summary_fragment(&overview, &filters),
                    "chart": svg::completion_chart(&overview.history, overview.scope.total, overview.now_ms),
                    "causes": causes_fragment(&overview, &filters),
                    "labels": labels_fragment(&overview, &filters),
                    "stragglers": stragglers_fragment(&overview, &filters),
                },
            }),
        ),
        // A rollout started meanwhile: nothing to swap in; a reload shows it.
        Ok(None) => json_response(
            StatusCode::OK,
            json!({ "generated_at": rfc3339(now_ms()), "fragments": {} }),
        ),
        Err(status) => json_response(status_code(&status), json!({ "error": status.message() })),
    }
}

fn overview_body(overview: &Overview, filters: &Filters) -> String {
    let rollout = &overview.rollout;
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Rollout <span class=\"mono\">{}</span> \u{2192} {}</h1>",
        esc(&rollout.id),
        esc(&rollout.target)
    );
    let started_ms = rollcall_common::timefmt::parse_rfc3339(&rollout.started_at).unwrap_or(0);
    let _ = write!(
        body,
        "<p class=\"sub\"><span class=\"badge {}\">{}</span> started {} by {} \u{b7} grace {} \u{b7} recheck every {} \
\u{b7} up to {} attempts \u{b7} selector <span class=\"mono\">{}</span>{}",
        if rollout.state == "active" {
            "completed"
        } else {
            "pending"
        },
        esc(&rollout.state),
        time_element(started_ms, overview.now_ms),
        esc(&rollout.started_by),
        humantime::format_duration(std::time::Duration::from_millis(rollout.grace_ms)),
        humantime::format_duration(std::time::Duration::from_millis(rollout.recheck_every_ms)),
        rollout.max_attempts,
        esc(&rollout.selector),
        if rollout.auto_update_now {
            " \u{b7} automatic update-now"
        } else {
            ""
        },
    );
    if let Some((key, value)) = &filters.label {
        let _ = write!(
            body,
            " \u{b7} scope <span class=\"badge ua\">{}={}</span> <a href=\"/{}\">show all</a>",
            esc(key),
            esc(value),
            esc(&Filters {
                label: None,
                ..filters.clone()
            }
            .query())
        );
    }
    body.push_str("</p>");
    let others: Vec<String> = overview
        .rollouts
        .iter()
        .filter(|other| other.id != rollout.id)
        .map(|other| {
            format!(
                "<a href=\"/{}\" class=\"mono\">{}</a> ({}, {})",
                esc(&query(&[("rollout", &other.id)])),
                esc(&other.id),
                esc(&other.target),
                esc(&other.state)
            )
        })
        .collect();
    if !others.is_empty() {
        let _ = write!(body, "<p class=\"sub\">Other rollouts: {}</p>", others.join(", "));
    }
    if overview.status.fleet_cause == Cause::License.code() {
        body.push_str(
            "<div class=\"banner\" id=\"fleet-cause\"><strong>Runbook step 1: the license.</strong> \
(Nearly) every straggler fails the license check, so the cause is the license, not the endpoints: \
renew it, then recheck.</div>",
        );
    }
    let _ = write!(
        body,
        "<section id=\"summary\">{}</section>\
<div class=\"grid\"><div><div class=\"card\"><h2>Completion over time</h2><section id=\"chart\">{}</section></div></div>\
<div><div class=\"card\"><h2>Stragglers by cause</h2><section id=\"causes\">{}</section></div>\
<div class=\"card\"><h2>Completion by label</h2><section id=\"labels\">{}</section></div></div></div>",
        summary_fragment(overview, filters),
        svg::completion_chart(&overview.history, overview.scope.total, overview.now_ms),
        causes_fragment(overview, filters),
        labels_fragment(overview, filters),
    );
    let _ = write!(
        body,
        "<div class=\"card\"><h2>Stragglers</h2>{}<section id=\"stragglers\">{}</section></div>",
        filter_form(overview, filters),
        stragglers_fragment(overview, filters)
    );
    body
}

fn stat(class: &str, id: &str, value: String, label: &str) -> String {
    format!(
        "<div class=\"stat {class}\" id=\"stat-{id}\"><div class=\"n\">{value}</div><div class=\"l\">{label}</div></div>"
    )
}

fn summary_fragment(overview: &Overview, _filters: &Filters) -> String {
    let counts: &Counts = &overview.scope;
    let mut out = String::from("<div class=\"stats\">");
    out.push_str(&stat("", "total", counts.total.to_string(), "members"));
    out.push_str(&stat(
        "ok",
        "completed",
        format!(
            "{} <small class=\"muted\">{:.0}%</small>",
            counts.completed,
            counts.percent_completed()
        ),
        "completed",
    ));
    out.push_str(&stat("", "pending", counts.pending.to_string(), "pending (in grace)"));
    out.push_str(&stat(
        if counts.stragglers > 0 { "bad" } else { "" },
        "stragglers",
        counts.stragglers.to_string(),
        "stragglers",
    ));
    out.push_str(&stat(
        if counts.hard > 0 { "warn" } else { "" },
        "hard",
        format!("{} <small class=\"muted\">/ {} soft</small>", counts.hard, counts.soft),
        "hard stragglers",
    ));
    out.push_str(&stat(
        if counts.offline > 0 { "warn" } else { "" },
        "offline",
        counts.offline.to_string(),
        "offline",
    ));
    if counts.awaiting_restart > 0 {
        out.push_str(&stat(
            "",
            "awaiting_restart",
            counts.awaiting_restart.to_string(),
            "awaiting restart (installed, not a straggler)",
        ));
    }
    out.push_str("</div>");
    if let Some(roster) = &overview.status.roster {
        // The whole fleet Apex One lists, probes or not (docs/ROSTER.md).
        out.push_str("<div class=\"stats\" id=\"roster\">");
        out.push_str(&stat(
            "",
            "roster-listed",
            roster.listed.to_string(),
            "listed by the roster",
        ));
        out.push_str(&stat(
            "ok",
            "roster-completed",
            roster.completed.to_string(),
            "completed (roster)",
        ));
        out.push_str(&stat(
            if roster.behind > 0 { "bad" } else { "" },
            "roster-behind",
            roster.behind.to_string(),
            "behind (roster)",
        ));
        out.push_str(&stat(
            if roster.no_probe > 0 { "warn" } else { "" },
            "roster-no-probe",
            roster.no_probe.to_string(),
            "no probe, version unknown",
        ));
        out.push_str(&stat(
            if roster.unlisted_probes > 0 { "warn" } else { "" },
            "roster-unlisted",
            roster.unlisted_probes.to_string(),
            "probes not listed",
        ));
        out.push_str(&stat(
            "",
            "roster-age",
            crate::dashboard::html::esc(
                &humantime::format_duration(std::time::Duration::from_secs(roster.age_s)).to_string(),
            ),
            "roster age",
        ));
        out.push_str("</div>");
    }
    out.push_str(&svg::progress_bar(
        counts.completed,
        counts.stragglers,
        counts.pending,
        counts.total,
    ));
    out
}

fn causes_fragment(overview: &Overview, filters: &Filters) -> String {
    if overview.by_cause.is_empty() {
        return "<p class=\"empty\">No stragglers.</p>".into();
    }
    let mut causes: Vec<(&String, &u32)> = overview.by_cause.iter().collect();
    causes.sort_by_key(|(cause, _)| Cause::rank(cause));
    let total = overview.scope.stragglers.max(1);
    let rows: Vec<Bar> = causes
        .into_iter()
        .map(|(cause, count)| Bar {
            label: match Cause::step_of_code(cause) {
                crate::rollouts::diagnosis::NO_STEP => format!("\u{2013} {cause}"),
                step => format!("{step} {cause}"),
            },
            value: *count,
            of: total,
            note: count.to_string(),
            href: Some(format!("/{}", filters.with_cause(cause).query())),
            colour: svg::STRAGGLERS,
        })
        .collect();
    format!(
        "{}<p class=\"muted\">The number is the runbook step (\u{2013}: the cause names none); click a cause to filter the table.</p>",
        svg::bars("cause-bars", &rows)
    )
}

fn labels_fragment(overview: &Overview, filters: &Filters) -> String {
    if overview.by_label.is_empty() {
        return "<p class=\"empty\">No member carries labels.</p>".into();
    }
    let mut out = String::new();
    for group in &overview.by_label {
        let rows: Vec<Bar> = group
            .values
            .iter()
            .map(|(value, counts)| Bar {
                label: format!("{}={}", group.key, value),
                value: counts.completed,
                of: counts.total,
                note: format!("{}/{}", counts.completed, counts.total),
                href: Some(format!("/{}", filters.with_label(&group.key, value).query())),
                colour: svg::COMPLETED,
            })
            .collect();
        let _ = write!(out, "{}", svg::bars(&format!("label-bars-{}", group.key), &rows));
        if group.more > 0 {
            let _ = write!(
                out,
                "<p class=\"muted\">and {} more values of {}</p>",
                group.more,
                esc(&group.key)
            );
        }
    }
    out.push_str("<p class=\"muted\">Completed of members per label value; click one to scope the page to it.</p>");
    out
}

fn option(value: &str, text: &str, selected: bool) -> String {
    format!(
        "<option value=\"{}\"{}>{}</option>",
        esc(value),
        if selected { " selected" } else { "" },
        esc(text)
    )
}

fn filter_form(overview: &Overview, filters: &Filters) -> String {
    let mut causes = option("", "any cause", filters.cause.is_empty());
    for cause in Cause::ALL {
        causes.push_str(&option(
            cause.code(),
            &match cause.runbook_step() {
                crate::rollouts::diagnosis::NO_STEP => format!("{} \u{b7} no step", cause.code()),
                step => format!("{} \u{b7} step {step}", cause.code()),
            },
            filters.cause == cause.code(),
        ));
    }
    let mut states = option("", "soft and hard", filters.state.is_empty());
    for hard in [false, true] {
        let word = severity_word(hard);
        states.push_str(&option(word, word, filters.state == word));
    }
    let mut steps = option("", "any step", filters.step.is_none());
    for step in 1..=7 {
        steps.push_str(&option(
            &step.to_string(),
            &format!("{step} \u{b7} {}", step_title(step)),
            filters.step == Some(step),
        ));
    }
    let mut labels = option("", "all members", filters.label.is_none());
    let current = filters.label_text();
    let mut listed_current = current.is_empty();
    for group in &overview.by_label {
        for (value, _) in &group.values {
            let pair = format!("{}={}", group.key, value);
            listed_current |= pair == current;
            labels.push_str(&option(&pair, &pair, pair == current));
        }
    }
    if !listed_current {
        labels.push_str(&option(&current, &current, true));
    }
    let rollout = if filters.rollout.is_empty() {
        String::new()
    } else {
        format!(
            "<input type=\"hidden\" name=\"rollout\" value=\"{}\">",
            esc(&filters.rollout)
        )
    };
    format!(
        "<form class=\"filters\" method=\"get\" action=\"/\">{rollout}\
<label>Cause<select name=\"cause\">{causes}</select></label>\
<label>State<select name=\"state\">{states}</select></label>\
<label>Runbook step<select name=\"step\">{steps}</select></label>\
<label>Label<select name=\"label\">{labels}</select></label>\
<label>Host<input type=\"search\" name=\"q\" value=\"{}\" placeholder=\"hostname or id\"></label>\
<button type=\"submit\">Filter</button> <a href=\"/{}\">clear</a></form>",
        esc(&filters.q),
        esc(&query(&[("rollout", &filters.rollout)]))
    )
}

fn stragglers_fragment(overview: &Overview, filters: &Filters) -> String {
    let rows: Vec<_> = overview.filtered(filters).collect();
    if overview.stragglers.is_empty() {
        return "<p class=\"empty\">No stragglers in this rollout.</p>".into();
    }
    let mut out = format!(
        "<p class=\"muted\" id=\"stragglers-count\">{} of {} stragglers \u{b7} update agents first (most blocked \
clients first), then runbook order</p>",
        rows.len(),
        overview.stragglers.len()
    );
    if rows.is_empty() {
        out.push_str("<p class=\"empty\">No straggler matches these filters.</p>");
        return out;
    }
    out.push_str(
        "<table id=\"stragglers-table\"><thead><tr><th>Host</th><th>Cause</th><th class=\"num\">Step</th>\
<th>State</th><th>Update agent</th><th class=\"num\">Blocks</th><th>Failing checks</th><th>Straggler since</th>\
<th class=\"num\">Attempts</th><th>Version</th><th>Online</th></tr></thead><tbody>",
    );
    for row in rows.iter().take(MAX_TABLE_ROWS) {
        let straggler = &row.straggler;
        let is_update_agent = straggler.role == proto::Role::UpdateAgent as i32;
        let update_agent = if !straggler.update_agent_claimants.is_empty() {
            // A contested address: every claimant, none of them blamed.
            let claimants: Vec<String> = straggler
                .update_agent_claimants
                .iter()
                .map(|id| {
                    format!(
                        "<a href=\"/agents/{}\">{}</a>",
                        url_component(id),
                        esc(&truncate(id, 48))
                    )
                })
                .collect();
            format!("<span class=\"conflict\">contested: {}</span>", claimants.join(", "))
        } else if straggler.update_agent.is_empty() {
            "<span class=\"muted\">\u{2014}</span>".to_string()
        } else {
            let name = if row.update_agent_hostname.is_empty() {
                &straggler.update_agent
            } else {
                &row.update_agent_hostname
            };
            format!(
                "<a href=\"/agents/{}\">{}</a>",
                url_component(&straggler.update_agent),
                esc(&truncate(name, 48))
            )
        };
        let _ = write!(
            out,
            "<tr data-agent=\"{id}\" data-cause=\"{cause}\" data-state=\"{state}\">\
<td><a href=\"/agents/{id_url}\">{host}</a>{ua}</td>\
<td><span title=\"{advice}\">{cause}</span></td><td class=\"num\" title=\"{step_title}\">{step}</td>\
<td><span class=\"badge {state}\">{state}</span></td><td>{update_agent}</td><td class=\"num\">{blocks}</td>\
<td class=\"mono\">{failing}</td><td>{since}</td><td class=\"num\">{attempts}</td><td class=\"mono\">{version}</td>\
<td>{online}</td></tr>",
            id = esc(&straggler.id),
            id_url = url_component(&straggler.id),
            host = esc(&truncate(&straggler.hostname, 64)),
            ua = if is_update_agent {
                " <span class=\"badge ua\">update agent</span>"
            } else {
                ""
            },
            advice = esc(cause_advice(&straggler.cause)),
            cause = esc(&straggler.cause),
            step_title = esc(step_title(straggler.runbook_step)),
            step = straggler.runbook_step,
            state = esc(&straggler.state),
            blocks = if straggler.blocks > 0 {
                format!("<strong>{}</strong>", straggler.blocks)
            } else {
                "0".into()
            },
            failing = esc(&straggler.failing.join(", ")),
            since = time_element(row.since_ms, overview.now_ms),
            attempts = straggler.attempts,
            version = esc(&straggler.version),
            online = if straggler.online { "yes" } else { "<strong>no</strong>" },
        );
    }
    out.push_str("</tbody></table>");
    if rows.len() > MAX_TABLE_ROWS {
        let _ = write!(
            out,
            "<p class=\"muted\">Showing the first {MAX_TABLE_ROWS}; narrow the filters to see the rest.</p>"
        );
    }
    out
}

// === the agent page ===

fn valid_agent_path(id: &str) -> bool {
    rollcall_common::pki::valid_agent_id(id)
}

pub async fn agent(
    State(app): State<App>,
    Extension(viewer): Extension<Viewer>,
    Extension(nonce): Extension<Nonce>,
    Path(id): Path<String>,
) -> Response {
    if !valid_agent_path(&id) {
        return error_page(Some(&viewer), &nonce.0, StatusCode::NOT_FOUND, "no such agent");
    }
    let detail = match data::agent(&app.coordinator, &id).await {
        Ok(Some(detail)) => detail,
        Ok(None) => {
            return error_page(Some(&viewer), &nonce.0, StatusCode::NOT_FOUND, "no such agent");
        }
        Err(status) => return error_page(Some(&viewer), &nonce.0, status_code(&status), status.message()),
    };
    let live_url = format!("/api/live/agents/{}", url_component(&id));
    let viewer_label = viewer_text(&viewer);
    let title = truncate(&detail.row.hostname, 64);
    let frame = Frame {
        title: &title,
        nonce: &nonce.0,
        live_url: Some(&live_url),
        viewer: &viewer_label,
    };
    let ua = if detail.row.role == proto::Role::UpdateAgent as i32 {
        " <span class=\"badge ua\">update agent</span>"
    } else {
        ""
    };
    let body = format!(
        "<p><a href=\"/\">\u{2190} rollout</a></p><h1>{}{ua}</h1><p class=\"sub mono\">{}</p>\
<div class=\"grid\"><div class=\"card\"><h2>In the rollout</h2><section id=\"agent-rollout\">{}</section></div>\
<div class=\"card\"><h2>Agent</h2><section id=\"agent-facts\">{}</section></div></div>\
<div class=\"card\"><h2>Checks of the latest report</h2><section id=\"agent-checks\">{}</section></div>",
        esc(&detail.row.hostname),
        esc(&detail.row.id),
        agent_rollout_fragment(&detail),
        agent_facts_fragment(&detail),
        agent_checks_fragment(&detail),
    );
    html_response(StatusCode::OK, page(&frame, &body))
}

pub async fn agent_live(
    State(app): State<App>,
    Extension(_viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Response {
    if !valid_agent_path(&id) {
        return json_response(StatusCode::NOT_FOUND, json!({ "error": "no such agent" }));
    }
    match data::agent(&app.coordinator, &id).await {
        Ok(Some(detail)) => json_response(
            StatusCode::OK,
            json!({
                "generated_at": rfc3339(detail.now_ms),
                "fragments": {
                    "agent-rollout": agent_rollout_fragment(&detail),
                    "agent-facts": agent_facts_fragment(&detail),
                    "agent-checks": agent_checks_fragment(&detail),
                },
            }),
        ),
        Ok(None) => json_response(StatusCode::NOT_FOUND, json!({ "error": "no such agent" })),
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

fn agent_rollout_fragment(detail: &AgentPage) -> String {
    let (Some(rollout), Some(member)) = (&detail.rollout, &detail.member) else {
        return "<p class=\"empty\">Not a member of the current rollout.</p>".into();
    };
    // The badge class and text: a straggler's severity, else the state.
    let state = member.state.severity().unwrap_or(member.state.storage());
    let mut out = String::new();
    let _ = write!(
        out,
        "<p><span class=\"badge {}\" id=\"member-state\">{}</span> in <a href=\"/{}\" class=\"mono\">{}</a> \
(target {}) since {}</p>",
        esc(state),
        if member.state.is_straggler() {
            format!("straggler \u{b7} {}", esc(state))
        } else {
            esc(state)
        },
        esc(&query(&[("rollout", &rollout.id)])),
        esc(&rollout.id),
        esc(&rollout.target),
        time_element(member.since_ms, detail.now_ms)
    );
    if member.state.is_straggler() {
        let step = Cause::step_of_code(&member.cause);
        let _ = write!(
            out,
            "<p><strong>Cause: {}</strong> \u{b7} runbook step {step} ({})</p><p class=\"remedy\">{}</p>",
            esc(&member.cause),
            esc(step_title(step)),
            esc(cause_advice(&member.cause))
        );
    }
    out.push_str("<dl class=\"facts\">");
    fact(&mut out, "failing checks", &member.failing.join(", "));
    if !member.update_agent.is_empty() {
        let name = if detail.update_agent_hostname.is_empty() {
            &member.update_agent
        } else {
            &detail.update_agent_hostname
        };
        let _ = write!(
            out,
            "<dt>update agent</dt><dd><a href=\"/agents/{}\">{}</a></dd>",
            url_component(&member.update_agent),
            esc(name)
        );
    }
    if member.blocks > 0 {
        let _ = write!(
            out,
            "<dt>blocks</dt><dd><strong>{}</strong> clients behind this update agent</dd>",
            member.blocks
        );
    }
    fact(
        &mut out,
        "rechecks",
        &format!("{} of {}", member.attempts, rollout.max_attempts),
    );
    if member.next_recheck_ms > 0 && member.state == (MemberState::Straggler { hard: false }) {
        fact(&mut out, "next recheck", &rfc3339(member.next_recheck_ms));
    }
    out.push_str("</dl>");
    out
}

fn agent_facts_fragment(detail: &AgentPage) -> String {
    let row = &detail.row;
    let mut out = String::from("<dl class=\"facts\">");
    let online = if row.revoked {
        "revoked".to_string()
    } else if detail.connected {
        "online".to_string()
    } else if detail.offline {
        "offline".to_string()
    } else {
        "disconnected".to_string()
    };
    fact(&mut out, "status", &online);
    if row.unreadable {
        fact(
            &mut out,
            "store",
            "unreadable: some stored columns of this agent could not be read; shown as read",
        );
    }
    let _ = write!(
        out,
        "<dt>last seen</dt><dd>{}</dd>",
        time_element(detail.last_seen_ms, detail.now_ms)
    );
    fact(&mut out, "role", role_name(row.role));
    fact(&mut out, "product version", &row.product.version);
    fact(&mut out, "probe version", &row.agent_version);
    let clock = crate::domain::clock_skew::describe(row.clock_skew_ms);
    if detail.clock_skew_flagged {
        fact(&mut out, "clock", &format!("{clock} — beyond clock_skew_warn"));
    } else {
        fact(&mut out, "clock", &clock);
    }
    fact(
        &mut out,
        "labels",
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
    fact(&mut out, "operating system", &os);
    fact(&mut out, "update source", &row.product.update_source);
    fact(&mut out, "source address", &row.product.source_address);
    fact(&mut out, "update permission", &row.product.update_permission);
    fact(&mut out, "license expires", &row.product.license_expires);
    fact(&mut out, "product server", &row.product.server_address);
    if row.role == proto::Role::UpdateAgent as i32 {
        fact(&mut out, "serves clients at", &row.product.update_agent_address);
        fact(
            &mut out,
            "program and HotFix",
            if row.product.program_and_hotfix {
                "enabled"
            } else {
                "disabled"
            },
        );
    }
    if !row.product.read_error.is_empty() {
        fact(&mut out, "product state error", &row.product.read_error);
    }
    fact(&mut out, "enrolled", &rfc3339(row.enrolled_at_ms));
    out.push_str("</dl>");
    out
}

fn check_status(status: i32) -> &'static str {
    match proto::CheckStatus::try_from(status) {
        Ok(proto::CheckStatus::Pass) => "pass",
        Ok(proto::CheckStatus::Warn) => "warn",
        Ok(proto::CheckStatus::Fail) => "fail",
        Ok(proto::CheckStatus::Error) => "error",
        _ => "unknown",
    }
}

fn agent_checks_fragment(detail: &AgentPage) -> String {
    if detail.checks.is_empty() {
        return "<p class=\"empty\">No report with checks yet.</p>".into();
    }
    let mut out = format!(
        "<p class=\"muted\">Checked {}</p><table id=\"checks-table\"><thead><tr><th class=\"num\">Step</th>\
<th>Check</th><th>Status</th><th>Message</th><th>Evidence</th><th>Remediation</th></tr></thead><tbody>",
        time_element(detail.checked_at_ms, detail.now_ms)
    );
    for check in &detail.checks {
        let status = check_status(check.status);
        let mut evidence = String::from("<ul class=\"evidence\">");
        for item in &check.evidence {
            let _ = write!(
                evidence,
                "<li><span class=\"muted\">{}</span> {}</li>",
                esc(&item.key),
                esc(&item.value)
            );
        }
        evidence.push_str("</ul>");
        let remediation = if status == "pass" || check.remediation.is_empty() {
            String::new()
        } else {
            format!("<div class=\"remedy\">{}</div>", esc(&check.remediation))
        };
        let _ = write!(
            out,
            "<tr data-check=\"{name}\"><td class=\"num\" title=\"{title}\">{step}</td><td>{name}</td>\
<td><span class=\"badge {status}\">{status}</span></td><td>{message}</td><td>{evidence}</td><td>{remediation}</td></tr>",
            name = esc(&check.name),
            title = esc(step_title(check.runbook_step)),
            step = if check.runbook_step == 0 {
                "\u{2014}".to_string()
            } else {
                check.runbook_step.to_string()
            },
            message = esc(&check.message),
        );
    }
    out.push_str("</tbody></table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_has_advice_and_a_step_title() {
        for cause in Cause::ALL {
            assert!(!cause_advice(cause.code()).is_empty());
            assert!(!step_title(cause.runbook_step()).is_empty());
        }
    }
}
