//! The step-8 report at 10,000 and 100,000 members (issue 27 point 5,
//! docs/BENCHMARKS.md "The step-8 report"): a SQLite store filled with that
//! many agents, each with a report of seven checks, all members of one
//! rollout (half completed, half stragglers), and a roster listing every
//! one; then the report built three times, and the per-agent reads it used
//! to make timed beside it. Ignored by default (minutes of set-up):
//!
//! ```sh
//! cargo test --release -p rollcall-server --lib report::bench -- --ignored --nocapture --test-threads 1
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use rollcall_common::member_state::MemberState;
use rollcall_common::proto;

use crate::store::roster::RosterEntry;
use crate::store::{MemberRow, NewAgent, NewToken, ReportRecord, RolloutRow, Store};

const TARGET: &str = "14.0.2";

fn checks(at: usize) -> Vec<proto::CheckResult> {
    (0..7u32)
        .map(|step| proto::CheckResult {
            name: format!("check-{step}"),
            runbook_step: step + 1,
            status: if at % 2 == 1 && step == 3 {
                proto::CheckStatus::Fail as i32
            } else {
                proto::CheckStatus::Pass as i32
            },
            message: format!("check {step} of agent {at}"),
            evidence: vec![proto::Evidence {
                key: "source".into(),
                value: "endpoint product state".into(),
            }],
            ..Default::default()
        })
        .collect()
}

async fn fill(store: &Arc<dyn Store>, members: usize) {
    let started = Instant::now();
    let hash: [u8; 32] = rand::random();
    store
        .create_token(NewToken {
            id: "bench".into(),
            hash,
            created_at_ms: 1,
            expires_at_ms: i64::MAX,
            uses: u32::try_from(members).unwrap_or(u32::MAX),
            labels: BTreeMap::new(),
            created_by: "bench".into(),
        })
        .await
        .unwrap();
    for at in 0..members {
        store
            .enroll_agent(
                hash,
                100,
                NewAgent {
                    id: format!("agent-{at:06}"),
                    hostname: format!("pc{at:06}"),
                    enrolled_at_ms: 100,
                    cert_serial: format!("serial-{at}"),
                    cert_not_after_ms: i64::MAX,
                },
            )
            .await
            .unwrap();
    }
    let now = rollcall_common::timefmt::now_ms();
    let reports: Vec<ReportRecord> = (0..members)
        .map(|at| ReportRecord {
            agent_id: format!("agent-{at:06}"),
            received_at_ms: now,
            report: proto::Report {
                seq: 1,
                observed_at_ms: now,
                sent_at_ms: now,
                kind: proto::ReportKind::Periodic as i32,
                product: Some(proto::ProductSummary {
                    version: if at % 2 == 0 { TARGET } else { "14.0.1" }.into(),
                    ..Default::default()
                }),
                checks: checks(at),
                ..Default::default()
            },
        })
        .collect();
    for chunk in reports.chunks(4096) {
        store.ingest(chunk.to_vec(), vec![]).await.unwrap();
    }
    let rollout = RolloutRow {
        id: "bench".into(),
        target: TARGET.into(),
        grace_ms: 3_600_000,
        recheck_every_ms: 600_000,
        max_attempts: 3,
        selector: String::new(),
        auto_update_now: false,
        started_at_ms: now - 1000,
        started_by: "bench".into(),
        cancelled_at_ms: None,
    };
    store.create_rollout(rollout).await.unwrap();
    let rows: Vec<MemberRow> = (0..members)
        .map(|at| MemberRow {
            rollout_id: "bench".into(),
            agent_id: format!("agent-{at:06}"),
            state: if at % 2 == 0 {
                MemberState::Completed
            } else {
                MemberState::Straggler { hard: false }
            },
            since_ms: now - 500,
            cause: if at % 2 == 0 {
                String::new()
            } else {
                "update_source".into()
            },
            ..Default::default()
        })
        .collect();
    for chunk in rows.chunks(5000) {
        store.save_members(chunk.to_vec(), vec![]).await.unwrap();
    }
    let entries: Vec<RosterEntry> = (0..members)
        .map(|at| RosterEntry {
            host_name: format!("PC{at:06}"),
            ..Default::default()
        })
        .collect();
    store.replace_roster("csv:bench.csv", entries, now).await.unwrap();
    eprintln!("report bench: {members} members filled in {:?}", started.elapsed());
}

async fn measure(members: usize) {
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let store: Arc<dyn Store> =
        Arc::new(crate::store::sqlite::SqliteStore::open(&dir.path().join("rollcall.db")).unwrap());
    fill(&store, members).await;
    let coordinator = crate::state::for_tests(store.clone());
    for run in 1..=3 {
        let started = Instant::now();
        let report = super::build(&coordinator, None).await.unwrap();
        let took = started.elapsed();
        assert_eq!(report.affected.total, u32::try_from(members).unwrap());
        assert_eq!(report.stragglers.len(), members / 2);
        assert_eq!(
            report.roster.as_ref().map(|r| r.listed),
            Some(u32::try_from(members).unwrap())
        );
        eprintln!("report bench: {members} members, run {run}: report built in {took:?}");
    }
    // What the report used to do: one latest-checks read per member.
    let started = Instant::now();
    for at in 0..members {
        store.latest_checks(&format!("agent-{at:06}")).await.unwrap();
    }
    let one_by_one = started.elapsed();
    let started = Instant::now();
    let all = store
        .latest_checks_of((0..members).map(|at| format!("agent-{at:06}")).collect())
        .await
        .unwrap();
    assert_eq!(all.len(), members);
    eprintln!(
        "report bench: {members} members: latest checks one query per member {one_by_one:?}, batched {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: minutes of set-up (docs/BENCHMARKS.md)"]
async fn the_report_for_ten_thousand_members() {
    measure(10_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: minutes of set-up (docs/BENCHMARKS.md)"]
async fn the_report_for_a_hundred_thousand_members() {
    measure(100_000).await;
}
