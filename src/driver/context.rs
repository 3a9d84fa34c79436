//! What the caller's per-attempt code is told: the attempt, what the
//! broker said in its last ack, and how the last connection ended. The
//! session builds it (the latest ack is kept with the handles' state, the
//! latest disconnect by the session); the hello builder, the async request
//! hook and the after-ack builder receive it.

use crate::fsm::Attempt;

/// What an attempt knows when its hello (or its upgrade request) is built.
///
/// Given to the hello builder ([`ClientBuilder::hello`](super::ClientBuilder::hello))
/// and the async request hook
/// ([`ClientBuilder::request_headers`](super::ClientBuilder::request_headers)),
/// anew for every attempt. A resume token, a presence id or a lease from one
/// ack can ride in the next hello through [`previous_ack`](Self::previous_ack).
///
/// `#[non_exhaustive]`: fields may be added without a breaking change.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HelloContext {
    /// The attempt being made (attempts count from 1).
    pub attempt: Attempt,
    /// The ack frame of the latest attempt that was acked, if any (the same
    /// value [`Client::last_ack`](super::Client::last_ack) returns).
    pub previous_ack: Option<serde_json::Value>,
    /// How the latest connection that had opened ended: the close code and
    /// reason of its [`SessionEvent::Disconnected`](super::SessionEvent::Disconnected)
    /// notice.
    pub last_disconnect: Option<(u16, String)>,
}

/// What the after-ack builder
/// ([`ClientBuilder::after_ack`](super::ClientBuilder::after_ack)) is told:
/// the ack that just arrived, and what the hello of this attempt knew.
///
/// `#[non_exhaustive]`: fields may be added without a breaking change.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AfterAckContext {
    /// The attempt that was just acked.
    pub attempt: Attempt,
    /// This attempt's ack frame.
    pub ack: serde_json::Value,
    /// The ack frame of the attempt acked before this one, if any.
    pub previous_ack: Option<serde_json::Value>,
    /// How the connection before this one ended (code, reason), if one had
    /// opened.
    pub last_disconnect: Option<(u16, String)>,
}

/// A frame the after-ack builder asks to send: a JSON value (serialised
/// once) or text (sent verbatim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfterAckFrame(pub(crate) String);

impl AfterAckFrame {
    /// The text that goes on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<serde_json::Value> for AfterAckFrame {
    fn from(value: serde_json::Value) -> Self {
        AfterAckFrame(value.to_string())
    }
}

impl From<&serde_json::Value> for AfterAckFrame {
    fn from(value: &serde_json::Value) -> Self {
        AfterAckFrame(value.to_string())
    }
}

impl From<String> for AfterAckFrame {
    fn from(text: String) -> Self {
        AfterAckFrame(text)
    }
}

impl From<&str> for AfterAckFrame {
    fn from(text: &str) -> Self {
        AfterAckFrame(text.to_owned())
    }
}
