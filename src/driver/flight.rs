//! What watches a session's machine, when asked for: the flight recorder
//! (every input) and the tests' action hook (every action).

use std::sync::Arc;
use std::time::Instant;

use crate::fsm::session::Watch;
use crate::fsm::{Action, Config, Event};

use super::record::{ActionHook, Recorder};

pub(crate) struct Flight {
    /// Records the header and every input.
    pub(crate) recorder: Option<Recorder>,
    /// Sees every action as it is carried out.
    pub(crate) on_action: Option<Arc<ActionHook>>,
}

impl Watch for Flight {
    fn started(&mut self, config: &Config, now: Instant) {
        if let Some(recorder) = self.recorder.as_mut() {
            recorder.start(config, now);
        }
    }

    fn input(&mut self, event: &Event, now: Instant) {
        if let Some(recorder) = self.recorder.as_mut() {
            recorder.input(event, now);
        }
    }

    fn action(&mut self, action: &Action) {
        if let Some(hook) = self.on_action.as_ref() {
            hook(action);
        }
    }
}
