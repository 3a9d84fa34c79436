//! Exact replay of a recorded session.
//!
//! A flight recorder (the driver's `ClientBuilder::record_to`) writes the
//! [`Config`] a machine started with, the seed it actually used among it,
//! then every input the machine received with its time since the start.
//! Since the machine is a pure function of its config, its inputs and
//! their times, feeding the same inputs at the same offsets from any base
//! [`Instant`] yields the very same actions and states: [`Replay`] does
//! that, one [`Step`] per record. This module only knows typed records;
//! the file format is the driver's
//! ([`parse_recording`](crate::parse_recording) reads it).
//!
//! ```
//! use std::time::{Duration, Instant, SystemTime};
//! use ws_lifecycle::fsm::{Action, Event, Record, Recording};
//! use ws_lifecycle::{Config, Status};
//!
//! let mut recording = Recording::new(Config { jitter: 0.0, ..Config::default() });
//! recording.records = vec![
//!     Record::Input { at: Duration::from_millis(3), event: Event::SocketOpened { attempt: 1 } },
//!     Record::Input { at: Duration::from_millis(9), event: Event::TransportLost { attempt: 1 } },
//! ];
//! let mut replay = recording.replay(Instant::now()).unwrap();
//! let actions = replay.finish();
//! assert_eq!(replay.machine().status(), Status::Reconnecting);
//! assert!(actions.contains(&Action::ReconnectScheduled {
//!     attempt: 2,
//!     delay: Duration::from_secs(1),
//! }));
//! ```

use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use super::{Action, Config, ConfigError, Event, Machine, Status, Timer, time};

/// One record of a recording, after its header.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// An input the machine received `at` after it started.
    Input {
        /// Time since the machine started (exact to the nanosecond).
        at: Duration,
        /// The input, as the machine received it (a caller's verdict
        /// included: [`Event::Judged`]).
        event: Event,
    },
    /// The recorder's buffer was full and `dropped` inputs were lost here:
    /// from this point on the replay is no longer exact.
    Gap {
        /// How many inputs were lost.
        dropped: u64,
    },
}

/// A recorded session: the configuration the machine started with (the
/// seed it used among it), its records in order, and what the recording's
/// header says about where it came from (information only: the replay
/// needs none of it).
///
/// [`parse_recording`](crate::parse_recording) reads them from a flight
/// recorder's file, one per run; [`Recording::new`] starts one by hand.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// The configuration, seed included.
    pub config: Config,
    /// Every record, in the order the machine received them.
    pub records: Vec<Record>,
    /// The version of this crate that wrote it.
    pub crate_version: String,
    /// The wall-clock time at which the machine started: a record's wall
    /// time is this plus its offset (`UNIX_EPOCH` when unknown).
    pub started: SystemTime,
    /// The broker's URL, without user info or query, as logged (empty when
    /// unknown).
    pub url: String,
}

impl Recording {
    /// An empty recording of a machine started with `config`, made here:
    /// this crate's version, no start time, no URL.
    pub fn new(config: Config) -> Self {
        Recording {
            config,
            records: Vec::new(),
            crate_version: env!("CARGO_PKG_VERSION").to_owned(),
            started: SystemTime::UNIX_EPOCH,
            url: String::new(),
        }
    }

    /// Starts a replay with the machine's start at `base` (any instant:
    /// only offsets matter). Fails only when the recorded config is
    /// invalid, which a machine that ran never has.
    pub fn replay(&self, base: Instant) -> Result<Replay<'_>, ConfigError> {
        Replay::new(self, base)
    }
}

/// What one record did to the machine. Its `Display` is one line a person
/// can read: `+12.003214s Open --Timeout(stale)--> Reconnecting: …`.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The machine started (attempt 1); its first actions.
    Start {
        /// What the machine asked for at once (`Connect` for attempt 1).
        actions: Vec<Action>,
    },
    /// An input was applied: when, what, which timer it fired, the status
    /// before and after, and every action it produced, in order.
    Input {
        /// Time since the machine started.
        at: Duration,
        /// The input.
        event: Event,
        /// For a timeout (bare or judged): the timer that fired; `None`
        /// when none was due (the timeout did nothing).
        fired: Option<Timer>,
        /// The status before the input.
        from: Status,
        /// The status after it.
        to: Status,
        /// The actions it produced, in order.
        actions: Vec<Action>,
    },
    /// Inputs were lost here ([`Record::Gap`]).
    Gap {
        /// How many.
        dropped: u64,
    },
}

impl Step {
    /// The actions this step produced (none for a gap).
    pub fn actions(&self) -> &[Action] {
        match self {
            Step::Start { actions } | Step::Input { actions, .. } => actions,
            Step::Gap { .. } => &[],
        }
    }

    /// Whether the step changed anything a reader cares about: an input
    /// that changed the status or produced an action (activity on an Open
    /// link, for one, does not); the start and a gap always do.
    pub fn is_eventful(&self) -> bool {
        match self {
            Step::Input {
                from, to, actions, ..
            } => from != to || !actions.is_empty(),
            Step::Start { .. } | Step::Gap { .. } => true,
        }
    }
}

/// A replay in progress: an iterator of [`Step`]s, the first being
/// [`Step::Start`]. The machine is there to look at between steps and
/// after the last.
#[derive(Debug)]
pub struct Replay<'a> {
    machine: Machine,
    base: Instant,
    start: Option<Vec<Action>>,
    records: std::slice::Iter<'a, Record>,
    dropped: u64,
}

impl<'a> Replay<'a> {
    /// See [`Recording::replay`].
    pub fn new(recording: &'a Recording, base: Instant) -> Result<Self, ConfigError> {
        let mut machine = Machine::new(recording.config.clone(), base)?;
        let start = std::iter::from_fn(|| machine.poll_action()).collect();
        Ok(Replay {
            machine,
            base,
            start: Some(start),
            records: recording.records.iter(),
            dropped: 0,
        })
    }

    /// The machine as the steps so far left it.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// Inputs lost in the gaps so far: when not 0, what follows the first
    /// gap is not exact.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Runs the remaining steps and returns their actions, in order (the
    /// start's included when it had not been taken yet). Afterwards
    /// [`machine`](Self::machine) is the machine at the end, whose state is
    /// the session's last, and [`dropped`](Self::dropped) counts every gap.
    pub fn finish(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        for step in self.by_ref() {
            actions.extend_from_slice(step.actions());
        }
        actions
    }

    fn apply(&mut self, at: Duration, event: &Event) -> Step {
        // Only overflows an `Instant` centuries away; never panics.
        let now = time::deadline(self.base, at);
        let from = self.machine.status();
        let fired = match event {
            Event::Timeout => self.machine.due(now),
            Event::Judged { event, .. } if **event == Event::Timeout => self.machine.due(now),
            _ => None,
        };
        self.machine.handle(event.clone(), now);
        Step::Input {
            at,
            event: event.clone(),
            fired,
            from,
            to: self.machine.status(),
            actions: std::iter::from_fn(|| self.machine.poll_action()).collect(),
        }
    }
}

impl Iterator for Replay<'_> {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        if let Some(actions) = self.start.take() {
            return Some(Step::Start { actions });
        }
        Some(match self.records.next()? {
            Record::Input { at, event } => self.apply(*at, event),
            Record::Gap { dropped } => {
                self.dropped = self.dropped.saturating_add(*dropped);
                Step::Gap { dropped: *dropped }
            }
        })
    }
}

// ── reading a step ─────────────────────────────────────────────────────

/// `+12.003214s Open --Timeout(stale)--> Reconnecting: SendClose#3(1001
/// "…"), …`: one line a person can read.
impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Start { actions } => {
                f.write_str("+0.000000s start")?;
                for (n, a) in actions.iter().enumerate() {
                    f.write_str(if n == 0 { ": " } else { ", " })?;
                    action(f, a)?;
                }
                Ok(())
            }
            Step::Input {
                at,
                event: e,
                fired,
                from,
                to,
                actions,
            } => {
                write!(f, "+{:.6}s {} --", at.as_secs_f64(), from.name())?;
                event(f, e, *fired)?;
                write!(f, "--> {}", to.name())?;
                for (n, a) in actions.iter().enumerate() {
                    f.write_str(if n == 0 { ": " } else { ", " })?;
                    action(f, a)?;
                }
                Ok(())
            }
            Step::Gap { dropped } => {
                write!(f, "[gap: {dropped} inputs lost; what follows is not exact]")
            }
        }
    }
}

fn event(f: &mut fmt::Formatter<'_>, event: &Event, fired: Option<Timer>) -> fmt::Result {
    match event {
        Event::Judged { verdict, event: e } => {
            write!(f, "Judged({verdict}: ")?;
            self::event(f, e, fired)?;
            f.write_str(")")
        }
        Event::Timeout => match fired {
            Some(timer) => write!(f, "Timeout({timer})"),
            None => f.write_str("Timeout(nothing due)"),
        },
        Event::ConnectFailed { attempt, failure } => {
            write!(f, "ConnectFailed#{attempt}({failure:?})")
        }
        Event::PeerClosed {
            attempt,
            code,
            reason,
        } => write!(f, "PeerClosed#{attempt}({code} {reason:?})"),
        Event::ProtocolError { attempt, code } => write!(f, "ProtocolError#{attempt}({code})"),
        Event::Close { code, reason } => write!(f, "Close({code} {reason:?})"),
        other => match other.attempt() {
            Some(attempt) => write!(f, "{}#{attempt}", other.name()),
            None => f.write_str(other.name()),
        },
    }
}

fn action(f: &mut fmt::Formatter<'_>, action: &Action) -> fmt::Result {
    let name = action.name();
    match action {
        Action::SendClose {
            attempt,
            code,
            reason,
        } => write!(f, "{name}#{attempt}({code} {reason:?})"),
        Action::StatusChanged {
            to, cause, attempt, ..
        } => write!(f, "{name}#{attempt}(to {to}, cause {cause})"),
        Action::Disconnected {
            attempt,
            code,
            reason,
        } => write!(f, "{name}#{attempt}({code} {reason:?})"),
        Action::ReconnectScheduled { attempt, delay } => {
            write!(f, "{name}#{attempt}(in {delay:?})")
        }
        Action::Connect { attempt }
        | Action::SendHello { attempt }
        | Action::FlushQueue { attempt }
        | Action::SendPing { attempt }
        | Action::DropTransport { attempt } => write!(f, "{name}#{attempt}"),
    }
}
