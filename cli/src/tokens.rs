//! `rollcall token create|list|revoke`.

use std::time::Duration;

use rollcall_common::proto;
use serde::Serialize;

use super::output::{OutputFormat, print_json, table_in};
use super::{AdminClient, CliError, CliResult};

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create an enrollment token; the token is printed alone on the last line.
    #[command(after_help = "Example:\n  rollcall token create --uses 100 --ttl 24h --label site=osaka")]
    Create {
        /// How many agents may enroll with it.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// How long it stays valid (default: the coordinator's, 1h).
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<Duration>,
        /// Labels given to every agent enrolled with it (k=v, repeatable).
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
    },
    /// List tokens (never the secrets).
    List,
    /// Revoke a token by id.
    Revoke {
        /// Token id, from `rollcall token list`.
        id: String,
    },
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{text:?} is not key=value"))
}

#[derive(Debug, Serialize)]
struct TokenJson {
    id: String,
    created_at: String,
    expires_at: String,
    uses_left: u32,
    uses_total: u32,
    labels: std::collections::BTreeMap<String, String>,
    revoked: bool,
    created_by: String,
}

pub async fn run(
    client: &AdminClient,
    format: OutputFormat,
    c: &rollcall_common::i18n::Catalog,
    command: TokenCommand,
) -> CliResult {
    let mut inner = client.inner.clone();
    match command {
        TokenCommand::Create { uses, ttl, labels } => {
            if uses == 0 {
                return Err(CliError::new(2, "--uses must be at least 1"));
            }
            let response = inner
                .create_token(proto::CreateTokenRequest {
                    uses,
                    ttl_seconds: ttl.map(|ttl| ttl.as_secs().max(1)).unwrap_or(0),
                    labels: labels.into_iter().collect(),
                })
                .await?
                .into_inner();
            match format {
                OutputFormat::Json => {
                    print_json(
                        &serde_json::json!({"id": response.id, "expires_at": response.expires_at, "uses": uses, "token": response.token}),
                    )?;
                }
                OutputFormat::Table | OutputFormat::Markdown => {
                    eprintln!(
                        "{}",
                        c.tr_args(
                            "cli-token-created",
                            &[
                                ("id", response.id.clone()),
                                ("uses", uses.to_string()),
                                (
                                    "until",
                                    rollcall_common::locale_fmt::datetime_text(c.lang(), &response.expires_at)
                                ),
                            ]
                        )
                    );
                    println!("{}", response.token);
                }
            }
            Ok(())
        }
        TokenCommand::List => {
            let tokens: Vec<TokenJson> = inner
                .list_tokens(proto::ListTokensRequest {})
                .await?
                .into_inner()
                .tokens
                .into_iter()
                .map(|t| TokenJson {
                    id: t.id,
                    created_at: t.created_at,
                    expires_at: t.expires_at,
                    uses_left: t.uses_left,
                    uses_total: t.uses_total,
                    labels: t.labels.into_iter().collect(),
                    revoked: t.revoked,
                    created_by: t.created_by,
                })
                .collect();
            match format {
                OutputFormat::Json => print_json(&tokens),
                OutputFormat::Table | OutputFormat::Markdown => {
                    let mut out = table_in(
                        c,
                        &[
                            "cli-col-id",
                            "cli-col-uses-left",
                            "cli-col-expires",
                            "cli-col-labels",
                            "cli-col-revoked",
                            "cli-col-created-by",
                        ],
                    );
                    for t in &tokens {
                        out.add_row(vec![
                            t.id.clone(),
                            format!("{}/{}", t.uses_left, t.uses_total),
                            rollcall_common::locale_fmt::datetime_text(c.lang(), &t.expires_at),
                            t.labels
                                .iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect::<Vec<_>>()
                                .join(","),
                            super::rollouts::bool_text(c, t.revoked),
                            t.created_by.clone(),
                        ]);
                    }
                    println!("{out}");
                    Ok(())
                }
            }
        }
        TokenCommand::Revoke { id } => {
            inner.revoke_token(proto::RevokeTokenRequest { id: id.clone() }).await?;
            match format {
                OutputFormat::Json => print_json(&serde_json::json!({"id": id, "revoked": true})),
                OutputFormat::Table | OutputFormat::Markdown => {
                    println!("{}", c.tr_args("cli-token-revoked", &[("id", id.to_string())]));
                    Ok(())
                }
            }
        }
    }
}
