//! The ledger: the one owner of every message the caller handed over, and
//! of the protocol frames (hello, ping, the after-ack frames, close) —
//! pure, so its accounting is provable without a socket.
//!
//! # At most once, and exact
//!
//! Every message `send` accepted ends in exactly one of two ways:
//!
//! - **written**: the last byte of its frame was taken by the layer below
//!   (reported with [`Ledger::frames_taken`]). A written message may still
//!   die with the link: delivery is at most once.
//! - **handed back**: in an `Unsent` hand-back ([`Ledger::lost`]), in the
//!   close outcome ([`Ledger::take_returned`], [`Ledger::finished`]), or back
//!   into the opt-in queue (from where it ends later in one of these two
//!   ways). A frame only partly written is handed back.
//!
//! Never both, never neither, oldest first. A message moves `buffer` →
//! `in_flight` (taken by [`Ledger::poll_frame`]) → written; whatever is
//! still in `buffer` or `in_flight` when the link goes is handed back.
//!
//! Everything held back for the caller (the send buffer, frames in flight,
//! handed-back messages the consumer has not taken yet) is capped at the
//! send capacity: at the cap `send` refuses with `Full`.
//!
//! # After-ack frames
//!
//! The frames the caller's after-ack builder made for a connection
//! (resubscription) come with the ack ([`Ledger::acked`]) and wait in their
//! own list, written after the hello and pings but before any message of
//! the caller (queued or new). They belong to their connection, not to the
//! caller: never handed back (a lost link drops them; the next ack brings
//! its own), never counted as written, not bounded by the send capacity.
//!
//! # Nothing after a close frame
//!
//! Once a close was requested every send is refused; once a close frame is
//! pending no hello or after-ack frame is taken for the link any more, and
//! the close frame is the last frame [`Ledger::poll_frame`] gives.

use std::collections::VecDeque;

use crate::fsm::Status;

use super::queue::{OutboundQueue, QueueError, Queued};
use super::send::{SendError, SendErrorKind, Sent};

/// A message as the layer below holds it: made from the caller's text
/// without a copy, cloned cheaply while in flight (the ledger keeps one
/// clone until the transport took the frame), and turned back into text
/// when handed back.
pub trait Payload: Clone {
    /// The caller's text as a payload.
    fn from_text(text: String) -> Self;
    /// The payload as text again, to hand it back.
    fn into_text(self) -> String;
}

impl Payload for String {
    fn from_text(text: String) -> Self {
        text
    }

    fn into_text(self) -> String {
        self
    }
}

/// The next frame for the link, by priority: the hello, a ping, the
/// after-ack frames, the caller's messages, the close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<M> {
    /// The hello text of this link.
    Hello(String),
    /// A ping (the driver chooses its payload).
    Ping,
    /// One of this connection's after-ack frames.
    AfterAck(String),
    /// A message the caller sent.
    Message(M),
    /// The close frame; nothing follows it.
    Close {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
}

/// Every outbound message and protocol frame of one session. `Clone` so
/// an exploration can branch from any point.
#[derive(Debug, Clone)]
pub struct Ledger<M> {
    /// 32-bit, like `held`: sessions are many (4 billion is no limit).
    capacity: u32,
    /// Accepted for the current connection, not yet taken for the link.
    buffer: VecDeque<M>,
    /// Messages given to the link, in order, not yet fully taken by the
    /// transport.
    in_flight: VecDeque<M>,
    /// Protocol frames (the hello, after-ack frames) in flight, all ahead
    /// of `in_flight`'s messages: a connection writes them before its
    /// first message. Counted, not queued, so a session that never sends
    /// allocates no `in_flight` slots.
    protocol_in_flight: u32,
    /// The opt-in queue for sends while not Open (boxed: opt-in).
    queue: Option<Box<OutboundQueue<M>>>,
    /// Messages inside `Unsent` hand-backs the consumer has not taken yet.
    held: u32,
    /// Handed back, waiting for `close()` (or the `Closed` event).
    returned: Vec<String>,
    hello: Option<Box<str>>,
    /// This connection's after-ack frames, not yet taken. Newest first
    /// (popped from the end): a `Vec` is a word smaller than a `VecDeque`.
    after_ack: Vec<String>,
    ping: bool,
    /// Boxed: rare, and sessions are many.
    close: Option<Box<(u16, String)>>,
    /// This link's close frame was given: nothing more is, until the next
    /// link (a ping asked for meanwhile included).
    close_given: bool,
    /// Sends go to `buffer` (from the ack until the link goes).
    accepting: bool,
    /// A close was requested: sends are refused from now on.
    closing: bool,
    /// Room appeared for a sender waiting in `send_wait`.
    room_freed: bool,
    written: u64,
    /// Text frames of any kind (hello, after-ack, messages) written.
    frames_written: u64,
}

impl<M: Payload> Ledger<M> {
    /// An empty ledger: `capacity` caps what is held back for the caller;
    /// `queue` keeps sends made while not Open.
    pub fn new(capacity: usize, queue: Option<(usize, super::Overflow)>) -> Self {
        Ledger {
            capacity: u32::try_from(capacity).unwrap_or(u32::MAX),
            buffer: VecDeque::new(),
            in_flight: VecDeque::new(),
            protocol_in_flight: 0,
            queue: queue.map(|(n, overflow)| Box::new(OutboundQueue::new(n, overflow))),
            held: 0,
            returned: Vec::new(),
            hello: None,
            after_ack: Vec::new(),
            ping: false,
            close: None,
            close_given: false,
            accepting: false,
            closing: false,
            room_freed: false,
            written: 0,
            frames_written: 0,
        }
    }

    // ── getters ────────────────────────────────────────────────────────

    /// Messages waiting in the opt-in queue.
    pub fn queued(&self) -> usize {
        self.queue.as_ref().map_or(0, |q| q.len())
    }

    /// Messages written so far (their last byte taken by the transport).
    #[cfg(any(test, feature = "testing"))]
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Text frames written so far: the caller's messages, the hellos and
    /// the after-ack frames.
    pub fn frames_written(&self) -> u64 {
        self.frames_written
    }

    /// The allocated capacity of each message buffer (send buffer, in
    /// flight, after-ack frames, handed back), for soak tests.
    #[cfg(any(test, feature = "testing"))]
    pub fn capacities(&self) -> [(&'static str, usize); 4] {
        [
            ("send buffer", self.buffer.capacity()),
            ("in flight", self.in_flight.capacity()),
            ("after-ack frames", self.after_ack.capacity()),
            ("handed back", self.returned.capacity()),
        ]
    }

    /// Everything held back for the caller, which `capacity` bounds.
    pub(crate) fn held_back(&self) -> usize {
        self.buffer.len() + self.in_flight.len() + self.held as usize + self.returned.len()
    }

    /// Whether room appeared since the last call (wake `send_wait`).
    pub fn take_room_freed(&mut self) -> bool {
        std::mem::take(&mut self.room_freed)
    }

    /// Whether a close was requested (or the session ended).
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    // ── the caller's side ──────────────────────────────────────────────

    /// Accepts `text` for the current connection, or queues it, or hands
    /// it back with the reason. `status` names the state for `NotOpen`.
    /// The text becomes a payload only once accepted, so a refusal costs
    /// nothing.
    pub fn send(&mut self, text: String, status: Status) -> Result<Sent, SendError> {
        if status == Status::Closed {
            return Err(SendError::refused(SendErrorKind::Ended, text));
        }
        if self.closing {
            let kind = SendErrorKind::NotOpen(Status::Closing);
            return Err(SendError::refused(kind, text));
        }
        // Accepting since the ack; but the machine may have left Open (a
        // reconnect-now) before its `DropTransport` reached the ledger:
        // nothing is accepted for a connection that is going away.
        if self.accepting && status == Status::Open {
            if self.held_back() >= self.capacity as usize {
                return Err(SendError::refused(SendErrorKind::Full, text));
            }
            self.buffer.push_back(M::from_text(text));
            return Ok(Sent::Accepted);
        }
        let Some(queue) = self.queue.as_mut() else {
            return Err(SendError::refused(SendErrorKind::NotOpen(status), text));
        };
        match queue.push(M::from_text(text)) {
            Ok(Queued::Queued) => Ok(Sent::Queued),
            Ok(Queued::Evicted(old)) => Ok(Sent::QueuedEvicting(old.into_text())),
            Err(QueueError::Full(text)) => Err(SendError::refused(
                SendErrorKind::QueueFull,
                text.into_text(),
            )),
        }
    }

    /// The caller asked to close: every later send is refused. What was
    /// already accepted is still written before the close frame.
    pub fn close_requested(&mut self) {
        self.closing = true;
        self.accepting = false;
    }

    /// The consumer took an `Unsent` hand-back of `n` messages.
    pub fn unsent_taken(&mut self, n: usize) {
        self.held = self
            .held
            .saturating_sub(u32::try_from(n).unwrap_or(u32::MAX));
        self.room_freed = true;
    }

    /// The event stream was dropped with these handed-back messages still
    /// in it (`held`: from `Unsent` hand-backs, counted in `held`;
    /// `outcome`: from the `Closed` outcome, not): `close()` returns them
    /// instead, oldest first: ahead of what `close()` already keeps (a link
    /// lost once a close was asked for), which is newer than any `Unsent`.
    pub fn events_dropped(&mut self, held: Vec<String>, outcome: Vec<String>) {
        self.held = self
            .held
            .saturating_sub(u32::try_from(held.len()).unwrap_or(u32::MAX));
        let kept = std::mem::replace(&mut self.returned, held);
        self.returned.extend(kept);
        self.returned.extend(outcome);
    }

    /// Hands the messages waiting for `close()` over (once).
    pub fn take_returned(&mut self) -> Vec<String> {
        std::mem::take(&mut self.returned)
    }

    // ── lifecycle moments ──────────────────────────────────────────────

    /// A new link is up: nothing of the last one is left.
    pub fn opened(&mut self) {
        debug_assert!(self.buffer.is_empty() && self.in_flight.is_empty());
        self.clear_protocol();
    }

    /// The ack arrived (`FlushQueue`): this connection's `after_ack`
    /// frames go out first (unless a close was asked for: nothing may follow
    /// a close frame), then the queue in order, and sends are accepted from
    /// now on.
    pub fn acked(&mut self, after_ack: Vec<String>) {
        if !self.closing && self.close.is_none() {
            // Newest first: these go below (after) any still waiting.
            let older = std::mem::replace(&mut self.after_ack, after_ack);
            self.after_ack.reverse();
            self.after_ack.extend(older);
        }
        if let Some(queue) = self.queue.as_mut() {
            self.buffer.extend(queue.drain());
        }
        self.accepting = !self.closing;
    }

    /// The link is gone. What it never wrote goes back: into the queue
    /// (ahead of newer queued messages), to `close()` when closing or when
    /// nobody reads events, else returned here for an `Unsent` hand-back.
    pub fn lost(&mut self, events_alive: bool) -> Option<Vec<String>> {
        self.accepting = false;
        self.clear_protocol();
        self.protocol_in_flight = 0;
        if self.in_flight.is_empty() && self.buffer.is_empty() {
            return None;
        }
        let leftover = self.in_flight.drain(..).chain(self.buffer.drain(..));
        self.room_freed = true;
        match self.queue.as_mut() {
            Some(queue) if !self.closing => {
                let leftover: Vec<M> = leftover.collect();
                leftover.into_iter().rev().for_each(|m| queue.push_front(m));
                None
            }
            _ if self.closing || !events_alive => {
                self.returned.extend(leftover.map(M::into_text));
                None
            }
            _ => {
                let leftover: Vec<String> = leftover.map(M::into_text).collect();
                let n = u32::try_from(leftover.len()).unwrap_or(u32::MAX);
                self.held = self.held.saturating_add(n);
                Some(leftover)
            }
        }
    }

    /// The session ended: everything not written, oldest first (handed
    /// back earlier, in flight, buffered, queued). With `for_close` they
    /// stay for `close()` and none are returned; else they are returned
    /// for the `Closed` event.
    pub fn finished(&mut self, for_close: bool) -> Vec<String> {
        self.closing = true;
        if let Some(back) = self.lost(false) {
            self.returned.extend(back);
        }
        if let Some(queue) = self.queue.as_mut() {
            self.returned.extend(queue.drain().map(M::into_text));
        }
        self.room_freed = true;
        if for_close {
            Vec::new()
        } else {
            self.take_returned()
        }
    }

    // ── protocol frames ────────────────────────────────────────────────

    /// The hello text for the current link, sent before anything else;
    /// ignored once a close was asked for (nothing may follow a close frame).
    pub fn hello(&mut self, text: String) {
        if !self.closing && self.close.is_none() {
            self.hello = Some(text.into_boxed_str());
        }
    }

    /// A ping; one pending at most, so a peer that never reads cannot make
    /// them pile up.
    pub fn ping(&mut self) {
        self.ping = true;
    }

    /// The close frame: written after the send buffer has drained; one
    /// per link (a second asked for before the first went out replaces
    /// it; after, it is ignored).
    pub fn close(&mut self, code: u16, reason: String) {
        if !self.close_given {
            self.close = Some(Box::new((code, reason)));
        }
    }

    /// Takes the pending close frame, if any: the driver's one non-blocking
    /// chance before it drops the link.
    pub fn take_close(&mut self) -> Option<(u16, String)> {
        let close = self.close.take().map(|close| *close);
        self.close_given |= close.is_some();
        close
    }

    fn clear_protocol(&mut self) {
        self.hello = None;
        self.after_ack.clear();
        self.ping = false;
        self.close = None;
        self.close_given = false;
    }

    // ── writing ────────────────────────────────────────────────────────

    /// Whether a frame is waiting (the driver checks the link is ready
    /// before it takes one).
    pub fn has_frame(&self) -> bool {
        !self.close_given
            && (self.hello.is_some()
                || self.ping
                || !self.after_ack.is_empty()
                || !self.buffer.is_empty()
                || self.close.is_some())
    }

    /// Takes the next frame for the link: the hello, a ping, after-ack
    /// frames, the caller's messages (kept in flight until
    /// [`frames_taken`](Self::frames_taken) counts them), then the close
    /// frame.
    pub fn poll_frame(&mut self) -> Option<Frame<M>> {
        if self.close_given {
            return None;
        }
        if let Some(hello) = self.hello.take() {
            debug_assert!(self.in_flight.is_empty(), "a message ahead of the hello");
            self.protocol_in_flight += 1;
            return Some(Frame::Hello(hello.into()));
        }
        if std::mem::take(&mut self.ping) {
            return Some(Frame::Ping);
        }
        if let Some(frame) = self.after_ack.pop() {
            debug_assert!(
                self.in_flight.is_empty(),
                "a message ahead of an after-ack frame"
            );
            self.protocol_in_flight += 1;
            return Some(Frame::AfterAck(frame));
        }
        if let Some(message) = self.buffer.pop_front() {
            self.in_flight.push_back(message.clone());
            return Some(Frame::Message(message));
        }
        self.take_close()
            .map(|(code, reason)| Frame::Close { code, reason })
    }

    /// The transport took the last byte of `text` more text frames, in the
    /// order they were given: protocol frames first, then messages, which
    /// are now written.
    pub fn frames_taken(&mut self, text: u32) {
        self.frames_written = self.frames_written.saturating_add(u64::from(text));
        for _ in 0..text {
            if self.protocol_in_flight > 0 {
                self.protocol_in_flight -= 1;
            } else if self.in_flight.pop_front().is_some() {
                self.written += 1;
                self.room_freed = true;
            }
        }
    }
}
