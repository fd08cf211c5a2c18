//! `rollcall admin issue|list|revoke`: admin identities. `issue` makes the
//! key here and sends only a CSR, so the new admin's key never crosses the
//! network.

use std::path::PathBuf;

use rollcall_common::files::{create_private_dir, write_atomic};
use rollcall_common::proto;
use serde::Serialize;

use super::output::{OutputFormat, print_json, table_in};
use super::{AdminClient, CliError, CliResult};

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Issue an identity for a new admin into DIR (ca.pem, cert.pem, key.pem).
    #[command(after_help = "Example:\n  rollcall admin issue --name alice --role operator --out ./alice")]
    Issue {
        /// The admin's name, as the certificate and the audit log show it.
        #[arg(long)]
        name: String,
        /// metrics (scrapes /metrics only), viewer, operator or admin.
        #[arg(long)]
        role: rollcall_common::pki::AdminRole,
        /// Directory to write ca.pem, cert.pem and key.pem into.
        #[arg(long)]
        out: PathBuf,
    },
    /// List issued admin certificates.
    List,
    /// Revoke every certificate of an admin.
    Revoke {
        /// The admin's name.
        name: String,
    },
}

#[derive(Debug, Serialize)]
struct AdminJson {
    name: String,
    role: String,
    serial: String,
    issued_at: String,
    not_after: String,
    issued_by: String,
    revoked: bool,
}

pub async fn run(
    client: &AdminClient,
    format: OutputFormat,
    c: &rollcall_common::i18n::Catalog,
    command: AdminCommand,
) -> CliResult {
    let mut inner = client.inner.clone();
    match command {
        AdminCommand::Issue { name, role, out } => {
            let key = rollcall_common::pki::generate_key().map_err(CliError::from)?;
            let csr_pem = rollcall_common::pki::certificate_request(&key, &name).map_err(CliError::from)?;
            let response = inner
                .issue_admin(proto::IssueAdminRequest {
                    name: name.clone(),
                    role: role.to_string(),
                    csr_pem,
                })
                .await?
                .into_inner();
            create_private_dir(&out).map_err(CliError::from)?;
            write_atomic(&out.join("key.pem"), key.serialize_pem().as_bytes(), true).map_err(CliError::from)?;
            write_atomic(&out.join("cert.pem"), response.certificate_pem.as_bytes(), false).map_err(CliError::from)?;
            write_atomic(&out.join("ca.pem"), response.ca_pem.as_bytes(), false).map_err(CliError::from)?;
            match format {
                OutputFormat::Json => {
                    print_json(&serde_json::json!({"name": name, "role": role.to_string(), "out": out}))
                }
                _ => {
                    println!(
                        "{}",
                        c.tr_args(
                            "cli-admin-issued",
                            &[
                                ("name", name.to_string()),
                                ("role", role.to_string()),
                                ("dir", out.display().to_string()),
                            ]
                        )
                    );
                    Ok(())
                }
            }
        }
        AdminCommand::List => {
            let admins: Vec<AdminJson> = inner
                .list_admins(proto::ListAdminsRequest {})
                .await?
                .into_inner()
                .admins
                .into_iter()
                .map(|a| AdminJson {
                    name: a.name,
                    role: a.role,
                    serial: a.serial,
                    issued_at: a.issued_at,
                    not_after: a.not_after,
                    issued_by: a.issued_by,
                    revoked: a.revoked,
                })
                .collect();
            match format {
                OutputFormat::Json => print_json(&admins),
                _ => {
                    let mut out = table_in(
                        c,
                        &[
                            "cli-col-name",
                            "cli-col-role",
                            "cli-col-issued",
                            "cli-col-expires",
                            "cli-col-by",
                            "cli-col-revoked",
                        ],
                    );
                    for a in &admins {
                        out.add_row(vec![
                            a.name.clone(),
                            a.role.clone(),
                            rollcall_common::locale_fmt::datetime_text(c.lang(), &a.issued_at),
                            rollcall_common::locale_fmt::datetime_text(c.lang(), &a.not_after),
                            a.issued_by.clone(),
                            super::rollouts::bool_text(c, a.revoked),
                        ]);
                    }
                    println!("{out}");
                    Ok(())
                }
            }
        }
        AdminCommand::Revoke { name } => {
            let response = inner
                .revoke_admin(proto::RevokeAdminRequest { name: name.clone() })
                .await?
                .into_inner();
            match format {
                OutputFormat::Json => print_json(&serde_json::json!({"name": name, "revoked": response.revoked})),
                _ => {
                    println!(
                        "{}",
                        c.tr_args(
                            "cli-admin-revoked",
                            &[("count", response.revoked.to_string()), ("name", name.to_string())]
                        )
                    );
                    Ok(())
                }
            }
        }
    }
}
