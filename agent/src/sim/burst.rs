//! `rollcall-sim burst`: ingest load. Each simulated agent opens one real
//! mTLS stream with a minimal client (the generated `AgentServiceClient`),
//! says hello, and once every stream has its welcome, all of them send
//! `reports` reports back to back (seven check results each) and wait for
//! the cumulative acknowledgement of their last one. Acknowledgements are
//! sent only after the coordinator committed the reports, so acknowledged
//! reports per second is the durable ingest rate.
//!
//! Keep `reports` within the coordinator's per-agent burst allowance
//! (200 by default) or it cuts the stream for exceeding the rate limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rollcall_common::proto::{
    self, AgentMessage, CoordinatorMessage, agent_message, agent_service_client::AgentServiceClient,
    coordinator_message::Body,
};
use rollcall_common::timefmt::now_ms;
use rollcall_common::tls::{channel, client_config};
use serde::Serialize;
use tokio::sync::{Barrier, mpsc};
use tokio::task::JoinSet;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::prober::synthetic_run;
use super::{Common, source_ip};
use crate::identity::Identity;

/// Messages queued ahead of the HTTP/2 stream per agent.
const SEND_QUEUE: usize = 16;
/// How long one agent may wait for its last acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(300);

/// The result, printed as one JSON line.
#[derive(Debug, Serialize)]
pub struct BurstResult {
    pub agents: u64,
    pub streams_ok: u64,
    pub reports_per_agent: u64,
    pub reports_acked: u64,
    pub check_results_acked: u64,
    pub seconds: f64,
    pub reports_per_sec: f64,
    pub check_results_per_sec: f64,
}

/// Runs the burst and returns its figures.
pub async fn run(
    common: &Common,
    identities: Vec<Identity>,
    reports: u64,
    shutdown: CancellationToken,
) -> anyhow::Result<BurstResult> {
    let agents = identities.len() as u64;
    // Every agent plus this task meets at the barrier twice: once connected,
    // once to start sending together.
    let ready = Arc::new(Barrier::new(identities.len() + 1));
    let acked = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for (offset, identity) in identities.into_iter().enumerate() {
        let index = common.first_index + offset as u64;
        let url = common.coordinators[usize::try_from(index).unwrap_or(0) % common.coordinators.len()].clone();
        let mut dial = common.dial.clone();
        dial.local_ip = Some(source_ip(common, index));
        let ready = ready.clone();
        let acked = acked.clone();
        let cancel = shutdown.clone();
        tasks.spawn(async move {
            let outcome = tokio::select! {
                () = cancel.cancelled() => Err(anyhow::anyhow!("stopped")),
                outcome = one_agent(index, &url, identity, dial, reports, &ready, &acked) => outcome,
            };
            if let Err(error) = &outcome {
                tracing::warn!(index, error = format!("{error:#}"), "burst agent failed");
            }
            outcome.is_ok()
        });
    }
    // Connected (or failed: failures still meet the barrier).
    ready.wait().await;
    tracing::info!(agents, "every stream opened; sending");
    let begun = Instant::now();
    ready.wait().await;
    let mut streams_ok = 0;
    while let Some(done) = tasks.join_next().await {
        if done.unwrap_or(false) {
            streams_ok += 1;
        }
    }
    let seconds = begun.elapsed().as_secs_f64();
    let reports_acked = acked.load(Ordering::Relaxed);
    let check_results = reports_acked * crate::checks::CHECK_NAMES.len() as u64;
    Ok(BurstResult {
        agents,
        streams_ok,
        reports_per_agent: reports,
        reports_acked,
        check_results_acked: check_results,
        seconds,
        reports_per_sec: reports_acked as f64 / seconds.max(1e-9),
        check_results_per_sec: check_results as f64 / seconds.max(1e-9),
    })
}

fn message(body: agent_message::Body) -> AgentMessage {
    AgentMessage { body: Some(body) }
}

async fn one_agent(
    index: u64,
    url: &str,
    identity: Identity,
    dial: rollcall_common::tls::DialOptions,
    reports: u64,
    ready: &Barrier,
    acked: &AtomicU64,
) -> anyhow::Result<()> {
    // Whatever happens, meet the barrier twice so the others are not held up.
    let mut met = 0;
    let result = async {
        let addr = rollcall_common::net::parse_coordinator_url(url)?;
        let tls = client_config(&identity.ca_pem, Some((&identity.cert_pem, identity.key_pem.expose())))?;
        let mut client = AgentServiceClient::new(channel(&addr, Arc::new(tls), &dial)?);
        let (tx, rx) = mpsc::channel::<AgentMessage>(SEND_QUEUE);
        let run = synthetic_run(index, None);
        tx.send(message(agent_message::Body::Hello(proto::Hello {
            agent_version: crate::runner::AGENT_VERSION.to_string(),
            hostname: super::identities::hostname(index),
            role: proto::Role::Endpoint as i32,
            labels: Default::default(),
            product: Some(run.product.clone()),
            policy_version: 0,
            host: Some(run.host.clone()),
        })))
        .await
        .context("queue hello")?;
        let mut inbound = client
            .connect(ReceiverStream::new(rx))
            .await
            .map_err(|status| anyhow::anyhow!("stream refused: {}", status.message()))?
            .into_inner();
        let base = loop {
            match inbound.next().await {
                Some(Ok(CoordinatorMessage {
                    body: Some(Body::Welcome(welcome)),
                })) => break welcome.last_stored_seq,
                Some(Ok(_)) => continue,
                Some(Err(status)) => bail!("stream ended before welcome: {}", status.message()),
                None => bail!("stream closed before welcome"),
            }
        };
        met += 1;
        ready.wait().await;
        met += 1;
        ready.wait().await;
        let last = base + reports;
        // Send from a task so acknowledgements are read while reports flow.
        let sender = tokio::spawn(async move {
            for seq in base + 1..=last {
                let report = proto::Report {
                    seq,
                    observed_at_ms: now_ms(),
                    kind: proto::ReportKind::Periodic as i32,
                    command_id: String::new(),
                    product: Some(run.product.clone()),
                    checks: run.checks.clone(),
                    host: Some(run.host.clone()),
                    update_now: None,
                    dropped_before: 0,
                    sent_at_ms: now_ms(),
                    dead_lettered_before: 0,
                };
                if tx.send(message(agent_message::Body::Report(report))).await.is_err() {
                    return;
                }
            }
            // Keep the request stream open until the acks are in (dropping
            // `tx` would half-close it, which is fine for HTTP/2, but the
            // coordinator would then see "closed by agent").
            tx.closed().await;
        });
        let mut counted = base;
        let waited = tokio::time::timeout(ACK_TIMEOUT, async {
            while counted < last {
                match inbound.next().await {
                    Some(Ok(CoordinatorMessage {
                        body: Some(Body::Ack(ack)),
                    })) => {
                        if ack.seq > counted {
                            acked.fetch_add(ack.seq.min(last) - counted, Ordering::Relaxed);
                            counted = ack.seq;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(status)) => bail!("stream ended: {}", status.message()),
                    None => bail!("stream closed"),
                }
            }
            Ok(())
        })
        .await;
        drop(inbound);
        sender.abort();
        waited.context("acknowledgements did not arrive in time")?
    }
    .await;
    for _ in met..2 {
        ready.wait().await;
    }
    result
}
