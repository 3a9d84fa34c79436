//! Why a session could not be built ([`BuildError`]: the URL, a setting,
//! the proxy URL, the trust roots) and why one connection attempt failed
//! ([`ConnectError`]), typed: defined below every step that finds them so
//! each can return them; and what a connect error is as the core's
//! [`ConnectFailure`] (with `Retry-After` turned into a delay against the
//! wall clock, which the core never reads).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use async_tungstenite::tungstenite::Error as WsError;
use async_tungstenite::tungstenite::http::HeaderMap;

use crate::fsm::ConnectFailure;

use crate::fsm::ConfigError;

/// Why a session could not be built. Every caller mistake lands here, at
/// construction, never later: the URL, a setting, the proxy URL, the TLS
/// setup for `wss://`. Its text never holds a credential: a URL is shown
/// without user info or query, a proxy URL not at all (only where it came
/// from).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The URL is not a usable `ws://` or `wss://` URL.
    #[error("bad url {url}: {why}")]
    Url {
        /// The URL, without user info, query string or fragment.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The lifecycle configuration ([`Config`](crate::Config)) is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A setting of the [`TransportConfig`](crate::TransportConfig) or the
    /// [`DeliveryConfig`](crate::DeliveryConfig) is invalid (including
    /// those tungstenite would panic on).
    #[error("{config} config: `{setting}` {why}")]
    Setting {
        /// Which configuration: `"transport"` or `"delivery"`.
        config: &'static str,
        /// The field, as written in that configuration.
        setting: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// The proxy URL (given to
    /// [`ClientBuilder::proxy`](crate::ClientBuilder::proxy) or found in the
    /// environment) cannot be used: malformed, or an `https://` proxy.
    #[error("bad proxy ({origin}): {why}")]
    Proxy {
        /// Where it came from: the builder, or the environment variable
        /// named (never the URL, which may hold a password).
        origin: String,
        /// What is wrong with it.
        why: String,
    },
    /// `wss://`, but this build of the crate has no TLS: its `tls` feature
    /// is off.
    #[error(
        "tls setup failed: wss:// needs TLS, but ws-lifecycle was built without its `tls` \
         feature (only ws:// works); enable the feature"
    )]
    TlsDisabled,
    /// `wss://`: the operating system's trust store gave no usable
    /// certificate and no other root was given.
    #[error(
        "tls setup failed: the system trust store has no usable certificate ({}); install the \
         system's CA certificates (e.g. the ca-certificates package), point SSL_CERT_FILE at \
         a PEM bundle, add roots with ClientBuilder::add_root_pem or add_roots_from_file, or \
         enable the `webpki-roots` feature",
        .problems.join("; ")
    )]
    NoSystemRoots {
        /// What went wrong while loading it (files that could not be read,
        /// certificates that could not be parsed, or that none were found).
        problems: Vec<String>,
    },
    /// A file of extra roots
    /// ([`ClientBuilder::add_roots_from_file`](crate::ClientBuilder::add_roots_from_file))
    /// could not be read.
    #[error("tls setup failed: cannot read root certificates from {}: {source}", .path.display())]
    ReadRoots {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Extra roots held no PEM certificate.
    #[error("tls setup failed: {origin} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificate {
        /// Where the roots came from: a file's path, or which PEM bytes.
        origin: String,
    },
    /// Extra roots were not valid PEM.
    #[error("tls setup failed: {origin} is not valid PEM: {why}")]
    BadPem {
        /// Where the roots came from.
        origin: String,
        /// What is wrong.
        why: String,
    },
    /// A certificate of the extra roots is not usable as a trust anchor.
    #[error("tls setup failed: certificate {index} of {origin} is not a usable root: {why}")]
    BadRoot {
        /// Where the roots came from.
        origin: String,
        /// Which certificate, counting from 1.
        index: usize,
        /// What is wrong.
        why: String,
    },
    /// rustls refused the TLS configuration.
    #[cfg(feature = "tls")]
    #[error("tls setup failed: rustls refused the configuration: {0}")]
    Rustls(#[from] futures_rustls::rustls::Error),
}

impl BuildError {
    /// A refused setting of the transport configuration.
    pub(crate) fn transport(setting: &'static str, why: impl Into<String>) -> Self {
        BuildError::Setting {
            config: "transport",
            setting,
            why: why.into(),
        }
    }

    /// A refused setting of the delivery configuration.
    pub(crate) fn delivery(setting: &'static str, why: impl Into<String>) -> Self {
        BuildError::Setting {
            config: "delivery",
            setting,
            why: why.into(),
        }
    }
}

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
    // The proxy gave no tunnel to the broker: what it answered (an HTTP
    // status, a SOCKS5 reply code, a refusal of the credentials) or why its
    // answer could not be read. Each names the proxy as `scheme://host:port`,
    // never with its credentials. (Failing to reach the proxy at all is
    // `Resolve` or `Tcp` with the proxy's name or address.)
    /// An HTTP proxy answered CONNECT with a status other than 2xx (407:
    /// the credentials are missing or wrong). The failure policy sees
    /// [`ConnectFailure::Proxy`](crate::ConnectFailure::Proxy) with the
    /// status: 407 and other statuses outside `retried_statuses` are
    /// terminal by default, a 5xx is retried.
    #[error("the proxy {proxy} refused the tunnel: HTTP {status} {reason}")]
    ProxyRefused {
        /// The proxy, `scheme://host:port`.
        proxy: String,
        /// Its status.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// A SOCKS5 proxy refused the connection with this reply code
    /// (RFC 1928 §6: 1 general failure, 2 not allowed by the ruleset,
    /// 3 network unreachable, 4 host unreachable, 5 connection refused,
    /// 6 TTL expired, 7 command not supported, 8 address type not
    /// supported). Retried by default.
    #[error("the proxy {proxy} refused the connection: SOCKS5 reply {reply} ({})", socks5_meaning(*reply))]
    SocksReply {
        /// The proxy, `scheme://host:port`.
        proxy: String,
        /// The reply code.
        reply: u8,
    },
    /// A SOCKS5 proxy refused the user name and password (RFC 1929 status
    /// other than 0): [`ConnectFailure::SocksAuth`](crate::ConnectFailure::SocksAuth),
    /// terminal by default.
    #[error("the proxy {proxy} refused the credentials (SOCKS5 authentication status {status})")]
    SocksAuth {
        /// The proxy, `scheme://host:port`.
        proxy: String,
        /// The RFC 1929 status.
        status: u8,
    },
    /// A SOCKS5 proxy accepted none of the authentication methods offered
    /// (RFC 1928 §3, `X'FF'`): it wants credentials and none were given,
    /// or a method this client does not speak. Like `SocksAuth` to the
    /// failure policy.
    #[error("the proxy {proxy} accepted none of the offered SOCKS5 authentication methods ({})",
        if *offered_credentials { "none, user/password" } else { "none; it may want a user and password" })]
    SocksNoMethod {
        /// The proxy, `scheme://host:port`.
        proxy: String,
        /// Whether user/password was offered.
        offered_credentials: bool,
    },
    /// The proxy's answer broke its protocol (not HTTP, not SOCKS5, a
    /// method that was not offered, a head too long, closed mid-answer).
    /// Retried by default.
    #[error("the proxy {proxy} broke the protocol: {detail}")]
    ProxyProtocol {
        /// The proxy, `scheme://host:port`.
        proxy: String,
        /// What was wrong.
        detail: String,
    },
    /// The connection to the proxy failed during its handshake. Retried by
    /// default.
    #[error("the connection to the proxy {proxy} failed: {source}")]
    ProxyIo {
        /// The proxy, `scheme://host:port`.
        proxy: String,
        /// The socket error.
        source: io::Error,
    },
    /// `socks5://`: the broker's name did not resolve here, to be sent to
    /// the proxy. Retried by default.
    #[error("could not resolve {host} (for the SOCKS5 proxy): {source}")]
    ProxyResolve {
        /// The broker's host name.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
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
/// otherwise: the typed cause inside [`ConnectError::Tls`] (whose `source`
/// is the error itself).
///
/// These are attempt failures, retried by default; to stop instead, see
/// the crate docs ("Networks").
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The certificate chain does not lead to a trusted root (a
    /// self-signed certificate, a company CA that is not installed).
    UnknownIssuer,
    /// The certificate is valid, but not for the host name connected to.
    NotValidForName,
    /// The certificate has expired.
    Expired,
    /// Anything else: another certificate problem, a TLS alert, a protocol
    /// error, a host name that cannot be a TLS server name. The text is
    /// rustls' description.
    Other(String),
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsFailure::UnknownIssuer => {
                "the server's certificate was issued by an authority that is not trusted \
                 (unknown issuer)"
            }
            TlsFailure::NotValidForName => {
                "the server's certificate is not valid for this host name"
            }
            TlsFailure::Expired => "the server's certificate has expired",
            TlsFailure::Other(text) => text,
        })
    }
}

/// RFC 1928 §6's meaning of a SOCKS5 reply code.
pub(crate) fn socks5_meaning(reply: u8) -> &'static str {
    match reply {
        0 => "succeeded",
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unassigned",
    }
}

/// The attempts of a [`ConnectError::Tcp`], one `address: error` each,
/// separated by `; `.
pub(crate) struct Attempts<'a>(pub(crate) &'a [(SocketAddr, io::Error)]);

impl fmt::Display for Attempts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
