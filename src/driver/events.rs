//! The caller's event stream.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_lite::Stream;

use super::client::Owner;
use super::session_event::SessionEvent;
use super::session_event::into_event;
use super::shared::{Inner, Shared};
use crate::fsm::session::Notice;

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
    hand: VecDeque<Notice<SessionEvent>>,
    /// `hand.len()` as last told to the core.
    told: usize,
    /// While reading is paused, events handed out before telling the
    /// core there is room again: half the capacity (at least one).
    resume_after: usize,
    _owner: Arc<Owner>,
}

impl Events {
    pub(crate) fn new(shared: Arc<Shared>, owner: Arc<Owner>) -> Self {
        let resume_after = (shared.lock().core.events_capacity() / 2).max(1);
        Events {
            shared,
            hand: VecDeque::new(),
            told: 0,
            resume_after,
            _owner: owner,
        }
    }

    /// Tells the core how many events are still in hand (reading resumes
    /// once there is room), and that a handed-back `Unsent` was taken.
    fn tell(&mut self, inner: &mut Inner, taken: Option<&Notice<SessionEvent>>) {
        let unsent = match taken {
            Some(Notice::Unsent(messages)) => messages.len(),
            _ => 0,
        };
        let was_full = self.shared.events_room() == 0;
        let (in_hand, capacity) = (self.hand.len(), self.hand.capacity());
        inner
            .core
            .consumer_holds(in_hand, capacity, unsent, Instant::now());
        self.told = in_hand;
        self.shared.wake(inner);
        if was_full && inner.core.events_room() > 0 {
            // Its deadlines moved: the session re-arms its timer.
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
            // Tell the core only when it matters: a hand-back taken, a
            // pause that may end, or the last of the hand gone.
            let unsent = matches!(event, Notice::Unsent(_));
            let resume =
                this.told - this.hand.len() >= this.resume_after && this.shared.events_room() == 0;
            let spent = this.hand.is_empty() && this.told > 0;
            if unsent || resume || spent {
                let shared = this.shared.clone();
                this.tell(&mut shared.lock(), Some(&event));
            }
            return Poll::Ready(Some(into_event(event)));
        }
        let shared = this.shared.clone();
        let mut inner = shared.lock();
        inner.core.consumer_takes(&mut this.hand);
        let event = this.hand.pop_front();
        this.tell(&mut inner, event.as_ref());
        if event.is_some() || inner.core.is_finished() {
            drop(inner);
            return Poll::Ready(event.map(into_event));
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
    /// Nobody reads any more: events are discarded from now on, reading
    /// never pauses, and hand-backs still buffered wait for `close()`.
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        let hand = std::mem::take(&mut self.hand);
        inner.core.consumer_dropped(hand, Instant::now());
        self.shared.wake(&mut inner);
        Shared::wake_session(&mut inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    /// is busy with the last event: the buffer holds nothing, so notices
    /// are stored, not folded into Lagged.
    #[test]
    fn notices_are_not_lagged_once_the_hand_is_handed_out() {
        let config = std::sync::Arc::new(crate::fsm::Config::default());
        let ledger = crate::fsm::outbound::Ledger::new(8, None);
        let core = crate::driver::shared::Core::new(config, 0, ledger, 4, None, Instant::now());
        let shared = Shared::new(core);
        let mut events = Events::new(shared.clone(), Owner::new(shared.clone()));
        let mut msgs = (0..3)
            .map(|_| Notice::Message(serde_json::json!({})))
            .collect();
        shared.received(false, &mut msgs);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        for _ in 0..3 {
            assert!(matches!(
                Pin::new(&mut events).poll_next(&mut cx),
                Poll::Ready(Some(SessionEvent::Message(_)))
            ));
        }
        for attempt in 2..5 {
            let mut inner = shared.lock();
            let notice = Notice::ReconnectScheduled {
                attempt,
                delay: std::time::Duration::ZERO,
            };
            inner.core.deliver(notice, Instant::now());
        }
        assert_eq!(
            kinds(&mut events),
            ["scheduled 2", "scheduled 3", "scheduled 4"]
        );
    }
}
