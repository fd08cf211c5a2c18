//! The test fleet: a real coordinator process on loopback with a temporary
//! data dir, real agent processes with fake host roots and product states,
//! and the real admin CLI.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub const SERVER: &str = env!("CARGO_BIN_EXE_rct-server");
pub const AGENT: &str = env!("CARGO_BIN_EXE_rct-agent");
pub const CLI: &str = env!("CARGO_BIN_EXE_rct-cli");

/// Polls `check` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("find a free port")
}

fn signal(child: &Child, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status();
}

/// A coordinator process and its data dir.
pub struct Coordinator {
    pub dir: TempDir,
    pub port: u16,
    pub child: Option<Child>,
    pub extra_args: Vec<String>,
}

impl Coordinator {
    /// `rollcall-server init` into a fresh temp dir.
    pub fn init() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let output = Command::new(SERVER)
            .args(["init", "--data-dir"])
            .arg(dir.path().join("data"))
            .output()
            .expect("run init");
        assert!(
            output.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Coordinator {
            dir,
            port: free_port(),
            child: None,
            extra_args: vec!["--heartbeat-interval".into(), "500ms".into()],
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts `serve` and waits until the admin API answers.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open log");
        let child = Command::new(SERVER)
            .arg("serve")
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(&self.extra_args)
            .env(
                "RUST_LOG",
                std::env::var("ROLLCALL_TEST_SERVER_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn coordinator");
        self.child = Some(child);
        let ready = wait_until(Duration::from_secs(20), || self.cli(&["agents"]).status.success());
        assert!(ready, "coordinator did not become ready:\n{}", self.log());
    }

    /// SIGTERM and wait for exit; returns how long the drain took.
    pub fn stop(&mut self) -> Duration {
        let started = Instant::now();
        if let Some(mut child) = self.child.take() {
            signal(&child, "TERM");
            let _ = child.wait();
        }
        started.elapsed()
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn admin_identity(&self) -> PathBuf {
        self.data_dir().join("admin")
    }

    /// Runs the admin CLI with the local admin identity.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_as(&self.admin_identity(), args)
    }

    pub fn cli_as(&self, identity: &Path, args: &[&str]) -> Output {
        Command::new(CLI)
            .arg("--coordinator")
            .arg(self.url())
            .arg("--identity")
            .arg(identity)
            .args(args)
            .output()
            .expect("run cli")
    }

    /// Runs the CLI with `--output json` and parses standard output.
    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = vec!["--output", "json"];
        full.extend_from_slice(args);
        let output = self.cli(&full);
        assert!(
            output.status.success(),
            "rollcall {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("CLI printed JSON")
    }

    /// A fresh token; the token is the last line of standard output.
    pub fn token(&self, extra: &[&str]) -> String {
        let mut args = vec!["token", "create"];
        args.extend_from_slice(extra);
        let output = self.cli(&args);
        assert!(
            output.status.success(),
            "token create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .last()
            .expect("a token line")
            .trim()
            .to_string()
    }

    /// A started coordinator whose rollout engine ticks every 200 ms, so
    /// rollout tests see grace periods and rechecks pass quickly.
    pub fn started_for_rollouts() -> Self {
        let mut coordinator = Coordinator::init();
        coordinator
            .extra_args
            .extend(["--engine-interval".to_string(), "200ms".to_string()]);
        coordinator.start();
        coordinator
    }

    /// `rollcall policy apply` of `text`, which must succeed.
    pub fn apply_policy(&self, text: &str) {
        let path = self.dir.path().join("policy.toml");
        std::fs::write(&path, text).expect("write policy.toml");
        let output = self.cli(&["policy", "apply", &path.display().to_string()]);
        assert!(
            output.status.success(),
            "policy apply failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `rollcall rollout start --target … --grace …` plus `extra` flags
    /// (`--recheck-every`, `--max-attempts`), which must succeed.
    pub fn start_rollout(&self, target: &str, grace: &str, extra: &[&str]) {
        let mut args = vec!["rollout", "start", "--target", target, "--grace", grace];
        args.extend_from_slice(extra);
        let output = self.cli(&args);
        assert!(
            output.status.success(),
            "rollout start failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `rollcall stragglers -o json`, by hostname.
    pub fn stragglers(&self) -> BTreeMap<String, serde_json::Value> {
        self.cli_json(&["stragglers"])
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s["hostname"].as_str().unwrap_or_default().to_string(), s))
            .collect()
    }

    /// Each straggler's cause, by hostname.
    pub fn causes(&self) -> BTreeMap<String, String> {
        self.stragglers()
            .into_iter()
            .map(|(host, s)| (host, s["cause"].as_str().unwrap_or_default().to_string()))
            .collect()
    }

    /// Agents as the CLI shows them, by hostname.
    pub fn agents_by_hostname(&self) -> BTreeMap<String, serde_json::Value> {
        let list = self.cli_json(&["agents"]);
        list.as_array()
            .expect("array")
            .iter()
            .map(|agent| {
                (
                    agent["hostname"].as_str().unwrap_or_default().to_string(),
                    agent.clone(),
                )
            })
            .collect()
    }

    pub fn is_online(&self, hostname: &str) -> bool {
        self.agents_by_hostname()
            .get(hostname)
            .is_some_and(|agent| agent["online"] == serde_json::Value::Bool(true))
    }

    pub fn store(&self) -> rollcall_server::store::sqlite::SqliteStore {
        rollcall_server::store::sqlite::SqliteStore::open(&self.data_dir().join("rollcall.db")).expect("open store")
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A product state document for a fake endpoint.
pub fn product_state(version: &str, extra: &str) -> String {
    format!(
        "version = \"{version}\"\nrole = \"endpoint\"\n[license]\nexpires = \"2099-12-31\"\n[update]\npermission = \"all_components\"\nsource = \"standard\"\n[server]\naddress = \"127.0.0.1:9\"\n{extra}"
    )
}

/// An enrolled agent with its own data dir, fake host root and product state.
pub struct Agent {
    pub dir: TempDir,
    pub id: String,
    pub hostname: String,
    pub child: Option<Child>,
}

impl Agent {
    /// Enrolls through the real `rollcall-agent enroll`, then points the
    /// config at a fake host root and product state.
    pub fn enroll(coordinator: &Coordinator, hostname: &str, state: &str, labels: &[(&str, &str)]) -> Self {
        let token = coordinator.token(&[]);
        Self::enroll_with_token(coordinator, hostname, state, labels, &token).expect("enroll")
    }

    pub fn enroll_with_token(
        coordinator: &Coordinator,
        hostname: &str,
        state: &str,
        labels: &[(&str, &str)],
        token: &str,
    ) -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let mut command = Command::new(AGENT);
        command
            .args(["enroll", "--coordinator", &coordinator.url(), "--ca"])
            .arg(coordinator.data_dir().join("ca.pem"))
            .args(["--token", token, "--hostname", hostname, "--data-dir"])
            .arg(&data);
        for (key, value) in labels {
            command.arg("--label").arg(format!("{key}={value}"));
        }
        let output = command.output().expect("run enroll");
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).to_string());
        }
        let id = String::from_utf8_lossy(&output.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string();
        let agent = Agent {
            dir,
            id,
            hostname: hostname.to_string(),
            child: None,
        };
        agent.write_root(state);
        Ok(agent)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn config_path(&self) -> PathBuf {
        self.data_dir().join("agent.toml")
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Writes the fake host root and product state and adapts agent.toml.
    pub fn write_root(&self, state: &str) {
        let root = self.root();
        std::fs::create_dir_all(root.join("etc")).expect("mkdir etc");
        std::fs::create_dir_all(root.join("proc")).expect("mkdir proc");
        std::fs::write(root.join("etc/os-release"), "ID=debian\nVERSION_ID=\"12\"\n").expect("os-release");
        std::fs::write(
            root.join("proc/meminfo"),
            "MemTotal:       8000000 kB\nMemAvailable:   4000000 kB\n",
        )
        .expect("meminfo");
        self.set_state(state);
        let text = std::fs::read_to_string(self.config_path()).expect("read agent.toml");
        let mut config: toml::Table = text.parse().expect("agent.toml parses");
        config.insert("host_root".into(), toml::Value::String(root.display().to_string()));
        config.insert("check_interval".into(), toml::Value::String("1h".into()));
        let mut product = toml::Table::new();
        product.insert(
            "state_file".into(),
            toml::Value::String(self.state_path().display().to_string()),
        );
        config.insert("product".into(), toml::Value::Table(product));
        let mut reconnect = toml::Table::new();
        reconnect.insert("initial".into(), toml::Value::String("200ms".into()));
        reconnect.insert("max".into(), toml::Value::String("1s".into()));
        config.insert("reconnect".into(), toml::Value::Table(reconnect));
        std::fs::write(self.config_path(), toml::to_string(&config).expect("encode")).expect("write agent.toml");
    }

    /// Changes agent.toml (as a TOML table) before the agent starts.
    pub fn edit_config(&self, edit: impl FnOnce(&mut toml::Table)) {
        let text = std::fs::read_to_string(self.config_path()).expect("read agent.toml");
        let mut config: toml::Table = text.parse().expect("agent.toml parses");
        edit(&mut config);
        std::fs::write(self.config_path(), toml::to_string(&config).expect("encode")).expect("write agent.toml");
    }

    /// Allows a local update action: `[product] update_command = argv`.
    pub fn set_update_command(&self, argv: &[&str]) {
        self.edit_config(|config| {
            let argv = argv.iter().map(|arg| toml::Value::String(arg.to_string())).collect();
            if let Some(product) = config.get_mut("product").and_then(|p| p.as_table_mut()) {
                product.insert("update_command".into(), toml::Value::Array(argv));
            }
        });
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.path().join("state.toml")
    }

    pub fn set_state(&self, state: &str) {
        std::fs::write(self.state_path(), state).expect("write state");
    }

    /// Lists several coordinator URLs in agent.toml (replicas; the agent
    /// tries the next one when a connection fails).
    pub fn set_coordinators(&self, urls: &[String]) {
        let text = std::fs::read_to_string(self.config_path()).expect("read agent.toml");
        let mut config: toml::Table = text.parse().expect("agent.toml parses");
        let list = urls.iter().map(|url| toml::Value::String(url.clone())).collect();
        config.insert("coordinator".into(), toml::Value::Array(list));
        std::fs::write(self.config_path(), toml::to_string(&config).expect("encode")).expect("write agent.toml");
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("agent.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open log");
        let child = Command::new(AGENT)
            .arg("run")
            .arg("--config")
            .arg(self.config_path())
            .env(
                "RUST_LOG",
                std::env::var("ROLLCALL_TEST_SERVER_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn agent");
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, "TERM");
            let _ = child.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
