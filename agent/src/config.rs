//! `agent.toml`: the probe's local configuration.
//!
//! Parsed into a versionless serde struct that rejects unknown keys, then
//! checked by [`AgentConfig::validate_for_run`] before anything connects. The
//! agent runs only the actions this file allows: the coordinator can ask for
//! "update now", but the command that runs is `product.update_command`, fixed
//! here, never something sent over the network.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// Largest `agent.toml` accepted; a config file is a few hundred bytes.
pub const MAX_CONFIG_BYTES: u64 = 256 * 1024;

/// One URL or a list of URLs to fail over between.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CoordinatorUrls {
    One(String),
    Many(Vec<String>),
}

impl CoordinatorUrls {
    pub fn urls(&self) -> Vec<String> {
        match self {
            CoordinatorUrls::One(url) => vec![url.clone()],
            CoordinatorUrls::Many(urls) => urls.clone(),
        }
    }
}

/// Where the probe's mTLS identity lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityPaths {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl IdentityPaths {
    /// The layout `rollcall-agent enroll` writes under a data dir.
    pub fn under(data_dir: &Path) -> Self {
        let dir = data_dir.join("identity");
        IdentityPaths {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }
}

/// Where the product's state comes from (`[product] adapter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProductAdapter {
    /// `state_file`: a product-state document on disk.
    File,
    /// `state_command`: a program that prints the document.
    Command,
    /// Trend Micro Apex One on Windows: the registry and the agent's `.ini`
    /// files, located by the `mapping` file.
    ApexOne,
}

impl ProductAdapter {
    /// The word `agent.toml` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ProductAdapter::File => "file",
            ProductAdapter::Command => "command",
            ProductAdapter::ApexOne => "apex-one",
        }
    }
}

/// The adapter to the managed security agent (runbook: the product).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductConfig {
    /// Which adapter reads the product state; absent means the one that
    /// `state_file` or `state_command` implies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<ProductAdapter>,
    /// With `adapter = "apex-one"`: the mapping file that says where each
    /// product-state field lives on this endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<PathBuf>,
    /// A TOML or JSON product-state document, re-read at every check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_file: Option<PathBuf>,
    /// A fixed argv (never a shell string) that prints the same document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_command: Option<Vec<String>>,
    /// The local "update now" action; absent means the agent refuses
    /// `update_now` commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_command: Option<Vec<String>>,
    /// Bound on reading the product state (`state_file`, `state_command`, or
    /// the Apex One adapter's registry and file reads).
    #[serde(default = "default_state_timeout", with = "humantime_serde")]
    pub state_timeout: Duration,
    /// Bound on `update_command`.
    #[serde(default = "default_update_timeout", with = "humantime_serde")]
    pub update_timeout: Duration,
    /// Where the product is installed, relative to `host_root` (free disk is
    /// measured there).
    #[serde(default = "default_install_path")]
    pub install_path: PathBuf,
}

impl Default for ProductConfig {
    fn default() -> Self {
        ProductConfig {
            adapter: None,
            mapping: None,
            state_file: None,
            state_command: None,
            update_command: None,
            state_timeout: default_state_timeout(),
            update_timeout: default_update_timeout(),
            install_path: default_install_path(),
        }
    }
}

impl ProductConfig {
    /// The adapter in effect: the configured one, else the one `state_file`
    /// or `state_command` implies; `None` when nothing is configured.
    pub fn effective_adapter(&self) -> Option<ProductAdapter> {
        self.adapter.or(match (&self.state_file, &self.state_command) {
            (Some(_), _) => Some(ProductAdapter::File),
            (None, Some(_)) => Some(ProductAdapter::Command),
            (None, None) => None,
        })
    }

    /// Refuses settings that contradict each other or the chosen adapter.
    fn validate(&self) -> anyhow::Result<()> {
        if self.state_file.is_some() && self.state_command.is_some() {
            bail!("[product] sets both state_file and state_command; choose one");
        }
        let needs = |key: &str, present: bool, adapter: ProductAdapter| -> anyhow::Result<()> {
            if !present {
                bail!("[product] adapter = \"{}\" needs `{key}`", adapter.as_str());
            }
            Ok(())
        };
        let refuses = |key: &str, present: bool, adapter: &str| -> anyhow::Result<()> {
            if present {
                bail!("[product] `{key}` cannot be used with {adapter}; remove one of them");
            }
            Ok(())
        };
        match self.adapter {
            None if self.mapping.is_some() => {
                bail!("[product] `mapping` is read only with adapter = \"apex-one\"; set that or remove `mapping`")
            }
            None => {}
            Some(adapter @ ProductAdapter::File) => {
                needs("state_file", self.state_file.is_some(), adapter)?;
                refuses("mapping", self.mapping.is_some(), "adapter = \"file\"")?;
            }
            Some(adapter @ ProductAdapter::Command) => {
                needs("state_command", self.state_command.is_some(), adapter)?;
                refuses("mapping", self.mapping.is_some(), "adapter = \"command\"")?;
            }
            Some(adapter @ ProductAdapter::ApexOne) => {
                needs("mapping", self.mapping.is_some(), adapter)?;
                refuses("state_file", self.state_file.is_some(), "adapter = \"apex-one\"")?;
                refuses("state_command", self.state_command.is_some(), "adapter = \"apex-one\"")?;
            }
        }
        Ok(())
    }
}

fn default_state_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_update_timeout() -> Duration {
    Duration::from_secs(600)
}
fn default_install_path() -> PathBuf {
    PathBuf::from("/")
}

/// Bounds on the on-disk spool of unacknowledged reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolConfig {
    #[serde(default = "default_spool_reports")]
    pub max_reports: u64,
    #[serde(default = "default_spool_bytes")]
    pub max_bytes: u64,
}

fn default_spool_reports() -> u64 {
    10_000
}
fn default_spool_bytes() -> u64 {
    64 * 1024 * 1024
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            max_reports: default_spool_reports(),
            max_bytes: default_spool_bytes(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator: Option<CoordinatorUrls>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityPaths>,
    /// Overrides the system host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Where host facts are read, like node_exporter's `--path.rootfs`.
    #[serde(default = "default_host_root")]
    pub host_root: PathBuf,
    /// How often the probe runs its checks on its own.
    #[serde(default = "default_check_interval", with = "humantime_serde")]
    pub check_interval: Duration,
    #[serde(default)]
    pub product: ProductConfig,
    #[serde(default)]
    pub spool: SpoolConfig,
    #[serde(default)]
    pub reconnect: ReconnectConfig,
    /// Log files a coordinator `collect` command may gather (runbook step 8).
    #[serde(default)]
    pub collect: crate::collect::CollectConfig,
}

/// Reconnect backoff, after gRPC's connection-backoff guidance: exponential
/// from `initial` by 1.6, ±20% jitter, capped at `max`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconnectConfig {
    #[serde(default = "default_reconnect_initial", with = "humantime_serde")]
    pub initial: Duration,
    #[serde(default = "default_reconnect_max", with = "humantime_serde")]
    pub max: Duration,
    /// HTTP/2 keepalive pings on the stream, so a network that stalls
    /// silently is noticed and the agent reconnects.
    #[serde(default = "default_keepalive", with = "humantime_serde")]
    pub keepalive: Duration,
    /// How long a keepalive ping may go unanswered.
    #[serde(default = "default_keepalive_timeout", with = "humantime_serde")]
    pub keepalive_timeout: Duration,
}

fn default_keepalive() -> Duration {
    Duration::from_secs(30)
}
fn default_keepalive_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_reconnect_initial() -> Duration {
    Duration::from_secs(1)
}
fn default_reconnect_max() -> Duration {
    Duration::from_secs(120)
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        ReconnectConfig {
            initial: default_reconnect_initial(),
            max: default_reconnect_max(),
            keepalive: default_keepalive(),
            keepalive_timeout: default_keepalive_timeout(),
        }
    }
}

fn default_host_root() -> PathBuf {
    PathBuf::from("/")
}
fn default_check_interval() -> Duration {
    Duration::from_secs(15 * 60)
}

impl AgentConfig {
    /// Reads and parses `agent.toml`; errors name the file and the key.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = rollcall_common::files::read_bounded_utf8(path, MAX_CONFIG_BYTES)
            .with_context(|| format!("read agent config {}", path.display()))?;
        Self::from_toml_str(&text).with_context(|| format!("parse agent config {}", path.display()))
    }

    pub fn from_toml_str(text: &str) -> anyhow::Result<Self> {
        // The TOML parser recurses: refuse hostile nesting before it runs.
        if rollcall_common::product::toml_depth_exceeds(text, rollcall_common::product::MAX_NESTING_DEPTH) {
            bail!(
                "agent config is nested deeper than {} levels",
                rollcall_common::product::MAX_NESTING_DEPTH
            );
        }
        let config: AgentConfig = toml::from_str(text)?;
        config.validate_common()?;
        Ok(config)
    }

    fn validate_common(&self) -> anyhow::Result<()> {
        self.product.validate()?;
        self.collect.validate()?;
        for (key, argv) in [
            ("state_command", &self.product.state_command),
            ("update_command", &self.product.update_command),
        ] {
            if let Some(argv) = argv
                && argv.first().is_none_or(|program| program.trim().is_empty())
            {
                bail!("[product] {key} must name a program as its first element");
            }
        }
        if self.reconnect.initial.is_zero() || self.reconnect.max < self.reconnect.initial {
            bail!("[reconnect] needs 0 < initial <= max");
        }
        if self.reconnect.keepalive < Duration::from_millis(200) || self.reconnect.keepalive_timeout.is_zero() {
            bail!("[reconnect] keepalive must be at least 200ms and keepalive_timeout positive");
        }
        if self.check_interval < Duration::from_secs(1) {
            bail!("check_interval must be at least 1s");
        }
        Ok(())
    }

    /// What `rollcall-agent run` needs beyond what `check` needs.
    pub fn validate_for_run(&self) -> anyhow::Result<RunSettings> {
        let urls = match &self.coordinator {
            Some(urls) => urls.urls(),
            None => bail!("agent config has no `coordinator`; run `rollcall-agent enroll` first"),
        };
        if urls.is_empty() {
            bail!("`coordinator` lists no URL");
        }
        for url in &urls {
            rollcall_common::net::parse_coordinator_url(url).with_context(|| format!("coordinator URL {url:?}"))?;
        }
        let Some(data_dir) = self.data_dir.clone() else {
            bail!("agent config has no `data_dir`");
        };
        let identity = self.identity.clone().unwrap_or_else(|| IdentityPaths::under(&data_dir));
        Ok(RunSettings {
            urls,
            data_dir,
            identity,
        })
    }
}

/// The checked part of the config that `run` uses.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub urls: Vec<String>,
    pub data_dir: PathBuf,
    pub identity: IdentityPaths,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_check_config_parses() {
        let config =
            AgentConfig::from_toml_str("host_root = \"/tmp/root\"\n[product]\nstate_file = \"/tmp/state.toml\"\n")
                .expect("parse");
        assert_eq!(config.host_root, PathBuf::from("/tmp/root"));
        assert!(config.validate_for_run().is_err());
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let error = AgentConfig::from_toml_str("colour = \"blue\"\n").expect_err("unknown key");
        assert!(format!("{error:#}").contains("colour"), "{error:#}");
    }

    #[test]
    fn coordinator_may_be_a_list() {
        let config = AgentConfig::from_toml_str(
            "coordinator = [\"https://a:7443\", \"https://b:7443\"]\ndata_dir = \"/tmp/x\"\n",
        )
        .expect("parse");
        let run = config.validate_for_run().expect("run settings");
        assert_eq!(run.urls.len(), 2);
    }

    #[test]
    fn hostile_configs_are_refused_not_crashed() {
        let deep = format!("labels = {{ a = {}1{} }}\n", "[".repeat(100_000), "]".repeat(100_000));
        assert!(AgentConfig::from_toml_str(&deep).is_err());
        let wrong_type = AgentConfig::from_toml_str("check_interval = 5\n").expect_err("wrong type");
        assert!(format!("{wrong_type:#}").contains("check_interval"), "{wrong_type:#}");
        assert!(AgentConfig::from_toml_str("[labels]\nsite = 3\n").is_err());
        let dir = tempfile::tempdir().expect("tempdir");
        let huge = dir.path().join("agent.toml");
        std::fs::write(&huge, "#".repeat(MAX_CONFIG_BYTES as usize + 1)).expect("write");
        assert!(format!("{:#}", AgentConfig::load(&huge).expect_err("huge")).contains("larger than"));
    }

    #[test]
    fn the_adapter_is_implied_or_explicit_and_never_contradicted() {
        let implied = AgentConfig::from_toml_str("[product]\nstate_file = \"/s.toml\"\n").expect("implied file");
        assert_eq!(implied.product.effective_adapter(), Some(ProductAdapter::File));
        let apex = AgentConfig::from_toml_str("[product]\nadapter = \"apex-one\"\nmapping = 'C:\\m.toml'\n")
            .expect("apex-one");
        assert_eq!(apex.product.effective_adapter(), Some(ProductAdapter::ApexOne));
        assert_eq!(ProductConfig::default().effective_adapter(), None);
        for (text, expected) in [
            ("adapter = \"apex-one\"\n", "adapter = \"apex-one\" needs `mapping`"),
            (
                "adapter = \"apex-one\"\nmapping = \"/m.toml\"\nstate_file = \"/s.toml\"\n",
                "`state_file` cannot be used with adapter = \"apex-one\"",
            ),
            (
                "adapter = \"apex-one\"\nmapping = \"/m.toml\"\nstate_command = [\"x\"]\n",
                "`state_command` cannot be used with adapter = \"apex-one\"",
            ),
            (
                "mapping = \"/m.toml\"\nstate_file = \"/s.toml\"\n",
                "`mapping` is read only with adapter = \"apex-one\"",
            ),
            ("adapter = \"file\"\n", "adapter = \"file\" needs `state_file`"),
            (
                "adapter = \"command\"\nstate_file = \"/s.toml\"\n",
                "needs `state_command`",
            ),
            ("adapter = \"registry\"\n", "unknown variant `registry`"),
        ] {
            let error = AgentConfig::from_toml_str(&format!("[product]\n{text}")).expect_err(text);
            assert!(format!("{error:#}").contains(expected), "{text}: {error:#}");
        }
    }

    #[test]
    fn the_windows_template_uses_the_apex_one_adapter() {
        let config = AgentConfig::from_toml_str(include_str!("../../deploy/windows/agent.toml")).expect("template");
        assert_eq!(config.product.effective_adapter(), Some(ProductAdapter::ApexOne));
        assert_eq!(
            config.product.mapping,
            Some(PathBuf::from(r"C:\ProgramData\rollcall\apex-one.toml"))
        );
    }

    #[test]
    fn empty_update_command_is_refused() {
        let error = AgentConfig::from_toml_str("[product]\nupdate_command = []\n").expect_err("empty");
        assert!(format!("{error:#}").contains("update_command"));
    }
}
