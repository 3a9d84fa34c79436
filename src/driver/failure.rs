//! The driver's part of the failure policy: what a [`ConnectError`] is as a
//! [`ConnectFailure`] value (with `Retry-After` turned into a delay, since
//! the core has no clock), and the caller's predicate, asked for each
//! failure, whose verdict goes to the core inside the event
//! ([`Event::Judged`]).

use std::panic::AssertUnwindSafe;
use std::time::{Instant, SystemTime};

use async_tungstenite::tungstenite::Error as WsError;

use crate::fsm::{Attempt, ConnectFailure, Event, Failure, Machine, Timer, Verdict};

use super::connect::ConnectError;
use super::retry_after;

/// The caller's failure predicate: the failure and the policy's default
/// verdict in, the verdict to apply out.
pub(crate) type FailurePolicyFn = dyn Fn(&Failure, Verdict) -> Verdict + Send + Sync;

impl ConnectError {
    /// This error as the policy sees it; a `Retry-After` date is measured
    /// against `now`.
    pub(crate) fn failure(&self, now: SystemTime) -> ConnectFailure {
        match self {
            ConnectError::Resolve { .. } => ConnectFailure::Resolve,
            ConnectError::Tcp { source, .. } => ConnectFailure::Io(source.kind()),
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
            ConnectError::Proxy(e) => e.failure(),
        }
    }
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

/// `event`, judged by the caller's predicate when it reports a failure the
/// machine would act on at `now` and the predicate's verdict differs from
/// the policy's default. A panicking predicate keeps the default.
pub(crate) fn judge(
    policy: Option<&FailurePolicyFn>,
    machine: &Machine,
    event: Event,
    now: Instant,
) -> Event {
    let Some(policy) = policy else {
        return event;
    };
    let Some(failure) = machine.lifecycle().failure(&event, now, machine.config()) else {
        return event;
    };
    let default = machine.config().verdict(&failure);
    let verdict =
        std::panic::catch_unwind(AssertUnwindSafe(|| policy(&failure, default))).unwrap_or(default);
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
            addr: ([127, 0, 0, 1], 1).into(),
            source: io::ErrorKind::ConnectionRefused.into(),
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
}
