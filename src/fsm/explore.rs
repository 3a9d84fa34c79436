//! Breadth-first exploration of the transition function: from the initial
//! state, apply every event (any armed timer may fire) and visit every
//! reachable abstract state. The diagram and the exhaustive test are both
//! built on it, so the picture cannot drift from the code.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::{
    Action, Cause, CloseRule, Config, ConnectFailure, Event, Lifecycle, State, Status, Verdict,
    step,
};

/// The close code [`exploration_config`] treats as terminal.
pub const TERMINAL_CODE: u16 = 4001;

/// The close code [`exploration_config`] treats as terminal only with a
/// reason starting with [`TERMINAL_PREFIX`].
pub const PREFIX_CODE: u16 = 1008;

/// The reason prefix of [`PREFIX_CODE`]'s rule.
pub const TERMINAL_PREFIX: &str = "unauthorized";

/// The `Retry-After` hint of the explored 503 answer.
pub const RETRY_AFTER: Duration = Duration::from_secs(2);

/// A refused TCP connect: the plain connect failure of the exploration.
pub const REFUSED: ConnectFailure = ConnectFailure::Io(std::io::ErrorKind::ConnectionRefused);

/// The jitter seed of [`exploration_config`].
pub const EXPLORATION_SEED: u64 = 0x5eed_f11e;

/// A concrete point of the exploration: a lifecycle and the virtual time.
#[derive(Debug, Clone)]
pub struct Point {
    /// The lifecycle at this point.
    pub lifecycle: Lifecycle,
    /// The virtual clock at this point.
    pub now: Instant,
}

/// The abstraction that makes the space finite: the state's name, the
/// backoff step, the attempt budget step, whether the Open connection is
/// already stable, how much of the time budget is spent (in sixteenths),
/// whether reading is paused, and whether a wake probe runs.
pub type AbstractState = (Status, u32, u32, bool, u32, bool, bool);

/// What an exploration found.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// Distinct abstract states reached.
    pub states: usize,
    /// (state, event) pairs applied, ignored ones included.
    pub transitions: usize,
    /// Edges that did something, by (from, to), with their distinct labels.
    pub edges: BTreeMap<(Status, Status), BTreeSet<String>>,
}

/// A small configuration that reaches every edge quickly: three backoff
/// steps, an attempt budget of 5, a time budget of 30 s, close code
/// [`TERMINAL_CODE`] terminal, [`PREFIX_CODE`] terminal with a reason
/// starting with [`TERMINAL_PREFIX`], and a pinned seed. Timings and the
/// HTTP policy are the defaults.
pub fn exploration_config() -> Config {
    Config {
        backoff: [1, 2, 4].into_iter().map(Duration::from_secs).collect(),
        terminal_closes: vec![
            CloseRule::code(TERMINAL_CODE),
            CloseRule::code_with_prefix(PREFIX_CODE, TERMINAL_PREFIX),
        ],
        max_attempts: Some(5),
        max_unstable: Some(Duration::from_secs(30)),
        // Pinned, so a change of the default seed cannot silently change
        // the committed diagram's statistics.
        seed: EXPLORATION_SEED,
        ..Config::default()
    }
}

/// Every event worth trying at `point`: each socket event for the current
/// attempt and for a stale one (a refused connect, a 503 with
/// `Retry-After`, a 403; a normal close, closes matching and missing the
/// terminal rules), each caller command, a read pause and resume, a
/// wake-up from a suspend ([`Event::Woke`]), the
/// timeout at the earliest running deadline, and caller verdicts (a lost
/// transport and a timeout judged terminal, a 403 judged retried, a refused
/// connect judged "retry after 5 s"). Returns (event, time to apply it at).
pub fn events_at(point: &Point, config: &Config) -> Vec<(Event, Instant)> {
    let state = point.lifecycle.state();
    let current = match state {
        State::Reconnecting { next_attempt, .. } => *next_attempt,
        other => other.transport_attempt().unwrap_or(1),
    };
    // Caller and socket events happen a moment later, so activity visibly
    // moves the stale deadline.
    let later = point.now + Duration::from_millis(1);
    let mut events = Vec::new();
    for attempt in [current, current.saturating_sub(1)] {
        events.extend(
            [
                Event::SocketOpened { attempt },
                Event::ConnectFailed {
                    attempt,
                    failure: REFUSED,
                },
                Event::ConnectFailed {
                    attempt,
                    failure: ConnectFailure::Http {
                        status: 503,
                        retry_after: Some(RETRY_AFTER),
                    },
                },
                Event::ConnectFailed {
                    attempt,
                    failure: ConnectFailure::Http {
                        status: 403,
                        retry_after: None,
                    },
                },
                Event::HelloFailed { attempt },
                Event::Ack { attempt },
                Event::Activity { attempt },
                Event::PeerClosed {
                    attempt,
                    code: 1000,
                    reason: "bye".into(),
                },
                Event::PeerClosed {
                    attempt,
                    code: TERMINAL_CODE,
                    reason: "banned".into(),
                },
                Event::PeerClosed {
                    attempt,
                    code: PREFIX_CODE,
                    reason: format!("{TERMINAL_PREFIX}: token expired"),
                },
                Event::PeerClosed {
                    attempt,
                    code: PREFIX_CODE,
                    reason: "capacity".into(),
                },
                Event::TransportLost { attempt },
                Event::TransportLost { attempt }.judged(Verdict::Terminal),
                Event::ConnectFailed {
                    attempt,
                    failure: ConnectFailure::Http {
                        status: 403,
                        retry_after: None,
                    },
                }
                .judged(Verdict::Retry),
                Event::ConnectFailed {
                    attempt,
                    failure: REFUSED,
                }
                .judged(Verdict::RetryAfter(Duration::from_secs(5))),
                Event::MessageTooBig { attempt },
                Event::ProtocolError {
                    attempt,
                    code: 1002,
                },
                Event::ProtocolError {
                    attempt,
                    code: 1007,
                },
            ]
            .map(|e| (e, later)),
        );
    }
    events.push((
        Event::Close {
            code: 1000,
            reason: String::new(),
        },
        later,
    ));
    events.push((Event::ReconnectNow, later));
    events.push((Event::ReadPaused, later));
    events.push((Event::ReadResumed, later));
    events.push((Event::Woke, later));
    if let Some(deadline) = point.lifecycle.deadline(config) {
        let at = deadline.max(point.now);
        events.push((Event::Timeout, at));
        events.push((Event::Timeout.judged(Verdict::Terminal), at));
    }
    events
}

/// The abstract state of `point` (see [`AbstractState`]).
pub fn abstract_state(point: &Point, config: &Config) -> AbstractState {
    let lc = &point.lifecycle;
    let stable = match *lc.state() {
        State::Open { since, .. } => point.now >= super::time::deadline(since, config.stable_after),
        _ => false,
    };
    let eighths = match config.max_unstable {
        Some(max) if !max.is_zero() => {
            let spent = point.now.saturating_duration_since(lc.unstable_since());
            ((spent.as_nanos() * 16 / max.as_nanos()).min(17)) as u32
        }
        _ => 0,
    };
    let cap = config.backoff.len() as u32 + 1;
    let budget_cap = config.max_attempts.unwrap_or(cap).saturating_add(1);
    (
        lc.state().status(),
        lc.failures().min(cap),
        lc.attempts_since_stable().min(budget_cap),
        stable,
        eighths,
        lc.read_paused(),
        matches!(lc.state(), State::Open { probe: Some(_), .. }),
    )
}

/// Whether, under [`Config::ping_when_idle`], Open's next ping would be
/// skipped: an inbound frame came after the ping deadline was set, so it
/// falls within the last ping interval when the deadline comes. Always
/// `false` without the option. The exploration tells such points apart
/// from their [`abstract_state`] twins, so the skipping edge is reached; the
/// option off, it adds nothing (the default graph is unchanged).
pub fn ping_skip_pending(point: &Point, config: &Config) -> bool {
    match *point.lifecycle.state() {
        State::Open {
            last_activity,
            next_ping,
            ..
        } if config.ping_when_idle => {
            super::time::deadline(last_activity, config.ping_interval) > next_ping
        }
        _ => false,
    }
}

/// The diagram label of one edge: the event (with the cause where the event
/// alone is ambiguous) and the actions other than the status notice.
pub fn label(event: &Event, actions: &[Action]) -> String {
    let cause = actions.iter().find_map(|a| match a {
        Action::StatusChanged { cause, .. } => Some(*cause),
        _ => None,
    });
    // A caller's verdict is named only where it decided the edge (a
    // rejection); elsewhere the edge is the plain event's.
    let (mut text, event) = match event {
        Event::Judged { verdict, event } if cause == Some(Cause::Rejected) => {
            (format!("{} judged {verdict}", event.name()), &**event)
        }
        Event::Judged { event, .. } => (event.name().to_owned(), &**event),
        other => (other.name().to_owned(), other),
    };
    if let Some(cause) = cause {
        let ambiguous = matches!(event, Event::Timeout | Event::PeerClosed { .. })
            || matches!(cause, Cause::GaveUp | Cause::Rejected);
        if ambiguous {
            text.push_str(" [");
            text.push_str(cause.as_str());
            text.push(']');
        }
    }
    let commands: Vec<&str> = actions
        .iter()
        .filter(|a| !matches!(a, Action::StatusChanged { .. }))
        .map(Action::name)
        .collect();
    if !commands.is_empty() {
        text.push_str(" / ");
        text.push_str(&commands.join(", "));
    }
    text
}

/// Explores from the initial state at `origin`, calling `visit(before,
/// event, after, actions)` for every (state, event) pair applied. Returns the
/// graph of edges that changed something.
pub fn explore(
    config: &Config,
    origin: Instant,
    mut visit: impl FnMut(&Point, &Event, &Point, &[Action]),
) -> Graph {
    let (lifecycle, _) = Lifecycle::start(config, origin);
    let start = Point {
        lifecycle,
        now: origin,
    };
    let key = |point: &Point| {
        (
            abstract_state(point, config),
            ping_skip_pending(point, config),
        )
    };
    let mut seen: HashSet<(AbstractState, bool)> = HashSet::new();
    let mut queue = VecDeque::new();
    seen.insert(key(&start));
    queue.push_back(start);
    let mut graph = Graph::default();
    while let Some(point) = queue.pop_front() {
        for (event, at) in events_at(&point, config) {
            let (lifecycle, actions) = step(&point.lifecycle, event.clone(), at, config);
            let next = Point { lifecycle, now: at };
            graph.transitions += 1;
            visit(&point, &event, &next, &actions);
            let changed = !actions.is_empty() || next.lifecycle != point.lifecycle;
            if !changed {
                continue;
            }
            let from = point.lifecycle.state().status();
            let to = next.lifecycle.state().status();
            graph
                .edges
                .entry((from, to))
                .or_default()
                .insert(label(&event, &actions));
            if seen.insert(key(&next)) {
                queue.push_back(next);
            }
        }
    }
    graph.states = seen.len();
    graph
}
