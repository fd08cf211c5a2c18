//! Many streams at once, in one test process: a graceful shutdown with
//! thousands of open streams finishes within its deadline, and the
//! reconnect storm after the restart is absorbed (jittered backoff on the
//! agents, a bound on concurrent handshakes on the coordinator), with no
//! report lost.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rollcall_agent::checks::CheckRun;
use rollcall_agent::config::{ReconnectConfig, SpoolConfig};
use rollcall_agent::enroll::{EnrollParams, enroll};
use rollcall_agent::identity::IdentityStore;
use rollcall_agent::prober::Prober;
use rollcall_agent::runner::AgentOptions;
use rollcall_agent::spool::Spool;
use rollcall_common::policy::Policy;
use rollcall_common::proto;
use rollcall_common::tls::DialOptions;
use rollcall_server::store::traits::*;
use tokio_util::sync::CancellationToken;

use crate::harness::{Coordinator, wait_until};

const AGENTS: usize = 1500;

/// An endpoint that reports a fixed, healthy state.
struct FixedProber;

#[async_trait::async_trait]
impl Prober for FixedProber {
    async fn check(&self, _policy: Arc<Policy>, _target: Option<String>) -> CheckRun {
        CheckRun {
            product: proto::ProductSummary {
                version: "1.0".into(),
                ..Default::default()
            },
            host: proto::HostFacts::default(),
            checks: vec![proto::CheckResult {
                name: "version".into(),
                status: proto::CheckStatus::Pass as i32,
                ..Default::default()
            }],
        }
    }
    async fn update_now(&self) -> proto::UpdateNowOutcome {
        proto::UpdateNowOutcome::default()
    }
    fn update_allowed(&self) -> bool {
        false
    }
}

fn online_count(coordinator: &Coordinator) -> usize {
    let output = coordinator.cli(&["--output", "json", "agents", "--selector", "online=true"]);
    serde_json::from_slice::<serde_json::Value>(&output.stdout)
        .ok()
        .and_then(|v| v.as_array().map(|a| a.len()))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_streams_drain_within_the_deadline_and_the_reconnect_storm_is_absorbed() {
    let mut coordinator = Coordinator::init();
    coordinator.extra_args.clear();
    coordinator.extra_args.extend([
        "--shutdown-grace".into(),
        "5s".into(),
        "--max-pending-handshakes".into(),
        "32".into(),
        "--heartbeat-interval".into(),
        "5s".into(),
        // Every simulated agent comes from 127.0.0.1; a fleet comes from
        // many addresses, so the per-source limits are raised here.
        "--max-unauthenticated-per-source".into(),
        "4096".into(),
        "--enroll-rate-per-source".into(),
        "1000000".into(),
        "--enroll-burst-per-source".into(),
        "4096".into(),
    ]);
    coordinator.start();
    let token = coordinator.token(&["--uses", &AGENTS.to_string()]);
    let ca_pem = std::fs::read_to_string(coordinator.data_dir().join("ca.pem")).unwrap();

    // Enroll through the real Enroll call, a few at a time.
    let semaphore = Arc::new(tokio::sync::Semaphore::new(16));
    let mut enrollments = Vec::new();
    for index in 0..AGENTS {
        let params = EnrollParams {
            coordinator: coordinator.url(),
            ca_pem: ca_pem.clone(),
            token: token.clone().into(),
            hostname: format!("sim-{index:05}"),
            dial: DialOptions::default(),
        };
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        enrollments.push(tokio::spawn(async move {
            let enrolled = enroll(&params).await;
            drop(permit);
            enrolled
        }));
    }
    let mut identities = Vec::new();
    for enrollment in enrollments {
        identities.push(enrollment.await.unwrap().expect("enroll"));
    }

    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();
    for (index, enrolled) in identities.into_iter().enumerate() {
        let options = AgentOptions {
            urls: vec![coordinator.url()],
            identity: IdentityStore::Memory(Arc::new(std::sync::Mutex::new(enrolled.identity))),
            hostname: format!("sim-{index:05}"),
            labels: BTreeMap::new(),
            check_interval: Duration::from_secs(3600),
            data_dir: None,
            dial: DialOptions::default(),
            reconnect: ReconnectConfig {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(4),
                ..Default::default()
            },
            check_at_start: true,
            update_allowed: false,
            collect: Default::default(),
        };
        let spool = Spool::in_memory(SpoolConfig::default());
        tasks.push(tokio::spawn(rollcall_agent::runner::run(
            options,
            Arc::new(FixedProber),
            spool,
            shutdown.clone(),
        )));
    }
    let all_online = {
        let coordinator = &coordinator;
        tokio::task::block_in_place(|| wait_until(Duration::from_secs(120), || online_count(coordinator) == AGENTS))
    };
    assert!(all_online, "only {} of {AGENTS} online", online_count(&coordinator));
    let store = coordinator.store();
    assert!(tokio::task::block_in_place(|| wait_until(
        Duration::from_secs(60),
        || {
            tokio::runtime::Handle::current()
                .block_on(store.count_reports(None))
                .unwrap()
                == AGENTS as u64
        }
    )));

    // Graceful shutdown with every stream open: bounded by the grace period.
    let drain = tokio::task::block_in_place(|| coordinator.stop());
    assert!(drain < Duration::from_secs(15), "shutdown took {drain:?}");
    assert!(
        coordinator.log().contains("coordinator stopped"),
        "{}",
        coordinator.log()
    );

    // The storm: every agent comes back at once after the restart.
    let restarted = Instant::now();
    tokio::task::block_in_place(|| coordinator.start());
    let back = {
        let coordinator = &coordinator;
        tokio::task::block_in_place(|| wait_until(Duration::from_secs(120), || online_count(coordinator) == AGENTS))
    };
    let took = restarted.elapsed();
    assert!(back, "only {} of {AGENTS} came back", online_count(&coordinator));
    let store = coordinator.store();
    assert_eq!(
        store.count_reports(None).await.unwrap(),
        AGENTS as u64,
        "no report lost or doubled"
    );
    println!("scale figures: {AGENTS} streams drained in {drain:?}; all back {took:?} after restart");

    shutdown.cancel();
    for task in tasks {
        let _ = task.await;
    }
}
