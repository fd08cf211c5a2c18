//! Reports waiting in `inbox/` in the data dir: outcomes of local
//! `rollcall-agent update-now` runs, handed to the running agent to spool
//! and send. Each file is taken once (removed whether or not it decodes).

use std::path::{Path, PathBuf};

use rollcall_common::proto;

const MAX_REPORT_FILE: u64 = 4 * 1024 * 1024;

/// The waiting reports, oldest name first; none without a data dir.
pub(crate) fn take(data_dir: Option<&Path>) -> Vec<proto::Report> {
    let Some(dir) = data_dir else { return Vec::new() };
    let inbox = dir.join("inbox");
    let Ok(entries) = std::fs::read_dir(&inbox) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pb"))
        .collect();
    paths.sort();
    let mut reports = Vec::new();
    for path in paths {
        if let Ok(raw) = rollcall_common::files::read_bounded(&path, MAX_REPORT_FILE)
            && let Ok(report) = <proto::Report as prost::Message>::decode(raw.as_slice())
        {
            reports.push(report);
        }
        let _ = std::fs::remove_file(&path);
    }
    reports
}
