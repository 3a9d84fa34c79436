//! The machine, or its configuration until the session's first poll starts
//! it: one slot for both, since sessions are many and bytes count. Every
//! input goes in and every action comes out here, so the flight recorder
//! (and the tests' action hook) sit here too and see exactly what the
//! machine sees.

use std::sync::Arc;
use std::time::Instant;

use crate::fsm::{Action, CloseReason, Config, ConfigError, Event, Machine, State};

use super::record::{ActionHook, Recorder};

pub(crate) struct CoreSlot {
    core: Core,
    /// Boxed: most sessions record nothing, and then it costs one word.
    flight: Option<Box<Flight>>,
}

enum Core {
    /// The builder's validated configuration (shared by its sessions) and
    /// this session's jitter seed.
    Pending(Arc<Config>, u64),
    Running(Machine),
}

/// What watches the machine, when asked for.
pub(crate) struct Flight {
    /// Records the header and every input.
    pub(crate) recorder: Option<Recorder>,
    /// Sees every action as it is carried out.
    pub(crate) on_action: Option<Arc<ActionHook>>,
}

impl CoreSlot {
    pub(crate) fn new(config: Arc<Config>, seed: u64, flight: Option<Box<Flight>>) -> Self {
        CoreSlot {
            core: Core::Pending(config, seed),
            flight,
        }
    }

    pub(crate) fn machine(&self) -> Option<&Machine> {
        match &self.core {
            Core::Running(m) => Some(m),
            Core::Pending(..) => None,
        }
    }

    fn recorder(&mut self) -> Option<&mut Recorder> {
        self.flight.as_mut().and_then(|f| f.recorder.as_mut())
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
        let Core::Pending(config, seed) = &self.core else {
            return Ok(false);
        };
        let seed = *seed;
        let machine = Machine::with_shared_config(config.clone(), seed, now)?;
        if let Some(recorder) = self.recorder() {
            // The header carries this session's seed, so it replays.
            let config = Config {
                seed,
                ..machine.config().clone()
            };
            recorder.start(&config, now);
        }
        self.core = Core::Running(machine);
        Ok(true)
    }

    /// Hands `event` to the machine at `now` (and to the recorder).
    pub(crate) fn handle(&mut self, event: Event, now: Instant) {
        let Core::Running(m) = &mut self.core else {
            return;
        };
        // A timeout with nothing due leaves the machine untouched (the one
        // timer often fires early): not worth a record.
        let noop = matches!(event, Event::Timeout) && m.due(now).is_none();
        let recorder = self.flight.as_mut().and_then(|f| f.recorder.as_mut());
        if let Some(recorder) = recorder.filter(|_| !noop) {
            recorder.input(&event, now);
        }
        m.handle(event, now);
    }

    /// The session is over: the recorder ends its recording now (the
    /// machine stays, for the handles to read), whoever still holds the
    /// shared state.
    pub(crate) fn finish(&mut self) {
        self.flight = None;
    }

    /// The machine's next action, if any.
    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        let Core::Running(m) = &mut self.core else {
            return None;
        };
        let action = m.poll_action()?;
        if let Some(hook) = self.flight.as_ref().and_then(|f| f.on_action.as_ref()) {
            hook(&action);
        }
        Some(action)
    }
}
