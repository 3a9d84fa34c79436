//! The driver's settings beyond the core's policy: the transport (socket
//! and tungstenite buffers) and delivery (what the session holds for the
//! caller, in both directions).

use async_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::fsm::outbound::Overflow;

use super::transport::error::BuildError;

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

impl TransportConfig {
    /// Checks every rule, including those tungstenite would panic on (as
    /// the builder does): a refused setting is [`BuildError::Setting`].
    pub fn validate(&self) -> Result<(), BuildError> {
        let positive = [
            ("max_message_size", self.max_message_size),
            ("max_frame_size", self.max_frame_size),
            ("read_buffer_size", self.read_buffer_size),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(BuildError::transport(name, "must be greater than zero"));
            }
        }
        if self.write_buffer_size == usize::MAX {
            // tungstenite requires its write-buffer cap (here unlimited:
            // the session's send capacity bounds outbound memory) to exceed
            // `write_buffer_size`.
            return Err(BuildError::transport(
                "write_buffer_size",
                "must be below usize::MAX",
            ));
        }
        if self.max_frame_size > self.max_message_size {
            // A frame limit above the message limit could never be reached.
            return Err(BuildError::transport(
                "max_frame_size",
                format!(
                    "({}) exceeds `max_message_size` ({})",
                    self.max_frame_size, self.max_message_size
                ),
            ));
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
    /// The opt-in outbound queue: up to this many messages sent while not
    /// Open are kept, and written in order right after the next ack
    /// ([`Sent::Queued`](super::Sent::Queued)); those still queued when
    /// the session ends are handed back. Default 0: no queue, and such
    /// sends fail with [`SendErrorKind::NotOpen`](super::SendErrorKind::NotOpen).
    pub queue_capacity: usize,
    /// What a send does when the queue is full: by default (false) it is
    /// refused with [`SendErrorKind::QueueFull`](super::SendErrorKind::QueueFull)
    /// and its message handed back; when set, it is queued and the oldest
    /// queued message is evicted and handed back instead
    /// ([`Sent::QueuedEvicting`](super::Sent::QueuedEvicting)).
    pub queue_drops_oldest: bool,
    /// Deliver inbound binary frames as events instead of reporting them as
    /// invalid (default false).
    pub binary: bool,
    /// How text frames reach the caller. By default (false) each is parsed
    /// into a [`serde_json::Value`] and delivered as
    /// [`SessionEvent::Message`](super::SessionEvent::Message); text that is
    /// not JSON is reported as
    /// [`SessionEvent::InvalidFrame`](super::SessionEvent::InvalidFrame).
    ///
    /// When set, text frames are delivered verbatim, unparsed, as
    /// [`SessionEvent::Text`](super::SessionEvent::Text), for callers that
    /// deserialize into their own types (parsing once instead of twice).
    /// Text that is not JSON is delivered like any other: it is the
    /// caller's to judge, and no `InvalidFrame` is reported for it. While
    /// the session awaits the ack, frames are still parsed so the ack
    /// predicate sees JSON; the ack is [`Acked`](super::SessionEvent::Acked)
    /// as usual, and every other frame of that time arrives as `Text`.
    pub raw_text: bool,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            event_capacity: 1024,
            send_capacity: 1024,
            queue_capacity: 0,
            queue_drops_oldest: false,
            binary: false,
            raw_text: false,
        }
    }
}

impl DeliveryConfig {
    /// Checks that the event buffer and the send capacity are positive (as
    /// the builder does): a refused setting is [`BuildError::Setting`].
    pub fn validate(&self) -> Result<(), BuildError> {
        let positive = [
            ("event_capacity", self.event_capacity),
            ("send_capacity", self.send_capacity),
        ];
        match positive.into_iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(BuildError::delivery(name, "must be greater than zero")),
            None => Ok(()),
        }
    }

    /// The queue as the ledger takes it: its capacity and overflow policy,
    /// `None` without one.
    pub(crate) fn queue(&self) -> Option<(usize, Overflow)> {
        let overflow = if self.queue_drops_oldest {
            Overflow::DropOldest
        } else {
            Overflow::RejectNew
        };
        (self.queue_capacity > 0).then_some((self.queue_capacity, overflow))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(TransportConfig::default().validate().is_ok());
        assert!(DeliveryConfig::default().validate().is_ok());
        assert_eq!(DeliveryConfig::default().queue(), None);
    }

    /// The setting a refusal names, and its text.
    fn refused(e: Result<(), BuildError>) -> (&'static str, &'static str, String) {
        match e {
            Err(
                e @ BuildError::Setting {
                    config, setting, ..
                },
            ) => (config, setting, e.to_string()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn settings_tungstenite_would_assert_on_are_typed_errors() {
        let c = TransportConfig {
            write_buffer_size: usize::MAX,
            ..TransportConfig::default()
        };
        assert_eq!(
            refused(c.validate()),
            (
                "transport",
                "write_buffer_size",
                "transport config: `write_buffer_size` must be below usize::MAX".into()
            )
        );
        let c = TransportConfig {
            read_buffer_size: 0,
            ..TransportConfig::default()
        };
        assert_eq!(
            refused(c.validate()),
            (
                "transport",
                "read_buffer_size",
                "transport config: `read_buffer_size` must be greater than zero".into()
            )
        );
        let c = TransportConfig {
            max_frame_size: 2,
            max_message_size: 1,
            ..TransportConfig::default()
        };
        assert_eq!(
            refused(c.validate()).2,
            "transport config: `max_frame_size` (2) exceeds `max_message_size` (1)"
        );
        let c = DeliveryConfig {
            send_capacity: 0,
            ..DeliveryConfig::default()
        };
        assert_eq!(
            refused(c.validate()),
            (
                "delivery",
                "send_capacity",
                "delivery config: `send_capacity` must be greater than zero".into()
            )
        );
    }

    #[test]
    fn a_queue_capacity_of_zero_is_no_queue() {
        let c = DeliveryConfig {
            queue_capacity: 3,
            ..DeliveryConfig::default()
        };
        assert!(c.validate().is_ok());
        assert_eq!(c.queue(), Some((3, Overflow::RejectNew)));
        let c = DeliveryConfig {
            queue_drops_oldest: true,
            ..c
        };
        assert_eq!(c.queue(), Some((3, Overflow::DropOldest)));
        let c = DeliveryConfig {
            queue_capacity: 0,
            ..c
        };
        assert_eq!(c.queue(), None);
    }
}
