//! Wake-ups between replicas through LISTEN/NOTIFY: a notice is sent after
//! its change committed (never from inside an ingest transaction), and one
//! listening connection per replica, outside the pool, reconnects with
//! backoff and asks for a full resync after every (re)connection.
//!
//! Overflow: the consumer's queue holds [`NOTICE_QUEUE`] notices; when it is
//! full the listener waits, and PostgreSQL keeps later notifications queued
//! server-side.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

use super::errors::map_err;
use super::pool::PgTarget;
use crate::store::{Notice, StoreError, StoreResult};

/// The NOTIFY channel replicas listen on.
pub const CHANNEL: &str = "rollcall";
/// Wake-ups queued for the replica's consumer. When it is full the listener
/// waits (PostgreSQL keeps later notifications queued server-side); the
/// consumer only reads rows and pushes to streams, so it is quick.
pub const NOTICE_QUEUE: usize = 256;
/// NOTIFY payloads must stay below 8000 bytes; a longer agent list becomes
/// "any agent".
const MAX_PAYLOAD: usize = 7000;

/// What travels in a NOTIFY payload.
#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope {
    from: String,
    notice: Notice,
}

pub(super) fn encode_notice(replica: &str, notice: Notice) -> String {
    let envelope = Envelope {
        from: replica.to_string(),
        notice,
    };
    let text = serde_json::to_string(&envelope).unwrap_or_default();
    if text.len() <= MAX_PAYLOAD {
        return text;
    }
    let any = Envelope {
        from: replica.to_string(),
        notice: Notice::Commands { agent_ids: Vec::new() },
    };
    serde_json::to_string(&any).unwrap_or_default()
}

/// The notice in a payload, or `None` when this replica sent it. A payload
/// that does not parse (another rollcall version) asks for a full resync.
fn decode_notice(payload: &str, replica: &str) -> Option<Notice> {
    match serde_json::from_str::<Envelope>(payload) {
        Ok(envelope) if envelope.from == replica => None,
        Ok(envelope) => Some(envelope.notice),
        Err(error) => {
            tracing::warn!(%error, "unreadable wake-up; resynchronising");
            Some(Notice::Resync)
        }
    }
}

/// How often the listening connection proves it is alive.
const LISTEN_PROBE: Duration = Duration::from_secs(30);

/// Listens until `shutdown` (or the store closes), reconnecting with backoff.
pub(super) async fn listen(target: PgTarget, replica: String, tx: mpsc::Sender<Notice>, shutdown: CancellationToken) {
    let mut delay = Duration::from_millis(200);
    loop {
        let started = tokio::time::Instant::now();
        let result = tokio::select! {
            () = shutdown.cancelled() => return,
            result = listen_once(&target, &replica, &tx) => result,
        };
        match result {
            Ok(()) => return,
            Err(error) => tracing::warn!(%error, retry_in = ?delay, "lost the wake-up channel; reconnecting"),
        }
        if started.elapsed() > Duration::from_secs(60) {
            delay = Duration::from_millis(200);
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// One listening connection; `Ok` when the consumer went away.
async fn listen_once(target: &PgTarget, replica: &str, tx: &mpsc::Sender<Notice>) -> StoreResult<()> {
    let (client, mut connection) = target.config.connect(target.tls.clone()).await.map_err(map_err)?;
    // The connection is driven here, not in a task: notifications arrive
    // through it, and it lives exactly as long as this listener.
    let driver = async {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(note))) => {
                    if let Some(notice) = decode_notice(note.payload(), replica)
                        && tx.send(notice).await.is_err()
                    {
                        return Ok(());
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(map_err(error)),
                None => return Err(StoreError::Unavailable("the wake-up connection closed".into())),
            }
        }
    };
    let listener = async {
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(map_err)?;
        tracing::info!(replica, "listening for wake-ups from other replicas");
        if tx.send(Notice::Resync).await.is_err() {
            return Ok(());
        }
        loop {
            tokio::time::sleep(LISTEN_PROBE).await;
            match tokio::time::timeout(Duration::from_secs(10), client.simple_query("SELECT 1")).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return Err(map_err(error)),
                Err(_) => {
                    return Err(StoreError::Unavailable(
                        "the wake-up connection stopped answering".into(),
                    ));
                }
            }
        }
    };
    tokio::select! {
        result = driver => result,
        result = listener => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_and_own_notices_are_ignored() {
        let notice = Notice::Commands {
            agent_ids: vec!["a".into(), "b".into()],
        };
        let payload = encode_notice("r1", notice.clone());
        assert_eq!(decode_notice(&payload, "r2"), Some(notice));
        assert_eq!(decode_notice(&payload, "r1"), None);
        assert_eq!(decode_notice("not json", "r2"), Some(Notice::Resync));
    }

    #[test]
    fn long_agent_lists_become_any_agent() {
        let agent_ids = (0..1000).map(|index| format!("agent-{index:032}")).collect();
        let payload = encode_notice("r1", Notice::Commands { agent_ids });
        assert!(payload.len() < MAX_PAYLOAD);
        assert_eq!(
            decode_notice(&payload, "r2"),
            Some(Notice::Commands { agent_ids: Vec::new() })
        );
    }
}
