//! What an inbound frame (or the end of the socket) means: a notice for
//! the caller, an event for the machine, or both.

use std::panic::AssertUnwindSafe;

use async_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use async_tungstenite::tungstenite::{Error as WsError, Message};

use crate::fsm::{Attempt, Event};

use super::session_event::SessionEvent;
use super::spec::Spec;

/// One read, classified.
#[derive(Debug, Default)]
pub(crate) struct Inbound {
    /// For the caller.
    pub(crate) notice: Option<SessionEvent>,
    /// For the machine. Ordinary frames carry none: their bytes already
    /// counted as activity when they arrived.
    pub(crate) event: Option<Event>,
    /// tungstenite queued an answer (a pong, a close reply) to flush out.
    pub(crate) flush: bool,
    /// The ack frame, with `Event::Ack`.
    pub(crate) ack: Option<serde_json::Value>,
}

/// Classifies one result of reading the socket of `attempt`. The ack
/// predicate is asked only while `awaiting_ack`; a panic in it is a "no".
pub(crate) fn classify(
    read: Option<Result<Message, WsError>>,
    attempt: Attempt,
    awaiting_ack: bool,
    spec: &Spec,
) -> Inbound {
    let event = |event| Inbound {
        event: Some(event),
        ..Inbound::default()
    };
    let notice = |notice| Inbound {
        notice: Some(notice),
        ..Inbound::default()
    };
    match read {
        Some(Ok(Message::Text(text))) => {
            match serde_json::from_str::<serde_json::Value>(text.as_str()) {
                Err(e) => notice(SessionEvent::InvalidFrame {
                    attempt,
                    detail: format!("text frame is not JSON: {e}"),
                }),
                Ok(value)
                    if awaiting_ack
                        && std::panic::catch_unwind(AssertUnwindSafe(|| (spec.ack)(&value)))
                            .unwrap_or(false) =>
                {
                    Inbound {
                        event: Some(Event::Ack { attempt }),
                        ack: Some(value),
                        ..Inbound::default()
                    }
                }
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
        Some(Ok(Message::Ping(_))) => Inbound {
            flush: true,
            ..Inbound::default()
        },
        Some(Ok(Message::Pong(_) | Message::Frame(_))) => Inbound::default(),
        Some(Ok(Message::Close(frame))) => {
            let (code, reason) = match frame {
                Some(f) => (u16::from(f.code), f.reason.as_str().to_owned()),
                None => (1005, String::new()),
            };
            Inbound {
                event: Some(Event::PeerClosed {
                    attempt,
                    code,
                    reason,
                }),
                flush: true,
                ..Inbound::default()
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
