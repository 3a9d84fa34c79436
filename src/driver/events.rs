//! The caller's event stream.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_lite::Stream;

use super::client::Owner;
use super::session_event::SessionEvent;
use super::shared::Shared;

/// The session's events, in order, as a [`Stream`]. Ends after
/// [`SessionEvent::Closed`].
///
/// The session lives while any [`Client`](super::Client) clone or this
/// stream is alive, so a read-only consumer may drop its `Client`.
///
/// **Drain it.** It is bounded by
/// [`DeliveryConfig::event_capacity`](super::DeliveryConfig::event_capacity).
/// When it is full the session stops reading the socket: TCP backpressure
/// reaches the broker and memory stays bounded. Time spent not reading is
/// not silence: while reading is paused the stale and ack deadlines do not
/// run and no new attempt starts (pings and the close grace still do), so a
/// slow consumer never makes a healthy link look dead. Notices that find
/// the buffer full are counted and reported as one [`SessionEvent::Lagged`]
/// once there is room; [`Client::status`](super::Client::status) tells the
/// current state. Dropping `Events` is fine: events are then discarded and
/// the socket is always read. Messages the session hands back then wait
/// for [`Client::close`](super::Client::close), and until then they count
/// against the send capacity (nothing is dropped silently): a session
/// without a reader whose links keep failing eventually refuses sends with
/// `Full`.
pub struct Events {
    shared: Arc<Shared>,
    _owner: Arc<Owner>,
}

impl Events {
    pub(crate) fn new(shared: Arc<Shared>, owner: Arc<Owner>) -> Self {
        Events {
            shared,
            _owner: owner,
        }
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Stream for Events {
    type Item = SessionEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SessionEvent>> {
        let mut inner = self.shared.lock();
        if let Some(event) = inner.events.pop_front() {
            if let SessionEvent::Unsent(messages) = &event {
                inner.outbound.unsent_taken(messages.len());
                self.shared.notify_room(&mut inner);
            }
            if inner.events.len() + 1 >= inner.event_capacity {
                // It was full: the session may be waiting to read again.
                self.shared.update_room(&inner);
                Shared::wake_session(&mut inner);
            }
            return Poll::Ready(Some(event));
        }
        inner.take_lagged();
        if let Some(lagged) = inner.events.pop_front() {
            return Poll::Ready(Some(lagged));
        }
        if inner.finished {
            return Poll::Ready(None);
        }
        inner.events_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        inner.events_alive = false;
        // Handed-back messages nobody will read now wait for `close()`.
        let mut held = Vec::new();
        let mut outcome = Vec::new();
        for event in std::mem::take(&mut inner.events) {
            match event {
                SessionEvent::Unsent(messages) => held.extend(messages),
                SessionEvent::Closed(closed) => outcome.extend(closed.unsent),
                _ => {}
            }
        }
        inner.outbound.events_dropped(held, outcome);
        self.shared.notify_room(&mut inner);
        self.shared.update_room(&inner);
        Shared::wake_session(&mut inner);
    }
}
