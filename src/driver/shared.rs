//! The state the handles and the session task share, behind one lock: the
//! session core (every decision) and what only the driver can own (the
//! wakers, the upgrade response as read).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use async_tungstenite::tungstenite::Utf8Bytes;

use crate::fsm::session::SessionCore;

use super::flight::Flight;
use super::session_event::SessionEvent;
use super::transport::upgrade::KeptResponse;

/// The session core as the driver runs it: payloads are tungstenite's
/// text; the driver's own reports are events as the consumer sees them.
pub(crate) type Core = SessionCore<Utf8Bytes, SessionEvent, Flight>;

/// Shared between [`Client`](super::Client)s, [`Events`](super::Events) and
/// the [`Session`](super::Session).
pub(crate) struct Shared {
    pub(crate) inner: Mutex<Inner>,
    /// Notified on every status change and when the session finishes.
    pub(crate) changed: event_listener::Event,
    /// Notified when the send capacity gains room.
    pub(crate) space: event_listener::Event,
    /// A handle left a command (close, reconnect now): the machine may
    /// hold actions for the session to carry out; lets it skip the lock
    /// otherwise.
    pub(crate) has_commands: AtomicBool,
    /// A cache of the core's room in the consumer's buffer, written under
    /// the lock after every change, so the session's read path takes none
    /// to size its batch.
    pub(crate) events_room: AtomicUsize,
}

pub(crate) struct Inner {
    /// The one session core: the handles read the status from it, under
    /// the lock the session holds while it feeds the core and carries out
    /// what it decided, so no handle sees a status whose consequences (the
    /// queue's flush at Open) are not in place yet.
    pub(crate) core: Core,
    /// tungstenite holds frames not flushed yet.
    pub(crate) flush: bool,
    pub(crate) events_waker: Option<Waker>,
    pub(crate) session_waker: Option<Waker>,
    /// The last upgrade response, compact (see `KeptResponse`).
    pub(crate) last_response: Option<KeptResponse>,
}

impl Shared {
    pub(crate) fn new(core: Core) -> Arc<Self> {
        let room = core.events_room();
        Arc::new(Shared {
            inner: Mutex::new(Inner {
                core,
                flush: false,
                events_waker: None,
                session_waker: None,
                last_response: None,
            }),
            changed: event_listener::Event::new(),
            space: event_listener::Event::new(),
            has_commands: AtomicBool::new(false),
            events_room: AtomicUsize::new(room),
        })
    }

    /// Locks, recovering from a poisoned lock: the data stays consistent
    /// because no code path panics while holding it.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Room left in the consumer's event buffer, without the lock.
    pub(crate) fn events_room(&self) -> usize {
        self.events_room.load(Ordering::Acquire)
    }

    /// Tells waiters what the core changed: the consumer, `send_wait`
    /// callers, the room cache.
    pub(crate) fn wake(&self, inner: &mut Inner) {
        let wakeups = inner.core.take_wakeups();
        if wakeups.consumer {
            if let Some(w) = inner.events_waker.take() {
                w.wake();
            }
        }
        if wakeups.room {
            notify_all(&self.space);
        }
        self.events_room
            .store(inner.core.events_room(), Ordering::Release);
    }

    /// A handle left a command: the session looks at once.
    pub(crate) fn commanded(&self, inner: &mut Inner) {
        self.has_commands.store(true, Ordering::Release);
        Self::wake_session(inner);
    }

    /// Wakes the session task (after a command or a send).
    pub(crate) fn wake_session(inner: &mut Inner) {
        if let Some(w) = inner.session_waker.take() {
            w.wake();
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
