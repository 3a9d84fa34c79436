//! What the session tells the handles, each in one critical section: the
//! status they see, the events they read, and the outbound moments that
//! must change together with a status.

use std::sync::atomic::Ordering;
use std::task::{Context, Waker};
use std::time::{Instant, SystemTime};

use crate::fsm::{Action, Attempt, CloseReason, Event, Status};

use super::acking::Acking;
use super::inbound;
use super::outbound::WireError;
use super::rtt::Pong;
use super::session_event::{CloseOutcome, KeptResponse, SessionEvent, UpgradeResponse};
use super::shared::{Inner, Queued, Shared, notify_all};
use super::transport::connect::Socket;
use super::transport::error::ConnectError;

impl Shared {
    /// Keeps the session task's waker, registered before each pass so a
    /// command or send that lands meanwhile still wakes it.
    pub(crate) fn register(&self, waker: &Waker) {
        let mut inner = self.lock();
        if !inner
            .session_waker
            .as_ref()
            .is_some_and(|w| w.will_wake(waker))
        {
            inner.session_waker = Some(waker.clone());
        }
    }

    /// The handles' inputs as the machine's events, in order: a change of
    /// the read pause (tracked in `read_paused`), then a close and a
    /// reconnect-now asked for before the machine started; and whether a
    /// handle left a command (the machine may hold actions to carry out).
    pub(crate) fn inputs(&self, read_paused: &mut bool) -> ([Option<Event>; 3], bool) {
        let full = self.events_room.load(Ordering::Acquire) == 0;
        let pause = (full != *read_paused).then(|| {
            *read_paused = full;
            if full {
                Event::ReadPaused
            } else {
                Event::ReadResumed
            }
        });
        if !self.has_commands.swap(false, Ordering::AcqRel) {
            return ([pause, None, None], false);
        }
        let mut inner = self.lock();
        let reconnect = std::mem::take(&mut inner.commands.reconnect_now);
        let close = inner.commands.close.take().map(|close| *close);
        let events = [
            pause,
            close.map(|(code, reason)| Event::Close { code, reason }),
            reconnect.then_some(Event::ReconnectNow),
        ];
        (events, true)
    }

    /// Logs a notice (never a message: those may carry anything) and hands
    /// it to the consumer; a disconnect is kept for the next hello.
    pub(crate) fn notice(&self, url: &str, event: SessionEvent) {
        self.notice_locked(&mut self.lock(), url, event);
    }

    /// [`notice`](Self::notice) under a lock the caller holds.
    pub(crate) fn notice_locked(&self, inner: &mut Inner, url: &str, event: SessionEvent) {
        log::debug!("ws-lifecycle {url}: {event:?}");
        if let SessionEvent::Disconnected { code, reason, .. } = &event {
            inner.last_disconnect = Some(Box::new((*code, reason.clone())));
            inner.tally.disconnected();
        }
        self.push_locked(inner, event);
    }

    /// A status change (`Action::StatusChanged`), in the critical section
    /// in which the machine made it: its event, the counters, and the
    /// waiters woken. The handles read the status from the machine.
    pub(crate) fn status_changed(&self, inner: &mut Inner, url: &str, change: Action) {
        let Action::StatusChanged {
            from,
            to,
            cause,
            attempt,
        } = change
        else {
            return;
        };
        log::debug!("ws-lifecycle {url}: {from} -> {to} (cause {cause}, attempt {attempt})");
        inner.tally.status_changed(cause);
        inner.publish(to, attempt);
        let event = SessionEvent::Status {
            from,
            to,
            cause,
            attempt,
        };
        self.push_locked(inner, event);
        notify_all(&self.changed);
    }

    /// `FlushQueue`, right after the machine entered Open and in the same
    /// critical section: this connection's after-ack frames and the queue's
    /// flush, then the `Acked` event, so a send can neither overtake the
    /// after-ack frames or queued messages nor see Open and be refused, and
    /// `Acked` follows `Open` at once.
    pub(crate) fn acked(&self, inner: &mut Inner, attempt: Attempt, acking: Option<Box<Acking>>) {
        let (ack, after_ack) = match acking {
            Some(acking) => (Some(acking.ack), acking.frames),
            None => (None, Vec::new()),
        };
        inner.outbound.ledger.acked(after_ack);
        if let Some(ack) = ack {
            inner.last_ack = Some(ack.to_string().into_boxed_str());
            self.push_locked(inner, SessionEvent::Acked { attempt, ack });
        }
        // Open's status change woke the waiters already; they look once
        // this critical section ends, and see the flush with it.
    }

    /// The link of `attempt` finished opening, or failed to: the response
    /// or the typed error for the handles, the event for the machine.
    pub(crate) fn link_opened(
        &self,
        url: &str,
        attempt: Attempt,
        opened: Result<UpgradeResponse, ConnectError>,
    ) -> Event {
        match opened {
            Ok(upgrade) => {
                self.upgraded(upgrade);
                Event::SocketOpened { attempt }
            }
            Err(error) => {
                let failure = error.failure(SystemTime::now());
                log::debug!("ws-lifecycle {url}: attempt {attempt} failed to connect: {error}");
                self.emit(SessionEvent::ConnectFailed { attempt, error });
                Event::ConnectFailed { attempt, failure }
            }
        }
    }

    /// The upgrade succeeded: a fresh link for the outbound side, the
    /// response for the handles.
    fn upgraded(&self, upgrade: UpgradeResponse) {
        let mut inner = self.lock();
        inner.outbound.ledger.opened();
        inner.outbound.link_changed();
        inner.tally.connected(Instant::now());
        inner.last_response = Some(KeptResponse::new(&upgrade));
        if inner.events_alive {
            self.push_locked(&mut inner, SessionEvent::Upgraded(upgrade));
        }
    }

    /// Counts what the transport took outside a write pass (tungstenite
    /// flushes its buffer when it answers a ping while reading).
    /// Also publishes the meter's other news (bytes, frames read, a pong)
    /// before what was read is delivered.
    pub(crate) fn settle(&self, wire: &mut Socket) {
        let mut inner = self.lock();
        harvest(&mut inner, wire);
        self.notify_room(&mut inner);
    }

    /// Inbound frames were read: their notices for the caller, all in one
    /// critical section with one wake-up, and whether tungstenite queued an
    /// answer (a pong, a close reply) to flush.
    pub(crate) fn received(&self, flush: bool, mut notices: Vec<Queued>) {
        let mut inner = self.lock();
        if flush {
            inner.outbound.needs_flush();
        }
        if !notices.is_empty() {
            // `push_event` wakes the consumer on the first push only (it
            // takes the waker).
            notices.drain(..).for_each(|n| inner.push(n));
            self.update_room(&inner);
        }
        drop(inner);
        inbound::recycle(notices);
    }

    /// One write pass on the link's socket.
    pub(crate) fn write(&self, wire: &mut Socket, cx: &mut Context<'_>) -> Result<bool, WireError> {
        let mut inner = self.lock();
        let written = inner.outbound.poll_write(wire, cx);
        harvest(&mut inner, wire);
        self.notify_room(&mut inner);
        written
    }

    /// The link is being dropped: one non-blocking chance for a pending
    /// close frame, then what the link never wrote is handed back.
    pub(crate) fn link_dropped(
        &self,
        inner: &mut Inner,
        wire: Option<&mut Socket>,
        cx: &mut Context<'_>,
    ) {
        if let Some(wire) = wire {
            inner.outbound.write_before_drop(wire, cx);
            harvest(inner, wire);
        }
        inner.tally.link_gone();
        let events_alive = inner.events_alive;
        inner.outbound.link_changed();
        if let Some(unsent) = inner.outbound.ledger.lost(events_alive) {
            self.push_locked(inner, SessionEvent::Unsent(unsent));
        }
        self.notify_room(inner);
    }

    /// The session is over (`unsettled`: its link, if frames the transport
    /// took are not counted yet). Messages never written go into the `Closed`
    /// event when nobody asked to close and someone reads; else they wait
    /// for `close()`.
    pub(crate) fn ended(&self, reason: CloseReason, unsettled: Option<&mut Socket>) {
        let mut inner = self.lock();
        if let Some(wire) = unsettled {
            // Frames the transport took are written, not handed back.
            harvest(&mut inner, wire);
        }
        inner.tally.link_gone();
        let for_close = inner.outbound.ledger.is_closing() || !inner.events_alive;
        inner.outbound.link_changed();
        let unsent = inner.outbound.ledger.finished(for_close);
        let attempt = inner.attempt;
        inner.publish(Status::Closed, attempt);
        self.push_locked(
            &mut inner,
            SessionEvent::Closed(CloseOutcome { reason, unsent }),
        );
        inner.finished = true;
        inner.core.finish();
        inner.session_waker = None;
        if let Some(w) = inner.events_waker.take() {
            w.wake();
        }
        drop(inner);
        notify_all(&self.changed);
        notify_all(&self.space);
    }
}

/// Counts the frames the transport took (the send accounting, the ping's
/// clock) and adds the meter's traffic to the stats; a pong answering our
/// latest ping is a round trip. Runs in the pass that read the pong, so
/// its clock is read here rather than kept in every socket.
fn harvest(inner: &mut Inner, wire: &mut Socket) {
    inner.outbound.settle(wire);
    let traffic = wire.get_mut().take_traffic();
    inner.tally.traffic(&traffic);
    let pong = traffic.pong.map(|tag| Pong {
        tag,
        at: Instant::now(),
    });
    if let Some(rtt) = pong.and_then(|pong| inner.outbound.pong(pong)) {
        inner.tally.round_trip(rtt);
    }
}

#[cfg(test)]
mod tests {
    use super::super::core_slot::CoreSlot;
    use super::super::outbound::Outbound;
    use super::*;
    use crate::fsm::Cause;

    #[test]
    fn open_and_acked_are_never_folded_into_lagged() {
        let core = CoreSlot::new(std::sync::Arc::new(crate::fsm::Config::default()), 0, None);
        let shared = Shared::new(
            Outbound::new(crate::fsm::outbound::Ledger::new(8, None)),
            1,
            core,
        );
        let change = |to| Action::StatusChanged {
            from: Status::Connecting,
            to,
            cause: Cause::SocketOpened,
            attempt: 1,
        };
        // The buffer (capacity 1) fills; the next notice is counted, but
        // Open and its ack always go in, in that order.
        let mut inner = shared.lock();
        shared.status_changed(&mut inner, "ws://x", change(Status::AwaitingAck));
        shared.push_locked(
            &mut inner,
            SessionEvent::ReconnectScheduled {
                attempt: 2,
                delay: std::time::Duration::ZERO,
            },
        );
        shared.status_changed(&mut inner, "ws://x", change(Status::Open));
        let acking = Acking {
            attempt: 1,
            ack: serde_json::json!({"type": "hello_ack"}),
            frames: Vec::new(),
        };
        shared.acked(&mut inner, 1, Some(Box::new(acking)));
        let kinds: Vec<String> = inner
            .events
            .iter()
            .map(|e| match e {
                Queued::Event(SessionEvent::Status { to, .. }) => format!("status {to}"),
                Queued::Event(SessionEvent::Lagged { missed }) => format!("lagged {missed}"),
                Queued::Event(SessionEvent::Acked { attempt, ack }) => {
                    format!("acked {attempt} {ack}")
                }
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "status awaiting_ack",
                "lagged 1",
                "status open",
                r#"acked 1 {"type":"hello_ack"}"#
            ]
        );
        assert_eq!(
            inner.last_ack(),
            Some(serde_json::json!({"type": "hello_ack"}))
        );
    }
}
