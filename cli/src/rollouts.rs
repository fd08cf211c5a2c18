//! `rollcall rollout start|list|show|cancel`, `status`, `stragglers`.

use rollcall_common::printable::printable;
use std::collections::BTreeMap;
use std::time::Duration;

use rollcall_common::proto;
use serde::Serialize;

use rollcall_common::i18n::Catalog;
use rollcall_common::{locale_fmt, words};

use super::output::{OutputFormat, print_json, table_in};
use super::{AdminClient, CliError, CliResult};

#[derive(Debug, clap::Subcommand)]
pub enum RolloutCommand {
    /// Start tracking a rollout of VERSION over the matching agents.
    #[command(
        after_help = "Examples:\n  rollcall rollout start --target 14.0.12737\n  rollcall rollout start --target 14.0.12737 --grace 2h --recheck-every 30m --max-attempts 4 --selector site=osaka --auto-update-now"
    )]
    Start(StartArgs),
    /// List rollouts, newest first.
    List,
    /// One rollout (default: the current one).
    Show {
        /// Rollout id (default: the current rollout).
        id: Option<String>,
    },
    /// Stop tracking a rollout.
    Cancel {
        /// Rollout id (default: the current rollout).
        id: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The version every agent should reach.
    #[arg(long)]
    pub target: String,
    /// How long an agent behind the target is merely pending. Default: 1h,
    /// or 90m for Apex One agents (the Apex One server resends its update
    /// notification every 15 minutes, five times).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub grace: Option<Duration>,
    /// The product adapter of the agents (`apex-one`), for the product's
    /// default grace; default: what the selected agents report.
    #[arg(long)]
    pub adapter: Option<String>,
    /// First interval between rechecks of a straggler (doubles each attempt).
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub recheck_every: Duration,
    /// Rechecks before a straggler turns hard.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: u32,
    /// Which agents (default: all).
    #[arg(long, default_value = "all")]
    pub selector: String,
    /// Push update_now to a straggler once its blocking cause has cleared.
    #[arg(long)]
    pub auto_update_now: bool,
}

/// A rollout in `--output json`.
#[derive(Debug, Serialize)]
pub struct RolloutJson {
    pub id: String,
    pub target: String,
    pub state: String,
    pub selector: String,
    pub grace: String,
    pub recheck_every: String,
    pub max_attempts: u32,
    pub auto_update_now: bool,
    pub started_at: String,
    pub started_by: String,
    pub cancelled_at: Option<String>,
}

fn human(ms: u64) -> String {
    humantime::format_duration(Duration::from_millis(ms)).to_string()
}

impl From<&proto::RolloutInfo> for RolloutJson {
    fn from(info: &proto::RolloutInfo) -> Self {
        RolloutJson {
            id: info.id.clone(),
            target: info.target.clone(),
            state: info.state.clone(),
            selector: info.selector.clone(),
            grace: human(info.grace_ms),
            recheck_every: human(info.recheck_every_ms),
            max_attempts: info.max_attempts,
            auto_update_now: info.auto_update_now,
            started_at: info.started_at.clone(),
            started_by: info.started_by.clone(),
            cancelled_at: (!info.cancelled_at.is_empty()).then(|| info.cancelled_at.clone()),
        }
    }
}

fn print_rollout(format: OutputFormat, c: &Catalog, info: &proto::RolloutInfo) -> CliResult {
    let json = RolloutJson::from(info);
    match format {
        OutputFormat::Json => print_json(&json),
        OutputFormat::Table | OutputFormat::Markdown => {
            println!(
                "{}",
                c.tr_args(
                    "cli-rollout-line",
                    &[
                        ("id", json.id.clone()),
                        ("target", json.target.clone()),
                        ("state", rollout_state(c, &json.state))
                    ]
                )
            );
            let duration = |ms: u64| locale_fmt::duration(c.lang(), i64::try_from(ms).unwrap_or(i64::MAX));
            let (grace, every) = match c.lang() {
                // English keeps the humantime form it always printed.
                rollcall_common::i18n::Lang::En => (json.grace.clone(), json.recheck_every.clone()),
                rollcall_common::i18n::Lang::Ja => (duration(info.grace_ms), duration(info.recheck_every_ms)),
            };
            println!(
                "  {}",
                c.tr_args(
                    "cli-rollout-settings",
                    &[
                        ("selector", json.selector.clone()),
                        ("grace", grace),
                        ("every", every),
                        ("attempts", json.max_attempts.to_string()),
                        ("auto", bool_text(c, json.auto_update_now)),
                    ]
                )
            );
            println!(
                "  {}",
                c.tr_args(
                    "cli-rollout-started",
                    &[
                        ("at", locale_fmt::datetime_text(c.lang(), &json.started_at)),
                        ("by", json.started_by.clone())
                    ]
                )
            );
            Ok(())
        }
    }
}

/// A rollout's state (`active`, `stopped`, …) in words; unknown ones as sent.
fn rollout_state(c: &Catalog, state: &str) -> String {
    let key = format!("dash-rollout-state-{state}");
    if c.has(&key) { c.tr(&key) } else { state.to_string() }
}

/// `true` / `false` as the CLI always printed them in English, はい / いいえ in Japanese.
pub(crate) fn bool_text(c: &Catalog, value: bool) -> String {
    c.tr(if value { "cli-true" } else { "cli-false" })
}

pub async fn rollout(client: &AdminClient, format: OutputFormat, c: &Catalog, command: RolloutCommand) -> CliResult {
    let mut inner = client.inner.clone();
    match command {
        RolloutCommand::Start(args) => {
            let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            if args.max_attempts == 0 {
                return Err(CliError::new(2, "--max-attempts must be at least 1"));
            }
            let info = inner
                .start_rollout(proto::StartRolloutRequest {
                    target: args.target,
                    // 0 = the coordinator's default for the product.
                    grace_ms: args.grace.map_or(0, |grace| ms(grace).max(1)),
                    recheck_every_ms: ms(args.recheck_every).max(1),
                    max_attempts: args.max_attempts,
                    selector: args.selector,
                    auto_update_now: args.auto_update_now,
                    adapter: args.adapter.unwrap_or_default(),
                })
                .await?
                .into_inner();
            print_rollout(format, c, &info)
        }
        RolloutCommand::List => {
            let rollouts = inner
                .list_rollouts(proto::ListRolloutsRequest {})
                .await?
                .into_inner()
                .rollouts;
            let json: Vec<RolloutJson> = rollouts.iter().map(RolloutJson::from).collect();
            match format {
                OutputFormat::Json => print_json(&json),
                OutputFormat::Table | OutputFormat::Markdown => {
                    let mut out = table_in(
                        c,
                        &[
                            "cli-col-id",
                            "cli-col-target",
                            "cli-col-state",
                            "cli-col-selector",
                            "cli-col-started",
                            "cli-col-by",
                        ],
                    );
                    for r in &json {
                        out.add_row(vec![
                            r.id.clone(),
                            r.target.clone(),
                            rollout_state(c, &r.state),
                            r.selector.clone(),
                            locale_fmt::datetime_text(c.lang(), &r.started_at),
                            r.started_by.clone(),
                        ]);
                    }
                    println!("{out}");
                    Ok(())
                }
            }
        }
        RolloutCommand::Show { id } => {
            let info = inner
                .get_rollout(proto::GetRolloutRequest {
                    id: id.unwrap_or_default(),
                })
                .await?
                .into_inner();
            print_rollout(format, c, &info)
        }
        RolloutCommand::Cancel { id } => {
            let info = inner
                .cancel_rollout(proto::CancelRolloutRequest {
                    id: id.unwrap_or_default(),
                })
                .await?
                .into_inner();
            print_rollout(format, c, &info)
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// A rollout id (default: the current rollout).
    #[arg(long)]
    pub rollout: Option<String>,
    /// Include completion over time.
    #[arg(long)]
    pub history: bool,
}

#[derive(Debug, Serialize)]
struct HistoryJson {
    at: String,
    completed: u32,
    pending: u32,
    stragglers: u32,
    awaiting_restart: u32,
    /// The same moment over the whole roster (absent without one):
    /// completed + behind + no_probe = listed at every point.
    #[serde(skip_serializing_if = "Option::is_none")]
    roster: Option<RosterPointJson>,
}

#[derive(Debug, Serialize)]
struct RosterPointJson {
    listed: u32,
    completed: u32,
    behind: u32,
    no_probe: u32,
}

/// `rollcall status --output json` (stable).
#[derive(Debug, Serialize)]
struct StatusJson {
    rollout: String,
    target: String,
    state: String,
    total: u32,
    completed: u32,
    pending: u32,
    stragglers: u32,
    soft: u32,
    hard: u32,
    offline: u32,
    /// Upgrade installed, waiting for a restart (not stragglers).
    awaiting_restart: u32,
    by_cause: BTreeMap<String, u32>,
    fleet_cause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    history: Option<Vec<HistoryJson>>,
    /// N of M over the roster (issue 26); absent without a roster.
    #[serde(skip_serializing_if = "Option::is_none")]
    roster: Option<RosterCountsJson>,
}

/// `roster` in `status -o json`: completed + behind + no_probe = listed.
#[derive(Debug, Serialize)]
struct RosterCountsJson {
    listed: u32,
    probed: u32,
    completed: u32,
    behind: u32,
    no_probe: u32,
    unlisted_probes: u32,
    ambiguous: u32,
    age_s: u64,
}

pub async fn status(
    client: &AdminClient,
    format: OutputFormat,
    catalog: &rollcall_common::i18n::Catalog,
    args: StatusArgs,
) -> CliResult {
    let response = client
        .inner
        .clone()
        .status(proto::StatusRequest {
            rollout_id: args.rollout.unwrap_or_default(),
            history: args.history,
        })
        .await?
        .into_inner();
    let rollout = response.rollout.clone().unwrap_or_default();
    let json = StatusJson {
        rollout: rollout.id.clone(),
        target: rollout.target.clone(),
        state: rollout.state.clone(),
        total: response.total,
        completed: response.completed,
        pending: response.pending,
        stragglers: response.stragglers,
        soft: response.soft,
        hard: response.hard,
        offline: response.offline,
        awaiting_restart: response.awaiting_restart,
        by_cause: response.by_cause.clone().into_iter().collect(),
        fleet_cause: (!response.fleet_cause.is_empty()).then(|| response.fleet_cause.clone()),
        history: args.history.then(|| {
            response
                .history
                .iter()
                .map(|point| HistoryJson {
                    at: point.at.clone(),
                    completed: point.completed,
                    pending: point.pending,
                    stragglers: point.stragglers,
                    awaiting_restart: point.awaiting_restart,
                    roster: point.roster.as_ref().map(|r| RosterPointJson {
                        listed: r.listed,
                        completed: r.completed,
                        behind: r.behind,
                        no_probe: r.no_probe,
                    }),
                })
                .collect()
        }),
        roster: response.roster.map(|r| RosterCountsJson {
            listed: r.listed,
            probed: r.probed,
            completed: r.completed,
            behind: r.behind,
            no_probe: r.no_probe,
            unlisted_probes: r.unlisted_probes,
            ambiguous: r.ambiguous,
            age_s: r.age_s,
        }),
    };
    match format {
        OutputFormat::Json => print_json(&json),
        OutputFormat::Table | OutputFormat::Markdown => {
            let c = catalog;
            println!(
                "{}",
                c.tr_args(
                    "cli-rollout-line",
                    &[
                        ("id", json.rollout.clone()),
                        ("target", json.target.clone()),
                        ("state", rollout_state(c, &json.state))
                    ]
                )
            );
            println!("{}", super::chart::progress_bar(json.completed, json.total, 40));
            println!(
                "{}",
                c.tr_args(
                    "cli-status-counts",
                    &[
                        ("completed", json.completed.to_string()),
                        ("pending", json.pending.to_string()),
                        ("stragglers", json.stragglers.to_string()),
                        ("soft", json.soft.to_string()),
                        ("hard", json.hard.to_string()),
                        ("awaiting", json.awaiting_restart.to_string()),
                        ("offline", json.offline.to_string()),
                    ]
                )
            );
            if let Some(roster) = &json.roster {
                let age = match c.lang() {
                    rollcall_common::i18n::Lang::En => {
                        humantime::format_duration(std::time::Duration::from_secs(roster.age_s)).to_string()
                    }
                    rollcall_common::i18n::Lang::Ja => locale_fmt::duration(
                        c.lang(),
                        i64::try_from(roster.age_s.saturating_mul(1000)).unwrap_or(i64::MAX),
                    ),
                };
                println!(
                    "{}{}",
                    c.tr_args(
                        "cli-status-roster",
                        &[
                            ("completed", roster.completed.to_string()),
                            ("listed", roster.listed.to_string()),
                            ("behind", roster.behind.to_string()),
                            ("no_probe", roster.no_probe.to_string()),
                            ("probed", roster.probed.to_string()),
                            ("unlisted", roster.unlisted_probes.to_string()),
                            (
                                "ambiguous",
                                if roster.ambiguous > 0 {
                                    c.tr_args(
                                        "cli-status-roster-ambiguous",
                                        &[("count", roster.ambiguous.to_string())],
                                    )
                                } else {
                                    String::new()
                                }
                            ),
                        ]
                    ),
                    c.tr_args("cli-status-roster-age", &[("age", age)])
                );
            }
            if let Some(cause) = &json.fleet_cause {
                println!("{}", c.tr_args("cli-status-fleet-cause", &[("cause", cause.clone())]));
            }
            if !json.by_cause.is_empty() {
                let mut out = table_in(
                    c,
                    &[
                        "cli-col-cause",
                        "cli-col-runbook-step",
                        "cli-col-stragglers",
                        "cli-col-empty",
                    ],
                );
                let mut causes: Vec<_> = json.by_cause.iter().collect();
                causes.sort_by_key(|(cause, _)| rollcall_common::cause::Cause::rank(cause));
                for (cause, count) in causes {
                    // Causes that name no runbook step show "-", not "0".
                    let step = match rollcall_common::cause::Cause::from_code(cause).map(|c| c.runbook_step()) {
                        Some(rollcall_common::cause::NO_STEP) => "-".to_string(),
                        Some(step) => step.to_string(),
                        None => String::new(),
                    };
                    out.add_row(vec![
                        cause.clone(),
                        step,
                        count.to_string(),
                        catalog.tr(&format!("cause-{cause}")),
                    ]);
                }
                println!("{out}");
            }
            if let Some(history) = &json.history {
                let points: Vec<(u32, u32)> = history
                    .iter()
                    .map(|p| (p.completed, p.completed + p.pending + p.stragglers + p.awaiting_restart))
                    .collect();
                println!("{}", c.tr("cli-completion-over-time"));
                println!("{}", super::chart::sparkline(&points, 60));
                // Over the whole roster: completed of every listed endpoint.
                let roster: Vec<(u32, u32)> = history
                    .iter()
                    .filter_map(|p| p.roster.as_ref().map(|r| (r.completed, r.listed)))
                    .collect();
                if !roster.is_empty() {
                    println!("over the whole roster:");
                    println!("{}", super::chart::sparkline(&roster, 60));
                }
            }
            Ok(())
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct StragglersArgs {
    /// A rollout id (default: the current rollout).
    #[arg(long)]
    pub rollout: Option<String>,
}

/// One straggler in `--output json` (stable).
#[derive(Debug, Serialize)]
pub struct StragglerJson {
    pub id: String,
    pub hostname: String,
    pub cause: String,
    pub runbook_step: u32,
    pub state: String,
    pub since: String,
    pub blocks: u32,
    pub update_agent: Option<String>,
    pub failing: Vec<String>,
    pub role: &'static str,
    pub online: bool,
    pub version: Option<String>,
    pub attempts: u32,
    /// With `update_agent_conflict`: every agent claiming the address.
    pub update_agent_claimants: Vec<String>,
    /// False for a listed endpoint without a probe (cause `no_probe`,
    /// issue 26): then `id` is its roster entity id and `version` the
    /// roster's (null when unknown).
    pub probe: bool,
    pub connection_status: Option<String>,
    pub managing_server: Option<String>,
    pub domain: Option<String>,
    /// For a probe-less endpoint: what to do.
    pub remediation: Option<String>,
    /// The cause was concluded from circumstances, not read.
    pub inferred: bool,
    /// The values read that name the cause.
    pub evidence: Vec<String>,
    /// The signal that gave the cause, if one did.
    pub signal: Option<String>,
}

pub async fn stragglers(
    client: &AdminClient,
    format: OutputFormat,
    catalog: &rollcall_common::i18n::Catalog,
    args: StragglersArgs,
) -> CliResult {
    let response = client
        .inner
        .clone()
        .stragglers(proto::StragglersRequest {
            rollout_id: args.rollout.unwrap_or_default(),
        })
        .await?
        .into_inner();
    let list: Vec<StragglerJson> = response
        .stragglers
        .iter()
        .map(|s| StragglerJson {
            id: s.id.clone(),
            hostname: s.hostname.clone(),
            cause: s.cause.clone(),
            runbook_step: s.runbook_step,
            state: s.state.clone(),
            since: s.since.clone(),
            blocks: s.blocks,
            update_agent: (!s.update_agent.is_empty()).then(|| s.update_agent.clone()),
            failing: s.failing.clone(),
            role: rollcall_common::proto::role_name(s.role),
            online: s.online,
            version: (!s.version.is_empty()).then(|| s.version.clone()),
            attempts: s.attempts,
            update_agent_claimants: s.update_agent_claimants.clone(),
            probe: s.probe,
            connection_status: (!s.connection_status.is_empty()).then(|| s.connection_status.clone()),
            managing_server: (!s.managing_server.is_empty()).then(|| s.managing_server.clone()),
            domain: (!s.domain.is_empty()).then(|| s.domain.clone()),
            remediation: (!s.probe).then(|| catalog.tr("cause-no_probe-remediation")),
            inferred: s.inferred,
            evidence: s.evidence.clone(),
            signal: (!s.signal.is_empty()).then(|| s.signal.clone()),
        })
        .collect();
    match format {
        OutputFormat::Json => print_json(&list),
        OutputFormat::Table | OutputFormat::Markdown => {
            let c = catalog;
            let english = c.lang() == rollcall_common::i18n::Lang::En;
            let mut out = table_in(
                c,
                &[
                    "cli-col-hostname",
                    "cli-col-role",
                    "cli-col-cause",
                    "cli-col-step",
                    "cli-col-state",
                    "cli-col-blocks",
                    "cli-col-failing",
                    "cli-col-since",
                    "cli-col-id",
                ],
            );
            for s in &list {
                out.add_row(vec![
                    printable(&s.hostname).into_owned(),
                    // English keeps the codes it always printed (scripts grep them).
                    if english {
                        s.role.to_string()
                    } else {
                        words::role_word(c, s.role)
                    },
                    if s.update_agent_claimants.is_empty() {
                        if s.inferred {
                            c.tr_args("cli-cause-inferred", &[("cause", s.cause.clone())])
                        } else {
                            s.cause.clone()
                        }
                    } else {
                        format!("{} ({})", s.cause, s.update_agent_claimants.join(", "))
                    },
                    if s.runbook_step == rollcall_common::cause::NO_STEP {
                        "-".to_string()
                    } else {
                        s.runbook_step.to_string()
                    },
                    if english {
                        s.state.clone()
                    } else {
                        words::state_word(c, &s.state)
                    },
                    if s.blocks > 0 {
                        s.blocks.to_string()
                    } else {
                        String::new()
                    },
                    if english {
                        s.failing.join(",")
                    } else {
                        s.failing
                            .iter()
                            .map(|name| words::check(c, name))
                            .collect::<Vec<_>>()
                            .join(&c.tr("list-separator"))
                    },
                    locale_fmt::datetime_text(c.lang(), &s.since),
                    s.id.clone(),
                ]);
            }
            println!("{out}");
            println!(
                "{}",
                c.tr_args("cli-stragglers-count", &[("count", list.len().to_string())])
            );
            let probe_less: Vec<&StragglerJson> = list.iter().filter(|s| !s.probe).collect();
            if !probe_less.is_empty() {
                println!(
                    "{}",
                    c.tr_args(
                        "cli-stragglers-probe-less",
                        &[
                            ("count", probe_less.len().to_string()),
                            ("remediation", c.tr("cause-no_probe-remediation"))
                        ]
                    )
                );
            }
            Ok(())
        }
    }
}
