//! What outlives one connection: the options, the spool, the policy in
//! force, the coordinator's clock, a renewal key awaiting its certificate,
//! the check queue and the periodic timer — and the agent's life between
//! connections (it keeps checking and spooling while away).

use std::sync::Arc;
use std::time::Duration;

use rollcall_common::policy::Policy;
use rollcall_common::proto;
use rollcall_common::timefmt::now_ms;
use tokio_util::sync::CancellationToken;

use super::AgentOptions;
use super::check_jobs::{CheckJob, CheckQueue, JobDone};
use super::policy_file;
use crate::coordinator_clock::CoordinatorClock;
use crate::spool::Spool;

/// How long the start-up check may hold up the first connection: the hello
/// carries product facts, so it is worth waiting for, but not forever.
const FIRST_CHECK_WAIT: Duration = Duration::from_secs(60);

pub(crate) struct AgentState {
    pub options: AgentOptions,
    pub spool: Spool,
    pub policy: Arc<Policy>,
    pub policy_version: u64,
    /// The target version the last command named, passed to the checks.
    pub target_version: Option<String>,
    /// Product and host facts of the latest check run, for the next hello.
    pub last_facts: Option<(proto::ProductSummary, proto::HostFacts)>,
    /// The coordinator's clock, from the last welcome: command expiry is
    /// judged by it, never by this endpoint's clock alone.
    pub coordinator_clock: CoordinatorClock,
    /// The key of a renewal request not yet answered; a retry asks with it
    /// again, and the certificate that answers is saved with it.
    pub renewal_key: Option<rcgen::KeyPair>,
    pub checks: CheckQueue,
    pub periodic: tokio::time::Interval,
}

impl AgentState {
    /// Starts with the policy saved in the data dir, if any.
    pub fn new(options: AgentOptions, spool: Spool, checks: CheckQueue) -> Self {
        let (policy_version, policy) = policy_file::load(options.data_dir.as_deref()).unwrap_or_default();
        let mut periodic = tokio::time::interval_at(
            tokio::time::Instant::now() + options.check_interval,
            options.check_interval,
        );
        periodic.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        AgentState {
            options,
            spool,
            policy: Arc::new(policy),
            policy_version,
            target_version: None,
            last_facts: None,
            coordinator_clock: CoordinatorClock::default(),
            renewal_key: None,
            checks,
            periodic,
        }
    }

    /// Runs one check before the first connection (bounded); the periodic
    /// timer counts from its end.
    pub async fn first_check(&mut self) {
        let _ = self.enqueue(CheckJob::periodic());
        if let Ok(Some(done)) = tokio::time::timeout(FIRST_CHECK_WAIT, self.checks.results.recv()).await {
            self.spool_result(done);
        }
        self.periodic.reset();
    }

    /// Queues a job under the policy and target in force; false when full.
    pub fn enqueue(&self, job: CheckJob) -> bool {
        self.checks
            .try_enqueue((job, self.policy.clone(), self.target_version.clone()))
    }

    pub fn enqueue_periodic(&self) {
        if !self.enqueue(CheckJob::periodic()) {
            tracing::debug!("check queue full; skipping a periodic check");
        }
    }

    /// Turns a finished check into a spooled report; returns it for sending.
    pub fn spool_result(&mut self, (job, run, outcome): JobDone) -> Option<proto::Report> {
        // The checks move into the report; only the facts a hello needs are kept.
        let report = proto::Report {
            seq: 0,
            observed_at_ms: now_ms(),
            kind: job.kind as i32,
            command_id: job.command_id,
            product: Some(run.product.clone()),
            checks: run.checks,
            host: Some(run.host.clone()),
            update_now: outcome,
            dropped_before: 0,
            // Stamped when it goes on the stream (`session::report_message`).
            sent_at_ms: 0,
            dead_lettered_before: 0,
        };
        self.last_facts = Some((run.product, run.host));
        match self.spool.push(report) {
            Ok(report) => Some(report),
            Err(error) => {
                tracing::error!(error = format!("{error:#}"), "could not spool a report");
                None
            }
        }
    }

    /// Waits `delay` before the next connection, checking and spooling
    /// meanwhile; returns early at shutdown.
    pub async fn keep_checking(&mut self, delay: Duration, shutdown: &CancellationToken) {
        let wake = tokio::time::sleep(delay);
        tokio::pin!(wake);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = &mut wake => break,
                _ = self.periodic.tick() => self.enqueue_periodic(),
                Some(done) = self.checks.results.recv() => {
                    self.spool_result(done);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::CheckRun;
    use crate::config::SpoolConfig;

    fn agent(dir: &std::path::Path) -> (AgentState, tokio::sync::mpsc::Sender<JobDone>) {
        let options = AgentOptions {
            urls: vec!["https://coordinator.test:7443".into()],
            identity: crate::identity::IdentityStore::Files(crate::config::IdentityPaths::under(dir)),
            hostname: "endpoint-1".into(),
            labels: Default::default(),
            check_interval: Duration::from_secs(3600),
            data_dir: Some(dir.to_path_buf()),
            dial: Default::default(),
            reconnect: Default::default(),
            check_at_start: true,
            update_allowed: false,
            collect: Default::default(),
        };
        let spool = Spool::open(&dir.join("spool"), SpoolConfig::default()).expect("spool");
        let (checks, _jobs, results) = CheckQueue::detached();
        (AgentState::new(options, spool, checks), results)
    }

    fn done() -> JobDone {
        let run = CheckRun {
            product: proto::ProductSummary {
                version: "14.0.1".into(),
                ..Default::default()
            },
            host: proto::HostFacts::default(),
            checks: Vec::new(),
        };
        (CheckJob::periodic(), run, None)
    }

    #[tokio::test(start_paused = true)]
    async fn away_from_the_coordinator_the_agent_keeps_checking_and_spooling() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut agent, results) = agent(dir.path());
        results.send(done()).await.expect("send");
        agent
            .keep_checking(Duration::from_secs(1), &CancellationToken::new())
            .await;
        assert_eq!(agent.spool.len(), 1);
        let facts = agent.last_facts.as_ref().map(|(product, _)| product.version.as_str());
        assert_eq!(facts, Some("14.0.1"), "the next hello carries the latest facts");
    }

    #[tokio::test]
    async fn the_saved_policy_is_in_force_at_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let toml = Policy::default().to_toml_string().expect("toml");
        policy_file::save(Some(dir.path()), &proto::PolicyDoc { version: 9, toml });
        let (agent, _results) = agent(dir.path());
        assert_eq!(agent.policy_version, 9);
    }
}
