//! One store suite, two stores: every case takes an `Arc<dyn Store>` and
//! runs once against SQLite (a temp file) and once against PostgreSQL (a
//! fresh database on the server named by `ROLLCALL_TEST_DATABASE_URL`; see
//! [`super::postgres_scratch`] for when that skips and when it fails).
//! A few cases that only make sense with several replicas (exclusive
//! leases, wake-ups, concurrent migrations) run against PostgreSQL only.
//!
//! Longer than ~400 lines: one suite, both stores: every case runs on each
//! from the same fixtures (upgrades of old databases are in `upgrade.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use rollcall_common::member_state::MemberState;
use rollcall_common::proto;
use rollcall_common::receipt::Receipt;

use super::postgres::PgStore;
use super::postgres_scratch::{ScratchDatabase, scratch_or_skip};
use super::sqlite::SqliteStore;
use super::*;

mod upgrade;

// === fixtures ===

fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("rollcall.db")).unwrap();
    (Arc::new(store), dir)
}

async fn postgres(test: &str) -> Option<(Arc<dyn Store>, ScratchDatabase)> {
    let scratch = scratch_or_skip(test).await?;
    let store = PgStore::connect(scratch.url(), "replica-a").await.unwrap();
    Some((Arc::new(store), scratch))
}

/// Runs each case against both stores.
macro_rules! both_stores {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (store, _dir) = super::sqlite();
                    super::$case(store).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some((store, _scratch)) = super::postgres(concat!("on_postgres::", stringify!($case))).await
                    else {
                        return;
                    };
                    super::$case(store).await;
                }
            )*
        }
    };
}

both_stores!(
    tokens_are_spent_once_and_refused_with_a_reason,
    concurrent_enrollments_never_overspend_a_token,
    agents_connect_disconnect_and_reset,
    ingest_stores_each_report_once_and_keeps_the_newest_facts,
    an_agent_counter_saturates_and_every_row_stays_readable,
    an_agent_clock_is_measured_and_never_orders_its_facts,
    revoked_agents_and_certificates_are_listed_and_refused,
    policy_versions_count_up,
    rollouts_members_and_transitions_round_trip,
    commands_are_queued_claimed_once_answered_and_expired,
    undelivered_commands_are_found_by_agent_set_within_a_bound,
    a_lease_is_granted_to_its_holder_and_renewed,
    ingest_keeps_up_with_a_large_batch,
    commands_created_claimed_are_not_queued_and_a_batch_is_tallied,
    checking_a_token_spends_nothing_and_gives_the_same_reason,
    connecting_with_a_renewed_certificate_retires_the_older_ones,
    a_bundle_is_appended_in_order_only_by_its_agent_and_only_the_newest_kept,
    retention_deletes_old_reports_in_batches_and_keeps_what_diagnosis_needs,
    a_roster_is_replaced_whole_in_batches_and_a_failed_pass_keeps_it,
    the_roster_cache_reads_entries_once_per_generation,
);

// Retention of the tables other than reports.
mod prune;

fn token(hash: u8, uses: u32, expires_at_ms: i64) -> NewToken {
    NewToken {
        id: format!("t{hash}"),
        hash: [hash; 32],
        created_at_ms: 1,
        expires_at_ms,
        uses,
        labels: BTreeMap::from([("site".to_string(), "osaka".to_string())]),
        created_by: "alice".into(),
    }
}

fn new_agent(id: &str) -> NewAgent {
    NewAgent {
        id: id.into(),
        hostname: format!("host-{id}"),
        enrolled_at_ms: 10,
        cert_serial: format!("serial-{id}"),
        cert_not_after_ms: 1_000_000,
    }
}

/// Enrolls `ids` with a fresh token each.
async fn enroll(store: &Arc<dyn Store>, ids: &[&str]) {
    for (index, id) in ids.iter().enumerate() {
        let hash = 200 + u8::try_from(index).unwrap();
        store.create_token(token(hash, 1, i64::MAX)).await.unwrap();
        store.enroll_agent([hash; 32], 100, new_agent(id)).await.unwrap();
    }
}

fn hello(id: &str, at_ms: i64) -> HelloRecord {
    HelloRecord {
        agent_id: id.into(),
        hostname: format!("host-{id}"),
        agent_version: "0.1.0".into(),
        role: proto::Role::Endpoint as i32,
        labels: BTreeMap::from([("site".to_string(), "kyoto".to_string())]),
        product: proto::ProductSummary {
            version: "14.0.1".into(),
            ..Default::default()
        },
        host: proto::HostFacts::default(),
        at_ms,
        cert_serial: String::new(),
    }
}

fn report(agent: &str, seq: u64, observed_at_ms: i64, version: &str, command_id: &str) -> ReportRecord {
    ReportRecord {
        agent_id: agent.into(),
        received_at_ms: observed_at_ms + 5,
        report: proto::Report {
            seq,
            observed_at_ms,
            kind: proto::ReportKind::Periodic as i32,
            command_id: command_id.into(),
            product: Some(proto::ProductSummary {
                version: version.into(),
                ..Default::default()
            }),
            checks: vec![proto::CheckResult {
                name: "license".into(),
                runbook_step: 1,
                status: proto::CheckStatus::Pass as i32,
                message: format!("seen at {observed_at_ms}"),
                ..Default::default()
            }],
            dropped_before: 1,
            // Sent as received: a clock in step with the coordinator's.
            sent_at_ms: observed_at_ms + 5,
            ..Default::default()
        },
    }
}

fn receipt(agent: &str, command: &str, text: &str) -> ReceiptRecord {
    ReceiptRecord {
        agent_id: agent.into(),
        command_id: command.into(),
        receipt: Receipt::from_storage(text).expect("a receipt's text"),
    }
}

fn command(id: &str, agent: &str, created_at_ms: i64, expires_at_ms: i64) -> CommandRow {
    CommandRow {
        id: id.into(),
        batch_id: "b1".into(),
        agent_id: agent.into(),
        kind: proto::CommandKind::Recheck as i32,
        rollout_id: "r1".into(),
        target: "14.0.2".into(),
        origin: "admin:alice".into(),
        splay_ms: 100,
        created_at_ms,
        expires_at_ms,
        ..Default::default()
    }
}

// === cases for both stores ===

fn chunk(agent: &str, command: &str, index: u32, data: &[u8], last: bool, at_ms: i64) -> bundles::ChunkRecord {
    bundles::ChunkRecord {
        agent_id: agent.into(),
        command_id: command.into(),
        index,
        data: data.to_vec(),
        last,
        files: if last { 2 } else { 0 },
        skipped: if last { 1 } else { 0 },
        at_ms,
        max_bytes: 10,
    }
}

async fn a_bundle_is_appended_in_order_only_by_its_agent_and_only_the_newest_kept(store: Arc<dyn Store>) {
    enroll(&store, &["a1", "a2"]).await;
    let collect = |id: &str| CommandRow {
        kind: proto::CommandKind::Collect as i32,
        ..command(id, "a1", 100, 10_000)
    };
    store
        .create_commands(vec![collect("c1"), collect("c2"), command("r1", "a1", 100, 10_000)])
        .await
        .unwrap();
    // Nobody asked a2, and a recheck is no collect.
    let refused = store
        .put_bundle_chunk(chunk("a2", "c1", 0, b"abc", false, 200))
        .await
        .unwrap();
    assert!(refused.unwrap_err().contains("no collect command"));
    let refused = store
        .put_bundle_chunk(chunk("a1", "r1", 0, b"abc", false, 200))
        .await
        .unwrap();
    assert!(refused.is_err());
    // In order only.
    let first = store
        .put_bundle_chunk(chunk("a1", "c1", 0, b"abc", false, 200))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first.chunks, first.bytes, first.completed_at_ms), (1, 3, None));
    let gap = store
        .put_bundle_chunk(chunk("a1", "c1", 2, b"def", false, 210))
        .await
        .unwrap();
    assert!(gap.unwrap_err().contains("out of order"));
    assert_eq!(
        store.bundle_data("c1").await.unwrap(),
        None,
        "incomplete bundles are not handed out"
    );
    // The coordinator's byte limit (10 here).
    let over = store
        .put_bundle_chunk(chunk("a1", "c1", 1, b"12345678", false, 210))
        .await
        .unwrap();
    assert!(over.unwrap_err().contains("limit"));
    let done = store
        .put_bundle_chunk(chunk("a1", "c1", 1, b"def", true, 220))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (done.chunks, done.bytes, done.completed_at_ms, done.files, done.skipped),
        (2, 6, Some(220), 2, 1)
    );
    assert_eq!(store.bundle_data("c1").await.unwrap().as_deref(), Some(&b"abcdef"[..]));
    let again = store
        .put_bundle_chunk(chunk("a1", "c1", 2, b"g", true, 230))
        .await
        .unwrap();
    assert!(again.unwrap_err().contains("already complete"));
    let answered = store.batch_commands("b1").await.unwrap();
    assert!(answered.iter().any(|c| c.id == "c1" && c.answered_at_ms == Some(220)));

    // A newer bundle replaces the agent's older one.
    store
        .put_bundle_chunk(chunk("a1", "c2", 0, b"xyz", true, 300))
        .await
        .unwrap()
        .unwrap();
    let kept: Vec<String> = store
        .list_bundles()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.command_id)
        .collect();
    assert_eq!(kept, ["c2"]);
    assert_eq!(store.bundle_data("c1").await.unwrap(), None);
}

async fn tokens_are_spent_once_and_refused_with_a_reason(store: Arc<dyn Store>) {
    store.create_token(token(1, 2, 1000)).await.unwrap();
    let labels = store.enroll_agent([1; 32], 100, new_agent("a1")).await.unwrap();
    assert_eq!(labels.get("site").map(String::as_str), Some("osaka"));
    store.enroll_agent([1; 32], 100, new_agent("a2")).await.unwrap();
    let used_up = store.enroll_agent([1; 32], 100, new_agent("a3")).await;
    assert!(matches!(used_up, Err(StoreError::TokenUsedUp)), "{used_up:?}");
    let unknown = store.enroll_agent([9; 32], 100, new_agent("a3")).await;
    assert!(matches!(unknown, Err(StoreError::TokenUnknown)), "{unknown:?}");

    store.create_token(token(2, 5, 1000)).await.unwrap();
    let expired = store.enroll_agent([2; 32], 1000, new_agent("a3")).await;
    assert!(matches!(expired, Err(StoreError::TokenExpired)), "{expired:?}");
    assert!(store.revoke_token("t2").await.unwrap());
    assert!(!store.revoke_token("nope").await.unwrap());
    let revoked = store.enroll_agent([2; 32], 100, new_agent("a3")).await;
    assert!(matches!(revoked, Err(StoreError::TokenRevoked)), "{revoked:?}");

    let tokens = store.list_tokens().await.unwrap();
    assert_eq!(tokens.len(), 2);
    assert_eq!((tokens[0].uses_left, tokens[0].uses_total), (0, 2));
    assert!(tokens[1].revoked);
    assert_eq!(tokens[0].created_by, "alice");
    let agent = store.get_agent("a1").await.unwrap().unwrap();
    assert_eq!(agent.labels.get("site").map(String::as_str), Some("osaka"));
    assert!(store.get_agent("a3").await.unwrap().is_none());
}

async fn checking_a_token_spends_nothing_and_gives_the_same_reason(store: Arc<dyn Store>) {
    store.create_token(token(4, 1, 1000)).await.unwrap();
    for _ in 0..3 {
        store.check_token([4; 32], 100).await.unwrap();
    }
    assert!(matches!(
        store.check_token([8; 32], 100).await,
        Err(StoreError::TokenUnknown)
    ));
    assert!(matches!(
        store.check_token([4; 32], 1000).await,
        Err(StoreError::TokenExpired)
    ));
    store.enroll_agent([4; 32], 100, new_agent("k1")).await.unwrap();
    assert!(matches!(
        store.check_token([4; 32], 100).await,
        Err(StoreError::TokenUsedUp)
    ));
    store.create_token(token(5, 3, 1000)).await.unwrap();
    assert!(store.revoke_token("t5").await.unwrap());
    assert!(matches!(
        store.check_token([5; 32], 100).await,
        Err(StoreError::TokenRevoked)
    ));
}

async fn connecting_with_a_renewed_certificate_retires_the_older_ones(store: Arc<dyn Store>) {
    enroll(&store, &["a", "b"]).await;
    // Connecting with the enrolment certificate retires nothing.
    let first = store
        .agent_connected(HelloRecord {
            cert_serial: "serial-a".into(),
            ..hello("a", 1)
        })
        .await
        .unwrap();
    assert!(first.retired_serials.is_empty());
    store.record_certificate("a", "serial-a2", 2_000_000).await.unwrap();
    // Still on the old one (the renewal was not installed yet): nothing retired.
    let again = store
        .agent_connected(HelloRecord {
            cert_serial: "serial-a".into(),
            ..hello("a", 2)
        })
        .await
        .unwrap();
    assert!(again.retired_serials.is_empty());
    let renewed = store
        .agent_connected(HelloRecord {
            cert_serial: "serial-a2".into(),
            ..hello("a", 3)
        })
        .await
        .unwrap();
    assert_eq!(renewed.retired_serials, ["serial-a"]);
    // Two renewals within one second expire in the same second (X.509 keeps
    // seconds): the one the agent connects with wins.
    store.record_certificate("a", "serial-a3", 2_000_000).await.unwrap();
    let same_second = store
        .agent_connected(HelloRecord {
            cert_serial: "serial-a3".into(),
            ..hello("a", 4)
        })
        .await
        .unwrap();
    assert_eq!(same_second.retired_serials, ["serial-a2"]);
    let mut revoked = store.revoked().await.unwrap();
    revoked.serials.sort();
    assert_eq!(revoked.serials, ["serial-a", "serial-a2"]);
    assert!(revoked.agent_ids.is_empty(), "the agent itself stays in good standing");
    // Another agent's certificates are never touched by this one's serial.
    let other = store
        .agent_connected(HelloRecord {
            cert_serial: "serial-a2".into(),
            ..hello("b", 4)
        })
        .await
        .unwrap();
    assert!(other.retired_serials.is_empty());
}

async fn concurrent_enrollments_never_overspend_a_token(store: Arc<dyn Store>) {
    store.create_token(token(3, 5, i64::MAX)).await.unwrap();
    let attempts = (0..20).map(|index| {
        let store = store.clone();
        tokio::spawn(async move { store.enroll_agent([3; 32], 100, new_agent(&format!("c{index}"))).await })
    });
    let mut enrolled = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => enrolled += 1,
            Err(StoreError::TokenUsedUp) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(enrolled, 5);
    assert_eq!(store.list_agents().await.unwrap().len(), 5);
}

async fn agents_connect_disconnect_and_reset(store: Arc<dyn Store>) {
    enroll(&store, &["b", "a"]).await;
    let unknown = store.agent_connected(hello("zzz", 5)).await;
    assert!(matches!(unknown, Err(StoreError::NotFound(_))), "{unknown:?}");
    let connected = store.agent_connected(hello("a", 500)).await.unwrap();
    assert_eq!(connected.last_seq, 0);
    // The token bound site=osaka: the hello's site=kyoto is ignored, and said.
    assert_eq!(
        connected.ignored_labels,
        [crate::domain::bound_labels::IgnoredLabel {
            key: "site".into(),
            told: "kyoto".into(),
            bound: "osaka".into(),
        }]
    );
    let mut added = hello("b", 500);
    added.labels.insert("rack".into(), "r1".into());
    store.agent_connected(added).await.unwrap();
    let agents = store.list_agents().await.unwrap();
    // Ordered by hostname, byte-wise.
    assert_eq!(
        agents.iter().map(|agent| agent.id.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert!(agents.iter().all(|agent| agent.connected && agent.last_seen_ms == 500));
    assert_eq!(agents[0].labels.get("site").map(String::as_str), Some("osaka"));
    assert_eq!(agents[1].labels.get("site").map(String::as_str), Some("osaka"));
    assert_eq!(agents[1].labels.get("rack").map(String::as_str), Some("r1"));
    assert_eq!(agents[0].product.version, "14.0.1");

    store
        .touch_agents(vec![("a".into(), 900), ("b".into(), 400)])
        .await
        .unwrap();
    store.agent_disconnected("a", 800).await.unwrap();
    let a = store.get_agent("a").await.unwrap().unwrap();
    assert!(!a.connected);
    assert_eq!(a.last_seen_ms, 900, "last seen never goes back");
    let b = store.get_agent("b").await.unwrap().unwrap();
    assert_eq!(b.last_seen_ms, 500);
    store.reset_connections().await.unwrap();
    assert!(!store.get_agent("b").await.unwrap().unwrap().connected);
}

/// Issue 24 point 1, below the edge: even a count the edge would refuse
/// (this record is built by hand) saturates in the store instead of
/// overflowing, in one batch and across batches, and the fleet list still
/// reads every row afterwards.
async fn an_agent_counter_saturates_and_every_row_stays_readable(store: Arc<dyn Store>) {
    enroll(&store, &["a", "b"]).await;
    store.agent_connected(hello("a", 1)).await.unwrap();
    store.agent_connected(hello("b", 1)).await.unwrap();
    let huge = |seq| {
        let mut record = report("a", seq, 1000 + i64::try_from(seq).unwrap(), "14.0.1", "");
        record.report.dropped_before = u64::MAX;
        record
    };
    store
        .ingest(vec![huge(1), huge(2), report("b", 1, 1000, "14.0.1", "")], vec![])
        .await
        .unwrap();
    store
        .ingest(vec![report("a", 3, 1003, "14.0.1", "")], vec![])
        .await
        .unwrap();
    store.ingest(vec![huge(4)], vec![]).await.unwrap();
    let agents = store.list_agents().await.unwrap();
    assert_eq!(agents.len(), 2, "{agents:?}");
    let a = agents.iter().find(|agent| agent.id == "a").unwrap();
    assert_eq!(
        a.dropped_reports,
        i64::MAX as u64,
        "saturated, not wrapped or turned into a REAL"
    );
    assert!(!a.unreadable);
    assert_eq!(agents.iter().find(|agent| agent.id == "b").unwrap().dropped_reports, 1);
    assert_eq!(a.last_seq, 4, "the saturated reports were stored");
}

async fn ingest_stores_each_report_once_and_keeps_the_newest_facts(store: Arc<dyn Store>) {
    enroll(&store, &["a", "b"]).await;
    store.agent_connected(hello("a", 1)).await.unwrap();
    store
        .create_commands(vec![command("c1", "a", 1, i64::MAX)])
        .await
        .unwrap();
    // Acknowledgements are cumulative, so reports count in seq order: a seq
    // not above one stored before (or earlier in the batch) is a re-send.
    // Here: a seq below, a duplicate inside the batch, and last a higher seq
    // whose clock says it is older (a clock set back): it is the newest.
    let batch = vec![
        report("a", 2, 2000, "14.0.2", "c1"),
        report("a", 1, 1000, "14.0.1", ""),
        report("a", 2, 2000, "14.0.2", "c1"),
        report("b", 1, 3000, "13.0.0", ""),
        report("a", 3, 1500, "14.0.0", ""),
    ];
    store.ingest(batch, vec![]).await.unwrap();
    // A re-send after a lost acknowledgement changes nothing.
    store
        .ingest(vec![report("a", 2, 2000, "9.9.9", "")], vec![])
        .await
        .unwrap();

    assert_eq!(store.count_reports(None).await.unwrap(), 3);
    assert_eq!(store.count_reports(Some("a")).await.unwrap(), 2);
    let a = store.get_agent("a").await.unwrap().unwrap();
    assert_eq!(a.last_seq, 3);
    assert_eq!(a.last_report_at_ms, 2000);
    assert_eq!(
        a.product.version, "14.0.0",
        "the highest seq wins, whatever the agent's clock says"
    );
    assert_eq!(a.dropped_reports, 2, "once per stored report");
    assert_eq!(a.last_seen_ms, 2005);

    let (checks, observed) = store.latest_checks("a").await.unwrap();
    assert_eq!(observed, 1500, "the check run of the highest seq");
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].message, "seen at 1500");
    // New runs are found by receive time (a's newest was received at 1505).
    let since = store.latest_checks_since(1504).await.unwrap();
    let mut agents: Vec<&str> = since.iter().map(|run| run.agent_id.as_str()).collect();
    agents.sort_unstable();
    assert_eq!(agents, ["a", "b"]);
    let since = store.latest_checks_since(1505).await.unwrap();
    assert_eq!(since.iter().map(|run| run.agent_id.as_str()).collect::<Vec<_>>(), ["b"]);

    // A newer run replaces the previous one as a whole (in runbook order);
    // a report without checks leaves it in place.
    let mut run = report("a", 4, 2500, "14.0.2", "");
    run.report.checks = vec![
        proto::CheckResult {
            name: "update_source".into(),
            runbook_step: 3,
            ..Default::default()
        },
        proto::CheckResult {
            name: "version".into(),
            runbook_step: 0,
            ..Default::default()
        },
    ];
    let mut bare = report("a", 5, 2600, "14.0.2", "");
    bare.report.checks.clear();
    store.ingest(vec![run, bare], vec![]).await.unwrap();
    let (checks, observed) = store.latest_checks("a").await.unwrap();
    assert_eq!(observed, 2500);
    assert_eq!(
        checks.iter().map(|check| check.name.as_str()).collect::<Vec<_>>(),
        ["version", "update_source"]
    );
    let since = store.latest_checks_since(2000).await.unwrap();
    let a_run = since.iter().find(|run| run.agent_id == "a").unwrap();
    assert_eq!(
        (a_run.observed_at_ms, a_run.received_at_ms, a_run.checks.len()),
        (2500, 2505, 2)
    );
    assert_eq!(since.len(), 2, "a's new run and b's");
    assert!(store.latest_checks("unknown").await.unwrap().0.is_empty());
    // Many at once (the report, stragglers): the same runs, in one query.
    let many = store
        .latest_checks_of(vec!["a".into(), "b".into(), "unknown".into()])
        .await
        .unwrap();
    assert_eq!(many.len(), 2, "an agent without a run is absent");
    assert_eq!(many["a"], store.latest_checks("a").await.unwrap().0);
    assert_eq!(many["b"], store.latest_checks("b").await.unwrap().0);
    assert!(store.latest_checks_of(Vec::new()).await.unwrap().is_empty());

    let answered = store.batch_commands("b1").await.unwrap();
    assert_eq!(answered[0].answered_at_ms, Some(2005));
    assert_eq!(answered[0].answer_version, "14.0.2");
    let periodic = store
        .reports_meta(proto::ReportKind::Periodic as i32, 1500)
        .await
        .unwrap();
    assert_eq!(
        periodic.iter().map(|meta| meta.observed_at_ms).collect::<Vec<_>>(),
        [1500, 2000, 2500, 2600, 3000]
    );
    assert!(periodic.iter().all(|meta| !meta.update_now_refused));
    let received = store.reports_received(2005, 2605).await.unwrap();
    assert_eq!(
        received
            .iter()
            .map(|meta| (meta.agent_id.as_str(), meta.seq, meta.received_at_ms))
            .collect::<Vec<_>>(),
        [("a", 2, 2005), ("a", 4, 2505), ("a", 5, 2605)]
    );
}

async fn an_agent_clock_is_measured_and_never_orders_its_facts(store: Arc<dyn Store>) {
    const HOUR: i64 = 3_600_000;
    enroll(&store, &["ahead", "behind"]).await;
    let now = 1_000 * HOUR;
    // Two hours ahead: its observation lands on the coordinator's clock.
    let mut ahead = report("ahead", 1, now + 2 * HOUR - 1_000, "14.0.1", "");
    ahead.received_at_ms = now;
    ahead.report.sent_at_ms = now + 2 * HOUR;
    // In step first, then set two hours back: its newer version still counts.
    let in_step = report("behind", 1, now - 10_000, "14.0.1", "");
    let mut set_back = report("behind", 2, now - 2 * HOUR - 1_000, "14.0.2", "");
    set_back.received_at_ms = now;
    set_back.report.sent_at_ms = now - 2 * HOUR;
    store.ingest(vec![ahead, in_step], vec![]).await.unwrap();
    store.ingest(vec![set_back], vec![]).await.unwrap();

    let ahead = store.get_agent("ahead").await.unwrap().unwrap();
    assert_eq!(ahead.clock_skew_ms, 2 * HOUR);
    assert_eq!(store.latest_checks("ahead").await.unwrap().1, now - 1_000);
    let behind = store.get_agent("behind").await.unwrap().unwrap();
    assert_eq!(behind.clock_skew_ms, -2 * HOUR);
    assert_eq!(behind.product.version, "14.0.2", "not frozen by its clock");
    assert_eq!(store.latest_checks("behind").await.unwrap().1, now - 1_000);
    // Nothing sorts after the coordinator's present.
    let runs = store.latest_checks_since(now - 1).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|run| run.observed_at_ms <= now));
}

async fn revoked_agents_and_certificates_are_listed_and_refused(store: Arc<dyn Store>) {
    enroll(&store, &["a", "b"]).await;
    store.record_certificate("a", "serial-a2", 5).await.unwrap();
    store.record_certificate("a", "serial-a2", 5).await.unwrap();
    store.agent_connected(hello("a", 1)).await.unwrap();
    assert!(store.revoke_agent("a", 50).await.unwrap());
    assert!(!store.revoke_agent("nobody", 50).await.unwrap());
    let mut revoked = store.revoked().await.unwrap();
    revoked.serials.sort();
    assert_eq!(revoked.agent_ids, ["a"]);
    assert_eq!(revoked.serials, ["serial-a", "serial-a2"]);
    let agent = store.get_agent("a").await.unwrap().unwrap();
    assert!(agent.revoked && !agent.connected);
    let again = store.agent_connected(hello("a", 2)).await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");
}

async fn policy_versions_count_up(store: Arc<dyn Store>) {
    assert!(store.current_policy().await.unwrap().is_none());
    assert_eq!(store.put_policy("a = 1", "alice", 10).await.unwrap(), 1);
    assert_eq!(store.put_policy("a = 2", "bob", 20).await.unwrap(), 2);
    let current = store.current_policy().await.unwrap().unwrap();
    assert_eq!(
        (
            current.version,
            current.toml.as_str(),
            current.applied_by.as_str(),
            current.applied_at_ms
        ),
        (2, "a = 2", "bob", 20)
    );
}

async fn rollouts_members_and_transitions_round_trip(store: Arc<dyn Store>) {
    let rollout = |id: &str, started_at_ms| RolloutRow {
        id: id.into(),
        target: "14.0.2".into(),
        grace_ms: 1000,
        recheck_every_ms: 500,
        max_attempts: 3,
        selector: "all".into(),
        auto_update_now: true,
        started_at_ms,
        started_by: "alice".into(),
        cancelled_at_ms: None,
    };
    store.create_rollout(rollout("r1", 10)).await.unwrap();
    store.create_rollout(rollout("r2", 20)).await.unwrap();
    let listed = store.list_rollouts().await.unwrap();
    assert_eq!(listed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["r2", "r1"]);
    assert_eq!(listed[1], rollout("r1", 10));
    assert!(store.cancel_rollout("r1", 30).await.unwrap());
    assert!(!store.cancel_rollout("r1", 40).await.unwrap());
    assert_eq!(store.list_rollouts().await.unwrap()[1].cancelled_at_ms, Some(30));

    let member = MemberRow {
        rollout_id: "r2".into(),
        agent_id: "a".into(),
        state: MemberState::Straggler { hard: false },
        since_ms: 5,
        attempts: 1,
        next_recheck_ms: 600,
        cause: "license".into(),
        failing: vec!["license".into(), "connectivity".into()],
        update_agent: "ua".into(),
        blocks: 2,
        auto_update_for: String::new(),
        rechecked_at_ms: 5,
    };
    let transition = |at_ms, from: &str, to: &str| TransitionRow {
        rollout_id: "r2".into(),
        agent_id: "a".into(),
        at_ms,
        from_state: from.into(),
        to_state: to.into(),
        cause: "license".into(),
    };
    store
        .save_members(
            vec![member.clone()],
            vec![transition(5, "", "pending"), transition(5, "pending", "straggler_soft")],
        )
        .await
        .unwrap();
    let updated = MemberRow {
        state: MemberState::Straggler { hard: true },
        attempts: 3,
        ..member.clone()
    };
    store
        .save_members(
            vec![updated.clone()],
            vec![transition(9, "straggler_soft", "straggler_hard")],
        )
        .await
        .unwrap();
    assert_eq!(store.members("r2").await.unwrap(), std::slice::from_ref(&updated));
    assert!(store.members("r1").await.unwrap().is_empty());
    // Waiting for a restart is stored as its own word and read back.
    let waiting = MemberRow {
        agent_id: "w".into(),
        state: MemberState::AwaitingRestart,
        cause: String::new(),
        failing: Vec::new(),
        ..member.clone()
    };
    store.save_members(vec![waiting.clone()], Vec::new()).await.unwrap();
    let members = store.members("r2").await.unwrap();
    assert!(members.contains(&waiting) && members.contains(&updated), "{members:?}");
    let history: Vec<String> = store
        .transitions("r2")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.to_state)
        .collect();
    assert_eq!(
        history,
        ["pending", "straggler_soft", "straggler_hard"],
        "insertion order on equal times"
    );
    assert_eq!(store.agent_transitions("a").await.unwrap().len(), 3);
}

async fn commands_are_queued_claimed_once_answered_and_expired(store: Arc<dyn Store>) {
    store
        .create_commands(vec![
            command("c2", "a", 20, 1000),
            command("c1", "a", 10, 1000),
            command("c3", "b", 30, 50),
        ])
        .await
        .unwrap();
    let queued = store.undelivered_commands("a", 100).await.unwrap();
    assert_eq!(queued.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["c1", "c2"]);
    assert_eq!(queued[0], command("c1", "a", 10, 1000));

    // Two paths racing to deliver: only one claims each command.
    let first = store.claim_delivery(vec!["c1".into(), "c2".into()], 110).await.unwrap();
    let second = store.claim_delivery(vec!["c1".into(), "c2".into()], 111).await.unwrap();
    assert_eq!(first.len(), 2);
    assert!(second.is_empty(), "{second:?}");
    assert!(store.undelivered_commands("a", 100).await.unwrap().is_empty());
    // A push that failed gives its claim back.
    store.release_delivery(vec!["c2".into()]).await.unwrap();
    assert_eq!(store.undelivered_commands("a", 100).await.unwrap()[0].id, "c2");
    store.mark_delivered(vec!["c2".into()], 120).await.unwrap();

    store
        .ingest(vec![], vec![receipt("a", "c1", "accepted")])
        .await
        .unwrap();
    store
        .ingest(vec![], vec![receipt("b", "c1", "refused: spoofed")])
        .await
        .unwrap();
    assert_eq!(store.expire_commands(60).await.unwrap(), 1);
    assert_eq!(store.expire_commands(60).await.unwrap(), 0);
    let claimed_expired = store.claim_delivery(vec!["c3".into()], 70).await.unwrap();
    assert!(claimed_expired.is_empty(), "an expired command is never delivered");

    let rows = store.rollout_commands("r1").await.unwrap();
    assert_eq!(
        rows.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["c1", "c2", "c3"]
    );
    assert_eq!(rows[0].receipt, Receipt::Accepted);
    assert_eq!(rows[0].delivered_at_ms, Some(110));
    assert_eq!(rows[1].delivered_at_ms, Some(120));
    assert!(rows[2].expired && rows[2].delivered_at_ms.is_none());
    assert_eq!(store.batch_commands("b1").await.unwrap().len(), 3);
}

async fn commands_created_claimed_are_not_queued_and_a_batch_is_tallied(store: Arc<dyn Store>) {
    enroll(&store, &["a", "b", "c", "d"]).await;
    let claimed = |id: &str, agent: &str| CommandRow {
        delivered_at_ms: Some(100),
        ..command(id, agent, 100, i64::MAX)
    };
    store
        .create_commands(vec![
            claimed("c1", "a"),
            claimed("c2", "b"),
            claimed("c3", "c"),
            command("c4", "d", 100, i64::MAX),
        ])
        .await
        .unwrap();
    // Created claimed: no other path may deliver it again.
    assert!(store.undelivered_commands("a", 100).await.unwrap().is_empty());
    assert!(store.claim_delivery(vec!["c1".into()], 101).await.unwrap().is_empty());
    assert_eq!(store.undelivered_commands("d", 100).await.unwrap().len(), 1);
    assert_eq!(store.batch_tally("b1").await.unwrap(), BatchTally::default());

    store
        .ingest(vec![], vec![receipt("c", "c3", "refused: no update_command")])
        .await
        .unwrap();
    store
        .ingest(
            vec![
                report("a", 1, 1000, "14.0.2", "c1"),
                report("b", 1, 1000, "13.0.0", "c2"),
            ],
            vec![],
        )
        .await
        .unwrap();
    let mut tally = store.batch_tally("b1").await.unwrap();
    tally.answered_by_version.sort();
    assert_eq!(
        tally,
        BatchTally {
            answered_by_version: vec![("13.0.0".into(), 1), ("14.0.2".into(), 1)],
            refused: 1,
        }
    );
    assert_eq!(store.batch_tally("no-such-batch").await.unwrap(), BatchTally::default());
}

async fn undelivered_commands_are_found_by_agent_set_within_a_bound(store: Arc<dyn Store>) {
    let mut rows = Vec::new();
    for index in 0..30 {
        let agent = ["a", "b", "c"][index % 3];
        rows.push(command(&format!("c{index:02}"), agent, 100 + index as i64, 10_000));
    }
    rows.push(command("old", "a", 1, 50));
    store.create_commands(rows).await.unwrap();
    store.mark_delivered(vec!["c00".into()], 200).await.unwrap();

    let for_a_b = store
        .undelivered_for_agents(Some(vec!["a".into(), "b".into()]), 500, 100)
        .await
        .unwrap();
    assert_eq!(for_a_b.len(), 19, "c00 delivered, `old` expired by time");
    assert!(for_a_b.iter().all(|row| row.agent_id != "c"));
    assert!(
        for_a_b
            .windows(2)
            .all(|pair| pair[0].created_at_ms <= pair[1].created_at_ms)
    );
    let bounded = store
        .undelivered_for_agents(Some(vec!["a".into(), "b".into()]), 500, 5)
        .await
        .unwrap();
    assert_eq!(bounded.len(), 5);
    assert_eq!(bounded[0].id, "c01", "oldest first");
    let any = store.undelivered_for_agents(None, 500, 1000).await.unwrap();
    assert_eq!(any.len(), 29);
    assert_eq!(store.undelivered_for_agents(None, 500, 7).await.unwrap().len(), 7);
    assert!(
        store
            .undelivered_for_agents(Some(Vec::new()), 500, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_lease_is_granted_to_its_holder_and_renewed(store: Arc<dyn Store>) {
    assert!(store.try_lease("engine", "replica-a", 5_000).await.unwrap());
    assert!(store.try_lease("engine", "replica-a", 5_000).await.unwrap(), "renewal");
    store.release_lease("engine", "replica-a").await.unwrap();
    assert!(store.try_lease("engine", "replica-a", 5_000).await.unwrap());
}

/// Not a benchmark (no timing is asserted): it stores a batch as large as
/// the ingest worker sends and prints the rate for the record.
async fn ingest_keeps_up_with_a_large_batch(store: Arc<dyn Store>) {
    let agents: Vec<String> = (0..200).map(|index| format!("agent-{index:03}")).collect();
    let ids: Vec<&str> = agents.iter().map(String::as_str).collect();
    for chunk in ids.chunks(50) {
        enroll_many(&store, chunk).await;
    }
    let mut batch = Vec::new();
    for seq in 1..=20u64 {
        for agent in &agents {
            batch.push(report(agent, seq, 1000 + i64::try_from(seq).unwrap(), "14.0.1", ""));
        }
    }
    let total = batch.len();
    let started = std::time::Instant::now();
    for chunk in batch.chunks(4096) {
        store.ingest(chunk.to_vec(), vec![]).await.unwrap();
    }
    let elapsed = started.elapsed();
    eprintln!(
        "ingest: {total} reports in {elapsed:?} ({:.0} reports/s)",
        total as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(store.count_reports(None).await.unwrap(), total as u64);
    let agent = store.get_agent("agent-007").await.unwrap().unwrap();
    assert_eq!(agent.last_seq, 20);
}

/// Runs retention passes' batches from the start until the store says done;
/// returns (deleted, batches).
fn roster_entry(at: usize) -> roster::RosterEntry {
    roster::RosterEntry {
        host_name: format!("host-{at:06}"),
        entity_id: format!("e-{at}"),
        ip_addresses: vec![format!("10.0.{}.{}", at / 250, at % 250)],
        mac_addresses: vec!["08-00-27-96-86-8E".into()],
        version: at.is_multiple_of(2).then(|| "14.0.1".to_string()),
        connection_status: Some("Normal".into()),
        managing_server: Some("apex-one-1".into()),
        domain: None,
        folder_path: Some("Workgroup".into()),
        os: None,
        product: Some("SLF_PRODUCT_OFFICESCAN_CE".into()),
    }
}

async fn a_roster_is_replaced_whole_in_batches_and_a_failed_pass_keeps_it(store: Arc<dyn Store>) {
    let status = store.roster_status().await.unwrap();
    assert_eq!(status.refreshed_at_ms, None, "no roster before the first");
    assert!(store.roster_entries().await.unwrap().is_empty());

    // More than two batches, read back whole and in order.
    let big: Vec<roster::RosterEntry> = (0..roster::BATCH * 2 + 7).map(roster_entry).collect();
    store.replace_roster("csv:first.csv", big.clone(), 1_000).await.unwrap();
    assert_eq!(store.roster_entries().await.unwrap(), big);
    let status = store.roster_status().await.unwrap();
    assert_eq!(
        (status.source.as_str(), status.entries, status.refreshed_at_ms),
        ("csv:first.csv", big.len() as u64, Some(1_000))
    );

    // A failed pass is recorded; the roster stays.
    store
        .record_roster_error("apex central answered HTTP 401", 2_000)
        .await
        .unwrap();
    let status = store.roster_status().await.unwrap();
    assert_eq!(status.last_error.as_deref(), Some("apex central answered HTTP 401"));
    assert_eq!(status.last_error_at_ms, Some(2_000));
    assert_eq!(store.roster_entries().await.unwrap().len(), big.len());

    // The next good pass replaces it all and clears the error.
    let small: Vec<roster::RosterEntry> = (0..3).map(roster_entry).collect();
    store
        .replace_roster("apex_central", small.clone(), 3_000)
        .await
        .unwrap();
    assert_eq!(store.roster_entries().await.unwrap(), small);
    let status = store.roster_status().await.unwrap();
    assert_eq!((status.source.as_str(), status.entries), ("apex_central", 3));
    assert_eq!((status.last_error, status.last_error_at_ms), (None, None));
}

async fn retention_pass(store: &Arc<dyn Store>, before_ms: i64, keep: RetentionKeep) -> (u64, u64) {
    let (mut deleted, mut batches, mut cursor) = (0, 0, 0);
    loop {
        let batch = store.delete_old_reports(before_ms, keep, cursor, 1000).await.unwrap();
        deleted += batch.deleted;
        batches += 1;
        assert!(batches < 100, "retention does not finish");
        match batch.next {
            Some(next) => cursor = next,
            None => return (deleted, batches),
        }
    }
}

async fn retention_deletes_old_reports_in_batches_and_keeps_what_diagnosis_needs(store: Arc<dyn Store>) {
    enroll(&store, &["a", "b"]).await;
    let mut reports: Vec<ReportRecord> = (1..=2400u64)
        .map(|seq| report("a", seq, 1000 + i64::try_from(seq).unwrap(), "14.0.1", ""))
        .collect();
    let mut update_now = report("a", 2401, 5000, "14.0.2", "");
    update_now.report.kind = proto::ReportKind::UpdateNowAgent as i32;
    update_now.report.checks.clear();
    reports.push(update_now);
    // The latest check run, then a newer report without checks.
    reports.push(report("a", 2402, 6000, "14.0.2", ""));
    let mut newest = report("a", 2403, 200_000, "14.0.2", "");
    newest.report.checks.clear();
    reports.push(newest);
    reports.push(report("b", 1, 1000, "14.0.1", ""));
    for chunk in reports.chunks(1000) {
        store.ingest(chunk.to_vec(), vec![]).await.unwrap();
    }
    let bytes_before = store.store_bytes().await.unwrap();
    assert!(bytes_before > 0);

    let keep = RetentionKeep {
        update_now_since_ms: Some(4000),
    };
    let started = std::time::Instant::now();
    let (deleted, batches) = retention_pass(&store, 100_000, keep).await;
    // For the record (no timing is asserted): how long ingest could wait
    // behind one batch.
    eprintln!(
        "retention: {deleted} deleted in {batches} batches, {:?} per batch",
        started.elapsed() / u32::try_from(batches).unwrap()
    );
    assert_eq!(deleted, 2400, "every old periodic report of a, and nothing else");
    assert!(batches >= 3, "{batches} batches for 2,400 deletions of at most 1,000");
    // a: the update-now report of the running rollout, the latest check run,
    // the newest report; b: its only (latest) report.
    assert_eq!(store.count_reports(Some("a")).await.unwrap(), 3);
    assert_eq!(store.count_reports(Some("b")).await.unwrap(), 1);
    let (checks, observed) = store.latest_checks("a").await.unwrap();
    assert_eq!(observed, 6000);
    assert_eq!(checks[0].message, "seen at 6000");
    assert_eq!(store.latest_checks("b").await.unwrap().1, 1000);
    assert_eq!(store.get_agent("a").await.unwrap().unwrap().last_seq, 2403);

    // No rollout running: its update-now report goes too; a second pass
    // finds nothing more.
    let (deleted, _) = retention_pass(&store, 100_000, RetentionKeep::default()).await;
    assert_eq!(deleted, 1);
    assert_eq!(retention_pass(&store, 100_000, RetentionKeep::default()).await.0, 0);
    assert_eq!(store.count_reports(None).await.unwrap(), 3);
}

/// Enrolls many agents with one token per call.
async fn enroll_many(store: &Arc<dyn Store>, ids: &[&str]) {
    let hash: [u8; 32] = rand::random();
    store
        .create_token(NewToken {
            id: hex::encode(&hash[..6]),
            hash,
            created_at_ms: 1,
            expires_at_ms: i64::MAX,
            uses: u32::try_from(ids.len()).unwrap(),
            labels: BTreeMap::new(),
            created_by: "test".into(),
        })
        .await
        .unwrap();
    for id in ids {
        store.enroll_agent(hash, 100, new_agent(id)).await.unwrap();
    }
}

/// The cached entries.
async fn cached<S: RosterStore + ?Sized>(
    cache: &roster::RosterCache,
    store: &S,
    status: &roster::RosterStatusRow,
) -> roster::CachedRoster {
    cache
        // What the matcher derives is its business: here, the count.
        .get(store, status, |entries| std::sync::Arc::new(entries.len()))
        .await
        .unwrap()
}

/// The roster cache (store/roster.rs): the entries are read once per
/// generation, again after a refresh, and not for a recorded error.
async fn the_roster_cache_reads_entries_once_per_generation(store: Arc<dyn Store>) {
    let cache = roster::RosterCache::default();
    let first: Vec<roster::RosterEntry> = (0..3).map(roster_entry).collect();
    store.replace_roster("csv:a.csv", first.clone(), 1_000).await.unwrap();
    for _ in 0..3 {
        let status = store.roster_status().await.unwrap();
        assert_eq!(*cached(&cache, store.as_ref(), &status).await.entries, first);
    }
    assert_eq!(cache.loads(), 1, "three calls, one read");
    store.record_roster_error("HTTP 500", 2_000).await.unwrap();
    let status = store.roster_status().await.unwrap();
    cached(&cache, store.as_ref(), &status).await;
    assert_eq!(cache.loads(), 1, "an error changes no entry");
    let second: Vec<roster::RosterEntry> = (3..8).map(roster_entry).collect();
    store.replace_roster("csv:b.csv", second.clone(), 3_000).await.unwrap();
    let status = store.roster_status().await.unwrap();
    assert_eq!(*cached(&cache, store.as_ref(), &status).await.entries, second);
    assert_eq!(cache.loads(), 2);
}

// === PostgreSQL only: several replicas on one database ===

/// A replica's roster cache sees another replica's refresh: the generation
/// both read from the one database changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roster_cache_follows_a_refresh_on_another_replica() {
    let Some((a, b, _scratch)) = two_replicas("a_roster_cache_follows_a_refresh_on_another_replica").await else {
        return;
    };
    let cache = roster::RosterCache::default();
    let first: Vec<roster::RosterEntry> = (0..3).map(roster_entry).collect();
    a.replace_roster("apex_central", first.clone(), 1_000).await.unwrap();
    let status = a.roster_status().await.unwrap();
    assert_eq!(*cached(&cache, &a, &status).await.entries, first);
    let status = a.roster_status().await.unwrap();
    cached(&cache, &a, &status).await;
    assert_eq!(cache.loads(), 1);
    // Replica b refreshes; a's next call reads the new generation.
    let second: Vec<roster::RosterEntry> = (10..12).map(roster_entry).collect();
    b.replace_roster("apex_central", second.clone(), 2_000).await.unwrap();
    let status = a.roster_status().await.unwrap();
    assert_eq!(*cached(&cache, &a, &status).await.entries, second);
    assert_eq!(cache.loads(), 2);
}

/// Two replicas' stores on one scratch database.
async fn two_replicas(test: &str) -> Option<(PgStore, PgStore, ScratchDatabase)> {
    let scratch = scratch_or_skip(test).await?;
    let a = PgStore::connect(scratch.url(), "replica-a").await.unwrap();
    let b = PgStore::connect(scratch.url(), "replica-b").await.unwrap();
    Some((a, b, scratch))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_once() {
    let Some(scratch) = scratch_or_skip("replicas_starting_together_migrate_once").await else {
        return;
    };
    let starts = (0..4).map(|index| {
        let url = scratch.url().to_string();
        tokio::spawn(async move { PgStore::connect(&url, &format!("replica-{index}")).await })
    });
    let mut stores = Vec::new();
    for start in starts {
        stores.push(start.await.unwrap().unwrap());
    }
    // Every one of them works on the one schema.
    for store in &stores {
        store.put_policy("x = 1", store.replica(), 1).await.unwrap();
    }
    assert_eq!(stores[0].current_policy().await.unwrap().unwrap().version, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_has_one_holder_until_it_expires_or_is_released() {
    let Some((a, b, _scratch)) = two_replicas("a_lease_has_one_holder_until_it_expires_or_is_released").await else {
        return;
    };
    assert!(a.try_lease("engine", "replica-a", 800).await.unwrap());
    assert!(!b.try_lease("engine", "replica-b", 800).await.unwrap());
    assert!(
        a.try_lease("engine", "replica-a", 800).await.unwrap(),
        "the holder renews"
    );
    assert!(
        b.try_lease("other", "replica-b", 800).await.unwrap(),
        "leases are per name"
    );
    // Replica a dies (stops renewing): b takes over once the lease expires.
    assert!(
        wait_until(Duration::from_secs(5), || async {
            b.try_lease("engine", "replica-b", 800).await.unwrap()
        })
        .await
    );
    assert!(!a.try_lease("engine", "replica-a", 800).await.unwrap());
    // A clean shutdown hands it over at once.
    b.release_lease("engine", "replica-b").await.unwrap();
    assert!(a.try_lease("engine", "replica-a", 60_000).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wake_ups_reach_the_other_replicas_but_not_the_sender() {
    let Some((a, b, _scratch)) = two_replicas("wake_ups_reach_the_other_replicas_but_not_the_sender").await else {
        return;
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut at_a = a.subscribe(shutdown.clone()).await.unwrap().unwrap();
    let mut at_b = b.subscribe(shutdown.clone()).await.unwrap().unwrap();
    // Listening starts with a resync (anything before may have been missed).
    assert_eq!(next_notice(&mut at_a).await, Some(Notice::Resync));
    assert_eq!(next_notice(&mut at_b).await, Some(Notice::Resync));

    let commands = Notice::Commands {
        agent_ids: vec!["agent-1".into()],
    };
    a.notify(commands.clone()).await.unwrap();
    b.notify(Notice::Policy { version: 7 }).await.unwrap();
    assert_eq!(next_notice(&mut at_b).await, Some(commands));
    assert_eq!(next_notice(&mut at_a).await, Some(Notice::Policy { version: 7 }));
    // Neither hears its own.
    a.notify(Notice::Revoked { agent_id: "x".into() }).await.unwrap();
    assert_eq!(
        next_notice(&mut at_b).await,
        Some(Notice::Revoked { agent_id: "x".into() })
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), at_a.recv())
            .await
            .is_err()
    );
    shutdown.cancel();
    assert_eq!(next_notice(&mut at_a).await, None, "the listener stops with shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_replica_clears_only_the_connections_it_holds() {
    let Some((a, b, _scratch)) = two_replicas("each_replica_clears_only_the_connections_it_holds").await else {
        return;
    };
    let a: Arc<dyn Store> = Arc::new(a);
    enroll(&a, &["x", "y"]).await;
    a.agent_connected(hello("x", 1)).await.unwrap();
    b.agent_connected(hello("y", 1)).await.unwrap();
    // y moves to replica a; its old stream on b ends late.
    a.agent_connected(hello("y", 2)).await.unwrap();
    b.agent_disconnected("y", 3).await.unwrap();
    assert!(a.get_agent("y").await.unwrap().unwrap().connected, "b no longer held y");
    // b restarts: a's agents stay connected.
    b.reset_connections().await.unwrap();
    assert!(a.list_agents().await.unwrap().iter().all(|agent| agent.connected));
    a.reset_connections().await.unwrap();
    assert!(a.list_agents().await.unwrap().iter().all(|agent| !agent.connected));
}

#[tokio::test]
async fn sqlite_is_one_process_with_no_wake_ups() {
    let (store, _dir) = sqlite();
    let shutdown = tokio_util::sync::CancellationToken::new();
    assert!(store.subscribe(shutdown).await.unwrap().is_none());
    store.notify(Notice::Resync).await.unwrap();
    assert!(store.try_lease("engine", "anyone", 1).await.unwrap());
    assert!(store.try_lease("engine", "someone-else", 1).await.unwrap());
}

async fn next_notice(rx: &mut tokio::sync::mpsc::Receiver<Notice>) -> Option<Notice> {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a wake-up within 10s")
}

async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The checkpoint loop moves committed pages from the WAL into the database
/// file: a copy of the main file alone (no `-wal`) then holds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_checkpoint_moves_committed_pages_into_the_database_file() {
    let (store, dir) = sqlite();
    enroll(&store, &["a", "b"]).await;
    store
        .ingest(
            vec![report("a", 1, 1000, "14.0.2", ""), report("b", 1, 1000, "13.0.0", "")],
            vec![],
        )
        .await
        .unwrap();
    store.checkpoint().await.unwrap();

    let copy = dir.path().join("copy.db");
    std::fs::copy(dir.path().join("rollcall.db"), &copy).unwrap();
    let reopened = SqliteStore::open(&copy).unwrap();
    assert_eq!(reopened.count_reports(None).await.unwrap(), 2);
    assert_eq!(
        reopened.get_agent("b").await.unwrap().unwrap().product.version,
        "13.0.0"
    );
}

/// A hello that replica B processed late (the agent had already moved to
/// replica A) overwrote the row, and that stale stream's end cleared
/// `connected`; A, which holds the stream, puts the row right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_presence_is_reasserted_by_the_replica_holding_the_stream() {
    let Some(scratch) = scratch_or_skip("postgres_presence_is_reasserted").await else {
        return;
    };
    let a: Arc<dyn Store> = Arc::new(PgStore::connect(scratch.url(), "replica-a").await.unwrap());
    let b: Arc<dyn Store> = Arc::new(PgStore::connect(scratch.url(), "replica-b").await.unwrap());
    enroll(&a, &["x"]).await;
    a.agent_connected(hello("x", 100)).await.unwrap();
    b.agent_connected(hello("x", 101)).await.unwrap();
    b.agent_disconnected("x", 102).await.unwrap();
    assert!(
        !a.get_agent("x").await.unwrap().unwrap().connected,
        "the race this repairs"
    );

    assert_eq!(b.reassert_presence(vec![]).await.unwrap(), 0);
    assert_eq!(
        a.reassert_presence(vec!["x".into(), "unknown".into()]).await.unwrap(),
        1
    );
    assert!(a.get_agent("x").await.unwrap().unwrap().connected);
    assert_eq!(
        a.reassert_presence(vec!["x".into()]).await.unwrap(),
        0,
        "nothing left to repair"
    );
    // B's own stale disconnect can no longer clear it: the row names A.
    b.agent_disconnected("x", 103).await.unwrap();
    assert!(a.get_agent("x").await.unwrap().unwrap().connected);
}
