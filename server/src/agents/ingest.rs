//! Batched, durable ingest of agent reports.
//!
//! Streams push reports into bounded queues ([`QUEUE_CAPACITY`] in all);
//! when one is full, a stream's reader waits (backpressure reaches the agent
//! through HTTP/2 flow control). Each queue has one worker that drains up to
//! `batch` reports at a time into a single transaction, and only after the
//! commit sends each agent its cumulative acknowledgement.
//!
//! There are as many workers as the store has writers
//! ([`crate::store::IngestStore::ingest_writers`]: one for SQLite, several for PostgreSQL, whose
//! transactions commit in parallel). An agent's reports always go to the
//! same worker (by a hash of its id), so they are committed in order and a
//! cumulative acknowledgement never covers a report that another worker has
//! not committed yet. If the store refuses the batch (disk full,
//! read-only), the affected streams are ended with UNAVAILABLE: their agents
//! keep the reports in their spools and send them again after reconnecting.

use std::collections::HashMap;
use std::sync::Arc;

use rollcall_common::proto::{self, CoordinatorMessage, coordinator_message::Body};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::agents::batch_progress::{BatchProgress, Watched};
use crate::agents::health::HealthState;
use crate::agents::hub::Outbound;
use crate::agents::inbound::ValidReport;
use crate::metrics::Metrics;
use crate::store::{ReceiptRecord, ReportRecord, Store};

pub const QUEUE_CAPACITY: usize = 16 * 1024;

/// What a stream hands to the ingest workers.
pub enum IngestItem {
    /// A report that passed the edge checks (only a [`ValidReport`] is
    /// stored), acknowledged on `reply` once committed.
    Report {
        agent_id: String,
        received_at_ms: i64,
        report: Box<ValidReport>,
        reply: Outbound,
    },
    /// A command receipt: stored with the next batch, never acknowledged
    /// (the answering report is what counts).
    Receipt(ReceiptRecord),
}

impl IngestItem {
    fn agent_id(&self) -> &str {
        match self {
            IngestItem::Report { agent_id, .. } => agent_id,
            IngestItem::Receipt(receipt) => &receipt.agent_id,
        }
    }
}

#[derive(Clone)]
pub struct IngestHandle {
    queues: Arc<[mpsc::Sender<IngestItem>]>,
    /// What the commits settled of the batches an admin waits on.
    progress: Arc<BatchProgress>,
}

impl IngestHandle {
    /// Queues a report or receipt on its agent's worker; waits for room.
    /// Errors only when the coordinator is shutting down.
    pub async fn submit(&self, item: IngestItem) -> Result<(), Status> {
        let queue = &self.queues[worker_of(item.agent_id(), self.queues.len())];
        queue
            .send(item)
            .await
            .map_err(|_| Status::unavailable("coordinator is shutting down"))
    }

    /// Changes after every local commit that answered or refused a
    /// command of a watched batch.
    pub fn answers(&self) -> watch::Receiver<u64> {
        self.progress.changes()
    }

    /// Counts what local commits settle of `batch_id` until the guard drops.
    pub fn watch_batch(&self, batch_id: &str) -> Watched {
        self.progress.watch(batch_id)
    }
}

/// The worker an agent's reports go to: stable for the agent's id.
fn worker_of(agent_id: &str, workers: usize) -> usize {
    // FNV-1a: cheap, and stable across runs (unlike the std hasher).
    let hash = agent_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    usize::try_from(hash % u64::try_from(workers.max(1)).unwrap_or(1)).unwrap_or(0)
}

/// Starts the ingest workers; they stop when `shutdown` fires and their
/// queues are drained, so reports already accepted are still stored. The
/// returned task ends when every worker has.
pub fn spawn(
    store: Arc<dyn Store>,
    health: HealthState,
    metrics: Metrics,
    batch: usize,
    shutdown: CancellationToken,
) -> (IngestHandle, tokio::task::JoinHandle<()>) {
    let workers = store.ingest_writers().clamp(1, 16);
    let progress = Arc::new(BatchProgress::default());
    let mut queues = Vec::with_capacity(workers);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY / workers);
        queues.push(tx);
        tasks.spawn(run(
            store.clone(),
            health.clone(),
            metrics.clone(),
            batch,
            rx,
            progress.clone(),
            shutdown.clone(),
        ));
    }
    let task = tokio::spawn(async move {
        while let Some(result) = tasks.join_next().await {
            if let Err(error) = result {
                tracing::error!(%error, "an ingest worker failed");
            }
        }
    });
    (
        IngestHandle {
            queues: queues.into(),
            progress,
        },
        task,
    )
}

async fn run(
    store: Arc<dyn Store>,
    health: HealthState,
    metrics: Metrics,
    batch_limit: usize,
    mut rx: mpsc::Receiver<IngestItem>,
    progress: Arc<BatchProgress>,
    shutdown: CancellationToken,
) {
    let mut items = Vec::with_capacity(batch_limit);
    loop {
        let received = tokio::select! {
            count = rx.recv_many(&mut items, batch_limit) => count,
            () = shutdown.cancelled() => {
                // Drain what is queued, then stop.
                rx.close();
                rx.recv_many(&mut items, batch_limit).await
            }
        };
        if received == 0 {
            return;
        }
        flush(&store, &health, &metrics, &progress, std::mem::take(&mut items)).await;
        items.reserve(batch_limit);
    }
}

async fn flush(
    store: &Arc<dyn Store>,
    health: &HealthState,
    metrics: &Metrics,
    progress: &BatchProgress,
    items: Vec<IngestItem>,
) {
    let mut records = Vec::with_capacity(items.len());
    let mut replies = Vec::with_capacity(items.len());
    let mut receipts = Vec::new();
    for item in items {
        match item {
            IngestItem::Report {
                agent_id,
                received_at_ms,
                report,
                reply,
            } => {
                replies.push((agent_id.clone(), report.seq, received_at_ms, reply));
                records.push(ReportRecord {
                    agent_id,
                    received_at_ms,
                    report: report.into_inner(),
                });
            }
            IngestItem::Receipt(receipt) => receipts.push(receipt),
        }
    }
    let receipt_count = receipts.len();
    let started = std::time::Instant::now();
    match store.ingest(records, receipts).await {
        Ok(settled) => {
            tracing::debug!(reports = replies.len(), receipts = receipt_count, took = ?started.elapsed(), "ingest batch committed");
            let committed_ms = rollcall_common::timefmt::now_ms();
            metrics.reports_ingested(
                replies
                    .iter()
                    .map(|(_, _, received_at_ms, _)| committed_ms - received_at_ms),
            );
            health.store_ok();
            progress.record(&settled);
            // One acknowledgement per agent: the highest seq in this batch.
            let mut highest: HashMap<&str, (u64, &Outbound)> = HashMap::new();
            for (agent_id, seq, _, reply) in &replies {
                let entry = highest.entry(agent_id.as_str()).or_insert((0, reply));
                if *seq >= entry.0 {
                    *entry = (*seq, reply);
                }
            }
            for (seq, reply) in highest.values() {
                // Acks are cumulative: if this one is dropped on a full queue,
                // the next covers it, and a re-sent report is stored once.
                let _ = reply.try_send(Ok(CoordinatorMessage {
                    body: Some(Body::Ack(proto::Ack { seq: *seq })),
                }));
            }
        }
        Err(error) => {
            tracing::error!(%error, reports = replies.len(), receipts = receipt_count, "store refused a batch of reports; agents will re-send");
            health.store_failed(&error.to_string());
            metrics.reports_refused(replies.len());
            // The agents re-send; they learn that the store failed, never
            // its text (logged above; see status::for_agent).
            let status = Status::unavailable("the coordinator cannot store reports right now; retry later");
            for (_, _, _, reply) in &replies {
                let _ = reply.try_send(Err(status.clone()));
            }
        }
    }
}
