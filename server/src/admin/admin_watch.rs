//! `Watch`: the coordinator's events as a server stream. Each watcher has
//! its own broadcast receiver; one that falls behind gets a `lagged` event
//! with the number it missed, and the coordinator never waits for it.
//!
//! A watch can run for days, longer than the rights it started with: it
//! ends with `PERMISSION_DENIED` when the caller's certificate is revoked
//! (on this replica or, through the sweep, another) and with
//! `UNAUTHENTICATED` when it expires.

use std::pin::Pin;
use std::sync::Arc;

use rollcall_common::proto;
use rollcall_common::timefmt::{now_ms, rfc3339};
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::Stream;
use tonic::Status;

use crate::edge::auth::CallerCertificate;
use crate::state::Coordinator;
use rollcall_common::tls::RevocationCheck;
use std::time::Duration;

pub type EventStream = Pin<Box<dyn Stream<Item = Result<proto::Event, Status>> + Send>>;

fn to_proto(event: crate::events::Event) -> proto::Event {
    proto::Event {
        at: event.at,
        kind: event.kind.word().into(),
        agent_id: event.agent_id,
        hostname: event.hostname,
        rollout_id: event.rollout_id,
        from: event.from,
        to: event.to,
        cause: event.cause,
        detail: event.detail,
    }
}

pub fn watch(coordinator: &Arc<Coordinator>, caller: CallerCertificate) -> EventStream {
    let mut events = coordinator.events.subscribe();
    let shutdown = coordinator.shutdown.clone();
    let revocation = coordinator.revocation.clone();
    let mut revocations = revocation.subscribe();
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        let until_expiry = Duration::from_millis(u64::try_from(caller.not_after_ms - now_ms()).unwrap_or(0));
        let expiry = tokio::time::sleep(until_expiry);
        let mut expiry = std::pin::pin!(expiry);
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => return,
                () = tx.closed() => return,
                () = &mut expiry => {
                    end(&tx, Status::unauthenticated("your certificate expired; the watch ended")).await;
                    return;
                }
                changed = revocations.changed() => {
                    if changed.is_err()
                        || revocation.is_revoked(&caller.serial, caller.agent_id.as_deref())
                    {
                        end(&tx, Status::permission_denied("your certificate has been revoked; the watch ended")).await;
                        return;
                    }
                    continue;
                }
                event = events.recv() => event,
            };
            let message = match event {
                Ok(event) => to_proto(event),
                Err(RecvError::Lagged(missed)) => proto::Event {
                    at: rfc3339(now_ms()),
                    kind: "lagged".into(),
                    detail: format!("{missed} events missed"),
                    ..Default::default()
                },
                Err(RecvError::Closed) => return,
            };
            if tx.send(Ok(message)).await.is_err() {
                return;
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// Tells the watcher why its stream ends, unless it is too slow to take it:
/// a watcher that does not read must not keep this task alive.
async fn end(tx: &tokio::sync::mpsc::Sender<Result<proto::Event, Status>>, status: Status) {
    let _ = tokio::time::timeout(Duration::from_secs(5), tx.send(Err(status))).await;
}
