//! The session future: carries out the machine's actions on a real socket.
//!
//! It is one hand-written poll loop, not a `select!` of sub-futures, so no
//! input is ever lost to cancellation and a slow write can never stall the
//! timers: each pass takes caller commands, drains every action, then polls
//! the connect, the hello, the writes, the reads and the one timer, and
//! repeats until nothing makes progress.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use async_io::Timer;
use async_tungstenite::tungstenite::error::CapacityError;
use async_tungstenite::tungstenite::handshake::client::Response;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_lite::{FutureExt, Stream};
use futures_util::Sink;

use crate::fsm::{Action, Attempt, CloseReason, Config, Event, Machine, State, Status};

use super::builder::Spec;
use super::connect::{ConnectError, MaybeTls, Socket, open_stream};
use super::shared::Shared;
use super::upgrade::Upgrade;
use super::{HelloError, SessionEvent, UpgradeResponse};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// An attempt's transport while it opens: first the stream (TCP, TLS, a
/// small boxed future), then the upgrade (inline: no allocation).
enum Connecting {
    Stream(BoxFuture<Result<MaybeTls, ConnectError>>),
    Upgrade(Upgrade),
}

/// Passes through the loop before yielding to other tasks, so one busy
/// session cannot starve its executor.
const PASSES_PER_POLL: u32 = 64;

/// The machine, or its configuration until the first poll starts it (one
/// slot for both: sessions are many, bytes count).
enum Core {
    Pending(Config),
    Running(Machine),
}

impl Core {
    fn as_ref(&self) -> Option<&Machine> {
        match self {
            Core::Running(m) => Some(m),
            Core::Pending(_) => None,
        }
    }

    fn as_mut(&mut self) -> Option<&mut Machine> {
        match self {
            Core::Running(m) => Some(m),
            Core::Pending(_) => None,
        }
    }
}

/// The running session. Spawn it on any executor (or use
/// [`ClientBuilder::spawn`](super::ClientBuilder::spawn) with smol); the
/// first attempt starts when it is first polled. It completes once the
/// session is Closed. Dropping it ends the session at once.
#[must_use = "the session does nothing unless spawned or awaited"]
pub struct Session {
    shared: Arc<Shared>,
    spec: Arc<Spec>,
    machine: Core,
    connecting: Option<(Attempt, Connecting)>,
    hello: Option<(Attempt, BoxFuture<Result<String, HelloError>>)>,
    socket: Option<(Attempt, Socket)>,
    /// Protocol frames (hello, ping, close) that go out before application data.
    outbox: VecDeque<Message>,
    /// Messages `send` accepted before `close`: written before the close
    /// frame, or handed back in `Closed::unsent` if the socket goes first.
    closing_sends: VecDeque<String>,
    needs_flush: bool,
    /// The socket's read returned `Pending` during this poll: its waker is
    /// registered, so reading again before the next wake-up would only cost
    /// a failing `recv` (and a reactor re-arm).
    read_parked: bool,
    timer: Timer,
    armed: Option<Instant>,
    done: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("status", &self.machine.as_ref().map(Machine::status))
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(shared: Arc<Shared>, spec: Arc<Spec>, config: Config) -> Self {
        Session {
            shared,
            spec,
            machine: Core::Pending(config),
            connecting: None,
            hello: None,
            socket: None,
            outbox: VecDeque::new(),
            closing_sends: VecDeque::new(),
            needs_flush: false,
            read_parked: false,
            timer: Timer::never(),
            armed: None,
            done: false,
        }
    }

    fn url(&self) -> &str {
        self.spec.connect.endpoint.redacted()
    }

    /// Feeds one event to the machine at the current time.
    fn handle(&mut self, event: Event) {
        if let Some(m) = self.machine.as_mut() {
            m.handle(event, Instant::now());
        }
    }

    /// Picks up close and reconnect requests from the handles.
    fn take_commands(&mut self) {
        if !self.shared.has_commands.swap(false, Ordering::AcqRel) {
            return;
        }
        let (close, reconnect) = {
            let mut inner = self.shared.lock();
            let close = inner.commands.close.take();
            let reconnect = std::mem::take(&mut inner.commands.reconnect_now);
            (close, reconnect)
        };
        if let Some((code, reason)) = close {
            if self.machine.as_ref().is_some_and(Machine::can_send) && self.socket.is_some() {
                // What `send` accepted before `close` goes out before the
                // close frame (it was accepted while Open, for this
                // connection), as a caller of send-then-close expects.
                let accepted: Vec<String> = self.shared.lock().outbound.drain(..).collect();
                self.closing_sends.extend(accepted);
            }
            self.handle(Event::Close { code, reason });
        }
        if reconnect {
            self.handle(Event::ReconnectNow);
        }
    }

    /// Drains and carries out every pending action, in order.
    fn run_actions(&mut self, cx: &mut Context<'_>) {
        while let Some(action) = self.machine.as_mut().and_then(Machine::poll_action) {
            match action {
                Action::Connect { attempt } => self.start_connect(attempt),
                Action::SendHello { attempt } => self.start_hello(attempt),
                // The queue moved into the send buffer atomically with the
                // switch to Open (see `status_changed`), so nothing sent
                // meanwhile can overtake it.
                Action::FlushQueue { .. } => {}
                Action::SendPing { .. } => {
                    // One pending ping is enough: a peer that never reads
                    // must not make them pile up.
                    if !self.outbox.iter().any(|m| matches!(m, Message::Ping(_))) {
                        self.outbox.push_back(Message::Ping(Default::default()));
                    }
                }
                Action::SendClose { code, reason, .. } => {
                    let frame = CloseFrame {
                        code: code.into(),
                        reason: reason.into(),
                    };
                    self.outbox.push_back(Message::Close(Some(frame)));
                }
                Action::DropTransport { attempt } => self.drop_transport(attempt, cx),
                Action::StatusChanged {
                    from,
                    to,
                    cause,
                    attempt,
                } => {
                    log::debug!(
                        "ws-lifecycle {}: {} -> {} (cause {}, attempt {})",
                        self.url(),
                        from,
                        to,
                        cause,
                        attempt
                    );
                    self.status_changed(from, to, attempt);
                    self.shared.emit(SessionEvent::Status {
                        from,
                        to,
                        cause,
                        attempt,
                    });
                    self.shared.changed.notify(usize::MAX);
                }
                Action::Disconnected {
                    attempt,
                    code,
                    reason,
                } => {
                    log::debug!(
                        "ws-lifecycle {}: attempt {attempt} disconnected ({code} {reason:?})",
                        self.url()
                    );
                    self.shared.emit(SessionEvent::Disconnected {
                        attempt,
                        code,
                        reason,
                    });
                }
                Action::ReconnectScheduled { attempt, delay } => {
                    log::debug!(
                        "ws-lifecycle {}: attempt {attempt} in {delay:?}",
                        self.url()
                    );
                    self.shared
                        .emit(SessionEvent::ReconnectScheduled { attempt, delay });
                }
            }
        }
    }

    /// Calls the caller's hello builder; a panic in it, or in the future it
    /// returns, is an ordinary hello failure (retried), never the session's end.
    fn start_hello(&mut self, attempt: Attempt) {
        let build = &self.spec.hello;
        let fut: BoxFuture<Result<String, HelloError>> =
            match std::panic::catch_unwind(AssertUnwindSafe(|| build(attempt))) {
                Ok(fut) => {
                    let caught = AssertUnwindSafe(fut).catch_unwind();
                    Box::pin(async move {
                        caught
                            .await
                            .unwrap_or_else(|_| Err(HelloError::from("the hello builder panicked")))
                    })
                }
                Err(_) => Box::pin(async { Err(HelloError::from("the hello builder panicked")) }),
            };
        self.hello = Some((attempt, fut));
    }

    fn start_connect(&mut self, attempt: Attempt) {
        let spec = self.spec.clone();
        let fut = async move { open_stream(&spec.connect).await };
        self.connecting = Some((attempt, Connecting::Stream(Box::pin(fut))));
    }

    /// The stream is open: build this attempt's request and start the upgrade.
    fn start_upgrade(&mut self, attempt: Attempt, stream: MaybeTls) {
        let mut request = match self.spec.connect.endpoint.request() {
            Ok(r) => r,
            Err(e) => {
                self.connect_failed(attempt, e.to_string());
                return;
            }
        };
        if let Some(hook) = &self.spec.request_hook {
            // The caller's code: a panic is this attempt's failure, retried.
            if std::panic::catch_unwind(AssertUnwindSafe(|| hook(attempt, &mut request))).is_err() {
                self.connect_failed(attempt, "the request hook panicked".to_owned());
                return;
            }
        }
        match Upgrade::new(request, stream, self.spec.connect.websocket) {
            Ok(upgrade) => self.connecting = Some((attempt, Connecting::Upgrade(upgrade))),
            Err(e) => self.connect_failed(attempt, ConnectError::Upgrade(e).to_string()),
        }
    }

    fn connect_failed(&mut self, attempt: Attempt, error: String) {
        log::debug!(
            "ws-lifecycle {}: attempt {attempt} failed to connect: {error}",
            self.url()
        );
        self.shared
            .emit(SessionEvent::ConnectFailed { attempt, error });
        self.handle(Event::ConnectFailed { attempt });
    }

    /// Publishes the new status to the handles, in one critical section
    /// with the send-buffer bookkeeping that goes with it.
    fn status_changed(&mut self, from: Status, to: Status, attempt: Attempt) {
        if from == Status::AwaitingAck {
            self.hello = None;
        }
        let closed = match self.machine.as_ref().map(Machine::state) {
            Some(State::Closed { reason }) => Some(reason.clone()),
            _ => None,
        };
        let mut inner = self.shared.lock();
        inner.status = to;
        inner.entered[to as usize] = inner.entered[to as usize].wrapping_add(1);
        inner.attempt = attempt;
        if closed.is_some() {
            // Published with the status, so no handle sees Closed without a reason.
            inner.closed = closed;
        }
        if from == Status::Open {
            // Accepted but never written: back into the queue (ahead of newer
            // queued messages), or handed back to the caller.
            let leftover: Vec<String> = inner.outbound.drain(..).collect();
            if !leftover.is_empty() {
                match inner.queue.as_mut() {
                    Some(queue) => leftover.into_iter().rev().for_each(|m| queue.push_front(m)),
                    None => self
                        .shared
                        .push_locked(&mut inner, SessionEvent::Unsent(leftover)),
                }
            }
            self.shared.space.notify(usize::MAX);
        }
        if to == Status::Open {
            inner.opened_once = true;
            if let Some(mut queue) = inner.queue.take() {
                inner.outbound.extend(queue.drain());
                inner.queue = Some(queue);
            }
        }
    }

    /// Drops the transport of `attempt` (connect in progress, hello, socket).
    /// Queued frames (a close frame, a pong) get one non-blocking chance to
    /// go out first.
    fn drop_transport(&mut self, attempt: Attempt, cx: &mut Context<'_>) {
        if self.connecting.as_ref().is_some_and(|(a, _)| *a == attempt) {
            self.connecting = None;
        }
        if self.hello.as_ref().is_some_and(|(a, _)| *a == attempt) {
            self.hello = None;
        }
        if let Some((a, mut ws)) = self.socket.take() {
            if a == attempt {
                // A close frame (or a pong) gets one non-blocking chance.
                while let Some(frame) = self.outbox.pop_front() {
                    let ready = matches!(Pin::new(&mut ws).poll_ready(cx), Poll::Ready(Ok(())));
                    if !ready || Pin::new(&mut ws).start_send(frame).is_err() {
                        break;
                    }
                }
                let _ = Pin::new(&mut ws).poll_flush(cx);
                drop(ws);
            } else {
                self.socket = Some((a, ws));
            }
        }
        // Messages accepted before a close that the socket never took:
        // handed back (in `Closed::unsent`), never dropped silently.
        let back: Vec<String> = self.closing_sends.drain(..).collect();
        if !back.is_empty() {
            self.shared.lock().outbound.extend(back);
        }
        self.outbox.clear();
        self.needs_flush = false;
    }

    fn poll_connect(&mut self, cx: &mut Context<'_>) -> bool {
        let Some((attempt, phase)) = self.connecting.as_mut() else {
            return false;
        };
        let attempt = *attempt;
        match phase {
            Connecting::Stream(fut) => {
                let result = match fut.as_mut().poll(cx) {
                    Poll::Pending => return false,
                    Poll::Ready(r) => r,
                };
                self.connecting = None;
                match result {
                    Ok(stream) => self.start_upgrade(attempt, stream),
                    Err(e) => self.connect_failed(attempt, e.to_string()),
                }
            }
            Connecting::Upgrade(upgrade) => {
                let result = match Pin::new(upgrade).poll(cx) {
                    Poll::Pending => return false,
                    Poll::Ready(r) => r,
                };
                self.connecting = None;
                match result {
                    Ok((socket, response)) => self.opened(attempt, socket, response),
                    Err(e) => self.connect_failed(attempt, ConnectError::Upgrade(e).to_string()),
                }
            }
        }
        true
    }

    /// The upgrade succeeded: keep the socket, publish the response.
    fn opened(&mut self, attempt: Attempt, socket: Socket, response: Response) {
        let (parts, _) = response.into_parts();
        let upgrade = UpgradeResponse {
            attempt,
            status: parts.status,
            headers: parts.headers,
        };
        {
            let mut inner = self.shared.lock();
            if inner.events_alive {
                self.shared
                    .push_locked(&mut inner, SessionEvent::Upgraded(upgrade.clone()));
            }
            inner.last_response = Some(upgrade);
        }
        self.socket = Some((attempt, socket));
        self.read_parked = false;
        self.handle(Event::SocketOpened { attempt });
    }

    fn poll_hello(&mut self, cx: &mut Context<'_>) -> bool {
        let Some((attempt, fut)) = self.hello.as_mut() else {
            return false;
        };
        let attempt = *attempt;
        let result = match fut.as_mut().poll(cx) {
            Poll::Pending => return false,
            Poll::Ready(r) => r,
        };
        self.hello = None;
        match result {
            // Sent verbatim, never logged: hellos carry credentials.
            Ok(text) => self.outbox.push_back(Message::text(text)),
            Err(e) => {
                let error = e.to_string();
                log::debug!("ws-lifecycle {}: hello builder failed: {error}", self.url());
                self.shared
                    .emit(SessionEvent::HelloFailed { attempt, error });
                self.handle(Event::HelloFailed { attempt });
            }
        }
        true
    }

    /// Writes protocol frames, then (while Open) application messages, then
    /// flushes. Never blocks: a full socket just leaves them for later.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> bool {
        let can_send = self.machine.as_ref().is_some_and(Machine::can_send);
        let Some((attempt, ws)) = self.socket.as_mut() else {
            return false;
        };
        let attempt = *attempt;
        let mut progress = false;
        let mut failed = false;
        for _ in 0..256 {
            let closing = !self.closing_sends.is_empty();
            let protocol = !self.outbox.is_empty();
            if !closing && !protocol && !can_send {
                break;
            }
            match Pin::new(&mut *ws).poll_ready(cx) {
                Poll::Pending => break,
                Poll::Ready(Err(_)) => {
                    failed = true;
                    break;
                }
                Poll::Ready(Ok(())) => {}
            }
            let frame = if closing {
                self.closing_sends.pop_front().map(Message::text)
            } else if protocol {
                self.outbox.pop_front()
            } else {
                let mut inner = self.shared.lock();
                let was_full = inner.outbound.len() >= inner.send_capacity;
                let next = inner.outbound.pop_front().map(Message::text);
                drop(inner);
                if was_full {
                    self.shared.space.notify(usize::MAX);
                }
                next
            };
            let Some(frame) = frame else { break };
            if Pin::new(&mut *ws).start_send(frame).is_err() {
                failed = true;
                break;
            }
            self.needs_flush = true;
            progress = true;
        }
        if !failed && self.needs_flush {
            match Pin::new(&mut *ws).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.needs_flush = false,
                Poll::Ready(Err(_)) => failed = true,
                Poll::Pending => {}
            }
        }
        if failed {
            self.handle(Event::TransportLost { attempt });
            return true;
        }
        progress
    }

    /// Reads one frame, unless the consumer's event buffer is full.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> bool {
        let Some((attempt, ws)) = self.socket.as_mut() else {
            return false;
        };
        let attempt = *attempt;
        if self.read_parked || self.shared.events_full.load(Ordering::Acquire) {
            return false;
        }
        let item = match Pin::new(&mut *ws).poll_next(cx) {
            Poll::Pending => {
                self.read_parked = true;
                return false;
            }
            Poll::Ready(item) => item,
        };
        let event = match item {
            Some(Ok(message)) => self.on_frame(attempt, message),
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                log::debug!(
                    "ws-lifecycle {}: inbound message of {size} bytes exceeds {max_size}",
                    self.url()
                );
                Some(Event::MessageTooBig { attempt })
            }
            Some(Err(e)) => {
                log::debug!("ws-lifecycle {}: socket error: {e}", self.url());
                Some(Event::TransportLost { attempt })
            }
            // The stream ends after a completed close handshake or at EOF;
            // in Closing either is a clean end.
            None => Some(Event::TransportLost { attempt }),
        };
        if let Some(event) = event {
            self.handle(event);
        }
        true
    }

    /// Classifies one inbound frame; delivers what the caller should see.
    fn on_frame(&mut self, attempt: Attempt, message: Message) -> Option<Event> {
        let activity = Event::Activity { attempt };
        match message {
            Message::Text(text) => {
                let value = match serde_json::from_str::<serde_json::Value>(text.as_str()) {
                    Ok(v) => v,
                    Err(e) => {
                        let detail = format!("text frame is not JSON: {e}");
                        self.shared
                            .emit(SessionEvent::InvalidFrame { attempt, detail });
                        return Some(activity);
                    }
                };
                let awaiting = matches!(
                    self.machine.as_ref().map(Machine::state),
                    Some(State::AwaitingAck { .. })
                );
                if awaiting
                    && std::panic::catch_unwind(AssertUnwindSafe(|| (self.spec.ack)(&value)))
                        .unwrap_or(false)
                {
                    return Some(Event::Ack { attempt });
                }
                self.shared.emit(SessionEvent::Message(value));
                Some(activity)
            }
            Message::Binary(bytes) => {
                let event = if self.spec.binary {
                    SessionEvent::Binary(bytes.to_vec())
                } else {
                    SessionEvent::InvalidFrame {
                        attempt,
                        detail: format!("unexpected binary frame of {} bytes", bytes.len()),
                    }
                };
                self.shared.emit(event);
                Some(activity)
            }
            // tungstenite queued the pong; flush it out.
            Message::Ping(_) => {
                self.needs_flush = true;
                Some(activity)
            }
            Message::Pong(_) | Message::Frame(_) => Some(activity),
            Message::Close(frame) => {
                self.needs_flush = true;
                let (code, reason) = match frame {
                    Some(f) => (u16::from(f.code), f.reason.as_str().to_owned()),
                    None => (1005, String::new()),
                };
                Some(Event::PeerClosed {
                    attempt,
                    code,
                    reason,
                })
            }
        }
    }

    /// Re-arms the one timer only when the deadline moved earlier (so a busy
    /// socket does not touch the reactor per message), and fires it.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(machine) = self.machine.as_mut() else {
            return false;
        };
        let want = machine.poll_timeout();
        if let Some(want) = want {
            if self.armed.is_none_or(|armed| want < armed) {
                self.timer.set_at(want);
                self.armed = Some(want);
            }
        }
        if self.armed.is_none() {
            return false;
        }
        match Pin::new(&mut self.timer).poll(cx) {
            Poll::Pending => false,
            Poll::Ready(_) => {
                self.armed = None;
                machine.handle_timeout(Instant::now());
                true
            }
        }
    }

    /// The machine is Closed: release everything and tell the handles.
    fn finish(&mut self) {
        self.connecting = None;
        self.hello = None;
        self.socket = None;
        self.outbox.clear();
        let leftover: Vec<String> = self.closing_sends.drain(..).collect();
        self.shared.lock().outbound.extend(leftover);
        self.timer = Timer::never();
        self.armed = None;
        let reason = match self.machine.as_ref().map(Machine::state) {
            Some(State::Closed { reason }) => reason.clone(),
            _ => CloseReason::Requested,
        };
        log::debug!("ws-lifecycle {}: closed ({reason})", self.url());
        self.release(reason);
    }

    fn release(&mut self, reason: CloseReason) {
        self.done = true;
        {
            let mut inner = self.shared.lock();
            inner.status = Status::Closed;
            let mut unsent: Vec<String> = inner
                .queue
                .as_mut()
                .map(|q| q.drain().collect())
                .unwrap_or_default();
            unsent.extend(inner.outbound.drain(..));
            inner.unsent = unsent;
            inner.closed = Some(reason.clone());
            self.shared
                .push_locked(&mut inner, SessionEvent::Closed(reason));
            inner.finished = true;
            inner.session_waker = None;
            if let Some(w) = inner.events_waker.take() {
                w.wake();
            }
        }
        self.shared.changed.notify(usize::MAX);
        self.shared.space.notify(usize::MAX);
    }
}

impl Future for Session {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(());
        }
        if let Core::Pending(config) = &mut this.machine {
            let config = std::mem::take(config);
            match Machine::new(config, Instant::now()) {
                Ok(m) => this.machine = Core::Running(m),
                // Validated by the builder; unreachable, but never panic.
                Err(_) => {
                    this.release(CloseReason::Requested);
                    return Poll::Ready(());
                }
            }
        }
        this.read_parked = false;
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
        for _ in 0..PASSES_PER_POLL {
            this.take_commands();
            this.run_actions(cx);
            if this.machine.as_ref().is_some_and(Machine::is_closed) {
                this.finish();
                return Poll::Ready(());
            }
            let mut progress = this.poll_connect(cx);
            progress |= this.poll_hello(cx);
            progress |= this.poll_write(cx);
            progress |= this.poll_read(cx);
            progress |= this.poll_timer(cx);
            let pending_input = this.shared.has_commands.load(Ordering::Acquire);
            if !progress && !pending_input {
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
