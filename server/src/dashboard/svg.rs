//! Inline SVG charts, written by hand: the completion-over-time chart
//! (completed / pending / stragglers as step lines over the rollout's
//! history points), a stacked progress bar, and small horizontal bars for
//! stragglers by cause and completion by label value.
//!
//! Text that may come from agents (label values) is escaped with
//! [`esc`](super::html::esc); numbers and colours are ours.

use std::fmt::Write as _;

use time::OffsetDateTime;

use rollcall_common::i18n::Catalog;

use super::html::{esc, truncate};

/// One moment of the rollout's history: members per state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    pub at_ms: i64,
    pub completed: u32,
    pub pending: u32,
    pub stragglers: u32,
}

pub const COMPLETED: &str = "#16a34a";
pub const PENDING: &str = "#94a3b8";
pub const STRAGGLERS: &str = "#dc2626";

/// A line of the chart: its name, colour and which count it draws.
type Series = (&'static str, &'static str, fn(&Point) -> u32);

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 400.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 30.0;

/// A clock label for an axis tick: time of day when the span is under a
/// day, else the date.
fn tick_label(at_ms: i64, span_ms: i64) -> String {
    let at =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    if span_ms < 86_400_000 {
        format!("{:02}:{:02}:{:02}", at.hour(), at.minute(), at.second())
    } else {
        format!("{}-{:02}-{:02}", at.year(), u8::from(at.month()), at.day())
    }
}

/// The completion-over-time chart. `now_ms` extends the last state to the
/// right edge, so a quiet rollout still shows where it stands now.
pub fn completion_chart(c: &Catalog, points: &[Point], total: u32, now_ms: i64) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg id=\"completion-chart\" class=\"chart\" data-points=\"{}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
width=\"100%\" role=\"img\" aria-labelledby=\"completion-chart-title\" xmlns=\"http://www.w3.org/2000/svg\">\
<title id=\"completion-chart-title\">{}</title>",
        points.len(),
        super::html::esc(&c.tr("dash-chart-title"))
    );
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#64748b\" font-size=\"13\">{}</text></svg>",
            WIDTH / 2.0,
            HEIGHT / 2.0,
            super::html::esc(&c.tr("dash-chart-empty"))
        );
        return svg;
    };
    let start = first.at_ms;
    let end = now_ms.max(last.at_ms).max(start + 1000);
    let span = end - start;
    let highest = points
        .iter()
        .map(|point| point.completed.max(point.pending).max(point.stragglers))
        .max()
        .unwrap_or(0)
        .max(total)
        .max(1);
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let x = |at_ms: i64| LEFT + plot_width * ((at_ms - start) as f64 / span as f64);
    let y = |value: u32| TOP + plot_height * (1.0 - f64::from(value) / f64::from(highest));

    // Grid and y labels at even steps of whole agents, about four of them.
    let step = highest.div_ceil(4).max(1);
    for tick in (0..=highest).step_by(step as usize) {
        let ty = y(tick);
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{ty:.1}\" x2=\"{:.1}\" y2=\"{ty:.1}\" stroke=\"#e2e8f0\"/>\
<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#64748b\" font-size=\"11\">{tick}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            ty + 4.0
        );
    }
    // Time ticks: five across the span.
    for index in 0..5 {
        let at = start + span * index / 4;
        let anchor = match index {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" fill=\"#64748b\" font-size=\"11\">{}</text>",
            x(at),
            HEIGHT - 10.0,
            tick_label(at, span)
        );
    }
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#94a3b8\"/>",
        TOP + plot_height,
        WIDTH - RIGHT,
        TOP + plot_height
    );

    let series: [Series; 3] = [
        ("pending", PENDING, |point| point.pending),
        ("stragglers", STRAGGLERS, |point| point.stragglers),
        ("completed", COMPLETED, |point| point.completed),
    ];
    for (name, colour, value) in series {
        // A step line: a state holds until the next change.
        let mut coordinates = Vec::with_capacity(points.len() * 2 + 1);
        for (index, point) in points.iter().enumerate() {
            if index > 0 {
                let previous = value(&points[index - 1]);
                coordinates.push(format!("{:.1},{:.1}", x(point.at_ms), y(previous)));
            }
            coordinates.push(format!("{:.1},{:.1}", x(point.at_ms), y(value(point))));
        }
        coordinates.push(format!("{:.1},{:.1}", x(end), y(value(last))));
        if name == "completed" {
            // A light area under completion: the share that is done.
            let _ = write!(
                svg,
                "<polygon points=\"{:.1},{:.1} {} {:.1},{:.1}\" fill=\"{colour}\" fill-opacity=\"0.08\"/>",
                x(first.at_ms),
                y(0),
                coordinates.join(" "),
                x(end),
                y(0)
            );
        }
        let _ = write!(
            svg,
            "<polyline class=\"series series-{name}\" data-last=\"{}\" points=\"{}\" fill=\"none\" \
stroke=\"{colour}\" stroke-width=\"2.2\" stroke-linejoin=\"round\"/>",
            value(last),
            coordinates.join(" ")
        );
    }
    // Legend with the current values.
    let mut legend_x = LEFT;
    for (name, colour, value) in [
        ("completed", COMPLETED, last.completed),
        ("pending", PENDING, last.pending),
        ("stragglers", STRAGGLERS, last.stragglers),
    ] {
        let _ = write!(
            svg,
            "<rect x=\"{legend_x:.1}\" y=\"8\" width=\"12\" height=\"4\" rx=\"1\" fill=\"{colour}\"/>\
<text x=\"{:.1}\" y=\"14\" fill=\"#334155\" font-size=\"12\">{} {value}</text>",
            legend_x + 16.0,
            super::html::esc(&c.tr(&format!("dash-series-{name}")))
        );
        legend_x += 130.0;
    }
    svg.push_str("</svg>");
    svg
}

/// A stacked bar: completed, stragglers, pending, out of `total`.
pub fn progress_bar(c: &Catalog, completed: u32, stragglers: u32, pending: u32, total: u32) -> String {
    let total_f = f64::from(total.max(1));
    let mut svg = format!(
        "<svg class=\"progress\" viewBox=\"0 0 1000 14\" width=\"100%\" height=\"14\" preserveAspectRatio=\"none\" \
role=\"img\" aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">\
<rect x=\"0\" y=\"0\" width=\"1000\" height=\"14\" rx=\"4\" fill=\"#e2e8f0\"/>",
        esc(&c.tr("dash-progress-label"))
    );
    let mut offset = 0.0;
    for (value, colour) in [(completed, COMPLETED), (stragglers, STRAGGLERS), (pending, PENDING)] {
        let width = 1000.0 * f64::from(value) / total_f;
        if width > 0.0 {
            let _ = write!(
                svg,
                "<rect x=\"{offset:.1}\" y=\"0\" width=\"{width:.1}\" height=\"14\" fill=\"{colour}\"/>"
            );
        }
        offset += width;
    }
    svg.push_str("</svg>");
    svg
}

/// One row of a small bar chart.
pub struct Bar {
    /// Plain text; escaped here.
    pub label: String,
    /// Filled part (e.g. completed), drawn in `colour`.
    pub value: u32,
    /// The track's full length (e.g. members with this label value).
    pub of: u32,
    /// Text at the right end, e.g. "3/5".
    pub note: String,
    /// Where the row links to (already encoded); none for no link.
    pub href: Option<String>,
    pub colour: &'static str,
}

/// Small horizontal bars, one row each, all on the scale of the largest `of`.
pub fn bars(id: &str, rows: &[Bar]) -> String {
    const ROW: f64 = 22.0;
    // Sized for the narrow column at about 1:1, so 12px text stays 12px.
    const LABEL: f64 = 140.0;
    const TRACK: f64 = 160.0;
    const BAR_WIDTH: f64 = LABEL + TRACK + 50.0;
    let scale = rows.iter().map(|row| row.of).max().unwrap_or(1).max(1);
    let height = ROW * rows.len().max(1) as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg id=\"{}\" class=\"bars\" viewBox=\"0 0 {BAR_WIDTH} {height}\" width=\"100%\" \
style=\"max-width:{BAR_WIDTH}px\" xmlns=\"http://www.w3.org/2000/svg\">",
        esc(id)
    );
    for (index, row) in rows.iter().enumerate() {
        let top = ROW * index as f64;
        let track = TRACK * f64::from(row.of) / f64::from(scale);
        let filled = TRACK * f64::from(row.value) / f64::from(scale);
        let label = esc(&truncate(&row.label, 21));
        let mut body = String::new();
        let _ = write!(
            body,
            "<title>{}</title><text x=\"0\" y=\"{:.1}\" font-size=\"12\" fill=\"#334155\">{label}</text>\
<rect x=\"{LABEL}\" y=\"{:.1}\" width=\"{track:.1}\" height=\"10\" rx=\"3\" fill=\"#e2e8f0\"/>\
<rect x=\"{LABEL}\" y=\"{:.1}\" width=\"{filled:.1}\" height=\"10\" rx=\"3\" fill=\"{}\"/>\
<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#334155\">{}</text>",
            esc(&format!("{}: {}", row.label, row.note)),
            top + 15.0,
            top + 6.0,
            top + 6.0,
            row.colour,
            LABEL + track.max(filled) + 6.0,
            top + 15.0,
            esc(&row.note)
        );
        match &row.href {
            Some(href) => {
                let _ = write!(svg, "<a href=\"{}\"><g class=\"bar\">{body}</g></a>", esc(href));
            }
            None => {
                let _ = write!(svg, "<g class=\"bar\">{body}</g>");
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(at_ms: i64, completed: u32, pending: u32, stragglers: u32) -> Point {
        Point {
            at_ms,
            completed,
            pending,
            stragglers,
        }
    }

    #[test]
    fn chart_draws_three_step_lines_ending_at_now() {
        let points = [point(0, 0, 4, 0), point(10_000, 1, 0, 3), point(20_000, 2, 0, 2)];
        let svg = completion_chart(
            rollcall_common::i18n::catalog(rollcall_common::i18n::Lang::En),
            &points,
            4,
            40_000,
        );
        assert!(svg.contains("data-points=\"3\""));
        for name in ["completed", "pending", "stragglers"] {
            assert!(svg.contains(&format!("series-{name}")), "{name} missing");
        }
        assert!(svg.contains("series-completed\" data-last=\"2\""));
        // The completed line: start, step at 10s, step at 20s, then flat to now (x = right edge).
        let right = format!("{:.1},", WIDTH - RIGHT);
        assert!(svg.contains(&right), "{svg}");
        assert!(svg.ends_with("</svg>"));
    }

    #[test]
    fn empty_history_says_so() {
        let svg = completion_chart(
            rollcall_common::i18n::catalog(rollcall_common::i18n::Lang::En),
            &[],
            0,
            1,
        );
        assert!(svg.contains("no history yet"));
        assert!(svg.contains("data-points=\"0\""));
    }

    #[test]
    fn bar_labels_are_escaped() {
        let svg = bars(
            "b",
            &[Bar {
                label: "site=<script>".into(),
                value: 1,
                of: 2,
                note: "1/2".into(),
                href: Some("/?label=site%3D".into()),
                colour: COMPLETED,
            }],
        );
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("site=&lt;script&gt;"));
    }
}
