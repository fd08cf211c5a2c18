//! The MSI end to end (issue 28): the signed package `deploy/windows/build.sh
//! --msi` builds (path in `ROLLCALL_TEST_WINDOWS_MSI`, a newer one in
//! `ROLLCALL_TEST_WINDOWS_MSI_NEXT`), installed silently under Wine with
//! `msiexec /i … /qn` and its public properties against a real coordinator
//! on loopback: the endpoint enrols at install (the package's custom action
//! running the installed exe) and reports through the service the package
//! registered; the newer package upgrades it in place (same agent id,
//! identity kept); uninstalling removes the service and the program and
//! keeps `%ProgramData%\rollcall` (KEEP_DATA defaults to 1). A second
//! test installs while the coordinator is down: the service finishes the
//! enrolment on its own once it is up, and `KEEP_DATA=0` purges the data.
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
            rollcall_server::test_skip::skip(
                &format!("the MSI cannot be installed here: {why}"),
                &format!("set {MSI_VAR} and {MSI_NEXT_VAR} to what build.sh --msi prints, or run .ci/run, to run it"),
            );
            None
        }
    }
}

#[test]
fn the_msi_installs_enrols_upgrades_in_place_repairs_and_uninstalls_keeping_data_under_wine() {
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
    endpoint.keep_session_up();

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
    let source = event_source(&endpoint);
    assert!(
        source.contains("EventMessageFile") && source.contains("EventLogMessages.dll"),
        "the package registers the event log source rollcall-agent: {source}"
    );
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

    // Repair: a file of the package lost, a reinstall of the same package
    // (`REINSTALL=ALL`, the form Configuration Manager and Intune repairs
    // use; Wine's `msiexec /f` does not take a package path) puts it back;
    // the enrolled identity and the agent stay as they were.
    let readme = program.join("README-WINDOWS.md");
    std::fs::remove_file(&readme).unwrap();
    let (repaired, repair_log) = msiexec(
        &[
            "/i".to_string(),
            windows_path(&next_msi),
            "REINSTALL=ALL".to_string(),
            "REINSTALLMODE=omus".to_string(),
        ],
        "repair.log",
    );
    assert!(
        repaired.status.success(),
        "msiexec /i REINSTALL=ALL failed ({}):\n{repair_log}",
        repaired.status
    );
    assert!(readme.is_file(), "the repair put the lost file back:\n{repair_log}");
    assert_eq!(
        std::fs::read(data.join("identity/cert.pem")).unwrap(),
        certificate,
        "the identity is kept by a repair"
    );
    assert!(
        wait_until(Duration::from_secs(90), || coordinator.is_online(HOST)),
        "the service is not back after the repair:\n{}",
        service_log()
    );
    assert_eq!(
        coordinator.cli_json(&["agents"]).as_array().map(Vec::len),
        Some(1),
        "no second enrolment after the repair"
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
    assert!(
        !event_source(&endpoint).contains("EventMessageFile"),
        "the event log source goes with the package"
    );
}

/// `reg query` of the event log source the package registers.
fn event_source(endpoint: &WineEndpoint) -> String {
    let output = endpoint.run(endpoint.wine_command("wine").args([
        "reg",
        "query",
        r"HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\rollcall-agent",
        "/reg:64",
    ]));
    String::from_utf8_lossy(&output.stdout).to_string()
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
/// log that it keeps trying, logs each attempt, and once the coordinator
/// is up finishes the enrolment on its own and reports. The outcomes go to
/// the Windows event log too, which under Wine is a stub that keeps
/// nothing: what can be seen is that the agent made the calls, with its
/// text, and that they did not fail. Then `msiexec /x … KEEP_DATA=0`
/// removes `%ProgramData%\rollcall`.
#[test]
fn an_enrolment_that_fails_at_install_is_finished_by_the_service_and_keep_data_0_purges_under_wine() {
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
    endpoint.keep_session_up();
    // Wine's ReportEventW keeps nothing; it writes the event's text to its
    // `eventlog` debug channel, on the stderr of the process that called
    // it (setup, run by msiexec, whose stderr the test keeps).
    let log = endpoint.dir.path().join("install.log");
    let installed = endpoint.run(
        endpoint
            .wine_command("wine")
            .env("WINEDEBUG", WINEDEBUG_EVENTLOG)
            .arg("msiexec")
            .args([
                "/i".to_string(),
                windows_path(&first_msi),
                format!("COORDINATOR={}", coordinator.url()),
                format!("TOKENFILE={}", windows_path(&token_file)),
                format!("CA_FILE={}", windows_path(&coordinator.data_dir().join("ca.pem"))),
                format!("HOSTNAME={LATE}"),
                "ENROLL_TIMEOUT=3".to_string(),
                "/qn".to_string(),
                "/l*v".to_string(),
                windows_path(&log),
            ]),
    );
    let install_log = std::fs::read(&log).map(|bytes| decode_log(&bytes)).unwrap_or_default();
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
    let wine_stderr = String::from_utf8_lossy(&installed.stderr).to_string();
    rollcall_server::test_skip::skip_part(
        "the event log's contents",
        "Wine's event log is a stub (RegisterEventSourceW/ReportEventW succeed and keep nothing; Event Viewer and wevtutil show no events)",
        "check Event Viewer > Windows Logs > Application, source rollcall-agent, on a real Windows",
    );
    assert!(
        wine_stderr
            .lines()
            .any(|line| line.contains("eventlog:ReportEventW") && line.contains("did not finish")),
        "setup reported the unfinished enrolment to the event log (Wine's eventlog channel):\n{wine_stderr}"
    );
    assert!(
        wait_until(Duration::from_secs(60), || service_log(&data)
            .contains("enrolment pending")),
        "the service says it keeps trying:\n{}",
        service_log(&data)
    );
    // Each attempt is in the service's log (issue 28 point 4), with a hint.
    // (An attempt the coordinator's absence cuts short is logged as such;
    // one that hangs is given up with the round, and that is logged.)
    assert!(
        wait_until(Duration::from_secs(90), || {
            let said = service_log(&data);
            said.contains("enrolment attempt") || said.contains("round 1 failed")
        }),
        "the service logs each enrolment attempt:\n{}",
        service_log(&data)
    );
    assert!(
        service_log(&data).contains("reachable"),
        "an attempt says what to look at:\n{}",
        service_log(&data)
    );

    // The coordinator comes up: the service finishes on its own and reports.
    coordinator.start();
    assert!(
        wait_until(Duration::from_secs(240), || coordinator.is_online(LATE)),
        "the service never finished the enrolment and came online:\n{}",
        service_log(&data)
    );
    assert!(data.join("agent.toml").is_file(), "enrolled by the service");
    assert!(
        !data.join("pending-enrolment.toml").exists(),
        "the pending enrolment (it holds the token) is removed once used"
    );
    assert!(
        wait_until(Duration::from_secs(60), || {
            coordinator.agents_by_hostname()[LATE]["os_version"].is_string()
        }),
        "the endpoint never reported: {:#}",
        coordinator.agents_by_hostname()[LATE]
    );
    let said = service_log(&data);
    assert!(said.contains("which the installer could not finish"), "{said}");
    assert!(
        said.contains("written to the Windows event log") && !said.contains("could not write event"),
        "the service's event log calls were made and did not fail:\n{said}"
    );

    // KEEP_DATA=0: the data directory goes with the program.
    let (removed, remove_log) = msiexec(
        &endpoint,
        &["/x".to_string(), windows_path(&first_msi), "KEEP_DATA=0".to_string()],
        "uninstall.log",
    );
    assert!(
        removed.status.success(),
        "msiexec /x KEEP_DATA=0 failed ({}):\n{remove_log}",
        removed.status
    );
    assert!(
        !endpoint
            .prefix()
            .join("drive_c/Program Files/rollcall/rollcall-agent.exe")
            .exists(),
        "the program is removed"
    );
    assert!(
        wait_until(Duration::from_secs(30), || !data.exists()),
        "KEEP_DATA=0 removes %ProgramData%\\rollcall: {:?} is still there\n{remove_log}",
        std::fs::read_dir(&data).map(|entries| entries.flatten().map(|entry| entry.file_name()).collect::<Vec<_>>())
    );
}

/// Wine's debug channels with the event log's stub output only.
const WINEDEBUG_EVENTLOG: &str = "-all,trace+eventlog,warn+eventlog,err+eventlog";

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
