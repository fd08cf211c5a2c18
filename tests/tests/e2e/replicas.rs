//! Two real coordinator processes (`serve --database-url`, one data dir)
//! sharing one PostgreSQL database, as behind a TCP load balancer: commands
//! reach an agent whichever replica it is connected to, revocations and
//! policy reach the other replica's agents, a replica killed with SIGKILL
//! loses nothing, and the rollout engine runs on one replica at a time and
//! moves when that one dies.
//!
//! Each test creates its own database on the server named by
//! `ROLLCALL_TEST_DATABASE_URL` and skips (saying so) without it; under CI
//! a missing variable fails instead.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use rollcall_server::store::postgres::PgStore;
use rollcall_server::store::postgres_scratch::{ScratchDatabase, scratch_or_skip};
use rollcall_server::store::traits::*;

use crate::harness::{Agent, CLI, Coordinator, SERVER, free_port, product_state, wait_until};

/// Timings compressed for tests: the engine ticks every 200ms and its lease
/// moves 2s after its holder dies.
fn replica_args(url: &str, name: &str) -> Vec<String> {
    [
        "--database-url",
        url,
        "--replica-id",
        name,
        "--engine-interval",
        "200ms",
        "--engine-lease-ttl",
        "2s",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect()
}

/// The second replica: the first one's data dir (same CA and server
/// certificate), its own port and log.
struct Replica {
    name: String,
    data_dir: PathBuf,
    port: u16,
    log: PathBuf,
    url_arg: String,
    /// More `serve` flags (the roster's Apex Central source).
    extra_args: Vec<String>,
    child: Option<Child>,
    logs: tempfile::TempDir,
}

impl Replica {
    fn new(first: &Coordinator, database_url: &str, name: &str) -> Self {
        let logs = tempfile::tempdir().unwrap();
        Replica {
            name: name.into(),
            data_dir: first.data_dir(),
            port: free_port(),
            log: logs.path().join("server.log"),
            url_arg: database_url.into(),
            extra_args: Vec::new(),
            child: None,
            logs,
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(SERVER)
            .arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["--heartbeat-interval", "500ms"])
            .args(replica_args(&self.url_arg, &self.name))
            .args(&self.extra_args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let ready = wait_until(Duration::from_secs(20), || self.cli(&["agents"]).status.success());
        assert!(ready, "replica {} did not become ready:\n{}", self.name, self.log());
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(CLI)
            .arg("--coordinator")
            .arg(self.url())
            .arg("--identity")
            .arg(self.data_dir.join("admin"))
            .args(args)
            .output()
            .unwrap()
    }

    fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = vec!["--output", "json"];
        full.extend_from_slice(args);
        let output = self.cli(&full);
        assert!(
            output.status.success(),
            "rollcall {args:?} on {} failed: {}",
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    fn is_online(&self, hostname: &str) -> bool {
        online(&self.cli_json(&["agents"]), hostname)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// With a roster source on Apex Central (the test's double), one replica
/// runs a pass, the other leaves it (the lease is held, or the shared
/// roster is fresh): the double counts one request for two replicas.
#[test]
fn one_replica_runs_an_apex_central_pass_for_all() {
    let Some(database) = Database::create("replicas::one_replica_runs_an_apex_central_pass_for_all") else {
        return;
    };
    let double = crate::apex_double::ApexDouble::start(crate::apex_double::Mode::Agents(
        ["PC01", "PC02", "PC03"]
            .iter()
            .enumerate()
            .map(|(at, host)| (host.to_string(), format!("10.1.0.{at}"), String::new()))
            .collect(),
    ));
    // A slow Apex Central: replica A's first pass still runs (holding the
    // lease) while replica B takes its first look.
    double.set_delay(Duration::from_secs(3));
    let mut a = Coordinator::init();
    let key = a.dir.path().join("apex.key");
    std::fs::write(&key, crate::apex_double::API_KEY).unwrap();
    std::fs::set_permissions(
        &key,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
    )
    .unwrap();
    let ca = a.dir.path().join("apex-ca.pem");
    std::fs::write(&ca, &double.ca_pem).unwrap();
    let apex: Vec<String> = [
        "--apex-central-url",
        &double.url(),
        "--apex-central-app-id",
        crate::apex_double::APP_ID,
        "--apex-central-key-file",
        &key.display().to_string(),
        "--apex-central-ca",
        &ca.display().to_string(),
        "--roster-refresh",
        "1h",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect();
    a.extra_args.extend(replica_args(&database.url(), "replica-a"));
    a.extra_args.extend(apex.iter().cloned());
    a.start();
    let mut b = Replica::new(&a, &database.url(), "replica-b");
    b.extra_args = apex;
    b.start();
    let left = "left the scheduled apex central pass";
    assert!(
        wait_until(Duration::from_secs(30), || b.log().contains(left)),
        "replica b did not leave the pass:\n{}",
        b.log()
    );
    assert!(
        wait_until(Duration::from_secs(30), || b.cli_json(&["roster", "status"])["entries"]
            == 3),
        "{:?}\n{}",
        double.seen(),
        a.log()
    );
    let seen = double.seen();
    assert_eq!(seen.requests.len(), 1, "two replicas, one pass: {seen:?}");
    assert!(!a.log().contains(left), "replica a ran it:\n{}", a.log());
    // Asked for, a pass runs on the replica asked, once.
    double.set_delay(Duration::ZERO);
    let refreshed = b.cli_json(&["roster", "refresh"]);
    assert_eq!(refreshed["entries"], 3, "{refreshed}");
    assert_eq!(double.seen().requests.len(), 2, "{:?}", double.seen());
}

fn online(agents: &serde_json::Value, hostname: &str) -> bool {
    agents
        .as_array()
        .unwrap()
        .iter()
        .any(|agent| agent["hostname"] == hostname && agent["online"] == true)
}

/// A scratch database and a runtime to read it from the test.
struct Database {
    runtime: tokio::runtime::Runtime,
    store: PgStore,
    // Dropped last: after the store's connections.
    scratch: ScratchDatabase,
}

impl Database {
    fn create(test: &str) -> Option<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let scratch = runtime.block_on(scratch_or_skip(test))?;
        let store = runtime
            .block_on(PgStore::connect(scratch.url(), "test-observer"))
            .unwrap();
        Some(Database {
            runtime,
            store,
            scratch,
        })
    }

    fn url(&self) -> String {
        self.scratch.url().to_string()
    }
}

/// Replica A (the harness coordinator) and replica B on one database.
fn two_replicas(database: &Database) -> (Coordinator, Replica) {
    let mut a = Coordinator::init();
    a.extra_args.extend(replica_args(&database.url(), "replica-a"));
    a.start();
    let mut b = Replica::new(&a, &database.url(), "replica-b");
    b.start();
    (a, b)
}

fn apply_policy(replica: &Replica, text: &str) -> serde_json::Value {
    let path = replica.logs.path().join("policy.toml");
    std::fs::write(&path, text).unwrap();
    replica.cli_json(&["policy", "apply", path.to_str().unwrap()])
}

#[test]
fn commands_revocations_and_policy_cross_replicas_and_a_killed_replica_loses_nothing() {
    let Some(database) = Database::create("replicas::commands_revocations_and_policy_cross_replicas") else {
        return;
    };
    let (mut a, b) = two_replicas(&database);
    let urls = [a.url(), b.url()];
    let mut laptop = Agent::enroll(&a, "laptop", &product_state("14.0.1", ""), &[]);
    let mut victim = Agent::enroll(&a, "victim", &product_state("14.0.1", ""), &[]);
    for agent in [&mut laptop, &mut victim] {
        // Replica A first: both connect there.
        agent.set_coordinators(&urls);
        agent.start();
    }
    for name in ["laptop", "victim"] {
        assert!(
            wait_until(Duration::from_secs(20), || a.is_online(name)),
            "{name} never came online on A:\n{}",
            a.log()
        );
        // B sees them online through the shared rows (fresh heartbeats).
        assert!(
            wait_until(Duration::from_secs(10), || b.is_online(name)),
            "B does not see {name} online"
        );
    }
    assert!(a.log().contains(&laptop.id), "laptop is held by A");
    assert!(!b.log().contains(&laptop.id), "laptop is not held by B:\n{}", b.log());

    // A policy applied through B reaches A, which pushes it to its agents.
    let applied = apply_policy(&b, "offline_after = \"7m\"\n");
    assert_eq!(applied["version"], 1, "{applied}");
    assert!(
        wait_until(Duration::from_secs(10), || a.cli_json(&["policy", "show"])["version"]
            == 1),
        "A never loaded the policy applied through B:\n{}",
        a.log()
    );
    let saved = laptop.data_dir().join("policy.toml");
    assert!(
        wait_until(Duration::from_secs(10), || std::fs::read_to_string(&saved)
            .is_ok_and(|text| text.contains("7m"))),
        "the laptop (on A) never received the policy applied through B:\n{}",
        laptop.log()
    );

    // A recheck issued through B is delivered by A and answered; B's summary
    // polls the shared commands table.
    laptop.set_state(&product_state("14.0.2", ""));
    let summary = b.cli_json(&["recheck", &laptop.id, "--wait", "15s"]);
    assert_eq!(summary["targeted"], 1, "{summary}");
    assert_eq!(summary["answered"], 1, "{summary}\nA:\n{}", a.log());
    assert_eq!(summary["unreachable"], 0, "{summary}");
    assert!(
        a.log().contains("delivered commands queued through another replica"),
        "{}",
        a.log()
    );
    assert!(
        wait_until(Duration::from_secs(10), || b
            .cli_json(&["agents"])
            .as_array()
            .unwrap()
            .iter()
            .any(|agent| agent["hostname"] == "laptop" && agent["version"] == "14.0.2")),
        "B never saw the laptop's answer"
    );

    // A revoke through B cuts the victim's stream on A within seconds, and
    // neither replica lets it back in.
    let revoked = b.cli(&["revoke", &victim.id]);
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    assert!(
        wait_until(Duration::from_secs(5), || !a.is_online("victim")),
        "A kept the revoked agent's stream:\n{}",
        a.log()
    );
    // Either the stream saw the reloaded list itself, or the reload cut it
    // first (issue 24 point 4: both run on the same wake-up).
    let log = a.log();
    assert!(
        log.contains("cut the stream of an agent revoked through another replica")
            || log.contains("certificate revoked or retired"),
        "{log}"
    );
    assert!(
        !wait_until(Duration::from_secs(3), || a.is_online("victim")
            || b.is_online("victim")),
        "the revoked agent came back"
    );
    assert!(
        victim.log().contains("revoked") || victim.log().contains("refused"),
        "{}",
        victim.log()
    );

    // Replica A dies without a goodbye. A recheck issued through B while
    // the laptop reconnects is queued and delivered when it arrives on B.
    a.kill();
    laptop.set_state(&product_state("14.0.3", ""));
    let summary = b.cli_json(&["recheck", &laptop.id, "--wait", "30s"]);
    assert_eq!(
        summary["answered"],
        1,
        "{summary}\nB:\n{}\nlaptop:\n{}",
        b.log(),
        laptop.log()
    );
    assert!(b.log().contains(&laptop.id), "the laptop moved to B");
    assert!(b.is_online("laptop"));

    // Nothing lost: every report the laptop made is stored exactly once,
    // its spool drains, and both admin commands were answered.
    let spool = laptop.data_dir().join("spool");
    let pending = || {
        std::fs::read_dir(&spool)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "pb"))
                    .count()
            })
            .unwrap_or(0)
    };
    assert!(
        wait_until(Duration::from_secs(10), || pending() == 0),
        "reports left in the spool"
    );
    let store = &database.store;
    let row = database.runtime.block_on(store.get_agent(&laptop.id)).unwrap().unwrap();
    let stored = database
        .runtime
        .block_on(store.count_reports(Some(&laptop.id)))
        .unwrap();
    assert!(row.last_seq >= 3, "{row:?}");
    assert_eq!(stored, row.last_seq, "every seq from 1 to the last is stored once");
    assert_eq!(row.product.version, "14.0.3");
}

#[test]
fn the_engine_runs_once_across_replicas_and_moves_when_its_replica_dies() {
    let Some(database) = Database::create("replicas::the_engine_runs_once_across_replicas") else {
        return;
    };
    let (mut a, mut b) = two_replicas(&database);
    // One straggler on each replica.
    let mut s1 = Agent::enroll(&a, "s1", &product_state("14.0.1", ""), &[]);
    let mut s2 = Agent::enroll(&a, "s2", &product_state("14.0.1", ""), &[]);
    s1.set_coordinators(&[a.url(), b.url()]);
    s2.set_coordinators(&[b.url(), a.url()]);
    s1.start();
    s2.start();
    for name in ["s1", "s2"] {
        assert!(
            wait_until(Duration::from_secs(20), || b.is_online(name)),
            "{name} never came online"
        );
    }
    // Exactly one replica holds the engine lease.
    let lease = "took the engine lease";
    assert!(wait_until(Duration::from_secs(10), || a.log().contains(lease)
        || b.log().contains(lease)));
    let a_runs_engine = a.log().contains(lease);
    assert_ne!(a_runs_engine, b.log().contains(lease), "both replicas took the lease");

    let started = b.cli_json(&[
        "rollout",
        "start",
        "--target",
        "14.0.2",
        "--grace",
        "500ms",
        "--recheck-every",
        "1s",
        "--max-attempts",
        "3",
    ]);
    let rollout = started["id"].as_str().unwrap().to_string();
    let store = &database.store;
    let members = |rollout: &str| database.runtime.block_on(store.members(rollout)).unwrap();
    // Kill the engine's replica right after the first recheck (the next is
    // a second away, so no tick is cut in half).
    assert!(
        wait_until(Duration::from_secs(20), || {
            let members = members(&rollout);
            members.len() == 2 && members.iter().all(|member| member.attempts >= 1)
        }),
        "no first recheck: {:?}",
        members(&rollout)
    );
    let survivor_log = if a_runs_engine {
        a.kill();
        b.log.clone()
    } else {
        b.kill();
        a.log_path()
    };
    let survivor_cli = |args: &[&str]| -> serde_json::Value {
        if a_runs_engine {
            b.cli_json(args)
        } else {
            a.cli_json(args)
        }
    };
    assert!(
        wait_until(Duration::from_secs(10), || std::fs::read_to_string(&survivor_log)
            .unwrap_or_default()
            .contains(lease)),
        "the engine lease never moved to the surviving replica"
    );

    // The rechecks go on from where they were, on the survivor, to hard.
    let all_hard = || {
        let stragglers = survivor_cli(&["stragglers"]);
        let list = stragglers.as_array().cloned().unwrap_or_default();
        list.len() == 2 && list.iter().all(|straggler| straggler["state"] == "hard")
    };
    assert!(
        wait_until(Duration::from_secs(30), all_hard),
        "stragglers never turned hard: {:?}",
        members(&rollout)
    );

    // One recheck per straggler per attempt, not two.
    let commands = database.runtime.block_on(store.rollout_commands(&rollout)).unwrap();
    for agent in [&s1, &s2] {
        let scheduled: Vec<_> = commands
            .iter()
            .filter(|command| command.agent_id == agent.id && command.origin == "schedule")
            .collect();
        assert_eq!(scheduled.len(), 3, "{} got {scheduled:#?}", agent.hostname);
        let member = members(&rollout)
            .into_iter()
            .find(|member| member.agent_id == agent.id)
            .unwrap();
        assert_eq!(member.attempts, 3);
        let transitions: Vec<String> = database
            .runtime
            .block_on(store.agent_transitions(&agent.id))
            .unwrap()
            .into_iter()
            .map(|transition| transition.to_state)
            .collect();
        // Each state entered once (the first tick may already be past the grace).
        assert_eq!(
            transitions.last().map(String::as_str),
            Some("straggler_hard"),
            "{transitions:?}"
        );
        for state in ["pending", "straggler_soft", "straggler_hard"] {
            let times = transitions.iter().filter(|to| *to == state).count();
            assert!(
                times <= 1,
                "{} entered {state} {times} times: {transitions:?}",
                agent.hostname
            );
        }
        assert!(transitions.iter().any(|to| to == "straggler_soft"), "{transitions:?}");
    }
}

/// `init` and `admin-cert` with `--database-url` record admin identities in
/// the shared database (no SQLite file), every replica lists them, and a
/// revocation through one replica is refused by the other at once.
#[test]
fn offline_admins_live_in_postgresql_and_a_revocation_reaches_every_replica() {
    let Some(database) = Database::create("replicas::offline_admins_live_in_postgresql") else {
        return;
    };
    let url = database.url();

    // A data dir made for PostgreSQL: no embedded store, the local admin in the database.
    let fresh = tempfile::tempdir().unwrap();
    let init = Command::new(SERVER)
        .args(["init", "--data-dir"])
        .arg(fresh.path().join("data"))
        .args(["--database-url", &url])
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    assert!(
        !fresh.path().join("data/rollcall.db").exists(),
        "no SQLite file beside PostgreSQL"
    );
    let names = |database: &Database| -> Vec<(String, bool)> {
        let mut rows: Vec<(String, bool)> = database
            .runtime
            .block_on(database.store.list_admin_certificates())
            .unwrap()
            .into_iter()
            .map(|row| (row.name, row.revoked_at_ms.is_some()))
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(names(&database), [("local-admin".to_string(), false)]);

    // Replicas on the harness data dir; bob issued offline into the database.
    let (a, b) = two_replicas(&database);
    let bob_dir = a.data_dir().join("bob");
    let issued = Command::new(SERVER)
        .args(["admin-cert", "--data-dir"])
        .arg(a.data_dir())
        .args(["--name", "bob", "--role", "viewer", "--out"])
        .arg(&bob_dir)
        .args(["--database-url", &url])
        .output()
        .unwrap();
    assert!(issued.status.success(), "{}", String::from_utf8_lossy(&issued.stderr));
    let listed = b.cli_json(&["admin", "list"]);
    let listed_names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|admin| admin["name"].as_str())
        .collect();
    assert!(listed_names.contains(&"bob"), "replica B lists bob: {listed}");

    let bob_on_b = || {
        Command::new(CLI)
            .arg("--coordinator")
            .arg(b.url())
            .arg("--identity")
            .arg(&bob_dir)
            .args(["--output", "json", "agents"])
            .output()
            .unwrap()
    };
    assert!(bob_on_b().status.success(), "bob may list agents before the revocation");

    // Revoked through replica A (the harness coordinator) …
    let revoke = Command::new(CLI)
        .arg("--coordinator")
        .arg(a.url())
        .arg("--identity")
        .arg(a.data_dir().join("admin"))
        .args(["admin", "revoke", "bob"])
        .output()
        .unwrap();
    assert!(revoke.status.success(), "{}", String::from_utf8_lossy(&revoke.stderr));
    // … and refused by replica B without a restart.
    assert!(
        wait_until(Duration::from_secs(10), || !bob_on_b().status.success()),
        "replica B still serves a revoked admin"
    );
}

#[test]
fn a_revocation_whose_wake_up_is_lost_still_reaches_every_replica_and_ends_its_watch() {
    let Some(database) = Database::create("replicas::a_revocation_whose_wake_up_is_lost") else {
        return;
    };
    let url = database.url();
    let (a, b) = two_replicas(&database);
    let carol_dir = a.data_dir().join("carol");
    let issued = Command::new(SERVER)
        .args(["admin-cert", "--data-dir"])
        .arg(a.data_dir())
        .args(["--name", "carol", "--role", "viewer", "--out"])
        .arg(&carol_dir)
        .args(["--database-url", &url])
        .output()
        .unwrap();
    assert!(issued.status.success(), "{}", String::from_utf8_lossy(&issued.stderr));
    let carol_on_b = |args: &[&str]| {
        let mut command = Command::new(CLI);
        command
            .arg("--coordinator")
            .arg(b.url())
            .arg("--identity")
            .arg(&carol_dir)
            .args(args);
        command
    };
    assert!(carol_on_b(&["agents"]).output().unwrap().status.success());
    let mut watch = carol_on_b(&["watch"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert!(watch.try_wait().unwrap().is_none(), "carol's watch did not start");

    // Revoked in the database with no wake-up at all (as when the NOTIFY
    // after the commit is lost): replica B's sweep must find it.
    let now_ms = rollcall_common::timefmt::now_ms();
    let serials = database
        .runtime
        .block_on(database.store.revoke_admin_certificates("carol", now_ms))
        .unwrap();
    assert_eq!(serials.len(), 1);
    let sweep = rollcall_server::replication::SWEEP_INTERVAL + Duration::from_secs(10);
    assert!(
        wait_until(sweep, || !carol_on_b(&["agents"]).output().unwrap().status.success()),
        "replica B still serves an admin revoked without a wake-up:\n{}",
        b.log()
    );
    assert!(
        wait_until(Duration::from_secs(5), || watch.try_wait().unwrap().is_some()),
        "carol's watch outlived her revocation"
    );
    let output = watch.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A stream held on `url` with a stolen copy of an agent's identity: it
/// says hello and waits for the Welcome. Returns the stream to watch.
async fn stolen_stream(
    url: &str,
    ca: &str,
    cert: &str,
    key: &str,
) -> tonic::Streaming<rollcall_common::proto::CoordinatorMessage> {
    use rollcall_common::proto::agent_service_client::AgentServiceClient;
    use rollcall_common::tls::{DialOptions, channel, client_config};
    let addr = rollcall_common::net::parse_coordinator_url(url).unwrap();
    let config = client_config(ca, Some((cert, key))).unwrap();
    let mut client =
        AgentServiceClient::new(channel(&addr, std::sync::Arc::new(config), &DialOptions::default()).unwrap());
    let mut inbound = crate::bad_input::open_stream(&mut client, vec![crate::bad_input::hello("stolen")])
        .await
        .expect("the stolen copy connects while the identity is good");
    let first = tokio_stream::StreamExt::next(&mut inbound).await;
    assert!(
        matches!(&first, Some(Ok(message)) if matches!(message.body, Some(rollcall_common::proto::coordinator_message::Body::Welcome(_)))),
        "{first:?}"
    );
    inbound
}

/// How long until `inbound` ends (an error status or its end), at most `cap`.
async fn ends_within(
    inbound: &mut tonic::Streaming<rollcall_common::proto::CoordinatorMessage>,
    cap: Duration,
) -> Option<(Duration, Option<tonic::Status>)> {
    let started = std::time::Instant::now();
    tokio::time::timeout(cap, async {
        loop {
            match tokio_stream::StreamExt::next(inbound).await {
                Some(Ok(_)) => continue,
                Some(Err(status)) => return (started.elapsed(), Some(status)),
                None => return (started.elapsed(), None),
            }
        }
    })
    .await
    .ok()
}

/// Issue 24 point 4: what is already open ends too. A stolen copy of an
/// agent's key holds a stream on replica B; revoking the agent on replica A
/// ends it within 5 s. And when the real agent renews its certificate and
/// connects to A with the new one, the old certificate is retired: a stream
/// B holds with the old one ends within 5 s as well.
#[test]
fn revocation_and_retirement_end_streams_already_open_on_another_replica() {
    let Some(database) = Database::create("replicas::revocation_and_retirement_end_open_streams") else {
        return;
    };
    let mut a = Coordinator::init();
    a.extra_args.extend(replica_args(&database.url(), "replica-a"));
    a.extra_args
        .extend(["--agent-cert-lifetime".to_string(), "60s".to_string()]);
    a.start();
    let mut b = Replica::new(&a, &database.url(), "replica-b");
    b.start();
    let ca = std::fs::read_to_string(a.data_dir().join("ca.pem")).unwrap();
    let read_identity = |agent: &Agent| {
        let dir = agent.data_dir().join("identity");
        (
            std::fs::read_to_string(dir.join("cert.pem")).unwrap(),
            std::fs::read_to_string(dir.join("key.pem")).unwrap(),
        )
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // Revocation.
    let victim = Agent::enroll(&a, "victim", &product_state("14.0.1", ""), &[]);
    let (cert, key) = read_identity(&victim);
    let mut stolen = runtime.block_on(stolen_stream(&b.url(), &ca, &cert, &key));
    let revoked = a.cli(&["revoke", &victim.id]);
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    let ended = runtime.block_on(ends_within(&mut stolen, Duration::from_secs(5)));
    let (took, status) =
        ended.unwrap_or_else(|| panic!("the stolen stream on B outlived the revocation by 5s:\n{}", b.log()));
    eprintln!("revocation on A ended the stream on B after {took:?}: {status:?}");

    // Retirement by renewal: the agent renews its certificate (a
    // short-lived one is renewed early); then, while it is stopped, a stolen
    // copy of the first certificate opens a stream on B (opened while the
    // agent is stopped: a newer stream of the agent would end it anyway, as
    // one live stream per agent across replicas); the agent's next stream,
    // with the new certificate, retires the old one.
    let mut renewer = Agent::enroll(&a, "renewer", &product_state("14.0.1", ""), &[]);
    renewer.set_coordinators(&[a.url()]);
    let (old_cert, old_key) = read_identity(&renewer);
    // Certificates carry whole seconds: a renewal within the enrolment's
    // second would end no later than the old certificate, and the stolen
    // copy's stream would then retire the renewed one. Let a second pass.
    let enrolled = std::time::Instant::now();
    assert!(wait_until(Duration::from_secs(3), || enrolled.elapsed()
        > Duration::from_millis(1100)));
    renewer.start();
    assert!(
        wait_until(Duration::from_secs(40), || {
            a.log().contains("agent certificate renewed") && read_identity(&renewer).0 != old_cert
        }),
        "certificate never renewed:\n{}",
        renewer.log()
    );
    // Its next stream uses the new certificate (restarted here so the test
    // does not wait for the agent's own reconnect).
    renewer.stop();
    let mut stolen = runtime.block_on(stolen_stream(&b.url(), &ca, &old_cert, &old_key));
    renewer.start();
    let retired = || {
        [a.log(), b.log()]
            .iter()
            .any(|log| log.contains("revoked the older certificates of a renewed agent"))
    };
    assert!(
        wait_until(Duration::from_secs(60), retired),
        "the renewed agent never retired its old certificate:\n{}",
        renewer.log()
    );
    let ended = runtime.block_on(ends_within(&mut stolen, Duration::from_secs(5)));
    let (took, status) = ended.unwrap_or_else(|| {
        panic!(
            "the stream with the retired certificate outlived it by 5s:\nA:\n{}\nB:\n{}",
            a.log(),
            b.log()
        )
    });
    eprintln!("retirement ended the old certificate's stream on B within {took:?} of the test seeing it: {status:?}");
    assert!(
        status
            .as_ref()
            .is_some_and(|s| s.code() == tonic::Code::PermissionDenied),
        "{status:?}"
    );
    assert!(
        wait_until(Duration::from_secs(20), || a.is_online("renewer")),
        "the renewed agent itself is in good standing:\n{}",
        renewer.log()
    );
}

/// Issue 24 point 5 across replicas: at most one live stream per agent
/// identity. A stream of an agent held on replica A ends (ABORTED, within
/// 5 s) when a newer one of the same identity opens on replica B, which
/// keeps its own.
#[test]
fn a_newer_stream_on_another_replica_ends_the_older_one() {
    let Some(database) = Database::create("replicas::a_newer_stream_on_another_replica") else {
        return;
    };
    let (a, b) = two_replicas(&database);
    let ca = std::fs::read_to_string(a.data_dir().join("ca.pem")).unwrap();
    let agent = Agent::enroll(&a, "twice", &product_state("14.0.1", ""), &[]);
    let dir = agent.data_dir().join("identity");
    let cert = std::fs::read_to_string(dir.join("cert.pem")).unwrap();
    let key = std::fs::read_to_string(dir.join("key.pem")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut on_a = runtime.block_on(stolen_stream(&a.url(), &ca, &cert, &key));
    let mut on_b = runtime.block_on(stolen_stream(&b.url(), &ca, &cert, &key));
    let ended = runtime.block_on(ends_within(&mut on_a, Duration::from_secs(5)));
    let (took, status) = ended.unwrap_or_else(|| {
        panic!(
            "the older stream on A outlived the newer one on B by 5s:\nA:\n{}\nB:\n{}",
            a.log(),
            b.log()
        )
    });
    eprintln!("a newer stream on B ended the one on A after {took:?}: {status:?}");
    assert!(
        status
            .as_ref()
            .is_some_and(|s| s.code() == tonic::Code::Aborted && s.message().contains("another replica")),
        "{status:?}"
    );
    // The newer stream stays up.
    assert!(
        runtime
            .block_on(ends_within(&mut on_b, Duration::from_secs(2)))
            .is_none(),
        "the newer stream on B ended too"
    );
    assert!(
        a.log().contains("a newer stream on another replica replaced"),
        "{}",
        a.log()
    );
}
