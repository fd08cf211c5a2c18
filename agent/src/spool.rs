//! Reports waiting for the coordinator's acknowledgement.
//!
//! Every report gets the next per-agent sequence number and stays in the
//! spool until a cumulative acknowledgement covers it; after a reconnect the
//! agent sends what is left, in order. The spool is bounded by count and
//! bytes: when full, the *oldest* report is dropped (its successor carries
//! the number dropped, so the coordinator knows what is missing), like
//! osquery's buffered logs.
//!
//! On disk: one file per report (`<seq>.pb`, protobuf) plus `state.json`
//! (next seq, drops not yet reported), each written atomically. In memory
//! for the simulator. Either way the spool keeps each pending report
//! encoded, not as a second copy of the message: a deep copy of a report is
//! dozens of allocations, and profiles of a simulated fleet showed them as
//! a fifth of its CPU; decoding is needed only to re-send after a reconnect.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use prost::Message;
use rollcall_common::proto::Report;
use serde::{Deserialize, Serialize};

use crate::config::SpoolConfig;

/// Largest single spooled report read back from disk.
const MAX_REPORT_FILE: u64 = 4 * 1024 * 1024;

/// Streams the coordinator ends with INVALID_ARGUMENT while the same report
/// is the oldest unacknowledged one before that report is set aside (issue
/// 24 point 6): re-sending it unchanged forever silenced the endpoint.
pub const DEAD_LETTER_AFTER: u32 = 3;

#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
struct SpoolState {
    next_seq: u64,
    dropped_unreported: u64,
    dropped_total: u64,
    /// Reports set aside since the last one pushed, and in all.
    dead_unreported: u64,
    dead_total: u64,
    /// The oldest pending report when the coordinator last refused a
    /// stream, and how many times in a row it was the oldest then.
    refused_seq: u64,
    refusals: u32,
}

#[derive(Debug)]
pub struct Spool {
    dir: Option<PathBuf>,
    limits: SpoolConfig,
    state: SpoolState,
    /// Pending reports by seq: encoded, with their `dropped_before`.
    pending: BTreeMap<u64, Pending>,
    bytes: u64,
}

#[derive(Debug)]
struct Pending {
    encoded: Vec<u8>,
    dropped_before: u64,
}

impl Spool {
    /// A spool kept only in memory (simulated agents).
    pub fn in_memory(limits: SpoolConfig) -> Self {
        Spool {
            dir: None,
            limits,
            state: SpoolState {
                next_seq: 1,
                ..SpoolState::default()
            },
            pending: BTreeMap::new(),
            bytes: 0,
        }
    }

    /// Opens (creating) a spool directory. Unreadable report files are
    /// counted as dropped and removed, never fatal.
    pub fn open(dir: &Path, limits: SpoolConfig) -> anyhow::Result<Self> {
        rollcall_common::files::create_private_dir(dir)?;
        let state_path = dir.join("state.json");
        let mut state = match std::fs::read(&state_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
            Err(_) => SpoolState::default(),
        };
        let mut pending = BTreeMap::new();
        let mut bytes = 0;
        for entry in std::fs::read_dir(dir).with_context(|| format!("read spool {}", dir.display()))? {
            let entry = entry?;
            let path = entry.path();
            let Some(seq) = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_suffix(".pb"))
                .and_then(|stem| stem.parse::<u64>().ok())
            else {
                continue;
            };
            let decoded = rollcall_common::files::read_bounded(&path, MAX_REPORT_FILE)
                .ok()
                .and_then(|raw| Report::decode(raw.as_slice()).ok().map(|report| (report, raw)));
            match decoded {
                Some((report, encoded)) if report.seq == seq => {
                    bytes += encoded.len() as u64;
                    pending.insert(
                        seq,
                        Pending {
                            encoded,
                            dropped_before: report.dropped_before,
                        },
                    );
                }
                _ => {
                    tracing::warn!(path = %path.display(), "dropping an unreadable spooled report");
                    state.dropped_unreported += 1;
                    state.dropped_total += 1;
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        // Never reuse a sequence number, even if state.json was lost.
        let highest = pending.keys().next_back().copied().unwrap_or(0);
        state.next_seq = state.next_seq.max(highest + 1).max(1);
        Ok(Spool {
            dir: Some(dir.to_path_buf()),
            limits,
            state,
            pending,
            bytes,
        })
    }

    fn persist_state(&self) -> anyhow::Result<()> {
        if let Some(dir) = &self.dir {
            let text = serde_json::to_vec(&self.state)?;
            rollcall_common::files::write_atomic(&dir.join("state.json"), &text, true)?;
        }
        Ok(())
    }

    fn remove(&mut self, seq: u64) {
        if let Some(pending) = self.pending.remove(&seq) {
            self.bytes = self.bytes.saturating_sub(pending.encoded.len() as u64);
            if let Some(dir) = &self.dir {
                let _ = std::fs::remove_file(dir.join(format!("{seq}.pb")));
            }
        }
    }

    /// Assigns the next sequence number, stores the report and returns it
    /// as it will be sent.
    pub fn push(&mut self, mut report: Report) -> anyhow::Result<Report> {
        // Within the coordinator's limits before it is numbered and kept:
        // an over-long product value is cut and flagged, never refused.
        rollcall_common::limits::bound_report(&mut report);
        report.seq = self.state.next_seq;
        report.dropped_before = 0;
        let size = report.encoded_len() as u64;
        // Make room first, so the count of drops rides on this report.
        while !self.pending.is_empty()
            && (self.pending.len() as u64 >= self.limits.max_reports || self.bytes + size > self.limits.max_bytes)
        {
            let Some(oldest) = self.pending.keys().next().copied() else {
                break;
            };
            let carried = self.pending.get(&oldest).map_or(0, |pending| pending.dropped_before);
            self.remove(oldest);
            self.state.dropped_unreported += 1 + carried;
            self.state.dropped_total += 1;
        }
        report.dropped_before = self.state.dropped_unreported;
        self.state.dropped_unreported = 0;
        report.dead_lettered_before = self.state.dead_unreported;
        self.state.dead_unreported = 0;
        self.state.next_seq += 1;
        let encoded = report.encode_to_vec();
        if let Some(dir) = &self.dir {
            rollcall_common::files::write_atomic(&dir.join(format!("{}.pb", report.seq)), &encoded, true)
                .context("write spooled report")?;
        }
        self.persist_state()?;
        self.bytes += encoded.len() as u64;
        self.pending.insert(
            report.seq,
            Pending {
                encoded,
                dropped_before: report.dropped_before,
            },
        );
        Ok(report)
    }

    /// Everything at or below `seq` is stored by the coordinator.
    pub fn ack(&mut self, seq: u64) {
        let done: Vec<u64> = self.pending.range(..=seq).map(|(seq, _)| *seq).collect();
        for seq in done {
            self.remove(seq);
        }
        if self.state.refusals > 0 && seq >= self.state.refused_seq {
            self.state.refusals = 0;
        }
    }

    /// The coordinator ended a stream with INVALID_ARGUMENT: it refused a
    /// report, and reports are sent oldest first, so the oldest pending one
    /// is the suspect. After [`DEAD_LETTER_AFTER`] such ends in a row with
    /// the same oldest report, it is set aside (removed, counted, and the
    /// count rides on the next report as `dead_lettered_before`); returns
    /// its seq then.
    pub fn refused(&mut self) -> anyhow::Result<Option<u64>> {
        let Some(oldest) = self.pending.keys().next().copied() else {
            return Ok(None);
        };
        if self.state.refused_seq == oldest {
            self.state.refusals = self.state.refusals.saturating_add(1);
        } else {
            self.state.refused_seq = oldest;
            self.state.refusals = 1;
        }
        let dead = self.state.refusals >= DEAD_LETTER_AFTER;
        if dead {
            self.remove(oldest);
            self.state.refusals = 0;
            self.state.dead_unreported += 1;
            self.state.dead_total += 1;
        }
        self.persist_state()?;
        Ok(dead.then_some(oldest))
    }

    /// Reports set aside since the spool was created.
    pub fn dead_lettered_total(&self) -> u64 {
        self.state.dead_total
    }

    /// The coordinator's view after a reconnect: drop what it has, and make
    /// sure new numbers are above what it has seen.
    pub fn sync_with(&mut self, last_stored_seq: u64) -> anyhow::Result<()> {
        self.ack(last_stored_seq);
        if self.state.next_seq <= last_stored_seq {
            self.state.next_seq = last_stored_seq + 1;
            self.persist_state()?;
        }
        Ok(())
    }

    /// Unacknowledged reports, oldest first. They were encoded by this
    /// spool (or read back and decoded at open), so decoding cannot fail.
    pub fn pending(&self) -> Vec<Report> {
        self.pending
            .values()
            .filter_map(|pending| Report::decode(pending.encoded.as_slice()).ok())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn dropped_total(&self) -> u64 {
        self.state.dropped_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_reports: u64) -> SpoolConfig {
        SpoolConfig {
            max_reports,
            max_bytes: 1024 * 1024,
        }
    }

    #[test]
    fn a_report_refused_again_and_again_is_set_aside_and_counted_on_the_next() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spool = Spool::open(dir.path(), limits(10)).expect("open");
        let bad = spool.push(Report::default()).expect("push").seq;
        spool.push(Report::default()).expect("push");
        for _ in 1..DEAD_LETTER_AFTER {
            assert_eq!(spool.refused().expect("refused"), None);
        }
        // Survives a restart of the agent in between.
        let mut spool = Spool::open(dir.path(), limits(10)).expect("reopen");
        assert_eq!(spool.refused().expect("refused"), Some(bad));
        assert_eq!(spool.len(), 1, "the others stay");
        assert_eq!(spool.dead_lettered_total(), 1);
        let next = spool.push(Report::default()).expect("push");
        assert_eq!(next.dead_lettered_before, 1);
        assert_eq!(spool.push(Report::default()).expect("push").dead_lettered_before, 0);
    }

    #[test]
    fn an_ack_past_the_suspect_clears_its_refusals() {
        let mut spool = Spool::in_memory(limits(10));
        let first = spool.push(Report::default()).expect("push").seq;
        spool.push(Report::default()).expect("push");
        spool.refused().expect("refused");
        spool.refused().expect("refused");
        spool.ack(first);
        assert_eq!(spool.refused().expect("refused"), None, "a new suspect starts at one");
    }

    #[test]
    fn sequences_survive_a_restart_and_acks_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spool = Spool::open(dir.path(), limits(10)).expect("open");
        for _ in 0..3 {
            spool.push(Report::default()).expect("push");
        }
        spool.ack(1);
        drop(spool);
        let mut spool = Spool::open(dir.path(), limits(10)).expect("reopen");
        assert_eq!(spool.pending().iter().map(|r| r.seq).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(spool.push(Report::default()).expect("push").seq, 4);
    }

    #[test]
    fn oldest_is_dropped_and_counted_when_full() {
        let mut spool = Spool::in_memory(limits(2));
        spool.push(Report::default()).expect("push");
        spool.push(Report::default()).expect("push");
        let third = spool.push(Report::default()).expect("push");
        assert_eq!(third.dropped_before, 1);
        let fourth = spool.push(Report::default()).expect("push");
        // The dropped second report carried nothing; the count restarts.
        assert_eq!(fourth.dropped_before, 1);
        assert_eq!(spool.dropped_total(), 2);
        assert_eq!(spool.pending().iter().map(|r| r.seq).collect::<Vec<_>>(), vec![3, 4]);
    }

    #[test]
    fn corrupt_files_are_dropped_not_fatal() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("7.pb"), b"\xff\xff garbage").expect("write");
        let mut spool = Spool::open(dir.path(), limits(10)).expect("open");
        assert!(spool.is_empty());
        assert_eq!(spool.push(Report::default()).expect("push").dropped_before, 1);
    }

    #[test]
    fn sync_never_reuses_numbers() {
        let mut spool = Spool::in_memory(limits(10));
        spool.sync_with(41).expect("sync");
        assert_eq!(spool.push(Report::default()).expect("push").seq, 42);
    }
}
