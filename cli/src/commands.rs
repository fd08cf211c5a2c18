//! `rollcall recheck SELECTOR` and `rollcall update-now SELECTOR`: push the
//! command, show live progress as results come back, end with a summary.

use std::io::IsTerminal;
use std::time::Duration;

use rollcall_common::proto;
use serde::Serialize;
use tokio_stream::StreamExt;

use super::output::{OutputFormat, print_json};
use super::{AdminClient, CliError, CliResult};

#[derive(Debug, clap::Args)]
pub struct CommandArgs {
    /// `all`, an agent id, or key=value[,key=value] (e.g. cause=update_permission).
    pub selector: String,
    /// How long to wait for answers.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub wait: Duration,
}

/// The summary in `--output json` (stable).
#[derive(Debug, Serialize)]
pub struct CommandSummary {
    pub targeted: u32,
    pub answered: u32,
    pub completed: u32,
    pub behind: u32,
    pub unreachable: u32,
    pub refused: u32,
}

pub async fn run(
    client: &AdminClient,
    format: OutputFormat,
    catalog: &rollcall_common::i18n::Catalog,
    kind: proto::CommandKind,
    args: CommandArgs,
) -> CliResult {
    let mut stream = client
        .inner
        .clone()
        .send_command(proto::SendCommandRequest {
            selector: args.selector,
            kind: kind as i32,
            wait_ms: u64::try_from(args.wait.as_millis()).unwrap_or(u64::MAX),
        })
        .await?
        .into_inner();
    let live = format != OutputFormat::Json && std::io::stderr().is_terminal();
    let mut last = proto::CommandProgress::default();
    while let Some(progress) = stream.next().await {
        let progress = progress?;
        if live {
            eprint!(
                "\r{} {}   ",
                super::chart::progress_bar(progress.answered + progress.refused, progress.targeted, 24),
                catalog.tr_args(
                    "cli-command-progress",
                    &[
                        ("answered", progress.answered.to_string()),
                        ("targeted", progress.targeted.to_string()),
                        ("completed", progress.completed.to_string()),
                        ("behind", progress.behind.to_string()),
                        ("refused", progress.refused.to_string()),
                    ]
                )
            );
        }
        let done = progress.done;
        last = progress;
        if done {
            break;
        }
    }
    if live {
        eprintln!();
    }
    if !last.done {
        return Err(CliError::new(3, "the coordinator ended the progress stream early"));
    }
    let summary = CommandSummary {
        targeted: last.targeted,
        answered: last.answered,
        completed: last.completed,
        behind: last.behind,
        unreachable: last.unreachable,
        refused: last.refused,
    };
    match format {
        OutputFormat::Json => print_json(&summary),
        OutputFormat::Table | OutputFormat::Markdown => {
            let verb = if kind == proto::CommandKind::Recheck {
                "recheck"
            } else {
                "update-now"
            };
            println!(
                "{}",
                catalog.tr_args(
                    "cli-command-summary",
                    &[
                        ("verb", verb.to_string()),
                        ("targeted", summary.targeted.to_string()),
                        ("answered", summary.answered.to_string()),
                        ("completed", summary.completed.to_string()),
                        ("behind", summary.behind.to_string()),
                        ("refused", summary.refused.to_string()),
                        ("unreachable", summary.unreachable.to_string()),
                    ]
                )
            );
            Ok(())
        }
    }
}
