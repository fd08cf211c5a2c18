//! `rollcall watch`: events as they happen, one per line (JSON lines with
//! `--output json`), until interrupted.

use rollcall_common::proto;
use serde::Serialize;
use tokio_stream::StreamExt;

use super::output::OutputFormat;
use super::{AdminClient, CliError, CliResult};

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Stop after this many events (default: run until interrupted).
    #[arg(long)]
    pub count: Option<u64>,
}

#[derive(Debug, Serialize)]
struct EventJson {
    at: String,
    kind: String,
    agent_id: Option<String>,
    hostname: Option<String>,
    rollout_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cause: Option<String>,
    detail: Option<String>,
}

fn some(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

pub async fn run(
    client: &AdminClient,
    format: OutputFormat,
    c: &rollcall_common::i18n::Catalog,
    args: WatchArgs,
) -> CliResult {
    let english = c.lang() == rollcall_common::i18n::Lang::En;
    // English keeps the state words it always printed (scripts grep them).
    let state = |word: &str| {
        if english {
            word.to_string()
        } else {
            rollcall_common::words::state_word(c, word)
        }
    };
    let mut stream = client.inner.clone().watch(proto::WatchRequest {}).await?.into_inner();
    let mut seen = 0u64;
    while let Some(event) = stream.next().await {
        let event = event?;
        match format {
            OutputFormat::Json => {
                let json = EventJson {
                    at: event.at,
                    kind: event.kind,
                    agent_id: some(event.agent_id),
                    hostname: some(event.hostname),
                    rollout_id: some(event.rollout_id),
                    from: some(event.from),
                    to: some(event.to),
                    cause: some(event.cause),
                    detail: some(event.detail),
                };
                let line = serde_json::to_string(&json).map_err(|error| CliError::new(1, error.to_string()))?;
                println!("{line}");
            }
            _ => {
                let change = if event.from.is_empty() && event.to.is_empty() {
                    String::new()
                } else {
                    format!(
                        " {} → {}",
                        if event.from.is_empty() {
                            c.tr("cli-history-new")
                        } else {
                            state(&event.from)
                        },
                        state(&event.to)
                    )
                };
                let cause = if event.cause.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", event.cause)
                };
                println!(
                    "{} {:<18} {}{change}{cause} {}",
                    rollcall_common::locale_fmt::datetime_text(c.lang(), &event.at),
                    event.kind,
                    event.hostname,
                    event.detail
                );
            }
        }
        seen += 1;
        if args.count.is_some_and(|count| seen >= count) {
            return Ok(());
        }
    }
    Err(CliError::new(3, "the coordinator closed the event stream"))
}
