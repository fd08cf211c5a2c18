//! `rollcall roster`: the endpoints the managed product lists
//! (docs/ROSTER.md): `import` a console export, `refresh` from Apex
//! Central, `status`, `list`.

pub mod csv;

use std::path::PathBuf;

use rollcall_common::proto;
use serde::Serialize;

use rollcall_common::i18n::Catalog;

use super::output::{OutputFormat, print_json, table_in};
use super::{AdminClient, CliError, CliResult};

/// Entries per import message (each well under the coordinator's message limit).
const ENTRIES_PER_MESSAGE: usize = 2000;
/// The largest export read.
const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

#[derive(Debug, clap::Subcommand)]
pub enum RosterCommand {
    /// Replace the roster with a console export (CSV: UTF-8, UTF-16 with a
    /// BOM, or Shift_JIS); rows that cannot be read are listed and skipped.
    #[command(
        after_help = "Examples:\n  rollcall roster import pattern-rule-status.csv\n  rollcall -o json roster import export.csv --columns columns-de.toml"
    )]
    Import {
        /// The exported file.
        file: PathBuf,
        /// A TOML file mapping fields to the export's column names
        /// (`[columns]` host_name = "…", version = ["…", "…"]).
        #[arg(long)]
        columns: Option<PathBuf>,
    },
    /// Read the roster from Apex Central now and wait for the pass (exit 1 when it fails).
    Refresh,
    /// Where the roster comes from, how many entries, when it was read, the last error.
    Status,
    /// Every listed endpoint with its probe.
    List,
}

pub async fn run(client: &AdminClient, format: OutputFormat, c: &Catalog, command: RosterCommand) -> CliResult {
    match command {
        RosterCommand::Import { file, columns } => import(client, format, c, file, columns).await,
        RosterCommand::Refresh => refresh(client, format, c).await,
        RosterCommand::Status => {
            let status = client
                .inner
                .clone()
                .get_roster_status(proto::RosterStatusRequest {})
                .await?
                .into_inner();
            show_status(format, c, &status)
        }
        RosterCommand::List => list(client, format, c).await,
    }
}

/// `import -o json` (stable).
#[derive(Debug, Serialize)]
struct ImportJson {
    imported: u32,
    skipped: Vec<csv::Skipped>,
}

async fn import(
    client: &AdminClient,
    format: OutputFormat,
    c: &Catalog,
    file: PathBuf,
    columns: Option<PathBuf>,
) -> CliResult {
    let columns = match columns {
        Some(path) => {
            let text = rollcall_common::files::read_bounded_utf8(&path, 1024 * 1024)
                .map_err(|error| CliError::new(2, format!("{error:#}")))?;
            csv::Columns::from_toml(&text)
                .map_err(|error| CliError::new(2, format!("{}: {error:#}", path.display())))?
        }
        None => csv::Columns::default(),
    };
    let bytes = rollcall_common::files::read_bounded(&file, MAX_FILE_BYTES)
        .map_err(|error| CliError::new(1, format!("{error:#}")))?;
    let parsed =
        csv::parse(&bytes, &columns).map_err(|error| CliError::new(1, format!("{}: {error:#}", file.display())))?;
    let mut imported = 0;
    if !parsed.entries.is_empty() {
        let name = file
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let source = format!("csv:{name}");
        let pieces: Vec<proto::ImportRosterRequest> = parsed
            .entries
            .chunks(ENTRIES_PER_MESSAGE)
            .enumerate()
            .map(|(at, chunk)| proto::ImportRosterRequest {
                entries: chunk.to_vec(),
                source: if at == 0 { source.clone() } else { String::new() },
            })
            .collect();
        imported = client
            .inner
            .clone()
            .import_roster(tokio_stream::iter(pieces))
            .await?
            .into_inner()
            .imported;
    }
    let json = ImportJson {
        imported,
        skipped: parsed.skipped,
    };
    match format {
        OutputFormat::Json => print_json(&json)?,
        OutputFormat::Table | OutputFormat::Markdown => {
            println!(
                "{}",
                c.tr_args(
                    "cli-roster-imported",
                    &[
                        ("count", json.imported.to_string()),
                        ("file", file.display().to_string()),
                        ("encoding", parsed.encoding.to_string()),
                    ]
                )
            );
            for skipped in &json.skipped {
                println!(
                    "{}",
                    c.tr_args(
                        "cli-roster-skipped",
                        &[("line", skipped.line.to_string()), ("reason", skipped.reason.clone())]
                    )
                );
            }
        }
    }
    if imported == 0 {
        return Err(CliError::new(1, "nothing could be imported; the roster is unchanged"));
    }
    Ok(())
}

async fn refresh(client: &AdminClient, format: OutputFormat, c: &Catalog) -> CliResult {
    match client
        .inner
        .clone()
        .refresh_roster(proto::RefreshRosterRequest {})
        .await
    {
        Ok(status) => show_status(format, c, &status.into_inner()),
        Err(status) => match status.code() {
            // The coordinator answered: the pass failed, or there is no source.
            tonic::Code::Aborted | tonic::Code::FailedPrecondition => Err(CliError::new(1, status.message())),
            _ => Err(CliError::from(status)),
        },
    }
}

/// `status -o json` (stable).
#[derive(Debug, Serialize)]
struct StatusJson {
    source: Option<String>,
    entries: u32,
    refreshed_at: Option<String>,
    last_error: Option<String>,
    last_error_at: Option<String>,
    age_s: Option<u64>,
    apex_central: bool,
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

fn show_status(format: OutputFormat, c: &Catalog, status: &proto::RosterStatus) -> CliResult {
    let json = StatusJson {
        source: non_empty(&status.source),
        entries: status.entries,
        refreshed_at: non_empty(&status.refreshed_at),
        last_error: non_empty(&status.last_error),
        last_error_at: non_empty(&status.last_error_at),
        age_s: (!status.refreshed_at.is_empty()).then_some(status.age_s),
        apex_central: status.apex_central,
    };
    match format {
        OutputFormat::Json => print_json(&json),
        OutputFormat::Table | OutputFormat::Markdown => {
            let age = match c.lang() {
                // English keeps the humantime form it always printed.
                rollcall_common::i18n::Lang::En => {
                    humantime::format_duration(std::time::Duration::from_secs(status.age_s)).to_string()
                }
                lang => rollcall_common::locale_fmt::duration(
                    lang,
                    i64::try_from(status.age_s.saturating_mul(1000)).unwrap_or(i64::MAX),
                ),
            };
            match (&json.source, &json.refreshed_at) {
                (Some(source), Some(at)) => println!(
                    "{}",
                    c.tr_args(
                        "cli-roster-status",
                        &[
                            ("count", json.entries.to_string()),
                            ("source", source.clone()),
                            ("at", rollcall_common::locale_fmt::datetime_text(c.lang(), at)),
                            ("age", age),
                        ]
                    )
                ),
                _ => println!("{}", c.tr("cli-roster-none")),
            }
            println!(
                "{}",
                c.tr(if json.apex_central {
                    "cli-roster-apex-central-configured"
                } else {
                    "cli-roster-apex-central-not-configured"
                })
            );
            if let Some(error) = &json.last_error {
                println!(
                    "{}",
                    c.tr_args(
                        "cli-roster-last-pass-failed",
                        &[
                            ("at", json.last_error_at.clone().unwrap_or_else(|| "?".into())),
                            ("error", error.clone()),
                        ]
                    )
                );
            }
            Ok(())
        }
    }
}

/// One listed endpoint in `list -o json` (stable).
#[derive(Debug, Serialize)]
struct ListedJson {
    hostname: String,
    entity_id: Option<String>,
    ip_addresses: Vec<String>,
    mac_addresses: Vec<String>,
    version: Option<String>,
    connection_status: Option<String>,
    managing_server: Option<String>,
    domain: Option<String>,
    folder_path: Option<String>,
    os: Option<String>,
    product: Option<String>,
    /// matched, no_probe, ambiguous
    state: String,
    agent_id: Option<String>,
}

async fn list(client: &AdminClient, format: OutputFormat, c: &Catalog) -> CliResult {
    let response = client
        .inner
        .clone()
        .list_roster(proto::ListRosterRequest {})
        .await?
        .into_inner();
    let listed: Vec<ListedJson> = response
        .entries
        .iter()
        .map(|listed| {
            let entry = listed.entry.clone().unwrap_or_default();
            ListedJson {
                hostname: entry.host_name,
                entity_id: non_empty(&entry.entity_id),
                ip_addresses: entry.ip_addresses,
                mac_addresses: entry.mac_addresses,
                version: non_empty(&entry.version),
                connection_status: non_empty(&entry.connection_status),
                managing_server: non_empty(&entry.managing_server),
                domain: non_empty(&entry.domain),
                folder_path: non_empty(&entry.folder_path),
                os: non_empty(&entry.os),
                product: non_empty(&entry.product),
                state: listed.state.clone(),
                agent_id: non_empty(&listed.agent_id),
            }
        })
        .collect();
    match format {
        OutputFormat::Json => print_json(&listed),
        OutputFormat::Table | OutputFormat::Markdown => {
            let mut out = table_in(
                c,
                &[
                    "cli-col-hostname",
                    "cli-col-version",
                    "cli-col-connection",
                    "cli-col-managing-server",
                    "cli-col-probe",
                    "cli-col-agent",
                ],
            );
            for entry in &listed {
                out.add_row(vec![
                    entry.hostname.clone(),
                    entry.version.clone().unwrap_or_else(|| "-".into()),
                    entry.connection_status.clone().unwrap_or_else(|| "-".into()),
                    entry.managing_server.clone().unwrap_or_else(|| "-".into()),
                    {
                        let key = format!("cli-roster-state-{}", entry.state);
                        if c.has(&key) {
                            c.tr(&key)
                        } else {
                            entry.state.replace('_', " ")
                        }
                    },
                    entry.agent_id.clone().unwrap_or_default(),
                ]);
            }
            println!("{out}");
            if let Some(status) = &response.status {
                println!(
                    "{}",
                    c.tr_args(
                        "cli-roster-list-summary",
                        &[
                            ("count", listed.len().to_string()),
                            (
                                "source",
                                if status.source.is_empty() {
                                    c.tr("cli-roster-nowhere")
                                } else {
                                    status.source.clone()
                                }
                            ),
                            (
                                "at",
                                if status.refreshed_at.is_empty() {
                                    c.tr("cli-roster-never-read")
                                } else {
                                    rollcall_common::locale_fmt::datetime_text(c.lang(), &status.refreshed_at)
                                }
                            ),
                        ]
                    )
                );
            }
            Ok(())
        }
    }
}
