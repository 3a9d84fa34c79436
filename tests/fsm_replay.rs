//! Replaying a recording in the core (`fsm::replay`): the same inputs at
//! the same offsets give the same actions from any base instant, and each
//! step says what it fired and did. (Here rather than in `src/fsm`, which
//! never reads a clock: these tests take a base from `Instant::now()`.)

use std::io;
use std::time::{Duration, Instant};

use ws_lifecycle::fsm::{Action, Event, Machine, Record, Recording, State, Step, Timer};
use ws_lifecycle::{
    CloseReason, CloseRule, Config, ConfigError, ConnectFailure, RejectedBy, Status, Verdict,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn input(at: u64, event: Event) -> Record {
    Record::Input { at: ms(at), event }
}

/// A recording made here of `config` and `records`.
fn recorded(config: Config, records: Vec<Record>) -> Recording {
    Recording {
        records,
        ..Recording::new(config)
    }
}

/// The input steps of a replay (the start and the gaps left out).
fn inputs(steps: impl Iterator<Item = Step>) -> Vec<Step> {
    steps.filter(|s| matches!(s, Step::Input { .. })).collect()
}

/// An input step's statuses before and after, and the timer it fired.
fn moved(step: &Step) -> (Status, Status, Option<Timer>) {
    match step {
        Step::Input {
            from, to, fired, ..
        } => (*from, *to, *fired),
        other => panic!("not an input: {other:?}"),
    }
}

/// A flapping session with jitter, a judged failure and a terminal close.
fn recording(seed: u64) -> Recording {
    recorded(
        Config {
            terminal_closes: vec![CloseRule::code(4001)],
            seed,
            ..Config::default()
        },
        vec![
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
    )
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
    let mut replay = recording.replay(later).unwrap();
    assert_eq!(replay.finish(), actions);
    assert_eq!(replay.dropped(), 0);
    assert_eq!(replay.machine().status(), machine.status());
    assert_eq!(
        replay.machine().state(),
        &State::Closed {
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
    let steps = inputs(replay);
    let lost = &steps[3];
    assert_eq!(
        moved(lost),
        (Status::Open, Status::Reconnecting, None),
        "{lost}"
    );
    assert_eq!(moved(&steps[4]).2, Some(Timer::Retry));
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
    let recording = recorded(
        Config::default(),
        vec![
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
    );
    let steps: Vec<Step> = recording.replay(Instant::now()).unwrap().collect();
    assert_eq!(steps[0].to_string(), "+0.000000s start: Connect#1");
    assert_eq!(moved(&steps[1]).2, None, "a judged connect failure");
    assert_eq!(moved(&steps[2]).2, Some(Timer::Retry));
    assert_eq!(moved(&steps[3]).2, Some(Timer::Connect), "a judged timeout");
    assert!(
        steps[3]
            .to_string()
            .contains("Judged(retry: Timeout(connect))")
    );
}

#[test]
fn a_step_with_actions_and_no_status_change_is_eventful() {
    let recording = recorded(
        Config::default(),
        vec![
            input(1, Event::SocketOpened { attempt: 1 }),
            input(2, Event::Ack { attempt: 1 }),
            input(30_002, Event::Timeout),
            input(30_003, Event::Activity { attempt: 1 }),
        ],
    );
    let mut replay = recording.replay(Instant::now()).unwrap();
    let start = replay.next().unwrap();
    assert!(start.is_eventful(), "the start: {start}");
    let steps = inputs(replay);
    assert!(steps[1].is_eventful(), "AwaitingAck -> Open");
    let ping = &steps[2];
    assert_eq!(moved(ping), (Status::Open, Status::Open, Some(Timer::Ping)));
    assert_eq!(ping.actions(), [Action::SendPing { attempt: 1 }]);
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
    assert!(steps[3].is_eventful(), "a gap is worth a line");
    assert!(steps[3].to_string().contains("5 inputs lost"));
    assert!(replay.machine().is_closed());
}

#[test]
fn a_bad_config_is_an_error_and_odd_times_do_not_panic() {
    let bad = Recording::new(Config {
        backoff: Vec::new(),
        ..Config::default()
    });
    assert_eq!(
        bad.replay(Instant::now()).err(),
        Some(ConfigError::EmptyBackoff)
    );
    // Times going backwards, and the largest offset a record can hold.
    let odd = recorded(
        Config::default(),
        vec![
            input(10_000, Event::SocketOpened { attempt: 1 }),
            input(5, Event::Timeout),
            Record::Input {
                at: Duration::from_nanos(u64::MAX),
                event: Event::Timeout,
            },
        ],
    );
    let replayed = odd.replay(Instant::now()).unwrap().finish();
    assert!(!replayed.is_empty());
}
