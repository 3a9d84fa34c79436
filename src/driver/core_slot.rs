//! The machine, or its configuration until the session's first poll starts
//! it: one slot for both, since sessions are many and bytes count.

use std::time::Instant;

use crate::fsm::{CloseReason, Config, ConfigError, Machine, State};

pub(crate) enum CoreSlot {
    Pending(Config),
    Running(Machine),
}

impl CoreSlot {
    pub(crate) fn machine(&self) -> Option<&Machine> {
        match self {
            CoreSlot::Running(m) => Some(m),
            CoreSlot::Pending(_) => None,
        }
    }

    pub(crate) fn machine_mut(&mut self) -> Option<&mut Machine> {
        match self {
            CoreSlot::Running(m) => Some(m),
            CoreSlot::Pending(_) => None,
        }
    }

    /// Why the machine ended, once it is Closed.
    pub(crate) fn closed_reason(&self) -> Option<CloseReason> {
        match self.machine().map(Machine::state) {
            Some(State::Closed { reason }) => Some(reason.clone()),
            _ => None,
        }
    }

    /// Starts the machine at `now` unless it runs already; `Ok(true)` when
    /// it started now (its first action, `Connect`, waits to be drained).
    pub(crate) fn start(&mut self, now: Instant) -> Result<bool, ConfigError> {
        let CoreSlot::Pending(config) = self else {
            return Ok(false);
        };
        *self = CoreSlot::Running(Machine::new(std::mem::take(config), now)?);
        Ok(true)
    }
}
