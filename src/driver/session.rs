//! The session future: the loop that runs one machine on real sockets.
//!
//! One hand-written poll loop, not a `select!` of sub-futures, so no input
//! is ever lost to cancellation and a slow write never stalls the timers.
//! Each pass takes the caller's commands, polls the link (open, hello,
//! writes, one read) and the one timer. Every event goes to the machine
//! through [`Session::feed`], which carries out every action at once: the
//! core's rule "drain every action after every input" holds here too.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use async_tungstenite::tungstenite::handshake::client::Response;
use async_tungstenite::tungstenite::protocol::CloseFrame;

use crate::fsm::{Action, Attempt, Cause, CloseReason, Config, Event, Machine, State, Status};

use super::alarm::Alarm;
use super::connect::ConnectError;
use super::inbound::classify;
use super::link::Link;
use super::session_event::{CloseOutcome, SessionEvent, UpgradeResponse};
use super::shared::Shared;
use super::spec::Spec;

/// Passes through the loop before yielding to other tasks, so one busy
/// session cannot starve its executor.
const PASSES_PER_POLL: u32 = 64;

/// The machine, or its configuration until the first poll starts it (one
/// slot for both: sessions are many, bytes count).
enum Core {
    Pending(Config),
    Running(Machine),
}

/// The running session. Spawn it on any executor (or use
/// [`ClientBuilder::spawn`](super::ClientBuilder::spawn) with smol); the
/// first attempt starts when it is first polled. It completes once the
/// session is Closed. Dropping it ends the session at once.
#[must_use = "the session does nothing unless spawned or awaited"]
pub struct Session {
    shared: Arc<Shared>,
    spec: Arc<Spec>,
    core: Core,
    /// The current attempt's transport; at most one at a time.
    link: Option<Link>,
    alarm: Alarm,
    /// The consumer's event buffer was full when last looked at.
    read_paused: bool,
    /// The change to Open (from, cause), published with `FlushQueue`.
    opening: Option<(Status, Cause)>,
    done: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("status", &self.machine().map(Machine::status))
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(shared: Arc<Shared>, spec: Arc<Spec>, config: Config) -> Self {
        Session {
            shared,
            spec,
            core: Core::Pending(config),
            link: None,
            alarm: Alarm::new(),
            read_paused: false,
            opening: None,
            done: false,
        }
    }

    fn machine(&self) -> Option<&Machine> {
        match &self.core {
            Core::Running(m) => Some(m),
            Core::Pending(_) => None,
        }
    }

    fn machine_mut(&mut self) -> Option<&mut Machine> {
        match &mut self.core {
            Core::Running(m) => Some(m),
            Core::Pending(_) => None,
        }
    }

    /// The link of `attempt`, if it is the current one: the one attempt check.
    fn link_of(&mut self, attempt: Attempt) -> Option<&mut Link> {
        self.link.as_mut().filter(|l| l.attempt() == attempt)
    }

    /// Hands one event to the machine and carries out every action at once.
    fn feed(&mut self, event: Event, cx: &mut Context<'_>) {
        if let Some(m) = self.machine_mut() {
            m.handle(event, Instant::now());
        }
        self.drain(cx);
    }

    fn drain(&mut self, cx: &mut Context<'_>) {
        while let Some(action) = self.machine_mut().and_then(Machine::poll_action) {
            self.carry_out(action, cx);
        }
    }

    fn carry_out(&mut self, action: Action, cx: &mut Context<'_>) {
        let url = self.spec.url();
        match action {
            Action::Connect { attempt } => self.link = Some(Link::dial(attempt, &self.spec)),
            Action::SendHello { attempt } => {
                let spec = self.spec.clone();
                if let Some(link) = self.link_of(attempt) {
                    link.start_hello(&spec);
                }
            }
            Action::FlushQueue { attempt } => {
                // Open is published here, status and event, in one critical
                // section with the queue's flush: a send can neither
                // overtake queued messages nor see Open and be refused.
                let mut inner = self.shared.lock();
                inner.outbound.acked();
                if let Some((from, cause)) = self.opening.take() {
                    inner.publish(Status::Open, attempt);
                    let to = Status::Open;
                    let event = SessionEvent::Status {
                        from,
                        to,
                        cause,
                        attempt,
                    };
                    self.shared.push_locked(&mut inner, event);
                }
                drop(inner);
                self.shared.changed.notify(usize::MAX);
            }
            Action::SendPing { attempt } => {
                if self.link_of(attempt).is_some() {
                    self.shared.lock().outbound.ping();
                }
            }
            Action::SendClose {
                attempt,
                code,
                reason,
            } => {
                if self.link_of(attempt).is_some() {
                    let frame = CloseFrame {
                        code: code.into(),
                        reason: reason.into(),
                    };
                    self.shared.lock().outbound.close(frame);
                }
            }
            Action::DropTransport { attempt } => self.drop_link(attempt, cx),
            Action::StatusChanged {
                from,
                to,
                cause,
                attempt,
            } => self.status_changed(from, to, cause, attempt),
            Action::Disconnected {
                attempt,
                code,
                reason,
            } => {
                log::debug!(
                    "ws-lifecycle {url}: attempt {attempt} disconnected ({code} {reason:?})"
                );
                let event = SessionEvent::Disconnected {
                    attempt,
                    code,
                    reason,
                };
                self.shared.emit(event);
            }
            Action::ReconnectScheduled { attempt, delay } => {
                log::debug!("ws-lifecycle {url}: attempt {attempt} in {delay:?}");
                self.shared
                    .emit(SessionEvent::ReconnectScheduled { attempt, delay });
            }
        }
    }

    fn status_changed(&mut self, from: Status, to: Status, cause: Cause, attempt: Attempt) {
        let url = self.spec.url();
        log::debug!("ws-lifecycle {url}: {from} -> {to} (cause {cause}, attempt {attempt})");
        let closed = match self.machine().map(Machine::state) {
            Some(State::Closed { reason }) => Some(reason.clone()),
            _ => None,
        };
        if to == Status::Open {
            // Published with the queue's flush (`FlushQueue`), right after.
            self.opening = Some((from, cause));
            return;
        }
        let mut inner = self.shared.lock();
        inner.publish(to, attempt);
        if closed.is_some() {
            // Published with the status, so no handle sees Closed without a reason.
            inner.closed = closed;
        }
        let event = SessionEvent::Status {
            from,
            to,
            cause,
            attempt,
        };
        self.shared.push_locked(&mut inner, event);
        drop(inner);
        self.shared.changed.notify(usize::MAX);
    }

    /// Drops the link of `attempt` after one non-blocking chance for a
    /// pending close frame; what it never wrote is handed back.
    fn drop_link(&mut self, attempt: Attempt, cx: &mut Context<'_>) {
        let Some(mut link) = self.link.take_if(|l| l.attempt() == attempt) else {
            return;
        };
        let now = self.machine().map_or(Status::Closed, Machine::status);
        let mut inner = self.shared.lock();
        // The machine has already moved on: a send from now on must not
        // read "Open" (its Status event follows in this same drain).
        inner.status = now;
        if let Some(wire) = link.wire() {
            inner.outbound.write_before_drop(wire, cx);
        }
        drop(link);
        let events_alive = inner.events_alive;
        if let Some(unsent) = inner.outbound.lost(events_alive) {
            self.shared
                .push_locked(&mut inner, SessionEvent::Unsent(unsent));
        }
        self.shared.notify_room(&mut inner);
    }

    /// Picks up close and reconnect requests from the handles.
    fn take_commands(&mut self, cx: &mut Context<'_>) {
        if !self.shared.has_commands.swap(false, Ordering::AcqRel) {
            return;
        }
        let (close, reconnect) = {
            let mut inner = self.shared.lock();
            let reconnect = std::mem::take(&mut inner.commands.reconnect_now);
            (inner.commands.close.take(), reconnect)
        };
        if let Some((code, reason)) = close {
            self.feed(Event::Close { code, reason }, cx);
        }
        if reconnect {
            self.feed(Event::ReconnectNow, cx);
        }
    }

    /// Tells the machine when the consumer's buffer fills or regains room.
    fn sync_read_pause(&mut self, cx: &mut Context<'_>) {
        let full = self.shared.events_full.load(Ordering::Acquire);
        if full != self.read_paused {
            self.read_paused = full;
            let event = if full {
                Event::ReadPaused
            } else {
                Event::ReadResumed
            };
            self.feed(event, cx);
        }
    }

    /// Polls the link: opening, the hello, the writes, one read.
    fn poll_link(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(link) = self.link.as_mut() else {
            return false;
        };
        let attempt = link.attempt();
        if let Poll::Ready(opened) = link.poll_open(cx, &self.spec) {
            self.opened(attempt, opened, cx);
            return true;
        }
        if let Poll::Ready(hello) = link.poll_hello(cx) {
            match hello {
                // Sent verbatim, never logged: hellos carry credentials.
                Ok(text) => self.shared.lock().outbound.hello(text),
                Err(error) => {
                    log::debug!("ws-lifecycle {}: hello failed: {error}", self.spec.url());
                    self.shared
                        .emit(SessionEvent::HelloFailed { attempt, error });
                    self.feed(Event::HelloFailed { attempt }, cx);
                }
            }
            return true;
        }
        let mut progress = false;
        if let Some(wire) = link.wire() {
            let mut inner = self.shared.lock();
            let written = inner.outbound.poll_write(wire, cx);
            self.shared.notify_room(&mut inner);
            drop(inner);
            match written {
                Ok(wrote) => progress = wrote,
                Err(_) => {
                    self.feed(Event::TransportLost { attempt }, cx);
                    return true;
                }
            }
        }
        let paused = self.read_paused;
        let read = match self.link_of(attempt) {
            Some(link) if !paused => link.poll_read(cx),
            _ => Poll::Pending,
        };
        // Any inbound bytes are activity, even part of a frame.
        if self.link_of(attempt).is_some_and(Link::take_read_progress) {
            self.feed(Event::Activity { attempt }, cx);
        }
        if let Poll::Ready(read) = read {
            let awaiting = matches!(
                self.machine().map(Machine::state),
                Some(State::AwaitingAck { .. })
            );
            let inbound = classify(read, attempt, awaiting, &self.spec);
            if inbound.flush {
                self.shared.lock().outbound.needs_flush();
            }
            if let Some(notice) = inbound.notice {
                self.shared.emit(notice);
            }
            if let Some(event) = inbound.event {
                self.feed(event, cx);
            }
            progress = true;
        }
        progress
    }

    /// The link finished opening, or failed to.
    fn opened(
        &mut self,
        attempt: Attempt,
        opened: Result<Response, ConnectError>,
        cx: &mut Context<'_>,
    ) {
        match opened {
            Ok(response) => {
                let (parts, _) = response.into_parts();
                let upgrade = UpgradeResponse {
                    attempt,
                    status: parts.status,
                    headers: parts.headers,
                };
                let mut inner = self.shared.lock();
                inner.outbound.opened();
                if inner.events_alive {
                    self.shared
                        .push_locked(&mut inner, SessionEvent::Upgraded(upgrade.clone()));
                }
                inner.last_response = Some(upgrade);
                drop(inner);
                self.feed(Event::SocketOpened { attempt }, cx);
            }
            Err(error) => {
                log::debug!(
                    "ws-lifecycle {}: attempt {attempt} failed to connect: {error}",
                    self.spec.url()
                );
                self.shared
                    .emit(SessionEvent::ConnectFailed { attempt, error });
                self.feed(Event::ConnectFailed { attempt }, cx);
            }
        }
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let want = self.machine().and_then(Machine::poll_timeout);
        if !self.alarm.poll(want, cx) {
            return false;
        }
        if let Some(m) = self.machine_mut() {
            m.handle_timeout(Instant::now());
        }
        self.drain(cx);
        true
    }

    /// The session is over: release everything and tell the handles.
    fn release(&mut self, reason: CloseReason) {
        self.done = true;
        self.link = None;
        self.alarm.disarm();
        log::debug!("ws-lifecycle {}: closed ({reason})", self.spec.url());
        let mut inner = self.shared.lock();
        // Nobody asked to close and someone reads: the event carries them.
        let for_close = inner.outbound.is_closing() || !inner.events_alive;
        let unsent = inner.outbound.finished(for_close);
        let attempt = inner.attempt;
        inner.publish(Status::Closed, attempt);
        inner.closed = Some(reason.clone());
        let outcome = CloseOutcome { reason, unsent };
        self.shared
            .push_locked(&mut inner, SessionEvent::Closed(outcome));
        inner.finished = true;
        inner.session_waker = None;
        if let Some(w) = inner.events_waker.take() {
            w.wake();
        }
        drop(inner);
        self.shared.changed.notify(usize::MAX);
        self.shared.space.notify(usize::MAX);
    }

    fn closed_reason(&self) -> Option<CloseReason> {
        match self.machine().map(Machine::state) {
            Some(State::Closed { reason }) => Some(reason.clone()),
            _ => None,
        }
    }
}

impl Future for Session {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(());
        }
        if let Core::Pending(config) = &mut this.core {
            match Machine::new(std::mem::take(config), Instant::now()) {
                Ok(m) => this.core = Core::Running(m),
                // Validated by the builder; unreachable, but never panic.
                Err(_) => {
                    this.release(CloseReason::Requested);
                    return Poll::Ready(());
                }
            }
            this.drain(cx);
        }
        {
            // Register first, so a command or send that lands while this
            // pass runs still wakes the task.
            let mut inner = this.shared.lock();
            if !inner
                .session_waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                inner.session_waker = Some(cx.waker().clone());
            }
        }
        if let Some(link) = this.link.as_mut() {
            link.unpark();
        }
        for _ in 0..PASSES_PER_POLL {
            this.take_commands(cx);
            this.sync_read_pause(cx);
            let mut progress = this.poll_link(cx);
            progress |= this.poll_timer(cx);
            if let Some(reason) = this.closed_reason() {
                this.release(reason);
                return Poll::Ready(());
            }
            if !progress && !this.shared.has_commands.load(Ordering::Acquire) {
                return Poll::Pending;
            }
        }
        // Still busy: yield to other tasks, come back at once.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.done {
            self.release(CloseReason::Requested);
        }
    }
}
