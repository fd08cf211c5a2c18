//! Issue 24: what one enrolled endpoint can send must not blind the fleet
//! view. Each attack here is made over real mTLS gRPC with the attacker's
//! own enrolled identity (hand-built messages, not the probe's code) against
//! a real coordinator process, on SQLite and on PostgreSQL; afterwards every
//! admin surface (status, agents, stragglers, recheck, the dashboard page,
//! /metrics) still answers and lists the honest agents.

use std::time::Duration;

use rollcall_common::proto::{self, agent_message};
use rollcall_common::timefmt::now_ms;
use rollcall_server::store::postgres_scratch::scratch_or_skip;
use tokio_stream::StreamExt;

use crate::bad_input::{hello, open_stream};
use crate::dashboard::{Identity, client_config, get};
use crate::diagnosis::agent_client;
use crate::harness::{Agent, Coordinator, free_port, product_state, wait_until};

const BEHIND: &str = "14.0.1";
const TARGET: &str = "14.0.2";

fn report(seq: u64, edit: impl FnOnce(&mut proto::Report)) -> proto::AgentMessage {
    let mut report = proto::Report {
        seq,
        observed_at_ms: now_ms(),
        sent_at_ms: now_ms(),
        kind: proto::ReportKind::Periodic as i32,
        product: Some(proto::ProductSummary {
            version: BEHIND.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    edit(&mut report);
    proto::AgentMessage {
        body: Some(agent_message::Body::Report(report)),
    }
}

/// What the coordinator answers a stream that opens with `messages`: the
/// first error status, or `None` when it acknowledged `ack` without one.
async fn answer(
    client: &mut rollcall_common::proto::agent_service_client::AgentServiceClient<tonic::transport::Channel>,
    messages: Vec<proto::AgentMessage>,
    ack: Option<u64>,
) -> Option<tonic::Status> {
    let mut inbound = match open_stream(client, messages).await {
        Ok(inbound) => inbound,
        Err(status) => return Some(status),
    };
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => panic!("no answer within 10s"),
            message = inbound.next() => match message {
                Some(Err(status)) => return Some(status),
                None => panic!("stream ended without an answer"),
                Some(Ok(proto::CoordinatorMessage { body: Some(proto::coordinator_message::Body::Ack(a)) }))
                    if Some(a.seq) == ack => return None,
                Some(Ok(_)) => {}
            }
        }
    }
}

/// The coordinator (SQLite unless `database_url`), two honest probes behind
/// the target in a rollout, and an enrolled attacker that is not started.
struct Scene {
    coordinator: Coordinator,
    honest: Vec<Agent>,
    attacker: Agent,
    dashboard_port: u16,
}

fn scene(database_url: Option<&str>) -> Scene {
    scene_with(database_url, &[])
}

/// [`scene`] with more `rollout start` flags.
fn scene_with(database_url: Option<&str>, rollout: &[&str]) -> Scene {
    let mut coordinator = Coordinator::init();
    let dashboard_port = free_port();
    coordinator.extra_args.extend(
        ["--engine-interval", "200ms", "--dashboard-listen"]
            .iter()
            .map(|arg| arg.to_string())
            .chain([format!("127.0.0.1:{dashboard_port}")]),
    );
    if let Some(url) = database_url {
        coordinator
            .extra_args
            .extend(["--database-url".to_string(), url.to_string()]);
    }
    coordinator.start();
    let mut honest = Vec::new();
    for name in ["alpha", "beta"] {
        let mut agent = Agent::enroll(&coordinator, name, &product_state(BEHIND, ""), &[]);
        agent.start();
        honest.push(agent);
    }
    for agent in &honest {
        assert!(
            wait_until(Duration::from_secs(30), || coordinator
                .agents_by_hostname()
                .get(&agent.hostname)
                .is_some_and(|a| a["online"] == true && !a["version"].is_null())),
            "{} never reported:\n{}",
            agent.hostname,
            agent.log()
        );
    }
    let attacker = Agent::enroll(&coordinator, "mallory", &product_state(BEHIND, ""), &[]);
    let mut flags = vec!["--recheck-every", "400ms"];
    flags.extend_from_slice(rollout);
    coordinator.start_rollout(TARGET, "1s", &flags);
    Scene {
        coordinator,
        honest,
        attacker,
        dashboard_port,
    }
}

/// Every admin surface answers and shows the honest agents (and the
/// attacker's row, whatever it holds).
fn fleet_view_answers(scene: &Scene) {
    let coordinator = &scene.coordinator;
    let status = coordinator.cli(&["status"]);
    assert!(
        status.status.success(),
        "status: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let mut status = serde_json::Value::Null;
    assert!(
        wait_until(Duration::from_secs(20), || {
            status = coordinator.cli_json(&["status"]);
            status["total"] == 3
        }),
        "the rollout never counted all three agents: {status}"
    );

    let agents = coordinator.agents_by_hostname();
    for name in ["alpha", "beta", "mallory"] {
        assert!(agents.contains_key(name), "{name} missing from agents: {agents:?}");
    }
    let table = coordinator.cli(&["agents"]);
    assert!(table.status.success(), "{}", String::from_utf8_lossy(&table.stderr));

    let mut stragglers = Default::default();
    assert!(
        wait_until(Duration::from_secs(20), || {
            stragglers = coordinator.stragglers();
            stragglers.contains_key("alpha") && stragglers.contains_key("beta")
        }),
        "stragglers: {stragglers:?}\n{}",
        coordinator.log()
    );

    let recheck = coordinator.cli_json(&["recheck", &scene.honest[0].id, "--wait", "10s"]);
    assert_eq!(recheck["answered"], 1, "{recheck}");

    let ca_pem = std::fs::read_to_string(coordinator.data_dir().join("ca.pem")).unwrap();
    let admin = client_config(&ca_pem, Some(&Identity::from_dir(&coordinator.admin_identity())));
    let runtime = runtime();
    let page = runtime.block_on(get(scene.dashboard_port, admin.clone(), "/")).unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("alpha") && page.body.contains("beta"),
        "{}",
        page.body
    );
    let metrics = runtime.block_on(get(scene.dashboard_port, admin, "/metrics")).unwrap();
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    let lines = metrics.body.lines().map(|line| Ok(line.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("metrics parse");

    assert!(
        !coordinator.log().contains("Invalid column type"),
        "a read failed on a stored column:\n{}",
        coordinator.log()
    );
}

/// The attack of issue 24 point 1 and its neighbours: numbers out of any
/// real range are refused at the edge with INVALID_ARGUMENT naming the
/// field, the in-range report after them is stored, and the fleet view
/// keeps answering.
async fn numbers_out_of_range_are_refused(scene: &Scene) {
    let mut client = agent_client(&scene.coordinator, &scene.attacker);
    let refusals: [(&str, proto::AgentMessage); 7] = [
        ("dropped_before", report(1, |r| r.dropped_before = u64::MAX)),
        ("report seq", report(u64::MAX, |_| {})),
        ("observed_at_ms", report(1, |r| r.observed_at_ms = i64::MIN)),
        ("sent_at_ms", report(1, |r| r.sent_at_ms = -1)),
        ("report kind", report(1, |r| r.kind = 77)),
        (
            "host.memory_mb",
            report(1, |r| {
                r.host = Some(proto::HostFacts {
                    memory_mb: u64::MAX,
                    ..Default::default()
                })
            }),
        ),
        (
            "check.runbook_step",
            report(1, |r| {
                r.checks = vec![proto::CheckResult {
                    name: "version".into(),
                    runbook_step: u32::MAX,
                    ..Default::default()
                }]
            }),
        ),
    ];
    for (field, message) in refusals {
        let status = answer(&mut client, vec![hello("mallory"), message], None)
            .await
            .unwrap_or_else(|| panic!("{field}: accepted"));
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{field}: {status:?}");
        assert!(status.message().contains(field), "{field}: {}", status.message());
    }
    // The second half of the original attack: a small count after the huge
    // one. It is stored, and the count is the small one.
    let stored = answer(
        &mut client,
        vec![hello("mallory"), report(1, |r| r.dropped_before = 1)],
        Some(1),
    )
    .await;
    assert!(stored.is_none(), "{stored:?}");
    let mallory = scene.coordinator.agents_by_hostname()["mallory"].clone();
    assert_eq!(mallory["unreadable"], false, "{mallory}");
}

/// On SQLite a row can hold a value of any type: the state the attack used
/// to leave (a REAL in `dropped_reports`) is planted by hand, as a database
/// written by an older coordinator would hold it. The fleet view answers,
/// flags that one row, and the row mends at the agent's next report.
fn a_damaged_row_is_flagged_not_fatal(scene: &Scene) {
    let coordinator = &scene.coordinator;
    let db = rusqlite::Connection::open(coordinator.data_dir().join("rollcall.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let changed = db
        .execute(
            "UPDATE agents SET dropped_reports = 1.8446744073709552e19 WHERE hostname = 'mallory'",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let kind: String = db
        .query_row(
            "SELECT typeof(dropped_reports) FROM agents WHERE hostname = 'mallory'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(kind, "real", "the plant must reproduce the old damage");
    drop(db);

    fleet_view_answers(scene);
    let mallory = coordinator.agents_by_hostname()["mallory"].clone();
    assert_eq!(mallory["unreadable"], true, "{mallory}");
    let table = String::from_utf8_lossy(&coordinator.cli(&["agents"]).stdout).to_string();
    assert!(table.contains("unreadable row"), "{table}");

    let stored = runtime().block_on(async {
        let mut client = agent_client(coordinator, &scene.attacker);
        answer(
            &mut client,
            vec![hello("mallory"), report(2, |r| r.dropped_before = 1)],
            Some(2),
        )
        .await
    });
    assert!(stored.is_none(), "{stored:?}");
    let mallory = coordinator.agents_by_hostname()["mallory"].clone();
    assert_eq!(mallory["unreadable"], false, "the next report mends the row: {mallory}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn one_report_cannot_take_the_fleet_view_down_on_sqlite() {
    let scene = scene(None);
    runtime().block_on(numbers_out_of_range_are_refused(&scene));
    fleet_view_answers(&scene);
    a_damaged_row_is_flagged_not_fatal(&scene);
}

#[test]
fn one_report_cannot_take_the_fleet_view_down_on_postgres() {
    let test = "hostile::one_report_cannot_take_the_fleet_view_down_on_postgres";
    let Some(scratch) = runtime().block_on(scratch_or_skip(test)) else {
        return;
    };
    let scene = scene(Some(scratch.url()));
    runtime().block_on(numbers_out_of_range_are_refused(&scene));
    fleet_view_answers(&scene);
    drop(scene);
    drop(scratch);
}

/// Issue 24 point 9: a hostname carrying OSC 52 (`ESC ] 52 ; c ; … BEL`,
/// which many terminals obey by writing the clipboard) is refused in a
/// hello and at enrolment; free text with escapes is stored written out,
/// so neither `rollcall agents` nor `rollcall agent ID` nor the report
/// prints a raw escape.
#[test]
fn terminal_escapes_from_an_agent_never_reach_a_terminal() {
    let scene = scene(None);
    let osc52 = "mallory\u{1b}]52;c;cm0gLXJmIH4=\u{7}";
    let runtime = runtime();
    let refused = runtime.block_on(async {
        let mut client = agent_client(&scene.coordinator, &scene.attacker);
        answer(&mut client, vec![hello(osc52)], None).await
    });
    let refused = refused.expect("a hostname with ESC is refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("U+001B"), "{}", refused.message());

    let token = scene.coordinator.token(&[]);
    let enrol = Agent::enroll_with_token(&scene.coordinator, osc52, "", &[], &token);
    assert!(enrol.is_err(), "enrolment with an escape in the hostname was accepted");

    let message = |text: &str| proto::CheckResult {
        name: "license".into(),
        runbook_step: 1,
        status: proto::CheckStatus::Fail as i32,
        message: text.into(),
        evidence: vec![proto::Evidence {
            key: "output".into(),
            value: format!("\u{1b}[31m{text}\u{1b}[0m"),
        }],
        ..Default::default()
    };
    let stored = runtime.block_on(async {
        let mut client = agent_client(&scene.coordinator, &scene.attacker);
        let report = report(1, |r| r.checks = vec![message("expired \u{1b}]52;c;eA==\u{7} now")]);
        answer(&mut client, vec![hello("mallory"), report], Some(1)).await
    });
    assert!(stored.is_none(), "{stored:?}");
    for args in [
        vec!["agents"],
        vec!["agent", scene.attacker.id.as_str()],
        vec!["--output", "json", "agent", scene.attacker.id.as_str()],
        vec!["report"],
    ] {
        let output = scene.coordinator.cli(&args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!output.stdout.contains(&0x1b), "{args:?} printed a raw ESC");
        assert!(!output.stdout.contains(&0x07), "{args:?} printed a raw BEL");
    }
    let detail = String::from_utf8_lossy(&scene.coordinator.cli(&["agent", &scene.attacker.id]).stdout).to_string();
    assert!(
        detail.contains("\\u{1b}]52"),
        "the escape is shown written out: {detail}"
    );
}

/// Issue 24 point 7: an endpoint that flips between a blocking cause and
/// none, over and over, gets the automatic update-now once in its window,
/// not once per flip.
#[test]
fn flipping_a_blocking_cause_gets_update_now_once() {
    let scene = scene_with(None, &["--auto-update-now"]);
    // Every runbook check passes but update_permission, which flips.
    let checks = |permission: proto::CheckStatus| {
        rollcall_common::cause::RUNBOOK_CHECKS
            .iter()
            .map(|name| proto::CheckResult {
                name: name.to_string(),
                status: if *name == "update_permission" {
                    permission
                } else {
                    proto::CheckStatus::Pass
                } as i32,
                ..Default::default()
            })
            .collect::<Vec<_>>()
    };
    let update_nows = runtime().block_on(async {
        let mut client = agent_client(&scene.coordinator, &scene.attacker);
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tx.send(hello("mallory")).await.unwrap();
        let mut inbound = client
            .connect(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .expect("stream opens")
            .into_inner();
        let counter = tokio::spawn(async move {
            let mut count = 0;
            while let Some(Ok(message)) = inbound.next().await {
                if let Some(proto::coordinator_message::Body::Command(command)) = message.body
                    && command.kind == proto::CommandKind::UpdateNow as i32
                {
                    count += 1;
                }
            }
            count
        });
        // Long enough for the grace period, then ten flips, each seen by
        // several engine ticks (200 ms).
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for seq in 1..=20u64 {
            let status = if seq % 2 == 1 {
                proto::CheckStatus::Fail
            } else {
                proto::CheckStatus::Pass
            };
            tx.send(report(seq, |r| r.checks = checks(status))).await.unwrap();
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
        drop(tx);
        tokio::time::timeout(Duration::from_secs(10), counter)
            .await
            .unwrap()
            .unwrap()
    });
    assert_eq!(update_nows, 1, "update-now per flip:\n{}", scene.coordinator.log());
}

/// Issue 24 point 5: one certificate opening streams back to back. 400
/// Connect + Hello cycles within a minute: beyond the per-agent connect
/// burst they are refused before any presence write or watch event (the
/// log counts the streams the coordinator accepted), and another agent's
/// recheck answers during the churn.
#[test]
fn one_certificate_cannot_churn_the_coordinator() {
    let scene = scene(None);
    let coordinator = &scene.coordinator;
    let churn = runtime().block_on(async {
        let mut client = agent_client(coordinator, &scene.attacker);
        let (mut accepted, mut refused) = (0u32, 0u32);
        for _ in 0..400 {
            match open_stream(&mut client, vec![hello("mallory")]).await {
                Ok(mut inbound) => match inbound.next().await {
                    Some(Ok(_)) => accepted += 1,
                    Some(Err(status)) if status.code() == tonic::Code::ResourceExhausted => refused += 1,
                    other => panic!("unexpected answer: {other:?}"),
                },
                Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                    assert!(status.message().contains("retry in"), "{}", status.message());
                    refused += 1;
                }
                Err(status) => panic!("unexpected refusal: {status:?}"),
            }
        }
        (accepted, refused)
    });
    eprintln!(
        "400 connects from one certificate: {} accepted, {} refused",
        churn.0, churn.1
    );
    assert_eq!(churn.0 + churn.1, 400);
    // The default burst is 10, the rate 6 a minute: a loop well under a
    // minute gets at most a few more than the burst.
    assert!(churn.0 <= 16, "{churn:?}");
    let presence_writes = coordinator
        .log()
        .lines()
        .filter(|line| line.contains("agent connected") && line.contains(&scene.attacker.id))
        .count();
    assert_eq!(
        presence_writes, churn.0 as usize,
        "one presence write per accepted stream, none per refused one"
    );
    let recheck = coordinator.cli_json(&["recheck", &scene.honest[0].id, "--wait", "10s"]);
    assert_eq!(recheck["answered"], 1, "{recheck}");
    let metrics = metrics_text(&scene);
    assert!(
        metrics.contains("rollcall_budget_refusals_total{budget=\"connects\"}"),
        "{metrics}"
    );
}

/// `/metrics` as an admin reads it.
fn metrics_text(scene: &Scene) -> String {
    let ca_pem = std::fs::read_to_string(scene.coordinator.data_dir().join("ca.pem")).unwrap();
    let admin = client_config(&ca_pem, Some(&Identity::from_dir(&scene.coordinator.admin_identity())));
    let response = runtime()
        .block_on(get(scene.dashboard_port, admin, "/metrics"))
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    response.body
}

/// Issue 24 point 6: an endpoint whose product reports an over-long value
/// is not silenced. The real probe cuts it to the coordinator's limit with
/// a visible mark before sending, the report is stored, and the check that
/// carried it is flagged `truncated`.
#[test]
fn an_over_long_product_value_is_cut_not_refused() {
    let mut coordinator = Coordinator::init();
    coordinator.start();
    let long_version = format!("14.0.{}", "9".repeat(5000));
    let mut agent = Agent::enroll(&coordinator, "verbose", &product_state(&long_version, ""), &[]);
    agent.start();
    let mut seen = serde_json::Value::Null;
    assert!(
        wait_until(Duration::from_secs(30), || {
            seen = coordinator
                .agents_by_hostname()
                .get("verbose")
                .cloned()
                .unwrap_or_default();
            seen["version"].is_string()
        }),
        "the agent never got a report through:\n{}\n{}",
        agent.log(),
        coordinator.log()
    );
    let version = seen["version"].as_str().unwrap();
    assert!(version.len() <= 256, "{}", version.len());
    assert!(
        version.starts_with("14.0.999") && version.ends_with(rollcall_common::limits::TRUNCATED_MARK),
        "{version}"
    );
    let detail = coordinator.cli_json(&["agent", &agent.id]);
    let checks = detail["checks"].as_array().cloned().unwrap_or_default();
    assert!(
        checks.iter().any(|check| check["truncated"] == true),
        "no check says it was cut: {detail}"
    );
    assert_eq!(detail["dead_letters"], 0, "{detail}");
    assert!(
        !coordinator.log().contains("refused a malformed report"),
        "{}",
        coordinator.log()
    );
}
