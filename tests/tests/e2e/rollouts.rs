//! Rollouts driven through a real coordinator and real agents: every cause
//! code diagnosed on a fleet built with known causes, the update agent
//! first with its blocks, soft → hard on a compressed schedule, completion
//! over time, queued commands delivered on reconnect or dropped when
//! expired, and automatic update-now once a cause clears.

use std::collections::BTreeMap;
use std::time::Duration;

use rollcall_server::store::traits::*;
use sha2::Digest;

use crate::harness::{Agent, Coordinator, free_port, wait_until};

const TARGET: &str = "14.0.2";

struct Endpoint<'a> {
    name: &'a str,
    labels: &'a [(&'a str, &'a str)],
    version: &'a str,
    role: &'a str,
    license: &'a str,
    permission: &'a str,
    source: &'a str,
    server: String,
    extra: &'a str,
}

impl Endpoint<'_> {
    fn state(&self) -> String {
        let source_address = if self.source.starts_with("custom") {
            let address = self.source.trim_start_matches("custom:");
            format!("source_address = \"{address}\"\n")
        } else {
            String::new()
        };
        let source = if self.source.starts_with("custom") {
            "custom"
        } else {
            "standard"
        };
        format!(
            "version = \"{}\"\nrole = \"{}\"\n[license]\nexpires = \"{}\"\n[update]\npermission = \"{}\"\nsource = \"{source}\"\n{source_address}[server]\naddress = \"{}\"\n{}",
            self.version, self.role, self.license, self.permission, self.server, self.extra
        )
    }
}

/// A code-signing certificate the policy requires; returns (PEM, SHA-256 hex).
fn required_certificate() -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Example Code Signing Root");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), hex::encode(sha2::Sha256::digest(cert.der())))
}

fn policy(fingerprint: &str) -> String {
    format!(
        r#"offline_after = "2s"
[[update_source.expected]]
match = {{ site = "kyoto" }}
source = "custom"
address = "ua-kyoto.example:8080"
[[update_source.expected]]
match = {{ site = "branch" }}
source = "custom"
address = "ua-1.example:8080"
[[update_source.expected]]
source = "standard"
[[certificates.required]]
name = "Example Code Signing Root"
sha256 = "{fingerprint}"
[certificates]
store = "etc/ssl/certs"
[connectivity]
timeout = "2s"
[[system_requirements.os]]
id = "debian"
min_version = "11"
"#
    )
}

fn rollout_coordinator() -> Coordinator {
    Coordinator::started_for_rollouts()
}

fn stragglers(coordinator: &Coordinator) -> Vec<serde_json::Value> {
    coordinator
        .cli_json(&["stragglers"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn every_cause_is_diagnosed_and_update_agents_come_first() {
    let coordinator = rollout_coordinator();
    let (cert_pem, fingerprint) = required_certificate();
    coordinator.apply_policy(&policy(&fingerprint));
    let server = format!("127.0.0.1:{}", coordinator.port);
    let closed = format!("127.0.0.1:{}", free_port());
    let base = |name: &'static str| Endpoint {
        name,
        labels: &[],
        version: "14.0.1",
        role: "endpoint",
        license: "2099-12-31",
        permission: "all_components",
        source: "standard",
        server: server.clone(),
        extra: "",
    };
    let fleet = vec![
        Endpoint {
            version: TARGET,
            ..base("done")
        },
        Endpoint {
            license: "2020-01-01",
            ..base("lic")
        },
        Endpoint {
            permission: "pattern_files",
            ..base("perm")
        },
        Endpoint {
            labels: &[("site", "kyoto")],
            ..base("src")
        },
        Endpoint {
            role: "update_agent",
            extra: "[update_agent]\nprogram_and_hotfix = true\naddress = \"ua-1.example:8080\"\n",
            ..base("ua")
        },
        Endpoint {
            labels: &[("site", "branch")],
            source: "custom:ua-1.example:8080",
            ..base("client1")
        },
        Endpoint {
            labels: &[("site", "branch")],
            source: "custom:ua-1.example:8080",
            ..base("client2")
        },
        Endpoint { ..base("certs") },
        Endpoint {
            server: closed.clone(),
            ..base("net")
        },
        Endpoint { ..base("sysreq") },
        Endpoint { ..base("off") },
        Endpoint { ..base("unk") },
    ];
    let mut agents = Vec::new();
    for endpoint in &fleet {
        let agent = Agent::enroll(&coordinator, endpoint.name, &endpoint.state(), endpoint.labels);
        let certs = agent.root().join("etc/ssl/certs");
        std::fs::create_dir_all(&certs).unwrap();
        if endpoint.name != "certs" {
            std::fs::write(certs.join("code-signing.pem"), &cert_pem).unwrap();
        }
        if endpoint.name == "sysreq" {
            std::fs::write(agent.root().join("etc/os-release"), "ID=centos\nVERSION_ID=\"7\"\n").unwrap();
        }
        agents.push(agent);
    }
    for agent in &mut agents {
        agent.start();
    }
    for agent in &agents {
        assert!(
            wait_until(Duration::from_secs(30), || coordinator.is_online(&agent.hostname)),
            "{} never came online:\n{}",
            agent.hostname,
            agent.log()
        );
    }
    // "off" reported once, then goes away.
    let off = agents.iter_mut().find(|agent| agent.hostname == "off").unwrap();
    assert!(wait_until(Duration::from_secs(10), || coordinator.agents_by_hostname()
        ["off"]["version"]
        == "14.0.1"));
    off.stop();

    let start = coordinator.cli(&[
        "rollout",
        "start",
        "--target",
        TARGET,
        "--grace",
        "1s",
        "--recheck-every",
        "400ms",
        "--max-attempts",
        "2",
    ]);
    assert!(start.status.success(), "{}", String::from_utf8_lossy(&start.stderr));

    let expected: BTreeMap<String, String> = [
        ("lic", "license"),
        ("perm", "update_permission"),
        ("src", "update_source"),
        ("client1", "update_agent"),
        ("client2", "update_agent"),
        ("certs", "certificates"),
        ("net", "connectivity"),
        ("off", "offline"),
        ("sysreq", "system_requirements"),
        ("unk", "unknown"),
        ("ua", "unknown"),
    ]
    .iter()
    .map(|(host, cause)| (host.to_string(), cause.to_string()))
    .collect();
    let mut last = BTreeMap::new();
    let diagnosed = wait_until(Duration::from_secs(30), || {
        last = coordinator.causes();
        last == expected
    });
    assert!(
        diagnosed,
        "diagnosis mismatch:\n got      {last:?}\n expected {expected:?}\n{}",
        coordinator.log()
    );

    // The stored results match what each endpoint should show.
    let checks_of = |name: &str| -> BTreeMap<String, serde_json::Value> {
        let agent = agents.iter().find(|agent| agent.hostname == name).unwrap();
        let detail = coordinator.cli_json(&["agent", &agent.id]);
        detail["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|check| (check["name"].as_str().unwrap().to_string(), check.clone()))
            .collect()
    };
    let done = checks_of("done");
    assert_eq!(done.len(), 7);
    for (name, check) in &done {
        assert_eq!(check["status"], "pass", "{name} on a healthy endpoint: {check}");
    }
    assert_eq!(checks_of("lic")["license"]["status"], "fail");
    assert_eq!(checks_of("lic")["license"]["runbook_step"], 1);
    assert_eq!(checks_of("perm")["update_permission"]["status"], "fail");
    let certs = checks_of("certs");
    assert_eq!(certs["certificates"]["status"], "fail");
    assert!(
        certs["certificates"]["evidence"]["missing"]
            .as_str()
            .unwrap()
            .contains("Example Code Signing Root")
    );
    let net = checks_of("net");
    assert_eq!(net["connectivity"]["status"], "fail");
    assert_eq!(net["license"]["status"], "pass");
    assert_eq!(checks_of("sysreq")["system_requirements"]["status"], "fail");
    assert_eq!(checks_of("unk")["version"]["status"], "warn");
    assert_eq!(checks_of("src")["update_source"]["status"], "fail");

    // The update agent is listed first, with the clients it blocks.
    let list = stragglers(&coordinator);
    assert_eq!(list[0]["hostname"], "ua", "{list:?}");
    assert_eq!(list[0]["blocks"], 2);
    assert_eq!(list[0]["role"], "update_agent");
    let client = list.iter().find(|s| s["hostname"] == "client1").unwrap();
    assert_eq!(client["update_agent"], list[0]["id"]);
    assert_eq!(client["runbook_step"], 3);
    assert_eq!(client["blocks"], 0);
    assert!(client["since"].as_str().unwrap().ends_with('Z'));
    let net = list.iter().find(|s| s["hostname"] == "net").unwrap();
    assert_eq!(net["runbook_step"], 5);
    assert!(net["failing"].as_array().unwrap().iter().any(|f| f == "connectivity"));
    assert!(net["update_agent"].is_null());
    // Then runbook order.
    let steps: Vec<u64> = list[1..].iter().map(|s| s["runbook_step"].as_u64().unwrap()).collect();
    assert!(
        steps.windows(2).all(|w| w[0] <= w[1]),
        "not in runbook order: {steps:?}"
    );

    // Soft → hard once the rechecks are spent (400ms, then 800ms).
    assert!(
        wait_until(Duration::from_secs(20), || stragglers(&coordinator)
            .iter()
            .all(|s| s["state"] == "hard")),
        "stragglers never turned hard: {:?}",
        stragglers(&coordinator)
    );

    let status = coordinator.cli_json(&["status"]);
    assert_eq!(status["target"], TARGET);
    assert_eq!(status["total"], 12);
    assert_eq!(status["completed"], 1);
    assert_eq!(status["stragglers"], 11);
    assert_eq!(status["pending"], 0);
    assert_eq!(status["offline"], 1);
    assert_eq!(status["by_cause"]["update_agent"], 2);
    assert_eq!(status["by_cause"]["license"], 1);
    assert!(status["fleet_cause"].is_null());

    // "unk" gets the new version; a recheck completes it, and history shows it.
    let unk = agents.iter().find(|agent| agent.hostname == "unk").unwrap();
    unk.set_state(
        &Endpoint {
            version: TARGET,
            ..base("unk")
        }
        .state(),
    );
    let recheck = coordinator.cli_json(&["recheck", &unk.id, "--wait", "10s"]);
    assert_eq!(recheck["targeted"], 1);
    assert_eq!(recheck["answered"], 1);
    assert_eq!(recheck["completed"], 1);
    assert_eq!(recheck["behind"], 0);
    assert_eq!(recheck["unreachable"], 0);
    assert!(wait_until(Duration::from_secs(10), || coordinator
        .cli_json(&["status"])["completed"]
        == 2));
    let history = coordinator.cli_json(&["status", "--history"]);
    let points = history["history"].as_array().unwrap();
    assert!(points.len() >= 3, "{points:?}");
    let completed: Vec<u64> = points.iter().map(|p| p["completed"].as_u64().unwrap()).collect();
    assert_eq!(completed.first(), Some(&1));
    assert_eq!(completed.last(), Some(&2));
    assert!(completed.windows(2).all(|w| w[0] <= w[1]));

    // Recheck all: the offline agent is unreachable, the rest answer.
    let summary = coordinator.cli_json(&["recheck", "all", "--wait", "3s"]);
    assert_eq!(summary["targeted"], 12);
    assert_eq!(summary["unreachable"], 1);
    assert_eq!(summary["answered"], 11);
    assert_eq!(summary["completed"], 2);
    assert_eq!(summary["behind"], 9);

    // A table view exists for people too.
    let table = coordinator.cli(&["stragglers"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("update_agent"));
}

#[test]
fn queued_commands_reach_agents_on_reconnect_and_expire_when_stale() {
    let coordinator = rollout_coordinator();
    let server = format!("127.0.0.1:{}", coordinator.port);
    let state = |version: &str| {
        Endpoint {
            name: "laptop",
            labels: &[],
            version,
            role: "endpoint",
            license: "2099-12-31",
            permission: "all_components",
            source: "standard",
            server: server.clone(),
            extra: "",
        }
        .state()
    };
    let mut laptop = Agent::enroll(&coordinator, "laptop", &state("14.0.1"), &[]);
    laptop.start();
    assert!(wait_until(Duration::from_secs(20), || coordinator.is_online("laptop")));
    let start = coordinator.cli(&["rollout", "start", "--target", TARGET, "--grace", "1h"]);
    assert!(start.status.success());
    laptop.stop();
    assert!(wait_until(Duration::from_secs(10), || !coordinator.is_online("laptop")));

    // Queued with a 1s expiry while the laptop sleeps: stale by the time it wakes.
    let expired = coordinator.cli_json(&["recheck", &laptop.id, "--wait", "1s"]);
    assert_eq!(expired["unreachable"], 1);

    // Queued with a long expiry: delivered when it reconnects, and answered.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let id = laptop.id.clone();
    let handle = {
        let url = coordinator.url();
        let identity = coordinator.admin_identity();
        std::thread::spawn(move || {
            std::process::Command::new(crate::harness::CLI)
                .args(["--coordinator", &url, "--identity"])
                .arg(identity)
                .args(["--output", "json", "recheck", &id, "--wait", "20s"])
                .output()
                .unwrap()
        })
    };
    laptop.set_state(&state(TARGET));
    std::thread::sleep(Duration::from_millis(500));
    laptop.start();
    let output = handle.join().unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["answered"], 1, "{summary}");
    assert_eq!(summary["completed"], 1);

    // The stale command was never delivered.
    let store = coordinator.store();
    let rollout = coordinator.cli_json(&["rollout", "show"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let commands = runtime.block_on(store.rollout_commands(&rollout)).unwrap();
    let admin: Vec<_> = commands.iter().filter(|c| c.origin.starts_with("admin")).collect();
    assert_eq!(admin.len(), 2);
    assert!(
        admin[0].expired && admin[0].delivered_at_ms.is_none() && admin[0].answered_at_ms.is_none(),
        "{:?}",
        admin[0]
    );
    assert!(
        admin[1].delivered_at_ms.is_some() && admin[1].answered_at_ms.is_some(),
        "{:?}",
        admin[1]
    );
}

#[test]
fn update_now_is_pushed_automatically_once_the_blocking_cause_clears() {
    let coordinator = rollout_coordinator();
    let server = format!("127.0.0.1:{}", coordinator.port);
    let state = |version: &str, permission: &str| {
        Endpoint {
            name: "pc",
            labels: &[],
            version,
            role: "endpoint",
            license: "2099-12-31",
            permission,
            source: "standard",
            server: server.clone(),
            extra: "",
        }
        .state()
    };
    let mut pc = Agent::enroll(&coordinator, "pc", &state("14.0.1", "pattern_files"), &[]);
    // The local update action: installs the target version (writes the new state).
    let upgraded = pc.dir.path().join("upgraded.toml");
    std::fs::write(&upgraded, state(TARGET, "all_components")).unwrap();
    let script = pc.dir.path().join("product-update.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncp '{}' '{}'\necho upgraded\n",
            upgraded.display(),
            pc.state_path().display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    pc.set_update_command(&[&script.display().to_string()]);
    pc.start();
    assert!(
        wait_until(Duration::from_secs(20), || coordinator.is_online("pc")),
        "{}",
        pc.log()
    );

    let start = coordinator.cli(&[
        "rollout",
        "start",
        "--target",
        TARGET,
        "--grace",
        "500ms",
        "--recheck-every",
        "300ms",
        "--max-attempts",
        "20",
        "--auto-update-now",
    ]);
    assert!(start.status.success());
    assert!(
        wait_until(Duration::from_secs(15), || coordinator
            .causes()
            .get("pc")
            .map(String::as_str)
            == Some("update_permission")),
        "{:?}",
        coordinator.causes()
    );

    // The admin fixes the setting (runbook step 2); the next recheck sees it
    // cleared and the coordinator pushes update_now on its own.
    pc.set_state(&state("14.0.1", "all_components"));
    assert!(
        wait_until(
            Duration::from_secs(20),
            || coordinator.cli_json(&["status"])["completed"] == 1
        ),
        "never completed:\n{}\n{}",
        pc.log(),
        coordinator.log()
    );
    let store = coordinator.store();
    let rollout = coordinator.cli_json(&["rollout", "show"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let commands = runtime.block_on(store.rollout_commands(&rollout)).unwrap();
    let auto: Vec<_> = commands.iter().filter(|c| c.origin == "auto").collect();
    assert_eq!(auto.len(), 1, "{commands:?}");
    assert_eq!(auto[0].answer_version, TARGET);
}

#[test]
fn agent_side_update_now_is_reported_and_counted_in_the_report() {
    let coordinator = rollout_coordinator();
    let server = format!("127.0.0.1:{}", coordinator.port);
    let state = |version: &str| {
        Endpoint {
            name: "desk",
            labels: &[],
            version,
            role: "endpoint",
            license: "2099-12-31",
            permission: "all_components",
            source: "standard",
            server: server.clone(),
            extra: "",
        }
        .state()
    };
    let mut desk = Agent::enroll(&coordinator, "desk", &state("14.0.1"), &[]);
    let upgraded = desk.dir.path().join("upgraded.toml");
    std::fs::write(&upgraded, state(TARGET)).unwrap();
    desk.set_update_command(&[
        "/bin/cp",
        &upgraded.display().to_string(),
        &desk.state_path().display().to_string(),
    ]);
    desk.start();
    assert!(wait_until(Duration::from_secs(20), || coordinator.is_online("desk")));
    let start = coordinator.cli(&["rollout", "start", "--target", TARGET, "--grace", "1h"]);
    assert!(start.status.success());

    // The tray icon's "Update Now", run on the endpoint itself.
    let output = std::process::Command::new(crate::harness::AGENT)
        .args(["update-now", "--config"])
        .arg(desk.config_path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains(TARGET));
    // The running agent delivers the outcome; the coordinator sees the target.
    assert!(
        wait_until(
            Duration::from_secs(20),
            || coordinator.cli_json(&["report"])["update_now"]["agent_side"]["tried"] == 1
        ),
        "{}",
        desk.log()
    );
    let report = coordinator.cli_json(&["report"]);
    assert_eq!(report["update_now"]["agent_side"]["completed"], 1);
    assert!(wait_until(Duration::from_secs(10), || coordinator
        .cli_json(&["status"])["completed"]
        == 1));
}
