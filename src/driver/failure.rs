//! The driver's part of the failure policy: the caller's predicate, asked
//! for each failure, whose verdict goes to the core inside the event
//! ([`Event::Judged`]).

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use crate::fsm::Event;

use super::shared::Shared;
use super::spec::Spec;

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
