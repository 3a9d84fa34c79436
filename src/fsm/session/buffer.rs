//! The consumer's event buffer and its back-pressure (DESIGN 16): bounded,
//! inbound frames read only while it has room, and a notice that finds it
//! full folded into one `Lagged` report instead of stored.

use std::collections::VecDeque;
use std::time::Duration;

use crate::fsm::{Attempt, Cause, CloseReason, Status};

/// One event as buffered for the consumer: the session's own notices, the
/// frames read, and the driver's own reports (`X`).
#[derive(Debug, Clone)]
pub enum Notice<X> {
    /// The status changed (`SessionEvent::Status`).
    Status {
        /// The status left.
        from: Status,
        /// The status entered.
        to: Status,
        /// Why.
        cause: Cause,
        /// The attempt it belongs to.
        attempt: Attempt,
    },
    /// The broker acked the hello of `attempt`.
    Acked {
        /// The attempt acked.
        attempt: Attempt,
        /// The ack as read.
        ack: serde_json::Value,
    },
    /// A connection whose socket had opened ended.
    Disconnected {
        /// The attempt that ended.
        attempt: Attempt,
        /// Close code (1006 without a close frame).
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// The next attempt starts after `delay`.
    ReconnectScheduled {
        /// The next attempt.
        attempt: Attempt,
        /// How long until it starts.
        delay: Duration,
    },
    /// Messages a lost link never wrote, handed back oldest first.
    Unsent(Vec<String>),
    /// Notices dropped while the buffer was full.
    Lagged {
        /// How many.
        missed: u64,
    },
    /// The session ended; the messages never written, when nobody asked
    /// to close.
    Closed {
        /// Why it ended.
        reason: CloseReason,
        /// Accepted, never written, oldest first.
        unsent: Vec<String>,
    },
    /// A text frame, parsed into a message (or found not JSON: an invalid
    /// frame) only when handed out: the parsed value is then made and
    /// dropped on the consumer's side one at a time, and the buffer holds
    /// the text (tens of bytes) rather than the value (a map node of about
    /// 600).
    Json {
        /// The attempt that read it.
        attempt: Attempt,
        /// The frame's text.
        text: String,
    },
    /// A JSON message already parsed (read before the ack, for the
    /// predicate).
    Message(serde_json::Value),
    /// A text frame, verbatim (raw text delivery).
    Text(String),
    /// A binary frame (binary delivery).
    Binary(Vec<u8>),
    /// A frame the consumer was not promised.
    InvalidFrame {
        /// The attempt that read it.
        attempt: Attempt,
        /// What was wrong with it.
        detail: String,
    },
    /// One of the driver's own notices (the upgrade response, a failed
    /// connect or hello).
    Report(X),
}

impl<X> Notice<X> {
    /// Whether it is stored even in a full buffer. Inbound frames are read
    /// only while there is room (so they overshoot by at most one batch's
    /// last frame); `Closed` comes once, `Unsent` is bounded by the send
    /// capacity, `Open` and its `Acked` once per connection. Everything
    /// else is a notice the consumer can do without: counted in `Lagged`.
    fn always(&self) -> bool {
        match self {
            Notice::Closed { .. } | Notice::Unsent(_) | Notice::Acked { .. } => true,
            Notice::Json { .. }
            | Notice::Message(_)
            | Notice::Text(_)
            | Notice::Binary(_)
            | Notice::InvalidFrame { .. } => true,
            Notice::Status { to, .. } => *to == Status::Open,
            Notice::Disconnected { .. }
            | Notice::ReconnectScheduled { .. }
            | Notice::Lagged { .. }
            | Notice::Report(_) => false,
        }
    }
}

/// The events waiting for the consumer, and how many it holds in its hand
/// (fetched in a batch, not handed out yet: they still count).
#[derive(Debug, Clone)]
pub(crate) struct EventBuffer<X> {
    events: VecDeque<Notice<X>>,
    /// (32 bits: sessions are many; larger capacities saturate.)
    capacity: u32,
    /// (32 bits: saturates, which only errs towards less room.)
    in_hand: u32,
    /// The allocated capacity of the consumer's hand, for the soak tests.
    hand_capacity: u32,
    /// False once the event stream was dropped: nothing is stored then.
    alive: bool,
    /// Notices dropped while full, reported as one `Lagged` once there is room.
    lagged: u64,
    /// Something was stored since the consumer last looked: wake it.
    news: bool,
}

impl<X> EventBuffer<X> {
    pub(crate) fn new(capacity: usize) -> Self {
        EventBuffer {
            events: VecDeque::new(),
            capacity: u32::try_from(capacity).unwrap_or(u32::MAX),
            in_hand: 0,
            hand_capacity: 0,
            alive: true,
            lagged: 0,
            news: false,
        }
    }

    /// How many more events fit (`usize::MAX` once nobody reads).
    pub(crate) fn room(&self) -> usize {
        match self.alive {
            true => {
                (self.capacity as usize).saturating_sub(self.events.len() + self.in_hand as usize)
            }
            false => usize::MAX,
        }
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.alive
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// The allocated capacity of the buffer and the consumer's hand.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn allocated(&self) -> usize {
        self.events.capacity() + self.hand_capacity as usize
    }

    /// The events waiting, oldest first, and the notices folded so far.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn waiting(&self) -> (impl Iterator<Item = &Notice<X>>, u64) {
        (self.events.iter(), self.lagged)
    }

    /// Stores `event`, or counts it for `Lagged` when the buffer is full
    /// and it is a notice the consumer can do without; nothing once
    /// nobody reads.
    pub(crate) fn push(&mut self, event: Notice<X>) {
        if !self.alive {
            return;
        }
        if self.room() == 0 && !event.always() {
            self.lagged = self.lagged.saturating_add(1);
            return;
        }
        self.take_lagged();
        self.events.push_back(event);
        self.news = true;
    }

    /// Queues the `Lagged` report for the notices dropped so far, if any.
    fn take_lagged(&mut self) {
        if self.lagged > 0 {
            let missed = std::mem::take(&mut self.lagged);
            self.events.push_back(Notice::Lagged { missed });
        }
    }

    /// Whether something was stored since the last call (wake the consumer).
    pub(crate) fn take_news(&mut self) -> bool {
        std::mem::take(&mut self.news)
    }

    /// The consumer takes everything buffered into `hand` (which must be
    /// empty), the `Lagged` report too when nothing else is waiting.
    pub(crate) fn take_all(&mut self, hand: &mut VecDeque<Notice<X>>) {
        if self.events.is_empty() {
            self.take_lagged();
        }
        std::mem::swap(hand, &mut self.events);
    }

    /// The consumer holds `in_hand` events not handed out yet, in a buffer
    /// of `hand_capacity`.
    pub(crate) fn in_hand(&mut self, in_hand: usize, hand_capacity: usize) {
        self.in_hand = u32::try_from(in_hand).unwrap_or(u32::MAX);
        self.hand_capacity = u32::try_from(hand_capacity).unwrap_or(u32::MAX);
    }

    /// The event stream was dropped: everything buffered, for the
    /// outbound side to take back what it must.
    pub(crate) fn dropped(&mut self) -> VecDeque<Notice<X>> {
        self.alive = false;
        self.in_hand = 0;
        self.lagged = 0;
        std::mem::take(&mut self.events)
    }
}
