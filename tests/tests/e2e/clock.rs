//! The agent's clock is not trusted (issue 16 point 3), on a real
//! coordinator: an endpoint whose clock runs two hours ahead does not hide
//! another agent's newer check run from the rollout engine, and one whose
//! clock was set two hours back still has its new version recorded. Both
//! are shown with their skew and flagged. The clocks are planted by a
//! client holding a real enrolled certificate that speaks the real stream
//! protocol (the agent has no seam for its clock).

use std::sync::Arc;
use std::time::Duration;

use rollcall_common::proto::{self, agent_message, agent_service_client::AgentServiceClient};
use rollcall_common::timefmt::now_ms;
use rollcall_common::tls::{DialOptions, channel, client_config};

use crate::harness::{Agent, Coordinator, wait_until};

const TARGET: &str = "14.0.2";
const BEHIND: &str = "14.0.1";
const HOUR_MS: i64 = 3_600_000;

/// The diagnosis tests' policy (everything passes on an endpoint whose
/// product server is the coordinator's port), with the skew bound named.
fn coordinator() -> Coordinator {
    let coordinator = Coordinator::started_for_rollouts();
    coordinator.apply_policy(&format!("clock_skew_warn = \"5m\"\n{}", crate::diagnosis::POLICY));
    coordinator
}

fn state(coordinator: &Coordinator, version: &str, license_expires: &str) -> String {
    format!(
        "version = \"{version}\"\nrole = \"endpoint\"\n[license]\nexpires = \"{license_expires}\"\n[update]\npermission = \"all_components\"\nsource = \"standard\"\n[server]\naddress = \"127.0.0.1:{}\"\n",
        coordinator.port
    )
}

/// A stream opened with the enrolled agent's own certificate; messages
/// pushed into the returned sender go out on it.
async fn crafted_stream(
    coordinator: &Coordinator,
    agent: &Agent,
    version: &str,
) -> (
    tokio::sync::mpsc::Sender<proto::AgentMessage>,
    tonic::Streaming<proto::CoordinatorMessage>,
) {
    let read = |path: std::path::PathBuf| std::fs::read_to_string(path).unwrap();
    let ca = read(coordinator.data_dir().join("ca.pem"));
    let cert = read(agent.data_dir().join("identity/cert.pem"));
    let key = read(agent.data_dir().join("identity/key.pem"));
    let addr = rollcall_common::net::parse_coordinator_url(&coordinator.url()).unwrap();
    let config = client_config(&ca, Some((&cert, &key))).unwrap();
    let mut client = AgentServiceClient::new(channel(&addr, Arc::new(config), &DialOptions::default()).unwrap());
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tx.send(proto::AgentMessage {
        body: Some(agent_message::Body::Hello(proto::Hello {
            agent_version: "test".into(),
            hostname: agent.hostname.clone(),
            role: proto::Role::Endpoint as i32,
            product: Some(product(version)),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let outbound =
        tokio_stream::StreamExt::chain(tokio_stream::wrappers::ReceiverStream::new(rx), tokio_stream::pending());
    let inbound = client.connect(outbound).await.expect("stream opens").into_inner();
    (tx, inbound)
}

fn product(version: &str) -> proto::ProductSummary {
    proto::ProductSummary {
        version: version.into(),
        update_source: "standard".into(),
        ..Default::default()
    }
}

/// A periodic report whose clock reads `now + skew_ms`, observed a second
/// before it was sent, with a check run of one check: the license.
fn report_with_clock(seq: u64, version: &str, skew_ms: i64, license: proto::CheckStatus) -> proto::AgentMessage {
    let agent_now = now_ms() + skew_ms;
    proto::AgentMessage {
        body: Some(agent_message::Body::Report(proto::Report {
            seq,
            observed_at_ms: agent_now - 1_000,
            sent_at_ms: agent_now,
            kind: proto::ReportKind::Periodic as i32,
            product: Some(product(version)),
            checks: vec![proto::CheckResult {
                name: "license".into(),
                runbook_step: 1,
                status: license as i32,
                message: "as planted".into(),
                ..Default::default()
            }],
            ..Default::default()
        })),
    }
}

/// `clock_skew_ms` is within a minute of `expected` (the planted skew plus
/// the report's transit time).
fn skew_near(agent: &serde_json::Value, expected: i64) -> bool {
    agent["clock_skew_ms"]
        .as_i64()
        .is_some_and(|skew| (skew - expected).abs() < 60_000)
}

fn stdout(output: &std::process::Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_ahead_hides_no_other_agents_new_checks_and_is_flagged() {
    let coordinator = coordinator();
    let mut normal = Agent::enroll(&coordinator, "normal", &state(&coordinator, BEHIND, "2001-01-01"), &[]);
    let ahead = Agent::enroll(&coordinator, "ahead", &state(&coordinator, BEHIND, "2001-01-01"), &[]);
    normal.start();
    coordinator.start_rollout(TARGET, "1s", &["--recheck-every", "400ms", "--max-attempts", "50"]);
    assert!(
        wait_until(Duration::from_secs(30), || coordinator
            .causes()
            .get("normal")
            .is_some_and(|cause| cause == "license")),
        "{:?}\n{}",
        coordinator.causes(),
        normal.log()
    );

    // An endpoint two hours ahead sends a check run (its license failing),
    // and the engine takes it in: its cause is the license.
    let (tx, inbound) = crafted_stream(&coordinator, &ahead, BEHIND).await;
    tx.send(report_with_clock(1, BEHIND, 2 * HOUR_MS, proto::CheckStatus::Fail))
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || coordinator
            .causes()
            .get("ahead")
            .is_some_and(|cause| cause == "license")),
        "{:?}\n{}",
        coordinator.causes(),
        coordinator.log()
    );

    // The license is renewed on the normal endpoint and an admin asks for
    // a recheck: its new check run passes step 1, and the engine must see
    // it although it is "older" than the run from two hours ahead.
    normal.set_state(&state(&coordinator, BEHIND, "2099-12-31"));
    let recheck = coordinator.cli_json(&["recheck", &normal.id, "--wait", "10s"]);
    assert_eq!(recheck["answered"], 1, "{recheck}");
    assert_eq!(
        coordinator.cli_json(&["agent", &normal.id])["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|check| check["name"] == "license")
            .unwrap()["status"],
        "pass"
    );
    let mut causes = Default::default();
    assert!(
        wait_until(Duration::from_secs(30), || {
            causes = coordinator.causes();
            causes
                .get("normal")
                .is_some_and(|cause| cause == "awaiting_recheck" || cause == "unknown")
        }),
        "the engine never saw the normal agent's new check run: {causes:?}\n{}",
        coordinator.log()
    );

    // The skew is shown per agent and flagged over clock_skew_warn.
    let agents = coordinator.agents_by_hostname();
    assert!(skew_near(&agents["ahead"], 2 * HOUR_MS), "{}", agents["ahead"]);
    assert!(skew_near(&agents["normal"], 0), "{}", agents["normal"]);
    assert_eq!(agents["normal"]["clock_skew_flagged"], false);
    let detail = coordinator.cli_json(&["agent", &ahead.id]);
    assert!(skew_near(&detail, 2 * HOUR_MS), "{detail}");
    assert_eq!(detail["clock_skew_flagged"], true, "{detail}");
    let table = stdout(&coordinator.cli(&["agent", &ahead.id]));
    // Two hours less the report's transit time.
    assert!(
        (table.contains("+1h59m") || table.contains("+2h00m")) && table.contains("ahead"),
        "{table}"
    );
    assert!(table.contains("FLAGGED"), "{table}");
    // Its check run is placed on the coordinator's clock, not two hours on.
    let checked_at = detail["checked_at"].as_str().unwrap();
    let checked_ms = rollcall_common::timefmt::parse_rfc3339(checked_at).unwrap();
    assert!(checked_ms <= now_ms(), "checked_at {checked_at} is in the future");

    // The step-8 report lists it, in both languages.
    let report = coordinator.cli_json(&["report"]);
    let flagged = report["clock_skew_flagged"].as_array().unwrap();
    assert_eq!(flagged.len(), 1, "{report}");
    assert_eq!(flagged[0]["id"], ahead.id.as_str());
    let english = stdout(&coordinator.cli(&["report", "--lang", "en"]));
    assert!(english.contains("ahead: its clock runs 2h"), "{english}");
    let japanese = stdout(&coordinator.cli(&["report", "--lang", "ja"]));
    assert!(japanese.contains("時計がずれているエージェント"), "{japanese}");
    // The amount in Japanese units (issue 27): two hours less the transit time.
    assert!(
        japanese.contains("ahead:時計がコーディネーターより 2時間")
            || japanese.contains("ahead:時計がコーディネーターより 1時間59分"),
        "{japanese}"
    );
    assert!(japanese.contains("進んでいます"), "{japanese}");
    drop(inbound);
    drop(tx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_set_back_still_records_the_new_version() {
    let coordinator = coordinator();
    let behind = Agent::enroll(&coordinator, "behind", &state(&coordinator, BEHIND, "2099-12-31"), &[]);
    let (tx, inbound) = crafted_stream(&coordinator, &behind, BEHIND).await;
    // In step with the coordinator first.
    tx.send(report_with_clock(1, BEHIND, 0, proto::CheckStatus::Pass))
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || {
            let agent = &coordinator.agents_by_hostname()["behind"];
            agent["version"] == BEHIND && skew_near(agent, 0)
        }),
        "{}",
        coordinator.log()
    );
    coordinator.start_rollout(TARGET, "1h", &[]);

    // Its clock is set two hours back, then the upgrade lands.
    tx.send(report_with_clock(2, TARGET, -2 * HOUR_MS, proto::CheckStatus::Pass))
        .await
        .unwrap();
    assert!(
        wait_until(
            Duration::from_secs(20),
            || coordinator.agents_by_hostname()["behind"]["version"] == TARGET
        ),
        "the new version was not recorded: {}\n{}",
        coordinator.agents_by_hostname()["behind"],
        coordinator.log()
    );
    assert!(
        wait_until(
            Duration::from_secs(20),
            || coordinator.cli_json(&["status"])["completed"] == 1
        ),
        "{}",
        coordinator.cli_json(&["status"])
    );
    let agent = &coordinator.agents_by_hostname()["behind"];
    assert!(skew_near(agent, -2 * HOUR_MS), "{agent}");
    assert_eq!(agent["clock_skew_flagged"], true, "{agent}");
    let table = stdout(&coordinator.cli(&["agent", &behind.id]));
    assert!(
        (table.contains("-2h00m") || table.contains("-1h59m")) && table.contains("behind"),
        "{table}"
    );
    let japanese = stdout(&coordinator.cli(&["report", "--lang", "ja"]));
    assert!(japanese.contains("遅れています"), "{japanese}");
    drop(inbound);
    drop(tx);
}
