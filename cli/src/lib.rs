//! `rollcall`, the admin CLI: queries and drives the coordinator over mTLS
//! with an admin identity (a directory holding `ca.pem`, `cert.pem`,
//! `key.pem`).
//!
//! Exit codes (stable): 0 success; 1 failure; 2 usage error; 3 the
//! coordinator is unreachable; 4 permission denied (role or revoked
//! certificate); 5 not found.

mod admins;
mod agents;
mod audit;
mod bundles;
mod chart;
mod commands;
mod connect;
mod output;
mod policy;
mod report;
mod rollouts;
mod roster;
mod tokens;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use chart::progress_bar;
pub use connect::AdminClient;
pub use output::OutputFormat;

/// `rollcall --help`: the commands grouped by task (clap lists subcommands
/// under one heading only, so the groups are written here; a test checks
/// that every command is in one), then a rollout from start to report.
pub const HELP_TEMPLATE: &str = "\
{about-with-newline}
{usage-heading} {usage}

Rollouts (runbook preamble, steps 1-7):
  rollout      Start, list, show or cancel a rollout
  status       The current rollout's completion, stragglers by cause, fleet cause
  stragglers   Stragglers with their runbook cause: update agents first
  recheck      Ask the selected agents to run their checks now
  update-now   The manual update notification: the selected agents run their allowed update action
  watch        Stream events (state changes, new stragglers, command outcomes) as they happen

Fleet:
  agents       List agents (filter with --selector)
  agent        One agent: every check's result, evidence and remediation
  policy       The fleet policy the checks compare endpoints with
  roster       Every endpoint Apex One manages (Apex Central or a console export): refresh, import, status, list

Identities:
  token        Enrollment tokens for new agents
  revoke       Revoke an agent: its stream is cut and its certificate refused
  admin        Admin identities: issue, list, revoke (admin role)

Support (runbook step 8):
  report       The support report (Markdown or JSON, --lang ja)
  collect      Ask the selected agents for their update-failure logs
  bundle       Stored log bundles: get one, list them

Admin:
  audit        The audit log of state-changing admin calls (admin role)
  completions  Print shell completions
  man          Print the man page (roff)
  help         Print this message or the help of a command

Options:
{options}
{after-help}
";

#[derive(Debug, Parser)]
#[command(
    name = "rollcall",
    version,
    about = "Query and drive the rollcall coordinator",
    help_template = HELP_TEMPLATE,
    after_help = "A rollout, start to end (ROLLCALL_COORDINATOR and ROLLCALL_IDENTITY set):\n  rollcall policy apply policy.toml\n  rollcall rollout start --target 14.0.13140 --grace 2h --recheck-every 30m\n  rollcall status\n  rollcall stragglers\n  rollcall agent 0191c3a4-7d1e-7c3a-9a4b-0123456789ab\n  rollcall recheck cause=update_permission\n  rollcall update-now cause=unknown\n  rollcall report --lang ja > support.md\n\nMore examples:\n  rollcall --output json agents --selector site=osaka\n  rollcall token create --uses 50 --ttl 2h --label site=osaka\n  rollcall <command> --help"
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
    /// Output format (`markdown` applies to `report`).
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Language of messages, remediation and the report (default: from LANG).
    #[arg(long, global = true, value_enum)]
    pub lang: Option<rollcall_common::i18n::Lang>,
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
    /// Stragglers with their runbook cause: update agents first, then the
    /// roster's endpoints without a probe (cause no_probe).
    Stragglers(rollouts::StragglersArgs),
    /// The roster: every endpoint the managed product lists (import a
    /// console export, refresh from Apex Central, status, list).
    #[command(subcommand)]
    Roster(roster::RosterCommand),
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
    /// Stream events (state changes, new stragglers, command outcomes) as they happen.
    #[command(after_help = "Examples:\n  rollcall watch\n  rollcall -o json watch --count 10")]
    Watch(watch::WatchArgs),
    /// The runbook step-8 support report (Markdown or JSON).
    #[command(
        after_help = "Examples:\n  rollcall report > support.md\n  rollcall report --lang ja\n  rollcall -o json report --rollout r-0191c3a47d1e"
    )]
    Report(report::ReportArgs),
    /// Runbook step 8: ask the selected agents for the update-failure logs
    /// their own agent.toml `[collect]` names, wait, and write one .tar per
    /// agent into --out (operator role).
    #[command(
        after_help = "Examples:\n  rollcall collect cause=unknown --out support/\n  rollcall collect 0191c3a4-7d1e-7c3a-9a4b-0123456789ab --wait 10m"
    )]
    Collect(bundles::CollectArgs),
    /// Stored log bundles: get one, list them.
    #[command(subcommand)]
    Bundle(bundles::BundleCommand),
    /// The audit log of state-changing admin calls (admin role).
    Audit(audit::AuditArgs),
    /// Admin identities: issue, list, revoke (admin role).
    #[command(subcommand)]
    Admin(admins::AdminCommand),
    /// Print shell completions.
    #[command(after_help = "Example:\n  rollcall completions bash > /etc/bash_completion.d/rollcall")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    #[command(after_help = "Example:\n  rollcall man > /usr/local/share/man/man1/rollcall.1")]
    Man,
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
    // Offline commands first: they need no coordinator.
    match &cli.command {
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "rollcall", &mut std::io::stdout());
            return Ok(());
        }
        Command::Man => {
            let command = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(command)
                .render(&mut std::io::stdout())
                .map_err(|error| CliError::new(1, format!("write the man page: {error}")))?;
            return Ok(());
        }
        _ => {}
    }
    let lang = cli
        .lang
        .unwrap_or_else(|| rollcall_common::i18n::Lang::from_env(|name| std::env::var(name).ok()));
    let catalog = rollcall_common::i18n::Catalog::new(lang);
    let client = AdminClient::connect(&cli.coordinator, cli.identity.as_deref())?;
    let format = cli.output;
    match cli.command {
        Command::Completions { .. } | Command::Man => Ok(()),
        Command::Agents(args) => agents::list(&client, format, &catalog, args).await,
        Command::Agent { id } => agents::show(&client, format, &catalog, &id).await,
        Command::Revoke { agent_id } => agents::revoke(&client, format, &catalog, &agent_id).await,
        Command::Token(command) => tokens::run(&client, format, &catalog, command).await,
        Command::Policy(command) => policy::run(&client, format, &catalog, command).await,
        Command::Rollout(command) => rollouts::rollout(&client, format, &catalog, command).await,
        Command::Status(args) => rollouts::status(&client, format, &catalog, args).await,
        Command::Stragglers(args) => rollouts::stragglers(&client, format, &catalog, args).await,
        Command::Recheck(args) => {
            commands::run(
                &client,
                format,
                &catalog,
                rollcall_common::proto::CommandKind::Recheck,
                args,
            )
            .await
        }
        Command::UpdateNow(args) => {
            commands::run(
                &client,
                format,
                &catalog,
                rollcall_common::proto::CommandKind::UpdateNow,
                args,
            )
            .await
        }
        Command::Watch(args) => watch::run(&client, format, &catalog, args).await,
        Command::Report(args) => report::run(&client, format, &catalog, args).await,
        Command::Collect(args) => bundles::collect(&client, format, &catalog, args).await,
        Command::Bundle(command) => bundles::bundle(&client, format, &catalog, command).await,
        Command::Audit(args) => audit::run(&client, format, &catalog, args).await,
        Command::Roster(command) => roster::run(&client, format, &catalog, command).await,
        Command::Admin(command) => admins::run(&client, format, &catalog, command).await,
    }
}

#[cfg(test)]
mod tests {
    use rollcall_common::i18n::{Catalog, Lang};

    /// Literal catalogue keys in the CLI's sources (`tr("…")`,
    /// `tr_args("…")`) exist in both languages.
    #[test]
    fn every_command_is_in_one_group_of_the_help() {
        use crate::{Cli, HELP_TEMPLATE};
        use clap::CommandFactory;
        let command = Cli::command();
        for subcommand in command.get_subcommands() {
            let name = subcommand.get_name();
            assert!(
                HELP_TEMPLATE.contains(&format!("\n  {name} ")),
                "rollcall {name} is in no group of HELP_TEMPLATE"
            );
        }
        let mut command = Cli::command();
        let help = command.render_long_help().to_string();
        for heading in [
            "Rollouts",
            "Fleet:",
            "Identities:",
            "Support",
            "Admin:",
            "A rollout, start to end",
            "--coordinator",
        ] {
            assert!(help.contains(heading), "{heading} missing:\n{help}");
        }
    }

    #[test]
    fn every_catalogue_key_the_cli_uses_exists() {
        let sources = [
            include_str!("agents.rs"),
            include_str!("rollouts.rs"),
            include_str!("report.rs"),
            include_str!("commands.rs"),
            include_str!("output.rs"),
            include_str!("roster/mod.rs"),
            include_str!("watch.rs"),
            include_str!("bundles.rs"),
            include_str!("tokens.rs"),
            include_str!("admins.rs"),
            include_str!("audit.rs"),
            include_str!("policy.rs"),
        ];
        let mut used = Vec::new();
        for source in sources {
            for piece in source.split("tr(\"").skip(1).chain(source.split("tr_args(\"").skip(1)) {
                used.extend(piece.split('"').next().map(str::to_string));
            }
            // Keys named as literals elsewhere (table headers, labels).
            for piece in source.split("\"cli-").skip(1) {
                used.extend(
                    piece
                        .split('"')
                        .next()
                        .filter(|rest| !rest.contains('{'))
                        .map(|rest| format!("cli-{rest}")),
                );
            }
        }
        assert!(used.contains(&"cli-agents-summary".to_string()), "{used:?}");
        assert!(used.contains(&"cli-col-hostname".to_string()), "{used:?}");
        for lang in [Lang::En, Lang::Ja] {
            let catalog = Catalog::new(lang);
            let missing: Vec<&String> = used.iter().filter(|key| !catalog.has(key)).collect();
            assert!(missing.is_empty(), "{lang:?} lacks {missing:?}");
        }
    }
}
