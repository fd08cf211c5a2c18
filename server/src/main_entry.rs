//! The `rollcall-server` command line: parse, set up tracing, wire signals,
//! hand over to the library.
//!
//! Longer than ~400 lines: the clap definitions of every subcommand and flag
//! (the configuration reference is generated from them).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rollcall_common::pki::AdminRole;
use tokio_util::sync::CancellationToken;

use crate::config::ServeConfig;
use crate::data_dir::{DataDir, write_admin_identity};

/// Exit code for a configuration the coordinator refuses (EX_CONFIG).
pub const EXIT_BAD_CONFIG: u8 = 78;

#[derive(Debug, Parser)]
#[command(
    name = "rollcall-server",
    version,
    about = "The rollcall coordinator: tracks security-agent rollouts and diagnoses stragglers",
    after_help = "Examples:\n  rollcall-server init --data-dir /var/lib/rollcall --san coordinator.example.com\n  rollcall-server validate --data-dir /var/lib/rollcall\n  rollcall-server serve --data-dir /var/lib/rollcall --listen 0.0.0.0:7443\n  rollcall-server admin-cert --data-dir /var/lib/rollcall --name alice --role operator --out ./alice\n  rollcall-server serve --help        (every flag, grouped by what it bounds)"
)]
pub struct ServerCli {
    /// Log JSON lines instead of human-readable text.
    #[arg(long, global = true, env = "ROLLCALL_LOG_JSON")]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: ServerCommand,
}

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Create a data dir: CA, server certificate, local admin identity, store.
    #[command(
        after_help = "Example:\n  rollcall-server init --data-dir /var/lib/rollcall --san coordinator.example.com"
    )]
    Init {
        /// The directory to create (it must not hold a CA yet); `serve`
        /// takes the same --data-dir.
        #[arg(long, env = "ROLLCALL_DATA_DIR")]
        data_dir: PathBuf,
        /// Extra names or IP addresses for the server certificate (localhost
        /// and 127.0.0.1 are always included).
        #[arg(long = "san")]
        sans: Vec<String>,
        /// The PostgreSQL database the replicas will share: the schema is
        /// created there and the local admin recorded in it (no SQLite file).
        #[arg(long, env = "ROLLCALL_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Serve agents and admins.
    #[command(after_help = "Example:\n  rollcall-server serve --data-dir /var/lib/rollcall --listen 0.0.0.0:7443")]
    Serve(ServeArgs),
    /// Check the data dir and settings without serving (for ExecStartPre).
    Validate(ServeArgs),
    /// Issue an admin identity (ca.pem, cert.pem, key.pem) with a role.
    #[command(
        after_help = "Example:\n  rollcall-server admin-cert --data-dir /var/lib/rollcall --name alice --role operator --out ./alice"
    )]
    AdminCert {
        /// The coordinator's data dir (its CA signs the identity).
        #[arg(long, env = "ROLLCALL_DATA_DIR")]
        data_dir: PathBuf,
        /// The admin's name, as the audit log records it.
        #[arg(long)]
        name: String,
        /// metrics (scrapes /metrics only), viewer, operator or admin.
        #[arg(long)]
        role: AdminRole,
        /// Directory to write ca.pem, cert.pem and key.pem into (give it to
        /// the admin: `rollcall --identity DIR`).
        #[arg(long)]
        out: PathBuf,
        /// Record the identity in this PostgreSQL database (where the
        /// replicas list and revoke admins) instead of the embedded store.
        #[arg(long, env = "ROLLCALL_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// The data dir `init` created: CA, server certificate, the embedded
    /// store (unless --database-url), the local admin identity.
    #[arg(long, env = "ROLLCALL_DATA_DIR")]
    #[arg(help_heading = "Where it serves and stores")]
    pub data_dir: PathBuf,
    /// Address and port agents and admins connect to (mTLS gRPC); use
    /// 0.0.0.0:7443 to serve the fleet.
    #[arg(long, env = "ROLLCALL_LISTEN", default_value = "127.0.0.1:7443")]
    #[arg(help_heading = "Where it serves and stores")]
    pub listen: SocketAddr,
    /// Agent heartbeat interval.
    #[arg(long, env = "ROLLCALL_HEARTBEAT_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    #[arg(help_heading = "Agents")]
    pub heartbeat_interval: Duration,
    /// HTTP/2 keepalive ping interval on every connection (large fleets on
    /// busy hosts: minutes).
    #[arg(long, env = "ROLLCALL_KEEPALIVE_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    #[arg(help_heading = "Connections")]
    pub keepalive_interval: Duration,
    /// How long a keepalive ping may go unanswered before the connection is
    /// dropped (the agent reconnects and re-sends its spool).
    #[arg(long, env = "ROLLCALL_KEEPALIVE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    #[arg(help_heading = "Connections")]
    pub keepalive_timeout: Duration,
    /// Lifetime of agent certificates (renewed at about half).
    #[arg(long, env = "ROLLCALL_AGENT_CERT_LIFETIME", default_value = "7d", value_parser = humantime::parse_duration)]
    #[arg(help_heading = "Agents")]
    pub agent_cert_lifetime: Duration,
    /// Largest gRPC message in either direction, in bytes.
    #[arg(long, env = "ROLLCALL_MAX_MESSAGE_BYTES", default_value_t = 1024 * 1024)]
    #[arg(help_heading = "Connections")]
    pub max_message_bytes: usize,
    /// TLS handshakes in progress at once; more wait at most the first-byte
    /// timeout for a slot, then are closed (agents retry with backoff).
    #[arg(long, env = "ROLLCALL_MAX_PENDING_HANDSHAKES", default_value_t = 512)]
    #[arg(help_heading = "Connections")]
    pub max_pending_handshakes: usize,
    /// Established connections at once.
    #[arg(long, env = "ROLLCALL_MAX_CONNECTIONS", default_value_t = 200_000)]
    #[arg(help_heading = "Connections")]
    pub max_connections: usize,
    /// Bound on the graceful drain at shutdown.
    #[arg(long, env = "ROLLCALL_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    #[arg(help_heading = "Connections")]
    pub shutdown_grace: Duration,
    /// How often the rollout engine evaluates active rollouts.
    #[arg(long, env = "ROLLCALL_ENGINE_INTERVAL", default_value = "2s", value_parser = humantime::parse_duration)]
    #[arg(help_heading = "Rollout engine")]
    pub engine_interval: Duration,
    /// Commands the engine sends per tick at most (one wave).
    #[arg(long, env = "ROLLCALL_MAX_COMMANDS_PER_TICK", default_value_t = 5000)]
    #[arg(help_heading = "Rollout engine")]
    pub max_commands_per_tick: usize,
    /// Messages (reports, receipts, renewal requests) per agent per second,
    /// sustained; a faster agent's stream is cut. Kept per agent id across
    /// its streams: a reconnect does not refill it.
    #[arg(long, env = "ROLLCALL_REPORT_RATE", default_value_t = 5.0)]
    #[arg(help_heading = "Per-agent budgets")]
    pub report_rate: f64,
    /// Messages an agent may send in a burst above the rate (a reconnect
    /// re-sends its spool).
    #[arg(long, env = "ROLLCALL_REPORT_BURST", default_value_t = 200.0)]
    #[arg(help_heading = "Per-agent budgets")]
    pub report_burst: f64,
    /// Bytes of those messages per agent per second, sustained; an agent
    /// over it has its stream cut like one over the message rate.
    #[arg(long, env = "ROLLCALL_REPORT_BYTES_RATE", default_value_t = 16384.0)]
    #[arg(help_heading = "Per-agent budgets")]
    pub report_bytes_rate: f64,
    /// Bytes an agent may send in a burst above the byte rate; at least
    /// `--max-message-bytes`.
    #[arg(long, env = "ROLLCALL_REPORT_BYTES_BURST", default_value_t = 16_777_216.0)]
    #[arg(help_heading = "Per-agent budgets")]
    pub report_bytes_burst: f64,
    /// At most one certificate renewal per agent within this time (capped
    /// at a quarter of `--agent-cert-lifetime`); a renewal asked for sooner,
    /// or before 40% of the certificate's life, is not answered.
    #[arg(long, env = "ROLLCALL_RENEWAL_INTERVAL", default_value = "1h", value_parser = humantime::parse_duration)]
    #[arg(help_heading = "Agents")]
    pub renewal_interval: Duration,
    /// New streams (Connect + Hello) one agent may open per minute,
    /// sustained; beyond it the connect is refused with RESOURCE_EXHAUSTED
    /// and a retry hint before anything is written. Per agent id.
    #[arg(long, env = "ROLLCALL_CONNECT_RATE", default_value_t = 6.0)]
    pub connect_rate: f64,
    /// Streams an agent may open in a burst above the connect rate (an
    /// agent on a flaky link reconnects a few times in a row).
    #[arg(long, env = "ROLLCALL_CONNECT_BURST", default_value_t = 10.0)]
    pub connect_burst: f64,
    /// Delete reports received longer ago than this (e.g. 30d), keeping each
    /// agent's latest report, the one holding its latest checks and the
    /// update-now reports of running rollouts; `off` (or `0`) keeps all.
    #[arg(long, env = "ROLLCALL_RETAIN_REPORTS", default_value = "30d", value_parser = crate::config::parse_retention)]
    #[arg(help_heading = "Report retention")]
    pub retain_reports: crate::config::Retention,
    /// How often the report retention pass runs (batches of 1,000 deletes).
    #[arg(long, env = "ROLLCALL_RETENTION_INTERVAL", default_value = "10m", value_parser = humantime::parse_duration)]
    #[arg(help_heading = "Report retention")]
    pub retention_interval: Duration,
    /// Serve the web dashboard and Prometheus `/metrics` over HTTPS here
    /// (admin client certificates, a viewer is enough). Off by default.
    #[arg(long, env = "ROLLCALL_DASHBOARD_LISTEN")]
    #[arg(help_heading = "Where it serves and stores")]
    pub dashboard_listen: Option<SocketAddr>,
    /// Store everything in this PostgreSQL database instead of SQLite, so
    /// several replicas behind a TCP load balancer share it
    /// (postgres://user:password@host:5432/rollcall). The PKI stays in the data dir.
    #[arg(long, env = "ROLLCALL_DATABASE_URL", hide_env_values = true)]
    #[arg(help_heading = "Where it serves and stores")]
    pub database_url: Option<String>,
    /// This replica's name in logs, agent rows and the engine lease (e.g. the
    /// pod name); a fresh random one per start when unset.
    #[arg(long, env = "ROLLCALL_REPLICA_ID")]
    #[arg(help_heading = "Replicas (PostgreSQL)")]
    pub replica_id: Option<String>,
    /// How long the engine lease lasts unrenewed (PostgreSQL): when a replica
    /// dies, another takes over the rollout engine after at most this.
    #[arg(long, env = "ROLLCALL_ENGINE_LEASE_TTL", default_value = "15s", value_parser = humantime::parse_duration)]
    #[arg(help_heading = "Replicas (PostgreSQL)")]
    pub engine_lease_ttl: Duration,
    #[command(flatten)]
    pub edge: EdgeArgs,
    #[command(flatten)]
    pub roster: RosterArgs,
}

/// `serve` flags of the roster's Apex Central source (docs/ROSTER.md).
#[derive(Debug, Clone, clap::Args)]
pub struct RosterArgs {
    /// Apex Central's base URL (https://apex-central.example); read-only
    /// calls of its Automation API list the managed agents. Off when unset.
    #[arg(long, env = "ROLLCALL_APEX_CENTRAL_URL", requires_all = ["apex_central_app_id", "apex_central_key_file"])]
    pub apex_central_url: Option<String>,
    /// The application ID from Apex Central's Automation API Access Settings.
    #[arg(long, env = "ROLLCALL_APEX_CENTRAL_APP_ID")]
    pub apex_central_app_id: Option<String>,
    /// A file holding the application's API key (refused when group or
    /// others can read it).
    #[arg(long, env = "ROLLCALL_APEX_CENTRAL_KEY_FILE")]
    pub apex_central_key_file: Option<PathBuf>,
    /// CA certificate(s) (PEM) Apex Central's TLS certificate must chain to
    /// (default: the system's roots).
    #[arg(long, env = "ROLLCALL_APEX_CENTRAL_CA")]
    pub apex_central_ca: Option<PathBuf>,
    /// The ProductAgents `product` filter (Apex One Security Agents).
    #[arg(long, env = "ROLLCALL_APEX_CENTRAL_PRODUCT", default_value = crate::apex_central::APEX_ONE_PRODUCT)]
    pub apex_central_product: String,
    /// One Apex Central pass (connect, TLS, answer) at most.
    #[arg(long, env = "ROLLCALL_APEX_CENTRAL_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub apex_central_timeout: Duration,
    /// How often the roster is read again from Apex Central.
    #[arg(long, env = "ROLLCALL_ROSTER_REFRESH", default_value = "1h", value_parser = humantime::parse_duration)]
    pub roster_refresh: Duration,
}

impl RosterArgs {
    fn apply(&self, config: &mut ServeConfig) {
        config.roster_refresh = self.roster_refresh;
        config.apex_central = self
            .apex_central_url
            .as_ref()
            .map(|url| crate::apex_central::ApexCentralConfig {
                url: url.clone(),
                app_id: self.apex_central_app_id.clone().unwrap_or_default(),
                key_file: self.apex_central_key_file.clone().unwrap_or_default(),
                ca: self.apex_central_ca.clone(),
                product: self.apex_central_product.clone(),
                timeout: self.apex_central_timeout,
            });
    }
}

/// `serve` flags that bound what unauthenticated peers may cost.
#[derive(Debug, Clone, clap::Args)]
pub struct EdgeArgs {
    /// A new connection must send its first byte (the TLS ClientHello) within this.
    #[arg(long, env = "ROLLCALL_FIRST_BYTE_TIMEOUT", default_value = "3s", value_parser = humantime::parse_duration)]
    #[arg(help_heading = "Unauthenticated peers")]
    pub first_byte_timeout: Duration,
    /// The TLS handshake must finish within this.
    #[arg(long, env = "ROLLCALL_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    #[arg(help_heading = "Unauthenticated peers")]
    pub handshake_timeout: Duration,
    /// Connections one source address (IPv6: one /64) may hold in the TLS
    /// handshake or without a client certificate; more are closed at once.
    /// Sites behind one NAT share it: agents shed here retry with backoff.
    #[arg(long, env = "ROLLCALL_MAX_UNAUTHENTICATED_PER_SOURCE", default_value_t = 64)]
    #[arg(help_heading = "Unauthenticated peers")]
    pub max_unauthenticated_per_source: usize,
    /// Connections without a client certificate (they may only enrol) are
    /// closed after this.
    #[arg(long, env = "ROLLCALL_ANONYMOUS_CONNECTION_LIFETIME", default_value = "30s", value_parser = humantime::parse_duration)]
    #[arg(help_heading = "Unauthenticated peers")]
    pub anonymous_connection_lifetime: Duration,
    /// Enrolment attempts per source address per minute, sustained.
    #[arg(long, env = "ROLLCALL_ENROLL_RATE_PER_SOURCE", default_value_t = 600.0)]
    #[arg(help_heading = "Unauthenticated peers")]
    pub enroll_rate_per_source: f64,
    /// Enrolment attempts one source address may make in a burst.
    #[arg(long, env = "ROLLCALL_ENROLL_BURST_PER_SOURCE", default_value_t = 100.0)]
    #[arg(help_heading = "Unauthenticated peers")]
    pub enroll_burst_per_source: f64,
    /// Serve gRPC server reflection (grpcurl), to callers with an admin or
    /// agent certificate only. Off by default.
    #[arg(long, env = "ROLLCALL_REFLECTION")]
    #[arg(help_heading = "Unauthenticated peers")]
    pub reflection: bool,
    /// Load balancers (CIDR[,CIDR…]) whose connections to the gRPC port
    /// start with a PROXY protocol v2 header (haproxy `send-proxy-v2`); the
    /// client address inside is used for every per-source limit and log.
    /// A listed address without a header, or a header from any other
    /// address, is refused. Off by default.
    #[arg(long, env = "ROLLCALL_PROXY_PROTOCOL_FROM", default_value = "", value_parser = crate::edge::proxy_protocol::ProxyTrust::parse)]
    pub proxy_protocol_from: crate::edge::proxy_protocol::ProxyTrust,
}

impl EdgeArgs {
    fn apply(&self, config: &mut ServeConfig) {
        config.handshake_timeout = self.handshake_timeout;
        config.edge = crate::config::EdgeLimits {
            first_byte_timeout: self.first_byte_timeout,
            max_unauthenticated_per_source: self.max_unauthenticated_per_source,
            anonymous_connection_lifetime: self.anonymous_connection_lifetime,
            enroll_per_minute_per_source: self.enroll_rate_per_source,
            enroll_burst_per_source: self.enroll_burst_per_source,
            reflection: self.reflection,
            proxy_protocol_from: self.proxy_protocol_from.clone(),
        };
    }
}

impl ServeArgs {
    pub fn to_config(&self) -> ServeConfig {
        let mut config = ServeConfig::new(&self.data_dir);
        config.heartbeat_interval = self.heartbeat_interval;
        config.keepalive_interval = self.keepalive_interval;
        config.keepalive_timeout = self.keepalive_timeout;
        config.agent_cert_lifetime = self.agent_cert_lifetime;
        config.max_message_bytes = self.max_message_bytes;
        config.max_pending_handshakes = self.max_pending_handshakes;
        config.max_connections = self.max_connections;
        config.shutdown_grace = self.shutdown_grace;
        config.engine_interval = self.engine_interval;
        config.max_commands_per_tick = self.max_commands_per_tick;
        config.report_rate_per_sec = self.report_rate;
        config.report_burst = self.report_burst;
        config.report_bytes_per_sec = self.report_bytes_rate;
        config.report_bytes_burst = self.report_bytes_burst;
        config.renewal_interval = self.renewal_interval;
        config.connect_rate_per_min = self.connect_rate;
        config.connect_burst = self.connect_burst;
        config.retain_reports = self.retain_reports.0;
        config.retention_interval = self.retention_interval;
        config.dashboard_listen = self.dashboard_listen;
        config.database_url = self.database_url.clone();
        if let Some(replica_id) = &self.replica_id {
            config.replica_id = replica_id.clone();
        }
        config.engine_lease_ttl = self.engine_lease_ttl;
        self.edge.apply(&mut config);
        self.roster.apply(&mut config);
        config
    }
}

/// `main` of `rollcall-server`.
pub fn main() -> ExitCode {
    let cli = ServerCli::parse();
    rollcall_common::logging::init(cli.log_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(cli.command));
    // Do not wait for stray blocking tasks at exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: ServerCommand) -> anyhow::Result<ExitCode> {
    match command {
        ServerCommand::Init {
            data_dir,
            sans,
            database_url,
        } => {
            let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
            names.extend(sans);
            names.dedup();
            let dir = DataDir::new(&data_dir);
            let admin_cert = dir.init(&names, database_url.is_none())?;
            if let Some(url) = &database_url {
                record_admin_in_postgres(url, &admin_cert, "local-admin", AdminRole::Admin).await?;
            }
            println!("initialised {}", data_dir.display());
            println!("  CA for agents:   {}", dir.ca_cert().display());
            println!("  admin identity:  {}", dir.admin_dir().display());
            println!("next: rollcall-server serve --data-dir {}", data_dir.display());
            Ok(ExitCode::SUCCESS)
        }
        ServerCommand::Validate(args) => {
            let config = args.to_config();
            if let Err(error) = validate(&config) {
                eprintln!("error: {error:#}");
                return Ok(ExitCode::from(EXIT_BAD_CONFIG));
            }
            println!("configuration and data dir {} are valid", config.data_dir.display());
            Ok(ExitCode::SUCCESS)
        }
        ServerCommand::Serve(args) => {
            let config = args.to_config();
            if let Err(error) = validate(&config) {
                eprintln!("error: {error:#}");
                return Ok(ExitCode::from(EXIT_BAD_CONFIG));
            }
            crate::edge::listener::raise_open_file_limit(config.max_connections);
            let listener = tokio::net::TcpListener::bind(args.listen)
                .await
                .with_context(|| format!("listen on {}", args.listen))?;
            tracing::info!(listen = %args.listen, "listening");
            let shutdown = CancellationToken::new();
            let signal_task = tokio::spawn(shutdown_on_signal(shutdown.clone()));
            let result = crate::server::run(config, listener, shutdown.clone()).await;
            signal_task.abort();
            result?;
            Ok(ExitCode::SUCCESS)
        }
        ServerCommand::AdminCert {
            data_dir,
            name,
            role,
            out,
            database_url,
        } => {
            let ca = DataDir::new(&data_dir).load_ca()?;
            let cert = write_admin_identity(&ca, &name, role, &out)?;
            match &database_url {
                Some(url) => record_admin_in_postgres(url, &cert, &name, role).await?,
                None => DataDir::new(&data_dir).record_admin_offline(&cert, &name, role)?,
            }
            println!("wrote admin identity {name} ({role}) to {}", out.display());
            println!("use it with: rollcall --identity {} …", out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Records an admin certificate issued offline in the shared PostgreSQL
/// store (creating the schema if this is the first use), so every replica
/// lists it and can revoke it.
async fn record_admin_in_postgres(url: &str, cert_pem: &str, name: &str, role: AdminRole) -> anyhow::Result<()> {
    let row = crate::data_dir::cert_row(cert_pem, name, role, "rollcall-server")?;
    let store = crate::store::postgres::PgStore::connect(url, "rollcall-server-offline")
        .await
        .context("open the PostgreSQL store")?;
    crate::store::AuditStore::record_admin_certificate(&store, row)
        .await
        .map_err(|error| anyhow::anyhow!("record the admin certificate: {error}"))
}

/// Everything `serve` checks before binding a port.
pub fn validate(config: &ServeConfig) -> anyhow::Result<()> {
    config.validate()?;
    DataDir::new(&config.data_dir).load_pki()?;
    Ok(())
}

/// Cancels `shutdown` on SIGTERM or SIGINT.
pub async fn shutdown_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                let _ = ctrl_c.await;
                shutdown.cancel();
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutdown requested");
    crate::notify::stopping();
    shutdown.cancel();
}
