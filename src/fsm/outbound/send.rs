//! What the caller hears back from a send: accepted, queued, or refused
//! with the message handed back.

use crate::fsm::Status;

/// What happened to an accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Handed to the current connection's send buffer.
    Accepted,
    /// Queued until the next ack.
    Queued,
    /// Queued; the oldest queued message was evicted to make room and is
    /// handed back here.
    QueuedEvicting(String),
}

/// Why a send was refused. The message is always handed back.
#[derive(Debug, thiserror::Error)]
#[error("send failed: {kind}")]
pub struct SendError {
    /// What went wrong.
    pub kind: SendErrorKind,
    /// The message that was not sent (the text as it would have gone out);
    /// `None` only when it could not be encoded.
    pub message: Option<String>,
}

/// The reasons a send can be refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendErrorKind {
    /// Not Open and no outbound queue is configured; `Closing` as soon as
    /// a close was requested.
    #[error("the session is {0}, not open")]
    NotOpen(Status),
    /// The send capacity is used up (messages buffered, in flight, or handed
    /// back and not yet taken): the socket is slower than the sender.
    /// Retry later or use `send_wait`, which waits for room.
    #[error("the send buffer is full")]
    Full,
    /// The outbound queue is full and its policy rejects new messages.
    #[error("the outbound queue is full")]
    QueueFull,
    /// The session has ended.
    #[error("the session has ended")]
    Ended,
    /// The value could not be serialised to JSON (refused before it
    /// reached the session).
    #[error("the value is not serialisable: {0}")]
    Encode(String),
}

impl SendError {
    /// A refusal of `kind` handing `message` back.
    pub(crate) fn refused(kind: SendErrorKind, message: String) -> Self {
        SendError {
            kind,
            message: Some(message),
        }
    }
}
