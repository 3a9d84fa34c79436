//! Exact accounting, proven without sockets (DESIGN 12 and "Invariants"),
//! on the session machine itself: the real [`SessionCore`] (the lifecycle
//! machine, the outbound ledger, the consumer's event buffer with its
//! read pause, the ack hand-off) driven exactly as the driver drives it
//! (`src/driver/session.rs` `drain_locked`, `report.rs`, `outbound.rs`,
//! `events.rs`, `client.rs`), over a model of the layer below that takes
//! whole frames when told to. What is left here of the driver is only what
//! a socket needs: the current link, its frames, its hello.
//!
//! | the driver | here |
//! |---|---|
//! | `Client::send_text`: `core.send` | [`Input::Send`] |
//! | `request_close`: `core.close`, the session drains | [`Input::Close`] |
//! | `Client::reconnect_now`: `core.reconnect_now`, the session drains | [`Input::ReconnectNow`] |
//! | `Shared::link_opened`: `opened`, the `Upgraded` report `deliver`ed, then `SocketOpened` | [`Input::Opened`] |
//! | `poll_hello` (only in AwaitingAck, or a close raced it): `hello` | [`Input::HelloBuilt`] |
//! | a read (only with room in the consumer's buffer): `Activity`, then the ack as one input, `acked(attempt, ack, after-ack frames)` | [`Input::Ack`] |
//! | a read: `Activity`, then the peer's close frame | [`Input::PeerClose`], [`Input::Reject`] |
//! | a read: `Activity`, then a data frame `deliver`ed (the buffer may fill: the core pauses reading) | [`Input::Read`] |
//! | a write pass (`has_frame`/`poll_frame`, `ping_tag`), then `traffic(text, pings)` for what the transport took | [`Input::Write`] |
//! | a write or read error: `TransportLost` | [`Input::Lost`] |
//! | `Events::poll_next`: `consumer_takes`, then `consumer_holds` by its rule | [`Input::TakeEvent`] |
//! | the consumer reads everything: `Events::poll_next` until nothing is left | [`Input::ReadAll`] |
//! | `Events::drop`: `consumer_dropped(hand)` | [`Input::DropEvents`] |
//! | the alarm: `Timeout` at `poll_timeout` | [`Input::Timeout`] |
//! | `drain_locked`: `poll_action` until `None`; `Connect` → a link; `SendHello` → the hello builder; `DropTransport` → `take_close` (the last chance), then `link_dropped` | [`World::drain`] |
//! | the machine Closed (or the session future dropped): `Session::release` → `ended` | [`World::end`] |
//! | `close()` resolving: `take_returned` | the end of every path |
//!
//! The invariant, checked after every input and at the end of every path
//! (every point reached is ended four ways: the caller's close with the
//! buffer written; the caller's close with nothing more written; the same
//! with the event stream dropped before `close()` resolves; the session
//! future dropped): every message `send` accepted is **written** once (its
//! frame taken by the layer below) or **handed back** (evicted from the
//! queue, in an `Unsent` event, in the `Closed` outcome, or by `close()`)
//! — never both, never neither; written in the order accepted; every
//! hand-back oldest first (and the event stream's in order across events);
//! nothing given to the layer below after a close frame; and while the
//! session lives, every message neither written nor handed back is held
//! exactly once (send buffer, in flight, queue, kept for `close()`, or in
//! an `Unsent` event the consumer has not taken, in the core's buffer or
//! in the stream's hand), every other one nowhere.
//!
//! Two drivers of one model:
//!
//! - a breadth-first exploration over [`INPUTS`] (its consumer reads
//!   everything at once: see [`explored`]) that runs until a level adds no
//!   new point (complete, for its merging): points are merged by the
//!   machine's status, read pause and next timer, by the exact outbound
//!   contents, the link's frames and the hand-backs waiting for the
//!   consumer, messages renumbered by rank, and by how full the consumer's
//!   buffer is (see [`World::key`]);
//! - a proptest property over random interleavings of the same inputs, on
//!   random send capacities, queues, after-ack frames, attempt budgets and
//!   event capacities. Shrunk failures go to
//!   `proptest-regressions/fsm_accounting.txt`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::{self, Write as _};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence, TestRunner};
use ws_lifecycle::fsm::explore::{TERMINAL_CODE, exploration_config};
use ws_lifecycle::fsm::outbound::{Frame, Ledger, Overflow, Payload, Sent};
use ws_lifecycle::fsm::session::{Notice, SessionCore, Traffic, Watch};
use ws_lifecycle::fsm::{Action, Event};
use ws_lifecycle::{Cause, CloseReason, Config, Status};

/// An attempt number, as the machine counts them.
type Attempt = u64;

// ── the model ──────────────────────────────────────────────────────────

/// What the world may do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// The caller sends the next numbered message (`m0`, `m1`, …).
    Send,
    /// The caller's `close()` (code 1000).
    Close,
    /// The caller's `reconnect_now()`.
    ReconnectNow,
    /// The current link's upgrade completed.
    Opened,
    /// The hello builder returned (its text reaches the ledger only in
    /// AwaitingAck, or in Closing: a close raced it).
    HelloBuilt,
    /// The ack arrived (read, so only while the consumer's buffer has room).
    Ack,
    /// A write pass, then the transport takes that many frames.
    Write(Take),
    /// The transport broke (a write or read error).
    Lost,
    /// The peer's close frame, code 1000 (retried; in Closing, the reply).
    PeerClose,
    /// The peer's close frame with the terminal code: the session ends by
    /// itself (`Closed { Rejected }`).
    Reject,
    /// A data frame read for the consumer: its buffer may fill, and the
    /// core then pauses reading.
    Read,
    /// The consumer's stream hands out its next event.
    TakeEvent,
    /// The consumer reads everything: the stream hands out events until
    /// it has none.
    ReadAll,
    /// The consumer drops the event stream.
    DropEvents,
    /// Time passes to the machine's next deadline, which fires.
    Timeout,
}

/// How many frames the transport takes after a write pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Take {
    None,
    One,
    All,
}

/// Every input, with how often a random run draws it among those that can
/// happen: weighted towards progress (open, ack, send, write, the consumer
/// reading), so runs go through several connections before the session
/// ends.
const INPUTS: [(Input, u32); 17] = [
    (Input::Send, 20),
    (Input::Close, 1),
    (Input::ReconnectNow, 2),
    (Input::Opened, 12),
    (Input::HelloBuilt, 8),
    (Input::Ack, 24),
    (Input::Write(Take::None), 6),
    (Input::Write(Take::One), 6),
    (Input::Write(Take::All), 6),
    (Input::Lost, 4),
    (Input::PeerClose, 2),
    (Input::Reject, 1),
    (Input::Read, 3),
    (Input::TakeEvent, 8),
    (Input::ReadAll, 3),
    (Input::DropEvents, 1),
    (Input::Timeout, 4),
];

/// A session's outbound settings.
#[derive(Debug, Clone, Copy)]
struct Setup {
    /// The send capacity (`DeliveryConfig::send_capacity`).
    capacity: usize,
    /// The opt-in queue.
    queue: Option<(usize, Overflow)>,
    /// After-ack frames each ack brings (the caller's after-ack builder).
    after_ack: usize,
    /// The attempt budget (`GaveUp` ends the session by itself).
    max_attempts: Option<u32>,
    /// The consumer's buffer (`DeliveryConfig::event_capacity`).
    events: usize,
}

/// The machine's configuration: the exploration's (4001 is a terminal
/// close), with one backoff step and no time budget, so the abstract state
/// space stays small.
fn config(setup: &Setup) -> Config {
    Config {
        backoff: vec![Duration::from_secs(1)],
        max_attempts: setup.max_attempts,
        max_unstable: None,
        ..exploration_config()
    }
}

/// Watches nothing (the driver's flight recorder is off).
#[derive(Clone)]
struct Unwatched;

impl Watch for Unwatched {
    fn started(&mut self, _: &Config, _: Instant) {}
    fn input(&mut self, _: &Event, _: Instant) {}
    fn action(&mut self, _: &Action) {}
}

/// A message as the ledger holds it. The driver's payload is tungstenite's
/// `Utf8Bytes`, cloned by reference; so is this one (cheap to clone as the
/// exploration branches), shown as its text.
#[derive(Clone)]
struct Text(Rc<str>);

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Payload for Text {
    fn from_text(text: String) -> Self {
        Text(text.into())
    }

    fn into_text(self) -> String {
        self.0.to_string()
    }
}

/// The session core as the tests drive it: the driver's own reports are
/// `()`.
type Core = SessionCore<Text, (), Unwatched>;

/// The layer below one opened link (tungstenite's buffer, the kernel's):
/// frames given to it wait until the transport takes them, whole, in order.
#[derive(Debug, Clone, Default)]
struct Below {
    frames: VecDeque<Frame<Text>>,
    /// A close frame was given: nothing may follow it.
    closed: bool,
}

impl Below {
    fn give(&mut self, frame: Frame<Text>) -> Result<(), String> {
        if self.closed {
            return Err(format!("{frame:?} given after the close frame"));
        }
        self.closed = matches!(frame, Frame::Close { .. });
        self.frames.push_back(frame);
        Ok(())
    }
}

/// The driver's current link (created on `Connect`, gone on its
/// `DropTransport`).
#[derive(Debug, Clone)]
struct Link {
    attempt: Attempt,
    /// `Some` once the upgrade completed.
    below: Option<Below>,
    /// The hello builder is running (`SendHello` came).
    hello: bool,
}

type Id = u32;

/// The session core and what the driver keeps beside it (the link, the
/// event stream's hand), with the books: which accepted messages are
/// still pending.
#[derive(Clone)]
struct World {
    core: Core,
    setup: Setup,
    now: Instant,
    link: Option<Link>,
    /// `Events::hand`: taken from the core's buffer, not handed out yet.
    hand: VecDeque<Notice<()>>,
    /// `Events::told`: the hand's length as last told to the core.
    told: usize,
    events_alive: bool,
    /// The id the next accepted message gets.
    next: Id,
    /// Accepted, neither written nor handed back yet.
    pending: BTreeSet<Id>,
    last_written: Option<Id>,
    /// The last message handed back through the event stream.
    last_event_back: Option<Id>,
    written: u64,
    /// The causes of the status changes so far, one bit each.
    causes: u32,
    /// A lost link's messages went back into the queue.
    requeued: bool,
    /// An `Unsent` event reached the consumer's buffer.
    unsent: bool,
}

fn id(text: &str) -> Result<Id, String> {
    text.strip_prefix('m')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("not a caller's message: {text:?}"))
}

impl World {
    fn new(setup: Setup) -> World {
        let now = Instant::now();
        let config = config(&setup);
        let seed = config.seed;
        let ledger = Ledger::new(setup.capacity, setup.queue);
        let core = Core::new(Arc::new(config), seed, ledger, setup.events, None, now);
        let mut world = World {
            core,
            setup,
            now,
            link: None,
            hand: VecDeque::new(),
            told: 0,
            events_alive: true,
            next: 0,
            pending: BTreeSet::new(),
            last_written: None,
            last_event_back: None,
            written: 0,
            causes: 0,
            requeued: false,
            unsent: false,
        };
        // The session's first poll: the machine starts, its `Connect`.
        assert_eq!(world.core.start(now), Ok(true), "a valid config");
        world.drain().expect("the start");
        world
    }

    /// What `Client::status` reports.
    fn status(&self) -> Status {
        self.core.status()
    }

    fn ended(&self) -> bool {
        self.core.is_finished()
    }

    fn opened_link(&self) -> Option<Attempt> {
        self.link
            .as_ref()
            .filter(|l| l.below.is_some())
            .map(|l| l.attempt)
    }

    /// `Events`' resume rule: half the capacity (at least one).
    fn resume_after(&self) -> usize {
        (self.setup.events / 2).max(1)
    }

    // ── the books ──────────────────────────────────────────────────────

    fn settle(&mut self, id: Id, how: &str) -> Result<(), String> {
        if self.pending.remove(&id) {
            return Ok(());
        }
        if id < self.next {
            Err(format!(
                "m{id} {how}, but it was already written or handed back"
            ))
        } else {
            Err(format!("m{id} {how}, but it was never accepted"))
        }
    }

    fn wrote(&mut self, id: Id) -> Result<(), String> {
        self.settle(id, "written")?;
        if let Some(last) = self.last_written.filter(|&last| last >= id) {
            return Err(format!(
                "m{id} written after m{last}: not in the order accepted"
            ));
        }
        self.last_written = Some(id);
        self.written += 1;
        Ok(())
    }

    fn handed_back(&mut self, batch: &[String], how: &str) -> Result<(), String> {
        let mut last = None;
        for text in batch {
            let id = id(text)?;
            if last.is_some_and(|last| last >= id) {
                return Err(format!("{how} hands back {batch:?}: not oldest first"));
            }
            last = Some(id);
            if !self.pending.remove(&id) {
                return self.settle(id, &format!("handed back ({how})"));
            }
        }
        Ok(())
    }

    // ── inputs ─────────────────────────────────────────────────────────

    /// Whether `input` can happen now (as the driver sees it); when not,
    /// [`step`](Self::step) does nothing.
    fn applies(&self, input: Input) -> bool {
        let opened = || self.opened_link().is_some();
        // The session reads only while the consumer's buffer has room.
        let reading = || opened() && self.core.events_room() > 0;
        match input {
            // Once a close was asked for, sends are refused and a second
            // close changes nothing.
            Input::Send | Input::Close => !self.core.ledger().is_closing(),
            Input::ReconnectNow => !matches!(self.status(), Status::Closing | Status::Closed),
            Input::Opened => self.link.as_ref().is_some_and(|l| l.below.is_none()),
            Input::HelloBuilt => self.link.as_ref().is_some_and(|l| l.hello),
            Input::Ack => reading() && self.status() == Status::AwaitingAck,
            Input::PeerClose | Input::Reject | Input::Read => reading(),
            Input::Write(_) | Input::Lost => opened(),
            Input::TakeEvent | Input::ReadAll => {
                self.events_alive
                    && (!self.hand.is_empty() || {
                        let (mut buffered, lagged) = self.core.buffered();
                        buffered.next().is_some() || lagged > 0
                    })
            }
            Input::DropEvents => self.events_alive,
            Input::Timeout => !self.ended() && self.core.poll_timeout().is_some(),
        }
    }

    fn step(&mut self, input: Input) -> Result<(), String> {
        if !self.applies(input) {
            return Ok(());
        }
        if input != Input::Timeout {
            // Caller and socket events happen a moment later.
            self.now += Duration::from_millis(1);
        }
        let now = self.now;
        match input {
            Input::Send => self.send()?,
            Input::Close => {
                // `request_close`: the ledger refuses sends from now on, and
                // the machine hears it in the same critical section.
                self.core.close(1000, String::new(), now);
                self.drain()?;
            }
            Input::ReconnectNow => {
                self.core.reconnect_now(now);
                self.drain()?;
            }
            Input::Opened => {
                // `Shared::link_opened`, then the machine hears it.
                let link = self.link.as_mut().expect("applies");
                link.below = Some(Below::default());
                let attempt = link.attempt;
                self.core.opened(now);
                self.core.deliver(Notice::Report(()), now);
                self.feed(Event::SocketOpened { attempt })?;
            }
            Input::HelloBuilt => {
                let status = self.status();
                self.link.as_mut().expect("applies").hello = false;
                if matches!(status, Status::AwaitingAck | Status::Closing) {
                    self.core.hello("hello".into());
                }
            }
            Input::Ack => {
                let attempt = self.read()?;
                let frames = (0..self.setup.after_ack).map(|n| format!("sub{n}"));
                let ack = serde_json::Value::String("ack".into());
                self.core.acked(attempt, ack, frames.collect(), now);
                self.drain()?;
            }
            Input::Write(take) => self.write(take)?,
            Input::Lost => {
                let attempt = self.opened_link().expect("applies");
                self.feed(Event::TransportLost { attempt })?;
            }
            Input::PeerClose | Input::Reject => {
                let attempt = self.read()?;
                let (code, reason) = match input {
                    Input::PeerClose => (1000, "bye"),
                    _ => (TERMINAL_CODE, "banned"),
                };
                self.feed(Event::PeerClosed {
                    attempt,
                    code,
                    reason: reason.into(),
                })?;
            }
            Input::Read => {
                self.read()?;
                if !self.ended() {
                    // `Shared::received`.
                    self.core.deliver(Notice::Text("in".into()), now);
                }
            }
            Input::TakeEvent => self.take_event()?,
            Input::ReadAll => {
                while self.applies(Input::TakeEvent) {
                    self.take_event()?;
                }
            }
            Input::DropEvents => {
                // `Events::drop`.
                self.events_alive = false;
                let hand = std::mem::take(&mut self.hand);
                self.told = 0;
                self.core.consumer_dropped(hand, now);
            }
            Input::Timeout => {
                let at = self.core.poll_timeout().expect("applies");
                self.now = self.now.max(at);
                self.feed(Event::Timeout)?;
            }
        }
        Ok(())
    }

    /// `Client::send_text`.
    fn send(&mut self) -> Result<(), String> {
        let text = format!("m{}", self.next);
        match self.core.send(text.clone()) {
            Ok(sent) => {
                self.pending.insert(self.next);
                self.next += 1;
                if let Sent::QueuedEvicting(old) = sent {
                    self.handed_back(&[old], "evicted from the queue")?;
                }
                Ok(())
            }
            Err(e) if e.message.as_deref() == Some(text.as_str()) => Ok(()),
            Err(e) => Err(format!("a refusal did not hand {text} back: {e:?}")),
        }
    }

    /// A read pass brought bytes: `Activity` for the opened link; its
    /// attempt.
    fn read(&mut self) -> Result<Attempt, String> {
        let attempt = self.opened_link().expect("applies");
        self.feed(Event::Activity { attempt })?;
        Ok(attempt)
    }

    /// `Events::poll_next`: the next event from the hand, or everything
    /// buffered taken into the hand first; the core told how many are
    /// still in hand by the stream's rule.
    fn take_event(&mut self) -> Result<(), String> {
        let event = match self.hand.pop_front() {
            Some(event) => {
                let unsent = matches!(event, Notice::Unsent(_));
                let resume = self.told - self.hand.len() >= self.resume_after()
                    && self.core.events_room() == 0;
                let spent = self.hand.is_empty() && self.told > 0;
                if unsent || resume || spent {
                    self.tell(Some(&event));
                }
                event
            }
            None => {
                self.core.consumer_takes(&mut self.hand);
                let event = self.hand.pop_front();
                self.tell(event.as_ref());
                match event {
                    Some(event) => event,
                    None => return Ok(()),
                }
            }
        };
        let batch = match event {
            Notice::Unsent(batch) | Notice::Closed { unsent: batch, .. } => batch,
            _ => return Ok(()),
        };
        self.handed_back(&batch, "the event stream")?;
        if let Some(first) = batch.first() {
            let first = id(first)?;
            if let Some(last) = self.last_event_back.filter(|&last| last >= first) {
                return Err(format!(
                    "the event stream hands back m{first} after m{last}: not oldest first"
                ));
            }
        }
        if let Some(last) = batch.last() {
            self.last_event_back = Some(id(last)?);
        }
        Ok(())
    }

    /// `Events::tell`.
    fn tell(&mut self, taken: Option<&Notice<()>>) {
        let unsent = match taken {
            Some(Notice::Unsent(messages)) => messages.len(),
            _ => 0,
        };
        let (in_hand, capacity) = (self.hand.len(), self.hand.capacity());
        self.core
            .consumer_holds(in_hand, capacity, unsent, self.now);
        self.told = in_hand;
    }

    /// A write pass on the opened link (`outbound::write_some`), then the
    /// transport takes frames and the core hears how many text frames and
    /// pings (`outbound::settle`).
    fn write(&mut self, take: Take) -> Result<(), String> {
        let Some(below) = self.link.as_mut().and_then(|l| l.below.as_mut()) else {
            return Ok(());
        };
        loop {
            let has = self.core.has_frame();
            let frame = self.core.poll_frame();
            if has != frame.is_some() {
                return Err(format!("has_frame() {has}, poll_frame() {frame:?}"));
            }
            match frame {
                Some(frame) => {
                    if matches!(frame, Frame::Ping) {
                        self.core.ping_tag();
                    }
                    below.give(frame)?;
                }
                None => break,
            }
        }
        let n = match take {
            Take::None => 0,
            Take::One => 1,
            Take::All => below.frames.len(),
        };
        let (mut text, mut pings) = (0, 0);
        let mut messages = Vec::new();
        for frame in below.frames.drain(..n.min(below.frames.len())) {
            match frame {
                Frame::Hello(_) | Frame::AfterAck(_) => text += 1,
                Frame::Message(m) => {
                    text += 1;
                    messages.push(m);
                }
                Frame::Ping => pings += 1,
                Frame::Close { .. } => {}
            }
        }
        let before = self.core.ledger().written();
        (self.core).traffic(text, pings, &Traffic::default(), self.now);
        let counted = self.core.ledger().written() - before;
        if counted != messages.len() as u64 {
            return Err(format!(
                "the transport took {messages:?} ({text} text frames), the ledger counted {counted} written"
            ));
        }
        for m in &messages {
            self.wrote(id(&m.0)?)?;
        }
        Ok(())
    }

    /// `Session::feed`: the event, then every action carried out.
    fn feed(&mut self, event: Event) -> Result<(), String> {
        if self.ended() {
            return Ok(());
        }
        self.core.handle(event, self.now);
        self.drain()
    }

    /// `Session::drain_locked`: what the core leaves to the driver, carried
    /// out as the driver does; the session ends once the machine is Closed.
    fn drain(&mut self) -> Result<(), String> {
        if self.ended() {
            return Ok(());
        }
        while let Some(action) = self.core.poll_action(self.now) {
            match action {
                Action::Connect { attempt } => {
                    if let Some(old) = &self.link {
                        return Err(format!("Connect {attempt} while {} is live", old.attempt));
                    }
                    self.link = Some(Link {
                        attempt,
                        below: None,
                        hello: false,
                    });
                }
                Action::SendHello { attempt } => match self.link.as_mut() {
                    Some(link) if link.attempt == attempt && link.below.is_some() => {
                        link.hello = true;
                    }
                    link => return Err(format!("SendHello {attempt} for the link {link:?}")),
                },
                Action::DropTransport { attempt } => {
                    let Some(link) = self.link.take_if(|l| l.attempt == attempt) else {
                        return Err(format!("DropTransport {attempt}, the link {:?}", self.link));
                    };
                    // `Shared::link_dropped`: the last chance for a pending
                    // close frame (the transport takes nothing more: taking
                    // before the drop is `Write`'s), then what the link
                    // never wrote goes back.
                    if let Some(mut below) = link.below {
                        if let Some((code, reason)) = self.core.take_close() {
                            below.give(Frame::Close { code, reason })?;
                        }
                    }
                    let queued = self.core.ledger().queued();
                    self.core.link_dropped(self.now);
                    self.requeued |= self.core.ledger().queued() > queued;
                }
                Action::StatusChanged { cause, .. } => self.causes |= 1 << cause as u32,
                Action::Disconnected { .. } | Action::ReconnectScheduled { .. } => {}
                other => return Err(format!("{other:?} left to the driver")),
            }
        }
        if let Some(reason) = self.core.machine_closed() {
            self.end(reason)?;
        }
        Ok(())
    }

    /// `Session::release` (the machine Closed, or the session future
    /// dropped): `ended`, the link gone. What was never written goes into
    /// the `Closed` event, or waits for `close()` when a close was asked
    /// for or nobody reads.
    fn end(&mut self, reason: CloseReason) -> Result<(), String> {
        let for_close = self.core.ledger().is_closing() || !self.events_alive;
        self.core.ended(reason, self.now);
        self.link = None;
        if for_close {
            let (buffered, _) = self.core.buffered();
            if let Some(Notice::Closed { unsent, .. }) = buffered.last() {
                if !unsent.is_empty() {
                    return Err(format!(
                        "a close was asked for, yet Closed carries {unsent:?}"
                    ));
                }
            }
        }
        Ok(())
    }

    // ── the invariant ──────────────────────────────────────────────────

    /// The consumer's events as text, every hand-back (`U` for `Unsent`,
    /// `C` for `Closed`) with its messages. With nothing in the stream's
    /// hand (always so in the exploration, whose consumer reads everything
    /// at once: [`Input::ReadAll`]), the other events in the core's buffer
    /// change nothing there but how full it is, so only that is kept (it is
    /// full from `capacity` on); nor does a `Lagged` report owed (one is
    /// owed only while the buffer is full, and reading everything takes
    /// it). Else every event and its place, in the buffer and in the hand
    /// (`.` for all but a hand-back), how many the stream told the core it
    /// holds, and whether a `Lagged` report is owed.
    fn events_text(&self) -> String {
        let (buffered, lagged) = self.core.buffered();
        let mut text = String::new();
        let mut put = |notice: &Notice<()>, exact: bool| match notice {
            Notice::Unsent(batch) => write!(text, "U{batch:?} "),
            Notice::Closed { unsent, .. } => write!(text, "C{unsent:?} "),
            _ if exact => write!(text, ". "),
            _ => Ok(()),
        };
        let exact = !self.hand.is_empty() || self.told > 0;
        let mut filled = 0;
        for notice in buffered {
            put(notice, exact).expect("a String");
            filled += 1;
        }
        for notice in &self.hand {
            put(notice, exact).expect("a String");
        }
        if exact {
            let (hand, told, lagged) = (self.hand.len(), self.told, lagged > 0);
            write!(text, "| {hand} in hand, told {told}, lagged {lagged}")
        } else {
            let filled = filled.min(self.setup.events);
            write!(text, "| {filled} buffered")
        }
        .expect("a String");
        text
    }

    /// The ledger and the consumer's events as text (see
    /// [`events_text`](Self::events_text)).
    fn texts(&mut self) -> (String, String) {
        let ledger = format!("{:?}", self.core.ledger());
        let events = self.events_text();
        self.unsent |= events.contains('U');
        (ledger, events)
    }

    /// While the session lives: every pending message is held exactly once
    /// (in the ledger or in a hand-back event not taken: `ledger` and
    /// `events`, from [`texts`](Self::texts)), every other one nowhere.
    fn check_held(&self, ledger: &str, events: &str) -> Result<(), String> {
        let mut copies: BTreeMap<Id, usize> = BTreeMap::new();
        for (_, id, _) in messages(ledger).chain(messages(events)) {
            *copies.entry(id).or_default() += 1;
        }
        for &id in &self.pending {
            match copies.remove(&id) {
                Some(1) => {}
                n => {
                    return Err(format!(
                        "m{id} is neither written nor handed back, yet held {} times",
                        n.unwrap_or(0)
                    ));
                }
            }
        }
        if let Some((id, n)) = copies.pop_first() {
            return Err(format!(
                "m{id} is written or handed back, yet still held ({n} copies)"
            ));
        }
        Ok(())
    }

    /// Takes events until the consumer's buffer has room (the session
    /// reads again) or nothing is left to take.
    fn make_room(&mut self) -> Result<(), String> {
        while self.core.events_room() == 0 && self.applies(Input::TakeEvent) {
            self.step(Input::TakeEvent)?;
        }
        Ok(())
    }

    /// The end of a path, once the session ended: the caller's `close()`
    /// takes what was kept for it, the consumer reads what is left; then
    /// nothing may be pending.
    fn finish(mut self) -> Result<(), String> {
        if !self.ended() {
            return Err(format!("the session is still {:?}", self.status()));
        }
        let kept = self.core.take_returned();
        self.handed_back(&kept, "close()")?;
        self.step(Input::ReadAll)?;
        let written = self.core.ledger().written();
        if written != self.written {
            return Err(format!(
                "the ledger counts {written} written, the transport took {}",
                self.written
            ));
        }
        if !self.pending.is_empty() {
            let lost: Vec<String> = self.pending.iter().map(|id| format!("m{id}")).collect();
            return Err(format!("never written nor handed back: {lost:?}"));
        }
        Ok(())
    }

    /// Every ending from this point (see [`Ending`]); the three that begin
    /// with the caller's close share it.
    fn check_endings(&self) -> Result<(), String> {
        let at = |how: Ending| move |e: String| format!("ending {how:?}: {e}");
        let mut dropped = self.clone();
        if !dropped.ended() {
            // `Session::drop`.
            (dropped.end(CloseReason::Requested)).map_err(at(Ending::SessionDropped))?;
        }
        dropped.finish().map_err(at(Ending::SessionDropped))?;
        let mut closing = self.clone();
        closing
            .step(Input::Close)
            .map_err(at(Ending::CloseWritten))?;
        let mut written = closing.clone();
        (|| {
            for _ in 0..4 {
                if written.ended() {
                    break;
                }
                written.step(Input::Write(Take::All))?;
                written.make_room()?;
                written.step(Input::PeerClose)?;
                written.step(Input::Timeout)?;
            }
            written.finish()
        })()
        .map_err(at(Ending::CloseWritten))?;
        for _ in 0..4 {
            if closing.ended() {
                break;
            }
            closing
                .step(Input::Timeout)
                .map_err(at(Ending::CloseUnwritten))?;
        }
        let mut unread = closing.clone();
        closing.finish().map_err(at(Ending::CloseUnwritten))?;
        unread
            .step(Input::DropEvents)
            .map_err(at(Ending::CloseUnread))?;
        unread.finish().map_err(at(Ending::CloseUnread))
    }

    /// The point's identity for the exploration: the machine's status,
    /// read pause and the timer it would fire next (with an attempt budget,
    /// the attempts it counted too: the backoff step and whether the
    /// connection was stable change no decision with one backoff step),
    /// whether the session ended and the stream lives, how many messages
    /// are pending, the exact outbound contents and the consumer's events
    /// (see [`events_text`](Self::events_text)), with messages renumbered
    /// by rank among those still pending (the future depends on their
    /// order, not their numbers). What is held is thus a function of the
    /// key: a point merged with one already checked passes
    /// [`check_held`](Self::check_held) too. The ledger's counters
    /// (`room_freed`, `written`, `frames_written`) are left out: the books
    /// check their changes step by step; so are the core's counters and
    /// clocks (stats only). As in `fsm_exhaustive`, a merged point keeps
    /// the concrete times of the first path that reached it.
    fn key(&self, ledger: &str, events: &str) -> String {
        let machine = self.core.machine().expect("started");
        let lifecycle = machine.lifecycle();
        let next_timer = machine.poll_timeout().and_then(|at| machine.due(at));
        let budget = self
            .setup
            .max_attempts
            .map(|max| lifecycle.attempts_since_stable().min(max + 1));
        // Sorted: a message's rank is its index.
        let mut rank: Vec<Id> = self.pending.iter().copied().collect();
        rank.extend(self.last_written);
        rank.extend(self.last_event_back);
        rank.sort_unstable();
        rank.dedup();
        let at = |id: Option<Id>| id.and_then(|id| rank.binary_search(&id).ok());
        // The ledger's last three fields are its counters.
        let cut = (0..3).try_fold(ledger.len(), |end, _| ledger[..end].rfind(','));
        let ledger = &ledger[..cut.expect("the ledger's fields")];
        assert!(ledger.ends_with("closing: false") || ledger.ends_with("closing: true"));
        let mut key = format!(
            "{:?} {} {:?} {:?} {} {} {} {:?} {:?} ",
            machine.status(),
            machine.read_paused(),
            next_timer,
            budget,
            self.events_alive,
            self.ended(),
            self.pending.len(),
            at(self.last_written),
            at(self.last_event_back),
        );
        relabel(&mut key, ledger, &rank);
        // The link's attempt is always the machine's: left out. Pings in a
        // row are one: they are not text, and the transport takes them as
        // it takes one (which bounds the frames a stalled link holds).
        let mut link = String::new();
        match &self.link {
            None => link.push_str(" no link"),
            Some(Link { below: None, .. }) => link.push_str(" opening"),
            Some(Link {
                below: Some(below),
                hello,
                ..
            }) => {
                write!(link, " hello {hello}, closed {}, [", below.closed).expect("a String");
                let mut ping = false;
                for frame in &below.frames {
                    let last = std::mem::replace(&mut ping, matches!(frame, Frame::Ping));
                    if !(last && ping) {
                        write!(link, "{frame:?}, ").expect("a String");
                    }
                }
                link.push(']');
            }
        }
        relabel(&mut key, &link, &rank);
        relabel(&mut key, events, &rank);
        key
    }
}

/// Every caller's message (`"m<id>"`, quotes included) in `text`, as
/// (where it starts, its id, where it ends).
fn messages(text: &str) -> impl Iterator<Item = (usize, Id, usize)> + '_ {
    let mut from = 0;
    std::iter::from_fn(move || {
        // A `char` pattern: found with `memchr`.
        while let Some(at) = text[from..].find('"').map(|at| from + at) {
            if !text[at + 1..].starts_with('m') {
                from = at + 1;
                continue;
            }
            let digits = text[at + 2..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            let end = at + 2 + digits;
            from = at + 2;
            if digits > 0 && text[end..].starts_with('"') {
                from = end + 1;
                return Some((at, text[at + 2..end].parse().expect("digits"), end + 1));
            }
        }
        None
    })
}

/// Appends `text` to `out` with every `"m<id>"` renumbered by its place
/// in `rank` (sorted).
fn relabel(out: &mut String, text: &str, rank: &[Id]) {
    let mut copied = 0;
    for (at, id, end) in messages(text) {
        out.push_str(&text[copied..at]);
        match rank.binary_search(&id) {
            Ok(r @ 0..10) => {
                out.push_str("\"m#");
                out.push(char::from(b'0' + r as u8));
                out.push('"');
            }
            Ok(r) => write!(out, "\"m#{r}\"").expect("a String"),
            Err(_) => write!(out, "\"m?{id}\"").expect("a String"),
        }
        copied = end;
    }
    out.push_str(&text[copied..]);
}

/// How a path ends.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// The caller closes; the transport takes everything written; the peer
    /// answers (or the grace runs out while reading is paused).
    CloseWritten,
    /// The caller closes; nothing more is written; the grace runs out.
    CloseUnwritten,
    /// As `CloseUnwritten`, and the consumer drops the event stream before
    /// `close()` resolves.
    CloseUnread,
    /// The session future is dropped (`Session::drop` → `ended`).
    SessionDropped,
}

/// Applies `input` to `world` (a panic is an error); returns the ledger
/// and the events as text.
fn apply(world: &mut World, input: Input) -> Result<(String, String), String> {
    match catch_unwind(AssertUnwindSafe(|| world.step(input))) {
        Ok(result) => result.map(|()| world.texts()),
        Err(panic) => Err(format!(
            "panicked: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("?")
        )),
    }
}

fn checked(world: &World) -> Result<(), String> {
    match catch_unwind(AssertUnwindSafe(|| world.check_endings())) {
        Ok(result) => result,
        Err(_) => Err("an ending panicked".into()),
    }
}

// ── exhaustive exploration ─────────────────────────────────────────────

/// What an exploration covered.
#[derive(Debug, Default)]
struct Coverage {
    /// Distinct points reached.
    points: usize,
    /// (point, input) pairs applied.
    steps: usize,
    /// The depth of the deepest new point, once a level added none (the
    /// exploration is then complete: every point reachable is reached).
    complete_at: Option<usize>,
    /// Most messages pending at once.
    most_pending: usize,
    /// Statuses reached with a message pending.
    statuses: BTreeSet<Status>,
    /// A message was written; one was handed back in an `Unsent`; a lost
    /// link's messages went back into the queue.
    written: bool,
    unsent: bool,
    requeued: bool,
    /// The causes of every status change seen, one bit each.
    causes: u32,
    /// Statuses reached with reading paused (the consumer's buffer full).
    paused: BTreeSet<Status>,
}

impl Coverage {
    fn caused(&self, cause: Cause) -> bool {
        self.causes & 1 << cause as u32 != 0
    }
}

/// The exploration's alphabet: every input but [`Input::TakeEvent`]; its
/// consumer reads everything at once ([`Input::ReadAll`]), so the events
/// it has not read merge by how many they are (see
/// [`World::events_text`]). Events handed out one at a time, with the
/// rest held in the stream's hand, are the property's.
fn explored(input: Input) -> bool {
    input != Input::TakeEvent
}

/// Breadth-first from the start, until no new point appears (or `depth`
/// inputs deep), every point ended every way. `Err` names the path to the
/// first broken invariant.
fn explore_accounting(setup: Setup, depth: usize) -> Result<Coverage, String> {
    let mut start = World::new(setup);
    let mut seen = BTreeSet::new();
    let (ledger, events) = start.texts();
    start.check_held(&ledger, &events)?;
    seen.insert(start.key(&ledger, &events));
    if std::env::var_os("PK").is_some() {
        eprintln!("{}", start.key(&ledger, &events));
    }
    checked(&start).map_err(|e| format!("at the start: {e}"))?;
    let mut frontier = vec![(start, Vec::new())];
    let mut cov = Coverage {
        points: 1,
        ..Coverage::default()
    };
    for level in 0..depth {
        let mut next = Vec::new();
        for (world, path) in &frontier {
            for (input, _) in INPUTS
                .into_iter()
                .filter(|&(i, _)| explored(i) && world.applies(i))
            {
                let mut after = world.clone();
                cov.steps += 1;
                let fail = |e: String| format!("{setup:?}\npath {path:?} then {input:?}:\n{e}");
                let (ledger, events) = apply(&mut after, input).map_err(fail)?;
                cov.causes |= after.causes;
                // A point seen before passed the check: what is held is a
                // function of its key.
                let key = after.key(&ledger, &events);
                if !seen.insert(key) {
                    continue;
                }
                after.check_held(&ledger, &events).map_err(fail)?;
                checked(&after).map_err(fail)?;
                cov.most_pending = cov.most_pending.max(after.pending.len());
                if !after.pending.is_empty() {
                    cov.statuses.insert(after.status());
                }
                cov.written |= after.written > 0;
                cov.unsent |= after.unsent;
                if after.core.machine().is_some_and(|m| m.read_paused()) {
                    cov.paused.insert(after.status());
                }
                cov.requeued |= after.requeued;
                let mut path = path.clone();
                path.push(input);
                next.push((after, path));
            }
        }
        cov.points += next.len();
        if next.is_empty() {
            cov.complete_at = Some(level);
            break;
        }
        frontier = next;
    }
    Ok(cov)
}

fn run_exploration(name: &str, setup: Setup, depth: usize) -> Coverage {
    let t0 = Instant::now();
    let cov = explore_accounting(setup, depth).unwrap_or_else(|e| panic!("{name}: {e}"));
    eprintln!(
        "{name}: {} points, {} steps, complete at depth {:?}, at most {} pending, {:.1?}",
        cov.points,
        cov.steps,
        cov.complete_at,
        cov.most_pending,
        t0.elapsed()
    );
    assert!(
        cov.complete_at.is_some(),
        "{name}: new points still at depth {depth}"
    );
    assert!(
        cov.written && cov.unsent == setup.queue.is_none(),
        "{name}: {cov:?}"
    );
    let missed: Vec<Cause> = EXPLORED_CAUSES
        .into_iter()
        .filter(|&c| !cov.caused(c))
        .collect();
    assert!(missed.is_empty(), "{name}: never caused {missed:?}");
    // The consumer's buffer filled (reading paused) in every live status.
    let live = [
        Status::Connecting,
        Status::AwaitingAck,
        Status::Open,
        Status::Reconnecting,
        Status::Closing,
    ];
    assert_eq!(cov.paused, live.into(), "{name}: paused");
    cov
}

/// Every way the alphabet changes the status: each way a link ends (the
/// machine's own drops included) and each way the session ends.
const EXPLORED_CAUSES: [Cause; 13] = [
    Cause::SocketOpened,
    Cause::ConnectTimeout,
    Cause::AckTimeout,
    Cause::Acked,
    Cause::Stale,
    Cause::PeerClosed,
    Cause::TransportLost,
    Cause::RetryDue,
    Cause::ReconnectNow,
    Cause::CloseRequested,
    Cause::CloseCompleted,
    Cause::CloseGraceExpired,
    Cause::Rejected,
];

#[test]
fn exploration_without_a_queue_accounts_for_every_message() {
    let setup = Setup {
        capacity: 2,
        queue: None,
        after_ack: 0,
        max_attempts: None,
        events: EVENTS,
    };
    let cov = run_exploration("no queue", setup, DEPTH);
    let live = [
        Status::Connecting,
        Status::AwaitingAck,
        Status::Open,
        Status::Reconnecting,
        Status::Closing,
        Status::Closed,
    ];
    assert_eq!(
        cov.statuses,
        live.into(),
        "a message pending in every status"
    );
}

#[test]
fn exploration_with_the_queue_accounts_for_every_message() {
    let setup = Setup {
        capacity: 2,
        queue: Some((2, Overflow::RejectNew)),
        after_ack: 1,
        max_attempts: None,
        events: EVENTS,
    };
    let cov = run_exploration("queue", setup, DEPTH);
    assert!(cov.requeued, "{cov:?}");
}

#[test]
fn exploration_with_an_evicting_queue_accounts_for_every_message() {
    let setup = Setup {
        // Three lost at once overfill the queue; the next send evicts.
        capacity: 3,
        queue: Some((1, Overflow::DropOldest)),
        after_ack: 0,
        max_attempts: None,
        events: EVENTS,
    };
    let cov = run_exploration("evicting queue", setup, DEPTH);
    assert!(cov.requeued && cov.most_pending == 3, "{cov:?}");
}

/// The consumer's buffer in the explorations: one event fills it (a status
/// notice, the driver's report, a data frame), so reading pauses in every
/// live status. Larger buffers are the property's.
const EVENTS: usize = 1;

/// A bound the explorations never reach: each is complete (a level adds no
/// new point) by depth 30.
const DEPTH: usize = 40;

// ── random interleavings ───────────────────────────────────────────────

fn proptest_config() -> ProptestConfig {
    ProptestConfig {
        cases: 2048,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/fsm_accounting.txt",
        ))),
        ..ProptestConfig::default()
    }
}

/// The input `draw` picks among those that can happen in `world`, by
/// [`INPUTS`]; `None` when nothing can.
fn pick(world: &World, draw: u32) -> Option<Input> {
    let mut can = [(Input::Send, 0); INPUTS.len()];
    let mut n = 0;
    for (input, weight) in INPUTS {
        if world.applies(input) {
            can[n] = (input, weight);
            n += 1;
        }
    }
    let total: u32 = can[..n].iter().map(|(_, w)| w).sum();
    let mut left = draw.checked_rem(total)?;
    can[..n]
        .iter()
        .find_map(|&(input, weight)| match left.checked_sub(weight) {
            Some(rest) => {
                left = rest;
                None
            }
            None => Some(input),
        })
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        0usize..4,
        prop_oneof![
            Just(None),
            (0usize..3).prop_map(|n| Some((n, Overflow::RejectNew))),
            (0usize..3).prop_map(|n| Some((n, Overflow::DropOldest))),
        ],
        0usize..3,
        prop_oneof![3 => Just(None), 1 => (1u32..4).prop_map(Some)],
        1usize..6,
    )
        .prop_map(|(capacity, queue, after_ack, max_attempts, events)| Setup {
            capacity,
            queue,
            after_ack,
            max_attempts,
            events,
        })
}

#[test]
fn random_interleavings_account_for_every_message() {
    let mut runner = TestRunner::new(proptest_config());
    let strategy = (setup(), proptest::collection::vec(any::<u32>(), 0..150));
    let result = runner.run(&strategy, |(setup, draws)| {
        let mut world = World::new(setup);
        let mut done = Vec::new();
        for draw in draws {
            let Some(input) = pick(&world, draw) else {
                break; // ended, and nobody reads: nothing can happen
            };
            done.push(input);
            let fail = |e: String| TestCaseError::fail(format!("{setup:?}\ninputs {done:?}:\n{e}"));
            let (ledger, events) = apply(&mut world, input).map_err(fail)?;
            world.check_held(&ledger, &events).map_err(fail)?;
            checked(&world).map_err(fail)?;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
