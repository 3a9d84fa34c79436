//! The session's one timer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use async_io::Timer;

/// One `async_io::Timer`, re-armed only when the machine's deadline moved
/// *earlier*: a busy socket moves the stale deadline later on every frame,
/// and touching the reactor per message would cost more than one early,
/// harmless wake-up (`handle_timeout` is a no-op when early).
pub(crate) struct Alarm {
    timer: Timer,
    armed: Option<Instant>,
}

impl Alarm {
    pub(crate) fn new() -> Self {
        Alarm {
            timer: Timer::never(),
            armed: None,
        }
    }

    /// Arms for `want` (if earlier than what is armed) and reports whether
    /// the armed instant has passed.
    pub(crate) fn poll(&mut self, want: Option<Instant>, cx: &mut Context<'_>) -> bool {
        if let Some(want) = want {
            if self.armed.is_none_or(|armed| want < armed) {
                self.timer.set_at(want);
                self.armed = Some(want);
            }
        }
        if self.armed.is_none() {
            return false;
        }
        match Pin::new(&mut self.timer).poll(cx) {
            Poll::Pending => false,
            Poll::Ready(_) => {
                self.armed = None;
                true
            }
        }
    }

    /// Releases the reactor registration.
    pub(crate) fn disarm(&mut self) {
        self.timer = Timer::never();
        self.armed = None;
    }
}
