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
use rollcall_common::i18n::catalog;
use rollcall_common::i18n::{Catalog, Lang};
use rollcall_common::{check_text, locale_fmt, words};

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

    /// The Markdown's language: `lang`, else the reader's (`viewer`).
    fn lang(&self, viewer: Lang) -> Result<Lang, &'static str> {
        match self.lang.as_deref() {
            None | Some("") => Ok(viewer),
            Some("en") => Ok(Lang::En),
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

pub async fn markdown(
    State(app): State<App>,
    Extension(viewer_lang): Extension<Lang>,
    Query(params): Query<ReportQuery>,
) -> Response {
    let lang = match params.lang(viewer_lang) {
        Ok(lang) => lang,
        Err(message) => return plain_error(StatusCode::BAD_REQUEST, message),
    };
    match build(&app, &params).await {
        Ok(report) => {
            let text = report::markdown::render(&report, catalog(lang));
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
    Extension(lang): Extension<Lang>,
    Query(params): Query<ReportQuery>,
) -> Response {
    let report = match build(&app, &params).await {
        Ok(report) => report,
        Err((code, message)) => return error_page(Some(&viewer), &nonce.0, lang, code, &message),
    };
    let c = catalog(lang);
    let title = c.tr("dash-nav-report");
    let viewer_label = format!("{} ({})", viewer.name, viewer.role);
    let frame = Frame {
        title: &title,
        nonce: &nonce.0,
        live_url: None,
        viewer: &viewer_label,
        lang,
    };
    let body = render(c, &report);
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

fn yes_no(c: &Catalog, value: bool) -> String {
    if value {
        esc(&words::yes_no(c, true))
    } else {
        format!("<strong>{}</strong>", esc(&words::yes_no(c, false)))
    }
}

fn th(c: &Catalog, key: &str) -> String {
    format!("<th>{}</th>", esc(&c.tr(key)))
}

fn th_num(c: &Catalog, key: &str) -> String {
    format!("<th class=\"num\">{}</th>", esc(&c.tr(key)))
}

/// The report as HTML in the reader's language; every string from the
/// report is escaped (most come from agents).
fn render(c: &Catalog, report: &Report) -> String {
    let rollout_query = query(&[("rollout", &report.rollout.id)]);
    let other = if c.lang() == Lang::Ja { Lang::En } else { Lang::Ja };
    let other_query = query(&[("rollout", &report.rollout.id), ("lang", other.code())]);
    let mut out = String::from("<div class=\"report\">");
    let _ = write!(
        out,
        "<h1>{title}</h1><p class=\"sub\">{rollout}</p>\
<p>{download}: <a href=\"/report.md{q}\" id=\"download-md\">Markdown</a> \u{b7} \
<a href=\"/report.md{other_q}\" hreflang=\"{other_code}\">{other_md}</a> \u{b7} <a href=\"/report.json{q}\" id=\"download-json\">JSON</a></p>",
        title = esc(&c.tr("dash-report-title")),
        rollout = c.tr_args(
            "dash-report-rollout",
            &[
                (
                    "id",
                    format!(
                        "<a class=\"mono\" href=\"/{}\">{}</a>",
                        esc(&rollout_query),
                        esc(&report.rollout.id)
                    )
                ),
                ("target", esc(&report.rollout.target)),
                ("state", esc(&report.rollout.state)),
                (
                    "generated",
                    esc(&locale_fmt::datetime_text(c.lang(), &report.generated_at))
                ),
            ]
        ),
        download = esc(&c.tr("dash-download")),
        q = esc(&rollout_query),
        other_q = esc(&other_query),
        other_code = other.code(),
        other_md = esc(&c.tr(&format!("dash-markdown-{}", other.code()))),
    );
    let affected = report.affected;
    let _ = write!(
        out,
        "<div class=\"stats\"><div class=\"stat bad\" id=\"stat-affected\"><div class=\"n\">{} <small class=\"muted\">/ {}</small></div>\
<div class=\"l\">{}</div></div></div>",
        affected.count,
        affected.total,
        esc(&c.tr_args(
            "dash-machines-affected",
            &[("percent", percent(affected.count, affected.total))]
        ))
    );
    if let Some(cause) = &report.fleet_cause {
        let _ = write!(
            out,
            "<div class=\"banner\">{}</div>",
            c.tr_args(
                "dash-fleet-cause",
                &[("cause", format!("<strong>{}</strong>", esc(&words::cause(c, cause))))]
            )
        );
    }

    let _ = write!(
        out,
        "<div class=\"grid\"><div class=\"card\"><h2>{}</h2>",
        esc(&c.tr("dash-affected-by-cause"))
    );
    if report.by_cause.is_empty() {
        let _ = write!(out, "<p class=\"empty\">{}</p>", esc(&c.tr("dash-no-stragglers")));
    } else {
        let _ = write!(
            out,
            "<table><thead><tr>{}{}</tr></thead><tbody>",
            th(c, "dash-col-cause"),
            th_num(c, "dash-col-machines")
        );
        for (cause, count) in &report.by_cause {
            let _ = write!(
                out,
                "<tr><td>{} <span class=\"muted mono\">{}</span></td><td class=\"num\">{count}</td></tr>",
                esc(&words::cause(c, cause)),
                esc(cause)
            );
        }
        out.push_str("</tbody></table>");
    }
    let _ = write!(
        out,
        "</div><div class=\"card\"><h2>{}</h2><table><thead><tr>{}{}{}{}</tr></thead><tbody>",
        esc(&c.tr("report-update-now-heading")),
        th(c, "dash-col-where"),
        th_num(c, "dash-col-ran-it"),
        th_num(c, "dash-col-then-target"),
        th_num(c, "dash-col-refused"),
    );
    let update_now = report.update_now;
    for (key, tried) in [
        ("dash-update-now-agent", update_now.agent_side),
        ("dash-update-now-server", update_now.server_side),
    ] {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&c.tr(key)),
            tried.tried,
            tried.completed,
            tried.refused
        );
    }
    out.push_str("</tbody></table></div></div>");

    if !report.clock_skew_flagged.is_empty() {
        let _ = write!(
            out,
            "<div class=\"card\"><h2>{}</h2><p>{}</p><table><thead><tr>{}{}</tr></thead><tbody>",
            esc(&c.tr("report-clock-skew-heading")),
            esc(&c.tr("report-clock-skew-note")),
            th(c, "dash-col-host"),
            th_num(c, "dash-col-clock-skew"),
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

    let _ = write!(
        out,
        "<div class=\"card\"><h2>{}</h2>",
        esc(&c.tr("report-update-agents-heading"))
    );
    if report.update_agents.is_empty() {
        let _ = write!(
            out,
            "<p class=\"empty\">{}</p>",
            esc(&c.tr("report-update-agents-none"))
        );
    } else {
        let _ = write!(
            out,
            "<table><thead><tr>{}{}{}{}{}{}{}</tr></thead><tbody>",
            th(c, "dash-fact-update-agent"),
            th(c, "dash-fact-serves-at"),
            th(c, "dash-col-finished"),
            th(c, "dash-col-version"),
            th(c, "dash-fact-program-and-hotfix"),
            th(c, "presence-online"),
            th_num(c, "dash-fact-blocks"),
        );
        for entry in &report.update_agents {
            let _ = write!(
                out,
                "<tr><td><a href=\"/agents/{}\">{}</a></td><td class=\"mono\">{}</td><td>{}</td><td class=\"mono\">{}</td>\
<td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                url_component(&entry.id),
                esc(&entry.hostname),
                esc(&entry.address),
                yes_no(c, entry.completed),
                esc(entry.version.as_deref().unwrap_or("")),
                yes_no(c, entry.program_and_hotfix),
                yes_no(c, entry.online),
                entry.blocks
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</div>");

    let _ = write!(
        out,
        "<div class=\"card\"><h2>{}</h2><p class=\"muted\">{}</p>",
        esc(&c.tr("report-differences-heading")),
        esc(&c.tr("dash-differences-note"))
    );
    if report.differences.is_empty() {
        let _ = write!(out, "<p class=\"empty\">{}</p>", esc(&c.tr("report-differences-none")));
    } else {
        let _ = write!(
            out,
            "<table id=\"differences\"><thead><tr>{}{}{}{}{}</tr></thead><tbody>",
            th(c, "dash-col-attribute"),
            th(c, "dash-col-value"),
            th_num(c, "dash-col-affected"),
            th_num(c, "state-completed"),
            th_num(c, "dash-col-separation"),
        );
        for difference in &report.differences {
            let (attribute, value) = words::attribute(c, &difference.attribute, &difference.value);
            let _ = write!(
                out,
                "<tr><td title=\"{}\">{}</td><td>{}</td><td class=\"num\">{}/{}</td><td class=\"num\">{}/{}</td>\
<td class=\"num\">{:.0}%</td></tr>",
                esc(&difference.attribute),
                esc(&attribute),
                esc(&value),
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
        let _ = write!(
            out,
            "<div class=\"card\"><h2>{}</h2><table><thead><tr>{}{}{}</tr></thead><tbody>",
            esc(&c.tr("report-by-label-heading")),
            th(c, "dash-label"),
            th_num(c, "dash-col-affected"),
            th_num(c, "dash-col-share"),
        );
        for entry in &report.affected_by_label {
            let _ = write!(
                out,
                "<tr><td>{}={}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&entry.label),
                esc(&entry.value),
                esc(&c.tr_args(
                    "dash-n-of-m",
                    &[("n", entry.count.to_string()), ("m", entry.total.to_string())]
                )),
                percent(entry.count, entry.total)
            );
        }
        out.push_str("</tbody></table></div>");
    }

    stragglers(c, report, &mut out);
    out.push_str("</div></div>");
    out
}

fn stragglers(c: &Catalog, report: &Report, out: &mut String) {
    let _ = write!(
        out,
        "<div class=\"card\"><h2>{}</h2>",
        esc(&c.tr("report-affected-heading"))
    );
    if report.stragglers.is_empty() {
        let _ = write!(out, "<p class=\"empty\">{}</p>", esc(&c.tr("dash-none")));
        return;
    }
    let _ = write!(
        out,
        "<table id=\"report-stragglers\"><thead><tr>{}{}{}{}{}{}{}</tr></thead><tbody>",
        th(c, "dash-col-host"),
        th(c, "dash-col-cause"),
        th_num(c, "dash-col-step"),
        th(c, "dash-col-state"),
        th_num(c, "dash-fact-blocks"),
        th(c, "dash-col-failing-detail"),
        th(c, "dash-col-logs"),
    );
    let list = c.tr("list-separator");
    for entry in report.stragglers.iter().take(MAX_PAGE_STRAGGLERS) {
        let mut failing = String::new();
        for check in &entry.failing {
            let evidence: Vec<String> = check
                .evidence
                .iter()
                .map(|(key, value)| {
                    let (key, phrase) = words::evidence(c, key, value);
                    format!(
                        "<span class=\"muted\">{}</span> {}",
                        esc(&key),
                        esc(&phrase.unwrap_or_else(|| value.clone()))
                    )
                })
                .collect();
            let _ = write!(
                failing,
                "<div><strong>{}</strong> <span class=\"badge {}\">{}</span> {}<br>{}",
                esc(&words::check(c, &check.name)),
                esc(&check.status),
                esc(&words::status_word(c, &check.status)),
                check_text::message(c, &check.code, &check.params, &check.message, &esc),
                evidence.join("<br>")
            );
            let remedy = words::check_remediation(c, &check.name, &check.remediation);
            if !remedy.is_empty() {
                let _ = write!(failing, "<div class=\"remedy\">{}</div>", esc(&remedy));
            }
            failing.push_str("</div>");
        }
        // What follows from a blocking update agent: named, not a fault.
        if !entry.consequences.is_empty() {
            let names: Vec<String> = entry
                .consequences
                .iter()
                .map(|check| words::check(c, &check.name))
                .collect();
            let update_agent = entry.detail_params.get("update_agent").map_or("", String::as_str);
            let _ = write!(
                failing,
                "<div class=\"muted\">{}: {}</div>",
                esc(&names.join(&list)),
                esc(&c.tr_args("report-consequences", &[("update_agent", update_agent.to_string())]))
            );
        }
        let _ = write!(
            out,
            "<tr><td><a href=\"/agents/{}\">{}</a></td><td title=\"{}\">{}</td><td class=\"num\" title=\"{}\">{}</td>\
<td><span class=\"badge {}\">{}</span></td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            url_component(&entry.id),
            esc(&entry.hostname),
            esc(&entry.cause),
            esc(&words::cause(c, &entry.cause)),
            esc(&step_title(c, entry.runbook_step)),
            entry.runbook_step,
            esc(&entry.state),
            esc(&words::state_word(c, &entry.state)),
            entry.blocks,
            failing,
            // Which stragglers have a bundle for support (rollcall collect).
            match &entry.bundle {
                Some(bundle) => format!(
                    "<span class=\"badge pass\">{}</span> {}",
                    esc(&c.tr("dash-collected")),
                    esc(&c.tr_args(
                        "dash-bundle-facts",
                        &[
                            ("at", locale_fmt::datetime_text(c.lang(), &bundle.collected_at)),
                            ("files", bundle.files.to_string()),
                            ("bytes", locale_fmt::count(bundle.bytes)),
                        ]
                    ))
                ),
                None => format!("<span class=\"muted\">{}</span>", esc(&c.tr("dash-none"))),
            }
        );
    }
    out.push_str("</tbody></table>");
    if report.stragglers.len() > MAX_PAGE_STRAGGLERS {
        let _ = write!(
            out,
            "<p class=\"muted\">{}</p>",
            esc(&c.tr_args(
                "dash-showing-of",
                &[
                    ("count", MAX_PAGE_STRAGGLERS.to_string()),
                    ("total", report.stragglers.len().to_string())
                ]
            ))
        );
    }
}
