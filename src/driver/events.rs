//! The caller's event stream.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_lite::Stream;

use super::client::Owner;
use super::session_event::SessionEvent;
use super::shared::{Inner, Queued, Shared};

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
///
/// **Batches.** The session hands over what one read pass took (up to 64
/// frames) in one critical section and wakes the consumer once, and this
/// stream takes everything buffered at once, then hands it out without
/// locking: per batch, this stream takes the lock twice (to take the
/// batch, and once more when its last event goes out, so the session stops
/// counting the spent batch against the capacity), whatever its size;
/// neither side wakes the other per message.
/// What the stream has taken and not yet handed out still counts against
/// `event_capacity`; while reading is paused, the stream tells the session
/// so once half the capacity is free (or when it has handed out all it
/// took), and reading resumes. The order of events is unchanged.
pub struct Events {
    shared: Arc<Shared>,
    /// Taken from the shared buffer in one critical section, handed out
    /// from here without the lock.
    hand: VecDeque<Queued>,
    /// `hand.len()` as last told to the session (`Inner::in_hand`).
    told: usize,
    /// While reading is paused, events handed out before telling the
    /// session there is room again: half the capacity (at least one).
    resume_after: usize,
    _owner: Arc<Owner>,
}

impl Events {
    pub(crate) fn new(shared: Arc<Shared>, owner: Arc<Owner>) -> Self {
        let resume_after = (shared.lock().event_capacity / 2).max(1);
        Events {
            shared,
            hand: VecDeque::new(),
            told: 0,
            resume_after,
            _owner: owner,
        }
    }

    /// Tells the session how many events are still in hand, and wakes it
    /// if that ends a pause. Takes a handed-back `Unsent` off the send
    /// accounting.
    fn tell(&mut self, inner: &mut Inner, taken: Option<&Queued>) {
        if let Some(Queued::Event(SessionEvent::Unsent(messages))) = taken {
            inner.outbound.ledger.unsent_taken(messages.len());
            self.shared.notify_room(inner);
        }
        // As the session last saw it (published under this lock): the
        // shared buffer may already have been swapped into the hand.
        let was_full = self.shared.events_room() == 0;
        inner.in_hand = u32::try_from(self.hand.len()).unwrap_or(u32::MAX);
        inner.hand_capacity = u32::try_from(self.hand.capacity()).unwrap_or(u32::MAX);
        self.told = self.hand.len();
        self.shared.update_room(inner);
        if was_full && inner.events_have_room() {
            Shared::wake_session(inner);
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
        let this = self.get_mut();
        if let Some(event) = this.hand.pop_front() {
            // The lock only for an `Unsent` (its messages leave the send
            // accounting when taken) or to end a pause.
            let unsent = matches!(event, Queued::Event(SessionEvent::Unsent(_)));
            let resume =
                this.told - this.hand.len() >= this.resume_after && this.shared.events_room() == 0;
            // The hand is spent: say so now (once per batch), not at the
            // next poll, or the session keeps counting it against the
            // capacity while the consumer works on this last event.
            let spent = this.hand.is_empty() && this.told > 0;
            if unsent || resume || spent {
                let shared = this.shared.clone();
                this.tell(&mut shared.lock(), Some(&event));
            }
            return Poll::Ready(Some(event.into_event()));
        }
        let shared = this.shared.clone();
        let mut inner = shared.lock();
        if inner.events.is_empty() {
            inner.take_lagged();
        }
        // The hand is empty: swap buffers, keeping both allocations.
        std::mem::swap(&mut this.hand, &mut inner.events);
        let event = this.hand.pop_front();
        this.tell(&mut inner, event.as_ref());
        if event.is_some() || inner.finished {
            drop(inner);
            return Poll::Ready(event.map(Queued::into_event));
        }
        if !inner
            .events_waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            inner.events_waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        inner.events_alive = false;
        inner.in_hand = 0;
        // Handed-back messages nobody will read now wait for `close()`.
        let mut held = Vec::new();
        let mut outcome = Vec::new();
        let hand = std::mem::take(&mut self.hand);
        for event in hand.into_iter().chain(std::mem::take(&mut inner.events)) {
            match event {
                Queued::Event(SessionEvent::Unsent(messages)) => held.extend(messages),
                Queued::Event(SessionEvent::Closed(closed)) => outcome.extend(closed.unsent),
                _ => {}
            }
        }
        inner.outbound.ledger.events_dropped(held, outcome);
        self.shared.notify_room(&mut inner);
        self.shared.update_room(&inner);
        Shared::wake_session(&mut inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::outbound::Outbound;

    fn kinds(events: &mut Events) -> Vec<String> {
        let mut out = Vec::new();
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        while let Poll::Ready(Some(e)) = Pin::new(&mut *events).poll_next(&mut cx) {
            out.push(match e {
                SessionEvent::Lagged { missed } => format!("lagged {missed}"),
                SessionEvent::Message(_) => "message".into(),
                SessionEvent::ReconnectScheduled { attempt, .. } => format!("scheduled {attempt}"),
                other => format!("{other:?}"),
            });
        }
        out
    }

    /// The consumer handed out everything it took (its hand is empty) and
    /// is busy with the last event: the buffer holds nothing, yet the
    /// session still counts the hand as full and folds notices into Lagged.
    #[test]
    fn notices_are_not_lagged_once_the_hand_is_handed_out() {
        let core = crate::driver::core_slot::CoreSlot::new(
            std::sync::Arc::new(crate::fsm::Config::default()),
            0,
            None,
        );
        let shared = Shared::new(
            Outbound::new(crate::fsm::outbound::Ledger::new(8, None)),
            4,
            core,
        );
        let mut events = Events::new(shared.clone(), Owner::new(shared.clone()));
        let msgs = (0..3)
            .map(|_| Queued::Event(SessionEvent::Message(serde_json::json!({}))))
            .collect();
        shared.received(false, msgs);
        // Hand out all three (one swap, then two from the hand).
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        for _ in 0..3 {
            assert!(matches!(
                Pin::new(&mut events).poll_next(&mut cx),
                Poll::Ready(Some(SessionEvent::Message(_)))
            ));
        }
        // Nothing is buffered and nothing is in hand: three notices fit in 4.
        for attempt in 2..5 {
            shared.emit(SessionEvent::ReconnectScheduled {
                attempt,
                delay: std::time::Duration::ZERO,
            });
        }
        assert_eq!(
            kinds(&mut events),
            ["scheduled 2", "scheduled 3", "scheduled 4"]
        );
    }
}
