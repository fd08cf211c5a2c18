//! `rollcall-agent check`: runs the runbook checks once on this endpoint and
//! prints them, for an admin at the console or a script. Needs only an
//! `agent.toml` with `host_root` and `[product]`; no coordinator.
//!
//! The policy is `--policy FILE`, else the last one the agent received
//! (`<data_dir>/policy.toml`), else the default policy. Exit code 0 when
//! nothing fails (warnings are fine), 1 when a check fails or could not be
//! evaluated.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use rollcall_common::policy::{MAX_POLICY_BYTES, Policy};
use rollcall_common::proto::{CheckStatus, HostFacts, ProductSummary, Role};
use serde_json::{Map, Value, json};

use rollcall_common::i18n::{Catalog, Lang};
use rollcall_common::{check_text, words};

use crate::checks::{CheckContext, CheckRun, run_all, status_of, status_word};
use crate::config::AgentConfig;

/// Where the agent keeps the last policy it received, under `data_dir`.
pub const STORED_POLICY_FILE: &str = "policy.toml";

#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The agent configuration (`agent.toml`).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// A policy file; default: the last one received, else the built-in default.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// How to print the results.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// The rollout's target version, for the version check.
    #[arg(long, value_name = "VERSION")]
    pub target: Option<String>,
    /// Language of the table (default: from LC_ALL, LC_MESSAGES or LANG); JSON is the same in both.
    #[arg(long, value_enum)]
    pub lang: Option<Lang>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Json,
    Table,
}

/// Runs the checks and prints them to stdout.
pub async fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let run = run_checks(&args).await?;
    let text = match args.output {
        OutputFormat::Json => {
            let mut text = serde_json::to_string_pretty(&to_json(&run))?;
            text.push('\n');
            text
        }
        OutputFormat::Table => {
            let lang = args
                .lang
                .unwrap_or_else(|| Lang::from_env(|name| std::env::var(name).ok()));
            to_table(&run, &Catalog::new(lang))
        }
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).context("write to stdout")?;
    stdout.flush().context("write to stdout")?;
    Ok(if passed(&run) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Loads config and policy, then runs every check once.
pub(crate) async fn run_checks(args: &CheckArgs) -> anyhow::Result<CheckRun> {
    let config = AgentConfig::load(&args.config)?;
    let policy = load_policy(args.policy.as_deref(), config.data_dir.as_deref())?;
    let context = CheckContext {
        host_root: config.host_root,
        product: config.product,
        policy: Arc::new(policy),
        labels: config.labels,
        target_version: args.target.clone(),
    };
    Ok(run_all(&context).await)
}

fn load_policy(explicit: Option<&Path>, data_dir: Option<&Path>) -> anyhow::Result<Policy> {
    let stored = data_dir
        .map(|dir| dir.join(STORED_POLICY_FILE))
        .filter(|path| path.exists());
    let Some(path) = explicit.map(Path::to_path_buf).or(stored) else {
        return Ok(Policy::default());
    };
    let text = rollcall_common::files::read_bounded_utf8(&path, MAX_POLICY_BYTES as u64)
        .with_context(|| format!("read policy {}", path.display()))?;
    Policy::from_toml_str(&text).with_context(|| format!("load policy {}", path.display()))
}

/// True when no check failed or errored.
pub(crate) fn passed(run: &CheckRun) -> bool {
    run.checks
        .iter()
        .all(|check| matches!(status_of(check), CheckStatus::Pass | CheckStatus::Warn))
}

// === JSON ===

/// `{"checks": [...], "product": {...}, "host": {...}}`, statuses lowercase,
/// evidence as an object.
pub fn to_json(run: &CheckRun) -> Value {
    let checks: Vec<Value> = run
        .checks
        .iter()
        .map(|check| {
            let evidence: Map<String, Value> = check
                .evidence
                .iter()
                .map(|evidence| (evidence.key.clone(), Value::from(evidence.value.clone())))
                .collect();
            json!({
                "name": check.name,
                "runbook_step": check.runbook_step,
                "status": status_word(status_of(check)),
                "message": check.message,
                "evidence": evidence,
                "remediation": check.remediation,
                "duration_ms": check.duration_ms,
            })
        })
        .collect();
    json!({
        "checks": checks,
        "product": product_json(&run.product),
        "host": host_json(&run.host),
    })
}

fn role_word(role: i32) -> &'static str {
    match Role::try_from(role) {
        Ok(Role::Endpoint) => "endpoint",
        Ok(Role::UpdateAgent) => "update_agent",
        _ => "",
    }
}

fn product_json(product: &ProductSummary) -> Value {
    json!({
        "version": product.version,
        "role": role_word(product.role),
        "update_source": product.update_source,
        "source_address": product.source_address,
        "update_agent_address": product.update_agent_address,
        "program_and_hotfix": product.program_and_hotfix,
        "update_permission": product.update_permission,
        "license_expires": product.license_expires,
        "server_address": product.server_address,
        "read_error": product.read_error,
    })
}

fn host_json(host: &HostFacts) -> Value {
    json!({
        "os_id": host.os_id,
        "os_version": host.os_version,
        "arch": host.arch,
        "memory_mb": host.memory_mb,
        "free_disk_mb": host.free_disk_mb,
    })
}

// === table ===

/// A plain aligned table, then the evidence and remediation of every check
/// that did not pass, in the catalogue's words (the messages from the
/// checks' codes, `check_text.rs`); English reads as it always did.
pub fn to_table(run: &CheckRun, c: &Catalog) -> String {
    let english = c.lang() == Lang::En;
    let unknown = c.tr("agent-unknown");
    let or_unknown = |text: &str| {
        if text.is_empty() {
            unknown.clone()
        } else {
            text.to_string()
        }
    };
    let mut out = String::new();
    let product = &run.product;
    if product.read_error.is_empty() {
        let role = role_word(product.role);
        let role = if english || role.is_empty() {
            role.to_string()
        } else {
            words::role_word(c, role)
        };
        out.push_str(&c.tr_args(
            "agent-check-product",
            &[
                ("version", or_unknown(&product.version)),
                ("role", or_unknown(&role)),
                ("server", or_unknown(&product.server_address)),
            ],
        ));
    } else {
        out.push_str(&c.tr_args("agent-check-product-error", &[("error", product.read_error.clone())]));
    }
    out.push('\n');
    let host = &run.host;
    out.push_str(&c.tr_args(
        "agent-check-host",
        &[
            ("os", or_unknown(&host.os_id)),
            ("version", host.os_version.clone()),
            ("arch", or_unknown(&host.arch)),
            ("memory", host.memory_mb.to_string()),
            ("disk", host.free_disk_mb.to_string()),
        ],
    ));
    out.push_str("\n\n");
    let name = |check: &str| {
        if english {
            check.to_string()
        } else {
            words::check(c, check)
        }
    };
    let status = |check: &rollcall_common::proto::CheckResult| {
        let word = status_word(status_of(check));
        if english {
            word.to_string()
        } else {
            words::status_word(c, word)
        }
    };
    let headers = [
        c.tr("cli-col-step"),
        c.tr("cli-col-check"),
        c.tr("cli-col-status"),
        c.tr("cli-col-message"),
    ];
    // Widths in characters; a Japanese word is two columns wide, so the
    // columns line up in English and stay readable in Japanese.
    let width = |text: &str| text.chars().count();
    let step_width = width(&headers[0]).max(4);
    let name_width = run
        .checks
        .iter()
        .map(|check| width(&name(&check.name)))
        .chain([width(&headers[1])])
        .max()
        .unwrap_or_default();
    let status_width = run
        .checks
        .iter()
        .map(|check| width(&status(check)))
        .chain([width(&headers[2]), 6])
        .max()
        .unwrap_or_default();
    out.push_str(&format!(
        "{:<step_width$}  {:<name_width$}  {:<status_width$}  {}\n",
        headers[0], headers[1], headers[2], headers[3]
    ));
    let plain = |text: &str| text.to_string();
    for check in &run.checks {
        let params = check.params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        out.push_str(&format!(
            "{:<step_width$}  {:<name_width$}  {:<status_width$}  {}\n",
            check.runbook_step,
            name(&check.name),
            status(check),
            check_text::message(c, &check.code, &params, &check.message, &plain)
        ));
    }
    for check in run.checks.iter().filter(|check| status_of(check) != CheckStatus::Pass) {
        out.push_str(&format!(
            "\n[{}] {}\n",
            status(check),
            c.tr_args(
                "agent-check-step",
                &[("step", check.runbook_step.to_string()), ("check", name(&check.name))]
            )
        ));
        for evidence in &check.evidence {
            if english {
                out.push_str(&format!("  {}: {}\n", evidence.key, evidence.value));
            } else {
                let (key, phrase) = words::evidence(c, &evidence.key, &evidence.value);
                let value = phrase.unwrap_or_else(|| format!("`{}`", evidence.value));
                out.push_str(&format!("  {key}: {value}\n"));
            }
        }
        // The agent's own remediation in English; the catalogue's, for the
        // check's cause, in Japanese.
        let remediation = if english {
            check.remediation.clone()
        } else {
            words::check_remediation(c, &check.name, &check.remediation)
        };
        out.push_str(&format!("  {}: {remediation}\n", c.tr("agent-check-remediation")));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        /// A host root with a product whose license has expired.
        fn new() -> Fixture {
            let dir = tempfile::tempdir().expect("tempdir");
            let root = dir.path();
            fs::create_dir_all(root.join("etc")).expect("mkdir");
            fs::create_dir_all(root.join("proc")).expect("mkdir");
            fs::write(root.join("etc/os-release"), "ID=debian\nVERSION_ID=12\n").expect("write");
            fs::write(root.join("proc/meminfo"), "MemTotal: 4194304 kB\n").expect("write");
            fs::write(
                root.join("state.json"),
                r#"{"version": "14.0.1", "license": {"expires": "2001-01-01"},
                    "update": {"permission": "all_components", "source": "standard"},
                    "server": {"address": "127.0.0.1:1"}}"#,
            )
            .expect("write");
            fs::write(
                root.join("agent.toml"),
                format!(
                    "host_root = '{}'\ndata_dir = '{}'\n[product]\nstate_file = '{}'\n",
                    root.display(),
                    root.join("data").display(),
                    root.join("state.json").display()
                ),
            )
            .expect("write");
            Fixture { dir }
        }

        fn args(&self) -> CheckArgs {
            CheckArgs {
                config: self.dir.path().join("agent.toml"),
                policy: None,
                output: OutputFormat::Json,
                target: Some("14.0.2".to_string()),
                lang: None,
            }
        }
    }

    #[tokio::test]
    async fn json_output_has_checks_product_and_host() {
        let fixture = Fixture::new();
        let run = run_checks(&fixture.args()).await.expect("run");
        assert!(!passed(&run));
        let json = to_json(&run);
        let checks = json["checks"].as_array().expect("checks");
        assert_eq!(checks.len(), 7);
        assert_eq!(checks[0]["name"], "version");
        assert_eq!(checks[0]["status"], "warn");
        assert_eq!(checks[0]["evidence"]["target"], "14.0.2");
        assert_eq!(checks[1]["name"], "license");
        assert_eq!(checks[1]["runbook_step"], 1);
        assert_eq!(checks[1]["status"], "fail");
        assert_eq!(checks[1]["evidence"]["expires"], "2001-01-01");
        assert!(
            checks[1]["remediation"]
                .as_str()
                .is_some_and(|text| text.contains("renew"))
        );
        assert_eq!(json["product"]["version"], "14.0.1");
        assert_eq!(json["product"]["role"], "endpoint");
        // The fixture's host root is a Linux one; Windows reads itself.
        if cfg!(windows) {
            assert_eq!(json["host"]["os_id"], "windows");
        } else {
            assert_eq!(json["host"]["os_id"], "debian");
            assert_eq!(json["host"]["memory_mb"], 4096);
        }
    }

    #[tokio::test]
    async fn table_output_lists_every_check_and_details_the_problems() {
        let fixture = Fixture::new();
        let run = run_checks(&fixture.args()).await.expect("run");
        let table = to_table(&run, &Catalog::new(Lang::En));
        assert!(table.contains("STEP  CHECK"), "{table}");
        for name in crate::checks::CHECK_NAMES {
            assert!(table.contains(name), "{table}");
        }
        assert!(table.contains("[fail] step 1 license"), "{table}");
        assert!(table.contains("  expires: 2001-01-01"), "{table}");
        let host = if cfg!(windows) {
            "host:    windows "
        } else {
            "host:    debian 12"
        };
        assert!(table.contains(host), "{table}");
    }

    #[tokio::test]
    async fn the_japanese_table_says_it_in_the_runbooks_words() {
        let fixture = Fixture::new();
        let run = run_checks(&fixture.args()).await.expect("run");
        let table = to_table(&run, &Catalog::new(Lang::Ja));
        for words in [
            "手順",
            "ライセンス",
            "[失敗] 手順 1 ライセンス",
            "対処方法",
            "取得元: エンドポイントの製品状態",
        ] {
            assert!(table.contains(words), "{words} missing:\n{table}");
        }
        for english in ["remediation", "STEP", "step 1", "endpoint product state", "MiB memory"] {
            assert!(!table.contains(english), "{english} in:\n{table}");
        }
    }

    #[tokio::test]
    async fn the_policy_comes_from_the_flag_then_the_data_dir_then_the_default() {
        let fixture = Fixture::new();
        let data = fixture.dir.path().join("data");
        fs::create_dir_all(&data).expect("mkdir");
        fs::write(data.join(STORED_POLICY_FILE), "[license]\nwarn_days = 7\n").expect("write");
        let flag = fixture.dir.path().join("flag.toml");
        fs::write(&flag, "[license]\nwarn_days = 9\n").expect("write");
        let warn_days = |policy: Policy| policy.license().warn_days;
        let config = AgentConfig::load(&fixture.args().config).expect("config");
        let data_dir = config.data_dir.as_deref();
        assert_eq!(warn_days(load_policy(Some(&flag), data_dir).expect("flag")), 9);
        assert_eq!(warn_days(load_policy(None, data_dir).expect("stored")), 7);
        assert_eq!(warn_days(load_policy(None, None).expect("default")), 30);
        fs::write(&flag, "[license]\nwarn_dayz = 9\n").expect("write");
        let error = load_policy(Some(&flag), data_dir).expect_err("bad policy");
        assert!(format!("{error:#}").contains("warn_dayz"), "{error:#}");
    }

    #[tokio::test]
    async fn the_exit_code_is_zero_only_without_failures() {
        let fixture = Fixture::new();
        fs::write(
            fixture.dir.path().join("state.json"),
            r#"{"version": "14.0.2", "license": {"expires": "2999-01-01"},
                "update": {"permission": "all_components", "source": "standard"},
                "server": {"address": "127.0.0.1:1"}}"#,
        )
        .expect("write");
        let run = run_checks(&fixture.args()).await.expect("run");
        // Only connectivity fails (nothing listens on port 1).
        let failing: Vec<&str> = run
            .checks
            .iter()
            .filter(|check| status_of(check) != CheckStatus::Pass)
            .map(|check| check.name.as_str())
            .collect();
        assert_eq!(failing, ["connectivity"]);
        assert!(!passed(&run));
        let exit = run_with_exit(fixture.args()).await;
        assert_eq!(exit, ExitCode::from(1));
    }

    async fn run_with_exit(mut args: CheckArgs) -> ExitCode {
        args.output = OutputFormat::Table;
        run(args).await.expect("run")
    }

    #[tokio::test]
    async fn a_missing_config_is_an_error_naming_it() {
        let args = CheckArgs {
            config: PathBuf::from("/nonexistent/agent.toml"),
            policy: None,
            output: OutputFormat::Table,
            target: None,
            lang: None,
        };
        let error = run(args).await.expect_err("no config");
        assert!(format!("{error:#}").contains("/nonexistent/agent.toml"));
    }
}
