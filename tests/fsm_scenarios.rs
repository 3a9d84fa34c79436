//! Whole scenarios on a virtual clock: a scripted fake broker answers the
//! machine's commands, time jumps straight to the next input or deadline.
//! Minutes of lifecycle run in microseconds; nothing sleeps.

use std::time::{Duration, Instant};

use ws_lifecycle::fsm::explore::REFUSED;
use ws_lifecycle::fsm::{Action, Event, Machine, State, backoff};
use ws_lifecycle::{Cause, CloseReason, CloseRule, Config, ConfigError, RejectedBy, Status};

const NS: Duration = Duration::from_nanos(1);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// One line of a simulation's log.
#[derive(Debug, Clone, PartialEq)]
enum Entry {
    /// An input the machine handled (timeouts are logged as `Event::Timeout`).
    In(Instant, Event),
    /// An action it emitted.
    Out(Instant, Action),
}

/// The fake broker/transport: sees each action at `now` and may schedule
/// inputs (at `now` or later).
type Script = Box<dyn FnMut(&Action, Instant, &mut Vec<(Instant, Event)>)>;

struct Sim {
    m: Machine,
    now: Instant,
    pending: Vec<(Instant, Event)>,
    log: Vec<Entry>,
    script: Script,
}

impl Sim {
    fn new(cfg: Config, t0: Instant, script: Script) -> Sim {
        Sim {
            m: Machine::new(cfg, t0).expect("valid config"),
            now: t0,
            pending: Vec::new(),
            log: Vec::new(),
            script,
        }
    }

    /// Drains every action, letting the script answer each one.
    fn drain(&mut self) {
        while let Some(a) = self.m.poll_action() {
            (self.script)(&a, self.now, &mut self.pending);
            self.log.push(Entry::Out(self.now, a));
        }
    }

    /// Runs until the next input or deadline would be after `end` (or the
    /// machine is closed with nothing pending). Scheduled inputs win ties
    /// with deadlines.
    fn run_until(&mut self, end: Instant) {
        for _ in 0..1_000_000 {
            self.drain();
            let next_input = self.pending.iter().map(|(t, _)| *t).min();
            let next_timer = self.m.poll_timeout();
            let next = match (next_input, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => return,
                },
            };
            if next > end {
                return;
            }
            self.now = self.now.max(next);
            if next_input == Some(next) {
                let i = self.pending.iter().position(|(t, _)| *t == next).unwrap();
                let (_, event) = self.pending.remove(i);
                self.log.push(Entry::In(self.now, event.clone()));
                self.m.handle(event, self.now);
            } else {
                self.log.push(Entry::In(self.now, Event::Timeout));
                self.m.handle_timeout(self.now);
                // poll_timeout moves forward after it fires: no busy loop.
                if let Some(t) = self.m.poll_timeout() {
                    assert!(t > self.now, "deadline did not move past {:?}", self.now);
                }
            }
        }
        panic!("simulation did not settle");
    }

    /// Every action with the time it was emitted.
    fn actions(&self) -> Vec<(Instant, Action)> {
        self.log
            .iter()
            .filter_map(|e| match e {
                Entry::Out(t, a) => Some((*t, a.clone())),
                Entry::In(..) => None,
            })
            .collect()
    }

    fn connects(&self) -> Vec<(Instant, u64)> {
        self.actions()
            .into_iter()
            .filter_map(|(t, a)| match a {
                Action::Connect { attempt } => Some((t, attempt)),
                _ => None,
            })
            .collect()
    }

    fn scheduled(&self) -> Vec<(Instant, u64, Duration)> {
        self.actions()
            .into_iter()
            .filter_map(|(t, a)| match a {
                Action::ReconnectScheduled { attempt, delay } => Some((t, attempt, delay)),
                _ => None,
            })
            .collect()
    }
}

/// Drains the machine's actions into a Vec.
fn drain(m: &mut Machine) -> Vec<Action> {
    std::iter::from_fn(|| m.poll_action()).collect()
}

fn names(actions: &[Action]) -> Vec<&'static str> {
    actions.iter().map(Action::name).collect()
}

fn no_jitter() -> Config {
    Config {
        jitter: 0.0,
        ..Config::default()
    }
}

/// Opens every socket at once; never acks.
fn never_acks() -> Script {
    Box::new(|a, now, q| {
        if let Action::Connect { attempt } = *a {
            q.push((now, Event::SocketOpened { attempt }));
        }
    })
}

/// Opens, acks at once, then closes normally after `hold(attempt)`.
fn acks_then_closes(hold: impl Fn(u64) -> Duration + 'static) -> Script {
    Box::new(move |a, now, q| match *a {
        Action::Connect { attempt } => q.push((now, Event::SocketOpened { attempt })),
        Action::SendHello { attempt } => q.push((now, Event::Ack { attempt })),
        Action::FlushQueue { attempt } => q.push((
            now + hold(attempt),
            Event::PeerClosed {
                attempt,
                code: 1000,
                reason: "bye".into(),
            },
        )),
        _ => {}
    })
}

/// Refuses every connect at once.
fn refuses() -> Script {
    Box::new(|a, now, q| {
        if let Action::Connect { attempt } = *a {
            q.push((
                now,
                Event::ConnectFailed {
                    attempt,
                    failure: REFUSED,
                },
            ));
        }
    })
}

const SCHEDULE: [u64; 8] = [1, 2, 4, 8, 16, 30, 30, 30];

#[test]
fn never_acking_broker_follows_the_schedule_exactly_without_jitter() {
    let t0 = Instant::now();
    let cfg = no_jitter();
    let mut sim = Sim::new(cfg.clone(), t0, never_acks());
    sim.run_until(t0 + secs(400));
    let connects = sim.connects();
    let scheduled = sim.scheduled();
    assert!(connects.len() >= 9, "{connects:?}");
    for (i, &(start, attempt)) in connects.iter().enumerate() {
        assert_eq!(attempt, i as u64 + 1, "attempts count from 1, one by one");
        // The ack deadline runs from socket open (here: at once).
        let Some(&(failed, next, delay)) = scheduled.get(i) else {
            break;
        };
        assert_eq!(failed, start + cfg.ack_timeout, "attempt {attempt}");
        assert_eq!(next, attempt + 1);
        let want = secs(SCHEDULE[i.min(SCHEDULE.len() - 1)]);
        assert_eq!(delay, want, "attempt {attempt}");
        if let Some(&(next_start, _)) = connects.get(i + 1) {
            assert_eq!(next_start, failed + want, "attempt {} start", attempt + 1);
        }
    }
    // Every failure was an ack timeout on an opened socket: a 1006 notice each.
    let notices: Vec<_> = sim
        .actions()
        .into_iter()
        .filter_map(|(_, a)| match a {
            Action::Disconnected { attempt, code, .. } => Some((attempt, code)),
            _ => None,
        })
        .collect();
    assert_eq!(notices.len(), scheduled.len());
    assert!(notices.iter().all(|&(_, code)| code == 1006));
}

#[test]
fn never_acking_broker_with_jitter_stays_in_bounds() {
    let t0 = Instant::now();
    for seed in [1, 2, 3, 0xdead_beef] {
        let cfg = Config {
            jitter: 0.5,
            seed,
            ..Config::default()
        };
        let mut sim = Sim::new(cfg.clone(), t0, never_acks());
        sim.run_until(t0 + secs(600));
        let connects = sim.connects();
        let scheduled = sim.scheduled();
        assert!(scheduled.len() >= 10);
        let mut distinct = std::collections::BTreeSet::new();
        for (i, &(failed, _, delay)) in scheduled.iter().enumerate() {
            let base = secs(SCHEDULE[i.min(SCHEDULE.len() - 1)]);
            assert!(delay >= base / 2 && delay <= base, "{delay:?} vs {base:?}");
            assert_eq!(backoff::bounds(&cfg, i as u32 + 1), (base / 2, base));
            distinct.insert(delay);
            if let Some(&(start, _)) = connects.get(i + 1) {
                assert_eq!(start, failed + delay);
            }
        }
        assert!(distinct.len() > 1, "jitter draws vary");
    }
}

#[test]
fn flapping_broker_meets_escalating_backoff() {
    let t0 = Instant::now();
    let cfg = no_jitter();
    // Closes at once after every ack.
    let mut sim = Sim::new(cfg.clone(), t0, acks_then_closes(|_| Duration::ZERO));
    sim.run_until(t0 + secs(200));
    let delays: Vec<u64> = sim.scheduled().iter().map(|s| s.2.as_secs()).collect();
    assert!(delays.len() >= 8);
    assert_eq!(delays[..8], SCHEDULE);

    // Closes a nanosecond before stable_after: still a flap every time.
    let stable = cfg.stable_after;
    let mut sim = Sim::new(cfg.clone(), t0, acks_then_closes(move |_| stable - NS));
    sim.run_until(t0 + secs(300));
    let delays: Vec<u64> = sim.scheduled().iter().map(|s| s.2.as_secs()).collect();
    assert_eq!(delays[..8], SCHEDULE);
}

#[test]
fn a_stable_connection_resets_the_backoff() {
    let t0 = Instant::now();
    let cfg = no_jitter();
    let stable = cfg.stable_after;
    // Attempts 1-4 flap, attempt 5 stays exactly stable_after, 6-7 flap.
    let hold = move |attempt| if attempt == 5 { stable } else { Duration::ZERO };
    let mut sim = Sim::new(cfg, t0, acks_then_closes(hold));
    sim.run_until(t0 + secs(200));
    let delays: Vec<u64> = sim.scheduled().iter().map(|s| s.2.as_secs()).collect();
    assert_eq!(delays[..7], [1, 2, 4, 8, 1, 2, 4]);
    assert_eq!(sim.m.lifecycle().failures() as usize, delays.len() - 4);
}

#[test]
fn half_dead_link_is_detected_at_exactly_last_activity_plus_stale_after() {
    let t0 = Instant::now();
    let cfg = no_jitter();
    let mut m = Machine::new(cfg.clone(), t0).unwrap();
    assert_eq!(drain(&mut m), [Action::Connect { attempt: 1 }]);
    m.handle(Event::SocketOpened { attempt: 1 }, t0 + ms(50));
    drain(&mut m);
    let acked = t0 + secs(1);
    m.handle(Event::Ack { attempt: 1 }, acked);
    drain(&mut m);
    assert_eq!(m.status(), Status::Open);

    // Inbound frames at +5 s, +20 s, +40 s; then silence. Timers fire in
    // between, whenever they are due.
    let mut pings = Vec::new();
    let mut fire_until = |m: &mut Machine, until: Instant| {
        while let Some(t) = m.poll_timeout().filter(|t| *t <= until) {
            m.handle_timeout(t);
            for a in drain(m) {
                assert_eq!(a, Action::SendPing { attempt: 1 }, "at {:?}", t - acked);
                pings.push(t - acked);
            }
        }
    };
    for at in [5, 20, 40] {
        fire_until(&mut m, acked + secs(at));
        m.handle(Event::Activity { attempt: 1 }, acked + secs(at));
        assert!(drain(&mut m).is_empty());
    }
    let stale = acked + secs(40) + cfg.stale_after;
    fire_until(&mut m, stale - NS);
    // Pings went out every ping_interval from the ack, activity or not.
    assert_eq!(pings, [secs(30), secs(60), secs(90)]);
    assert_eq!(m.poll_timeout(), Some(stale), "the stale deadline is next");

    // A nanosecond early: a no-op, still Open.
    let before = m.lifecycle().clone();
    m.handle_timeout(stale - NS);
    assert!(drain(&mut m).is_empty());
    assert_eq!(m.lifecycle(), &before);
    assert_eq!(m.status(), Status::Open);

    // Right at it: dead, a best-effort 1001 close frame, dropped, 1006,
    // reconnect scheduled.
    m.handle_timeout(stale);
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
    assert!(matches!(
        actions[0],
        Action::SendClose {
            attempt: 1,
            code: 1001,
            ..
        }
    ));
    assert!(matches!(
        actions[2],
        Action::Disconnected {
            attempt: 1,
            code: 1006,
            ..
        }
    ));
    assert!(matches!(
        actions[3],
        Action::StatusChanged {
            from: Status::Open,
            to: Status::Reconnecting,
            cause: Cause::Stale,
            attempt: 2
        }
    ));
    assert_eq!(m.status(), Status::Reconnecting);
    // 115 s Open is stable: the backoff starts over.
    assert_eq!(
        actions[4],
        Action::ReconnectScheduled {
            attempt: 2,
            delay: secs(1)
        }
    );
}

#[test]
fn late_ack_is_ignored_and_does_not_reset_the_backoff() {
    let t0 = Instant::now();
    let cfg = no_jitter();
    let mut m = Machine::new(cfg.clone(), t0).unwrap();
    drain(&mut m);
    m.handle(Event::SocketOpened { attempt: 1 }, t0);
    drain(&mut m);
    let expired = t0 + cfg.ack_timeout;
    m.handle_timeout(expired);
    let actions = drain(&mut m);
    assert!(matches!(
        actions[3],
        Action::StatusChanged {
            cause: Cause::AckTimeout,
            ..
        }
    ));
    assert_eq!(m.lifecycle().failures(), 1);

    // The ack of attempt 1 arrives while Reconnecting.
    let before = m.lifecycle().clone();
    m.handle(Event::Ack { attempt: 1 }, expired + ms(300));
    assert!(drain(&mut m).is_empty());
    assert_eq!(m.lifecycle(), &before);

    // ... and again during attempt 2, connecting and then awaiting its ack.
    m.handle_timeout(expired + secs(1));
    assert_eq!(drain(&mut m).last(), Some(&Action::Connect { attempt: 2 }));
    for event in [
        Event::Ack { attempt: 1 },
        Event::SocketOpened { attempt: 2 },
        Event::Ack { attempt: 1 },
        Event::Activity { attempt: 1 },
    ] {
        let status = m.status();
        let opened = matches!(event, Event::SocketOpened { .. });
        m.handle(event, expired + ms(1500));
        let actions = drain(&mut m);
        if opened {
            assert_eq!(m.status(), Status::AwaitingAck);
        } else {
            assert!(actions.is_empty(), "{actions:?}");
            assert_eq!(m.status(), status);
        }
    }
    assert_eq!(m.lifecycle().failures(), 1, "no reset");
    // Attempt 2 fails too: the second step of the schedule, not the first.
    m.handle(Event::TransportLost { attempt: 2 }, expired + secs(2));
    assert_eq!(
        drain(&mut m).last(),
        Some(&Action::ReconnectScheduled {
            attempt: 3,
            delay: secs(2)
        })
    );
}

#[test]
fn terminal_close_codes_end_the_session() {
    let t0 = Instant::now();
    let cfg = Config {
        terminal_closes: vec![
            CloseRule::code(4001),
            CloseRule::code_with_prefix(4003, "banned"),
        ],
        ..no_jitter()
    };
    let open = |at: Instant| {
        let mut m = Machine::new(cfg.clone(), at).unwrap();
        m.handle(Event::SocketOpened { attempt: 1 }, at);
        m.handle(Event::Ack { attempt: 1 }, at);
        drain(&mut m);
        m
    };
    let peer = |code, reason: &str| Event::PeerClosed {
        attempt: 1,
        code,
        reason: reason.into(),
    };

    let mut m = open(t0);
    m.handle(peer(4001, "auth failed"), t0 + secs(1));
    assert_eq!(
        drain(&mut m),
        [
            Action::DropTransport { attempt: 1 },
            Action::Disconnected {
                attempt: 1,
                code: 4001,
                reason: "auth failed".into()
            },
            Action::StatusChanged {
                from: Status::Open,
                to: Status::Closed,
                cause: Cause::Rejected,
                attempt: 1
            },
        ]
    );
    assert_eq!(
        m.state(),
        &State::Closed {
            reason: CloseReason::Rejected {
                by: RejectedBy::Close {
                    code: 4001,
                    reason: "auth failed".into()
                }
            }
        }
    );
    assert_eq!(m.poll_timeout(), None);
    // Nothing ever happens again.
    m.handle_timeout(t0 + secs(3600));
    m.handle(Event::ReconnectNow, t0 + secs(3600));
    m.handle(Event::SocketOpened { attempt: 2 }, t0 + secs(3600));
    assert!(drain(&mut m).is_empty());
    assert!(m.is_closed());

    // Code + reason: only the exact reason is terminal.
    let mut m = open(t0);
    m.handle(peer(4003, "other"), t0 + secs(1));
    assert_eq!(m.status(), Status::Reconnecting);
    let mut m = open(t0);
    m.handle(peer(4003, "banned"), t0 + secs(1));
    assert!(matches!(
        m.state(),
        State::Closed {
            reason: CloseReason::Rejected {
                by: RejectedBy::Close { code: 4003, .. }
            }
        }
    ));
    // Also while awaiting the ack.
    let mut m = Machine::new(cfg.clone(), t0).unwrap();
    m.handle(Event::SocketOpened { attempt: 1 }, t0);
    drain(&mut m);
    m.handle(peer(4001, ""), t0 + ms(10));
    assert_eq!(
        names(&drain(&mut m)),
        ["DropTransport", "Disconnected", "StatusChanged"]
    );
    assert!(m.is_closed());
}

fn final_reason(sim: &Sim) -> CloseReason {
    match sim.m.state() {
        State::Closed { reason } => reason.clone(),
        other => panic!("not closed: {other:?}"),
    }
}

#[test]
fn attempt_budget_gives_up() {
    let t0 = Instant::now();
    let cfg = Config {
        max_attempts: Some(3),
        ..no_jitter()
    };
    let mut sim = Sim::new(cfg.clone(), t0, refuses());
    sim.run_until(t0 + secs(3600));
    assert_eq!(final_reason(&sim), CloseReason::GaveUp { attempts: 3 });
    let starts: Vec<Duration> = sim.connects().iter().map(|c| c.0 - t0).collect();
    assert_eq!(starts, [secs(0), secs(1), secs(3)]);
    assert!(matches!(
        sim.actions().last(),
        Some((
            _,
            Action::StatusChanged {
                to: Status::Closed,
                cause: Cause::GaveUp,
                ..
            }
        ))
    ));

    // A flapping broker cannot dodge the budget: acks do not reset it.
    let mut sim = Sim::new(
        Config {
            max_attempts: Some(4),
            ..no_jitter()
        },
        t0,
        acks_then_closes(|_| secs(1)),
    );
    sim.run_until(t0 + secs(3600));
    assert_eq!(final_reason(&sim), CloseReason::GaveUp { attempts: 4 });
    assert_eq!(sim.connects().len(), 4);

    // A stable Open does reset it: attempt 1 is stable, then two refusals.
    let script: Script = Box::new(|a, now, q| match *a {
        Action::Connect { attempt: 1 } => q.push((now, Event::SocketOpened { attempt: 1 })),
        Action::Connect { attempt } => q.push((
            now,
            Event::ConnectFailed {
                attempt,
                failure: REFUSED,
            },
        )),
        Action::SendHello { attempt } => q.push((now, Event::Ack { attempt })),
        Action::FlushQueue { attempt } => {
            q.push((now + secs(10), Event::TransportLost { attempt }))
        }
        _ => {}
    });
    let mut sim = Sim::new(
        Config {
            max_attempts: Some(2),
            ..no_jitter()
        },
        t0,
        script,
    );
    sim.run_until(t0 + secs(3600));
    assert_eq!(final_reason(&sim), CloseReason::GaveUp { attempts: 2 });
    assert_eq!(sim.connects().len(), 3);
}

#[test]
fn time_budget_gives_up() {
    let t0 = Instant::now();
    let cfg = Config {
        max_unstable: Some(secs(20)),
        ..no_jitter()
    };
    let mut sim = Sim::new(cfg, t0, refuses());
    sim.run_until(t0 + secs(3600));
    // Attempts at 0, 1, 3, 7, 15; the failure at 15 s is within budget, so
    // a retry is scheduled for 31 s, where the spent budget ends it.
    let starts: Vec<u64> = sim
        .connects()
        .iter()
        .map(|c| (c.0 - t0).as_secs())
        .collect();
    assert_eq!(starts, [0, 1, 3, 7, 15]);
    assert_eq!(final_reason(&sim), CloseReason::GaveUp { attempts: 5 });
    let (closed_at, last) = sim.actions().last().cloned().unwrap();
    assert_eq!(closed_at, t0 + secs(31));
    assert!(matches!(
        last,
        Action::StatusChanged {
            from: Status::Reconnecting,
            cause: Cause::GaveUp,
            ..
        }
    ));
}

/// A machine brought to `status` at `t0`, actions drained.
fn machine_in(status: Status, t0: Instant) -> Machine {
    let mut m = Machine::new(no_jitter(), t0).unwrap();
    let steps: &[Event] = match status {
        Status::Connecting => &[],
        Status::AwaitingAck => &[Event::SocketOpened { attempt: 1 }],
        Status::Open => &[
            Event::SocketOpened { attempt: 1 },
            Event::Ack { attempt: 1 },
        ],
        Status::Reconnecting => &[Event::ConnectFailed {
            attempt: 1,
            failure: REFUSED,
        }],
        Status::Closing => &[
            Event::SocketOpened { attempt: 1 },
            Event::Close {
                code: 1000,
                reason: String::new(),
            },
        ],
        Status::Closed => &[Event::Close {
            code: 1000,
            reason: String::new(),
        }],
    };
    for e in steps {
        m.handle(e.clone(), t0);
    }
    drain(&mut m);
    assert_eq!(m.status(), status);
    m
}

fn close_event() -> Event {
    Event::Close {
        code: 1000,
        reason: "done".into(),
    }
}

#[test]
fn close_works_in_every_state_and_is_idempotent() {
    let t0 = Instant::now();
    let at = t0 + ms(10);
    let requested = State::Closed {
        reason: CloseReason::Requested,
    };

    // Connecting: cancel the connect, Closed at once.
    let mut m = machine_in(Status::Connecting, t0);
    m.handle(close_event(), at);
    assert_eq!(
        drain(&mut m),
        [
            Action::DropTransport { attempt: 1 },
            Action::StatusChanged {
                from: Status::Connecting,
                to: Status::Closed,
                cause: Cause::CloseRequested,
                attempt: 1
            }
        ]
    );
    assert_eq!(m.state(), &requested);
    assert_eq!(m.poll_timeout(), None);

    // AwaitingAck and Open: close frame, Closing, then the peer's answer or the grace.
    for status in [Status::AwaitingAck, Status::Open] {
        for answered in [true, false] {
            let mut m = machine_in(status, t0);
            m.handle(close_event(), at);
            assert_eq!(
                drain(&mut m),
                [
                    Action::SendClose {
                        attempt: 1,
                        code: 1000,
                        reason: "done".into()
                    },
                    Action::StatusChanged {
                        from: status,
                        to: Status::Closing,
                        cause: Cause::CloseRequested,
                        attempt: 1
                    }
                ]
            );
            let grace = at + m.config().close_grace;
            assert_eq!(m.poll_timeout(), Some(grace));
            // Close again: idempotent, the grace does not move.
            m.handle(close_event(), at + ms(5));
            assert!(drain(&mut m).is_empty());
            assert_eq!(m.poll_timeout(), Some(grace));
            // Late frames are not activity any more; early timeout is a no-op.
            m.handle(Event::Activity { attempt: 1 }, at + ms(6));
            m.handle_timeout(grace - NS);
            assert!(drain(&mut m).is_empty());
            let cause = if answered {
                m.handle(
                    Event::PeerClosed {
                        attempt: 1,
                        code: 1000,
                        reason: "done".into(),
                    },
                    at + ms(20),
                );
                Cause::CloseCompleted
            } else {
                m.handle_timeout(grace);
                Cause::CloseGraceExpired
            };
            assert_eq!(
                drain(&mut m),
                [
                    Action::DropTransport { attempt: 1 },
                    Action::StatusChanged {
                        from: Status::Closing,
                        to: Status::Closed,
                        cause,
                        attempt: 1
                    }
                ]
            );
            assert_eq!(m.state(), &requested);
            assert_eq!(m.poll_timeout(), None);
        }
    }

    // Reconnecting: no socket, Closed at once, the retry never happens.
    let mut m = machine_in(Status::Reconnecting, t0);
    m.handle(close_event(), at);
    assert_eq!(
        names(&drain(&mut m)),
        ["StatusChanged"],
        "no transport to drop"
    );
    assert_eq!(m.state(), &requested);
    m.handle_timeout(t0 + secs(60));
    assert!(drain(&mut m).is_empty());

    // Closed: nothing, twice.
    let mut m = machine_in(Status::Closed, t0);
    for _ in 0..2 {
        m.handle(close_event(), at);
        assert!(drain(&mut m).is_empty());
        assert_eq!(m.state(), &requested);
    }
}

#[test]
fn reconnect_now_skips_the_delay() {
    let t0 = Instant::now();
    let mut m = machine_in(Status::Reconnecting, t0);
    let State::Reconnecting { retry_at, .. } = *m.state() else {
        unreachable!()
    };
    assert_eq!(retry_at, t0 + secs(1));
    let at = t0 + ms(10);
    m.handle(Event::ReconnectNow, at);
    assert_eq!(
        drain(&mut m),
        [
            Action::StatusChanged {
                from: Status::Reconnecting,
                to: Status::Connecting,
                cause: Cause::ReconnectNow,
                attempt: 2
            },
            Action::Connect { attempt: 2 }
        ]
    );
    assert_eq!(
        m.state(),
        &State::Connecting {
            attempt: 2,
            deadline: at + m.config().connect_timeout
        }
    );
    assert_eq!(
        m.lifecycle().failures(),
        1,
        "a reconnect request is no failure"
    );

    // From Open: the socket goes (with its notice), the next attempt starts now.
    let mut m = machine_in(Status::Open, t0);
    m.handle(Event::ReconnectNow, at);
    let actions = drain(&mut m);
    assert_eq!(
        names(&actions),
        [
            "SendClose",
            "DropTransport",
            "Disconnected",
            "StatusChanged",
            "Connect"
        ]
    );
    assert_eq!(actions[4], Action::Connect { attempt: 2 });
}

/// A broker that fails every attempt in a different way, in turn.
fn every_failure_mode() -> Script {
    Box::new(|a, now, q| match *a {
        Action::Connect { attempt } => match attempt % 8 {
            0 => q.push((
                now + ms(5),
                Event::ConnectFailed {
                    attempt,
                    failure: REFUSED,
                },
            )),
            1 => {} // blackholed: the connect deadline fires
            _ => q.push((now + ms(5), Event::SocketOpened { attempt })),
        },
        Action::SendHello { attempt } => match attempt % 8 {
            2 => {} // never acks
            3 => q.push((now, Event::HelloFailed { attempt })),
            _ => q.push((now + ms(5), Event::Ack { attempt })),
        },
        Action::FlushQueue { attempt } => {
            let later = now + secs(2);
            match attempt % 8 {
                4 => q.push((
                    later,
                    Event::PeerClosed {
                        attempt,
                        code: 1001,
                        reason: "going away".into(),
                    },
                )),
                5 => q.push((later, Event::TransportLost { attempt })),
                6 => {} // half-dead: stale
                _ => q.push((later, Event::MessageTooBig { attempt })),
            }
        }
        // A late answer of the dropped socket, which must be ignored.
        Action::DropTransport { attempt } => {
            q.push((now + ms(1), Event::TransportLost { attempt }))
        }
        _ => {}
    })
}

#[test]
fn disconnected_once_per_opened_attempt_and_before_the_reconnect_notice() {
    let t0 = Instant::now();
    let mut sim = Sim::new(Config::default(), t0, every_failure_mode());
    sim.run_until(t0 + secs(3 * 3600));
    let attempts = sim.connects().len() as u64;
    assert!(attempts >= 40, "{attempts}");
    let mut seen_modes = std::collections::BTreeSet::new();
    for attempt in 1..attempts {
        let opened = sim.log.iter().any(
            |e| matches!(e, Entry::In(_, Event::SocketOpened { attempt: a }) if *a == attempt),
        );
        let positions: Vec<usize> = sim
            .log
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                matches!(e, Entry::Out(_, Action::Disconnected { attempt: a, .. }) if *a == attempt)
            })
            .map(|(i, _)| i)
            .collect();
        assert_eq!(
            positions.len(),
            usize::from(opened),
            "attempt {attempt}: opened {opened}, notices {positions:?}"
        );
        let sched = sim
            .log
            .iter()
            .position(|e| {
                matches!(e, Entry::Out(_, Action::ReconnectScheduled { attempt: a, .. }) if *a == attempt + 1)
            })
            .expect("every attempt here fails and is rescheduled");
        let dropped = sim
            .log
            .iter()
            .position(|e| matches!(e, Entry::Out(_, Action::DropTransport { attempt: a }) if *a == attempt))
            .expect("every transport is dropped");
        if let Some(&p) = positions.first() {
            assert!(dropped < p && p < sched, "attempt {attempt}: order");
            // Same burst: nothing was handled in between.
            assert!(
                sim.log[p..sched]
                    .iter()
                    .all(|e| matches!(e, Entry::Out(..)))
            );
        }
        seen_modes.insert(attempt % 8);
    }
    assert_eq!(seen_modes.len(), 8);
}

#[test]
fn bad_configs_are_typed_errors_at_construction() {
    let t0 = Instant::now();
    let err = |f: &dyn Fn(&mut Config)| {
        let mut c = Config::default();
        f(&mut c);
        Machine::new(c, t0).unwrap_err()
    };
    for (name, set) in [
        (
            "connect_timeout",
            (|c: &mut Config| c.connect_timeout = Duration::ZERO) as fn(&mut Config),
        ),
        ("ack_timeout", |c| c.ack_timeout = Duration::ZERO),
        ("ping_interval", |c| c.ping_interval = Duration::ZERO),
        ("stale_after", |c| c.stale_after = Duration::ZERO),
        ("close_grace", |c| c.close_grace = Duration::ZERO),
        ("min_delay", |c| c.min_delay = Duration::ZERO),
        ("max_unstable", |c| c.max_unstable = Some(Duration::ZERO)),
    ] {
        assert_eq!(err(&set), ConfigError::Zero(name));
    }
    let too_long = Config::MAX_DURATION + NS;
    assert_eq!(
        err(&|c| c.stable_after = too_long),
        ConfigError::TooLong("stable_after")
    );
    assert_eq!(
        err(&|c| c.close_grace = Duration::MAX),
        ConfigError::TooLong("close_grace")
    );
    assert_eq!(
        err(&|c| c.max_unstable = Some(too_long)),
        ConfigError::TooLong("max_unstable")
    );
    assert_eq!(
        err(&|c| c.backoff.push(too_long)),
        ConfigError::TooLong("backoff")
    );
    assert_eq!(err(&|c| c.backoff.clear()), ConfigError::EmptyBackoff);
    assert_eq!(
        err(&|c| c.stale_after = c.ping_interval),
        ConfigError::StaleNotAbovePing {
            stale_after: secs(30),
            ping_interval: secs(30)
        }
    );
    for j in [-0.1, 1.000_001, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            err(&move |c| c.jitter = j),
            ConfigError::Jitter(_)
        ));
    }
    assert_eq!(
        err(&|c| c.max_attempts = Some(0)),
        ConfigError::ZeroAttempts
    );
    // Errors read well.
    assert_eq!(
        ConfigError::Zero("ack_timeout").to_string(),
        "config: `ack_timeout` must be greater than zero"
    );

    // The limits themselves are fine.
    for ok in [
        Config {
            jitter: 0.0,
            ..Config::default()
        },
        Config {
            jitter: 1.0,
            ..Config::default()
        },
        Config {
            max_attempts: Some(1),
            backoff: vec![Duration::ZERO],
            stable_after: Duration::ZERO,
            ..Config::default()
        },
        huge(),
    ] {
        Machine::new(ok, t0).unwrap();
    }
}

/// Every duration at (or just under) the maximum.
fn huge() -> Config {
    Config {
        connect_timeout: Config::MAX_DURATION,
        ack_timeout: Config::MAX_DURATION,
        ping_interval: Config::MAX_DURATION - NS,
        ping_when_idle: false,
        stale_after: Config::MAX_DURATION,
        wake_probe: Config::MAX_DURATION,
        backoff: vec![Config::MAX_DURATION],
        jitter: 0.5,
        min_delay: Config::MAX_DURATION,
        stable_after: Config::MAX_DURATION,
        close_grace: Config::MAX_DURATION,
        terminal_closes: Vec::new(),
        retried_statuses: Config::default().retried_statuses,
        max_retry_after: Config::MAX_DURATION,
        max_attempts: Some(u32::MAX),
        max_unstable: Some(Config::MAX_DURATION),
        seed: 9,
    }
}

#[test]
fn huge_valid_durations_never_overflow() {
    let t0 = Instant::now();
    // Attempts 3, 6, 9... hang in connect; the others open and ack; even ones
    // are then closed by the peer after Config::MAX_DURATION, odd ones go stale.
    // A hundred years of virtual time per step.
    let script = || -> Script {
        Box::new(|a, now, q| match *a {
            Action::Connect { attempt } if attempt % 3 == 0 => {}
            Action::Connect { attempt } => q.push((now, Event::SocketOpened { attempt })),
            Action::SendHello { attempt } => q.push((now, Event::Ack { attempt })),
            Action::FlushQueue { attempt } if attempt % 2 == 0 => q.push((
                now + Config::MAX_DURATION,
                Event::PeerClosed {
                    attempt,
                    code: 1000,
                    reason: String::new(),
                },
            )),
            _ => {}
        })
    };
    let ten_thousand_years = Config::MAX_DURATION * 100;

    // Without budgets it runs forever (Sim asserts every deadline moves on).
    let unbounded = Config {
        max_attempts: None,
        max_unstable: None,
        ..huge()
    };
    let mut sim = Sim::new(unbounded, t0, script());
    sim.run_until(t0 + ten_thousand_years);
    assert!(sim.connects().len() >= 10, "{}", sim.connects().len());
    assert!(sim.m.poll_timeout().is_some_and(|t| t > sim.now));
    // Every delay is the floor, which is also the single schedule entry.
    assert!(sim.scheduled().iter().all(|s| s.2 == Config::MAX_DURATION));

    // With a time budget of Config::MAX_DURATION and a delay just as long, the first
    // retry after the stable Open (stale at t0 + MAX) finds the budget spent.
    let mut sim = Sim::new(huge(), t0, script());
    sim.run_until(t0 + ten_thousand_years);
    assert_eq!(final_reason(&sim), CloseReason::GaveUp { attempts: 0 });
    let (closed_at, _) = sim.actions().last().cloned().unwrap();
    assert_eq!(closed_at, t0 + Config::MAX_DURATION * 2);
}

/// Even an `Instant` close to its own limit does not make deadlines panic;
/// they keep moving forward (halving the step) for as long as a later
/// `Instant` exists at all.
#[test]
fn deadlines_near_the_end_of_time_still_move_forward() {
    let t0 = Instant::now();
    // The largest whole-second offset an Instant can hold from t0.
    let (mut lo, mut hi) = (0u64, u64::MAX);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if t0.checked_add(secs(mid)).is_some() {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let start = t0 + secs(lo) - secs(60);
    let mut m = Machine::new(Config::default(), start).unwrap();
    let mut now = start;
    let mut steps = 0;
    // At the very last representable instant nothing later exists: stop there.
    while now.checked_add(NS).is_some() && steps < 200 {
        drain(&mut m);
        let t = m.poll_timeout().expect("never closes here");
        assert!(t > now, "step {steps}: deadline {t:?} not after {now:?}");
        now = t;
        m.handle_timeout(now);
        steps += 1;
    }
    assert!(steps > 10, "{steps}");
    assert!(now.checked_add(secs(1)).is_none(), "clamping was exercised");
}

// ── Reading paused (the consumer's event buffer is full) ───────────────

#[test]
fn paused_in_awaiting_ack_does_not_time_out_and_resumes_with_the_span_added() {
    let t0 = Instant::now();
    let mut m = machine_in(Status::AwaitingAck, t0);
    let ack = m.config().ack_timeout;
    assert_eq!(m.poll_timeout(), Some(t0 + ack));
    m.handle(Event::ReadPaused, t0 + secs(5));
    assert!(drain(&mut m).is_empty(), "pausing is no status change");
    assert!(m.read_paused());
    assert_eq!(m.poll_timeout(), None, "the wait is on the consumer");
    // Long past the ack deadline: nothing fires.
    m.handle_timeout(t0 + ack + secs(100));
    assert!(drain(&mut m).is_empty());
    assert_eq!(m.status(), Status::AwaitingAck);
    // A second pause keeps the first one's start.
    m.handle(Event::ReadPaused, t0 + secs(50));
    assert!(drain(&mut m).is_empty());
    assert_eq!(m.lifecycle().read_paused_since(), Some(t0 + secs(5)));
    // Resumed after 200 s paused: the deadline moves 200 s later.
    let resumed = t0 + secs(205);
    m.handle(Event::ReadResumed, resumed);
    assert!(drain(&mut m).is_empty());
    assert!(!m.read_paused());
    let due = t0 + ack + secs(200);
    assert_eq!(m.poll_timeout(), Some(due));
    // A second resume changes nothing.
    let before = m.lifecycle().clone();
    m.handle(Event::ReadResumed, resumed + secs(1));
    assert!(drain(&mut m).is_empty());
    assert_eq!(m.lifecycle(), &before);
    m.handle_timeout(due - NS);
    assert!(drain(&mut m).is_empty());
    m.handle_timeout(due);
    let actions = drain(&mut m);
    assert_eq!(
        actions[0],
        Action::SendClose {
            attempt: 1,
            code: 1008,
            reason: "hello ack timeout".into()
        }
    );
    assert_eq!(m.status(), Status::Reconnecting);
}

#[test]
fn a_pause_that_began_before_the_socket_opened_counts_only_from_the_open() {
    let t0 = Instant::now();
    let mut m = machine_in(Status::Connecting, t0);
    m.handle(Event::ReadPaused, t0);
    // The connect deadline still runs while paused.
    assert_eq!(m.poll_timeout(), Some(t0 + m.config().connect_timeout));
    let opened = t0 + secs(3);
    m.handle(Event::SocketOpened { attempt: 1 }, opened);
    drain(&mut m);
    assert_eq!(m.poll_timeout(), None);
    m.handle(Event::ReadResumed, opened + secs(4));
    assert_eq!(
        m.poll_timeout(),
        Some(opened + m.config().ack_timeout + secs(4)),
        "only the 4 s paused in AwaitingAck are added"
    );
}

#[test]
fn paused_in_open_pings_go_out_stale_does_not_fire_and_resume_shifts_activity() {
    let t0 = Instant::now();
    let mut m = machine_in(Status::Open, t0);
    let cfg = m.config().clone();
    m.handle(Event::Activity { attempt: 1 }, t0 + secs(10));
    m.handle(Event::ReadPaused, t0 + secs(20));
    assert!(drain(&mut m).is_empty());
    // Ten minutes paused: a ping every ping_interval, never stale.
    let mut pings = Vec::new();
    let end = t0 + secs(600);
    while let Some(t) = m.poll_timeout().filter(|t| *t <= end) {
        m.handle_timeout(t);
        for a in drain(&mut m) {
            assert_eq!(a, Action::SendPing { attempt: 1 }, "at {:?}", t - t0);
            pings.push((t - t0).as_secs());
        }
    }
    assert_eq!(pings, (1..=20).map(|k| 30 * k).collect::<Vec<_>>());
    assert_eq!(m.status(), Status::Open);
    // Resumed at 600 s: 580 s paused are not silence. last_activity was
    // 10 s; shifted by 580 s it would be 590 s: 10 s of silence remain.
    m.handle(Event::ReadResumed, end);
    assert!(drain(&mut m).is_empty());
    let State::Open { last_activity, .. } = *m.state() else {
        unreachable!()
    };
    assert_eq!(last_activity, t0 + secs(590));
    let stale = t0 + secs(590) + cfg.stale_after;
    let mut fired = Vec::new();
    while let Some(t) = m.poll_timeout().filter(|t| *t <= stale) {
        m.handle_timeout(t);
        fired.push((t, drain(&mut m)));
    }
    let (t, actions) = fired.pop().unwrap();
    assert_eq!(
        t, stale,
        "stale exactly at the shifted last_activity + stale_after"
    );
    assert_eq!(
        names(&actions)[..2],
        ["SendClose", "DropTransport"],
        "{actions:?}"
    );
    assert!(fired.iter().all(|(_, a)| names(a) == ["SendPing"]));
}

#[test]
fn resume_in_open_never_moves_last_activity_past_now() {
    let t0 = Instant::now();
    let mut m = machine_in(Status::Open, t0);
    m.handle(Event::ReadPaused, t0 + secs(1));
    // Frames read before the pause took effect still count as activity.
    m.handle(Event::Activity { attempt: 1 }, t0 + secs(8));
    m.handle(Event::ReadResumed, t0 + secs(9));
    let State::Open { last_activity, .. } = *m.state() else {
        unreachable!()
    };
    assert_eq!(last_activity, t0 + secs(9));
}

#[test]
fn paused_in_reconnecting_starts_no_attempt_until_resumed_then_at_once() {
    let t0 = Instant::now();
    let mut m = machine_in(Status::Reconnecting, t0);
    let State::Reconnecting { retry_at, .. } = *m.state() else {
        unreachable!()
    };
    m.handle(Event::ReadPaused, t0 + ms(100));
    assert_eq!(m.poll_timeout(), None);
    m.handle_timeout(retry_at + secs(60));
    assert!(drain(&mut m).is_empty(), "no Connect while paused");
    let resumed = retry_at + secs(60);
    m.handle(Event::ReadResumed, resumed);
    assert!(drain(&mut m).is_empty());
    // The retry fell due while paused: it is due at once.
    assert_eq!(m.poll_timeout(), Some(retry_at));
    assert_eq!(m.due(resumed), Some(ws_lifecycle::fsm::Timer::Retry));
    m.handle_timeout(resumed);
    assert_eq!(
        drain(&mut m),
        [
            Action::StatusChanged {
                from: Status::Reconnecting,
                to: Status::Connecting,
                cause: Cause::RetryDue,
                attempt: 2
            },
            Action::Connect { attempt: 2 }
        ]
    );

    // Resumed before the retry was due: it stays where it was.
    let mut m = machine_in(Status::Reconnecting, t0);
    m.handle(Event::ReadPaused, t0 + ms(100));
    m.handle(Event::ReadResumed, t0 + ms(200));
    assert_eq!(m.poll_timeout(), Some(retry_at));
}

#[test]
fn reconnect_now_and_close_still_work_while_paused() {
    let t0 = Instant::now();
    let mut m = machine_in(Status::Reconnecting, t0);
    m.handle(Event::ReadPaused, t0);
    m.handle(Event::ReconnectNow, t0 + ms(1));
    assert_eq!(names(&drain(&mut m)), ["StatusChanged", "Connect"]);
    assert!(m.read_paused(), "the pause outlives the state change");
    assert_eq!(
        m.poll_timeout(),
        Some(t0 + ms(1) + m.config().connect_timeout)
    );
    m.handle(close_event(), t0 + ms(2));
    assert_eq!(names(&drain(&mut m)), ["DropTransport", "StatusChanged"]);
    assert!(m.is_closed());
    assert!(!m.read_paused());
    for e in [Event::ReadPaused, Event::ReadResumed] {
        m.handle(e, t0 + ms(3));
        assert!(drain(&mut m).is_empty());
    }
    assert!(!m.read_paused(), "Closed ignores pauses");
}

// ── Reconnect-now respects the give-up budgets ─────────────────────────

#[test]
fn reconnect_now_with_a_spent_attempt_budget_gives_up() {
    let t0 = Instant::now();
    let cfg = Config {
        max_attempts: Some(2),
        ..no_jitter()
    };
    let mut m = Machine::new(cfg, t0).unwrap();
    drain(&mut m);
    // Attempt 1 → reconnect now → attempt 2 (budget 2: allowed).
    m.handle(Event::ReconnectNow, t0 + ms(1));
    assert_eq!(
        names(&drain(&mut m)),
        ["DropTransport", "StatusChanged", "Connect"]
    );
    assert_eq!(m.attempt(), Some(2));
    assert_eq!(
        m.lifecycle().failures(),
        0,
        "a reconnect request is no failure"
    );
    // Attempt 2 opens; reconnect now: the budget is spent, give up.
    m.handle(Event::SocketOpened { attempt: 2 }, t0 + ms(2));
    drain(&mut m);
    m.handle(Event::ReconnectNow, t0 + ms(3));
    let actions = drain(&mut m);
    assert_eq!(
        actions,
        [
            Action::SendClose {
                attempt: 2,
                code: 1000,
                reason: "reconnect requested".into()
            },
            Action::DropTransport { attempt: 2 },
            Action::Disconnected {
                attempt: 2,
                code: 1006,
                reason: "reconnect requested".into()
            },
            Action::StatusChanged {
                from: Status::AwaitingAck,
                to: Status::Closed,
                cause: Cause::GaveUp,
                attempt: 2
            },
        ]
    );
    assert_eq!(
        m.state(),
        &State::Closed {
            reason: CloseReason::GaveUp { attempts: 2 }
        }
    );
    assert_eq!(m.lifecycle().failures(), 0);
}

#[test]
fn reconnect_now_with_a_spent_time_budget_gives_up() {
    let t0 = Instant::now();
    let cfg = Config {
        max_unstable: Some(secs(30)),
        ..no_jitter()
    };
    let mut m = Machine::new(cfg, t0).unwrap();
    drain(&mut m);
    m.handle(
        Event::ConnectFailed {
            attempt: 1,
            failure: REFUSED,
        },
        t0,
    );
    drain(&mut m);
    m.handle(Event::ReconnectNow, t0 + secs(29));
    assert_eq!(names(&drain(&mut m)), ["StatusChanged", "Connect"]);
    m.handle(Event::ReconnectNow, t0 + secs(30));
    assert_eq!(
        drain(&mut m),
        [
            Action::DropTransport { attempt: 2 },
            Action::StatusChanged {
                from: Status::Connecting,
                to: Status::Closed,
                cause: Cause::GaveUp,
                attempt: 2
            },
        ]
    );
}

#[test]
fn reconnect_now_after_a_stable_open_resets_the_budget_first() {
    let t0 = Instant::now();
    let cfg = Config {
        max_attempts: Some(1),
        ..no_jitter()
    };
    let mut m = Machine::new(cfg.clone(), t0).unwrap();
    m.handle(Event::SocketOpened { attempt: 1 }, t0);
    m.handle(Event::Ack { attempt: 1 }, t0);
    drain(&mut m);
    // Not yet stable: attempt budget 1 is spent.
    let mut early = m.clone();
    early.handle(Event::ReconnectNow, t0 + secs(1));
    assert!(early.is_closed());
    // Stable: the budget starts over, the next attempt starts.
    m.handle(Event::ReconnectNow, t0 + cfg.stable_after);
    assert_eq!(names(&drain(&mut m))[3..], ["StatusChanged", "Connect"]);
    assert_eq!(m.attempt(), Some(2));
}

// ── Our own drops: a best-effort close frame first ─────────────────────

#[test]
fn every_own_drop_sends_its_close_code_right_before_dropping() {
    let t0 = Instant::now();
    let at = t0 + ms(1);
    // (state, what happens, close code sent, Disconnected code and reason)
    let cases: Vec<(Status, Option<Event>, u16, u16, &str)> = vec![
        (
            Status::AwaitingAck,
            Some(Event::HelloFailed { attempt: 1 }),
            1011,
            1006,
            "hello failed",
        ),
        (Status::AwaitingAck, None, 1008, 1006, "hello ack timeout"),
        (
            Status::Open,
            None,
            1001,
            1006,
            "no inbound data within stale_after",
        ),
        (
            Status::AwaitingAck,
            Some(Event::ReconnectNow),
            1000,
            1006,
            "reconnect requested",
        ),
        (
            Status::Open,
            Some(Event::ReconnectNow),
            1000,
            1006,
            "reconnect requested",
        ),
        (
            Status::Open,
            Some(Event::ProtocolError {
                attempt: 1,
                code: 1002,
            }),
            1002,
            1006,
            "protocol error (sent 1002)",
        ),
        (
            Status::AwaitingAck,
            Some(Event::ProtocolError {
                attempt: 1,
                code: 1007,
            }),
            1007,
            1006,
            "invalid UTF-8 (sent 1007)",
        ),
        (
            Status::Open,
            Some(Event::ProtocolError {
                attempt: 1,
                code: 1005,
            }),
            1002,
            1006,
            "protocol error (sent 1002)",
        ),
        (
            Status::Open,
            Some(Event::MessageTooBig { attempt: 1 }),
            1009,
            1009,
            "message too big",
        ),
    ];
    for (status, event, sent, code, reason) in cases {
        let mut m = machine_in(status, t0);
        match &event {
            Some(e) => m.handle(e.clone(), at),
            None => {
                // The state's failure deadline: ack timeout, or stale (the
                // pings before it go out first).
                while m.status() == status {
                    let due = m.poll_timeout().unwrap();
                    m.handle_timeout(due);
                    if m.status() == status {
                        drain(&mut m);
                    }
                }
            }
        }
        let actions = drain(&mut m);
        let what = format!("{status:?} + {event:?}: {actions:?}");
        let drop = actions
            .iter()
            .position(|a| matches!(a, Action::DropTransport { .. }))
            .unwrap_or_else(|| panic!("no DropTransport: {what}"));
        assert!(drop >= 1, "{what}");
        assert!(
            matches!(&actions[drop - 1], Action::SendClose { attempt: 1, code, .. } if *code == sent),
            "{what}"
        );
        assert_eq!(
            actions[drop + 1],
            Action::Disconnected {
                attempt: 1,
                code,
                reason: reason.into()
            },
            "{what}"
        );
    }
}

#[test]
fn drops_the_peer_caused_send_no_close_frame() {
    let t0 = Instant::now();
    for event in [
        Event::TransportLost { attempt: 1 },
        Event::PeerClosed {
            attempt: 1,
            code: 1001,
            reason: "going away".into(),
        },
    ] {
        let mut m = machine_in(Status::Open, t0);
        m.handle(event, t0 + ms(1));
        let actions = drain(&mut m);
        assert_eq!(actions[0], Action::DropTransport { attempt: 1 });
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, Action::SendClose { .. }))
        );
    }
}

#[test]
fn protocol_errors_end_the_connection_or_complete_a_close() {
    let t0 = Instant::now();
    let perr = |attempt| Event::ProtocolError {
        attempt,
        code: 1002,
    };
    // Open: a failure like any other; the backoff counts it.
    let mut m = machine_in(Status::Open, t0);
    m.handle(perr(1), t0 + ms(1));
    let actions = drain(&mut m);
    assert!(matches!(
        actions[3],
        Action::StatusChanged {
            from: Status::Open,
            to: Status::Reconnecting,
            cause: Cause::ProtocolError,
            attempt: 2
        }
    ));
    assert_eq!(m.lifecycle().failures(), 1);
    // Of another attempt: ignored.
    let mut m = machine_in(Status::Open, t0);
    m.handle(perr(2), t0 + ms(1));
    assert!(drain(&mut m).is_empty());
    // Closing: the close is over; the socket goes.
    let mut m = machine_in(Status::Closing, t0);
    m.handle(perr(1), t0 + ms(1));
    let actions = drain(&mut m);
    assert_eq!(actions[0], Action::DropTransport { attempt: 1 });
    assert!(matches!(
        actions[1],
        Action::StatusChanged {
            cause: Cause::CloseCompleted,
            ..
        }
    ));
    assert_eq!(
        m.state(),
        &State::Closed {
            reason: CloseReason::Requested
        }
    );
    // Connecting, Reconnecting, Closed: ignored.
    for status in [Status::Connecting, Status::Reconnecting, Status::Closed] {
        let mut m = machine_in(status, t0);
        m.handle(perr(1), t0 + ms(1));
        assert!(drain(&mut m).is_empty(), "{status:?}");
        assert_eq!(m.status(), status);
    }
}
