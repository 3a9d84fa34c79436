//! Properties over random configurations and random event/time sequences,
//! driven through a `Machine`: the design's invariants hold after every
//! input, nothing panics, the machine agrees with the pure `step`, and equal
//! inputs give equal outputs.
//!
//! Shrunk failures are persisted to `proptest-regressions/fsm_props.txt` at
//! the crate root (cargo runs integration tests from there, and a `Direct`
//! path is used as given, relative to the working directory). Commit it.

mod fsm_support;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence, TestRunner};
use ws_lifecycle::fsm::explore::REFUSED;
use ws_lifecycle::fsm::{Action, Event, Machine, State, backoff, step};
use ws_lifecycle::{Cause, CloseRule, Config, ConnectFailure, Status, Verdict};

use fsm_support::check_edge;

const TERMINAL: u16 = 4001;

fn proptest_config() -> ProptestConfig {
    ProptestConfig {
        cases: 2000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/fsm_props.txt",
        ))),
        ..ProptestConfig::default()
    }
}

// ── inputs ─────────────────────────────────────────────────────────────

/// One random input: which event, which attempt relative to the current one
/// (-1, 0, +1), how much virtual time passes first, and whether (and how)
/// a timeout is fired instead.
#[derive(Debug, Clone, Copy)]
struct Input {
    choice: u8,
    offset: i8,
    delta_ms: u32,
    fire: u8,
}

/// `Input::choice` 15: what a healthy broker would send next.
const PROGRESS: u8 = 15;
/// `Input::fire`: fire the timeout at its deadline (or late, if overdue).
const AT_DEADLINE: u8 = 0;
/// `Input::fire`: call `handle_timeout` a nanosecond before the deadline.
const EARLY: u8 = 1;
/// `Input::fire`: call `handle_timeout` at the current time, due or not.
const AT_NOW: u8 = 2;
/// `Input::fire`: deliver the event instead.
const EVENT: u8 = 3;

/// Weighted so runs spend their time in every state: mostly plausible
/// progress, the current attempt, short gaps; rarely a close.
fn input() -> impl Strategy<Value = Input> {
    let choice = prop_oneof![
        40 => Just(PROGRESS),
        40 => prop::sample::select(&[0u8, 1, 2, 3, 4, 5, 7, 8][..]),
        1 => Just(6),
        1 => Just(9),
        3 => Just(10),
        2 => prop::sample::select(&[11u8, 12][..]),
        4 => prop::sample::select(&[13u8, 14][..]),
        // The failure policy: a 503 with a hint, a 403, a prefixed close,
        // the caller's verdicts (a lost transport made terminal, a refused
        // connect retried after a hint, a timeout made terminal).
        4 => Just(16),
        1 => prop::sample::select(&[17u8, 18, 19, 21][..]),
        2 => Just(20),
        // The host woke from a suspend.
        3 => Just(22),
    ];
    let offset = prop_oneof![8 => Just(0i8), 1 => Just(-1i8), 1 => Just(1i8)];
    let delta_ms = prop_oneof![6 => 0u32..2_000, 2 => 0u32..100_000];
    let fire = prop_oneof![
        3 => Just(AT_DEADLINE),
        1 => Just(EARLY),
        1 => Just(AT_NOW),
        8 => Just(EVENT),
    ];
    (choice, offset, delta_ms, fire).prop_map(|(choice, offset, delta_ms, fire)| Input {
        choice,
        offset,
        delta_ms,
        fire,
    })
}

/// A duration up to `max_ms` milliseconds, now and then exactly `Config::MAX_DURATION`.
fn dur(max_ms: u64) -> impl Strategy<Value = Duration> {
    prop_oneof![
        12 => (0..=max_ms).prop_map(Duration::from_millis),
        2 => (0..1_000_000u64).prop_map(Duration::from_nanos),
        1 => Just(Config::MAX_DURATION),
    ]
}

fn positive(max_ms: u64) -> impl Strategy<Value = Duration> {
    dur(max_ms).prop_map(|d| d.max(Duration::from_nanos(1)))
}

/// Random configurations that pass validation.
fn config() -> impl Strategy<Value = Config> {
    let timing = (
        positive(30_000),
        positive(30_000),
        positive(60_000),
        dur(60_000),
        positive(3_000),
        positive(10_000),
    );
    let backoff = (
        proptest::collection::vec(dur(40_000), 1..7),
        prop_oneof![Just(0.0), Just(1.0), 0.0..=1.0f64],
        positive(5_000),
        dur(30_000),
    );
    let policy = (
        prop_oneof![
            Just(vec![]),
            Just(vec![CloseRule::code(TERMINAL)]),
            Just(vec![CloseRule::code_with_prefix(TERMINAL, "banned")]),
            Just(vec![CloseRule::code_with_prefix(TERMINAL, "other")]),
            Just(vec![CloseRule::code_with_prefix(1008, "unauthorized")]),
        ],
        prop_oneof![5 => Just(None), 1 => (1u32..12).prop_map(Some)],
        prop_oneof![5 => Just(None), 1 => positive(600_000).prop_map(Some)],
        any::<u64>(),
        (
            prop_oneof![
                Just(Config::default().retried_statuses),
                Just(vec![400..=599]),
                Just(vec![]),
            ],
            dur(700_000),
        ),
    );
    (timing, backoff, policy).prop_map(
        |(
            (connect_timeout, ack_timeout, ping_interval, stale_extra, close_grace, wake_probe),
            (backoff, jitter, min_delay, stable_after),
            (
                terminal_closes,
                max_attempts,
                max_unstable,
                seed,
                (retried_statuses, max_retry_after),
            ),
        )| {
            let stale_after = ping_interval
                .saturating_add(stale_extra.max(Duration::from_nanos(1)))
                .min(Config::MAX_DURATION);
            let ping_interval = if stale_after <= ping_interval {
                stale_after - Duration::from_nanos(1)
            } else {
                ping_interval
            };
            Config {
                connect_timeout,
                ack_timeout,
                ping_interval,
                // Half the runs ping only when idle (the seed's top bit).
                ping_when_idle: seed >> 63 == 1,
                stale_after,
                wake_probe,
                backoff,
                jitter,
                min_delay,
                stable_after,
                close_grace,
                terminal_closes,
                retried_statuses,
                max_retry_after,
                max_attempts,
                max_unstable,
                seed,
            }
        },
    )
}

/// The attempt socket events are "about" right now.
fn current_attempt(m: &Machine, last_connect: u64) -> u64 {
    match *m.state() {
        State::Reconnecting { next_attempt, .. } => next_attempt,
        ref s => s.transport_attempt().unwrap_or(last_connect),
    }
}

/// Turns a random input into what the driver feeds the machine.
enum Feed {
    Event(Event),
    Timeout,
}

fn feed(i: Input, m: &Machine, last_connect: u64) -> Feed {
    let attempt = current_attempt(m, last_connect).saturating_add_signed(i64::from(i.offset));
    let peer = |code, reason: &str| Event::PeerClosed {
        attempt,
        code,
        reason: reason.into(),
    };
    Feed::Event(match i.choice {
        0 => Event::SocketOpened { attempt },
        1 => Event::ConnectFailed {
            attempt,
            failure: REFUSED,
        },
        2 => Event::HelloFailed { attempt },
        3 => Event::Ack { attempt },
        4 => Event::Activity { attempt },
        5 => peer(1000, "bye"),
        6 => peer(TERMINAL, "banned"),
        7 => Event::TransportLost { attempt },
        8 => Event::MessageTooBig { attempt },
        9 => Event::Close {
            code: 1000,
            reason: String::new(),
        },
        10 => Event::ReconnectNow,
        11 => Event::ProtocolError {
            attempt,
            code: 1002,
        },
        12 => Event::ProtocolError {
            attempt,
            code: 1007,
        },
        13 => Event::ReadPaused,
        14 => Event::ReadResumed,
        16 => Event::ConnectFailed {
            attempt,
            failure: ConnectFailure::Http {
                status: 503,
                retry_after: Some(Duration::from_millis(u64::from(i.delta_ms) * 10)),
            },
        },
        17 => Event::ConnectFailed {
            attempt,
            failure: ConnectFailure::Http {
                status: 403,
                retry_after: None,
            },
        },
        18 => peer(1008, "unauthorized: expired"),
        19 => Event::TransportLost { attempt }.judged(Verdict::Terminal),
        20 => Event::ConnectFailed {
            attempt,
            failure: REFUSED,
        }
        .judged(Verdict::RetryAfter(Duration::from_millis(
            u64::from(i.delta_ms) * 10,
        ))),
        21 => Event::Timeout.judged(Verdict::Terminal),
        22 => Event::Woke,
        // "Progress": what a healthy broker would send next.
        _ => match m.status() {
            Status::Connecting => Event::SocketOpened { attempt },
            Status::AwaitingAck => Event::Ack { attempt },
            Status::Open => Event::Activity { attempt },
            _ => return Feed::Timeout,
        },
    })
}

// ── invariants ─────────────────────────────────────────────────────────
// The per-edge ones are `fsm_support::check_edge`, shared with the
// exhaustive test.

/// Invariants over the whole history of one run.
#[derive(Default)]
struct History {
    last_connect: u64,
    disconnected: BTreeSet<u64>,
    statuses: BTreeMap<Status, usize>,
    steps: usize,
}

impl History {
    fn record(&mut self, actions: &[Action]) -> Result<(), String> {
        for a in actions {
            match *a {
                Action::Connect { attempt } => {
                    // One transport per attempt: every Connect names a new,
                    // higher attempt; counting never wraps.
                    if attempt != self.last_connect + 1 {
                        return Err(format!(
                            "Connect {attempt} after Connect {}",
                            self.last_connect
                        ));
                    }
                    self.last_connect = attempt;
                }
                Action::Disconnected { attempt, .. } if !self.disconnected.insert(attempt) => {
                    return Err(format!("second Disconnected for attempt {attempt}"));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Drives one random run; returns the full action log.
fn drive(cfg: &Config, inputs: &[Input], history: &mut History) -> Result<Vec<Action>, String> {
    let t0 = Instant::now();
    let mut m = Machine::new(cfg.clone(), t0).map_err(|e| format!("valid config refused: {e}"))?;
    let mut log: Vec<Action> = std::iter::from_fn(|| m.poll_action()).collect();
    if log != [Action::Connect { attempt: 1 }] {
        return Err(format!("start: {log:?}"));
    }
    history.record(&log)?;
    let mut now = t0;
    let mut closed_for = 0;
    for &i in inputs {
        // Closed is absorbing: a few inputs there prove it; more add nothing.
        closed_for += usize::from(m.is_closed());
        if closed_for > 8 {
            break;
        }
        *history.statuses.entry(m.status()).or_default() += 1;
        history.steps += 1;
        let before = m.lifecycle().clone();
        let due = m.poll_timeout();
        let later = now + Duration::from_millis(u64::from(i.delta_ms));
        // What happens: an event after the gap, or a timeout fired exactly at
        // the deadline (late only when it is already overdue), a nanosecond
        // early, or after the gap, due or not.
        let (event, at) = match (i.fire, feed(i, &m, history.last_connect)) {
            (AT_DEADLINE, _) | (_, Feed::Timeout) => {
                now = due.map_or(later, |d| d.max(now));
                m.handle_timeout(now);
                (Event::Timeout, now)
            }
            (EARLY, _) => {
                now = due
                    .and_then(|d| d.checked_sub(Duration::from_nanos(1)))
                    .map_or(later, |d| d.max(now));
                m.handle_timeout(now);
                (Event::Timeout, now)
            }
            (AT_NOW, _) => {
                now = later;
                m.handle_timeout(now);
                (Event::Timeout, now)
            }
            (_, Feed::Event(e)) => {
                now = later;
                m.handle(e.clone(), now);
                (e, now)
            }
        };
        let actions: Vec<Action> = std::iter::from_fn(|| m.poll_action()).collect();
        let ctx = |e: String| {
            format!(
                "{e}\n  before {:?}\n  event {event:?} at +{:?}\n  after {:?}\n  actions {actions:?}",
                before.state(),
                at - t0,
                m.state()
            )
        };
        check_edge(cfg, &before, &event, at, m.lifecycle(), &actions).map_err(ctx)?;
        history.record(&actions).map_err(ctx)?;
        // The machine is a faithful wrapper of the pure transition function.
        let fired = !matches!(event, Event::Timeout) || due.is_some_and(|d| at >= d);
        let (pure, pure_actions) = if fired {
            step(&before, event.clone(), at, cfg)
        } else {
            (before.clone(), Vec::new())
        };
        if pure != *m.lifecycle() || pure_actions != actions {
            return Err(ctx("Machine and fsm::step disagree".into()));
        }
        // poll_timeout: Some until Closed, None after; None before that
        // only while reading is paused in AwaitingAck or Reconnecting.
        let may_wait = m.is_closed()
            || (m.read_paused()
                && matches!(m.status(), Status::AwaitingAck | Status::Reconnecting));
        if m.poll_timeout().is_none() && !may_wait {
            return Err(ctx(
                "poll_timeout None outside Closed and a paused wait".into()
            ));
        }
        if m.is_closed() && m.poll_timeout().is_some() {
            return Err(ctx("poll_timeout after Closed".into()));
        }
        // What handle_timeout fires is exactly the timer due now.
        if m.due(at).is_some() != m.poll_timeout().is_some_and(|d| at >= d) {
            return Err(ctx("due() disagrees with poll_timeout()".into()));
        }
        log.extend(actions);
    }
    *history.statuses.entry(m.status()).or_default() += 1;
    Ok(log)
}

fn run_property<S: Strategy>(
    name: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<usize, String>,
) where
    S::Value: std::fmt::Debug,
{
    let cases = Cell::new(0usize);
    let steps = Cell::new(0usize);
    let mut runner = TestRunner::new(proptest_config());
    let result = runner.run(&strategy, |value| {
        let n = test(value).map_err(TestCaseError::fail)?;
        cases.set(cases.get() + 1);
        steps.set(steps.get() + n);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    eprintln!(
        "{name}: {} cases passed ({} configured), {} inputs in total",
        cases.get(),
        proptest_config().cases,
        steps.get()
    );
}

#[test]
fn invariants_hold_on_random_runs() {
    let reached = std::sync::Mutex::new(BTreeMap::<Status, usize>::new());
    run_property(
        "invariants_hold_on_random_runs",
        (config(), proptest::collection::vec(input(), 0..120)),
        |(cfg, inputs)| {
            cfg.validate().map_err(|e| format!("strategy made {e}"))?;
            let mut history = History::default();
            let log = drive(&cfg, &inputs, &mut history)?;
            // Deterministic: the same config and inputs give the same actions
            // (checked on half the cases, to keep the suite fast).
            if inputs.len() % 2 == 0 {
                let again = drive(&cfg, &inputs, &mut History::default())?;
                if log != again {
                    return Err("two identical runs differ".into());
                }
            }
            let mut reached = reached.lock().unwrap();
            for (status, n) in history.statuses {
                *reached.entry(status).or_default() += n;
            }
            Ok(history.steps)
        },
    );
    let reached = reached.into_inner().unwrap();
    eprintln!("invariants_hold_on_random_runs: inputs applied per status: {reached:?}");
    let statuses: BTreeSet<Status> = reached.keys().copied().collect();
    assert_eq!(
        statuses,
        Status::ALL.into_iter().collect(),
        "statuses reached"
    );
}

#[test]
fn close_from_anywhere_ends_the_session() {
    run_property(
        "close_from_anywhere_ends_the_session",
        (
            config(),
            proptest::collection::vec(input(), 0..60),
            proptest::collection::vec(input(), 0..20),
        ),
        |(cfg, prefix, suffix)| {
            let t0 = Instant::now();
            let mut m = Machine::new(cfg.clone(), t0).unwrap();
            let mut now = t0;
            let mut last_connect = 0;
            for &i in &prefix {
                now += Duration::from_millis(u64::from(i.delta_ms));
                match feed(i, &m, last_connect) {
                    Feed::Event(e) if i.fire == EVENT => m.handle(e, now),
                    _ => {
                        now = m.poll_timeout().map_or(now, |d| d.max(now));
                        m.handle_timeout(now);
                    }
                }
                while let Some(a) = m.poll_action() {
                    if let Action::Connect { attempt } = a {
                        last_connect = attempt;
                    }
                }
            }
            let status = m.status();
            now += Duration::from_millis(1);
            m.handle(
                Event::Close {
                    code: 1000,
                    reason: "bye".into(),
                },
                now,
            );
            while m.poll_action().is_some() {}
            match m.status() {
                Status::Closed => {}
                Status::Closing if matches!(status, Status::AwaitingAck | Status::Open) => {}
                Status::Closing if status == Status::Closing => {}
                other => return Err(format!("Close from {status:?} led to {other:?}")),
            }
            if m.status() == Status::Closing {
                let grace = m.poll_timeout().ok_or("Closing without a deadline")?;
                if grace > now.checked_add(cfg.close_grace).unwrap_or(grace) {
                    return Err("close grace longer than configured".into());
                }
                m.handle_timeout(grace);
                let actions: Vec<_> = std::iter::from_fn(|| m.poll_action()).collect();
                if !m.is_closed() || actions.first().map(Action::name) != Some("DropTransport") {
                    return Err(format!("grace expiry: {actions:?} -> {:?}", m.state()));
                }
                now = grace;
            }
            // After Closed, nothing ever happens again.
            let closed = m.lifecycle().clone();
            for &i in &suffix {
                now += Duration::from_millis(u64::from(i.delta_ms));
                match feed(i, &m, last_connect) {
                    Feed::Event(e) => m.handle(e, now),
                    Feed::Timeout => m.handle_timeout(now),
                }
                m.handle_timeout(now);
                if m.poll_action().is_some() || m.lifecycle() != &closed {
                    return Err("something happened after Closed".into());
                }
            }
            Ok(prefix.len() + suffix.len())
        },
    );
}

#[test]
fn delays_stay_within_bounds_for_any_config() {
    run_property(
        "delays_stay_within_bounds_for_any_config",
        (config(), 1u32..64, any::<u64>()),
        |(cfg, failures, seed)| {
            let mut rng = fastrand::Rng::with_seed(seed);
            let (lo, hi) = backoff::bounds(&cfg, failures);
            if lo > hi || lo < cfg.min_delay {
                return Err(format!("bounds [{lo:?}, {hi:?}]"));
            }
            let base = cfg.backoff[(failures as usize - 1).min(cfg.backoff.len() - 1)];
            if hi != base.max(cfg.min_delay) {
                return Err(format!("upper bound {hi:?} is not the schedule's {base:?}"));
            }
            for _ in 0..16 {
                let d = backoff::delay(&cfg, failures, &mut rng);
                if d < lo || d > hi {
                    return Err(format!("delay {d:?} outside [{lo:?}, {hi:?}]"));
                }
            }
            Ok(16)
        },
    );
}

#[test]
fn hinted_delays_stay_within_bounds_for_any_config() {
    let hint = prop_oneof![
        8 => (0u64..3_600_000).prop_map(Duration::from_millis),
        1 => Just(Config::MAX_DURATION),
        1 => Just(Duration::MAX),
    ];
    run_property(
        "hinted_delays_stay_within_bounds_for_any_config",
        (config(), 1u32..64, hint, any::<u64>()),
        |(cfg, failures, hint, seed)| {
            let mut rng = fastrand::Rng::with_seed(seed);
            let (lo, hi) = backoff::hinted_bounds(&cfg, failures, hint);
            let (b_lo, b_hi) = backoff::bounds(&cfg, failures);
            let cap = cfg.max_retry_after;
            // Never below the backoff nor the (capped) hint; never above
            // the longer of the backoff and the cap.
            if lo > hi || lo < b_lo || lo < hint.min(cap) || hi > b_hi.max(cap) {
                return Err(format!("bounds [{lo:?}, {hi:?}]"));
            }
            for _ in 0..16 {
                let d = backoff::hinted(&cfg, failures, hint, &mut rng);
                if d < lo || d > hi {
                    return Err(format!("delay {d:?} outside [{lo:?}, {hi:?}]"));
                }
                if cfg.jitter == 0.0 && d != b_hi.max(hint.min(cap)) {
                    return Err(format!("without jitter {d:?} is not exact"));
                }
            }
            Ok(16)
        },
    );
}

/// For any configuration and any moment of an Open connection: after a
/// wake-up, with nothing inbound and reading not paused, the link is gone
/// no later than `wake + wake_probe` (earlier only when the stale deadline
/// came first), and until then only pings go out.
#[test]
fn a_silent_link_never_outlives_the_wake_probe() {
    run_property(
        "a_silent_link_never_outlives_the_wake_probe",
        (config(), 0u64..600_000, 0u64..600_000),
        |(cfg, quiet_ms, wake_ms)| {
            let t0 = Instant::now();
            let mut m = Machine::new(cfg.clone(), t0).map_err(|e| e.to_string())?;
            m.handle(Event::SocketOpened { attempt: 1 }, t0);
            m.handle(Event::Ack { attempt: 1 }, t0);
            let last = t0 + Duration::from_millis(quiet_ms);
            m.handle(Event::Activity { attempt: 1 }, last);
            std::iter::from_fn(|| m.poll_action()).for_each(drop);
            let wake = last + Duration::from_millis(wake_ms);
            // The host slept through any pings due before the wake (a
            // driver fires them late, or not at all); stale first is stale.
            if last.checked_add(cfg.stale_after).is_some_and(|s| s <= wake) {
                return Ok(1);
            }
            m.handle(Event::Woke, wake);
            let woke: Vec<Action> = std::iter::from_fn(|| m.poll_action()).collect();
            if woke != [Action::SendPing { attempt: 1 }] {
                return Err(format!("Woke in Open emitted {woke:?}"));
            }
            let Some(limit) = wake.checked_add(cfg.wake_probe) else {
                return Ok(1); // past the end of time
            };
            if m.poll_timeout().is_none_or(|t| t > limit) {
                return Err(format!(
                    "next deadline {:?} after the probe",
                    m.poll_timeout()
                ));
            }
            // Anything due in between is a ping, or the stale deadline:
            // at the probe's deadline the link is gone either way.
            m.handle_timeout(limit);
            let actions: Vec<Action> = std::iter::from_fn(|| m.poll_action()).collect();
            let cause = actions.iter().find_map(|a| match a {
                Action::StatusChanged { cause, .. } => Some(*cause),
                _ => None,
            });
            if m.status() == Status::Open
                || !matches!(
                    cause,
                    Some(Cause::WakeProbeFailed | Cause::Stale | Cause::GaveUp)
                )
                || names_of(&actions)[..2] != ["SendClose", "DropTransport"]
            {
                return Err(format!("at the probe's deadline: {actions:?}"));
            }
            Ok(2)
        },
    );
}

fn names_of(actions: &[Action]) -> Vec<&'static str> {
    actions.iter().map(Action::name).collect()
}
