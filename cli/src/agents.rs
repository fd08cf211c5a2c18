//! `rollcall agents`, `rollcall agent ID`, `rollcall revoke ID`.

use rollcall_common::printable::printable;
use std::collections::BTreeMap;

use rollcall_common::proto;
use rollcall_common::report::FailingCheck;
use serde::Serialize;

use rollcall_common::i18n::Catalog;
use rollcall_common::{locale_fmt, words};

use super::output::{OutputFormat, print_json, table_in};
use super::{AdminClient, CliResult};
use rollcall_common::proto::role_name;

#[derive(Debug, clap::Args)]
pub struct AgentsArgs {
    /// `all`, an agent id, or key=value[,key=value] over labels and fields
    /// (hostname, version, role, online, os_id, arch, update_source, state, cause, …).
    #[arg(long, short = 's', default_value = "all")]
    pub selector: String,
    /// Only agents in this state of the current rollout (pending, completed, straggler,
    /// awaiting_restart).
    #[arg(long)]
    pub state: Option<String>,
    /// Only stragglers with this runbook cause (e.g. update_permission).
    #[arg(long)]
    pub cause: Option<String>,
    /// Only agents with this installed product version.
    #[arg(long)]
    pub version: Option<String>,
}

impl AgentsArgs {
    /// The selector with the filter flags folded in.
    fn selector(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if self.selector != "all" && !self.selector.is_empty() {
            parts.push(self.selector.clone());
        }
        for (key, value) in [
            ("state", &self.state),
            ("cause", &self.cause),
            ("version", &self.version),
        ] {
            if let Some(value) = value {
                parts.push(format!("{key}={value}"));
            }
        }
        if parts.is_empty() {
            "all".to_string()
        } else {
            parts.join(",")
        }
    }
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
    /// The host's own addresses, as its probe reads them (issue 26; empty
    /// from a Windows probe for now): what the roster is matched by when
    /// the host name is not.
    pub ip_addresses: Vec<String>,
    pub mac_addresses: Vec<String>,
    /// Its place in the current rollout (pending, completed, straggler_soft, straggler_hard).
    pub state: Option<String>,
    pub cause: Option<String>,
    /// The agent's clock minus the coordinator's, from its latest report
    /// (positive: ahead; 0 until measured). Added in issue 16 (point 3).
    pub clock_skew_ms: i64,
    /// True when `clock_skew_ms` is beyond the policy's `clock_skew_warn`.
    pub clock_skew_flagged: bool,
    /// True when the coordinator could not read every column of this
    /// agent's stored row (issue 24): what is shown is what it could read.
    pub unreadable: bool,
    /// Reports the agent dropped when its spool was full.
    pub dropped_reports: u64,
    /// Reports the agent set aside because the coordinator refused them
    /// again and again (its log names each and the reason).
    pub dead_letters: u64,
    /// Its roster entry (issue 26): matched, not_listed or ambiguous; null
    /// without a roster.
    pub roster: Option<String>,
    /// The matched entry's host name, or the candidates when ambiguous.
    pub roster_hosts: Vec<String>,
}

/// The ROSTER column: matched / not listed / ambiguous (candidates).
pub fn roster_cell(c: &Catalog, roster: Option<&str>, hosts: &[String]) -> String {
    match roster {
        None => "-".into(),
        Some("not_listed") => c.tr("cli-roster-not-listed"),
        Some("ambiguous") => c.tr_args("cli-roster-ambiguous", &[("hosts", hosts.join(", "))]),
        Some(word) => {
            let key = format!("cli-roster-state-{word}");
            if c.has(&key) { c.tr(&key) } else { word.to_string() }
        }
    }
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
            ip_addresses: host.ip_addresses.clone(),
            mac_addresses: host.mac_addresses.clone(),
            state: non_empty(&info.state),
            cause: non_empty(&info.cause),
            clock_skew_ms: info.clock_skew_ms,
            clock_skew_flagged: info.clock_skew_flagged,
            unreadable: info.unreadable,
            dropped_reports: info.dropped_reports,
            dead_letters: info.dead_letters,
            roster: non_empty(&info.roster),
            roster_hosts: info.roster_hosts.clone(),
        }
    }
}

pub async fn list(client: &AdminClient, format: OutputFormat, c: &Catalog, args: AgentsArgs) -> CliResult {
    let response = client
        .inner
        .clone()
        .list_agents(proto::ListAgentsRequest {
            selector: args.selector(),
        })
        .await?
        .into_inner();
    let agents: Vec<AgentJson> = response.agents.iter().map(AgentJson::from).collect();
    match format {
        OutputFormat::Json => print_json(&agents),
        OutputFormat::Table | OutputFormat::Markdown => {
            let english = c.lang() == rollcall_common::i18n::Lang::En;
            let mut out = table_in(
                c,
                &[
                    "cli-col-id",
                    "cli-col-hostname",
                    "cli-col-role",
                    "cli-col-online",
                    "cli-col-version",
                    "cli-col-roster",
                    "cli-col-last-seen",
                    "cli-col-labels",
                ],
            );
            for agent in &agents {
                out.add_row(vec![
                    agent.id.clone(),
                    printable(&agent.hostname).into_owned(),
                    // English keeps the role codes it always printed.
                    if english {
                        agent.role.to_string()
                    } else {
                        words::role_word(c, agent.role)
                    },
                    if agent.unreadable {
                        c.tr("cli-unreadable-row")
                    } else if agent.revoked {
                        words::presence(c, "revoked")
                    } else {
                        words::yes_no(c, agent.online)
                    },
                    agent
                        .version
                        .as_deref()
                        .map_or_else(|| "-".into(), |v| printable(v).into_owned()),
                    roster_cell(c, agent.roster.as_deref(), &agent.roster_hosts),
                    agent
                        .last_seen
                        .as_deref()
                        .map_or_else(|| c.tr("word-never"), |at| locale_fmt::datetime_text(c.lang(), at)),
                    agent
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{}={}", printable(k), printable(v)))
                        .collect::<Vec<_>>()
                        .join(","),
                ]);
            }
            println!("{out}");
            let online = agents.iter().filter(|agent| agent.online).count();
            println!(
                "{}",
                c.tr_args(
                    "cli-agents-summary",
                    &[("count", agents.len().to_string()), ("online", online.to_string())]
                )
            );
            Ok(())
        }
    }
}

/// One check as `rollcall agent ID` shows it: the shared JSON form (the
/// same mapping as the support report's failing checks) and, for the table
/// only, the message in the chosen language.
#[derive(Debug, Serialize)]
struct CheckJson {
    #[serde(flatten)]
    check: FailingCheck,
    /// The message in the chosen language (the table shows it).
    #[serde(skip)]
    text: String,
}

#[derive(Debug, Serialize)]
struct TransitionJson {
    rollout_id: String,
    at: String,
    from: String,
    to: String,
    cause: Option<String>,
}

#[derive(Debug, Serialize)]
struct AgentDetailJson {
    #[serde(flatten)]
    agent: AgentJson,
    checked_at: Option<String>,
    checks: Vec<CheckJson>,
    /// The update agent it pulls from (id), or null.
    update_agent: Option<String>,
    update_agent_hostname: Option<String>,
    history: Vec<TransitionJson>,
    /// Every agent claiming the address it pulls from, when several do.
    update_agent_claimants: Vec<String>,
}

/// The remediation text in the chosen language: the agent's own (English,
/// most specific) unless the catalog is not English.
fn remediation(catalog: &Catalog, check: &str, agent_text: &str) -> String {
    if catalog.lang() == rollcall_common::i18n::Lang::En {
        agent_text.to_string()
    } else {
        words::check_remediation(catalog, check, agent_text)
    }
}

pub async fn show(client: &AdminClient, format: OutputFormat, catalog: &Catalog, id: &str) -> CliResult {
    let detail = client
        .inner
        .clone()
        .get_agent(proto::GetAgentRequest { id: id.to_string() })
        .await?
        .into_inner();
    let info = detail.agent.unwrap_or_default();
    let mut agent = AgentJson::from(&info);
    agent.state = non_empty(&detail.state);
    agent.cause = non_empty(&detail.cause);
    let json = AgentDetailJson {
        agent,
        checked_at: non_empty(&detail.checked_at),
        checks: detail
            .checks
            .iter()
            .map(|check| CheckJson {
                check: FailingCheck {
                    remediation: remediation(catalog, &check.name, &check.remediation),
                    ..FailingCheck::from(check)
                },
                text: rollcall_common::check_text::message(
                    catalog,
                    &check.code,
                    &check.params.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    &check.message,
                    &|text: &str| text.to_string(),
                ),
            })
            .collect(),
        update_agent: non_empty(&detail.update_agent_id),
        update_agent_hostname: non_empty(&detail.update_agent_hostname),
        update_agent_claimants: detail.update_agent_claimants.clone(),
        history: detail
            .history
            .iter()
            .map(|t| TransitionJson {
                rollout_id: t.rollout_id.clone(),
                at: t.at.clone(),
                from: t.from_state.clone(),
                to: t.to_state.clone(),
                cause: non_empty(&t.cause),
            })
            .collect(),
    };
    match format {
        OutputFormat::Json => print_json(&json),
        OutputFormat::Table | OutputFormat::Markdown => {
            let c = catalog;
            let english = c.lang() == rollcall_common::i18n::Lang::En;
            // "label     value": labels padded to nine columns, as always.
            let line = |key: &str, value: &str| println!("{:<9} {value}", c.tr(key));
            let agent = &json.agent;
            line("cli-label-agent", &agent.id);
            line("cli-label-hostname", &printable(&agent.hostname));
            line(
                "cli-label-role",
                &if english {
                    agent.role.to_string()
                } else {
                    words::role_word(c, agent.role)
                },
            );
            line("cli-label-online", &super::rollouts::bool_text(c, agent.online));
            if agent.dropped_reports > 0 || agent.dead_letters > 0 {
                line(
                    "cli-label-reports",
                    &c.tr_args(
                        "cli-reports-dropped",
                        &[
                            ("dropped", agent.dropped_reports.to_string()),
                            ("dead", agent.dead_letters.to_string()),
                        ],
                    ),
                );
            }
            if agent.unreadable {
                line("cli-label-store", &c.tr("cli-store-unreadable"));
            }
            line(
                "cli-label-roster",
                &roster_cell(c, agent.roster.as_deref(), &agent.roster_hosts),
            );
            line("cli-label-version", agent.version.as_deref().unwrap_or("-"));
            let moment =
                |at: Option<&str>| at.map_or_else(|| c.tr("word-never"), |at| locale_fmt::datetime_text(c.lang(), at));
            line("cli-label-last-seen", &moment(agent.last_seen.as_deref()));
            line("cli-label-checked", &moment(json.checked_at.as_deref()));
            line(
                "cli-label-clock",
                &format!(
                    "{}{}",
                    words::clock(c, agent.clock_skew_ms),
                    if agent.clock_skew_flagged {
                        format!(" {}", c.tr("cli-clock-flagged"))
                    } else {
                        String::new()
                    }
                ),
            );
            if let Some(state) = &agent.state {
                let cause = agent
                    .cause
                    .as_deref()
                    .map(|code| format!(" — {}", words::cause(c, code)))
                    .unwrap_or_default();
                let state = if english {
                    state.clone()
                } else {
                    words::state_word(c, state)
                };
                line("cli-label-rollout", &format!("{state}{cause}"));
            }
            match (&json.update_agent, &json.update_agent_hostname) {
                (Some(ua), Some(host)) => line("cli-label-update-agent", &format!("{host} ({ua})")),
                (Some(ua), None) => line("cli-label-update-agent", ua),
                _ if !json.update_agent_claimants.is_empty() => line(
                    "cli-label-update-agent",
                    &c.tr_args(
                        "cli-update-agent-contested",
                        &[("claimants", json.update_agent_claimants.join(", "))],
                    ),
                ),
                _ => {}
            }
            let mut out = table_in(
                c,
                &[
                    "cli-col-step",
                    "cli-col-check",
                    "cli-col-status",
                    "cli-col-message",
                    "cli-col-evidence",
                    "cli-col-remediation",
                ],
            );
            for CheckJson { check, text } in &json.checks {
                out.add_row(vec![
                    if check.runbook_step == 0 {
                        "-".into()
                    } else {
                        check.runbook_step.to_string()
                    },
                    if english {
                        check.name.clone()
                    } else {
                        words::check(c, &check.name)
                    },
                    if english {
                        check.status.to_string()
                    } else {
                        words::status_word(c, &check.status)
                    },
                    text.clone(),
                    check
                        .evidence
                        .iter()
                        .map(|(k, v)| {
                            if english {
                                format!("{k}={v}")
                            } else {
                                // Values the probe read are data, quoted as code.
                                let (key, phrase) = words::evidence(c, k, v);
                                format!("{key}: {}", phrase.unwrap_or_else(|| format!("`{v}`")))
                            }
                        })
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
            if !json.history.is_empty() {
                println!("{}", c.tr("cli-history"));
                for t in &json.history {
                    let word = |state: &str| {
                        if english {
                            state.to_string()
                        } else {
                            words::state_word(c, state)
                        }
                    };
                    let from = if t.from.is_empty() {
                        c.tr("cli-history-new")
                    } else {
                        word(&t.from)
                    };
                    println!(
                        "  {} {from} → {}{}",
                        locale_fmt::datetime_text(c.lang(), &t.at),
                        word(&t.to),
                        t.cause.as_deref().map(|c| format!(" ({c})")).unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
    }
}

pub async fn revoke(client: &AdminClient, format: OutputFormat, c: &Catalog, id: &str) -> CliResult {
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
        OutputFormat::Table | OutputFormat::Markdown => {
            let key = if response.disconnected {
                "cli-revoked-cut"
            } else {
                "cli-revoked"
            };
            println!("{}", c.tr_args(key, &[("id", id.to_string())]));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON of one check is the shared report form, field for field
    /// in the order it had before the mapping moved to common; the table's
    /// localized text stays out of it.
    #[test]
    fn a_check_prints_the_shared_fields_and_not_its_table_text() {
        let check = CheckJson {
            check: FailingCheck {
                name: "version".into(),
                runbook_step: 1,
                status: "pass".into(),
                message: "at 2.1".into(),
                evidence: [("installed".to_string(), "2.1".to_string())].into(),
                remediation: String::new(),
                code: "version-ok".into(),
                params: [("version".to_string(), "2.1".to_string())].into(),
                truncated: false,
            },
            text: "localized".into(),
        };
        let json = serde_json::to_string_pretty(&check).unwrap_or_default();
        let expected = r#"{
  "name": "version",
  "runbook_step": 1,
  "status": "pass",
  "message": "at 2.1",
  "evidence": {
    "installed": "2.1"
  },
  "remediation": "",
  "code": "version-ok",
  "params": {
    "version": "2.1"
  }
}"#;
        assert_eq!(json, expected);
    }
}
