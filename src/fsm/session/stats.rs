//! [`Stats`]: a snapshot of one session's counters, from
//! [`Client::stats`](crate::Client::stats).

use std::fmt;
use std::time::{Duration, Instant};

use crate::fsm::{Attempt, Cause, Failure, Status};

/// A snapshot of a session's counters and clocks, taken by
/// [`Client::stats`](crate::Client::stats).
///
/// Keeping them costs no lock and no allocation per message: the session
/// updates them inside the critical sections it takes anyway. Counters
/// cover the whole session (every connection) and saturate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Attempts started (the first counts from creation; it starts when
    /// the session first runs).
    pub attempts: u64,
    /// Connections that reached Open (the broker acked the hello).
    pub opens: u64,
    /// Connections whose socket had opened and that ended other than by a
    /// requested close (each one a
    /// [`SessionEvent::Disconnected`](crate::SessionEvent::Disconnected)),
    /// by cause.
    pub disconnects: Disconnects,
    /// Data frames (text or binary) read: the broker's messages, its acks
    /// and frames reported as invalid. Pings, pongs and close frames are
    /// not counted.
    pub messages_in: u64,
    /// Text frames whose last byte the transport took (the TCP socket, or
    /// rustls for `wss://`): the caller's messages, the hellos and the
    /// after-ack frames. Pings, pongs and close frames are not counted.
    pub messages_out: u64,
    /// Wire bytes read from the transport below the WebSocket layer:
    /// frame headers and control frames included (inside TLS for
    /// `wss://`; the upgrade response is not counted).
    pub bytes_in: u64,
    /// Wire bytes the transport took: frame headers, masks and control
    /// frames included (inside TLS for `wss://`; the upgrade request is
    /// not counted).
    pub bytes_out: u64,
    /// The last ping round trip: from our ping's last byte taken by the
    /// transport to its pong read. `None` before the first. Only a pong
    /// echoing our latest ping's payload counts (not the broker's own
    /// pongs, not a late answer to an older ping).
    pub latency: Option<Duration>,
    /// The round trip smoothed as TCP's SRTT (RFC 6298): the first
    /// sample, then `srtt + (sample − srtt) / 8` for each next one
    /// (α = 1/8). `None` before the first sample.
    pub latency_smoothed: Option<Duration>,
    /// Round trips measured (the samples behind `latency_smoothed`).
    pub latency_samples: u64,
    /// The status the handles see (as [`Client::status`](crate::Client::status)).
    pub status: Status,
    /// How long the session has been in `status`.
    pub in_status_for: Duration,
    /// How long the current connection's socket has been open (since the
    /// upgrade succeeded): `Some` in AwaitingAck, Open and Closing, `None`
    /// without a socket.
    pub connected_for: Option<Duration>,
    /// The latest failure of any attempt, as the failure policy saw it.
    pub last_failure: Option<LastFailure>,
}

/// Disconnects by cause: a small fixed table keyed by [`Cause`] (32-bit
/// counts inside, since every session keeps one: a disconnect needs a
/// connection, so they cannot fill up).
///
/// The cause is the transition's (peer closed, transport lost, stale,
/// wake probe failed, ack timeout, hello failed, protocol error, message
/// too big, reconnect now); when the failure also ended the session (the
/// policy judged it terminal, or the give-up budget ran out) it is the
/// failure's own cause, not `Rejected` or `GaveUp`.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Disconnects {
    counts: [u32; CAUSES.len()],
}

impl Disconnects {
    /// Disconnects with this cause.
    pub fn get(&self, cause: Cause) -> u64 {
        u64::from(self.counts[index(cause)])
    }

    /// All disconnects.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|n| u64::from(*n)).sum()
    }

    /// Each cause that occurred, with its count.
    pub fn iter(&self) -> impl Iterator<Item = (Cause, u64)> + '_ {
        CAUSES
            .iter()
            .zip(self.counts)
            .filter(|(_, n)| *n > 0)
            .map(|(cause, n)| (*cause, u64::from(n)))
    }

    pub(crate) fn count(&mut self, cause: Cause) {
        let n = &mut self.counts[index(cause)];
        *n = n.saturating_add(1);
    }
}

impl fmt::Debug for Disconnects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The latest failure, with when and for which attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LastFailure {
    /// The failure as the policy saw it (a refused connect, a peer's close
    /// with its code and reason, a stale link, …).
    pub failure: Failure,
    /// The attempt it ended.
    pub attempt: Attempt,
    /// When the session handled it.
    pub at: Instant,
}

/// Every cause, in the table's order.
const CAUSES: [Cause; 19] = [
    Cause::SocketOpened,
    Cause::ConnectFailed,
    Cause::ConnectTimeout,
    Cause::HelloFailed,
    Cause::AckTimeout,
    Cause::Acked,
    Cause::Stale,
    Cause::WakeProbeFailed,
    Cause::PeerClosed,
    Cause::TransportLost,
    Cause::MessageTooBig,
    Cause::ProtocolError,
    Cause::RetryDue,
    Cause::ReconnectNow,
    Cause::CloseRequested,
    Cause::CloseCompleted,
    Cause::CloseGraceExpired,
    Cause::Rejected,
    Cause::GaveUp,
];

/// A cause's slot in [`CAUSES`]; exhaustive, so a new cause fails to
/// compile here rather than share a slot.
fn index(cause: Cause) -> usize {
    match cause {
        Cause::SocketOpened => 0,
        Cause::ConnectFailed => 1,
        Cause::ConnectTimeout => 2,
        Cause::HelloFailed => 3,
        Cause::AckTimeout => 4,
        Cause::Acked => 5,
        Cause::Stale => 6,
        Cause::WakeProbeFailed => 7,
        Cause::PeerClosed => 8,
        Cause::TransportLost => 9,
        Cause::MessageTooBig => 10,
        Cause::ProtocolError => 11,
        Cause::RetryDue => 12,
        Cause::ReconnectNow => 13,
        Cause::CloseRequested => 14,
        Cause::CloseCompleted => 15,
        Cause::CloseGraceExpired => 16,
        Cause::Rejected => 17,
        Cause::GaveUp => 18,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_has_its_own_slot() {
        for (i, cause) in CAUSES.iter().enumerate() {
            assert_eq!(index(*cause), i, "{cause}");
        }
    }

    #[test]
    fn disconnects_count_by_cause_and_in_total() {
        let mut d = Disconnects::default();
        assert_eq!((d.total(), d.iter().count()), (0, 0));
        d.count(Cause::PeerClosed);
        d.count(Cause::Stale);
        d.count(Cause::PeerClosed);
        assert_eq!(d.get(Cause::PeerClosed), 2);
        assert_eq!(d.get(Cause::Stale), 1);
        assert_eq!(d.get(Cause::TransportLost), 0);
        assert_eq!(d.total(), 3);
        let seen: Vec<_> = d.iter().collect();
        assert_eq!(seen, [(Cause::Stale, 1), (Cause::PeerClosed, 2)]);
        assert_eq!(format!("{d:?}"), "{Stale: 1, PeerClosed: 2}");
    }
}
