//! Issue 17: what a peer that has not proved who it is, or an agent that
//! misbehaves, can cost the coordinator. Each test performs the attack on
//! loopback (attackers bind their own 127.0.0.x source addresses) and shows
//! that it fails, bounded in count and time. The time bounds are generous
//! liveness limits, not performance goals (those are in docs/BENCHMARKS.md).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rollcall_agent::config::ReconnectConfig;
use rollcall_agent::sim::identities::{EnrollPlan, ensure};
use rollcall_agent::sim::{Common, fleet};
use rollcall_common::proto::{self, agent_service_client::AgentServiceClient};
use rollcall_common::tls::{DialOptions, channel, client_config};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use crate::dashboard::{Identity, admin_identity, get};
use crate::harness::{CLI, Coordinator, free_port, wait_until};

const FIRST_BYTE: Duration = Duration::from_secs(1);
const ANONYMOUS_LIFETIME: Duration = Duration::from_secs(3);
const PER_SOURCE: usize = 16;
const FLEET: u64 = 200;
/// Attacker addresses: silent connections from 127.0.0.20 .. 127.0.0.23,
/// certificate-less TLS from 127.0.0.24 .. 127.0.0.27.
const ATTACKERS: std::ops::Range<u8> = 20..24;
const ANONYMOUS_OFFSET: u8 = 4;
/// Connections each attacker address tries to hold at once (over its share).
const ATTEMPTS_PER_SOURCE: usize = 24;
/// Each attacking task pauses this long before opening its next connection:
/// the test attacks the coordinator's slots, not the machine's two cores.
const ATTACK_PAUSE: Duration = Duration::from_millis(200);

fn source(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

async fn connect_from(from: Ipv4Addr, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0))?;
    socket.connect(SocketAddr::from(([127, 0, 0, 1], port))).await
}

/// What the attackers saw: how many of their connections the coordinator
/// closed, and the longest any of them lived.
#[derive(Default)]
struct AttackStats {
    idle_closed: AtomicU64,
    idle_longest_ms: AtomicU64,
    anonymous_established: AtomicU64,
    anonymous_closed: AtomicU64,
    anonymous_longest_ms: AtomicU64,
}

/// Reads until the coordinator closes the connection; returns how long that took.
async fn until_closed<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, cap: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout(cap.saturating_sub(started.elapsed()), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

/// What one attacking connection does once its TCP connection is up.
#[derive(Clone, Copy)]
enum Attack {
    /// Says nothing at all.
    Silent,
    /// Completes TLS without a client certificate, then says nothing.
    Anonymous,
}

/// Keeps `ATTEMPTS_PER_SOURCE` attacking connections open from `from`,
/// opening a new one (after [`ATTACK_PAUSE`]) whenever one is closed.
async fn flood(
    attack: Attack,
    from: Ipv4Addr,
    port: u16,
    ca_pem: String,
    stats: Arc<AttackStats>,
    stop: CancellationToken,
) {
    let mut config = rollcall_common::tls::client_config(&ca_pem, None).unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let config = Arc::new(config);
    let slots = Arc::new(tokio::sync::Semaphore::new(ATTEMPTS_PER_SOURCE));
    while !stop.is_cancelled() {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stats, stop, config) = (stats.clone(), stop.clone(), config.clone());
        tokio::spawn(async move {
            let _permit = permit;
            if let Ok(tcp) = connect_from(from, port).await {
                let lived = match attack {
                    Attack::Silent => {
                        let mut tcp = tcp;
                        tokio::select! {
                            () = stop.cancelled() => None,
                            lived = until_closed(&mut tcp, Duration::from_secs(60)) => Some(lived),
                        }
                    }
                    Attack::Anonymous => {
                        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
                        match tokio_rustls::TlsConnector::from(config).connect(name, tcp).await {
                            Ok(mut tls) => {
                                stats.anonymous_established.fetch_add(1, Ordering::Relaxed);
                                tokio::select! {
                                    () = stop.cancelled() => None,
                                    lived = until_closed(&mut tls, Duration::from_secs(60)) => Some(lived),
                                }
                            }
                            Err(_) => None,
                        }
                    }
                };
                if let Some(lived) = lived {
                    let lived = lived.unwrap_or(Duration::from_secs(60)).as_millis() as u64;
                    let (closed, longest) = match attack {
                        Attack::Silent => (&stats.idle_closed, &stats.idle_longest_ms),
                        Attack::Anonymous => (&stats.anonymous_closed, &stats.anonymous_longest_ms),
                    };
                    closed.fetch_add(1, Ordering::Relaxed);
                    longest.fetch_max(lived, Ordering::Relaxed);
                }
            }
            tokio::time::sleep(ATTACK_PAUSE).await;
        });
    }
}

fn online(coordinator: &Coordinator) -> usize {
    coordinator
        .cli_json(&["agents"])
        .as_array()
        .map(|agents| agents.iter().filter(|agent| agent["online"] == true).count())
        .unwrap_or(0)
}

/// `rollcall_connections_shed_total{listener, reason}` from `/metrics`.
fn shed(metrics: &str, listener: &str, reason: &str) -> f64 {
    let lines = metrics.lines().map(|line| Ok(line.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("metrics parse");
    scrape
        .samples
        .iter()
        .filter(|sample| {
            sample.metric == "rollcall_connections_shed_total"
                && sample.labels.get("listener") == Some(listener)
                && sample.labels.get("reason") == Some(reason)
        })
        .map(|sample| match sample.value {
            prometheus_parse::Value::Counter(value) => value,
            _ => 0.0,
        })
        .sum()
}

#[test]
fn floods_of_silent_and_certificate_less_connections_keep_no_agent_or_admin_out() {
    let dashboard_port = free_port();
    let mut coordinator = Coordinator::init();
    coordinator.extra_args.extend([
        "--first-byte-timeout".into(),
        "1s".into(),
        "--anonymous-connection-lifetime".into(),
        "3s".into(),
        "--max-unauthenticated-per-source".into(),
        PER_SOURCE.to_string(),
        // Small, so that the old accept loop (a handshake slot taken before
        // accept, held 10 s by a silent peer) would have been starved.
        "--max-pending-handshakes".into(),
        "32".into(),
        "--enroll-burst-per-source".into(),
        "300".into(),
        "--dashboard-listen".into(),
        format!("127.0.0.1:{dashboard_port}"),
    ]);
    coordinator.start();
    let ca_pem = std::fs::read_to_string(coordinator.data_dir().join("ca.pem")).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let stop_attack = CancellationToken::new();
    let stop_fleet = CancellationToken::new();

    // The fleet's identities first (enrolment is tested on its own below).
    let token = coordinator.token(&["--uses", &FLEET.to_string()]);
    let sim_dir = tempfile::tempdir().unwrap();
    let plan = EnrollPlan {
        sim_dir: sim_dir.path().to_path_buf(),
        coordinator: coordinator.url(),
        ca_pem: ca_pem.clone(),
        token: Some(token.into()),
        first_index: 0,
        count: FLEET,
        concurrency: 8,
        dial: DialOptions::default(),
    };
    let identities = runtime.block_on(ensure(&plan, &stop_fleet)).unwrap();
    assert_eq!(identities.len() as u64, FLEET);

    // The attack: from four addresses, silent connections and TLS
    // connections without a certificate, each address trying to hold 40 of
    // each at once, re-opened as soon as the coordinator closes them.
    let stats = Arc::new(AttackStats::default());
    for last in ATTACKERS {
        for (attack, from) in [
            (Attack::Silent, source(last)),
            (Attack::Anonymous, source(last + ANONYMOUS_OFFSET)),
        ] {
            runtime.spawn(flood(
                attack,
                from,
                coordinator.port,
                ca_pem.clone(),
                stats.clone(),
                stop_attack.clone(),
            ));
        }
    }
    std::thread::sleep(Duration::from_secs(2));

    // Meanwhile 200 agents (re)connect, from their own address.
    let fleet_plan = fleet::FleetPlan {
        common: Common {
            coordinators: vec![coordinator.url()],
            first_index: 0,
            source_ip: source(2),
            per_source_ip: FLEET,
            dial: DialOptions::default(),
        },
        check_interval: Duration::from_secs(3600),
        connect_rate: 200,
        reconnect: ReconnectConfig::default(),
        status_file: None,
        duration: None,
    };
    let fleet_task = runtime.spawn(fleet::run(fleet_plan, identities, stop_fleet.clone()));
    assert!(
        wait_until(Duration::from_secs(60), || online(&coordinator) == FLEET as usize),
        "only {} of {FLEET} agents online under the flood:\n{}",
        online(&coordinator),
        coordinator.log()
    );

    // An admin revokes one agent, under the same flood.
    let victim = coordinator.agents_by_hostname()["sim-000000"]["id"]
        .as_str()
        .expect("agent id")
        .to_string();
    let revoke = coordinator.cli(&["revoke", &victim]);
    assert!(revoke.status.success(), "{}", String::from_utf8_lossy(&revoke.stderr));
    assert!(
        wait_until(Duration::from_secs(20), || {
            coordinator
                .cli_json(&["agent", &victim])
                .get("online")
                .is_some_and(|online| online == false)
        }),
        "the revoked agent stayed online"
    );

    // The attack was real and every attacker connection was closed within
    // its bound: a silent one after the first-byte timeout, a
    // certificate-less one after its lifetime (plus scheduling slack).
    let prometheus = admin_identity(&coordinator, "prometheus", "metrics");
    let scraper = crate::dashboard::client_config(&ca_pem, Some(&Identity::from_dir(&prometheus)));
    let metrics = runtime
        .block_on(get(dashboard_port, scraper.clone(), "/metrics"))
        .unwrap();
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    stop_attack.cancel();
    let idle_closed = stats.idle_closed.load(Ordering::Relaxed);
    let idle_longest = Duration::from_millis(stats.idle_longest_ms.load(Ordering::Relaxed));
    let anonymous = stats.anonymous_established.load(Ordering::Relaxed);
    let anonymous_closed = stats.anonymous_closed.load(Ordering::Relaxed);
    let anonymous_longest = Duration::from_millis(stats.anonymous_longest_ms.load(Ordering::Relaxed));
    println!(
        "attack: {idle_closed} silent connections closed (longest {idle_longest:?}), \
         {anonymous} certificate-less established, {anonymous_closed} closed (longest {anonymous_longest:?})"
    );
    assert!(idle_closed > 0 && anonymous_closed > 0, "the attack did not run");
    assert!(idle_longest <= FIRST_BYTE + Duration::from_secs(3), "{idle_longest:?}");
    assert!(
        anonymous_longest <= ANONYMOUS_LIFETIME + Duration::from_secs(3),
        "{anonymous_longest:?}"
    );
    for reason in ["per_source", "first_byte_timeout", "anonymous_lifetime"] {
        assert!(
            shed(&metrics.body, "grpc", reason) > 0.0,
            "nothing shed for {reason}:\n{}",
            metrics.body
        );
    }
    // The metrics role scrapes and reads nothing else.
    let page = runtime.block_on(get(dashboard_port, scraper, "/")).unwrap();
    assert_eq!(page.status, 403, "{}", page.body);

    stop_fleet.cancel();
    runtime.block_on(fleet_task).unwrap().unwrap();
}

fn enroll_client(coordinator: &Coordinator, from: Ipv4Addr) -> AgentServiceClient<tonic::transport::Channel> {
    let ca_pem = std::fs::read_to_string(coordinator.data_dir().join("ca.pem")).unwrap();
    let addr = rollcall_common::net::parse_coordinator_url(&coordinator.url()).unwrap();
    let config = client_config(&ca_pem, None).unwrap();
    let dial = DialOptions {
        local_ip: Some(IpAddr::V4(from)),
        ..DialOptions::default()
    };
    AgentServiceClient::new(channel(&addr, Arc::new(config), &dial).unwrap())
}

fn guess(token: &str) -> proto::EnrollRequest {
    proto::EnrollRequest {
        token: token.into(),
        // Not a CSR at all: with the token checked first it is never parsed.
        csr_pem: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n".into(),
        hostname: "guesser".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_checks_the_token_first_and_is_rate_limited_per_source() {
    let mut coordinator = Coordinator::init();
    coordinator.extra_args.extend([
        // One enrolment per ten seconds after a burst of five.
        "--enroll-rate-per-source".into(),
        "6".into(),
        "--enroll-burst-per-source".into(),
        "5".into(),
    ]);
    tokio::task::block_in_place(|| coordinator.start());

    // A guessed token with garbage for a CSR: refused for the token, so the
    // coordinator spent a read, not a CSR parse and a signature.
    // The guesser shares 127.0.0.1 with the real agent enrolled at the end.
    let mut guesser = enroll_client(&coordinator, source(1));
    let first = guesser.enroll(guess("rct_guess0")).await.unwrap_err();
    assert_eq!(first.code(), tonic::Code::PermissionDenied, "{first:?}");

    // Twenty quick guesses from one address: the burst (5) is answered, the
    // rest are refused before any work, within the same few seconds.
    let mut answered = 1;
    let mut limited = 0;
    for index in 1..20 {
        match guesser.enroll(guess(&format!("rct_guess{index}"))).await {
            Err(status) if status.code() == tonic::Code::PermissionDenied => answered += 1,
            Err(status) if status.code() == tonic::Code::ResourceExhausted => limited += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(answered <= 6, "{answered} guesses answered");
    assert!(limited >= 14, "{limited} guesses limited");

    // Another address is not affected.
    let mut other = enroll_client(&coordinator, source(41));
    let status = other.enroll(guess("rct_other")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);

    // A real agent behind the exhausted address (it was not the guesser's
    // fault, say a NAT) is told to slow down, waits and retries, and enrols.
    let token = tokio::task::block_in_place(|| coordinator.token(&[]));
    let ca = coordinator.data_dir().join("ca.pem");
    let data_dir = tempfile::tempdir().unwrap();
    let output = tokio::task::block_in_place(|| {
        Command::new(crate::harness::AGENT)
            .args(["enroll", "--coordinator", &coordinator.url(), "--ca"])
            .arg(&ca)
            .args(["--token", &token, "--hostname", "behind-nat", "--data-dir"])
            .arg(data_dir.path())
            .output()
            .unwrap()
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("retrying"), "{stderr}");
}

#[test]
fn a_watch_ends_when_its_certificate_is_revoked_or_expires() {
    let mut coordinator = Coordinator::init();
    coordinator.start();

    // Revoked: an admin identity recorded by the coordinator, revoked while
    // its watch runs.
    let out = coordinator.dir.path().join("watcher");
    let issued = coordinator.cli(&[
        "admin",
        "issue",
        "--name",
        "watcher",
        "--role",
        "viewer",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(issued.status.success(), "{}", String::from_utf8_lossy(&issued.stderr));
    let mut watch = Command::new(CLI)
        .args(["--coordinator", &coordinator.url(), "--identity"])
        .arg(&out)
        .arg("watch")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert!(watch.try_wait().unwrap().is_none(), "the watch did not start");
    let revoked = coordinator.cli(&["admin", "revoke", "watcher"]);
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    assert!(
        wait_until(Duration::from_secs(10), || watch.try_wait().unwrap().is_some()),
        "the revoked admin's watch kept running"
    );
    let output = watch.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(4));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("revoked"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Expired: a certificate that is valid for a few more seconds.
    let ca = rollcall_common::pki::CertAuthority::from_pem(
        &std::fs::read_to_string(coordinator.data_dir().join("ca.pem")).unwrap(),
        &std::fs::read_to_string(coordinator.data_dir().join("ca-key.pem")).unwrap(),
    )
    .unwrap();
    let (cert, key) = ca
        .issue_admin("brief", rollcall_common::pki::AdminRole::Viewer, Duration::from_secs(4))
        .unwrap();
    let brief = coordinator.dir.path().join("brief");
    std::fs::create_dir_all(&brief).unwrap();
    std::fs::write(brief.join("ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(brief.join("cert.pem"), cert).unwrap();
    std::fs::write(brief.join("key.pem"), key).unwrap();
    let mut watch = Command::new(CLI)
        .args(["--coordinator", &coordinator.url(), "--identity"])
        .arg(&brief)
        .arg("watch")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || watch.try_wait().unwrap().is_some()),
        "the watch outlived its certificate"
    );
    let output = watch.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(4));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("expired"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_renewed_agent_retires_its_old_certificate_once_it_uses_the_new_one() {
    let mut coordinator = Coordinator::init();
    coordinator
        .extra_args
        .extend(["--agent-cert-lifetime".to_string(), "40s".to_string()]);
    coordinator.start();
    let mut agent =
        crate::harness::Agent::enroll(&coordinator, "renewer", &crate::harness::product_state("1.0", ""), &[]);
    let identity = agent.data_dir().join("identity");
    let old_cert = std::fs::read_to_string(identity.join("cert.pem")).unwrap();
    let old_key = std::fs::read_to_string(identity.join("key.pem")).unwrap();
    let ca_pem = std::fs::read_to_string(coordinator.data_dir().join("ca.pem")).unwrap();
    agent.start();
    // Renewed at about half its life, over the authenticated stream.
    assert!(
        wait_until(Duration::from_secs(40), || {
            std::fs::read_to_string(identity.join("cert.pem")).unwrap() != old_cert
        }),
        "certificate never renewed:\n{}",
        agent.log()
    );
    // (Until the agent uses the new certificate the old one keeps working:
    // the store suite's `connecting_with_a_renewed_certificate_retires_the_older_ones`.)
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _context = runtime.enter();
    // The agent reconnects with the renewed certificate (here: after a
    // coordinator restart); from then on the old one is refused, long
    // before it would have expired.
    coordinator.stop();
    coordinator.start();
    assert!(
        wait_until(Duration::from_secs(20), || coordinator.is_online("renewer")),
        "{}",
        agent.log()
    );
    assert!(
        coordinator
            .log()
            .contains("revoked the older certificates of a renewed agent"),
        "{}",
        coordinator.log()
    );
    let mut client = crate::bad_input::agent_client(&coordinator, &ca_pem, &old_cert, &old_key);
    let after = runtime.block_on(crate::bad_input::open_stream(
        &mut client,
        vec![crate::bad_input::hello("renewer")],
    ));
    assert!(after.is_err(), "the retired certificate still connects");
    // The agent itself is in good standing.
    assert!(coordinator.is_online("renewer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_is_off_by_default_and_needs_a_certificate_when_on() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest,
    };
    async fn list_services(
        coordinator: &Coordinator,
        identity: Option<(&str, &str)>,
    ) -> Result<Vec<String>, tonic::Status> {
        let ca_pem = std::fs::read_to_string(coordinator.data_dir().join("ca.pem")).unwrap();
        let addr = rollcall_common::net::parse_coordinator_url(&coordinator.url()).unwrap();
        let config = client_config(&ca_pem, identity).unwrap();
        let channel = channel(&addr, Arc::new(config), &DialOptions::default()).unwrap();
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut answers = ServerReflectionClient::new(channel)
            .server_reflection_info(tokio_stream::iter([request]))
            .await?
            .into_inner();
        let mut names = Vec::new();
        while let Some(answer) = answers.message().await? {
            if let Some(tonic_reflection::pb::v1::server_reflection_response::MessageResponse::ListServicesResponse(
                list,
            )) = answer.message_response
            {
                names.extend(list.service.into_iter().map(|service| service.name));
            }
        }
        Ok(names)
    }

    let mut coordinator = Coordinator::init();
    tokio::task::block_in_place(|| coordinator.start());
    let admin = coordinator.admin_identity();
    let cert = std::fs::read_to_string(admin.join("cert.pem")).unwrap();
    let key = std::fs::read_to_string(admin.join("key.pem")).unwrap();
    let off = list_services(&coordinator, Some((&cert, &key))).await.unwrap_err();
    assert_eq!(off.code(), tonic::Code::Unimplemented, "{off:?}");
    tokio::task::block_in_place(|| coordinator.stop());

    coordinator.extra_args.push("--reflection".into());
    tokio::task::block_in_place(|| coordinator.start());
    let anonymous = list_services(&coordinator, None).await.unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated, "{anonymous:?}");
    let services = list_services(&coordinator, Some((&cert, &key))).await.unwrap();
    assert!(
        services.iter().any(|name| name == "rollcall.v1.AdminService"),
        "{services:?}"
    );
}
