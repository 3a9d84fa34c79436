//! What tungstenite read, told to the core in its own terms (the core
//! decides what it means: [`inbound::classify`]); and the batch one read
//! pass takes, so the caller's notices cross the lock together.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::task::Poll;

use async_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use async_tungstenite::tungstenite::{Error as WsError, Message};

use crate::fsm::session::Notice;
use crate::fsm::session::inbound::{self, Classified, Delivery, Received};
use crate::fsm::{Attempt, Event};

use super::session_event::SessionEvent;
use super::spec::Spec;

type Queued = Notice<SessionEvent>;

/// Frames one read pass takes at most: enough that the lock, the wake-up
/// and the machine's `Activity` are paid once per batch rather than per
/// message, few enough that one busy socket does not hold its task long.
pub(crate) const BATCH: usize = 64;

/// One read pass: the frames read, classified, in order.
#[derive(Debug, Default)]
pub(crate) struct Inbound {
    /// For the caller, oldest first. Delivered before `event` is fed to
    /// the machine, so a status change never overtakes a message read
    /// before it.
    pub(crate) notices: Vec<Queued>,
    /// For the machine; it ends the batch. Ordinary frames carry none:
    /// their bytes already counted as activity when they arrived.
    pub(crate) event: Option<Event>,
    /// tungstenite queued an answer (a pong, a close reply) to flush out.
    pub(crate) flush: bool,
    /// The ack frame (the predicate said yes); it ends the batch, and goes
    /// to the core as one input with its after-ack frames.
    pub(crate) ack: Option<serde_json::Value>,
    /// Ended at the limit, not at an event or a pending socket: more may
    /// be waiting.
    pub(crate) more: bool,
}

/// One read, classified by the core.
pub(crate) type Read = Classified<SessionEvent>;

/// Takes up to `limit` reads (at least one, at most [`BATCH`]) from `next`,
/// stopping early at a read the machine must see (the ack, a close, an
/// error) or when `next` is pending. Pending when nothing was read.
///
/// `limit` is the room left in the consumer's event buffer, so a batch
/// never takes it past its bound.
pub(crate) fn read_batch(limit: usize, mut next: impl FnMut() -> Poll<Read>) -> Poll<Inbound> {
    let limit = limit.clamp(1, BATCH);
    let mut batch = Inbound::default();
    let mut reads = 0;
    while reads < limit && batch.event.is_none() && batch.ack.is_none() {
        let Poll::Ready(read) = next() else { break };
        reads += 1;
        batch.flush |= read.flush;
        if let Some(notice) = read.notice {
            if batch.notices.capacity() == 0 {
                batch.notices = spare(limit);
            }
            batch.notices.push(notice);
        }
        batch.event = read.event;
        batch.ack = read.ack;
    }
    batch.more = reads == limit && batch.event.is_none() && batch.ack.is_none();
    match reads {
        0 => Poll::Pending,
        _ => Poll::Ready(batch),
    }
}

thread_local! {
    /// One emptied batch buffer per thread, reused: a fresh one per batch
    /// costs a large allocation (64 events of 112 bytes), which in glibc
    /// also consolidates the small chunks the messages themselves freed.
    /// Per thread rather than per session: an idle session holds none.
    static SPARE: Cell<Vec<Queued>> = const { Cell::new(Vec::new()) };
}

/// An empty buffer for `limit` notices: this thread's spare if it has one.
fn spare(limit: usize) -> Vec<Queued> {
    let mut notices = SPARE.try_with(Cell::take).unwrap_or_default();
    notices.reserve(limit);
    notices
}

/// Keeps a batch buffer the lock holder emptied for this thread's next batch.
pub(crate) fn recycle(mut notices: Vec<Queued>) {
    notices.clear();
    if notices.capacity() <= BATCH {
        let _ = SPARE.try_with(|s| s.set(notices));
    }
}

/// Classifies one result of reading the socket of `attempt` (the core
/// decides; the caller's ack predicate runs here, a panic in it is a
/// "no"). Failures are logged with tungstenite's detail first.
pub(crate) fn classify(
    read: Option<Result<Message, WsError>>,
    attempt: Attempt,
    awaiting_ack: bool,
    spec: &Spec,
) -> Read {
    let url = spec.url();
    let received = match read {
        Some(Ok(Message::Text(text))) => Received::Text(text.as_str().to_owned()),
        Some(Ok(Message::Binary(bytes))) => Received::Binary(bytes),
        Some(Ok(Message::Ping(_))) => Received::Ping,
        Some(Ok(Message::Pong(_) | Message::Frame(_))) => Received::Pong,
        Some(Ok(Message::Close(frame))) => match frame {
            Some(f) => Received::Close {
                code: u16::from(f.code),
                reason: f.reason.as_str().to_owned(),
            },
            None => Received::Close {
                code: 1005,
                reason: String::new(),
            },
        },
        Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
            log::debug!("ws-lifecycle {url}: inbound message of {size} bytes exceeds {max_size}");
            Received::TooBig
        }
        Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) => {
            log::debug!("ws-lifecycle {url}: the peer left without a close frame");
            Received::Reset
        }
        Some(Err(WsError::Protocol(e))) => {
            log::debug!("ws-lifecycle {url}: protocol error: {e}");
            Received::Violation { code: 1002 }
        }
        Some(Err(WsError::Utf8(e))) => {
            log::debug!("ws-lifecycle {url}: invalid UTF-8: {e}");
            Received::Violation { code: 1007 }
        }
        Some(Err(e)) => {
            log::debug!("ws-lifecycle {url}: socket error: {e}");
            Received::Lost
        }
        None => Received::Lost,
    };
    let delivery = Delivery {
        raw_text: spec.raw_text,
        binary: spec.binary,
    };
    let is_ack = |value: &serde_json::Value| {
        std::panic::catch_unwind(AssertUnwindSafe(|| (spec.ack)(value))).unwrap_or(false)
    };
    inbound::classify(received, attempt, awaiting_ack, delivery, is_ack)
}
