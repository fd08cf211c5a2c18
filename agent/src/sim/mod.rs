//! The fleet simulator (`rollcall-sim`): thousands of simulated agents in
//! one process, each with its own enrolled identity and its own real mTLS
//! connection, speaking the real protocol through the real runner, so the
//! coordinator can be measured at fleet scale on one machine
//! (`bench/run.sh`, `docs/BENCHMARKS.md`).
//!
//! - [`identities`]: enroll through the Enroll RPC, cache in the sim dir.
//! - [`prober`]: synthetic product state and check results per agent index.
//! - [`fleet`]: `run`, long-lived agents through [`crate::runner::run`].
//! - [`burst`]: ingest load, a minimal client sending reports back to back.
//!
//! Connections are spread over loopback source addresses (127.0.0.2,
//! 127.0.0.3, …; `--per-source-ip` agents each), because one source
//! address has only about 28,000 ephemeral ports towards one coordinator,
//! and binding a source address with port 0 makes the kernel search for a
//! free port (`inet_csk_get_port`, from the odd half of the range): past a
//! few thousand sockets per address that search dominated the simulator's
//! CPU in profiles, so the default is 2,000 agents per address.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use rollcall_common::tls::DialOptions;
use tokio_util::sync::CancellationToken;

use crate::config::ReconnectConfig;

pub mod burst;
pub mod fleet;
pub mod identities;
pub mod prober;

#[derive(Debug, Parser)]
#[command(
    name = "rollcall-sim",
    version,
    about = "The rollcall fleet simulator: many simulated agents over real mTLS, for benchmarks"
)]
pub struct SimCli {
    /// Log JSON lines instead of human-readable text.
    #[arg(long, global = true, env = "ROLLCALL_LOG_JSON")]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: SimCommand,
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Enroll (or load from the cache) the simulated agents, then exit.
    Enroll(CommonArgs),
    /// Run simulated agents through the real runner until stopped.
    #[command(
        after_help = "Example:\n  rollcall-sim run --coordinator https://127.0.0.1:7443 --ca ca.pem --token rct_… --sim-dir /tmp/sim --agents 1000"
    )]
    Run {
        #[command(flatten)]
        common: CommonArgs,
        /// How often each agent runs its checks (at least 1s).
        #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
        check_interval: Duration,
        /// New agents started per second at most.
        #[arg(long, default_value_t = 500)]
        connect_rate: u32,
        /// First reconnect delay after a lost connection (grows ×1.6, ±20%).
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        reconnect_initial: Duration,
        /// Longest reconnect delay the growth reaches.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        reconnect_max: Duration,
        /// Rewrite this JSON file every second with the simulator's counters.
        #[arg(long)]
        status_file: Option<PathBuf>,
        /// Stop after this long (default: until SIGINT or SIGTERM).
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
    },
    /// Ingest load: every agent sends REPORTS reports back to back; prints
    /// the acknowledged (durably stored) rate as one JSON line.
    Burst {
        #[command(flatten)]
        common: CommonArgs,
        /// Reports per agent (keep within the coordinator's burst allowance, 200).
        #[arg(long, default_value_t = 100)]
        reports: u64,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Coordinator URL; repeat for replicas (agents are spread over them).
    #[arg(long = "coordinator", required = true)]
    pub coordinators: Vec<String>,
    /// The coordinator's CA certificate.
    #[arg(long)]
    pub ca: PathBuf,
    /// A multi-use enrollment token (needed only for agents not cached yet).
    #[arg(long, env = "ROLLCALL_SIM_TOKEN", hide_env_values = true, value_parser = rollcall_common::secret::parse)]
    pub token: Option<rollcall_common::secret::Secret>,
    /// Where identities are cached between runs.
    #[arg(long)]
    pub sim_dir: PathBuf,
    /// Simulated agents in this process.
    #[arg(long, default_value_t = 1000)]
    pub agents: u64,
    /// Index of this process's first agent (several processes share a sim dir).
    #[arg(long, default_value_t = 0)]
    pub first_index: u64,
    /// First loopback source address; more follow as needed.
    #[arg(long, default_value = "127.0.0.2")]
    pub source_ip: Ipv4Addr,
    /// Agents per source address (ephemeral ports run out near 28,000; the
    /// kernel's free-port search slows down long before that).
    #[arg(long, default_value_t = 2_000)]
    pub per_source_ip: u64,
    /// Enrollments in flight at once.
    #[arg(long, default_value_t = 32)]
    pub enroll_concurrency: usize,
    /// HTTP/2 keepalive ping interval of each agent's connection (as the
    /// agent's `[reconnect] keepalive`).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub keepalive: Duration,
    /// How long a keepalive ping may go unanswered before the agent drops
    /// the connection (as `[reconnect] keepalive_timeout`).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub keepalive_timeout: Duration,
    /// TCP connect plus TLS handshake, at most.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
}

/// What every subcommand shares, checked.
#[derive(Debug, Clone)]
pub struct Common {
    pub coordinators: Vec<String>,
    pub first_index: u64,
    pub source_ip: Ipv4Addr,
    pub per_source_ip: u64,
    pub dial: DialOptions,
}

/// The loopback source address of agent `index`.
pub fn source_ip(common: &Common, index: u64) -> IpAddr {
    let step = u32::try_from(index / common.per_source_ip.max(1)).unwrap_or(0);
    IpAddr::V4(Ipv4Addr::from(u32::from(common.source_ip).saturating_add(step)))
}

impl CommonArgs {
    fn check(&self) -> anyhow::Result<Common> {
        if self.agents == 0 {
            bail!("--agents must be at least 1");
        }
        if self.keepalive < Duration::from_millis(200)
            || self.keepalive_timeout.is_zero()
            || self.connect_timeout.is_zero()
        {
            bail!("--keepalive must be at least 200ms; --keepalive-timeout and --connect-timeout positive");
        }
        if self.per_source_ip == 0 || self.per_source_ip > 28_000 {
            bail!("--per-source-ip must be 1-28000 (ephemeral ports per source address)");
        }
        let last = u64::from(u32::from(self.source_ip)) + (self.first_index + self.agents - 1) / self.per_source_ip;
        if !self.source_ip.is_loopback() || last > u64::from(u32::from(Ipv4Addr::new(127, 255, 255, 254))) {
            bail!("source addresses must stay inside 127.0.0.0/8");
        }
        for url in &self.coordinators {
            let addr =
                rollcall_common::net::parse_coordinator_url(url).with_context(|| format!("coordinator {url:?}"))?;
            // Load tests target loopback only.
            if !matches!(addr.host.parse::<IpAddr>(), Ok(ip) if ip.is_loopback()) && addr.host != "localhost" {
                bail!(
                    "the simulator connects only to loopback coordinators, not {}",
                    addr.host
                );
            }
        }
        Ok(Common {
            coordinators: self.coordinators.clone(),
            first_index: self.first_index,
            source_ip: self.source_ip,
            per_source_ip: self.per_source_ip,
            dial: DialOptions {
                connect_timeout: self.connect_timeout,
                keepalive_interval: self.keepalive,
                keepalive_timeout: self.keepalive_timeout,
                ..DialOptions::default()
            },
        })
    }

    fn enroll_plan(&self, common: &Common) -> anyhow::Result<identities::EnrollPlan> {
        let ca_pem = rollcall_common::files::read_bounded_utf8(&self.ca, 64 * 1024)
            .with_context(|| format!("read the coordinator CA {}", self.ca.display()))?;
        let mut dial = common.dial.clone();
        // Enrollment connections come from the first source address.
        dial.local_ip = Some(IpAddr::V4(common.source_ip));
        Ok(identities::EnrollPlan {
            sim_dir: self.sim_dir.clone(),
            coordinator: common.coordinators[0].clone(),
            ca_pem,
            token: self.token.clone(),
            first_index: self.first_index,
            count: self.agents,
            concurrency: self.enroll_concurrency,
            dial,
        })
    }
}

/// `main` of `rollcall-sim`.
pub fn main() -> ExitCode {
    let cli = SimCli::parse();
    rollcall_common::logging::init(cli.log_json);
    raise_fd_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(cli.command));
    runtime.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Each simulated agent holds a socket: take the hard limit. (The
/// simulator runs on the Linux benchmark machines; Windows has no such
/// limit to raise.)
#[cfg(not(unix))]
fn raise_fd_limit() {}

/// Each simulated agent holds a socket: take the hard limit.
#[cfg(unix)]
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if let (Some(current), Some(maximum)) = (limit.current, limit.maximum)
        && current < maximum
    {
        limit.current = Some(maximum);
        if let Err(error) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(%error, "could not raise the open-file limit");
        }
    }
}

async fn dispatch(command: SimCommand) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let signals = tokio::spawn(stop_on_signal(shutdown.clone()));
    let result = match command {
        SimCommand::Enroll(args) => {
            let common = args.check()?;
            let loaded = identities::ensure(&args.enroll_plan(&common)?, &shutdown).await?;
            println!(
                "{} simulated agents enrolled in {}",
                loaded.len(),
                args.sim_dir.display()
            );
            Ok(())
        }
        SimCommand::Run {
            common: args,
            check_interval,
            connect_rate,
            reconnect_initial,
            reconnect_max,
            status_file,
            duration,
        } => {
            let common = args.check()?;
            if check_interval < Duration::from_secs(1) {
                bail!("--check-interval must be at least 1s");
            }
            if reconnect_initial.is_zero() || reconnect_max < reconnect_initial {
                bail!("need 0 < --reconnect-initial <= --reconnect-max");
            }
            let loaded = identities::ensure(&args.enroll_plan(&common)?, &shutdown).await?;
            let plan = fleet::FleetPlan {
                common,
                check_interval,
                connect_rate,
                reconnect: ReconnectConfig {
                    initial: reconnect_initial,
                    max: reconnect_max,
                    ..ReconnectConfig::default()
                },
                status_file,
                duration,
            };
            fleet::run(plan, loaded, shutdown.clone()).await
        }
        SimCommand::Burst { common: args, reports } => {
            let common = args.check()?;
            if reports == 0 {
                bail!("--reports must be at least 1");
            }
            let loaded = identities::ensure(&args.enroll_plan(&common)?, &shutdown).await?;
            let result = burst::run(&common, loaded, reports, shutdown.clone()).await?;
            println!("{}", serde_json::to_string(&result).context("encode the result")?);
            Ok(())
        }
    };
    signals.abort();
    result
}

async fn stop_on_signal(shutdown: CancellationToken) {
    crate::main_entry::stop_requested().await;
    tracing::info!("stopping the simulated agents");
    shutdown.cancel();
}
