//! [`SessionCore`]: the lifecycle machine together with everything the
//! session decides around it — the outbound ledger, the consumer's event
//! buffer and its back-pressure, the status the handles see, the ack
//! hand-off, the counters — one value, one owner, no I/O.
//!
//! Inputs come in through methods named for what happened (`handle` for
//! the machine's events, `opened`, `acked`, `link_dropped`, `consumer_*`,
//! the caller's commands); outputs come out of `poll_action` (drained
//! after every input, as the machine's), `poll_frame` and
//! `poll_timeout`. The driver holds it behind the one lock its handles
//! share, and keeps only what a socket needs.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fsm::outbound::{Frame, Ledger, Payload, SendError, Sent};
use crate::fsm::{
    Action, Attempt, CloseReason, Config, ConfigError, Event, Failure, Machine, State, Status,
    Verdict,
};

use super::buffer::{EventBuffer, Notice};
use super::rtt::PingClock;
use super::stats::Stats;
use super::tally::{Tally, Traffic};

/// What watches the machine: sees its configuration, every input and
/// every action (the driver's flight recorder, the tests' action hook).
pub trait Watch {
    /// The machine started with `config` (this session's seed in it).
    fn started(&mut self, config: &Config, now: Instant);
    /// The machine is handed `event` at `now`.
    fn input(&mut self, event: &Event, now: Instant);
    /// The machine decided `action`.
    fn action(&mut self, action: &Action);
}

/// The machine, or its configuration until the session's first poll.
#[derive(Clone)]
enum Phase {
    /// The builder's validated configuration (shared by its sessions) and
    /// this session's jitter seed; a close or reconnect-now asked for
    /// before the start waits here.
    Pending {
        config: Arc<Config>,
        seed: u64,
        commands: Option<Box<Commands>>,
    },
    Running(Machine),
}

#[derive(Default, Clone)]
struct Commands {
    close: Option<(u16, String)>,
    reconnect_now: bool,
}

/// An ack read from the socket with its after-ack frames, until the
/// machine's `FlushQueue` for it (boxed: it lives from the ack to the
/// drain after it, or to the link's end when the machine ignored the ack).
#[derive(Clone)]
struct Acking {
    attempt: Attempt,
    ack: serde_json::Value,
    frames: Vec<String>,
}

/// What changed that the driver must tell waiters about.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wakeups {
    /// The consumer has new events.
    pub(crate) consumer: bool,
    /// Senders waiting for room may try again.
    pub(crate) room: bool,
}

/// One session's decisions. `M` is the driver's payload (cloned by
/// reference while in flight), `X` what the driver buffers for the
/// consumer, `W` what watches the machine. `Clone` (when they are) so an
/// exploration can branch from any point.
#[derive(Clone)]
pub struct SessionCore<M, X, W> {
    phase: Phase,
    /// Boxed: most sessions are watched by nobody, and then it costs a word.
    watch: Option<Box<W>>,
    ledger: Ledger<M>,
    events: EventBuffer<X>,
    tally: Tally,
    pings: PingClock,
    /// How many times each status was entered, so a waiter sees a status
    /// entered and left between two of its looks (and the stats count
    /// attempts and opens). 32-bit: 4 billion attempts at the least
    /// reconnect delay (100 ms) take 13 years.
    entered: [u32; 6],
    /// The attempt of the latest status change.
    attempt: Attempt,
    /// The attempt whose transport the driver holds (dialing or up); 0
    /// for none (attempts count from 1).
    link: Attempt,
    acking: Option<Box<Acking>>,
    /// The latest ack, as text: a parsed value costs a map node (about
    /// 600 bytes) per session for the rare reader.
    last_ack: Option<Box<str>>,
    /// How the latest connection that had opened ended (code, reason).
    last_disconnect: Option<Box<(u16, String)>>,
    finished: bool,
}

impl<M: Payload, X, W: Watch> SessionCore<M, X, W> {
    /// A session that starts on its first [`start`](Self::start).
    pub fn new(
        config: Arc<Config>,
        seed: u64,
        ledger: Ledger<M>,
        event_capacity: usize,
        watch: Option<Box<W>>,
        now: Instant,
    ) -> Self {
        SessionCore {
            phase: Phase::Pending {
                config,
                seed,
                commands: None,
            },
            watch,
            ledger,
            events: EventBuffer::new(event_capacity),
            tally: Tally::new(now),
            pings: PingClock::default(),
            entered: [0; 6],
            attempt: 1,
            link: 0,
            acking: None,
            last_ack: None,
            last_disconnect: None,
            finished: false,
        }
    }

    // ── getters ────────────────────────────────────────────────────────

    /// The machine, once started.
    pub fn machine(&self) -> Option<&Machine> {
        match &self.phase {
            Phase::Running(m) => Some(m),
            Phase::Pending { .. } => None,
        }
    }

    /// The status the handles see: the machine's (Connecting until it
    /// starts), Closed once the session is over.
    pub fn status(&self) -> Status {
        match self.machine() {
            _ if self.finished => Status::Closed,
            Some(machine) => machine.status(),
            None => Status::Connecting,
        }
    }

    /// Why the session ended, once it has: the machine's reason, or a
    /// request when it was ended before the machine closed.
    pub fn closed_reason(&self) -> Option<CloseReason> {
        match self.machine().map(Machine::state) {
            Some(State::Closed { reason }) => Some(reason.clone()),
            _ => self.finished.then_some(CloseReason::Requested),
        }
    }

    /// Whether the machine is Closed (the driver then ends the session).
    pub fn machine_closed(&self) -> Option<CloseReason> {
        match self.machine().map(Machine::state) {
            Some(State::Closed { reason }) => Some(reason.clone()),
            _ => None,
        }
    }

    /// The session ended ([`ended`](Self::ended)).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The attempt of the latest status change.
    pub fn attempt(&self) -> Attempt {
        self.attempt
    }

    /// How many times `status` was entered.
    pub fn entered(&self, status: Status) -> u32 {
        self.entered[status as usize]
    }

    /// The machine's next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.machine().and_then(Machine::poll_timeout)
    }

    /// The latest ack, parsed again.
    pub fn last_ack(&self) -> Option<serde_json::Value> {
        serde_json::from_str(self.last_ack.as_deref()?).ok()
    }

    /// How the latest connection that had opened ended.
    pub fn last_disconnect(&self) -> Option<(u16, String)> {
        self.last_disconnect.as_deref().cloned()
    }

    /// The outbound ledger, read only (the handles' `queued`, the stats).
    pub fn ledger(&self) -> &Ledger<M> {
        &self.ledger
    }

    /// The ledger itself, for tests that set up a state directly.
    #[cfg(test)]
    pub fn ledger_mut(&mut self) -> &mut Ledger<M> {
        &mut self.ledger
    }

    /// The consumer's buffer's capacity.
    pub fn events_capacity(&self) -> usize {
        self.events.capacity()
    }

    /// Room left in the consumer's buffer (0: the session must not read).
    pub fn events_room(&self) -> usize {
        self.events.room()
    }

    /// What watches the machine (the tests read it).
    #[cfg(test)]
    pub(crate) fn watch_ref(&self) -> Option<&W> {
        self.watch.as_deref()
    }

    /// The allocated capacity of the consumer's buffers.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn events_allocated(&self) -> usize {
        self.events.allocated()
    }

    /// The events waiting for the consumer, oldest first, and how many
    /// notices the buffer folded for a `Lagged` report not queued yet
    /// (the accounting exploration looks at both).
    #[cfg(any(test, feature = "testing"))]
    pub fn buffered(&self) -> (impl Iterator<Item = &Notice<X>>, u64) {
        self.events.waiting()
    }

    /// The counters as of `now`.
    pub fn stats(&self, now: Instant) -> Stats {
        let messages_out = self.ledger.frames_written();
        (self.tally).stats(now, self.status(), &self.entered, messages_out)
    }

    /// The failure `event` is and its default verdict, for the caller's
    /// failure policy; `None` when it is none.
    pub fn failure(&self, event: &Event, now: Instant) -> Option<(Failure, Verdict)> {
        let machine = self.machine()?;
        let failure = machine.failure(event, now)?;
        let verdict = machine.config().verdict(&failure);
        Some((failure, verdict))
    }

    /// When the connect deadline is what fires at `now`: the attempt and
    /// the deadline's length (the driver tells it as a connect error).
    pub fn connect_deadline_due(&self, now: Instant) -> Option<(Attempt, Duration)> {
        let m = self.machine()?;
        let attempt = m.attempt()?;
        (m.due(now) == Some(crate::fsm::Timer::Connect))
            .then(|| (attempt, m.config().connect_timeout))
    }

    /// What changed for waiters since the last call.
    pub(crate) fn take_wakeups(&mut self) -> Wakeups {
        Wakeups {
            consumer: self.events.take_news(),
            room: self.ledger.take_room_freed(),
        }
    }

    // ── inputs ─────────────────────────────────────────────────────────

    /// Starts the machine at `now` unless it runs already (`Ok(true)`: it
    /// started now; its `Connect` waits in [`poll_action`](Self::poll_action)),
    /// then hands it the commands that waited for it.
    pub fn start(&mut self, now: Instant) -> Result<bool, ConfigError> {
        let Phase::Pending {
            config,
            seed,
            commands,
        } = &mut self.phase
        else {
            return Ok(false);
        };
        let machine = Machine::with_shared_config(config.clone(), *seed, now)?;
        let commands = commands.take();
        if let Some(watch) = self.watch.as_mut() {
            // This session's seed, so the recording replays.
            let config = Config {
                seed: *seed,
                ..machine.config().clone()
            };
            watch.started(&config, now);
        }
        self.phase = Phase::Running(machine);
        if let Some(commands) = commands {
            if let Some((code, reason)) = commands.close {
                self.handle(Event::Close { code, reason }, now);
            }
            if commands.reconnect_now {
                self.handle(Event::ReconnectNow, now);
            }
        }
        Ok(true)
    }

    /// Hands `event` to the machine at `now` (a failure is counted for the
    /// stats first). Its actions wait in [`poll_action`](Self::poll_action).
    pub fn handle(&mut self, event: Event, now: Instant) {
        let Phase::Running(m) = &mut self.phase else {
            return;
        };
        // A timeout with nothing due leaves the machine untouched (the one
        // timer often fires early): not worth a record.
        let noop = matches!(event, Event::Timeout) && m.due(now).is_none();
        if noop {
            return;
        }
        if let Some(failure) = m.failure(&event, now) {
            let attempt = event.attempt().or(m.attempt()).unwrap_or(0);
            self.tally.failed(failure, attempt, now);
        }
        if let Some(watch) = self.watch.as_mut() {
            watch.input(&event, now);
        }
        m.handle(event, now);
    }

    /// The upgrade of the current attempt succeeded: a fresh link.
    pub fn opened(&mut self, now: Instant) {
        self.ledger.opened();
        self.pings.reset();
        self.tally.connected(now);
    }

    /// The ack of `attempt` arrived, with this connection's after-ack
    /// frames: one input. The machine's `FlushQueue` then sends them first,
    /// flushes the queue and tells the consumer, in one step.
    pub fn acked(
        &mut self,
        attempt: Attempt,
        ack: serde_json::Value,
        frames: Vec<String>,
        now: Instant,
    ) {
        self.acking = Some(Box::new(Acking {
            attempt,
            ack,
            frames,
        }));
        self.handle(Event::Ack { attempt }, now);
    }

    /// The driver dropped the link the machine let go of (after one last
    /// chance for its close frame): what it never wrote is handed back.
    pub fn link_dropped(&mut self, now: Instant) {
        self.tally.link_gone();
        self.pings.reset();
        self.acking = None;
        if let Some(unsent) = self.ledger.lost(self.events.is_alive()) {
            // May fill the buffer: the pause follows.
            self.deliver(Notice::Unsent(unsent), now);
        }
    }

    /// What crossed the transport since last asked: frames taken (the send
    /// accounting, the ping's clock), bytes and frames for the stats, and
    /// a pong that may answer our latest ping.
    pub fn traffic(&mut self, text_taken: u32, pings_taken: u32, t: &Traffic, now: Instant) {
        if pings_taken > 0 {
            self.pings.written(pings_taken, now);
        }
        self.ledger.frames_taken(text_taken);
        self.tally.traffic(t);
        let pong = t.pong.map(|tag| super::rtt::Pong { tag, at: now });
        if let Some(rtt) = pong.and_then(|pong| self.pings.pong(pong)) {
            self.tally.round_trip(rtt);
        }
    }

    /// The hello of the current link was built: it goes out first.
    pub fn hello(&mut self, text: String) {
        self.ledger.hello(text);
    }

    /// A ping goes out now: its tag.
    pub fn ping_tag(&mut self) -> u8 {
        self.pings.tag()
    }

    /// Hands the consumer `event`; reading pauses when the buffer fills.
    pub fn deliver(&mut self, event: Notice<X>, now: Instant) {
        self.events.push(event);
        self.sync_read_pause(now);
    }

    /// The consumer takes everything buffered into `hand`.
    pub fn consumer_takes(&mut self, hand: &mut VecDeque<Notice<X>>) {
        self.events.take_all(hand);
    }

    /// The consumer holds `in_hand` events (in a buffer of `capacity`), and
    /// took an `Unsent` hand-back of `unsent` messages: reading resumes
    /// once there is room.
    pub fn consumer_holds(&mut self, in_hand: usize, capacity: usize, unsent: usize, now: Instant) {
        if unsent > 0 {
            self.ledger.unsent_taken(unsent);
        }
        self.events.in_hand(in_hand, capacity);
        self.sync_read_pause(now);
    }

    /// The event stream was dropped: hand-backs still in it wait for
    /// `close()`, and reading never pauses again.
    pub fn consumer_dropped(&mut self, hand: VecDeque<Notice<X>>, now: Instant) {
        let mut held = Vec::new();
        let mut outcome = Vec::new();
        for event in hand.into_iter().chain(self.events.dropped()) {
            match event {
                Notice::Unsent(messages) => held.extend(messages),
                Notice::Closed { unsent, .. } => outcome.extend(unsent),
                _ => {}
            }
        }
        self.ledger.events_dropped(held, outcome);
        self.sync_read_pause(now);
    }

    /// Tells the machine when the consumer's buffer filled or regained
    /// room: the read pause has one owner, the machine's lifecycle.
    fn sync_read_pause(&mut self, now: Instant) {
        let full = self.events.room() == 0;
        match self.machine() {
            Some(m) if m.read_paused() != full && !m.is_closed() => {
                let event = if full {
                    Event::ReadPaused
                } else {
                    Event::ReadResumed
                };
                self.handle(event, now);
            }
            _ => {}
        }
    }

    // ── the caller's commands ──────────────────────────────────────────

    /// The caller's `send`.
    pub fn send(&mut self, text: String) -> Result<Sent, SendError> {
        let status = self.status();
        self.ledger.send(text, status)
    }

    /// The caller's `close`: later sends are refused at once, what was
    /// accepted is still written before the close frame.
    pub fn close(&mut self, code: u16, reason: String, now: Instant) {
        self.ledger.close_requested();
        match &mut self.phase {
            Phase::Running(_) => self.handle(Event::Close { code, reason }, now),
            Phase::Pending { commands, .. } => {
                let commands = commands.get_or_insert_with(Box::default);
                commands.close.get_or_insert((code, reason));
            }
        }
    }

    /// The caller's `reconnect_now`.
    pub fn reconnect_now(&mut self, now: Instant) {
        match &mut self.phase {
            Phase::Running(_) => self.handle(Event::ReconnectNow, now),
            Phase::Pending { commands, .. } => {
                commands.get_or_insert_with(Box::default).reconnect_now = true;
            }
        }
    }

    /// The caller takes what `close()` returns (once).
    pub fn take_returned(&mut self) -> Vec<String> {
        self.ledger.take_returned()
    }

    // ── outputs ────────────────────────────────────────────────────────

    /// Whether a frame waits to be written.
    pub fn has_frame(&self) -> bool {
        self.ledger.has_frame()
    }

    /// The next frame to write (for a ping, [`ping_tag`](Self::ping_tag)
    /// is its payload).
    pub fn poll_frame(&mut self) -> Option<Frame<M>> {
        self.ledger.poll_frame()
    }

    /// The close frame still unwritten when the link is dropped: its one
    /// last chance.
    pub fn take_close(&mut self) -> Option<(u16, String)> {
        self.ledger.take_close()
    }

    /// The machine's next action, with what it means for the session
    /// already done (the status published, the ledger moved, the consumer
    /// told). What is left for the driver: `Connect`, `SendHello` and
    /// `DropTransport` for the current link (then [`link_dropped`](Self::link_dropped)),
    /// and logging. Actions for a link already gone are skipped.
    pub fn poll_action(&mut self, now: Instant) -> Option<Action> {
        loop {
            let Phase::Running(m) = &mut self.phase else {
                return None;
            };
            let action = m.poll_action()?;
            if let Some(watch) = self.watch.as_mut() {
                watch.action(&action);
            }
            if self.apply(&action, now) {
                return Some(action);
            }
        }
    }

    /// Applies `action`; whether the driver has something to do with it.
    fn apply(&mut self, action: &Action, now: Instant) -> bool {
        let current = |attempt: &Attempt| self.link == *attempt;
        match action {
            Action::Connect { attempt } => {
                self.link = *attempt;
                true
            }
            Action::SendHello { attempt } => current(attempt),
            Action::DropTransport { attempt } if current(attempt) => {
                self.link = 0;
                true
            }
            Action::DropTransport { .. } => false,
            Action::FlushQueue { attempt } => {
                self.flush_queue(*attempt, now);
                false
            }
            Action::SendPing { attempt } => {
                if current(attempt) {
                    self.ledger.ping();
                }
                false
            }
            Action::SendClose {
                attempt,
                code,
                reason,
            } => {
                if current(attempt) {
                    self.ledger.close(*code, reason.clone());
                }
                false
            }
            Action::StatusChanged {
                from,
                to,
                cause,
                attempt,
            } => {
                self.tally.status_changed(*cause);
                self.publish(*to, *attempt, now);
                let (from, to, cause, attempt) = (*from, *to, *cause, *attempt);
                self.deliver(
                    Notice::Status {
                        from,
                        to,
                        cause,
                        attempt,
                    },
                    now,
                );
                true
            }
            Action::Disconnected {
                attempt,
                code,
                reason,
            } => {
                self.last_disconnect = Some(Box::new((*code, reason.clone())));
                self.tally.disconnected();
                let (attempt, code, reason) = (*attempt, *code, reason.clone());
                self.deliver(
                    Notice::Disconnected {
                        attempt,
                        code,
                        reason,
                    },
                    now,
                );
                true
            }
            Action::ReconnectScheduled { attempt, delay } => {
                let (attempt, delay) = (*attempt, *delay);
                self.deliver(Notice::ReconnectScheduled { attempt, delay }, now);
                true
            }
        }
    }

    /// `FlushQueue`, right after the machine entered Open and in the same
    /// step: this connection's after-ack frames and the queue's flush, then
    /// `Acked`, so a send can neither overtake them nor see Open and be
    /// refused, and `Acked` follows `Open` at once.
    fn flush_queue(&mut self, attempt: Attempt, now: Instant) {
        let acking = self.acking.take().filter(|a| a.attempt == attempt);
        let (ack, frames) = match acking {
            Some(acking) => (Some(acking.ack), acking.frames),
            None => (None, Vec::new()),
        };
        self.ledger.acked(frames);
        if let Some(ack) = ack {
            self.last_ack = Some(ack.to_string().into_boxed_str());
            self.deliver(Notice::Acked { attempt, ack }, now);
        }
    }

    /// Counts a status entered.
    fn publish(&mut self, status: Status, attempt: Attempt, now: Instant) {
        self.attempt = attempt;
        let entered = &mut self.entered[status as usize];
        *entered = entered.wrapping_add(1);
        self.tally.entered(now);
    }

    /// The session is over. Messages never written go into the `Closed`
    /// event when nobody asked to close and someone reads; else they wait
    /// for `close()`. Nobody watches any longer.
    pub fn ended(&mut self, reason: CloseReason, now: Instant) {
        self.tally.link_gone();
        self.pings.reset();
        let for_close = self.ledger.is_closing() || !self.events.is_alive();
        let unsent = self.ledger.finished(for_close);
        let attempt = self.attempt;
        self.publish(Status::Closed, attempt, now);
        self.events.push(Notice::Closed { reason, unsent });
        self.finished = true;
        self.watch = None;
    }
}
