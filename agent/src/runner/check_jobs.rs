//! The check worker: runs check jobs one at a time in its own task, so a
//! slow connectivity check never stalls the stream.
//!
//! Queues: jobs (bounded, [`JOB_QUEUE`]; a full queue drops the new job —
//! an identical check is already waiting, see [`CheckQueue::try_enqueue`])
//! and results (bounded; the worker waits for room).

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rollcall_common::policy::Policy;
use rollcall_common::proto;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::checks::CheckRun;
use crate::prober::Prober;

const JOB_QUEUE: usize = 16;

/// What a check job is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckJob {
    pub kind: proto::ReportKind,
    pub command_id: String,
    pub splay: Duration,
    pub update_now: bool,
}

impl CheckJob {
    /// The periodic (and start-up) check.
    pub fn periodic() -> Self {
        CheckJob {
            kind: proto::ReportKind::Periodic,
            command_id: String::new(),
            splay: Duration::ZERO,
            update_now: false,
        }
    }
}

/// A job with the policy and target version it runs under.
pub(crate) type JobRequest = (CheckJob, Arc<Policy>, Option<String>);

/// A finished job: its check run, and the update action's outcome if it ran one.
pub(crate) type JobDone = (CheckJob, CheckRun, Option<proto::UpdateNowOutcome>);

/// The runner's ends of the worker's two queues.
pub(crate) struct CheckQueue {
    jobs: mpsc::Sender<JobRequest>,
    pub results: mpsc::Receiver<JobDone>,
}

impl CheckQueue {
    /// A queue whose other ends are returned instead of a worker (tests).
    #[cfg(test)]
    pub fn detached() -> (Self, mpsc::Receiver<JobRequest>, mpsc::Sender<JobDone>) {
        let (job_tx, job_rx) = mpsc::channel(JOB_QUEUE);
        let (result_tx, result_rx) = mpsc::channel(JOB_QUEUE);
        let queue = CheckQueue {
            jobs: job_tx,
            results: result_rx,
        };
        (queue, job_rx, result_tx)
    }

    /// Queues a job without waiting; false when the queue is full.
    pub fn try_enqueue(&self, request: JobRequest) -> bool {
        self.jobs.try_send(request).is_ok()
    }
}

/// Starts the worker; it ends at `shutdown` or when the runner drops its queue.
pub(crate) fn spawn_worker(prober: Arc<dyn Prober>, shutdown: CancellationToken) -> (CheckQueue, JoinHandle<()>) {
    let (job_tx, job_rx) = mpsc::channel::<JobRequest>(JOB_QUEUE);
    let (result_tx, result_rx) = mpsc::channel::<JobDone>(JOB_QUEUE);
    let worker = tokio::spawn(check_worker(prober, job_rx, result_tx, shutdown));
    let queue = CheckQueue {
        jobs: job_tx,
        results: result_rx,
    };
    (queue, worker)
}

async fn check_worker(
    prober: Arc<dyn Prober>,
    mut jobs: mpsc::Receiver<JobRequest>,
    results: mpsc::Sender<JobDone>,
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
