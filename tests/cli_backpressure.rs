//! `wsclient` under back-pressure (contract version 2): stdin lines piped in
//! faster than the link takes them wait for room instead of being refused,
//! a signal is never stuck behind them, and lines read while the session is
//! not open are still refused one `send_failed` each.
//!
//! Real sockets, the CLI as a child process (see `cli_support`). Every wait
//! is bounded; every child, thread and socket ends with its test.

#[path = "../examples/common/broker.rs"]
mod broker;
mod cli_support;
mod example_bin;

use std::io::{BufWriter, Write};
use std::net::TcpListener;
use std::process::ChildStdin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::{self, Message};
use rustix::process::Signal;
use serde_json::Value;

use cli_support::*;

/// Lines in the flood (the issue's figure).
const FLOOD: usize = 100_000;
/// Bound for the whole flood, echoes included (a debug build on 2 busy
/// cores takes a few seconds; the measured time is printed).
const FLOOD_WAIT: Duration = Duration::from_secs(180);

/// Writes `lines` to the child's stdin on a thread of its own (the pipe
/// blocks while the CLI pushes back), then hands stdin back unclosed, so
/// the caller decides when EOF comes.
fn feed(
    mut stdin: ChildStdin,
    lines: impl Iterator<Item = String> + Send + 'static,
    written: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<ChildStdin> {
    std::thread::spawn(move || {
        {
            let mut out = BufWriter::with_capacity(64 * 1024, &mut stdin);
            for line in lines {
                if out
                    .write_all(line.as_bytes())
                    .and_then(|()| out.write_all(b"\n"))
                    .is_err()
                {
                    break; // the CLI exited (the test fails elsewhere)
                }
                written.fetch_add(1, Ordering::Relaxed);
            }
            let _ = out.flush();
        }
        stdin
    })
}

/// The `n` of an echo of `{"n":N}` (the broker wraps what it got).
fn echoed_n(line: &Value) -> Option<u64> {
    (line["event"] == "message")
        .then(|| line["data"]["data"]["n"].as_u64())
        .flatten()
}

#[test]
fn a_hundred_thousand_piped_lines_are_all_echoed_in_order_and_none_refused() {
    let broker = start_broker(broker::Options::default());
    let mut cli = Cli::spawn(&[&broker.url()]);

    // Piped in from the very start, as `cat file | wsclient URL` does:
    // lines that arrive while the first connection is made wait too.
    let start = Instant::now();
    let written = Arc::new(AtomicUsize::new(0));
    let writer = feed(
        cli.stdin.take().expect("piped stdin"),
        (0..FLOOD).map(|n| format!(r#"{{"n":{n}}}"#)),
        written.clone(),
    );
    let deadline = start + FLOOD_WAIT;
    let mut next = 0u64;
    while next < FLOOD as u64 {
        let Some(line) = cli.next_line(deadline) else {
            panic!(
                "{next} of {FLOOD} echoes within {FLOOD_WAIT:?} ({} lines written)\n{}",
                written.load(Ordering::Relaxed),
                cli.tail(20)
            );
        };
        let json = line.json.clone();
        assert_ne!(json["event"], "send_failed", "a line was refused: {json}");
        if let Some(n) = echoed_n(&json) {
            assert_eq!(n, next, "echoes out of order");
            next += 1;
        }
    }
    let took = start.elapsed();
    let stdin = writer.join().expect("the writer thread");
    drop(stdin); // EOF: close
    let (status, _) = cli.wait_exit(EXIT_WAIT);
    println!(
        "{FLOOD} lines piped in and echoed in {took:?} ({:.0} lines/s)",
        FLOOD as f64 / took.as_secs_f64()
    );
    assert_eq!(status.code(), Some(0), "\n{}", cli.tail(20));
    assert!(cli.events("send_failed").is_empty(), "\n{}", cli.tail(20));
    assert_eq!(cli.events("message").len(), FLOOD);
    cli.assert_ends_closed();
    // The broker got each line once (the hello aside).
    let received = broker_texts(&broker);
    assert_eq!(received.iter().filter(|t| t["n"].is_u64()).count(), FLOOD);
}

/// A broker that acks the hello and then never reads again, so the
/// client's writes stall once the socket buffers are full. Dropping it
/// (or the test ending) releases the socket.
struct DeafBroker {
    url: String,
    stop: mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DeafBroker {
    fn start() -> DeafBroker {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut ws = tungstenite::accept(stream).unwrap();
            let _hello = ws.read().unwrap();
            ws.send(Message::text(r#"{"type":"hello_ack"}"#)).unwrap();
            let _ = stopped.recv_timeout(Duration::from_secs(60));
        });
        DeafBroker {
            url,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for DeafBroker {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Waits until the writer has made no progress for `quiet` (the pipe is
/// full: the CLI stopped taking lines); panics after `bound`.
fn wait_for_push_back(written: &AtomicUsize, quiet: Duration, bound: Duration, cli: &Cli) {
    let start = Instant::now();
    let mut last = (written.load(Ordering::Relaxed), Instant::now());
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let now = written.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        } else if now > 0 && last.1.elapsed() >= quiet {
            println!("stdin pushed back after {now} lines");
            return;
        }
        assert!(
            start.elapsed() < bound,
            "stdin never pushed back within {bound:?} ({now} lines written)\n{}",
            cli.tail(20)
        );
    }
}

#[test]
fn sigterm_while_a_send_waits_for_room_exits_0_with_status_closed() {
    let broker = DeafBroker::start();
    let mut cli = Cli::spawn(&[&broker.url]);
    cli.wait_status("open");

    // Big lines fill the socket buffers and the send buffer quickly.
    let filler = "x".repeat(16 * 1024);
    let written = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let lines = {
        let stop = stop.clone();
        (0..).map_while(move |n| {
            (!stop.load(Ordering::Relaxed)).then(|| format!(r#"{{"n":{n},"pad":"{filler}"}}"#))
        })
    };
    let writer = feed(
        cli.stdin.take().expect("piped stdin"),
        lines,
        written.clone(),
    );
    wait_for_push_back(
        &written,
        Duration::from_millis(500),
        Duration::from_secs(60),
        &cli,
    );
    // Nothing refused for want of room on a healthy link.
    let mut seen = Vec::new();
    while let Some(line) = cli.next_line(Instant::now()) {
        seen.push(line.json.clone());
    }
    assert!(
        !seen.iter().any(|l| l["event"] == "send_failed"),
        "{seen:?}"
    );

    let signalled = Instant::now();
    cli.signal(Signal::TERM);
    let (status, _) = cli.wait_exit(EXIT_WAIT);
    let took = signalled.elapsed();
    stop.store(true, Ordering::Relaxed);
    drop(writer.join().expect("the writer thread")); // its pipe broke
    let at = |s: &str| {
        cli.seen
            .iter()
            .find(|l| is_status(&l.json, s))
            .and_then(|l| l.json["t_ms"].as_u64())
    };
    let grace = at("closed").unwrap() - at("closing").expect("a closing status");
    println!("exit after SIGTERM during a blocked send: {took:?} (closing -> closed: {grace} ms)");
    assert_eq!(status.code(), Some(0), "\n{}", cli.tail(20));
    cli.assert_ends_closed();
    // The close waited the 500 ms grace for the deaf broker, no longer.
    assert!(
        (400..1000).contains(&grace),
        "closing lasted {grace} ms\n{}",
        cli.tail(20)
    );
    // Accepted lines the deaf broker never took are reported, not lost.
    assert!(
        !cli.events("send_failed").is_empty(),
        "no line was reported unsent\n{}",
        cli.tail(20)
    );
    drop(broker);
}

#[test]
fn lines_read_during_an_outage_give_one_send_failed_each_and_are_never_echoed() {
    const EACH: u64 = 50;
    let broker = start_broker(broker::Options::default());
    let addr = broker.addr;
    let mut cli = Cli::spawn(&["--backoff", "100", "--jitter", "0", &broker.url()]);
    cli.wait_status("open");
    broker.stop();
    cli.wait_status("reconnecting");

    // During the outage: each line is refused at once.
    for n in 0..EACH {
        cli.write_line(&format!(r#"{{"n":{n}}}"#));
    }
    for _ in 0..EACH {
        let failed = cli.wait_for("send_failed", |l| l["event"] == "send_failed");
        assert!(
            failed["detail"]
                .as_str()
                .is_some_and(|d| d.contains("not open")),
            "{failed}"
        );
    }

    let broker = restart_broker(addr, broker::Options::default());
    cli.wait_status("open");
    for n in EACH..2 * EACH {
        cli.write_line(&format!(r#"{{"n":{n}}}"#));
    }
    for n in EACH..2 * EACH {
        let echo = cli.wait_for("an echo", |l| l["event"] == "message");
        assert_eq!(echoed_n(&echo), Some(n), "{echo}");
    }
    cli.close_stdin();
    let (status, _) = cli.wait_exit(EXIT_WAIT);
    assert_eq!(status.code(), Some(0), "\n{}", cli.tail(20));
    cli.assert_ends_closed();
    // One send_failed per line of the outage, none of them ever sent.
    assert_eq!(cli.events("send_failed").len() as u64, EACH);
    let received: Vec<u64> = broker_texts(&broker)
        .iter()
        .filter_map(|t| t["n"].as_u64())
        .collect();
    assert_eq!(received, (EACH..2 * EACH).collect::<Vec<_>>());
    let echoed: Vec<u64> = cli.seen.iter().filter_map(|l| echoed_n(&l.json)).collect();
    assert_eq!(echoed, received);
}
