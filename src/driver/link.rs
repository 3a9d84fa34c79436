//! One attempt's transport as one value: dialing (TCP, TLS), upgrading,
//! then up (the socket and this attempt's hello). Its `poll_*` methods
//! report what happened; the session turns that into the machine's events.
//! Dropping a link cancels whatever it was doing.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_tungstenite::tungstenite::http::HeaderMap;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_lite::{FutureExt, Stream};
use futures_util::Sink;

use crate::fsm::Attempt;

use super::context::HelloContext;
use super::inbound::{Inbound, classify, read_batch};
use super::outbound::{Wire, WireError};
use super::spec::{BoxFuture, HelloError, Spec};
use super::transport::connect::{Socket, open_stream};
use super::transport::error::ConnectError;
use super::transport::meter::Completed;
use super::transport::tls::MaybeTls;
use super::transport::upgrade::{Upgrade, UpgradeResponse};

/// The stream, and the headers of the async request hook (when there is one).
type Dialed = (MaybeTls, Option<HeaderMap>);

enum Phase {
    /// Resolve, TCP, TLS, and beside them the async request hook: a small
    /// boxed future.
    Dialing(BoxFuture<Result<Dialed, ConnectError>>),
    /// The upgrade, inline (no allocation).
    Upgrading(Upgrade),
    /// Open: the socket and, while it is being built, the hello.
    Up {
        socket: Socket,
        hello: Option<BoxFuture<Result<String, HelloError>>>,
        /// The read returned `Pending` during this poll: its waker is
        /// registered, so reading again before the next wake-up would only
        /// cost a failing `recv`.
        read_parked: bool,
    },
    /// Failed to open; waits to be dropped.
    Failed,
}

/// The transport of one attempt.
pub(crate) struct Link {
    attempt: Attempt,
    phase: Phase,
}

impl Link {
    /// Starts dialing for `attempt`, and the async request hook (if any)
    /// with `context()` beside it.
    pub(crate) fn dial(
        attempt: Attempt,
        spec: &Arc<Spec>,
        context: impl FnOnce() -> HelloContext,
    ) -> Self {
        let spec = spec.clone();
        let dialing: BoxFuture<Result<Dialed, ConnectError>> = match spec.request_headers.clone() {
            None => Box::pin(async move { Ok((open_stream(&spec.connect).await?, None)) }),
            Some(hook) => {
                // The caller's code: a panic is this attempt's failure, retried.
                let started = std::panic::catch_unwind(AssertUnwindSafe(|| hook(&context())))
                    .map_err(|_| ConnectError::RequestHookPanicked);
                Box::pin(async move {
                    let headers = async move {
                        match AssertUnwindSafe(started?).catch_unwind().await {
                            Ok(Ok(headers)) => Ok(headers),
                            Ok(Err(e)) => Err(ConnectError::RequestHook(e)),
                            Err(_) => Err(ConnectError::RequestHookPanicked),
                        }
                    };
                    let (stream, headers) =
                        futures_lite::future::try_zip(open_stream(&spec.connect), headers).await?;
                    Ok((stream, Some(headers)))
                })
            }
        };
        Link {
            attempt,
            phase: Phase::Dialing(dialing),
        }
    }

    // ── getters ────────────────────────────────────────────────────────

    /// The attempt this link belongs to.
    pub(crate) fn attempt(&self) -> Attempt {
        self.attempt
    }

    /// The socket once the upgrade succeeded, as the outbound side sees it.
    pub(crate) fn wire(&mut self) -> Option<&mut Socket> {
        match &mut self.phase {
            Phase::Up { socket, .. } => Some(socket),
            _ => None,
        }
    }

    /// The socket, when its meter holds what the handles have not seen
    /// yet: frames the outbound side has not counted, bytes, frames read, a
    /// pong. Published before what was read is delivered, so the stats
    /// never lag an event the caller has seen.
    pub(crate) fn unsettled(&mut self) -> Option<&mut Socket> {
        self.wire().filter(|s| s.get_ref().has_news())
    }

    /// Whether any bytes arrived since the last call (proof of life, even
    /// in the middle of a frame).
    pub(crate) fn take_read_progress(&mut self) -> bool {
        self.wire()
            .is_some_and(|s| s.get_mut().take_read_progress())
    }

    // ── commands ───────────────────────────────────────────────────────

    /// Calls the caller's hello builder with `context`; a panic in it, or in
    /// the future it returns, is an ordinary hello failure (retried), never
    /// the session's end.
    pub(crate) fn start_hello(&mut self, spec: &Spec, context: &HelloContext) {
        let Phase::Up { hello, .. } = &mut self.phase else {
            return;
        };
        let panicked = || -> HelloError { "the hello builder panicked".into() };
        let build = &spec.hello;
        *hello = Some(
            match std::panic::catch_unwind(AssertUnwindSafe(|| build(context))) {
                Ok(fut) => {
                    let caught = AssertUnwindSafe(fut).catch_unwind();
                    Box::pin(async move { caught.await.unwrap_or_else(|_| Err(panicked())) })
                }
                Err(_) => Box::pin(async move { Err(panicked()) }),
            },
        );
    }

    // ── outputs ────────────────────────────────────────────────────────

    /// Drives dialing and the upgrade. Ready once: with the upgrade
    /// response when the socket is open, or with why it failed.
    pub(crate) fn poll_open(
        &mut self,
        cx: &mut Context<'_>,
        spec: &Spec,
    ) -> Poll<Result<UpgradeResponse, ConnectError>> {
        loop {
            match &mut self.phase {
                Phase::Dialing(dialing) => match dialing.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => return self.failed(e),
                    Poll::Ready(Ok((stream, headers))) => {
                        match upgrade(self.attempt, stream, headers, spec) {
                            Ok(upgrade) => self.phase = Phase::Upgrading(upgrade),
                            Err(e) => return self.failed(e),
                        }
                    }
                },
                Phase::Upgrading(upgrade) => match Pin::new(upgrade).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => return self.failed(ConnectError::Upgrade(e)),
                    Poll::Ready(Ok((socket, response))) => {
                        self.phase = Phase::Up {
                            socket,
                            hello: None,
                            read_parked: false,
                        };
                        let (parts, _) = response.into_parts();
                        return Poll::Ready(Ok(UpgradeResponse {
                            attempt: self.attempt,
                            status: parts.status,
                            headers: parts.headers,
                        }));
                    }
                },
                Phase::Up { .. } | Phase::Failed => return Poll::Pending,
            }
        }
    }

    fn failed(&mut self, error: ConnectError) -> Poll<Result<UpgradeResponse, ConnectError>> {
        self.phase = Phase::Failed;
        Poll::Ready(Err(error))
    }

    /// The hello, once built; while `awaiting_ack` only: a hello finished
    /// after AwaitingAck ended has nothing to do and is dropped.
    pub(crate) fn poll_hello(
        &mut self,
        cx: &mut Context<'_>,
        awaiting_ack: bool,
    ) -> Poll<Result<String, HelloError>> {
        let Phase::Up {
            hello: slot @ Some(_),
            ..
        } = &mut self.phase
        else {
            return Poll::Pending;
        };
        if !awaiting_ack {
            *slot = None;
            return Poll::Pending;
        }
        let ready = slot.as_mut().map_or(Poll::Pending, |f| f.as_mut().poll(cx));
        if ready.is_ready() {
            *slot = None;
        }
        ready
    }

    /// The next inbound frames (up to `limit`, see [`read_batch`]), or how
    /// the socket ended, classified for the caller and the machine (the ack
    /// predicate is asked while `awaiting_ack`).
    pub(crate) fn poll_inbound(
        &mut self,
        cx: &mut Context<'_>,
        awaiting_ack: bool,
        spec: &Spec,
        limit: usize,
    ) -> Poll<Inbound> {
        let attempt = self.attempt;
        let read = read_batch(limit, || {
            self.poll_read(cx)
                .map(|read| classify(read, attempt, awaiting_ack, spec))
        });
        // A full batch: let its consumer (often on this executor) take it
        // before reading more, which keeps few messages alive at a time;
        // come back at once.
        if let (Poll::Ready(Inbound { more: true, .. }), Phase::Up { read_parked, .. }) =
            (&read, &mut self.phase)
        {
            *read_parked = true;
            cx.waker().wake_by_ref();
        }
        read
    }

    /// The next inbound frame, or how the socket ended (`None`: closed).
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, WsError>>> {
        let Phase::Up {
            socket,
            read_parked,
            ..
        } = &mut self.phase
        else {
            return Poll::Pending;
        };
        if *read_parked {
            return Poll::Pending;
        }
        let read = Pin::new(&mut *socket).poll_next(cx);
        *read_parked = read.is_pending();
        let meter = socket.get_mut();
        match &read {
            Poll::Ready(Some(Ok(Message::Text(_) | Message::Binary(_)))) => meter.frame_read(),
            Poll::Ready(Some(Ok(Message::Pong(payload)))) => meter.pong_read(payload),
            _ => {}
        }
        read
    }

    /// A new poll of the session: the socket may have been woken.
    pub(crate) fn unpark(&mut self) {
        if let Phase::Up { read_parked, .. } = &mut self.phase {
            *read_parked = false;
        }
    }
}

/// Builds this attempt's request (with the async hook's `headers`, then the
/// caller's sync hook) and starts the upgrade on `stream`.
fn upgrade(
    attempt: Attempt,
    stream: MaybeTls,
    headers: Option<HeaderMap>,
    spec: &Spec,
) -> Result<Upgrade, ConnectError> {
    let mut request = spec
        .connect
        .endpoint
        .request()
        .map_err(ConnectError::Request)?;
    if let Some(headers) = headers {
        // Replaces headers of the same name; keeps every value given.
        request.headers_mut().extend(headers);
    }
    if let Some(hook) = &spec.request_hook {
        // The caller's code: a panic is this attempt's failure, retried.
        std::panic::catch_unwind(AssertUnwindSafe(|| hook(attempt, &mut request)))
            .map_err(|_| ConnectError::RequestHookPanicked)?;
    }
    Upgrade::new(request, stream, spec.connect.websocket).map_err(ConnectError::Request)
}

impl Wire for Socket {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WireError>> {
        Sink::<Message>::poll_ready(Pin::new(self), cx).map_err(|_| WireError)
    }

    fn start_send(&mut self, message: Message) -> Result<(), WireError> {
        Sink::<Message>::start_send(Pin::new(self), message).map_err(|_| WireError)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WireError>> {
        Sink::<Message>::poll_flush(Pin::new(self), cx).map_err(|_| WireError)
    }

    fn take_completed(&mut self) -> Completed {
        self.get_mut().take_completed()
    }
}
