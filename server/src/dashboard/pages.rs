//! The rollout overview (`/`) and its live JSON twin (`/api/live`), which
//! returns the same server-rendered fragments the page is built from; the
//! agent page is [`super::agent_page`]. Every word comes from the
//! catalogue in the reader's language (`dash-*`, and the shared words of
//! [`words`]).
//!
//! Every string that an agent could have chosen goes through [`esc`].
//!
//! Longer than ~400 lines: the page's five fragments share its filters and
//! the live endpoint returns all of them; split, each would import the rest.

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rollcall_common::i18n::{Catalog, Lang, catalog};
use rollcall_common::locale_fmt;
use rollcall_common::member_state::severity_word;
use rollcall_common::proto;
use rollcall_common::timefmt::{now_ms, rfc3339};
use rollcall_common::words;
use serde_json::json;
use tonic::{Code, Status};

use super::access::Viewer;
use super::data::{self, Counts, FilterQuery, Filters, Overview};
use super::html::{Frame, esc, page, query, time_element, truncate, url_component};
use super::svg::{self, Bar};
use super::{App, Nonce};
use rollcall_common::cause::{Cause, NO_STEP};

/// Rows in the stragglers table at most; the filters narrow the rest down.
const MAX_TABLE_ROWS: usize = 500;

/// A runbook step's title, from the catalogue (`step-N`).
pub fn step_title(c: &Catalog, step: u32) -> String {
    words::step(c, step)
}

/// What to do about a cause: the catalogue's remediation (`remediation-CODE`).
pub(super) fn cause_advice(c: &Catalog, cause: &str) -> String {
    let advice = words::remediation(c, cause);
    if advice.is_empty() {
        words::remediation(c, Cause::Unknown.code())
    } else {
        advice
    }
}

pub(super) fn viewer_text(viewer: &Viewer) -> String {
    format!("{} ({})", viewer.name, viewer.role)
}

pub(super) fn html_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

pub(super) fn json_response(status: StatusCode, value: serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

pub(super) fn status_code(status: &Status) -> StatusCode {
    match status.code() {
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A whole error page. `message` is the coordinator's own (an API status
/// or the dashboard's, already in the reader's language).
pub fn error_page(viewer: Option<&Viewer>, nonce: &str, lang: Lang, code: StatusCode, message: &str) -> Response {
    let c = catalog(lang);
    let viewer = viewer.map(viewer_text).unwrap_or_default();
    let title = c.tr("dash-error");
    let frame = Frame {
        title: &title,
        nonce,
        live_url: None,
        viewer: &viewer,
        lang,
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
    Extension(lang): Extension<Lang>,
    Query(query_params): Query<FilterQuery>,
) -> Response {
    let c = catalog(lang);
    let filters = match Filters::parse(query_params) {
        Ok(filters) => filters,
        Err(message) => return error_page(Some(&viewer), &nonce.0, lang, StatusCode::BAD_REQUEST, &message),
    };
    let overview = match data::overview(&app.coordinator, &filters).await {
        Ok(overview) => overview,
        Err(status) => {
            return error_page(Some(&viewer), &nonce.0, lang, status_code(&status), status.message());
        }
    };
    let live_url = format!("/api/live{}", filters.query());
    let viewer_label = viewer_text(&viewer);
    let title = c.tr("dash-nav-rollout");
    let frame = Frame {
        title: &title,
        nonce: &nonce.0,
        live_url: Some(&live_url),
        viewer: &viewer_label,
        lang,
    };
    let Some(overview) = overview else {
        let body = format!(
            "<div class=\"card empty\"><h1>{}</h1><p>{}</p></div>",
            esc(&c.tr("dash-no-rollout")),
            c.tr_args(
                "dash-no-rollout-hint",
                &[(
                    "command",
                    "<code>rollcall rollout start --target VERSION</code>".to_string()
                )]
            )
        );
        return html_response(StatusCode::OK, page(&frame, &body));
    };
    html_response(StatusCode::OK, page(&frame, &overview_body(c, &overview, &filters)))
}

pub async fn index_live(
    State(app): State<App>,
    Extension(_viewer): Extension<Viewer>,
    Extension(lang): Extension<Lang>,
    Query(query_params): Query<FilterQuery>,
) -> Response {
    let c = catalog(lang);
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
                    "summary": summary_fragment(c, &overview),
                    "chart": svg::completion_chart(c, &overview.history, overview.scope.total, overview.now_ms),
                    "causes": causes_fragment(c, &overview, &filters),
                    "labels": labels_fragment(c, &overview, &filters),
                    "stragglers": stragglers_fragment(c, &overview, &filters),
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

fn duration_text(c: &Catalog, ms: u64) -> String {
    locale_fmt::duration(c.lang(), i64::try_from(ms).unwrap_or(i64::MAX))
}

fn overview_body(c: &Catalog, overview: &Overview, filters: &Filters) -> String {
    let rollout = &overview.rollout;
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>{} <span class=\"mono\">{}</span> \u{2192} {}</h1>",
        esc(&c.tr("dash-nav-rollout")),
        esc(&rollout.id),
        esc(&rollout.target)
    );
    let started_ms = rollcall_common::timefmt::parse_rfc3339(&rollout.started_at).unwrap_or(0);
    let rollout_state_key = format!("dash-rollout-state-{}", rollout.state);
    let rollout_state = if c.has(&rollout_state_key) {
        c.tr(&rollout_state_key)
    } else {
        rollout.state.clone()
    };
    let _ = write!(
        body,
        "<p class=\"sub\"><span class=\"badge {}\">{}</span> {}{}",
        if rollout.state == "active" {
            "completed"
        } else {
            "pending"
        },
        esc(&rollout_state),
        c.tr_args(
            "dash-rollout-facts",
            &[
                ("started", time_element(c, started_ms, overview.now_ms)),
                ("by", esc(&rollout.started_by)),
                ("grace", esc(&duration_text(c, rollout.grace_ms))),
                ("every", esc(&duration_text(c, rollout.recheck_every_ms))),
                ("attempts", rollout.max_attempts.to_string()),
                (
                    "selector",
                    format!("<span class=\"mono\">{}</span>", esc(&rollout.selector))
                ),
            ]
        ),
        if rollout.auto_update_now {
            format!(" \u{b7} {}", esc(&c.tr("dash-auto-update-now")))
        } else {
            String::new()
        },
    );
    if let Some((key, value)) = &filters.label {
        let _ = write!(
            body,
            " \u{b7} {} <span class=\"badge ua\">{}={}</span> <a href=\"/{}\">{}</a>",
            esc(&c.tr("dash-scope")),
            esc(key),
            esc(value),
            esc(&Filters {
                label: None,
                ..filters.clone()
            }
            .query()),
            esc(&c.tr("dash-show-all"))
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
        let _ = write!(
            body,
            "<p class=\"sub\">{}: {}</p>",
            esc(&c.tr("dash-other-rollouts")),
            others.join(", ")
        );
    }
    if overview.status.fleet_cause == Cause::License.code() {
        let _ = write!(
            body,
            "<div class=\"banner\" id=\"fleet-cause\"><strong>{}</strong> {}</div>",
            esc(&c.tr("dash-fleet-license-title")),
            esc(&c.tr("dash-fleet-license"))
        );
    }
    let _ = write!(
        body,
        "<section id=\"summary\">{}</section>\
<div class=\"grid\"><div><div class=\"card\"><h2>{}</h2><section id=\"chart\">{}</section></div></div>\
<div><div class=\"card\"><h2>{}</h2><section id=\"causes\">{}</section></div>\
<div class=\"card\"><h2>{}</h2><section id=\"labels\">{}</section></div></div></div>",
        summary_fragment(c, overview),
        esc(&c.tr("dash-completion-over-time")),
        svg::completion_chart(c, &overview.history, overview.scope.total, overview.now_ms),
        esc(&c.tr("dash-stragglers-by-cause")),
        causes_fragment(c, overview, filters),
        esc(&c.tr("dash-completion-by-label")),
        labels_fragment(c, overview, filters),
    );
    let _ = write!(
        body,
        "<div class=\"card\"><h2>{}</h2>{}<section id=\"stragglers\">{}</section></div>",
        esc(&c.tr("dash-stragglers-heading")),
        filter_form(c, overview, filters),
        stragglers_fragment(c, overview, filters)
    );
    body
}

fn stat(class: &str, id: &str, value: String, label: &str) -> String {
    format!(
        "<div class=\"stat {class}\" id=\"stat-{id}\"><div class=\"n\">{value}</div><div class=\"l\">{}</div></div>",
        esc(label)
    )
}

fn summary_fragment(c: &Catalog, overview: &Overview) -> String {
    let counts: &Counts = &overview.scope;
    let mut out = String::from("<div class=\"stats\">");
    out.push_str(&stat("", "total", counts.total.to_string(), &c.tr("dash-stat-members")));
    out.push_str(&stat(
        "ok",
        "completed",
        format!(
            "{} <small class=\"muted\">{:.0}%</small>",
            counts.completed,
            counts.percent_completed()
        ),
        &c.tr("state-completed"),
    ));
    out.push_str(&stat(
        "",
        "pending",
        counts.pending.to_string(),
        &c.tr("dash-stat-pending"),
    ));
    out.push_str(&stat(
        if counts.stragglers > 0 { "bad" } else { "" },
        "stragglers",
        counts.stragglers.to_string(),
        &c.tr("dash-series-stragglers"),
    ));
    out.push_str(&stat(
        if counts.hard > 0 { "warn" } else { "" },
        "hard",
        format!(
            "{} <small class=\"muted\">/ {}</small>",
            counts.hard,
            esc(&c.tr_args("dash-stat-soft", &[("count", counts.soft.to_string())]))
        ),
        &c.tr("dash-stat-hard"),
    ));
    out.push_str(&stat(
        if counts.offline > 0 { "warn" } else { "" },
        "offline",
        counts.offline.to_string(),
        &c.tr("presence-offline"),
    ));
    if counts.awaiting_restart > 0 {
        out.push_str(&stat(
            "",
            "awaiting_restart",
            counts.awaiting_restart.to_string(),
            &c.tr("dash-stat-awaiting-restart"),
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
            &c.tr("dash-roster-listed"),
        ));
        out.push_str(&stat(
            "ok",
            "roster-completed",
            roster.completed.to_string(),
            &c.tr("dash-roster-completed"),
        ));
        out.push_str(&stat(
            if roster.behind > 0 { "bad" } else { "" },
            "roster-behind",
            roster.behind.to_string(),
            &c.tr("dash-roster-behind"),
        ));
        out.push_str(&stat(
            if roster.no_probe > 0 { "warn" } else { "" },
            "roster-no-probe",
            roster.no_probe.to_string(),
            &c.tr("dash-roster-no-probe"),
        ));
        out.push_str(&stat(
            if roster.unlisted_probes > 0 { "warn" } else { "" },
            "roster-unlisted",
            roster.unlisted_probes.to_string(),
            &c.tr("dash-roster-unlisted"),
        ));
        out.push_str(&stat(
            "",
            "roster-age",
            esc(&locale_fmt::duration(
                c.lang(),
                i64::try_from(roster.age_s.saturating_mul(1000)).unwrap_or(i64::MAX),
            )),
            &c.tr("dash-roster-age"),
        ));
        out.push_str("</div>");
    }
    out.push_str(&svg::progress_bar(
        c,
        counts.completed,
        counts.stragglers,
        counts.pending,
        counts.total,
    ));
    out
}

fn causes_fragment(c: &Catalog, overview: &Overview, filters: &Filters) -> String {
    if overview.by_cause.is_empty() {
        return format!("<p class=\"empty\">{}</p>", esc(&c.tr("dash-no-stragglers")));
    }
    let mut causes: Vec<(&String, &u32)> = overview.by_cause.iter().collect();
    causes.sort_by_key(|(cause, _)| Cause::rank(cause));
    let total = overview.scope.stragglers.max(1);
    let rows: Vec<Bar> = causes
        .into_iter()
        .map(|(cause, count)| Bar {
            label: match Cause::step_of_code(cause) {
                NO_STEP => format!("\u{2013} {cause}"),
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
        "{}<p class=\"muted\">{}</p>",
        svg::bars("cause-bars", &rows),
        esc(&c.tr("dash-causes-note"))
    )
}

fn labels_fragment(c: &Catalog, overview: &Overview, filters: &Filters) -> String {
    if overview.by_label.is_empty() {
        return format!("<p class=\"empty\">{}</p>", esc(&c.tr("dash-no-labels")));
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
                "<p class=\"muted\">{}</p>",
                esc(&c.tr_args(
                    "dash-more-values",
                    &[("count", group.more.to_string()), ("key", group.key.clone())]
                ))
            );
        }
    }
    let _ = write!(out, "<p class=\"muted\">{}</p>", esc(&c.tr("dash-labels-note")));
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

fn filter_form(c: &Catalog, overview: &Overview, filters: &Filters) -> String {
    let mut causes = option("", &c.tr("dash-any-cause"), filters.cause.is_empty());
    for cause in Cause::ALL {
        let step = match cause.runbook_step() {
            NO_STEP => c.tr("step-none"),
            step => c.tr_args("dash-step-n", &[("step", step.to_string())]),
        };
        causes.push_str(&option(
            cause.code(),
            &format!("{} \u{b7} {step}", cause.code()),
            filters.cause == cause.code(),
        ));
    }
    let mut states = option("", &c.tr("dash-soft-and-hard"), filters.state.is_empty());
    for hard in [false, true] {
        let word = severity_word(hard);
        states.push_str(&option(word, &words::severity(c, hard), filters.state == word));
    }
    let mut steps = option("", &c.tr("dash-any-step"), filters.step.is_none());
    for step in 1..=7 {
        steps.push_str(&option(
            &step.to_string(),
            &format!("{step} \u{b7} {}", step_title(c, step)),
            filters.step == Some(step),
        ));
    }
    let mut labels = option("", &c.tr("dash-all-members"), filters.label.is_none());
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
<label>{}<select name=\"cause\">{causes}</select></label>\
<label>{}<select name=\"state\">{states}</select></label>\
<label>{}<select name=\"step\">{steps}</select></label>\
<label>{}<select name=\"label\">{labels}</select></label>\
<label>{}<input type=\"search\" name=\"q\" value=\"{}\" placeholder=\"{}\"></label>\
<button type=\"submit\">{}</button> <a href=\"/{}\">{}</a></form>",
        esc(&c.tr("dash-col-cause")),
        esc(&c.tr("dash-col-state")),
        esc(&c.tr("dash-runbook-step")),
        esc(&c.tr("dash-label")),
        esc(&c.tr("dash-col-host")),
        esc(&filters.q),
        esc(&c.tr("dash-host-placeholder")),
        esc(&c.tr("dash-filter")),
        esc(&query(&[("rollout", &filters.rollout)])),
        esc(&c.tr("dash-clear")),
    )
}

fn stragglers_fragment(c: &Catalog, overview: &Overview, filters: &Filters) -> String {
    let rows: Vec<_> = overview.filtered(filters).collect();
    if overview.stragglers.is_empty() {
        return format!("<p class=\"empty\">{}</p>", esc(&c.tr("dash-no-stragglers-in-rollout")));
    }
    let mut out = format!(
        "<p class=\"muted\" id=\"stragglers-count\">{}</p>",
        esc(&c.tr_args(
            "dash-stragglers-count",
            &[
                ("shown", rows.len().to_string()),
                ("total", overview.stragglers.len().to_string())
            ]
        ))
    );
    if rows.is_empty() {
        let _ = write!(out, "<p class=\"empty\">{}</p>", esc(&c.tr("dash-no-match")));
        return out;
    }
    let _ = write!(
        out,
        "<table id=\"stragglers-table\"><thead><tr><th>{}</th><th>{}</th><th class=\"num\">{}</th>\
<th>{}</th><th>{}</th><th class=\"num\">{}</th><th>{}</th><th>{}</th>\
<th class=\"num\">{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        esc(&c.tr("dash-col-host")),
        esc(&c.tr("dash-col-cause")),
        esc(&c.tr("dash-col-step")),
        esc(&c.tr("dash-col-state")),
        esc(&c.tr("dash-fact-update-agent")),
        esc(&c.tr("dash-fact-blocks")),
        esc(&c.tr("dash-fact-failing")),
        esc(&c.tr("dash-col-since")),
        esc(&c.tr("dash-col-attempts")),
        esc(&c.tr("dash-col-version")),
        esc(&c.tr("presence-online")),
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
            format!(
                "<span class=\"conflict\">{}: {}</span>",
                esc(&c.tr("dash-contested")),
                claimants.join(", ")
            )
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
        let failing: Vec<String> = straggler.failing.iter().map(|name| words::check(c, name)).collect();
        let _ = write!(
            out,
            "<tr data-agent=\"{id}\" data-cause=\"{cause}\" data-state=\"{state}\">\
<td><a href=\"/agents/{id_url}\">{host}</a>{ua}</td>\
<td><span title=\"{advice}\">{cause}</span></td><td class=\"num\" title=\"{step_title}\">{step}</td>\
<td><span class=\"badge {state}\">{state_text}</span></td><td>{update_agent}</td><td class=\"num\">{blocks}</td>\
<td>{failing}</td><td>{since}</td><td class=\"num\">{attempts}</td><td class=\"mono\">{version}</td>\
<td>{online}</td></tr>",
            id = esc(&straggler.id),
            id_url = url_component(&straggler.id),
            host = esc(&truncate(&straggler.hostname, 64)),
            ua = if is_update_agent {
                format!(
                    " <span class=\"badge ua\">{}</span>",
                    esc(&words::role(c, straggler.role))
                )
            } else {
                String::new()
            },
            advice = esc(&format!(
                "{}: {}",
                words::cause(c, &straggler.cause),
                cause_advice(c, &straggler.cause)
            )),
            cause = esc(&straggler.cause),
            step_title = esc(&step_title(c, straggler.runbook_step)),
            step = straggler.runbook_step,
            state = esc(&straggler.state),
            state_text = esc(&words::state_word(c, &straggler.state)),
            blocks = if straggler.blocks > 0 {
                format!("<strong>{}</strong>", straggler.blocks)
            } else {
                "0".into()
            },
            failing = esc(&failing.join(&c.tr("list-separator"))),
            since = time_element(c, row.since_ms, overview.now_ms),
            attempts = straggler.attempts,
            version = esc(&straggler.version),
            online = if straggler.online {
                esc(&words::yes_no(c, true))
            } else {
                format!("<strong>{}</strong>", esc(&words::yes_no(c, false)))
            },
        );
    }
    out.push_str("</tbody></table>");
    if rows.len() > MAX_TABLE_ROWS {
        let _ = write!(
            out,
            "<p class=\"muted\">{}</p>",
            esc(&c.tr_args("dash-showing-first", &[("count", MAX_TABLE_ROWS.to_string())]))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_has_advice_and_a_step_title_in_both_languages() {
        for lang in Lang::ALL {
            let c = catalog(lang);
            for cause in Cause::ALL {
                let advice = cause_advice(c, cause.code());
                assert!(!advice.is_empty() && !advice.starts_with("remediation-"), "{advice}");
                let title = step_title(c, cause.runbook_step());
                assert!(!title.is_empty() && !title.starts_with("step-"), "{title}");
            }
        }
    }
}
