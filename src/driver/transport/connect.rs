//! Opening one transport: resolve, TCP, optional TLS, WebSocket upgrade.
//! The connect deadline is the core's; dropping the future cancels it all.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_tungstenite::tungstenite::handshake::client::Request;
use async_tungstenite::tungstenite::http::HeaderMap;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::fsm::Attempt;

use super::dial::{self, Resolver};
use super::endpoint::Endpoint;
use super::error::ConnectError;
use super::proxy::Proxy;
use super::tls::{MaybeTls, TlsConfig};
use super::upgrade::{Upgrade, UpgradeResponse};

pub(crate) use super::upgrade::Socket;

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
/// The upgrade that follows is `upgrade::Upgrade`, kept inline in the
/// [`Opening`] rather than boxed.
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

/// A boxed future, as the opening keeps its dial.
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The caller's hook on each attempt's upgrade request.
pub(crate) type RequestHook<'a> = Option<&'a (dyn Fn(Attempt, &mut Request) + Send + Sync)>;

/// One attempt's transport being opened: the dial (with the caller's
/// header fetch beside it), then the upgrade, inline (no allocation).
/// Ready once, with the socket and the upgrade response, or why not;
/// dropping it cancels everything.
pub(crate) enum Opening {
    Dialing(BoxFuture<Result<(MaybeTls, Option<HeaderMap>), ConnectError>>),
    Upgrading(Upgrade),
    /// Opened or failed: ready once, then pending for good.
    Done,
}

impl Opening {
    /// Starts dialing per `spec`, and awaits `headers` (the caller's fetch,
    /// already started) beside it.
    pub(crate) fn dial(
        spec: Arc<ConnectSpec>,
        headers: Option<BoxFuture<Result<HeaderMap, ConnectError>>>,
    ) -> Self {
        Opening::Dialing(match headers {
            None => Box::pin(async move { Ok((open_stream(&spec).await?, None)) }),
            Some(headers) => Box::pin(async move {
                let (stream, headers) =
                    futures_lite::future::try_zip(open_stream(&spec), headers).await?;
                Ok((stream, Some(headers)))
            }),
        })
    }

    /// Drives the dial and the upgrade of `attempt`; `hook` is the
    /// caller's request hook (a panic in it fails the attempt).
    pub(crate) fn poll(
        &mut self,
        cx: &mut Context<'_>,
        attempt: Attempt,
        spec: &ConnectSpec,
        hook: RequestHook<'_>,
    ) -> Poll<Result<(Socket, UpgradeResponse), ConnectError>> {
        loop {
            let step = match self {
                Opening::Dialing(dialing) => match dialing.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(dialed) => dialed.and_then(|(stream, headers)| {
                        upgrade(attempt, stream, headers, spec, hook).map(Opening::Upgrading)
                    }),
                },
                Opening::Upgrading(upgrade) => match Pin::new(upgrade).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => Err(ConnectError::Upgrade(e)),
                    Poll::Ready(Ok((socket, response))) => {
                        *self = Opening::Done;
                        let (parts, _) = response.into_parts();
                        let response = UpgradeResponse {
                            attempt,
                            status: parts.status,
                            headers: parts.headers,
                        };
                        return Poll::Ready(Ok((socket, response)));
                    }
                },
                Opening::Done => return Poll::Pending,
            };
            match step {
                Ok(next) => *self = next,
                Err(e) => {
                    *self = Opening::Done;
                    return Poll::Ready(Err(e));
                }
            }
        }
    }
}

/// Builds `attempt`'s request (with the fetched `headers`, then the
/// caller's `hook`) and starts the upgrade on `stream`.
fn upgrade(
    attempt: Attempt,
    stream: MaybeTls,
    headers: Option<HeaderMap>,
    spec: &ConnectSpec,
    hook: RequestHook<'_>,
) -> Result<Upgrade, ConnectError> {
    let mut request = spec.endpoint.request().map_err(ConnectError::Request)?;
    if let Some(headers) = headers {
        // Replaces headers of the same name; keeps every value given.
        request.headers_mut().extend(headers);
    }
    if let Some(hook) = hook {
        // The caller's code: a panic is this attempt's failure, retried.
        std::panic::catch_unwind(AssertUnwindSafe(|| hook(attempt, &mut request)))
            .map_err(|_| ConnectError::RequestHookPanicked)?;
    }
    Upgrade::new(request, stream, spec.websocket).map_err(ConnectError::Request)
}
