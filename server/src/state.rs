//! What every service of one coordinator shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rollcall_common::pki::CertAuthority;
use rollcall_common::proto;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::agents::health::HealthState;
use crate::agents::hub::Hub;
use crate::agents::ingest::IngestHandle;
use crate::config::ServeConfig;
use crate::edge::revocation::RevocationList;
use crate::store::Store;

pub struct Coordinator {
    pub config: ServeConfig,
    pub store: Arc<dyn Store>,
    pub ca: CertAuthority,
    pub ca_pem: String,
    pub hub: Hub,
    pub revocation: Arc<RevocationList>,
    pub ingest: IngestHandle,
    pub health: HealthState,
    /// The current policy, pushed to every stream when it changes.
    pub policy: watch::Sender<Option<Arc<proto::PolicyDoc>>>,
    /// Heartbeats since the last flush: agent id → last seen (ms).
    pub seen: Mutex<HashMap<String, i64>>,
    pub shutdown: CancellationToken,
    /// The current policy, parsed (defaults until one is applied).
    pub parsed_policy: std::sync::RwLock<Arc<rollcall_common::policy::Policy>>,
    /// Events for `rollcall watch` (bounded; slow watchers miss events, never block).
    pub events: tokio::sync::broadcast::Sender<crate::events::Event>,
    /// Established TLS connections (all kinds).
    pub connections: Arc<crate::edge::listener::ConnectionCount>,
    /// Prometheus metrics (`/metrics` on the dashboard listener).
    pub metrics: crate::metrics::Metrics,
    /// What unauthenticated peers may cost, per source address (the gRPC
    /// listener's handshakes, Enroll).
    pub sources: Arc<crate::edge::source_limits::SourceLimits>,
    /// Message, byte and renewal budgets by agent id, across its streams.
    pub budgets: crate::agents::budget::AgentBudgets,
    /// The roster's source (Apex Central when configured) and its pass lock.
    pub roster: crate::apex_central::source::RosterSource,
}

impl Coordinator {
    pub fn current_policy(&self) -> Arc<rollcall_common::policy::Policy> {
        self.parsed_policy
            .read()
            .map(|policy| policy.clone())
            .unwrap_or_default()
    }

    pub fn set_policy(&self, doc: Arc<proto::PolicyDoc>, parsed: rollcall_common::policy::Policy) {
        if let Ok(mut slot) = self.parsed_policy.write() {
            *slot = Arc::new(parsed);
        }
        self.policy.send_replace(Some(doc));
    }

    /// Wakes the other replicas (`crate::replication` acts on the
    /// wake-ups); a failure is logged, not returned: the change is stored,
    /// and the other replicas' sweeps and reconnects catch up.
    pub async fn tell_others(&self, notice: crate::store::Notice) {
        if let Err(error) = self.store.notify(notice.clone()).await {
            tracing::warn!(%error, ?notice, "could not wake the other replicas; they catch up on their next sweep");
        }
    }

    /// Publishes an event to watchers; nobody listening is fine.
    pub fn publish(&self, event: crate::events::Event) {
        let _ = self.events.send(event);
    }

    pub fn note_seen(&self, agent_id: &str, at_ms: i64) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(agent_id.to_string(), at_ms);
        }
    }

    pub fn take_seen(&self) -> Vec<(String, i64)> {
        self.seen
            .lock()
            .map(|mut seen| seen.drain().collect())
            .unwrap_or_default()
    }
}

/// A coordinator over `store` with nothing listening (benchmarks and tests
/// of the read side: the report, status). Its ingest worker stops with the
/// test's runtime.
#[cfg(test)]
pub(crate) fn for_tests(store: Arc<dyn Store>) -> Arc<Coordinator> {
    let config = ServeConfig::new(std::env::temp_dir());
    let (ca, _) = CertAuthority::generate("rollcall test CA").expect("a test CA");
    let (reporter, _) = tonic_health::server::health_reporter();
    let health = HealthState::new(reporter);
    let metrics = crate::metrics::Metrics::new();
    let (ingest, _task) = crate::agents::ingest::spawn(
        store.clone(),
        health.clone(),
        metrics.clone(),
        config.ingest_batch,
        CancellationToken::new(),
    );
    Arc::new(Coordinator {
        ca_pem: ca.cert_pem().to_string(),
        ca,
        store,
        hub: Hub::default(),
        revocation: Arc::new(RevocationList::default()),
        ingest,
        health,
        policy: watch::channel(None).0,
        seen: Mutex::new(HashMap::new()),
        shutdown: CancellationToken::new(),
        connections: Arc::new(crate::edge::listener::ConnectionCount::default()),
        parsed_policy: std::sync::RwLock::new(Arc::new(rollcall_common::policy::Policy::default())),
        events: tokio::sync::broadcast::channel(crate::events::CAPACITY).0,
        metrics,
        sources: crate::edge::source_limits::SourceLimits::new(64, 64, 600.0, 100.0),
        budgets: crate::agents::budget::AgentBudgets::new(config.budget_limits()),
        roster: crate::apex_central::source::RosterSource::new(None, config.roster_refresh),
        config,
    })
}
