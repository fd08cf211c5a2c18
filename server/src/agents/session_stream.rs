//! The outbound half of an agent stream: messages from the session's bounded
//! queue, ending when the session is cancelled (shutdown, revocation, a
//! newer stream) or right after an error status is sent. Messages already
//! queued are sent before a cancellation takes effect, so an agent learns
//! why it was cut off.

use std::pin::Pin;
use std::task::{Context, Poll};

use rollcall_common::proto::CoordinatorMessage;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::Status;

pub struct SessionStream {
    rx: mpsc::Receiver<Result<CoordinatorMessage, Status>>,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    finished: bool,
}

impl SessionStream {
    pub fn new(rx: mpsc::Receiver<Result<CoordinatorMessage, Status>>, cancel: CancellationToken) -> Self {
        SessionStream {
            rx,
            cancelled: Box::pin(cancel.cancelled_owned()),
            finished: false,
        }
    }
}

impl Stream for SessionStream {
    type Item = Result<CoordinatorMessage, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(item)) => {
                if item.is_err() {
                    self.finished = true;
                }
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => {
                self.finished = true;
                Poll::Ready(None)
            }
            Poll::Pending => match self.cancelled.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.finished = true;
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
