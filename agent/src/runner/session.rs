//! One connection's life: hello, welcome (the coordinator's clock, spool
//! sync, re-sending what it lacks), then reports, heartbeats, acks, policy,
//! commands and certificate renewal until the stream ends or shutdown.
//!
//! The session speaks through a [`Transport`], so its tests drive it over
//! channels with a real spool in a temporary directory. Queue: what the
//! agent sends ([`OUTBOUND_QUEUE`], bounded; senders wait for room, so a
//! slow stream slows the session, never grows memory).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rollcall_common::policy::Policy;
use rollcall_common::proto::{self, AgentMessage, CoordinatorMessage, agent_message, coordinator_message::Body};
use rollcall_common::timefmt::now_ms;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

use super::AGENT_VERSION;
use super::policy_file;
use super::renewal::{RENEWAL_RETRY, renewal_due};
use super::state::AgentState;
use super::transport::{Inbound, Transport};
use crate::collect::Collector;
use crate::identity::Identity;

const OUTBOUND_QUEUE: usize = 64;
const WELCOME_TIMEOUT: Duration = Duration::from_secs(15);
const INBOX_POLL: Duration = Duration::from_secs(2);

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SessionEnd {
    Shutdown,
    Lost { lasted: Duration, reason: String },
}

pub(crate) struct Session<'a> {
    agent: &'a mut AgentState,
    /// The identity the stream was opened with (renewal replaces it).
    identity: Identity,
    coordinator: &'a str,
    shutdown: &'a CancellationToken,
    collector: Collector,
    started: Instant,
}

impl<'a> Session<'a> {
    pub fn new(
        agent: &'a mut AgentState,
        identity: Identity,
        coordinator: &'a str,
        shutdown: &'a CancellationToken,
    ) -> Self {
        let collector = Collector::new(agent.options.collect.clone(), agent.options.hostname.clone());
        Session {
            agent,
            identity,
            coordinator,
            shutdown,
            collector,
            started: Instant::now(),
        }
    }

    /// Runs the session to its end. An error is a session that never
    /// started properly or could not go on (the runner retries either way).
    pub async fn run(mut self, mut transport: impl Transport) -> anyhow::Result<SessionEnd> {
        let (out, out_rx) = mpsc::channel::<AgentMessage>(OUTBOUND_QUEUE);
        out.send(message(agent_message::Body::Hello(self.hello())))
            .await
            .context("queue hello")?;
        let response = tokio::select! {
            () = self.shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
            response = tokio::time::timeout(WELCOME_TIMEOUT, transport.open(out_rx)) => response,
        };
        let mut inbound = response
            .context("coordinator did not answer in time")?
            .map_err(|status| {
                anyhow::anyhow!(
                    "coordinator refused the stream: {} ({:?})",
                    status.message(),
                    status.code()
                )
            })?;
        let welcome = first_welcome(&mut inbound).await?;
        self.welcomed(&welcome, &out).await?;
        let heartbeat_every = Duration::from_millis(u64::from(welcome.heartbeat_interval_ms.max(100)));
        self.serve(inbound, out, heartbeat_every).await
    }

    fn hello(&self) -> proto::Hello {
        let (product, host) = self
            .agent
            .last_facts
            .as_ref()
            .map(|(product, host)| (Some(product.clone()), Some(host.clone())))
            .unwrap_or((None, None));
        let role = product.as_ref().map(|p| p.role).unwrap_or(proto::Role::Endpoint as i32);
        let options = &self.agent.options;
        let mut hello = proto::Hello {
            agent_version: AGENT_VERSION.to_string(),
            hostname: options.hostname.clone(),
            role,
            labels: options.labels.clone().into_iter().collect(),
            product,
            policy_version: self.agent.policy_version,
            host,
        };
        rollcall_common::limits::bound_hello(&mut hello);
        hello
    }

    /// Takes the coordinator's clock and its view of the spool, and
    /// re-sends what it does not have, in order.
    async fn welcomed(&mut self, welcome: &proto::Welcome, out: &mpsc::Sender<AgentMessage>) -> anyhow::Result<()> {
        tracing::info!(
            coordinator = self.coordinator,
            agent_id = welcome.agent_id,
            last_stored_seq = welcome.last_stored_seq,
            "connected"
        );
        self.agent.coordinator_clock.welcomed(welcome.now_ms, now_ms());
        self.agent.spool.sync_with(welcome.last_stored_seq)?;
        for report in self.agent.spool.pending() {
            out.send(report_message(report))
                .await
                .context("resend spooled reports")?;
        }
        Ok(())
    }

    async fn serve(
        &mut self,
        mut inbound: Inbound,
        out: mpsc::Sender<AgentMessage>,
        heartbeat_every: Duration,
    ) -> anyhow::Result<SessionEnd> {
        let mut heartbeat = tokio::time::interval_at(Instant::now() + heartbeat_every, heartbeat_every);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut housekeeping = tokio::time::interval(INBOX_POLL);
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Only an agent with a data dir has an inbox (simulated agents
        // have none, and 10,000 of them polling it woke 5,000 times a second).
        let has_inbox = self.agent.options.data_dir.is_some();
        let renewal = tokio::time::sleep_until(renewal_due(&self.identity));
        tokio::pin!(renewal);
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
                incoming = inbound.next() => {
                    let body = match incoming {
                        None => return Ok(self.lost("coordinator closed the stream".into())),
                        Some(Err(status)) => {
                            if status.code() == tonic::Code::InvalidArgument {
                                self.report_refused(&status);
                            }
                            return Ok(self.lost(format!("{} ({:?})", status.message(), status.code())));
                        }
                        Some(Ok(CoordinatorMessage { body: None })) => continue,
                        Some(Ok(CoordinatorMessage { body: Some(body) })) => body,
                    };
                    if let Some(due) = self.on_message(body, &out).await? {
                        renewal.as_mut().reset(due);
                    }
                }
                _ = heartbeat.tick() => {
                    let beat = message(agent_message::Body::Heartbeat(proto::Heartbeat { sent_at_ms: now_ms() }));
                    if out.send(beat).await.is_err() {
                        return Ok(self.lost("stream closed".into()));
                    }
                }
                _ = self.agent.periodic.tick() => self.agent.enqueue_periodic(),
                Some(done) = self.agent.checks.results.recv() => {
                    if let Some(report) = self.agent.spool_result(done)
                        && out.send(report_message(report)).await.is_err()
                    {
                        return Ok(self.lost("stream closed".into()));
                    }
                }
                _ = housekeeping.tick(), if has_inbox => {
                    if !self.send_inbox(&out).await {
                        return Ok(self.lost("stream closed".into()));
                    }
                }
                () = &mut renewal => {
                    let request = self.renewal_request()?;
                    renewal.as_mut().reset(Instant::now() + RENEWAL_RETRY);
                    tracing::info!("certificate past half its life; asking for renewal");
                    if out.send(request).await.is_err() {
                        return Ok(self.lost("stream closed".into()));
                    }
                }
            }
        }
    }

    /// The coordinator refused what this agent sent (a report, by all
    /// likelihood the oldest pending one): counted toward setting it aside.
    fn report_refused(&mut self, status: &tonic::Status) {
        match self.agent.spool.refused() {
            Ok(Some(seq)) => tracing::error!(
                seq,
                reason = status.message(),
                "the coordinator refused this report again and again; set it aside (dead letter) so the others get through"
            ),
            Ok(None) => tracing::warn!(reason = status.message(), "the coordinator refused a report"),
            Err(error) => tracing::warn!(%error, "could not record a refused report"),
        }
    }

    fn lost(&self, reason: String) -> SessionEnd {
        SessionEnd::Lost {
            lasted: self.started.elapsed(),
            reason,
        }
    }

    /// Handles one coordinator message; returns the next renewal deadline
    /// when a new certificate arrived.
    async fn on_message(&mut self, body: Body, out: &mpsc::Sender<AgentMessage>) -> anyhow::Result<Option<Instant>> {
        match body {
            Body::Welcome(_) => {}
            Body::Ack(ack) => self.agent.spool.ack(ack.seq),
            Body::Policy(doc) => self.apply_policy(&doc),
            Body::Command(command) => {
                let receipt = if command.kind == proto::CommandKind::Collect as i32 {
                    self.collector.start(
                        &command,
                        &self.agent.coordinator_clock,
                        out.clone(),
                        self.shutdown.child_token(),
                    )
                } else {
                    self.agent.handle_command(&command)
                };
                if let Some(receipt) = receipt {
                    out.send(message(agent_message::Body::Receipt(receipt)))
                        .await
                        .context("send receipt")?;
                }
            }
            Body::Renewed(renewed) => return self.renewed(renewed),
        }
        Ok(None)
    }

    fn apply_policy(&mut self, doc: &proto::PolicyDoc) {
        match Policy::from_toml_str(&doc.toml) {
            Ok(policy) => {
                tracing::info!(version = doc.version, "policy received");
                policy_file::save(self.agent.options.data_dir.as_deref(), doc);
                self.agent.policy = Arc::new(policy);
                self.agent.policy_version = doc.version;
            }
            Err(error) => tracing::warn!(%error, version = doc.version, "refusing an invalid policy"),
        }
    }

    /// Asks for a new certificate. A retry asks with the same key, so
    /// whichever request is answered, the certificate matches the key it
    /// is saved with.
    fn renewal_request(&mut self) -> anyhow::Result<AgentMessage> {
        let key = match self.agent.renewal_key.take() {
            Some(key) => key,
            None => rollcall_common::pki::generate_key()?,
        };
        let csr_pem = rollcall_common::pki::certificate_request(&key, &self.agent.options.hostname)?;
        self.agent.renewal_key = Some(key);
        Ok(message(agent_message::Body::Renew(proto::RenewRequest { csr_pem })))
    }

    /// Saves a renewed certificate with the key it was asked for; an
    /// answer without a pending request is ignored.
    fn renewed(&mut self, renewed: proto::RenewResponse) -> anyhow::Result<Option<Instant>> {
        let Some(key) = self.agent.renewal_key.take() else {
            return Ok(None);
        };
        let renewed_identity = Identity {
            ca_pem: self.identity.ca_pem.clone(),
            cert_pem: renewed.certificate_pem,
            key_pem: key.serialize_pem().into(),
        };
        if let Err(error) = renewed_identity.validity() {
            tracing::warn!(error = format!("{error:#}"), "renewed certificate is unreadable");
            return Ok(None);
        }
        self.agent.options.identity.save(&renewed_identity)?;
        let due = renewal_due(&renewed_identity);
        self.identity = renewed_identity;
        tracing::info!("certificate renewed");
        Ok(Some(due))
    }

    /// Spools and sends the reports of local update-now runs; false when
    /// the stream is gone.
    async fn send_inbox(&mut self, out: &mpsc::Sender<AgentMessage>) -> bool {
        for mut report in super::inbox::take(self.agent.options.data_dir.as_deref()) {
            report.kind = proto::ReportKind::UpdateNowAgent as i32;
            if let Ok(report) = self.agent.spool.push(report)
                && out.send(report_message(report)).await.is_err()
            {
                return false;
            }
        }
        true
    }
}

/// The coordinator's first message, which must be its welcome.
async fn first_welcome(inbound: &mut Inbound) -> anyhow::Result<proto::Welcome> {
    let first = tokio::time::timeout(WELCOME_TIMEOUT, inbound.next())
        .await
        .context("no welcome in time")?;
    match first {
        Some(Ok(CoordinatorMessage {
            body: Some(Body::Welcome(welcome)),
        })) => Ok(welcome),
        Some(Ok(_)) => anyhow::bail!("coordinator did not open with welcome"),
        Some(Err(status)) => anyhow::bail!("coordinator ended the stream: {}", status.message()),
        None => anyhow::bail!("coordinator closed the stream"),
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

#[cfg(test)]
mod tests;
