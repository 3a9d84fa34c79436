//! The live side of [`Stats`]: counters kept in the shared state and
//! updated only inside critical sections the session takes anyway (a
//! status change, a notice, a write pass, a read that brought bytes).
//! Attempts and opens are the status entries `Inner` already counts.

use std::time::Instant;

use crate::fsm::{Attempt, Cause, ConnectFailure, Failure, Status};

use super::rtt::Rtt;
use super::stats::{Disconnects, LastFailure, Stats};

/// What crossed the socket since it was last taken, for the stats. Kept
/// small (it lives in every idle session's socket): the session takes it
/// at least once per pass of its loop, so 32-bit counts do not fill up
/// (they saturate past 4 GiB within one pass).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes read from the transport (frame headers included).
    pub bytes_in: u32,
    /// Bytes the transport took (frame headers and masks included).
    pub bytes_out: u32,
    /// Data frames (text or binary) read.
    pub frames_in: u32,
    /// The tag of the latest pong read that could answer one of our pings.
    pub pong: Option<u8>,
}

/// Counters and clocks of one session.
#[derive(Debug, Clone)]
pub(crate) struct Tally {
    /// When the current status was published.
    status_since: Instant,
    /// When the current connection's socket opened; `None` without one.
    connected_since: Option<Instant>,
    /// A `Disconnected` notice whose cause comes with the status change
    /// that follows it in the same drain.
    disconnect_pending: bool,
    /// The cause of the failure the current event reports (cleared by the
    /// status change it leads to).
    failing: Option<Cause>,
    /// The disconnect counts and the last failure, boxed together: set
    /// only by a failure (which allocates anyway), so a session that never
    /// failed pays one word for them, not 80 bytes.
    failures: Option<Box<Failures>>,
    messages_in: u64,
    bytes_in: u64,
    bytes_out: u64,
    rtt: Rtt,
}

impl Tally {
    pub(crate) fn new(now: Instant) -> Self {
        Tally {
            status_since: now,
            connected_since: None,
            disconnect_pending: false,
            failing: None,
            failures: None,
            messages_in: 0,
            bytes_in: 0,
            bytes_out: 0,
            rtt: Rtt::default(),
        }
    }

    /// A status was published.
    pub(crate) fn entered(&mut self, now: Instant) {
        self.status_since = now;
    }

    /// The machine is about to act on `failure` of `attempt`.
    pub(crate) fn failed(&mut self, failure: Failure, attempt: Attempt, now: Instant) {
        self.failing = Some(cause_of(&failure));
        self.failures().last = Some(LastFailure {
            failure,
            attempt,
            at: now,
        });
    }

    /// A `Disconnected` notice: counted with the status change after it.
    pub(crate) fn disconnected(&mut self) {
        self.disconnect_pending = true;
    }

    /// A status change with `cause`: counts a pending disconnect under the
    /// transition's cause, or, when the failure ended the session, under
    /// the failure's own.
    pub(crate) fn status_changed(&mut self, cause: Cause) {
        let failing = self.failing.take();
        if std::mem::take(&mut self.disconnect_pending) {
            let cause = match cause {
                Cause::Rejected | Cause::GaveUp => failing.unwrap_or(cause),
                other => other,
            };
            self.failures().disconnects.count(cause);
        }
    }

    fn failures(&mut self) -> &mut Failures {
        self.failures.get_or_insert_with(Box::default)
    }

    /// The socket of a new connection opened.
    pub(crate) fn connected(&mut self, now: Instant) {
        self.connected_since = Some(now);
    }

    /// The connection's socket is gone.
    pub(crate) fn link_gone(&mut self) {
        self.connected_since = None;
    }

    /// Adds what the meter counted.
    pub(crate) fn traffic(&mut self, traffic: &Traffic) {
        let add = |total: &mut u64, n: u32| *total = total.saturating_add(u64::from(n));
        add(&mut self.messages_in, traffic.frames_in);
        add(&mut self.bytes_in, traffic.bytes_in);
        add(&mut self.bytes_out, traffic.bytes_out);
    }

    /// A ping round trip was measured.
    pub(crate) fn round_trip(&mut self, rtt: std::time::Duration) {
        self.rtt.sample(rtt);
    }

    /// The snapshot at `now`, with what the shared state keeps beside the
    /// tally: the published `status`, the count of entries into each status
    /// (`entered`), and the frames the outbound ledger counted written.
    pub(crate) fn stats(
        &self,
        now: Instant,
        status: Status,
        entered: &[u32; 6],
        messages_out: u64,
    ) -> Stats {
        let entered = |s: Status| u64::from(entered[s as usize]);
        Stats {
            // Attempt 1 starts without a status change; each later one
            // enters Connecting.
            attempts: entered(Status::Connecting).saturating_add(1),
            opens: entered(Status::Open),
            disconnects: self
                .failures
                .as_ref()
                .map(|f| f.disconnects)
                .unwrap_or_default(),
            messages_in: self.messages_in,
            messages_out,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            latency: self.rtt.last(),
            latency_smoothed: self.rtt.smoothed(),
            latency_samples: self.rtt.samples(),
            status,
            in_status_for: now.saturating_duration_since(self.status_since),
            connected_for: self
                .connected_since
                .map(|since| now.saturating_duration_since(since)),
            last_failure: self.failures.as_ref().and_then(|f| f.last.clone()),
        }
    }
}

/// What only failures set.
#[derive(Debug, Default, Clone)]
struct Failures {
    disconnects: Disconnects,
    last: Option<LastFailure>,
}

/// The cause a failure is reported under (a stale link and a failed wake
/// probe are one failure; the transition tells them apart).
fn cause_of(failure: &Failure) -> Cause {
    match failure {
        Failure::Connect(ConnectFailure::Deadline) => Cause::ConnectTimeout,
        Failure::Connect(_) => Cause::ConnectFailed,
        Failure::HelloFailed => Cause::HelloFailed,
        Failure::AckTimeout => Cause::AckTimeout,
        Failure::PeerClosed { .. } => Cause::PeerClosed,
        Failure::TransportLost => Cause::TransportLost,
        Failure::Stale => Cause::Stale,
        Failure::MessageTooBig => Cause::MessageTooBig,
        Failure::ProtocolError { .. } => Cause::ProtocolError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disconnect_takes_the_transitions_cause_or_the_failures_when_it_ended_the_session() {
        let now = super::super::tests::t0();
        let mut t = Tally::new(now);
        // A stale link, retried: the transition says Stale.
        t.failed(Failure::Stale, 1, now);
        t.disconnected();
        t.status_changed(Cause::Stale);
        // Reconnect-now: no failure, the transition's cause.
        t.disconnected();
        t.status_changed(Cause::ReconnectNow);
        // A failure in Connecting: no disconnect, and it does not linger.
        t.failed(Failure::Connect(ConnectFailure::Deadline), 3, now);
        t.status_changed(Cause::ConnectTimeout);
        // A peer close judged terminal: counted as the peer's close.
        let close = Failure::PeerClosed {
            code: 4001,
            reason: "banned".into(),
        };
        t.failed(close.clone(), 4, now);
        t.disconnected();
        t.status_changed(Cause::Rejected);
        let failures = *t.failures.unwrap();
        let d = failures.disconnects;
        assert_eq!(d.get(Cause::Stale), 1);
        assert_eq!(d.get(Cause::ReconnectNow), 1);
        assert_eq!(d.get(Cause::PeerClosed), 1);
        assert_eq!(d.total(), 3);
        let last = failures.last.unwrap();
        assert_eq!((last.failure, last.attempt), (close, 4));
    }
}
