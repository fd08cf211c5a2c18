//! What the pages show, read through the same read model as the admin API
//! ([`RolloutView`]: one fleet snapshot per page), so the dashboard and
//! `rollcall status` agree; plus the filters the pages take as query
//! parameters.
//!
//! Longer than ~400 lines: every page's data in one place, each read from the
//! same snapshot types; the pages' markup is in `pages.rs`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use rollcall_common::member_state::severity_from_word;
use rollcall_common::proto;
use rollcall_common::timefmt::{now_ms, parse_rfc3339};
use serde::Deserialize;
use tonic::{Code, Status};

use crate::rollouts::diagnosis::Cause;
use crate::rollouts::fleet::AgentView;
use crate::rollouts::rollout_view::RolloutView;
// The pages' counts are the read model's.
pub use crate::rollouts::rollout_view::Counts;
use crate::state::Coordinator;
use crate::store::{AgentRow, MemberRow};

use super::svg::Point;

/// Longest accepted filter value, in bytes.
const MAX_FILTER: usize = 256;
/// Label keys shown in the by-label panel, and values per key.
const MAX_LABEL_KEYS: usize = 6;
const MAX_LABEL_VALUES: usize = 10;
/// Rollouts offered for switching.
const MAX_ROLLOUTS: usize = 10;

/// The query parameters of the rollout page, as sent.
#[derive(Debug, Default, Deserialize)]
pub struct FilterQuery {
    pub rollout: Option<String>,
    pub cause: Option<String>,
    pub state: Option<String>,
    pub step: Option<String>,
    pub label: Option<String>,
    pub q: Option<String>,
}

/// Checked filters; empty strings mean "any".
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Filters {
    pub rollout: String,
    /// A cause code.
    pub cause: String,
    /// soft or hard.
    pub state: String,
    /// Runbook step 1–7.
    pub step: Option<u32>,
    /// key=value over agent labels; scopes the counts, chart and table.
    pub label: Option<(String, String)>,
    /// Part of a hostname or agent id.
    pub q: String,
}

fn present(value: Option<String>) -> Result<String, String> {
    let value = value.unwrap_or_default().trim().to_string();
    if value.len() > MAX_FILTER {
        return Err(format!("filter values must be at most {MAX_FILTER} bytes"));
    }
    Ok(value)
}

impl Filters {
    pub fn parse(query: FilterQuery) -> Result<Filters, String> {
        let rollout = present(query.rollout)?;
        if !rollout.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err("rollout must be a rollout id".into());
        }
        let cause = present(query.cause)?;
        if !cause.is_empty() && Cause::from_code(&cause).is_none() {
            return Err(format!("unknown cause {cause:?}"));
        }
        let state = present(query.state)?;
        if !state.is_empty() && severity_from_word(&state).is_none() {
            return Err("state must be soft or hard".into());
        }
        let step = present(query.step)?;
        let step = if step.is_empty() {
            None
        } else {
            match step.parse::<u32>() {
                Ok(step @ 1..=7) => Some(step),
                _ => return Err("step must be a runbook step from 1 to 7".into()),
            }
        };
        let label = present(query.label)?;
        let label = if label.is_empty() {
            None
        } else {
            let (key, value) = label
                .split_once('=')
                .ok_or_else(|| "label must be key=value".to_string())?;
            Some((key.trim().to_string(), value.trim().to_string()))
        };
        Ok(Filters {
            rollout,
            cause,
            state,
            step,
            label,
            q: present(query.q)?,
        })
    }

    pub fn label_text(&self) -> String {
        self.label
            .as_ref()
            .map(|(key, value)| format!("{key}={value}"))
            .unwrap_or_default()
    }

    pub fn step_text(&self) -> String {
        self.step.map(|step| step.to_string()).unwrap_or_default()
    }

    /// The filters as a query string (`?…` or empty).
    pub fn query(&self) -> String {
        super::html::query(&[
            ("rollout", &self.rollout),
            ("cause", &self.cause),
            ("state", &self.state),
            ("step", &self.step_text()),
            ("label", &self.label_text()),
            ("q", &self.q),
        ])
    }

    /// The same filters with the label scope replaced (for by-label links).
    pub fn with_label(&self, key: &str, value: &str) -> Filters {
        Filters {
            label: Some((key.to_string(), value.to_string())),
            ..self.clone()
        }
    }

    pub fn with_cause(&self, cause: &str) -> Filters {
        Filters {
            cause: cause.to_string(),
            ..self.clone()
        }
    }

    pub fn in_label_scope(&self, labels: &BTreeMap<String, String>) -> bool {
        match &self.label {
            Some((key, value)) => labels.get(key) == Some(value),
            None => true,
        }
    }

    fn matches(&self, row: &StragglerRow) -> bool {
        let straggler = &row.straggler;
        (self.cause.is_empty() || straggler.cause == self.cause)
            && (self.state.is_empty() || straggler.state == self.state)
            && self.step.is_none_or(|step| straggler.runbook_step == step)
            && self.in_label_scope(&row.labels)
            && (self.q.is_empty() || {
                let needle = self.q.to_lowercase();
                straggler.hostname.to_lowercase().contains(&needle) || straggler.id.contains(&needle)
            })
    }
}

/// A straggler with what the table adds to the API's row.
#[derive(Debug, Clone)]
pub struct StragglerRow {
    pub straggler: proto::Straggler,
    pub labels: BTreeMap<String, String>,
    /// Hostname of its update agent, when it has one rollcall knows.
    pub update_agent_hostname: String,
    pub since_ms: i64,
}

/// Completion per value of one label key.
#[derive(Debug, Clone)]
pub struct LabelGroup {
    pub key: String,
    /// (value, counts), largest first.
    pub values: Vec<(String, Counts)>,
    /// Values not shown.
    pub more: usize,
}

/// Everything the rollout page shows.
#[derive(Debug, Clone)]
pub struct Overview {
    pub rollout: proto::RolloutInfo,
    pub rollouts: Vec<proto::RolloutInfo>,
    /// The API's status of the whole rollout (fleet cause, by cause).
    pub status: proto::StatusResponse,
    /// Counts within the label scope (the whole rollout without one).
    pub scope: Counts,
    /// Completion over time within the label scope.
    pub history: Vec<Point>,
    /// Stragglers in the API's order (update agents first, then runbook order).
    pub stragglers: Vec<StragglerRow>,
    pub by_label: Vec<LabelGroup>,
    /// Stragglers by cause within the label scope.
    pub by_cause: BTreeMap<String, u32>,
    pub now_ms: i64,
}

impl Overview {
    /// The table's rows after the filters.
    pub fn filtered<'a>(&'a self, filters: &'a Filters) -> impl Iterator<Item = &'a StragglerRow> + 'a {
        self.stragglers.iter().filter(move |row| filters.matches(row))
    }
}

fn points(history: &[proto::HistoryPoint]) -> Vec<Point> {
    history
        .iter()
        .filter_map(|point| {
            Some(Point {
                at_ms: parse_rfc3339(&point.at)?,
                completed: point.completed,
                pending: point.pending,
                stragglers: point.stragglers,
            })
        })
        .collect()
}

/// Reads the rollout page; `None` when there is no rollout at all yet.
/// One fleet snapshot serves the whole page.
pub async fn overview(coordinator: &Arc<Coordinator>, filters: &Filters) -> Result<Option<Overview>, Status> {
    let rollout_row = match crate::read::rollouts::resolve(coordinator, &filters.rollout).await {
        Ok(row) => row,
        Err(status) if status.code() == Code::NotFound && filters.rollout.is_empty() => return Ok(None),
        Err(status) => return Err(status),
    };
    let view = RolloutView::load(coordinator, rollout_row, true)
        .await
        .map_err(Status::from)?;
    let mut status = view.status(crate::read::rollouts::rollout_info(view.rollout()));
    // N of M over the roster, when there is one (the whole fleet, not scoped).
    if let Some(roster) = crate::roster::RosterView::load(coordinator, view.fleet())
        .await
        .map_err(Status::from)?
    {
        status.roster = Some(roster.counts(view.fleet(), &view.rollout().target).to_proto());
    }
    let rollouts = coordinator
        .store
        .list_rollouts()
        .await
        .map_err(Status::from)?
        .iter()
        .take(MAX_ROLLOUTS)
        .map(crate::read::rollouts::rollout_info)
        .collect();

    let in_scope = |agent: &AgentView| filters.in_label_scope(&agent.row.labels);
    let scope = view.counts_where(in_scope);
    let by_cause = view.by_cause_where(in_scope);
    let history = if filters.label.is_some() {
        let scoped_ids: HashSet<&str> = view
            .members()
            .filter(|(agent, _)| in_scope(agent))
            .map(|(agent, _)| agent.row.id.as_str())
            .collect();
        points(&view.history_where(|id| scoped_ids.contains(id)).unwrap_or_default())
    } else {
        points(&status.history)
    };

    let by_id: HashMap<&str, &AgentView> = view
        .fleet()
        .iter()
        .map(|agent| (agent.row.id.as_str(), agent))
        .collect();
    let stragglers = view
        .stragglers()
        .into_iter()
        .map(|straggler| {
            let agent = by_id.get(straggler.id.as_str());
            let hostname_of = |id: &str| {
                by_id
                    .get(id)
                    .map(|agent| agent.row.hostname.clone())
                    .unwrap_or_default()
            };
            StragglerRow {
                labels: agent.map(|agent| agent.row.labels.clone()).unwrap_or_default(),
                update_agent_hostname: if straggler.update_agent.is_empty() {
                    String::new()
                } else {
                    hostname_of(&straggler.update_agent)
                },
                // The member row's own time, not its RFC 3339 text read back.
                since_ms: agent
                    .and_then(|agent| agent.member.as_ref())
                    .map(|member| member.since_ms)
                    .unwrap_or(0),
                straggler,
            }
        })
        .collect();

    Ok(Some(Overview {
        rollout: status.rollout.clone().unwrap_or_default(),
        rollouts,
        scope,
        history,
        stragglers,
        by_label: label_groups(&view),
        by_cause,
        status,
        now_ms: now_ms(),
    }))
}

/// Completion per label value over all members (not scoped: it is the
/// panel one picks a scope from).
fn label_groups(view: &RolloutView) -> Vec<LabelGroup> {
    view.by_label()
        .into_iter()
        .take(MAX_LABEL_KEYS)
        .map(|(key, values)| {
            let mut values: Vec<(String, Counts)> = values
                .into_iter()
                .map(|(value, counts)| (value.to_string(), counts))
                .collect();
            values.sort_by(|a, b| b.1.total.cmp(&a.1.total).then_with(|| a.0.cmp(&b.0)));
            let more = values.len().saturating_sub(MAX_LABEL_VALUES);
            values.truncate(MAX_LABEL_VALUES);
            LabelGroup {
                key: key.to_string(),
                values,
                more,
            }
        })
        .collect()
}

/// Everything the agent page shows.
#[derive(Debug, Clone)]
pub struct AgentPage {
    pub row: AgentRow,
    pub connected: bool,
    pub offline: bool,
    pub last_seen_ms: i64,
    pub checks: Vec<proto::CheckResult>,
    pub checked_at_ms: i64,
    pub rollout: Option<proto::RolloutInfo>,
    pub member: Option<MemberRow>,
    /// Hostname of its update agent, if any.
    pub update_agent_hostname: String,
    pub now_ms: i64,
    /// Its clock skew is beyond the policy's `clock_skew_warn`.
    pub clock_skew_flagged: bool,
}

/// Reads the agent page; `None` for an unknown agent.
pub async fn agent(coordinator: &Arc<Coordinator>, id: &str) -> Result<Option<AgentPage>, Status> {
    // One agent's row and membership, not the whole fleet: this page polls.
    let Some(row) = coordinator.store.get_agent(id).await.map_err(Status::from)? else {
        return Ok(None);
    };
    let rollout = match crate::read::rollouts::resolve(coordinator, "").await {
        Ok(row) => Some(row),
        Err(status) if status.code() == Code::NotFound => None,
        Err(status) => return Err(status),
    };
    let mut members = HashMap::new();
    if let Some(rollout) = &rollout
        && let Some(member) = coordinator
            .store
            .members(&rollout.id)
            .await
            .map_err(Status::from)?
            .into_iter()
            .find(|member| member.agent_id == id)
    {
        members.insert(member.agent_id.clone(), member);
    }
    let policy = coordinator.current_policy();
    let Some(view) = crate::rollouts::fleet::views(coordinator, &policy, vec![row], members).pop() else {
        return Ok(None);
    };
    let (mut checks, checked_at_ms) = coordinator.store.latest_checks(id).await.map_err(Status::from)?;
    checks.sort_by(|a, b| (a.runbook_step, &a.name).cmp(&(b.runbook_step, &b.name)));
    let update_agent_hostname = match view.member.as_ref().filter(|member| !member.update_agent.is_empty()) {
        Some(member) => coordinator
            .store
            .get_agent(&member.update_agent)
            .await
            .map_err(Status::from)?
            .map(|update_agent| update_agent.hostname)
            .unwrap_or_default(),
        None => String::new(),
    };
    Ok(Some(AgentPage {
        clock_skew_flagged: crate::domain::clock_skew::flagged(
            view.row.clock_skew_ms,
            coordinator.current_policy().clock_skew_warn(),
        ),
        checks,
        checked_at_ms,
        rollout: rollout.as_ref().map(crate::read::rollouts::rollout_info),
        update_agent_hostname,
        now_ms: now_ms(),
        connected: view.connected,
        offline: view.offline,
        last_seen_ms: view.last_seen_ms,
        member: view.member,
        row: view.row,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> FilterQuery {
        let get = |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string());
        FilterQuery {
            rollout: get("rollout"),
            cause: get("cause"),
            state: get("state"),
            step: get("step"),
            label: get("label"),
            q: get("q"),
        }
    }

    #[test]
    fn filters_parse_and_round_trip() {
        let filters = Filters::parse(query(&[
            ("cause", "license"),
            ("state", "hard"),
            ("step", "1"),
            ("label", "site=osaka"),
            ("q", ""),
        ]))
        .expect("valid");
        assert_eq!(filters.label, Some(("site".into(), "osaka".into())));
        assert_eq!(filters.query(), "?cause=license&state=hard&step=1&label=site%3Dosaka");
        assert_eq!(Filters::parse(FilterQuery::default()), Ok(Filters::default()));
    }

    #[test]
    fn bad_filters_are_refused() {
        for bad in [
            ("cause", "nope"),
            ("state", "limp"),
            ("step", "9"),
            ("label", "novalue"),
            ("rollout", "r-1;drop"),
        ] {
            assert!(Filters::parse(query(&[bad])).is_err(), "{bad:?} accepted");
        }
        let long = "x".repeat(MAX_FILTER + 1);
        assert!(Filters::parse(query(&[("q", &long)])).is_err());
    }
}
