//! The MSI end to end (issue 28): the signed package `deploy/windows/build.sh
//! --msi` builds (path in `ROLLCALL_TEST_WINDOWS_MSI`, a newer one in
//! `ROLLCALL_TEST_WINDOWS_MSI_NEXT`), installed silently under Wine with
//! `msiexec /i … /qn` and its public properties against a real coordinator
//! on loopback: the endpoint enrols at install (the package's custom action
//! running the installed exe) and reports through the service the package
//! registered; the newer package upgrades it in place (same agent id,
//! identity kept); uninstalling removes the service and the program and
//! keeps `%ProgramData%\rollcall` (KEEP_DATA defaults to 1).
//!
//! Not shown by Wine, so not asserted here (docs/WINDOWS.md says where they
//! were verified): the service's recovery options (Wine's service manager
//! keeps them but never restarts a failed service), and the data
//! directory's ACL (Wine keeps no file ACLs; `secure-data-dir` runs, the
//! agent's check logs that it cannot look).
//!
//! Skips without the packages and Wine (a plain `cargo test`); CI sets
//! `ROLLCALL_REQUIRE_WINDOWS`, where it fails instead.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::{Coordinator, wait_until};
use crate::wine::{REQUIRE_VAR, WineEndpoint, windows_agent_exe, windows_path};

const MSI_VAR: &str = "ROLLCALL_TEST_WINDOWS_MSI";
const MSI_NEXT_VAR: &str = "ROLLCALL_TEST_WINDOWS_MSI_NEXT";
const HOST: &str = "win-msi-01";

/// Both packages, or `None` (after saying why) when the test must skip.
fn packages() -> Option<(PathBuf, PathBuf)> {
    let found =
        [MSI_VAR, MSI_NEXT_VAR].map(|var| std::env::var_os(var).map(PathBuf::from).filter(|path| path.is_file()));
    match found {
        [Some(first), Some(next)] => Some((first, next)),
        _ => {
            let why = format!(
                "{MSI_VAR} and {MSI_NEXT_VAR} must name the MSIs (deploy/windows/build.sh --msi prints the path)"
            );
            assert!(
                std::env::var_os(REQUIRE_VAR).is_none(),
                "{REQUIRE_VAR} is set but the MSI test cannot run: {why}"
            );
            eprintln!("skipping the MSI test: {why}");
            None
        }
    }
}

#[test]
fn the_msi_installs_enrols_upgrades_in_place_and_uninstalls_keeping_data_under_wine() {
    let Some(exe) = windows_agent_exe() else {
        return;
    };
    let Some((first_msi, next_msi)) = packages() else {
        return;
    };
    let mut coordinator = Coordinator::init();
    coordinator.start();
    let endpoint = WineEndpoint::new(&exe, HOST);
    let token_file = endpoint.dir.path().join("site.token");
    std::fs::write(&token_file, coordinator.token(&["--uses", "5"])).unwrap();
    let drive_c = endpoint.prefix().join("drive_c");
    let program = drive_c.join("Program Files/rollcall");
    let data = drive_c.join("ProgramData/rollcall");
    let msiexec = |args: &[String], log_name: &str| msiexec(&endpoint, args, log_name);
    let service_log = || service_log(&data);
    // Start from a settled machine (see WineEndpoint::reboot).
    endpoint.reboot();

    // A user made the data directory first, with a file of theirs in it:
    // the install resets it rather than trusting it (under Wine only the
    // reset itself is visible, not the ACL).
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("planted.txt"), "a user's file").unwrap();

    let (installed, install_log) = msiexec(
        &[
            "/i".to_string(),
            windows_path(&first_msi),
            format!("COORDINATOR={}", coordinator.url()),
            format!("TOKENFILE={}", windows_path(&token_file)),
            format!("CA_FILE={}", windows_path(&coordinator.data_dir().join("ca.pem"))),
            "LABELS=site=osaka,role=branch".to_string(),
            format!("HOSTNAME={HOST}"),
        ],
        "install.log",
    );
    assert!(
        installed.status.success(),
        "msiexec /i failed ({}):\n{install_log}",
        installed.status
    );
    assert!(
        install_log.contains("RollcallSetup. Return value 1"),
        "the custom action (the installed exe's setup) ran and succeeded:\n{install_log}"
    );
    assert!(program.join("rollcall-agent.exe").is_file(), "the program is installed");
    assert!(data.join("agent.toml").is_file(), "enrolled at install:\n{install_log}");
    assert!(data.join("apex-one.toml").is_file(), "the mapping is placed");
    assert!(
        !data.join("pending-enrolment.toml").exists(),
        "the enrolment finished at install"
    );
    assert!(
        wait_until(Duration::from_secs(90), || coordinator.is_online(HOST)),
        "the installed service never came online:\n{}\n{install_log}",
        service_log()
    );
    assert!(
        wait_until(Duration::from_secs(60), || {
            coordinator.agents_by_hostname()[HOST]["os_version"].is_string()
        }),
        "the endpoint never reported: {:#}",
        coordinator.agents_by_hostname()[HOST]
    );
    let agent = coordinator.agents_by_hostname()[HOST].clone();
    let id = agent["id"].as_str().unwrap_or_default().to_string();
    let labels = agent["labels"].to_string();
    assert!(
        labels.contains("osaka") && labels.contains("branch"),
        "LABELS reached the coordinator: {agent:#}"
    );
    let certificate = std::fs::read(data.join("identity/cert.pem")).unwrap();

    // A newer package over it: an upgrade in place.
    let (upgraded, upgrade_log) = msiexec(&["/i".to_string(), windows_path(&next_msi)], "upgrade.log");
    assert!(
        upgraded.status.success(),
        "msiexec /i (newer) failed ({}):\n{upgrade_log}",
        upgraded.status
    );
    assert!(
        upgrade_log.contains("RemoveExistingProducts. Return value 1"),
        "the newer package replaced the older one:\n{upgrade_log}"
    );
    assert_eq!(
        std::fs::read(data.join("identity/cert.pem")).unwrap(),
        certificate,
        "the identity is kept"
    );
    assert!(
        wait_until(Duration::from_secs(90), || coordinator.is_online(HOST)),
        "the upgraded service never came back:\n{}",
        service_log()
    );
    let agents = coordinator.agents_by_hostname();
    assert_eq!(
        agents[HOST]["id"].as_str(),
        Some(id.as_str()),
        "the same agent id after the upgrade"
    );
    assert_eq!(
        coordinator.cli_json(&["agents"]).as_array().map(Vec::len),
        Some(1),
        "no second enrolment"
    );

    // Uninstall: the service and the program go, the data stays.
    let (removed, remove_log) = msiexec(&["/x".to_string(), windows_path(&next_msi)], "uninstall.log");
    assert!(
        removed.status.success(),
        "msiexec /x failed ({}):\n{remove_log}",
        removed.status
    );
    assert!(!program.join("rollcall-agent.exe").exists(), "the program is removed");
    let service = endpoint.run(endpoint.wine_command("wine").args(["sc", "query", "rollcall-agent"]));
    let service_text = String::from_utf8_lossy(&service.stdout).to_string();
    assert!(
        !service_text.contains("RUNNING") && !service_text.contains("STOPPED"),
        "the service is removed: {service_text}"
    );
    assert!(
        wait_until(Duration::from_secs(60), || !coordinator.is_online(HOST)),
        "the uninstalled service still reports"
    );
    assert!(
        data.join("agent.toml").is_file() && data.join("identity/key.pem").is_file(),
        "KEEP_DATA=1 (the default) keeps the data directory"
    );
}

/// `msiexec ARGS /qn /l*v LOG` in the endpoint's prefix: its outcome and log.
fn msiexec(endpoint: &WineEndpoint, args: &[String], log_name: &str) -> (std::process::Output, String) {
    let log = endpoint.dir.path().join(log_name);
    let output = endpoint.run(endpoint.wine_command("wine").arg("msiexec").args(args).args([
        "/qn",
        "/l*v",
        &windows_path(&log),
    ]));
    let log_text = std::fs::read(&log).map(|bytes| decode_log(&bytes)).unwrap_or_default();
    (output, log_text)
}

/// The service's log files (`%ProgramData%\rollcall\logs`), concatenated.
fn service_log(data: &Path) -> String {
    std::fs::read_dir(data.join("logs"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| std::fs::read_to_string(entry.path()).unwrap_or_default())
        .collect()
}

/// An install whose enrolment cannot finish (the coordinator is down)
/// still succeeds: the enrolment is left to the service, which says in its
/// log that it keeps trying.
#[test]
fn an_enrolment_that_fails_at_install_does_not_fail_it_and_is_left_to_the_service_under_wine() {
    let Some(exe) = windows_agent_exe() else {
        return;
    };
    let Some((first_msi, _)) = packages() else {
        return;
    };
    const LATE: &str = "win-msi-late";
    let mut coordinator = Coordinator::init();
    coordinator.start();
    let endpoint = WineEndpoint::new(&exe, LATE);
    let token_file = endpoint.dir.path().join("site.token");
    std::fs::write(&token_file, coordinator.token(&[])).unwrap();
    coordinator.stop();
    let data = endpoint.prefix().join("drive_c/ProgramData/rollcall");
    endpoint.reboot();
    let (installed, install_log) = msiexec(
        &endpoint,
        &[
            "/i".to_string(),
            windows_path(&first_msi),
            format!("COORDINATOR={}", coordinator.url()),
            format!("TOKENFILE={}", windows_path(&token_file)),
            format!("CA_FILE={}", windows_path(&coordinator.data_dir().join("ca.pem"))),
            format!("HOSTNAME={LATE}"),
            "ENROLL_TIMEOUT=3".to_string(),
        ],
        "install.log",
    );
    assert!(
        installed.status.success(),
        "a failed enrolment must not fail the install ({}):\n{install_log}",
        installed.status
    );
    assert!(!data.join("agent.toml").exists(), "not enrolled yet");
    assert!(
        data.join("pending-enrolment.toml").is_file(),
        "the enrolment is left to the service"
    );
    assert!(
        wait_until(Duration::from_secs(60), || service_log(&data)
            .contains("enrolment pending")),
        "the service says it keeps trying:\n{}",
        service_log(&data)
    );
    // Not shown here: the service finishing the enrolment once the
    // coordinator is back. Under Wine the service process was seen to be
    // gone after logging the line above (no further attempts logged), so
    // the retry loop (agent/src/setup.rs, finish_pending) is not exercised
    // past its first round; docs/WINDOWS.md says so.
    // Not shown either: KEEP_DATA=0. Under Wine `msiexec /x … KEEP_DATA=0`
    // left the data directory in place (the purge custom action's outcome
    // is not visible in the log); it is documented as unverified.
}

/// msiexec writes its verbose log in UTF-16 (with a BOM) or the ANSI code page.
fn decode_log(bytes: &[u8]) -> String {
    if bytes.starts_with(&[0xff, 0xfe]) {
        let units: Vec<u16> = bytes[2..]
            .chunks_exact(2)
            .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    String::from_utf8_lossy(bytes).to_string()
}
