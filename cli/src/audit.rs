//! `rollcall audit`: who changed what, when, with what result.

use rollcall_common::proto;
use serde::Serialize;

use super::output::{OutputFormat, print_json, table_in};
use super::{AdminClient, CliResult};

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// How many of the newest entries.
    #[arg(long, default_value_t = 200)]
    pub limit: u32,
}

#[derive(Debug, Serialize)]
struct AuditJson {
    at: String,
    actor: String,
    role: String,
    action: String,
    target: String,
    result: String,
}

pub async fn run(
    client: &AdminClient,
    format: OutputFormat,
    c: &rollcall_common::i18n::Catalog,
    args: AuditArgs,
) -> CliResult {
    let entries = client
        .inner
        .clone()
        .audit(proto::AuditRequest { limit: args.limit })
        .await?
        .into_inner()
        .entries;
    let json: Vec<AuditJson> = entries
        .into_iter()
        .map(|e| AuditJson {
            at: e.at,
            actor: e.actor,
            role: e.role,
            action: e.action,
            target: e.target,
            result: e.result,
        })
        .collect();
    match format {
        OutputFormat::Json => print_json(&json),
        _ => {
            let mut out = table_in(
                c,
                &[
                    "cli-col-at",
                    "cli-col-who",
                    "cli-col-role",
                    "cli-col-action",
                    "cli-col-target-of",
                    "cli-col-result",
                ],
            );
            for e in &json {
                out.add_row(vec![
                    rollcall_common::locale_fmt::datetime_text(c.lang(), &e.at),
                    e.actor.clone(),
                    e.role.clone(),
                    e.action.clone(),
                    e.target.clone(),
                    e.result.clone(),
                ]);
            }
            println!("{out}");
            Ok(())
        }
    }
}
