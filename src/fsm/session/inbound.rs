//! What an inbound frame (or the end of the socket) means: a notice for
//! the consumer, an event for the machine, or both. Pure: the driver hands
//! in what tungstenite read, as [`Received`], and the caller's ack
//! predicate as a function it runs (its answer is all that matters here).

use crate::fsm::{Attempt, Event};

use super::buffer::Notice;

/// One read from the socket, as the driver saw it (`B`: its bytes,
/// copied only when the consumer is to get them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Received<B> {
    Text(String),
    Binary(B),
    /// tungstenite queued the pong: flush it out.
    Ping,
    Pong,
    /// A close frame (1005: it carried no code); tungstenite queued the reply.
    Close {
        code: u16,
        reason: String,
    },
    /// A message over the size limit.
    TooBig,
    /// The peer left without a close frame.
    Reset,
    /// A protocol violation: closed with `code` (1002, or 1007 for bad UTF-8).
    Violation {
        code: u16,
    },
    /// The socket failed, or ended.
    Lost,
}

/// How inbound frames reach the consumer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Delivery {
    /// Text frames verbatim instead of parsed as JSON.
    pub(crate) raw_text: bool,
    /// Binary frames delivered (else each is an invalid frame).
    pub(crate) binary: bool,
}

/// One read, classified.
#[derive(Debug)]
pub(crate) struct Classified<X> {
    /// For the consumer.
    pub(crate) notice: Option<Notice<X>>,
    /// For the machine.
    pub(crate) event: Option<Event>,
    /// tungstenite queued an answer (a pong, a close reply) to flush out.
    pub(crate) flush: bool,
    /// The ack (the predicate said yes): it goes to the machine as one
    /// input with its after-ack frames.
    pub(crate) ack: Option<serde_json::Value>,
}

impl<X> Default for Classified<X> {
    fn default() -> Self {
        Classified {
            notice: None,
            event: None,
            flush: false,
            ack: None,
        }
    }
}

/// Classifies `read` on the socket of `attempt`. The ack predicate is asked
/// only while `awaiting_ack`. With raw text on, text is parsed only while
/// `awaiting_ack` (for the predicate) and every text frame but the ack
/// reaches the consumer verbatim; else it is parsed when handed out.
pub(crate) fn classify<X, B: AsRef<[u8]>>(
    read: Received<B>,
    attempt: Attempt,
    awaiting_ack: bool,
    delivery: Delivery,
    is_ack: impl FnOnce(&serde_json::Value) -> bool,
) -> Classified<X> {
    let event = |event| Classified {
        event: Some(event),
        ..Classified::default()
    };
    let notice = |notice| Classified {
        notice: Some(notice),
        ..Classified::default()
    };
    match read {
        Received::Text(text) if !awaiting_ack => match delivery.raw_text {
            true => notice(Notice::Text(text)),
            false => notice(Notice::Json { attempt, text }),
        },
        Received::Text(text) => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(value) if is_ack(&value) => Classified {
                ack: Some(value),
                ..Classified::default()
            },
            _ if delivery.raw_text => notice(Notice::Text(text)),
            Ok(value) => notice(Notice::Message(value)),
            Err(e) => notice(Notice::InvalidFrame {
                attempt,
                detail: not_json(&e),
            }),
        },
        Received::Binary(bytes) if delivery.binary => {
            notice(Notice::Binary(bytes.as_ref().to_vec()))
        }
        Received::Binary(bytes) => notice(Notice::InvalidFrame {
            attempt,
            detail: format!("unexpected binary frame of {} bytes", bytes.as_ref().len()),
        }),
        Received::Ping => Classified {
            flush: true,
            ..Classified::default()
        },
        Received::Pong => Classified::default(),
        Received::Close { code, reason } => Classified {
            event: Some(Event::PeerClosed {
                attempt,
                code,
                reason,
            }),
            flush: true,
            ..Classified::default()
        },
        Received::TooBig => event(Event::MessageTooBig { attempt }),
        Received::Violation { code } => event(Event::ProtocolError { attempt, code }),
        Received::Reset | Received::Lost => event(Event::TransportLost { attempt }),
    }
}

/// Why a text frame is an invalid frame when it had to be JSON.
pub(crate) fn not_json(e: &serde_json::Error) -> String {
    format!("text frame is not JSON: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(c: Classified<()>) -> String {
        let mut parts = Vec::new();
        match c.notice {
            Some(Notice::Text(t)) => parts.push(format!("text {t}")),
            Some(Notice::Json { text, .. }) => parts.push(format!("json {text}")),
            Some(Notice::Message(v)) => parts.push(format!("message {v}")),
            Some(Notice::Binary(b)) => parts.push(format!("binary {}", b.len())),
            Some(Notice::InvalidFrame { detail, .. }) => parts.push(format!("invalid: {detail}")),
            Some(_) => parts.push("other notice".into()),
            None => {}
        }
        if let Some(e) = c.event {
            parts.push(format!("event {}", e.name()));
        }
        if let Some(ack) = c.ack {
            parts.push(format!("ack {ack}"));
        }
        if c.flush {
            parts.push("flush".into());
        }
        parts.join(", ")
    }

    fn text(t: &str) -> Received<Vec<u8>> {
        Received::Text(t.to_owned())
    }

    const JSON: Delivery = Delivery {
        raw_text: false,
        binary: false,
    };
    const RAW: Delivery = Delivery {
        raw_text: true,
        binary: true,
    };

    fn is_ack(v: &serde_json::Value) -> bool {
        v["type"] == "hello_ack"
    }

    #[test]
    fn text_is_parsed_when_handed_out_unless_the_ack_is_awaited() {
        let c = |read, awaiting, delivery| name(classify(read, 1, awaiting, delivery, is_ack));
        assert_eq!(c(text(r#"{"a":1}"#), false, JSON), r#"json {"a":1}"#);
        assert_eq!(c(text("not json"), false, JSON), "json not json");
        assert_eq!(c(text("verbatim"), false, RAW), "text verbatim");
        let ack = r#"{"type":"hello_ack"}"#;
        assert_eq!(c(text(ack), true, JSON), r#"ack {"type":"hello_ack"}"#);
        assert_eq!(c(text(ack), true, RAW), r#"ack {"type":"hello_ack"}"#);
        // Before the ack: parsed once, for the predicate.
        assert_eq!(c(text(r#"{"b":2}"#), true, JSON), r#"message {"b":2}"#);
        assert_eq!(c(text(r#"{"b":2}"#), true, RAW), r#"text {"b":2}"#);
        assert!(c(text("nope"), true, JSON).starts_with("invalid: text frame is not JSON"));
        assert_eq!(c(text("nope"), true, RAW), "text nope");
        // An ack that arrives once the attempt is past AwaitingAck is a message.
        assert_eq!(c(text(ack), false, JSON), r#"json {"type":"hello_ack"}"#);
    }

    #[test]
    fn a_predicate_that_says_no_leaves_the_frame_a_message() {
        let c = classify::<(), _>(text(r#"{"type":"hello_ack"}"#), 1, true, JSON, |_| false);
        assert_eq!(name(c), r#"message {"type":"hello_ack"}"#);
    }

    #[test]
    fn control_frames_and_failures_are_the_machines() {
        let c = |read: Received<Vec<u8>>| name(classify(read, 4, false, JSON, is_ack));
        assert_eq!(
            c(Received::Binary(vec![1, 2])),
            "invalid: unexpected binary frame of 2 bytes"
        );
        assert_eq!(
            name(classify(
                Received::Binary(vec![1, 2]),
                4,
                false,
                RAW,
                is_ack
            )),
            "binary 2"
        );
        assert_eq!(c(Received::Ping), "flush");
        assert_eq!(c(Received::Pong), "");
        let close = Received::Close {
            code: 4001,
            reason: "bye".into(),
        };
        let closed = classify::<(), Vec<u8>>(close, 4, false, JSON, is_ack);
        assert!(closed.flush);
        assert!(matches!(
            closed.event,
            Some(Event::PeerClosed { attempt: 4, code: 4001, ref reason }) if reason == "bye"
        ));
        assert_eq!(c(Received::TooBig), "event MessageTooBig");
        assert_eq!(c(Received::Reset), "event TransportLost");
        assert_eq!(c(Received::Lost), "event TransportLost");
        let violation =
            classify::<(), Vec<u8>>(Received::Violation { code: 1007 }, 4, false, JSON, is_ack);
        assert!(matches!(
            violation.event,
            Some(Event::ProtocolError {
                attempt: 4,
                code: 1007
            })
        ));
    }
}
