//! Progress of the command batches an admin is waiting on (`rollcall
//! recheck … --wait`), counted from what the ingest workers settle.
//!
//! Before, every ingest commit woke the progress loop to tally its batch in
//! the store: a `GROUP BY` over 10,000 command rows, hundreds of times
//! during one fleet-wide recheck — a third of the coordinator's CPU once
//! ingest commits became small and frequent. Here each commit adds what it
//! settled to the batches someone watches; the store tally is still the
//! truth where other replicas store answers too (see `admin_rollouts`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::store::{BatchTally, Settled};

/// The watched batches and their counts so far.
pub struct BatchProgress {
    watched: Mutex<HashMap<String, BatchTally>>,
    /// Bumped whenever a watched batch's count changes: progress loops wake
    /// on it instead of polling on a short timer.
    changed: watch::Sender<u64>,
}

impl Default for BatchProgress {
    fn default() -> Self {
        BatchProgress {
            watched: Mutex::default(),
            changed: watch::channel(0).0,
        }
    }
}

impl BatchProgress {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, BatchTally>> {
        // A panic elsewhere while holding the lock leaves counts, not
        // broken invariants: keep going with them.
        self.watched.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts counting `batch_id` (before its commands are sent, so no
    /// answer is missed); counting stops when the returned guard drops.
    pub fn watch(self: &Arc<Self>, batch_id: &str) -> Watched {
        self.lock().insert(batch_id.to_string(), BatchTally::default());
        Watched {
            progress: self.clone(),
            batch_id: batch_id.to_string(),
        }
    }

    /// Changes whenever a watched batch's count does.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Counts the settled commands of watched batches (and wakes whoever
    /// waits on [`Self::changes`]); true if any was.
    pub fn record(&self, settled: &[Settled]) -> bool {
        if settled.is_empty() {
            return false;
        }
        let counted = {
            let mut watched = self.lock();
            let mut counted = false;
            for command in settled {
                if let Some(tally) = watched.get_mut(&command.batch_id) {
                    tally.record(command);
                    counted = true;
                }
            }
            counted
        };
        if counted {
            self.changed.send_modify(|count| *count = count.wrapping_add(1));
        }
        counted
    }
}

/// A batch being counted; dropping it stops the counting.
pub struct Watched {
    progress: Arc<BatchProgress>,
    batch_id: String,
}

impl Watched {
    /// What this replica's ingest settled of the batch so far.
    pub fn tally(&self) -> BatchTally {
        self.progress.lock().get(&self.batch_id).cloned().unwrap_or_default()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.progress.lock().remove(&self.batch_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(batch: &str, version: &str, was_refused: bool) -> Settled {
        Settled {
            batch_id: batch.into(),
            answer: Some(version.into()),
            was_refused,
        }
    }

    fn refusal(batch: &str) -> Settled {
        Settled {
            batch_id: batch.into(),
            answer: None,
            was_refused: false,
        }
    }

    #[test]
    fn only_watched_batches_are_counted_and_only_while_watched() {
        let progress = Arc::new(BatchProgress::default());
        assert!(!progress.record(&[answer("b1", "14.0.1", false)]), "nobody watches b1");
        let watched = progress.watch("b1");
        let changes = progress.changes();
        assert!(progress.record(&[
            answer("b1", "14.0.1", false),
            answer("b1", "14.0.2", false),
            answer("b1", "14.0.1", false),
            answer("other", "14.0.1", false),
            refusal("b1"),
        ]));
        let tally = watched.tally();
        assert_eq!(
            tally.answered_by_version,
            [("14.0.1".to_string(), 2), ("14.0.2".to_string(), 1)]
        );
        assert_eq!(tally.refused, 1);
        assert_eq!(tally.settled(), 4);
        assert!(changes.has_changed().unwrap(), "a waiting progress loop is woken");
        // An answer to a command refused before moves it over, as the store does.
        progress.record(&[answer("b1", "14.0.2", true)]);
        assert_eq!((watched.tally().refused, watched.tally().settled()), (0, 4));
        drop(watched);
        assert!(!progress.record(&[answer("b1", "14.0.1", false)]));
        assert!(progress.lock().is_empty());
    }
}
