//! HTML building blocks: escaping, URL encoding, the page frame with its
//! inline style and the small live-update script.
//!
//! Everything that comes from agents (hostnames, labels, evidence, check
//! messages) is untrusted: it reaches the page only through [`esc`]. The
//! page frame carries the per-response CSP nonce, so even a missed escape
//! could not run a script.

use std::fmt::Write as _;

use rollcall_common::i18n::{Catalog, Lang, catalog};
use rollcall_common::locale_fmt;
use rollcall_common::timefmt::rfc3339;

/// Escapes text for HTML element content and quoted attribute values (and
/// for SVG text, which follows the same XML rules).
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// Percent-encodes one URL path segment or query value: everything but
/// RFC 3986's unreserved characters.
pub fn url_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A query string (`?a=b&c=d`, or empty) from pairs; empty values are left out.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| format!("{key}={}", url_component(value)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// Cuts text to `max` characters (not bytes), marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// "12s ago", "5m ago", "3h ago", "2d ago" (`5分前` in Japanese); "never" for 0.
pub fn ago(c: &Catalog, at_ms: i64, now_ms: i64) -> String {
    if at_ms <= 0 {
        return c.tr("word-never");
    }
    let seconds = (now_ms - at_ms).max(0) / 1000;
    let (key, amount) = match seconds {
        0..=59 => ("dash-ago-seconds", seconds),
        60..=3599 => ("dash-ago-minutes", seconds / 60),
        3600..=86_399 => ("dash-ago-hours", seconds / 3600),
        _ => ("dash-ago-days", seconds / 86_400),
    };
    c.tr_args(key, &[("n", amount.to_string())])
}

/// A `<time>` element: relative text, the exact time on hover (RFC 3339
/// in `datetime`, the reader's date form in the title).
pub fn time_element(c: &Catalog, at_ms: i64, now_ms: i64) -> String {
    if at_ms <= 0 {
        return esc(&c.tr("word-never"));
    }
    format!(
        "<time datetime=\"{}\" title=\"{}\">{}</time>",
        rfc3339(at_ms),
        esc(&locale_fmt::datetime(c.lang(), at_ms)),
        esc(&ago(c, at_ms, now_ms))
    )
}

/// What every page needs besides its body.
pub struct Frame<'a> {
    pub title: &'a str,
    /// The CSP nonce of this response (hex; never from a request).
    pub nonce: &'a str,
    /// The JSON endpoint the page polls for fresh fragments; none for static pages.
    pub live_url: Option<&'a str>,
    /// Who is looking (the admin certificate's name and role).
    pub viewer: &'a str,
    /// The reader's language: every word of the frame, and `<html lang>`.
    pub lang: Lang,
}

/// The whole document around `body`.
pub fn page(frame: &Frame<'_>, body: &str) -> String {
    let c = catalog(frame.lang);
    let live_attribute = frame
        .live_url
        .map(|url| {
            format!(
                " data-live=\"{}\" data-live-text=\"{}\" data-stale-text=\"{}\"",
                esc(url),
                esc(&c.tr("dash-live")),
                esc(&c.tr("dash-reconnecting"))
            )
        })
        .unwrap_or_default();
    let live_status = if frame.live_url.is_some() {
        format!(
            "<span id=\"live-status\" class=\"live\" title=\"{}\">{}</span>",
            esc(&c.tr("dash-live-title")),
            esc(&c.tr("dash-live"))
        )
    } else {
        String::new()
    };
    let script = if frame.live_url.is_some() {
        format!("<script nonce=\"{}\">{LIVE_SCRIPT}</script>", frame.nonce)
    } else {
        String::new()
    };
    // The switch names each language in itself, as language menus do.
    let switch: Vec<String> = Lang::ALL
        .iter()
        .map(|lang| {
            let name = esc(&catalog(*lang).tr("dash-language-name"));
            if *lang == frame.lang {
                format!("<strong lang=\"{0}\">{name}</strong>", lang.code())
            } else {
                format!(
                    "<a href=\"?{}={1}\" lang=\"{1}\" hreflang=\"{1}\" id=\"lang-{1}\">{name}</a>",
                    super::lang::SWITCH,
                    lang.code()
                )
            }
        })
        .collect();
    format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\">\
<title>{title} · rollcall</title><style>{STYLE}</style></head>\
<body{live_attribute}><header class=\"top\"><a class=\"brand\" href=\"/\">rollcall</a>\
<nav><a href=\"/\">{nav_rollout}</a><a href=\"/report\">{nav_report}</a><a href=\"/metrics\">{nav_metrics}</a></nav>\
<span class=\"who\"><span class=\"langs\" id=\"language-switch\" title=\"{switch_title}\">{switch}</span>{live_status}\
<span title=\"{viewer_title}\">{viewer}</span></span></header>\
<main>{body}</main>{script}</body></html>\n",
        lang = frame.lang.code(),
        title = esc(frame.title),
        viewer = esc(frame.viewer),
        nav_rollout = esc(&c.tr("dash-nav-rollout")),
        nav_report = esc(&c.tr("dash-nav-report")),
        nav_metrics = esc(&c.tr("dash-nav-metrics")),
        switch_title = esc(&c.tr("dash-language-switch")),
        switch = switch.join(" | "),
        viewer_title = esc(&c.tr("dash-viewer-title")),
    )
}

/// Polls the page's JSON endpoint and swaps in the server-rendered (and
/// server-escaped) fragments by element id. Pauses while the tab is hidden.
const LIVE_SCRIPT: &str = r#"
(function () {
  var url = document.body.getAttribute("data-live");
  if (!url) { return; }
  var badge = document.getElementById("live-status");
  var liveText = document.body.getAttribute("data-live-text") || "live";
  var staleText = document.body.getAttribute("data-stale-text") || "reconnecting…";
  var every = 5000;
  function mark(ok, text) {
    if (!badge) { return; }
    badge.className = ok ? "live" : "live stale";
    badge.textContent = text;
  }
  function tick() {
    if (document.visibilityState === "hidden") { setTimeout(tick, every); return; }
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        var fragments = data.fragments || {};
        Object.keys(fragments).forEach(function (id) {
          var element = document.getElementById(id);
          if (element) { element.innerHTML = fragments[id]; }
        });
        mark(true, liveText + " · " + (data.generated_at || "").slice(11, 19) + " UTC");
      })
      .catch(function () { mark(false, staleText); })
      .then(function () { setTimeout(tick, every); });
  }
  // The first refresh comes soon after load, then every few seconds.
  setTimeout(tick, 1500);
})();
"#;

const STYLE: &str = r#"
:root { --ink:#0f172a; --muted:#64748b; --line:#e2e8f0; --bg:#f8fafc; --card:#fff;
  --ok:#16a34a; --pend:#94a3b8; --bad:#dc2626; --warn:#d97706; --accent:#2563eb; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif; color:var(--ink); background:var(--bg); }
a { color:var(--accent); text-decoration:none; } a:hover { text-decoration:underline; }
header.top { display:flex; align-items:center; gap:24px; padding:10px 24px; background:#0f172a; color:#e2e8f0; }
header.top .brand { color:#fff; font-weight:700; font-size:16px; letter-spacing:.02em; }
header.top nav a { color:#cbd5e1; margin-right:16px; }
header.top .langs a { color:#cbd5e1; } header.top .langs strong { color:#fff; font-weight:600; }
header.top .who { margin-left:auto; color:#94a3b8; font-size:12px; display:flex; gap:12px; align-items:center; }
.live { color:#86efac; } .live::before { content:"● "; } .live.stale { color:#fca5a5; }
main { max-width:1240px; margin:0 auto; padding:20px 24px 48px; }
h1 { font-size:20px; margin:0 0 4px; } h2 { font-size:15px; margin:0 0 12px; }
.sub { color:var(--muted); margin:0 0 16px; }
.grid { display:grid; grid-template-columns: 2fr 1fr; gap:16px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:16px; margin-bottom:16px; }
.stats { display:grid; grid-template-columns: repeat(6, 1fr); gap:12px; margin-bottom:12px; }
.stat { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px 12px; }
.stat .n { font-size:24px; font-weight:650; } .stat .l { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.stat.ok .n { color:var(--ok); } .stat.bad .n { color:var(--bad); } .stat.warn .n { color:var(--warn); }
.banner { border-radius:8px; padding:12px 16px; margin-bottom:16px; background:#fef2f2; border:1px solid #fecaca; color:#7f1d1d; }
.empty { color:var(--muted); padding:24px; text-align:center; }
table { width:100%; border-collapse:collapse; font-size:13px; }
th { text-align:left; font-weight:600; color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.03em; border-bottom:1px solid var(--line); padding:6px 8px; }
td { border-bottom:1px solid var(--line); padding:6px 8px; vertical-align:top; }
tr:hover td { background:#f1f5f9; }
td.num, th.num { text-align:right; font-variant-numeric: tabular-nums; }
.badge { display:inline-block; padding:1px 7px; border-radius:999px; font-size:12px; font-weight:600; background:#e2e8f0; color:#334155; white-space:nowrap; }
.badge.hard, .badge.fail, .badge.error { background:#fee2e2; color:#991b1b; }
.badge.soft, .badge.warn { background:#fef3c7; color:#92400e; }
.badge.pass, .badge.completed { background:#dcfce7; color:#166534; }
.badge.pending { background:#e2e8f0; color:#334155; }
.badge.ua { background:#dbeafe; color:#1e40af; }
.muted { color:var(--muted); } .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size:12px; }
form.filters { display:flex; flex-wrap:wrap; gap:8px; align-items:end; margin-bottom:12px; }
form.filters label { display:flex; flex-direction:column; font-size:12px; color:var(--muted); gap:2px; }
form.filters select, form.filters input { font:inherit; padding:4px 6px; border:1px solid #cbd5e1; border-radius:6px; background:#fff; min-width:120px; }
form.filters button { font:inherit; padding:5px 14px; border-radius:6px; border:1px solid var(--accent); background:var(--accent); color:#fff; cursor:pointer; }
dl.facts { display:grid; grid-template-columns: max-content 1fr; gap:4px 16px; margin:0; }
dl.facts dt { color:var(--muted); } dl.facts dd { margin:0; word-break:break-word; }
ul.evidence { list-style:none; margin:0; padding:0; } ul.evidence li { word-break:break-word; }
.remedy { background:#eff6ff; border-left:3px solid var(--accent); padding:4px 8px; border-radius:4px; }
svg text { font-family: system-ui, sans-serif; }
@media (max-width: 900px) { .grid { grid-template-columns: 1fr; } .stats { grid-template-columns: repeat(3, 1fr); } }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<img src=x onerror=\"alert('1')\">&"),
            "&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;"
        );
    }

    #[test]
    fn encodes_url_components_and_queries() {
        assert_eq!(url_component("site=osaka/1 ü"), "site%3Dosaka%2F1%20%C3%BC");
        assert_eq!(
            query(&[("cause", "license"), ("q", ""), ("label", "a=b")]),
            "?cause=license&label=a%3Db"
        );
        assert_eq!(query(&[("q", "")]), "");
    }

    #[test]
    fn truncates_by_characters() {
        assert_eq!(truncate("ääää", 3), "ää…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
