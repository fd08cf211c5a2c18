//! `rollcall collect SELECTOR` and `rollcall bundle get|list`: runbook step
//! 8's log bundles. `collect` asks the selected agents for the logs their
//! own `[collect]` config names (the command carries no path), waits for
//! the bundles and writes each to `--out DIR/HOSTNAME-AGENTID.tar`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rollcall_common::proto;
use serde::Serialize;

use super::output::{OutputFormat, print_json, table_in};
use super::{AdminClient, CliError, CliResult};

/// How often `collect` asks where the bundles stand while it waits.
const POLL_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, clap::Args)]
pub struct CollectArgs {
    /// `all`, an agent id, or key=value[,key=value] (e.g. cause=unknown).
    pub selector: String,
    /// Where to write the bundles (created if missing).
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// How long to wait for the bundles (the commands expire after it).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub wait: Duration,
}

#[derive(Debug, clap::Subcommand)]
pub enum BundleCommand {
    /// Download an agent's newest complete bundle.
    #[command(after_help = "Example:\n  rollcall bundle get 0191c3a4-7d1e-7c3a-9a4b-0123456789ab --out support/")]
    Get {
        /// Agent id.
        agent_id: String,
        /// Where to write it.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Every stored bundle (the newest per agent is kept).
    List,
}

/// One bundle in `--output json` (stable).
#[derive(Debug, Serialize)]
pub struct BundleJson {
    pub agent_id: String,
    pub hostname: String,
    pub command_id: String,
    /// waiting, receiving, complete, refused or expired.
    pub state: String,
    pub reason: String,
    pub bytes: u64,
    pub files: u32,
    pub skipped: u32,
    pub collected_at: String,
    /// Where the bundle was written, when it was.
    pub file: Option<String>,
}

impl BundleJson {
    fn of(info: &proto::BundleInfo, file: Option<&Path>) -> Self {
        BundleJson {
            agent_id: info.agent_id.clone(),
            hostname: info.hostname.clone(),
            command_id: info.command_id.clone(),
            state: info.state.clone(),
            reason: info.reason.clone(),
            bytes: info.bytes,
            files: info.files,
            skipped: info.skipped,
            collected_at: info.collected_at.clone(),
            file: file.map(|path| path.display().to_string()),
        }
    }
}

/// A file name from what the coordinator says: letters, digits, `-`, `.`
/// and `_` only, so a hostile host name cannot climb out of `--out`.
fn file_name(info: &proto::BundleInfo) -> String {
    let clean = |text: &str| -> String {
        text.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-._".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>()
            .trim_start_matches('.')
            .to_string()
    };
    format!("{}-{}.tar", clean(&info.hostname), clean(&info.agent_id))
}

async fn download(
    client: &AdminClient,
    agent_id: &str,
    command_id: &str,
    out: &Path,
) -> Result<(proto::BundleInfo, PathBuf), CliError> {
    let bundle = client
        .inner
        .clone()
        .get_bundle(proto::GetBundleRequest {
            agent_id: agent_id.to_string(),
            command_id: command_id.to_string(),
        })
        .await?
        .into_inner();
    let info = bundle
        .info
        .ok_or_else(|| CliError::new(1, "the coordinator sent a bundle without its description"))?;
    std::fs::create_dir_all(out).map_err(|error| CliError::new(1, format!("create {}: {error}", out.display())))?;
    let path = out.join(file_name(&info));
    // Logs may hold what others should not read: owner-only, like secrets.
    rollcall_common::files::write_atomic(&path, &bundle.tar, true)?;
    Ok((info, path))
}

fn is_final(state: &str) -> bool {
    matches!(state, "complete" | "refused" | "expired")
}

pub async fn collect(
    client: &AdminClient,
    format: OutputFormat,
    c: &rollcall_common::i18n::Catalog,
    args: CollectArgs,
) -> CliResult {
    let response = client
        .inner
        .clone()
        .collect(proto::CollectRequest {
            selector: args.selector,
            wait_ms: u64::try_from(args.wait.as_millis()).unwrap_or(u64::MAX),
        })
        .await?
        .into_inner();
    if response.targets.is_empty() {
        return Err(CliError::new(5, "the selector matches no agent"));
    }
    let deadline = tokio::time::Instant::now() + args.wait;
    let bundles = loop {
        let bundles = client
            .inner
            .clone()
            .list_bundles(proto::ListBundlesRequest {
                batch_id: response.batch_id.clone(),
            })
            .await?
            .into_inner()
            .bundles;
        let done = bundles.iter().filter(|info| is_final(&info.state)).count();
        if format != OutputFormat::Json {
            eprint!(
                "\r{}   ",
                c.tr_args(
                    "cli-collect-progress",
                    &[
                        ("done", done.to_string()),
                        ("total", response.targets.len().to_string())
                    ]
                )
            );
        }
        if done >= response.targets.len() || tokio::time::Instant::now() >= deadline {
            break bundles;
        }
        tokio::time::sleep(POLL_EVERY).await;
    };
    if format != OutputFormat::Json {
        eprintln!();
    }
    let mut results = Vec::new();
    for info in &bundles {
        if info.state == "complete" {
            let (_, path) = download(client, &info.agent_id, &info.command_id, &args.out).await?;
            results.push(BundleJson::of(info, Some(&path)));
        } else {
            results.push(BundleJson::of(info, None));
        }
    }
    print_bundles(format, c, &results)?;
    if results.iter().all(|bundle| bundle.file.is_some()) {
        Ok(())
    } else {
        Err(CliError::new(1, c.tr("cli-collect-incomplete")))
    }
}

fn print_bundles(format: OutputFormat, c: &rollcall_common::i18n::Catalog, bundles: &[BundleJson]) -> CliResult {
    match format {
        OutputFormat::Json => print_json(&bundles),
        OutputFormat::Table | OutputFormat::Markdown => {
            let mut out = table_in(
                c,
                &[
                    "cli-col-hostname",
                    "cli-col-state",
                    "cli-col-files",
                    "cli-col-left-out",
                    "cli-col-bytes",
                    "cli-col-collected",
                    "cli-col-file-reason",
                ],
            );
            for bundle in bundles {
                out.add_row(vec![
                    bundle.hostname.clone(),
                    bundle.state.clone(),
                    bundle.files.to_string(),
                    bundle.skipped.to_string(),
                    bundle.bytes.to_string(),
                    rollcall_common::locale_fmt::datetime_text(c.lang(), &bundle.collected_at),
                    bundle.file.clone().unwrap_or_else(|| bundle.reason.clone()),
                ]);
            }
            println!("{out}");
            Ok(())
        }
    }
}

pub async fn bundle(
    client: &AdminClient,
    format: OutputFormat,
    c: &rollcall_common::i18n::Catalog,
    command: BundleCommand,
) -> CliResult {
    match command {
        BundleCommand::Get { agent_id, out } => {
            let (info, path) = download(client, &agent_id, "", &out).await?;
            print_bundles(format, c, &[BundleJson::of(&info, Some(&path))])
        }
        BundleCommand::List => {
            let bundles = client
                .inner
                .clone()
                .list_bundles(proto::ListBundlesRequest::default())
                .await?
                .into_inner()
                .bundles;
            let rows: Vec<BundleJson> = bundles.iter().map(|info| BundleJson::of(info, None)).collect();
            print_bundles(format, c, &rows)
        }
    }
}
