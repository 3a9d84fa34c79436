//! One attempt's transport as one value: dialing (TCP, TLS), upgrading,
//! then up (the socket and this attempt's hello). Its `poll_*` methods
//! report what happened; the session turns that into the machine's events.
//! Dropping a link cancels whatever it was doing.

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_lite::{FutureExt, Stream, ready};
use futures_util::Sink;

use crate::fsm::Attempt;

use super::context::HelloContext;
use super::inbound::{Inbound, classify, read_batch};
use super::outbound::{Wire, WireError};
use super::spec::{BoxFuture, HelloError, Spec};
use super::transport::connect::{Opening, Socket};
use super::transport::error::ConnectError;
use super::transport::upgrade::UpgradeResponse;

enum Phase {
    /// Resolve, TCP, TLS, the upgrade (and beside the dial the async
    /// request hook).
    Opening(Opening),
    /// Open: the socket and, while it is being built, the hello.
    Up {
        socket: Socket,
        hello: Option<BoxFuture<Result<String, HelloError>>>,
        /// The read returned `Pending` during this poll: its waker is
        /// registered, so reading again before the next wake-up would only
        /// cost a failing `recv`.
        read_parked: bool,
    },
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
        let headers = spec.request_headers.as_ref().map(|hook| {
            // The caller's code: a panic is this attempt's failure, retried.
            let started = std::panic::catch_unwind(AssertUnwindSafe(|| hook(&context())))
                .map_err(|_| ConnectError::RequestHookPanicked);
            Box::pin(async move {
                match AssertUnwindSafe(started?).catch_unwind().await {
                    Ok(Ok(headers)) => Ok(headers),
                    Ok(Err(e)) => Err(ConnectError::RequestHook(e)),
                    Err(_) => Err(ConnectError::RequestHookPanicked),
                }
            }) as BoxFuture<_>
        });
        Link {
            attempt,
            phase: Phase::Opening(Opening::dial(spec.connect.clone(), headers)),
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
        let Phase::Opening(opening) = &mut self.phase else {
            return Poll::Pending;
        };
        let hook = spec.request_hook.as_deref().map(|h| h as _);
        let (socket, response) = ready!(opening.poll(cx, self.attempt, &spec.connect, hook))?;
        self.phase = Phase::Up {
            socket,
            hello: None,
            read_parked: false,
        };
        Poll::Ready(Ok(response))
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
}
