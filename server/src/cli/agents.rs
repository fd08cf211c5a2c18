//! `rollcall agents`, `rollcall agent ID`, `rollcall revoke ID`.

use std::collections::BTreeMap;

use rollcall_common::proto;
use serde::Serialize;

use super::output::{OutputFormat, print_json, table};
use super::{AdminClient, CliResult};
use crate::admin_service::role_name;

#[derive(Debug, clap::Args)]
pub struct AgentsArgs {
    /// `all`, an agent id, or key=value[,key=value] over labels and fields
    /// (hostname, version, role, online, os_id, arch, update_source, …).
    #[arg(long, short = 's', default_value = "all")]
    pub selector: String,
}

/// One agent in `--output json` (stable; documented in docs/CLI.md).
#[derive(Debug, Serialize)]
pub struct AgentJson {
    pub id: String,
    pub hostname: String,
    pub online: bool,
    pub last_seen: Option<String>,
    /// The managed product's installed version; null until known.
    pub version: Option<String>,
    pub role: &'static str,
    pub labels: BTreeMap<String, String>,
    pub agent_version: String,
    pub enrolled_at: String,
    pub revoked: bool,
    pub os_id: Option<String>,
    pub os_version: Option<String>,
    pub arch: Option<String>,
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

impl From<&proto::AgentInfo> for AgentJson {
    fn from(info: &proto::AgentInfo) -> Self {
        let host = info.host.clone().unwrap_or_default();
        AgentJson {
            id: info.id.clone(),
            hostname: info.hostname.clone(),
            online: info.online,
            last_seen: non_empty(&info.last_seen),
            version: non_empty(&info.version),
            role: role_name(info.role),
            labels: info.labels.clone().into_iter().collect(),
            agent_version: info.agent_version.clone(),
            enrolled_at: info.enrolled_at.clone(),
            revoked: info.revoked,
            os_id: non_empty(&host.os_id),
            os_version: non_empty(&host.os_version),
            arch: non_empty(&host.arch),
        }
    }
}

pub async fn list(client: &AdminClient, format: OutputFormat, args: AgentsArgs) -> CliResult {
    let response = client
        .inner
        .clone()
        .list_agents(proto::ListAgentsRequest {
            selector: args.selector,
        })
        .await?
        .into_inner();
    let agents: Vec<AgentJson> = response.agents.iter().map(AgentJson::from).collect();
    match format {
        OutputFormat::Json => print_json(&agents),
        OutputFormat::Table => {
            let mut out = table(&["ID", "HOSTNAME", "ROLE", "ONLINE", "VERSION", "LAST SEEN", "LABELS"]);
            for agent in &agents {
                out.add_row(vec![
                    agent.id.clone(),
                    agent.hostname.clone(),
                    agent.role.to_string(),
                    if agent.revoked {
                        "revoked".into()
                    } else if agent.online {
                        "yes".into()
                    } else {
                        "no".into()
                    },
                    agent.version.clone().unwrap_or_else(|| "-".into()),
                    agent.last_seen.clone().unwrap_or_else(|| "never".into()),
                    agent
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(","),
                ]);
            }
            println!("{out}");
            let online = agents.iter().filter(|agent| agent.online).count();
            println!("{} agents, {online} online", agents.len());
            Ok(())
        }
    }
}

#[derive(Debug, Serialize)]
struct CheckJson {
    name: String,
    runbook_step: u32,
    status: &'static str,
    message: String,
    evidence: BTreeMap<String, String>,
    remediation: String,
}

pub fn status_name(status: i32) -> &'static str {
    match proto::CheckStatus::try_from(status) {
        Ok(proto::CheckStatus::Pass) => "pass",
        Ok(proto::CheckStatus::Warn) => "warn",
        Ok(proto::CheckStatus::Fail) => "fail",
        Ok(proto::CheckStatus::Error) => "error",
        _ => "unknown",
    }
}

#[derive(Debug, Serialize)]
struct AgentDetailJson {
    #[serde(flatten)]
    agent: AgentJson,
    checked_at: Option<String>,
    checks: Vec<CheckJson>,
}

pub async fn show(client: &AdminClient, format: OutputFormat, id: &str) -> CliResult {
    let detail = client
        .inner
        .clone()
        .get_agent(proto::GetAgentRequest { id: id.to_string() })
        .await?
        .into_inner();
    let info = detail.agent.unwrap_or_default();
    let json = AgentDetailJson {
        agent: AgentJson::from(&info),
        checked_at: non_empty(&detail.checked_at),
        checks: detail
            .checks
            .iter()
            .map(|check| CheckJson {
                name: check.name.clone(),
                runbook_step: check.runbook_step,
                status: status_name(check.status),
                message: check.message.clone(),
                evidence: check
                    .evidence
                    .iter()
                    .map(|e| (e.key.clone(), e.value.clone()))
                    .collect(),
                remediation: check.remediation.clone(),
            })
            .collect(),
    };
    match format {
        OutputFormat::Json => print_json(&json),
        OutputFormat::Table => {
            let agent = &json.agent;
            println!("agent     {}", agent.id);
            println!("hostname  {}", agent.hostname);
            println!("role      {}", agent.role);
            println!("online    {}", agent.online);
            println!("version   {}", agent.version.as_deref().unwrap_or("-"));
            println!("last seen {}", agent.last_seen.as_deref().unwrap_or("never"));
            println!("checked   {}", json.checked_at.as_deref().unwrap_or("never"));
            let mut out = table(&["STEP", "CHECK", "STATUS", "MESSAGE", "EVIDENCE", "REMEDIATION"]);
            for check in &json.checks {
                out.add_row(vec![
                    if check.runbook_step == 0 {
                        "-".into()
                    } else {
                        check.runbook_step.to_string()
                    },
                    check.name.clone(),
                    check.status.to_string(),
                    check.message.clone(),
                    check
                        .evidence
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    if check.status == "pass" {
                        String::new()
                    } else {
                        check.remediation.clone()
                    },
                ]);
            }
            println!("{out}");
            Ok(())
        }
    }
}

pub async fn revoke(client: &AdminClient, format: OutputFormat, id: &str) -> CliResult {
    let response = client
        .inner
        .clone()
        .revoke_agent(proto::RevokeAgentRequest { id: id.to_string() })
        .await?
        .into_inner();
    match format {
        OutputFormat::Json => {
            print_json(&serde_json::json!({ "id": id, "revoked": true, "disconnected": response.disconnected }))
        }
        OutputFormat::Table => {
            println!(
                "revoked {id}{}",
                if response.disconnected {
                    "; its live stream was cut"
                } else {
                    ""
                }
            );
            Ok(())
        }
    }
}
