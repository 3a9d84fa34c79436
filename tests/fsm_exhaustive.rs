//! Exhaustive exploration: every reachable abstract state × every event (the
//! same breadth-first walk the diagram is drawn from), with the design's
//! invariants checked on every edge.

mod fsm_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ws_lifecycle::fsm::explore::REFUSED;
use ws_lifecycle::fsm::{
    Action, Event, Lifecycle, State,
    explore::{self, Graph, Point, exploration_config},
    step,
};
use ws_lifecycle::{Cause, CloseReason, CloseRule, Config, RejectedBy, Status};

use fsm_support::check_edge;

/// Close from any point reaches Closed or Closing; from Closing the grace
/// timeout reaches Closed; and a second Close changes nothing.
fn check_close_from(cfg: &Config, point: &Point) -> Result<(), String> {
    let close = || Event::Close {
        code: 1000,
        reason: String::new(),
    };
    let at = point.now + Duration::from_millis(1);
    let (closed, actions) = step(&point.lifecycle, close(), at, cfg);
    check_edge(cfg, &point.lifecycle, &close(), at, &closed, &actions)?;
    let (again, actions) = step(&closed, close(), at, cfg);
    if !actions.is_empty() || again != closed {
        return Err("a second Close did something".into());
    }
    match *closed.state() {
        State::Closed { .. } => Ok(()),
        State::Closing { deadline, .. } => {
            let (done, actions) = step(&closed, Event::Timeout, deadline, cfg);
            check_edge(cfg, &closed, &Event::Timeout, deadline, &done, &actions)?;
            if done.state().status() != Status::Closed {
                return Err(format!("grace timeout left {:?}", done.state()));
            }
            Ok(())
        }
        ref other => Err(format!("Close led to {other:?}")),
    }
}

struct Report {
    graph: Graph,
    statuses: BTreeSet<Status>,
    /// Statuses reached with reading paused.
    paused: BTreeSet<Status>,
    causes: BTreeSet<Cause>,
    /// Who rejected, in short (`close 4001`, `http 403`, `caller`).
    rejected_by: BTreeSet<String>,
    errors: Vec<String>,
}

fn short(by: &RejectedBy) -> String {
    match by {
        RejectedBy::Close { code, .. } => format!("close {code}"),
        RejectedBy::Http { status } => format!("http {status}"),
        RejectedBy::Proxy { .. } => "proxy".into(),
        RejectedBy::SocksAuth => "socks auth".into(),
        RejectedBy::Caller { .. } => "caller".into(),
    }
}

fn run(cfg: &Config) -> Report {
    let t0 = Instant::now();
    let mut statuses = BTreeSet::new();
    let mut paused = BTreeSet::new();
    let mut causes = BTreeSet::new();
    let mut rejected_by = BTreeSet::new();
    let mut errors = Vec::new();
    let graph = explore::explore(cfg, t0, |before, event, after, actions| {
        statuses.insert(before.lifecycle.state().status());
        statuses.insert(after.lifecycle.state().status());
        if after.lifecycle.read_paused() {
            paused.insert(after.lifecycle.state().status());
        }
        if let State::Closed {
            reason: CloseReason::Rejected { by },
        } = after.lifecycle.state()
        {
            rejected_by.insert(short(by));
        }
        for a in actions {
            if let Action::StatusChanged { cause, .. } = a {
                causes.insert(*cause);
            }
        }
        let result = check_edge(
            cfg,
            &before.lifecycle,
            event,
            after.now,
            &after.lifecycle,
            actions,
        )
        .and_then(|()| check_close_from(cfg, after));
        if let Err(e) = result {
            if errors.len() < 20 {
                errors.push(format!(
                    "{e}\n    before {:?}\n    event {event:?}\n    after {:?}\n    actions {actions:?}",
                    before.lifecycle.state(), after.lifecycle.state()
                ));
            }
        }
    });
    Report {
        graph,
        statuses,
        paused,
        causes,
        rejected_by,
        errors,
    }
}

fn assert_clean(name: &str, r: &Report) {
    assert!(
        r.errors.is_empty(),
        "{name}: invariants broken:\n{}",
        r.errors.join("\n")
    );
    assert_eq!(
        r.statuses,
        Status::ALL.into_iter().collect(),
        "{name}: not every status reached"
    );
    // Every status but Closed is explored with reading paused too.
    let mut live: BTreeSet<Status> = Status::ALL.into_iter().collect();
    live.remove(&Status::Closed);
    assert_eq!(r.paused, live, "{name}: not every status reached paused");
    assert!(
        !r.graph
            .edges
            .keys()
            .any(|(from, _)| *from == Status::Closed),
        "{name}: an edge leaves Closed"
    );
}

fn labels(g: &Graph) -> usize {
    g.edges.values().map(BTreeSet::len).sum()
}

#[test]
fn exploration_upholds_every_invariant() {
    let cfg = exploration_config();
    let r = run(&cfg);
    eprintln!(
        "exploration_config: {} abstract states, {} transitions (state x event pairs), \
         {} merged edges ({} distinct labels)",
        r.graph.states,
        r.graph.transitions,
        r.graph.edges.len(),
        labels(&r.graph)
    );
    assert_clean("exploration_config", &r);
    assert!(r.graph.states >= 900, "only {} states", r.graph.states);
    assert!(r.graph.transitions >= 19_000, "{}", r.graph.transitions);
    // Every cause of a status change is exercised.
    let all_causes = [
        Cause::SocketOpened,
        Cause::ConnectFailed,
        Cause::ConnectTimeout,
        Cause::HelloFailed,
        Cause::AckTimeout,
        Cause::Acked,
        Cause::Stale,
        Cause::WakeProbeFailed,
        Cause::PeerClosed,
        Cause::TransportLost,
        Cause::MessageTooBig,
        Cause::ProtocolError,
        Cause::RetryDue,
        Cause::ReconnectNow,
        Cause::CloseRequested,
        Cause::CloseCompleted,
        Cause::CloseGraceExpired,
        Cause::Rejected,
        Cause::GaveUp,
    ];
    assert_eq!(r.causes, all_causes.into_iter().collect());
    // Every kind of rejection the exploration can cause is reached: both
    // close rules, the terminal HTTP answer, the caller's verdicts.
    let by: BTreeSet<String> = ["caller", "close 1008", "close 4001", "http 403"]
        .map(String::from)
        .into();
    assert_eq!(r.rejected_by, by);
    // The merged edges, exactly: the picture in docs/state-diagram.md.
    use Status::*;
    let want: BTreeSet<(Status, Status)> = [
        (Connecting, Connecting),
        (Connecting, AwaitingAck),
        (Connecting, Reconnecting),
        (Connecting, Closed),
        (AwaitingAck, Connecting),
        (AwaitingAck, AwaitingAck),
        (AwaitingAck, Open),
        (AwaitingAck, Reconnecting),
        (AwaitingAck, Closing),
        (AwaitingAck, Closed),
        (Open, Connecting),
        (Open, Open),
        (Open, Reconnecting),
        (Open, Closing),
        (Open, Closed),
        (Reconnecting, Connecting),
        (Reconnecting, Reconnecting),
        (Reconnecting, Closed),
        (Closing, Closing),
        (Closing, Closed),
    ]
    .into_iter()
    .collect();
    let got: BTreeSet<_> = r.graph.edges.keys().copied().collect();
    assert_eq!(got, want);
    // The start point is closable too (the visitor only sees reached ones).
    let (lifecycle, _) = Lifecycle::start(&cfg, Instant::now());
    let start = Point {
        lifecycle,
        now: Instant::now(),
    };
    check_close_from(&cfg, &start).unwrap();
}

#[test]
fn other_configs_uphold_every_invariant() {
    let base = exploration_config;
    let configs: Vec<(&str, Config)> = vec![
        (
            "jitter 0",
            Config {
                jitter: 0.0,
                ..base()
            },
        ),
        (
            "jitter 1",
            Config {
                jitter: 1.0,
                ..base()
            },
        ),
        (
            "no budgets",
            Config {
                max_attempts: None,
                max_unstable: None,
                ..base()
            },
        ),
        (
            "terminal code with reason",
            Config {
                terminal_closes: vec![CloseRule::code_with_prefix(
                    explore::TERMINAL_CODE,
                    "banned",
                )],
                ..base()
            },
        ),
        (
            "terminal code with another reason (never matches)",
            Config {
                terminal_closes: vec![CloseRule::code_with_prefix(explore::TERMINAL_CODE, "other")],
                ..base()
            },
        ),
        (
            "floor above the schedule, one attempt",
            Config {
                jitter: 1.0,
                min_delay: Duration::from_secs(3),
                max_attempts: Some(1),
                ..base()
            },
        ),
        (
            "4xx retried, Retry-After ignored",
            Config {
                retried_statuses: vec![400..=599],
                max_retry_after: Duration::ZERO,
                ..base()
            },
        ),
        (
            "Retry-After capped below the schedule",
            Config {
                max_retry_after: Duration::from_millis(1500),
                ..base()
            },
        ),
        (
            "ping only when idle",
            Config {
                ping_when_idle: true,
                ..base()
            },
        ),
        ("defaults", Config::default()),
    ];
    for (name, cfg) in configs {
        cfg.validate().unwrap();
        let r = run(&cfg);
        eprintln!(
            "{name}: {} abstract states, {} transitions, {} merged edges ({} labels)",
            r.graph.states,
            r.graph.transitions,
            r.graph.edges.len(),
            labels(&r.graph)
        );
        assert_clean(name, &r);
        let rejected = r.rejected_by.contains("close 4001");
        let terminal = cfg.is_terminal(4001, "banned");
        assert_eq!(rejected, terminal, "{name}: rejected by 4001 reachable?");
        let http = r.rejected_by.contains("http 403");
        assert_eq!(http, !cfg.is_retried_status(403), "{name}: 403 terminal?");
        assert!(r.rejected_by.contains("caller"), "{name}");
        let gave_up = r.causes.contains(&Cause::GaveUp);
        let budgets = cfg.max_attempts.is_some() || cfg.max_unstable.is_some();
        assert_eq!(gave_up, budgets, "{name}: gave_up reachable?");
    }
}

/// With `ping_when_idle`, the exploration reaches both sides of the ping
/// timer: skipped (a frame within the last ping interval: no action, the
/// deadline moves to that frame + `ping_interval`) and sent (a quiet link);
/// every edge passes the checker, which knows the rule. Off, no due timeout
/// is ever silent.
#[test]
fn ping_when_idle_is_explored_on_both_sides() {
    let count = |cfg: &Config| {
        let (mut skipped, mut pinged) = (0, 0);
        explore::explore(cfg, Instant::now(), |before, event, after, actions| {
            let fired = matches!(event, Event::Timeout)
                && before.lifecycle.due(after.now, cfg) == Some(ws_lifecycle::fsm::Timer::Ping);
            if !fired {
                return;
            }
            match actions {
                [] => {
                    skipped += 1;
                    let (State::Open { last_activity, .. }, State::Open { next_ping, .. }) =
                        (before.lifecycle.state(), after.lifecycle.state())
                    else {
                        panic!("a skipped ping left Open")
                    };
                    assert_eq!(*next_ping, *last_activity + cfg.ping_interval);
                    assert!(*next_ping > after.now);
                }
                [Action::SendPing { .. }] => pinged += 1,
                other => panic!("the ping timer did {other:?}"),
            }
        });
        (skipped, pinged)
    };
    let on = Config {
        ping_when_idle: true,
        ..exploration_config()
    };
    let (skipped, pinged) = count(&on);
    eprintln!("ping only when idle: {skipped} skipped pings, {pinged} pings");
    assert!(
        skipped > 0 && pinged > 0,
        "{skipped} skipped, {pinged} sent"
    );
    let (skipped, pinged) = count(&exploration_config());
    assert_eq!(skipped, 0);
    assert!(pinged > 0);

    // The checker catches a wrong answer either way.
    let t0 = Instant::now();
    let (start, _) = Lifecycle::start(&on, t0);
    let frame = t0 + Duration::from_secs(1);
    let busy = start.with_state(State::Open {
        attempt: 1,
        since: t0,
        last_activity: frame,
        next_ping: t0 + on.ping_interval,
        probe: None,
    });
    let at = t0 + on.ping_interval;
    let moved = |next_ping| {
        busy.clone().with_state(State::Open {
            attempt: 1,
            since: t0,
            last_activity: frame,
            next_ping,
            probe: None,
        })
    };
    let right = moved(frame + on.ping_interval);
    check_edge(&on, &busy, &Event::Timeout, at, &right, &[]).unwrap();
    let ping = [Action::SendPing { attempt: 1 }];
    let wrong: [(&str, &Config, Lifecycle, &[Action]); 4] = [
        (
            "a ping although busy",
            &on,
            moved(at + on.ping_interval),
            &ping,
        ),
        (
            "a skip to the wrong time",
            &on,
            moved(at + on.ping_interval),
            &[],
        ),
        ("a skip that does not move", &on, busy.clone(), &[]),
        (
            "a skip with the option off",
            &exploration_config(),
            right.clone(),
            &[],
        ),
    ];
    for (what, cfg, after, actions) in wrong {
        assert!(
            check_edge(cfg, &busy, &Event::Timeout, at, &after, actions).is_err(),
            "the checker missed: {what}"
        );
    }
}

/// The exploration is deterministic: the same config gives the same graph.
#[test]
fn exploration_is_deterministic() {
    let cfg = exploration_config();
    let a = explore::explore(&cfg, Instant::now(), |_, _, _, _| {});
    let b = explore::explore(
        &cfg,
        Instant::now() + Duration::from_secs(12_345),
        |_, _, _, _| {},
    );
    assert_eq!(
        (a.states, a.transitions, &a.edges),
        (b.states, b.transitions, &b.edges)
    );
}

/// The checker itself catches broken edges (so a green run means something).
#[test]
fn the_checker_rejects_broken_edges() {
    let cfg = Config {
        jitter: 0.0,
        ..exploration_config()
    };
    let t0 = Instant::now();
    let (start, _) = Lifecycle::start(&cfg, t0);
    let with = |state: State| start.clone().with_state(state);
    let connecting = |attempt| State::Connecting {
        attempt,
        deadline: t0 + cfg.connect_timeout,
    };
    let awaiting = with(State::AwaitingAck {
        attempt: 1,
        deadline: t0 + cfg.ack_timeout,
    });
    // Attempt 1 refused: one failure, attempt 2 in a second (no jitter).
    let (reconnecting, _) = step(
        &start,
        Event::ConnectFailed {
            attempt: 1,
            failure: REFUSED,
        },
        t0,
        &cfg,
    );
    assert!(matches!(
        *reconnecting.state(),
        State::Reconnecting { next_attempt: 2, retry_at } if retry_at == t0 + Duration::from_secs(1)
    ));
    let (paused_awaiting, _) = step(&awaiting, Event::ReadPaused, t0, &cfg);
    assert!(paused_awaiting.read_paused());
    let changed = |from, to, cause| Action::StatusChanged {
        from,
        to,
        cause,
        attempt: 2,
    };
    let bad: Vec<(&str, Lifecycle, Event, Lifecycle, Vec<Action>)> = vec![
        (
            "Connect while the old transport is live",
            start.clone(),
            Event::ReconnectNow,
            with(connecting(2)),
            vec![
                changed(Status::Connecting, Status::Connecting, Cause::ReconnectNow),
                Action::Connect { attempt: 2 },
            ],
        ),
        (
            "a reused attempt number",
            reconnecting.clone(),
            Event::ReconnectNow,
            with(connecting(1)),
            vec![
                changed(
                    Status::Reconnecting,
                    Status::Connecting,
                    Cause::ReconnectNow,
                ),
                Action::Connect { attempt: 1 },
            ],
        ),
        (
            "no Disconnected for an opened socket",
            awaiting.clone(),
            Event::TransportLost { attempt: 1 },
            reconnecting.clone(),
            vec![
                Action::DropTransport { attempt: 1 },
                changed(
                    Status::AwaitingAck,
                    Status::Reconnecting,
                    Cause::TransportLost,
                ),
                Action::ReconnectScheduled {
                    attempt: 2,
                    delay: Duration::from_secs(1),
                },
            ],
        ),
        (
            "a delay outside the bounds",
            with(connecting(1)),
            Event::ConnectFailed {
                attempt: 1,
                failure: REFUSED,
            },
            reconnecting.clone(),
            vec![
                Action::DropTransport { attempt: 1 },
                changed(
                    Status::Connecting,
                    Status::Reconnecting,
                    Cause::ConnectFailed,
                ),
                Action::ReconnectScheduled {
                    attempt: 2,
                    delay: Duration::from_millis(10),
                },
            ],
        ),
        (
            "our own drop of an opened socket without a close frame",
            awaiting.clone(),
            Event::HelloFailed { attempt: 1 },
            reconnecting.clone(),
            vec![
                Action::DropTransport { attempt: 1 },
                Action::Disconnected {
                    attempt: 1,
                    code: 1006,
                    reason: "hello failed".into(),
                },
                changed(
                    Status::AwaitingAck,
                    Status::Reconnecting,
                    Cause::HelloFailed,
                ),
                Action::ReconnectScheduled {
                    attempt: 2,
                    delay: Duration::from_secs(1),
                },
            ],
        ),
        (
            "a close frame for another attempt before our own drop",
            awaiting.clone(),
            Event::HelloFailed { attempt: 1 },
            reconnecting.clone(),
            vec![
                Action::SendClose {
                    attempt: 2,
                    code: 1011,
                    reason: "hello failed".into(),
                },
                Action::DropTransport { attempt: 1 },
                Action::Disconnected {
                    attempt: 1,
                    code: 1006,
                    reason: "hello failed".into(),
                },
                changed(
                    Status::AwaitingAck,
                    Status::Reconnecting,
                    Cause::HelloFailed,
                ),
                Action::ReconnectScheduled {
                    attempt: 2,
                    delay: Duration::from_secs(1),
                },
            ],
        ),
        (
            "a read pause that emits an action",
            awaiting.clone(),
            Event::ReadPaused,
            paused_awaiting.clone(),
            vec![Action::SendHello { attempt: 1 }],
        ),
        (
            "a read pause that changes the state",
            awaiting.clone(),
            Event::ReadPaused,
            paused_awaiting.clone().with_state(State::AwaitingAck {
                attempt: 1,
                deadline: t0 + cfg.ack_timeout * 2,
            }),
            vec![],
        ),
        (
            "a resume that moves the ack deadline by more than the pause",
            paused_awaiting.clone(),
            Event::ReadResumed,
            awaiting.clone().with_state(State::AwaitingAck {
                attempt: 1,
                deadline: t0 + cfg.ack_timeout + Duration::from_secs(60),
            }),
            vec![],
        ),
        (
            "activity that moves last_activity elsewhere than to its time",
            with(State::Open {
                attempt: 1,
                since: t0,
                last_activity: t0,
                next_ping: t0 + cfg.ping_interval,
                probe: None,
            }),
            Event::Activity { attempt: 1 },
            with(State::Open {
                attempt: 1,
                since: t0,
                last_activity: t0 + Duration::from_secs(5),
                next_ping: t0 + cfg.ping_interval,
                probe: None,
            }),
            vec![],
        ),
        (
            "application data outside Open",
            awaiting.clone(),
            Event::Activity { attempt: 1 },
            awaiting.clone(),
            vec![Action::FlushQueue { attempt: 1 }],
        ),
        (
            "a due timeout that does nothing",
            awaiting.clone(),
            Event::Timeout,
            awaiting.clone(),
            vec![],
        ),
        (
            "Closed is not absorbing",
            with(State::Closed {
                reason: ws_lifecycle::CloseReason::Requested,
            }),
            Event::ReconnectNow,
            with(connecting(2)),
            vec![Action::Connect { attempt: 2 }],
        ),
    ];
    for (what, before, event, after, actions) in bad {
        let at = match event {
            Event::Timeout => t0 + cfg.ack_timeout,
            Event::ReadResumed => t0 + Duration::from_secs(1),
            _ => t0,
        };
        assert!(
            check_edge(&cfg, &before, &event, at, &after, &actions).is_err(),
            "the checker missed: {what}"
        );
    }
}
