//! Report retention against a real coordinator on both stores (issue 17
//! point 3): `--retain-reports` deletes old reports in batches of 1,000 and
//! keeps what diagnosis reads (here: the agent's latest report, which holds
//! its latest check run); `rollcall_store_bytes` is exported and grows with
//! the store. The PostgreSQL case uses a scratch database on the server of
//! `ROLLCALL_TEST_DATABASE_URL` (skipped without it, failed under CI).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use rollcall_server::store::Store;
use rollcall_server::store::postgres::PgStore;
use rollcall_server::store::postgres_scratch::scratch_or_skip;

use crate::dashboard::{Identity, client_config, get};
use crate::faults::{burst, client_for};
use crate::harness::{Agent, Coordinator, free_port, product_state, wait_until};

const REPORTS: u64 = 2500;

/// `name value` of one unlabelled sample in the Prometheus text.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn scrape(coordinator: &Coordinator, port: u16) -> String {
    let ca_pem = std::fs::read_to_string(coordinator.data_dir().join("ca.pem")).unwrap();
    let admin = Identity::from_dir(&coordinator.admin_identity());
    let response = get(port, client_config(&ca_pem, Some(&admin)), "/metrics")
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    response.body
}

/// The whole case, on the store `store_args` selects, read through what
/// `open_store` gives once the coordinator runs.
async fn old_reports_are_deleted_in_batches_keeping_the_latest(
    open_store: impl FnOnce(&Coordinator) -> Arc<dyn Store>,
    store_args: Vec<String>,
) {
    let dashboard_port = free_port();
    let mut coordinator = Coordinator::init();
    let base: Vec<String> = [
        "--report-rate",
        "100000",
        "--report-burst",
        "100000",
        "--dashboard-listen",
        &format!("127.0.0.1:{dashboard_port}"),
    ]
    .iter()
    .map(|arg| arg.to_string())
    .chain(store_args)
    .collect();
    coordinator.extra_args.extend(base.clone());
    coordinator.extra_args.extend(["--retain-reports".into(), "off".into()]);
    coordinator.start();
    let store = open_store(&coordinator);
    let before =
        sample(&scrape(&coordinator, dashboard_port).await, "rollcall_store_bytes").expect("store size exported");

    let agent = Agent::enroll(&coordinator, "chatty", &product_state("1.0", ""), &[]);
    let acked = Arc::new(AtomicU64::new(0));
    let mut client = client_for(&coordinator, &agent);
    tokio::time::timeout(Duration::from_secs(60), burst(&mut client, 1, REPORTS, acked.clone()))
        .await
        .expect("the reports were acknowledged in time")
        .unwrap();
    let sent_at = Instant::now();
    assert_eq!(store.count_reports(Some(&agent.id)).await.unwrap(), REPORTS);
    let after = sample(&scrape(&coordinator, dashboard_port).await, "rollcall_store_bytes").unwrap();
    eprintln!("store size: {before} bytes before, {after} after {REPORTS} reports");
    assert!(after > before, "the store size did not grow: {before} -> {after}");

    // Restarted with a retention of 1 s once every report is older than that.
    coordinator.stop();
    assert!(wait_until(Duration::from_secs(5), || sent_at.elapsed()
        > Duration::from_millis(1500)));
    coordinator.extra_args = vec!["--heartbeat-interval".into(), "500ms".into()];
    coordinator.extra_args.extend(base);
    coordinator.extra_args.extend([
        "--retain-reports".into(),
        "1s".into(),
        "--retention-interval".into(),
        "300ms".into(),
    ]);
    coordinator.start();
    let mut remaining = u64::MAX;
    for _ in 0..300 {
        remaining = store.count_reports(Some(&agent.id)).await.unwrap();
        if remaining == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(remaining, 1, "retention left {remaining} reports");
    // The latest report stays, with the check run diagnosis reads.
    let (checks, _) = store.latest_checks(&agent.id).await.unwrap();
    assert_eq!(checks.len(), 7);
    assert_eq!(store.get_agent(&agent.id).await.unwrap().unwrap().last_seq, REPORTS);
    let log = coordinator.log();
    let line = log
        .lines()
        .find(|line| line.contains("retention deleted old reports"))
        .unwrap_or_else(|| panic!("no retention line:\n{log}"));
    eprintln!("{line}");
    assert!(line.contains(&format!("deleted={}", REPORTS - 1)), "{line}");
    let batches: u64 = line
        .split("batches=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or(0);
    assert!(
        batches >= 3,
        "{batches} batches for {} deletions of at most 1,000",
        REPORTS - 1
    );
    let metrics = scrape(&coordinator, dashboard_port).await;
    assert_eq!(
        sample(&metrics, "rollcall_reports_deleted_total"),
        Some((REPORTS - 1) as f64)
    );
    assert!(sample(&metrics, "rollcall_store_bytes").is_some_and(|bytes| bytes > 0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_on_sqlite_deletes_old_reports_in_batches_and_keeps_the_latest() {
    old_reports_are_deleted_in_batches_keeping_the_latest(|coordinator| Arc::new(coordinator.store()), Vec::new())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_on_postgres_deletes_old_reports_in_batches_and_keeps_the_latest() {
    let Some(scratch) = scratch_or_skip("retention::retention_on_postgres").await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(PgStore::connect(scratch.url(), "test-observer").await.unwrap());
    let args = vec!["--database-url".to_string(), scratch.url().to_string()];
    old_reports_are_deleted_in_batches_keeping_the_latest(move |_| store, args).await;
}
