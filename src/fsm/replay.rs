//! Exact replay of a recorded session.
//!
//! A flight recorder (the driver's `ClientBuilder::record_to`) writes the
//! [`Config`] a machine started with, the seed it actually used among it,
//! then every input the machine received with its time since the start.
//! Since the machine is a pure function of its config, its inputs and
//! their times, feeding the same inputs at the same offsets from any base
//! [`Instant`] yields the very same actions and states: [`Replay`] does
//! that, one [`Step`] per record. This module only knows typed records;
//! the file format is the driver's.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ws_lifecycle::fsm::{Action, Config, Event, Record, Recording, Status};
//!
//! let recording = Recording {
//!     config: Config { jitter: 0.0, ..Config::default() },
//!     records: vec![
//!         Record::Input { at: Duration::from_millis(3), event: Event::SocketOpened { attempt: 1 } },
//!         Record::Input { at: Duration::from_millis(9), event: Event::TransportLost { attempt: 1 } },
//!     ],
//! };
//! let replayed = recording.replay(Instant::now()).unwrap().finish();
//! assert_eq!(replayed.machine.status(), Status::Reconnecting);
//! assert!(replayed.actions.contains(&Action::ReconnectScheduled {
//!     attempt: 2,
//!     delay: Duration::from_secs(1),
//! }));
//! ```

use std::fmt;
use std::time::{Duration, Instant};

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
/// seed it used among it) and its records, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// The configuration, seed included.
    pub config: Config,
    /// Every record, in the order the machine received them.
    pub records: Vec<Record>,
}

impl Recording {
    /// Starts a replay with the machine's start at `base` (any instant:
    /// only offsets matter). Fails only when the recorded config is
    /// invalid, which a machine that ran never has.
    pub fn replay(&self, base: Instant) -> Result<Replay<'_>, ConfigError> {
        Replay::new(self, base)
    }
}

/// What one record did to the machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The machine started (attempt 1); its first actions.
    Start {
        /// What the machine asked for at once (`Connect` for attempt 1).
        actions: Vec<Action>,
    },
    /// An input was applied.
    Input(Applied),
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
            Step::Start { actions } | Step::Input(Applied { actions, .. }) => actions,
            Step::Gap { .. } => &[],
        }
    }
}

/// One input applied: when, what, which timer it fired, the status before
/// and after, and every action it produced, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// Time since the machine started.
    pub at: Duration,
    /// The input.
    pub event: Event,
    /// For a timeout (bare or judged): the timer that fired; `None` when
    /// none was due (the timeout did nothing).
    pub fired: Option<Timer>,
    /// The status before the input.
    pub from: Status,
    /// The status after it.
    pub to: Status,
    /// The actions it produced, in order.
    pub actions: Vec<Action>,
}

impl Applied {
    /// Whether the input changed anything a reader cares about: a status
    /// change or any action. (Activity on an Open link, for one, does not.)
    pub fn is_eventful(&self) -> bool {
        self.from != self.to || !self.actions.is_empty()
    }
}

/// A replay in progress: an iterator of [`Step`]s, the first being
/// [`Step::Start`]. The machine is there to look at between steps.
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

    /// Runs the remaining steps; returns every action (the start's
    /// included) and the machine at the end.
    pub fn finish(mut self) -> Replayed {
        let mut actions = Vec::new();
        for step in self.by_ref() {
            actions.extend_from_slice(step.actions());
        }
        Replayed {
            actions,
            dropped: self.dropped,
            machine: self.machine,
        }
    }

    fn apply(&mut self, at: Duration, event: &Event) -> Applied {
        // Only overflows an `Instant` centuries away; never panics.
        let now = time::deadline(self.base, at);
        let from = self.machine.status();
        let fired = match event {
            Event::Timeout => self.machine.due(now),
            Event::Judged { event, .. } if **event == Event::Timeout => self.machine.due(now),
            _ => None,
        };
        self.machine.handle(event.clone(), now);
        Applied {
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
            Record::Input { at, event } => Step::Input(self.apply(*at, event)),
            Record::Gap { dropped } => {
                self.dropped = self.dropped.saturating_add(*dropped);
                Step::Gap { dropped: *dropped }
            }
        })
    }
}

/// A whole replay's outcome ([`Replay::finish`]).
#[derive(Debug, Clone)]
pub struct Replayed {
    /// Every action, in order, the start's included.
    pub actions: Vec<Action>,
    /// Inputs lost in gaps (0: the replay is exact).
    pub dropped: u64,
    /// The machine after the last input: its state is the session's last.
    pub machine: Machine,
}

// ── reading a step ─────────────────────────────────────────────────────

/// `+12.003214s Open --Timeout(stale)--> Reconnecting: SendClose#3(1001
/// "…"), …`: one line a person can read.
impl fmt::Display for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{:.6}s {} --", self.at.as_secs_f64(), self.from.name())?;
        event(f, &self.event, self.fired)?;
        write!(f, "--> {}", self.to.name())?;
        for (n, action) in self.actions.iter().enumerate() {
            f.write_str(if n == 0 { ": " } else { ", " })?;
            self::action(f, action)?;
        }
        Ok(())
    }
}

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
            Step::Input(applied) => applied.fmt(f),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsm::{CloseReason, CloseRule, ConnectFailure, RejectedBy, Verdict};
    use std::io;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn input(at: u64, event: Event) -> Record {
        Record::Input { at: ms(at), event }
    }

    /// A flapping session with jitter, a judged failure and a terminal close.
    fn recording(seed: u64) -> Recording {
        Recording {
            config: Config {
                terminal_closes: vec![CloseRule::code(4001)],
                seed,
                ..Config::default()
            },
            records: vec![
                input(1, Event::SocketOpened { attempt: 1 }),
                input(2, Event::Ack { attempt: 1 }),
                input(50, Event::Activity { attempt: 1 }),
                input(60, Event::TransportLost { attempt: 1 }),
                input(1_000, Event::Timeout),
                input(
                    1_001,
                    Event::ConnectFailed {
                        attempt: 2,
                        failure: ConnectFailure::Io(io::ErrorKind::ConnectionRefused),
                    }
                    .judged(Verdict::RetryAfter(ms(700))),
                ),
                input(5_000, Event::Timeout),
                input(5_001, Event::SocketOpened { attempt: 3 }),
                input(5_002, Event::Ack { attempt: 3 }),
                input(
                    5_003,
                    Event::PeerClosed {
                        attempt: 3,
                        code: 4001,
                        reason: "banned".into(),
                    },
                ),
            ],
        }
    }

    /// What a driver would have seen: the same inputs at `base + at`.
    fn direct(recording: &Recording, base: Instant) -> (Vec<Action>, Machine) {
        let mut m = Machine::new(recording.config.clone(), base).unwrap();
        let mut actions: Vec<Action> = std::iter::from_fn(|| m.poll_action()).collect();
        for record in &recording.records {
            if let Record::Input { at, event } = record {
                m.handle(event.clone(), base + *at);
                actions.extend(std::iter::from_fn(|| m.poll_action()));
            }
        }
        (actions, m)
    }

    #[test]
    fn a_replay_from_any_base_repeats_the_run_exactly() {
        let recording = recording(42);
        let (actions, machine) = direct(&recording, Instant::now());
        // A base a day later: only offsets matter.
        let later = Instant::now() + Duration::from_secs(86_400);
        let replayed = recording.replay(later).unwrap().finish();
        assert_eq!(replayed.actions, actions);
        assert_eq!(replayed.dropped, 0);
        assert_eq!(replayed.machine.status(), machine.status());
        assert_eq!(
            replayed.machine.state(),
            &crate::fsm::State::Closed {
                reason: CloseReason::Rejected {
                    by: RejectedBy::Close {
                        code: 4001,
                        reason: "banned".into()
                    }
                }
            }
        );
    }

    #[test]
    fn the_seed_decides_the_jittered_delays() {
        let delays = |seed| {
            let replayed = recording(seed).replay(Instant::now()).unwrap().finish();
            replayed
                .actions
                .into_iter()
                .filter(|a| matches!(a, Action::ReconnectScheduled { .. }))
                .collect::<Vec<_>>()
        };
        assert_eq!(delays(7), delays(7));
        assert_ne!(delays(7), delays(8));
    }

    #[test]
    fn steps_name_the_timer_that_fired_and_the_statuses() {
        let recording = recording(1);
        let mut replay = recording.replay(Instant::now()).unwrap();
        assert_eq!(
            replay.next(),
            Some(Step::Start {
                actions: vec![Action::Connect { attempt: 1 }]
            })
        );
        let steps: Vec<Applied> = replay
            .filter_map(|s| match s {
                Step::Input(a) => Some(a),
                _ => None,
            })
            .collect();
        let lost = &steps[3];
        assert_eq!((lost.from, lost.to), (Status::Open, Status::Reconnecting));
        assert_eq!(steps[4].fired, Some(Timer::Retry));
        assert!(!steps[2].is_eventful(), "activity on an open link");
        let line = lost.to_string();
        assert!(
            line.starts_with("+0.060000s Open --TransportLost#1--> Reconnecting: "),
            "{line}"
        );
        assert!(line.contains("ReconnectScheduled#2(in "), "{line}");
        let judged = steps[5].to_string();
        assert!(
            judged.contains("Judged(retry after 700ms: ConnectFailed#2(Io(ConnectionRefused)))"),
            "{judged}"
        );
    }

    #[test]
    fn a_judged_timeout_names_its_timer_and_other_judged_events_none() {
        // Connect timer: 10 s. A judged failure arriving after it is due still
        // fired no timer; a judged timeout did.
        let recording = Recording {
            config: Config::default(),
            records: vec![
                input(
                    11_000,
                    Event::ConnectFailed {
                        attempt: 1,
                        failure: ConnectFailure::Io(io::ErrorKind::ConnectionRefused),
                    }
                    .judged(Verdict::Retry),
                ),
                input(60_000, Event::Timeout),
                input(70_001, Event::Timeout.judged(Verdict::Retry)),
            ],
        };
        let steps: Vec<Step> = recording.replay(Instant::now()).unwrap().collect();
        assert_eq!(steps[0].to_string(), "+0.000000s start: Connect#1");
        let applied = |n: usize| match &steps[n] {
            Step::Input(a) => a.clone(),
            other => panic!("step {n} is {other:?}"),
        };
        assert_eq!(applied(1).fired, None, "a judged connect failure");
        assert_eq!(applied(2).fired, Some(Timer::Retry));
        assert_eq!(applied(3).fired, Some(Timer::Connect), "a judged timeout");
        assert!(
            applied(3)
                .to_string()
                .contains("Judged(retry: Timeout(connect))")
        );
    }

    #[test]
    fn a_step_with_actions_and_no_status_change_is_eventful() {
        let recording = Recording {
            config: Config::default(),
            records: vec![
                input(1, Event::SocketOpened { attempt: 1 }),
                input(2, Event::Ack { attempt: 1 }),
                input(30_002, Event::Timeout),
                input(30_003, Event::Activity { attempt: 1 }),
            ],
        };
        let steps: Vec<Applied> = recording
            .replay(Instant::now())
            .unwrap()
            .filter_map(|s| match s {
                Step::Input(a) => Some(a),
                _ => None,
            })
            .collect();
        assert!(steps[1].is_eventful(), "AwaitingAck -> Open");
        let ping = &steps[2];
        assert_eq!(
            (ping.from, ping.to, ping.fired),
            (Status::Open, Status::Open, Some(Timer::Ping))
        );
        assert_eq!(ping.actions, vec![Action::SendPing { attempt: 1 }]);
        assert!(ping.is_eventful(), "a ping went out");
        assert!(!steps[3].is_eventful());
    }

    #[test]
    fn gaps_are_counted_and_the_replay_goes_on() {
        let mut recording = recording(3);
        recording.records.insert(2, Record::Gap { dropped: 5 });
        recording.records.push(Record::Gap { dropped: 2 });
        let mut replay = recording.replay(Instant::now()).unwrap();
        let steps: Vec<Step> = replay.by_ref().collect();
        assert_eq!(replay.dropped(), 7);
        assert_eq!(steps[3], Step::Gap { dropped: 5 });
        assert!(steps[3].actions().is_empty());
        assert!(steps[3].to_string().contains("5 inputs lost"));
        assert!(replay.machine().is_closed());
    }

    #[test]
    fn a_bad_config_is_an_error_and_odd_times_do_not_panic() {
        let bad = Recording {
            config: Config {
                backoff: Vec::new(),
                ..Config::default()
            },
            records: Vec::new(),
        };
        assert_eq!(
            bad.replay(Instant::now()).err(),
            Some(ConfigError::EmptyBackoff)
        );
        // Times going backwards, and the largest offset a record can hold.
        let odd = Recording {
            config: Config::default(),
            records: vec![
                input(10_000, Event::SocketOpened { attempt: 1 }),
                input(5, Event::Timeout),
                Record::Input {
                    at: Duration::from_nanos(u64::MAX),
                    event: Event::Timeout,
                },
            ],
        };
        let replayed = odd.replay(Instant::now()).unwrap().finish();
        assert!(!replayed.actions.is_empty());
    }
}
