//! The driver's settings beyond the core's policy: the transport (socket
//! and tungstenite buffers) and delivery (what the session holds for the
//! caller, in both directions).

use async_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::fsm::outbound::Overflow;

/// Opt-in bounded queue for messages sent while not Open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// The most messages it holds (at least 1).
    pub capacity: usize,
    /// What happens to a message sent while it is full.
    pub overflow: Overflow,
}

/// Socket and tungstenite buffer settings.
///
/// The defaults are sized for many mostly idle sessions: a 4 KiB read
/// buffer (tungstenite's own default eagerly allocates and zero-fills
/// 128 KiB per connection) and writes that go straight to the socket.
/// Raise `read_buffer_size` for a few high-throughput sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// Largest inbound message accepted (default 16 MiB). A bigger one ends
    /// the connection with close code 1009 and the session reconnects.
    pub max_message_size: usize,
    /// Largest inbound frame accepted (default: `max_message_size`).
    pub max_frame_size: usize,
    /// tungstenite's read buffer, allocated per connection (default 4 KiB).
    pub read_buffer_size: usize,
    /// Bytes tungstenite gathers before writing to the socket; 0 writes
    /// every frame at once (default 0: the driver flushes after each batch
    /// anyway).
    pub write_buffer_size: usize,
    /// Disable Nagle's algorithm on the TCP socket (default true).
    pub nodelay: bool,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            max_message_size: 16 << 20,
            max_frame_size: 16 << 20,
            read_buffer_size: 4 << 10,
            write_buffer_size: 0,
            nodelay: true,
        }
    }
}

/// Why a [`TransportConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportConfigError {
    /// A size that must be positive is zero.
    #[error("transport config: `{0}` must be greater than zero")]
    Zero(&'static str),
    /// tungstenite requires its write-buffer cap (here unlimited: the
    /// session's send capacity is what bounds outbound memory) to exceed
    /// `write_buffer_size`.
    #[error("transport config: `write_buffer_size` must be below usize::MAX")]
    WriteBuffer,
    /// A frame limit above the message limit could never be reached.
    #[error("transport config: `max_frame_size` ({frame}) exceeds `max_message_size` ({message})")]
    FrameAboveMessage {
        /// The configured frame limit.
        frame: usize,
        /// The configured message limit.
        message: usize,
    },
}

impl TransportConfig {
    /// Checks every rule, including those tungstenite would panic on.
    pub fn validate(&self) -> Result<(), TransportConfigError> {
        let positive = [
            ("max_message_size", self.max_message_size),
            ("max_frame_size", self.max_frame_size),
            ("read_buffer_size", self.read_buffer_size),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(TransportConfigError::Zero(name));
            }
        }
        if self.write_buffer_size == usize::MAX {
            return Err(TransportConfigError::WriteBuffer);
        }
        if self.max_frame_size > self.max_message_size {
            return Err(TransportConfigError::FrameAboveMessage {
                frame: self.max_frame_size,
                message: self.max_message_size,
            });
        }
        Ok(())
    }

    /// The tungstenite configuration these settings imply.
    pub fn websocket_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_size)
            .write_buffer_size(self.write_buffer_size)
            // Unlimited: a cap would turn backpressure into a write error
            // (a dead link); the session's send capacity bounds memory.
            .max_write_buffer_size(usize::MAX)
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_frame_size))
    }
}

/// How inbound text frames reach the caller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TextDelivery {
    /// Parsed into a [`serde_json::Value`] and delivered as
    /// [`SessionEvent::Message`](super::SessionEvent::Message); text that is
    /// not JSON is reported as
    /// [`SessionEvent::InvalidFrame`](super::SessionEvent::InvalidFrame)
    /// (the default).
    #[default]
    Json,
    /// Delivered verbatim, unparsed, as
    /// [`SessionEvent::Text`](super::SessionEvent::Text), for callers that
    /// deserialize into their own types (parsing once instead of twice).
    /// Text that is not JSON is delivered like any other: it is the
    /// caller's to judge, and no `InvalidFrame` is reported for it. While
    /// the session awaits the ack, frames are still parsed so the ack
    /// predicate sees JSON; the ack is [`Acked`](super::SessionEvent::Acked)
    /// as usual, and every other frame of that time arrives as `Text`.
    Raw,
}

/// What the session holds for the caller, in both directions: the event
/// buffer, the send capacity, the opt-in queue, binary delivery, and how
/// text is delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// Events buffered for the consumer before the session stops reading
    /// the socket (default 1024), counting those [`Events`](super::Events)
    /// has fetched in a batch and not yet handed out. See
    /// [`Events`](super::Events).
    pub event_capacity: usize,
    /// Messages held back for the caller at most (default 1024): accepted
    /// while Open and not yet written, or handed back and not yet taken.
    /// At the cap `send` returns [`SendErrorKind::Full`](super::SendErrorKind::Full).
    pub send_capacity: usize,
    /// Queue sends made while not Open (default: off, such sends fail with
    /// [`SendErrorKind::NotOpen`](super::SendErrorKind::NotOpen)).
    pub queue: Option<QueueConfig>,
    /// Deliver inbound binary frames as events instead of reporting them as
    /// invalid (default false).
    pub binary: bool,
    /// Text frames parsed as JSON (default) or delivered as raw text.
    pub text: TextDelivery,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            event_capacity: 1024,
            send_capacity: 1024,
            queue: None,
            binary: false,
            text: TextDelivery::Json,
        }
    }
}

/// Why a [`DeliveryConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryConfigError {
    /// A capacity that must be positive is zero.
    #[error("delivery config: `{0}` must be greater than zero")]
    Zero(&'static str),
}

impl DeliveryConfig {
    /// Checks that every capacity is positive.
    pub fn validate(&self) -> Result<(), DeliveryConfigError> {
        let positive = [
            ("event_capacity", self.event_capacity),
            ("send_capacity", self.send_capacity),
            ("queue.capacity", self.queue.map_or(1, |q| q.capacity)),
        ];
        match positive.into_iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(DeliveryConfigError::Zero(name)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(TransportConfig::default().validate(), Ok(()));
        assert_eq!(DeliveryConfig::default().validate(), Ok(()));
    }

    #[test]
    fn settings_tungstenite_would_assert_on_are_typed_errors() {
        let c = TransportConfig {
            write_buffer_size: usize::MAX,
            ..TransportConfig::default()
        };
        assert_eq!(c.validate(), Err(TransportConfigError::WriteBuffer));
        let c = TransportConfig {
            read_buffer_size: 0,
            ..TransportConfig::default()
        };
        assert_eq!(
            c.validate(),
            Err(TransportConfigError::Zero("read_buffer_size"))
        );
        let c = DeliveryConfig {
            queue: Some(QueueConfig {
                capacity: 0,
                overflow: Overflow::RejectNew,
            }),
            ..DeliveryConfig::default()
        };
        assert_eq!(
            c.validate(),
            Err(DeliveryConfigError::Zero("queue.capacity"))
        );
    }
}
