//! Opening one transport: resolve, TCP, optional TLS, WebSocket upgrade.
//! The connect deadline is the core's; dropping the future cancels it all.

use std::io;
use std::net::SocketAddr;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::dial::{self, Attempts, Resolver};
use super::endpoint::Endpoint;
use super::meter::Metered;
use super::proxy::{Proxy, ProxyError};
pub(crate) use super::tls::MaybeTls;
use super::tls::{TlsConfig, TlsFailure};

/// The WebSocket type the driver runs on: the stream is metered, so the
/// session knows what the transport took and whether bytes arrived.
pub(crate) type Socket = WebSocketStream<Metered<MaybeTls>>;

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

/// Everything one attempt needs, shared by all attempts of a session.
pub(crate) struct ConnectSpec {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// TLS settings, present for `wss://`.
    pub tls: Option<TlsConfig>,
    /// The tungstenite settings.
    pub websocket: WebSocketConfig,
    /// Disable Nagle's algorithm.
    pub nodelay: bool,
    /// How host names are resolved (the system's resolver unless a test
    /// injected one).
    pub resolver: Resolver,
    /// The proxy every attempt tunnels through, if any.
    pub proxy: Option<Proxy>,
}

/// Phase one of an attempt: resolve and TCP connect (`dial`, racing the
/// addresses), TLS when `wss://`.
///
/// The upgrade that follows is `upgrade::Upgrade`, kept
/// inline in the link rather than boxed.
pub(crate) async fn open_stream(spec: &ConnectSpec) -> Result<MaybeTls, ConnectError> {
    // Through a proxy, TCP goes to the proxy and the tunnel on to the broker;
    // either way the addresses race (Happy Eyeballs).
    let (host, port) = match &spec.proxy {
        Some(proxy) => (proxy.host(), proxy.port()),
        None => (spec.endpoint.host(), spec.endpoint.port()),
    };
    let tcp = dial::tcp(host, port, &spec.resolver).await?;
    if spec.nodelay {
        // Best-effort: a failure here only costs latency.
        let _ = tcp.get_ref().set_nodelay(true);
    }
    let mut tcp = tcp;
    if let Some(proxy) = &spec.proxy {
        proxy
            .tunnel(&mut tcp, spec.endpoint.host(), spec.endpoint.port())
            .await?;
    }
    // TLS verifies the broker's name, through a tunnel too.
    let host = spec.endpoint.host();
    super::tls::secure(spec.tls.as_ref(), host, tcp).await
}
