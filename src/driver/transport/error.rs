//! Why one connection attempt failed, typed: defined below every step of
//! the attempt (dial, TLS, the proxy's tunnel) so each can return it.

use std::io;
use std::net::SocketAddr;

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
