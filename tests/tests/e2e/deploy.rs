//! What `deploy/` and the docs promise an operator, checked with the real
//! tools: `systemd-analyze` on the units, `cargo deb` and `dpkg` on the
//! packages (built, inspected, installed, upgraded and removed in a
//! throwaway root), the configuration reference against the code, sd_notify
//! readiness of the real binaries, and a static lint of the container files
//! (no container engine runs on this machine).
//!
//! Tools: systemd-analyze, dpkg, dpkg-deb and cargo-deb; `.ci/run` installs
//! the missing ones and sets `ROLLCALL_REQUIRE_DEPLOY_TOOLS`, which turns a
//! missing tool into a failure. Without it (a developer machine without
//! Debian's tools) such a test says on stderr that it skipped and passes,
//! so `cargo test` keeps working on a fresh machine.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use rollcall_agent::config::AgentConfig;
use rollcall_common::policy::Policy;
use xtask::config_reference::{self, KeyDoc};

use crate::harness::{AGENT, CLI, Coordinator, SERVER, free_port, wait_until};

// === helpers ===

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace")
        .to_path_buf()
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(workspace().join(relative)).unwrap_or_else(|error| panic!("read {relative}: {error}"))
}

/// Runs `command` and returns its output, failing the test with both
/// streams when it does not succeed.
fn run(command: &mut Command) -> Output {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("start {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into())
}

/// Whether `program args…` runs; a missing tool fails the test when
/// `ROLLCALL_REQUIRE_DEPLOY_TOOLS` is set, else the caller skips.
fn have(program: impl AsRef<std::ffi::OsStr>, args: &[&str], what: &str) -> bool {
    let found = Command::new(program.as_ref())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        assert!(
            std::env::var_os("ROLLCALL_REQUIRE_DEPLOY_TOOLS").is_none(),
            "{what} is required (ROLLCALL_REQUIRE_DEPLOY_TOOLS is set); .ci/run installs it"
        );
        rollcall_server::test_skip::skip(
            &format!("{what} is not installed here"),
            "install it (.ci/run installs cargo-deb, dpkg-dev and systemd) to run it",
        );
    }
    found
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// `key=value` settings of a unit file's sections, in order (repeated keys
/// kept); comments and blank lines dropped.
fn unit_settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with('['))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
        .collect()
}

fn setting<'a>(settings: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    settings
        .iter()
        .filter(|(name, _)| name == key)
        .map(|(_, value)| value.as_str())
        .collect()
}

/// The default of a flag, as the reference generator reads it from clap.
fn flag_default(command: &str, long: &str) -> String {
    config_reference::commands()
        .into_iter()
        .filter(|doc| doc.path == command)
        .flat_map(|doc| doc.flags)
        .find(|flag| flag.long.as_deref() == Some(long))
        .and_then(|flag| flag.default)
        .unwrap_or_else(|| panic!("{command} --{long} has no default"))
}

/// Unit copies whose `/usr/bin/` programs point at `bin_dir`, written to
/// `dir`: `systemd-analyze verify` checks that every Exec* program exists.
fn units_with_programs_in(dir: &Path, replacements: &[(&str, &str)]) {
    for unit in ["rollcall-server.service", "rollcall-agent.service"] {
        let mut text = read(&format!("deploy/systemd/{unit}"));
        for (from, to) in replacements {
            text = text.replace(from, to);
        }
        std::fs::write(dir.join(unit), text).expect("write unit copy");
    }
}

/// `systemd-analyze verify`: it exits 0 even on unknown keys or bad values
/// (it only warns), so any output at all is a failure.
fn verify_units(units: &[PathBuf]) {
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .args(units)
        .stdin(Stdio::null())
        .output()
        .expect("run systemd-analyze verify");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "systemd-analyze verify {units:?} ({}):\n{said}",
        output.status
    );
}

// === systemd units ===

#[test]
fn systemd_units_are_hardened_and_pass_verify_and_the_security_review() {
    let server = unit_settings(&read("deploy/systemd/rollcall-server.service"));
    let agent = unit_settings(&read("deploy/systemd/rollcall-agent.service"));
    for (name, unit, user, validate) in [
        (
            "server",
            &server,
            "rollcall",
            "/usr/bin/rollcall-server validate --data-dir /var/lib/rollcall",
        ),
        (
            "agent",
            &agent,
            "rollcall-agent",
            "/usr/bin/rollcall-agent validate --config /var/lib/rollcall-agent/agent.toml",
        ),
    ] {
        assert_eq!(setting(unit, "Type"), ["notify"], "{name}: Type=notify (sd_notify)");
        assert_eq!(setting(unit, "User"), [user], "{name}: its own user");
        assert_eq!(setting(unit, "StateDirectory"), [user], "{name}: StateDirectory");
        assert_eq!(setting(unit, "ProtectSystem"), ["strict"], "{name}");
        assert_eq!(setting(unit, "NoNewPrivileges"), ["yes"], "{name}");
        assert_eq!(setting(unit, "ExecStartPre"), [validate], "{name}: validate first");
        assert_eq!(
            setting(unit, "RestartPreventExitStatus"),
            ["78"],
            "{name}: no restart loop on bad config"
        );
        assert!(
            !setting(unit, "CapabilityBoundingSet").is_empty(),
            "{name}: a capability bounding set"
        );
    }
    assert_eq!(
        setting(&server, "CapabilityBoundingSet"),
        [""],
        "the coordinator needs no capability"
    );
    assert_eq!(setting(&agent, "CapabilityBoundingSet"), ["CAP_DAC_READ_SEARCH"]);

    // One descriptor per agent connection: the limit must stay above what
    // the coordinator accepts by default, plus handshakes in progress.
    let limit: u64 = setting(&server, "LimitNOFILE")
        .first()
        .and_then(|value| value.parse().ok())
        .expect("LimitNOFILE is a number");
    let connections: u64 = flag_default("rollcall-server serve", "max-connections")
        .parse()
        .expect("number");
    let handshakes: u64 = flag_default("rollcall-server serve", "max-pending-handshakes")
        .parse()
        .expect("number");
    assert!(
        limit >= connections + handshakes + 1024,
        "LimitNOFILE={limit} is too low for --max-connections {connections} + --max-pending-handshakes {handshakes}"
    );

    if !have(
        "systemd-analyze",
        &["--version"],
        "systemd-analyze (apt-get install systemd)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    units_with_programs_in(
        dir.path(),
        &[("/usr/bin/rollcall-server", SERVER), ("/usr/bin/rollcall-agent", AGENT)],
    );
    let server_unit = dir.path().join("rollcall-server.service");
    let agent_unit = dir.path().join("rollcall-agent.service");

    // The offline security review scores the sandbox (0 best, 10 worst);
    // `--threshold` is in tenths. Keep the scores from creeping up.
    for (unit, threshold) in [(&server_unit, "20"), (&agent_unit, "30")] {
        let output = Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager", "--threshold", threshold])
            .arg(unit)
            .stdin(Stdio::null())
            .output()
            .expect("run systemd-analyze security");
        let text = stdout(&output);
        let overall = text
            .lines()
            .find(|line| line.contains("Overall exposure level"))
            .unwrap_or("no overall score");
        assert!(
            output.status.success(),
            "{}: exposure above {threshold}/100: {overall}\n{text}{}",
            unit.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    // The update-now drop-in, where systemd reads it: verified with the unit.
    let drop_in = dir.path().join("rollcall-agent.service.d");
    std::fs::create_dir(&drop_in).expect("mkdir drop-in dir");
    std::fs::write(
        drop_in.join("update-now.conf"),
        read("deploy/systemd/rollcall-agent-update-now.conf"),
    )
    .expect("write drop-in");
    verify_units(&[server_unit, agent_unit]);
}

// === Debian packages ===

/// `dpkg-deb -c`: path (without the leading `.`) → permission string.
fn package_contents(deb: &Path) -> BTreeMap<String, String> {
    let listing = stdout(&run(Command::new("dpkg-deb").arg("--contents").arg(deb)));
    listing
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let mode = fields.first()?;
            let path = fields.get(5)?.strip_prefix('.')?;
            Some((path.trim_end_matches('/').to_string(), mode.to_string()))
        })
        .collect()
}

fn control_field(deb: &Path, field: &str) -> String {
    stdout(&run(Command::new("dpkg-deb").arg("--field").arg(deb).arg(field)))
        .trim()
        .to_string()
}

/// A `dpkg` running against `root` instead of `/`. Maintainer scripts run
/// outside a chroot (`--force-script-chrootless`) with `DPKG_ROOT` set, and
/// ours honour it: this is a full install into a fake root, scripts and
/// all, not `dpkg -x`. `--force-depends`: the root has no libc6 or systemd
/// package registered (their programs are the host's).
fn dpkg(root: &Path) -> Command {
    let mut command = Command::new("dpkg");
    command
        .arg(format!("--root={}", root.display()))
        .arg(format!("--log={}", root.join("dpkg.log").display()))
        .args(["--force-script-chrootless", "--force-depends", "--force-not-root"]);
    // dpkg insists on finding ldconfig and start-stop-daemon in PATH.
    let path = std::env::var("PATH").unwrap_or_default();
    command.env("PATH", format!("{path}:/usr/local/sbin:/usr/sbin:/sbin"));
    command
}

fn passwd_entry(root: &Path, user: &str) -> Option<Vec<String>> {
    std::fs::read_to_string(root.join("etc/passwd"))
        .ok()?
        .lines()
        .map(|line| line.split(':').map(str::to_string).collect::<Vec<_>>())
        .find(|fields| fields.first().map(String::as_str) == Some(user))
}

#[test]
fn debian_packages_build_hold_their_files_and_install_upgrade_and_remove_in_a_throwaway_root() {
    if !have(
        cargo(),
        &["deb", "--version"],
        "cargo-deb (cargo install cargo-deb --locked)",
    ) || !have("dpkg-deb", &["--version"], "dpkg-deb")
        || !have("dpkg", &["--version"], "dpkg")
    {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");

    // Build without building: `cargo deb --no-build` takes the binaries from
    // <target dir>/release/. This test run already built the same programs
    // as rct-* (each is the one-line main of the real binary), so they are
    // placed there under their real names in a target dir of the test's
    // own, instead of a release build that would cost CI minutes. `--strip`
    // keeps the packages small; `--fast` compresses quickly.
    let target = work.path().join("target");
    let release = target.join("release");
    std::fs::create_dir_all(&release).expect("mkdir target/release");
    for (built, name) in [
        (SERVER, "rollcall-server"),
        (CLI, "rollcall"),
        (AGENT, "rollcall-agent"),
    ] {
        std::fs::copy(built, release.join(name)).expect("place binary");
    }
    let debs = work.path().join("debs");
    std::fs::create_dir_all(&debs).expect("mkdir debs");
    for package in ["rollcall-server", "rollcall-agent"] {
        run(Command::new(cargo())
            .args([
                "deb",
                "--package",
                package,
                "--no-build",
                "--locked",
                "--strip",
                "--fast",
                "--output",
            ])
            .arg(&debs)
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(workspace()));
    }
    let deb_of = |package: &str| -> PathBuf {
        std::fs::read_dir(&debs)
            .expect("list debs")
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with(&format!("{package}_")) && name.ends_with(".deb"))
            })
            .unwrap_or_else(|| panic!("no {package}_*.deb in {}", debs.display()))
    };
    let server_deb = deb_of("rollcall-server");
    let agent_deb = deb_of("rollcall-agent");

    // --- what the packages hold
    let expected = [
        (
            &server_deb,
            vec![
                ("/usr/bin/rollcall-server", "-rwxr-xr-x"),
                ("/usr/bin/rollcall", "-rwxr-xr-x"),
                ("/usr/lib/systemd/system/rollcall-server.service", "-rw-r--r--"),
                ("/usr/lib/sysusers.d/rollcall-server.conf", "-rw-r--r--"),
                ("/usr/lib/tmpfiles.d/rollcall-server.conf", "-rw-r--r--"),
                ("/etc/rollcall/server.env", "-rw-------"),
                ("/usr/share/doc/rollcall-server/examples/policy.toml", "-rw-r--r--"),
                ("/usr/share/doc/rollcall-server/OPERATIONS.md", "-rw-r--r--"),
                ("/usr/share/doc/rollcall-server/CONFIGURATION.md", "-rw-r--r--"),
            ],
        ),
        (
            &agent_deb,
            vec![
                ("/usr/bin/rollcall-agent", "-rwxr-xr-x"),
                ("/usr/lib/systemd/system/rollcall-agent.service", "-rw-r--r--"),
                ("/usr/lib/sysusers.d/rollcall-agent.conf", "-rw-r--r--"),
                ("/usr/lib/tmpfiles.d/rollcall-agent.conf", "-rw-r--r--"),
                ("/etc/rollcall/agent.toml.example", "-rw-r--r--"),
                ("/usr/share/doc/rollcall-agent/examples/update-now.conf", "-rw-r--r--"),
                ("/usr/share/doc/rollcall-agent/OPERATIONS.md", "-rw-r--r--"),
                ("/usr/share/doc/rollcall-agent/CONFIGURATION.md", "-rw-r--r--"),
            ],
        ),
    ];
    for (deb, files) in &expected {
        let contents = package_contents(deb);
        for (path, mode) in files {
            assert_eq!(
                contents.get(*path).map(String::as_str),
                Some(*mode),
                "{path} in {}: {contents:?}",
                deb.display()
            );
        }
        let binaries: Vec<&String> = contents.keys().filter(|path| path.starts_with("/usr/bin/")).collect();
        assert_eq!(
            binaries.len(),
            files.iter().filter(|(path, _)| path.starts_with("/usr/bin/")).count()
        );
    }
    assert!(!package_contents(&agent_deb).contains_key("/usr/bin/rollcall-server"));
    for (deb, package, conffile) in [
        (&server_deb, "rollcall-server", "/etc/rollcall/server.env"),
        (&agent_deb, "rollcall-agent", "/etc/rollcall/agent.toml.example"),
    ] {
        assert_eq!(control_field(deb, "Package"), package);
        let depends = control_field(deb, "Depends");
        assert!(
            depends.contains("libc6") && depends.contains("systemd | adduser"),
            "Depends: {depends}"
        );
        let conffiles = stdout(&run(Command::new("dpkg-deb").arg("--info").arg(deb).arg("conffiles")));
        assert_eq!(conffiles.trim(), conffile, "{package} conffiles");
        for script in ["postinst", "prerm", "postrm"] {
            let text = stdout(&run(Command::new("dpkg-deb").arg("--info").arg(deb).arg(script)));
            assert!(text.starts_with("#!/bin/sh"), "{package} {script}: {text}");
        }
    }

    // --- a real install into a throwaway root
    if !is_root() {
        assert!(
            std::env::var_os("ROLLCALL_REQUIRE_DEPLOY_TOOLS").is_none(),
            "installing the packages needs root (CI runs as root)"
        );
        rollcall_server::test_skip::skip_part(
            "the install into a throwaway root",
            "it needs root (systemd-tmpfiles chowns)",
            "run the tests as root, as .ci/run does, to run it",
        );
        return;
    }
    let root = work.path().join("root");
    for dir in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
        "etc",
    ] {
        std::fs::create_dir_all(root.join(dir)).expect("mkdir root");
    }
    for file in ["var/lib/dpkg/status", "var/lib/dpkg/available"] {
        std::fs::write(root.join(file), "").expect("dpkg database");
    }
    let host_passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    run(dpkg(&root).arg("--install").arg(&server_deb).arg(&agent_deb));
    for package in ["rollcall-server", "rollcall-agent"] {
        let status = stdout(&run(dpkg(&root).args(["--status", package])));
        assert!(status.contains("Status: install ok installed"), "{status}");
    }
    // The postinst created each service user (systemd-sysusers, into the
    // root's /etc/passwd) and its private data dir (systemd-tmpfiles).
    let mut uids = BTreeMap::new();
    for (user, home) in [
        ("rollcall", "/var/lib/rollcall"),
        ("rollcall-agent", "/var/lib/rollcall-agent"),
    ] {
        let entry = passwd_entry(&root, user).unwrap_or_else(|| panic!("no {user} in the root's /etc/passwd"));
        assert_eq!(entry.get(5).map(String::as_str), Some(home), "{user} home");
        assert_eq!(
            entry.get(6).map(String::as_str),
            Some("/usr/sbin/nologin"),
            "{user} shell"
        );
        let uid: u32 = entry.get(2).and_then(|uid| uid.parse().ok()).expect("numeric uid");
        assert_ne!(uid, 0, "{user} is not root");
        let data_dir = std::fs::metadata(root.join(home.trim_start_matches('/'))).expect("data dir exists");
        assert!(data_dir.is_dir());
        assert_eq!(data_dir.permissions().mode() & 0o777, 0o700, "{home} mode");
        assert_eq!(data_dir.uid(), uid, "{home} owned by {user}");
        uids.insert(user, uid);
    }
    assert_eq!(
        std::fs::read_to_string("/etc/passwd").unwrap_or_default(),
        host_passwd,
        "the maintainer scripts honour DPKG_ROOT: the host's users are untouched"
    );

    // The installed programs work: what ExecStartPre runs, on the shipped
    // example config and on a data dir the installed server created.
    let installed = |name: &str| root.join("usr/bin").join(name);
    run(Command::new(installed("rollcall")).arg("--version"));
    let agent_validate = run(Command::new(installed("rollcall-agent"))
        .args(["validate", "--config"])
        .arg(root.join("etc/rollcall/agent.toml.example")));
    assert!(stdout(&agent_validate).contains("is valid"));
    let data_dir = root.join("var/lib/rollcall");
    run(Command::new(installed("rollcall-server"))
        .args(["init", "--data-dir"])
        .arg(&data_dir));
    run(Command::new(installed("rollcall-server"))
        .args(["validate", "--data-dir"])
        .arg(&data_dir));

    // The installed units, with their programs at the installed binaries.
    if have("systemd-analyze", &["--version"], "systemd-analyze") {
        let units = work.path().join("installed-units");
        std::fs::create_dir(&units).expect("mkdir");
        let bin = format!("{}/", root.join("usr/bin").display());
        for unit in ["rollcall-server.service", "rollcall-agent.service"] {
            let text = std::fs::read_to_string(root.join("usr/lib/systemd/system").join(unit)).expect("installed unit");
            std::fs::write(units.join(unit), text.replace("/usr/bin/", &bin)).expect("write");
        }
        verify_units(&[
            units.join("rollcall-server.service"),
            units.join("rollcall-agent.service"),
        ]);
    }

    // An upgrade (the same version again runs the same scripts with the old
    // version in $2): an operator's edit of the conffile survives, the users
    // keep their ids, the data stays.
    let server_env = root.join("etc/rollcall/server.env");
    let mut edited = std::fs::read_to_string(&server_env).expect("read server.env");
    edited.push_str("ROLLCALL_LISTEN=0.0.0.0:7443\n");
    std::fs::write(&server_env, &edited).expect("edit server.env");
    run(dpkg(&root).args(["--force-confold", "--install"]).arg(&server_deb));
    assert_eq!(std::fs::read_to_string(&server_env).expect("read"), edited);
    assert_eq!(
        passwd_entry(&root, "rollcall").and_then(|entry| entry.get(2).and_then(|uid| uid.parse::<u32>().ok())),
        uids.get("rollcall").copied()
    );
    assert!(data_dir.join("ca.pem").exists(), "the data dir survives an upgrade");

    // Remove keeps conffiles; purge drops them; the data dirs (CA key,
    // store, agent identity) stay on purpose.
    run(dpkg(&root).args(["--remove", "rollcall-agent"]));
    assert!(!installed("rollcall-agent").exists());
    assert!(root.join("etc/rollcall/agent.toml.example").exists());
    run(dpkg(&root).args(["--purge", "rollcall-agent", "rollcall-server"]));
    assert!(!installed("rollcall-server").exists() && !installed("rollcall").exists());
    assert!(!server_env.exists() && !root.join("etc/rollcall/agent.toml.example").exists());
    assert!(!root.join("usr/lib/systemd/system/rollcall-server.service").exists());
    assert!(data_dir.join("ca.pem").exists(), "purge keeps the coordinator's data");
    assert!(root.join("var/lib/rollcall-agent").is_dir());
}

// === sd_notify ===

/// Waits for a datagram on `socket` holding `state` (`READY=1`), keeping
/// what arrives in `seen` for the failure message.
fn wait_for_state(socket: &UnixDatagram, state: &str, seen: &mut Vec<String>, timeout: Duration) -> bool {
    let mut buffer = [0u8; 4096];
    wait_until(timeout, || {
        while let Ok(length) = socket.recv(&mut buffer) {
            seen.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
        }
        seen.iter().any(|message| message.lines().any(|line| line == state))
    })
}

fn notify_socket(dir: &Path) -> (PathBuf, UnixDatagram) {
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
    socket.set_nonblocking(true).expect("nonblocking");
    (path, socket)
}

fn terminate(pid: u32) {
    run(Command::new("kill").args(["-TERM", &pid.to_string()]));
}

#[test]
fn coordinator_and_agent_tell_systemd_when_they_are_ready_and_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");

    // The coordinator: READY=1 only once its port accepts connections,
    // STOPPING=1 as soon as SIGTERM starts the drain.
    let (socket_path, socket) = notify_socket(dir.path());
    let mut coordinator = Coordinator::init();
    let log = std::fs::File::create(coordinator.log_path()).expect("log");
    let child = Command::new(SERVER)
        .arg("serve")
        .arg("--data-dir")
        .arg(coordinator.data_dir())
        .args(["--listen", &format!("127.0.0.1:{}", coordinator.port)])
        .env("NOTIFY_SOCKET", &socket_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn coordinator");
    let pid = child.id();
    coordinator.child = Some(child);
    let mut seen = Vec::new();
    assert!(
        wait_for_state(&socket, "READY=1", &mut seen, Duration::from_secs(30)),
        "no READY=1 from the coordinator: {seen:?}\n{}",
        coordinator.log()
    );
    std::net::TcpStream::connect(("127.0.0.1", coordinator.port)).expect("the port accepts once READY=1 is sent");
    terminate(pid);
    assert!(
        wait_for_state(&socket, "STOPPING=1", &mut seen, Duration::from_secs(15)),
        "no STOPPING=1 after SIGTERM: {seen:?}\n{}",
        coordinator.log()
    );
    let mut child = coordinator.child.take().expect("child");
    assert!(child.wait().expect("wait").success(), "{}", coordinator.log());

    // The agent: READY=1 when its runner starts, even with its coordinator
    // away (it spools and retries), and a clean exit on SIGTERM.
    let agent_dir = dir.path().join("agent");
    std::fs::create_dir(&agent_dir).expect("mkdir");
    let config = agent_dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "coordinator = \"https://127.0.0.1:{}\"\ndata_dir = \"{}\"\ncheck_interval = \"1h\"\n",
            free_port(),
            agent_dir.join("data").display()
        ),
    )
    .expect("write agent.toml");
    let (agent_socket_path, agent_socket) = notify_socket(&agent_dir);
    let agent = Command::new(AGENT)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("NOTIFY_SOCKET", &agent_socket_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn agent");
    let mut agent_seen = Vec::new();
    let ready = wait_for_state(&agent_socket, "READY=1", &mut agent_seen, Duration::from_secs(30));
    terminate(agent.id());
    let exit = agent.wait_with_output().expect("wait agent");
    assert!(
        ready,
        "no READY=1 from the agent: {agent_seen:?}\n{}",
        String::from_utf8_lossy(&exit.stderr)
    );
    assert!(exit.status.success(), "{}", String::from_utf8_lossy(&exit.stderr));
}

// === the configuration reference ===

#[test]
fn configuration_reference_is_generated_from_the_current_code() {
    let generated = config_reference::render();
    let committed = read("docs/CONFIGURATION.md");
    if generated != committed {
        let (line, committed_line, generated_line) = generated
            .lines()
            .chain(std::iter::repeat(""))
            .zip(committed.lines().chain(std::iter::repeat("")))
            .enumerate()
            .find(|(_, (new, old))| new != old)
            .map(|(index, (new, old))| (index + 1, old, new))
            .unwrap_or((0, "", ""));
        panic!(
            "docs/CONFIGURATION.md does not match the code (line {line}: the file says {committed_line:?}, the code \
             {generated_line:?}); run `{}`",
            config_reference::REGENERATE
        );
    }
}

fn keys_of(docs: &[KeyDoc]) -> BTreeSet<String> {
    docs.iter().map(|doc| doc.key.to_string()).collect()
}

/// The documented keys and the examples' keys are the same set, and every
/// key the code writes back is documented.
fn check_keys(file: &str, docs: &[KeyDoc], examples: &[toml::Table], written: &[toml::Table]) {
    let documented = keys_of(docs);
    let keys = |tables: &[toml::Table]| -> BTreeSet<String> {
        tables
            .iter()
            .flat_map(|table| config_reference::flatten(table, docs).into_keys())
            .collect()
    };
    let in_example = keys(examples);
    let in_code = keys(written);
    let not_in_example: Vec<&String> = documented.difference(&in_example).collect();
    assert!(
        not_in_example.is_empty(),
        "documented in xtask/src/config_reference.rs but not set in {file}: {not_in_example:?}"
    );
    let undocumented: Vec<&String> = in_example
        .union(&in_code)
        .filter(|key| !documented.contains(*key))
        .collect();
    assert!(
        undocumented.is_empty(),
        "keys missing from xtask/src/config_reference.rs (and so from docs/CONFIGURATION.md): {undocumented:?}"
    );
}

/// A key either has a default in the code or says what its absence means,
/// never both (the hand-written text would hide the real default).
fn check_defaults(docs: &[KeyDoc], defaults: &BTreeMap<String, toml::Value>) {
    for doc in docs {
        match (defaults.contains_key(doc.key), doc.absent) {
            (true, Some(text)) => panic!(
                "{} has a default in the code ({}) but the reference says {text:?}",
                doc.key, defaults[doc.key]
            ),
            (false, None) => panic!("{} has no default in the code: give it an `absent` text", doc.key),
            _ => {}
        }
    }
    for key in defaults.keys() {
        assert!(
            docs.iter().any(|doc| doc.key == key),
            "default for undocumented key {key}"
        );
    }
}

#[test]
fn agent_example_sets_every_documented_key_and_only_real_ones() {
    let text = read("deploy/examples/agent.toml");
    // `state_file` and `state_command` exclude each other: the example sets
    // the first and shows the second commented out. The variant with the
    // second in place of the first must be valid too.
    let variant: String = text
        .lines()
        .filter(|line| !line.starts_with("state_file = "))
        .map(|line| {
            line.strip_prefix("# state_command = ")
                .map_or(line.to_string(), |rest| format!("state_command = {rest}"))
        })
        .map(|line| line + "\n")
        .collect();
    // The Apex One adapter replaces `state_file` with `adapter` and `mapping`,
    // shown commented out the same way.
    let apex_one: String = text
        .lines()
        .filter(|line| !line.starts_with("state_file = "))
        .map(|line| {
            ["adapter = ", "mapping = "]
                .iter()
                .find_map(|key| line.strip_prefix("# ").filter(|rest| rest.starts_with(key)))
                .unwrap_or(line)
                .to_string()
                + "\n"
        })
        .collect();
    let mut examples = Vec::new();
    let mut written = Vec::new();
    for (name, text) in [
        ("deploy/examples/agent.toml", &text),
        ("its state_command variant", &variant),
        ("its apex-one variant", &apex_one),
    ] {
        // Unknown keys are refused, so parsing proves every key is real.
        let config = AgentConfig::from_toml_str(text).unwrap_or_else(|error| panic!("{name} parses: {error:#}"));
        config
            .validate_for_run()
            .unwrap_or_else(|error| panic!("{name} is complete enough for `run`: {error:#}"));
        examples.push(text.parse::<toml::Table>().expect("toml"));
        let toml::Value::Table(table) = toml::Value::try_from(&config).expect("serialize") else {
            panic!("agent config is a table");
        };
        written.push(table);
    }
    assert_ne!(variant, text, "the example shows `# state_command = …`");
    assert!(
        apex_one.contains("\nadapter = \"apex-one\"\n") && apex_one.contains("\nmapping = "),
        "the example shows `# adapter = \"apex-one\"` and `# mapping = …`"
    );
    check_keys(
        "deploy/examples/agent.toml",
        config_reference::AGENT_KEYS,
        &examples,
        &written,
    );
    check_defaults(
        config_reference::AGENT_KEYS,
        &config_reference::agent_defaults().expect("agent defaults"),
    );
}

#[test]
fn policy_example_sets_every_documented_key_and_only_real_ones() {
    let shipped = read("deploy/examples/policy.toml");
    assert!(Policy::from_toml_str(&shipped).is_err(), "its placeholders are refused");
    let text = rollcall_common::policy::fill_example(&shipped);
    let policy = Policy::from_toml_str(&text).expect("deploy/examples/policy.toml parses once filled in");
    let example: toml::Table = text.parse().expect("toml");
    let written: toml::Table = toml::from_str(&policy.to_toml_string().expect("write policy")).expect("toml");
    check_keys(
        "deploy/examples/policy.toml",
        config_reference::POLICY_KEYS,
        &[example],
        &[written],
    );
    check_defaults(
        config_reference::POLICY_KEYS,
        &config_reference::policy_defaults().expect("policy defaults"),
    );
}

/// `"ROLLCALL_…"` string literals in a source text.
fn rollcall_names(text: &str) -> Vec<String> {
    text.match_indices("\"ROLLCALL_")
        .filter_map(|(start, _)| {
            let rest = text.get(start + 1..)?;
            let end = rest.find('"')?;
            let name = rest.get(..end)?;
            name.chars()
                .all(|character| character.is_ascii_uppercase() || character.is_ascii_digit() || character == '_')
                .then(|| name.to_string())
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read source dir").filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rollcall_environment_variable_in_the_sources_is_documented() {
    let mut files = Vec::new();
    for crate_dir in ["common/src", "agent/src", "server/src", "cli/src", "xtask/src"] {
        rust_files(&workspace().join(crate_dir), &mut files);
    }
    let documented = config_reference::documented_env_vars();
    let mut found = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read source");
        for name in rollcall_names(&text) {
            // Test switches (ROLLCALL_TEST_DATABASE_URL) configure the test
            // suites, not rollcall.
            if !name.starts_with("ROLLCALL_TEST_") {
                found.insert((name, file.clone()));
            }
        }
    }
    assert!(
        found.iter().any(|(name, _)| name == "ROLLCALL_LISTEN"),
        "the scan finds the flags' variables"
    );
    let missing: Vec<String> = found
        .iter()
        .filter(|(name, _)| !documented.contains(name))
        .map(|(name, file)| format!("{name} ({})", file.display()))
        .collect();
    assert!(
        missing.is_empty(),
        "environment variables read but not in docs/CONFIGURATION.md: {missing:?}; give them a clap `env =` or an \
         OTHER_ENV entry in xtask/src/config_reference.rs"
    );
}

#[test]
fn server_env_example_names_only_variables_the_coordinator_reads() {
    let mut known = config_reference::flag_env_vars("rollcall-server serve");
    for doc in config_reference::OTHER_ENV {
        known.extend(doc.names.iter().map(|name| name.to_string()));
    }
    let text = read("deploy/examples/server.env");
    let mut named = Vec::new();
    for line in text.lines() {
        let setting = line.trim_start_matches('#').trim();
        if let Some((name, _)) = setting.split_once('=')
            && !name.is_empty()
            && name
                .chars()
                .all(|character| character.is_ascii_uppercase() || character.is_ascii_digit() || character == '_')
        {
            named.push(name.to_string());
        }
    }
    assert!(named.len() >= 5, "server.env shows the common settings: {named:?}");
    let unknown: Vec<&String> = named.iter().filter(|name| !known.contains(*name)).collect();
    assert!(
        unknown.is_empty(),
        "deploy/examples/server.env names variables `rollcall-server serve` does not read: {unknown:?}"
    );
}

// === container files (static: no container engine runs here) ===

/// One instruction: keyword (upper case) and the rest, continuation lines
/// joined, comments dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    joined
        .into_iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (keyword, rest) = line.trim().split_once(char::is_whitespace).unwrap_or((line.trim(), ""));
            (keyword.to_ascii_uppercase(), rest.trim().to_string())
        })
        .collect()
}

#[test]
fn containerfiles_are_multi_stage_non_root_and_fetch_nothing_at_build_time() {
    for (name, binary) in [("server", "rollcall-server"), ("agent", "rollcall-agent")] {
        let file = format!("deploy/container/Containerfile.{name}");
        let text = read(&file);
        let all = instructions(&text);
        let stages: Vec<usize> = all
            .iter()
            .enumerate()
            .filter(|(_, (keyword, _))| keyword == "FROM")
            .map(|(index, _)| index)
            .collect();
        assert!(stages.len() >= 2, "{file}: multi-stage (build, then runtime)");
        for index in &stages {
            let image = all[*index].1.split_whitespace().next().unwrap_or_default();
            let tag = image
                .rsplit('/')
                .next()
                .and_then(|last| last.split_once(':'))
                .map(|(_, tag)| tag);
            assert!(
                tag.is_some_and(|tag| tag != "latest"),
                "{file}: {image} names a tag, not latest"
            );
        }
        let build = &all[stages[0]].1;
        assert!(
            build.to_lowercase().ends_with(" as build"),
            "{file}: the first stage is `AS build`"
        );
        let runtime = &all[*stages.last().expect("a stage")..];
        let runtime_image = &runtime[0].1;
        assert!(
            runtime_image.contains("distroless") || runtime_image.contains("-slim"),
            "{file}: a minimal runtime image, not {runtime_image}"
        );
        assert!(
            !runtime.iter().any(|(keyword, _)| keyword == "RUN"),
            "{file}: nothing runs in the runtime stage (no shell there)"
        );
        let user = runtime
            .iter()
            .rev()
            .find(|(keyword, _)| keyword == "USER")
            .map(|(_, user)| user.split(':').next().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("{file}: the runtime stage sets USER"));
        assert!(
            user != "root" && user != "0" && !user.is_empty(),
            "{file}: non-root USER, not {user}"
        );
        assert!(
            !all.iter()
                .any(|(keyword, rest)| keyword == "ADD" && (rest.contains("://") || rest.contains("git@"))),
            "{file}: no ADD of URLs (unpinned, unverified downloads)"
        );
        assert!(
            runtime
                .iter()
                .any(|(keyword, rest)| keyword == "COPY" && rest.starts_with("--from=build")),
            "{file}: the runtime takes the binary from the build stage"
        );
        let entrypoint = runtime
            .iter()
            .find(|(keyword, _)| keyword == "ENTRYPOINT")
            .map(|(_, rest)| rest.as_str())
            .unwrap_or_default();
        assert!(
            entrypoint.starts_with('[') && entrypoint.contains(binary),
            "{file}: exec-form ENTRYPOINT running {binary}: {entrypoint}"
        );
        assert!(
            all.iter()
                .any(|(keyword, rest)| keyword == "RUN" && rest.contains("cargo build --release --locked")),
            "{file}: a locked release build"
        );
        let ignore = read(&format!("{file}.dockerignore"));
        assert!(
            ignore.lines().any(|line| line.trim() == "target/"),
            "{file}.dockerignore keeps target/ out of the build context"
        );
    }
    let agent = read("deploy/container/Containerfile.agent");
    assert!(
        agent.contains("host_root = \"/host\"") && agent.contains("-v /:/host:ro"),
        "the agent image documents the host_root convention"
    );
    // What the agent file tells operators to write must parse.
    AgentConfig::from_toml_str("host_root = \"/host\"\n[product]\nstate_file = \"/host/var/opt/product/state.toml\"\n")
        .expect("the container's agent.toml settings parse");
}
