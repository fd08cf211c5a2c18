//! Per-agent budgets, keyed by the agent id in the peer certificate and
//! shared by every stream of this coordinator process, so a reconnect does
//! not refill them (a per-stream bucket did: an agent that reconnected after
//! each cut got a fresh burst every time).
//!
//! Each agent has two token buckets, messages per second and bytes per
//! second, charged together for every report, receipt and renewal request
//! (heartbeats touch only memory and are not charged). A message over either
//! budget cuts the stream with `RESOURCE_EXHAUSTED`, as the per-stream
//! bucket did; the agent's spool keeps the report and it tries again after
//! its backoff. Certificate renewals are throttled on top: at most one per
//! agent per [`BudgetLimits::renewal_interval`], and only once the
//! certificate the stream was opened with is in its renewal window; a
//! request refused so is not answered, and the agent asks again later.
//!
//! Memory: one entry per agent that sent something recently. An entry whose
//! buckets have refilled to their burst and whose renewal interval has
//! passed is indistinguishable from a new one, so a sweep (at most once per
//! [`SWEEP_EVERY`]) drops it; the map never holds more entries than agents
//! that were active within the refill time, each of them authenticated.
//!
//! With several replicas (PostgreSQL) each process keeps its own map: an
//! agent that hops between N replicas gets at most N times its budget.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use crate::edge::rate::TokenBucket;

/// How often idle entries are looked for.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Share of a certificate's life that must have passed before the
/// coordinator signs its replacement. The agent asks at half its life; the
/// margin covers clock skew between the agent and the coordinator.
const RENEWAL_WINDOW_STARTS_AT: f64 = 0.4;

#[derive(Debug, Clone, PartialEq)]
pub struct BudgetLimits {
    pub messages_per_sec: f64,
    pub message_burst: f64,
    pub bytes_per_sec: f64,
    pub byte_burst: f64,
    /// At most one certificate renewal per agent within this time.
    pub renewal_interval: Duration,
    /// New streams (Connect + Hello) per agent per minute, sustained, and
    /// the burst allowed (issue 24 point 5: each one is a presence write and
    /// a watch event, so one certificate opening streams back to back must
    /// not churn the coordinator).
    pub connects_per_min: f64,
    pub connect_burst: f64,
}

/// Which budget a message would overdraw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overdrawn {
    Messages,
    Bytes,
}

impl Overdrawn {
    /// The metric label and the reason logged when the stream is cut.
    pub fn as_str(self) -> &'static str {
        match self {
            Overdrawn::Messages => "messages",
            Overdrawn::Bytes => "bytes",
        }
    }

    /// What the agent is told.
    pub fn message(self) -> &'static str {
        match self {
            Overdrawn::Messages => "message budget exceeded (report rate limit); slow down",
            Overdrawn::Bytes => "byte budget exceeded; slow down",
        }
    }
}

/// Why a renewal request was not signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenewalRefused {
    /// The stream's certificate is younger than its renewal window.
    TooEarly,
    /// This agent was given a certificate within the renewal interval.
    TooSoon,
}

impl RenewalRefused {
    pub fn as_str(self) -> &'static str {
        match self {
            RenewalRefused::TooEarly => "certificate not yet in its renewal window",
            RenewalRefused::TooSoon => "renewed within the renewal interval",
        }
    }
}

struct Entry {
    messages: TokenBucket,
    bytes: TokenBucket,
    connects: TokenBucket,
    last_renewal: Option<Instant>,
}

struct Entries {
    by_agent: HashMap<String, Entry>,
    last_sweep: Instant,
}

pub struct AgentBudgets {
    limits: BudgetLimits,
    entries: Mutex<Entries>,
}

impl AgentBudgets {
    pub fn new(limits: BudgetLimits) -> Self {
        AgentBudgets {
            limits,
            entries: Mutex::new(Entries {
                by_agent: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    fn new_entry(&self) -> Entry {
        Entry {
            messages: TokenBucket::new(self.limits.messages_per_sec, self.limits.message_burst),
            bytes: TokenBucket::new(self.limits.bytes_per_sec, self.limits.byte_burst),
            connects: TokenBucket::new(self.limits.connects_per_min / 60.0, self.limits.connect_burst),
            last_renewal: None,
        }
    }

    /// Charges one message of `bytes` to the agent, or nothing when either
    /// budget would be overdrawn.
    pub fn charge(&self, agent_id: &str, bytes: usize) -> Result<(), Overdrawn> {
        let now = Instant::now();
        let Ok(mut entries) = self.entries.lock() else {
            // A poisoned lock means a panic elsewhere; refusing would cut
            // every agent, so the budget is not enforced rather than that.
            return Ok(());
        };
        self.sweep_if_due(&mut entries, now);
        let entry = match entries.by_agent.get_mut(agent_id) {
            Some(entry) => entry,
            None => entries
                .by_agent
                .entry(agent_id.to_string())
                .or_insert_with(|| self.new_entry()),
        };
        let bytes = bytes as f64;
        if !entry.messages.has(1.0, now) {
            return Err(Overdrawn::Messages);
        }
        if !entry.bytes.has(bytes, now) {
            return Err(Overdrawn::Bytes);
        }
        entry.messages.take(1.0);
        entry.bytes.take(bytes);
        Ok(())
    }

    /// Whether the agent may open another stream now; when not, how long
    /// until it may.
    pub fn allow_connect(&self, agent_id: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let Ok(mut entries) = self.entries.lock() else {
            return Ok(());
        };
        self.sweep_if_due(&mut entries, now);
        let entry = match entries.by_agent.get_mut(agent_id) {
            Some(entry) => entry,
            None => entries
                .by_agent
                .entry(agent_id.to_string())
                .or_insert_with(|| self.new_entry()),
        };
        if !entry.connects.has(1.0, now) {
            let per_sec = self.limits.connects_per_min / 60.0;
            let wait = if per_sec > 0.0 { 1.0 / per_sec } else { 60.0 };
            return Err(Duration::from_secs_f64(wait.clamp(1.0, 3600.0)));
        }
        entry.connects.take(1.0);
        Ok(())
    }

    /// Whether the agent may have a certificate signed now; records it when
    /// so. `validity` is the (not before, not after) of the certificate the
    /// stream was opened with.
    pub fn allow_renewal(
        &self,
        agent_id: &str,
        validity: (OffsetDateTime, OffsetDateTime),
    ) -> Result<(), RenewalRefused> {
        if !in_renewal_window(validity, OffsetDateTime::now_utc()) {
            return Err(RenewalRefused::TooEarly);
        }
        let now = Instant::now();
        let Ok(mut entries) = self.entries.lock() else {
            return Ok(());
        };
        let entry = match entries.by_agent.get_mut(agent_id) {
            Some(entry) => entry,
            None => entries
                .by_agent
                .entry(agent_id.to_string())
                .or_insert_with(|| self.new_entry()),
        };
        if let Some(last) = entry.last_renewal
            && now.saturating_duration_since(last) < self.limits.renewal_interval
        {
            return Err(RenewalRefused::TooSoon);
        }
        entry.last_renewal = Some(now);
        Ok(())
    }

    /// Agents with a budget entry (for tests and metrics).
    pub fn len(&self) -> usize {
        self.entries.lock().map(|entries| entries.by_agent.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn sweep_if_due(&self, entries: &mut Entries, now: Instant) {
        if now.saturating_duration_since(entries.last_sweep) < SWEEP_EVERY {
            return;
        }
        entries.last_sweep = now;
        let renewal_interval = self.limits.renewal_interval;
        entries.by_agent.retain(|_, entry| {
            let renewal_over = entry
                .last_renewal
                .is_none_or(|last| now.saturating_duration_since(last) >= renewal_interval);
            !(renewal_over
                && entry.messages.is_full_at(now)
                && entry.bytes.is_full_at(now)
                && entry.connects.is_full_at(now))
        });
    }
}

/// Whether enough of the certificate's life has passed to renew it.
pub fn in_renewal_window(validity: (OffsetDateTime, OffsetDateTime), now: OffsetDateTime) -> bool {
    let (not_before, not_after) = validity;
    let life = (not_after - not_before).as_seconds_f64();
    let lived = (now - not_before).as_seconds_f64();
    life <= 0.0 || lived >= life * RENEWAL_WINDOW_STARTS_AT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> BudgetLimits {
        BudgetLimits {
            messages_per_sec: 1.0,
            message_burst: 3.0,
            bytes_per_sec: 100.0,
            byte_burst: 1000.0,
            renewal_interval: Duration::from_secs(600),
            connects_per_min: 6.0,
            connect_burst: 2.0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn connects_are_limited_per_agent_and_refill() {
        let budgets = AgentBudgets::new(limits());
        assert_eq!(budgets.allow_connect("a"), Ok(()));
        assert_eq!(budgets.allow_connect("a"), Ok(()));
        assert_eq!(budgets.allow_connect("a"), Err(Duration::from_secs(10)));
        assert_eq!(budgets.allow_connect("b"), Ok(()), "another agent has its own");
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(budgets.allow_connect("a"), Ok(()));
    }

    fn old_certificate() -> (OffsetDateTime, OffsetDateTime) {
        let now = OffsetDateTime::now_utc();
        (now - time::Duration::hours(6), now + time::Duration::hours(4))
    }

    #[tokio::test(start_paused = true)]
    async fn one_agent_shares_its_budget_and_others_have_their_own() {
        let budgets = AgentBudgets::new(limits());
        for _ in 0..3 {
            assert_eq!(budgets.charge("a", 10), Ok(()));
        }
        assert_eq!(budgets.charge("a", 10), Err(Overdrawn::Messages));
        assert_eq!(budgets.charge("b", 10), Ok(()));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(budgets.charge("a", 10), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_are_limited_besides_messages() {
        let budgets = AgentBudgets::new(limits());
        assert_eq!(budgets.charge("a", 900), Ok(()));
        assert_eq!(budgets.charge("a", 900), Err(Overdrawn::Bytes));
        // The refused message took nothing: a small one still fits.
        assert_eq!(budgets.charge("a", 100), Ok(()));
        assert_eq!(budgets.charge("a", 1), Err(Overdrawn::Bytes));
        assert_eq!(budgets.charge("a", 0), Ok(()));
        assert_eq!(budgets.charge("a", 0), Err(Overdrawn::Messages));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_entries_are_forgotten_only_once_they_would_be_full_again() {
        let budgets = AgentBudgets::new(limits());
        budgets.charge("idle", 1000).unwrap();
        budgets.allow_renewal("renewed", old_certificate()).unwrap();
        tokio::time::advance(SWEEP_EVERY).await;
        budgets.charge("busy", 1).unwrap();
        // "idle" refilled (10 s of 100 B/s), "renewed" is inside its interval.
        assert_eq!(budgets.len(), 2);
        tokio::time::advance(Duration::from_secs(600)).await;
        budgets.charge("busy", 1).unwrap();
        assert_eq!(budgets.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn renewals_are_throttled_and_wait_for_the_window() {
        let budgets = AgentBudgets::new(limits());
        let now = OffsetDateTime::now_utc();
        let young = (now - time::Duration::hours(1), now + time::Duration::hours(9));
        assert_eq!(budgets.allow_renewal("a", young), Err(RenewalRefused::TooEarly));
        assert_eq!(budgets.allow_renewal("a", old_certificate()), Ok(()));
        assert_eq!(
            budgets.allow_renewal("a", old_certificate()),
            Err(RenewalRefused::TooSoon)
        );
        tokio::time::advance(Duration::from_secs(600)).await;
        assert_eq!(budgets.allow_renewal("a", old_certificate()), Ok(()));
    }
}
