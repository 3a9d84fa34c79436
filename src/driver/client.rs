//! The caller's handle.

use std::sync::Arc;
use std::time::Instant;

use crate::fsm::{Attempt, CloseReason, Status};

use super::session_event::CloseOutcome;
use super::shared::{Inner, Shared};
use super::transport::upgrade::{KeptResponse, UpgradeResponse};
use crate::fsm::outbound::{SendError, SendErrorKind, Sent};
use crate::fsm::session::Stats;

/// `ready()` failed: the session ended before it was Open.
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

/// Keeps the session alive: every [`Client`] clone and the
/// [`Events`](super::Events) stream hold one; the last one dropped closes
/// the session (code 1000).
pub(crate) struct Owner {
    shared: Arc<Shared>,
}

impl Owner {
    pub(crate) fn new(shared: Arc<Shared>) -> Arc<Self> {
        Arc::new(Owner { shared })
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        request_close(&self.shared, 1000, String::new());
    }
}

fn request_close(shared: &Shared, code: u16, reason: String) {
    let (code, reason) = sendable_close(code, reason);
    let mut inner = shared.lock();
    // From now on `send` refuses: a close was asked for, and the machine
    // hears it in the same critical section.
    inner.core.close(code, reason, Instant::now());
    shared.commanded(&mut inner);
}

/// A handle to a running session. Cheap to clone; every method works in
/// every state. The session lives while any clone or the
/// [`Events`](super::Events) stream is alive.
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
    pub(crate) fn new(owner: Arc<Owner>) -> Self {
        Client { owner }
    }

    fn shared(&self) -> &Shared {
        &self.owner.shared
    }

    // ── getters ────────────────────────────────────────────────────────

    /// The current state's name. `Open` from the moment sends are accepted.
    pub fn status(&self) -> Status {
        self.shared().lock().core.status()
    }

    /// The current (or next) attempt number.
    pub fn attempt(&self) -> Attempt {
        self.shared().lock().core.attempt()
    }

    /// Why the session ended, once it has.
    pub fn closed_reason(&self) -> Option<CloseReason> {
        self.shared().lock().core.closed_reason()
    }

    /// The last successful upgrade response (status and headers), if any.
    pub fn upgrade_response(&self) -> Option<UpgradeResponse> {
        self.shared()
            .lock()
            .last_response
            .as_ref()
            .map(KeptResponse::response)
    }

    /// The latest ack frame (of this or an earlier connection), if any
    /// attempt was acked; see [`SessionEvent::Acked`](super::SessionEvent::Acked).
    pub fn last_ack(&self) -> Option<serde_json::Value> {
        self.shared().lock().core.last_ack()
    }

    /// A snapshot of the session's counters: attempts, opens, disconnects
    /// by cause, messages and bytes each way, the ping round trip (last
    /// and smoothed), time in the current status, the current
    /// connection's uptime, the last failure. See [`Stats`].
    pub fn stats(&self) -> Stats {
        self.shared().lock().core.stats(Instant::now())
    }

    /// Messages waiting in the outbound queue (0 without a queue).
    pub fn queued(&self) -> usize {
        self.shared().lock().core.ledger().queued()
    }

    /// Messages written so far: the last byte of their frame was taken by
    /// the transport (feature `testing`: for accounting tests).
    #[cfg(feature = "testing")]
    pub fn written(&self) -> u64 {
        self.shared().lock().core.ledger().written()
    }

    /// The allocated capacity of the session's own buffers (the event
    /// buffer, then the outbound ones; feature `testing`, so a soak test
    /// can check they stay flat).
    #[cfg(feature = "testing")]
    pub fn buffer_capacities(&self) -> Vec<(&'static str, usize)> {
        let inner = self.shared().lock();
        let mut all = vec![("events", inner.core.events_allocated())];
        all.extend(inner.core.ledger().capacities());
        all
    }

    // ── waiting ────────────────────────────────────────────────────────

    /// Resolves when the session is Open (at once if it is now), or fails
    /// once it is Closed. Drain [`Events`](super::Events) alongside: a
    /// broker that sends more than `event_capacity` frames before its ack
    /// fills the buffer, reading pauses, and the ack is not read until the
    /// consumer makes room.
    pub async fn ready(&self) -> Result<(), NotReady> {
        self.wait_until(|inner| {
            if inner.core.status() == Status::Open {
                Some(Ok(()))
            } else {
                inner
                    .core
                    .closed_reason()
                    .map(|reason| Err(NotReady(reason)))
            }
        })
        .await
    }

    /// Waits until the session enters `status` (or is in it already, or has
    /// ended). A status entered and left again before this task looks still
    /// counts. Returns the status reached.
    pub async fn wait_for(&self, status: Status) -> Status {
        let entered_before = self.shared().lock().core.entered(status);
        self.wait_until(|inner| {
            // Entered since the call, even if already left again.
            if inner.core.entered(status) != entered_before {
                Some(status)
            } else {
                let now = inner.core.status();
                (now == status || inner.core.is_finished()).then_some(now)
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
        self.send_json(value)
    }

    /// Serialises any `T: Serialize` once, straight to the frame's text,
    /// and sends it. See [`send_text`](Self::send_text) for the rules.
    pub fn send_json<T: serde::Serialize + ?Sized>(&self, value: &T) -> Result<Sent, SendError> {
        let text = serde_json::to_string(value).map_err(|e| SendError {
            kind: SendErrorKind::Encode(e.to_string()),
            message: None,
        })?;
        self.send_text(text)
    }

    /// Sends `text` verbatim as one text frame.
    ///
    /// While Open the message goes to the connection's send buffer. Everything
    /// held back for the caller (buffered, being written, or handed back in
    /// an [`Unsent`](super::SessionEvent::Unsent) event not yet taken) is
    /// capped at [`DeliveryConfig::send_capacity`](super::DeliveryConfig::send_capacity):
    /// at the cap this returns [`SendErrorKind::Full`]. Not Open, the message
    /// is queued when the outbound queue is on, else refused with
    /// [`SendErrorKind::NotOpen`]; once `close` was called, refused with
    /// `NotOpen(Closing)`. Every refusal hands the message back.
    ///
    /// Delivery is at most once and the accounting is exact: every accepted
    /// message is either **written** (its frame's last byte was taken by
    /// the TCP socket, or by rustls for `wss://`; it may die with the link)
    /// or **handed back** (into the queue, as an `Unsent` event, or by
    /// [`close`](Self::close)), never both, never neither. Use
    /// application-level acks where loss matters.
    pub fn send_text(&self, text: String) -> Result<Sent, SendError> {
        let mut inner = self.shared().lock();
        let sent = inner.core.send(text)?;
        if sent == Sent::Accepted {
            Shared::wake_session(&mut inner);
        }
        Ok(sent)
    }

    /// Like [`send_text`](Self::send_text), but waits for room instead of
    /// failing with [`SendErrorKind::Full`] (backpressure).
    pub async fn send_wait(&self, text: String) -> Result<Sent, SendError> {
        let mut text = text;
        // Listen only after a refusal (a listener costs an allocation), then
        // try again before waiting, so room freed in between is not missed.
        let mut listener = None;
        loop {
            match self.send_text(text) {
                Err(SendError {
                    kind: SendErrorKind::Full,
                    message: Some(back),
                }) => text = back,
                other => return other,
            }
            match listener.take() {
                None => listener = Some(self.shared().space.listen()),
                Some(listener) => listener.await,
            }
        }
    }

    /// Drops the current connection (if any, with close code 1000) and
    /// starts the next attempt at once, skipping a pending backoff delay.
    /// Respects the attempt budget: gives up when it is spent. Ignored
    /// while closing.
    pub fn reconnect_now(&self) {
        let mut inner = self.shared().lock();
        inner.core.reconnect_now(Instant::now());
        self.shared().commanded(&mut inner);
    }

    /// Closes with code 1000. See [`close_with`](Self::close_with).
    pub async fn close(&self) -> CloseOutcome {
        self.close_with(1000, "").await
    }

    /// Closes the session: when a socket is open, writes what `send`
    /// already accepted, then a close frame with `code` and `reason`, and
    /// waits at most the close grace for the broker's answer; cancels at
    /// once otherwise. From the call on, `send` fails with
    /// `NotOpen(Closing)`. Accepted messages never written come back in
    /// [`CloseOutcome::unsent`], oldest first (to the first call only; none
    /// when the session had already ended by itself and the `Closed` event
    /// carried them). Idempotent; works in every state.
    ///
    /// A code that may not be sent (RFC 6455 §7.4: 1005, 1006, 1015,
    /// unassigned, above 4999) is sent as 1000; a reason over 123 bytes is
    /// cut at a character boundary (a control frame carries at most 125
    /// bytes). Resolves once nothing of the session remains (needs the
    /// session future to be running, as it is with
    /// [`ClientBuilder::spawn`](super::ClientBuilder::spawn)).
    pub async fn close_with(&self, code: u16, reason: &str) -> CloseOutcome {
        request_close(self.shared(), code, reason.to_owned());
        self.wait_until(|inner| {
            inner.core.is_finished().then(|| CloseOutcome {
                reason: inner.core.closed_reason().unwrap_or(CloseReason::Requested),
                unsent: inner.core.take_returned(),
            })
        })
        .await
    }
}
