//! The driver's part of the failure policy: what a [`ConnectError`] is as a
//! [`ConnectFailure`] value (with `Retry-After` turned into a delay, since
//! the core has no clock), and the caller's predicate, asked for each
//! failure, whose verdict goes to the core inside the event
//! ([`Event::Judged`]).

use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::time::{Instant, SystemTime};

use async_tungstenite::tungstenite::Error as WsError;

use crate::fsm::{Attempt, ConnectFailure, Event, Failure, Machine, Timer, Verdict};

use super::retry_after;
use super::shared::Shared;
use super::spec::{FailurePolicyFn, Spec};
use super::transport::error::ConnectError;

impl ConnectError {
    /// This error as the policy sees it; a `Retry-After` date is measured
    /// against `now`.
    pub(crate) fn failure(&self, now: SystemTime) -> ConnectFailure {
        match self {
            ConnectError::Resolve { .. } => ConnectFailure::Resolve,
            ConnectError::Tcp { attempts } => ConnectFailure::Io(telling_kind(attempts)),
            ConnectError::Tls { .. } => ConnectFailure::Tls,
            ConnectError::Upgrade(WsError::Http(response)) => ConnectFailure::Http {
                status: response.status().as_u16(),
                retry_after: retry_after::from_headers(response.headers(), now),
            },
            ConnectError::Upgrade(WsError::Io(e)) => ConnectFailure::Io(e.kind()),
            ConnectError::Request(_)
            | ConnectError::RequestHook(_)
            | ConnectError::RequestHookPanicked => ConnectFailure::Request,
            ConnectError::Upgrade(_) => ConnectFailure::Handshake,
            ConnectError::Deadline { .. } => ConnectFailure::Deadline,
            ConnectError::ProxyRefused { status, .. } => ConnectFailure::Proxy {
                status: Some(*status),
            },
            ConnectError::SocksAuth { .. } | ConnectError::SocksNoMethod { .. } => {
                ConnectFailure::SocksAuth
            }
            ConnectError::ProxyResolve { .. } => ConnectFailure::Resolve,
            ConnectError::SocksReply { .. }
            | ConnectError::ProxyProtocol { .. }
            | ConnectError::ProxyIo { .. } => ConnectFailure::Proxy { status: None },
        }
    }
}

/// The kind of error that says most about a failed dial: the last one that
/// is more than a missing route or local address (an IPv6 address tried on
/// an IPv4-only network says nothing about the broker), else the last one.
fn telling_kind(attempts: &[(SocketAddr, io::Error)]) -> io::ErrorKind {
    use io::ErrorKind::{AddrNotAvailable, HostUnreachable, NetworkUnreachable};
    let kinds = || attempts.iter().map(|(_, e)| e.kind());
    kinds()
        .rfind(|k| !matches!(k, NetworkUnreachable | HostUnreachable | AddrNotAvailable))
        .or_else(|| kinds().next_back())
        .unwrap_or(io::ErrorKind::Other)
}

/// When the connect deadline is what fires at `now`: the attempt and its
/// error, so the caller sees a connect failure like the others.
pub(crate) fn deadline_failure(m: &Machine, now: Instant) -> Option<(Attempt, ConnectError)> {
    let attempt = m.attempt()?;
    (m.due(now) == Some(Timer::Connect)).then(|| {
        let after = m.config().connect_timeout;
        (attempt, ConnectError::Deadline { after })
    })
}

impl Shared {
    /// `event`, judged by the spec's failure policy (see [`judge`]); a
    /// failure the machine will act on is noted for the stats first. The
    /// caller's predicate runs outside the lock. `None` before the machine
    /// started (nothing to feed).
    pub(crate) fn judge(&self, spec: &Spec, event: Event, now: Instant) -> Option<Event> {
        // Never a failure (the core says which events report one; a
        // timeout's depends on the state), and the most frequent is one
        // (`Activity`, every read pass): no lock.
        if !matches!(event, Event::Timeout) && event.failure().is_none() {
            return Some(event);
        }
        let (failure, default) = {
            let mut inner = self.lock();
            let machine = inner.machine()?;
            let Some(failure) = machine.failure(&event, now) else {
                return Some(event);
            };
            let attempt = event.attempt().or(machine.attempt()).unwrap_or(0);
            let default = machine.config().verdict(&failure);
            inner.tally.failed(failure.clone(), attempt, now);
            (failure, default)
        };
        Some(judge(
            spec.failure_policy.as_deref(),
            default,
            &failure,
            event,
        ))
    }
}

/// `event`, which reports `failure`, judged by the caller's predicate when
/// the predicate's verdict differs from the policy's default. A panicking
/// predicate keeps the default.
fn judge(
    policy: Option<&FailurePolicyFn>,
    default: Verdict,
    failure: &Failure,
    event: Event,
) -> Event {
    let Some(policy) = policy else {
        return event;
    };
    let verdict =
        std::panic::catch_unwind(AssertUnwindSafe(|| policy(failure, default))).unwrap_or(default);
    if verdict == default {
        event
    } else {
        event.judged(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_tungstenite::tungstenite::http::Response;
    use std::io;
    use std::time::Duration;

    fn refused(status: u16, retry_after: Option<&str>) -> ConnectError {
        let mut response = Response::builder().status(status);
        if let Some(v) = retry_after {
            response = response.header("Retry-After", v);
        }
        ConnectError::Upgrade(WsError::Http(Box::new(response.body(None).unwrap())))
    }

    #[test]
    fn connect_errors_become_failure_values() {
        let now = SystemTime::now();
        assert_eq!(
            refused(503, Some("2")).failure(now),
            ConnectFailure::Http {
                status: 503,
                retry_after: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(
            refused(503, Some("soon")).failure(now),
            ConnectFailure::Http {
                status: 503,
                retry_after: None
            }
        );
        assert_eq!(refused(403, None).http_status(), Some(403));
        let tcp = ConnectError::Tcp {
            attempts: vec![(
                ([127, 0, 0, 1], 1).into(),
                io::ErrorKind::ConnectionRefused.into(),
            )],
        };
        assert_eq!(
            tcp.failure(now),
            ConnectFailure::Io(io::ErrorKind::ConnectionRefused)
        );
        assert_eq!(tcp.http_status(), None);
        let deadline = ConnectError::Deadline {
            after: Duration::from_secs(10),
        };
        assert_eq!(deadline.failure(now), ConnectFailure::Deadline);
        assert_eq!(deadline.http_status(), None);
        assert_eq!(
            ConnectError::RequestHookPanicked.failure(now),
            ConnectFailure::Request
        );
        let bad_accept = ConnectError::Upgrade(WsError::Protocol(
            async_tungstenite::tungstenite::error::ProtocolError::SecWebSocketAcceptKeyMismatch,
        ));
        assert_eq!(bad_accept.failure(now), ConnectFailure::Handshake);
    }

    #[test]
    fn a_dial_fails_with_its_most_telling_kind() {
        use io::ErrorKind::{ConnectionRefused, HostUnreachable, NetworkUnreachable, TimedOut};
        let now = SystemTime::now();
        let dial = |kinds: &[io::ErrorKind]| ConnectError::Tcp {
            attempts: kinds
                .iter()
                .enumerate()
                .map(|(n, k)| {
                    (
                        SocketAddr::from(([127, 0, 0, 1], n as u16 + 1)),
                        (*k).into(),
                    )
                })
                .collect(),
        };
        // IPv6 unreachable, IPv4 refused: the refusal says what happened.
        assert_eq!(
            dial(&[NetworkUnreachable, ConnectionRefused, NetworkUnreachable]).failure(now),
            ConnectFailure::Io(ConnectionRefused)
        );
        // Otherwise the last one tried.
        assert_eq!(
            dial(&[ConnectionRefused, TimedOut]).failure(now),
            ConnectFailure::Io(TimedOut)
        );
        assert_eq!(
            dial(&[NetworkUnreachable, HostUnreachable]).failure(now),
            ConnectFailure::Io(HostUnreachable)
        );
        let text = dial(&[ConnectionRefused, TimedOut]).to_string();
        assert!(
            text.contains("127.0.0.1:1: ") && text.contains("; 127.0.0.1:2: "),
            "{text}"
        );
    }
}
