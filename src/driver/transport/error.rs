//! Why one connection attempt failed, typed: defined below every step of
//! the attempt (dial, TLS, the proxy's tunnel) so each can return it; and
//! what it is as the core's [`ConnectFailure`] (with `Retry-After` turned
//! into a delay against the wall clock, which the core never reads).

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use async_tungstenite::tungstenite::Error as WsError;
use async_tungstenite::tungstenite::http::HeaderMap;

use crate::fsm::ConnectFailure;

use super::proxy::ProxyError;

/// Why one connection attempt failed. The failure policy decides what
/// follows (see [`Config::verdict`](crate::Config::verdict)): by default
/// every variant is retried, except an upgrade answered with an HTTP status
/// that is not retried (anything but 408, 429 and 5xx), which ends the
/// session; [`http_status`](Self::http_status) tells that status.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The host name did not resolve.
    #[error("could not resolve {host}: {source}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// No address accepted a TCP connection. The addresses were raced
    /// (Happy Eyeballs, RFC 8305); the failure policy sees
    /// [`ConnectFailure::Io`](crate::ConnectFailure::Io) with the kind of the
    /// most telling error: the last one that is more than a missing route or
    /// address (an IPv6 address on an IPv4-only network), else the last.
    #[error("tcp connect failed: {}", Attempts(.attempts))]
    Tcp {
        /// Every address tried with its socket error, in the order tried
        /// (families interleaved). Never empty.
        attempts: Vec<(SocketAddr, io::Error)>,
    },
    /// The TLS handshake failed: `cause` says why (an untrusted issuer, a
    /// certificate for another name, an expired one, …).
    #[error("tls handshake with {host} failed: {cause}")]
    Tls {
        /// The server name verified.
        host: String,
        /// Why, typed.
        cause: TlsFailure,
        /// The TLS error.
        source: io::Error,
    },
    /// The server refused the upgrade (an HTTP answer other than 101:
    /// `Error::Http` with the response, see [`http_status`](Self::http_status)),
    /// or its answer was not a valid handshake.
    #[error("websocket upgrade failed: {0}")]
    Upgrade(#[source] async_tungstenite::tungstenite::Error),
    /// This attempt's upgrade request could not be built (e.g. the request
    /// hook set a header value or URL tungstenite refuses).
    #[error("the upgrade request could not be built: {0}")]
    Request(#[source] async_tungstenite::tungstenite::Error),
    /// The caller's request hook panicked.
    #[error("the request hook panicked")]
    RequestHookPanicked,
    /// The caller's async request hook
    /// ([`ClientBuilder::request_headers`](crate::ClientBuilder::request_headers))
    /// failed for this attempt (e.g. its token fetch failed).
    #[error("the request hook failed: {0}")]
    RequestHook(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The proxy gave no tunnel to the broker: what it answered (an HTTP
    /// status, a SOCKS5 reply code, a refusal of the credentials) or why
    /// its answer could not be read. (Failing to reach the proxy at all is
    /// `Resolve` or `Tcp` with the proxy's name or address.)
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// The connect deadline (`Config::connect_timeout`) passed before the
    /// socket opened (resolve, TCP, TLS and the upgrade together).
    #[error("connect deadline of {after:?} passed before the socket opened")]
    Deadline {
        /// The connect timeout that passed.
        after: std::time::Duration,
    },
}

impl ConnectError {
    /// The broker's HTTP answer to the upgrade when it was not 101 (403,
    /// 503, …); `None` for every other failure.
    pub fn http_status(&self) -> Option<u16> {
        self.http_response().map(|r| r.status().as_u16())
    }

    /// The broker's whole answer to the upgrade (status and headers, such
    /// as `Retry-After`) when it was not 101.
    pub fn http_response(
        &self,
    ) -> Option<&async_tungstenite::tungstenite::http::Response<Option<Vec<u8>>>> {
        match self {
            ConnectError::Upgrade(async_tungstenite::tungstenite::Error::Http(response)) => {
                Some(response)
            }
            _ => None,
        }
    }
}

/// Why the server's certificate was refused, or the handshake failed
/// otherwise: the cause inside [`ConnectError::Tls`].
///
/// These are attempt failures, retried by default; to stop instead, see
/// the crate docs ("Networks").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The certificate chain does not lead to a trusted root (a
    /// self-signed certificate, a company CA that is not installed).
    #[error(
        "the server's certificate was issued by an authority that is not trusted (unknown issuer)"
    )]
    UnknownIssuer,
    /// The certificate is valid, but not for the host name connected to.
    #[error("the server's certificate is not valid for this host name")]
    NotValidForName,
    /// The certificate has expired.
    #[error("the server's certificate has expired")]
    Expired,
    /// Anything else: another certificate problem, a TLS alert, a protocol
    /// error, a host name that cannot be a TLS server name. The text is
    /// rustls' description.
    #[error("{0}")]
    Other(String),
}

/// The attempts of a [`ConnectError::Tcp`], one `address: error` each,
/// separated by `; `.
pub(crate) struct Attempts<'a>(pub(crate) &'a [(SocketAddr, io::Error)]);

impl std::fmt::Display for Attempts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, (addr, e)) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{addr}: {e}")?;
        }
        Ok(())
    }
}

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
                retry_after: retry_after(response.headers(), now),
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

/// The delay a response's `Retry-After` asks for, measured from `now`; a
/// date in the past is a zero delay. `None` when the header is absent or
/// malformed (only the first one counts).
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    crate::fsm::retry_after::parse(headers.get("retry-after")?.to_str().ok()?, now)
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
    fn headers_first_value_counts() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers, SystemTime::now()), None);
        headers.append("retry-after", "3".parse().unwrap());
        headers.append("retry-after", "9".parse().unwrap());
        assert_eq!(
            retry_after(&headers, SystemTime::now()),
            Some(Duration::from_secs(3))
        );
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
