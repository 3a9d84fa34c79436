//! Exact accounting, proven without sockets (DESIGN 12 and "Invariants"):
//! the session machine and the outbound ledger driven together, each of the
//! machine's actions carried out on the ledger exactly as the driver does
//! (`src/driver/session.rs`, `report.rs`, `outbound.rs`, `client.rs`,
//! `events.rs`), over a model of the layer below that takes whole frames
//! when told to.
//!
//! | the driver | here |
//! |---|---|
//! | `Client::send_text`: `ledger.send(text, status)` | [`Input::Send`] |
//! | `request_close`: `close_requested`, then the machine's `Close` | [`Input::Close`] |
//! | `Client::reconnect_now`: the machine's `ReconnectNow` | [`Input::ReconnectNow`] |
//! | `Shared::upgraded`: `opened`, then `SocketOpened` | [`Input::Opened`] |
//! | `poll_hello` (only in AwaitingAck, or a close raced it): `hello` | [`Input::HelloBuilt`] |
//! | an ack read (not while paused): `Ack`; `FlushQueue` → `acked(after-ack frames)` | [`Input::Ack`] |
//! | a write pass (`has_frame`/`poll_frame`), then `frames_taken` | [`Input::Write`] |
//! | a write or read error: `TransportLost` | [`Input::Lost`] |
//! | the peer's close frame (not while paused) | [`Input::PeerClose`], [`Input::Reject`] |
//! | `Shared::inputs`: `ReadPaused` / `ReadResumed` | [`Input::Full`], [`Input::Room`] |
//! | `Events::poll_next`: an `Unsent` taken → `unsent_taken` | [`Input::TakeEvent`] |
//! | `Events::drop`: `events_dropped(held, outcome)` | [`Input::DropEvents`] |
//! | the alarm: `Timeout` at `poll_timeout` | [`Input::Timeout`] |
//! | `SendPing` → `ping`; `SendClose` → `close` | actions |
//! | `DropTransport` → `take_close` (the last chance), `lost(events_alive)` → `Unsent` | actions |
//! | the machine Closed (or the session future dropped): `ended` → `finished(for_close)` → `Closed` | [`World::end`] |
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
//! an `Unsent` event not taken yet), every other one nowhere.
//!
//! Two drivers of one model:
//!
//! - a breadth-first exploration over [`INPUTS`] that runs until a level
//!   adds no new point (complete, for its merging): points are merged by
//!   the machine's status, read pause and next timer and by the exact
//!   outbound contents, messages renumbered by rank (see [`World::key`]);
//! - a proptest property over random interleavings of the same inputs, on
//!   random send capacities, queues, after-ack frames and attempt budgets.
//!   Shrunk failures go to `proptest-regressions/fsm_accounting.txt`.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence, TestRunner};
use ws_lifecycle::fsm::explore::{TERMINAL_CODE, exploration_config};
use ws_lifecycle::fsm::outbound::{Frame, Ledger, Overflow, Sent};
use ws_lifecycle::fsm::{Action, Event, Machine};
use ws_lifecycle::{Cause, Config, Status};

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
    /// The ack arrived (read, so not while reading is paused).
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
    /// The consumer's event buffer filled: reading pauses.
    Full,
    /// It has room again: reading resumes.
    Room,
    /// The consumer takes the oldest hand-back event.
    TakeEvent,
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
/// happen: weighted towards progress (open, ack, send, write), so runs go
/// through several connections before the session ends.
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
    (Input::Full, 3),
    (Input::Room, 4),
    (Input::TakeEvent, 3),
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

/// The layer below one opened link (tungstenite's buffer, the kernel's):
/// frames given to it wait until the transport takes them, whole, in order.
#[derive(Debug, Clone, Default)]
struct Below {
    frames: VecDeque<Frame<String>>,
    /// A close frame was given: nothing may follow it.
    closed: bool,
}

impl Below {
    fn give(&mut self, frame: Frame<String>) -> Result<(), String> {
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

/// A hand-back in the consumer's event buffer.
#[derive(Debug, Clone)]
enum Back {
    Unsent(Vec<String>),
    Closed(Vec<String>),
}

type Id = u32;

/// The machine, the ledger and everything around them the driver keeps,
/// with the books: which accepted messages are still pending.
#[derive(Clone)]
struct World {
    machine: Machine,
    ledger: Ledger<String>,
    setup: Setup,
    now: Instant,
    link: Option<Link>,
    /// The after-ack frames of the ack being handled (the driver's
    /// `Acking`), until its `FlushQueue`.
    acking: Option<(Attempt, Vec<String>)>,
    events: VecDeque<Back>,
    events_alive: bool,
    /// The driver's view of the consumer's buffer (`Session::read_paused`).
    read_paused: bool,
    /// `Shared::ended` ran: the session is over.
    ended: bool,
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
}

fn id(text: &str) -> Result<Id, String> {
    text.strip_prefix('m')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("not a caller's message: {text:?}"))
}

impl World {
    fn new(setup: Setup) -> World {
        let now = Instant::now();
        let mut machine = Machine::new(config(&setup), now).expect("valid config");
        let ledger = Ledger::new(setup.capacity, setup.queue);
        // The session's first poll: the first `Connect`.
        let mut link = None;
        while let Some(action) = machine.poll_action() {
            if let Action::Connect { attempt } = action {
                link = Some(Link {
                    attempt,
                    below: None,
                    hello: false,
                });
            }
        }
        World {
            machine,
            ledger,
            setup,
            now,
            link,
            acking: None,
            events: VecDeque::new(),
            events_alive: true,
            read_paused: false,
            ended: false,
            next: 0,
            pending: BTreeSet::new(),
            last_written: None,
            last_event_back: None,
            written: 0,
            causes: 0,
            requeued: false,
        }
    }

    /// What `Client::status` reports.
    fn status(&self) -> Status {
        if self.ended {
            Status::Closed
        } else {
            self.machine.status()
        }
    }

    fn current(&self, attempt: Attempt) -> bool {
        self.link.as_ref().is_some_and(|l| l.attempt == attempt)
    }

    fn opened_link(&self) -> Option<Attempt> {
        self.link
            .as_ref()
            .filter(|l| l.below.is_some())
            .map(|l| l.attempt)
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
        let ids = batch.iter().map(|t| id(t)).collect::<Result<Vec<_>, _>>()?;
        if ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!("{how} hands back {batch:?}: not oldest first"));
        }
        for id in ids {
            self.settle(id, &format!("handed back ({how})"))?;
        }
        Ok(())
    }

    // ── inputs ─────────────────────────────────────────────────────────

    /// Whether `input` can happen now (as the driver sees it); when not,
    /// [`step`](Self::step) does nothing.
    fn applies(&self, input: Input) -> bool {
        let opened = self.opened_link().is_some();
        match input {
            // Once a close was asked for, sends are refused and a second
            // close changes nothing.
            Input::Send | Input::Close => !self.ledger.is_closing(),
            Input::ReconnectNow => !matches!(self.status(), Status::Closing | Status::Closed),
            Input::Opened => self.link.as_ref().is_some_and(|l| l.below.is_none()),
            Input::HelloBuilt => self.link.as_ref().is_some_and(|l| l.hello),
            // Read, so not while reading is paused.
            Input::Ack => opened && !self.read_paused && self.status() == Status::AwaitingAck,
            Input::PeerClose | Input::Reject => opened && !self.read_paused,
            Input::Write(_) | Input::Lost => opened,
            Input::Full => self.events_alive && !self.read_paused && !self.ended,
            Input::Room => self.read_paused,
            Input::TakeEvent => !self.events.is_empty(),
            Input::DropEvents => self.events_alive,
            Input::Timeout => !self.ended && self.machine.poll_timeout().is_some(),
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
        match input {
            Input::Send => self.send()?,
            Input::Close => {
                // `request_close`: the ledger refuses sends from now on, and
                // the machine hears it in the same critical section.
                self.ledger.close_requested();
                self.feed(Event::Close {
                    code: 1000,
                    reason: String::new(),
                })?;
            }
            Input::ReconnectNow => self.feed(Event::ReconnectNow)?,
            Input::Opened => {
                let link = self.link.as_mut().expect("applies");
                link.below = Some(Below::default());
                let attempt = link.attempt;
                self.ledger.opened();
                self.feed(Event::SocketOpened { attempt })?;
            }
            Input::HelloBuilt => {
                let status = self.status();
                self.link.as_mut().expect("applies").hello = false;
                if matches!(status, Status::AwaitingAck | Status::Closing) {
                    self.ledger.hello("hello".into());
                }
            }
            Input::Ack => {
                let attempt = self.opened_link().expect("applies");
                let frames = (0..self.setup.after_ack).map(|n| format!("sub{n}"));
                self.acking = Some((attempt, frames.collect()));
                self.feed(Event::Ack { attempt })?;
                self.acking = None;
            }
            Input::Write(take) => self.write(take)?,
            Input::Lost => {
                let attempt = self.opened_link().expect("applies");
                self.feed(Event::TransportLost { attempt })?;
            }
            Input::PeerClose | Input::Reject => {
                let attempt = self.opened_link().expect("applies");
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
            Input::Full => {
                self.read_paused = true;
                self.feed(Event::ReadPaused)?;
            }
            Input::Room => self.resume()?,
            Input::TakeEvent => self.take_event()?,
            Input::DropEvents => {
                // `Events::drop`.
                self.events_alive = false;
                let (mut held, mut outcome) = (Vec::new(), Vec::new());
                for back in self.events.drain(..) {
                    match back {
                        Back::Unsent(batch) => held.extend(batch),
                        Back::Closed(batch) => outcome.extend(batch),
                    }
                }
                self.ledger.events_dropped(held, outcome);
                // Nobody reads: the room is unbounded, reading resumes.
                self.resume()?;
            }
            Input::Timeout => {
                let at = self.machine.poll_timeout().expect("applies");
                self.now = self.now.max(at);
                self.feed(Event::Timeout)?;
            }
        }
        Ok(())
    }

    /// `Client::send_text`.
    fn send(&mut self) -> Result<(), String> {
        let text = format!("m{}", self.next);
        match self.ledger.send(text.clone(), self.status()) {
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

    fn resume(&mut self) -> Result<(), String> {
        if self.read_paused {
            self.read_paused = false;
            self.feed(Event::ReadResumed)?;
        }
        Ok(())
    }

    /// The consumer takes the oldest hand-back event.
    fn take_event(&mut self) -> Result<(), String> {
        let batch = match self.events.pop_front() {
            None => return Ok(()),
            Some(Back::Unsent(batch)) => {
                self.ledger.unsent_taken(batch.len());
                batch
            }
            Some(Back::Closed(batch)) => batch,
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

    /// A write pass on the opened link (`Outbound::write_some`), then the
    /// transport takes frames and the ledger hears how many text frames
    /// (`Outbound::settle`).
    fn write(&mut self, take: Take) -> Result<(), String> {
        let Some(below) = self.link.as_mut().and_then(|l| l.below.as_mut()) else {
            return Ok(());
        };
        loop {
            let has = self.ledger.has_frame();
            let frame = self.ledger.poll_frame();
            if has != frame.is_some() {
                return Err(format!("has_frame() {has}, poll_frame() {frame:?}"));
            }
            match frame {
                Some(frame) => below.give(frame)?,
                None => break,
            }
        }
        let n = match take {
            Take::None => 0,
            Take::One => 1,
            Take::All => below.frames.len(),
        };
        let mut text = 0;
        let mut messages = Vec::new();
        for frame in below.frames.drain(..n.min(below.frames.len())) {
            match frame {
                Frame::Hello(_) | Frame::AfterAck(_) => text += 1,
                Frame::Message(m) => {
                    text += 1;
                    messages.push(m);
                }
                Frame::Ping | Frame::Close { .. } => {}
            }
        }
        let before = self.ledger.written();
        self.ledger.frames_taken(text);
        let counted = self.ledger.written() - before;
        if counted != messages.len() as u64 {
            return Err(format!(
                "the transport took {messages:?} ({text} text frames), the ledger counted {counted} written"
            ));
        }
        for m in &messages {
            self.wrote(id(m)?)?;
        }
        Ok(())
    }

    /// `Session::feed`: the event, then every action carried out; the
    /// session ends once the machine is Closed.
    fn feed(&mut self, event: Event) -> Result<(), String> {
        if self.ended {
            return Ok(());
        }
        self.machine.handle(event, self.now);
        while let Some(action) = self.machine.poll_action() {
            self.carry_out(action)?;
        }
        if self.machine.is_closed() {
            self.end()?;
        }
        Ok(())
    }

    /// One action, as `Session::start` and `Session::publish` carry it out.
    fn carry_out(&mut self, action: Action) -> Result<(), String> {
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
            Action::SendHello { attempt } => {
                if let Some(link) = self.link.as_mut().filter(|l| l.attempt == attempt) {
                    link.hello = link.below.is_some();
                }
            }
            Action::FlushQueue { attempt } => {
                let frames = match self.acking.take() {
                    Some((a, frames)) if a == attempt => frames,
                    _ => Vec::new(),
                };
                self.ledger.acked(frames);
            }
            Action::SendPing { attempt } if self.current(attempt) => self.ledger.ping(),
            Action::SendClose {
                attempt,
                code,
                reason,
            } if self.current(attempt) => self.ledger.close(code, reason),
            Action::SendPing { .. } | Action::SendClose { .. } => {}
            Action::DropTransport { attempt } => {
                let Some(link) = self.link.take_if(|l| l.attempt == attempt) else {
                    return Ok(());
                };
                // `Shared::link_dropped`: the last chance for a pending close
                // frame (the transport takes nothing more: taking before the
                // drop is `Write`'s), then what the link never wrote.
                if let Some(mut below) = link.below {
                    if let Some((code, reason)) = self.ledger.take_close() {
                        below.give(Frame::Close { code, reason })?;
                    }
                }
                let queued = self.ledger.queued();
                let unsent = self.ledger.lost(self.events_alive);
                self.requeued |= self.ledger.queued() > queued;
                if let Some(unsent) = unsent {
                    if !self.events_alive {
                        return Err(format!("{unsent:?} handed back to nobody"));
                    }
                    self.events.push_back(Back::Unsent(unsent));
                }
            }
            Action::StatusChanged { cause, .. } => self.causes |= 1 << cause as u32,
            Action::Disconnected { .. } | Action::ReconnectScheduled { .. } => {}
        }
        Ok(())
    }

    /// `Shared::ended` (from `Session::release`): what was never written
    /// goes into the `Closed` outcome, or waits for `close()` when a close
    /// was asked for or nobody reads.
    fn end(&mut self) -> Result<(), String> {
        self.ended = true;
        self.link = None;
        self.read_paused = false;
        let for_close = self.ledger.is_closing() || !self.events_alive;
        let unsent = self.ledger.finished(for_close);
        if for_close && !unsent.is_empty() {
            return Err(format!("finished(for_close) returned {unsent:?}"));
        }
        if self.events_alive {
            self.events.push_back(Back::Closed(unsent));
        }
        Ok(())
    }

    // ── the invariant ──────────────────────────────────────────────────

    /// While the session lives: every pending message is held exactly once
    /// (in the ledger or in a hand-back event not taken), every other one
    /// nowhere. Returns the ledger and the events as text, for [`key`](Self::key).
    fn check_held(&self) -> Result<(String, String), String> {
        let ledger = format!("{:?}", self.ledger);
        let events = format!("{:?}", self.events);
        let mut copies: BTreeMap<Id, usize> = BTreeMap::new();
        for (_, id, _) in messages(&ledger).chain(messages(&events)) {
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
        Ok((ledger, events))
    }

    /// The end of a path: the session ends `how`, the caller's `close()`
    /// takes what was kept for it, the consumer reads what is left; then
    /// nothing may be pending.
    fn end_and_check(mut self, how: Ending) -> Result<(), String> {
        match how {
            Ending::CloseWritten => {
                self.step(Input::Close)?;
                for _ in 0..4 {
                    if self.ended {
                        break;
                    }
                    self.step(Input::Write(Take::All))?;
                    self.step(Input::Room)?;
                    self.step(Input::PeerClose)?;
                    self.step(Input::Timeout)?;
                }
            }
            Ending::CloseUnwritten | Ending::CloseUnread => {
                self.step(Input::Close)?;
                for _ in 0..4 {
                    if self.ended {
                        break;
                    }
                    self.step(Input::Timeout)?;
                }
                if matches!(how, Ending::CloseUnread) {
                    self.step(Input::DropEvents)?;
                }
            }
            Ending::SessionDropped => {
                if !self.ended {
                    self.end()?;
                }
            }
        }
        if !self.ended {
            return Err(format!("{how:?} left the session {:?}", self.status()));
        }
        let kept = self.ledger.take_returned();
        self.handed_back(&kept, "close()")?;
        while !self.events.is_empty() {
            self.take_event()?;
        }
        if self.ledger.written() != self.written {
            return Err(format!(
                "the ledger counts {} written, the transport took {}",
                self.ledger.written(),
                self.written
            ));
        }
        if !self.pending.is_empty() {
            let lost: Vec<String> = self.pending.iter().map(|id| format!("m{id}")).collect();
            return Err(format!("never written nor handed back: {lost:?}"));
        }
        Ok(())
    }

    /// Every ending from this point.
    fn check_endings(&self) -> Result<(), String> {
        for how in [
            Ending::CloseWritten,
            Ending::CloseUnwritten,
            Ending::CloseUnread,
            Ending::SessionDropped,
        ] {
            self.clone()
                .end_and_check(how)
                .map_err(|e| format!("ending {how:?}: {e}"))?;
        }
        Ok(())
    }

    /// The point's identity for the exploration: the machine's status,
    /// read pause and the timer it would fire next (with an attempt budget,
    /// the attempts it counted too: the backoff step and whether the
    /// connection was stable change no decision with one backoff step), the
    /// driver's flags, and the exact outbound contents with messages
    /// renumbered by rank among those still pending (the future depends on
    /// their order, not their numbers). The ledger's counters (`room_freed`,
    /// `written`, `frames_written`) are left out: the books check their
    /// changes step by step. As in `fsm_exhaustive`, a merged point keeps
    /// the concrete times of the first path that reached it.
    fn key(&self, ledger: &str, events: &str) -> String {
        let lifecycle = self.machine.lifecycle();
        let next_timer = self
            .machine
            .poll_timeout()
            .and_then(|at| self.machine.due(at));
        let budget = self
            .setup
            .max_attempts
            .map(|max| lifecycle.attempts_since_stable().min(max + 1));
        let mut ids: Vec<Id> = self.pending.iter().copied().collect();
        ids.extend(self.last_written);
        ids.extend(self.last_event_back);
        ids.sort_unstable();
        ids.dedup();
        let rank: BTreeMap<Id, usize> = ids.into_iter().zip(0..).collect();
        let ledger = ledger
            .find(", room_freed:")
            .map_or(ledger, |cut| &ledger[..cut]);
        let at = |id: Option<Id>| id.map(|id| rank[&id]);
        let mut key = format!(
            "{:?} {} {:?} {:?} {} {} {} {:?} {:?} ",
            self.machine.status(),
            self.machine.read_paused(),
            next_timer,
            budget,
            self.events_alive,
            self.read_paused,
            self.ended,
            at(self.last_written),
            at(self.last_event_back),
        );
        relabel(&mut key, ledger, &rank);
        // The link's attempt is always the machine's: left out. Pings in a
        // row are one: they are not text, and the transport takes them as
        // it takes one (which bounds the frames a stalled link holds).
        let link = self.link.as_ref().map(|l| (&l.below, l.hello));
        let mut link = format!("{link:?}");
        while let Some(at) = link.find("Ping, Ping") {
            link.replace_range(at..at + "Ping, Ping".len(), "Ping");
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
        while let Some(at) = text[from..].find("\"m").map(|at| from + at) {
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

/// Appends `text` to `out` with every `"m<id>"` renumbered by `rank`.
fn relabel(out: &mut String, text: &str, rank: &BTreeMap<Id, usize>) {
    let mut copied = 0;
    for (at, id, end) in messages(text) {
        out.push_str(&text[copied..at]);
        match rank.get(&id) {
            Some(r) => write!(out, "\"m#{r}\""),
            None => write!(out, "\"m?{id}\""),
        }
        .expect("a String");
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

/// Applies `input` to `world` (a panic is an error) and checks what is
/// held; returns the ledger and the events as text.
fn apply(world: &mut World, input: Input) -> Result<(String, String), String> {
    match catch_unwind(AssertUnwindSafe(|| world.step(input))) {
        Ok(result) => result.and_then(|()| world.check_held()),
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
}

impl Coverage {
    fn caused(&self, cause: Cause) -> bool {
        self.causes & 1 << cause as u32 != 0
    }
}

/// Breadth-first from the start, until no new point appears (or `depth`
/// inputs deep), every point ended every way. `Err` names the path to the
/// first broken invariant.
fn explore_accounting(setup: Setup, depth: usize) -> Result<Coverage, String> {
    let start = World::new(setup);
    let mut seen = HashSet::new();
    let (ledger, events) = start.check_held()?;
    seen.insert(start.key(&ledger, &events));
    checked(&start).map_err(|e| format!("at the start: {e}"))?;
    let mut frontier = vec![(start, Vec::new())];
    let mut cov = Coverage {
        points: 1,
        ..Coverage::default()
    };
    for level in 0..depth {
        let mut next = Vec::new();
        for (world, path) in &frontier {
            for (input, _) in INPUTS.into_iter().filter(|&(i, _)| world.applies(i)) {
                let mut after = world.clone();
                cov.steps += 1;
                let fail = |e: String| format!("{setup:?}\npath {path:?} then {input:?}:\n{e}");
                let (ledger, events) = apply(&mut after, input).map_err(fail)?;
                cov.causes |= after.causes;
                let key = after.key(&ledger, &events);
                if !seen.insert(key) {
                    continue;
                }
                checked(&after).map_err(fail)?;
                cov.most_pending = cov.most_pending.max(after.pending.len());
                if !after.pending.is_empty() {
                    cov.statuses.insert(after.status());
                }
                cov.written |= after.written > 0;
                cov.unsent |= after.events.iter().any(|b| matches!(b, Back::Unsent(_)));
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
    };
    let cov = run_exploration("evicting queue", setup, DEPTH);
    assert!(cov.requeued && cov.most_pending == 3, "{cov:?}");
}

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
    let can = || INPUTS.into_iter().filter(|&(i, _)| world.applies(i));
    let total: u32 = can().map(|(_, w)| w).sum();
    let mut left = draw.checked_rem(total)?;
    can().find_map(|(input, weight)| match left.checked_sub(weight) {
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
    )
        .prop_map(|(capacity, queue, after_ack, max_attempts)| Setup {
            capacity,
            queue,
            after_ack,
            max_attempts,
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
            apply(&mut world, input).map_err(fail)?;
            checked(&world).map_err(fail)?;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
