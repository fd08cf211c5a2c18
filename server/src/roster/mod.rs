//! The roster: every endpoint the managed product lists, so rollouts are
//! counted over the whole fleet and not only the part that runs a probe
//! (docs/ROSTER.md).
//!
//! - `crate::apex_central` the Automation API source (with its token and
//!   the source as the coordinator holds it);
//! - `reconcile.rs` which probe is which entry; `cache.rs` the entries
//!   per generation (read through the store's roster cache); `history.rs`
//!   a rollout's history over the roster;
//! - this file: one pass
//!   ([`refresh`]) and the scheduled passes ([`run`]), imports, and
//!   [`RosterView`], the roster joined with the fleet for status,
//!   stragglers, agents, the report and the dashboard.
//!
//! A failed pass (401, time-out, TLS, a `result_code` other than 1, an
//! empty list) is logged, counted in `rollcall_roster_refreshes_total`
//! and kept in the roster's status; the last good roster stays.

pub mod cache;
pub mod history;
pub mod reconcile;

use std::sync::Arc;
use std::time::Duration;

use rollcall_common::proto;
use rollcall_common::timefmt::{now_ms, rfc3339_or_empty};
use tokio_util::sync::CancellationToken;

use crate::apex_central::ApexCentral;
use crate::rollouts::fleet::AgentView;
use crate::state::Coordinator;
use crate::store::StoreResult;
use crate::store::roster::{RosterEntry, RosterStatusRow};
use reconcile::{Match, Probe, Reconciled};

/// The source name Apex Central passes store.
pub const APEX_CENTRAL_SOURCE: &str = "apex_central";
/// Entries one import may hold at most.
pub const MAX_IMPORT_ENTRIES: usize = 1_000_000;

/// Why a pass or an import failed.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("no Apex Central source is configured (--apex-central-url); import a console export instead")]
    NotConfigured,
    #[error("{0}")]
    Fetch(#[from] crate::apex_central::FetchError),
    #[error("apex central listed no agents; the last roster is kept")]
    Empty,
    #[error("another replica's roster pass did not end in time; try again")]
    Busy,
    #[error("store the roster: {0}")]
    Store(#[from] crate::store::StoreError),
}

impl PassError {
    fn kind(&self) -> &'static str {
        match self {
            PassError::NotConfigured => "not_configured",
            PassError::Fetch(error) => error.kind(),
            PassError::Empty => "empty",
            PassError::Busy => "busy",
            PassError::Store(_) => "store",
        }
    }
}

/// The lease an Apex Central pass runs under: with several replicas on one
/// PostgreSQL database, one of them calls Apex Central at a time, and a
/// scheduled pass that another replica has just run is not run again
/// (SQLite: one coordinator, always held).
pub const LEASE: &str = "roster_apex_central";

/// How long the lease outlives a replica that died mid-pass: the pass's
/// own time-out twice (the call, then storing the entries) and a margin.
fn lease_ttl(apex: &ApexCentral) -> Duration {
    apex.timeout().saturating_mul(2) + Duration::from_secs(30)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// One Apex Central pass, asked for (`rollcall roster refresh`): waits for
/// a pass another replica runs to end (it holds the lease), then runs its
/// own; the roster replaced, or the error recorded.
pub async fn refresh(coordinator: &Coordinator) -> Result<usize, PassError> {
    let Some(apex) = &coordinator.roster.apex_central else {
        return Err(PassError::NotConfigured);
    };
    let _one_at_a_time = coordinator.roster.pass.lock().await;
    let replica = &coordinator.config.replica_id;
    let ttl = lease_ttl(apex);
    let deadline = tokio::time::Instant::now() + ttl;
    loop {
        if coordinator.store.try_lease(LEASE, replica, millis(ttl)).await? {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(PassError::Busy);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let result = pass(coordinator, apex).await;
    release(coordinator).await;
    result
}

/// A scheduled pass: runs only when this replica takes the lease and the
/// shared roster's last pass (good or failed) is `every` old; otherwise it
/// is left (counted in `rollcall_roster_passes_left_total`). `Ok(Err(reason))`:
/// left, and why.
async fn scheduled(coordinator: &Coordinator, every: Duration) -> Result<Result<usize, &'static str>, PassError> {
    let Some(apex) = &coordinator.roster.apex_central else {
        return Err(PassError::NotConfigured);
    };
    let _one_at_a_time = coordinator.roster.pass.lock().await;
    let replica = &coordinator.config.replica_id;
    if !coordinator
        .store
        .try_lease(LEASE, replica, millis(lease_ttl(apex)))
        .await?
    {
        coordinator.metrics.roster_pass_left("lease");
        return Ok(Err("lease"));
    }
    // Read under the lease: a replica that ran the pass just before has
    // released the lease and left its time here.
    let status = coordinator.store.roster_status().await;
    let last = status
        .as_ref()
        .ok()
        .and_then(|row| row.refreshed_at_ms.max(row.last_error_at_ms));
    if let Some(last) = last
        && now_ms().saturating_sub(last) < millis(every)
    {
        release(coordinator).await;
        coordinator.metrics.roster_pass_left("fresh");
        return Ok(Err("fresh"));
    }
    let result = pass(coordinator, apex).await;
    release(coordinator).await;
    result.map(Ok)
}

async fn release(coordinator: &Coordinator) {
    if let Err(error) = coordinator
        .store
        .release_lease(LEASE, &coordinator.config.replica_id)
        .await
    {
        // It lapses on its own after its time-to-live.
        tracing::debug!(%error, "could not release the roster lease");
    }
}

/// The call and the store, under the lease.
async fn pass(coordinator: &Coordinator, apex: &ApexCentral) -> Result<usize, PassError> {
    let started = now_ms();
    let result = match apex.fetch(started / 1000).await {
        Ok(entries) if entries.is_empty() => Err(PassError::Empty),
        Ok(entries) => {
            let count = entries.len();
            coordinator
                .store
                .replace_roster(APEX_CENTRAL_SOURCE, entries, now_ms())
                .await
                .map(|()| count)
                .map_err(PassError::from)
        }
        Err(error) => Err(PassError::from(error)),
    };
    match &result {
        Ok(count) => {
            tracing::info!(entries = count, "roster refreshed from apex central");
            coordinator.metrics.roster_refreshed("ok", Some(*count));
        }
        Err(error) => {
            tracing::warn!(kind = error.kind(), %error, "roster refresh from apex central failed; the last roster is kept");
            coordinator.metrics.roster_refreshed(error.kind(), None);
            if let Err(store_error) = coordinator
                .store
                .record_roster_error(&error.to_string(), now_ms())
                .await
            {
                tracing::warn!(error = %store_error, "record the roster refresh error");
            }
        }
    }
    result
}

/// Replaces the roster with an import (all or nothing).
pub async fn import(coordinator: &Coordinator, source: &str, entries: Vec<RosterEntry>) -> StoreResult<usize> {
    let _one_at_a_time = coordinator.roster.pass.lock().await;
    let count = entries.len();
    let result = coordinator.store.replace_roster(source, entries, now_ms()).await;
    match &result {
        Ok(()) => {
            tracing::info!(entries = count, source, "roster imported");
            coordinator.metrics.roster_refreshed("ok", Some(count));
        }
        Err(error) => {
            tracing::warn!(%error, source, "roster import failed; the last roster is kept");
            coordinator.metrics.roster_refreshed("store", None);
        }
    }
    result.map(|()| count)
}

/// The scheduled passes until `shutdown`: a look at start, then every
/// `--roster-refresh` (at most 30 s apart, so when the replica that ran the
/// passes stops another takes over within an interval and a half). A pass
/// runs when the shared roster's last pass is an interval old and this
/// replica holds the lease (SQLite: always). A pass under way at shutdown
/// is dropped: nothing is half-stored, the generation it wrote is never
/// made current.
pub async fn run(coordinator: Arc<Coordinator>, shutdown: CancellationToken) {
    if coordinator.roster.apex_central.is_none() {
        return;
    }
    let every = coordinator.roster.refresh_every.max(Duration::from_secs(1));
    let look = every.min(Duration::from_secs(30));
    // Said once per change, not at every look.
    let mut last_left: Option<&'static str> = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            result = scheduled(&coordinator, every) => match result {
                Ok(Err(reason)) => {
                    if last_left != Some(reason) {
                        tracing::info!(
                            reason,
                            "left the scheduled apex central pass: another replica holds the roster lease \
                             (lease) or the shared roster is younger than --roster-refresh (fresh)"
                        );
                    }
                    last_left = Some(reason);
                }
                // A failed pass is logged, counted and kept by the pass itself.
                Ok(Ok(_)) | Err(PassError::Fetch(_) | PassError::Empty) => last_left = None,
                Err(error) => tracing::warn!(%error, "roster pass not run; trying again later"),
            },
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(look) => {}
        }
    }
}

/// The roster's status for the admin API.
pub fn status_proto(coordinator: &Coordinator, row: &RosterStatusRow) -> proto::RosterStatus {
    proto::RosterStatus {
        source: row.source.clone(),
        entries: u32::try_from(row.entries).unwrap_or(u32::MAX),
        refreshed_at: rfc3339_or_empty(row.refreshed_at_ms.unwrap_or(0)),
        last_error: row.last_error.clone().unwrap_or_default(),
        last_error_at: rfc3339_or_empty(row.last_error_at_ms.unwrap_or(0)),
        apex_central: coordinator.roster.apex_central.is_some(),
        age_s: age_s(row),
    }
}

fn age_s(row: &RosterStatusRow) -> u64 {
    row.refreshed_at_ms
        .map(|at| u64::try_from((now_ms() - at).max(0) / 1000).unwrap_or(0))
        .unwrap_or(0)
}

pub fn entry_proto(entry: &RosterEntry) -> proto::RosterEntry {
    proto::RosterEntry {
        host_name: entry.host_name.clone(),
        entity_id: entry.entity_id.clone(),
        ip_addresses: entry.ip_addresses.clone(),
        mac_addresses: entry.mac_addresses.clone(),
        version: entry.version.clone().unwrap_or_default(),
        connection_status: entry.connection_status.clone().unwrap_or_default(),
        managing_server: entry.managing_server.clone().unwrap_or_default(),
        domain: entry.domain.clone().unwrap_or_default(),
        folder_path: entry.folder_path.clone().unwrap_or_default(),
        os: entry.os.clone().unwrap_or_default(),
        product: entry.product.clone().unwrap_or_default(),
    }
}

fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// An imported entry, checked: a host name is required; the version, when
/// given, must be a dotted number.
pub fn entry_from_proto(entry: proto::RosterEntry) -> Result<RosterEntry, String> {
    let host_name = entry.host_name.trim().to_string();
    if host_name.is_empty() {
        return Err("an entry has no host name".into());
    }
    let version = non_empty(&entry.version);
    if let Some(version) = &version
        && let Err(error) = rollcall_common::version::validate(version)
    {
        return Err(format!("{host_name}: version {version:?}: {error}"));
    }
    Ok(RosterEntry {
        host_name,
        entity_id: entry.entity_id.trim().to_string(),
        ip_addresses: entry.ip_addresses,
        mac_addresses: entry.mac_addresses,
        version,
        connection_status: non_empty(&entry.connection_status),
        managing_server: non_empty(&entry.managing_server),
        domain: non_empty(&entry.domain),
        folder_path: non_empty(&entry.folder_path),
        os: non_empty(&entry.os),
        product: non_empty(&entry.product),
    })
}

/// Where one listed endpoint stands in a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Completed,
    Behind,
    /// No probe and no version: cause `no_probe`.
    Unknown,
}

/// The roster joined with one fleet snapshot.
#[derive(Debug, Clone)]
pub struct RosterView {
    pub status: RosterStatusRow,
    /// Shared with the roster cache (one copy per generation).
    pub entries: Arc<Vec<RosterEntry>>,
    /// Over the fleet's agents that are not revoked, in `agent_ids` order.
    pub reconciled: Reconciled,
    pub agent_ids: Vec<String>,
}

/// The N of M counts (the `roster` object of `rollcall status -o json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RosterCounts {
    pub listed: u32,
    pub probed: u32,
    pub completed: u32,
    pub behind: u32,
    pub no_probe: u32,
    pub unlisted_probes: u32,
    pub ambiguous: u32,
    pub age_s: u64,
}

impl RosterCounts {
    pub fn to_proto(self) -> proto::RosterCounts {
        proto::RosterCounts {
            listed: self.listed,
            probed: self.probed,
            completed: self.completed,
            behind: self.behind,
            no_probe: self.no_probe,
            unlisted_probes: self.unlisted_probes,
            age_s: self.age_s,
            ambiguous: self.ambiguous,
        }
    }
}

fn at_least(version: &str, target: &str) -> Option<bool> {
    rollcall_common::version::is_at_least(version, target).ok()
}

impl RosterView {
    /// `None` when there has never been a roster. The entries come from
    /// the roster cache: read from the store only when the generation the
    /// store names is not the cached one.
    pub async fn load(coordinator: &Coordinator, fleet: &[AgentView]) -> StoreResult<Option<Self>> {
        let status = coordinator.store.roster_status().await?;
        if status.refreshed_at_ms.is_none() {
            return Ok(None);
        }
        let (entries, index) = cache::entries(&coordinator.roster.cache, coordinator.store.as_ref(), &status).await?;
        Ok(Some(Self::with_index(status, entries, &index, fleet)))
    }

    /// A view over entries read here (tests, `roster list`).
    pub fn new(status: RosterStatusRow, entries: Vec<RosterEntry>, fleet: &[AgentView]) -> Self {
        let index = reconcile::Index::new(&entries);
        Self::with_index(status, Arc::new(entries), &index, fleet)
    }

    /// `index` must be `Index::new(&entries)`.
    pub fn with_index(
        status: RosterStatusRow,
        entries: Arc<Vec<RosterEntry>>,
        index: &reconcile::Index,
        fleet: &[AgentView],
    ) -> Self {
        let agents: Vec<&AgentView> = fleet.iter().filter(|view| !view.row.revoked).collect();
        let probes: Vec<Probe<'_>> = agents
            .iter()
            .map(|view| Probe {
                hostname: &view.row.hostname,
                // From its host facts, when the host name finds nothing.
                ip_addresses: &view.row.host.ip_addresses,
                mac_addresses: &view.row.host.mac_addresses,
            })
            .collect();
        let reconciled = reconcile::reconcile_with(index, &entries, &probes);
        RosterView {
            status,
            entries,
            reconciled,
            agent_ids: agents.iter().map(|view| view.row.id.clone()).collect(),
        }
    }

    /// An agent's match: its word and the host names it names.
    pub fn agent_match(&self, agent_id: &str) -> Option<(&'static str, Vec<String>)> {
        let at = self.agent_ids.iter().position(|id| id == agent_id)?;
        let found = self.reconciled.probes.get(at)?;
        let hosts = match found {
            Match::Matched(entry) => self
                .entries
                .get(*entry)
                .map(|e| vec![e.host_name.clone()])
                .unwrap_or_default(),
            Match::NotListed => Vec::new(),
            Match::Ambiguous(entries) => entries
                .iter()
                .filter_map(|entry| self.entries.get(*entry))
                .map(|e| e.host_name.clone())
                .collect(),
        };
        Some((found.word(), hosts))
    }

    /// Each listed endpoint's standing against `target`, with its probe's
    /// view when it has one. A probe completes its entry when its member
    /// state says so (or, outside the rollout, its version is at the
    /// target); otherwise it is behind, whatever version it shows.
    pub fn standings<'a>(
        &'a self,
        fleet: &'a [AgentView],
        target: &'a str,
    ) -> impl Iterator<Item = (usize, Option<&'a AgentView>, Standing)> + 'a {
        let by_id: std::collections::HashMap<&str, &AgentView> =
            fleet.iter().map(|view| (view.row.id.as_str(), view)).collect();
        self.entries.iter().enumerate().map(move |(at, entry)| {
            let probe = self
                .reconciled
                .probe_of
                .get(at)
                .copied()
                .flatten()
                .and_then(|probe| self.agent_ids.get(probe))
                .and_then(|id| by_id.get(id.as_str()).copied());
            let standing = match probe {
                Some(view) => {
                    let done = match &view.member {
                        Some(member) => member.state.is_completed(),
                        None => at_least(&view.row.product.version, target).unwrap_or(false),
                    };
                    if done { Standing::Completed } else { Standing::Behind }
                }
                None => match entry.version.as_deref().map(|version| at_least(version, target)) {
                    Some(Some(true)) => Standing::Completed,
                    Some(_) => Standing::Behind,
                    None => Standing::Unknown,
                },
            };
            (at, probe, standing)
        })
    }

    pub fn counts(&self, fleet: &[AgentView], target: &str) -> RosterCounts {
        let mut counts = RosterCounts {
            listed: u32::try_from(self.entries.len()).unwrap_or(u32::MAX),
            age_s: age_s(&self.status),
            ..Default::default()
        };
        for (_, probe, standing) in self.standings(fleet, target) {
            if probe.is_some() {
                counts.probed += 1;
            }
            match standing {
                Standing::Completed => counts.completed += 1,
                Standing::Behind => counts.behind += 1,
                Standing::Unknown => counts.no_probe += 1,
            }
        }
        for found in &self.reconciled.probes {
            match found {
                Match::NotListed => counts.unlisted_probes += 1,
                Match::Ambiguous(_) => counts.ambiguous += 1,
                Match::Matched(_) => {}
            }
        }
        counts
    }

    /// The listed endpoints without a probe that are not completed, as
    /// stragglers with cause `no_probe` and what the roster knows.
    pub fn probe_less_stragglers(&self, fleet: &[AgentView], target: &str) -> Vec<proto::Straggler> {
        let mut list: Vec<proto::Straggler> = self
            .standings(fleet, target)
            .filter(|(_, probe, standing)| probe.is_none() && *standing != Standing::Completed)
            .filter_map(|(at, _, _)| self.entries.get(at))
            .map(|entry| proto::Straggler {
                id: if entry.entity_id.is_empty() {
                    entry.host_name.clone()
                } else {
                    entry.entity_id.clone()
                },
                hostname: entry.host_name.clone(),
                cause: NO_PROBE.to_string(),
                runbook_step: rollcall_common::cause::NO_STEP,
                version: entry.version.clone().unwrap_or_default(),
                online: entry
                    .connection_status
                    .as_deref()
                    .is_some_and(|status| status.eq_ignore_ascii_case("normal")),
                probe: false,
                connection_status: entry.connection_status.clone().unwrap_or_default(),
                managing_server: entry.managing_server.clone().unwrap_or_default(),
                domain: entry
                    .domain
                    .clone()
                    .or_else(|| entry.folder_path.clone())
                    .unwrap_or_default(),
                role: proto::Role::Endpoint as i32,
                ..Default::default()
            })
            .collect();
        list.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        list
    }
}

/// The cause of a listed endpoint rollcall knows nothing of: it runs no
/// probe and the roster gives no version.
pub const NO_PROBE: &str = "no_probe";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::traits::*;
    use rollcall_common::member_state::MemberState;

    fn view(id: usize, hostname: String, version: &str, completed: bool) -> AgentView {
        let mut row = crate::store::AgentRow {
            id: format!("agent-{id}"),
            hostname,
            ..Default::default()
        };
        row.product.version = version.to_string();
        AgentView {
            member: Some(crate::store::MemberRow {
                agent_id: row.id.clone(),
                state: if completed {
                    MemberState::Completed
                } else {
                    MemberState::Pending
                },
                ..Default::default()
            }),
            row,
            connected: true,
            offline: false,
            last_seen_ms: 0,
        }
    }

    fn entry(host: &str, version: Option<&str>) -> RosterEntry {
        RosterEntry {
            host_name: host.into(),
            version: version.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn every_listed_endpoint_is_completed_behind_or_unknown() {
        let entries = vec![
            entry("pc01.corp.example", Some("14.0.1")),
            entry("PC02", None),
            entry("PC03", Some("14.0.2")),
            entry("PC04", Some("14.0.1")),
            entry("PC05", None),
        ];
        let fleet = vec![
            view(1, "PC01".into(), "14.0.2", true),
            view(2, "pc02".into(), "", false),
            view(3, "rogue".into(), "14.0.1", false),
        ];
        let status = RosterStatusRow {
            refreshed_at_ms: Some(now_ms()),
            ..Default::default()
        };
        let roster = RosterView::new(status, entries, &fleet);
        let counts = roster.counts(&fleet, "14.0.2");
        assert_eq!(
            (
                counts.listed,
                counts.probed,
                counts.completed,
                counts.behind,
                counts.no_probe
            ),
            (5, 2, 2, 2, 1)
        );
        assert_eq!(counts.unlisted_probes, 1);
        assert_eq!(counts.completed + counts.behind + counts.no_probe, counts.listed);
        let stragglers = roster.probe_less_stragglers(&fleet, "14.0.2");
        let hosts: Vec<(&str, &str, bool)> = stragglers
            .iter()
            .map(|s| (s.hostname.as_str(), s.version.as_str(), s.probe))
            .collect();
        assert_eq!(hosts, vec![("PC04", "14.0.1", false), ("PC05", "", false)]);
        assert!(stragglers.iter().all(|s| s.cause == NO_PROBE));
        assert_eq!(roster.agent_match("agent-3").map(|m| m.0), Some("not_listed"));
        assert_eq!(
            roster.agent_match("agent-1"),
            Some(("matched", vec!["pc01.corp.example".to_string()]))
        );
    }

    /// docs/BENCHMARKS.md, "Roster": 100,000 entries stored, read back,
    /// matched against 50,000 probes and counted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hundred_thousand_entries_load_reconcile_and_count_in_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sqlite::SqliteStore::open(&dir.path().join("rollcall.db")).unwrap();
        let entries: Vec<RosterEntry> = (0..100_000)
            .map(|at| RosterEntry {
                host_name: format!("PC{at:06}.corp.example"),
                entity_id: format!("626dcf14-b0c3-4b00-bc76-{at:012}"),
                ip_addresses: vec![format!("10.{}.{}.{}", at / 65536, (at / 256) % 256, at % 256)],
                mac_addresses: vec![format!(
                    "08-00-27-{:02X}-{:02X}-{:02X}",
                    at / 65536,
                    (at / 256) % 256,
                    at % 256
                )],
                version: (at % 3 == 0).then(|| "14.0.2".to_string()),
                managing_server: Some("ApexOne-1".into()),
                folder_path: Some("Workgroup".into()),
                ..Default::default()
            })
            .collect();
        let fleet: Vec<AgentView> = (0..50_000)
            .map(|at| view(at, format!("pc{at:06}"), "14.0.1", at % 2 == 0))
            .collect();
        let started = std::time::Instant::now();
        store.replace_roster("apex_central", entries, now_ms()).await.unwrap();
        let stored = started.elapsed();
        let status = store.roster_status().await.unwrap();
        let entries = store.roster_entries().await.unwrap();
        let read = started.elapsed() - stored;
        let roster = RosterView::new(status, entries, &fleet);
        let counts = roster.counts(&fleet, "14.0.2");
        let stragglers = roster.probe_less_stragglers(&fleet, "14.0.2");
        let total = started.elapsed();
        eprintln!(
            "roster bench: store {stored:?}, read {read:?}, reconcile+count+stragglers {:?}, total {total:?}",
            total - stored - read
        );
        assert_eq!(
            (counts.listed, counts.probed, counts.unlisted_probes),
            (100_000, 50_000, 0)
        );
        assert_eq!(counts.completed + counts.behind + counts.no_probe, counts.listed);
        assert_eq!(
            stragglers.len(),
            usize::try_from(counts.behind + counts.no_probe - 25_000).unwrap()
        );
        // A debug build on a shared CI core: generous; the release figures are in BENCHMARKS.md.
        assert!(total < std::time::Duration::from_secs(60), "{total:?}");
    }
}
