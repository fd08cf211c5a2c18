//! The Japanese report speaks Japanese throughout (issue 16, point 7): a
//! fleet planted with every cause, real agents sending message codes and
//! parameters, and `rollcall report --lang ja` from the real CLI, which
//! renders every check message, detail and remediation from the catalogue
//! — with the runbook's own words for the failing permission values
//! (「パターンファイル」, 「パターンファイル、エンジン、ドライバ」) and the
//! console's menu paths. What stays ASCII is data: host names, versions,
//! addresses, ids, cause codes, and text quoted as code (evidence, the OS's
//! own error words).

use std::collections::BTreeMap;
use std::time::Duration;

use rollcall_common::proto::{self, agent_message};
use rollcall_common::timefmt::now_ms;
use sha2::{Digest, Sha256};

use crate::diagnosis::{agent_client, state, stdout};
use crate::harness::{Agent, Coordinator, free_port, wait_until};

const TARGET: &str = "14.0.2";
const BEHIND: &str = "14.0.1";

/// Runs of at least this many English words count as an English sentence.
const SENTENCE_WORDS: usize = 3;

/// The English sentences in a Markdown text: runs of
/// [`SENTENCE_WORDS`] or more words made only of ASCII letters, outside
/// code spans (quoted data). Identifiers (`check:license`, host names with
/// digits or dashes, versions, paths) are not words and break a run.
fn english_sentences(markdown: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in markdown.lines() {
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut run: Vec<&str> = Vec::new();
        for token in prose.split_whitespace() {
            let word = token.trim_matches(|c: char| c.is_ascii_punctuation());
            if word.len() >= 2 && word.chars().all(|c| c.is_ascii_alphabetic()) {
                run.push(word);
                continue;
            }
            if run.len() >= SENTENCE_WORDS {
                found.push(format!("{} (in: {line})", run.join(" ")));
            }
            run.clear();
        }
        if run.len() >= SENTENCE_WORDS {
            found.push(format!("{} (in: {line})", run.join(" ")));
        }
    }
    found
}

#[test]
fn the_sentence_finder_finds_english_and_spares_data() {
    assert!(english_sentences("license valid until 2027").len() == 1);
    assert!(english_sentences("ライセンスは 2020-01-01 に期限切れ `No such file or directory`").is_empty());
    assert!(english_sentences("- os = debian 10: 未完了").is_empty());
}

/// A healthy product state at `version`, with `replace` edits to it.
fn planted(coordinator: &Coordinator, version: &str, edits: &[(&str, &str)]) -> String {
    let mut text = state(coordinator, version);
    for (from, to) in edits {
        assert!(text.contains(from), "{from} not in {text}");
        text = text.replace(from, to);
    }
    text
}

fn update_agent(coordinator: &Coordinator, version: &str, address: &str, program_and_hotfix: bool) -> String {
    format!(
        "{}[update_agent]\nprogram_and_hotfix = {program_and_hotfix}\naddress = \"{address}\"\n",
        planted(
            coordinator,
            version,
            &[("role = \"endpoint\"", "role = \"update_agent\"")]
        )
    )
}

/// One planted agent: its host name (named after its cause), product
/// state and enrolment labels.
struct Plant {
    host: &'static str,
    state: String,
    labels: Vec<(&'static str, &'static str)>,
}

impl Plant {
    fn new(host: &'static str, state: String) -> Self {
        Plant {
            host,
            state,
            labels: Vec::new(),
        }
    }
}

fn custom_source(address: &str) -> (&'static str, String) {
    (
        "source = \"standard\"",
        format!("source = \"custom\"\nsource_address = \"{address}\""),
    )
}

/// A probe in this process: says hello, sends one report with `checks`,
/// then keeps its stream open (so it stays online) and answers nothing.
async fn silent_probe(
    coordinator: &Coordinator,
    agent: &Agent,
    checks: Vec<proto::CheckResult>,
) -> (
    tokio::sync::mpsc::Sender<proto::AgentMessage>,
    tonic::Streaming<proto::CoordinatorMessage>,
) {
    let product = proto::ProductSummary {
        version: BEHIND.into(),
        update_source: "standard".into(),
        update_permission: "all_components".into(),
        ..Default::default()
    };
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(proto::AgentMessage {
        body: Some(agent_message::Body::Hello(proto::Hello {
            agent_version: "test".into(),
            hostname: agent.hostname.clone(),
            role: proto::Role::Endpoint as i32,
            product: Some(product.clone()),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    tx.send(proto::AgentMessage {
        body: Some(agent_message::Body::Report(proto::Report {
            seq: 1,
            observed_at_ms: now_ms(),
            kind: proto::ReportKind::Periodic as i32,
            product: Some(product),
            checks,
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let outbound =
        tokio_stream::StreamExt::chain(tokio_stream::wrappers::ReceiverStream::new(rx), tokio_stream::pending());
    let inbound = agent_client(coordinator, agent)
        .connect(outbound)
        .await
        .expect("stream opens")
        .into_inner();
    (tx, inbound)
}

fn passing_checks() -> Vec<proto::CheckResult> {
    rollcall_common::checks::ALL
        .iter()
        .enumerate()
        .map(|(step, name)| proto::CheckResult {
            name: (*name).to_string(),
            runbook_step: u32::try_from(step).unwrap(),
            status: proto::CheckStatus::Pass as i32,
            message: "fine".into(),
            ..Default::default()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_japanese_report_has_no_english_sentence_for_a_fleet_with_every_cause() {
    let coordinator = Coordinator::started_for_rollouts();
    let ca_pem = std::fs::read_to_string(coordinator.data_dir().join("ca.pem")).unwrap();
    let fingerprint = hex::encode(Sha256::digest(rollcall_common::pki::first_cert_der(&ca_pem).unwrap()));
    coordinator.apply_policy(&format!(
        r#"offline_after = "3s"
[connectivity]
timeout = "2s"
[[system_requirements.os]]
id = "debian"
min_version = "11"
[[update_source.expected]]
match = {{ plant = "wrong-source" }}
source = "standard"
[[certificates.required]]
name = "rollcall-test-root"
sha256 = "{fingerprint}"
"#
    ));
    let closed = free_port();
    let server_here = format!("127.0.0.1:{}", coordinator.port);
    let server_closed = format!("127.0.0.1:{closed}");
    let (standard, wrong_source) = custom_source("elsewhere.invalid:8080");
    let (_, blocked_source) = custom_source("ua-b.invalid:8080");
    let (_, contested_source) = custom_source("ua-c.invalid:8080");
    let plants = vec![
        Plant::new(
            "license",
            planted(&coordinator, BEHIND, &[("2099-12-31", "2020-01-01")]),
        ),
        Plant::new(
            "perm-pattern",
            planted(&coordinator, BEHIND, &[("all_components", "pattern_files")]),
        ),
        Plant::new(
            "perm-engine",
            planted(&coordinator, BEHIND, &[("all_components", "pattern_engine_driver")]),
        ),
        Plant {
            labels: vec![("plant", "wrong-source")],
            ..Plant::new(
                "update-source",
                planted(&coordinator, BEHIND, &[(standard, &wrong_source)]),
            )
        },
        Plant::new(
            "ua-blocking",
            update_agent(&coordinator, BEHIND, "ua-b.invalid:8080", false),
        ),
        Plant::new(
            "update-agent",
            planted(&coordinator, BEHIND, &[(standard, &blocked_source)]),
        ),
        Plant::new("ua-one", update_agent(&coordinator, TARGET, "ua-c.invalid:8080", true)),
        Plant::new("ua-two", update_agent(&coordinator, TARGET, "UA-C.invalid:8080", true)),
        Plant::new(
            "update-agent-conflict",
            planted(&coordinator, BEHIND, &[(standard, &contested_source)]),
        ),
        Plant::new("certificates", planted(&coordinator, BEHIND, &[])),
        Plant::new(
            "connectivity",
            planted(&coordinator, BEHIND, &[(&server_here, &server_closed)]),
        ),
        Plant::new("offline", planted(&coordinator, BEHIND, &[])),
        Plant::new("system-requirements", planted(&coordinator, BEHIND, &[])),
        Plant::new("unknown", planted(&coordinator, BEHIND, &[])),
        Plant::new(
            "probe-error",
            planted(&coordinator, BEHIND, &[("[license]\nexpires = \"2099-12-31\"\n", "")]),
        ),
    ];
    let mut agents: Vec<Agent> = plants
        .iter()
        .map(|plant| Agent::enroll(&coordinator, plant.host, &plant.state, &plant.labels))
        .collect();
    for agent in &agents {
        let certs = agent.root().join("etc/ssl/certs");
        std::fs::create_dir_all(&certs).unwrap();
        if agent.hostname == "certificates" {
            // A trust store without the required root: its own certificate only.
            std::fs::copy(agent.data_dir().join("identity/cert.pem"), certs.join("own.pem")).unwrap();
        } else {
            std::fs::write(certs.join("rollcall-test-root.pem"), &ca_pem).unwrap();
        }
        if agent.hostname == "system-requirements" {
            std::fs::write(agent.root().join("etc/os-release"), "ID=debian\nVERSION_ID=\"10\"\n").unwrap();
        }
    }
    for agent in agents.iter_mut() {
        agent.start();
    }
    assert!(
        wait_until(Duration::from_secs(60), || {
            let known = coordinator.agents_by_hostname();
            agents.iter().all(|agent| {
                known
                    .get(&agent.hostname)
                    .is_some_and(|a| a["version"].as_str().is_some_and(|v| !v.is_empty()))
            })
        }),
        "{}",
        coordinator.log()
    );
    // Seen once, then gone: offline after the policy's 3 s.
    let offline = agents.iter_mut().find(|agent| agent.hostname == "offline").unwrap();
    offline.stop();
    // Two probes in this process: one reports every check passing and
    // never answers a recheck, one reports no checks at all.
    let awaiting = Agent::enroll(&coordinator, "awaiting-recheck", &state(&coordinator, BEHIND), &[]);
    let no_data = Agent::enroll(&coordinator, "no-data", &state(&coordinator, BEHIND), &[]);
    let _awaiting_stream = silent_probe(&coordinator, &awaiting, passing_checks()).await;
    let _no_data_stream = silent_probe(&coordinator, &no_data, Vec::new()).await;
    assert!(
        wait_until(Duration::from_secs(20), || !coordinator.is_online("offline")),
        "{}",
        coordinator.log()
    );

    coordinator.start_rollout(TARGET, "1s", &["--recheck-every", "1s", "--max-attempts", "2"]);
    let expected: BTreeMap<String, String> = [
        ("license", "license"),
        ("perm-pattern", "update_permission"),
        ("perm-engine", "update_permission"),
        ("update-source", "update_source"),
        ("ua-blocking", "update_agent_program"),
        ("update-agent", "update_agent"),
        ("update-agent-conflict", "update_agent_conflict"),
        ("certificates", "certificates"),
        ("connectivity", "connectivity"),
        ("offline", "offline"),
        ("system-requirements", "system_requirements"),
        ("unknown", "unknown"),
        ("awaiting-recheck", "awaiting_recheck"),
        ("no-data", "no_data"),
        ("probe-error", "probe_error"),
    ]
    .iter()
    .map(|(host, cause)| (host.to_string(), cause.to_string()))
    .collect();
    let mut last = BTreeMap::new();
    assert!(
        wait_until(Duration::from_secs(60), || {
            last = coordinator.causes();
            last == expected
        }),
        "got {last:?}\n{}",
        coordinator.log()
    );

    let japanese = stdout(&coordinator.cli(&["report", "--lang", "ja"]));
    let english_in_japanese = english_sentences(&japanese);
    assert!(
        english_in_japanese.is_empty(),
        "English in the ja report:\n{}\n\n{japanese}",
        english_in_japanese.join("\n")
    );
    // The runbook's own words, rendered from the probes' codes.
    for words in [
        "「アップデート設定権限」が 「パターンファイル」 です",
        "「アップデート設定権限」が 「パターンファイル、エンジン、ドライバ」 です",
        "ポリシーでは 「すべてのコンポーネント」 が必要です",
        "Web管理コンソール→「アップデート」→「エージェント」→「アップデート元」",
        "「エージェント管理」→アップデートエージェントに指定しているエージェントの「設定」→「アップデートエージェント設定」",
        "ライセンスは 2020-01-01 に期限が切れています",
        "製品の状態に license.expires がありません",
        "rollcall-test-root",
        "プローブからチェック結果が報告されていません",
        "のアップデートエージェントだと申告しています",
    ] {
        assert!(japanese.contains(words), "{words} missing:\n{japanese}");
    }
    // The frame speaks Japanese too: states, durations, attributes, evidence.
    for english in ["、hard)", "、soft)", "m 以内", "check:", "endpoint product state"] {
        assert!(!japanese.contains(english), "{english:?} in the ja report:\n{japanese}");
    }
    assert!(japanese.contains("再確認"), "{japanese}");
    // The same report in English says it in English, from the same codes.
    let english = stdout(&coordinator.cli(&["report", "--lang", "en"]));
    assert!(english.contains("license expired on 2020-01-01"), "{english}");
    assert!(english.contains("\"Pattern files, engines, drivers\""), "{english}");
    assert!(!english_sentences(&english).is_empty());

    the_cli_reads_japanese_end_to_end(&coordinator);
}

/// The CLI in Japanese: `--lang ja`, and `LANG=ja_JP.UTF-8` with no flag;
/// tables, headers, labels and messages carry no English sentence.
fn the_cli_reads_japanese_end_to_end(coordinator: &Coordinator) {
    let by_lang_env = |args: &[&str]| {
        let output = std::process::Command::new(crate::harness::CLI)
            .arg("--coordinator")
            .arg(coordinator.url())
            .arg("--identity")
            .arg(coordinator.admin_identity())
            .args(args)
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .env("LANG", "ja_JP.UTF-8")
            .output()
            .expect("run cli");
        stdout(&output)
    };
    let agents = coordinator.agents_by_hostname();
    let id = |host: &str| agents[host]["id"].as_str().unwrap_or_default().to_string();
    let mut outputs: Vec<(String, String)> = Vec::new();
    for args in [
        vec!["status"],
        vec!["stragglers"],
        vec!["agents"],
        vec!["rollout", "show"],
        vec!["rollout", "list"],
        vec!["recheck", "cause=offline", "--wait", "1s"],
        vec!["roster", "status"],
    ] {
        let mut flagged = vec!["--lang", "ja"];
        flagged.extend(args.iter().copied());
        outputs.push((flagged.join(" "), stdout(&coordinator.cli(&flagged))));
        outputs.push((format!("LANG=ja_JP.UTF-8 {}", args.join(" ")), by_lang_env(&args)));
    }
    for host in [
        "connectivity",
        "certificates",
        "ua-blocking",
        "system-requirements",
        "probe-error",
        "license",
    ] {
        let agent = id(host);
        outputs.push((format!("agent {host}"), by_lang_env(&["agent", &agent])));
    }
    for (command, text) in &outputs {
        let english = english_sentences(text);
        assert!(
            english.is_empty(),
            "English in `rollcall {command}`:\n{}\n\n{text}",
            english.join("\n")
        );
    }
    let all: String = outputs.iter().map(|(_, text)| text.as_str()).collect();
    for words in [
        "ホスト名",
        "未完了",
        "再確認中",
        "原因",
        "ライセンス",
        "アップデートエージェント",
        "対処方法",
        "エージェント",
        "オンライン",
        "ロールアウト",
        "目標バージョン",
    ] {
        assert!(all.contains(words), "{words} missing from the Japanese CLI:\n{all}");
    }
    for english in [
        "HOSTNAME",
        "STRAGGLERS",
        "REMEDIATION",
        "stragglers",
        "last seen",
        "FLEET CAUSE",
    ] {
        assert!(!all.contains(english), "{english:?} in the Japanese CLI:\n{all}");
    }
    // English stays as it was.
    let status = stdout(&coordinator.cli(&["--lang", "en", "status"]));
    assert!(status.contains("completed ") && status.contains("pending "), "{status}");
    let stragglers = stdout(&coordinator.cli(&["--lang", "en", "stragglers"]));
    assert!(
        stragglers.contains("HOSTNAME") && stragglers.contains(" stragglers"),
        "{stragglers}"
    );
}
