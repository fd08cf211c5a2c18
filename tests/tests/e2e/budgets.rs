//! Per-agent budgets against a real coordinator over real mTLS (issue 17
//! point 3): the attacks are performed on loopback, bounded in count and
//! time, and fail. An agent that reconnects after every cut gets no fresh
//! burst; a flood of near-limit reports is cut by the byte budget; renewal
//! spam gets at most one certificate signed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rollcall_common::proto::{self, agent_message, coordinator_message::Body};
use rollcall_server::store::traits::*;
use tokio_stream::StreamExt;

use crate::faults::{burst, client_for, hello, report};
use crate::harness::{Agent, Coordinator, product_state};

/// Stored reports of `agent` once ingest is idle (the count stops moving).
async fn settled_count(coordinator: &Coordinator, agent: &str) -> u64 {
    let store = coordinator.store();
    let mut last = u64::MAX;
    loop {
        let now = store.count_reports(Some(agent)).await.unwrap();
        if now == last {
            return now;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_reconnects_after_every_cut_gets_no_fresh_budget() {
    const RATE: f64 = 1.0;
    const BURST: f64 = 20.0;
    const ROUNDS: u64 = 25;
    const PER_ROUND: u64 = 50;
    let mut coordinator = Coordinator::init();
    coordinator
        .extra_args
        .extend(["--report-rate".into(), "1".into(), "--report-burst".into(), "20".into()]);
    coordinator.start();
    let attacker = Agent::enroll(&coordinator, "reconnector", &product_state("1.0", ""), &[]);
    let acked = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut sent = 0;
    for _ in 0..ROUNDS {
        // A fresh connection and stream each round, as a reconnecting agent makes.
        let mut client = client_for(&coordinator, &attacker);
        let from = acked.load(Ordering::SeqCst) + 1;
        let round = tokio::time::timeout(
            Duration::from_secs(10),
            burst(&mut client, from, from + PER_ROUND - 1, acked.clone()),
        );
        let _ = round.await;
        sent += PER_ROUND;
    }
    let stored = settled_count(&coordinator, &attacker.id).await;
    let elapsed = started.elapsed().as_secs_f64();
    // One shared bucket: its burst plus what the rate earned meanwhile.
    // Per-stream buckets would have let ~ROUNDS × BURST = 500 in.
    let bound = (BURST + RATE * elapsed).ceil() as u64 + 1;
    eprintln!("reconnect attack: {sent} sent over {ROUNDS} streams in {elapsed:.1}s, {stored} stored (bound {bound})");
    assert!(stored <= bound, "{stored} stored, more than the budget's {bound}");
    assert!(stored < sent / 5, "the attack was not limited: {stored} of {sent}");
    let log = coordinator.log();
    assert!(log.contains("rate limited (message budget)"), "{log}");
    // Other agents are still served.
    assert!(coordinator.cli(&["agents"]).status.success());
}

/// A report of about 960 KB: four checks with 60 evidence values of 4,000
/// bytes each, within every shape limit and the 1 MiB message limit.
fn heavy_report(seq: u64) -> proto::AgentMessage {
    let evidence: Vec<proto::Evidence> = (0..60)
        .map(|index| proto::Evidence {
            key: format!("padding-{index}"),
            value: "x".repeat(4000),
        })
        .collect();
    let mut message = report(seq);
    if let Some(agent_message::Body::Report(body)) = &mut message.body {
        for check in body.checks.iter_mut().take(4) {
            check.evidence = evidence.clone();
        }
    }
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_near_limit_reports_is_cut_by_the_byte_budget() {
    const BYTES_RATE: f64 = 4096.0;
    const BYTES_BURST: f64 = 2.0 * 1024.0 * 1024.0;
    const ROUNDS: u64 = 5;
    const PER_ROUND: u64 = 8;
    let mut coordinator = Coordinator::init();
    // The message budget (200 burst) would let all 40 in; bytes must not.
    coordinator.extra_args.extend([
        "--report-bytes-rate".into(),
        "4096".into(),
        "--report-bytes-burst".into(),
        "2097152".into(),
    ]);
    coordinator.start();
    let attacker = Agent::enroll(&coordinator, "byte-flooder", &product_state("1.0", ""), &[]);
    let size = prost::Message::encoded_len(&heavy_report(1));
    assert!(size > 900_000 && size < 1024 * 1024, "{size}");
    let started = Instant::now();
    let mut stored_seqs = 0;
    for _ in 0..ROUNDS {
        let mut client = client_for(&coordinator, &attacker);
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(hello()).await.unwrap();
        let Ok(response) = client.connect(tokio_stream::wrappers::ReceiverStream::new(rx)).await else {
            continue;
        };
        let mut inbound = response.into_inner();
        let from = match inbound.next().await {
            Some(Ok(proto::CoordinatorMessage {
                body: Some(Body::Welcome(welcome)),
            })) => welcome.last_stored_seq + 1,
            other => panic!("expected welcome, got {other:?}"),
        };
        stored_seqs = from - 1;
        let sender = tokio::spawn(async move {
            for seq in from..from + PER_ROUND {
                if tx.send(heavy_report(seq)).await.is_err() {
                    return;
                }
            }
            tx.closed().await;
        });
        // Until the coordinator cuts the stream (or all are acknowledged).
        let _ = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(Ok(message)) = inbound.next().await {
                if let Some(Body::Ack(ack)) = message.body
                    && ack.seq >= from + PER_ROUND - 1
                {
                    break;
                }
            }
        })
        .await;
        sender.abort();
    }
    let stored = settled_count(&coordinator, &attacker.id).await;
    let elapsed = started.elapsed().as_secs_f64();
    let sent = ROUNDS * PER_ROUND;
    let bound = ((BYTES_BURST + BYTES_RATE * elapsed) / size as f64).floor() as u64 + 1;
    eprintln!(
        "byte flood: {sent} reports of {size} bytes sent over {ROUNDS} streams in {elapsed:.1}s, {stored} stored \
         (bound {bound}; last welcome said {stored_seqs})"
    );
    assert!(stored <= bound, "{stored} stored, more than the byte budget's {bound}");
    assert!(stored < sent / 4, "the flood was not limited: {stored} of {sent}");
    let log = coordinator.log();
    assert!(log.contains("rate limited (byte budget)"), "{log}");
}

/// Sends `count` renewal requests, then a report, on one new stream, and
/// counts the certificates signed before the report's ack (the stream
/// answers in order, so every answer to a renewal comes before it).
async fn renewals_answered(coordinator: &Coordinator, agent: &Agent, count: usize, seq: u64) -> usize {
    let mut client = client_for(coordinator, agent);
    let (tx, rx) = tokio::sync::mpsc::channel(count + 4);
    tx.send(hello()).await.unwrap();
    let mut inbound = client
        .connect(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    for _ in 0..count {
        let key = rollcall_common::pki::generate_key().unwrap();
        let csr_pem = rollcall_common::pki::certificate_request(&key, "renewer").unwrap();
        let renew = proto::AgentMessage {
            body: Some(agent_message::Body::Renew(proto::RenewRequest { csr_pem })),
        };
        tx.send(renew).await.unwrap();
    }
    tx.send(report(seq)).await.unwrap();
    let mut renewed = 0;
    let answered = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(message) = inbound.next().await {
            match message.map(|message| message.body) {
                Ok(Some(Body::Renewed(_))) => renewed += 1,
                Ok(Some(Body::Ack(ack))) if ack.seq >= seq => return true,
                Ok(_) => {}
                Err(status) => panic!("the stream was cut: {status}"),
            }
        }
        false
    })
    .await;
    assert_eq!(answered, Ok(true), "the report after the renewals was not acknowledged");
    renewed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_spam_gets_at_most_one_certificate_per_interval() {
    // A fresh 7-day certificate is not renewed at all: its window opens at
    // 40% of its life.
    let mut coordinator = Coordinator::init();
    coordinator.start();
    let fresh = Agent::enroll(&coordinator, "fresh", &product_state("1.0", ""), &[]);
    assert_eq!(renewals_answered(&coordinator, &fresh, 10, 1).await, 0);
    assert!(coordinator.log().contains("certificate not yet in its renewal window"));

    // 20 s certificates (issued 5 minutes back-dated, so in their window at
    // once); the interval is capped at a quarter of the lifetime, 5 s. Of 30
    // requests on one stream and 30 on the next, one is signed.
    coordinator.stop();
    coordinator
        .extra_args
        .extend(["--agent-cert-lifetime".into(), "20s".into()]);
    coordinator.start();
    let agent = Agent::enroll(&coordinator, "renewer", &product_state("1.0", ""), &[]);
    let started = Instant::now();
    let first = renewals_answered(&coordinator, &agent, 30, 1).await;
    let second = renewals_answered(&coordinator, &agent, 30, 2).await;
    let elapsed = started.elapsed();
    eprintln!("renewal spam: 60 requests in {elapsed:?}, {} signed", first + second);
    // Both rounds fit in one 5 s interval on this machine; were they slower,
    // a second signature would be the interval's own allowance.
    let allowed = 1 + (elapsed.as_secs() / 5) as usize;
    assert_eq!(first, 1);
    assert!(
        first + second <= allowed,
        "{} signed, at most {allowed} allowed",
        first + second
    );
    assert!(coordinator.log().contains("renewed within the renewal interval"));
}
