//! `rollcall report`: the runbook step-8 support report.

use rollcall_common::proto;

use super::output::{OutputFormat, print_json};
use super::{AdminClient, CliError, CliResult};
use rollcall_common::i18n::Catalog;
use rollcall_common::report::Report;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// A rollout id (default: the current rollout).
    #[arg(long)]
    pub rollout: Option<String>,
}

pub async fn run(client: &AdminClient, format: OutputFormat, catalog: &Catalog, args: ReportArgs) -> CliResult {
    let response = client
        .inner
        .clone()
        .get_report(proto::ReportRequest {
            rollout_id: args.rollout.unwrap_or_default(),
        })
        .await?
        .into_inner();
    let report: Report = serde_json::from_str(&response.json)
        .map_err(|error| CliError::new(1, format!("the coordinator sent an unreadable report: {error}")))?;
    match format {
        OutputFormat::Json => print_json(&report),
        OutputFormat::Table | OutputFormat::Markdown => {
            print!("{}", rollcall_common::report::markdown::render(&report, catalog));
            Ok(())
        }
    }
}
