//! `examples/loadgen.rs` end to end, against its contract: the stdout lines,
//! their keys and order, the exit codes.

#[path = "../examples/common/broker.rs"]
mod broker;
mod example_bin;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Kills and reaps the child whatever happens.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs loadgen to completion (bounded), returning exit code and stdout lines.
fn run(args: &[&str]) -> (Option<i32>, Vec<String>) {
    let child = example_bin::without_proxy_env(&mut Command::new(example_bin::path("loadgen")))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("loadgen starts");
    let mut guard = Guard(child);
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = guard.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < until, "loadgen did not finish in 30 s");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    if let Some(mut stdout) = guard.0.stdout.take() {
        stdout.read_to_string(&mut out).expect("stdout");
    }
    (status.code(), out.lines().map(str::to_owned).collect())
}

/// The keys of a JSON object line, in the order they appear in the text.
fn keys_in_order(line: &str) -> Vec<String> {
    let value: Value = serde_json::from_str(line).expect("each line is JSON");
    let mut keys: Vec<(usize, String)> = value
        .as_object()
        .expect("each line is an object")
        .keys()
        .map(|k| {
            (
                line.find(&format!("\"{k}\":")).expect("key in text"),
                k.clone(),
            )
        })
        .collect();
    keys.sort();
    keys.into_iter().map(|(_, k)| k).collect()
}

#[test]
fn a_run_prints_the_contract_lines_in_order() {
    smol::block_on(async {
        let b = broker::Broker::start("127.0.0.1:0".parse().unwrap(), broker::Options::default())
            .unwrap();
        let url = b.url();
        // The broker runs on smol's global executor; loadgen in its own process.
        let (code, lines) = smol::unblock(move || {
            run(&[
                "--connections",
                "40",
                "--hold-ms",
                "300",
                "--echo",
                "200",
                "--ping-interval",
                "100",
                "--stale-after",
                "1000",
                &url,
            ])
        })
        .await;
        assert_eq!(code, Some(0), "exit 0: {lines:?}");
        let events: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let names: Vec<&str> = events
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["all_open", "hold_done", "echo_done", "summary"]);
        assert_eq!(keys_in_order(&lines[0]), ["event", "t_ms", "open"]);
        assert_eq!(keys_in_order(&lines[1]), ["event", "t_ms"]);
        assert_eq!(
            keys_in_order(&lines[2]),
            ["event", "t_ms", "count", "elapsed_ms"]
        );
        assert_eq!(keys_in_order(&lines[3]), ["event", "open", "disconnects"]);
        assert_eq!(events[0]["open"], 40);
        let (opened, held) = (
            events[0]["t_ms"].as_u64().unwrap(),
            events[1]["t_ms"].as_u64().unwrap(),
        );
        assert!(
            held >= opened + 300,
            "the hold lasts --hold-ms: {opened} -> {held}"
        );
        assert_eq!(events[2]["count"], 200);
        assert!(events[2]["elapsed_ms"].as_u64().is_some());
        assert_eq!(events[3]["open"], 40);
        assert_eq!(events[3]["disconnects"], 0);
        // Every session was its own connection, with its own hello.
        assert_eq!(
            b.stats
                .connections
                .load(std::sync::atomic::Ordering::SeqCst),
            40
        );
        assert_eq!(b.stats.hellos.load(std::sync::atomic::Ordering::SeqCst), 40);
    });
}

#[test]
fn an_open_timeout_prints_an_error_line_and_exits_1() {
    // Nobody listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}/ws");
    let (code, lines) = run(&[
        "--connections",
        "3",
        "--open-timeout",
        "300",
        "--backoff",
        "50",
        &url,
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(lines.len(), 1, "{lines:?}");
    let error: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(error["event"], "error");
    assert!(
        error["detail"].as_str().unwrap().contains("0 of 3"),
        "{error}"
    );
}

#[test]
fn bad_options_exit_2_without_stdout() {
    for args in [
        &["--connections", "many", "ws://x/"][..],
        &["--bogus", "1", "ws://x/"],
        &["--hold-ms"],
    ] {
        let (code, lines) = run(args);
        assert_eq!(code, Some(2), "{args:?}");
        assert!(lines.is_empty(), "{args:?}: {lines:?}");
    }
}
