//! `rollcall policy apply FILE`, `rollcall policy show`.

use std::path::PathBuf;

use rollcall_common::proto;

use super::output::{OutputFormat, print_json};
use super::{AdminClient, CliError, CliResult};

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file and make it the fleet policy (pushed to agents).
    #[command(
        after_help = "Example:\n  cp deploy/examples/policy.toml policy.toml   (fill in its \"<…>\" values)\n  rollcall policy apply policy.toml"
    )]
    Apply {
        /// The policy file (TOML; deploy/examples/policy.toml documents every key).
        file: PathBuf,
    },
    /// Print the current fleet policy.
    Show,
}

pub async fn run(
    client: &AdminClient,
    format: OutputFormat,
    c: &rollcall_common::i18n::Catalog,
    command: PolicyCommand,
) -> CliResult {
    let mut inner = client.inner.clone();
    match command {
        PolicyCommand::Apply { file } => {
            let text = rollcall_common::files::read_bounded_utf8(&file, 256 * 1024)
                .map_err(|error| CliError::new(2, format!("{error:#}")))?;
            // Check locally first so a typo is reported with its line before any call.
            rollcall_common::policy::Policy::from_toml_str(&text)
                .map_err(|error| CliError::new(2, format!("invalid policy {}: {error}", file.display())))?;
            let response = inner
                .apply_policy(proto::ApplyPolicyRequest { toml: text })
                .await?
                .into_inner();
            match format {
                OutputFormat::Json => {
                    print_json(&serde_json::json!({"version": response.version, "pushed": response.pushed}))
                }
                OutputFormat::Table | OutputFormat::Markdown => {
                    println!(
                        "{}",
                        c.tr_args(
                            "cli-policy-applied",
                            &[
                                ("version", response.version.to_string()),
                                ("pushed", response.pushed.to_string())
                            ]
                        )
                    );
                    Ok(())
                }
            }
        }
        PolicyCommand::Show => {
            let doc = inner.get_policy(proto::GetPolicyRequest {}).await?.into_inner();
            match format {
                OutputFormat::Json => print_json(&serde_json::json!({"version": doc.version, "toml": doc.toml})),
                OutputFormat::Table | OutputFormat::Markdown => {
                    if doc.version == 0 {
                        println!("# {}", c.tr("cli-policy-none"));
                    } else {
                        println!(
                            "# {}",
                            c.tr_args("cli-policy-version", &[("version", doc.version.to_string())])
                        );
                        print!("{}", doc.toml);
                    }
                    Ok(())
                }
            }
        }
    }
}
