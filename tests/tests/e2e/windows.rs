//! The Windows probe end to end: the real cross-built `rollcall-agent.exe`
//! under Wine, reading an Apex One security agent planted in Wine's
//! registry through the shipped adapter and a mapping file, enrolls with a
//! Linux coordinator over loopback mTLS and reports; the coordinator
//! diagnoses a cause planted for each of runbook steps 1–6, one after the
//! other on the same endpoint, each found after a `rollcall recheck`.
//!
//! Skips without the .exe and Wine (a plain `cargo test`); CI sets
//! `ROLLCALL_REQUIRE_WINDOWS`, where it fails instead (see `wine.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use sha1::Digest as _;

use crate::harness::{Coordinator, free_port, wait_until};
use crate::wine::{WineEndpoint, windows_agent_exe, windows_path};

const TARGET: &str = "14.0.2";
const INSTALLED: &str = "14.0.1";
const HOST: &str = "win-apex-01";
/// Where the 32-bit Apex One agent keeps its settings (as regedit shows it
/// from a 64-bit Windows).
const AGENT_KEY: &str = r"HKLM\SOFTWARE\WOW6432Node\TrendMicro\PC-cillinNTCorp\CurrentVersion";
const UNINSTALL_KEY: &str =
    r"HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall\{8456195C-3BA3-45A4-A6A7-30AE7A62EADB}";
const WINDOWS_VERSION_KEY: &str = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion";
/// The intermediate store, a plain registry store in Windows and Wine alike.
const CA_STORE_KEY: &str = r"HKLM\SOFTWARE\Microsoft\SystemCertificates\CA\Certificates";
const MIN_BUILD: u32 = 19041;

/// The mapping this test's "Apex One build" needs: the shipped example's
/// shape, with value names for the facts the endpoint is made to know
/// (license and update permission are server-side on a real Apex One; here
/// the endpoint carries them so that steps 1 and 2 can be planted).
fn mapping() -> String {
    format!(
        r#"[install_dir]
registry = {{ key = '{AGENT_KEY}', value = "Application Path" }}
verified = true

[version]
uninstall = {{ display_name = "Trend Micro Apex One Security Agent", match = "exact" }}
verified = true

[role]
registry = {{ key = '{AGENT_KEY}', value = "UpdateAgent" }}
translate = {{ "0" = "endpoint", "1" = "update_agent" }}

[license.expires]
registry = {{ key = '{AGENT_KEY}', value = "LicenseExpiry" }}

[update.permission]
registry = {{ key = '{AGENT_KEY}', value = "UpdatePermission" }}
translate = {{ "0" = "all_components", "1" = "pattern_files", "2" = "pattern_engine_driver" }}

[update.source]
ini = {{ file = "ofcscan.ini", section = "INI_UPDATE_SECTION", key = "UpdateFrom" }}
translate = {{ "0" = "standard", "1" = "custom" }}

[update.source_address]
ini = {{ file = "ofcscan.ini", section = "INI_UPDATE_SECTION", key = "CustomSource" }}

[server.address]
registry = {{ key = '{AGENT_KEY}', value = "Server" }}
port = {{ registry = {{ key = '{AGENT_KEY}', value = "ServerPort" }} }}
"#
    )
}

fn policy(fingerprint: &str) -> String {
    format!(
        r#"offline_after = "30s"
[[update_source.expected]]
source = "standard"
[[certificates.required]]
name = "Example Code Signing CA"
sha256 = "{fingerprint}"
[connectivity]
timeout = "2s"
[[system_requirements.os]]
id = "windows"
min_build = {MIN_BUILD}
"#
    )
}

/// A code-signing CA: (DER, SHA-1 hex as Windows names store entries,
/// SHA-256 hex as the policy names it).
fn code_signing_ca() -> (Vec<u8>, String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Example Code Signing CA");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let der = params.self_signed(&key).unwrap().der().to_vec();
    let sha1 = hex::encode_upper(sha1::Sha1::digest(&der));
    let sha256 = hex::encode(sha2::Sha256::digest(&der));
    (der, sha1, sha256)
}

/// A certificate in the form a registry certificate store keeps it (the
/// `Blob` value): serialized properties, here only the certificate itself
/// (property 32, CERT_CERT_PROP_ID: id, reserved 1, length, DER).
fn store_blob(der: &[u8]) -> String {
    let mut blob = Vec::with_capacity(der.len() + 12);
    blob.extend_from_slice(&32u32.to_le_bytes());
    blob.extend_from_slice(&1u32.to_le_bytes());
    blob.extend_from_slice(&u32::try_from(der.len()).unwrap().to_le_bytes());
    blob.extend_from_slice(der);
    hex::encode_upper(blob)
}

/// Asks for a re-check and waits until the endpoint's cause is `expected`.
fn recheck_until(coordinator: &Coordinator, endpoint: &WineEndpoint, expected: &str, planted: &str) {
    let recheck = coordinator.cli(&["recheck", &format!("hostname={HOST}")]);
    assert!(recheck.status.success(), "{}", String::from_utf8_lossy(&recheck.stderr));
    let mut last = BTreeMap::new();
    let found = wait_until(Duration::from_secs(60), || {
        last = coordinator.causes();
        last.get(HOST).map(String::as_str) == Some(expected)
    });
    let detail = coordinator.cli_json(&["agent", &endpoint.id]);
    assert!(
        found,
        "planted {planted}: expected cause {expected}, stragglers are {last:?}\nagent: {detail:#}\nagent log:\n{}",
        endpoint.log()
    );
}

#[test]
fn a_windows_endpoint_under_wine_is_diagnosed_for_each_runbook_step() {
    let Some(exe) = windows_agent_exe() else {
        return;
    };
    let coordinator = Coordinator::started_for_rollouts();
    let (der, sha1, sha256) = code_signing_ca();
    coordinator.apply_policy(&policy(&sha256));

    let mut endpoint = WineEndpoint::new(&exe, HOST);
    // The Security Agent as installed: its folder with ofcscan.ini, its
    // uninstall entry, its registry key, the code-signing CA in the store.
    let install_dir = endpoint.dir.path().join("Security Agent");
    std::fs::create_dir_all(&install_dir).unwrap();
    let ini = |update_from: u8, custom: &str| {
        // Windows tools write .ini files as UTF-16LE with a BOM.
        let text = format!("[INI_UPDATE_SECTION]\r\nUpdateFrom={update_from}\r\nCustomSource={custom}\r\n");
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        std::fs::write(install_dir.join("ofcscan.ini"), bytes).unwrap();
    };
    ini(0, "");
    let closed_port = free_port();
    endpoint.reg_add(
        UNINSTALL_KEY,
        "DisplayName",
        "REG_SZ",
        "Trend Micro Apex One Security Agent",
    );
    endpoint.reg_add(UNINSTALL_KEY, "DisplayVersion", "REG_SZ", INSTALLED);
    endpoint.reg_add(AGENT_KEY, "Application Path", "REG_SZ", &windows_path(&install_dir));
    endpoint.reg_add(AGENT_KEY, "UpdateAgent", "REG_DWORD", "0");
    endpoint.reg_add(AGENT_KEY, "LicenseExpiry", "REG_SZ", "2099-12-31");
    endpoint.reg_add(AGENT_KEY, "UpdatePermission", "REG_DWORD", "0");
    endpoint.reg_add(AGENT_KEY, "Server", "REG_SZ", "127.0.0.1");
    endpoint.reg_add(AGENT_KEY, "ServerPort", "REG_DWORD", &coordinator.port.to_string());
    let certificate_key = format!(r"{CA_STORE_KEY}\{sha1}");
    endpoint.reg_add(&certificate_key, "Blob", "REG_BINARY", &store_blob(&der));
    endpoint.reg_add(WINDOWS_VERSION_KEY, "CurrentBuildNumber", "REG_SZ", "19045");

    let token = coordinator.token(&["--label", "site=osaka"]);
    endpoint.enroll(&coordinator, &token, &["--label", "os=windows"]);
    let mapping_path = endpoint.data_dir().join("apex-one.toml");
    std::fs::write(&mapping_path, mapping()).unwrap();
    endpoint.edit_config(|config| {
        let mut product = toml::Table::new();
        product.insert("adapter".into(), "apex-one".into());
        product.insert("mapping".into(), windows_path(&mapping_path).into());
        product.insert("install_path".into(), windows_path(&install_dir).into());
        config.insert("product".into(), product.into());
    });

    // The admin's first look on the machine: every mapped field found.
    let shown = endpoint.agent(&[
        "product",
        "show",
        "--config",
        &windows_path(&endpoint.config_path()),
        "--output",
        "json",
    ]);
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let field = |name: &str| {
        shown["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|field| field["field"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("product show lacks {name}: {shown:#}"))
    };
    assert_eq!(field("version")["value"], INSTALLED, "{shown:#}");
    assert!(
        field("version")["source"].as_str().unwrap().contains("DisplayVersion"),
        "{shown:#}"
    );
    assert_eq!(field("update.source")["value"], "standard", "{shown:#}");
    assert!(
        field("update.source")["source"]
            .as_str()
            .unwrap()
            .contains("ofcscan.ini"),
        "{shown:#}"
    );
    assert_eq!(
        field("server.address")["value"],
        format!("127.0.0.1:{}", coordinator.port),
        "{shown:#}"
    );

    endpoint.start();
    endpoint.wait_online(&coordinator);
    let agent = coordinator.cli_json(&["agent", &endpoint.id]);
    assert_eq!(agent["os_id"], "windows", "{agent:#}");
    assert!(agent["os_version"].as_str().unwrap().contains(".19045"), "{agent:#}");
    assert_eq!(agent["version"], INSTALLED, "{agent:#}");

    coordinator.start_rollout(TARGET, "1s", &["--recheck-every", "1s", "--max-attempts", "1"]);
    // Nothing planted yet: every check passes, so runbook step 7 applies.
    recheck_until(&coordinator, &endpoint, "unknown", "nothing");

    // Step 1: the license has expired.
    endpoint.reg_add(AGENT_KEY, "LicenseExpiry", "REG_SZ", "2020-01-01");
    recheck_until(&coordinator, &endpoint, "license", "an expired license");
    endpoint.reg_add(AGENT_KEY, "LicenseExpiry", "REG_SZ", "2099-12-31");

    // Step 2: the console lets agents update pattern files only.
    endpoint.reg_add(AGENT_KEY, "UpdatePermission", "REG_DWORD", "1");
    recheck_until(&coordinator, &endpoint, "update_permission", "UpdatePermission=1");
    endpoint.reg_add(AGENT_KEY, "UpdatePermission", "REG_DWORD", "0");

    // Step 3: the agent pulls from a custom source the policy does not expect.
    ini(1, "ua-rogue.example:8080");
    recheck_until(&coordinator, &endpoint, "update_source", "a custom update source");
    ini(0, "");

    // Step 4: the code-signing CA is missing from the certificate stores.
    endpoint.reg_delete_key(&certificate_key);
    recheck_until(&coordinator, &endpoint, "certificates", "a missing code-signing CA");
    endpoint.reg_add(&certificate_key, "Blob", "REG_BINARY", &store_blob(&der));

    // Step 5: the product server does not answer.
    endpoint.reg_add(AGENT_KEY, "ServerPort", "REG_DWORD", &closed_port.to_string());
    recheck_until(&coordinator, &endpoint, "connectivity", "a closed server port");
    endpoint.reg_add(AGENT_KEY, "ServerPort", "REG_DWORD", &coordinator.port.to_string());

    // Step 6: Windows is older than the build newer code signing needs.
    endpoint.reg_add(WINDOWS_VERSION_KEY, "CurrentBuildNumber", "REG_SZ", "17763");
    recheck_until(&coordinator, &endpoint, "system_requirements", "build 17763");
    endpoint.reg_add(WINDOWS_VERSION_KEY, "CurrentBuildNumber", "REG_SZ", "19045");

    // The upgrade lands: the endpoint leaves the straggler list.
    endpoint.reg_add(UNINSTALL_KEY, "DisplayVersion", "REG_SZ", TARGET);
    let recheck = coordinator.cli(&["recheck", &format!("hostname={HOST}")]);
    assert!(recheck.status.success());
    assert!(
        wait_until(Duration::from_secs(60), || !coordinator.causes().contains_key(HOST)),
        "still a straggler after the upgrade: {:?}\n{}",
        coordinator.causes(),
        endpoint.log()
    );
    endpoint.stop();
    assert!(
        wait_until(Duration::from_secs(30), || !coordinator.is_online(HOST)),
        "the stopped probe still shows online"
    );

    // The same probe as a Windows service (what install.cmd sets up):
    // installed, started by the service manager, online again, stopped
    // (a drain) and removed.
    let config = windows_path(&endpoint.config_path());
    let service = |args: &[&str]| {
        let output = endpoint.agent(args);
        assert!(
            output.status.success(),
            "rollcall-agent {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    service(&["service", "install", "--config", &config]);
    // A reboot: every process of the prefix ends, and the next Wine command
    // brings up a fresh service manager, which starts the automatic-start
    // service by itself. (Also a Wine quirk worked around: right after
    // wineboot, a second services.exe may answer that the new service does
    // not exist, or that its database is locked.) `service start` then
    // finds it running, or starts it.
    endpoint.reboot();
    let logs = endpoint.data_dir().join("logs");
    let service_logs = || -> String {
        std::fs::read_dir(&logs)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|entry| std::fs::read_to_string(entry.path()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut attempts = Vec::new();
    let started = wait_until(Duration::from_secs(30), || {
        let output = endpoint.agent(&["service", "start"]);
        attempts.push(String::from_utf8_lossy(&output.stderr).trim().to_string());
        output.status.success()
    });
    assert!(
        started,
        "service start: {attempts:?}\nservice logs:\n{}",
        service_logs()
    );
    assert!(
        wait_until(Duration::from_secs(60), || coordinator.is_online(HOST)),
        "the service never came online; its logs:\n{}",
        service_logs()
    );
    service(&["service", "stop"]);
    assert!(
        wait_until(Duration::from_secs(30), || !coordinator.is_online(HOST)),
        "the stopped service still shows online"
    );
    let logged = service_logs();
    assert!(
        logged.contains("the service manager asked the agent to stop"),
        "{logged}"
    );
    service(&["service", "uninstall"]);
    let again = endpoint.agent(&["service", "start"]);
    assert!(!again.status.success(), "an uninstalled service started");
}

/// The zip's install.cmd as an admin or a GPO startup script runs it: first
/// install (copy, enroll by token file with a quoted label, service
/// install and start), then an upgrade (service stopped, program replaced,
/// config validated, started), then `uninstall.cmd /purge`.
#[test]
fn install_cmd_installs_upgrades_and_uninstalls_the_service_under_wine() {
    let Some(exe) = windows_agent_exe() else {
        return;
    };
    let mut coordinator = Coordinator::init();
    coordinator.start();
    let endpoint = WineEndpoint::new(&exe, "win-inst-01");
    // The zip's layout (deploy/windows/build.sh --zip).
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let unpacked = endpoint.dir.path().join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    for (from, to) in [
        (exe.clone(), "rollcall-agent.exe"),
        (repo.join("deploy/windows/install.cmd"), "install.cmd"),
        (repo.join("deploy/windows/uninstall.cmd"), "uninstall.cmd"),
        (repo.join("deploy/windows/agent.toml"), "agent.toml.template"),
        (repo.join("deploy/examples/apex-one.toml"), "apex-one.toml"),
    ] {
        std::fs::copy(&from, unpacked.join(to)).unwrap_or_else(|error| panic!("copy {}: {error}", from.display()));
    }
    let token_file = endpoint.dir.path().join("token.txt");
    std::fs::write(&token_file, coordinator.token(&["--label", "site=osaka"])).unwrap();
    let program = endpoint.dir.path().join("program");
    let data = endpoint.dir.path().join("data");
    // A wrapper script, as a GPO would hold: arguments with quotes reach
    // cmd.exe exactly as written (a Linux argv would have them escaped).
    let run_script = |name: &str, line: String| {
        let script = endpoint.dir.path().join(name);
        std::fs::write(&script, format!("@echo off\r\n{line}\r\n")).unwrap();
        let output = endpoint.run(
            endpoint
                .wine_command("wine")
                .args(["cmd", "/c", &windows_path(&script)]),
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{name} failed:\n{text}");
        text
    };
    // Start from a settled machine (see WineEndpoint::reboot).
    endpoint.reboot();
    let dirs = format!(
        "/installdir {} /datadir {}",
        windows_path(&program),
        windows_path(&data)
    );
    let installed = run_script(
        "first.cmd",
        format!(
            "call \"{}\" /coordinator {} /ca {} /tokenfile {} /label \"os=windows\" /hostname win-inst-01 {dirs}",
            windows_path(&unpacked.join("install.cmd")),
            coordinator.url(),
            windows_path(&coordinator.data_dir().join("ca.pem")),
            windows_path(&token_file),
        ),
    );
    assert!(installed.contains("install.cmd: done"), "{installed}");
    assert!(program.join("rollcall-agent.exe").is_file());
    assert!(
        data.join("apex-one.toml").is_file(),
        "the mapping is put beside agent.toml"
    );
    assert!(
        wait_until(Duration::from_secs(60), || coordinator.is_online("win-inst-01")),
        "the installed service never came online:\n{installed}"
    );
    let agent = coordinator.agents_by_hostname()["win-inst-01"].clone();
    let labels = agent["labels"].to_string();
    assert!(labels.contains("osaka") && labels.contains("windows"), "{agent:#}");

    let upgraded = run_script(
        "upgrade.cmd",
        format!("call \"{}\" {dirs}", windows_path(&unpacked.join("install.cmd"))),
    );
    assert!(
        upgraded.contains("upgrading the program, keeping the enrolment"),
        "{upgraded}"
    );
    assert!(upgraded.contains("is valid"), "{upgraded}");
    assert!(
        wait_until(Duration::from_secs(60), || coordinator.is_online("win-inst-01")),
        "the upgraded service never came back:\n{upgraded}"
    );

    let removed = run_script(
        "remove.cmd",
        format!(
            "call \"{}\" {dirs} /purge",
            windows_path(&unpacked.join("uninstall.cmd"))
        ),
    );
    assert!(removed.contains("uninstall.cmd: done"), "{removed}");
    assert!(
        !program.exists() && !data.exists(),
        "uninstall /purge left files:\n{removed}"
    );
    assert!(
        wait_until(Duration::from_secs(30), || !coordinator.is_online("win-inst-01")),
        "the uninstalled service still reports"
    );
}
