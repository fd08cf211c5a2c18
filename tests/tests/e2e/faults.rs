//! Faults survived with real processes on loopback: `kill -9` during heavy
//! ingest, a long outage with a bounded spool, a network that cuts and
//! stalls mid-stream, and a full or read-only data dir.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rollcall_common::proto::{
    self, agent_message, agent_service_client::AgentServiceClient, coordinator_message::Body,
};
use rollcall_common::tls::{DialOptions, channel, client_config};
use rollcall_server::store::traits::*;
use tokio_stream::StreamExt;

use crate::harness::{Agent, Coordinator, product_state, wait_until};

fn read(path: std::path::PathBuf) -> String {
    std::fs::read_to_string(path).unwrap()
}

pub(crate) fn client_for(coordinator: &Coordinator, agent: &Agent) -> AgentServiceClient<tonic::transport::Channel> {
    let identity = agent.data_dir().join("identity");
    let config = client_config(
        &read(identity.join("ca.pem")),
        Some((&read(identity.join("cert.pem")), &read(identity.join("key.pem")))),
    )
    .unwrap();
    let addr = rollcall_common::net::parse_coordinator_url(&coordinator.url()).unwrap();
    AgentServiceClient::new(channel(&addr, Arc::new(config), &DialOptions::default()).unwrap())
}

pub(crate) fn report(seq: u64) -> proto::AgentMessage {
    let checks = (0..7)
        .map(|i| proto::CheckResult {
            name: format!("check-{i}"),
            runbook_step: i,
            status: proto::CheckStatus::Pass as i32,
            message: "ok".into(),
            ..Default::default()
        })
        .collect();
    proto::AgentMessage {
        body: Some(agent_message::Body::Report(proto::Report {
            seq,
            observed_at_ms: rollcall_common::timefmt::now_ms(),
            kind: proto::ReportKind::Periodic as i32,
            checks,
            product: Some(proto::ProductSummary {
                version: "1.0".into(),
                ..Default::default()
            }),
            ..Default::default()
        })),
    }
}

pub(crate) fn hello() -> proto::AgentMessage {
    proto::AgentMessage {
        body: Some(agent_message::Body::Hello(proto::Hello {
            agent_version: "burst".into(),
            hostname: "burst".into(),
            role: proto::Role::Endpoint as i32,
            ..Default::default()
        })),
    }
}

/// Sends reports `from..=to` on one stream as fast as it takes them and
/// records the highest cumulative ack; returns the welcome's last stored seq.
pub(crate) async fn burst(
    client: &mut AgentServiceClient<tonic::transport::Channel>,
    from: u64,
    to: u64,
    acked: Arc<AtomicU64>,
) -> Result<u64, tonic::Status> {
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    tx.send(hello()).await.unwrap();
    let mut inbound = client
        .connect(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    let last_stored = match inbound.next().await {
        Some(Ok(proto::CoordinatorMessage {
            body: Some(Body::Welcome(welcome)),
        })) => welcome.last_stored_seq,
        other => return Err(tonic::Status::internal(format!("expected welcome, got {other:?}"))),
    };
    let sender = tokio::spawn(async move {
        for seq in from..=to {
            if tx.send(report(seq)).await.is_err() {
                return;
            }
        }
        // Keep the stream open until the acks are in.
        tx.closed().await;
    });
    while let Some(message) = inbound.next().await {
        match message {
            Ok(proto::CoordinatorMessage {
                body: Some(Body::Ack(ack)),
            }) => {
                acked.fetch_max(ack.seq, Ordering::SeqCst);
                if ack.seq >= to {
                    break;
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    sender.abort();
    Ok(last_stored)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_heavy_ingest_loses_no_acknowledged_report_and_stores_resends_once() {
    const TOTAL: u64 = 20_000;
    let mut coordinator = Coordinator::init();
    coordinator.extra_args.extend([
        "--report-rate".into(),
        "100000".into(),
        "--report-burst".into(),
        "100000".into(),
    ]);
    coordinator.start();
    let agent = Agent::enroll(&coordinator, "burst", &product_state("1.0", ""), &[]);
    let acked = Arc::new(AtomicU64::new(0));

    // Stream reports; kill -9 the coordinator once a good share is acknowledged.
    let mut client = client_for(&coordinator, &agent);
    let running = tokio::spawn({
        let acked = acked.clone();
        async move { burst(&mut client, 1, TOTAL, acked).await }
    });
    let progressed = {
        let acked = acked.clone();
        tokio::task::spawn_blocking(move || {
            wait_until(Duration::from_secs(60), || acked.load(Ordering::SeqCst) >= 2_000)
        })
        .await
        .unwrap()
    };
    assert!(progressed, "ingest never got going:\n{}", coordinator.log());
    coordinator.kill();
    let _ = running.await;
    let acked_before_kill = acked.load(Ordering::SeqCst);
    assert!(acked_before_kill < TOTAL, "the kill came too late to test anything");

    // After restart: everything acknowledged is stored.
    coordinator.start();
    let store = coordinator.store();
    let stored = store.count_reports(Some(&agent.id)).await.unwrap();
    assert!(
        stored >= acked_before_kill,
        "acknowledged {acked_before_kill} but only {stored} stored"
    );
    let row = store.get_agent(&agent.id).await.unwrap().unwrap();
    assert!(row.last_seq >= acked_before_kill);
    assert_eq!(stored, row.last_seq, "stored reports are exactly 1..=last_seq");

    // The agent re-sends what was not acknowledged (here: from the
    // coordinator's last stored seq, plus an overlap to prove duplicates are
    // stored once).
    let mut client = client_for(&coordinator, &agent);
    let resend_from = acked_before_kill.saturating_sub(500).max(1);
    let last_stored = burst(&mut client, resend_from, TOTAL, acked.clone()).await.unwrap();
    assert!(last_stored >= acked_before_kill);
    assert_eq!(acked.load(Ordering::SeqCst), TOTAL);
    assert_eq!(
        store.count_reports(Some(&agent.id)).await.unwrap(),
        TOTAL,
        "every report stored exactly once"
    );
    println!(
        "kill -9 figures: acknowledged before kill {acked_before_kill}, stored after restart {stored}, total {TOTAL}"
    );
}

#[test]
fn a_long_outage_spools_within_its_bound_counts_drops_and_delivers_in_order() {
    let mut coordinator = Coordinator::init();
    coordinator.start();
    let mut agent = Agent::enroll(&coordinator, "laptop", &product_state("1.0", ""), &[]);
    agent.edit_config(|config| {
        config.insert("check_interval".into(), toml::Value::String("1s".into()));
        let mut spool = toml::Table::new();
        spool.insert("max_reports".into(), toml::Value::Integer(3));
        config.insert("spool".into(), toml::Value::Table(spool));
    });
    agent.start();
    assert!(
        wait_until(Duration::from_secs(20), || coordinator.is_online("laptop")),
        "{}",
        agent.log()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = coordinator.store();
    let before = runtime.block_on(store.count_reports(Some(&agent.id))).unwrap();

    // The coordinator goes away for a while; the probe keeps checking.
    coordinator.stop();
    std::thread::sleep(Duration::from_secs(8));
    coordinator.start();
    let store = coordinator.store();
    assert!(
        wait_until(Duration::from_secs(20), || {
            runtime
                .block_on(store.get_agent(&agent.id))
                .unwrap()
                .is_some_and(|row| row.dropped_reports >= 3)
        }),
        "drops never reported:\n{}",
        agent.log()
    );
    let row = runtime.block_on(store.get_agent(&agent.id)).unwrap().unwrap();
    let after = runtime.block_on(store.count_reports(Some(&agent.id))).unwrap();
    // About 8 reports were made while away; the spool kept at most 3.
    let delivered_from_outage = after - before;
    assert!(delivered_from_outage >= 3, "{delivered_from_outage} delivered");
    let produced = row.last_seq - before;
    assert_eq!(
        produced,
        delivered_from_outage + row.dropped_reports,
        "every report is stored or counted as dropped"
    );
    // Delivered in order: seqs rise with observation time.
    let metas = runtime
        .block_on(store.reports_meta(proto::ReportKind::Periodic as i32, 0))
        .unwrap();
    let seqs: Vec<u64> = metas.iter().filter(|m| m.agent_id == agent.id).map(|m| m.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    println!(
        "outage figures: produced {produced}, delivered {delivered_from_outage}, dropped {}",
        row.dropped_reports
    );
}

/// A TCP proxy on loopback that can cut every connection or stall them
/// (stop forwarding bytes while keeping the sockets open).
struct FaultyProxy {
    port: u16,
    cut: Arc<AtomicU64>,
    stalled: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl FaultyProxy {
    fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let cut = Arc::new(AtomicU64::new(0));
        let stalled = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (cut2, stalled2, stop2) = (cut.clone(), stalled.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                            continue;
                        };
                        let generation = cut2.load(Ordering::SeqCst);
                        for (from, to) in [
                            (client.try_clone().unwrap(), server.try_clone().unwrap()),
                            (server, client),
                        ] {
                            let (cut, stalled, stop) = (cut2.clone(), stalled2.clone(), stop2.clone());
                            std::thread::spawn(move || pump(from, to, generation, &cut, &stalled, &stop));
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        FaultyProxy {
            port,
            cut,
            stalled,
            stop,
        }
    }

    /// Cuts every open connection.
    fn cut_all(&self) {
        self.cut.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    generation: u64,
    cut: &AtomicU64,
    stalled: &AtomicBool,
    stop: &AtomicBool,
) {
    from.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        if cut.load(Ordering::SeqCst) != generation || stop.load(Ordering::SeqCst) {
            let _ = from.shutdown(std::net::Shutdown::Both);
            let _ = to.shutdown(std::net::Shutdown::Both);
            return;
        }
        if stalled.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        match from.read(&mut buffer) {
            Ok(0) => {
                let _ = to.shutdown(std::net::Shutdown::Write);
                return;
            }
            Ok(n) => {
                if to.write_all(&buffer[..n]).is_err() {
                    return;
                }
            }
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

#[test]
fn streams_recover_from_cuts_and_stalls_without_duplicate_transitions() {
    let mut coordinator = Coordinator::init();
    coordinator
        .extra_args
        .extend(["--engine-interval".into(), "200ms".into()]);
    coordinator.start();
    let proxy = FaultyProxy::start(coordinator.port);
    let mut agent = Agent::enroll(&coordinator, "flaky", &product_state("2.0", ""), &[]);
    agent.edit_config(|config| {
        config.insert(
            "coordinator".into(),
            toml::Value::String(format!("https://127.0.0.1:{}", proxy.port)),
        );
        let reconnect = config.get_mut("reconnect").and_then(|r| r.as_table_mut()).unwrap();
        reconnect.insert("keepalive".into(), toml::Value::String("500ms".into()));
        reconnect.insert("keepalive_timeout".into(), toml::Value::String("1s".into()));
    });
    agent.start();
    assert!(
        wait_until(Duration::from_secs(20), || coordinator.is_online("flaky")),
        "{}",
        agent.log()
    );
    let start = coordinator.cli(&["rollout", "start", "--target", "2.0", "--grace", "1s"]);
    assert!(start.status.success());
    assert!(wait_until(Duration::from_secs(10), || coordinator
        .cli_json(&["status"])["completed"]
        == 1));

    let connects = |agent: &Agent| agent.log().matches(": connected coordinator=").count();
    let disconnects = |agent: &Agent| agent.log().matches("disconnected from coordinator").count();
    let before = connects(&agent);
    // A cut: the agent reconnects.
    proxy.cut_all();
    assert!(
        wait_until(Duration::from_secs(20), || connects(&agent) > before),
        "no reconnect after a cut:\n{}",
        agent.log()
    );
    // A stall: nothing flows, but the sockets stay open; keepalive notices.
    assert!(wait_until(Duration::from_secs(10), || coordinator.is_online("flaky")));
    let (before, before_down) = (connects(&agent), disconnects(&agent));
    proxy.stalled.store(true, Ordering::SeqCst);
    assert!(
        wait_until(Duration::from_secs(15), || disconnects(&agent) > before_down),
        "keepalive never noticed the stall:\n{}",
        agent.log()
    );
    proxy.stalled.store(false, Ordering::SeqCst);
    assert!(
        wait_until(Duration::from_secs(20), || connects(&agent) > before),
        "no recovery after a stall:\n{}",
        agent.log()
    );
    assert!(wait_until(Duration::from_secs(10), || coordinator.is_online("flaky")));

    // No duplicate state transitions: completed exactly once.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let transitions = runtime
        .block_on(coordinator.store().agent_transitions(&agent.id))
        .unwrap();
    let completed = transitions.iter().filter(|t| t.to_state == "completed").count();
    assert_eq!(completed, 1, "{transitions:?}");
}

/// Polls the health service until it reports `want` (10 s at most).
async fn wait_health<F, Fut>(status: &F, ca: &str, url: &str, want: i32) -> bool
where
    F: Fn(String, String) -> Fut,
    Fut: std::future::Future<Output = i32>,
{
    for _ in 0..100 {
        if status(ca.to_string(), url.to_string()).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Mounts a small tmpfs for the data dir; None when this process may not
/// mount (then the test says it skipped, except under CI where it fails).
fn small_tmpfs(size: &str) -> Option<tempfile::TempDir> {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir.path())
        .status();
    if status.is_ok_and(|s| s.success()) {
        Some(dir)
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to mount a tmpfs (run as root)"
        );
        rollcall_server::test_skip::skip(
            "cannot mount a tmpfs here (it needs root)",
            "run the tests as root, as .ci/run does, to run it",
        );
        None
    }
}

fn unmount(dir: &std::path::Path) {
    let _ = std::process::Command::new("umount").arg("-l").arg(dir).status();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_or_read_only_data_dir_turns_health_not_serving_and_recovers() {
    let Some(mount) = small_tmpfs("24m") else { return };
    let mut coordinator = Coordinator::init();
    // Move the data dir onto the small filesystem.
    let data = coordinator.data_dir();
    let copy = std::process::Command::new("cp")
        .arg("-a")
        .arg(&data)
        .arg(mount.path())
        .status()
        .unwrap();
    assert!(copy.success());
    std::fs::remove_dir_all(&data).unwrap();
    std::os::unix::fs::symlink(mount.path().join("data"), &data).unwrap();
    coordinator.extra_args.extend([
        "--report-rate".into(),
        "100000".into(),
        "--report-burst".into(),
        "100000".into(),
    ]);
    coordinator.start();
    let agent = Agent::enroll(&coordinator, "writer", &product_state("1.0", ""), &[]);

    let ca = read(coordinator.data_dir().join("ca.pem"));
    let health_status = |ca: String, url: String| async move {
        let config = client_config(&ca, None).unwrap();
        let addr = rollcall_common::net::parse_coordinator_url(&url).unwrap();
        let mut health = tonic_health::pb::health_client::HealthClient::new(
            channel(&addr, Arc::new(config), &DialOptions::default()).unwrap(),
        );
        health
            .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
            .await
            .map(|r| r.into_inner().status)
            .unwrap_or(-1)
    };
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    let not_serving = tonic_health::pb::health_check_response::ServingStatus::NotServing as i32;
    assert_eq!(health_status(ca.clone(), coordinator.url()).await, serving);

    // Reports flow while there is room.
    let acked = Arc::new(AtomicU64::new(0));
    let mut client = client_for(&coordinator, &agent);
    burst(&mut client, 1, 1_000, acked.clone()).await.unwrap();
    assert_eq!(acked.load(Ordering::SeqCst), 1_000);

    // Fill the disk.
    let filler = mount.path().join("filler");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "count=64"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    let mut client = client_for(&coordinator, &agent);
    let _ = tokio::time::timeout(Duration::from_secs(20), burst(&mut client, 1_001, 5_000, acked.clone())).await;
    let acked_when_full = acked.load(Ordering::SeqCst);
    assert!(acked_when_full < 5_000, "a full disk took every report");
    let turned = wait_health(&health_status, &ca, &coordinator.url(), not_serving).await;
    assert!(turned, "health never turned NOT_SERVING:\n{}", coordinator.log());
    assert!(
        coordinator.log().contains("store is refusing writes"),
        "{}",
        coordinator.log()
    );
    // Reads still work; the coordinator stays up.
    assert!(coordinator.cli(&["agents"]).status.success());

    // Space returns: writes are taken again and health recovers.
    std::fs::remove_file(&filler).unwrap();
    let mut client = client_for(&coordinator, &agent);
    let last_stored = burst(&mut client, acked_when_full + 1, 5_000, acked.clone())
        .await
        .unwrap();
    assert!(last_stored >= acked_when_full);
    assert_eq!(acked.load(Ordering::SeqCst), 5_000);
    assert!(
        wait_health(&health_status, &ca, &coordinator.url(), serving).await,
        "health did not recover"
    );
    let stored = coordinator.store().count_reports(Some(&agent.id)).await.unwrap();
    assert_eq!(stored, 5_000, "nothing lost, nothing doubled");

    // A read-only data dir. The kernel refuses to remount a filesystem
    // read-only while a process holds files open for writing (EBUSY), so the
    // coordinator is stopped first: it must refuse to serve with a clear
    // error, change nothing, and serve again once the store is writable.
    coordinator.kill();
    let remount = |mode: &str| {
        std::process::Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(mount.path())
            .status()
            .unwrap()
            .success()
    };
    assert!(remount("ro"));
    let refused = std::process::Command::new(crate::harness::SERVER)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(coordinator.data_dir())
        .output()
        .unwrap();
    assert!(remount("rw"));
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("read-only") || message.contains("readonly"),
        "{message}"
    );
    coordinator.start();
    assert_eq!(coordinator.store().count_reports(Some(&agent.id)).await.unwrap(), 5_000);
    coordinator.kill();
    unmount(mount.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_flood_is_cut_by_the_per_agent_rate_limit() {
    let mut coordinator = Coordinator::init();
    coordinator
        .extra_args
        .extend(["--report-rate".into(), "5".into(), "--report-burst".into(), "50".into()]);
    coordinator.start();
    let flooder = Agent::enroll(&coordinator, "flooder", &product_state("1.0", ""), &[]);
    let acked = Arc::new(AtomicU64::new(0));
    let mut client = client_for(&coordinator, &flooder);
    let _ = tokio::time::timeout(Duration::from_secs(30), burst(&mut client, 1, 5_000, acked.clone())).await;
    let stored = coordinator.store().count_reports(Some(&flooder.id)).await.unwrap();
    assert!(stored < 200, "the flood was not limited: {stored} stored");
    assert!(coordinator.log().contains("rate limited"), "{}", coordinator.log());
    // Everyone else is still served.
    assert!(coordinator.cli(&["agents"]).status.success());
}
