//! `rollcall`, the admin CLI: queries and drives the coordinator over mTLS
//! with an admin identity (a directory holding `ca.pem`, `cert.pem`,
//! `key.pem`).
//!
//! Exit codes (stable): 0 success; 1 failure; 2 usage error; 3 the
//! coordinator is unreachable; 4 permission denied (role or revoked
//! certificate); 5 not found.

mod agents;
mod chart;
mod commands;
mod connect;
mod output;
mod policy;
mod rollouts;
mod tokens;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use connect::AdminClient;
pub use output::OutputFormat;

#[derive(Debug, Parser)]
#[command(
    name = "rollcall",
    version,
    about = "Query and drive the rollcall coordinator",
    after_help = "Examples:\n  rollcall agents\n  rollcall --output json agents --selector site=osaka\n  rollcall token create --uses 50 --ttl 2h --label site=osaka\n  rollcall revoke 0191c3a4-7d1e-7c3a-9a4b-0123456789ab"
)]
pub struct Cli {
    /// Coordinator URL.
    #[arg(
        long,
        global = true,
        env = "ROLLCALL_COORDINATOR",
        default_value = "https://127.0.0.1:7443"
    )]
    pub coordinator: String,
    /// Admin identity directory (ca.pem, cert.pem, key.pem).
    #[arg(long, global = true, env = "ROLLCALL_IDENTITY")]
    pub identity: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List agents.
    #[command(
        after_help = "Examples:\n  rollcall agents\n  rollcall agents --selector role=update_agent\n  rollcall -o json agents"
    )]
    Agents(agents::AgentsArgs),
    /// One agent: every check's result, evidence and remediation.
    Agent {
        /// Agent id.
        id: String,
    },
    /// Revoke an agent: its stream is cut and its certificate refused.
    Revoke {
        /// Agent id.
        agent_id: String,
    },
    /// Enrollment tokens.
    #[command(subcommand)]
    Token(tokens::TokenCommand),
    /// The fleet policy (check parameters).
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Rollouts: start, list, show, cancel.
    #[command(subcommand)]
    Rollout(rollouts::RolloutCommand),
    /// The current rollout's completion, stragglers by cause, fleet cause.
    #[command(after_help = "Examples:\n  rollcall status\n  rollcall status --history\n  rollcall -o json status")]
    Status(rollouts::StatusArgs),
    /// Stragglers with their runbook cause: update agents first.
    Stragglers(rollouts::StragglersArgs),
    /// Ask the selected agents to run their checks now.
    #[command(
        after_help = "Examples:\n  rollcall recheck all\n  rollcall recheck cause=update_permission --wait 2m\n  rollcall -o json recheck site=osaka"
    )]
    Recheck(commands::CommandArgs),
    /// The server-side manual update notification: the selected agents run
    /// their locally allowed update action, then re-check.
    #[command(
        name = "update-now",
        after_help = "Examples:\n  rollcall update-now cause=unknown\n  rollcall update-now 0191c3a4-7d1e-7c3a-9a4b-0123456789ab"
    )]
    UpdateNow(commands::CommandArgs),
}

/// A failure with the exit code it maps to.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        CliError {
            code,
            message: message.into(),
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> Self {
        CliError::new(1, format!("{error:#}"))
    }
}

impl From<tonic::Status> for CliError {
    fn from(status: tonic::Status) -> Self {
        use tonic::Code;
        let code = match status.code() {
            Code::Unavailable | Code::DeadlineExceeded => 3,
            Code::PermissionDenied | Code::Unauthenticated => 4,
            Code::NotFound => 5,
            Code::InvalidArgument => 2,
            _ => 1,
        };
        let hint = match code {
            3 => " (is the coordinator running? check --coordinator / ROLLCALL_COORDINATOR)",
            4 => " (check the identity's role, or ask an admin for a new certificate)",
            _ => "",
        };
        CliError::new(code, format!("{}{hint}", status.message()))
    }
}

pub type CliResult = Result<(), CliError>;

/// `main` of `rollcall`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", error.message);
            ExitCode::from(error.code)
        }
    }
}

pub async fn dispatch(cli: Cli) -> CliResult {
    let client = AdminClient::connect(&cli.coordinator, cli.identity.as_deref())?;
    let format = cli.output;
    match cli.command {
        Command::Agents(args) => agents::list(&client, format, args).await,
        Command::Agent { id } => agents::show(&client, format, &id).await,
        Command::Revoke { agent_id } => agents::revoke(&client, format, &agent_id).await,
        Command::Token(command) => tokens::run(&client, format, command).await,
        Command::Policy(command) => policy::run(&client, format, command).await,
        Command::Rollout(command) => rollouts::rollout(&client, format, command).await,
        Command::Status(args) => rollouts::status(&client, format, args).await,
        Command::Stragglers(args) => rollouts::stragglers(&client, format, args).await,
        Command::Recheck(args) => {
            commands::run(&client, format, rollcall_common::proto::CommandKind::Recheck, args).await
        }
        Command::UpdateNow(args) => {
            commands::run(&client, format, rollcall_common::proto::CommandKind::UpdateNow, args).await
        }
    }
}
