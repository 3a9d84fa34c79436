//! The exploration's own parts, checked directly: the configuration it
//! explores, the abstraction that makes the space finite, and the README
//! splice of the generated diagram. `fsm_exhaustive` and `diagram_fresh`
//! check what the whole walk finds; these say why it can find it.

use std::time::{Duration, Instant};

use ws_lifecycle::fsm::explore::{
    self, EXPLORATION_SEED, Graph, PREFIX_CODE, Point, TERMINAL_CODE, TERMINAL_PREFIX,
    abstract_state, exploration_config,
};
use ws_lifecycle::fsm::{Event, Lifecycle, State, diagram, step};
use ws_lifecycle::{CloseRule, Config, Status};

const NS: Duration = Duration::from_nanos(1);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn the_explored_configuration_is_the_documented_one() {
    let c = exploration_config();
    assert_eq!(c.validate(), Ok(()));
    assert_eq!(c.backoff, [1, 2, 4].map(secs));
    assert_eq!(
        c.terminal_closes,
        [
            CloseRule::code(TERMINAL_CODE),
            CloseRule::code_with_prefix(PREFIX_CODE, TERMINAL_PREFIX),
        ]
    );
    assert_eq!(c.max_attempts, Some(5));
    assert_eq!(c.max_unstable, Some(secs(30)));
    // Pinned on its own, so a new default seed cannot move the diagram.
    assert_eq!(c.seed, EXPLORATION_SEED);
    // Everything else is the default.
    let d = Config::default();
    assert_eq!(
        Config {
            backoff: d.backoff.clone(),
            terminal_closes: d.terminal_closes.clone(),
            max_attempts: d.max_attempts,
            max_unstable: d.max_unstable,
            seed: d.seed,
            ..c
        },
        d
    );
}

/// A lifecycle of `cfg` in Open since `t0`, with the given counters.
fn open_at(cfg: &Config, t0: Instant) -> Lifecycle {
    let (start, _) = Lifecycle::start(cfg, t0);
    let (awaiting, _) = step(&start, Event::SocketOpened { attempt: 1 }, t0, cfg);
    let (open, _) = step(&awaiting, Event::Ack { attempt: 1 }, t0, cfg);
    assert_eq!(open.state().status(), Status::Open);
    open
}

#[test]
fn the_abstraction_tells_a_stable_open_from_a_fresh_one() {
    let cfg = exploration_config();
    let t0 = Instant::now();
    let open = open_at(&cfg, t0);
    let at = |now| {
        abstract_state(
            &Point {
                lifecycle: open.clone(),
                now,
            },
            &cfg,
        )
    };
    let stable_at = t0 + cfg.stable_after;
    // (status, failures, attempts since stable, stable, sixteenths, paused, probe)
    assert_eq!(at(t0), (Status::Open, 0, 1, false, 0, false, false));
    assert!(!at(stable_at - NS).3);
    assert!(at(stable_at).3);
    assert!(at(stable_at + secs(1)).3);
    // Only Open can be stable.
    let closing = open.clone().with_state(State::Closing {
        attempt: 1,
        deadline: stable_at,
    });
    let point = Point {
        lifecycle: closing,
        now: stable_at,
    };
    assert_eq!(abstract_state(&point, &cfg).0, Status::Closing);
    assert!(!abstract_state(&point, &cfg).3);
}

#[test]
fn the_abstraction_counts_the_time_budget_in_sixteenths_up_to_seventeen() {
    let cfg = exploration_config(); // a 30 s budget: one sixteenth is 1.875 s
    let t0 = Instant::now();
    let (start, _) = Lifecycle::start(&cfg, t0);
    let sixteenths = |cfg: &Config, spent: Duration| {
        abstract_state(
            &Point {
                lifecycle: start.clone(),
                now: t0 + spent,
            },
            cfg,
        )
        .4
    };
    let table = [
        (Duration::ZERO, 0),
        (Duration::from_millis(1_874), 0),
        (Duration::from_millis(1_875), 1),
        (secs(15), 8),
        (secs(30) - NS, 15),
        (secs(30), 16),
        (Duration::from_millis(31_875), 17),
        (secs(3600), 17),
    ];
    for (spent, want) in table {
        assert_eq!(sixteenths(&cfg, spent), want, "{spent:?}");
    }
    // Without a time budget the component stays 0; a zero budget (which
    // validation refuses, but the abstraction takes any config) too.
    for max_unstable in [None, Some(Duration::ZERO)] {
        let c = Config {
            max_unstable,
            ..exploration_config()
        };
        assert_eq!(sixteenths(&c, secs(3600)), 0, "{max_unstable:?}");
    }
}

#[test]
fn the_abstraction_caps_the_counters_just_past_their_limits() {
    let t0 = Instant::now();
    // Refused attempts pile up failures; the counters are capped one past
    // the schedule's length (backoff) and one past the attempt budget.
    let run = |cfg: &Config, failures: usize| {
        let (mut lc, _) = Lifecycle::start(cfg, t0);
        let mut now = t0;
        for _ in 0..failures {
            let attempt = lc.state().transport_attempt().unwrap();
            lc = step(
                &lc,
                Event::ConnectFailed {
                    attempt,
                    failure: explore::REFUSED,
                },
                now,
                cfg,
            )
            .0;
            let State::Reconnecting { retry_at, .. } = *lc.state() else {
                panic!("{:?}", lc.state())
            };
            now = retry_at;
            lc = step(&lc, Event::Timeout, now, cfg).0;
        }
        let s = abstract_state(&Point { lifecycle: lc, now }, cfg);
        (s.1, s.2)
    };
    let unbounded = Config {
        max_attempts: None,
        max_unstable: None,
        ..exploration_config()
    };
    // Three backoff steps: failures count 0..=4; attempts 1..=5 (cap 3 + 1, + 1).
    assert_eq!(run(&unbounded, 0), (0, 1));
    assert_eq!(run(&unbounded, 3), (3, 4));
    assert_eq!(run(&unbounded, 4), (4, 5));
    assert_eq!(run(&unbounded, 9), (4, 5));
    // A budget of 8 attempts lifts the attempt cap to 9.
    let budget = Config {
        max_attempts: Some(8),
        ..unbounded
    };
    assert_eq!(run(&budget, 6), (4, 7));
    assert_eq!(run(&budget, 7), (4, 8));
}

#[test]
fn the_abstraction_sees_a_read_pause_and_a_wake_probe() {
    let cfg = exploration_config();
    let t0 = Instant::now();
    let open = open_at(&cfg, t0);
    let point = |lifecycle| Point { lifecycle, now: t0 };
    let (paused, _) = step(&open, Event::ReadPaused, t0, &cfg);
    let (probing, _) = step(&open, Event::Woke, t0, &cfg);
    let flags = |lc: Lifecycle| {
        let s = abstract_state(&point(lc), &cfg);
        (s.5, s.6)
    };
    assert_eq!(flags(open.clone()), (false, false));
    assert_eq!(flags(paused), (true, false));
    assert_eq!(flags(probing), (false, true));
}

#[test]
fn socket_and_caller_events_come_a_moment_after_the_point() {
    let cfg = exploration_config();
    let t0 = Instant::now();
    let open = open_at(&cfg, t0);
    let point = Point {
        lifecycle: open,
        now: t0 + secs(1),
    };
    let events = explore::events_at(&point, &cfg);
    let later = point.now + Duration::from_millis(1);
    let next_ping = t0 + cfg.ping_interval;
    for (event, at) in &events {
        match event {
            Event::Timeout => assert_eq!(*at, next_ping),
            Event::Judged { event, .. } if **event == Event::Timeout => {
                assert_eq!(*at, next_ping)
            }
            _ => assert_eq!(*at, later, "{event:?}"),
        }
    }
    // Each socket event for the current attempt and for the one before.
    for attempt in [1, 0] {
        assert!(events.contains(&(Event::Activity { attempt }, later)));
    }
    assert!(events.iter().any(|(e, _)| *e == Event::Timeout));
}

#[test]
fn the_readme_splice_replaces_only_what_lies_between_the_markers() {
    let graph = Graph::default();
    let block = diagram::mermaid_block(&graph);
    let (open, close) = diagram::README_MARKERS;
    let readme = format!("# Title\n\nintro\n{open}\nold diagram\n{close}\noutro\n");
    let spliced = diagram::splice_readme(&readme, &graph).expect("markers present");
    assert_eq!(
        spliced,
        format!("# Title\n\nintro\n{open}\n{block}{close}\noutro\n")
    );
    // Splicing again changes nothing.
    assert_eq!(diagram::splice_readme(&spliced, &graph), Some(spliced));
    // Without both markers, in order, the README is left alone.
    for text in [
        String::new(),
        "no markers\n".to_owned(),
        format!("{open}\nonly the start\n"),
        format!("only the end\n{close}\n"),
        format!("{close}\nreversed\n{open}\n"),
    ] {
        assert_eq!(diagram::splice_readme(&text, &graph), None, "{text:?}");
    }
}

#[test]
fn a_skipped_ping_is_pending_only_after_a_frame_since_the_deadline_was_set() {
    let idle = Config {
        ping_when_idle: true,
        ..exploration_config()
    };
    let t0 = Instant::now();
    let point = |lifecycle| Point { lifecycle, now: t0 };
    let open = open_at(&idle, t0);
    // Just opened: the last frame (the ack) is when the deadline was set.
    assert!(!explore::ping_skip_pending(&point(open.clone()), &idle));
    // A frame a nanosecond later falls within the interval before the ping.
    let (busy, _) = step(&open, Event::Activity { attempt: 1 }, t0 + NS, &idle);
    assert!(explore::ping_skip_pending(&point(busy.clone()), &idle));
    // Without the option nothing is ever skipped.
    let plain = exploration_config();
    assert!(!explore::ping_skip_pending(&point(busy), &plain));
    let (busy, _) = step(
        &open_at(&plain, t0),
        Event::Activity { attempt: 1 },
        t0 + NS,
        &plain,
    );
    assert!(!explore::ping_skip_pending(&point(busy), &plain));
}
