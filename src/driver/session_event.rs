//! What the session reports to the caller, as plain data.

use std::time::Duration;

use crate::fsm::{Attempt, Cause, CloseReason, Status};

use crate::fsm::session::Notice;
use crate::fsm::session::inbound;

use super::spec::HelloError;
use super::transport::error::ConnectError;
use super::transport::upgrade::UpgradeResponse;

/// What the session reports, in order. See [`Events`](super::Events).
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
    /// unresolvable, TLS error such as an untrusted certificate, the connect
    /// deadline, an upgrade answer other than 101 — see
    /// [`ConnectError::http_status`]). The failure policy decides what
    /// follows: by default it is retried, except an HTTP status that is not
    /// retried (such as 403), which ends the session (`Closed` follows).
    ConnectFailed {
        /// The attempt that failed.
        attempt: Attempt,
        /// What went wrong, typed.
        error: ConnectError,
    },
    /// The hello builder failed (or the after-ack builder panicked); the
    /// attempt is abandoned and retried.
    HelloFailed {
        /// The attempt whose hello failed.
        attempt: Attempt,
        /// The builder's error.
        error: HelloError,
    },
    /// The broker acked `attempt`: `ack` is the ack frame itself (which
    /// may carry a resume token, a presence id, a lease). It follows the
    /// status change to Open at once and is never folded into
    /// [`Lagged`](Self::Lagged). [`Client::last_ack`](super::Client::last_ack)
    /// returns the latest, and the next hello sees it as
    /// [`HelloContext::previous_ack`](super::HelloContext::previous_ack).
    Acked {
        /// The attempt that was acked.
        attempt: Attempt,
        /// The ack frame.
        ack: serde_json::Value,
    },
    /// A JSON text frame from the broker (the ack is reported as
    /// [`Acked`](Self::Acked), not here).
    Message(serde_json::Value),
    /// A text frame, verbatim and unparsed: only with
    /// [`DeliveryConfig::raw_text`](super::DeliveryConfig::raw_text),
    /// instead of [`Message`](Self::Message) (and, for text that is not
    /// JSON, instead of [`InvalidFrame`](Self::InvalidFrame)). Deserialize it into your
    /// own type with `serde_json::from_str(&text)`.
    ///
    /// The text is copied once out of the read buffer (one allocation of
    /// its length). A zero-copy view would keep the read buffer shared
    /// while the event waits in the event buffer, and tungstenite then
    /// reads the socket one small piece (and one allocation) per frame:
    /// measured, that costs more than the copy (`docs/PERFORMANCE.md`).
    Text(String),
    /// A binary frame (only when [`DeliveryConfig::binary`](super::DeliveryConfig::binary) is set).
    Binary(Vec<u8>),
    /// A frame that could not be delivered: non-JSON text (unless
    /// [`DeliveryConfig::raw_text`](super::DeliveryConfig::raw_text) is on,
    /// which delivers it as [`Text`](Self::Text)), or binary when binary
    /// delivery is off.
    /// The session stays up.
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
        /// What the peer said: its close code if its close frame arrived;
        /// 1006 when none did or the session dropped the socket itself (ack
        /// timeout, stale link, protocol error: `reason` says why); 1009
        /// when an inbound message was over the size limit.
        code: u16,
        /// The peer's close reason, or why the session dropped the socket.
        reason: String,
    },
    /// The next attempt will start after `delay`.
    ReconnectScheduled {
        /// The attempt that will start.
        attempt: Attempt,
        /// The real delay: the jittered backoff, or a server's
        /// `Retry-After` when that is longer (capped, spread upward).
        delay: Duration,
    },
    /// Messages `send` accepted that the lost connection never wrote,
    /// oldest first (only without the outbound queue; with it they go back
    /// into the queue). They count against the send capacity until this
    /// event is taken.
    Unsent(Vec<String>),
    /// The consumer fell behind: this many notices (status changes,
    /// disconnects, schedules, connect failures) were dropped because the
    /// event buffer was full. [`Client::status`](super::Client::status) tells the current state.
    Lagged {
        /// Notices dropped.
        missed: u64,
    },
    /// The session ended; this is the last event. When it ended without a
    /// `close()` call (gave up, rejected), the messages never written come
    /// back here; otherwise `close()` returns them and `unsent` is empty.
    Closed(CloseOutcome),
}

/// How a session ended, and what it never wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseOutcome {
    /// Why the session ended.
    pub reason: CloseReason,
    /// Messages accepted but never written, oldest first (accepted while
    /// Open, then queued). Each message comes back exactly once: in the
    /// `Closed` event, or from the first `close()` call.
    pub unsent: Vec<String>,
}

impl std::fmt::Display for CloseOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.reason)?;
        match self.unsent.len() {
            0 => Ok(()),
            n => write!(f, " ({n} messages never written)"),
        }
    }
}

/// The event the consumer sees for one buffered.
pub(crate) fn into_event(notice: Notice<SessionEvent>) -> SessionEvent {
    match notice {
        Notice::Status {
            from,
            to,
            cause,
            attempt,
        } => SessionEvent::Status {
            from,
            to,
            cause,
            attempt,
        },
        Notice::Acked { attempt, ack } => SessionEvent::Acked { attempt, ack },
        Notice::Disconnected {
            attempt,
            code,
            reason,
        } => SessionEvent::Disconnected {
            attempt,
            code,
            reason,
        },
        Notice::ReconnectScheduled { attempt, delay } => {
            SessionEvent::ReconnectScheduled { attempt, delay }
        }
        Notice::Unsent(messages) => SessionEvent::Unsent(messages),
        Notice::Lagged { missed } => SessionEvent::Lagged { missed },
        Notice::Closed { reason, unsent } => SessionEvent::Closed(CloseOutcome { reason, unsent }),
        Notice::Json { attempt, text } => match serde_json::from_str(&text) {
            Ok(value) => SessionEvent::Message(value),
            Err(e) => SessionEvent::InvalidFrame {
                attempt,
                detail: inbound::not_json(&e),
            },
        },
        Notice::Message(value) => SessionEvent::Message(value),
        Notice::Text(text) => SessionEvent::Text(text),
        Notice::Binary(bytes) => SessionEvent::Binary(bytes),
        Notice::InvalidFrame { attempt, detail } => SessionEvent::InvalidFrame { attempt, detail },
        Notice::Report(event) => event,
    }
}
