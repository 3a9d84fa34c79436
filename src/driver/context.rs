//! What the caller's per-attempt code is told: the attempt, what the
//! broker said in its last ack, and how the last connection ended (the
//! session core keeps both); the hello builder, the async request hook and
//! the after-ack builder receive it.

use crate::fsm::Attempt;

/// What an attempt knows when its hello (or its upgrade request) is built.
///
/// Given to the hello builder ([`ClientBuilder::hello`](super::ClientBuilder::hello))
/// and the async request hook
/// ([`ClientBuilder::request_headers`](super::ClientBuilder::request_headers)),
/// anew for every attempt, and, with the ack, to the after-ack builder
/// ([`ClientBuilder::after_ack`](super::ClientBuilder::after_ack)). A resume token, a presence id or a lease from one
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

/// What the session's after-ack step is told (the builder hands the
/// caller's after-ack builder the [`HelloContext`] part and the ack).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AfterAckContext {
    /// The attempt that was just acked.
    pub(crate) attempt: Attempt,
    /// This attempt's ack frame.
    pub(crate) ack: serde_json::Value,
    /// The ack frame of the attempt acked before this one, if any.
    pub(crate) previous_ack: Option<serde_json::Value>,
    /// How the connection before this one ended (code, reason), if one had
    /// opened.
    pub(crate) last_disconnect: Option<(u16, String)>,
}

impl AfterAckContext {
    /// What this attempt's hello knew.
    pub(crate) fn hello(&self) -> HelloContext {
        HelloContext {
            attempt: self.attempt,
            previous_ack: self.previous_ack.clone(),
            last_disconnect: self.last_disconnect.clone(),
        }
    }
}

/// A frame the after-ack builder asks to send: its text, as it goes on the
/// wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AfterAckFrame(pub(crate) String);
