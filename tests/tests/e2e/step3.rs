//! Runbook step 3 told right (issue 29, point 2), on a real coordinator
//! with real agents and the real CLI, in English and Japanese: an update
//! agent without "Security agent program and HotFix" is
//! `update_agent_program` (its own headline and remediation: enable it for
//! that update agent, with the console path), never `update_source`; its
//! client is `update_agent` naming it; and a client whose update agent is
//! offline shows its unreachable update source as a consequence of that
//! update agent, not as a fault of its own.

use std::time::Duration;

use rollcall_common::console_path::UPDATE_AGENT_SETTINGS;

use crate::diagnosis::{state, stdout};
use crate::harness::{Agent, Coordinator, free_port, wait_until};

const TARGET: &str = "14.0.2";
const BEHIND: &str = "14.0.1";

fn update_agent_state(coordinator: &Coordinator, version: &str, address: &str, program_and_hotfix: bool) -> String {
    format!(
        "{}[update_agent]\nprogram_and_hotfix = {program_and_hotfix}\naddress = \"{address}\"\n",
        state(coordinator, version).replace("role = \"endpoint\"", "role = \"update_agent\"")
    )
}

fn client_state(coordinator: &Coordinator, address: &str) -> String {
    state(coordinator, BEHIND).replace(
        "source = \"standard\"",
        &format!("source = \"custom\"\nsource_address = \"{address}\""),
    )
}

/// The lines of one straggler's section of a Markdown report.
fn section<'a>(report: &'a str, hostname: &str) -> &'a str {
    let start = report
        .find(&format!("### {hostname} "))
        .unwrap_or_else(|| panic!("no section for {hostname}:\n{report}"));
    let rest = &report[start..];
    let end = rest[4..].find("### ").map_or(rest.len(), |at| at + 4);
    &rest[..end]
}

#[test]
fn an_update_agent_without_program_and_hotfix_is_its_own_cause_and_its_clients_name_it() {
    let coordinator = Coordinator::started_for_rollouts();
    // The update agents' addresses: the coordinator's port stands in for a
    // reachable one; a closed port for the one that went offline.
    let reachable = format!("127.0.0.1:{}", coordinator.port);
    let closed = format!("127.0.0.1:{}", free_port());
    coordinator.apply_policy(&format!(
        r#"offline_after = "3s"
[[update_source.expected]]
match = {{ site = "osaka" }}
source = "custom"
address = "{reachable}"
[[update_source.expected]]
match = {{ site = "nara" }}
source = "custom"
address = "{closed}"
[[update_source.expected]]
source = "standard"
[connectivity]
timeout = "2s"
[[system_requirements.os]]
id = "debian"
min_version = "11"
"#
    ));
    let mut agents = [
        Agent::enroll(
            &coordinator,
            "ua-osaka",
            &update_agent_state(&coordinator, BEHIND, &reachable, false),
            &[("site", "osaka-ua")],
        ),
        Agent::enroll(
            &coordinator,
            "osaka-pc",
            &client_state(&coordinator, &reachable),
            &[("site", "osaka")],
        ),
        Agent::enroll(
            &coordinator,
            "ua-nara",
            &update_agent_state(&coordinator, TARGET, &closed, true),
            &[("site", "nara-ua")],
        ),
        Agent::enroll(
            &coordinator,
            "nara-pc",
            &client_state(&coordinator, &closed),
            &[("site", "nara")],
        ),
    ];
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
    // ua-nara finished its own upgrade, then went away.
    agents
        .iter_mut()
        .find(|agent| agent.hostname == "ua-nara")
        .unwrap()
        .stop();
    assert!(
        wait_until(Duration::from_secs(20), || !coordinator.is_online("ua-nara")),
        "{}",
        coordinator.log()
    );
    coordinator.start_rollout(TARGET, "1s", &["--recheck-every", "1s", "--max-attempts", "2"]);
    let mut last = Default::default();
    assert!(
        wait_until(Duration::from_secs(60), || {
            last = coordinator.stragglers();
            ["ua-osaka", "osaka-pc", "nara-pc"]
                .iter()
                .all(|host| last.contains_key(*host))
                && last["ua-osaka"]["cause"] == "update_agent_program"
                && last["osaka-pc"]["cause"] == "update_agent"
                && last["nara-pc"]["cause"] == "update_agent"
        }),
        "got {last:?}\n{}",
        coordinator.log()
    );
    let ua = &last["ua-osaka"];
    assert_eq!(ua["runbook_step"], 3, "{ua}");
    assert_eq!(ua["blocks"], 1, "{ua}");
    assert_eq!(ua["failing"], serde_json::json!(["update_source"]), "{ua}");
    // The client's own checks all pass: nothing but its update agent to fix.
    assert_eq!(
        last["osaka-pc"]["failing"],
        serde_json::json!([]),
        "{:?}",
        last["osaka-pc"]
    );
    // Behind the offline update agent the update source is unreachable: a
    // consequence, so no failing check of its own.
    assert_eq!(
        last["nara-pc"]["failing"],
        serde_json::json!([]),
        "{:?}",
        last["nara-pc"]
    );

    let english = stdout(&coordinator.cli(&["report", "--lang", "en"]));
    let ua_section = section(&english, "ua-osaka");
    assert!(
        ua_section.contains(
            "this update agent does not serve \"Security agent program and HotFix\": none of its clients can upgrade"
        ),
        "{ua_section}"
    );
    assert!(
        ua_section.contains(&format!(
            "Enable \"Security agent program and HotFix\" for this update agent in the web console ({})",
            UPDATE_AGENT_SETTINGS.en
        )),
        "{ua_section}"
    );
    assert!(
        !ua_section.contains("update source is not the intended one"),
        "{ua_section}"
    );
    let client = section(&english, "osaka-pc");
    assert!(
        client.contains("its update agent ua-osaka does not serve \"Security agent program and HotFix\""),
        "{client}"
    );
    let behind_offline = section(&english, "nara-pc");
    assert!(
        behind_offline.contains("its update agent ua-nara is offline"),
        "{behind_offline}"
    );
    assert!(
        behind_offline.contains("- Follow from the update agent ua-nara (not separate faults"),
        "{behind_offline}"
    );
    // The connectivity check is listed under it, indented, never as a fault.
    assert!(
        behind_offline.contains("\n  - **connectivity** (fail)"),
        "{behind_offline}"
    );
    assert!(!behind_offline.contains("\n- **connectivity**"), "{behind_offline}");

    let japanese = stdout(&coordinator.cli(&["report", "--lang", "ja"]));
    let ua_section = section(&japanese, "ua-osaka");
    assert!(
        ua_section.contains(
            "このアップデートエージェントで「セキュリティエージェントプログラムとHotFix」が有効になっていないため"
        ),
        "{ua_section}"
    );
    assert!(
        ua_section.contains(&format!(
            "{}で、このアップデートエージェントの「セキュリティエージェントプログラムとHotFix」を有効にしてください",
            UPDATE_AGENT_SETTINGS.ja
        )),
        "{ua_section}"
    );
    let client = section(&japanese, "osaka-pc");
    assert!(
        client.contains(
            "アップデートエージェント ua-osaka で「セキュリティエージェントプログラムとHotFix」が有効になっていない"
        ),
        "{client}"
    );
    let behind_offline = section(&japanese, "nara-pc");
    assert!(
        behind_offline.contains("アップデートエージェント ua-nara がオフライン"),
        "{behind_offline}"
    );
    assert!(
        behind_offline.contains("以下はアップデートエージェント ua-nara に起因する結果で、別の原因ではありません"),
        "{behind_offline}"
    );
}
