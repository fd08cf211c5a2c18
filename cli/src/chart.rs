//! Small terminal charts: a progress bar and a completion-over-time line.

/// `[██████░░░░] 60% (6/10)`.
pub fn progress_bar(done: u32, total: u32, width: usize) -> String {
    let ratio = if total == 0 {
        0.0
    } else {
        f64::from(done) / f64::from(total)
    };
    let filled = ((ratio * width as f64).round() as usize).min(width);
    format!(
        "[{}{}] {:>3.0}% ({done}/{total})",
        "█".repeat(filled),
        "░".repeat(width - filled),
        ratio * 100.0
    )
}

/// A one-line chart of completed/total at each point, resampled to `width`.
pub fn sparkline(points: &[(u32, u32)], width: usize) -> String {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if points.is_empty() {
        return "(no history yet)".into();
    }
    let count = points.len().min(width).max(1);
    (0..count)
        .map(|slot| {
            let index = slot * (points.len() - 1) / count.saturating_sub(1).max(1);
            let (done, total) = points[index.min(points.len() - 1)];
            let ratio = if total == 0 {
                0.0
            } else {
                f64::from(done) / f64::from(total)
            };
            LEVELS[((ratio * 7.0).round() as usize).min(7)]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_and_line_scale() {
        assert_eq!(progress_bar(5, 10, 10), "[█████░░░░░]  50% (5/10)");
        assert_eq!(progress_bar(0, 0, 4), "[░░░░]   0% (0/0)");
        assert_eq!(sparkline(&[(0, 4), (2, 4), (4, 4)], 10), "▁▅█");
    }
}
