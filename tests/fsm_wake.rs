//! Waking from a suspend, on a virtual clock: the monotonic clock stops
//! while the host sleeps, so the driver tells the machine (`Event::Woke`)
//! and the machine probes the link with a ping and a short deadline
//! (`Timer::Probe`, `Config::wake_probe`) instead of trusting a
//! `last_activity` that only looks fresh.

use std::time::{Duration, Instant};

use ws_lifecycle::fsm::{Action, Event, Machine, State, Timer};
use ws_lifecycle::{Cause, CloseReason, Config, Failure, RejectedBy, Status, Verdict};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn drain(m: &mut Machine) -> Vec<Action> {
    std::iter::from_fn(|| m.poll_action()).collect()
}

fn names(actions: &[Action]) -> Vec<&'static str> {
    actions.iter().map(Action::name).collect()
}

fn config() -> Config {
    Config {
        jitter: 0.0,
        ..Config::default()
    }
}

/// A machine Open on attempt 1 since `t0`, actions drained.
fn open(cfg: Config, t0: Instant) -> Machine {
    let mut m = Machine::new(cfg, t0).unwrap();
    m.handle(Event::SocketOpened { attempt: 1 }, t0);
    m.handle(Event::Ack { attempt: 1 }, t0);
    drain(&mut m);
    assert_eq!(m.status(), Status::Open);
    m
}

fn probe_of(m: &Machine) -> Option<Instant> {
    match *m.state() {
        State::Open { probe, .. } => probe,
        ref other => panic!("not Open: {other:?}"),
    }
}

/// Fires every deadline up to `until` while Open, returning what each did.
fn fire_until(m: &mut Machine, until: Instant) -> Vec<(Instant, Vec<Action>)> {
    let mut fired = Vec::new();
    while let Some(t) = m.poll_timeout().filter(|t| *t <= until) {
        m.handle_timeout(t);
        fired.push((t, drain(m)));
        if m.status() != Status::Open {
            break;
        }
    }
    fired
}

#[test]
fn defaults_and_validation() {
    assert_eq!(Config::default().wake_probe, secs(5));
    let zero = Config {
        wake_probe: Duration::ZERO,
        ..Config::default()
    };
    assert!(Machine::new(zero, Instant::now()).is_err());
    assert_eq!(Timer::Probe.as_str(), "probe");
    assert!(!Timer::Probe.runs_while_read_paused());
    assert_eq!(Timer::Probe.failure(), Some(Failure::Stale));
    assert!(Timer::ALL.contains(&Timer::Probe));
    assert_eq!(Event::Woke.attempt(), None);
    assert_eq!(Event::Woke.failure(), None);
    assert_eq!(Cause::WakeProbeFailed.as_str(), "wake_probe_failed");
}

/// The night's sleep: the link died while the host was suspended. Monotonic
/// time did not move, so `last_activity` looks 2 s old at wake. Without the
/// probe the link would be replaced at `last_activity + stale_after`; with
/// it, `wake_probe` after the wake.
#[test]
fn a_link_that_died_in_sleep_is_dropped_wake_probe_after_the_wake() {
    let t0 = Instant::now();
    let cfg = config();
    let mut m = open(cfg.clone(), t0);
    m.handle(Event::Activity { attempt: 1 }, t0 + secs(10));
    // Suspended at +11 s; at wake the monotonic clock reads +12 s.
    let woke = t0 + secs(12);
    m.handle(Event::Woke, woke);
    assert_eq!(drain(&mut m), [Action::SendPing { attempt: 1 }]);
    let probe = woke + cfg.wake_probe;
    assert_eq!(probe_of(&m), Some(probe));
    assert_eq!(
        m.poll_timeout(),
        Some(probe),
        "the probe is the next deadline"
    );
    // The ping went out now: the next one is a ping interval from the wake.
    let State::Open { next_ping, .. } = *m.state() else {
        unreachable!()
    };
    assert_eq!(next_ping, woke + cfg.ping_interval);

    // Early: nothing.
    m.handle_timeout(probe - Duration::from_nanos(1));
    assert!(drain(&mut m).is_empty());
    // At the deadline: our own drop, like a stale link, with its own reason.
    assert_eq!(m.due(probe), Some(Timer::Probe));
    m.handle_timeout(probe);
    let actions = drain(&mut m);
    assert_eq!(
        names(&actions),
        [
            "SendClose",
            "DropTransport",
            "Disconnected",
            "StatusChanged",
            "ReconnectScheduled"
        ]
    );
    let Action::SendClose { code, reason, .. } = &actions[0] else {
        unreachable!()
    };
    assert_eq!(*code, 1001);
    assert!(reason.starts_with("wake probe failed"), "{reason}");
    assert!(reason.len() <= 123, "a close reason fits a control frame");
    assert!(matches!(
        &actions[2],
        Action::Disconnected { attempt: 1, code: 1006, reason: r } if r == reason
    ));
    assert!(matches!(
        actions[3],
        Action::StatusChanged {
            from: Status::Open,
            to: Status::Reconnecting,
            cause: Cause::WakeProbeFailed,
            attempt: 2
        }
    ));
    assert!(probe < t0 + secs(10) + cfg.stale_after);
}

#[test]
fn any_inbound_activity_clears_the_probe() {
    let t0 = Instant::now();
    let cfg = config();
    for answer in [Event::Activity { attempt: 1 }, Event::Ack { attempt: 1 }] {
        let mut m = open(cfg.clone(), t0);
        m.handle(Event::Woke, t0 + secs(3));
        drain(&mut m);
        // The pong arrives 40 ms later.
        let pong = t0 + secs(3) + Duration::from_millis(40);
        m.handle(answer, pong);
        assert!(drain(&mut m).is_empty());
        assert_eq!(probe_of(&m), None);
        // From here on an ordinary Open: pings, then stale from the pong.
        let fired = fire_until(&mut m, pong + cfg.stale_after);
        let (last, actions) = fired.last().unwrap();
        assert_eq!(*last, pong + cfg.stale_after);
        assert!(matches!(
            actions[3],
            Action::StatusChanged {
                cause: Cause::Stale,
                ..
            }
        ));
        assert!(
            fired[..fired.len() - 1]
                .iter()
                .all(|(_, a)| names(a) == ["SendPing"])
        );
    }
}

#[test]
fn a_second_wake_pings_again_but_never_postpones_the_probe() {
    let t0 = Instant::now();
    let cfg = config();
    let mut m = open(cfg.clone(), t0);
    m.handle(Event::Woke, t0 + secs(1));
    drain(&mut m);
    m.handle(Event::Woke, t0 + secs(4));
    assert_eq!(drain(&mut m), [Action::SendPing { attempt: 1 }]);
    assert_eq!(probe_of(&m), Some(t0 + secs(1) + cfg.wake_probe));
    // The probe fails at its first deadline.
    let fired = fire_until(&mut m, t0 + secs(60));
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].0, t0 + secs(1) + cfg.wake_probe);
    assert_eq!(m.status(), Status::Reconnecting);
}

/// Outside Open a wake-up changes nothing: Connecting and AwaitingAck are
/// bounded by their own deadlines (connect 10 s, ack 15 s, both counted in
/// monotonic time that runs again after the wake), a pending retry keeps its
/// time, Closing has its grace, Closed absorbs everything.
#[test]
fn woke_outside_open_changes_nothing() {
    let t0 = Instant::now();
    let cfg = config();
    let close = || Event::Close {
        code: 1000,
        reason: String::new(),
    };
    let paths: [(Status, Vec<Event>); 5] = [
        (Status::Connecting, vec![]),
        (
            Status::AwaitingAck,
            vec![Event::SocketOpened { attempt: 1 }],
        ),
        (
            Status::Reconnecting,
            vec![Event::TransportLost { attempt: 1 }, Event::ReconnectNow],
        ),
        (
            Status::Closing,
            vec![Event::SocketOpened { attempt: 1 }, close()],
        ),
        (Status::Closed, vec![close()]),
    ];
    for (status, steps) in paths {
        let mut m = Machine::new(cfg.clone(), t0).unwrap();
        for e in steps {
            m.handle(e, t0);
        }
        if status == Status::Reconnecting {
            // Connecting again after the reconnect-now: fail it.
            m.handle(
                Event::ConnectFailed {
                    attempt: 2,
                    failure: ws_lifecycle::fsm::explore::REFUSED,
                },
                t0,
            );
        }
        drain(&mut m);
        assert_eq!(m.status(), status);
        for paused in [false, true] {
            let mut m = m.clone();
            if paused {
                m.handle(Event::ReadPaused, t0);
            }
            let before = m.lifecycle().clone();
            m.handle(Event::Woke, t0 + secs(1));
            assert!(drain(&mut m).is_empty(), "{status:?}");
            assert_eq!(m.lifecycle(), &before, "{status:?}");
        }
    }
}

/// Reading paused (the consumer is full): the probe waits like the stale
/// deadline, pings still go out, and on resume the probe gets the time it
/// had left.
#[test]
fn a_probe_waits_while_reading_is_paused_and_keeps_its_remaining_time() {
    let t0 = Instant::now();
    let cfg = config();
    let mut m = open(cfg.clone(), t0);
    m.handle(Event::Woke, t0 + secs(1));
    drain(&mut m);
    m.handle(Event::ReadPaused, t0 + secs(3));
    // Two minutes paused: pings only.
    let fired = fire_until(&mut m, t0 + secs(123));
    assert!(!fired.is_empty());
    assert!(fired.iter().all(|(_, a)| names(a) == ["SendPing"]));
    m.handle(Event::ReadResumed, t0 + secs(123));
    assert!(drain(&mut m).is_empty());
    // 2 s of the probe had run before the pause: 3 s remain.
    assert_eq!(probe_of(&m), Some(t0 + secs(126)));
    let fired = fire_until(&mut m, t0 + secs(126));
    assert_eq!(fired.last().unwrap().0, t0 + secs(126));
    assert_eq!(m.status(), Status::Reconnecting);

    // A wake-up while paused: the ping goes out, the probe starts only
    // when reading resumes.
    let mut m = open(cfg.clone(), t0);
    m.handle(Event::ReadPaused, t0 + secs(1));
    m.handle(Event::Woke, t0 + secs(2));
    assert_eq!(drain(&mut m), [Action::SendPing { attempt: 1 }]);
    m.handle(Event::ReadResumed, t0 + secs(20));
    assert_eq!(probe_of(&m), Some(t0 + secs(20) + cfg.wake_probe));
}

/// The policy sees a failed probe as a stale link: the caller's predicate
/// is asked about `Failure::Stale`, and its terminal verdict rejects.
#[test]
fn a_failed_probe_is_a_stale_failure_for_the_policy() {
    let t0 = Instant::now();
    let cfg = config();
    let mut m = open(cfg.clone(), t0);
    m.handle(Event::Woke, t0 + secs(2));
    drain(&mut m);
    let at = t0 + secs(2) + cfg.wake_probe;
    assert_eq!(
        m.lifecycle().failure(&Event::Timeout, at, &cfg),
        Some(Failure::Stale)
    );
    assert_eq!(cfg.verdict(&Failure::Stale), Verdict::Retry);
    m.handle(Event::Timeout.judged(Verdict::Terminal), at);
    let actions = drain(&mut m);
    assert_eq!(names(&actions)[..2], ["SendClose", "DropTransport"]);
    assert_eq!(
        *m.state(),
        State::Closed {
            reason: CloseReason::Rejected {
                by: RejectedBy::Caller {
                    failure: Failure::Stale
                }
            }
        }
    );
}

/// The stale deadline still wins when it falls before the probe's.
#[test]
fn stale_before_the_probe_is_still_stale() {
    let t0 = Instant::now();
    let cfg = config();
    let mut m = open(cfg.clone(), t0);
    let stale = t0 + cfg.stale_after;
    m.handle(Event::Woke, stale - secs(1));
    drain(&mut m);
    let fired = fire_until(&mut m, stale + cfg.wake_probe);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].0, stale);
    assert!(matches!(
        fired[0].1[3],
        Action::StatusChanged {
            cause: Cause::Stale,
            ..
        }
    ));
}
