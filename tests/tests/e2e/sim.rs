//! The fleet simulator against a real coordinator process: 50 simulated
//! agents enroll through the Enroll RPC (and are then served from the
//! identity cache), connect over their own mTLS connections from a
//! non-default loopback source address, report, answer a recheck; the
//! ingest burst client gets every report acknowledged. Functional only:
//! timings belong to `bench/run.sh`, not here.

use std::net::Ipv4Addr;
use std::time::Duration;

use rollcall_agent::config::ReconnectConfig;
use rollcall_agent::sim::identities::{EnrollPlan, ensure};
use rollcall_agent::sim::{Common, burst, fleet};
use rollcall_common::tls::DialOptions;
use tokio_util::sync::CancellationToken;

use crate::harness::{Coordinator, wait_until};

const AGENTS: u64 = 50;

fn common(coordinator: &Coordinator, first_index: u64) -> Common {
    Common {
        coordinators: vec![coordinator.url()],
        first_index,
        source_ip: Ipv4Addr::new(127, 0, 0, 2),
        // Small, so these 50 agents already use two source addresses.
        per_source_ip: 30,
        dial: DialOptions::default(),
    }
}

fn plan(
    coordinator: &Coordinator,
    sim_dir: &std::path::Path,
    token: Option<String>,
    first: u64,
    count: u64,
) -> EnrollPlan {
    EnrollPlan {
        sim_dir: sim_dir.to_path_buf(),
        coordinator: coordinator.url(),
        ca_pem: std::fs::read_to_string(coordinator.data_dir().join("ca.pem")).unwrap(),
        token: token.map(Into::into),
        first_index: first,
        count,
        concurrency: 8,
        dial: DialOptions::default(),
    }
}

fn online(coordinator: &Coordinator) -> usize {
    coordinator
        .cli_json(&["agents"])
        .as_array()
        .map(|agents| agents.iter().filter(|agent| agent["online"] == true).count())
        .unwrap_or(0)
}

#[test]
fn simulated_agents_connect_report_and_answer_a_recheck() {
    let mut coordinator = Coordinator::init();
    coordinator.start();
    let token = coordinator.token(&["--uses", "60"]);
    let sim_dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let shutdown = CancellationToken::new();

    let identities = runtime
        .block_on(ensure(
            &plan(&coordinator, sim_dir.path(), Some(token), 0, AGENTS),
            &shutdown,
        ))
        .unwrap();
    assert_eq!(identities.len() as u64, AGENTS);
    // A rerun needs no token: every identity comes from the cache.
    let cached = runtime
        .block_on(ensure(&plan(&coordinator, sim_dir.path(), None, 0, AGENTS), &shutdown))
        .unwrap();
    assert_eq!(cached.len() as u64, AGENTS);

    let fleet_plan = fleet::FleetPlan {
        common: common(&coordinator, 0),
        check_interval: Duration::from_secs(3600),
        connect_rate: 200,
        reconnect: ReconnectConfig::default(),
        status_file: Some(sim_dir.path().join("status.json")),
        duration: None,
    };
    let task = runtime.spawn(fleet::run(fleet_plan, cached, shutdown.clone()));

    assert!(
        wait_until(Duration::from_secs(60), || online(&coordinator) == AGENTS as usize),
        "simulated agents did not all come online:\n{}",
        coordinator.log()
    );
    // Every agent reported its synthetic product state (seven checks).
    assert!(wait_until(Duration::from_secs(30), || {
        coordinator.cli_json(&["agents"]).as_array().is_some_and(|agents| {
            agents
                .iter()
                .all(|agent| agent["version"].as_str().is_some_and(|v| !v.is_empty()))
        })
    }));
    let recheck = coordinator.cli_json(&["recheck", "all", "--wait", "30s"]);
    assert_eq!(recheck["targeted"], AGENTS);
    assert_eq!(recheck["answered"], AGENTS, "{recheck}");

    // The burst client: 5 more agents, 10 reports each, all acknowledged.
    let burst_token = coordinator.token(&["--uses", "5"]);
    let burst_identities = runtime
        .block_on(ensure(
            &plan(&coordinator, sim_dir.path(), Some(burst_token), 100, 5),
            &shutdown,
        ))
        .unwrap();
    let result = runtime
        .block_on(burst::run(
            &common(&coordinator, 100),
            burst_identities,
            10,
            shutdown.clone(),
        ))
        .unwrap();
    assert_eq!(result.streams_ok, 5);
    assert_eq!(result.reports_acked, 50);
    assert_eq!(result.check_results_acked, 350);

    shutdown.cancel();
    runtime.block_on(task).unwrap().unwrap();
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sim_dir.path().join("status.json")).unwrap()).unwrap();
    assert_eq!(status["started"], AGENTS);
    assert!(status["check_runs"].as_u64().unwrap() >= 2 * AGENTS, "{status}");
}
