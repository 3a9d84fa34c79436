//! The failure policy on a virtual clock: the `Retry-After` arithmetic
//! (`max(backoff, min(hint × (1 + jitter × u), max_retry_after))`), its cap
//! and its jitter bounds, terminal HTTP answers and close rules, and the
//! caller's verdicts. Time is an input; nothing sleeps.

use std::time::{Duration, Instant};

use ws_lifecycle::fsm::explore::REFUSED;
use ws_lifecycle::fsm::{Action, Event, Machine, State, backoff};
use ws_lifecycle::{
    Cause, CloseReason, CloseRule, Config, ConnectFailure, Failure, RejectedBy, Status, Verdict,
};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn drain(m: &mut Machine) -> Vec<Action> {
    std::iter::from_fn(|| m.poll_action()).collect()
}

fn no_jitter() -> Config {
    Config {
        jitter: 0.0,
        ..Config::default()
    }
}

fn http(attempt: u64, status: u16, retry_after: Option<Duration>) -> Event {
    Event::ConnectFailed {
        attempt,
        failure: ConnectFailure::Http {
            status,
            retry_after,
        },
    }
}

fn refused(attempt: u64) -> Event {
    Event::ConnectFailed {
        attempt,
        failure: REFUSED,
    }
}

/// The delay of the reconnect the last actions scheduled.
fn scheduled(actions: &[Action]) -> Duration {
    actions
        .iter()
        .find_map(|a| match a {
            Action::ReconnectScheduled { delay, .. } => Some(*delay),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no reconnect scheduled in {actions:?}"))
}

/// A machine that has just started attempt `n` at `now` after `n - 1`
/// refused connects (each retried as soon as it was due).
fn at_attempt(cfg: &Config, t0: Instant, n: u64) -> (Machine, Instant) {
    let mut m = Machine::new(cfg.clone(), t0).unwrap();
    drain(&mut m);
    let mut now = t0;
    for attempt in 1..n {
        m.handle(refused(attempt), now);
        drain(&mut m);
        now = m.poll_timeout().unwrap();
        m.handle_timeout(now);
        drain(&mut m);
    }
    assert_eq!(m.attempt(), Some(n));
    (m, now)
}

#[test]
fn retry_after_delays_the_next_attempt_exactly_without_jitter() {
    let t0 = Instant::now();
    let (mut m, now) = at_attempt(&no_jitter(), t0, 1);
    m.handle(http(1, 503, Some(secs(20))), now);
    let actions = drain(&mut m);
    assert_eq!(
        actions,
        [
            Action::DropTransport { attempt: 1 },
            Action::StatusChanged {
                from: Status::Connecting,
                to: Status::Reconnecting,
                cause: Cause::ConnectFailed,
                attempt: 2
            },
            // The notice shows the real delay.
            Action::ReconnectScheduled {
                attempt: 2,
                delay: secs(20)
            },
        ]
    );
    assert_eq!(m.poll_timeout(), Some(now + secs(20)));
    m.handle_timeout(now + secs(20) - Duration::from_nanos(1));
    assert!(drain(&mut m).is_empty(), "not a nanosecond early");
    m.handle_timeout(now + secs(20));
    assert!(drain(&mut m).contains(&Action::Connect { attempt: 2 }));
    // It counted as a failure: a plain failure next uses the second step.
    assert_eq!(m.lifecycle().failures(), 1);
    m.handle(refused(2), now + secs(20));
    assert_eq!(scheduled(&drain(&mut m)), secs(2));
}

#[test]
fn retry_after_never_shortens_the_backoff() {
    let t0 = Instant::now();
    // After three failures the schedule says 8 s; the broker says 1 s.
    let (mut m, now) = at_attempt(&no_jitter(), t0, 4);
    m.handle(http(4, 503, Some(secs(1))), now);
    assert_eq!(scheduled(&drain(&mut m)), secs(8));
    // A hint of zero (a date in the past) is the backoff too.
    let (mut m, now) = at_attempt(&no_jitter(), t0, 1);
    m.handle(http(1, 429, Some(Duration::ZERO)), now);
    assert_eq!(scheduled(&drain(&mut m)), secs(1));
}

#[test]
fn retry_after_is_capped_by_max_retry_after() {
    let t0 = Instant::now();
    let cases = [
        // (cap, hint, expected delay)
        (secs(600), secs(3600), secs(600)),
        (secs(600), Duration::MAX, secs(600)),
        (secs(30), secs(3600), secs(30)),
        (secs(30), secs(29), secs(29)),
        // A zero cap ignores hints: the backoff (1 s) wins.
        (Duration::ZERO, secs(3600), secs(1)),
    ];
    for (cap, hint, want) in cases {
        let cfg = Config {
            max_retry_after: cap,
            ..no_jitter()
        };
        let (mut m, now) = at_attempt(&cfg, t0, 1);
        m.handle(http(1, 503, Some(hint)), now);
        let delay = scheduled(&drain(&mut m));
        assert_eq!(delay, want, "cap {cap:?}, hint {hint:?}");
        assert_eq!(m.poll_timeout(), Some(now + want));
    }
    // With jitter the spread is capped too: never past the cap.
    let cfg = Config {
        max_retry_after: secs(25),
        jitter: 1.0,
        ..Config::default()
    };
    for seed in 0..200 {
        let cfg = Config {
            seed,
            ..cfg.clone()
        };
        let (mut m, now) = at_attempt(&cfg, t0, 1);
        m.handle(http(1, 503, Some(secs(20))), now);
        let delay = scheduled(&drain(&mut m));
        assert!(delay >= secs(20) && delay <= secs(25), "{delay:?}");
    }
}

#[test]
fn retry_after_jitter_spreads_a_fleet_upward_within_bounds() {
    let t0 = Instant::now();
    let hint = secs(20);
    let delays: Vec<Duration> = (0..500)
        .map(|seed| {
            let cfg = Config {
                seed,
                ..Config::default() // jitter 0.5
            };
            let (mut m, now) = at_attempt(&cfg, t0, 1);
            m.handle(http(1, 503, Some(hint)), now);
            scheduled(&drain(&mut m))
        })
        .collect();
    // [hint, hint × 1.5], never a single instant for the whole fleet.
    let (lo, hi) = backoff::hinted_bounds(&Config::default(), 1, hint);
    assert_eq!((lo, hi), (secs(20), secs(30)));
    assert!(delays.iter().all(|d| *d >= lo && *d <= hi));
    let min = delays.iter().min().unwrap();
    let max = delays.iter().max().unwrap();
    assert!(*min < secs(21) && *max > secs(29), "{min:?}..{max:?}");
    // The same seed gives the same delay.
    let again = |seed| {
        let cfg = Config {
            seed,
            ..Config::default()
        };
        let (mut m, now) = at_attempt(&cfg, t0, 1);
        m.handle(http(1, 503, Some(hint)), now);
        scheduled(&drain(&mut m))
    };
    assert_eq!(again(7), delays[7]);
}

#[test]
fn a_terminal_http_answer_ends_the_session_without_counting_a_failure() {
    let t0 = Instant::now();
    for (status, retry_after) in [(403, None), (401, None), (404, Some(secs(5))), (301, None)] {
        let (mut m, now) = at_attempt(&no_jitter(), t0, 2);
        m.handle(http(2, status, retry_after), now);
        assert_eq!(
            drain(&mut m),
            [
                Action::DropTransport { attempt: 2 },
                Action::StatusChanged {
                    from: Status::Connecting,
                    to: Status::Closed,
                    cause: Cause::Rejected,
                    attempt: 2
                },
            ],
            "{status}"
        );
        assert_eq!(
            *m.state(),
            State::Closed {
                reason: CloseReason::Rejected {
                    by: RejectedBy::Http { status }
                }
            }
        );
        assert_eq!(m.lifecycle().failures(), 1, "only attempt 1's");
        assert_eq!(m.poll_timeout(), None);
    }
    // Retried statuses are configurable: a hook that refreshes credentials
    // may retry 401.
    let cfg = Config {
        retried_statuses: vec![401..=401, 500..=599],
        ..no_jitter()
    };
    let (mut m, now) = at_attempt(&cfg, t0, 1);
    m.handle(http(1, 401, None), now);
    drain(&mut m);
    assert_eq!(m.status(), Status::Reconnecting);
    let (mut m, now) = at_attempt(&cfg, t0, 1);
    m.handle(http(1, 429, None), now);
    drain(&mut m);
    assert_eq!(m.status(), Status::Closed, "429 is no longer in the list");
}

/// A proxy that refuses the credentials (HTTP 407, a SOCKS5 authentication
/// failure) or answers with a status that is not retried ends the session;
/// a proxy's 5xx, or a refusal without a status (a SOCKS reply code, a
/// dropped connection), is retried on the schedule.
#[test]
fn proxy_refusals_of_credentials_are_terminal_and_5xx_retried() {
    let t0 = Instant::now();
    let proxy = |status| ConnectFailure::Proxy { status };
    for (failure, by) in [
        (proxy(Some(407)), RejectedBy::Proxy { status: Some(407) }),
        (proxy(Some(403)), RejectedBy::Proxy { status: Some(403) }),
        (ConnectFailure::SocksAuth, RejectedBy::SocksAuth),
    ] {
        let (mut m, now) = at_attempt(&no_jitter(), t0, 2);
        m.handle(
            Event::ConnectFailed {
                attempt: 2,
                failure,
            },
            now,
        );
        assert_eq!(
            names(&drain(&mut m)),
            ["DropTransport", "StatusChanged"],
            "{failure:?}"
        );
        assert_eq!(
            *m.state(),
            State::Closed {
                reason: CloseReason::Rejected { by: by.clone() }
            },
            "{failure:?}"
        );
        assert_eq!(m.lifecycle().failures(), 1, "only attempt 1's");
        assert_eq!(m.poll_timeout(), None);
    }
    for failure in [proxy(Some(502)), proxy(Some(503)), proxy(None)] {
        let (mut m, now) = at_attempt(&no_jitter(), t0, 1);
        m.handle(
            Event::ConnectFailed {
                attempt: 1,
                failure,
            },
            now,
        );
        assert_eq!(scheduled(&drain(&mut m)), secs(1), "{failure:?}");
        assert_eq!(m.status(), Status::Reconnecting, "{failure:?}");
    }
    // The caller may retry a SOCKS5 authentication failure (credentials
    // that a hook refreshes, say).
    let (mut m, now) = at_attempt(&no_jitter(), t0, 1);
    let socks_auth = Event::ConnectFailed {
        attempt: 1,
        failure: ConnectFailure::SocksAuth,
    };
    m.handle(socks_auth.judged(Verdict::Retry), now);
    assert_eq!(scheduled(&drain(&mut m)), secs(1));
}

#[test]
fn close_rules_match_a_reason_prefix() {
    let t0 = Instant::now();
    let cfg = Config {
        terminal_closes: vec!["1008:unauthorized".parse().unwrap(), CloseRule::code(4002)],
        ..no_jitter()
    };
    let open = || {
        let mut m = Machine::new(cfg.clone(), t0).unwrap();
        m.handle(Event::SocketOpened { attempt: 1 }, t0);
        m.handle(Event::Ack { attempt: 1 }, t0);
        drain(&mut m);
        m
    };
    let peer = |code, reason: &str| Event::PeerClosed {
        attempt: 1,
        code,
        reason: reason.into(),
    };
    for (code, reason, terminal) in [
        (1008, "capacity", false),
        (1008, "unauthorized", true),
        (1008, "unauthorized: token expired", true),
        (1008, "Unauthorized", false),
        (1000, "unauthorized", false),
        (4002, "banned", true),
        (4002, "", true),
    ] {
        let mut m = open();
        m.handle(peer(code, reason), t0 + secs(1));
        let actions = drain(&mut m);
        // The notice carries the peer's words either way.
        assert!(actions.contains(&Action::Disconnected {
            attempt: 1,
            code,
            reason: reason.into()
        }));
        if terminal {
            assert_eq!(
                *m.state(),
                State::Closed {
                    reason: CloseReason::Rejected {
                        by: RejectedBy::Close {
                            code,
                            reason: reason.into()
                        }
                    }
                },
                "{code} {reason:?}"
            );
        } else {
            assert_eq!(m.status(), Status::Reconnecting, "{code} {reason:?}");
        }
    }
}

#[test]
fn the_callers_verdict_replaces_the_default() {
    let t0 = Instant::now();
    let cfg = no_jitter();
    let caller = |failure| CloseReason::Rejected {
        by: RejectedBy::Caller { failure },
    };

    // A refused connect (retried by default) made terminal.
    let (mut m, now) = at_attempt(&cfg, t0, 1);
    m.handle(refused(1).judged(Verdict::Terminal), now);
    assert_eq!(names(&drain(&mut m)), ["DropTransport", "StatusChanged"]);
    assert_eq!(
        *m.state(),
        State::Closed {
            reason: caller(Failure::Connect(REFUSED))
        }
    );

    // A 403 (terminal by default) retried.
    let (mut m, now) = at_attempt(&cfg, t0, 1);
    m.handle(http(1, 403, None).judged(Verdict::Retry), now);
    assert_eq!(scheduled(&drain(&mut m)), secs(1));

    // A lost transport retried no earlier than the caller's hint.
    let mut m = Machine::new(cfg.clone(), t0).unwrap();
    m.handle(Event::SocketOpened { attempt: 1 }, t0);
    m.handle(Event::Ack { attempt: 1 }, t0);
    drain(&mut m);
    m.handle(
        Event::TransportLost { attempt: 1 }.judged(Verdict::RetryAfter(secs(7))),
        t0 + secs(1),
    );
    assert_eq!(scheduled(&drain(&mut m)), secs(7));

    // The ack deadline made terminal: the close frame still goes out first.
    let mut m = Machine::new(cfg.clone(), t0).unwrap();
    m.handle(Event::SocketOpened { attempt: 1 }, t0);
    drain(&mut m);
    let deadline = m.poll_timeout().unwrap();
    assert_eq!(
        m.lifecycle().failure(&Event::Timeout, deadline, &cfg),
        Some(Failure::AckTimeout)
    );
    m.handle(Event::Timeout.judged(Verdict::Terminal), deadline);
    assert_eq!(
        names(&drain(&mut m)),
        [
            "SendClose",
            "DropTransport",
            "Disconnected",
            "StatusChanged"
        ]
    );
    assert_eq!(
        *m.state(),
        State::Closed {
            reason: caller(Failure::AckTimeout)
        }
    );

    // A verdict on an event that reports no failure is unused.
    let mut m = Machine::new(cfg.clone(), t0).unwrap();
    m.handle(Event::SocketOpened { attempt: 1 }, t0);
    m.handle(Event::Ack { attempt: 1 }.judged(Verdict::Terminal), t0);
    drain(&mut m);
    assert_eq!(m.status(), Status::Open);
    // Nor on an early timeout, or one that only pings.
    m.handle(Event::Timeout.judged(Verdict::Terminal), t0 + secs(1));
    assert!(drain(&mut m).is_empty());
    m.handle(
        Event::Timeout.judged(Verdict::Terminal),
        t0 + cfg.ping_interval,
    );
    assert_eq!(names(&drain(&mut m)), ["SendPing"]);
    // And on an event of another attempt, nothing happens at all.
    m.handle(
        Event::TransportLost { attempt: 9 }.judged(Verdict::Terminal),
        t0 + secs(31),
    );
    assert!(drain(&mut m).is_empty());
    assert_eq!(m.status(), Status::Open);
}

#[test]
fn the_connect_deadline_is_a_connect_failure() {
    let t0 = Instant::now();
    let cfg = no_jitter();
    let m = Machine::new(cfg.clone(), t0).unwrap();
    let deadline = m.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + cfg.connect_timeout);
    let lc = m.lifecycle();
    assert_eq!(
        lc.failure(&Event::Timeout, deadline - Duration::from_nanos(1), &cfg),
        None
    );
    assert_eq!(
        lc.failure(&Event::Timeout, deadline, &cfg),
        Some(Failure::Connect(ConnectFailure::Deadline))
    );
    // Retried by default, with the ordinary cause.
    let mut m = m;
    m.handle_timeout(deadline);
    let actions = drain(&mut m);
    assert!(actions.contains(&Action::StatusChanged {
        from: Status::Connecting,
        to: Status::Reconnecting,
        cause: Cause::ConnectTimeout,
        attempt: 2
    }));
    // Which failures the machine would act on: only the current attempt's,
    // only where they apply.
    let m = Machine::new(cfg.clone(), t0).unwrap();
    let lc = m.lifecycle();
    assert_eq!(
        lc.failure(&refused(1), t0, &cfg),
        Some(Failure::Connect(REFUSED))
    );
    assert_eq!(lc.failure(&refused(2), t0, &cfg), None);
    assert_eq!(
        lc.failure(&Event::TransportLost { attempt: 1 }, t0, &cfg),
        None
    );
    assert_eq!(lc.failure(&Event::Ack { attempt: 1 }, t0, &cfg), None);
}

fn names(actions: &[Action]) -> Vec<&'static str> {
    actions.iter().map(Action::name).collect()
}

/// Who a terminal verdict names: the broker's close, its HTTP answer, the
/// proxy or the SOCKS5 proxy when the default policy refused; the caller,
/// with the failure it judged, whenever the caller's verdict did — even on a
/// failure the default policy would have refused on its own.
#[test]
fn a_rejection_names_who_refused() {
    let t0 = Instant::now();
    let cfg = Config {
        terminal_closes: vec![CloseRule::code(4001)],
        ..no_jitter()
    };
    let connect = |failure| Event::ConnectFailed {
        attempt: 1,
        failure,
    };
    // (event, whether it needs an open socket, the failure, who the default names)
    let table = [
        (
            Event::PeerClosed {
                attempt: 1,
                code: 4001,
                reason: "banned".into(),
            },
            true,
            Failure::PeerClosed {
                code: 4001,
                reason: "banned".into(),
            },
            RejectedBy::Close {
                code: 4001,
                reason: "banned".into(),
            },
        ),
        (
            http(1, 403, None),
            false,
            Failure::Connect(ConnectFailure::Http {
                status: 403,
                retry_after: None,
            }),
            RejectedBy::Http { status: 403 },
        ),
        (
            connect(ConnectFailure::Proxy { status: Some(407) }),
            false,
            Failure::Connect(ConnectFailure::Proxy { status: Some(407) }),
            RejectedBy::Proxy { status: Some(407) },
        ),
        (
            connect(ConnectFailure::SocksAuth),
            false,
            Failure::Connect(ConnectFailure::SocksAuth),
            RejectedBy::SocksAuth,
        ),
    ];
    let closed_by = |event: Event, open: bool| {
        let mut m = Machine::new(cfg.clone(), t0).unwrap();
        if open {
            m.handle(Event::SocketOpened { attempt: 1 }, t0);
            m.handle(Event::Ack { attempt: 1 }, t0);
        }
        drain(&mut m);
        m.handle(event, t0 + secs(1));
        let actions = drain(&mut m);
        assert_eq!(actions.last().map(Action::name), Some("StatusChanged"));
        assert!(!actions.iter().any(|a| a.name() == "ReconnectScheduled"));
        match m.state() {
            State::Closed {
                reason: CloseReason::Rejected { by },
            } => by.clone(),
            other => panic!("not rejected: {other:?}"),
        }
    };
    for (event, open, failure, by_default) in table {
        assert_eq!(closed_by(event.clone(), open), by_default, "{event:?}");
        assert_eq!(
            closed_by(event.clone().judged(Verdict::Terminal), open),
            RejectedBy::Caller { failure },
            "{event:?} judged terminal"
        );
    }
    // A proxy that gave no status is retried by default; the caller may
    // still refuse it.
    let silent = connect(ConnectFailure::Proxy { status: None });
    assert_eq!(
        closed_by(silent.judged(Verdict::Terminal), false),
        RejectedBy::Caller {
            failure: Failure::Connect(ConnectFailure::Proxy { status: None })
        }
    );
}
