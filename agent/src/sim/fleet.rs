//! `rollcall-sim run`: thousands of simulated agents in one process, each
//! the real runner ([`crate::runner::run`]) with its own identity, its own
//! mTLS connection from its own loopback source address, an in-memory spool
//! and a [`SimProber`]. Agents start at a bounded rate so the first
//! connection wave does not outrun the coordinator's handshake limit.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::prober::{SimCounters, SimProber};
use super::{Common, source_ip};
use crate::config::{ReconnectConfig, SpoolConfig};
use crate::identity::{Identity, IdentityStore};
use crate::runner::AgentOptions;
use crate::spool::Spool;

/// Settings of one simulated fleet.
#[derive(Debug, Clone)]
pub struct FleetPlan {
    pub common: Common,
    pub check_interval: Duration,
    pub connect_rate: u32,
    pub reconnect: ReconnectConfig,
    pub status_file: Option<PathBuf>,
    pub duration: Option<Duration>,
}

/// What the status file says (rewritten every second).
#[derive(Debug, Serialize)]
struct Status {
    agents: u64,
    started: u64,
    check_runs: u64,
    uptime_s: f64,
    running: bool,
}

/// Runs the fleet until `shutdown` (or the plan's duration).
pub async fn run(plan: FleetPlan, identities: Vec<Identity>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let counters = Arc::new(SimCounters::default());
    let begun = Instant::now();
    let mut agents = JoinSet::new();
    let started = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let total = identities.len() as u64;
    if let Some(limit) = plan.duration {
        let stopper = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = stopper.cancelled() => {}
                () = tokio::time::sleep(limit) => stopper.cancel(),
            }
        });
    }
    let status_task = plan.status_file.clone().map(|path| {
        tokio::spawn(write_status(
            path,
            total,
            started.clone(),
            counters.clone(),
            begun,
            shutdown.clone(),
        ))
    });

    let pace = Duration::from_secs_f64(1.0 / f64::from(plan.connect_rate.max(1)));
    let mut next_start = tokio::time::Instant::now();
    for (offset, identity) in identities.into_iter().enumerate() {
        let index = plan.common.first_index + offset as u64;
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep_until(next_start) => {}
        }
        next_start += pace;
        let mut dial = plan.common.dial.clone();
        dial.local_ip = Some(source_ip(&plan.common, index));
        // Agents spread over the coordinators (replicas), each failing over
        // to the next one in its list, as real agents with several URLs do.
        let urls = &plan.common.coordinators;
        let first = usize::try_from(index).unwrap_or(0) % urls.len().max(1);
        let rotated: Vec<String> = urls[first..].iter().chain(urls[..first].iter()).cloned().collect();
        // `block` selects whole ten-thousands (the bench's recheck of 10,000).
        let labels: BTreeMap<String, String> = [
            ("site".to_string(), format!("sim-site-{:02}", index % 20)),
            ("block".to_string(), (index / 10_000).to_string()),
        ]
        .into();
        let options = AgentOptions {
            urls: rotated,
            identity: IdentityStore::Memory(Arc::new(Mutex::new(identity))),
            hostname: super::identities::hostname(index),
            labels,
            check_interval: plan.check_interval,
            data_dir: None,
            dial,
            reconnect: plan.reconnect.clone(),
            check_at_start: true,
            update_allowed: false,
            collect: Default::default(),
        };
        let prober = Arc::new(SimProber::new(index, counters.clone()));
        // A small spool: simulated agents have little to keep while away.
        let spool = Spool::in_memory(SpoolConfig {
            max_reports: 64,
            max_bytes: 256 * 1024,
        });
        let agent_shutdown = shutdown.child_token();
        agents.spawn(async move {
            if let Err(error) = crate::runner::run(options, prober, spool, agent_shutdown).await {
                tracing::warn!(index, error = format!("{error:#}"), "simulated agent stopped");
            }
        });
        started.fetch_add(1, Ordering::Relaxed);
        // Reap agents that ended early (bad identity) without waiting.
        while agents.try_join_next().is_some() {}
    }
    tracing::info!(agents = started.load(Ordering::Relaxed), "all simulated agents started");
    shutdown.cancelled().await;
    while agents.join_next().await.is_some() {}
    if let Some(task) = status_task {
        let _ = task.await;
    }
    Ok(())
}

async fn write_status(
    path: PathBuf,
    total: u64,
    started: Arc<std::sync::atomic::AtomicU64>,
    counters: Arc<SimCounters>,
    begun: Instant,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let stopping = tokio::select! {
            () = shutdown.cancelled() => true,
            _ = tick.tick() => false,
        };
        let status = Status {
            agents: total,
            started: started.load(Ordering::Relaxed),
            check_runs: counters.checks.load(Ordering::Relaxed),
            uptime_s: begun.elapsed().as_secs_f64(),
            running: !stopping,
        };
        if let Ok(text) = serde_json::to_vec(&status)
            && let Err(error) = rollcall_common::files::write_atomic(&path, &text, false)
        {
            tracing::warn!(error = format!("{error:#}"), "could not write the status file");
        }
        if stopping {
            return;
        }
    }
}
