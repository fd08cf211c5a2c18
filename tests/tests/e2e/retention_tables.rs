//! Retention of the tables other than reports against a real coordinator on
//! both stores (issue 24 point 8). Rows are made through the network (admin
//! calls over mTLS gRPC write audit entries; a rollout's engine writes
//! transitions; revoking an agent writes its revocation), aged by short
//! `--retain-*` flags, and pruned by the coordinator's own background task:
//! old audit entries go (and `rollcall_retention_rows_pruned_total` counts
//! them), an open rollout's transitions stay until it is cancelled, and a
//! revoked agent whose certificate has not expired stays refused.

use std::sync::Arc;
use std::time::Duration;

use rollcall_server::store::Store;
use rollcall_server::store::postgres::PgStore;
use rollcall_server::store::postgres_scratch::scratch_or_skip;

use crate::dashboard::{Identity, client_config, get};
use crate::harness::{Agent, Coordinator, free_port, product_state, wait_until};

/// `name{table="…"} value` in the Prometheus text.
fn pruned(metrics: &str, table: &str) -> f64 {
    let prefix = format!("rollcall_retention_rows_pruned_total{{table=\"{table}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix)?.trim().parse().ok())
        .unwrap_or(0.0)
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

/// Polls `check` every 200 ms for up to `timeout` (async: the store is read).
async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
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
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn old_rows_are_pruned_and_what_must_stay_stays(
    open_store: impl FnOnce(&Coordinator) -> Arc<dyn Store>,
    store_args: Vec<String>,
) {
    let dashboard_port = free_port();
    let mut coordinator = Coordinator::init();
    coordinator.extra_args.extend(
        [
            "--engine-interval",
            "200ms",
            "--retention-interval",
            "300ms",
            "--retain-audit",
            "3s",
            "--retain-transitions",
            "3s",
            "--retain-commands",
            "3s",
            "--retain-expired-certificates",
            "1s",
        ]
        .iter()
        .map(|arg| arg.to_string())
        .chain(["--dashboard-listen".to_string(), format!("127.0.0.1:{dashboard_port}")])
        .chain(store_args),
    );
    coordinator.start();
    let store = open_store(&coordinator);

    // A rollout with a straggler: its transitions are history to keep.
    let mut agent = Agent::enroll(&coordinator, "behind", &product_state("14.0.1", ""), &[]);
    agent.start();
    assert!(
        wait_until(Duration::from_secs(30), || coordinator.is_online("behind")),
        "{}",
        agent.log()
    );
    coordinator.start_rollout("14.0.2", "1s", &["--recheck-every", "400ms"]);
    let rollout = store.list_rollouts().await.unwrap()[0].id.clone();
    assert!(
        eventually(Duration::from_secs(20), || async {
            store.transitions(&rollout).await.unwrap().len() >= 2
        })
        .await,
        "the rollout made no transitions:\n{}",
        coordinator.log()
    );
    // A revoked agent whose certificate is valid for days.
    let stolen = Agent::enroll(&coordinator, "stolen", &product_state("14.0.1", ""), &[]);
    let revoked = coordinator.cli(&["revoke", &stolen.id]);
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    let revoked_serials = store.revoked().await.unwrap().serials;
    assert!(!revoked_serials.is_empty());

    // Audit entries from admin calls (token creation), then all of them age.
    for _ in 0..5 {
        coordinator.token(&[]);
    }
    let written = store.list_audit(100_000).await.unwrap().len();
    assert!(written >= 5, "{written} audit entries");
    let transitions_before = store.transitions(&rollout).await.unwrap().len();

    // Old audit entries go, counted by table.
    assert!(
        eventually(Duration::from_secs(30), || async {
            !store
                .list_audit(100_000)
                .await
                .unwrap()
                .iter()
                .any(|row| row.action == "token.create")
        })
        .await,
        "old audit entries were not pruned:\n{}",
        coordinator.log()
    );
    let metrics = scrape(&coordinator, dashboard_port).await;
    assert!(pruned(&metrics, "audit") >= 5.0, "{metrics}");
    // The open rollout's transitions, older than --retain-transitions, stay.
    assert!(store.transitions(&rollout).await.unwrap().len() >= transitions_before);
    // The unexpired revocation stays, and the stolen certificate is refused.
    let after = store.revoked().await.unwrap();
    for serial in &revoked_serials {
        assert!(after.serials.contains(serial), "revocation of {serial} was pruned");
    }
    assert!(after.agent_ids.contains(&stolen.id));
    let identity = stolen.data_dir().join("identity");
    let ca_pem = std::fs::read_to_string(coordinator.data_dir().join("ca.pem")).unwrap();
    let mut client = crate::bad_input::agent_client(
        &coordinator,
        &ca_pem,
        &std::fs::read_to_string(identity.join("cert.pem")).unwrap(),
        &std::fs::read_to_string(identity.join("key.pem")).unwrap(),
    );
    let attempt = crate::bad_input::open_stream(&mut client, vec![crate::bad_input::hello("stolen")]).await;
    assert!(attempt.is_err(), "the revoked certificate connects after retention");

    // Once the rollout is cancelled its history ages out too.
    let cancelled = coordinator.cli(&["rollout", "cancel"]);
    assert!(
        cancelled.status.success(),
        "{}",
        String::from_utf8_lossy(&cancelled.stderr)
    );
    assert!(
        eventually(Duration::from_secs(30), || async {
            store.transitions(&rollout).await.unwrap().is_empty()
        })
        .await,
        "a cancelled rollout's old transitions were not pruned:\n{}",
        coordinator.log()
    );
    let metrics = scrape(&coordinator, dashboard_port).await;
    assert!(
        pruned(&metrics, "transitions") >= transitions_before as f64,
        "{metrics}"
    );
    agent.stop();
    coordinator.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_on_sqlite_prunes_audit_and_transitions_and_keeps_open_rollouts_and_revocations() {
    old_rows_are_pruned_and_what_must_stay_stays(|coordinator| Arc::new(coordinator.store()), Vec::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_on_postgres_prunes_audit_and_transitions_and_keeps_open_rollouts_and_revocations() {
    let Some(scratch) = scratch_or_skip("retention_tables::retention_on_postgres").await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(PgStore::connect(scratch.url(), "test-observer").await.unwrap());
    let args = vec!["--database-url".to_string(), scratch.url().to_string()];
    old_rows_are_pruned_and_what_must_stay_stays(move |_| store, args).await;
}
