//! What the session tells the handles, each in one critical section: the
//! status they see, the events they read, and the outbound moments that
//! must change together with a status.

use std::task::{Context, Waker};

use crate::fsm::{Attempt, Cause, CloseReason, Status};

use super::connect::Socket;
use super::outbound::WireError;
use super::session_event::{CloseOutcome, SessionEvent, UpgradeResponse};
use super::shared::Shared;

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

    /// The pending close request and reconnect request, taken.
    pub(crate) fn take_commands(&self) -> (Option<(u16, String)>, bool) {
        let mut inner = self.lock();
        let reconnect = std::mem::take(&mut inner.commands.reconnect_now);
        (inner.commands.close.take(), reconnect)
    }

    /// A status other than Open; `closed` is published with Closed, so no
    /// handle sees Closed without a reason.
    pub(crate) fn status_changed(
        &self,
        (from, to, cause, attempt): (Status, Status, Cause, Attempt),
        closed: Option<CloseReason>,
    ) {
        let mut inner = self.lock();
        inner.publish(to, attempt);
        if closed.is_some() {
            inner.closed = closed;
        }
        let event = SessionEvent::Status {
            from,
            to,
            cause,
            attempt,
        };
        self.push_locked(&mut inner, event);
        drop(inner);
        self.changed.notify(usize::MAX);
    }

    /// `FlushQueue`: the queue's flush, Open and its event in one critical
    /// section, so a send can neither overtake queued messages nor see
    /// Open and be refused.
    pub(crate) fn acked(&self, from: Status, cause: Cause, attempt: Attempt) {
        let mut inner = self.lock();
        inner.outbound.acked();
        inner.publish(Status::Open, attempt);
        let to = Status::Open;
        let event = SessionEvent::Status {
            from,
            to,
            cause,
            attempt,
        };
        self.push_locked(&mut inner, event);
        drop(inner);
        self.changed.notify(usize::MAX);
    }

    /// The upgrade succeeded: a fresh link for the outbound side, the
    /// response for the handles.
    pub(crate) fn upgraded(&self, upgrade: UpgradeResponse) {
        let mut inner = self.lock();
        inner.outbound.opened();
        if inner.events_alive {
            self.push_locked(&mut inner, SessionEvent::Upgraded(upgrade.clone()));
        }
        inner.last_response = Some(upgrade);
    }

    /// One write pass on the link's socket.
    pub(crate) fn write(&self, wire: &mut Socket, cx: &mut Context<'_>) -> Result<bool, WireError> {
        let mut inner = self.lock();
        let written = inner.outbound.poll_write(wire, cx);
        self.notify_room(&mut inner);
        written
    }

    /// The link is being dropped while the machine is in `now`: one
    /// non-blocking chance for a pending close frame, then what the link
    /// never wrote is handed back.
    pub(crate) fn link_dropped(
        &self,
        wire: Option<&mut Socket>,
        now: Status,
        cx: &mut Context<'_>,
    ) {
        let mut inner = self.lock();
        if let Some(wire) = wire {
            inner.outbound.write_before_drop(wire, cx);
        }
        // The machine has moved on: a send from now on must not read
        // "Open" (the Status event follows in this same drain).
        inner.status = now;
        let events_alive = inner.events_alive;
        if let Some(unsent) = inner.outbound.lost(events_alive) {
            self.push_locked(&mut inner, SessionEvent::Unsent(unsent));
        }
        self.notify_room(&mut inner);
    }

    /// The session is over. Messages never written go into the `Closed`
    /// event when nobody asked to close and someone reads; else they wait
    /// for `close()`.
    pub(crate) fn ended(&self, reason: CloseReason) {
        let mut inner = self.lock();
        let for_close = inner.outbound.is_closing() || !inner.events_alive;
        let unsent = inner.outbound.finished(for_close);
        let attempt = inner.attempt;
        inner.publish(Status::Closed, attempt);
        inner.closed = Some(reason.clone());
        self.push_locked(
            &mut inner,
            SessionEvent::Closed(CloseOutcome { reason, unsent }),
        );
        inner.finished = true;
        inner.session_waker = None;
        if let Some(w) = inner.events_waker.take() {
            w.wake();
        }
        drop(inner);
        self.changed.notify(usize::MAX);
        self.space.notify(usize::MAX);
    }
}
