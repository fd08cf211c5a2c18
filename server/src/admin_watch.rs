//! `Watch`: the coordinator's events as a server stream. Each watcher has
//! its own broadcast receiver; one that falls behind gets a `lagged` event
//! with the number it missed, and the coordinator never waits for it.

use std::pin::Pin;
use std::sync::Arc;

use rollcall_common::proto;
use rollcall_common::timefmt::{now_ms, rfc3339};
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::Stream;
use tonic::Status;

use crate::state::Coordinator;

pub type EventStream = Pin<Box<dyn Stream<Item = Result<proto::Event, Status>> + Send>>;

fn to_proto(event: crate::events::Event) -> proto::Event {
    proto::Event {
        at: event.at,
        kind: event.kind,
        agent_id: event.agent_id,
        hostname: event.hostname,
        rollout_id: event.rollout_id,
        from: event.from,
        to: event.to,
        cause: event.cause,
        detail: event.detail,
    }
}

pub fn watch(coordinator: &Arc<Coordinator>) -> EventStream {
    let mut events = coordinator.events.subscribe();
    let shutdown = coordinator.shutdown.clone();
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => return,
                () = tx.closed() => return,
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
