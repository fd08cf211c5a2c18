//! Diagnosis never tells support something false (issue 16), on a real
//! coordinator with real agents: a probe that cannot read the product state
//! is `probe_error` (not `license`, and no fleet headline); an agent that
//! reported no checks is `no_data`; a healthy agent behind the target is
//! step 7 (`unknown`) only once a recheck was sent and a fresh all-pass
//! report came after it (`awaiting_recheck` until then).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rollcall_common::proto::{self, agent_message, agent_service_client::AgentServiceClient};
use rollcall_common::timefmt::now_ms;
use rollcall_common::tls::{DialOptions, channel, client_config};

use crate::harness::{Agent, Coordinator, wait_until};

const TARGET: &str = "14.0.2";
const BEHIND: &str = "14.0.1";

/// Everything passes on an endpoint whose product server is the coordinator's
/// port; offline only after an hour, so a stopped agent stays "online" and
/// only its facts can go stale.
pub(crate) const POLICY: &str = r#"offline_after = "1h"
[[update_source.expected]]
source = "standard"
[connectivity]
timeout = "2s"
[[system_requirements.os]]
id = "debian"
min_version = "11"
"#;

fn coordinator() -> Coordinator {
    let coordinator = Coordinator::started_for_rollouts();
    coordinator.apply_policy(POLICY);
    coordinator
}

/// A healthy product state at `version`, its server reachable.
pub(crate) fn state(coordinator: &Coordinator, version: &str) -> String {
    format!(
        "version = \"{version}\"\nrole = \"endpoint\"\n[license]\nexpires = \"2099-12-31\"\n[update]\npermission = \"all_components\"\nsource = \"standard\"\n[server]\naddress = \"127.0.0.1:{}\"\n",
        coordinator.port
    )
}

fn start_rollout(coordinator: &Coordinator, recheck_every: &str, max_attempts: &str) {
    coordinator.start_rollout(
        TARGET,
        "1s",
        &["--recheck-every", recheck_every, "--max-attempts", max_attempts],
    );
}

/// The agent's stored checks by name, as `rollcall agent <id>` shows them.
fn checks_of(coordinator: &Coordinator, agent: &Agent) -> BTreeMap<String, serde_json::Value> {
    coordinator.cli_json(&["agent", &agent.id])["checks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|check| (check["name"].as_str().unwrap_or_default().to_string(), check))
        .collect()
}

pub(crate) fn stdout(output: &std::process::Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[test]
fn an_unreadable_product_state_is_a_probe_error_never_the_license() {
    let coordinator = coordinator();
    let mut done = Agent::enroll(&coordinator, "done", &state(&coordinator, TARGET), &[]);
    let mut missing = Agent::enroll(&coordinator, "missing", &state(&coordinator, BEHIND), &[]);
    std::fs::remove_file(missing.state_path()).unwrap();
    let mut garbled = Agent::enroll(&coordinator, "garbled", "version = = \"14\n[[[license\n", &[]);
    for agent in [&mut done, &mut missing, &mut garbled] {
        agent.start();
    }
    for agent in [&done, &missing, &garbled] {
        assert!(
            wait_until(Duration::from_secs(30), || checks_of(&coordinator, agent).len() == 7),
            "{} never reported its checks:\n{}",
            agent.hostname,
            agent.log()
        );
    }
    // The probe could not run the license check: an error, not a failure.
    for agent in [&missing, &garbled] {
        let license = &checks_of(&coordinator, agent)["license"];
        assert_eq!(license["status"], "error", "{}: {license}", agent.hostname);
    }

    start_rollout(&coordinator, "400ms", "2");
    let expected: BTreeMap<String, String> = [("missing", "probe_error"), ("garbled", "probe_error")]
        .iter()
        .map(|(host, cause)| (host.to_string(), cause.to_string()))
        .collect();
    let mut last = BTreeMap::new();
    assert!(
        wait_until(Duration::from_secs(30), || {
            last = coordinator.causes();
            last == expected
        }),
        "got {last:?}\n{}",
        coordinator.log()
    );
    // Still so once the rechecks are spent: a recheck cannot turn an error
    // into a runbook cause.
    assert!(
        wait_until(Duration::from_secs(20), || coordinator
            .stragglers()
            .values()
            .all(|s| s["state"] == "hard")),
        "{:?}",
        coordinator.stragglers()
    );
    for (host, straggler) in coordinator.stragglers() {
        assert_eq!(straggler["cause"], "probe_error", "{host}: {straggler}");
        assert_eq!(straggler["runbook_step"], 0, "{host}: no runbook step");
        let failing = straggler["failing"].as_array().unwrap();
        assert!(failing.iter().any(|name| name == "license"), "{host}: {straggler}");
    }

    // No fleet headline, and nothing in the report claims the license expired.
    let status = coordinator.cli_json(&["status"]);
    assert!(status["fleet_cause"].is_null(), "{status}");
    assert_eq!(status["by_cause"]["probe_error"], 2, "{status}");
    assert!(status["by_cause"].get("license").is_none(), "{status}");
    let report = coordinator.cli_json(&["report"]);
    assert!(report["fleet_cause"].is_null(), "{report}");
    for straggler in report["stragglers"].as_array().unwrap() {
        assert_eq!(straggler["cause"], "probe_error");
        let license = straggler["failing"]
            .as_array()
            .unwrap()
            .iter()
            .find(|check| check["name"] == "license")
            .unwrap();
        assert_eq!(license["status"], "error");
        let message = license["message"].as_str().unwrap();
        assert!(!message.is_empty(), "{license}");
        // The detail names the erroring checks and their messages.
        let detail = straggler["detail"].as_str().unwrap();
        assert!(detail.contains(&format!("license: {message}")), "{straggler}");
    }
    let english = stdout(&coordinator.cli(&["report", "--lang", "en"]));
    assert!(!english.contains("license expired"), "{english}");
    assert!(!english.contains("Fleet cause"), "{english}");
    assert!(english.contains("(`probe_error`)"), "{english}");
    assert!(english.contains("product adapter"), "{english}");
    let japanese = stdout(&coordinator.cli(&["report", "--lang", "ja"]));
    assert!(!japanese.contains("ライセンスの期限切れ"), "{japanese}");
    assert!(!japanese.contains("全体の原因"), "{japanese}");
    assert!(japanese.contains("プローブでチェックを実行できなかった"), "{japanese}");
    let table = stdout(&coordinator.cli(&["status"]));
    assert!(!table.contains("FLEET CAUSE"), "{table}");
}

pub(crate) fn agent_client(coordinator: &Coordinator, agent: &Agent) -> AgentServiceClient<tonic::transport::Channel> {
    let read = |path: std::path::PathBuf| std::fs::read_to_string(path).unwrap();
    let ca = read(coordinator.data_dir().join("ca.pem"));
    let cert = read(agent.data_dir().join("identity/cert.pem"));
    let key = read(agent.data_dir().join("identity/key.pem"));
    let addr = rollcall_common::net::parse_coordinator_url(&coordinator.url()).unwrap();
    let config = client_config(&ca, Some((&cert, &key))).unwrap();
    AgentServiceClient::new(channel(&addr, Arc::new(config), &DialOptions::default()).unwrap())
}

/// An enrolled probe that says hello and sends one report with its product
/// but no check results (as a probe build without checks for this product
/// would), then keeps its stream open and answers nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_reported_no_checks_is_no_data() {
    let coordinator = coordinator();
    let silent = Agent::enroll(&coordinator, "silent", &state(&coordinator, BEHIND), &[]);
    let product = proto::ProductSummary {
        version: BEHIND.into(),
        update_source: "standard".into(),
        ..Default::default()
    };
    let messages = vec![
        proto::AgentMessage {
            body: Some(agent_message::Body::Hello(proto::Hello {
                agent_version: "test".into(),
                hostname: "silent".into(),
                role: proto::Role::Endpoint as i32,
                product: Some(product.clone()),
                ..Default::default()
            })),
        },
        proto::AgentMessage {
            body: Some(agent_message::Body::Report(proto::Report {
                seq: 1,
                observed_at_ms: now_ms(),
                kind: proto::ReportKind::Periodic as i32,
                product: Some(product),
                ..Default::default()
            })),
        },
    ];
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    for message in messages {
        tx.send(message).await.unwrap();
    }
    let outbound =
        tokio_stream::StreamExt::chain(tokio_stream::wrappers::ReceiverStream::new(rx), tokio_stream::pending());
    let mut client = agent_client(&coordinator, &silent);
    let inbound = client.connect(outbound).await.expect("stream opens").into_inner();
    assert!(
        wait_until(
            Duration::from_secs(20),
            || coordinator.agents_by_hostname()["silent"]["version"] == BEHIND
        ),
        "{}",
        coordinator.log()
    );
    assert!(checks_of(&coordinator, &silent).is_empty());

    start_rollout(&coordinator, "400ms", "2");
    let mut last = BTreeMap::new();
    assert!(
        wait_until(Duration::from_secs(30), || {
            last = coordinator.stragglers();
            last.get("silent").is_some_and(|s| s["state"] == "hard")
        }),
        "{last:?}\n{}",
        coordinator.log()
    );
    let straggler = &last["silent"];
    assert_eq!(straggler["cause"], "no_data", "{straggler}");
    assert_eq!(straggler["runbook_step"], 0, "{straggler}");
    assert!(straggler["failing"].as_array().unwrap().is_empty(), "{straggler}");
    let status = coordinator.cli_json(&["status"]);
    assert!(status["fleet_cause"].is_null(), "{status}");
    assert_eq!(status["by_cause"]["no_data"], 1, "{status}");
    let report = coordinator.cli_json(&["report"]);
    assert_eq!(report["stragglers"][0]["cause"], "no_data", "{report}");
    assert_eq!(
        report["stragglers"][0]["detail"], "the probe has reported no check results",
        "{report}"
    );
    drop(inbound);
    drop(tx);
}

#[test]
fn step_seven_needs_a_fresh_all_pass_report_after_a_recheck() {
    let coordinator = coordinator();
    let mut healthy = Agent::enroll(&coordinator, "healthy", &state(&coordinator, BEHIND), &[]);
    healthy.start();
    let mut checks = BTreeMap::new();
    assert!(
        wait_until(Duration::from_secs(30), || {
            checks = checks_of(&coordinator, &healthy);
            checks.len() == 7
        }),
        "{}",
        healthy.log()
    );
    // No rollout yet, so no target: even `version` passes.
    for (name, check) in &checks {
        assert_eq!(check["status"], "pass", "{name}: {check}");
    }
    // Its facts stay, but it cannot answer a recheck.
    healthy.stop();

    start_rollout(&coordinator, "1s", "3");
    let mut last = BTreeMap::new();
    let waiting = wait_until(Duration::from_secs(30), || {
        last = coordinator.stragglers();
        last.get("healthy")
            .is_some_and(|s| s["attempts"].as_u64().unwrap_or(0) >= 2)
    });
    assert!(waiting, "{last:?}\n{}", coordinator.log());
    // Every check passed, but on facts from before the rechecks: not step 7.
    let straggler = &last["healthy"];
    assert_eq!(straggler["cause"], "awaiting_recheck", "{straggler}");
    assert_eq!(straggler["runbook_step"], 0, "{straggler}");
    assert!(straggler["failing"].as_array().unwrap().is_empty());

    // Back: its first check run is observed after the last recheck.
    healthy.start();
    let fresh = wait_until(Duration::from_secs(30), || {
        last = coordinator.stragglers();
        last.get("healthy").is_some_and(|s| s["cause"] == "unknown")
    });
    assert!(fresh, "{last:?}\n{}", healthy.log());
    assert_eq!(last["healthy"]["runbook_step"], 7);
    let english = stdout(&coordinator.cli(&["report", "--lang", "en"]));
    assert!(english.contains("overwrite install"), "{english}");
}

/// Issue 25 on Linux probes (a product-state file carrying the optional
/// fields, as any adapter may): each signal reaches `stragglers -o json`
/// with its cause, `inferred` and evidence; a pending restart is the member
/// state `awaiting_restart`, counted apart in status; the report names each
/// signal in English and Japanese. (The same through the real Windows probe
/// and the Apex One mapping: `windows.rs`.)
#[test]
fn product_signals_explain_stragglers_with_evidence_and_a_restart_is_apart() {
    let coordinator = coordinator();
    let fleet_certificate = "a".repeat(64);
    let today = time::OffsetDateTime::now_utc();
    let today = format!("{:04}{:02}{:02}", today.year(), u8::from(today.month()), today.day());
    // Healthy but behind unless `version` says otherwise; `extra` is TOML
    // appended at the top level (no table may precede it).
    let product = |version: &str, permission: bool, certificate: &str, extra: &str| {
        format!(
            "version = \"{version}\"\nrole = \"endpoint\"\n{extra}\n[license]\nexpires = \"2099-12-31\"\n[update]\n{}source = \"standard\"\n[server]\naddress = \"127.0.0.1:{}\"\ncertificate_sha256 = \"{certificate}\"\n",
            if permission {
                "permission = \"all_components\"\n"
            } else {
                ""
            },
            coordinator.port
        )
    };
    let activeupdate = "https://osce14-p.activeupdate.trendmicro.com/activeupdate";
    let states = [
        ("healthy", product(TARGET, true, &fleet_certificate, "")),
        (
            "patterns",
            product(
                BEHIND,
                false,
                &fleet_certificate,
                &format!("pattern = {{ version = \"19.851.00\", date = \"{today}\" }}"),
            ),
        ),
        (
            "activeupdate",
            product(BEHIND, true, &fleet_certificate, "").replace(
                "source = \"standard\"",
                &format!("source = \"standard\"\nlast_from = \"{activeupdate}\""),
            ),
        ),
        ("certificate", product(BEHIND, true, &"b".repeat(64), "")),
        (
            "refused",
            product(
                BEHIND,
                true,
                &fleet_certificate,
                "upgrade = { refused = \"[ERROR] Client environment is not qualified to do upgrade or hotfix\" }",
            ),
        ),
        (
            "restart",
            product(
                BEHIND,
                true,
                &fleet_certificate,
                "restart = { pending = 'HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update\\RebootRequired' }",
            ),
        ),
        ("peer", product(TARGET, true, &fleet_certificate, "")),
    ];
    let mut agents: Vec<Agent> = states
        .iter()
        .map(|(host, state)| Agent::enroll(&coordinator, host, state, &[]))
        .collect();
    for agent in &mut agents {
        agent.start();
    }
    for agent in &agents {
        assert!(
            wait_until(Duration::from_secs(30), || checks_of(&coordinator, agent).len() == 7),
            "{} never reported its checks:\n{}",
            agent.hostname,
            agent.log()
        );
    }
    start_rollout(&coordinator, "400ms", "2");
    let expected = [
        ("patterns", "update_permission", true, format!("pattern.date = {today}")),
        (
            "activeupdate",
            "update_source",
            false,
            format!("update.last_from = {activeupdate}"),
        ),
        (
            "certificate",
            "connectivity",
            false,
            format!("fleet majority (6 of 7 agents) = {fleet_certificate}"),
        ),
        (
            "refused",
            "system_requirements",
            false,
            "Client environment is not qualified".to_string(),
        ),
    ];
    let mut last = BTreeMap::new();
    assert!(
        wait_until(Duration::from_secs(30), || {
            last = coordinator.stragglers();
            last.len() == expected.len()
                && expected
                    .iter()
                    .all(|(host, cause, _, _)| last.get(*host).is_some_and(|s| s["cause"] == *cause))
        }),
        "got {last:#?}\n{}",
        coordinator.log()
    );
    for (host, cause, inferred, named) in &expected {
        let straggler = &last[*host];
        assert_eq!(straggler["inferred"], *inferred, "{cause}: {straggler:#}");
        let evidence = straggler["evidence"].as_array().unwrap();
        assert!(
            evidence
                .iter()
                .any(|item| item.as_str().unwrap_or_default().contains(named.as_str())),
            "{cause} evidence names {named:?}: {straggler:#}"
        );
    }
    let agents_json = coordinator.agents_by_hostname();
    assert_eq!(agents_json["restart"]["state"], "awaiting_restart", "{agents_json:#?}");
    assert_eq!(agents_json["healthy"]["state"], "completed", "{agents_json:#?}");
    let status = coordinator.cli_json(&["status"]);
    assert_eq!(status["awaiting_restart"], 1, "{status:#}");
    assert_eq!(status["stragglers"], 4, "{status:#}");
    assert!(
        status["by_cause"].get("awaiting_restart").is_none(),
        "not a cause: {status:#}"
    );
    let english = stdout(&coordinator.cli(&["report", "--lang", "en"]));
    for words in [
        "patterns arrive but the agent program does not",
        "inferred, not read",
        "ActiveUpdate server",
        "OfcNTCer.dat",
        "Client environment is not qualified",
        "## Awaiting restart",
    ] {
        assert!(
            english.contains(words),
            "the English report names {words:?}:\n{english}"
        );
    }
    let japanese = stdout(&coordinator.cli(&["report", "--lang", "ja"]));
    for words in [
        "推定",
        "アップデート設定権限",
        "ActiveUpdate",
        "OfcNTCer.dat",
        "## 再起動待ち",
    ] {
        assert!(
            japanese.contains(words),
            "the Japanese report names {words:?}:\n{japanese}"
        );
    }
    for agent in &mut agents {
        agent.stop();
    }
}
