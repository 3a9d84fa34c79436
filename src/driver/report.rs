//! The session's side of the shared state: what it read, wrote and saw
//! handed to the core, each in one critical section, and the waiters woken.

use std::task::{Context, Waker};
use std::time::{Instant, SystemTime};

use crate::fsm::session::Notice;
use crate::fsm::{Attempt, CloseReason, Event};

use super::outbound::WireError;
use super::session_event::SessionEvent;
use super::shared::{Inner, Shared, notify_all};
use super::transport::connect::Socket;
use super::transport::error::ConnectError;
use super::transport::upgrade::{KeptResponse, UpgradeResponse};

impl Shared {
    /// Hands the driver's own notice to the consumer.
    pub(crate) fn report(&self, event: SessionEvent) {
        let mut inner = self.lock();
        let now = std::time::Instant::now();
        inner.core.deliver(Notice::Report(event), now);
        self.wake(&mut inner);
    }

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

    /// The link of `attempt` finished opening, or failed to: the response
    /// or the typed error for the handles, the event for the machine.
    pub(crate) fn link_opened(
        &self,
        url: &str,
        attempt: Attempt,
        opened: Result<UpgradeResponse, ConnectError>,
    ) -> Event {
        if let Err(error) = &opened {
            log::debug!("ws-lifecycle {url}: attempt {attempt} failed to connect: {error}");
        }
        let mut inner = self.lock();
        let now = Instant::now();
        let event = match opened {
            Ok(upgrade) => {
                inner.core.opened(now);
                inner.flush = false;
                inner.last_response = Some(KeptResponse::new(&upgrade));
                let upgraded = SessionEvent::Upgraded(upgrade);
                inner.core.deliver(Notice::Report(upgraded), now);
                Event::SocketOpened { attempt }
            }
            Err(error) => {
                let failure = error.failure(SystemTime::now());
                let failed = SessionEvent::ConnectFailed { attempt, error };
                inner.core.deliver(Notice::Report(failed), now);
                Event::ConnectFailed { attempt, failure }
            }
        };
        self.wake(&mut inner);
        event
    }

    /// Counts what the transport took outside a write pass (tungstenite
    /// flushes its buffer when it answers a ping while reading), and the
    /// meter's other news (bytes, frames read, a pong), published before
    /// what was read is delivered.
    pub(crate) fn settle(&self, wire: &mut Socket) {
        let mut inner = self.lock();
        harvest(&mut inner, wire);
        self.wake(&mut inner);
    }

    /// Inbound frames were read: handed to the consumer in one critical
    /// section with one wake-up; and whether tungstenite queued an answer
    /// (a pong, a close reply) to flush.
    pub(crate) fn received(&self, flush: bool, notices: &mut Vec<Notice<SessionEvent>>) {
        let mut inner = self.lock();
        inner.flush |= flush;
        if !notices.is_empty() {
            let now = Instant::now();
            for notice in notices.drain(..) {
                inner.core.deliver(notice, now);
            }
            self.wake(&mut inner);
        }
    }

    /// One write pass on the link's socket.
    pub(crate) fn write(&self, wire: &mut Socket, cx: &mut Context<'_>) -> Result<bool, WireError> {
        let mut inner = self.lock();
        let written = super::outbound::poll_write(&mut inner, wire, cx);
        harvest(&mut inner, wire);
        self.wake(&mut inner);
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
            super::outbound::write_before_drop(inner, wire, cx);
            harvest(inner, wire);
        }
        inner.flush = false;
        inner.core.link_dropped(Instant::now());
        self.wake(inner);
    }

    /// The session is over (`unsettled`: its link, if frames the transport
    /// took are not counted yet).
    pub(crate) fn ended(&self, reason: CloseReason, unsettled: Option<&mut Socket>) {
        let mut inner = self.lock();
        if let Some(wire) = unsettled {
            // Frames the transport took are written, not handed back.
            harvest(&mut inner, wire);
        }
        inner.flush = false;
        inner.core.ended(reason, Instant::now());
        inner.session_waker = None;
        // `Closed` went in: the consumer is woken with it.
        self.wake(&mut inner);
        drop(inner);
        notify_all(&self.changed);
        notify_all(&self.space);
    }
}

/// Hands the core what the transport took and read since last asked.
fn harvest(inner: &mut Inner, wire: &mut Socket) {
    let meter = wire.get_mut();
    let completed = meter.take_completed();
    let traffic = meter.take_traffic();
    let now = Instant::now();
    (inner.core).traffic(completed.text, completed.pings, &traffic, now);
}
