//! What the machine tells its driver to do (commands) and to report
//! (notices). Actions are plain data; the machine never performs I/O.

use std::fmt;
use std::time::Duration;

use super::{Attempt, Status};

/// One output of the machine. Drain them all, in order, after every input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Command: open a new transport (TCP, TLS, upgrade) for `attempt`, then
    /// report [`Event::SocketOpened`](super::Event::SocketOpened) or
    /// [`Event::ConnectFailed`](super::Event::ConnectFailed).
    Connect {
        /// The attempt the transport belongs to.
        attempt: Attempt,
    },
    /// Command: build the hello for `attempt` and send its text verbatim;
    /// report [`Event::HelloFailed`](super::Event::HelloFailed) on error.
    SendHello {
        /// The attempt whose socket gets the hello.
        attempt: Attempt,
    },
    /// Command: write every queued outbound message, in order, now. Emitted
    /// right after the ack, before anything else may be sent.
    FlushQueue {
        /// The attempt that just opened.
        attempt: Attempt,
    },
    /// Command: send a WebSocket ping.
    SendPing {
        /// The attempt whose socket gets the ping.
        attempt: Attempt,
    },
    /// Command: send a close frame and keep reading until the peer's close
    /// frame. When `DropTransport` follows at once (the machine drops an
    /// opened socket itself: failed hello, ack timeout, stale link, failed
    /// wake probe, reconnect-now, protocol error, message too big) it is best-effort:
    /// one non-blocking write, no wait, then drop.
    SendClose {
        /// The attempt whose socket gets the close frame.
        attempt: Attempt,
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// Command: drop the transport at once, without a close handshake, and
    /// never read it again. Also cancels a connect in progress.
    DropTransport {
        /// The attempt whose transport goes.
        attempt: Attempt,
    },
    /// Notice: the state changed.
    StatusChanged {
        /// The previous state.
        from: Status,
        /// The new state.
        to: Status,
        /// What caused the change.
        cause: Cause,
        /// The attempt the new state is about (for Reconnecting: the next one).
        attempt: Attempt,
    },
    /// Notice: a socket that had opened is gone (outside a requested close).
    /// Emitted once per such attempt, before the reconnect is scheduled, so
    /// the caller can fail its in-flight requests.
    Disconnected {
        /// The attempt whose socket is gone.
        attempt: Attempt,
        /// The peer's close code; 1006 when no close frame arrived or the
        /// socket was dropped by us (whatever close code we sent on the
        /// way out), 1009 when an inbound message was over the size limit
        /// (we sent that close code).
        code: u16,
        /// The peer's close reason, or why we dropped the socket.
        reason: String,
    },
    /// Notice: attempt `attempt` will start after `delay`.
    ReconnectScheduled {
        /// The attempt that will start.
        attempt: Attempt,
        /// The real delay: the jittered backoff delay, or a retry-after
        /// hint's when that is longer (see
        /// [`Verdict::RetryAfter`](crate::Verdict::RetryAfter)).
        delay: Duration,
    },
}

impl Action {
    /// A short name for the diagram and logs (`SendHello`).
    pub fn name(&self) -> &'static str {
        match self {
            Action::Connect { .. } => "Connect",
            Action::SendHello { .. } => "SendHello",
            Action::FlushQueue { .. } => "FlushQueue",
            Action::SendPing { .. } => "SendPing",
            Action::SendClose { .. } => "SendClose",
            Action::DropTransport { .. } => "DropTransport",
            Action::StatusChanged { .. } => "StatusChanged",
            Action::Disconnected { .. } => "Disconnected",
            Action::ReconnectScheduled { .. } => "ReconnectScheduled",
        }
    }

    /// Whether this action is a notice for the caller rather than a command
    /// for the transport.
    pub fn is_notice(&self) -> bool {
        matches!(
            self,
            Action::StatusChanged { .. }
                | Action::Disconnected { .. }
                | Action::ReconnectScheduled { .. }
        )
    }
}

/// Why a transition happened; carried by [`Action::StatusChanged`] and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    /// The transport opened.
    SocketOpened,
    /// Resolve, TCP, TLS, the proxy or the upgrade failed.
    ConnectFailed,
    /// The connect deadline passed.
    ConnectTimeout,
    /// The hello builder failed.
    HelloFailed,
    /// The ack deadline passed.
    AckTimeout,
    /// The broker acknowledged the hello.
    Acked,
    /// No inbound frame for `stale_after`: the link is half-dead.
    Stale,
    /// Nothing arrived within `wake_probe` of the ping sent when the host
    /// woke from a suspend: the link died while the host slept.
    WakeProbeFailed,
    /// The peer sent a close frame.
    PeerClosed,
    /// The transport ended without a close frame.
    TransportLost,
    /// An inbound message exceeded the size limit.
    MessageTooBig,
    /// The peer broke the protocol (a protocol violation, invalid UTF-8).
    ProtocolError,
    /// The backoff delay elapsed.
    RetryDue,
    /// The caller asked for an immediate reconnect.
    ReconnectNow,
    /// The caller asked to close.
    CloseRequested,
    /// The peer answered our close frame (or the socket ended) while closing.
    CloseCompleted,
    /// The close grace passed without the peer's answer.
    CloseGraceExpired,
    /// The failure policy judged a failure terminal (a close rule, an HTTP
    /// status that is not retried, a proxy's refusal, the caller's verdict).
    Rejected,
    /// The give-up budget ran out.
    GaveUp,
}

impl Cause {
    /// The snake_case name used in logs (`ack_timeout`).
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::SocketOpened => "socket_opened",
            Cause::ConnectFailed => "connect_failed",
            Cause::ConnectTimeout => "connect_timeout",
            Cause::HelloFailed => "hello_failed",
            Cause::AckTimeout => "ack_timeout",
            Cause::Acked => "acked",
            Cause::Stale => "stale",
            Cause::WakeProbeFailed => "wake_probe_failed",
            Cause::PeerClosed => "peer_closed",
            Cause::TransportLost => "transport_lost",
            Cause::MessageTooBig => "message_too_big",
            Cause::ProtocolError => "protocol_error",
            Cause::RetryDue => "retry_due",
            Cause::ReconnectNow => "reconnect_now",
            Cause::CloseRequested => "close_requested",
            Cause::CloseCompleted => "close_completed",
            Cause::CloseGraceExpired => "close_grace_expired",
            Cause::Rejected => "rejected",
            Cause::GaveUp => "gave_up",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
