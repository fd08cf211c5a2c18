//! Batched, durable ingest of agent reports.
//!
//! Streams push reports into one bounded queue ([`QUEUE_CAPACITY`]); when it
//! is full, a stream's reader waits (backpressure reaches the agent through
//! HTTP/2 flow control). One worker drains up to `batch` reports at a time
//! into a single transaction, and only after the commit sends each agent its
//! cumulative acknowledgement. If the store refuses the batch (disk full,
//! read-only), the affected streams are ended with UNAVAILABLE: their agents
//! keep the reports in their spools and send them again after reconnecting.

use std::collections::HashMap;
use std::sync::Arc;

use rollcall_common::proto::{self, CoordinatorMessage, coordinator_message::Body};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::health::HealthState;
use crate::hub::Outbound;
use crate::metrics::Metrics;
use crate::store::{ReportRecord, Store};

pub const QUEUE_CAPACITY: usize = 16 * 1024;

pub struct IngestItem {
    pub record: ReportRecord,
    pub reply: Outbound,
}

#[derive(Clone)]
pub struct IngestHandle {
    tx: mpsc::Sender<IngestItem>,
}

impl IngestHandle {
    /// Queues a report; waits for room. Errors only when the coordinator is
    /// shutting down.
    pub async fn submit(&self, item: IngestItem) -> Result<(), Status> {
        self.tx
            .send(item)
            .await
            .map_err(|_| Status::unavailable("coordinator is shutting down"))
    }
}

/// Starts the ingest worker; it stops when `shutdown` fires and the queue is
/// drained, so reports already accepted are still stored.
pub fn spawn(
    store: Arc<dyn Store>,
    health: HealthState,
    metrics: Metrics,
    batch: usize,
    shutdown: CancellationToken,
) -> (IngestHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    let task = tokio::spawn(run(store, health, metrics, batch, rx, shutdown));
    (IngestHandle { tx }, task)
}

async fn run(
    store: Arc<dyn Store>,
    health: HealthState,
    metrics: Metrics,
    batch_limit: usize,
    mut rx: mpsc::Receiver<IngestItem>,
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
        flush(&store, &health, &metrics, std::mem::take(&mut items)).await;
        items.reserve(batch_limit);
    }
}

async fn flush(store: &Arc<dyn Store>, health: &HealthState, metrics: &Metrics, items: Vec<IngestItem>) {
    let records: Vec<ReportRecord> = items.iter().map(|item| item.record.clone()).collect();
    match store.ingest(records).await {
        Ok(()) => {
            let committed_ms = rollcall_common::timefmt::now_ms();
            metrics.reports_ingested(items.iter().map(|item| committed_ms - item.record.received_at_ms));
            health.store_ok();
            // One acknowledgement per agent: the highest seq in this batch.
            let mut highest: HashMap<&str, (u64, &Outbound)> = HashMap::new();
            for item in &items {
                let entry = highest.entry(item.record.agent_id.as_str()).or_insert((0, &item.reply));
                if item.record.report.seq >= entry.0 {
                    *entry = (item.record.report.seq, &item.reply);
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
            tracing::error!(%error, reports = items.len(), "store refused a batch of reports; agents will re-send");
            health.store_failed(&error.to_string());
            metrics.reports_refused(items.len());
            for item in &items {
                let _ = item.reply.try_send(Err(Status::unavailable(format!(
                    "coordinator cannot store reports: {error}"
                ))));
            }
        }
    }
}
