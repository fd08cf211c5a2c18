//! Update Now outcomes are observed, not assumed (issue 16 point 5), on a
//! real coordinator with real agents: of three endpoints behind the
//! target, one refuses (no `update_command`), one runs it and reports the
//! target, one runs it and stays behind. The step-8 report counts agents
//! (a notification sent twice to one agent is one agent), judges "helped"
//! from the reports that followed, and counts refusals apart from tries.

use std::time::Duration;

use crate::harness::{AGENT, Agent, Coordinator, product_state, wait_until};

const TARGET: &str = "14.0.2";
const BEHIND: &str = "14.0.1";

fn stdout(output: &std::process::Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// `rollcall-agent update-now` on the endpoint itself (the tray icon).
fn agent_side_update_now(agent: &Agent) -> std::process::Output {
    std::process::Command::new(AGENT)
        .args(["update-now", "--config"])
        .arg(agent.config_path())
        .output()
        .unwrap()
}

#[test]
fn update_now_counts_agents_that_ran_it_and_reached_the_target_and_refusals_apart() {
    let coordinator = Coordinator::started_for_rollouts();
    coordinator.apply_policy("update_now_window = \"30m\"\n");
    let mut refuser = Agent::enroll(&coordinator, "refuser", &product_state(BEHIND, ""), &[]);
    let mut fixed = Agent::enroll(&coordinator, "fixed", &product_state(BEHIND, ""), &[]);
    let mut stuck = Agent::enroll(&coordinator, "stuck", &product_state(BEHIND, ""), &[]);
    // `fixed`'s update action installs the target; `stuck`'s does nothing.
    let upgraded = fixed.dir.path().join("upgraded.toml");
    std::fs::write(&upgraded, product_state(TARGET, "")).unwrap();
    fixed.set_update_command(&[
        "/bin/cp",
        &upgraded.display().to_string(),
        &fixed.state_path().display().to_string(),
    ]);
    stuck.set_update_command(&["/bin/true"]);
    for agent in [&mut refuser, &mut fixed, &mut stuck] {
        agent.start();
    }
    assert!(
        wait_until(Duration::from_secs(30), || {
            let agents = coordinator.agents_by_hostname();
            ["refuser", "fixed", "stuck"]
                .iter()
                .all(|host| agents.get(*host).is_some_and(|agent| agent["version"] == BEHIND))
        }),
        "{:?}",
        coordinator.agents_by_hostname()
    );
    // A long grace: the engine sends nothing of its own.
    coordinator.start_rollout(TARGET, "1h", &[]);

    // The manual update notification, to everyone, then once more to `stuck`.
    let first = coordinator.cli_json(&["update-now", "all", "--wait", "15s"]);
    assert_eq!(first["targeted"], 3, "{first}");
    assert_eq!(first["answered"], 2, "{first}");
    assert_eq!(first["refused"], 1, "{first}");
    let again = coordinator.cli_json(&["update-now", &stuck.id, "--wait", "15s"]);
    assert_eq!(again["answered"], 1, "{again}");

    // "Update Now" on the endpoints themselves: `refuser` refuses (and says
    // so to the coordinator), `stuck` runs it and stays behind.
    let refused = agent_side_update_now(&refuser);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no [product] update_command"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let ran = agent_side_update_now(&stuck);
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));

    let expected_server = serde_json::json!({"tried": 2, "completed": 1, "refused": 1});
    let expected_agent = serde_json::json!({"tried": 1, "completed": 0, "refused": 1});
    let mut report = serde_json::Value::Null;
    assert!(
        wait_until(Duration::from_secs(30), || {
            report = coordinator.cli_json(&["report"]);
            report["update_now"]["server_side"] == expected_server
                && report["update_now"]["agent_side"] == expected_agent
        }),
        "{}\n{}\n{}",
        report["update_now"],
        refuser.log(),
        stuck.log()
    );
    assert_eq!(report["update_now"]["window_ms"], 1_800_000);
    assert_eq!(coordinator.cli_json(&["status"])["completed"], 1);

    let english = stdout(&coordinator.cli(&["report", "--lang", "en"]));
    assert!(
        english.contains(
            "Manual update notification from the server: 2 agents ran it, 1 of them then reported the target version within 30m; 1 refused it"
        ),
        "{english}"
    );
    let japanese = stdout(&coordinator.cli(&["report", "--lang", "ja"]));
    assert!(
        japanese.contains(
            "サーバからの手動アップデート通知:2 台で実行し、うち 1 台がその後 30分 以内に目標バージョンを報告。1 台は通知を拒否"
        ),
        "{japanese}"
    );
    assert!(
        japanese.contains("常駐アイコンの[今すぐアップデート]:1 台で実行し、うち 0 台"),
        "{japanese}"
    );
}
