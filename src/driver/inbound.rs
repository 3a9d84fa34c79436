//! What an inbound frame (or the end of the socket) means: a notice for
//! the caller, an event for the machine, or both; and the batch one read
//! pass takes, so the caller's notices cross the lock together.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::task::Poll;

use async_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use async_tungstenite::tungstenite::{Error as WsError, Message};

use crate::fsm::{Attempt, Event};

use super::session_event::SessionEvent;
use super::shared::Delivered as Queued;
use super::spec::Spec;

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

/// One read, classified.
#[derive(Debug, Default)]
pub(crate) struct Read {
    notice: Option<Queued>,
    event: Option<Event>,
    flush: bool,
    ack: Option<serde_json::Value>,
}

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

/// Classifies one result of reading the socket of `attempt`. The ack
/// predicate is asked only while `awaiting_ack`; a panic in it is a "no".
/// With raw text on, text is parsed only while `awaiting_ack` (for the
/// predicate) and every text frame but the ack reaches the caller verbatim.
pub(crate) fn classify(
    read: Option<Result<Message, WsError>>,
    attempt: Attempt,
    awaiting_ack: bool,
    spec: &Spec,
) -> Read {
    let event = |event| Read {
        event: Some(event),
        ..Read::default()
    };
    let notice = |notice| Read {
        notice: Some(Queued::Event(notice)),
        ..Read::default()
    };
    match read {
        Some(Ok(Message::Text(text))) if spec.raw_text && !awaiting_ack => {
            notice(SessionEvent::Text(text.as_str().to_owned()))
        }
        // Parsed when handed out (see `Queued::Json`).
        Some(Ok(Message::Text(text))) if !awaiting_ack => Read {
            notice: Some(Queued::Json {
                attempt,
                text: text.as_str().to_owned(),
            }),
            ..Read::default()
        },
        Some(Ok(Message::Text(text))) => {
            match serde_json::from_str::<serde_json::Value>(text.as_str()) {
                Err(_) if spec.raw_text => notice(SessionEvent::Text(text.as_str().to_owned())),
                Err(e) => notice(SessionEvent::InvalidFrame {
                    attempt,
                    detail: format!("text frame is not JSON: {e}"),
                }),
                Ok(value)
                    if awaiting_ack
                        && std::panic::catch_unwind(AssertUnwindSafe(|| (spec.ack)(&value)))
                            .unwrap_or(false) =>
                {
                    Read {
                        ack: Some(value),
                        ..Read::default()
                    }
                }
                Ok(_) if spec.raw_text => notice(SessionEvent::Text(text.as_str().to_owned())),
                Ok(value) => notice(SessionEvent::Message(value)),
            }
        }
        Some(Ok(Message::Binary(bytes))) if spec.binary => {
            notice(SessionEvent::Binary(bytes.to_vec()))
        }
        Some(Ok(Message::Binary(bytes))) => notice(SessionEvent::InvalidFrame {
            attempt,
            detail: format!("unexpected binary frame of {} bytes", bytes.len()),
        }),
        Some(Ok(Message::Ping(_))) => Read {
            flush: true,
            ..Read::default()
        },
        Some(Ok(Message::Pong(_) | Message::Frame(_))) => Read::default(),
        Some(Ok(Message::Close(frame))) => {
            let (code, reason) = match frame {
                Some(f) => (u16::from(f.code), f.reason.as_str().to_owned()),
                None => (1005, String::new()),
            };
            Read {
                event: Some(Event::PeerClosed {
                    attempt,
                    code,
                    reason,
                }),
                flush: true,
                ..Read::default()
            }
        }
        Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
            log::debug!(
                "ws-lifecycle {}: inbound message of {size} bytes exceeds {max_size}",
                spec.url()
            );
            event(Event::MessageTooBig { attempt })
        }
        // The peer's TCP ended without a close frame (EOF or reset):
        // tungstenite files it under protocol errors, but no frame broke
        // the protocol, so no 1002 goes out and the policy sees a lost
        // transport.
        Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) => {
            log::debug!(
                "ws-lifecycle {}: the peer left without a close frame",
                spec.url()
            );
            event(Event::TransportLost { attempt })
        }
        Some(Err(WsError::Protocol(e))) => {
            log::debug!("ws-lifecycle {}: protocol error: {e}", spec.url());
            event(Event::ProtocolError {
                attempt,
                code: 1002,
            })
        }
        Some(Err(WsError::Utf8(e))) => {
            log::debug!("ws-lifecycle {}: invalid UTF-8: {e}", spec.url());
            event(Event::ProtocolError {
                attempt,
                code: 1007,
            })
        }
        Some(Err(e)) => {
            log::debug!("ws-lifecycle {}: socket error: {e}", spec.url());
            event(Event::TransportLost { attempt })
        }
        // The stream ends after a completed close handshake or at EOF; in
        // Closing either is a clean end.
        None => event(Event::TransportLost { attempt }),
    }
}
