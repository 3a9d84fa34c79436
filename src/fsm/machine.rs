//! `Machine`: the transition function wrapped for drivers — one deadline to
//! sleep on, a queue of actions to drain.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use super::transition::{Lifecycle, apply};
use super::{Action, Attempt, Config, ConfigError, Event, Failure, State, Status, Timer};

/// The lifecycle state machine, ready to be driven.
///
/// Feed it inputs with [`handle`](Self::handle) and
/// [`handle_timeout`](Self::handle_timeout); after **every** input, drain
/// [`poll_action`](Self::poll_action) until it returns `None`, then sleep
/// until [`poll_timeout`](Self::poll_timeout).
#[derive(Debug, Clone)]
pub struct Machine {
    /// Shared: a driver with many sessions keeps one copy (about 370
    /// bytes with the backoff and status lists) instead of one each.
    config: Arc<Config>,
    lifecycle: Lifecycle,
    actions: VecDeque<Action>,
}

impl Machine {
    /// Validates `config` and starts attempt 1 at `now`: the first action is
    /// [`Action::Connect`] for attempt 1.
    pub fn new(config: Config, now: Instant) -> Result<Self, ConfigError> {
        let seed = config.seed;
        Self::with_shared_config(Arc::new(config), seed, now)
    }

    /// Like [`new`](Self::new), with a configuration shared by many
    /// machines; each draws its jitter from its own `seed` (the config's
    /// `seed` is ignored).
    pub fn with_shared_config(
        config: Arc<Config>,
        seed: u64,
        now: Instant,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let (lifecycle, first) = Lifecycle::start_seeded(&config, seed, now);
        // Room for the largest burst of the happy path and of steady state
        // (two: a status change and its hello or flush; a ping is one), so
        // they never allocate; a failure's burst of five grows it once.
        // Two, not more: sessions are many and an action is 40 bytes.
        let mut actions = VecDeque::with_capacity(2);
        actions.push_back(first);
        Ok(Machine {
            config,
            lifecycle,
            actions,
        })
    }

    // ── getters ────────────────────────────────────────────────────────

    /// The current state, with its deadlines.
    pub fn state(&self) -> &State {
        self.lifecycle.state()
    }

    /// The current state's name.
    pub fn status(&self) -> Status {
        self.lifecycle.state().status()
    }

    /// The whole lifecycle: state, counters and jitter generator (feature
    /// `testing`).
    #[cfg(feature = "testing")]
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// The validated configuration. Its `seed` is the one in use only when
    /// built by [`new`](Self::new).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The attempt whose transport is current, if any.
    pub fn attempt(&self) -> Option<Attempt> {
        self.lifecycle.state().transport_attempt()
    }

    /// Whether application data may be sent now (only in Open).
    pub fn can_send(&self) -> bool {
        matches!(self.lifecycle.state(), State::Open { .. })
    }

    /// Whether the session has ended for good.
    pub fn is_closed(&self) -> bool {
        matches!(self.lifecycle.state(), State::Closed { .. })
    }

    /// Whether reading is paused (see [`Event::ReadPaused`]).
    pub fn read_paused(&self) -> bool {
        self.lifecycle.read_paused()
    }

    /// The timer due at `now`, if any: what
    /// [`handle_timeout`](Self::handle_timeout) would fire.
    pub fn due(&self, now: Instant) -> Option<Timer> {
        self.lifecycle.due(now, &self.config)
    }

    /// The failure `event` would report if handled at `now`, if any: a
    /// socket failure of the current attempt in a state where it is one,
    /// or a timeout whose due timer reports one. A driver that lets its
    /// caller judge failures asks this first, and hands the event in with
    /// the caller's verdict ([`Event::judged`]).
    pub fn failure(&self, event: &Event, now: Instant) -> Option<Failure> {
        self.lifecycle.failure(event, now, &self.config)
    }

    // ── inputs ─────────────────────────────────────────────────────────

    /// Applies one event at time `now`. Events of other attempts and events
    /// that do not apply in the current state are ignored.
    pub fn handle(&mut self, event: Event, now: Instant) {
        apply(
            &mut self.lifecycle,
            event,
            now,
            &self.config,
            &mut self.actions,
        );
    }

    /// Fires whatever deadline is due at `now`. Calling it early (before
    /// [`poll_timeout`](Self::poll_timeout)) does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.due(now).is_some() {
            self.handle(Event::Timeout, now);
        }
    }

    // ── outputs ────────────────────────────────────────────────────────

    /// The next action to carry out, in order; `None` when drained.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The one instant the driver must wake at and call
    /// [`handle_timeout`](Self::handle_timeout); `None` once Closed, and
    /// while reading is paused in AwaitingAck or Reconnecting (their timers
    /// wait for the consumer then, not for the clock). After it fires, the
    /// next deadline is strictly later.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.lifecycle.deadline(&self.config)
    }
}
