//! End-to-end tests of `wsclient` (the `cli` feature's binary, or the
//! example built from the same source; see `cli_support`): run as a child
//! process against an in-test broker, its stdout (one JSON object per line),
//! exit code and timing are checked against the contract in its `--help`.
//!
//! Every wait is bounded; every child is killed and reaped when its test
//! ends, whatever the outcome (see `Cli`'s `Drop`).

#[path = "../examples/common/broker.rs"]
mod broker;
mod cli_support;
mod example_bin;
mod proxy_support;
mod raw_server;

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::{self, Message};
use rustix::process::Signal;
use serde_json::{Value, json};

use cli_support::*;

// ── the tests ──────────────────────────────────────────────────────────

#[test]
fn happy_path_opens_echoes_and_reports_lines_that_are_not_json() {
    let broker = start_broker(broker::Options::default());
    let hello = r#"{"type":"hello","client":"cli-test"}"#;
    let mut cli = Cli::spawn(&["--hello", hello, &broker.url()]);

    cli.wait_status("open");
    assert_eq!(
        cli.statuses(),
        ["connecting", "awaiting_ack", "open"],
        "\n{}",
        cli.transcript()
    );
    assert_eq!(
        cli.seen[0].json["t_ms"].as_u64().map(|t| t < 1000),
        Some(true)
    );

    cli.write_line(r#"{"n":1}"#);
    let echo = cli.wait_for("an echo", |l| l["event"] == "message");
    assert_eq!(echo["data"], json!({"type": "echo", "data": {"n": 1}}));

    cli.write_line("this is not json");
    let failed = cli.wait_for("send_failed", |l| l["event"] == "send_failed");
    assert!(
        failed["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{failed}"
    );

    // The client goes on: the next line is still sent.
    cli.write_line("  [2, \"three\"]  ");
    let echo = cli.wait_for("a second echo", |l| l["event"] == "message");
    assert_eq!(echo["data"], json!({"type": "echo", "data": [2, "three"]}));

    // The broker got the custom hello, then exactly the two JSON lines.
    let texts = broker.stats.texts.lock().unwrap().clone();
    let texts: Vec<Value> = texts
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            serde_json::from_str::<Value>(hello).unwrap(),
            json!({"n": 1}),
            json!([2, "three"])
        ]
    );
    assert_eq!(cli.events("send_failed").len(), 1, "\n{}", cli.transcript());
    assert_eq!(cli.events("message").len(), 2, "\n{}", cli.transcript());

    cli.close_stdin();
    let (status, _) = cli.wait_exit(EXIT_WAIT);
    assert_eq!(status.code(), Some(0), "\n{}", cli.transcript());
    cli.assert_ends_closed();
}

#[test]
fn eof_on_stdin_closes_with_1000_and_exits_0() {
    let broker = start_broker(broker::Options::default());
    let mut cli = Cli::spawn(&[&broker.url()]);
    cli.wait_status("open");

    let eof_at = Instant::now();
    cli.close_stdin();
    let (status, took) = cli.wait_exit(EXIT_WAIT);
    let closed_line = cli.seen.last().map(|l| l.at.duration_since(eof_at));
    println!("exit after EOF: {took:?} (closed line after {closed_line:?})");
    assert_eq!(status.code(), Some(0), "\n{}", cli.transcript());
    cli.assert_ends_closed();
    assert_eq!(
        cli.statuses(),
        ["connecting", "awaiting_ack", "open", "closing", "closed"],
        "\n{}",
        cli.transcript()
    );
    assert_eq!(broker_closes(&broker), [(1000, String::new())]);
    assert!(took < EXIT_WAIT);
}

/// Credentials (the URL's user info and query, the hello) never reach stdout
/// or stderr, even at `RUST_LOG=trace` (tungstenite traces requests and
/// frame payloads).
#[test]
fn credentials_stay_out_of_the_output_even_at_trace() {
    let broker = start_broker(broker::Options::default());
    let url = broker
        .url()
        .replacen("ws://", "ws://user:pa55word@", 1)
        .replace("/ws", "/ws?token=t0ken-q");
    let hello = r#"{"type":"hello","secret":"h3llo-s3cret"}"#;
    let mut cli = Cli::spawn_logging(&["--hello", hello, &url], Some("trace"));
    cli.wait_status("open");
    cli.close_stdin();
    let (status, _) = cli.wait_exit(EXIT_WAIT);
    assert_eq!(status.code(), Some(0), "\n{}", cli.transcript());
    let transcript = cli.transcript();
    assert!(
        transcript.contains("TRACE") || transcript.contains("DEBUG"),
        "logging was on:\n{transcript}"
    );
    for secret in ["pa55word", "t0ken-q", "h3llo-s3cret"] {
        assert!(
            !transcript.contains(secret),
            "{secret} leaked:\n{transcript}"
        );
    }
}

/// A broker that acks and then never reads again, so it never answers the
/// close frame: the close grace (500 ms) must end the session anyway.
#[test]
fn eof_against_a_broker_that_never_answers_the_close_exits_within_1s() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let deaf = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut ws = tungstenite::accept(stream).unwrap();
        let _hello = ws.read().unwrap();
        ws.send(Message::text(r#"{"type":"hello_ack"}"#)).unwrap();
        // Hold the socket without reading (reading would answer the close).
        let _ = done_rx.recv_timeout(Duration::from_secs(20));
    });

    let mut cli = Cli::spawn(&[&url]);
    cli.wait_status("open");
    cli.close_stdin();
    let (status, took) = cli.wait_exit(EXIT_WAIT);
    let _ = done_tx.send(());
    deaf.join().unwrap();

    let t = |s: &str| {
        cli.seen
            .iter()
            .find(|l| is_status(&l.json, s))
            .and_then(|l| l.json["t_ms"].as_u64())
    };
    let grace = t("closed").unwrap() - t("closing").unwrap();
    println!("exit after EOF with a deaf broker: {took:?} (closing -> closed: {grace} ms)");
    assert_eq!(status.code(), Some(0), "\n{}", cli.transcript());
    cli.assert_ends_closed();
    assert!(
        (400..1000).contains(&grace),
        "closing lasted {grace} ms, expected the 500 ms grace\n{}",
        cli.transcript()
    );
}

#[test]
fn a_terminal_close_code_stops_the_client_with_exit_3() {
    let broker = start_broker(broker::Options {
        close_after_ack: Some((4001, "banned".into())),
        ..broker::Options::default()
    });
    let mut cli = Cli::spawn(&["--terminal-codes", "4000,4001", &broker.url()]);

    let gone = cli.wait_for("disconnected", |l| l["event"] == "disconnected");
    assert_eq!(gone["code"], 4001, "{gone}");
    assert_eq!(gone["reason"], "banned", "{gone}");
    assert_eq!(gone["attempt"], 1, "{gone}");

    let (status, took) = cli.wait_exit(EXIT_WAIT);
    println!("exit after the terminal close: {took:?}");
    assert_eq!(status.code(), Some(3), "\n{}", cli.transcript());
    cli.assert_ends_closed();
    assert!(
        cli.events("reconnect_scheduled").is_empty(),
        "\n{}",
        cli.transcript()
    );
    assert_eq!(
        broker
            .stats
            .connections
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

#[test]
fn a_close_code_that_is_not_terminal_schedules_a_reconnect() {
    let broker = start_broker(broker::Options {
        close_after_ack: Some((4001, "banned".into())),
        ..broker::Options::default()
    });
    let mut cli = Cli::spawn(&[
        "--terminal-codes",
        "4002",
        "--backoff",
        "150,5000",
        "--jitter",
        "0",
        &broker.url(),
    ]);

    let gone = cli.wait_for("disconnected", |l| l["event"] == "disconnected");
    assert_eq!(
        (gone["code"].clone(), gone["attempt"].clone()),
        (json!(4001), json!(1))
    );
    let next = cli.wait_for("reconnect_scheduled", |l| {
        l["event"] == "reconnect_scheduled"
    });
    assert_eq!(next["attempt"], 2, "{next}");
    assert_eq!(next["delay_ms"], 150, "{next}");
    // The second attempt opens (and is closed again by the broker).
    let second = cli.wait_for("the second disconnected", |l| {
        l["event"] == "disconnected" && l["attempt"] == 2
    });
    assert_eq!(second["code"], 4001);
    assert_eq!(
        &cli.statuses()[..6],
        [
            "connecting",
            "awaiting_ack",
            "open",
            "reconnecting",
            "connecting",
            "awaiting_ack"
        ],
        "\n{}",
        cli.transcript()
    );

    cli.close_stdin();
    let (status, _) = cli.wait_exit(EXIT_WAIT);
    assert_eq!(status.code(), Some(0), "\n{}", cli.transcript());
    cli.assert_ends_closed();
}

#[test]
fn ack_type_and_hello_timeout_are_honoured() {
    // The broker answers hello_ack, which is not the ack type asked for: it
    // arrives as a message, and the ack deadline drops the socket.
    let broker = start_broker(broker::Options::default());
    let mut cli = Cli::spawn(&[
        "--ack-type",
        "welcome",
        "--hello-timeout",
        "300",
        "--backoff",
        "5000",
        "--jitter",
        "0",
        &broker.url(),
    ]);

    let message = cli.wait_for("a message", |l| l["event"] == "message");
    assert_eq!(message["data"], json!({"type": "hello_ack"}));
    let gone = cli.wait_for("disconnected", |l| l["event"] == "disconnected");
    assert_eq!(gone["code"], 1006, "{gone}");
    let next = cli.wait_for("reconnect_scheduled", |l| {
        l["event"] == "reconnect_scheduled"
    });
    assert_eq!(
        (next["attempt"].clone(), next["delay_ms"].clone()),
        (json!(2), json!(5000))
    );
    let awaiting = cli.seen.iter().find(|l| is_status(&l.json, "awaiting_ack"));
    let waited = gone["t_ms"].as_u64().unwrap() - awaiting.unwrap().json["t_ms"].as_u64().unwrap();
    assert!(
        (250..5000).contains(&waited),
        "ack deadline after {waited} ms\n{}",
        cli.transcript()
    );
    assert!(!cli.statuses().contains(&"open"), "\n{}", cli.transcript());

    // Closing while reconnecting is immediate.
    cli.close_stdin();
    let (status, took) = cli.wait_exit(EXIT_WAIT);
    println!("exit after EOF while reconnecting: {took:?}");
    assert_eq!(status.code(), Some(0), "\n{}", cli.transcript());
    cli.assert_ends_closed();
}

#[test]
fn invalid_frames_and_too_big_messages_are_reported() {
    let big = json!({"type": "big", "pad": "x".repeat(200)}).to_string();
    let broker = start_broker(broker::Options {
        after_ack: vec![
            Message::text("this is not json"),
            Message::binary(vec![1u8, 2, 3]),
            Message::text(big),
        ],
        ..broker::Options::default()
    });
    let mut cli = Cli::spawn(&["--max-message", "100", "--backoff", "5000", &broker.url()]);

    let gone = cli.wait_for("disconnected", |l| l["event"] == "disconnected");
    assert_eq!(gone["code"], 1009, "{gone}");
    let invalid = cli.events("invalid_frame");
    assert_eq!(invalid.len(), 2, "\n{}", cli.transcript());
    assert!(
        invalid
            .iter()
            .all(|l| l["detail"].as_str().is_some_and(|d| !d.is_empty()))
    );
    assert!(cli.events("message").is_empty(), "\n{}", cli.transcript());

    cli.close_stdin();
    let (status, _) = cli.wait_exit(EXIT_WAIT);
    assert_eq!(status.code(), Some(0), "\n{}", cli.transcript());
    cli.assert_ends_closed();
}

#[test]
fn eof_while_reconnecting_to_nothing_exits_0() {
    let url = refused_url();
    let mut cli = Cli::spawn(&["--backoff", "5000", &url]);
    cli.wait_for("reconnect_scheduled", |l| {
        l["event"] == "reconnect_scheduled"
    });
    // No socket ever opened: nothing to report as disconnected.
    assert!(
        cli.events("disconnected").is_empty(),
        "\n{}",
        cli.transcript()
    );
    cli.write_line(r#"{"n":1}"#);
    let failed = cli.wait_for("send_failed", |l| l["event"] == "send_failed");
    assert!(
        failed["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not open")),
        "{failed}"
    );
    cli.close_stdin();
    let (status, took) = cli.wait_exit(EXIT_WAIT);
    println!("exit after EOF with no broker: {took:?}");
    assert_eq!(status.code(), Some(0), "\n{}", cli.transcript());
    cli.assert_ends_closed();
}

fn a_signal_closes_with_1000_and_exits_0(signal: Signal, name: &str) {
    let broker = start_broker(broker::Options::default());
    let mut cli = Cli::spawn(&[&broker.url()]);
    cli.wait_status("open");
    cli.signal(signal);
    let (status, took) = cli.wait_exit(EXIT_WAIT);
    println!("exit after {name}: {took:?}");
    assert_eq!(status.code(), Some(0), "\n{}", cli.transcript());
    cli.assert_ends_closed();
    assert_eq!(broker_closes(&broker), [(1000, String::new())]);
}

#[test]
fn sigterm_closes_with_1000_and_exits_0() {
    a_signal_closes_with_1000_and_exits_0(Signal::TERM, "SIGTERM");
}

#[test]
fn sigint_closes_with_1000_and_exits_0() {
    a_signal_closes_with_1000_and_exits_0(Signal::INT, "SIGINT");
}

#[test]
fn usage_errors_exit_2_with_a_message() {
    let bad = [
        vec!["http://127.0.0.1:1/ws"],
        vec!["not a url"],
        vec![],
        vec!["--hello", "{not json", "ws://127.0.0.1:1/ws"],
        vec!["--no-such-option", "ws://127.0.0.1:1/ws"],
        vec!["--connect-timeout", "soon", "ws://127.0.0.1:1/ws"],
        vec!["--connect-timeout", "0", "ws://127.0.0.1:1/ws"],
        vec![
            "--ping-interval",
            "2000",
            "--stale-after",
            "1000",
            "ws://127.0.0.1:1/ws",
        ],
        vec!["--jitter", "1.5", "ws://127.0.0.1:1/ws"],
        vec!["--max-message", "0", "ws://127.0.0.1:1/ws"],
        vec!["--terminal-codes", "banned", "ws://127.0.0.1:1/ws"],
        vec!["ws://127.0.0.1:1/ws", "ws://127.0.0.1:2/ws"],
        vec!["ws://127.0.0.1:1/ws", "--backoff"],
    ];
    for args in bad {
        let (code, stdout, stderr) = run_to_exit(&args);
        assert_eq!(
            code,
            Some(2),
            "{args:?}: stdout {stdout:?}, stderr {stderr:?}"
        );
        assert!(stdout.is_empty(), "{args:?}: stdout {stdout:?}");
        assert!(stderr.contains("wsclient:"), "{args:?}: stderr {stderr:?}");
        println!("{args:?} -> {}", stderr.lines().next().unwrap_or_default());
    }
}

/// Issue 7, defect 3: URLs that used to be accepted (and connect to the
/// wrong port or host) are usage errors that name the problem and show no
/// password, query or fragment.
#[test]
fn bad_ports_fragments_and_reserved_characters_in_passwords_exit_2() {
    let bad = [
        ("ws://127.0.0.1:99999/ws?token=q1", "out of range"),
        ("ws://127.0.0.1:abc/ws?token=q1", "not a number"),
        ("ws://127.0.0.1:0/ws?token=q1", "port 0"),
        ("ws://127.0.0.1:/ws?token=q1", "empty port"),
        ("ws://127.0.0.1:1/ws?token=q1#s3cret", "fragment"),
        ("wss://u:s3c/r3t@127.0.0.1:1/ws?token=q1", "percent-encode"),
        ("wss://u:s3c?r3t@127.0.0.1:1/ws", "percent-encode"),
        ("wss://u:s3c#r3t@127.0.0.1:1/ws", "percent-encode"),
        ("wss://u:s3c@r3t@127.0.0.1:1/ws", "percent-encode"),
    ];
    for (url, problem) in bad {
        let (code, stdout, stderr) = run_to_exit(&[url]);
        assert_eq!(code, Some(2), "{url}: stdout {stdout:?}, stderr {stderr:?}");
        assert!(stdout.is_empty(), "{url}: stdout {stdout:?}");
        assert!(stderr.contains("wsclient: bad url"), "{url}: {stderr:?}");
        assert!(
            stderr.contains(problem),
            "{url}: {stderr:?} lacks {problem:?}"
        );
        for secret in ["s3c", "r3t", "q1", "token", "s3cret"] {
            assert!(!stderr.contains(secret), "{url}: {secret:?} in {stderr:?}");
        }
        println!("{url} -> {}", stderr.lines().next().unwrap_or_default());
    }
}

#[test]
fn version_prints_the_name_and_the_crate_version_and_exits_0() {
    for flag in ["--version", "-V"] {
        let (code, stdout, stderr) = run_to_exit(&[flag]);
        assert_eq!(code, Some(0), "{flag}: {stderr}");
        assert_eq!(
            stdout,
            format!("wsclient {}", env!("CARGO_PKG_VERSION")),
            "{flag}"
        );
    }
}

#[test]
fn help_prints_the_contract_and_exits_0() {
    let (code, stdout, stderr) = run_to_exit(&["--help"]);
    assert_eq!(code, Some(0), "stderr {stderr:?}");
    assert!(stdout.starts_with("wsclient [OPTIONS] URL"), "{stdout}");
    for option in [
        "--hello JSON",
        "--ack-type TYPE",
        "--connect-timeout MS",
        "--hello-timeout MS",
        "--ping-interval MS",
        "--stale-after MS",
        "--backoff MS,MS,...",
        "--jitter FRACTION",
        "--max-message BYTES",
        "--terminal-codes SPEC,SPEC",
        "--resume-field NAME",
        "--after-ack JSON",
        "--record FILE",
        r#"{"event":"send_failed","detail":"..."}"#,
        r#"{"event":"acked","attempt":N,"data":<the ack frame>}"#,
        r#"{"event":"connect_failed","attempt":N,"detail":"...","http_status":N|null}"#,
        "Upgrade answers other than 101:",
    ] {
        assert!(stdout.contains(option), "--help lacks {option}:\n{stdout}");
    }
    // The module doc holds the same contract text, line for line.
    let source = include_str!("../examples/wsclient/main.rs");
    let doc: Vec<&str> = source
        .lines()
        .skip_while(|l| *l != "//! ```text")
        .skip(1)
        .take_while(|l| *l != "//! ```")
        .map(|l| {
            l.strip_prefix("//! ")
                .unwrap_or(l.trim_start_matches("//!"))
        })
        .collect();
    let help: Vec<&str> = stdout.lines().map(str::trim_end).collect();
    assert_eq!(doc, help, "the module doc and --help differ");
}

// ── contract version 2 ────────────────────────────────────────────────

#[test]
fn terminal_codes_with_a_reason_prefix_stop_the_client_with_exit_3() {
    let broker = start_broker(broker::Options {
        close_after_ack: Some((1008, "unauthorized".into())),
        ..broker::Options::default()
    });
    let mut cli = Cli::spawn(&[
        "--terminal-codes",
        "4001,1008:unauthorized",
        "--backoff",
        "100",
        &broker.url(),
    ]);

    let gone = cli.wait_for("disconnected", |l| l["event"] == "disconnected");
    assert_eq!(
        (&gone["code"], &gone["reason"], &gone["attempt"]),
        (&json!(1008), &json!("unauthorized"), &json!(1)),
        "{gone}"
    );
    let (status, took) = cli.wait_exit(EXIT_WAIT);
    println!("exit after 1008 unauthorized: {took:?}");
    assert_eq!(status.code(), Some(3), "\n{}", cli.transcript());
    cli.assert_ends_closed();
    assert!(
        cli.events("reconnect_scheduled").is_empty(),
        "\n{}",
        cli.transcript()
    );
    assert_eq!(broker.stats.connections.load(Ordering::SeqCst), 1);
}

#[test]
fn terminal_codes_with_a_reason_prefix_let_other_reasons_reconnect() {
    let broker = start_broker(broker::Options {
        close_after_ack: Some((1008, "capacity".into())),
        ..broker::Options::default()
    });
    let mut cli = Cli::spawn(&[
        "--terminal-codes",
        "4001,1008:unauthorized",
        "--backoff",
        "100",
        "--jitter",
        "0",
        &broker.url(),
    ]);

    let gone = cli.wait_for("disconnected", |l| l["event"] == "disconnected");
    assert_eq!(
        (&gone["code"], &gone["reason"], &gone["attempt"]),
        (&json!(1008), &json!("capacity"), &json!(1)),
        "{gone}"
    );
    let next = cli.wait_for("reconnect_scheduled", |l| {
        l["event"] == "reconnect_scheduled"
    });
    assert_eq!(
        (&next["attempt"], &next["delay_ms"]),
        (&json!(2), &json!(100))
    );
    let second = cli.wait_for("the second disconnected", |l| {
        l["event"] == "disconnected" && l["attempt"] == 2
    });
    assert_eq!(second["reason"], "capacity", "{second}");

    cli.close_stdin();
    let (status, _) = cli.wait_exit(EXIT_WAIT);
    assert_eq!(status.code(), Some(0), "\n{}", cli.transcript());
    cli.assert_ends_closed();
}

#[test]
fn acked_reports_the_ack_frame_right_after_open() {
    let broker = start_broker(broker::Options {
        resume: Some(Arc::new(broker::Journal::default())),
        ..broker::Options::default()
    });
    let mut cli = Cli::spawn(&[&broker.url()]);

    let acked = cli.wait_for("acked", |l| l["event"] == "acked");
    assert_eq!(acked["attempt"], 1, "{acked}");
    assert_eq!(
        acked["data"],
        json!({"type": "hello_ack", "resume": "session-1", "resumed": false}),
        "{acked}"
    );
    let keys: Vec<&String> = acked.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 4, "t_ms, event, attempt, data only: {acked}");
    let at = cli.seen.len() - 1;
    assert!(
        at > 0 && is_status(&cli.seen[at - 1].json, "open"),
        "acked does not follow status open\n{}",
        cli.transcript()
    );
    // The ack is not reported as a message as well.
    assert!(cli.events("message").is_empty(), "\n{}", cli.transcript());

    cli.close_stdin();
    let (status, _) = cli.wait_exit(EXIT_WAIT);
    assert_eq!(status.code(), Some(0), "\n{}", cli.transcript());
    cli.assert_ends_closed();
    assert_eq!(cli.events("acked").len(), 1, "\n{}", cli.transcript());
}

#[test]
fn connect_failed_reports_a_refused_port_with_http_status_null() {
    let url = refused_url();
    let mut cli = Cli::spawn(&["--backoff", "100,5000", "--jitter", "0", &url]);

    let failed = cli.wait_for("connect_failed", |l| l["event"] == "connect_failed");
    assert_eq!(failed["attempt"], 1, "{failed}");
    assert!(failed["http_status"].is_null(), "{failed}");
    assert!(
        failed["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{failed}"
    );
    let keys: Vec<&String> = failed.as_object().unwrap().keys().collect();
    assert_eq!(
        keys.len(),
        5,
        "t_ms, event, attempt, detail, http_status: {failed}"
    );
    // Every attempt that ends before its socket opens gives one.
    let second = cli.wait_for("the second connect_failed", |l| {
        l["event"] == "connect_failed" && l["attempt"] == 2
    });
    assert!(second["http_status"].is_null(), "{second}");
    let next = cli.wait_for("reconnect_scheduled for attempt 3", |l| {
        l["event"] == "reconnect_scheduled" && l["attempt"] == 3
    });
    assert_eq!(next["delay_ms"], 5000, "{next}");

    cli.close_stdin();
    let (status, _) = cli.wait_exit(EXIT_WAIT);
    assert_eq!(status.code(), Some(0), "\n{}", cli.transcript());
    cli.assert_ends_closed();
    assert!(
        cli.events("disconnected").is_empty(),
        "\n{}",
        cli.transcript()
    );
}

#[test]
fn connect_failed_with_http_status_403_stops_the_client_with_exit_3() {
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    let (addr, _server) = raw_server::serve_bytes(move |_head| {
        counted.fetch_add(1, Ordering::SeqCst);
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".to_vec()
    });
    let mut cli = Cli::spawn(&["--backoff", "100", &format!("ws://{addr}/ws")]);

    let failed = cli.wait_for("connect_failed", |l| l["event"] == "connect_failed");
    assert_eq!(
        (&failed["attempt"], &failed["http_status"]),
        (&json!(1), &json!(403)),
        "{failed}"
    );
    assert!(
        failed["detail"].as_str().is_some_and(|d| d.contains("403")),
        "{failed}"
    );
    let (status, took) = cli.wait_exit(EXIT_WAIT);
    println!("exit after a 403: {took:?}");
    assert_eq!(status.code(), Some(3), "\n{}", cli.transcript());
    cli.assert_ends_closed();
    assert_eq!(
        cli.statuses(),
        ["connecting", "closed"],
        "\n{}",
        cli.transcript()
    );
    assert!(
        cli.events("reconnect_scheduled").is_empty(),
        "\n{}",
        cli.transcript()
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1, "one upgrade request");
    assert!(
        cli.stderr.lock().unwrap().contains("wsclient:"),
        "\n{}",
        cli.transcript()
    );
}

#[test]
fn connect_failed_with_http_status_503_is_retried_after_its_retry_after() {
    let requests: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = requests.clone();
    let (addr, _server) = raw_server::serve_bytes(move |head| {
        let mut seen = seen.lock().unwrap();
        seen.push(Instant::now());
        if seen.len() == 1 {
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"
                .to_vec()
        } else {
            let mut bytes = raw_server::switching(head, "").into_bytes();
            bytes.extend(raw_server::text_frame(r#"{"type":"hello_ack"}"#));
            bytes
        }
    });
    let mut cli = Cli::spawn(&[
        "--backoff",
        "100",
        "--jitter",
        "0",
        &format!("ws://{addr}/ws"),
    ]);

    let failed = cli.wait_for("connect_failed", |l| l["event"] == "connect_failed");
    assert_eq!(
        (&failed["attempt"], &failed["http_status"]),
        (&json!(1), &json!(503)),
        "{failed}"
    );
    let next = cli.wait_for("reconnect_scheduled", |l| {
        l["event"] == "reconnect_scheduled"
    });
    assert_eq!(next["attempt"], 2, "{next}");
    let delay = next["delay_ms"].as_u64().unwrap();
    assert!(
        (1000..2000).contains(&delay),
        "Retry-After: 1 with a 100 ms backoff and no jitter gave {delay} ms\n{}",
        cli.transcript()
    );
    let acked = cli.wait_for("acked", |l| l["event"] == "acked");
    assert_eq!(acked["attempt"], 2, "{acked}");
    assert_eq!(
        cli.events("connect_failed").len(),
        1,
        "\n{}",
        cli.transcript()
    );

    let gap = {
        let at = requests.lock().unwrap();
        assert_eq!(at.len(), 2, "two upgrade requests");
        at[1] - at[0]
    };
    println!("upgrade requests {gap:?} apart (Retry-After: 1)");
    assert!(
        gap >= Duration::from_secs(1) && gap < LINE_WAIT,
        "second upgrade request {gap:?} after the first"
    );

    cli.close_stdin();
    let (status, _) = cli.wait_exit(EXIT_WAIT);
    assert_eq!(status.code(), Some(0), "\n{}", cli.transcript());
    cli.assert_ends_closed();
}

/// The example broker hands out a resume token in its ack; the next hello
/// carries it (added to the --hello object), and the session is resumed.
#[test]
fn resume_field_puts_the_first_acks_value_into_the_second_hello() {
    let broker = start_broker(broker::Options {
        resume: Some(Arc::new(broker::Journal::default())),
        close_after_ack: Some((4000, "again".into())),
        ..broker::Options::default()
    });
    let hello = json!({"type": "hello", "client": "cli-test"});
    let mut cli = Cli::spawn(&[
        "--hello",
        &hello.to_string(),
        "--resume-field",
        "resume",
        "--backoff",
        "100",
        "--jitter",
        "0",
        &broker.url(),
    ]);

    let first = cli.wait_for("acked", |l| l["event"] == "acked");
    assert_eq!(first["data"]["resume"], "session-1", "{first}");
    let second = cli.wait_for("the second acked", |l| {
        l["event"] == "acked" && l["attempt"] == 2
    });
    assert_eq!(second["data"]["resumed"], true, "{second}");

    let hellos = broker_texts(&broker);
    assert_eq!(
        hellos[..2],
        [
            hello.clone(),
            json!({"type": "hello", "client": "cli-test", "resume": "session-1"})
        ],
        "\n{}",
        cli.transcript()
    );

    cli.close_stdin();
    let (status, _) = cli.wait_exit(EXIT_WAIT);
    assert_eq!(status.code(), Some(0), "\n{}", cli.transcript());
    cli.assert_ends_closed();
}

/// A hand-written broker whose acks carry `token` t1, nothing, t2: each
/// hello carries the latest value an ack carried, replacing the --hello's.
#[test]
fn resume_field_keeps_the_latest_value_an_ack_carried() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let (hello_tx, hellos) = mpsc::channel::<Value>();
    let acks = [
        json!({"type": "hello_ack", "token": "t1"}),
        json!({"type": "hello_ack", "lease": 30}),
        json!({"type": "hello_ack", "token": "t2"}),
        json!({"type": "hello_ack"}),
    ];
    let server = std::thread::spawn(move || {
        for (n, ack) in acks.iter().enumerate() {
            let (stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(LINE_WAIT)).unwrap();
            let mut ws = tungstenite::accept(stream).unwrap();
            let hello = ws.read().unwrap();
            let _ = hello_tx.send(serde_json::from_str(hello.to_text().unwrap()).unwrap());
            ws.send(Message::text(ack.to_string())).unwrap();
            if n + 1 < acks.len() {
                let _ = ws.close(Some(tungstenite::protocol::CloseFrame {
                    code: 4000.into(),
                    reason: "again".into(),
                }));
            }
            // Until the client's close (or its socket) ends the connection.
            while ws.read().is_ok() {}
        }
    });

    let mut cli = Cli::spawn(&[
        "--hello",
        r#"{"type":"hello","token":"t0"}"#,
        "--resume-field",
        "token",
        "--backoff",
        "100",
        "--jitter",
        "0",
        &url,
    ]);
    cli.wait_for("the fourth acked", |l| {
        l["event"] == "acked" && l["attempt"] == 4
    });
    let received: Vec<Value> = (0..4)
        .map(|_| hellos.recv_timeout(LINE_WAIT).expect("a hello"))
        .collect();
    let with = |token: &str| json!({"type": "hello", "token": token});
    assert_eq!(
        received,
        [with("t0"), with("t1"), with("t1"), with("t2")],
        "\n{}",
        cli.transcript()
    );
    assert_eq!(cli.events("acked").len(), 4, "\n{}", cli.transcript());

    cli.close_stdin();
    let (status, _) = cli.wait_exit(EXIT_WAIT);
    assert_eq!(status.code(), Some(0), "\n{}", cli.transcript());
    cli.assert_ends_closed();
    server.join().unwrap();
}

/// After-ack frames go first on every connection (here: before a stdin
/// line sent once the session is open), in the order given, and again
/// after a broker restart.
#[test]
fn after_ack_frames_come_first_on_every_connection_in_order() {
    let broker = start_broker(broker::Options::default());
    let addr = broker.addr;
    let first = json!({"type": "subscribe", "topic": "a"});
    let second = json!({"type": "subscribe", "topic": "b"});
    let mut cli = Cli::spawn(&[
        "--after-ack",
        &first.to_string(),
        "--after-ack",
        &format!("  {second} "),
        "--backoff",
        "100",
        "--jitter",
        "0",
        &broker.url(),
    ]);
    let hello = json!({"type": "hello"});
    let echo = |data: &Value| json!({"type": "echo", "data": data});

    for (round, broker) in [(1, Some(broker)), (2, None)] {
        let broker = broker.unwrap_or_else(|| restart_broker(addr, broker::Options::default()));
        let acked = cli.wait_for("acked", |l| l["event"] == "acked");
        let from = cli.seen.len();
        let line = json!({ "n": round });
        cli.write_line(&line.to_string());
        let expected = echo(&line);
        cli.wait_for("the line's echo", |l| {
            l["event"] == "message" && l["data"] == expected
        });
        assert_eq!(
            broker_texts(&broker),
            [hello.clone(), first.clone(), second.clone(), line.clone()],
            "connection {round} (attempt {})\n{}",
            acked["attempt"],
            cli.transcript()
        );
        let messages: Vec<Value> = cli.seen[from..]
            .iter()
            .filter(|l| l.json["event"] == "message")
            .map(|l| l.json["data"].clone())
            .collect();
        // The broker echoes them in the order they arrived.
        assert_eq!(
            messages,
            [echo(&first), echo(&second), echo(&line)],
            "\n{}",
            cli.transcript()
        );
        if round == 1 {
            broker.stop();
        } else {
            drop(broker);
        }
    }

    cli.close_stdin();
    let (status, _) = cli.wait_exit(EXIT_WAIT);
    assert_eq!(status.code(), Some(0), "\n{}", cli.transcript());
    cli.assert_ends_closed();
}

/// A usage error: exit 2, nothing on stdout, a message on stderr that
/// mentions `mentions` and none of `secrets`.
fn assert_usage_error(args: &[&str], mentions: &str, secrets: &[&str]) {
    let (code, stdout, stderr) = run_to_exit(args);
    assert_eq!(
        code,
        Some(2),
        "{args:?}: stdout {stdout:?}, stderr {stderr:?}"
    );
    assert!(stdout.is_empty(), "{args:?}: stdout {stdout:?}");
    assert!(
        stderr.starts_with("wsclient: ") && stderr.contains(mentions),
        "{args:?}: stderr {stderr:?} lacks {mentions:?}"
    );
    for secret in secrets {
        assert!(
            !stderr.contains(secret),
            "{args:?}: {secret:?} in {stderr:?}"
        );
    }
    println!("{args:?} -> {}", stderr.lines().next().unwrap_or_default());
}

#[test]
fn a_bad_terminal_codes_spec_is_a_usage_error() {
    for spec in [
        "banned",
        "999",
        "5000",
        "65536",
        "-1008",
        "1008:",
        ":unauthorized",
        "1008:unauthorized,",
        "4001,,4002",
        "4001,x:y",
    ] {
        assert_usage_error(
            &["--terminal-codes", spec, "ws://127.0.0.1:1/ws"],
            "--terminal-codes",
            &[],
        );
    }
    // And good ones are accepted (the client runs; EOF ends it with 0).
    for spec in [
        "4001",
        "4000, 4001",
        "1008:unauthorized,1000:session_replaced",
        "1008:a:b",
        "",
    ] {
        let (code, _, stderr) = run_to_exit(&[
            "--terminal-codes",
            spec,
            "--backoff",
            "5000",
            "ws://127.0.0.1:1/ws",
        ]);
        assert_eq!(code, Some(0), "{spec:?}: stderr {stderr:?}");
    }
}

#[test]
fn resume_field_with_a_hello_that_is_not_an_object_is_a_usage_error() {
    for hello in [r#"["s3cret"]"#, r#""s3cret""#, "null"] {
        // In either order.
        assert_usage_error(
            &[
                "--hello",
                hello,
                "--resume-field",
                "token",
                "ws://127.0.0.1:1/ws",
            ],
            "--resume-field",
            &["s3cret"],
        );
        assert_usage_error(
            &[
                "--resume-field=token",
                "--hello",
                hello,
                "ws://127.0.0.1:1/ws",
            ],
            "--resume-field",
            &["s3cret"],
        );
    }
    assert_usage_error(
        &["--resume-field", "", "ws://127.0.0.1:1/ws"],
        "--resume-field",
        &[],
    );
}

#[test]
fn an_after_ack_that_is_not_json_is_a_usage_error() {
    for frame in [r#"{"token":"s3cret""#, "s3cret", "", "{} {}"] {
        assert_usage_error(
            &[
                "--after-ack",
                r#"{"type":"subscribe"}"#,
                "--after-ack",
                frame,
                "ws://127.0.0.1:1/ws",
            ],
            "--after-ack",
            &["s3cret"],
        );
    }
}

// ── --proxy ────────────────────────────────────────────────────────────

/// Open, one echo, EOF, exit 0.
fn echo_once_and_exit(cli: &mut Cli) {
    cli.wait_status("open");
    cli.write_line(r#"{"via":"proxy"}"#);
    let echo = cli.wait_for("the echo", |l| l["event"] == "message");
    assert_eq!(echo["data"]["data"]["via"], "proxy", "{echo}");
    cli.close_stdin();
    let (status, _) = cli.wait_exit(EXIT_WAIT);
    assert_eq!(status.code(), Some(0), "\n{}", cli.transcript());
    cli.assert_ends_closed();
}

#[test]
fn proxy_carries_the_session_through_tinyproxy() {
    let Some(proxy) = proxy_support::tinyproxy(Some(("alice", "s3cret"))) else {
        return;
    };
    let broker = start_broker(broker::Options::default());
    let url = proxy.url("http", Some(("alice", "s3cret")));
    let mut cli = Cli::spawn_logging(&["--proxy", &url, &broker.url()], Some("trace"));
    echo_once_and_exit(&mut cli);
    let log = proxy.log();
    assert!(
        log.contains(&format!("CONNECT {} HTTP/1.1", broker.addr)),
        "tinyproxy did not carry it:\n{log}"
    );
    assert!(
        !cli.transcript().contains("s3cret"),
        "\n{}",
        cli.transcript()
    );
}

#[test]
fn proxy_comes_from_the_environment_and_none_disables_it() {
    let Some(proxy) = proxy_support::tinyproxy(None) else {
        return;
    };
    let broker = start_broker(broker::Options::default());
    let via_env = proxy.url("http", None);
    // http_proxy, read as curl reads it.
    let mut cli = Cli::spawn_env(&[&broker.url()], None, &[("http_proxy", &via_env)]);
    echo_once_and_exit(&mut cli);
    let connects = || proxy.log().matches("CONNECT 127.0.0.1").count();
    assert_eq!(connects(), 1, "{}", proxy.log());
    // --proxy none: direct, even with a proxy in the environment that
    // refuses everything.
    let env = [
        ("http_proxy", "http://127.0.0.1:1"),
        ("all_proxy", "socks5://127.0.0.1:1"),
    ];
    let mut cli = Cli::spawn_env(&["--proxy", "none", &broker.url()], None, &env);
    echo_once_and_exit(&mut cli);
    // no_proxy bypasses the environment's proxy.
    let env = [
        ("http_proxy", "http://127.0.0.1:1"),
        ("no_proxy", "localhost,127.0.0.1"),
    ];
    let mut cli = Cli::spawn_env(&[&broker.url()], None, &env);
    echo_once_and_exit(&mut cli);
    assert_eq!(connects(), 1, "{}", proxy.log());
}

#[test]
fn a_malformed_proxy_is_a_usage_error() {
    let url = "ws://127.0.0.1:1/ws";
    for (proxy, mentions) in [
        ("https://u:s3cret@proxy:443", "https:// proxies"),
        ("http://u:s3cret@proxy:99999", "port"),
        ("socks4://u:s3cret@proxy", "SOCKS4"),
        ("http://u:s3cret@proxy/path", "no path"),
        ("", "empty"),
    ] {
        assert_usage_error(&["--proxy", proxy, url], mentions, &["s3cret"]);
    }
    // A malformed proxy in the environment is one too, naming the variable.
    let mut cli = Cli::spawn_env(&[url], None, &[("http_proxy", "ftp://u:s3cret@proxy")]);
    cli.close_stdin();
    let (status, _) = cli.wait_exit(EXIT_WAIT);
    assert_eq!(status.code(), Some(2), "\n{}", cli.transcript());
    let stderr = cli.stderr.lock().unwrap().clone();
    assert!(
        stderr.contains("http_proxy") && !stderr.contains("s3cret"),
        "{stderr}"
    );
}

/// A proxy that refuses the credentials: connect_failed with http_status
/// null, final status closed, exit 3, one attempt.
fn assert_refused_by_the_proxy(proxy_url: &str, detail: &str) {
    let broker = start_broker(broker::Options::default());
    let mut cli = Cli::spawn(&["--backoff", "100", "--proxy", proxy_url, &broker.url()]);
    let failed = cli.wait_for("connect_failed", |l| l["event"] == "connect_failed");
    assert_eq!(failed["attempt"], 1, "{failed}");
    assert!(failed["http_status"].is_null(), "{failed}");
    assert!(
        failed["detail"]
            .as_str()
            .is_some_and(|d| d.contains(detail)),
        "{failed}"
    );
    let (status, took) = cli.wait_exit(EXIT_WAIT);
    println!("exit after the proxy's refusal ({detail}): {took:?}");
    assert_eq!(status.code(), Some(3), "\n{}", cli.transcript());
    cli.assert_ends_closed();
    assert_eq!(
        cli.statuses(),
        ["connecting", "closed"],
        "\n{}",
        cli.transcript()
    );
    assert!(
        cli.events("reconnect_scheduled").is_empty(),
        "\n{}",
        cli.transcript()
    );
    assert!(
        !cli.transcript().contains("wrong-pw"),
        "\n{}",
        cli.transcript()
    );
    assert_eq!(broker.stats.connections.load(Ordering::SeqCst), 0);
}

#[test]
fn a_proxy_407_stops_the_client_with_exit_3() {
    let Some(proxy) = proxy_support::tinyproxy(Some(("alice", "s3cret"))) else {
        return;
    };
    assert_refused_by_the_proxy(&proxy.url("http", None), "407");
}

#[test]
fn a_socks5_authentication_failure_stops_the_client_with_exit_3() {
    let Some(proxy) = proxy_support::microsocks(Some(("alice", "s3cret"))) else {
        return;
    };
    let url = proxy.url("socks5h", Some(("alice", "wrong-pw")));
    assert_refused_by_the_proxy(&url, "refused the credentials");
}

// ── --record (contract version 2) ──────────────────────────────────────

/// A file under the test's temporary directory, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str) -> TempFile {
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }

    fn read(&self) -> String {
        std::fs::read_to_string(&self.0).expect("the recording exists")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One run: open, one echo of `line`, EOF, exit 0.
fn recorded_run(broker: &broker::Broker, file: &TempFile, line: &str) {
    let hello = r#"{"type":"hello","token":"h3llo-t0ken"}"#;
    let mut cli = Cli::spawn(&["--record", file.path(), "--hello", hello, &broker.url()]);
    cli.wait_status("open");
    cli.write_line(line);
    cli.wait_for("the echo", |l| l["event"] == "message");
    cli.close_stdin();
    let (status, _) = cli.wait_exit(EXIT_WAIT);
    assert_eq!(status.code(), Some(0), "\n{}", cli.transcript());
    cli.assert_ends_closed();
}

#[test]
fn record_appends_a_header_and_the_inputs_of_every_run() {
    let broker = start_broker(broker::Options::default());
    let file = TempFile::new("record.jsonl");
    recorded_run(&broker, &file, r#"{"secret":"payl0ad-1"}"#);
    let first = file.read();
    let lines: Vec<Value> = first
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    assert_eq!(lines[0]["recording"], "ws-lifecycle", "{first}");
    assert_eq!(lines[0]["format"], 1, "{first}");
    assert!(lines[0]["config"]["seed"].is_u64(), "{first}");
    assert!(
        lines[1..]
            .iter()
            .all(|l| l["t_ns"].is_u64() && l["event"]["type"].is_string()),
        "{first}"
    );
    assert_eq!(lines[1]["event"]["type"], "SocketOpened", "{first}");

    // A second run appends its own header; the first stays as it was.
    recorded_run(&broker, &file, r#"{"secret":"payl0ad-2"}"#);
    let both = file.read();
    assert!(both.starts_with(&first), "{both}");
    let headers = both
        .lines()
        .filter(|l| l.contains(r#""recording""#))
        .count();
    assert_eq!(headers, 2, "{both}");
    for secret in ["h3llo-t0ken", "payl0ad-1", "payl0ad-2"] {
        assert!(!both.contains(secret), "{secret} recorded:\n{both}");
    }

    // Both replay, each to the close the client asked for.
    let runs = ws_lifecycle::parse_recording(both.as_bytes()).expect("the recording parses");
    assert_eq!(runs.len(), 2);
    for run in runs {
        let mut replay = run.replay(Instant::now()).unwrap();
        replay.finish();
        assert_eq!(replay.dropped(), 0);
        assert_eq!(
            replay.machine().state(),
            &ws_lifecycle::fsm::State::Closed {
                reason: ws_lifecycle::CloseReason::Requested
            }
        );
    }
}

#[test]
fn a_record_file_that_cannot_be_opened_is_a_usage_error() {
    let dir = TempFile::new("no-such-dir");
    let inside = format!("{}/record.jsonl", dir.path());
    assert_usage_error(
        &["--record", &inside, "ws://127.0.0.1:1/ws"],
        "--record",
        &[],
    );
    // A directory is not a file to append to.
    assert_usage_error(
        &[
            "--record",
            env!("CARGO_TARGET_TMPDIR"),
            "ws://127.0.0.1:1/ws",
        ],
        "cannot open it for appending",
        &[],
    );
}
