//! The driver's part of the failure policy: the caller's predicate, asked
//! for each failure, whose verdict goes to the core inside the event
//! ([`Event::Judged`]), and the connect deadline told as a connect error.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use crate::fsm::{Attempt, Event, Machine, Timer};

use super::shared::Shared;
use super::spec::Spec;
use super::transport::error::ConnectError;

/// When the connect deadline is what fires at `now`: the attempt and its
/// error, so the caller sees a connect failure like the others.
pub(crate) fn deadline_failure(m: &Machine, now: Instant) -> Option<(Attempt, ConnectError)> {
    let attempt = m.attempt()?;
    (m.due(now) == Some(Timer::Connect)).then(|| {
        let after = m.config().connect_timeout;
        (attempt, ConnectError::Deadline { after })
    })
}

impl Shared {
    /// The caller's failure policy on `event`, when it is a failure whose
    /// verdict the policy changes: the answer goes to the machine with the
    /// event (`Judged`, recorded with it, so a replay needs no closure).
    /// The caller's predicate runs outside the lock; a panic in it keeps
    /// the default.
    pub(crate) fn judge(&self, spec: &Spec, event: Event, now: Instant) -> Event {
        let Some(policy) = spec.failure_policy.as_deref() else {
            return event;
        };
        // Never a failure (the core says which events report one; a
        // timeout's depends on the state), and the most frequent is one
        // (`Activity`, every read pass): no lock.
        if !matches!(event, Event::Timeout) && event.failure().is_none() {
            return event;
        }
        let Some((failure, default)) = self.lock().core.failure(&event, now) else {
            return event;
        };
        let verdict = std::panic::catch_unwind(AssertUnwindSafe(|| policy(&failure, default)))
            .unwrap_or(default);
        match verdict == default {
            true => event,
            false => event.judged(verdict),
        }
    }
}
