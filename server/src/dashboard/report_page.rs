//! The step-8 support report (`crate::read::report`) on the dashboard: rendered
//! as a page (`/report`), and downloadable as Markdown (`/report.md`,
//! `?lang=ja` for Japanese) and JSON (`/report.json`) — the same documents
//! `rollcall report` writes.

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::access::Viewer;
use super::html::{Frame, esc, page, query, url_component};
use super::pages::{error_page, step_title};
use super::{App, Nonce};
use crate::read::report::{self, Report};
use rollcall_common::i18n::{Catalog, Lang};

/// Straggler entries rendered on the page at most; the downloads hold all.
const MAX_PAGE_STRAGGLERS: usize = 200;

#[derive(Debug, Default, Deserialize)]
pub struct ReportQuery {
    pub rollout: Option<String>,
    pub lang: Option<String>,
}

impl ReportQuery {
    fn rollout(&self) -> Result<Option<&str>, &'static str> {
        match self.rollout.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(id) if id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => Ok(Some(id)),
            Some(_) => Err("rollout must be a rollout id"),
        }
    }

    fn lang(&self) -> Result<Lang, &'static str> {
        match self.lang.as_deref() {
            None | Some("") | Some("en") => Ok(Lang::En),
            Some("ja") => Ok(Lang::Ja),
            Some(_) => Err("lang must be en or ja"),
        }
    }
}

async fn build(app: &App, params: &ReportQuery) -> Result<Report, (StatusCode, String)> {
    let rollout = params
        .rollout()
        .map_err(|message| (StatusCode::BAD_REQUEST, message.to_string()))?;
    report::build(&app.coordinator, rollout).await.map_err(|status| {
        let code = match status.code() {
            tonic::Code::NotFound => StatusCode::NOT_FOUND,
            tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (code, status.message().to_string())
    })
}

fn download(content_type: &'static str, filename: &str, body: String) -> Response {
    let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response();
    // The rollout id is [A-Za-z0-9-], so the file name needs no quoting rules.
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

fn plain_error(code: StatusCode, message: &str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

pub async fn markdown(State(app): State<App>, Query(params): Query<ReportQuery>) -> Response {
    let lang = match params.lang() {
        Ok(lang) => lang,
        Err(message) => return plain_error(StatusCode::BAD_REQUEST, message),
    };
    match build(&app, &params).await {
        Ok(report) => {
            let text = report::markdown::render(&report, &Catalog::new(lang));
            let filename = format!("rollcall-report-{}.md", report.rollout.id);
            download("text/markdown; charset=utf-8", &filename, text)
        }
        Err((code, message)) => plain_error(code, &message),
    }
}

pub async fn json(State(app): State<App>, Query(params): Query<ReportQuery>) -> Response {
    match build(&app, &params).await {
        Ok(report) => match serde_json::to_string_pretty(&report) {
            Ok(text) => {
                let filename = format!("rollcall-report-{}.json", report.rollout.id);
                download("application/json", &filename, text)
            }
            Err(error) => plain_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("encode the report: {error}"),
            ),
        },
        Err((code, message)) => plain_error(code, &message),
    }
}

pub async fn html(
    State(app): State<App>,
    Extension(viewer): Extension<Viewer>,
    Extension(nonce): Extension<Nonce>,
    Query(params): Query<ReportQuery>,
) -> Response {
    let report = match build(&app, &params).await {
        Ok(report) => report,
        Err((code, message)) => return error_page(Some(&viewer), &nonce.0, code, &message),
    };
    let viewer_label = format!("{} ({})", viewer.name, viewer.role);
    let frame = Frame {
        title: "Support report",
        nonce: &nonce.0,
        live_url: None,
        viewer: &viewer_label,
    };
    let body = render(&report);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page(&frame, &body),
    )
        .into_response()
}

fn percent(part: u32, whole: u32) -> String {
    if whole == 0 {
        "\u{2014}".into()
    } else {
        format!("{:.0}%", 100.0 * f64::from(part) / f64::from(whole))
    }
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "<strong>no</strong>" }
}

/// The report as HTML; every string from the report is escaped (most come
/// from agents).
fn render(report: &Report) -> String {
    let rollout_query = query(&[("rollout", &report.rollout.id)]);
    let ja_query = query(&[("rollout", &report.rollout.id), ("lang", "ja")]);
    let mut out = String::from("<div class=\"report\">");
    let _ = write!(
        out,
        "<h1>Support report \u{b7} runbook step 8</h1><p class=\"sub\">Rollout <a class=\"mono\" href=\"/{q}\">{id}</a> \
\u{2192} {target} \u{b7} {state} \u{b7} generated {generated}</p>\
<p>Download: <a href=\"/report.md{q}\" id=\"download-md\">Markdown</a> \u{b7} \
<a href=\"/report.md{ja}\">Markdown (Japanese)</a> \u{b7} <a href=\"/report.json{q}\" id=\"download-json\">JSON</a></p>",
        q = esc(&rollout_query),
        ja = esc(&ja_query),
        id = esc(&report.rollout.id),
        target = esc(&report.rollout.target),
        state = esc(&report.rollout.state),
        generated = esc(&report.generated_at),
    );
    let affected = report.affected;
    let _ = write!(
        out,
        "<div class=\"stats\"><div class=\"stat bad\" id=\"stat-affected\"><div class=\"n\">{} <small class=\"muted\">of {}</small></div>\
<div class=\"l\">machines affected ({})</div></div></div>",
        affected.count,
        affected.total,
        percent(affected.count, affected.total)
    );
    if let Some(cause) = &report.fleet_cause {
        let _ = write!(
            out,
            "<div class=\"banner\">Fleet-wide cause: <strong>{}</strong> \u{2014} (nearly) every affected machine fails it.</div>",
            esc(cause)
        );
    }

    out.push_str("<div class=\"grid\"><div class=\"card\"><h2>Affected by cause</h2>");
    if report.by_cause.is_empty() {
        out.push_str("<p class=\"empty\">No stragglers.</p>");
    } else {
        out.push_str("<table><thead><tr><th>Cause</th><th class=\"num\">Machines</th></tr></thead><tbody>");
        for (cause, count) in &report.by_cause {
            let _ = write!(out, "<tr><td>{}</td><td class=\"num\">{count}</td></tr>", esc(cause));
        }
        out.push_str("</tbody></table>");
    }
    out.push_str(
        "</div><div class=\"card\"><h2>\u{201c}Update Now\u{201d} outcomes</h2><table><thead><tr><th>Where</th>\
<th class=\"num\">Agents that ran it</th><th class=\"num\">Then reported the target</th>\
<th class=\"num\">Refused</th></tr></thead><tbody>",
    );
    let update_now = report.update_now;
    for (name, tried) in [
        ("on the endpoint (tray icon)", update_now.agent_side),
        ("notification from the server", update_now.server_side),
    ] {
        let _ = write!(
            out,
            "<tr><td>{name}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            tried.tried, tried.completed, tried.refused
        );
    }
    out.push_str("</tbody></table></div></div>");

    if !report.clock_skew_flagged.is_empty() {
        out.push_str(
            "<div class=\"card\"><h2>Agents whose clock is wrong</h2><p>rollcall places their reports in time \
by the coordinator's clock; times shown on these endpoints themselves are off by this much.</p><table><thead><tr>\
<th>Host</th><th class=\"num\">Clock skew (ms, + ahead)</th></tr></thead><tbody>",
        );
        for agent in &report.clock_skew_flagged {
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"num\">{:+}</td></tr>",
                esc(&agent.hostname),
                agent.clock_skew_ms
            );
        }
        out.push_str("</tbody></table></div>");
    }

    out.push_str("<div class=\"card\"><h2>Update agents</h2>");
    if report.update_agents.is_empty() {
        out.push_str("<p class=\"empty\">No update agents in this rollout.</p>");
    } else {
        out.push_str(
            "<table><thead><tr><th>Update agent</th><th>Serves at</th><th>Finished upgrading</th><th>Version</th>\
<th>Program and HotFix</th><th>Online</th><th class=\"num\">Blocks</th></tr></thead><tbody>",
        );
        for entry in &report.update_agents {
            let _ = write!(
                out,
                "<tr><td><a href=\"/agents/{}\">{}</a></td><td class=\"mono\">{}</td><td>{}</td><td class=\"mono\">{}</td>\
<td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                url_component(&entry.id),
                esc(&entry.hostname),
                esc(&entry.address),
                yes_no(entry.completed),
                esc(entry.version.as_deref().unwrap_or("")),
                yes_no(entry.program_and_hotfix),
                yes_no(entry.online),
                entry.blocks
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</div>");

    out.push_str(
        "<div class=\"card\"><h2>What sets the affected machines apart</h2>\
<p class=\"muted\">Attribute values much more frequent among affected machines than among completed ones, best separating first.</p>",
    );
    if report.differences.is_empty() {
        out.push_str("<p class=\"empty\">No attribute separates them.</p>");
    } else {
        out.push_str(
            "<table id=\"differences\"><thead><tr><th>Attribute</th><th>Value</th><th class=\"num\">Affected</th>\
<th class=\"num\">Completed</th><th class=\"num\">Separation</th></tr></thead><tbody>",
        );
        for difference in &report.differences {
            let _ = write!(
                out,
                "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"num\">{}/{}</td><td class=\"num\">{}/{}</td>\
<td class=\"num\">{:.0}%</td></tr>",
                esc(&difference.attribute),
                esc(&difference.value),
                difference.stragglers,
                difference.stragglers_total,
                difference.completed,
                difference.completed_total,
                difference.separation * 100.0
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</div>");

    if !report.affected_by_label.is_empty() {
        out.push_str(
            "<div class=\"card\"><h2>Affected by label</h2><table><thead><tr><th>Label</th>\
<th class=\"num\">Affected</th><th class=\"num\">Share</th></tr></thead><tbody>",
        );
        for entry in &report.affected_by_label {
            let _ = write!(
                out,
                "<tr><td>{}={}</td><td class=\"num\">{} of {}</td><td class=\"num\">{}</td></tr>",
                esc(&entry.label),
                esc(&entry.value),
                entry.count,
                entry.total,
                percent(entry.count, entry.total)
            );
        }
        out.push_str("</tbody></table></div>");
    }

    out.push_str("<div class=\"card\"><h2>Affected machines</h2>");
    if report.stragglers.is_empty() {
        out.push_str("<p class=\"empty\">None.</p>");
    } else {
        out.push_str(
            "<table id=\"report-stragglers\"><thead><tr><th>Host</th><th>Cause</th><th class=\"num\">Step</th><th>State</th>\
<th class=\"num\">Blocks</th><th>Failing checks: evidence and remediation</th><th>Logs (step 8)</th></tr></thead><tbody>",
        );
        for entry in report.stragglers.iter().take(MAX_PAGE_STRAGGLERS) {
            let mut failing = String::new();
            for check in &entry.failing {
                let evidence: Vec<String> = check
                    .evidence
                    .iter()
                    .map(|(key, value)| format!("<span class=\"muted\">{}</span> {}", esc(key), esc(value)))
                    .collect();
                let _ = write!(
                    failing,
                    "<div><strong>{}</strong> <span class=\"badge {}\">{}</span> {}<br>{}",
                    esc(&check.name),
                    esc(&check.status),
                    esc(&check.status),
                    esc(&check.message),
                    evidence.join("<br>")
                );
                if !check.remediation.is_empty() {
                    let _ = write!(failing, "<div class=\"remedy\">{}</div>", esc(&check.remediation));
                }
                failing.push_str("</div>");
            }
            // What follows from a blocking update agent: named, not a fault.
            if !entry.consequences.is_empty() {
                let names: Vec<String> = entry.consequences.iter().map(|check| esc(&check.name)).collect();
                let _ = write!(
                    failing,
                    "<div class=\"muted\">{}: {} (follow from the update agent {}, not separate faults)</div>",
                    names.join(", "),
                    esc(&entry.detail),
                    esc(entry.detail_params.get("update_agent").map_or("", String::as_str))
                );
            }
            let _ = write!(
                out,
                "<tr><td><a href=\"/agents/{}\">{}</a></td><td>{}</td><td class=\"num\" title=\"{}\">{}</td>\
<td><span class=\"badge {}\">{}</span></td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                url_component(&entry.id),
                esc(&entry.hostname),
                esc(&entry.cause),
                esc(step_title(entry.runbook_step)),
                entry.runbook_step,
                esc(&entry.state),
                esc(&entry.state),
                entry.blocks,
                failing,
                // Which stragglers have a bundle for support (rollcall collect).
                match &entry.bundle {
                    Some(bundle) => format!(
                        "<span class=\"badge pass\">collected</span> {} · {} files · {} bytes",
                        esc(&bundle.collected_at),
                        bundle.files,
                        bundle.bytes
                    ),
                    None => "<span class=\"muted\">none</span>".to_string(),
                }
            );
        }
        out.push_str("</tbody></table>");
        if report.stragglers.len() > MAX_PAGE_STRAGGLERS {
            let _ = write!(
                out,
                "<p class=\"muted\">Showing {MAX_PAGE_STRAGGLERS} of {}; the downloads hold every one.</p>",
                report.stragglers.len()
            );
        }
    }
    out.push_str("</div></div>");
    out
}
