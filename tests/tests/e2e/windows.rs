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
/// The agent's own record of its program, pattern and last update
/// (`Misc.`, as Tenable's Nessus plugin 16192 reads it).
const MISC_KEY: &str = r"HKLM\SOFTWARE\WOW6432Node\TrendMicro\PC-cillinNTCorp\CurrentVersion\Misc.";
const UNINSTALL_KEY: &str =
    r"HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall\{8456195C-3BA3-45A4-A6A7-30AE7A62EADB}";
const WINDOWS_VERSION_KEY: &str = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion";
/// The intermediate store, a plain registry store in Windows and Wine alike.
const CA_STORE_KEY: &str = r"HKLM\SOFTWARE\Microsoft\SystemCertificates\CA\Certificates";
const MIN_BUILD: u32 = 19041;

/// The mapping this test's "Apex One build" needs: the shipped example's
/// published names (Application Path, Misc.\ProgramVer with the uninstall
/// entry as fallback, `server`), plus value names for the facts the
/// endpoint is made to know (license and update permission are server-side
/// on a real Apex One; here the endpoint carries them so that steps 1 and 2
/// can be planted).
fn mapping() -> String {
    format!(
        r#"[install_dir]
registry = {{ key = '{AGENT_KEY}', value = "Application Path" }}
verified = true

[version]
registry = {{ key = '{MISC_KEY}', value = "ProgramVer" }}
fallback = [
    {{ uninstall = {{ display_name = "Trend Micro Apex One Security Agent", match = "exact" }} }},
]
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
registry = {{ key = '{AGENT_KEY}', value = "server" }}
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
    let server = |port: u16| format!("127.0.0.1:{port}");
    endpoint.reg_add(AGENT_KEY, "server", "REG_SZ", &server(coordinator.port));
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
    // No Misc.\ProgramVer yet: the uninstall entry, the fallback, says it.
    assert_eq!(field("version")["value"], INSTALLED, "{shown:#}");
    let version_source = field("version")["source"].as_str().unwrap().to_string();
    assert!(
        version_source.contains("DisplayVersion") && version_source.contains("fallback 1"),
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
    endpoint.reg_add(AGENT_KEY, "server", "REG_SZ", &server(closed_port));
    recheck_until(&coordinator, &endpoint, "connectivity", "a closed server port");
    endpoint.reg_add(AGENT_KEY, "server", "REG_SZ", &server(coordinator.port));

    // Step 6: Windows is older than the build newer code signing needs.
    endpoint.reg_add(WINDOWS_VERSION_KEY, "CurrentBuildNumber", "REG_SZ", "17763");
    recheck_until(&coordinator, &endpoint, "system_requirements", "build 17763");
    endpoint.reg_add(WINDOWS_VERSION_KEY, "CurrentBuildNumber", "REG_SZ", "19045");

    // The upgrade lands (the agent's own Misc.\ProgramVer, read first): the
    // endpoint leaves the straggler list.
    endpoint.reg_add(MISC_KEY, "ProgramVer", "REG_SZ", TARGET);
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

// === issue 25: the signals of a stuck Apex One upgrade, under Wine ===

/// The shipped mapping, as install.cmd installs it.
const SHIPPED_MAPPING: &str = include_str!("../../../deploy/examples/apex-one.toml");
/// A target from the Azure Code Signing era (build 12011 and later).
const ACS_TARGET: &str = "14.0.12737";
const ACS_INSTALLED: &str = "14.0.11564";
const UPDATE_INFO_KEY: &str = r"HKLM\SOFTWARE\WOW6432Node\TrendMicro\PC-cillinNTCorp\CurrentVersion\UpdateInfo";
const REBOOT_REQUIRED_KEY: &str =
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired";
const REFUSED: &str = "Client environment is not qualified to do upgrade or hotfix";

/// What one endpoint of the fixture carries beyond a healthy agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planted {
    Healthy,
    /// Runbook step 2: today's pattern, an old program.
    PatternsOnly,
    /// Step 3: the last update came from ActiveUpdate.
    ActiveUpdate,
    /// Step 4: Windows 10 21H2 below the ACS update.
    NoAcsUpdate,
    /// Step 5: another server certificate than the fleet's.
    WrongServerCertificate,
    /// Step 6: the newest upgrade log refuses.
    UpgradeRefused,
    /// Not a cause: installed, waiting for a restart.
    RestartPending,
}

impl Planted {
    fn hostname(self) -> &'static str {
        match self {
            Planted::Healthy => "apex-healthy",
            Planted::PatternsOnly => "apex-patterns",
            Planted::ActiveUpdate => "apex-activeupdate",
            Planted::NoAcsUpdate => "apex-acs",
            Planted::WrongServerCertificate => "apex-cert",
            Planted::UpgradeRefused => "apex-refused",
            Planted::RestartPending => "apex-restart",
        }
    }
}

/// One Wine "machine" laid out with Apex One's published names only.
fn apex_endpoint(exe: &std::path::Path, coordinator: &Coordinator, token: &str, planted: Planted) -> WineEndpoint {
    let mut endpoint = WineEndpoint::new(exe, planted.hostname());
    let install_dir = endpoint.dir.path().join("Security Agent");
    std::fs::create_dir_all(install_dir.join("Temp")).unwrap();
    // ofcscan.ini: a standard update source (the shipped mapping's guess).
    let text = "[INI_UPDATE_SECTION]\r\nUpdateFromCustomSource=0\r\nCustomUpdateSource=\r\n";
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    std::fs::write(install_dir.join("ofcscan.ini"), bytes).unwrap();
    let certificate: &[u8] = if planted == Planted::WrongServerCertificate {
        b"another Apex One server's certificate"
    } else {
        b"the fleet's Apex One server certificate"
    };
    std::fs::write(install_dir.join("OfcNTCer.dat"), certificate).unwrap();
    let log = if planted == Planted::UpgradeRefused {
        format!("12/07 09:00:00 upgrade start\r\n12/07 09:00:02 [ERROR] {REFUSED}\r\n12/07 09:00:02 upgrade end\r\n")
    } else {
        "12/07 09:00:00 upgrade start\r\n12/07 09:00:40 upgrade end\r\n".to_string()
    };
    std::fs::write(install_dir.join("Temp").join("upgrade_20261207.log"), log).unwrap();

    let installed = if planted == Planted::Healthy {
        ACS_TARGET
    } else {
        ACS_INSTALLED
    };
    let today = time::OffsetDateTime::now_utc();
    let pattern_date = if planted == Planted::PatternsOnly {
        format!("{:04}{:02}{:02}", today.year(), u8::from(today.month()), today.day())
    } else {
        "20260101".to_string()
    };
    let last_update = if planted == Planted::PatternsOnly {
        today.unix_timestamp()
    } else {
        1_767_225_600
    };
    let update_from = if planted == Planted::ActiveUpdate {
        "https://osce14-p.activeupdate.trendmicro.com/activeupdate".to_string()
    } else {
        format!("https://127.0.0.1:{}/officescan/download", coordinator.port)
    };
    endpoint.reg_add(AGENT_KEY, "Application Path", "REG_SZ", &windows_path(&install_dir));
    endpoint.reg_add(
        AGENT_KEY,
        "server",
        "REG_SZ",
        &format!("127.0.0.1:{}", coordinator.port),
    );
    endpoint.reg_add(AGENT_KEY, "UpdateAgent", "REG_DWORD", "0");
    endpoint.reg_add(MISC_KEY, "ProgramVer", "REG_SZ", installed);
    endpoint.reg_add(MISC_KEY, "PatternVer", "REG_SZ", "19.851.00");
    endpoint.reg_add(MISC_KEY, "InternalPatternVer", "REG_SZ", "1985100");
    endpoint.reg_add(MISC_KEY, "PatternDate", "REG_SZ", &pattern_date);
    endpoint.reg_add(MISC_KEY, "UpdateFrom", "REG_SZ", &update_from);
    endpoint.reg_add(MISC_KEY, "TmListen_Ver", "REG_SZ", installed);
    endpoint.reg_add(UPDATE_INFO_KEY, "LastUpdate", "REG_DWORD", &last_update.to_string());
    endpoint.reg_add(
        UNINSTALL_KEY,
        "DisplayName",
        "REG_SZ",
        "Trend Micro Apex One Security Agent",
    );
    endpoint.reg_add(UNINSTALL_KEY, "DisplayVersion", "REG_SZ", installed);
    let (build, ubr) = if planted == Planted::NoAcsUpdate {
        ("19044", "1500")
    } else {
        ("19045", "5247")
    };
    endpoint.reg_add(WINDOWS_VERSION_KEY, "CurrentBuildNumber", "REG_SZ", build);
    endpoint.reg_add(WINDOWS_VERSION_KEY, "UBR", "REG_DWORD", ubr);
    // Only the planted endpoint waits for a restart (Wine may leave
    // pending renames of its own after wineboot).
    endpoint.reg_delete_value_if_present(
        r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager",
        "PendingFileRenameOperations",
    );
    if planted == Planted::RestartPending {
        endpoint.reg_add_key(REBOOT_REQUIRED_KEY);
    }

    endpoint.enroll(coordinator, token, &[]);
    let mapping_path = endpoint.data_dir().join("apex-one.toml");
    std::fs::write(&mapping_path, SHIPPED_MAPPING).unwrap();
    endpoint.edit_config(|config| {
        let mut product = toml::Table::new();
        product.insert("adapter".into(), "apex-one".into());
        product.insert("mapping".into(), windows_path(&mapping_path).into());
        product.insert("install_path".into(), windows_path(&install_dir).into());
        config.insert("product".into(), product.into());
    });
    endpoint
}

#[test]
fn apex_one_endpoints_under_wine_name_each_signal_of_a_stuck_upgrade() {
    let Some(exe) = windows_agent_exe() else {
        return;
    };
    let coordinator = Coordinator::started_for_rollouts();
    coordinator.apply_policy(
        "offline_after = \"60s\"\n[[update_source.expected]]\nsource = \"standard\"\n[connectivity]\ntimeout = \"3s\"\n",
    );
    let token = coordinator.token(&["--uses", "20", "--label", "site=osaka"]);
    let all = [
        Planted::Healthy,
        Planted::PatternsOnly,
        Planted::ActiveUpdate,
        Planted::NoAcsUpdate,
        Planted::WrongServerCertificate,
        Planted::UpgradeRefused,
        Planted::RestartPending,
    ];
    // Each endpoint is its own Wine prefix (its own registry): set up side by side.
    let mut endpoints: Vec<WineEndpoint> = std::thread::scope(|scope| {
        let handles: Vec<_> = all
            .iter()
            .map(|planted| {
                let (exe, coordinator, token) = (&exe, &coordinator, &token);
                scope.spawn(move || apex_endpoint(exe, coordinator, token, *planted))
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });

    // What the admin checks first on a machine: every field, its source,
    // verified or not, value or error; the unverified ones listed apart.
    let patterns = &endpoints[1];
    let shown = patterns.agent(&[
        "product",
        "show",
        "--config",
        &windows_path(&patterns.config_path()),
        "--output",
        "json",
    ]);
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    for field in shown["fields"].as_array().unwrap() {
        assert!(field["source"].is_string() && field["verified"].is_boolean(), "{field}");
        assert!(!field["value"].is_null() || field["error"].is_string(), "{field}");
    }
    let field = |name: &str| {
        shown["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|field| field["field"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("product show lacks {name}: {shown:#}"))
    };
    assert_eq!(field("version")["value"], ACS_INSTALLED, "{shown:#}");
    assert!(
        field("version")["source"].as_str().unwrap().contains("ProgramVer"),
        "{shown:#}"
    );
    assert_eq!(field("version")["verified"], true);
    assert_eq!(field("pattern.version")["value"], "19.851.00", "{shown:#}");
    assert_eq!(
        field("server.address")["value"],
        format!("127.0.0.1:{}", coordinator.port)
    );
    assert_eq!(
        field("server.certificate_sha256")["value"],
        hex::encode(sha2::Sha256::digest(b"the fleet's Apex One server certificate"))
    );
    assert_eq!(field("restart.pending")["value"], false, "{shown:#}");
    let unverified = shown["unverified"].as_array().unwrap();
    assert!(unverified.contains(&serde_json::json!("role")), "{shown:#}");
    assert!(!unverified.contains(&serde_json::json!("pattern.date")), "{shown:#}");

    for endpoint in &mut endpoints {
        endpoint.start();
    }
    for endpoint in &endpoints {
        endpoint.wait_online(&coordinator);
    }
    // Their first reports (product summary, adapter "apex-one") are in.
    assert!(
        wait_until(Duration::from_secs(120), || {
            let agents = coordinator.agents_by_hostname();
            all.iter().all(|planted| {
                agents
                    .get(planted.hostname())
                    .is_some_and(|agent| agent["version"].is_string())
            })
        }),
        "not every endpoint reported: {:#?}",
        coordinator.agents_by_hostname()
    );
    // No --grace: an Apex One fleet gets the product's default.
    let started = coordinator.cli_json(&["rollout", "start", "--target", ACS_TARGET]);
    assert_eq!(started["grace"], "1h 30m", "{started:#}");
    let cancelled = coordinator.cli(&["rollout", "cancel"]);
    assert!(
        cancelled.status.success(),
        "{}",
        String::from_utf8_lossy(&cancelled.stderr)
    );
    coordinator.start_rollout(ACS_TARGET, "1s", &["--recheck-every", "1s", "--max-attempts", "1"]);
    let recheck = coordinator.cli(&["recheck", "all"]);
    assert!(recheck.status.success(), "{}", String::from_utf8_lossy(&recheck.stderr));

    let expected = [
        (Planted::PatternsOnly, "update_permission", true, "PatternDate"),
        (
            Planted::ActiveUpdate,
            "update_source",
            false,
            "activeupdate.trendmicro.com",
        ),
        (Planted::NoAcsUpdate, "certificates", false, "KB5011487"),
        (Planted::WrongServerCertificate, "connectivity", false, "fleet majority"),
        (Planted::UpgradeRefused, "system_requirements", false, REFUSED),
    ];
    let mut last = BTreeMap::new();
    let settled = wait_until(Duration::from_secs(120), || {
        last = coordinator.stragglers();
        expected
            .iter()
            .all(|(planted, cause, _, _)| last.get(planted.hostname()).is_some_and(|s| s["cause"] == *cause))
    });
    let logs: Vec<String> = endpoints
        .iter()
        .map(|endpoint| format!("{}:\n{}", endpoint.hostname, endpoint.log()))
        .collect();
    assert!(settled, "stragglers: {last:#?}\nlogs:\n{}", logs.join("\n"));
    for (planted, cause, inferred, named) in expected {
        let straggler = &last[planted.hostname()];
        assert_eq!(straggler["inferred"], inferred, "{cause}: {straggler:#}");
        let evidence: Vec<&str> = straggler["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|item| item.as_str())
            .collect();
        assert!(
            evidence.iter().any(|item| item.contains(named)),
            "{cause} evidence names {named}: {straggler:#}"
        );
    }
    let patterns_evidence = last[Planted::PatternsOnly.hostname()]["evidence"].to_string();
    assert!(
        patterns_evidence.contains(r"Misc.\\PatternDate = "),
        "{patterns_evidence}"
    );
    assert!(!last.contains_key(Planted::Healthy.hostname()), "{last:#?}");
    assert!(!last.contains_key(Planted::RestartPending.hostname()), "{last:#?}");

    // The healthy one completed; the waiting one is awaiting_restart, apart.
    let agents = coordinator.agents_by_hostname();
    assert_eq!(agents[Planted::Healthy.hostname()]["state"], "completed", "{agents:#?}");
    assert_eq!(
        agents[Planted::RestartPending.hostname()]["state"],
        "awaiting_restart",
        "{agents:#?}"
    );
    let status = coordinator.cli_json(&["status"]);
    assert_eq!(status["awaiting_restart"], 1, "{status:#}");
    assert_eq!(status["completed"], 1, "{status:#}");
    assert_eq!(status["stragglers"], 5, "{status:#}");

    // The step-8 report names each signal, in English and in Japanese.
    let english = String::from_utf8_lossy(&coordinator.cli(&["report", "--lang", "en"]).stdout).to_string();
    for words in [
        "patterns arrive but the agent program does not",
        "inferred",
        "ActiveUpdate server",
        "KB5011487",
        "OfcNTCer.dat",
        "Client environment is not qualified",
        "Awaiting restart",
    ] {
        assert!(
            english.contains(words),
            "the English report names {words:?}:\n{english}"
        );
    }
    let japanese = String::from_utf8_lossy(&coordinator.cli(&["report", "--lang", "ja"]).stdout).to_string();
    for words in [
        "推定",
        "アップデート設定権限",
        "アップデート元",
        "OfcNTCer.dat",
        "再起動待ち",
        "KB5011487",
    ] {
        assert!(
            japanese.contains(words),
            "the Japanese report names {words:?}:\n{japanese}"
        );
    }
    for endpoint in &mut endpoints {
        endpoint.stop();
    }
}
