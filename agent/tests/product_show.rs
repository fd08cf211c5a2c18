//! `rollcall-agent product show` through the real binary: the file adapter
//! (runs on any platform) and an invalid Apex One mapping, which must fail.

use std::path::Path;
use std::process::{Command, Output};

const AGENT: &str = env!("CARGO_BIN_EXE_rollcall-agent");

fn product_show(config: &Path, output: &str) -> Output {
    Command::new(AGENT)
        .args(["product", "show", "--config"])
        .arg(config)
        .args(["--output", output])
        .env_remove("ROLLCALL_AGENT_CONFIG")
        .output()
        .expect("run rollcall-agent")
}

#[test]
fn the_file_adapter_prints_every_field_with_its_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.toml");
    std::fs::write(
        &state,
        "version = \"14.0.12737\"\n[server]\naddress = \"apex.example:443\"\n[update]\nsource = \"standard\"\n",
    )
    .expect("write state");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!("[product]\nadapter = \"file\"\nstate_file = '{}'\n", state.display()),
    )
    .expect("write config");

    let output = product_show(&config, "json");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(shown["adapter"], "file");
    let fields = shown["fields"].as_array().expect("fields");
    assert_eq!(
        fields.len(),
        rollcall_agent::product_show::CONTRACT_FIELDS.len(),
        "every contract field"
    );
    let version = &fields[0];
    assert_eq!(version["field"], "version");
    assert_eq!(version["value"], "14.0.12737");
    assert_eq!(version["source"], format!("state_file {}", state.display()));
    assert!(version["verified"].is_null() && version["error"].is_null());
    let license = fields
        .iter()
        .find(|field| field["field"] == "license.expires")
        .expect("license");
    assert_eq!(license["error"], "product state: license.expires is missing");

    let output = product_show(&config, "text");
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).expect("utf-8");
    assert!(text.starts_with("adapter: file\n"), "{text}");
    assert!(text.contains("server.address: apex.example:443\n"), "{text}");
}

#[test]
fn an_unreadable_mapping_exits_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mapping = dir.path().join("apex-one.toml");
    std::fs::write(&mapping, "[version]\nregistry = { key = 'HKU\\x', value = 'v' }\n").expect("write mapping");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!("[product]\nadapter = \"apex-one\"\nmapping = '{}'\n", mapping.display()),
    )
    .expect("write config");
    let output = product_show(&config, "json");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("must start with HKLM"), "{stderr}");
    let shown: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(shown["adapter"], "apex-one");
    assert!(shown["error"].is_string());

    std::fs::remove_file(&mapping).expect("remove");
    let output = product_show(&config, "text");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("apex-one.toml"));
}
