//! An agent testifies only about itself (issue 16, point 4), through a real
//! coordinator, agents and CLI: labels bound by the enrolment token beat
//! the agent's own `agent.toml`; two agents claiming one update agent
//! address are shown as a conflict naming both, not blamed on whichever
//! spoke last; and a client whose source address is spelt differently
//! (case, scheme, trailing slash) from its update agent's is still linked.

use std::time::Duration;

use crate::harness::{Agent, Coordinator, wait_until};

const TARGET: &str = "14.0.2";

fn coordinator() -> Coordinator {
    Coordinator::started_for_rollouts()
}

/// A product state one version behind: license, permission and update
/// source pass (no policy), so step 3 decides before steps 4-6.
fn state(role: &str, source: &str, extra: &str) -> String {
    let update = match source {
        "" => "source = \"standard\"\n".to_string(),
        address => format!("source = \"custom\"\nsource_address = \"{address}\"\n"),
    };
    format!(
        "version = \"14.0.1\"\nrole = \"{role}\"\n[license]\nexpires = \"2099-12-31\"\n[update]\npermission = \"all_components\"\n{update}[server]\naddress = \"127.0.0.1:9\"\n{extra}"
    )
}

fn update_agent(address: &str, program_and_hotfix: bool) -> String {
    state(
        "update_agent",
        "",
        &format!("[update_agent]\nprogram_and_hotfix = {program_and_hotfix}\naddress = \"{address}\"\n"),
    )
}

fn start_all(coordinator: &Coordinator, agents: &mut [Agent]) {
    for agent in agents.iter_mut() {
        agent.start();
    }
    for agent in agents.iter() {
        assert!(
            wait_until(Duration::from_secs(30), || coordinator.is_online(&agent.hostname)),
            "{} never came online:\n{}",
            agent.hostname,
            agent.log()
        );
    }
}

fn selected(coordinator: &Coordinator, selector: &str) -> Vec<String> {
    coordinator
        .cli_json(&["agents", "--selector", selector])
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|agent| agent["hostname"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_label_bound_by_the_token_beats_the_agents_own_config() {
    let coordinator = coordinator();
    let token = coordinator.token(&["--label", "site=osaka"]);
    let mut agent =
        Agent::enroll_with_token(&coordinator, "liar", &state("endpoint", "", ""), &[], &token).expect("enroll");
    // The endpoint's own config says otherwise, and adds a label of its own.
    agent.edit_config(|config| {
        let mut labels = toml::Table::new();
        labels.insert("site".into(), "kyoto".into());
        labels.insert("rack".into(), "r7".into());
        config.insert("labels".into(), toml::Value::Table(labels));
    });
    start_all(&coordinator, std::slice::from_mut(&mut agent));

    let shown = &coordinator.agents_by_hostname()["liar"];
    assert_eq!(shown["labels"]["site"], "osaka", "{shown}");
    assert_eq!(shown["labels"]["rack"], "r7", "an unbound label is added: {shown}");
    assert_eq!(selected(&coordinator, "site=osaka"), ["liar"]);
    assert!(selected(&coordinator, "site=kyoto").is_empty());
    assert!(
        wait_until(Duration::from_secs(5), || coordinator
            .log()
            .contains("contradicts the label bound by the enrolment token")),
        "the ignored label is not logged:\n{}",
        coordinator.log()
    );
}

#[test]
fn rival_update_agents_are_a_conflict_and_spelling_never_breaks_a_link() {
    let coordinator = coordinator();
    let mut agents = vec![
        // Two agents claim one address, spelt two ways.
        Agent::enroll(&coordinator, "ua-real", &update_agent("UA-1.example:8080", true), &[]),
        Agent::enroll(
            &coordinator,
            "ua-rogue",
            &update_agent("http://ua-1.example:8080/", false),
            &[],
        ),
        Agent::enroll(
            &coordinator,
            "client-1",
            &state("endpoint", "ua-1.example:8080", ""),
            &[],
        ),
        // One update agent, its client spelling the address differently.
        Agent::enroll(&coordinator, "ua-2", &update_agent("ua-2.example:8080", true), &[]),
        Agent::enroll(
            &coordinator,
            "client-2",
            &state("endpoint", "HTTPS://UA-2.Example:8080/", ""),
            &[],
        ),
    ];
    start_all(&coordinator, &mut agents);
    let id_of = |hostname: &str| {
        agents
            .iter()
            .find(|agent| agent.hostname == hostname)
            .map(|agent| agent.id.clone())
            .unwrap()
    };
    coordinator.start_rollout(TARGET, "1s", &["--recheck-every", "400ms"]);

    let mut last = Default::default();
    let diagnosed = wait_until(Duration::from_secs(30), || {
        last = coordinator.causes();
        last.get("client-1").map(String::as_str) == Some("update_agent_conflict")
            && last.get("client-2").map(String::as_str) == Some("update_agent")
    });
    assert!(diagnosed, "causes: {last:?}\n{}", coordinator.log());

    let stragglers = coordinator.stragglers();
    let contested = &stragglers["client-1"];
    let mut claimants = vec![id_of("ua-real"), id_of("ua-rogue")];
    claimants.sort();
    assert_eq!(contested["update_agent_claimants"], serde_json::json!(claimants));
    assert!(contested["update_agent"].is_null(), "{contested}");
    assert_eq!(contested["runbook_step"], 3);
    // Neither claimant is blamed for the client.
    for claimant in ["ua-real", "ua-rogue"] {
        assert_eq!(
            stragglers[claimant]["blocks"], 0,
            "{claimant}: {}",
            stragglers[claimant]
        );
    }
    let table = coordinator.cli(&["stragglers"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains(&format!("update_agent_conflict ({})", claimants.join(", "))),
        "{table}"
    );

    let detail = coordinator.cli_json(&["agent", &id_of("client-1")]);
    assert_eq!(detail["update_agent_claimants"], serde_json::json!(claimants));
    assert!(detail["update_agent"].is_null(), "{detail}");
    let linked_detail = coordinator.cli_json(&["agent", &id_of("client-2")]);
    assert_eq!(linked_detail["update_agent"], serde_json::json!(id_of("ua-2")));

    let linked = &stragglers["client-2"];
    assert_eq!(linked["update_agent"], serde_json::json!(id_of("ua-2")));
    assert_eq!(stragglers["ua-2"]["blocks"], 1);

    // The report says it too, in JSON and in both languages' Markdown.
    let report = coordinator.cli_json(&["report"]);
    let entry = report["stragglers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["hostname"] == "client-1")
        .cloned()
        .unwrap();
    assert_eq!(entry["cause"], "update_agent_conflict");
    assert_eq!(entry["update_agent_claimants"], serde_json::json!(claimants));
    let rogue = report["update_agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["hostname"] == "ua-rogue")
        .cloned()
        .unwrap();
    assert_eq!(rogue["contested_by"], serde_json::json!([id_of("ua-real")]));
    let detail = entry["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&claimants[0]) && detail.contains(&claimants[1]),
        "{detail}"
    );
    for lang in ["en", "ja"] {
        let markdown = coordinator.cli(&["report", "--lang", lang]);
        let markdown = String::from_utf8_lossy(&markdown.stdout);
        assert!(
            markdown.contains("`update_agent_conflict`") && markdown.contains(&claimants[1]),
            "{markdown}"
        );
    }
}
