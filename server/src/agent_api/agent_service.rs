//! `rollcall.v1.AgentService`: enrollment and the per-agent stream.
//!
//! Longer than ~400 lines: Enroll and one stream's whole life (hello, policy,
//! commands, receipts, renewal), read in the order it happens.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use rollcall_common::pki::cert_facts;
use rollcall_common::proto::{
    self, AgentMessage, CoordinatorMessage, EnrollRequest, EnrollResponse, agent_message,
    agent_service_server::AgentService, coordinator_message::Body,
};
use rollcall_common::receipt::Receipt;
use rollcall_common::timefmt::{ms_of, now_ms};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::agents::budget::Overdrawn;
use crate::agents::hub::OUTBOUND_CAPACITY;
use crate::agents::inbound::{self, ValidHello, ValidReport};
use crate::agents::ingest::IngestItem;
use crate::edge::auth::agent_caller;
use crate::state::Coordinator;
use crate::store::{HelloRecord, NewAgent, ReceiptRecord, StoreError};

/// How long a new stream may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_TOKEN_LEN: usize = 256;
const MAX_CSR_LEN: usize = 16 * 1024;

pub struct AgentApi {
    pub coordinator: Arc<Coordinator>,
}

pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

type CoordinatorStream = Pin<Box<dyn Stream<Item = Result<CoordinatorMessage, Status>> + Send>>;

#[tonic::async_trait]
impl AgentService for AgentApi {
    async fn enroll(&self, request: Request<EnrollRequest>) -> Result<Response<EnrollResponse>, Status> {
        let coordinator = &self.coordinator;
        // Per source address: guessing tokens or burning CPU on CSRs from one
        // place meets a wall after a burst. Without an address (never over
        // TCP) there is nothing to key on, so nothing to limit.
        if let Some(peer) = request.remote_addr()
            && !coordinator.sources.try_enroll(peer.ip())
        {
            tracing::debug!(%peer, "enrolment rate limit");
            let retry = coordinator.sources.enroll_retry_after();
            return Err(retry_later(
                format!(
                    "too many enrolments from this address; retry in {}s",
                    retry.as_secs().max(1)
                ),
                retry,
            ));
        }
        let body = request.into_inner();
        if body.token.is_empty() || body.token.len() > MAX_TOKEN_LEN {
            return Err(Status::invalid_argument("an enrollment token is required"));
        }
        if body.csr_pem.len() > MAX_CSR_LEN {
            return Err(Status::invalid_argument("certificate signing request is too large"));
        }
        let hostname = body.hostname.trim();
        inbound::hostname(hostname)?;
        // The token first (one indexed read): an unauthorised caller never
        // gets as far as CSR parsing and a signature.
        coordinator
            .store
            .check_token(hash_token(&body.token), now_ms())
            .await
            .map_err(|error| {
                tracing::warn!(%error, hostname, "enrollment refused");
                crate::status::for_agent(&error, "enrol agents")
            })?;
        let agent_id = uuid::Uuid::now_v7().to_string();
        // Sign before spending: a bad CSR must not spend a token use.
        let certificate_pem = coordinator
            .ca
            .issue_agent(&body.csr_pem, &agent_id, coordinator.config.agent_cert_lifetime)
            .map_err(|error| Status::invalid_argument(format!("{error:#}")))?;
        let facts = rollcall_common::pki::first_cert_der(&certificate_pem)
            .and_then(|der| cert_facts(&der))
            .map_err(|_| Status::internal("issued certificate is unreadable"))?;
        let labels = coordinator
            .store
            .enroll_agent(
                hash_token(&body.token),
                now_ms(),
                NewAgent {
                    id: agent_id.clone(),
                    hostname: hostname.to_string(),
                    enrolled_at_ms: now_ms(),
                    cert_serial: facts.serial,
                    cert_not_after_ms: ms_of(facts.not_after),
                },
            )
            .await
            .map_err(|error| {
                tracing::warn!(%error, hostname, "enrollment refused");
                crate::status::for_agent(&error, "enrol agents")
            })?;
        tracing::info!(agent_id, hostname, "agent enrolled");
        Ok(Response::new(EnrollResponse {
            agent_id,
            certificate_pem,
            ca_pem: coordinator.ca_pem.clone(),
            labels: labels.into_iter().collect(),
        }))
    }

    type ConnectStream = CoordinatorStream;

    async fn connect(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        let coordinator = self.coordinator.clone();
        let agent_id = agent_caller(&request, &coordinator.revocation)?;
        let cert_serial = crate::edge::auth::caller_certificate(&request, &coordinator.revocation)?.serial;
        let certificate_validity = peer_validity(&request);
        // One certificate opening streams back to back would make each a
        // presence write and a watch event: refused before either.
        if let Err(retry) = coordinator.budgets.allow_connect(&agent_id) {
            coordinator.metrics.budget_refused("connects");
            tracing::debug!(agent_id, "connect rate limit");
            return Err(retry_later(
                format!(
                    "too many new streams for this agent; retry in {}s",
                    retry.as_secs().max(1)
                ),
                retry,
            ));
        }
        let mut inbound = request.into_inner();

        let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.next())
            .await
            .map_err(|_| Status::deadline_exceeded("no hello within 15s"))?;
        let hello = match first {
            Some(Ok(AgentMessage {
                body: Some(agent_message::Body::Hello(hello)),
            })) => hello,
            Some(Ok(_)) => return Err(Status::invalid_argument("the first message on a stream must be hello")),
            Some(Err(status)) => return Err(status),
            None => return Err(Status::cancelled("stream closed before hello")),
        };
        let hello = ValidHello::try_from(hello)?.into_inner();
        if coordinator.budgets.charge(&agent_id, hello.encoded_len()).is_err() {
            coordinator.metrics.budget_refused("messages");
            return Err(Status::resource_exhausted(
                "message budget exceeded (report rate limit); slow down",
            ));
        }
        let policy_version = hello.policy_version;
        let hostname = hello.hostname.clone();
        let connected = coordinator
            .store
            .agent_connected(HelloRecord {
                agent_id: agent_id.clone(),
                hostname: hello.hostname.clone(),
                agent_version: hello.agent_version.clone(),
                role: hello.role,
                labels: hello.labels.into_iter().collect(),
                product: hello.product.unwrap_or_default(),
                host: hello.host.unwrap_or_default(),
                at_ms: now_ms(),
                cert_serial: cert_serial.clone(),
            })
            .await
            .map_err(|error| {
                if let StoreError::Unavailable(reason) = &error {
                    coordinator.health.store_failed(reason);
                }
                crate::status::for_agent(&error, "record this connection")
            })?;
        crate::domain::bound_labels::warn_ignored(&agent_id, &connected.ignored_labels);
        if !connected.retired_serials.is_empty() {
            // The agent connects with a renewed certificate: the older ones
            // (and any stolen copy of their key) stop working everywhere.
            for serial in &connected.retired_serials {
                coordinator.revocation.revoke_serial(serial);
            }
            tracing::info!(
                agent_id,
                retired = connected.retired_serials.len(),
                "revoked the older certificates of a renewed agent"
            );
            coordinator
                .tell_others(crate::store::Notice::Revoked {
                    agent_id: agent_id.clone(),
                })
                .await;
        }
        coordinator.metrics.hello_labels_ignored(connected.ignored_labels.len());
        let last_stored_seq = connected.last_seq;

        let (tx, rx) = mpsc::channel(OUTBOUND_CAPACITY);
        let cancel = coordinator.shutdown.child_token();
        let (session, replaced) = coordinator.hub.register(&agent_id, tx.clone(), cancel.clone());
        if replaced {
            coordinator.metrics.stream_replaced();
            tracing::info!(
                agent_id,
                session = session.id,
                "a new stream replaced this agent's older one"
            );
        }
        tracing::info!(agent_id, session = session.id, "agent connected");

        let welcome = CoordinatorMessage {
            body: Some(Body::Welcome(proto::Welcome {
                agent_id: agent_id.clone(),
                last_stored_seq,
                heartbeat_interval_ms: u32::try_from(coordinator.config.heartbeat_interval.as_millis())
                    .unwrap_or(u32::MAX),
                now_ms: now_ms(),
            })),
        };
        // The channel is new and empty: these cannot block for long.
        let _ = tx.send(Ok(welcome)).await;
        let current_policy = coordinator.policy.borrow().clone();
        if let Some(policy) = current_policy
            && policy.version != policy_version
        {
            let _ = tx
                .send(Ok(CoordinatorMessage {
                    body: Some(Body::Policy((*policy).clone())),
                }))
                .await;
        }

        match crate::rollouts::engine::dispatch::deliver_queued(&coordinator, &agent_id).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(agent_id, count, "delivered queued commands"),
            Err(error) => tracing::warn!(%error, agent_id, "could not deliver queued commands"),
        }
        coordinator.publish(crate::events::Event {
            at: rollcall_common::timefmt::rfc3339(now_ms()),
            kind: crate::events::EventKind::AgentConnected,
            agent_id: agent_id.clone(),
            hostname,
            rollout_id: String::new(),
            from: String::new(),
            to: String::new(),
            cause: String::new(),
            detail: String::new(),
        });

        let reader_coordinator = coordinator.clone();
        let reader_cancel = cancel.clone();
        let session_id = session.id;
        tokio::spawn(async move {
            let stream = StreamContext {
                agent_id: &agent_id,
                cert_serial: &cert_serial,
                certificate_validity,
                tx: &tx,
                cancel: &reader_cancel,
            };
            let reason = read_stream(&reader_coordinator, &stream, &mut inbound).await;
            tracing::info!(agent_id, session = session_id, reason, "agent stream ended");
            reader_cancel.cancel();
            reader_coordinator.hub.unregister(&agent_id, session_id);
            if !reader_coordinator.hub.is_connected(&agent_id)
                && let Err(error) = reader_coordinator.store.agent_disconnected(&agent_id, now_ms()).await
            {
                tracing::warn!(%error, agent_id, "could not record disconnect");
            }
        });

        // The response ends when the session is cancelled (shutdown, revoke,
        // a newer stream), so long-lived streams never hold up a drain.
        let outbound = crate::agents::session_stream::SessionStream::new(rx, cancel.clone());
        Ok(Response::new(Box::pin(outbound)))
    }
}

/// The (not before, not after) of the certificate the caller connected with.
fn peer_validity<T>(request: &Request<T>) -> Option<(OffsetDateTime, OffsetDateTime)> {
    let certs = request.peer_certs()?;
    let facts = cert_facts(certs.first()?).ok()?;
    Some((facts.not_before, facts.not_after))
}

/// What the reader of one agent stream works with.
struct StreamContext<'a> {
    agent_id: &'a str,
    /// The serial of the certificate the stream was opened with: a
    /// retired or revoked serial ends the stream (issue 24 point 4).
    cert_serial: &'a str,
    /// Validity of the stream's certificate: renewals wait for its window.
    certificate_validity: Option<(OffsetDateTime, OffsetDateTime)>,
    tx: &'a crate::agents::hub::Outbound,
    cancel: &'a tokio_util::sync::CancellationToken,
}

/// The metadata key of a refusal's retry hint, in milliseconds; the probe's
/// enrolment waits at least that long before it asks again.
pub const RETRY_AFTER_MS: &str = "retry-after-ms";

/// RESOURCE_EXHAUSTED with the text and a machine-readable retry hint.
fn retry_later(message: String, retry: Duration) -> Status {
    let mut status = Status::resource_exhausted(message);
    if let Ok(value) = retry.as_millis().to_string().parse() {
        status.metadata_mut().insert(RETRY_AFTER_MS, value);
    }
    status
}

/// Sleeps until the stream's certificate expires (forever when unknown).
async fn certificate_expiry(validity: Option<(OffsetDateTime, OffsetDateTime)>) {
    let Some((_, not_after)) = validity else {
        return std::future::pending().await;
    };
    let left = not_after - OffsetDateTime::now_utc();
    let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
    tokio::time::sleep(left).await;
}

/// True when the agent or the serial its stream was opened with is revoked
/// (a serial is revoked when a renewal retires it).
fn stream_revoked(coordinator: &Coordinator, stream: &StreamContext<'_>) -> bool {
    use rollcall_common::tls::RevocationCheck as _;
    coordinator
        .revocation
        .is_revoked(stream.cert_serial, Some(stream.agent_id))
}

/// Why a renewal asked on this stream is refused, if it is: a revoked or
/// retired identity, or a certificate past its end, gets no new one.
fn renewal_refusal(
    revoked: bool,
    validity: Option<(OffsetDateTime, OffsetDateTime)>,
    now: OffsetDateTime,
) -> Option<&'static str> {
    if revoked {
        return Some("this identity has been revoked or retired; enrol again");
    }
    match validity {
        Some((_, not_after)) if not_after <= now => Some("the certificate of this stream has expired; enrol again"),
        None => Some("the certificate of this stream could not be read"),
        Some(_) => None,
    }
}

/// Charges one message to the agent's budget; on overdraft tells the agent
/// why and returns the reason the stream ends.
fn charge(coordinator: &Coordinator, stream: &StreamContext<'_>, bytes: usize) -> Result<(), &'static str> {
    match coordinator.budgets.charge(stream.agent_id, bytes) {
        Ok(()) => Ok(()),
        Err(overdrawn) => {
            coordinator.metrics.budget_refused(overdrawn.as_str());
            let _ = stream.tx.try_send(Err(Status::resource_exhausted(overdrawn.message())));
            Err(match overdrawn {
                Overdrawn::Messages => "rate limited (message budget)",
                Overdrawn::Bytes => "rate limited (byte budget)",
            })
        }
    }
}

/// Reads the agent's messages until the stream ends; returns why it ended.
async fn read_stream(
    coordinator: &Arc<Coordinator>,
    stream: &StreamContext<'_>,
    inbound: &mut Streaming<AgentMessage>,
) -> &'static str {
    let StreamContext {
        agent_id, tx, cancel, ..
    } = *stream;
    // The list changes on a revocation or retirement made here, and on one
    // another replica made (its wake-up reloads the list, or the sweep
    // does): either way this stream is checked again at once.
    let mut revocations = coordinator.revocation.subscribe();
    let expiry = certificate_expiry(stream.certificate_validity);
    tokio::pin!(expiry);
    loop {
        let message = tokio::select! {
            () = cancel.cancelled() => return "cancelled",
            Ok(()) = revocations.changed() => {
                if stream_revoked(coordinator, stream) {
                    let _ = tx.try_send(Err(Status::permission_denied(
                        "the certificate of this stream has been revoked or replaced",
                    )));
                    return "certificate revoked or retired";
                }
                continue;
            }
            () = &mut expiry => {
                let _ = tx.try_send(Err(Status::unauthenticated("the certificate of this stream has expired")));
                return "certificate expired";
            }
            message = inbound.next() => message,
        };
        let body = match message {
            None => return "closed by agent",
            Some(Err(status)) => {
                // Tell the agent why (e.g. a message over the size limit).
                let _ = tx.try_send(Err(status));
                return "transport error";
            }
            Some(Ok(AgentMessage { body: None })) => continue,
            Some(Ok(AgentMessage { body: Some(body) })) => body,
        };
        coordinator.note_seen(agent_id, now_ms());
        match body {
            agent_message::Body::Hello(_) => {
                let _ = tx.try_send(Err(Status::invalid_argument("hello may only open a stream")));
                return "second hello";
            }
            agent_message::Body::Heartbeat(heartbeat) => {
                if let Err(reason) = charge(coordinator, stream, heartbeat.encoded_len()) {
                    return reason;
                }
            }
            agent_message::Body::Report(report) => {
                let report = match ValidReport::try_from(report) {
                    Ok(report) => report,
                    Err(refused) => {
                        tracing::warn!(agent_id, %refused, "refused a malformed report");
                        let _ = tx.try_send(Err(refused.into()));
                        return "malformed report";
                    }
                };
                if let Err(reason) = charge(coordinator, stream, report.encoded_len()) {
                    return reason;
                }
                if report.kind == proto::ReportKind::Recheck as i32 && !report.command_id.is_empty() {
                    // An accepted recheck has no receipt: its report is one.
                    coordinator.metrics.command_acknowledged(true);
                }
                let item = IngestItem::Report {
                    agent_id: agent_id.to_string(),
                    received_at_ms: now_ms(),
                    report: Box::new(report),
                    reply: tx.clone(),
                };
                if coordinator.ingest.submit(item).await.is_err() {
                    return "shutting down";
                }
            }
            agent_message::Body::Bundle(chunk) => {
                // Counted as a message, not by its bytes: a bundle is asked
                // for by an admin and bounded on its own (64 MiB), and its
                // chunks would drain the report byte budget in one go.
                if let Err(reason) = charge(coordinator, stream, 0) {
                    return reason;
                }
                if let Err(status) = crate::agent_api::bundle_receive::receive(coordinator, agent_id, chunk).await {
                    let _ = tx.try_send(Err(status));
                    return "bundle chunk refused";
                }
            }
            agent_message::Body::Renew(renew) => {
                if renew.csr_pem.len() > MAX_CSR_LEN {
                    let _ = tx.try_send(Err(Status::invalid_argument(
                        "certificate signing request is too large",
                    )));
                    return "oversized csr";
                }
                if let Err(reason) = charge(coordinator, stream, renew.csr_pem.len()) {
                    return reason;
                }
                if let Some(refusal) = renewal_refusal(
                    stream_revoked(coordinator, stream),
                    stream.certificate_validity,
                    OffsetDateTime::now_utc(),
                ) {
                    tracing::warn!(agent_id, refusal, "certificate renewal refused");
                    let _ = tx.try_send(Err(Status::permission_denied(refusal)));
                    return "renewal refused";
                }
                // Signing is the expensive part: throttled per agent. A
                // request refused here is not answered (the stream stays up,
                // so a confused but honest agent keeps reporting); the agent
                // asks again after a while or on its next stream.
                let validity = stream
                    .certificate_validity
                    .unwrap_or((OffsetDateTime::UNIX_EPOCH, OffsetDateTime::UNIX_EPOCH));
                if let Err(refused) = coordinator.budgets.allow_renewal(agent_id, validity) {
                    coordinator.metrics.budget_refused("renewal");
                    tracing::warn!(agent_id, reason = refused.as_str(), "certificate renewal not answered");
                    continue;
                }
                match renew_certificate(coordinator, agent_id, &renew.csr_pem).await {
                    Ok(certificate_pem) => {
                        let message = CoordinatorMessage {
                            body: Some(Body::Renewed(proto::RenewResponse { certificate_pem })),
                        };
                        if tx.send(Ok(message)).await.is_err() {
                            return "stream closed";
                        }
                    }
                    Err(status) => {
                        tracing::warn!(agent_id, %status, "certificate renewal refused");
                        let _ = tx.try_send(Err(status));
                        return "renewal refused";
                    }
                }
            }
            agent_message::Body::Receipt(receipt) => {
                if let Err(reason) = charge(coordinator, stream, receipt.encoded_len()) {
                    return reason;
                }
                coordinator.metrics.command_acknowledged(receipt.accepted);
                tracing::debug!(
                    agent_id,
                    command = receipt.command_id,
                    accepted = receipt.accepted,
                    "command receipt"
                );
                // Only a refusal is stored: it settles the command. An
                // accepted command is settled by the report answering it,
                // and writing 10,000 "accepted" rows slowed a fleet-wide
                // recheck's ingest for nothing anyone reads.
                if receipt.accepted {
                    continue;
                }
                let refusal = Receipt::Refused(receipt.reason.chars().take(inbound::MAX_SHORT).collect());
                if receipt.command_id.len() <= inbound::MAX_SHORT {
                    let item = IngestItem::Receipt(ReceiptRecord {
                        agent_id: agent_id.to_string(),
                        command_id: receipt.command_id,
                        receipt: refusal,
                    });
                    if coordinator.ingest.submit(item).await.is_err() {
                        return "shutting down";
                    }
                }
            }
        }
    }
}

async fn renew_certificate(coordinator: &Coordinator, agent_id: &str, csr_pem: &str) -> Result<String, Status> {
    let certificate_pem = coordinator
        .ca
        .issue_agent(csr_pem, agent_id, coordinator.config.agent_cert_lifetime)
        .map_err(|error| Status::invalid_argument(format!("{error:#}")))?;
    let facts = rollcall_common::pki::first_cert_der(&certificate_pem)
        .and_then(|der| cert_facts(&der))
        .map_err(|_| Status::internal("issued certificate is unreadable"))?;
    coordinator
        .store
        .record_certificate(agent_id, &facts.serial, ms_of(facts.not_after))
        .await
        .map_err(|error| crate::status::for_agent(&error, "renew certificates"))?;
    tracing::info!(agent_id, "agent certificate renewed");
    Ok(certificate_pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_refused_to_a_revoked_retired_or_expired_identity() {
        let now = OffsetDateTime::now_utc();
        let valid = Some((now - time::Duration::hours(1), now + time::Duration::hours(1)));
        let expired = Some((now - time::Duration::hours(2), now - time::Duration::seconds(1)));
        assert_eq!(renewal_refusal(false, valid, now), None);
        assert!(renewal_refusal(true, valid, now).is_some_and(|why| why.contains("revoked")));
        assert!(renewal_refusal(false, expired, now).is_some_and(|why| why.contains("expired")));
        assert!(renewal_refusal(false, None, now).is_some());
    }
}
