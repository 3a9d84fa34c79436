//! The named timers. Each lives in the state that owns it (see
//! [`State`](super::State)), so leaving a state cancels its timers by
//! construction; inside the transition function a
//! [`Event::Timeout`](super::Event::Timeout) becomes the one timer that fired.

use std::fmt;

use super::{ConnectFailure, Failure};

/// A deadline the machine keeps, named by what it guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// Connecting: TCP, TLS and the upgrade must finish by
    /// [`Config::connect_timeout`](super::Config::connect_timeout).
    Connect,
    /// AwaitingAck: the hello ack must arrive by
    /// [`Config::ack_timeout`](super::Config::ack_timeout) after socket open.
    /// Does not run while reading is paused.
    Ack,
    /// Open: the next ping is due (every
    /// [`Config::ping_interval`](super::Config::ping_interval)).
    Ping,
    /// Open: nothing arrived for
    /// [`Config::stale_after`](super::Config::stale_after); the link is
    /// half-dead. Does not run while reading is paused.
    Stale,
    /// Open, after the host woke from a suspend
    /// ([`Event::Woke`](super::Event::Woke)): a ping went out at once and
    /// something must arrive within
    /// [`Config::wake_probe`](super::Config::wake_probe), or the link died
    /// while the host slept. Any inbound activity clears it. Does not run
    /// while reading is paused.
    Probe,
    /// Reconnecting: the backoff delay is over; the next attempt starts.
    /// Does not run while reading is paused.
    Retry,
    /// Closing: the peer did not answer our close frame within
    /// [`Config::close_grace`](super::Config::close_grace).
    CloseGrace,
}

impl Timer {
    /// Every timer, in lifecycle order.
    pub const ALL: [Timer; 7] = [
        Timer::Connect,
        Timer::Ack,
        Timer::Ping,
        Timer::Stale,
        Timer::Probe,
        Timer::Retry,
        Timer::CloseGrace,
    ];

    /// Whether this timer keeps running while reading is paused (the
    /// caller's event buffer is full). Timers that wait for the peer to say
    /// something (Ack, Stale, Probe) do not: unread bytes are not silence. Nor does
    /// Retry: no new attempt starts while the caller is not keeping up.
    pub fn runs_while_read_paused(self) -> bool {
        match self {
            Timer::Connect | Timer::Ping | Timer::CloseGrace => true,
            Timer::Ack | Timer::Stale | Timer::Probe | Timer::Retry => false,
        }
    }

    /// The failure this timer reports when it fires: the connect deadline
    /// is a connect failure like the others, the ack and stale deadlines
    /// are their own, and a failed wake probe is a stale link
    /// ([`Failure::Stale`]: the same question, "the link went silent", so
    /// one policy answers both); Ping, Retry and CloseGrace report none.
    pub fn failure(self) -> Option<Failure> {
        match self {
            Timer::Connect => Some(Failure::Connect(ConnectFailure::Deadline)),
            Timer::Ack => Some(Failure::AckTimeout),
            Timer::Stale | Timer::Probe => Some(Failure::Stale),
            Timer::Ping | Timer::Retry | Timer::CloseGrace => None,
        }
    }

    /// The snake_case name used in logs (`close_grace`).
    pub fn as_str(self) -> &'static str {
        match self {
            Timer::Connect => "connect",
            Timer::Ack => "ack",
            Timer::Ping => "ping",
            Timer::Stale => "stale",
            Timer::Probe => "probe",
            Timer::Retry => "retry",
            Timer::CloseGrace => "close_grace",
        }
    }
}

impl fmt::Display for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
