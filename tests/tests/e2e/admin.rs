//! The admin experience against a real coordinator with a seeded fleet:
//! every command in table and JSON form, roles enforced, audit entries,
//! the step-8 report ranking a known distinguishing attribute first, and
//! Japanese output.

use std::process::Command;
use std::time::Duration;

use crate::harness::{Agent, CLI, Coordinator, SERVER, wait_until};

const TARGET: &str = "14.0.2";

fn state(version: &str, server: &str) -> String {
    format!(
        "version = \"{version}\"\nrole = \"endpoint\"\n[license]\nexpires = \"2099-12-31\"\n[update]\npermission = \"all_components\"\nsource = \"standard\"\n[server]\naddress = \"{server}\"\n"
    )
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

fn admin_cert(coordinator: &Coordinator, name: &str, role: &str) -> std::path::PathBuf {
    let out = coordinator.dir.path().join(name);
    let output = Command::new(SERVER)
        .args(["admin-cert", "--data-dir"])
        .arg(coordinator.data_dir())
        .args(["--name", name, "--role", role, "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    out
}

/// A fleet where the stragglers share one label value (rack=b) that no
/// completed agent has.
fn seeded() -> (Coordinator, Vec<Agent>) {
    let coordinator = Coordinator::started_for_rollouts();
    let server = format!("127.0.0.1:{}", coordinator.port);
    let mut agents = Vec::new();
    for (name, version, rack) in [
        ("ok-1", TARGET, "a"),
        ("ok-2", TARGET, "a"),
        ("ok-3", TARGET, "a"),
        ("ok-4", TARGET, "a"),
        ("late-1", "14.0.1", "b"),
        ("late-2", "14.0.1", "b"),
        ("late-3", "14.0.1", "b"),
    ] {
        let mut agent = Agent::enroll(
            &coordinator,
            name,
            &state(version, &server),
            &[("rack", rack), ("site", "osaka")],
        );
        agent.start();
        agents.push(agent);
    }
    for agent in &agents {
        assert!(
            wait_until(Duration::from_secs(30), || coordinator.is_online(&agent.hostname)),
            "{}",
            agent.log()
        );
    }
    assert!(wait_until(Duration::from_secs(10), || coordinator
        .agents_by_hostname()
        .values()
        .all(|a| a["version"].is_string())));
    let start = coordinator.cli(&[
        "rollout",
        "start",
        "--target",
        TARGET,
        "--grace",
        "300ms",
        "--recheck-every",
        "300ms",
        "--max-attempts",
        "1",
    ]);
    assert!(start.status.success(), "{}", stderr(&start));
    // Step 7 (`unknown`) once each straggler answered its first recheck
    // with a fresh all-pass report (`awaiting_recheck` until then).
    assert!(
        wait_until(Duration::from_secs(20), || {
            let status = coordinator.cli_json(&["status"]);
            status["stragglers"] == 3 && status["by_cause"]["unknown"] == 3
        }),
        "{}",
        coordinator.cli_json(&["status"])
    );
    (coordinator, agents)
}

#[test]
fn every_command_answers_in_table_and_json_and_the_report_finds_the_difference() {
    let (coordinator, agents) = seeded();

    // status
    let status = coordinator.cli_json(&["status"]);
    assert_eq!(
        (status["total"].as_u64(), status["completed"].as_u64()),
        (Some(7), Some(4))
    );
    assert_eq!(status["by_cause"]["unknown"], 3);
    let table = stdout(&coordinator.cli(&["status", "--history"]));
    assert!(table.contains("57%") && table.contains("(4/7)"), "{table}");
    assert!(table.contains("completion over time"), "{table}");

    // agents with filters
    let late = coordinator.cli_json(&["agents", "--cause", "unknown"]);
    let names: Vec<&str> = late
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["hostname"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["late-1", "late-2", "late-3"]);
    assert_eq!(
        coordinator
            .cli_json(&["agents", "--state", "completed"])
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        coordinator
            .cli_json(&["agents", "--version", TARGET, "--selector", "rack=a"])
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert!(stdout(&coordinator.cli(&["agents"])).contains("7 agents, 7 online"));

    // agent ID: checks with evidence and remediation, history
    let late1 = agents.iter().find(|a| a.hostname == "late-1").unwrap();
    let detail = coordinator.cli_json(&["agent", &late1.id]);
    assert_eq!(detail["id"], late1.id.as_str());
    assert!(detail["state"].as_str().unwrap().starts_with("straggler_"), "{detail}");
    assert_eq!(detail["checks"].as_array().unwrap().len(), 7);
    let license = detail["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "license")
        .unwrap();
    assert_eq!(license["runbook_step"], 1);
    assert!(license["remediation"].as_str().unwrap().len() > 10);
    assert!(license["evidence"].is_object());
    assert!(detail["history"].as_array().unwrap().len() >= 2, "{detail}");
    assert!(detail["update_agent"].is_null());
    let table = stdout(&coordinator.cli(&["agent", &late1.id]));
    assert!(table.contains("history:") && table.contains("straggler"), "{table}");

    // stragglers, rollouts, policy, tokens
    assert_eq!(coordinator.cli_json(&["stragglers"]).as_array().unwrap().len(), 3);
    let rollouts = coordinator.cli_json(&["rollout", "list"]);
    assert_eq!(rollouts[0]["target"], TARGET);
    assert_eq!(rollouts[0]["state"], "active");
    assert!(stdout(&coordinator.cli(&["rollout", "show"])).contains(TARGET));
    assert_eq!(coordinator.cli_json(&["policy", "show"])["version"], 0);
    assert_eq!(coordinator.cli_json(&["token", "list"]).as_array().unwrap().len(), 7);

    // The step-8 report: the distinguishing attribute ranks first.
    let report = coordinator.cli_json(&["report"]);
    assert_eq!(report["affected"]["count"], 3);
    assert_eq!(report["affected"]["total"], 7);
    let first = &report["differences"][0];
    assert_eq!(
        (first["attribute"].as_str(), first["value"].as_str()),
        (Some("label:rack"), Some("b")),
        "{report}"
    );
    assert_eq!(
        (first["stragglers"].as_u64(), first["completed"].as_u64()),
        (Some(3), Some(0))
    );
    assert!(
        report["differences"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["attribute"] != "label:site")
    );
    assert_eq!(report["update_now"]["server_side"]["tried"], 0);
    assert_eq!(report["stragglers"].as_array().unwrap().len(), 3);
    let by_label = report["affected_by_label"].as_array().unwrap();
    assert!(
        by_label
            .iter()
            .any(|l| l["label"] == "rack" && l["value"] == "b" && l["count"] == 3 && l["total"] == 3)
    );

    let markdown = stdout(&coordinator.cli(&["report", "--lang", "en"]));
    assert!(markdown.contains("# Support report"), "{markdown}");
    assert!(markdown.contains("3 of 7 clients"), "{markdown}");
    assert!(markdown.contains("label:rack = b"), "{markdown}");
    let japanese = stdout(&coordinator.cli(&["report", "--lang", "ja"]));
    assert!(japanese.contains("全クライアント 7 台中 3 台"), "{japanese}");
    assert!(japanese.contains("上書きインストール"), "{japanese}");

    // Server-side update-now outcomes reach the report (no update action is
    // configured, so the agents refuse; nothing is "tried" by a probe that refused).
    let summary = coordinator.cli_json(&["update-now", "cause=unknown", "--wait", "5s"]);
    assert_eq!(summary["targeted"], 3);
    assert_eq!(summary["refused"], 3, "{summary}");

    // watch: an event arrives as it happens.
    let url = coordinator.url();
    let identity = coordinator.admin_identity();
    let watcher = std::thread::spawn(move || {
        Command::new(CLI)
            .args(["--coordinator", &url, "--identity"])
            .arg(identity)
            .args(["--output", "json", "watch", "--count", "1"])
            .output()
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(500));
    let late2 = agents.iter().find(|a| a.hostname == "late-2").unwrap();
    late2.set_state(&state(TARGET, &format!("127.0.0.1:{}", coordinator.port)));
    let recheck = coordinator.cli_json(&["recheck", &late2.id, "--wait", "10s"]);
    assert_eq!(recheck["completed"], 1);
    let watched = watcher.join().unwrap();
    let event: serde_json::Value = serde_json::from_str(stdout(&watched).lines().next().unwrap_or("{}")).unwrap();
    assert!(event["kind"].is_string() && event["at"].is_string(), "{event}");

    // completions and man page come from the clap definitions
    let completions = Command::new(CLI).args(["completions", "bash"]).output().unwrap();
    assert!(stdout(&completions).contains("rollcall"));
    let man = Command::new(CLI).arg("man").output().unwrap();
    assert!(stdout(&man).contains(".TH rollcall"));
    let help = Command::new(CLI).args(["recheck", "--help"]).output().unwrap();
    assert!(stdout(&help).contains("Examples:"));
}

#[test]
fn roles_are_enforced_revoked_admins_refused_and_audited() {
    let mut coordinator = Coordinator::init();
    coordinator.start();
    let viewer = admin_cert(&coordinator, "vera", "viewer");
    let operator = admin_cert(&coordinator, "otto", "operator");

    // A viewer reads but cannot start a rollout.
    assert!(coordinator.cli_as(&viewer, &["agents"]).status.success());
    let denied = coordinator.cli_as(&viewer, &["rollout", "start", "--target", "1.0"]);
    assert_eq!(denied.status.code(), Some(4), "{}", stderr(&denied));
    assert!(stderr(&denied).contains("needs operator"), "{}", stderr(&denied));

    // An operator starts rollouts but cannot manage tokens.
    let started = coordinator.cli_as(&operator, &["rollout", "start", "--target", "1.0"]);
    assert!(started.status.success(), "{}", stderr(&started));
    let denied = coordinator.cli_as(&operator, &["token", "create"]);
    assert_eq!(denied.status.code(), Some(4));

    // Admins issue identities through the API (CSR; the key is made locally).
    let api_issued = coordinator.dir.path().join("ida");
    let issued = coordinator.cli(&[
        "admin",
        "issue",
        "--name",
        "ida",
        "--role",
        "viewer",
        "--out",
        api_issued.to_str().unwrap(),
    ]);
    assert!(issued.status.success(), "{}", stderr(&issued));
    assert!(coordinator.cli_as(&api_issued, &["status"]).status.success());
    let admins = coordinator.cli_json(&["admin", "list"]);
    let names: Vec<&str> = admins
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"vera") && names.contains(&"ida") && names.contains(&"local-admin"),
        "{names:?}"
    );

    // A revoked admin certificate is refused.
    let revoked = coordinator.cli(&["admin", "revoke", "vera"]);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    let refused = coordinator.cli_as(&viewer, &["agents"]);
    assert!(!refused.status.success(), "revoked viewer still served");
    // Revocation survives a restart (it is in the store, loaded at start).
    coordinator.stop();
    coordinator.start();
    assert!(!coordinator.cli_as(&viewer, &["agents"]).status.success());
    assert!(coordinator.cli_as(&operator, &["agents"]).status.success());

    // The audit log holds who did what, including refusals.
    let audit = coordinator.cli_json(&["audit"]);
    let entries = audit.as_array().unwrap();
    let find = |actor: &str, action: &str, prefix: &str| {
        entries
            .iter()
            .any(|e| e["actor"] == actor && e["action"] == action && e["result"].as_str().unwrap().starts_with(prefix))
    };
    assert!(find("vera", "rollout.start", "denied"), "{audit}");
    assert!(find("otto", "rollout.start", "ok"), "{audit}");
    assert!(find("otto", "token.create", "denied"), "{audit}");
    assert!(find("local-admin", "admin.issue", "ok"), "{audit}");
    assert!(find("local-admin", "admin.revoke", "ok"), "{audit}");
    assert!(entries.iter().all(|e| e["at"].as_str().unwrap().ends_with('Z')));
    // Viewers and operators cannot read the audit log.
    assert_eq!(coordinator.cli_as(&operator, &["audit"]).status.code(), Some(4));

    // Errors say what to do next.
    let missing = Command::new(CLI)
        .args(["--coordinator", &coordinator.url(), "agents"])
        .env_remove("ROLLCALL_IDENTITY")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("ROLLCALL_IDENTITY"), "{}", stderr(&missing));
}
