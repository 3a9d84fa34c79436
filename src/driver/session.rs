//! The session future: the loop that runs one machine on real sockets.
//!
//! One hand-written poll loop, not a `select!` of sub-futures, so no input
//! is ever lost to cancellation and a slow write never stalls the timers.
//! Each pass takes the caller's commands, polls the link (open, hello,
//! writes, a batch of reads) and the one timer. Every event goes to the machine
//! through [`Session::feed`], which carries out every action at once: the
//! core's rule "drain every action after every input" holds here too.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use crate::fsm::{Action, Attempt, CloseReason, Event, Machine, Status};

use super::shared::Inner;

use super::acking::Acking;
use super::alarm::Alarm;
use super::failure::deadline_failure;
use super::link::Link;
use super::session_event::SessionEvent;
use super::shared::Shared;
use super::spec::{HelloError, Spec};
use super::wake::WakeWatch;

/// Passes through the loop before yielding to other tasks, so one busy
/// session cannot starve its executor.
const PASSES_PER_POLL: u32 = 64;

/// The running session. Spawn it on any executor (or use
/// [`ClientBuilder::spawn`](super::ClientBuilder::spawn) with smol); the
/// first attempt starts when it is first polled. It completes once the
/// session is Closed. Dropping it ends the session at once.
#[must_use = "the session does nothing unless spawned or awaited"]
pub struct Session {
    shared: Arc<Shared>,
    spec: Arc<Spec>,
    /// The current attempt's transport; at most one at a time.
    link: Option<Link>,
    alarm: Alarm,
    /// The ack just read and its after-ack frames, until its `FlushQueue`
    /// (boxed: it lives for one drain, the session for long).
    acking: Option<Box<Acking>>,
    /// The consumer's event buffer was full when last looked at.
    read_paused: bool,
    /// Both clocks at the last poll: a suspend shows as a gap between them,
    /// and the machine then probes the link (`Event::Woke`).
    wake: WakeWatch,
    done: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("status", &self.shared.lock().status())
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(shared: Arc<Shared>, spec: Arc<Spec>) -> Self {
        Session {
            shared,
            spec,
            link: None,
            alarm: Alarm::new(),
            acking: None,
            read_paused: false,
            wake: WakeWatch::default(),
            done: false,
        }
    }

    /// Whether `attempt`'s link is the current one: actions for a link
    /// already gone are ignored.
    fn is_current(&self, attempt: Attempt) -> bool {
        self.link.as_ref().is_some_and(|l| l.attempt() == attempt)
    }

    /// Hands one event to the machine (a failure judged by the caller's
    /// predicate first) and carries out every action at once, in the same
    /// critical section as the machine's step (see [`Session::drain_locked`]).
    fn feed(&mut self, event: Event, cx: &mut Context<'_>) {
        let now = Instant::now();
        let Some(event) = self.shared.judge(&self.spec, event, now) else {
            return;
        };
        let shared = Arc::clone(&self.shared);
        let mut inner = shared.lock();
        inner.core.handle(event, now);
        self.drain_locked(&shared, inner, cx);
    }

    fn drain(&mut self, cx: &mut Context<'_>) {
        let shared = Arc::clone(&self.shared);
        let inner = shared.lock();
        self.drain_locked(&shared, inner, cx);
    }

    /// Carries out the machine's actions in order. What the handles see
    /// (the status, its events, the queue's flush, a dropped link's
    /// hand-back) is published under the lock the machine's step was
    /// taken in, so no handle ever sees a status whose consequences are not
    /// in place. Starting a dial or a hello runs the caller's code (and
    /// reads the contexts under the lock): outside the lock.
    fn drain_locked<'a>(
        &mut self,
        shared: &'a Shared,
        mut inner: MutexGuard<'a, Inner>,
        cx: &mut Context<'_>,
    ) {
        // Dropping a link may drop the caller's hello or request future:
        // after the drain, outside the lock.
        let mut retired = None;
        while let Some(action) = inner.core.poll_action() {
            match action {
                Action::Connect { .. } | Action::SendHello { .. } => {
                    drop(inner);
                    self.start(action);
                    inner = shared.lock();
                }
                _ => {
                    if let Some(link) = self.publish(&mut inner, action, cx) {
                        if let Some(older) = retired.replace(link) {
                            drop(inner);
                            drop(older);
                            inner = shared.lock();
                        }
                    }
                }
            }
        }
        drop(inner);
        drop(retired);
    }

    /// `Connect` and `SendHello`, outside the lock.
    fn start(&mut self, action: Action) {
        match action {
            Action::Connect { attempt } => {
                let context = || self.shared.hello_context(attempt);
                self.link = Some(Link::dial(attempt, &self.spec, context));
            }
            Action::SendHello { attempt } if self.is_current(attempt) => {
                let (context, spec) = (self.shared.hello_context(attempt), &self.spec);
                self.link
                    .iter_mut()
                    .for_each(|l| l.start_hello(spec, &context));
            }
            _ => {}
        }
    }

    /// Every other action, under the lock; a link dropped comes back, to
    /// be released outside it.
    fn publish(&mut self, inner: &mut Inner, action: Action, cx: &mut Context<'_>) -> Option<Link> {
        match action {
            // Open is published with the flush, the after-ack frames and
            // the `Acked` event (see `Shared::acked`).
            Action::FlushQueue { attempt } => {
                let acking = self.acking.take_if(|a| a.attempt == attempt);
                self.shared.acked(inner, attempt, acking);
            }
            Action::SendPing { attempt } if self.is_current(attempt) => {
                inner.outbound.ledger.ping();
            }
            Action::SendClose {
                attempt,
                code,
                reason,
            } if self.is_current(attempt) => inner.outbound.ledger.close(code, reason),
            // For a link already gone: nothing to do. (`drain_locked`
            // starts dials and hellos.)
            Action::Connect { .. }
            | Action::SendHello { .. }
            | Action::SendPing { .. }
            | Action::SendClose { .. } => {}
            Action::DropTransport { attempt } => {
                let mut link = self.link.take_if(|l| l.attempt() == attempt)?;
                self.shared.link_dropped(inner, link.wire(), cx);
                return Some(link);
            }
            Action::StatusChanged { .. } => {
                self.shared.status_changed(inner, self.spec.url(), action)
            }
            Action::Disconnected { .. } | Action::ReconnectScheduled { .. } => {
                if let Some(event) = SessionEvent::notice(action) {
                    self.shared.notice_locked(inner, self.spec.url(), event);
                }
            }
        }
        None
    }

    /// The hello (or the after-ack builder) failed: the attempt fails.
    fn hello_failed(&mut self, attempt: Attempt, error: HelloError, cx: &mut Context<'_>) {
        let failed = SessionEvent::HelloFailed { attempt, error };
        self.shared.notice(self.spec.url(), failed);
        self.feed(Event::HelloFailed { attempt }, cx);
    }

    /// Feeds the handles' inputs: close, reconnect now, and whether the
    /// consumer's event buffer filled or regained room.
    fn take_inputs(&mut self, cx: &mut Context<'_>) {
        let (inputs, commanded) = self.shared.inputs(&mut self.read_paused);
        inputs.into_iter().flatten().for_each(|e| self.feed(e, cx));
        if commanded {
            // What a handle's command made the machine decide.
            self.drain(cx);
        }
    }

    /// Polls the link: opening, the hello, the writes, a batch of reads.
    fn poll_link(&mut self, cx: &mut Context<'_>) -> bool {
        let awaiting = self.shared.lock().status() == Status::AwaitingAck;
        let Some(link) = self.link.as_mut() else {
            return false;
        };
        let attempt = link.attempt();
        if let Poll::Ready(opened) = link.poll_open(cx, &self.spec) {
            let event = self.shared.link_opened(self.spec.url(), attempt, opened);
            self.feed(event, cx);
            return true;
        }
        if let Poll::Ready(hello) = link.poll_hello(cx, awaiting) {
            match hello {
                // Sent verbatim, never logged: hellos carry credentials.
                Ok(text) => self.shared.lock().outbound.ledger.hello(text),
                Err(error) => self.hello_failed(attempt, error, cx),
            }
            return true;
        }
        let wrote = match link.wire().map(|wire| self.shared.write(wire, cx)) {
            Some(Err(_)) => {
                self.feed(Event::TransportLost { attempt }, cx);
                return true;
            }
            Some(Ok(wrote)) => wrote,
            None => false,
        };
        let read = match self.read_paused {
            false => link.poll_inbound(cx, awaiting, &self.spec, self.shared.events_room()),
            true => Poll::Pending,
        };
        // Reading flushes tungstenite's pongs and close replies, and with
        // them any frames still in its buffer: count what that wrote.
        if let Some(wire) = link.unsettled() {
            self.shared.settle(wire);
        }
        // Any inbound bytes are activity, even part of a frame.
        if link.take_read_progress() {
            self.feed(Event::Activity { attempt }, cx);
        }
        let Poll::Ready(inbound) = read else {
            return wrote;
        };
        self.shared.received(inbound.flush, inbound.notices);
        if let Some(ack) = inbound.ack {
            match Acking::new(&self.spec, &self.shared, attempt, ack) {
                Ok(acking) => self.acking = Some(acking),
                Err(error) => {
                    self.hello_failed(attempt, error, cx);
                    return true;
                }
            }
        }
        if let Some(event) = inbound.event {
            self.feed(event, cx);
        }
        self.acking = None;
        true
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let want = self.shared.lock().machine().and_then(Machine::poll_timeout);
        if !self.alarm.poll(want, cx) {
            return false;
        }
        let now = Instant::now();
        // The connect deadline is a connect failure like the others.
        let deadline = self
            .shared
            .lock()
            .machine()
            .and_then(|m| deadline_failure(m, now));
        if let Some((attempt, error)) = deadline {
            let failed = SessionEvent::ConnectFailed { attempt, error };
            self.shared.notice(self.spec.url(), failed);
        }
        self.feed(Event::Timeout, cx);
        true
    }

    /// The session is over: release everything and tell the handles.
    fn release(&mut self, reason: CloseReason) {
        self.done = true;
        self.alarm.disarm();
        log::debug!("ws-lifecycle {}: closed ({reason})", self.spec.url());
        let unsettled = self.link.as_mut().and_then(Link::unsettled);
        self.shared.ended(reason, unsettled);
        self.link = None;
    }
}

impl Future for Session {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(());
        }
        let started = this.shared.lock().core.start(Instant::now());
        match started {
            Ok(true) => this.drain(cx),
            Ok(false) => {}
            // Validated by the builder; unreachable, but never panic.
            Err(_) => {
                this.release(CloseReason::Requested);
                return Poll::Ready(());
            }
        }
        this.shared.register(cx.waker());
        if let Some(link) = this.link.as_mut() {
            link.unpark();
        }
        for _ in 0..PASSES_PER_POLL {
            this.take_inputs(cx);
            let mut progress = this.poll_link(cx);
            progress |= this.poll_timer(cx);
            let closed = this.shared.lock().core.closed_reason();
            if let Some(reason) = closed {
                // A handle's close may have ended the machine since the
                // inputs were taken: carry out what it decided first.
                this.drain(cx);
                this.release(reason);
                return Poll::Ready(());
            }
            if !progress && !this.shared.has_commands.load(Ordering::Acquire) {
                // Checked last: bytes read in this poll may predate the sleep.
                if !this.wake.woke(&this.spec) {
                    return Poll::Pending;
                }
                this.feed(Event::Woke, cx);
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
