//! The codec round-trips every input and every configuration exactly, and
//! the file reads back run by run, with typed errors naming the line.

use std::io;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};

use super::super::record_format::{
    RecordingError, gap_line, header_line, input_line, parse_recording,
};
use super::*;
use crate::fsm::{Record, Recording};

fn proptest_config() -> ProptestConfig {
    ProptestConfig {
        cases: 1000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/record_codec.txt",
        ))),
        ..ProptestConfig::default()
    }
}

fn duration() -> impl Strategy<Value = Duration> {
    any::<u64>().prop_map(Duration::from_nanos)
}

fn failure() -> impl Strategy<Value = ConnectFailure> {
    prop_oneof![
        Just(ConnectFailure::Resolve),
        proptest::sample::select(KINDS).prop_map(ConnectFailure::Io),
        Just(ConnectFailure::Tls),
        proptest::option::of(any::<u16>()).prop_map(|status| ConnectFailure::Proxy { status }),
        Just(ConnectFailure::SocksAuth),
        Just(ConnectFailure::Deadline),
        (any::<u16>(), proptest::option::of(duration())).prop_map(|(status, retry_after)| {
            ConnectFailure::Http {
                status,
                retry_after,
            }
        }),
        Just(ConnectFailure::Handshake),
        Just(ConnectFailure::Request),
    ]
}

fn verdict() -> impl Strategy<Value = Verdict> {
    prop_oneof![
        Just(Verdict::Retry),
        Just(Verdict::Terminal),
        duration().prop_map(Verdict::RetryAfter),
    ]
}

fn plain_event() -> impl Strategy<Value = Event> {
    let a = any::<u64>();
    prop_oneof![
        a.prop_map(|attempt| Event::SocketOpened { attempt }),
        (a, failure()).prop_map(|(attempt, failure)| Event::ConnectFailed { attempt, failure }),
        a.prop_map(|attempt| Event::HelloFailed { attempt }),
        a.prop_map(|attempt| Event::Ack { attempt }),
        a.prop_map(|attempt| Event::Activity { attempt }),
        (a, any::<u16>(), any::<String>()).prop_map(|(attempt, code, reason)| {
            Event::PeerClosed {
                attempt,
                code,
                reason,
            }
        }),
        a.prop_map(|attempt| Event::TransportLost { attempt }),
        a.prop_map(|attempt| Event::MessageTooBig { attempt }),
        (a, any::<u16>()).prop_map(|(attempt, code)| Event::ProtocolError { attempt, code }),
        Just(Event::ReadPaused),
        Just(Event::ReadResumed),
        Just(Event::Woke),
        (any::<u16>(), any::<String>()).prop_map(|(code, reason)| Event::Close { code, reason }),
        Just(Event::ReconnectNow),
        Just(Event::Timeout),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    plain_event().prop_recursive(2, 4, 1, |inner| {
        (verdict(), inner).prop_map(|(verdict, event)| event.judged(verdict))
    })
}

fn jitter() -> impl Strategy<Value = f64> {
    prop_oneof![
        0.0..=1.0,
        any::<f64>().prop_filter("NaN is not equal to itself", |j| !j.is_nan()),
        Just(f64::INFINITY),
        Just(0.1 + 0.2),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    let rule =
        (any::<u16>(), proptest::option::of(any::<String>())).prop_map(|(code, reason_prefix)| {
            CloseRule {
                code,
                reason_prefix,
            }
        });
    (
        proptest::array::uniform10(duration()),
        proptest::collection::vec(duration(), 0..8),
        jitter(),
        proptest::collection::vec(rule, 0..4),
        proptest::collection::vec((any::<u16>(), any::<u16>()), 0..4),
        proptest::option::of(any::<u32>()),
        proptest::option::of(duration()),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                d,
                backoff,
                jitter,
                terminal_closes,
                statuses,
                max_attempts,
                max_unstable,
                seed,
                ping_when_idle,
            )| {
                Config {
                    connect_timeout: d[0],
                    ack_timeout: d[1],
                    ping_interval: d[2],
                    ping_when_idle,
                    stale_after: d[3],
                    wake_probe: d[4],
                    backoff,
                    jitter,
                    min_delay: d[5],
                    stable_after: d[6],
                    close_grace: d[7],
                    terminal_closes,
                    retried_statuses: statuses.into_iter().map(|(a, b)| a..=b).collect(),
                    max_retry_after: d[8],
                    max_attempts,
                    max_unstable: max_unstable.or(Some(d[9]).filter(|_| seed % 2 == 0)),
                    seed,
                }
            },
        )
}

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn every_event_round_trips(event in event()) {
        let text = event_to_json(&event).to_string();
        let back = event_from_json(&serde_json::from_str(&text).unwrap(), "event");
        prop_assert_eq!(back, Ok(event));
    }

    #[test]
    fn every_config_round_trips(config in config()) {
        let text = config_to_json(&config).to_string();
        let back = config_from_json(&serde_json::from_str(&text).unwrap(), "config");
        prop_assert_eq!(back, Ok(config));
    }

    #[test]
    fn every_run_reads_back(
        config in config(),
        inputs in proptest::collection::vec((any::<u64>(), event()), 0..20),
        gap in 1..100u64,
    ) {
        let started = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        let mut text = header_line(&config, started, "ws://h/ws") + "\n";
        let mut records = Vec::new();
        for (at, event) in inputs {
            text += &(input_line(Duration::from_nanos(at), &event) + "\n");
            records.push(Record::Input { at: Duration::from_nanos(at), event });
        }
        text += &(gap_line(gap) + "\n");
        records.push(Record::Gap { dropped: gap });
        let runs = parse_recording(text.as_bytes()).unwrap();
        prop_assert_eq!(runs.len(), 1);
        let want = Recording {
            records,
            started,
            url: "ws://h/ws".into(),
            ..Recording::new(config)
        };
        prop_assert_eq!(&runs[0], &want);
    }
}

#[test]
fn the_socket_error_kinds_keep_their_names() {
    for kind in KINDS {
        let failure = ConnectFailure::Io(*kind);
        let back = failure_from_json(&failure_to_json(&failure), "f");
        assert_eq!(back, Ok(failure));
    }
    // A name std cannot construct reads as Other.
    assert_eq!(error_kind("Uncategorized"), io::ErrorKind::Other);
}

#[test]
fn several_runs_split_at_their_headers() {
    let config = Config::default();
    let now = SystemTime::now();
    let text = [
        header_line(&config, now, "ws://a/ws"),
        input_line(
            Duration::from_millis(1),
            &Event::SocketOpened { attempt: 1 },
        ),
        String::new(),
        header_line(&config, now, "ws://b/ws"),
        input_line(Duration::from_millis(2), &Event::Timeout),
        gap_line(3),
    ]
    .join("\n");
    let runs = parse_recording(text.as_bytes()).unwrap();
    let urls: Vec<&str> = runs.iter().map(|r| r.url.as_str()).collect();
    assert_eq!(urls, ["ws://a/ws", "ws://b/ws"]);
    assert_eq!(runs[0].records.len(), 1);
    assert_eq!(runs[1].records.len(), 2);
    assert_eq!(runs[1].crate_version, env!("CARGO_PKG_VERSION"));
}

#[test]
fn a_bad_line_is_a_typed_error_naming_it() {
    let header = header_line(&Config::default(), SystemTime::now(), "ws://a/ws");
    let cases: &[(&str, usize, &str)] = &[
        (
            "{\"t_ns\":1,\"event\":{\"type\":\"Timeout\"}}",
            1,
            "before any header",
        ),
        ("not json", 2, "not JSON"),
        ("[1,2]", 2, "must be an object"),
        ("{\"t_ns\":-1,\"event\":{\"type\":\"Timeout\"}}", 2, "t_ns"),
        (
            "{\"t_ns\":1,\"event\":{\"type\":\"Nope\"}}",
            2,
            "unknown event",
        ),
        (
            "{\"t_ns\":1,\"event\":{\"type\":\"Ack\"}}",
            2,
            "event.attempt` is missing",
        ),
        (
            "{\"t_ns\":1,\"event\":{\"type\":\"Close\",\"code\":70000,\"reason\":\"\"}}",
            2,
            "0-65535",
        ),
        (
            "{\"t_ns\":1,\"event\":{\"type\":\"Judged\",\"verdict\":\"maybe\",\"event\":{\"type\":\"Timeout\"}}}",
            2,
            "verdict",
        ),
        ("{\"gap\":\"many\"}", 2, "gap"),
        (
            "{\"recording\":\"ws-lifecycle\",\"format\":2}",
            2,
            "format version 2",
        ),
        (
            "{\"recording\":\"other\",\"format\":1}",
            2,
            "must be \"ws-lifecycle\"",
        ),
    ];
    for (line, at, says) in cases {
        let text = if *at == 1 {
            line.to_string()
        } else {
            format!("{header}\n{line}\n")
        };
        let e = parse_recording(text.as_bytes()).unwrap_err();
        assert_eq!(e.line(), *at, "{line}: {e}");
        assert!(e.to_string().contains(says), "{line}: {e}");
    }
    // Not UTF-8: an I/O error, on its line.
    let mut bytes = format!("{header}\n").into_bytes();
    bytes.extend_from_slice(b"\xff\xfe\n");
    let e = parse_recording(bytes.as_slice()).unwrap_err();
    assert!(matches!(e, RecordingError::Io { line: 2, .. }), "{e}");
    // A broken config field names its path.
    let broken = header.replace("\"seed\":", "\"seed\":\"x\",\"was\":");
    let e = parse_recording(broken.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("`config.seed`"), "{e}");
}

/// `ping_when_idle` is written, and a header written before the option
/// existed (no such field) still reads, with the option off; a field that
/// is not a boolean is a typed error naming it.
#[test]
fn ping_when_idle_is_recorded_and_older_headers_default_it_off() {
    let on = Config {
        ping_when_idle: true,
        ..Config::default()
    };
    let v = config_to_json(&on);
    assert_eq!(v["ping_when_idle"], Value::Bool(true));
    assert_eq!(config_from_json(&v, "config"), Ok(on));
    let mut older = config_to_json(&Config::default());
    older.as_object_mut().unwrap().remove("ping_when_idle");
    assert_eq!(config_from_json(&older, "config"), Ok(Config::default()));
    let mut was_on = v.clone();
    was_on.as_object_mut().unwrap().remove("ping_when_idle");
    assert!(!config_from_json(&was_on, "config").unwrap().ping_when_idle);
    let mut bad = v;
    bad["ping_when_idle"] = Value::from("yes");
    let e = config_from_json(&bad, "config").unwrap_err();
    assert!(e.contains("`config.ping_when_idle`"), "{e}");
}
