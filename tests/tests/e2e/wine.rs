//! The Windows probe under Wine: a real `rollcall-agent.exe` (cross-built by
//! `deploy/windows/build.sh`, path in `ROLLCALL_TEST_WINDOWS_AGENT`) in a Wine
//! prefix of its own, so each endpoint has its own registry and certificate
//! stores to plant causes in.
//!
//! Without the .exe (a plain `cargo test` on a machine with no Wine) the
//! Windows tests skip and say so; with `ROLLCALL_REQUIRE_WINDOWS` set (CI)
//! they fail instead, like the PostgreSQL tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::harness::{Coordinator, wait_until};

pub const AGENT_EXE_VAR: &str = "ROLLCALL_TEST_WINDOWS_AGENT";
pub const REQUIRE_VAR: &str = "ROLLCALL_REQUIRE_WINDOWS";

/// The cross-built agent, or `None` (after saying why) when the test must skip.
pub fn windows_agent_exe() -> Option<PathBuf> {
    let required = std::env::var_os(REQUIRE_VAR).is_some();
    let exe = std::env::var_os(AGENT_EXE_VAR).map(PathBuf::from);
    let wine = Command::new("wine")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    match exe {
        Some(exe) if exe.is_file() && wine => Some(exe),
        other => {
            let why = match other {
                None => format!("{AGENT_EXE_VAR} is not set (deploy/windows/build.sh prints the path)"),
                Some(exe) if !exe.is_file() => format!("{} does not exist", exe.display()),
                Some(_) => "wine is not installed".to_string(),
            };
            assert!(
                !required,
                "{REQUIRE_VAR} is set but the Windows probe cannot run: {why}"
            );
            rollcall_server::test_skip::skip(
                &format!("the Windows probe cannot run here: {why}"),
                &format!(
                    "install wine and set {AGENT_EXE_VAR} to the .exe deploy/windows/build.sh prints, or run .ci/run, to run it"
                ),
            );
            None
        }
    }
}

/// Runs a Wine command to completion with its output in files, not pipes:
/// Wine's service processes (started by the first command in a prefix)
/// inherit the pipes and keep them open, so `Command::output` would wait
/// for them forever.
pub fn output_via_files(command: &mut Command, dir: &Path) -> Output {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let stdout_path = dir.join(format!("wine-{n}.out"));
    let stderr_path = dir.join(format!("wine-{n}.err"));
    let status = command
        .stdout(std::fs::File::create(&stdout_path).expect("create stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("create stderr file"))
        .status()
        .expect("run a wine command");
    let output = Output {
        status,
        stdout: std::fs::read(&stdout_path).unwrap_or_default(),
        stderr: std::fs::read(&stderr_path).unwrap_or_default(),
    };
    let _ = std::fs::remove_file(stdout_path);
    let _ = std::fs::remove_file(stderr_path);
    output
}

/// `/tmp/x/y` as Wine's `Z:` drive sees it.
pub fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

/// One Windows endpoint: a Wine prefix (registry, certificate stores,
/// `C:\ProgramData`), the agent's data dir, and its process.
pub struct WineEndpoint {
    pub dir: TempDir,
    pub exe: PathBuf,
    pub hostname: String,
    pub id: String,
    child: Option<Child>,
}

impl WineEndpoint {
    /// A fresh prefix, booted, with a wineserver that stays up while the
    /// test runs (each `wine reg` call would otherwise start one).
    pub fn new(exe: &Path, hostname: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let endpoint = WineEndpoint {
            dir,
            exe: exe.to_path_buf(),
            hostname: hostname.to_string(),
            id: String::new(),
            child: None,
        };
        let boot = endpoint.run(endpoint.wine_command("wineboot").arg("--init"));
        assert!(
            boot.status.success(),
            "wineboot failed: {}",
            String::from_utf8_lossy(&boot.stderr)
        );
        // Keep this prefix's wineserver (and the services wineboot started)
        // up while the test runs, instead of restarting them per command.
        let _ = endpoint.wine_command("wineserver").arg("-p").status();
        endpoint
    }

    pub fn prefix(&self) -> PathBuf {
        self.dir.path().join("prefix")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn config_path(&self) -> PathBuf {
        self.data_dir().join("agent.toml")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("agent.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A restart of the "machine": every process of the prefix ends; the
    /// next Wine command brings up a fresh service manager, which starts
    /// the automatic-start services. Also the way around a Wine quirk: the
    /// services.exe that wineboot left may answer that a just-installed
    /// service does not exist, or that its database is locked.
    pub fn reboot(&self) {
        let _ = self.wine_command("wineserver").arg("-k").status();
        let _ = self.wine_command("wineserver").arg("-w").status();
    }

    /// Keeps this prefix's Wine session up (a persistent wineserver, ended
    /// by the next [`reboot`](Self::reboot) or the drop). Without it Wine
    /// ends the session, its service manager and every service with it, a
    /// few seconds after the last ordinary program (msiexec, sc) exits:
    /// services do not keep a Wine session alive as they keep a Windows
    /// machine running (seen: an installed service killed mid-retry, with
    /// nothing in its log, 3 s after msiexec returned).
    pub fn keep_session_up(&self) {
        let _ = self.wine_command("wineserver").arg("-p").status();
    }

    /// `program` (wine, wineboot, wineserver) in this endpoint's prefix.
    pub fn wine_command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env("WINEPREFIX", self.prefix())
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .stdin(Stdio::null());
        command
    }

    /// A Wine command of this endpoint, to completion (see [`output_via_files`]).
    pub fn run(&self, command: &mut Command) -> Output {
        output_via_files(command, self.dir.path())
    }

    /// `rollcall-agent.exe ARGS` under Wine, to completion.
    pub fn agent(&self, args: &[&str]) -> Output {
        self.run(self.wine_command("wine").arg(&self.exe).args(args))
    }

    /// `reg add KEY /v NAME /t TYPE /d DATA /f` in the 64-bit registry view.
    pub fn reg_add(&self, key: &str, name: &str, kind: &str, data: &str) {
        self.reg(&["add", key, "/v", name, "/t", kind, "/d", data, "/f", "/reg:64"]);
    }

    /// `reg add KEY /f`: the key alone, no value (a marker such as
    /// Windows' `RebootRequired`).
    pub fn reg_add_key(&self, key: &str) {
        self.reg(&["add", key, "/f", "/reg:64"]);
    }

    /// `reg delete KEY /v NAME /f`, whether or not the value is there (Wine
    /// may leave its own markers, such as pending file renames, after boot).
    pub fn reg_delete_value_if_present(&self, key: &str, name: &str) {
        let _ = self.run(
            self.wine_command("wine")
                .arg("reg")
                .args(["delete", key, "/v", name, "/f", "/reg:64"]),
        );
    }

    /// `reg delete KEY /f`: the key and everything under it.
    pub fn reg_delete_key(&self, key: &str) {
        self.reg(&["delete", key, "/f", "/reg:64"]);
    }

    /// Wine's `reg` with up to three tries: on a loaded machine (the whole
    /// suite in parallel) a `reg` process has been seen to end with no
    /// output and a failure status once; a real refusal fails every time.
    fn reg(&self, args: &[&str]) {
        let mut failures = Vec::new();
        for _ in 0..3 {
            let output = self.run(self.wine_command("wine").arg("reg").args(args));
            if output.status.success() {
                return;
            }
            failures.push(format!(
                "{}: {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("wine reg {args:?} failed: {failures:?}");
    }

    /// Enrolls through the real `rollcall-agent.exe enroll`.
    pub fn enroll(&mut self, coordinator: &Coordinator, token: &str, extra: &[&str]) {
        let ca = windows_path(&coordinator.data_dir().join("ca.pem"));
        let data = windows_path(&self.data_dir());
        let url = coordinator.url();
        let mut args = vec![
            "enroll",
            "--coordinator",
            &url,
            "--ca",
            &ca,
            "--token",
            token,
            "--hostname",
            &self.hostname,
            "--data-dir",
            &data,
        ];
        args.extend_from_slice(extra);
        let output = self.agent(&args);
        assert!(
            output.status.success(),
            "enroll under wine failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.id = String::from_utf8_lossy(&output.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string();
    }

    /// Changes agent.toml (as a TOML table).
    pub fn edit_config(&self, edit: impl FnOnce(&mut toml::Table)) {
        let text = std::fs::read_to_string(self.config_path()).expect("read agent.toml");
        let mut config: toml::Table = text.parse().expect("agent.toml parses");
        edit(&mut config);
        std::fs::write(self.config_path(), toml::to_string(&config).expect("encode")).expect("write agent.toml");
    }

    /// `rollcall-agent.exe run` in the background, logging to `agent.log`.
    pub fn start(&mut self) {
        let log = std::fs::File::create(self.log_path()).expect("create log");
        let child = self
            .wine_command("wine")
            .arg(&self.exe)
            .args(["run", "--config", &windows_path(&self.config_path())])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn rollcall-agent.exe");
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until the coordinator shows this endpoint online.
    pub fn wait_online(&self, coordinator: &Coordinator) {
        assert!(
            wait_until(Duration::from_secs(60), || coordinator.is_online(&self.hostname)),
            "{} never came online:\n{}",
            self.hostname,
            self.log()
        );
    }
}

impl Drop for WineEndpoint {
    fn drop(&mut self) {
        self.stop();
        // Ends every process of the prefix, the persistent wineserver too.
        let _ = self.wine_command("wineserver").arg("-k").status();
    }
}
