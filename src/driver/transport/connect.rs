//! Opening one transport: resolve, TCP, optional TLS, WebSocket upgrade.
//! The connect deadline is the core's; dropping the future cancels it all.

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::dial::{self, Resolver};
use super::endpoint::Endpoint;
use super::error::ConnectError;
use super::meter::Metered;
use super::proxy::Proxy;
use super::tls::{MaybeTls, TlsConfig};

/// The WebSocket type the driver runs on: the stream is metered, so the
/// session knows what the transport took and whether bytes arrived.
pub(crate) type Socket = WebSocketStream<Metered<MaybeTls>>;

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
