//! The probe's life: connect, say hello, report, heartbeat, obey the
//! commands its config allows, reconnect with backoff — until shutdown.
//!
//! Checks run in a worker task (one at a time, so a slow connectivity check
//! never stalls the stream); their reports go through the spool, so a
//! report made while the coordinator is away is delivered later, in order.
//! Queues: check jobs (bounded, [`JOB_QUEUE`]; a full queue drops the new
//! job — an identical check is already waiting) and results (bounded; the
//! worker waits).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use rollcall_common::policy::Policy;
use rollcall_common::proto::{
    self, AgentMessage, CoordinatorMessage, agent_message, agent_service_client::AgentServiceClient,
    coordinator_message::Body,
};
use rollcall_common::timefmt::now_ms;
use rollcall_common::tls::{DialOptions, channel, client_config};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::config::ReconnectConfig;
use crate::coordinator_clock::CoordinatorClock;
use crate::identity::{Identity, IdentityStore};
use crate::prober::Prober;
use crate::spool::Spool;

pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");
const JOB_QUEUE: usize = 16;
const OUTBOUND_QUEUE: usize = 64;
const WELCOME_TIMEOUT: Duration = Duration::from_secs(15);
const INBOX_POLL: Duration = Duration::from_secs(2);
/// How long a renewal request may go unanswered before it is asked again.
/// The coordinator does not answer one it throttles (at most one signature
/// per agent per `--renewal-interval`), nor can it answer one whose stream
/// broke; without a retry the agent would wait for an answer forever.
const RENEWAL_RETRY: Duration = Duration::from_secs(15 * 60);

/// When the certificate passes half its life (time to renew), as a timer
/// deadline. Computed once per certificate: parsing it on every inbox poll
/// cost a simulated fleet of 19,000 agents ~10,000 parses a second.
fn renewal_due(identity: &Identity) -> tokio::time::Instant {
    let far = tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let Ok((not_before, not_after)) = identity.validity() else {
        return far;
    };
    let due = not_before + (not_after - not_before) / 2;
    let remaining: time::Duration = due - OffsetDateTime::now_utc();
    let wait = remaining.max(time::Duration::ZERO);
    tokio::time::Instant::now()
        .checked_add(wait.unsigned_abs())
        .unwrap_or(far)
}

/// Everything a runner needs besides its prober and spool.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub urls: Vec<String>,
    pub identity: IdentityStore,
    pub hostname: String,
    pub labels: BTreeMap<String, String>,
    pub check_interval: Duration,
    /// Where the last policy is kept (`policy.toml`) and local update-now
    /// outcomes arrive (`inbox/`); none for simulated agents.
    pub data_dir: Option<PathBuf>,
    pub dial: DialOptions,
    pub reconnect: ReconnectConfig,
    /// Run a check as soon as the agent starts.
    pub check_at_start: bool,
    /// Whether the agent's own config allows an update action
    /// (`product.update_command`); without one, `update_now` is refused.
    pub update_allowed: bool,
    /// The `[collect]` config, which alone decides what a collect command
    /// gathers (disabled: no paths, collect is refused).
    pub collect: crate::collect::CollectConfig,
}

/// What a check job is for.
#[derive(Debug, Clone)]
struct CheckJob {
    kind: proto::ReportKind,
    command_id: String,
    splay: Duration,
    update_now: bool,
}

/// Long-lived state shared by the runner's pieces.
struct AgentState {
    policy: Arc<Policy>,
    policy_version: u64,
    target_version: Option<String>,
    /// Product and host facts of the latest check run, for the next hello.
    last_facts: Option<(proto::ProductSummary, proto::HostFacts)>,
    /// The coordinator's clock, from the last welcome: command expiry is
    /// judged by it, never by this endpoint's clock alone.
    coordinator_clock: CoordinatorClock,
}

/// How a session ended.
enum SessionEnd {
    Shutdown,
    Lost { lasted: Duration, reason: String },
}

pub async fn run(
    options: AgentOptions,
    prober: Arc<dyn Prober>,
    mut spool: Spool,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if options.urls.is_empty() {
        anyhow::bail!("no coordinator URL");
    }
    crate::platform::ready();
    let mut state = AgentState {
        policy: Arc::new(Policy::default()),
        policy_version: 0,
        target_version: None,
        last_facts: None,
        coordinator_clock: CoordinatorClock::default(),
    };
    if let Some((version, policy)) = load_saved_policy(options.data_dir.as_ref()) {
        state.policy = Arc::new(policy);
        state.policy_version = version;
    }

    let (job_tx, job_rx) = mpsc::channel::<(CheckJob, Arc<Policy>, Option<String>)>(JOB_QUEUE);
    let (result_tx, mut result_rx) =
        mpsc::channel::<(CheckJob, crate::checks::CheckRun, Option<proto::UpdateNowOutcome>)>(JOB_QUEUE);
    let worker = tokio::spawn(check_worker(prober.clone(), job_rx, result_tx, shutdown.clone()));

    if options.check_at_start {
        let job = CheckJob {
            kind: proto::ReportKind::Periodic,
            command_id: String::new(),
            splay: Duration::ZERO,
            update_now: false,
        };
        let _ = job_tx.try_send((job, state.policy.clone(), state.target_version.clone()));
        // The hello carries product facts, so wait for the first run (bounded).
        if let Ok(Some((job, run, outcome))) = tokio::time::timeout(Duration::from_secs(60), result_rx.recv()).await {
            spool_result(&mut spool, &mut state, job, run, outcome);
        }
    }

    let mut backoff = Backoff::new(options.reconnect.initial, options.reconnect.max);
    let mut periodic = tokio::time::interval_at(
        tokio::time::Instant::now() + options.check_interval,
        options.check_interval,
    );
    periodic.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut url_index = 0usize;
    let mut pending_key: Option<rcgen::KeyPair> = None;

    let outcome = loop {
        let url = &options.urls[url_index % options.urls.len()];
        let end = session(
            &options,
            url,
            &mut spool,
            &mut state,
            &job_tx,
            &mut result_rx,
            &mut periodic,
            &mut pending_key,
            &shutdown,
        )
        .await;
        let (lasted, reason) = match end {
            Ok(SessionEnd::Shutdown) => break Ok(()),
            Ok(SessionEnd::Lost { lasted, reason }) => (lasted, reason),
            Err(error) => (Duration::ZERO, format!("{error:#}")),
        };
        if lasted > Duration::from_secs(60) {
            backoff.reset();
        }
        url_index += 1;
        let delay = backoff.next_delay();
        tracing::warn!(coordinator = url, reason, retry_in = ?delay, spooled = spool.len(), "disconnected from coordinator");
        // Keep checking and spooling while away.
        let wake = tokio::time::sleep(delay);
        tokio::pin!(wake);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = &mut wake => break,
                _ = periodic.tick() => enqueue_periodic(&job_tx, &state),
                Some((job, run, outcome)) = result_rx.recv() => {
                    spool_result(&mut spool, &mut state, job, run, outcome);
                }
            }
        }
        if shutdown.is_cancelled() {
            break Ok(());
        }
    };
    shutdown.cancel();
    let _ = worker.await;
    outcome
}

fn enqueue_periodic(job_tx: &mpsc::Sender<(CheckJob, Arc<Policy>, Option<String>)>, state: &AgentState) {
    let job = CheckJob {
        kind: proto::ReportKind::Periodic,
        command_id: String::new(),
        splay: Duration::ZERO,
        update_now: false,
    };
    if job_tx
        .try_send((job, state.policy.clone(), state.target_version.clone()))
        .is_err()
    {
        tracing::debug!("check queue full; skipping a periodic check");
    }
}

/// Turns a finished check into a spooled report; returns it for sending.
fn spool_result(
    spool: &mut Spool,
    state: &mut AgentState,
    job: CheckJob,
    run: crate::checks::CheckRun,
    outcome: Option<proto::UpdateNowOutcome>,
) -> Option<proto::Report> {
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
        // Stamped when it goes on the stream (`report_message`).
        sent_at_ms: 0,
    };
    state.last_facts = Some((run.product, run.host));
    match spool.push(report) {
        Ok(report) => Some(report),
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "could not spool a report");
            None
        }
    }
}

async fn check_worker(
    prober: Arc<dyn Prober>,
    mut jobs: mpsc::Receiver<(CheckJob, Arc<Policy>, Option<String>)>,
    results: mpsc::Sender<(CheckJob, crate::checks::CheckRun, Option<proto::UpdateNowOutcome>)>,
    shutdown: CancellationToken,
) {
    loop {
        let (job, policy, target) = tokio::select! {
            () = shutdown.cancelled() => return,
            job = jobs.recv() => match job { Some(job) => job, None => return },
        };
        if !job.splay.is_zero() {
            let wait = rand::rng().random_range(Duration::ZERO..=job.splay);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
        let work = async {
            let outcome = if job.update_now {
                Some(prober.update_now().await)
            } else {
                None
            };
            let run = prober.check(policy, target).await;
            (run, outcome)
        };
        let (run, outcome) = tokio::select! {
            () = shutdown.cancelled() => return,
            done = work => done,
        };
        if results.send((job, run, outcome)).await.is_err() {
            return;
        }
    }
}

fn load_saved_policy(data_dir: Option<&PathBuf>) -> Option<(u64, Policy)> {
    let dir = data_dir?;
    let text = rollcall_common::files::read_bounded_utf8(&dir.join("policy.toml"), 256 * 1024).ok()?;
    let version = text
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("# rollcall policy version "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    match Policy::from_toml_str(&text) {
        Ok(policy) => Some((version, policy)),
        Err(error) => {
            tracing::warn!(%error, "ignoring the saved policy");
            None
        }
    }
}

fn save_policy(data_dir: Option<&PathBuf>, doc: &proto::PolicyDoc) {
    if let Some(dir) = data_dir {
        let text = format!("# rollcall policy version {}\n{}", doc.version, doc.toml);
        if let Err(error) = rollcall_common::files::write_atomic(&dir.join("policy.toml"), text.as_bytes(), true) {
            tracing::warn!(error = format!("{error:#}"), "could not save the policy");
        }
    }
}

fn message(body: agent_message::Body) -> AgentMessage {
    AgentMessage { body: Some(body) }
}

/// A report as it goes on the stream, stamped with this endpoint's clock
/// now: the coordinator measures the clock's skew by it (a re-sent report
/// is stamped again, so its age in the spool is not read as skew).
fn report_message(mut report: proto::Report) -> AgentMessage {
    report.sent_at_ms = now_ms();
    message(agent_message::Body::Report(report))
}

/// Reports waiting in `inbox/` (local `rollcall-agent update-now` runs).
fn take_inbox(data_dir: Option<&PathBuf>) -> Vec<proto::Report> {
    let Some(dir) = data_dir else { return Vec::new() };
    let inbox = dir.join("inbox");
    let Ok(entries) = std::fs::read_dir(&inbox) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pb"))
        .collect();
    paths.sort();
    let mut reports = Vec::new();
    for path in paths {
        if let Ok(raw) = rollcall_common::files::read_bounded(&path, 4 * 1024 * 1024)
            && let Ok(report) = <proto::Report as prost::Message>::decode(raw.as_slice())
        {
            reports.push(report);
        }
        let _ = std::fs::remove_file(&path);
    }
    reports
}

#[allow(clippy::too_many_arguments)]
async fn session(
    options: &AgentOptions,
    url: &str,
    spool: &mut Spool,
    state: &mut AgentState,
    job_tx: &mpsc::Sender<(CheckJob, Arc<Policy>, Option<String>)>,
    result_rx: &mut mpsc::Receiver<(CheckJob, crate::checks::CheckRun, Option<proto::UpdateNowOutcome>)>,
    periodic: &mut tokio::time::Interval,
    pending_key: &mut Option<rcgen::KeyPair>,
    shutdown: &CancellationToken,
) -> anyhow::Result<SessionEnd> {
    let started = tokio::time::Instant::now();
    let collector = crate::collect::Collector::new(options.collect.clone(), options.hostname.clone());
    let identity = options.identity.load().context("load the agent identity")?;
    let addr = rollcall_common::net::parse_coordinator_url(url)?;
    let tls = client_config(&identity.ca_pem, Some((&identity.cert_pem, identity.key_pem.expose())))?;
    let mut client = AgentServiceClient::new(channel(&addr, Arc::new(tls), &options.dial)?)
        .max_decoding_message_size(options.dial.max_decoding_message_size);

    let (out_tx, out_rx) = mpsc::channel::<AgentMessage>(OUTBOUND_QUEUE);
    let (product, host) = state
        .last_facts
        .as_ref()
        .map(|(product, host)| (Some(product.clone()), Some(host.clone())))
        .unwrap_or((None, None));
    let role = product.as_ref().map(|p| p.role).unwrap_or(proto::Role::Endpoint as i32);
    let hello = proto::Hello {
        agent_version: AGENT_VERSION.to_string(),
        hostname: options.hostname.clone(),
        role,
        labels: options.labels.clone().into_iter().collect(),
        product,
        policy_version: state.policy_version,
        host,
    };
    out_tx
        .send(message(agent_message::Body::Hello(hello)))
        .await
        .context("queue hello")?;

    let connect = client.connect(ReceiverStream::new(out_rx));
    let response = tokio::select! {
        () = shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
        response = tokio::time::timeout(WELCOME_TIMEOUT, connect) => response,
    };
    let mut inbound = response
        .context("coordinator did not answer in time")?
        .map_err(|status| {
            anyhow::anyhow!(
                "coordinator refused the stream: {} ({:?})",
                status.message(),
                status.code()
            )
        })?
        .into_inner();
    let first = tokio::time::timeout(WELCOME_TIMEOUT, inbound.next())
        .await
        .context("no welcome in time")?;
    let welcome = match first {
        Some(Ok(CoordinatorMessage {
            body: Some(Body::Welcome(welcome)),
        })) => welcome,
        Some(Ok(_)) => anyhow::bail!("coordinator did not open with welcome"),
        Some(Err(status)) => anyhow::bail!("coordinator ended the stream: {}", status.message()),
        None => anyhow::bail!("coordinator closed the stream"),
    };
    tracing::info!(
        coordinator = url,
        agent_id = welcome.agent_id,
        last_stored_seq = welcome.last_stored_seq,
        "connected"
    );
    state.coordinator_clock.welcomed(welcome.now_ms, now_ms());
    spool.sync_with(welcome.last_stored_seq)?;
    for report in spool.pending() {
        out_tx
            .send(report_message(report))
            .await
            .context("resend spooled reports")?;
    }

    let heartbeat_every = Duration::from_millis(u64::from(welcome.heartbeat_interval_ms.max(100)));
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat_every, heartbeat_every);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut housekeeping = tokio::time::interval(INBOX_POLL);
    housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let renewal = tokio::time::sleep_until(renewal_due(&identity));
    tokio::pin!(renewal);

    let lost = |reason: String| SessionEnd::Lost {
        lasted: started.elapsed(),
        reason,
    };
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
            incoming = inbound.next() => {
                let body = match incoming {
                    None => return Ok(lost("coordinator closed the stream".into())),
                    Some(Err(status)) => return Ok(lost(format!("{} ({:?})", status.message(), status.code()))),
                    Some(Ok(CoordinatorMessage { body: None })) => continue,
                    Some(Ok(CoordinatorMessage { body: Some(body) })) => body,
                };
                match body {
                    Body::Welcome(_) => {}
                    Body::Ack(ack) => spool.ack(ack.seq),
                    Body::Policy(doc) => match Policy::from_toml_str(&doc.toml) {
                        Ok(policy) => {
                            tracing::info!(version = doc.version, "policy received");
                            save_policy(options.data_dir.as_ref(), &doc);
                            state.policy = Arc::new(policy);
                            state.policy_version = doc.version;
                        }
                        Err(error) => tracing::warn!(%error, version = doc.version, "refusing an invalid policy"),
                    },
                    Body::Command(command) if command.kind == proto::CommandKind::Collect as i32 => {
                        if let Some(receipt) = collector.start(&command, out_tx.clone(), shutdown.child_token()) {
                            out_tx.send(message(agent_message::Body::Receipt(receipt))).await.context("send receipt")?;
                        }
                    }
                    Body::Command(command) => {
                        if let Some(receipt) = handle_command(&command, state, job_tx, options.update_allowed) {
                            out_tx.send(message(agent_message::Body::Receipt(receipt))).await.context("send receipt")?;
                        }
                    }
                    Body::Renewed(renewed) => {
                        if let Some(key) = pending_key.take() {
                            let renewed_identity = Identity { ca_pem: identity.ca_pem.clone(), cert_pem: renewed.certificate_pem, key_pem: key.serialize_pem().into() };
                            match renewed_identity.validity() {
                                Ok(_) => {
                                    options.identity.save(&renewed_identity)?;
                                    renewal.as_mut().reset(renewal_due(&renewed_identity));
                                    tracing::info!("certificate renewed");
                                }
                                Err(error) => tracing::warn!(error = format!("{error:#}"), "renewed certificate is unreadable"),
                            }
                        }
                    }
                }
            }
            _ = heartbeat.tick() => {
                let beat = message(agent_message::Body::Heartbeat(proto::Heartbeat { sent_at_ms: now_ms() }));
                if out_tx.send(beat).await.is_err() {
                    return Ok(lost("stream closed".into()));
                }
            }
            _ = periodic.tick() => enqueue_periodic(job_tx, state),
            Some((job, run, outcome)) = result_rx.recv() => {
                if let Some(report) = spool_result(spool, state, job, run, outcome)
                    && out_tx.send(report_message(report)).await.is_err()
                {
                    return Ok(lost("stream closed".into()));
                }
            }
            // Only an agent with a data dir has an inbox (simulated agents
            // have none, and 10,000 of them polling it woke 5,000 times a second).
            _ = housekeeping.tick(), if options.data_dir.is_some() => {
                for mut report in take_inbox(options.data_dir.as_ref()) {
                    report.kind = proto::ReportKind::UpdateNowAgent as i32;
                    if let Ok(report) = spool.push(report)
                        && out_tx.send(report_message(report)).await.is_err()
                    {
                        return Ok(lost("stream closed".into()));
                    }
                }
            }
            () = &mut renewal => {
                // A retry asks with the same key, so whichever request is
                // answered, the certificate matches the key it is saved with.
                let key = match pending_key.take() {
                    Some(key) => key,
                    None => rollcall_common::pki::generate_key()?,
                };
                let csr_pem = rollcall_common::pki::certificate_request(&key, &options.hostname)?;
                *pending_key = Some(key);
                renewal.as_mut().reset(tokio::time::Instant::now() + RENEWAL_RETRY);
                tracing::info!("certificate past half its life; asking for renewal");
                if out_tx.send(message(agent_message::Body::Renew(proto::RenewRequest { csr_pem }))).await.is_err() {
                    return Ok(lost("stream closed".into()));
                }
            }
        }
    }
}

/// Queues the command's check job if it may run; returns the receipt to
/// send, or none for an accepted recheck, whose report (within the splay)
/// is its acknowledgement.
fn handle_command(
    command: &proto::Command,
    state: &mut AgentState,
    job_tx: &mpsc::Sender<(CheckJob, Arc<Policy>, Option<String>)>,
    update_allowed: bool,
) -> Option<proto::CommandReceipt> {
    let refused = |reason: &str| {
        Some(proto::CommandReceipt {
            command_id: command.id.clone(),
            accepted: false,
            reason: reason.to_string(),
        })
    };
    if state.coordinator_clock.expired_at(command.expires_at_ms, now_ms()) {
        return refused("expired");
    }
    if !command.target_version.is_empty() {
        state.target_version = Some(command.target_version.clone());
    }
    let (kind, update_now) = match proto::CommandKind::try_from(command.kind) {
        Ok(proto::CommandKind::Recheck) => (proto::ReportKind::Recheck, false),
        // The agent runs only the action its own config allows.
        Ok(proto::CommandKind::UpdateNow) if !update_allowed => {
            return refused("no update_command is configured in agent.toml");
        }
        Ok(proto::CommandKind::UpdateNow) => (proto::ReportKind::UpdateNowServer, true),
        _ => return refused("unknown command"),
    };
    let job = CheckJob {
        kind,
        command_id: command.id.clone(),
        splay: Duration::from_millis(u64::from(command.splay_ms.min(600_000))),
        update_now,
    };
    match job_tx.try_send((job, state.policy.clone(), state.target_version.clone())) {
        Ok(()) if update_now => Some(proto::CommandReceipt {
            command_id: command.id.clone(),
            accepted: true,
            reason: String::new(),
        }),
        Ok(()) => None,
        Err(_) => refused("agent busy; check queue full"),
    }
}
