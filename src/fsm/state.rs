//! The lifecycle's states. Each state owns the deadlines that matter in it,
//! so leaving a state cancels its timers by construction.

use std::fmt;
use std::time::{Duration, Instant};

use super::{RejectedBy, Timer, time};

/// A connection attempt's number, counted from 1. Every socket event carries
/// the attempt it belongs to; events of any other attempt are ignored. (The
/// public API spells it `u64`.)
pub(crate) type Attempt = u64;

/// The lifecycle's state, with the deadlines it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Opening the transport (TCP, TLS, WebSocket upgrade).
    Connecting {
        /// This attempt's number.
        attempt: Attempt,
        /// The connect deadline: expiry drops the transport and counts a failure.
        deadline: Instant,
    },
    /// The socket is open; the hello is being built and sent and the ack is awaited.
    AwaitingAck {
        /// This attempt's number.
        attempt: Attempt,
        /// The ack deadline, counted from socket open.
        deadline: Instant,
    },
    /// The broker acknowledged the hello; application frames may flow.
    Open {
        /// This attempt's number.
        attempt: Attempt,
        /// When the ack arrived; a failure at or after `since + stable_after`
        /// resets the backoff.
        since: Instant,
        /// The last inbound frame of any kind.
        last_activity: Instant,
        /// When the next ping is due.
        next_ping: Instant,
        /// The wake probe's deadline ([`Timer::Probe`]) while one runs: set
        /// when the host woke from a suspend
        /// ([`Event::Woke`](super::Event::Woke)), cleared by any inbound
        /// activity.
        probe: Option<Instant>,
    },
    /// Waiting out the backoff delay before the next attempt.
    Reconnecting {
        /// The attempt that will start at `retry_at`.
        next_attempt: Attempt,
        /// When the next attempt starts.
        retry_at: Instant,
    },
    /// Our close frame is out; waiting (bounded) for the peer's.
    Closing {
        /// The attempt whose socket is closing.
        attempt: Attempt,
        /// After this the socket is dropped regardless.
        deadline: Instant,
    },
    /// Terminal: nothing happens ever again.
    Closed {
        /// Why the session ended.
        reason: CloseReason,
    },
}

/// Why a session reached [`State::Closed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The caller closed the session (or dropped its last handle).
    Requested,
    /// A failure the policy judged terminal: the broker's close matched a
    /// rule, its upgrade answer had a status that is not retried, the proxy
    /// refused, or the caller's predicate said so. No reconnect.
    Rejected {
        /// Who refused, and how.
        by: RejectedBy,
    },
    /// The give-up budget (attempts or time without a stable Open) ran out.
    GaveUp {
        /// Attempts made since the last stable Open.
        attempts: u32,
    },
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Requested => f.write_str("closed by the caller"),
            CloseReason::Rejected { by } => write!(f, "rejected by {by}"),
            CloseReason::GaveUp { attempts } => {
                write!(
                    f,
                    "gave up after {attempts} attempts without a stable connection"
                )
            }
        }
    }
}

/// A state's name without its data: what `status()` reports and what the
/// diagram's nodes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// See [`State::Connecting`].
    Connecting,
    /// See [`State::AwaitingAck`].
    AwaitingAck,
    /// See [`State::Open`].
    Open,
    /// See [`State::Reconnecting`].
    Reconnecting,
    /// See [`State::Closing`].
    Closing,
    /// See [`State::Closed`].
    Closed,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 6] = [
        Status::Connecting,
        Status::AwaitingAck,
        Status::Open,
        Status::Reconnecting,
        Status::Closing,
        Status::Closed,
    ];

    /// The snake_case name used in logs and the CLI (`awaiting_ack`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Connecting => "connecting",
            Status::AwaitingAck => "awaiting_ack",
            Status::Open => "open",
            Status::Reconnecting => "reconnecting",
            Status::Closing => "closing",
            Status::Closed => "closed",
        }
    }

    /// The CamelCase name used in the diagram (`AwaitingAck`).
    pub fn name(self) -> &'static str {
        match self {
            Status::Connecting => "Connecting",
            Status::AwaitingAck => "AwaitingAck",
            Status::Open => "Open",
            Status::Reconnecting => "Reconnecting",
            Status::Closing => "Closing",
            Status::Closed => "Closed",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl State {
    /// This state's name.
    pub fn status(&self) -> Status {
        match self {
            State::Connecting { .. } => Status::Connecting,
            State::AwaitingAck { .. } => Status::AwaitingAck,
            State::Open { .. } => Status::Open,
            State::Reconnecting { .. } => Status::Reconnecting,
            State::Closing { .. } => Status::Closing,
            State::Closed { .. } => Status::Closed,
        }
    }

    /// The attempt whose transport this state holds, if it holds one
    /// (Connecting, AwaitingAck, Open, Closing).
    pub fn transport_attempt(&self) -> Option<Attempt> {
        match *self {
            State::Connecting { attempt, .. }
            | State::AwaitingAck { attempt, .. }
            | State::Open { attempt, .. }
            | State::Closing { attempt, .. } => Some(attempt),
            State::Reconnecting { .. } | State::Closed { .. } => None,
        }
    }

    /// The deadlines this state owns, in priority order (Stale, then
    /// Probe, then Ping: when a failure and a ping are due together, the
    /// link is dead and no ping goes out).
    pub fn timers(&self, stale_after: Duration) -> impl Iterator<Item = (Timer, Instant)> {
        let one = |timer, at| [Some((timer, at)), None, None];
        let timers = match *self {
            State::Connecting { deadline, .. } => one(Timer::Connect, deadline),
            State::AwaitingAck { deadline, .. } => one(Timer::Ack, deadline),
            State::Open {
                last_activity,
                next_ping,
                probe,
                ..
            } => [
                Some((Timer::Stale, time::deadline(last_activity, stale_after))),
                probe.map(|at| (Timer::Probe, at)),
                Some((Timer::Ping, next_ping)),
            ],
            State::Reconnecting { retry_at, .. } => one(Timer::Retry, retry_at),
            State::Closing { deadline, .. } => one(Timer::CloseGrace, deadline),
            State::Closed { .. } => [None, None, None],
        };
        timers.into_iter().flatten()
    }

    /// The earliest deadline this state owns; `None` only in Closed. Does
    /// not know about a read pause: see
    /// [`Machine::poll_timeout`](super::Machine::poll_timeout).
    pub fn deadline(&self, stale_after: Duration) -> Option<Instant> {
        match *self {
            // Open's three timers without the iterator: a driver asks after
            // every input (the same minimum as `timers`).
            State::Open {
                last_activity,
                next_ping,
                probe,
                ..
            } => {
                let first = time::deadline(last_activity, stale_after).min(next_ping);
                Some(probe.map_or(first, |probe| first.min(probe)))
            }
            _ => self.timers(stale_after).map(|(_, at)| at).min(),
        }
    }

    /// The timer that is due at `now`, if any (Stale, then Probe, then
    /// Ping). Does not know about a read pause: see
    /// [`Machine::due`](super::Machine::due).
    pub fn due(&self, now: Instant, stale_after: Duration) -> Option<Timer> {
        self.timers(stale_after)
            .find(|&(_, at)| now >= at)
            .map(|(timer, _)| timer)
    }
}
