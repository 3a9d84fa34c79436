//! The caller's side: the [`Client`] handle and the [`Events`] stream.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_tungstenite::tungstenite::http::{HeaderMap, StatusCode};
use futures_lite::Stream;

use crate::fsm::{Attempt, Cause, CloseReason, QueueError, Queued, Status};

use super::shared::{Inner, Shared};

/// What the session reports, in order. See [`Events`].
#[derive(Debug)]
pub enum SessionEvent {
    /// The state changed.
    Status {
        /// The previous state.
        from: Status,
        /// The new state.
        to: Status,
        /// Why.
        cause: Cause,
        /// The attempt the new state is about (for Reconnecting: the next one).
        attempt: Attempt,
    },
    /// The WebSocket upgrade of `attempt` succeeded.
    Upgraded(UpgradeResponse),
    /// A connection attempt failed before the socket opened (refused,
    /// unresolvable, TLS error such as an untrusted certificate, upgrade
    /// refused). It is retried on the backoff schedule.
    ConnectFailed {
        /// The attempt that failed.
        attempt: Attempt,
        /// What went wrong.
        error: String,
    },
    /// The hello builder failed; the attempt is abandoned and retried.
    HelloFailed {
        /// The attempt whose hello failed.
        attempt: Attempt,
        /// The builder's error.
        error: String,
    },
    /// A JSON text frame from the broker (the hello ack is not repeated here).
    Message(serde_json::Value),
    /// A binary frame (only when [`TransportConfig::binary`](super::TransportConfig::binary) is set).
    Binary(Vec<u8>),
    /// A frame that could not be delivered: non-JSON text, or binary when
    /// binary delivery is off. The session stays up.
    InvalidFrame {
        /// The attempt it arrived on.
        attempt: Attempt,
        /// What was wrong with it.
        detail: String,
    },
    /// A socket that had opened is gone; a reconnect follows unless the
    /// session is closing. Fail your in-flight requests here.
    Disconnected {
        /// The attempt whose socket is gone.
        attempt: Attempt,
        /// The peer's close code; 1006 when no close frame arrived or the
        /// session dropped the socket (ack timeout, stale link), 1009 when an
        /// inbound message was over the size limit.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// The next attempt will start after `delay`.
    ReconnectScheduled {
        /// The attempt that will start.
        attempt: Attempt,
        /// The jittered delay.
        delay: Duration,
    },
    /// Messages accepted by `send` that never reached the socket before
    /// their connection ended (only without the outbound queue; with it
    /// they go back into the queue instead).
    Unsent(Vec<String>),
    /// The consumer fell behind: this many notices (status changes,
    /// disconnects, schedules, connect failures) were dropped because the
    /// event buffer was full. [`Client::status`] tells the current state.
    Lagged {
        /// Notices dropped.
        missed: u64,
    },
    /// The session ended; this is the last event.
    Closed(CloseReason),
}

/// The visible part of the broker's upgrade response.
#[derive(Debug, Clone)]
pub struct UpgradeResponse {
    /// The attempt it belongs to.
    pub attempt: Attempt,
    /// The HTTP status (101).
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
}

impl UpgradeResponse {
    /// The subprotocol the broker selected, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.headers.get("sec-websocket-protocol")?.to_str().ok()
    }
}

/// Why a send was refused. The message is always handed back.
#[derive(Debug, thiserror::Error)]
#[error("send failed: {kind}")]
pub struct SendError {
    /// What went wrong.
    pub kind: SendErrorKind,
    /// The message that was not sent (the text as it would have gone out).
    pub message: Option<String>,
}

/// The reasons a send can be refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendErrorKind {
    /// Not Open and no outbound queue is configured.
    #[error("the session is {0}, not open")]
    NotOpen(Status),
    /// The send buffer is full: the socket is slower than the sender.
    /// Retry later or use `send_wait`, which waits for room.
    #[error("the send buffer is full")]
    Full,
    /// The outbound queue is full and its policy rejects new messages.
    #[error("the outbound queue is full")]
    QueueFull,
    /// The session has ended.
    #[error("the session is closed")]
    Closed,
    /// The value could not be serialised to JSON.
    #[error("the value is not serialisable: {0}")]
    Encode(String),
}

/// What happened to an accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Handed to the current connection's send buffer.
    Accepted,
    /// Queued until the next ack.
    Queued,
    /// Queued; the oldest queued message was evicted to make room and is
    /// handed back here.
    QueuedEvicting(String),
}

/// What `close` found when the session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// Why the session ended (Requested, unless it had already ended otherwise).
    pub reason: CloseReason,
    /// Messages never written when the session ended, oldest first: those
    /// still in the outbound queue, and those `send` accepted before the
    /// close that the socket never took (a broker that stopped reading).
    /// Messages a lost connection never wrote come back earlier, as
    /// [`SessionEvent::Unsent`] (or into the queue). Only the first `close`
    /// call receives them.
    pub unsent: Vec<String>,
}

/// `ready()` failed: the session ended before any attempt was acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session closed before it was ready: {0}")]
pub struct NotReady(pub CloseReason);

/// A close code and reason that may go on the wire (RFC 6455 §5.5, §7.4): a
/// code that may not be sent (1005, 1006, 1015, unassigned or out of range)
/// becomes 1000, and the reason is cut to 123 bytes at a character boundary
/// (a control frame carries at most 125).
fn sendable_close(code: u16, mut reason: String) -> (u16, String) {
    use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    let code = if CloseCode::from(code).is_allowed() {
        code
    } else {
        1000
    };
    if reason.len() > 123 {
        let mut cut = 123;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    (code, reason)
}

/// Keeps the session alive; the last one dropped closes it.
struct Owner {
    shared: Arc<Shared>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        request_close(&self.shared, 1000, String::new());
    }
}

fn request_close(shared: &Shared, code: u16, reason: String) {
    let (code, reason) = sendable_close(code, reason);
    let mut inner = shared.lock();
    if inner.commands.close.is_none() {
        inner.commands.close = Some((code, reason));
    }
    shared.command(&mut inner);
}

/// A handle to a running session. Cheap to clone; every method works in
/// every state. Dropping the last clone closes the session (code 1000).
#[derive(Clone)]
pub struct Client {
    owner: Arc<Owner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("status", &self.status())
            .finish()
    }
}

impl Client {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Client {
            owner: Arc::new(Owner { shared }),
        }
    }

    fn shared(&self) -> &Shared {
        &self.owner.shared
    }

    // ── getters ────────────────────────────────────────────────────────

    /// The current state's name.
    pub fn status(&self) -> Status {
        self.shared().lock().status
    }

    /// The current (or next) attempt number.
    pub fn attempt(&self) -> Attempt {
        self.shared().lock().attempt
    }

    /// Why the session ended, once it has.
    pub fn closed_reason(&self) -> Option<CloseReason> {
        self.shared().lock().closed.clone()
    }

    /// The last successful upgrade response (status and headers), if any.
    pub fn upgrade_response(&self) -> Option<UpgradeResponse> {
        self.shared().lock().last_response.clone()
    }

    /// Messages waiting in the outbound queue (0 without a queue).
    pub fn queued(&self) -> usize {
        self.shared().lock().queue.as_ref().map_or(0, |q| q.len())
    }

    // ── waiting ────────────────────────────────────────────────────────

    /// Resolves when any attempt has been acknowledged (at once if one
    /// already was), or fails with the reason the session ended first.
    pub async fn ready(&self) -> Result<(), NotReady> {
        self.wait_until(|inner| {
            if inner.opened_once {
                Some(Ok(()))
            } else if let Some(reason) = &inner.closed {
                Some(Err(NotReady(reason.clone())))
            } else {
                inner
                    .finished
                    .then_some(Err(NotReady(CloseReason::Requested)))
            }
        })
        .await
    }

    /// Waits until the session enters `status` (or is in it already, or has
    /// ended). A status entered and left again before this task looks still
    /// counts. Returns the status reached.
    pub async fn wait_for(&self, status: Status) -> Status {
        let entered_before = self.shared().lock().entered[status as usize];
        self.wait_until(|inner| {
            // Entered since the call, even if already left again.
            if inner.entered[status as usize] != entered_before {
                Some(status)
            } else {
                (inner.status == status || inner.finished).then_some(inner.status)
            }
        })
        .await
    }

    /// Re-checks `check` under the lock after every status change until it
    /// answers. The listener is taken before the check, so no change between
    /// the two is missed.
    async fn wait_until<T>(&self, mut check: impl FnMut(&mut Inner) -> Option<T>) -> T {
        loop {
            let listener = self.shared().changed.listen();
            if let Some(answer) = check(&mut self.shared().lock()) {
                return answer;
            }
            listener.await;
        }
    }

    // ── commands ───────────────────────────────────────────────────────

    /// Serialises `value` and sends it as one text frame. See
    /// [`send_text`](Self::send_text) for the rules.
    pub fn send(&self, value: &serde_json::Value) -> Result<Sent, SendError> {
        let text = serde_json::to_string(value).map_err(|e| SendError {
            kind: SendErrorKind::Encode(e.to_string()),
            message: None,
        })?;
        self.send_text(text)
    }

    /// Sends `text` verbatim as one text frame.
    ///
    /// While Open the message goes to the connection's bounded send buffer
    /// (full: [`SendErrorKind::Full`]). Otherwise it is queued when the
    /// outbound queue is on, else refused with [`SendErrorKind::NotOpen`].
    /// Every refusal hands the message back.
    ///
    /// Delivery is at most once: `Ok` means the frame was accepted for the
    /// current connection, not that the broker got it. Frames already
    /// written to the socket when the link dies are lost with it; accepted
    /// frames not yet written come back (into the queue, or as
    /// [`SessionEvent::Unsent`]). Use application-level acks where loss matters.
    pub fn send_text(&self, text: String) -> Result<Sent, SendError> {
        let mut inner = self.shared().lock();
        let refuse = |kind, text| {
            Err(SendError {
                kind,
                message: Some(text),
            })
        };
        if inner.closed.is_some() || inner.finished {
            return refuse(SendErrorKind::Closed, text);
        }
        if inner.status == Status::Open {
            if inner.outbound.len() >= inner.send_capacity {
                return refuse(SendErrorKind::Full, text);
            }
            inner.outbound.push_back(text);
            Shared::wake_session(&mut inner);
            return Ok(Sent::Accepted);
        }
        let status = inner.status;
        match inner.queue.as_mut() {
            None => refuse(SendErrorKind::NotOpen(status), text),
            Some(queue) => match queue.push(text) {
                Ok(Queued::Queued) => Ok(Sent::Queued),
                Ok(Queued::Evicted(old)) => Ok(Sent::QueuedEvicting(old)),
                Err(QueueError::Full(text)) => refuse(SendErrorKind::QueueFull, text),
            },
        }
    }

    /// Like [`send_text`](Self::send_text), but waits for room instead of
    /// failing with [`SendErrorKind::Full`] (backpressure).
    pub async fn send_wait(&self, text: String) -> Result<Sent, SendError> {
        let mut text = text;
        loop {
            let listener = self.shared().space.listen();
            match self.send_text(text) {
                Err(SendError {
                    kind: SendErrorKind::Full,
                    message: Some(back),
                }) => text = back,
                other => return other,
            }
            listener.await;
        }
    }

    /// Drops the current connection (if any) and starts the next attempt
    /// at once, skipping a pending backoff delay. Ignored while closing.
    pub fn reconnect_now(&self) {
        let mut inner = self.shared().lock();
        inner.commands.reconnect_now = true;
        self.shared().command(&mut inner);
    }

    /// Closes with code 1000. See [`close_with`](Self::close_with).
    pub async fn close(&self) -> Closed {
        self.close_with(1000, "").await
    }

    /// Closes the session: when a socket is open, writes what `send`
    /// already accepted, then a close frame with `code` and `reason`, and
    /// waits at most the close grace for the broker's answer; cancels at
    /// once otherwise. Accepted messages the socket never took come back in
    /// [`Closed::unsent`]. Idempotent; works in every state. A code that may
    /// not be sent (RFC 6455 §7.4: 1005, 1006, 1015, unassigned, above 4999)
    /// is sent as 1000; a reason over 123 bytes is cut at a character
    /// boundary (a control frame carries at most 125 bytes). Resolves once nothing of the session remains (needs the
    /// session future to be running, as it is with
    /// [`ClientBuilder::spawn`](super::ClientBuilder::spawn)).
    pub async fn close_with(&self, code: u16, reason: &str) -> Closed {
        request_close(self.shared(), code, reason.to_owned());
        self.wait_until(|inner| {
            inner.finished.then(|| Closed {
                reason: inner.closed.clone().unwrap_or(CloseReason::Requested),
                unsent: std::mem::take(&mut inner.unsent),
            })
        })
        .await
    }
}

/// The session's events, in order, as a [`Stream`]. Ends after
/// [`SessionEvent::Closed`].
///
/// **Drain it.** It is bounded by
/// [`TransportConfig::event_capacity`](super::TransportConfig::event_capacity).
/// When it is full the session stops reading the socket (TCP backpressure
/// reaches the broker; memory stays bounded) while its timers keep running,
/// and notices it cannot store are counted and reported as one
/// [`SessionEvent::Lagged`] once there is room. So a consumer that stalls for
/// longer than `stale_after` (or, while awaiting the ack, `ack_timeout`)
/// makes the link look dead: the session drops it and reconnects, and the
/// consumer sees `Lagged` and the current [`Client::status`] when it reads
/// again. Dropping `Events` is fine: events are then discarded and the socket
/// is always read.
pub struct Events {
    shared: Arc<Shared>,
}

impl Events {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Events { shared }
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
        let mut inner = self.shared.lock();
        if let Some(event) = inner.events.pop_front() {
            if inner.events.len() + 1 >= inner.event_capacity {
                // It was full: the session may be waiting to read again.
                self.shared.update_room(&inner);
                Shared::wake_session(&mut inner);
            }
            return Poll::Ready(Some(event));
        }
        inner.take_lagged();
        if let Some(lagged) = inner.events.pop_front() {
            return Poll::Ready(Some(lagged));
        }
        if inner.finished {
            return Poll::Ready(None);
        }
        inner.events_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        inner.events_alive = false;
        inner.events.clear();
        self.shared.update_room(&inner);
        Shared::wake_session(&mut inner);
    }
}
