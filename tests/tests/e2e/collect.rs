//! Runbook step 8 collects the update-failure logs (issue 16, point 6), on
//! a real coordinator with real agents and the real CLI: an agent whose
//! agent.toml names a folder of logs sends the files that fit its cap,
//! newest first and byte for byte; a file beyond the cap and a file its
//! config does not name stay home; an agent without `[collect]` refuses;
//! the step-8 report says which stragglers have a bundle.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::harness::{Agent, Coordinator, SERVER, wait_until};

const TARGET: &str = "14.0.2";
const CAP: u64 = 64 * 1024;

fn state(coordinator: &Coordinator) -> String {
    format!(
        "version = \"14.0.1\"\nrole = \"endpoint\"\n[license]\nexpires = \"2099-12-31\"\n[update]\npermission = \"all_components\"\nsource = \"standard\"\n[server]\naddress = \"127.0.0.1:{}\"\n",
        coordinator.port
    )
}

/// Writes `bytes` of a recognisable pattern, modified `age` ago.
fn write_log(path: &Path, bytes: usize, age: Duration, seed: u8) -> Vec<u8> {
    let contents: Vec<u8> = (0..bytes).map(|i| seed.wrapping_add((i % 251) as u8)).collect();
    std::fs::write(path, &contents).unwrap();
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
    contents
}

fn stdout_json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("JSON expected: {}", String::from_utf8_lossy(&output.stderr)))
}

#[test]
fn collect_bundles_only_the_configured_logs_newest_first_within_the_cap() {
    let coordinator = Coordinator::started_for_rollouts();
    coordinator.apply_policy("offline_after = \"1h\"\n[connectivity]\ntimeout = \"2s\"\n");
    let mut logs = Agent::enroll(&coordinator, "logs", &state(&coordinator), &[]);
    let mut plain = Agent::enroll(&coordinator, "plain", &state(&coordinator), &[]);

    let dir = logs.root().join("var/log/product");
    std::fs::create_dir_all(&dir).unwrap();
    let newest = write_log(&dir.join("update.log"), 20_000, Duration::from_secs(60), 1);
    // Beyond the cap on its own: left out, named in the manifest.
    write_log(&dir.join("big.log"), 3 * CAP as usize, Duration::from_secs(120), 2);
    let older = write_log(&dir.join("tmudump.log"), 30_000, Duration::from_secs(600), 3);
    // Newer than all, in the same folder, but not named by the config.
    write_log(&dir.join("secret.txt"), 100, Duration::from_secs(1), 4);
    logs.edit_config(|config| {
        let mut collect = toml::Table::new();
        collect.insert(
            "paths".into(),
            toml::Value::Array(vec![toml::Value::String(dir.join("*.log").display().to_string())]),
        );
        collect.insert("max_bundle_bytes".into(), toml::Value::Integer(CAP as i64));
        config.insert("collect".into(), toml::Value::Table(collect));
    });
    logs.start();
    plain.start();
    assert!(
        wait_until(Duration::from_secs(30), || {
            let agents = coordinator.agents_by_hostname();
            ["logs", "plain"]
                .iter()
                .all(|host| agents.get(*host).is_some_and(|a| a["version"] == "14.0.1"))
        }),
        "{}\n{}",
        logs.log(),
        coordinator.log()
    );
    coordinator.start_rollout(TARGET, "1s", &["--recheck-every", "1h", "--max-attempts", "1"]);
    assert!(
        wait_until(Duration::from_secs(30), || coordinator.stragglers().len() == 2),
        "{}",
        coordinator.log()
    );

    // The admin names agents, never files: there is no flag for a path.
    let out = tempfile::tempdir().unwrap();
    let refused = coordinator.cli(&["collect", "all", "--path", "/etc/shadow"]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let output = coordinator.cli(&[
        "--output",
        "json",
        "collect",
        "all",
        "--wait",
        "60s",
        "--out",
        &out.path().display().to_string(),
    ]);
    // One agent refused, so the command says not every bundle came.
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<serde_json::Value> = stdout_json(&output).as_array().cloned().unwrap();
    let by_host = |host: &str| results.iter().find(|r| r["hostname"] == host).cloned().unwrap();
    let plain_result = by_host("plain");
    assert_eq!(plain_result["state"], "refused", "{plain_result}");
    assert!(
        plain_result["reason"].as_str().unwrap().contains("[collect]"),
        "{plain_result}"
    );
    let logs_result = by_host("logs");
    assert_eq!(logs_result["state"], "complete", "{logs_result}");
    assert_eq!(
        (logs_result["files"].as_u64(), logs_result["skipped"].as_u64()),
        (Some(2), Some(1))
    );
    let file = logs_result["file"].as_str().unwrap().to_string();

    // A real tar reads it: the files byte for byte, newest first, the cap held.
    let extracted = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("-xf")
        .arg(&file)
        .arg("-C")
        .arg(extracted.path())
        .status()
        .expect("run tar");
    assert!(status.success());
    let mut names: Vec<String> = std::fs::read_dir(extracted.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["01-update.log", "02-tmudump.log", "MANIFEST.txt"]);
    assert_eq!(std::fs::read(extracted.path().join("01-update.log")).unwrap(), newest);
    assert_eq!(std::fs::read(extracted.path().join("02-tmudump.log")).unwrap(), older);
    assert!((newest.len() + older.len()) as u64 <= CAP);
    let manifest = std::fs::read_to_string(extracted.path().join("MANIFEST.txt")).unwrap();
    assert!(manifest.contains("big.log\t196608 bytes, more than the"), "{manifest}");
    assert!(!manifest.contains("secret.txt"), "{manifest}");

    // The report lists which stragglers have a bundle, in both languages.
    let report = coordinator.cli_json(&["report"]);
    let stragglers = report["stragglers"].as_array().unwrap();
    let entry = |host: &str| stragglers.iter().find(|s| s["hostname"] == host).cloned().unwrap();
    assert_eq!(entry("logs")["bundle"]["files"], 2, "{report}");
    assert!(entry("plain")["bundle"].is_null(), "{report}");
    let english = String::from_utf8_lossy(&coordinator.cli(&["report", "--lang", "en"]).stdout).to_string();
    assert!(
        english.contains("Update-failure logs collected from 1 of 2"),
        "{english}"
    );
    assert!(
        english.contains(&format!("rollcall bundle get {}", logs.id)),
        "{english}"
    );
    let japanese = String::from_utf8_lossy(&coordinator.cli(&["report", "--lang", "ja"]).stdout).to_string();
    assert!(
        japanese.contains("2 台中 1 台から「アップデート失敗」に関するログを取得済み"),
        "{japanese}"
    );

    // Downloaded again later: the same bytes.
    let again = tempfile::tempdir().unwrap();
    let got = coordinator.cli_json(&["bundle", "get", &logs.id, "--out", &again.path().display().to_string()]);
    let again_file = got[0]["file"].as_str().unwrap();
    assert_eq!(std::fs::read(again_file).unwrap(), std::fs::read(&file).unwrap());
    let missing = coordinator.cli(&["bundle", "get", &plain.id]);
    assert_eq!(
        missing.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );

    // Logs are for operators: a viewer may list bundles, not collect or read them.
    let viewer = coordinator.dir.path().join("vera");
    let issued = Command::new(SERVER)
        .args(["admin-cert", "--data-dir"])
        .arg(coordinator.data_dir())
        .args(["--name", "vera", "--role", "viewer", "--out"])
        .arg(&viewer)
        .output()
        .unwrap();
    assert!(issued.status.success(), "{}", String::from_utf8_lossy(&issued.stderr));
    assert!(coordinator.cli_as(&viewer, &["bundle", "list"]).status.success());
    for args in [vec!["bundle", "get", logs.id.as_str()], vec!["collect", "all"]] {
        let denied = coordinator.cli_as(&viewer, &args);
        assert_eq!(
            denied.status.code(),
            Some(4),
            "{args:?}: {}",
            String::from_utf8_lossy(&denied.stderr)
        );
    }
    let audit = coordinator.cli_json(&["audit"]);
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"bundle.collect") && actions.contains(&"bundle.get"),
        "{audit}"
    );
}
