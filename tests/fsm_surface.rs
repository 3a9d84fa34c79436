//! The core's surface as a caller meets it: the texts that end up in logs
//! and error messages (exact strings, since people grep for them), the
//! `Machine` getters in every state, the names and payload accessors of
//! events and actions, and the configuration's limits. Tables, one row per
//! variant; no sockets, no clock (time is an `Instant` argument).

use std::io;
use std::time::{Duration, Instant};

use ws_lifecycle::fsm::{Action, Event, Machine, State, Timer};
use ws_lifecycle::{
    Cause, CloseReason, CloseRule, Config, ConfigError, ConnectFailure, Failure, RejectedBy,
    Status, Verdict,
};

const NS: Duration = Duration::from_nanos(1);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn drain(m: &mut Machine) -> Vec<Action> {
    std::iter::from_fn(|| m.poll_action()).collect()
}

// ── Texts ──────────────────────────────────────────────────────────────

#[test]
fn cause_names_are_the_logged_snake_case_words() {
    let table = [
        (Cause::SocketOpened, "socket_opened"),
        (Cause::ConnectFailed, "connect_failed"),
        (Cause::ConnectTimeout, "connect_timeout"),
        (Cause::HelloFailed, "hello_failed"),
        (Cause::AckTimeout, "ack_timeout"),
        (Cause::Acked, "acked"),
        (Cause::Stale, "stale"),
        (Cause::WakeProbeFailed, "wake_probe_failed"),
        (Cause::PeerClosed, "peer_closed"),
        (Cause::TransportLost, "transport_lost"),
        (Cause::MessageTooBig, "message_too_big"),
        (Cause::ProtocolError, "protocol_error"),
        (Cause::RetryDue, "retry_due"),
        (Cause::ReconnectNow, "reconnect_now"),
        (Cause::CloseRequested, "close_requested"),
        (Cause::CloseCompleted, "close_completed"),
        (Cause::CloseGraceExpired, "close_grace_expired"),
        (Cause::Rejected, "rejected"),
        (Cause::GaveUp, "gave_up"),
    ];
    for (cause, text) in table {
        assert_eq!(cause.as_str(), text, "{cause:?}");
        assert_eq!(cause.to_string(), text, "{cause:?}");
    }
}

#[test]
fn status_names_for_logs_and_for_the_diagram() {
    let table = [
        (Status::Connecting, "connecting", "Connecting"),
        (Status::AwaitingAck, "awaiting_ack", "AwaitingAck"),
        (Status::Open, "open", "Open"),
        (Status::Reconnecting, "reconnecting", "Reconnecting"),
        (Status::Closing, "closing", "Closing"),
        (Status::Closed, "closed", "Closed"),
    ];
    assert_eq!(table.map(|(s, _, _)| s), Status::ALL, "lifecycle order");
    for (status, log, diagram) in table {
        assert_eq!(status.as_str(), log);
        assert_eq!(status.to_string(), log);
        assert_eq!(status.name(), diagram);
    }
}

#[test]
fn timer_names_and_what_each_timer_does() {
    // (timer, log name, runs while reading is paused, failure it reports)
    let table = [
        (
            Timer::Connect,
            "connect",
            true,
            Some(Failure::Connect(ConnectFailure::Deadline)),
        ),
        (Timer::Ack, "ack", false, Some(Failure::AckTimeout)),
        (Timer::Ping, "ping", true, None),
        (Timer::Stale, "stale", false, Some(Failure::Stale)),
        (Timer::Probe, "probe", false, Some(Failure::Stale)),
        (Timer::Retry, "retry", false, None),
        (Timer::CloseGrace, "close_grace", true, None),
    ];
    assert_eq!(
        table.clone().map(|(t, ..)| t),
        Timer::ALL,
        "lifecycle order"
    );
    for (timer, name, runs, failure) in table {
        assert_eq!(timer.as_str(), name);
        assert_eq!(timer.to_string(), name);
        assert_eq!(timer.runs_while_read_paused(), runs, "{timer:?}");
        assert_eq!(timer.failure(), failure, "{timer:?}");
    }
}

#[test]
fn verdicts_rejections_and_close_reasons_read_as_sentences() {
    assert_eq!(Verdict::Retry.to_string(), "retry");
    assert_eq!(
        Verdict::RetryAfter(Duration::from_millis(2500)).to_string(),
        "retry after 2.5s"
    );
    assert_eq!(Verdict::Terminal.to_string(), "terminal");

    let rejected = [
        (
            RejectedBy::Close {
                code: 4001,
                reason: "banned".into(),
            },
            "the broker with close code 4001 (\"banned\")",
        ),
        (
            RejectedBy::Http { status: 403 },
            "the broker with HTTP status 403",
        ),
        (
            RejectedBy::Proxy { status: Some(407) },
            "the proxy with HTTP status 407",
        ),
        (RejectedBy::Proxy { status: None }, "the proxy"),
        (
            RejectedBy::SocksAuth,
            "the SOCKS5 proxy, which refused the credentials",
        ),
        (
            RejectedBy::Caller {
                failure: Failure::TransportLost,
            },
            "the caller's policy on TransportLost",
        ),
    ];
    for (by, text) in rejected {
        assert_eq!(by.to_string(), text);
        assert_eq!(
            CloseReason::Rejected { by }.to_string(),
            format!("rejected by {text}")
        );
    }
    assert_eq!(CloseReason::Requested.to_string(), "closed by the caller");
    assert_eq!(
        CloseReason::GaveUp { attempts: 5 }.to_string(),
        "gave up after 5 attempts without a stable connection"
    );
}

#[test]
fn config_errors_name_the_field_and_the_rule() {
    let table = [
        (
            ConfigError::Zero("ack_timeout"),
            "config: `ack_timeout` must be greater than zero",
        ),
        (
            ConfigError::TooLong("backoff"),
            "config: `backoff` exceeds the maximum of 100 years",
        ),
        (
            ConfigError::StaleNotAbovePing {
                stale_after: secs(30),
                ping_interval: secs(30),
            },
            "config: `stale_after` (30s) must exceed `ping_interval` (30s)",
        ),
        (
            ConfigError::EmptyBackoff,
            "config: `backoff` schedule is empty",
        ),
        (
            ConfigError::Jitter(1.5),
            "config: `jitter` must be within 0.0..=1.0, got 1.5",
        ),
        (
            ConfigError::ZeroAttempts,
            "config: `max_attempts` must be at least 1",
        ),
        (
            ConfigError::CloseRule {
                rule: "999".into(),
                problem: "the code must be within 1000-4999",
            },
            "config: `terminal_closes` rule 999: the code must be within 1000-4999",
        ),
    ];
    for (error, text) in table {
        assert_eq!(error.to_string(), text);
    }
    // The rule is quoted as it would be written on the command line.
    let c = Config {
        terminal_closes: vec![CloseRule::code_with_prefix(1008, "")],
        ..Config::default()
    };
    assert_eq!(
        c.validate().unwrap_err().to_string(),
        "config: `terminal_closes` rule 1008:: the reason prefix must not be empty \
         (leave it out to match any reason)"
    );
}

#[test]
fn close_rule_parse_errors_say_what_is_wrong() {
    let not_a_number = "the code is not a number";
    let out_of_range = "the code must be within 1000-4999";
    let empty_prefix = "the reason prefix must not be empty (leave it out to match any reason)";
    let table = [
        ("", not_a_number),
        ("x", not_a_number),
        ("10x8", not_a_number),
        ("x:unauthorized", not_a_number),
        (":x", not_a_number),
        ("-1", not_a_number),
        ("+1000", not_a_number),
        (" 1000", not_a_number),
        ("999", out_of_range),
        ("5000", out_of_range),
        ("70000", out_of_range),
        ("0999:x", out_of_range),
        ("1008:", empty_prefix),
    ];
    for (spec, problem) in table {
        assert_eq!(
            spec.parse::<CloseRule>(),
            Err(ConfigError::BadCloseRule {
                spec: spec.into(),
                problem
            }),
            "{spec:?}"
        );
    }
    assert_eq!(
        "x".parse::<CloseRule>().unwrap_err().to_string(),
        "bad close rule \"x\": the code is not a number \
         (expected CODE or CODE:PREFIX, CODE 1000-4999)"
    );
    // The limits of the range are rules.
    for (spec, code) in [("1000", 1000), ("4999", 4999), ("01008", 1008)] {
        assert_eq!(spec.parse(), Ok(CloseRule::code(code)), "{spec:?}");
    }
    assert_eq!(CloseRule::code(1000).problem(), None);
    assert_eq!(CloseRule::code(4999).problem(), None);
    assert_eq!(CloseRule::code(999).problem(), Some(out_of_range));
    assert_eq!(CloseRule::code(5000).problem(), Some(out_of_range));
    assert_eq!(
        CloseRule::code_with_prefix(1008, "").problem(),
        Some(empty_prefix)
    );
    assert_eq!(CloseRule::code_with_prefix(1008, "x").problem(), None);
    assert_eq!(
        CloseRule::code_with_prefix(1008, "x:y").to_string(),
        "1008:x:y"
    );
    assert_eq!(CloseRule::code(4001).to_string(), "4001");
}

// ── Events and actions ─────────────────────────────────────────────────

/// One event of every kind, with its name, the attempt it names and the
/// failure it reports.
fn events() -> Vec<(Event, &'static str, Option<u64>, Option<Failure>)> {
    let refused = ConnectFailure::Io(io::ErrorKind::ConnectionRefused);
    vec![
        (
            Event::SocketOpened { attempt: 3 },
            "SocketOpened",
            Some(3),
            None,
        ),
        (
            Event::ConnectFailed {
                attempt: 4,
                failure: refused,
            },
            "ConnectFailed",
            Some(4),
            Some(Failure::Connect(refused)),
        ),
        (
            Event::HelloFailed { attempt: 5 },
            "HelloFailed",
            Some(5),
            Some(Failure::HelloFailed),
        ),
        (Event::Ack { attempt: 6 }, "Ack", Some(6), None),
        (Event::Activity { attempt: 7 }, "Activity", Some(7), None),
        (
            Event::PeerClosed {
                attempt: 8,
                code: 4001,
                reason: "banned".into(),
            },
            "PeerClosed",
            Some(8),
            Some(Failure::PeerClosed {
                code: 4001,
                reason: "banned".into(),
            }),
        ),
        (
            Event::TransportLost { attempt: 9 },
            "TransportLost",
            Some(9),
            Some(Failure::TransportLost),
        ),
        (
            Event::MessageTooBig { attempt: 10 },
            "MessageTooBig",
            Some(10),
            Some(Failure::MessageTooBig),
        ),
        (
            Event::ProtocolError {
                attempt: 11,
                code: 1007,
            },
            "ProtocolError",
            Some(11),
            Some(Failure::ProtocolError { code: 1007 }),
        ),
        (Event::ReadPaused, "ReadPaused", None, None),
        (Event::ReadResumed, "ReadResumed", None, None),
        (Event::Woke, "Woke", None, None),
        (
            Event::Close {
                code: 1000,
                reason: String::new(),
            },
            "Close",
            None,
            None,
        ),
        (Event::ReconnectNow, "ReconnectNow", None, None),
        (Event::Timeout, "Timeout", None, None),
    ]
}

#[test]
fn events_name_their_kind_attempt_and_failure() {
    for (event, name, attempt, failure) in events() {
        assert_eq!(event.name(), name);
        assert_eq!(event.attempt(), attempt, "{name}");
        assert_eq!(event.failure(), failure, "{name}");
        // A caller's verdict wraps the event without changing what it is about.
        for verdict in [Verdict::Retry, Verdict::Terminal] {
            let judged = event.clone().judged(verdict);
            assert_eq!(
                judged,
                Event::Judged {
                    verdict,
                    event: Box::new(event.clone())
                }
            );
            assert_eq!(judged.name(), "Judged");
            assert_eq!(judged.attempt(), attempt, "judged {name}");
            assert_eq!(judged.failure(), failure, "judged {name}");
        }
    }
}

#[test]
fn actions_name_their_kind_and_tell_notices_from_commands() {
    let table = [
        (Action::Connect { attempt: 1 }, "Connect", false),
        (Action::SendHello { attempt: 1 }, "SendHello", false),
        (Action::FlushQueue { attempt: 1 }, "FlushQueue", false),
        (Action::SendPing { attempt: 1 }, "SendPing", false),
        (
            Action::SendClose {
                attempt: 1,
                code: 1000,
                reason: String::new(),
            },
            "SendClose",
            false,
        ),
        (Action::DropTransport { attempt: 1 }, "DropTransport", false),
        (
            Action::StatusChanged {
                from: Status::Connecting,
                to: Status::AwaitingAck,
                cause: Cause::SocketOpened,
                attempt: 1,
            },
            "StatusChanged",
            true,
        ),
        (
            Action::Disconnected {
                attempt: 1,
                code: 1006,
                reason: String::new(),
            },
            "Disconnected",
            true,
        ),
        (
            Action::ReconnectScheduled {
                attempt: 2,
                delay: secs(1),
            },
            "ReconnectScheduled",
            true,
        ),
    ];
    for (action, name, notice) in table {
        assert_eq!(action.name(), name);
        assert_eq!(action.is_notice(), notice, "{name}");
    }
}

// ── Machine getters, state by state ────────────────────────────────────

/// What the getters say in one state.
#[derive(Debug, PartialEq)]
struct Seen {
    status: Status,
    attempt: Option<u64>,
    can_send: bool,
    is_closed: bool,
    read_paused: bool,
}

fn seen(m: &Machine) -> Seen {
    Seen {
        status: m.status(),
        attempt: m.attempt(),
        can_send: m.can_send(),
        is_closed: m.is_closed(),
        read_paused: m.read_paused(),
    }
}

fn expect(status: Status, attempt: Option<u64>, read_paused: bool) -> Seen {
    Seen {
        status,
        attempt,
        can_send: status == Status::Open,
        is_closed: status == Status::Closed,
        read_paused,
    }
}

#[test]
fn getters_follow_one_session_through_every_state() {
    let t0 = Instant::now();
    let cfg = Config {
        jitter: 0.0,
        seed: 77,
        ..Config::default()
    };
    let mut m = Machine::new(cfg.clone(), t0).unwrap();
    assert_eq!(m.config(), &cfg, "the machine keeps the caller's config");
    assert_eq!(m.state(), m.lifecycle().state());
    assert_eq!(drain(&mut m), [Action::Connect { attempt: 1 }]);
    assert_eq!(seen(&m), expect(Status::Connecting, Some(1), false));
    assert_eq!(m.due(t0), None);
    assert_eq!(m.due(t0 + cfg.connect_timeout - NS), None);
    assert_eq!(m.due(t0 + cfg.connect_timeout), Some(Timer::Connect));

    // Attempt 1 is refused; attempt 2 is one second away (no jitter).
    m.handle(
        Event::ConnectFailed {
            attempt: 1,
            failure: ConnectFailure::Resolve,
        },
        t0,
    );
    drain(&mut m);
    assert_eq!(seen(&m), expect(Status::Reconnecting, None, false));
    assert_eq!(m.poll_timeout(), Some(t0 + secs(1)));
    assert_eq!(m.due(t0 + secs(1) - NS), None);
    assert_eq!(m.due(t0 + secs(1)), Some(Timer::Retry));
    // Paused, the retry waits for the consumer, not the clock.
    m.handle(Event::ReadPaused, t0);
    assert_eq!(seen(&m), expect(Status::Reconnecting, None, true));
    assert_eq!(m.due(t0 + secs(5)), None);
    assert_eq!(m.poll_timeout(), None);
    m.handle(Event::ReadResumed, t0 + secs(5));
    assert_eq!(m.due(t0 + secs(5)), Some(Timer::Retry));

    // An early handle_timeout does nothing; a due one starts attempt 2.
    let t1 = t0 + secs(5);
    m.handle_timeout(t0 + secs(1) - NS);
    assert_eq!(m.poll_action(), None);
    assert_eq!(m.status(), Status::Reconnecting);
    m.handle_timeout(t1);
    assert_eq!(drain(&mut m).last(), Some(&Action::Connect { attempt: 2 }));
    assert_eq!(seen(&m), expect(Status::Connecting, Some(2), false));

    m.handle(Event::SocketOpened { attempt: 2 }, t1);
    drain(&mut m);
    assert_eq!(seen(&m), expect(Status::AwaitingAck, Some(2), false));
    assert_eq!(m.due(t1 + cfg.ack_timeout), Some(Timer::Ack));

    m.handle(Event::Ack { attempt: 2 }, t1);
    drain(&mut m);
    assert_eq!(seen(&m), expect(Status::Open, Some(2), false));
    assert_eq!(m.due(t1), None);
    assert_eq!(m.due(t1 + cfg.ping_interval), Some(Timer::Ping));
    // Stale outranks a ping due at the same moment.
    assert_eq!(m.due(t1 + cfg.stale_after), Some(Timer::Stale));
    m.handle(Event::ReadPaused, t1);
    assert_eq!(seen(&m), expect(Status::Open, Some(2), true));
    // Paused, pings still go out but the link is not judged stale.
    assert_eq!(m.due(t1 + cfg.stale_after), Some(Timer::Ping));
    m.handle(Event::ReadResumed, t1);

    m.handle(
        Event::Close {
            code: 1000,
            reason: "bye".into(),
        },
        t1,
    );
    drain(&mut m);
    assert_eq!(seen(&m), expect(Status::Closing, Some(2), false));
    assert_eq!(m.due(t1 + cfg.close_grace - NS), None);
    assert_eq!(m.due(t1 + cfg.close_grace), Some(Timer::CloseGrace));

    m.handle_timeout(t1 + cfg.close_grace);
    drain(&mut m);
    assert_eq!(seen(&m), expect(Status::Closed, None, false));
    assert_eq!(
        *m.state(),
        State::Closed {
            reason: CloseReason::Requested
        }
    );
    assert_eq!(m.due(t1 + Config::MAX_DURATION), None);
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn state_timers_deadline_and_due_without_a_pause() {
    let t0 = Instant::now();
    let stale = secs(75);
    let open = State::Open {
        attempt: 3,
        since: t0,
        last_activity: t0 + secs(10),
        next_ping: t0 + secs(30),
        probe: Some(t0 + secs(20)),
    };
    assert_eq!(
        open.timers(stale).collect::<Vec<_>>(),
        [
            (Timer::Stale, t0 + secs(85)),
            (Timer::Probe, t0 + secs(20)),
            (Timer::Ping, t0 + secs(30)),
        ]
    );
    assert_eq!(open.deadline(stale), Some(t0 + secs(20)));
    assert_eq!(open.due(t0 + secs(20) - NS, stale), None);
    assert_eq!(open.due(t0 + secs(20), stale), Some(Timer::Probe));
    assert_eq!(open.due(t0 + secs(30), stale), Some(Timer::Probe));
    assert_eq!(open.due(t0 + secs(85), stale), Some(Timer::Stale));
    assert_eq!(open.transport_attempt(), Some(3));

    let one = |state: State, timer: Timer, at: Instant, attempt: Option<u64>| {
        assert_eq!(state.timers(stale).collect::<Vec<_>>(), [(timer, at)]);
        assert_eq!(state.deadline(stale), Some(at));
        assert_eq!(state.due(at - NS, stale), None, "{state:?}");
        assert_eq!(state.due(at, stale), Some(timer), "{state:?}");
        assert_eq!(state.transport_attempt(), attempt, "{state:?}");
    };
    let at = t0 + secs(7);
    one(
        State::Connecting {
            attempt: 1,
            deadline: at,
        },
        Timer::Connect,
        at,
        Some(1),
    );
    one(
        State::AwaitingAck {
            attempt: 2,
            deadline: at,
        },
        Timer::Ack,
        at,
        Some(2),
    );
    one(
        State::Reconnecting {
            next_attempt: 4,
            retry_at: at,
        },
        Timer::Retry,
        at,
        None,
    );
    one(
        State::Closing {
            attempt: 5,
            deadline: at,
        },
        Timer::CloseGrace,
        at,
        Some(5),
    );
    let closed = State::Closed {
        reason: CloseReason::Requested,
    };
    assert_eq!(closed.timers(stale).count(), 0);
    assert_eq!(closed.deadline(stale), None);
    assert_eq!(closed.due(at, stale), None);
    assert_eq!(closed.transport_attempt(), None);
}

// ── Configuration limits ───────────────────────────────────────────────

#[test]
fn the_longest_setting_is_one_hundred_years_of_365_days() {
    assert_eq!(Config::MAX_DURATION, secs(100 * 365 * 24 * 3600));
    assert_eq!(Config::MAX_DURATION.as_secs(), 3_153_600_000);
}

#[test]
fn every_bounded_duration_accepts_the_maximum_and_refuses_one_nanosecond_more() {
    type Set = fn(&mut Config, Duration);
    let fields: [(&str, Set); 11] = [
        ("connect_timeout", |c, d| c.connect_timeout = d),
        ("ack_timeout", |c, d| c.ack_timeout = d),
        ("ping_interval", |c, d| {
            c.ping_interval = d;
            c.stale_after = Config::MAX_DURATION;
        }),
        ("stale_after", |c, d| c.stale_after = d),
        ("wake_probe", |c, d| c.wake_probe = d),
        ("close_grace", |c, d| c.close_grace = d),
        ("min_delay", |c, d| c.min_delay = d),
        ("stable_after", |c, d| c.stable_after = d),
        ("max_unstable", |c, d| c.max_unstable = Some(d)),
        ("max_retry_after", |c, d| c.max_retry_after = d),
        ("backoff", |c, d| c.backoff = vec![secs(1), d]),
    ];
    for (name, set) in fields {
        let with = |d| {
            let mut c = Config::default();
            set(&mut c, d);
            c.validate()
        };
        if name == "ping_interval" {
            // It must stay below stale_after, which is at most the maximum.
            assert_eq!(with(Config::MAX_DURATION - NS), Ok(()), "{name}");
            assert!(
                matches!(
                    with(Config::MAX_DURATION),
                    Err(ConfigError::StaleNotAbovePing { .. })
                ),
                "{name}"
            );
        } else {
            assert_eq!(with(Config::MAX_DURATION), Ok(()), "{name}");
        }
        assert_eq!(
            with(Config::MAX_DURATION + NS),
            Err(ConfigError::TooLong(name)),
            "{name}"
        );
        assert_eq!(
            with(Duration::MAX),
            Err(ConfigError::TooLong(name)),
            "{name}"
        );
    }
}

#[test]
fn positive_durations_refuse_zero_and_accept_one_nanosecond() {
    type Set = fn(&mut Config, Duration);
    let fields: [(&str, Set); 8] = [
        ("connect_timeout", |c, d| c.connect_timeout = d),
        ("ack_timeout", |c, d| c.ack_timeout = d),
        ("ping_interval", |c, d| c.ping_interval = d),
        ("stale_after", |c, d| {
            c.stale_after = d;
            c.ping_interval = (d / 2).max(NS);
        }),
        ("wake_probe", |c, d| c.wake_probe = d),
        ("close_grace", |c, d| c.close_grace = d),
        ("min_delay", |c, d| c.min_delay = d),
        ("max_unstable", |c, d| c.max_unstable = Some(d)),
    ];
    for (name, set) in fields {
        let with = |d| {
            let mut c = Config::default();
            set(&mut c, d);
            c.validate()
        };
        assert_eq!(with(Duration::ZERO), Err(ConfigError::Zero(name)), "{name}");
        let smallest = if name == "stale_after" { NS * 2 } else { NS };
        assert_eq!(with(smallest), Ok(()), "{name}");
    }
    // The others may be zero: no settling time, no backoff step, no hints.
    for set in [
        (|c: &mut Config| c.stable_after = Duration::ZERO) as fn(&mut Config),
        |c| c.max_retry_after = Duration::ZERO,
        |c| c.backoff = vec![Duration::ZERO],
    ] {
        let mut c = Config::default();
        set(&mut c);
        assert_eq!(c.validate(), Ok(()), "{c:?}");
    }
}

#[test]
fn stale_after_must_exceed_ping_interval_by_any_amount() {
    let with = |ping: Duration, stale: Duration| {
        Config {
            ping_interval: ping,
            stale_after: stale,
            ..Config::default()
        }
        .validate()
    };
    assert_eq!(with(secs(30), secs(30) + NS), Ok(()));
    for stale in [secs(30), secs(30) - NS, secs(1)] {
        assert_eq!(
            with(secs(30), stale),
            Err(ConfigError::StaleNotAbovePing {
                stale_after: stale,
                ping_interval: secs(30),
            })
        );
    }
}

#[test]
fn jitter_and_attempt_budget_limits() {
    let jitter = |j: f64| {
        Config {
            jitter: j,
            ..Config::default()
        }
        .validate()
    };
    for ok in [0.0, f64::MIN_POSITIVE, 0.5, 1.0] {
        assert_eq!(jitter(ok), Ok(()), "{ok}");
    }
    for bad in [-0.0001, 1.0001, f64::INFINITY, f64::NEG_INFINITY] {
        assert_eq!(jitter(bad), Err(ConfigError::Jitter(bad)), "{bad}");
    }
    assert!(matches!(jitter(f64::NAN), Err(ConfigError::Jitter(j)) if j.is_nan()));

    let attempts = |n| {
        Config {
            max_attempts: n,
            ..Config::default()
        }
        .validate()
    };
    assert_eq!(attempts(Some(0)), Err(ConfigError::ZeroAttempts));
    for ok in [None, Some(1), Some(u32::MAX)] {
        assert_eq!(attempts(ok), Ok(()), "{ok:?}");
    }
}

#[test]
fn defaults_are_the_documented_values() {
    let c = Config::default();
    assert_eq!(c.validate(), Ok(()));
    assert_eq!(c.connect_timeout, secs(10));
    assert_eq!(c.ack_timeout, secs(15));
    assert_eq!(c.ping_interval, secs(30));
    assert_eq!(c.stale_after, secs(75));
    assert_eq!(c.wake_probe, secs(5));
    assert_eq!(c.backoff, [1, 2, 4, 8, 16, 30].map(secs));
    assert_eq!(c.jitter, 0.5);
    assert_eq!(c.min_delay, Duration::from_millis(100));
    assert_eq!(c.stable_after, secs(10));
    assert_eq!(c.close_grace, secs(1));
    assert!(c.terminal_closes.is_empty());
    assert_eq!(c.retried_statuses, [408..=408, 429..=429, 500..=599]);
    assert_eq!(c.max_retry_after, secs(600));
    assert_eq!(c.max_attempts, None);
    assert_eq!(c.max_unstable, None);
    // A validation error at construction is the same typed error.
    assert_eq!(
        Machine::new(
            Config {
                backoff: vec![],
                ..c
            },
            Instant::now()
        )
        .unwrap_err(),
        ConfigError::EmptyBackoff
    );
}
