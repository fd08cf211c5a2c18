//! The coordinator's Prometheus metrics, every name prefixed `rollcall_`.
//!
//! Counters and the ingest latency histogram are updated where the events
//! happen (ingest, dispatch, the agent stream's receipts). Gauges that
//! describe the fleet — connected agents, rollout members by state,
//! stragglers by cause, the completion ratio — are computed at scrape time
//! from the same read model (`crate::read::gauges`, through the rollout's
//! `RolloutView`) as `rollcall status`, so the
//! numbers in Grafana and in `rollcall status` never disagree.
//!
//! [`Metrics`] is a cheap handle (an `Arc` inside): the ingest worker is
//! started before the coordinator (`crate::state`) exists and holds its own clone.
//!
//! Longer than ~400 lines: every metric is registered here with its help
//! text, so names and help are reviewed together (the Grafana test reads
//! them).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use rollcall_common::member_state::MemberState;
use rollcall_common::proto;

/// One listener's handle on `rollcall_connections_shed_total`.
#[derive(Clone)]
pub struct ShedCounter {
    family: Family<Labels, Counter>,
    listener: &'static str,
}

impl ShedCounter {
    pub fn shed(&self, reason: &'static str) {
        self.family
            .get_or_create(&vec![
                ("listener", self.listener.to_string()),
                ("reason", reason.to_string()),
            ])
            .inc();
    }
}

impl std::fmt::Debug for ShedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShedCounter").field("listener", &self.listener).finish()
    }
}

/// The `Content-Type` of [`Metrics::render`]'s output (text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Label sets are small lists of (name, value).
type Labels = Vec<(&'static str, String)>;

/// Upper bounds of the ingest latency buckets, in seconds: from one
/// millisecond (a lone report on an idle coordinator) to ten seconds (a
/// queue backed up behind a slow disk).
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    reports_ingested: Counter,
    reports_refused: Counter,
    hello_labels_ignored: Counter,
    ingest_latency: Histogram,
    commands_sent: Family<Labels, Counter>,
    commands_delivered: Counter,
    commands_acknowledged: Family<Labels, Counter>,
    agents_connected: Gauge,
    connections: Gauge,
    connections_shed: Family<Labels, Counter>,
    rollout_agents: Family<Labels, Gauge>,
    rollout_offline: Family<Labels, Gauge>,
    stragglers: Family<Labels, Gauge>,
    completion_ratio: Family<Labels, Gauge<f64, AtomicU64>>,
    rollout_info: Family<Labels, Gauge>,
    budget_refusals: Family<Labels, Counter>,
    streams_replaced: Counter,
    reports_deleted: Counter,
    rows_pruned: Family<Labels, Counter>,
    audit_suppressed: Family<Labels, Counter>,
    store_bytes: Gauge,
    /// Follows [`crate::store::rows::undecodable_rows`] at each scrape.
    store_rows_undecodable: Counter,
    roster_refreshes: Family<Labels, Counter>,
    roster_entries: Gauge,
    roster_passes_left: Family<Labels, Counter>,
    /// One scrape at a time: gauges are cleared and refilled per scrape, and
    /// two interleaved scrapes could otherwise encode a half-filled family.
    scrape: tokio::sync::Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rollcall");
        let reports_ingested = Counter::default();
        registry.register(
            "reports_ingested",
            "Agent reports stored durably (and acknowledged)",
            reports_ingested.clone(),
        );
        let reports_refused = Counter::default();
        registry.register(
            "reports_refused",
            "Agent reports the store refused; their agents send them again",
            reports_refused.clone(),
        );
        let hello_labels_ignored = Counter::default();
        registry.register(
            "hello_labels_ignored",
            "Hello labels that contradicted a label bound by the agent's enrolment token, ignored",
            hello_labels_ignored.clone(),
        );
        let ingest_latency = Histogram::new(LATENCY_BUCKETS);
        registry.register_with_unit(
            "ingest_latency",
            "Time from a report's arrival to the commit that stored it",
            Unit::Seconds,
            ingest_latency.clone(),
        );
        let commands_sent = Family::<Labels, Counter>::default();
        registry.register(
            "commands_sent",
            "Commands issued to agents (stored, then pushed or queued), by kind",
            commands_sent.clone(),
        );
        let commands_delivered = Counter::default();
        registry.register(
            "commands_delivered",
            "Commands pushed onto a live agent stream",
            commands_delivered.clone(),
        );
        let commands_acknowledged = Family::<Labels, Counter>::default();
        registry.register(
            "commands_acknowledged",
            "Command receipts from agents, by result (accepted or refused)",
            commands_acknowledged.clone(),
        );
        let agents_connected = Gauge::default();
        registry.register(
            "agents_connected",
            "Agents holding a live stream to this coordinator",
            agents_connected.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "connections",
            "Established TLS connections on the gRPC port (agents and admins)",
            connections.clone(),
        );
        let connections_shed = Family::<Labels, Counter>::default();
        registry.register(
            "connections_shed",
            "Connections closed before they authenticated, by listener and reason \
             (connection_limit, per_source, first_byte_timeout, closed_by_peer, \
             handshakes_busy, handshake_timeout, handshake_failed, anonymous_lifetime)",
            connections_shed.clone(),
        );
        let rollout_agents = Family::<Labels, Gauge>::default();
        registry.register(
            "rollout_agents",
            "Members of the current rollout by state (completed, pending, straggler_soft, straggler_hard)",
            rollout_agents.clone(),
        );
        let rollout_offline = Family::<Labels, Gauge>::default();
        registry.register(
            "rollout_offline",
            "Members of the current rollout not completed and not seen within the policy's offline_after",
            rollout_offline.clone(),
        );
        let stragglers = Family::<Labels, Gauge>::default();
        registry.register(
            "stragglers",
            "Stragglers of the current rollout by runbook cause",
            stragglers.clone(),
        );
        let completion_ratio = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "rollout_completion_ratio",
            "Completed members of the current rollout over all its members (0 to 1)",
            completion_ratio.clone(),
        );
        let rollout_info = Family::<Labels, Gauge>::default();
        registry.register(
            "rollout_info",
            "The current rollout: always 1, with its id, target version and state as labels",
            rollout_info.clone(),
        );
        let budget_refusals = Family::<Labels, Counter>::default();
        registry.register(
            "budget_refusals",
            "Agent messages over their agent's budget (messages, bytes: the stream is cut; renewal: not answered)",
            budget_refusals.clone(),
        );
        let streams_replaced = Counter::default();
        registry.register(
            "streams_replaced",
            "Agent streams ended because the same agent opened a newer one, here or on another replica (at most one live stream per agent)",
            streams_replaced.clone(),
        );
        let reports_deleted = Counter::default();
        registry.register(
            "reports_deleted",
            "Reports deleted by retention (--retain-reports)",
            reports_deleted.clone(),
        );
        let rows_pruned = Family::<Labels, Counter>::default();
        registry.register(
            "retention_rows_pruned",
            "Rows deleted by retention other than reports, by table (--retain-audit, --retain-commands, --retain-transitions, --retain-expired-certificates)",
            rows_pruned.clone(),
        );
        let audit_suppressed = Family::<Labels, Counter>::default();
        registry.register(
            "audit_suppressed",
            "Audit entries of admin reads and refused admin calls not written (at most one per caller and call a minute, and 5 a second in all), by kind (read, refused)",
            audit_suppressed.clone(),
        );
        let store_bytes = Gauge::default();
        registry.register_with_unit(
            "store",
            "Size of the store at scrape time (SQLite: database file plus write-ahead log; PostgreSQL: rollcall's tables with their indexes)",
            Unit::Bytes,
            store_bytes.clone(),
        );
        let store_rows_undecodable = Counter::default();
        registry.register(
            "store_rows_undecodable",
            "Stored columns (labels JSON, protobuf bodies) that did not decode and were read as empty",
            store_rows_undecodable.clone(),
        );
        let roster_refreshes = Family::<Labels, Counter>::default();
        registry.register(
            "roster_refreshes",
            "Roster passes (Apex Central, CSV imports) by result: ok, or the error kind \
             (unauthorized, http, timeout, connect, tls, result_code, decode, empty, store)",
            roster_refreshes.clone(),
        );
        let roster_passes_left = Family::<Labels, Counter>::default();
        registry.register(
            "roster_passes_left",
            "Scheduled Apex Central passes this replica did not run, by reason: lease (another \
             replica holds the roster lease) or fresh (the shared roster is younger than --roster-refresh)",
            roster_passes_left.clone(),
        );
        let roster_entries = Gauge::default();
        registry.register(
            "roster_entries",
            "Endpoints in the roster this coordinator last stored or read",
            roster_entries.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                reports_ingested,
                reports_refused,
                hello_labels_ignored,
                ingest_latency,
                commands_sent,
                commands_delivered,
                commands_acknowledged,
                agents_connected,
                connections,
                connections_shed,
                rollout_agents,
                rollout_offline,
                stragglers,
                completion_ratio,
                rollout_info,
                budget_refusals,
                streams_replaced,
                reports_deleted,
                rows_pruned,
                audit_suppressed,
                store_bytes,
                store_rows_undecodable,
                roster_refreshes,
                roster_entries,
                roster_passes_left,
                scrape: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// A batch of reports committed; `latencies_ms` holds, per report, the
    /// time from its arrival to the commit.
    pub fn reports_ingested(&self, latencies_ms: impl IntoIterator<Item = i64>) {
        let mut count = 0u64;
        for latency_ms in latencies_ms {
            count += 1;
            // Clocks can step backwards; a negative latency is recorded as zero.
            let seconds = latency_ms.max(0) as f64 / 1000.0;
            self.inner.ingest_latency.observe(seconds);
        }
        self.inner.reports_ingested.inc_by(count);
    }

    pub fn reports_refused(&self, count: usize) {
        self.inner.reports_refused.inc_by(count as u64);
    }

    /// Hello labels ignored because the enrolment token bound that key.
    pub fn hello_labels_ignored(&self, count: usize) {
        self.inner.hello_labels_ignored.inc_by(count as u64);
    }

    /// Commands stored for sending, counted by kind.
    pub fn commands_sent(&self, kinds: impl IntoIterator<Item = i32>) {
        for kind in kinds {
            let name = proto::CommandKind::try_from(kind)
                .map(command_kind_name)
                .unwrap_or("unknown");
            self.inner
                .commands_sent
                .get_or_create(&vec![("kind", name.to_string())])
                .inc();
        }
    }

    /// Counts what the accept loops shed (see [`crate::edge::listener`]).
    pub fn shed_counter(&self, listener: &'static str) -> ShedCounter {
        ShedCounter {
            family: self.inner.connections_shed.clone(),
            listener,
        }
    }

    pub fn commands_delivered(&self, count: usize) {
        self.inner.commands_delivered.inc_by(count as u64);
    }

    /// An agent's receipt for a command.
    pub fn command_acknowledged(&self, accepted: bool) {
        let result = if accepted { "accepted" } else { "refused" };
        self.inner
            .commands_acknowledged
            .get_or_create(&vec![("result", result.to_string())])
            .inc();
    }

    /// A message over its agent's budget (`messages`, `bytes`, `renewal`).
    pub fn budget_refused(&self, budget: &str) {
        self.inner
            .budget_refusals
            .get_or_create(&vec![("budget", budget.to_string())])
            .inc();
    }

    /// An agent's stream replaced by its newer one.
    pub fn stream_replaced(&self) {
        self.inner.streams_replaced.inc();
    }

    /// One roster pass: `ok`, or its error kind.
    pub fn roster_refreshed(&self, result: &str, entries: Option<usize>) {
        self.inner
            .roster_refreshes
            .get_or_create(&vec![("result", result.to_string())])
            .inc();
        if let Some(entries) = entries {
            self.inner
                .roster_entries
                .set(i64::try_from(entries).unwrap_or(i64::MAX));
        }
    }

    /// A scheduled roster pass not run here: `lease` or `fresh`.
    pub fn roster_pass_left(&self, reason: &str) {
        self.inner
            .roster_passes_left
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }

    /// Reports deleted by one retention batch.
    pub fn reports_deleted(&self, count: u64) {
        self.inner.reports_deleted.inc_by(count);
    }

    /// Rows of `table` deleted by one retention batch.
    pub fn rows_pruned(&self, table: &'static str, count: u64) {
        self.inner
            .rows_pruned
            .get_or_create(&vec![("table", table.to_string())])
            .inc_by(count);
    }

    /// An audit entry of `kind` (read, refused) not written.
    pub fn audit_suppressed(&self, kind: &'static str) {
        self.inner
            .audit_suppressed
            .get_or_create(&vec![("kind", kind.to_string())])
            .inc();
    }

    /// Refreshes the scrape-time gauges from `fleet` (read after this
    /// scrape's turn comes: [`crate::read::gauges::fleet`]) and encodes
    /// every metric in the Prometheus text format.
    pub async fn render(&self, fleet: impl Future<Output = FleetGauges>) -> Result<String, std::fmt::Error> {
        let _one_at_a_time = self.inner.scrape.lock().await;
        self.refresh(fleet.await);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.inner.registry)?;
        Ok(text)
    }

    fn refresh(&self, fleet: FleetGauges) {
        let inner = &self.inner;
        // Counted where rows are decoded, in both stores: brought up to date here.
        let undecodable = crate::store::rows::undecodable_rows();
        inner
            .store_rows_undecodable
            .inc_by(undecodable.saturating_sub(inner.store_rows_undecodable.get()));
        inner.agents_connected.set(saturating_i64(fleet.agents_connected));
        inner.connections.set(saturating_i64(fleet.connections));
        if let Some(bytes) = fleet.store_bytes {
            inner.store_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        inner.rollout_agents.clear();
        inner.rollout_offline.clear();
        inner.stragglers.clear();
        inner.completion_ratio.clear();
        inner.rollout_info.clear();
        // No rollout (or it could not be read): the rollout gauges are
        // simply absent rather than stale.
        let Some(rollout) = fleet.rollout else {
            return;
        };
        inner
            .rollout_info
            .get_or_create(&vec![
                ("rollout", rollout.id),
                ("target", rollout.target),
                ("state", rollout.state),
            ])
            .set(1);
        for (state, count) in rollout.members {
            inner
                .rollout_agents
                .get_or_create(&vec![("state", state.word().to_string())])
                .set(i64::from(count));
        }
        inner
            .rollout_offline
            .get_or_create(&Vec::new())
            .set(i64::from(rollout.offline));
        for (cause, count) in rollout.by_cause {
            inner
                .stragglers
                .get_or_create(&vec![("cause", cause.to_string())])
                .set(i64::from(count));
        }
        inner
            .completion_ratio
            .get_or_create(&Vec::new())
            .set(rollout.completion_ratio);
    }
}

/// What the scrape-time gauges show, read from the coordinator by
/// [`crate::read::gauges::fleet`] (this file only holds and encodes).
#[derive(Debug, Default)]
pub struct FleetGauges {
    pub agents_connected: usize,
    pub connections: usize,
    /// `None`: the size could not be read; the last value stays.
    pub store_bytes: Option<u64>,
    pub rollout: Option<RolloutGauges>,
}

/// The current rollout's gauges.
#[derive(Debug)]
pub struct RolloutGauges {
    pub id: String,
    pub target: String,
    pub state: String,
    /// Members by state, every state present.
    pub members: Vec<(MemberState, u32)>,
    pub offline: u32,
    /// Stragglers by cause code, every cause present (zero included) so a
    /// Grafana panel does not lose a series when a cause clears.
    pub by_cause: Vec<(&'static str, u32)>,
    pub completion_ratio: f64,
}

fn command_kind_name(kind: proto::CommandKind) -> &'static str {
    match kind {
        proto::CommandKind::Recheck => "recheck",
        proto::CommandKind::UpdateNow => "update_now",
        proto::CommandKind::Collect => "collect",
        proto::CommandKind::Unspecified => "unknown",
    }
}

fn saturating_i64(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_the_histogram_encode_with_the_prefix() {
        let metrics = Metrics::new();
        metrics.reports_ingested([3, 40, -5]);
        metrics.commands_sent([proto::CommandKind::Recheck as i32, proto::CommandKind::UpdateNow as i32]);
        metrics.commands_delivered(2);
        metrics.command_acknowledged(true);
        metrics.command_acknowledged(false);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &metrics.inner.registry).expect("encode");
        assert!(text.contains("rollcall_reports_ingested_total 3\n"), "{text}");
        assert!(text.contains("rollcall_ingest_latency_seconds_count 3\n"), "{text}");
        assert!(
            text.contains("rollcall_ingest_latency_seconds_bucket{le=\"0.005\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("rollcall_commands_sent_total{kind=\"update_now\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("rollcall_commands_acknowledged_total{result=\"refused\"} 1\n"),
            "{text}"
        );
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            assert!(line.starts_with("rollcall_"), "unprefixed sample: {line}");
        }
    }

    /// The sample Grafana dashboard queries only metrics that exist.
    #[test]
    fn the_grafana_dashboard_names_exported_metrics() {
        let metrics = Metrics::new();
        let inner = &metrics.inner;
        // Families show up once they hold a series.
        metrics.commands_sent([proto::CommandKind::Recheck as i32]);
        metrics.command_acknowledged(true);
        inner
            .rollout_agents
            .get_or_create(&vec![("state", "completed".into())])
            .set(1);
        inner.rollout_offline.get_or_create(&Vec::new()).set(0);
        inner
            .stragglers
            .get_or_create(&vec![("cause", "license".into())])
            .set(1);
        inner.completion_ratio.get_or_create(&Vec::new()).set(0.5);
        inner
            .rollout_info
            .get_or_create(&vec![("rollout", "r-1".into())])
            .set(1);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &inner.registry).expect("encode");
        let exported: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|line| line.split_whitespace().next())
            .collect();
        let dashboard = include_str!("../../deploy/grafana/rollcall.json");
        let mut queried = 0;
        for (start, _) in dashboard.match_indices("rollcall_") {
            let name: String = dashboard[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name == "rollcall_" || !dashboard[..start].ends_with(|c: char| !c.is_ascii_alphanumeric()) {
                continue;
            }
            let family = name.strip_suffix("_bucket").unwrap_or(&name);
            assert!(
                exported.contains(&family),
                "the dashboard queries {name}, which is not exported"
            );
            queried += 1;
        }
        assert!(queried >= 8, "only {queried} queries found");
    }
}
