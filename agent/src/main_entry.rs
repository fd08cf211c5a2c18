//! The `rollcall-agent` command line.

use rollcall_common::secret::Secret;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::AgentConfig;
use crate::enroll::{EnrollParams, enroll, write_enrollment};
use crate::identity::IdentityStore;
use crate::prober::{LocalProber, Prober};
use crate::runner::{AgentOptions, run};
use crate::spool::Spool;

/// Exit code for a configuration the agent refuses (EX_CONFIG).
pub const EXIT_BAD_CONFIG: u8 = 78;

#[derive(Debug, Parser)]
#[command(
    name = "rollcall-agent",
    version,
    about = "The rollcall probe: runs the upgrade runbook's checks on this endpoint",
    after_help = "Examples:\n  rollcall-agent enroll --coordinator https://coordinator.example.com:7443 --ca ca.pem --token-file token.txt --data-dir /var/lib/rollcall-agent --label site=osaka\n  rollcall-agent validate --config /var/lib/rollcall-agent/agent.toml\n  rollcall-agent check --config /var/lib/rollcall-agent/agent.toml      (every check once, no coordinator)\n  rollcall-agent product show --config /var/lib/rollcall-agent/agent.toml\n  rollcall-agent run --config /var/lib/rollcall-agent/agent.toml"
)]
pub struct AgentCli {
    /// Log JSON lines instead of human-readable text.
    #[arg(long, global = true, env = "ROLLCALL_LOG_JSON")]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: AgentCommand,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Enroll with a coordinator using a one-time token; writes DATA_DIR/agent.toml.
    #[command(
        after_help = "Example:\n  rollcall-agent enroll --coordinator https://coord.example:7443 --ca ca.pem --token rct_… --data-dir /var/lib/rollcall-agent"
    )]
    Enroll {
        /// The coordinator's URL, as agents reach it (https://HOST:PORT; its
        /// certificate must carry HOST: `rollcall-server init --san HOST`).
        #[arg(long)]
        coordinator: String,
        /// The coordinator's CA certificate (DATA_DIR/ca.pem on the coordinator).
        #[arg(long)]
        ca: PathBuf,
        /// The one-time enrolment token (visible in the process list: prefer
        /// --token-file or the environment variable).
        #[arg(
            long,
            env = "ROLLCALL_ENROLL_TOKEN",
            hide_env_values = true,
            required_unless_present = "token_file",
            conflicts_with = "token_file",
            value_parser = rollcall_common::secret::parse
        )]
        token: Option<Secret>,
        /// A file holding the token (its first line), so it never shows in the
        /// process list; installers pass this.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Where the agent keeps its identity (key and certificate), its
        /// spool of unsent reports and the agent.toml enroll writes.
        #[arg(long)]
        data_dir: PathBuf,
        /// An agent.toml to start from (the [product] adapter, labels,
        /// intervals a site ships); enroll fills in coordinator, data_dir,
        /// identity and hostname, and adds --label values.
        #[arg(long)]
        template: Option<PathBuf>,
        /// Override the system host name.
        #[arg(long)]
        hostname: Option<String>,
        /// Labels for this endpoint (k=v, repeatable).
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// Replace an existing enrollment in DATA_DIR.
        #[arg(long)]
        force: bool,
    },
    /// Run the probe daemon.
    #[command(after_help = "Example:\n  rollcall-agent run --config /var/lib/rollcall-agent/agent.toml")]
    Run {
        /// The agent.toml `enroll` wrote (DATA_DIR/agent.toml).
        #[arg(long, env = "ROLLCALL_AGENT_CONFIG")]
        config: PathBuf,
    },
    /// One run of every check, printed; no coordinator needed.
    Check(crate::check_cmd::CheckArgs),
    /// The tray icon's "Update Now": run the configured update action,
    /// re-check, and report the outcome to the coordinator.
    UpdateNow {
        /// The agent.toml `enroll` wrote (DATA_DIR/agent.toml).
        #[arg(long, env = "ROLLCALL_AGENT_CONFIG")]
        config: PathBuf,
    },
    /// Check agent.toml without running (for ExecStartPre).
    Validate {
        /// The agent.toml `enroll` wrote (DATA_DIR/agent.toml).
        #[arg(long, env = "ROLLCALL_AGENT_CONFIG")]
        config: PathBuf,
    },
    /// Create the data directory, or reset one that exists, for SYSTEM and
    /// Administrators only (Windows: owner Administrators, inheritance from
    /// above removed, everything inside reset; elsewhere mode 0700).
    /// Installers run it before they write anything there.
    SecureDataDir {
        /// The data directory to create or reset (e.g. %ProgramData%\rollcall).
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// The MSI's install step (run by its custom action as LocalSystem):
    /// secure the data directory, place the mapping, enrol unless already
    /// enrolled; an enrolment that does not finish is left to the service.
    Setup(crate::setup::SetupArgs),
    /// The MSI's uninstall with KEEP_DATA=0: delete the data directory.
    PurgeDataDir {
        /// The data directory to delete, with the identity and spool in it.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// The product adapter: `product show` prints what it reads and from where.
    #[command(subcommand)]
    Product(crate::product_show::ProductCommand),
    /// The Windows service: install, start, stop, uninstall (run as
    /// Administrator); `run` is what the service manager starts.
    #[cfg(windows)]
    #[command(subcommand)]
    Service(ServiceCommand),
}

#[cfg(windows)]
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Register the service (automatic start, LocalSystem) with this config.
    Install {
        /// The agent.toml `enroll` wrote (DATA_DIR/agent.toml).
        #[arg(long, env = "ROLLCALL_AGENT_CONFIG")]
        config: PathBuf,
    },
    /// Stop and remove the service (the data directory stays).
    Uninstall,
    /// Start the installed service and wait until it runs.
    Start,
    /// Stop the service (graceful drain) and wait until it has stopped.
    Stop,
    /// The service's own entry point, started by the service manager.
    Run {
        /// The agent.toml `enroll` wrote (DATA_DIR/agent.toml).
        #[arg(long, env = "ROLLCALL_AGENT_CONFIG")]
        config: PathBuf,
    },
}

/// `rollcall-agent service …`, outside the async runtime: the service
/// manager's calls block, and `run` builds its own runtime.
#[cfg(windows)]
fn service_command(command: ServiceCommand) -> ExitCode {
    use crate::platform::windows::service;
    let result = match command {
        ServiceCommand::Install { config } => service::install(&config).map(|()| "installed"),
        ServiceCommand::Uninstall => service::uninstall().map(|()| "uninstalled"),
        ServiceCommand::Start => service::start().map(|()| "started"),
        ServiceCommand::Stop => service::stop().map(|()| "stopped"),
        ServiceCommand::Run { config } => service::run(config).map(|()| "stopped"),
    };
    match result {
        Ok(done) => {
            println!("service {} {done}", crate::platform::windows::service::SERVICE_NAME);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{text:?} is not key=value"))
}

pub fn main() -> ExitCode {
    let cli = AgentCli::parse();
    #[cfg(windows)]
    if let AgentCommand::Service(command) = cli.command {
        // `service run` logs to a file (no console under the service manager).
        if !matches!(command, ServiceCommand::Run { .. }) {
            rollcall_common::logging::init(cli.log_json);
        }
        return service_command(command);
    }
    rollcall_common::logging::init(cli.log_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(cli.command));
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The system host name, or "localhost" when it cannot be read.
pub fn system_hostname() -> String {
    crate::platform::hostname()
}

/// The token from `--token` (or its environment variable) or the first line
/// of `--token-file`.
fn enrolment_token(token: Option<Secret>, token_file: Option<&std::path::Path>) -> anyhow::Result<Secret> {
    let token = match (token, token_file) {
        (Some(token), _) => Secret::new(token.expose().trim()),
        (None, Some(path)) => {
            let text = Secret::new(
                rollcall_common::files::read_bounded_utf8(path, 4096)
                    .with_context(|| format!("read the token file {}", path.display()))?,
            );
            Secret::new(text.expose().lines().next().unwrap_or_default().trim())
        }
        (None, None) => bail!("give --token, --token-file or ROLLCALL_ENROLL_TOKEN"),
    };
    if token.is_empty() {
        bail!("the enrolment token is empty");
    }
    Ok(token)
}

/// Builds the runner's options from a checked config.
pub fn options_from_config(config: &AgentConfig) -> anyhow::Result<AgentOptions> {
    let settings = config.validate_for_run()?;
    Ok(AgentOptions {
        urls: settings.urls,
        identity: IdentityStore::Files(settings.identity),
        hostname: config.hostname.clone().unwrap_or_else(system_hostname),
        labels: config.labels.clone(),
        check_interval: config.check_interval,
        data_dir: Some(settings.data_dir),
        dial: rollcall_common::tls::DialOptions {
            keepalive_interval: config.reconnect.keepalive,
            keepalive_timeout: config.reconnect.keepalive_timeout,
            ..Default::default()
        },
        reconnect: config.reconnect.clone(),
        check_at_start: true,
        update_allowed: config.product.update_command.is_some(),
        collect: config.collect.clone(),
    })
}

async fn dispatch(command: AgentCommand) -> anyhow::Result<ExitCode> {
    match command {
        AgentCommand::Enroll {
            coordinator,
            ca,
            token,
            token_file,
            data_dir,
            template,
            hostname,
            labels,
            force,
        } => {
            if data_dir.join("agent.toml").exists() && !force {
                bail!(
                    "{} is already enrolled; pass --force to enroll again",
                    data_dir.display()
                );
            }
            let ca_pem =
                rollcall_common::files::read_bounded_utf8(&ca, 64 * 1024).context("read the coordinator CA")?;
            let params = EnrollParams {
                coordinator: coordinator.clone(),
                ca_pem,
                token: enrolment_token(token, token_file.as_deref())?,
                hostname: hostname.clone().unwrap_or_else(system_hostname),
                dial: Default::default(),
            };
            let enrolled = enroll(&params).await?;
            let labels: BTreeMap<String, String> = labels.into_iter().collect();
            let template = match &template {
                Some(path) => Some(AgentConfig::load(path).context("load the --template agent config")?),
                None => None,
            };
            let path = write_enrollment(&data_dir, &coordinator, &enrolled, hostname, labels, template)?;
            eprintln!("enrolled; config written to {}", path.display());
            eprintln!("next: rollcall-agent run --config {}", path.display());
            println!("{}", enrolled.agent_id);
            Ok(ExitCode::SUCCESS)
        }
        AgentCommand::Validate { config } => {
            match AgentConfig::load(&config).and_then(|c| {
                c.validate_for_run()?;
                crate::trust::ensure_trusted(&config, &c)
            }) {
                Ok(_) => {
                    println!("{} is valid", config.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => {
                    eprintln!("error: {error:#}");
                    Ok(ExitCode::from(EXIT_BAD_CONFIG))
                }
            }
        }
        AgentCommand::Run { config: path } => {
            let shutdown = CancellationToken::new();
            let signals = tokio::spawn(cancel_on_signal(shutdown.clone()));
            let result = run_daemon(&path, shutdown).await;
            signals.abort();
            result
        }
        AgentCommand::SecureDataDir { data_dir } => {
            rollcall_common::files::secure_data_dir(&data_dir)
                .with_context(|| format!("secure the data directory {}", data_dir.display()))?;
            println!("{} is for SYSTEM and Administrators only", data_dir.display());
            Ok(ExitCode::SUCCESS)
        }
        AgentCommand::Setup(args) => {
            let said = match crate::setup::run(args).await {
                Ok(said) => said,
                Err(error) => {
                    crate::platform::event::record(
                        crate::platform::event::Event::SetupFailed,
                        &format!("rollcall agent setup failed, the install is rolled back: {error:#}"),
                    );
                    return Err(error);
                }
            };
            #[cfg(windows)]
            if let Err(error) = crate::platform::windows::service::set_recovery() {
                eprintln!("warning: {error:#}");
            }
            println!("setup: {said}");
            Ok(ExitCode::SUCCESS)
        }
        AgentCommand::PurgeDataDir { data_dir } => {
            // The MSI schedules the purge after StopServices, but Wine ran
            // it before (seen in an uninstall log: the purge waited 30 s on
            // the running service's open files, then StopServices ran), so
            // the purge stops the service itself first; where it is
            // stopped already, as on Windows, this only checks.
            #[cfg(windows)]
            if let Err(error) = crate::platform::windows::service::stop() {
                eprintln!("purge: could not stop the service first: {error:#}");
            }
            crate::setup::purge(&data_dir)?;
            println!("removed {}", data_dir.display());
            Ok(ExitCode::SUCCESS)
        }
        AgentCommand::Check(args) => crate::check_cmd::run(args).await,
        AgentCommand::UpdateNow { config } => update_now(&config).await,
        AgentCommand::Product(command) => crate::product_show::run(command).await,
        #[cfg(windows)]
        AgentCommand::Service(_) => bail!("the service commands run outside the runtime"),
    }
}

/// The daemon until `shutdown`: `rollcall-agent run`, and the Windows
/// service's body. A config the agent refuses exits with EX_CONFIG.
pub async fn run_daemon(path: &std::path::Path, shutdown: CancellationToken) -> anyhow::Result<ExitCode> {
    // Installed by the MSI before its enrolment could finish: enrol first.
    match crate::setup::finish_pending(path, &shutdown).await {
        Ok(false) if shutdown.is_cancelled() => return Ok(ExitCode::SUCCESS),
        Ok(_) => {}
        Err(error) => {
            crate::platform::event::record(
                crate::platform::event::Event::ServiceFailed,
                &format!(
                    "the pending enrolment beside {} cannot be used: {error:#}",
                    path.display()
                ),
            );
            return Ok(ExitCode::from(EXIT_BAD_CONFIG));
        }
    }
    let config = match AgentConfig::load(path).and_then(|config| {
        let options = options_from_config(&config)?;
        crate::trust::ensure_trusted(path, &config)?;
        Ok((config, options))
    }) {
        Ok(loaded) => loaded,
        Err(error) => {
            crate::platform::event::record(
                crate::platform::event::Event::ServiceFailed,
                &format!("refusing the config {}: {error:#}", path.display()),
            );
            return Ok(ExitCode::from(EXIT_BAD_CONFIG));
        }
    };
    let (config, options) = config;
    let data_dir = options.data_dir.clone().unwrap_or_default();
    let spool = Spool::open(&data_dir.join("spool"), config.spool.clone())?;
    let prober: Arc<dyn Prober> = Arc::new(LocalProber {
        host_root: config.host_root.clone(),
        product: config.product.clone(),
        labels: config.labels.clone(),
    });
    run(options, prober, spool, shutdown).await.map(|()| ExitCode::SUCCESS)
}

async fn update_now(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    let config = AgentConfig::load(path)?;
    crate::trust::ensure_trusted(path, &config)?;
    let prober = LocalProber {
        host_root: config.host_root.clone(),
        product: config.product.clone(),
        labels: config.labels.clone(),
    };
    let refusal = (!prober.update_allowed()).then(|| {
        format!(
            "no [product] update_command in {}; this agent is not allowed to run an update",
            path.display()
        )
    });
    // A refusal is an outcome too: the coordinator counts it apart from the
    // agents that tried (runbook step 8), so it is queued like one.
    let outcome = match &refusal {
        Some(reason) => rollcall_common::proto::UpdateNowOutcome {
            allowed: false,
            error: reason.clone(),
            ..Default::default()
        },
        None => prober.update_now().await,
    };
    let policy = config
        .data_dir
        .as_ref()
        .and_then(|dir| rollcall_common::files::read_bounded_utf8(&dir.join("policy.toml"), 256 * 1024).ok())
        .and_then(|text| rollcall_common::policy::Policy::from_toml_str(&text).ok())
        .unwrap_or_default();
    let run = prober.check(Arc::new(policy), None).await;
    if refusal.is_none() {
        println!(
            "update command {} (exit code {}); installed version now {}",
            if outcome.ran { "ran" } else { "did not run" },
            outcome.exit_code,
            if run.product.version.is_empty() {
                "unknown"
            } else {
                &run.product.version
            }
        );
        if !outcome.error.is_empty() {
            println!("error: {}", outcome.error);
        }
    }
    let succeeded = outcome.ran && outcome.exit_code == 0;
    if let Some(dir) = &config.data_dir {
        let report = rollcall_common::proto::Report {
            observed_at_ms: rollcall_common::timefmt::now_ms(),
            kind: rollcall_common::proto::ReportKind::UpdateNowAgent as i32,
            product: Some(run.product),
            checks: run.checks,
            host: Some(run.host),
            update_now: Some(outcome),
            ..Default::default()
        };
        let name = format!("{:020}-{}.pb", rollcall_common::timefmt::now_ms(), std::process::id());
        rollcall_common::files::write_atomic(
            &dir.join("inbox").join(name),
            &prost::Message::encode_to_vec(&report),
            true,
        )?;
        println!("outcome queued for the coordinator (the running agent delivers it)");
    }
    if let Some(reason) = refusal {
        bail!(reason);
    }
    Ok(if succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    stop_requested().await;
    shutdown.cancel();
}

/// Resolves when the operator or the OS asks the process to stop: Ctrl-C
/// and SIGTERM on Unix; Ctrl-C, Ctrl-Break, closing the console and system
/// shutdown on Windows. (As a Windows service the stop comes from the
/// service manager instead: `platform::windows::service`.)
pub async fn stop_requested() {
    #[cfg(unix)]
    {
        if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        } else {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    #[cfg(windows)]
    {
        use tokio::signal::windows::{ctrl_break, ctrl_close, ctrl_shutdown};
        match (ctrl_break(), ctrl_close(), ctrl_shutdown()) {
            (Ok(mut brk), Ok(mut close), Ok(mut shutdown)) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = brk.recv() => {}
                    _ = close.recv() => {}
                    _ = shutdown.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
