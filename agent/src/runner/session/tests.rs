//! A session driven through channels: the test plays the coordinator, the
//! spool is a real one in a temporary directory, and the check worker's
//! queues are held by the test (jobs read, results fed).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rollcall_common::proto::{self, AgentMessage, CoordinatorMessage, agent_message, coordinator_message::Body};
use rollcall_common::secret::Secret;
use rollcall_common::timefmt::now_ms;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::{Session, SessionEnd};
use crate::checks::CheckRun;
use crate::config::{ReconnectConfig, SpoolConfig};
use crate::identity::{Identity, IdentityStore};
use crate::runner::AgentOptions;
use crate::runner::check_jobs::{CheckJob, CheckQueue, JobDone, JobRequest};
use crate::runner::state::AgentState;
use crate::runner::transport::{Inbound, Transport};
use crate::spool::Spool;

/// How long a test waits for the agent's next message (real time; the
/// paused-clock tests wait without a limit).
const PATIENCE: Duration = Duration::from_secs(10);
const AGENT_ID: &str = "0f6e3c1a-5b2d-4e8f-9a7c-1d2e3f4a5b6c";

// === the in-memory transport ===

/// Hands the agent's outbound queue to the test and gives the agent the
/// test's inbound queue, or refuses the stream.
struct ChannelTransport {
    hand_over: Option<oneshot::Sender<mpsc::Receiver<AgentMessage>>>,
    inbound: Option<mpsc::Receiver<Result<CoordinatorMessage, tonic::Status>>>,
    refuse: Option<tonic::Status>,
}

#[async_trait]
impl Transport for ChannelTransport {
    async fn open(&mut self, outbound: mpsc::Receiver<AgentMessage>) -> Result<Inbound, tonic::Status> {
        if let Some(status) = self.refuse.take() {
            return Err(status);
        }
        let hand_over = self.hand_over.take().expect("opened once");
        let _ = hand_over.send(outbound);
        let inbound = self.inbound.take().expect("opened once");
        Ok(Box::pin(ReceiverStream::new(inbound)))
    }
}

/// The test's side of the stream: the coordinator.
struct Coordinator {
    accepted: Option<oneshot::Receiver<mpsc::Receiver<AgentMessage>>>,
    from_agent: Option<mpsc::Receiver<AgentMessage>>,
    to_agent: mpsc::Sender<Result<CoordinatorMessage, tonic::Status>>,
}

fn wire() -> (ChannelTransport, Coordinator) {
    let (hand_over, accepted) = oneshot::channel();
    let (to_agent, inbound) = mpsc::channel(64);
    let transport = ChannelTransport {
        hand_over: Some(hand_over),
        inbound: Some(inbound),
        refuse: None,
    };
    let coordinator = Coordinator {
        accepted: Some(accepted),
        from_agent: None,
        to_agent,
    };
    (transport, coordinator)
}

impl Coordinator {
    /// The agent's next message, however long it takes.
    async fn next(&mut self) -> agent_message::Body {
        if let Some(accepted) = self.accepted.take() {
            self.from_agent = Some(accepted.await.expect("the stream is opened"));
        }
        let from_agent = self.from_agent.as_mut().expect("accepted");
        let message = from_agent.recv().await.expect("the agent sends");
        message.body.expect("a message with a body")
    }

    /// The agent's next message within [`PATIENCE`].
    async fn recv(&mut self) -> agent_message::Body {
        tokio::time::timeout(PATIENCE, self.next())
            .await
            .expect("the agent answers in time")
    }

    /// The agent's next message other than a heartbeat.
    async fn recv_skipping_heartbeats(&mut self) -> agent_message::Body {
        loop {
            match self.next().await {
                agent_message::Body::Heartbeat(_) => {}
                body => return body,
            }
        }
    }

    async fn send(&self, body: Body) {
        self.to_agent
            .send(Ok(CoordinatorMessage { body: Some(body) }))
            .await
            .expect("the session reads");
    }

    /// Reads the hello and welcomes the agent.
    async fn welcome(&mut self, last_stored_seq: u64, now_ms: i64) -> proto::Hello {
        let agent_message::Body::Hello(hello) = self.recv().await else {
            panic!("the agent opens with hello");
        };
        self.send(Body::Welcome(proto::Welcome {
            agent_id: AGENT_ID.into(),
            last_stored_seq,
            heartbeat_interval_ms: 3_600_000,
            now_ms,
        }))
        .await;
        hello
    }

    async fn report(&mut self) -> proto::Report {
        match self.recv().await {
            agent_message::Body::Report(report) => report,
            other => panic!("expected a report, got {other:?}"),
        }
    }

    async fn receipt(&mut self) -> proto::CommandReceipt {
        match self.recv().await {
            agent_message::Body::Receipt(receipt) => receipt,
            other => panic!("expected a receipt, got {other:?}"),
        }
    }
}

// === the agent under test ===

struct Harness {
    dir: tempfile::TempDir,
    agent: AgentState,
    /// The check worker's ends: jobs the session queued, results to feed it.
    jobs: mpsc::Receiver<JobRequest>,
    results: mpsc::Sender<JobDone>,
    identity: Identity,
    shutdown: CancellationToken,
}

fn placeholder_identity() -> Identity {
    // Not a certificate: renewal never comes due (see `renewal_due`).
    Identity {
        ca_pem: "ca".into(),
        cert_pem: "cert".into(),
        key_pem: Secret::new("key"),
    }
}

fn harness(update_allowed: bool, identity: Identity) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = Spool::open(&dir.path().join("spool"), SpoolConfig::default()).expect("open spool");
    let options = AgentOptions {
        urls: vec!["https://coordinator.test:7443".into()],
        identity: IdentityStore::Memory(Arc::new(Mutex::new(identity.clone()))),
        hostname: "endpoint-1".into(),
        labels: BTreeMap::from([("site".to_string(), "lab".to_string())]),
        check_interval: Duration::from_secs(24 * 3600),
        data_dir: Some(dir.path().to_path_buf()),
        dial: Default::default(),
        reconnect: ReconnectConfig::default(),
        check_at_start: false,
        update_allowed,
        collect: Default::default(),
    };
    let (checks, jobs, results) = CheckQueue::detached();
    let agent = AgentState::new(options, spool, checks);
    Harness {
        dir,
        agent,
        jobs,
        results,
        identity,
        shutdown: CancellationToken::new(),
    }
}

impl Harness {
    /// Runs a session over `transport` while `script` plays the
    /// coordinator; the session's end once both are done.
    async fn drive(
        &mut self,
        transport: ChannelTransport,
        script: impl Future<Output = ()>,
    ) -> anyhow::Result<SessionEnd> {
        let session = Session::new(&mut self.agent, self.identity.clone(), "test", &self.shutdown);
        let (end, ()) = tokio::join!(session.run(transport), script);
        end
    }

    fn spooled(&self) -> Vec<u64> {
        self.agent.spool.pending().iter().map(|report| report.seq).collect()
    }
}

fn check_run() -> CheckRun {
    CheckRun {
        product: proto::ProductSummary::default(),
        host: proto::HostFacts::default(),
        checks: Vec::new(),
    }
}

fn command(id: &str, kind: proto::CommandKind) -> proto::Command {
    proto::Command {
        id: id.into(),
        kind: kind as i32,
        ..Default::default()
    }
}

fn lost(end: anyhow::Result<SessionEnd>) -> String {
    match end.expect("the session ends without error") {
        SessionEnd::Lost { reason, .. } => reason,
        SessionEnd::Shutdown => panic!("the session was lost, not shut down"),
    }
}

// === welcome and spool sync ===

#[tokio::test]
async fn the_welcome_drops_what_the_coordinator_stored_and_resends_the_rest() {
    let mut h = harness(false, placeholder_identity());
    for _ in 0..3 {
        h.agent.spool.push(proto::Report::default()).expect("push");
    }
    let (transport, mut coordinator) = wire();
    let end = h
        .drive(transport, async {
            let hello = coordinator.welcome(1, now_ms()).await;
            assert_eq!(hello.hostname, "endpoint-1");
            assert_eq!(hello.labels.get("site").map(String::as_str), Some("lab"));
            let resent = [coordinator.report().await, coordinator.report().await];
            assert_eq!(resent.each_ref().map(|report| report.seq), [2, 3]);
            assert!(resent.iter().all(|report| report.sent_at_ms > 0), "stamped when sent");
            drop(coordinator);
        })
        .await;
    assert_eq!(lost(end), "coordinator closed the stream");
    assert_eq!(h.spooled(), vec![2, 3], "unacknowledged reports stay spooled");
}

#[tokio::test]
async fn a_coordinator_that_stored_more_moves_the_sequence_past_it() {
    let mut h = harness(false, placeholder_identity());
    let (transport, mut coordinator) = wire();
    let results = h.results.clone();
    let end = h
        .drive(transport, async {
            coordinator.welcome(41, now_ms()).await;
            results
                .send((CheckJob::periodic(), check_run(), None))
                .await
                .expect("send result");
            assert_eq!(coordinator.report().await.seq, 42);
            drop(coordinator);
        })
        .await;
    lost(end);
}

#[tokio::test]
async fn a_stream_that_does_not_open_with_welcome_is_an_error() {
    let mut h = harness(false, placeholder_identity());
    let (transport, mut coordinator) = wire();
    let end = h
        .drive(transport, async {
            coordinator.recv().await;
            coordinator.send(Body::Ack(proto::Ack { seq: 1 })).await;
        })
        .await;
    let error = end.expect_err("no welcome");
    assert_eq!(error.to_string(), "coordinator did not open with welcome");
}

#[tokio::test]
async fn a_refused_stream_is_an_error_naming_the_status() {
    let mut h = harness(false, placeholder_identity());
    let (mut transport, _coordinator) = wire();
    transport.refuse = Some(tonic::Status::permission_denied("revoked"));
    let error = h.drive(transport, async {}).await.expect_err("refused");
    assert!(
        error.to_string().contains("coordinator refused the stream: revoked"),
        "{error}"
    );
}

#[tokio::test]
async fn shutdown_ends_the_session_cleanly() {
    let mut h = harness(false, placeholder_identity());
    let (transport, mut coordinator) = wire();
    let shutdown = h.shutdown.clone();
    let end = h
        .drive(transport, async {
            coordinator.welcome(0, now_ms()).await;
            shutdown.cancel();
        })
        .await;
    assert_eq!(end.expect("clean end"), SessionEnd::Shutdown);
}

// === reports and acks ===

#[tokio::test]
async fn acks_are_cumulative() {
    let mut h = harness(false, placeholder_identity());
    let (transport, mut coordinator) = wire();
    let results = h.results.clone();
    let end = h
        .drive(transport, async {
            coordinator.welcome(0, now_ms()).await;
            for _ in 0..3 {
                results
                    .send((CheckJob::periodic(), check_run(), None))
                    .await
                    .expect("send result");
            }
            let seqs = [
                coordinator.report().await.seq,
                coordinator.report().await.seq,
                coordinator.report().await.seq,
            ];
            assert_eq!(seqs, [1, 2, 3]);
            coordinator.send(Body::Ack(proto::Ack { seq: 2 })).await;
            drop(coordinator);
        })
        .await;
    lost(end);
    assert_eq!(h.spooled(), vec![3], "one ack covers every report up to its seq");
}

#[tokio::test]
async fn local_update_now_outcomes_in_the_inbox_are_sent() {
    let mut h = harness(false, placeholder_identity());
    let inbox = h.dir.path().join("inbox");
    std::fs::create_dir(&inbox).expect("inbox");
    let outcome = proto::Report {
        update_now: Some(proto::UpdateNowOutcome::default()),
        ..Default::default()
    };
    std::fs::write(inbox.join("1.pb"), prost::Message::encode_to_vec(&outcome)).expect("write");
    let (transport, mut coordinator) = wire();
    let end = h
        .drive(transport, async {
            coordinator.welcome(0, now_ms()).await;
            let report = coordinator.report().await;
            assert_eq!(report.kind, proto::ReportKind::UpdateNowAgent as i32);
            assert_eq!(report.seq, 1);
            drop(coordinator);
        })
        .await;
    lost(end);
    assert!(!inbox.join("1.pb").exists(), "taken once");
}

// === policy ===

#[tokio::test]
async fn a_valid_policy_is_applied_and_saved_and_an_invalid_one_refused() {
    let mut h = harness(false, placeholder_identity());
    let toml = rollcall_common::policy::Policy::default()
        .to_toml_string()
        .expect("policy toml");
    let (transport, mut coordinator) = wire();
    let end = h
        .drive(transport, async {
            let hello = coordinator.welcome(0, now_ms()).await;
            assert_eq!(hello.policy_version, 0);
            coordinator
                .send(Body::Policy(proto::PolicyDoc {
                    version: 7,
                    toml: toml.clone(),
                }))
                .await;
            coordinator
                .send(Body::Policy(proto::PolicyDoc {
                    version: 8,
                    toml: "not = [valid".into(),
                }))
                .await;
            drop(coordinator);
        })
        .await;
    lost(end);
    assert_eq!(h.agent.policy_version, 7);
    let saved = crate::runner::policy_file::load(Some(h.dir.path())).expect("saved policy");
    assert_eq!(saved.0, 7);

    // The next hello names the policy the agent has.
    let (transport, mut coordinator) = wire();
    let end = h
        .drive(transport, async {
            assert_eq!(coordinator.welcome(0, now_ms()).await.policy_version, 7);
            drop(coordinator);
        })
        .await;
    lost(end);
}

// === commands ===

#[tokio::test]
async fn commands_queue_the_checks_the_config_allows() {
    let mut h = harness(false, placeholder_identity());
    let (transport, mut coordinator) = wire();
    let end = h
        .drive(transport, async {
            coordinator.welcome(0, now_ms()).await;
            let mut recheck = command("c1", proto::CommandKind::Recheck);
            recheck.target_version = "14.0.2".into();
            recheck.splay_ms = 900_000;
            coordinator.send(Body::Command(recheck)).await;
            coordinator
                .send(Body::Command(command("c2", proto::CommandKind::UpdateNow)))
                .await;
            // An accepted recheck has no receipt: the first one is c2's.
            let receipt = coordinator.receipt().await;
            assert_eq!(receipt.command_id, "c2");
            assert!(!receipt.accepted);
            assert_eq!(receipt.reason, "no update_command is configured in agent.toml");
            coordinator
                .send(Body::Command(command("c3", proto::CommandKind::Collect)))
                .await;
            let receipt = coordinator.receipt().await;
            assert_eq!(
                (receipt.command_id.as_str(), receipt.reason.as_str()),
                ("c3", "no [collect] paths are configured in agent.toml")
            );
            drop(coordinator);
        })
        .await;
    lost(end);
    let (job, _policy, target) = h.jobs.try_recv().expect("the recheck is queued");
    assert_eq!(job.kind, proto::ReportKind::Recheck);
    assert_eq!(job.command_id, "c1");
    assert_eq!(job.splay, Duration::from_secs(600), "splay capped");
    assert_eq!(target.as_deref(), Some("14.0.2"));
    assert!(h.jobs.try_recv().is_err(), "nothing else queued");
}

#[tokio::test]
async fn an_allowed_update_now_is_accepted_and_queued() {
    let mut h = harness(true, placeholder_identity());
    let (transport, mut coordinator) = wire();
    let end = h
        .drive(transport, async {
            coordinator.welcome(0, now_ms()).await;
            coordinator
                .send(Body::Command(command("u1", proto::CommandKind::UpdateNow)))
                .await;
            let receipt = coordinator.receipt().await;
            assert!(receipt.accepted, "{receipt:?}");
            drop(coordinator);
        })
        .await;
    lost(end);
    let (job, _, _) = h.jobs.try_recv().expect("queued");
    assert_eq!((job.kind, job.update_now), (proto::ReportKind::UpdateNowServer, true));
}

#[tokio::test]
async fn command_expiry_is_judged_by_the_coordinator_clock() {
    const HOUR: i64 = 3_600_000;
    let mut h = harness(false, placeholder_identity());
    let (transport, mut coordinator) = wire();
    let end = h
        .drive(transport, async {
            // This endpoint's clock is two hours behind the coordinator's.
            let coordinator_now = now_ms() + 2 * HOUR;
            coordinator.welcome(0, coordinator_now).await;
            let mut stale = command("old", proto::CommandKind::Recheck);
            stale.expires_at_ms = coordinator_now - 60_000;
            coordinator.send(Body::Command(stale)).await;
            let receipt = coordinator.receipt().await;
            assert_eq!(
                (receipt.command_id.as_str(), receipt.reason.as_str()),
                ("old", "expired")
            );
            let mut fresh = command("new", proto::CommandKind::Recheck);
            fresh.expires_at_ms = coordinator_now + 60_000;
            coordinator.send(Body::Command(fresh)).await;
            drop(coordinator);
        })
        .await;
    lost(end);
    let (job, _, _) = h.jobs.try_recv().expect("the fresh command is queued");
    assert_eq!(job.command_id, "new");
}

#[tokio::test]
async fn a_full_check_queue_refuses_the_command() {
    let mut h = harness(false, placeholder_identity());
    while h.agent.enqueue(CheckJob::periodic()) {}
    let (transport, mut coordinator) = wire();
    let end = h
        .drive(transport, async {
            coordinator.welcome(0, now_ms()).await;
            coordinator
                .send(Body::Command(command("c1", proto::CommandKind::Recheck)))
                .await;
            assert_eq!(coordinator.receipt().await.reason, "agent busy; check queue full");
            drop(coordinator);
        })
        .await;
    lost(end);
}

// === heartbeats and renewal (paused clock) ===

#[tokio::test(start_paused = true)]
async fn heartbeats_follow_the_welcome_interval() {
    let mut h = harness(false, placeholder_identity());
    let (transport, mut coordinator) = wire();
    let end = h
        .drive(transport, async {
            coordinator.recv().await;
            coordinator
                .send(Body::Welcome(proto::Welcome {
                    heartbeat_interval_ms: 5_000,
                    ..Default::default()
                }))
                .await;
            let started = tokio::time::Instant::now();
            assert!(matches!(coordinator.next().await, agent_message::Body::Heartbeat(_)));
            assert_eq!(started.elapsed(), Duration::from_secs(5));
            drop(coordinator);
        })
        .await;
    lost(end);
}

/// An identity whose certificate is past half its life, and its CA.
fn identity_due_for_renewal() -> (Identity, rollcall_common::pki::CertAuthority) {
    let (authority, _ca_key) = rollcall_common::pki::CertAuthority::generate("test CA").expect("CA");
    let key = rollcall_common::pki::generate_key().expect("key");
    let csr = rollcall_common::pki::certificate_request(&key, "endpoint-1").expect("csr");
    // Back-dated five minutes by the CA, so one minute of life is past half.
    let cert_pem = authority
        .issue_agent(&csr, AGENT_ID, Duration::from_secs(60))
        .expect("issue");
    let identity = Identity {
        ca_pem: authority.cert_pem().to_string(),
        cert_pem,
        key_pem: key.serialize_pem().into(),
    };
    (identity, authority)
}

#[tokio::test(start_paused = true)]
async fn renewal_asks_again_with_the_same_key_and_saves_the_answer() {
    let (identity, authority) = identity_due_for_renewal();
    let mut h = harness(false, identity.clone());
    let (transport, mut coordinator) = wire();
    let end = h
        .drive(transport, async {
            coordinator.welcome(0, now_ms()).await;
            let agent_message::Body::Renew(first) = coordinator.recv_skipping_heartbeats().await else {
                panic!("the agent asks for renewal at once");
            };
            // Unanswered: asked again after the retry interval.
            let asked = tokio::time::Instant::now();
            let agent_message::Body::Renew(_second) = coordinator.recv_skipping_heartbeats().await else {
                panic!("the agent asks again");
            };
            assert!(asked.elapsed() >= crate::runner::renewal::RENEWAL_RETRY);
            // The first request is answered: the retry asked with the same
            // key, so the certificate still matches the key saved with it.
            let certificate_pem = authority
                .issue_agent(&first.csr_pem, AGENT_ID, Duration::from_secs(30 * 24 * 3600))
                .expect("issue");
            coordinator
                .send(Body::Renewed(proto::RenewResponse { certificate_pem }))
                .await;
            drop(coordinator);
        })
        .await;
    lost(end);
    let saved = h.agent.options.identity.load().expect("load");
    assert_ne!(saved.cert_pem, identity.cert_pem, "the renewed certificate is saved");
    assert_ne!(saved.key_pem.expose(), identity.key_pem.expose(), "with the new key");
    assert_eq!(saved.ca_pem, identity.ca_pem);
    assert!(key_matches_certificate(&saved), "the certificate is saved with its key");
    assert!(h.agent.renewal_key.is_none(), "the request is answered");
}

fn key_matches_certificate(identity: &Identity) -> bool {
    let key = rcgen::KeyPair::from_pem(identity.key_pem.expose()).expect("key");
    let der = rollcall_common::pki::first_cert_der(&identity.cert_pem).expect("certificate");
    let (_, certificate) = x509_parser::parse_x509_certificate(&der).expect("parse certificate");
    certificate.public_key().subject_public_key.data.as_ref() == key.public_key_raw()
}
