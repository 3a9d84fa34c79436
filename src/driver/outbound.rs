//! The one owner of every message the caller handed over, and of the
//! protocol frames (hello, ping, the after-ack frames, close).
//!
//! # At most once, and exact
//!
//! Every message `send` accepted ends in exactly one of two ways:
//!
//! - **written**: the last byte of its frame was taken by the layer below
//!   tungstenite (the TCP socket, or rustls' buffer for `wss://`), as the
//!   [`meter`](super::meter) counts it. A written message may still die with
//!   the link: delivery is at most once.
//! - **handed back**: as [`SessionEvent::Unsent`](super::SessionEvent::Unsent),
//!   in the close outcome, or back into the opt-in queue (from where it ends
//!   later in one of these two ways). A frame only partly written is handed
//!   back.
//!
//! Never both, never neither. A message moves `buffer` → `in_flight` (handed
//! to tungstenite) → written; whatever is still in `buffer` or `in_flight`
//! when the link goes is handed back, oldest first.
//!
//! Everything held back for the caller (the send buffer, frames in flight,
//! handed-back messages the consumer has not taken yet) is capped at the
//! send capacity: at the cap `send` returns `Full`.
//!
//! # After-ack frames
//!
//! The frames the caller's after-ack builder made for a connection
//! (resubscription) are handed over with the ack (`Outbound::acked`) and
//! wait in their own list, written after the hello and pings but before any
//! message of the caller (queued or new). They belong to their connection,
//! not to the caller: never handed back (a lost link drops them; the next
//! ack brings its own), never counted as written, not bounded by the send
//! capacity.

use std::collections::VecDeque;
use std::task::{Context, Poll};

use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::{Message, Utf8Bytes};

use std::time::{Duration, Instant};

use crate::fsm::{Action, Status};

use super::queue::{OutboundQueue, QueueError, Queued};
use super::rtt::{PingClock, Pong};
use super::transport::meter::Completed;

/// Frames one write pass hands to the socket at most, so one busy session
/// cannot hold its task (and the lock) for long.
const BATCH: usize = 256;

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
    /// The value could not be serialised to JSON.
    #[error("the value is not serialisable: {0}")]
    Encode(String),
}

/// The link broke while writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WireError;

/// The socket as the outbound side sees it: tungstenite's sink plus the
/// meter's count of text frames and pings fully taken by the transport.
pub(crate) trait Wire {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WireError>>;
    fn start_send(&mut self, message: Message) -> Result<(), WireError>;
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WireError>>;
    /// Frames whose last byte the transport took since the last call.
    fn take_completed(&mut self) -> Completed;
}

/// The next frame to write, by priority.
enum Next {
    Hello,
    Ping,
    AfterAck,
    Message,
    Close,
}

/// Every outbound message and protocol frame of one session.
pub(crate) struct Outbound {
    /// 32-bit, like `held`: sessions are many (4 billion is no limit).
    capacity: u32,
    /// Accepted for the current connection, not yet handed to tungstenite.
    buffer: VecDeque<String>,
    /// Messages handed to tungstenite, in order, not yet fully taken by
    /// the transport.
    in_flight: VecDeque<Utf8Bytes>,
    /// Protocol frames (the hello, after-ack frames) in flight, all ahead
    /// of `in_flight`'s messages: a connection writes them before its
    /// first message. Counted, not queued, so a session that never sends
    /// allocates no `in_flight` slots.
    protocol_in_flight: u32,
    /// The opt-in queue for sends while not Open (boxed: opt-in).
    queue: Option<Box<OutboundQueue<String>>>,
    /// Messages inside `Unsent` events the consumer has not taken yet.
    held: u32,
    /// Handed back, waiting for `close()` (or the `Closed` event).
    returned: Vec<String>,
    hello: Option<Box<str>>,
    /// This connection's after-ack frames, not yet handed to tungstenite.
    /// Newest first (popped from the end): a `Vec` is a word smaller
    /// than a `VecDeque`.
    after_ack: Vec<String>,
    ping: bool,
    /// Boxed: rare, and sessions are many.
    close: Option<Box<CloseFrame>>,
    /// tungstenite holds bytes (a pong, a close reply, a partial frame).
    flush: bool,
    /// Sends go to `buffer` (from the ack until the link goes).
    accepting: bool,
    /// A close was requested: sends are refused from now on.
    closing: bool,
    /// Room appeared for a sender waiting in `send_wait`.
    room_freed: bool,
    written: u64,
    /// Text frames of any kind (hello, after-ack, messages) written.
    frames_written: u64,
    /// The latest ping's round trip, from its last byte out to its pong.
    pings: PingClock,
}

impl Outbound {
    pub(crate) fn new(capacity: usize, queue: Option<OutboundQueue<String>>) -> Self {
        Outbound {
            capacity: u32::try_from(capacity).unwrap_or(u32::MAX),
            buffer: VecDeque::new(),
            in_flight: VecDeque::new(),
            protocol_in_flight: 0,
            queue: queue.map(Box::new),
            held: 0,
            returned: Vec::new(),
            hello: None,
            after_ack: Vec::new(),
            ping: false,
            close: None,
            flush: false,
            accepting: false,
            closing: false,
            room_freed: false,
            written: 0,
            frames_written: 0,
            pings: PingClock::default(),
        }
    }

    // ── getters ────────────────────────────────────────────────────────

    /// Messages waiting in the opt-in queue.
    pub(crate) fn queued(&self) -> usize {
        self.queue.as_ref().map_or(0, |q| q.len())
    }

    /// Messages written so far (their last byte taken by the transport).
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// The allocated capacity of each message buffer (send buffer, in
    /// flight, after-ack frames, handed back), for soak tests.
    pub(crate) fn capacities(&self) -> [(&'static str, usize); 4] {
        [
            ("send buffer", self.buffer.capacity()),
            ("in flight", self.in_flight.capacity()),
            ("after-ack frames", self.after_ack.capacity()),
            ("handed back", self.returned.capacity()),
        ]
    }

    /// Text frames written so far: the caller's messages, the hellos and
    /// the after-ack frames.
    pub(crate) fn frames_written(&self) -> u64 {
        self.frames_written
    }

    /// Everything held back for the caller, which `capacity` bounds.
    fn held_back(&self) -> usize {
        self.buffer.len() + self.in_flight.len() + self.held as usize + self.returned.len()
    }

    /// Whether room appeared since the last call (wake `send_wait`).
    pub(crate) fn take_room_freed(&mut self) -> bool {
        std::mem::take(&mut self.room_freed)
    }

    // ── the caller's side ──────────────────────────────────────────────

    /// Accepts `text` for the current connection, or queues it, or hands
    /// it back with the reason. `status` names the state for `NotOpen`.
    pub(crate) fn send(&mut self, text: String, status: Status) -> Result<Sent, SendError> {
        let refuse = |kind, text| {
            Err(SendError {
                kind,
                message: Some(text),
            })
        };
        if status == Status::Closed {
            return refuse(SendErrorKind::Ended, text);
        }
        if self.closing {
            return refuse(SendErrorKind::NotOpen(Status::Closing), text);
        }
        if self.accepting {
            if self.held_back() >= self.capacity as usize {
                return refuse(SendErrorKind::Full, text);
            }
            self.buffer.push_back(text);
            return Ok(Sent::Accepted);
        }
        match self.queue.as_mut() {
            None => refuse(SendErrorKind::NotOpen(status), text),
            Some(queue) => match queue.push(text) {
                Ok(Queued::Queued) => Ok(Sent::Queued),
                Ok(Queued::Evicted(old)) => Ok(Sent::QueuedEvicting(old)),
                Err(QueueError::Full(text)) => refuse(SendErrorKind::QueueFull, text),
            },
        }
    }

    /// The caller asked to close: every later send is refused. What was
    /// already accepted is still written before the close frame.
    pub(crate) fn close_requested(&mut self) {
        self.closing = true;
        self.accepting = false;
    }

    /// The consumer took an `Unsent` event of `n` messages.
    pub(crate) fn unsent_taken(&mut self, n: usize) {
        self.held = self
            .held
            .saturating_sub(u32::try_from(n).unwrap_or(u32::MAX));
        self.room_freed = true;
    }

    /// The event stream was dropped with these handed-back messages still
    /// in it (from `Unsent` events, `held`, or the `Closed` outcome, not):
    /// `close()` returns them instead.
    pub(crate) fn events_dropped(&mut self, held: Vec<String>, outcome: Vec<String>) {
        self.held = self
            .held
            .saturating_sub(u32::try_from(held.len()).unwrap_or(u32::MAX));
        self.returned.extend(held);
        self.returned.extend(outcome);
    }

    /// Hands the messages waiting for `close()` over (once).
    pub(crate) fn take_returned(&mut self) -> Vec<String> {
        std::mem::take(&mut self.returned)
    }

    // ── lifecycle moments ──────────────────────────────────────────────

    /// A new link is up: nothing of the last one is left.
    pub(crate) fn opened(&mut self) {
        debug_assert!(self.buffer.is_empty() && self.in_flight.is_empty());
        self.clear_protocol();
    }

    /// The ack arrived (`FlushQueue`): this connection's `after_ack`
    /// frames go out first (unless a close was asked for: nothing may follow
    /// a close frame), then the queue in order, and sends are accepted from
    /// now on.
    pub(crate) fn acked(&mut self, after_ack: Vec<String>) {
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
    /// nobody reads events, else returned here for an `Unsent` event.
    pub(crate) fn lost(&mut self, events_alive: bool) -> Option<Vec<String>> {
        self.accepting = false;
        self.clear_protocol();
        let mut leftover: Vec<String> = self
            .in_flight
            .drain(..)
            .map(|bytes| bytes.as_str().to_owned())
            .collect();
        self.protocol_in_flight = 0;
        leftover.extend(self.buffer.drain(..));
        if leftover.is_empty() {
            return None;
        }
        self.room_freed = true;
        match self.queue.as_mut() {
            Some(queue) if !self.closing => {
                leftover.into_iter().rev().for_each(|m| queue.push_front(m));
                None
            }
            _ if self.closing || !events_alive => {
                self.returned.extend(leftover);
                None
            }
            _ => {
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
    pub(crate) fn finished(&mut self, for_close: bool) -> Vec<String> {
        self.closing = true;
        if let Some(back) = self.lost(false) {
            self.returned.extend(back);
        }
        if let Some(queue) = self.queue.as_mut() {
            self.returned.extend(queue.drain());
        }
        self.room_freed = true;
        if for_close {
            Vec::new()
        } else {
            self.take_returned()
        }
    }

    /// Whether a close was requested (or the session ended).
    pub(crate) fn is_closing(&self) -> bool {
        self.closing
    }

    // ── protocol frames ────────────────────────────────────────────────

    /// The hello text for the current link, sent before anything else;
    /// ignored once a close was asked for (nothing may follow a close frame).
    pub(crate) fn hello(&mut self, text: String) {
        if !self.closing && self.close.is_none() {
            self.hello = Some(text.into_boxed_str());
        }
    }

    /// A ping; one pending at most, so a peer that never reads cannot make
    /// them pile up.
    pub(crate) fn ping(&mut self) {
        self.ping = true;
    }

    /// Carries out `SendPing` or `SendClose` for the current link.
    pub(crate) fn protocol_frame(&mut self, action: Action) {
        match action {
            Action::SendPing { .. } => self.ping(),
            Action::SendClose { code, reason, .. } => self.close(code, reason),
            _ => {}
        }
    }

    /// The close frame: written after the send buffer has drained.
    pub(crate) fn close(&mut self, code: u16, reason: String) {
        self.close = Some(Box::new(CloseFrame {
            code: code.into(),
            reason: reason.into(),
        }));
    }

    /// tungstenite queued a frame of its own (a pong, a close reply).
    pub(crate) fn needs_flush(&mut self) {
        self.flush = true;
    }

    /// A pong was read: the round trip if it answers our latest ping.
    pub(crate) fn pong(&mut self, pong: Pong) -> Option<Duration> {
        self.pings.pong(pong)
    }

    fn clear_protocol(&mut self) {
        self.pings.reset();
        self.hello = None;
        self.after_ack.clear();
        self.ping = false;
        self.close = None;
        self.flush = false;
    }

    // ── writing ────────────────────────────────────────────────────────

    fn next(&self) -> Option<Next> {
        if self.hello.is_some() {
            Some(Next::Hello)
        } else if self.ping {
            Some(Next::Ping)
        } else if !self.after_ack.is_empty() {
            Some(Next::AfterAck)
        } else if !self.buffer.is_empty() {
            Some(Next::Message)
        } else if self.close.is_some() {
            Some(Next::Close)
        } else {
            None
        }
    }

    /// Writes protocol frames (hello, ping, after-ack frames), then accepted
    /// messages, then the close frame,
    /// and flushes; never blocks. Returns whether a frame was handed over.
    pub(crate) fn poll_write(
        &mut self,
        wire: &mut impl Wire,
        cx: &mut Context<'_>,
    ) -> Result<bool, WireError> {
        let result = self.write_some(wire, cx);
        self.settle(wire);
        result
    }

    fn write_some(
        &mut self,
        wire: &mut impl Wire,
        cx: &mut Context<'_>,
    ) -> Result<bool, WireError> {
        let mut progress = false;
        for _ in 0..BATCH {
            let Some(next) = self.next() else { break };
            match wire.poll_ready(cx) {
                Poll::Pending => break,
                Poll::Ready(result) => result?,
            }
            let frame = match next {
                Next::Hello => {
                    debug_assert!(self.in_flight.is_empty(), "a message ahead of the hello");
                    self.protocol_in_flight += 1;
                    Message::Text(String::from(self.hello.take().unwrap_or_default()).into())
                }
                Next::AfterAck => {
                    debug_assert!(
                        self.in_flight.is_empty(),
                        "a message ahead of an after-ack frame"
                    );
                    self.protocol_in_flight += 1;
                    Message::Text(self.after_ack.pop().unwrap_or_default().into())
                }
                Next::Ping => {
                    self.ping = false;
                    Message::Ping(self.pings.payload())
                }
                Next::Message => {
                    let text = Utf8Bytes::from(self.buffer.pop_front().unwrap_or_default());
                    self.in_flight.push_back(text.clone());
                    Message::Text(text)
                }
                Next::Close => Message::Close(self.close.take().map(|f| *f)),
            };
            wire.start_send(frame)?;
            self.flush = true;
            progress = true;
        }
        if self.flush {
            match wire.poll_flush(cx) {
                Poll::Ready(Ok(())) => self.flush = false,
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => {}
            }
        }
        Ok(progress)
    }

    /// Before the link is dropped: one non-blocking chance for a pending
    /// close frame and whatever tungstenite still holds. No wait: a
    /// half-dead peer must not delay the drop.
    pub(crate) fn write_before_drop(&mut self, wire: &mut impl Wire, cx: &mut Context<'_>) {
        if let Some(frame) = self.close.take() {
            if let Poll::Ready(Ok(())) = wire.poll_ready(cx) {
                let _ = wire.start_send(Message::Close(Some(*frame)));
            }
        }
        let _ = wire.poll_flush(cx);
        self.settle(wire);
    }

    /// Moves the frames the transport fully took out of `in_flight`, and
    /// starts the latest ping's round trip once its last byte went out.
    pub(crate) fn settle(&mut self, wire: &mut impl Wire) {
        let completed = wire.take_completed();
        if completed.pings > 0 {
            self.pings.written(completed.pings, Instant::now());
        }
        self.frames_written = self
            .frames_written
            .saturating_add(u64::from(completed.text));
        for _ in 0..completed.text {
            if self.protocol_in_flight > 0 {
                self.protocol_in_flight -= 1;
            } else if self.in_flight.pop_front().is_some() {
                self.written += 1;
                self.room_freed = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::queue::Overflow;

    /// A socket that takes `budget` frames whole, then stalls (a frame it
    /// accepted but has not completed sits in `buffered`), or fails.
    #[derive(Default)]
    struct FakeWire {
        /// Frames the transport will still take whole.
        budget: usize,
        /// Frames tungstenite holds (accepted by start_send, not on the wire).
        buffered: VecDeque<Message>,
        on_wire: Vec<Message>,
        completed: Completed,
        broken: bool,
        /// The transport breaks while tungstenite writes the next frame.
        fail_send: bool,
    }

    impl FakeWire {
        fn taking(budget: usize) -> Self {
            FakeWire {
                budget,
                ..FakeWire::default()
            }
        }

        fn drain(&mut self) {
            while self.budget > 0 {
                let Some(frame) = self.buffered.pop_front() else {
                    return;
                };
                self.budget -= 1;
                match frame {
                    Message::Text(_) => self.completed.text += 1,
                    Message::Ping(_) => self.completed.pings += 1,
                    _ => {}
                }
                self.on_wire.push(frame);
            }
        }

        fn texts(&self) -> Vec<String> {
            self.on_wire
                .iter()
                .filter_map(|m| match m {
                    Message::Text(t) => Some(t.as_str().to_owned()),
                    _ => None,
                })
                .collect()
        }
    }

    impl Wire for FakeWire {
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), WireError>> {
            if self.broken {
                return Poll::Ready(Err(WireError));
            }
            Poll::Ready(Ok(()))
        }

        fn start_send(&mut self, message: Message) -> Result<(), WireError> {
            // tungstenite buffers the frame, then tries to write it.
            self.buffered.push_back(message);
            if self.fail_send {
                self.broken = true;
                return Err(WireError);
            }
            self.drain();
            Ok(())
        }

        fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), WireError>> {
            if self.broken {
                return Poll::Ready(Err(WireError));
            }
            self.drain();
            if self.buffered.is_empty() {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        }

        fn take_completed(&mut self) -> Completed {
            std::mem::take(&mut self.completed)
        }
    }

    fn cx() -> Context<'static> {
        Context::from_waker(std::task::Waker::noop())
    }

    fn open(capacity: usize, queue: Option<OutboundQueue<String>>) -> Outbound {
        let mut out = Outbound::new(capacity, queue);
        out.opened();
        out.acked(Vec::new());
        out
    }

    fn send_all(out: &mut Outbound, texts: &[&str]) {
        for t in texts {
            assert_eq!(
                out.send((*t).to_owned(), Status::Open).unwrap(),
                Sent::Accepted
            );
        }
    }

    #[test]
    fn a_message_is_written_only_once_the_transport_took_its_frame() {
        let mut out = open(8, None);
        send_all(&mut out, &["a", "b", "c"]);
        let mut wire = FakeWire::taking(1);
        assert_eq!(out.poll_write(&mut wire, &mut cx()), Ok(true));
        // All three handed to tungstenite; only "a" reached the transport.
        assert_eq!(out.written(), 1);
        assert_eq!(wire.texts(), ["a"]);
        // The link dies: b and c come back, in order, never a.
        assert_eq!(out.lost(true), Some(vec!["b".to_owned(), "c".to_owned()]));
        assert_eq!(out.written() + 2, 3);
    }

    #[test]
    fn a_send_that_fails_mid_write_is_handed_back_not_dropped() {
        let mut out = open(8, None);
        send_all(&mut out, &["a", "b"]);
        // The socket breaks while "a" is being written (ECONNRESET, EPIPE).
        let mut wire = FakeWire::taking(0);
        wire.fail_send = true;
        assert_eq!(out.poll_write(&mut wire, &mut cx()), Err(WireError));
        assert_eq!(out.written(), 0);
        assert_eq!(out.lost(true), Some(vec!["a".to_owned(), "b".to_owned()]));
    }

    #[test]
    fn frames_completed_by_the_last_chance_flush_count_as_written() {
        let mut out = open(8, None);
        send_all(&mut out, &["a", "b"]);
        let mut wire = FakeWire::taking(0);
        out.poll_write(&mut wire, &mut cx()).unwrap();
        assert_eq!(out.written(), 0);
        out.close(1002, "protocol error".into());
        wire.budget = 1;
        out.write_before_drop(&mut wire, &mut cx());
        assert_eq!(out.written(), 1, "a completed during the last flush");
        assert_eq!(out.lost(true), Some(vec!["b".to_owned()]));
    }

    #[test]
    fn hello_and_ping_go_first_and_the_close_frame_last() {
        let mut out = Outbound::new(8, None);
        out.opened();
        out.hello("hi".into());
        out.acked(Vec::new());
        send_all(&mut out, &["a"]);
        out.ping();
        out.close(1000, String::new());
        let mut wire = FakeWire::taking(10);
        out.poll_write(&mut wire, &mut cx()).unwrap();
        let kinds: Vec<&str> = wire
            .on_wire
            .iter()
            .map(|m| match m {
                Message::Text(t) if t.as_str() == "hi" => "hello",
                Message::Text(_) => "message",
                Message::Ping(_) => "ping",
                Message::Close(_) => "close",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["hello", "ping", "message", "close"]);
        assert_eq!(out.written(), 1, "the hello is not a caller's message");
    }

    #[test]
    fn everything_held_back_is_capped_at_the_send_capacity() {
        let mut out = open(2, None);
        send_all(&mut out, &["a", "b"]);
        let full = out.send("c".into(), Status::Open).unwrap_err();
        assert_eq!(full.kind, SendErrorKind::Full);
        assert_eq!(full.message.as_deref(), Some("c"));
        // Lost, and handed back in an event the consumer has not taken.
        let back = out.lost(true).unwrap();
        out.opened();
        out.acked(Vec::new());
        let err = out.send("d".into(), Status::Open).unwrap_err();
        assert_eq!(err.kind, SendErrorKind::Full, "held-back messages count");
        out.unsent_taken(back.len());
        assert!(out.take_room_freed());
        assert_eq!(out.send("d".into(), Status::Open).unwrap(), Sent::Accepted);
    }

    #[test]
    fn without_a_reader_handed_back_messages_wait_for_close() {
        let mut out = open(8, None);
        send_all(&mut out, &["a"]);
        assert_eq!(out.lost(false), None);
        assert_eq!(out.finished(false), ["a"]);
    }

    #[test]
    fn lost_messages_go_back_to_the_front_of_the_queue() {
        let mut out = open(8, Some(OutboundQueue::new(4, Overflow::RejectNew)));
        send_all(&mut out, &["a", "b"]);
        assert_eq!(out.lost(true), None);
        assert_eq!(
            out.send("c".into(), Status::Reconnecting).unwrap(),
            Sent::Queued
        );
        out.opened();
        out.acked(Vec::new());
        let mut wire = FakeWire::taking(10);
        out.poll_write(&mut wire, &mut cx()).unwrap();
        assert_eq!(wire.texts(), ["a", "b", "c"]);
        assert_eq!(out.written(), 3);
    }

    #[test]
    fn after_a_close_request_sends_are_refused_and_what_was_accepted_comes_back_oldest_first() {
        let mut out = open(8, Some(OutboundQueue::new(4, Overflow::RejectNew)));
        send_all(&mut out, &["a", "b", "c"]);
        let mut wire = FakeWire::taking(1);
        out.poll_write(&mut wire, &mut cx()).unwrap();
        out.close_requested();
        let err = out.send("late".into(), Status::Open).unwrap_err();
        assert_eq!(err.kind, SendErrorKind::NotOpen(Status::Closing));
        assert_eq!(out.lost(true), None, "closing: kept for close()");
        assert_eq!(out.finished(true), Vec::<String>::new());
        assert_eq!(out.take_returned(), ["b", "c"]);
        assert_eq!(out.written(), 1);
    }

    #[test]
    fn a_hello_built_after_the_close_frame_is_never_written_after_it() {
        // AwaitingAck; close() requested before the slow hello builder returns.
        let mut out = Outbound::new(8, None);
        out.opened();
        out.close_requested();
        out.close(1000, String::new());
        let mut wire = FakeWire::taking(10);
        out.poll_write(&mut wire, &mut cx()).unwrap();
        out.hello("hi".into());
        out.poll_write(&mut wire, &mut cx()).unwrap();
        assert!(
            matches!(wire.on_wire.as_slice(), [Message::Close(_)]),
            "{:?}",
            wire.on_wire
        );
    }

    #[test]
    fn queued_messages_come_back_at_the_end_after_older_ones() {
        let mut out = Outbound::new(8, Some(OutboundQueue::new(4, Overflow::RejectNew)));
        out.send("q1".into(), Status::Connecting).unwrap();
        out.opened();
        out.acked(Vec::new());
        send_all(&mut out, &["o1"]);
        assert_eq!(out.finished(false), ["q1", "o1"]);
        let err = out.send("x".into(), Status::Closed).unwrap_err();
        assert_eq!(err.kind, SendErrorKind::Ended);
    }

    fn strings(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn after_ack_frames_go_first_before_queued_and_new_sends() {
        let mut out = Outbound::new(8, Some(OutboundQueue::new(4, Overflow::RejectNew)));
        out.send("q1".into(), Status::AwaitingAck).unwrap();
        out.opened();
        out.hello("hi".into());
        out.acked(strings(&["sub1", "sub2"]));
        send_all(&mut out, &["new"]);
        let mut wire = FakeWire::taking(10);
        out.poll_write(&mut wire, &mut cx()).unwrap();
        assert_eq!(wire.texts(), ["hi", "sub1", "sub2", "q1", "new"]);
        assert_eq!(out.written(), 2, "only the caller's messages count");
    }

    #[test]
    fn after_ack_frames_are_never_handed_back() {
        let mut out = Outbound::new(8, Some(OutboundQueue::new(4, Overflow::RejectNew)));
        out.send("q1".into(), Status::Reconnecting).unwrap();
        out.opened();
        out.acked(strings(&["sub1", "sub2", "sub3"]));
        // sub1 reaches the transport; sub2, sub3 and q1 are in flight.
        let mut wire = FakeWire::taking(1);
        out.poll_write(&mut wire, &mut cx()).unwrap();
        assert_eq!(wire.texts(), ["sub1"]);
        assert_eq!(out.written(), 0);
        // The link goes: only the caller's message goes back to the queue.
        assert_eq!(out.lost(true), None);
        assert_eq!(out.queued(), 1);
        out.opened();
        out.acked(Vec::new());
        let mut next = FakeWire::taking(10);
        out.poll_write(&mut next, &mut cx()).unwrap();
        assert_eq!(next.texts(), ["q1"]);
        assert_eq!(out.written(), 1);
        // Without a queue, an Unsent event carries only the caller's messages.
        let mut plain = Outbound::new(8, None);
        plain.opened();
        plain.acked(strings(&["sub1"]));
        send_all(&mut plain, &["a"]);
        let mut stalled = FakeWire::taking(0);
        plain.poll_write(&mut stalled, &mut cx()).unwrap();
        assert_eq!(plain.lost(true), Some(strings(&["a"])));
        assert_eq!(plain.finished(false), Vec::<String>::new());
    }

    #[test]
    fn after_ack_frames_belong_to_their_connection() {
        let mut out = Outbound::new(8, None);
        out.opened();
        out.acked(strings(&["sub-for-1"]));
        assert_eq!(out.lost(true), None, "never written, never handed back");
        out.opened();
        out.acked(strings(&["sub-for-2"]));
        let mut wire = FakeWire::taking(10);
        out.poll_write(&mut wire, &mut cx()).unwrap();
        assert_eq!(wire.texts(), ["sub-for-2"]);
        assert_eq!(out.written(), 0);
    }

    #[test]
    fn after_ack_frames_do_not_count_against_the_send_capacity() {
        let mut out = Outbound::new(1, None);
        out.opened();
        out.acked(strings(&["sub1", "sub2", "sub3"]));
        assert_eq!(out.send("a".into(), Status::Open).unwrap(), Sent::Accepted);
        let full = out.send("b".into(), Status::Open).unwrap_err();
        assert_eq!(full.kind, SendErrorKind::Full, "the cap counts only `a`");
        let mut wire = FakeWire::taking(10);
        out.poll_write(&mut wire, &mut cx()).unwrap();
        assert_eq!(wire.texts(), ["sub1", "sub2", "sub3", "a"]);
        assert_eq!(out.written(), 1);
    }

    #[test]
    fn no_after_ack_frames_once_a_close_was_requested() {
        let mut out = Outbound::new(8, None);
        out.opened();
        out.close_requested();
        out.close(1000, String::new());
        out.acked(strings(&["sub1"]));
        let mut wire = FakeWire::taking(10);
        out.poll_write(&mut wire, &mut cx()).unwrap();
        assert!(
            matches!(wire.on_wire.as_slice(), [Message::Close(_)]),
            "{:?}",
            wire.on_wire
        );
    }
}
