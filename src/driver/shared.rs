//! The state the handles and the session task share, behind one lock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Instant;

use crate::fsm::{Attempt, CloseReason, Event, Machine, State, Status};

use super::core_slot::CoreSlot;
use super::outbound::Outbound;
use super::session_event::{KeptResponse, SessionEvent};
use super::tally::Tally;

/// Shared between [`Client`](super::Client)s, [`Events`](super::Events) and
/// the [`Session`](super::Session).
pub(crate) struct Shared {
    pub(crate) inner: Mutex<Inner>,
    /// Notified on every status change and when the session finishes.
    pub(crate) changed: event_listener::Event,
    /// Notified when the send capacity gains room.
    pub(crate) space: event_listener::Event,
    /// A handle left a command or a message: lets the session skip the
    /// lock otherwise.
    pub(crate) has_commands: AtomicBool,
    /// Room left in the consumer's event buffer (`usize::MAX` once nobody
    /// reads): at 0 the session must not read, else it reads at most this
    /// many frames in one batch. Kept beside the lock so the session's read
    /// path takes none; only the consumer raises it, so a stale value errs
    /// on the safe side.
    pub(crate) events_room: AtomicUsize,
}

/// An event as buffered for the consumer.
#[derive(Debug)]
pub(crate) enum Queued {
    Event(SessionEvent),
    /// A text frame, parsed into a `Message` (or found not JSON: an
    /// `InvalidFrame`) only when [`Events`](super::Events) hands it out:
    /// the parsed value is then made and dropped on the consumer's side one
    /// at a time, as a raw client would, instead of many values alive
    /// across the buffer, and the buffer holds the text (tens of bytes)
    /// rather than the value (a map node of about 600).
    Json {
        attempt: Attempt,
        text: String,
    },
}

impl Queued {
    /// The event the consumer sees.
    pub(crate) fn into_event(self) -> SessionEvent {
        match self {
            Queued::Event(event) => event,
            Queued::Json { attempt, text } => {
                match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(value) => SessionEvent::Message(value),
                    Err(e) => SessionEvent::InvalidFrame {
                        attempt,
                        detail: format!("text frame is not JSON: {e}"),
                    },
                }
            }
        }
    }
}

/// A request from a handle, picked up by the session on its next poll.
#[derive(Debug, Default)]
pub(crate) struct Commands {
    /// Boxed, like the other rarely set fields: sessions are many.
    pub(crate) close: Option<Box<(u16, String)>>,
    pub(crate) reconnect_now: bool,
}

pub(crate) struct Inner {
    /// The one lifecycle machine (or its configuration until the session's
    /// first poll starts it): the handles read the status from it, under
    /// the lock the session holds while it feeds the machine and publishes
    /// what the machine decided, so no handle sees a status whose
    /// consequences (the queue's flush at Open) are not in place yet.
    pub(crate) core: CoreSlot,
    /// The attempt of the latest status change (the last one made, once
    /// Closed): `Client::attempt`.
    pub(crate) attempt: Attempt,
    /// Set when the session future completed or was dropped.
    pub(crate) finished: bool,
    pub(crate) commands: Commands,
    pub(crate) outbound: Outbound,
    pub(crate) events: VecDeque<Queued>,
    /// Events [`Events`](super::Events) fetched in a batch and has not
    /// handed out yet, as it last said: they still count against the
    /// capacity.
    /// (32 bits: saturates, which only errs towards less room.)
    pub(crate) in_hand: u32,
    /// The allocated capacity of `Events`' own buffer, for the soak tests.
    pub(crate) hand_capacity: u32,
    pub(crate) event_capacity: usize,
    pub(crate) events_alive: bool,
    pub(crate) events_waker: Option<Waker>,
    pub(crate) session_waker: Option<Waker>,
    /// The last upgrade response, compact (see `KeptResponse`).
    pub(crate) last_response: Option<KeptResponse>,
    /// The latest ack frame.
    /// The latest ack, as text: a parsed `Value` costs a map node (about
    /// 600 bytes) per session for the rare reader.
    pub(crate) last_ack: Option<Box<str>>,
    /// How the latest connection that had opened ended (code, reason), for
    /// the contexts of the caller's per-attempt code.
    /// Boxed: set by a disconnect, rare.
    pub(crate) last_disconnect: Option<Box<(u16, String)>>,
    /// Notices dropped because the consumer's buffer was full, reported as
    /// one `SessionEvent::Lagged` once there is room.
    pub(crate) lagged: u64,
    /// How many times each status was entered, so `wait_for` sees a status
    /// that was entered and left between two of its looks (and the stats
    /// count attempts and opens).
    /// 32-bit: sessions are many, and 4 billion attempts at the least
    /// reconnect delay (100 ms) take 13 years.
    pub(crate) entered: [u32; 6],
    /// The stats' counters and clocks.
    pub(crate) tally: Tally,
}

impl Shared {
    pub(crate) fn new(outbound: Outbound, event_capacity: usize, core: CoreSlot) -> Arc<Self> {
        Arc::new(Shared {
            inner: Mutex::new(Inner {
                core,
                attempt: 1,
                finished: false,
                commands: Commands::default(),
                outbound,
                events: VecDeque::new(),
                in_hand: 0,
                hand_capacity: 0,
                event_capacity,
                events_alive: true,
                events_waker: None,
                session_waker: None,
                last_response: None,
                last_ack: None,
                last_disconnect: None,
                lagged: 0,
                entered: [0; 6],
                tally: Tally::new(Instant::now()),
            }),
            changed: event_listener::Event::new(),
            space: event_listener::Event::new(),
            has_commands: AtomicBool::new(false),
            events_room: AtomicUsize::new(event_capacity),
        })
    }

    /// Locks, recovering from a poisoned lock: the data stays consistent
    /// because no code path panics while holding it.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands an event to the consumer.
    pub(crate) fn emit(&self, event: SessionEvent) {
        let mut inner = self.lock();
        self.push_locked(&mut inner, event);
    }

    /// [`emit`](Self::emit) under a lock the caller already holds.
    pub(crate) fn push_locked(&self, inner: &mut Inner, event: SessionEvent) {
        inner.push_event(event);
        self.update_room(inner);
    }

    /// Republishes the event buffer's room (after a push or a take).
    pub(crate) fn update_room(&self, inner: &Inner) {
        self.events_room
            .store(inner.events_room(), Ordering::Release);
    }

    /// Room left in the consumer's event buffer, without the lock.
    pub(crate) fn events_room(&self) -> usize {
        self.events_room.load(Ordering::Acquire)
    }

    /// A caller's command (`Close`, `ReconnectNow`): straight into the
    /// machine once it runs, whose actions then wait for the session,
    /// woken now; before the session's first poll, kept for it.
    pub(crate) fn command(&self, inner: &mut Inner, event: Event) {
        if inner.machine().is_some() {
            inner.core.handle(event, Instant::now());
        } else {
            match event {
                Event::Close { code, reason } if inner.commands.close.is_none() => {
                    inner.commands.close = Some(Box::new((code, reason)));
                }
                Event::ReconnectNow => inner.commands.reconnect_now = true,
                _ => {}
            }
        }
        self.has_commands.store(true, Ordering::Release);
        Self::wake_session(inner);
    }

    /// Wakes the session task (after a command or a send).
    pub(crate) fn wake_session(inner: &mut Inner) {
        if let Some(w) = inner.session_waker.take() {
            w.wake();
        }
    }

    /// Wakes `send_wait` callers if room appeared.
    pub(crate) fn notify_room(&self, inner: &mut Inner) {
        if inner.outbound.ledger.take_room_freed() {
            notify_all(&self.space);
        }
    }
}

/// Wakes everyone waiting on `event`; nothing when nobody ever listened:
/// event-listener allocates its list (72 bytes, kept for good) on the
/// first `notify`, listened to or not. No wake-up is lost: a waiter
/// listens before it checks the state under the lock, so one that could
/// miss this change is already counted.
pub(crate) fn notify_all(event: &event_listener::Event) {
    if event.total_listeners() > 0 {
        event.notify(usize::MAX);
    }
}

impl Inner {
    /// Whether the consumer has room, so the session may read the socket.
    pub(crate) fn events_have_room(&self) -> bool {
        self.events_room() > 0
    }

    /// How many more events the consumer's buffer takes (`usize::MAX` once
    /// nobody reads): the capacity less those buffered and those in the
    /// consumer's hand.
    pub(crate) fn events_room(&self) -> usize {
        match self.events_alive {
            true => (self.event_capacity).saturating_sub(self.events.len() + self.in_hand as usize),
            false => usize::MAX,
        }
    }

    /// The allocated capacity of the event buffers (shared and in hand).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn events_capacity(&self) -> usize {
        self.events.capacity() + self.hand_capacity as usize
    }

    /// Hands an event to the consumer (dropped if nobody listens).
    ///
    /// The buffer stays bounded: inbound frames are read only while it has
    /// room, at most as many as it has room for (at least one: so at most
    /// one arrives past the bound), and a notice that finds
    /// it full is counted instead of stored, to be reported as one
    /// [`SessionEvent::Lagged`] when room returns. `Closed`, `Unsent` and
    /// `Acked` always go in (once per session, bounded by the send
    /// capacity, once per opened connection).
    pub(crate) fn push_event(&mut self, event: SessionEvent) {
        self.push(Queued::Event(event));
    }

    /// [`push_event`](Self::push_event) for an event as buffered.
    pub(crate) fn push(&mut self, event: Queued) {
        if !self.events_alive {
            return;
        }
        let always = match &event {
            Queued::Json { .. } => true,
            Queued::Event(event) => matches!(
                event,
                SessionEvent::Closed(_)
                    | SessionEvent::Unsent(_)
                    | SessionEvent::Status {
                        to: Status::Open,
                        ..
                    }
                    | SessionEvent::Acked { .. }
                    | SessionEvent::Message(_)
                    | SessionEvent::Text(_)
                    | SessionEvent::Binary(_)
                    | SessionEvent::InvalidFrame { .. }
            ),
        };
        if self.events.len() + self.in_hand as usize >= self.event_capacity && !always {
            self.lagged = self.lagged.saturating_add(1);
            return;
        }
        self.take_lagged();
        self.events.push_back(event);
        if let Some(w) = self.events_waker.take() {
            w.wake();
        }
    }

    /// Queues the `Lagged` report for notices dropped so far, if any.
    pub(crate) fn take_lagged(&mut self) {
        if self.lagged > 0 {
            let missed = std::mem::take(&mut self.lagged);
            self.events
                .push_back(Queued::Event(SessionEvent::Lagged { missed }));
        }
    }

    /// The latest ack, parsed again.
    pub(crate) fn last_ack(&self) -> Option<serde_json::Value> {
        serde_json::from_str(self.last_ack.as_deref()?).ok()
    }

    /// The machine, once the session's first poll started it.
    pub(crate) fn machine(&self) -> Option<&Machine> {
        self.core.machine()
    }

    /// The status as the handles see it: the machine's (Connecting until
    /// it starts), Closed once the session is over.
    pub(crate) fn status(&self) -> Status {
        match self.machine() {
            _ if self.finished => Status::Closed,
            Some(machine) => machine.status(),
            None => Status::Connecting,
        }
    }

    /// Why the session ended, once it has: the machine's reason, or a
    /// request when the session future was dropped before it closed.
    pub(crate) fn closed_reason(&self) -> Option<CloseReason> {
        match self.machine().map(Machine::state) {
            Some(State::Closed { reason }) => Some(reason.clone()),
            _ => self.finished.then_some(CloseReason::Requested),
        }
    }

    /// Counts a status the session entered.
    pub(crate) fn publish(&mut self, status: Status, attempt: Attempt) {
        self.attempt = attempt;
        self.entered[status as usize] = self.entered[status as usize].wrapping_add(1);
        self.tally.entered(Instant::now());
    }
}
