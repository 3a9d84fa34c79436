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

use crate::fsm::{Action, Attempt, Cause, CloseReason, Config, Event, Machine, State, Status};

use super::alarm::Alarm;
use super::connect::ConnectError;
use super::inbound::classify;
use super::link::Link;
use super::session_event::{SessionEvent, UpgradeResponse};
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
        match action {
            Action::Connect { attempt } => self.link = Some(Link::dial(attempt, &self.spec)),
            Action::SendHello { attempt } => {
                let spec = self.spec.clone();
                if let Some(link) = self.link_of(attempt) {
                    link.start_hello(&spec);
                }
            }
            Action::FlushQueue { attempt } => {
                // Published here, with the flush (see `Shared::acked`).
                if let Some((from, cause)) = self.opening.take() {
                    self.shared.acked(from, cause, attempt);
                }
            }
            Action::SendPing { attempt } if self.link_of(attempt).is_some() => {
                self.shared.lock().outbound.ping();
            }
            Action::SendClose {
                attempt,
                code,
                reason,
            } if self.link_of(attempt).is_some() => self.shared.lock().outbound.close(code, reason),
            // For a link already gone: nothing to write to.
            Action::SendPing { .. } | Action::SendClose { .. } => {}
            Action::DropTransport { attempt } => self.drop_link(attempt, cx),
            Action::StatusChanged {
                from,
                to,
                cause,
                attempt,
            } => self.status_changed(from, to, cause, attempt),
            Action::Disconnected { .. } | Action::ReconnectScheduled { .. } => {
                if let Some(event) = SessionEvent::notice(action) {
                    self.report(event);
                }
            }
        }
    }

    /// Logs a notice (never a message: those may carry anything) and hands
    /// it to the consumer.
    fn report(&self, event: SessionEvent) {
        log::debug!("ws-lifecycle {}: {event:?}", self.spec.url());
        self.shared.emit(event);
    }

    fn status_changed(&mut self, from: Status, to: Status, cause: Cause, attempt: Attempt) {
        let url = self.spec.url();
        log::debug!("ws-lifecycle {url}: {from} -> {to} (cause {cause}, attempt {attempt})");
        if to == Status::Open {
            // Published with the queue's flush (`FlushQueue`), right after.
            self.opening = Some((from, cause));
            return;
        }
        let closed = self.closed_reason();
        self.shared
            .status_changed((from, to, cause, attempt), closed);
    }

    /// Drops the link of `attempt` after one non-blocking chance for a
    /// pending close frame; what it never wrote is handed back.
    fn drop_link(&mut self, attempt: Attempt, cx: &mut Context<'_>) {
        if let Some(mut link) = self.link.take_if(|l| l.attempt() == attempt) {
            let now = self.machine().map_or(Status::Closed, Machine::status);
            self.shared.link_dropped(link.wire(), now, cx);
        }
    }

    /// Picks up close and reconnect requests from the handles.
    fn take_commands(&mut self, cx: &mut Context<'_>) {
        if !self.shared.has_commands.swap(false, Ordering::AcqRel) {
            return;
        }
        let (close, reconnect) = self.shared.take_commands();
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
                    self.report(SessionEvent::HelloFailed { attempt, error });
                    self.feed(Event::HelloFailed { attempt }, cx);
                }
            }
            return true;
        }
        let mut progress = false;
        if let Some(wire) = link.wire() {
            match self.shared.write(wire, cx) {
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
        opened: Result<UpgradeResponse, ConnectError>,
        cx: &mut Context<'_>,
    ) {
        match opened {
            Ok(upgrade) => {
                self.shared.upgraded(upgrade);
                self.feed(Event::SocketOpened { attempt }, cx);
            }
            Err(error) => {
                self.report(SessionEvent::ConnectFailed { attempt, error });
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
        self.shared.ended(reason);
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
        this.shared.register(cx.waker());
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
