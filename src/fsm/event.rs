//! What the outside world tells the machine.

use super::Attempt;

/// An input to the machine. Socket events carry the [`Attempt`] they belong
/// to; an event of another attempt, or one that does not apply in the current
/// state, is ignored and produces no action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The transport is open: TCP connected, TLS done, upgrade accepted.
    SocketOpened {
        /// The attempt whose transport opened.
        attempt: Attempt,
    },
    /// TCP connect, TLS or the upgrade failed.
    ConnectFailed {
        /// The attempt that failed.
        attempt: Attempt,
    },
    /// The hello builder returned an error (or the hello could not be written).
    HelloFailed {
        /// The attempt whose hello failed.
        attempt: Attempt,
    },
    /// A frame the caller's ack predicate accepted. Outside AwaitingAck it is
    /// just activity: the driver only asks the predicate in AwaitingAck.
    Ack {
        /// The attempt the frame arrived on.
        attempt: Attempt,
    },
    /// Any other inbound frame (message, binary, ping, pong): proof of life.
    Activity {
        /// The attempt the frame arrived on.
        attempt: Attempt,
    },
    /// The peer's close frame arrived (its own close, or the reply to ours).
    PeerClosed {
        /// The attempt the frame arrived on.
        attempt: Attempt,
        /// The peer's close code (1005 when its frame carried none).
        code: u16,
        /// The peer's close reason.
        reason: String,
    },
    /// The transport ended without a close frame: error, reset or EOF.
    TransportLost {
        /// The attempt whose transport ended.
        attempt: Attempt,
    },
    /// An inbound message exceeded the maximum size. The reader is not
    /// reusable after this, so the connection ends (close code 1009).
    MessageTooBig {
        /// The attempt the message arrived on.
        attempt: Attempt,
    },
    /// The peer broke the protocol (code 1002) or sent invalid UTF-8 in a
    /// text frame (1007): the connection ends, that close code sent.
    ProtocolError {
        /// The attempt the bad data arrived on.
        attempt: Attempt,
        /// The close code to send.
        code: u16,
    },
    /// The consumer's event buffer is full: the session stopped reading.
    ReadPaused,
    /// The consumer made room: the session reads again.
    ReadResumed,
    /// The caller asked to close: works in every state and is idempotent.
    Close {
        /// The close code to send (1000 for a normal close).
        code: u16,
        /// The close reason to send.
        reason: String,
    },
    /// The caller asked to drop the current connection (if any) and start
    /// the next attempt at once, skipping any pending delay.
    ReconnectNow,
    /// Time passed: fire whatever deadline is due at `now`. A no-op when none
    /// is; [`Machine::handle_timeout`](super::Machine::handle_timeout) sends it.
    Timeout,
}

impl Event {
    /// The attempt a socket event belongs to; `None` for caller commands and
    /// timeouts.
    pub fn attempt(&self) -> Option<Attempt> {
        match *self {
            Event::SocketOpened { attempt }
            | Event::ConnectFailed { attempt }
            | Event::HelloFailed { attempt }
            | Event::Ack { attempt }
            | Event::Activity { attempt }
            | Event::PeerClosed { attempt, .. }
            | Event::TransportLost { attempt }
            | Event::MessageTooBig { attempt }
            | Event::ProtocolError { attempt, .. } => Some(attempt),
            Event::Close { .. }
            | Event::ReconnectNow
            | Event::Timeout
            | Event::ReadPaused
            | Event::ReadResumed => None,
        }
    }

    /// A short name for logs and the diagram (`SocketOpened`).
    pub fn name(&self) -> &'static str {
        match self {
            Event::SocketOpened { .. } => "SocketOpened",
            Event::ConnectFailed { .. } => "ConnectFailed",
            Event::HelloFailed { .. } => "HelloFailed",
            Event::Ack { .. } => "Ack",
            Event::Activity { .. } => "Activity",
            Event::PeerClosed { .. } => "PeerClosed",
            Event::TransportLost { .. } => "TransportLost",
            Event::MessageTooBig { .. } => "MessageTooBig",
            Event::ProtocolError { .. } => "ProtocolError",
            Event::ReadPaused => "ReadPaused",
            Event::ReadResumed => "ReadResumed",
            Event::Close { .. } => "Close",
            Event::ReconnectNow => "ReconnectNow",
            Event::Timeout => "Timeout",
        }
    }
}
