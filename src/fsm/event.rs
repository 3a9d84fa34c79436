//! What the outside world tells the machine.

use super::{Attempt, ConnectFailure, Failure, Verdict};

/// An input to the machine. Socket events carry the attempt they belong to
/// (counted from 1); an event of another attempt, or one that does not apply in the current
/// state, is ignored and produces no action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The transport is open: TCP connected, TLS done, upgrade accepted.
    SocketOpened {
        /// The attempt whose transport opened.
        attempt: Attempt,
    },
    /// The transport did not open: resolve, TCP, TLS, proxy or the
    /// upgrade failed (an upgrade answer other than 101 included). The
    /// policy classifies `failure` ([`Config::verdict`](super::Config::verdict)).
    ConnectFailed {
        /// The attempt that failed.
        attempt: Attempt,
        /// Why it failed.
        failure: ConnectFailure,
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
    /// The peer broke the protocol: tungstenite reported a protocol
    /// violation (`code` 1002) or invalid UTF-8 in a text frame (1007). Like
    /// [`MessageTooBig`](Self::MessageTooBig) it ends the connection: a
    /// best-effort close frame with `code` (1002 when `code` may not be
    /// sent in a close frame), then the transport is dropped.
    ProtocolError {
        /// The attempt the bad frame arrived on.
        attempt: Attempt,
        /// The close code that names the violation (1002 or 1007).
        code: u16,
    },
    /// The driver stopped reading the socket because the caller's event
    /// buffer is full. While paused, the Ack, Stale and Retry timers do not
    /// run (unread bytes are not silence, and no new attempt starts); the
    /// Connect, Ping and CloseGrace timers do. Ignored when already paused
    /// and in Closed; emits no action.
    ReadPaused,
    /// The caller's event buffer has room again and the driver reads once
    /// more. The paused span is not counted as silence: AwaitingAck's ack
    /// deadline moves later by the part of the span spent in AwaitingAck,
    /// and Open's `last_activity` moves later by the span, but never past
    /// the moment of resuming.
    /// Ignored when not paused and in Closed; emits no action.
    ReadResumed,
    /// The host woke from a suspend: the driver saw the wall clock advance
    /// past the monotonic clock (which stops while the machine sleeps), so
    /// a link that died during the sleep may look fresh. In Open a ping
    /// goes out at once and the wake probe ([`Timer::Probe`](super::Timer::Probe),
    /// [`Config::wake_probe`](super::Config::wake_probe)) starts: any
    /// inbound activity clears it, its expiry drops the link like a stale
    /// one. A probe already running keeps its deadline (the ping goes out
    /// again). Ignored in every other state: their deadlines already bound
    /// the wait (connect, ack, close grace), a pending retry is unaffected,
    /// and Closed absorbs everything.
    Woke,
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
    /// `event`, with the caller's verdict on the failure it reports: the
    /// driver asked the caller's predicate, and `verdict` replaces the
    /// policy's default for that failure (a terminal one is
    /// [`RejectedBy::Caller`](super::RejectedBy::Caller)). When `event`
    /// causes no failure (it is ignored, or a timeout fires a ping) the
    /// verdict is unused. `Judged { Timeout }` judges the failure of the
    /// timer due (connect, ack or stale deadline; see [`Timer::failure`](super::Timer::failure)).
    Judged {
        /// The caller's verdict.
        verdict: Verdict,
        /// The event that reports the failure.
        event: Box<Event>,
    },
}

impl Event {
    /// The event under any [`Judged`](Event::Judged) wrappers. A loop, not
    /// recursion: every event passes here on the hot path, and a recursive
    /// function is never inlined.
    pub(crate) fn innermost(&self) -> &Event {
        let mut this = self;
        while let Event::Judged { event, .. } = this {
            this = event;
        }
        this
    }

    /// The attempt a socket event belongs to; `None` for caller commands,
    /// read pauses, wake-ups and timeouts.
    pub fn attempt(&self) -> Option<Attempt> {
        match *self.innermost() {
            Event::Judged { .. } => None, // unreachable: unwrapped
            Event::SocketOpened { attempt }
            | Event::ConnectFailed { attempt, .. }
            | Event::HelloFailed { attempt }
            | Event::Ack { attempt }
            | Event::Activity { attempt }
            | Event::PeerClosed { attempt, .. }
            | Event::TransportLost { attempt }
            | Event::MessageTooBig { attempt }
            | Event::ProtocolError { attempt, .. } => Some(attempt),
            Event::ReadPaused
            | Event::ReadResumed
            | Event::Woke
            | Event::Close { .. }
            | Event::ReconnectNow
            | Event::Timeout => None,
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
            Event::Woke => "Woke",
            Event::Close { .. } => "Close",
            Event::ReconnectNow => "ReconnectNow",
            Event::Timeout => "Timeout",
            Event::Judged { .. } => "Judged",
        }
    }

    /// `self` with the caller's verdict on its failure (see [`Event::Judged`]).
    pub fn judged(self, verdict: Verdict) -> Event {
        Event::Judged {
            verdict,
            event: Box::new(self),
        }
    }

    /// The failure this event reports, if it reports one (whether it
    /// applies in the current state is the machine's business: see
    /// [`Machine::failure`](super::Machine::failure)). `None` for
    /// timeouts: their failure depends on the timer due.
    pub fn failure(&self) -> Option<Failure> {
        Some(match self.innermost() {
            Event::ConnectFailed { failure, .. } => Failure::Connect(*failure),
            Event::HelloFailed { .. } => Failure::HelloFailed,
            Event::PeerClosed { code, reason, .. } => Failure::PeerClosed {
                code: *code,
                reason: reason.clone(),
            },
            Event::TransportLost { .. } => Failure::TransportLost,
            Event::MessageTooBig { .. } => Failure::MessageTooBig,
            Event::ProtocolError { code, .. } => Failure::ProtocolError { code: *code },
            Event::Judged { .. } => return None, // unreachable: unwrapped
            Event::SocketOpened { .. }
            | Event::Ack { .. }
            | Event::Activity { .. }
            | Event::ReadPaused
            | Event::ReadResumed
            | Event::Woke
            | Event::Close { .. }
            | Event::ReconnectNow
            | Event::Timeout => return None,
        })
    }
}
