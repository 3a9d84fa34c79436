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

use crate::fsm::{Action, Attempt, CloseReason, Event, Status};

use super::alarm::Alarm;
use super::hooks::after_ack_frames;
use super::inbound;
use super::link::Link;
use super::session_event::SessionEvent;
use super::shared::{Inner, Shared, notify_all};
use super::spec::{HelloError, Spec};
use super::transport::error::ConnectError;
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
    /// Both clocks at the last poll: a suspend shows as a gap between them,
    /// and the machine then probes the link (`Event::Woke`).
    wake: WakeWatch,
    done: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("status", &self.shared.lock().core.status())
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
            wake: WakeWatch::default(),
            done: false,
        }
    }

    /// Hands one event to the machine (a failure judged by the caller's
    /// predicate first) and carries out every action at once, in the same
    /// critical section as the machine's step (see [`Session::drain_locked`]).
    fn feed(&mut self, event: Event, cx: &mut Context<'_>) {
        let event = self.shared.judge(&self.spec, event, Instant::now());
        let shared = Arc::clone(&self.shared);
        let mut inner = shared.lock();
        // Read under the lock: inputs come from the handles' threads too,
        // and the machine must see time in the order it gets them.
        inner.core.handle(event, Instant::now());
        self.drain_locked(&shared, inner, cx);
    }

    fn drain(&mut self, cx: &mut Context<'_>) {
        let shared = Arc::clone(&self.shared);
        let inner = shared.lock();
        self.drain_locked(&shared, inner, cx);
    }

    /// Carries out the machine's actions in order; the core did their
    /// bookkeeping (the status, its events, the queue's flush) in the
    /// critical section of the step, so no handle ever sees a status whose
    /// consequences are not in place. Starting a dial or a hello runs the
    /// caller's code (and reads the contexts under the lock): outside the
    /// lock; so is dropping a link (it may drop the caller's futures).
    fn drain_locked<'a>(
        &mut self,
        shared: &'a Shared,
        mut inner: MutexGuard<'a, Inner>,
        cx: &mut Context<'_>,
    ) {
        let url = self.spec.url();
        let mut retired = None;
        let mut changed = false;
        while let Some(action) = inner.core.poll_action(Instant::now()) {
            match action {
                Action::Connect { attempt } => {
                    drop(inner);
                    let context = || self.shared.hello_context(attempt);
                    self.link = Some(Link::dial(attempt, &self.spec, context));
                    inner = shared.lock();
                }
                Action::SendHello { attempt } => {
                    drop(inner);
                    let context = self.shared.hello_context(attempt);
                    if let Some(link) = self.link.as_mut() {
                        link.start_hello(&self.spec, &context);
                    }
                    inner = shared.lock();
                }
                Action::DropTransport { attempt } => {
                    let Some(mut link) = self.link.take_if(|l| l.attempt() == attempt) else {
                        continue;
                    };
                    shared.link_dropped(&mut inner, link.wire(), cx);
                    if let Some(older) = retired.replace(link) {
                        drop(inner);
                        drop(older);
                        inner = shared.lock();
                    }
                }
                Action::StatusChanged {
                    from,
                    to,
                    cause,
                    attempt,
                } => {
                    log::debug!(
                        "ws-lifecycle {url}: {from} -> {to} (cause {cause}, attempt {attempt})"
                    );
                    changed = true;
                }
                // Never a message: those may carry anything.
                notice => log::debug!("ws-lifecycle {url}: {notice:?}"),
            }
        }
        shared.wake(&mut inner);
        drop(inner);
        if changed {
            notify_all(&shared.changed);
        }
        drop(retired);
    }

    /// The hello (or the after-ack builder) failed: the attempt fails.
    fn hello_failed(&mut self, attempt: Attempt, error: HelloError, cx: &mut Context<'_>) {
        let failed = SessionEvent::HelloFailed { attempt, error };
        log::debug!("ws-lifecycle {}: {failed:?}", self.spec.url());
        self.shared.report(failed);
        self.feed(Event::HelloFailed { attempt }, cx);
    }

    /// What a handle's command (close, reconnect now) made the machine
    /// decide.
    fn take_inputs(&mut self, cx: &mut Context<'_>) {
        if self.shared.has_commands.swap(false, Ordering::AcqRel) {
            self.drain(cx);
        }
    }

    /// Polls the link: opening, the hello, the writes, a batch of reads.
    fn poll_link(&mut self, cx: &mut Context<'_>) -> bool {
        let awaiting = self.shared.lock().core.status() == Status::AwaitingAck;
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
                Ok(text) => self.shared.lock().core.hello(text),
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
        // No room in the consumer's buffer: the core paused reading.
        let read = match self.shared.events_room() {
            0 => Poll::Pending,
            room => link.poll_inbound(cx, awaiting, &self.spec, room),
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
        let Poll::Ready(mut inbound) = read else {
            return wrote;
        };
        self.shared.received(inbound.flush, &mut inbound.notices);
        inbound::recycle(inbound.notices);
        if let Some(ack) = inbound.ack {
            // The caller's after-ack builder, then the ack as one input.
            match after_ack_frames(&self.spec, &self.shared, attempt, &ack) {
                Ok(frames) => {
                    let shared = Arc::clone(&self.shared);
                    let mut inner = shared.lock();
                    inner.core.acked(attempt, ack, frames, Instant::now());
                    self.drain_locked(&shared, inner, cx);
                }
                Err(error) => self.hello_failed(attempt, error, cx),
            }
            return true;
        }
        if let Some(event) = inbound.event {
            self.feed(event, cx);
        }
        true
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let want = self.shared.lock().core.poll_timeout();
        if !self.alarm.poll(want, cx) {
            return false;
        }
        // The connect deadline is a connect failure like the others.
        let deadline = self.shared.lock().core.connect_deadline_due(Instant::now());
        if let Some((attempt, after)) = deadline {
            let error = ConnectError::Deadline { after };
            let failed = SessionEvent::ConnectFailed { attempt, error };
            log::debug!("ws-lifecycle {}: {failed:?}", self.spec.url());
            self.shared.report(failed);
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
            let closed = this.shared.lock().core.machine_closed();
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
