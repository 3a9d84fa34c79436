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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::{self, Message};
use rustix::process::Signal;
use serde_json::Value;

use cli_support::*;

/// Lines in the flood (the issue's figure).
const FLOOD: usize = 100_000;
/// The library's default send capacity: what a stalled link holds back.
const SEND_CAPACITY: usize = 1024;

/// The tests that load both cores run one at a time: a CLI starved of CPU
/// by another test's flood would look like one that pushes back.
fn heavy() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}
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
    let _heavy = heavy();
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

/// Accepts one connection within `bound` (never blocks past it, so a
/// client that never connects cannot hang the test's cleanup).
fn accept_within(listener: &TcpListener, bound: Duration) -> Option<std::net::TcpStream> {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                return Some(stream);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    None
}

impl DeafBroker {
    fn start() -> DeafBroker {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let Some(stream) = accept_within(&listener, Duration::from_secs(30)) else {
                return;
            };
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

/// Waits until the writer has made no progress for `quiet` after more than
/// `at_least` lines (the pipe is full: the CLI stopped taking lines);
/// panics after `bound`.
fn wait_for_push_back(
    written: &AtomicUsize,
    at_least: usize,
    quiet: Duration,
    bound: Duration,
    cli: &Cli,
) {
    let start = Instant::now();
    let mut last = (written.load(Ordering::Relaxed), Instant::now());
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let now = written.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        } else if now > at_least && last.1.elapsed() >= quiet {
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
    let _heavy = heavy();
    let broker = DeafBroker::start();
    let mut cli = Cli::spawn(&[&broker.url]);
    cli.wait_status("open");

    // Lines of 1 KiB fill the socket buffers and the send buffer quickly,
    // and the 1024 held back, reported with their text at the exit, stay
    // about 1 MiB of output.
    let filler = "x".repeat(1024);
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
    // More lines than the send capacity holds, then no progress at all.
    wait_for_push_back(
        &written,
        SEND_CAPACITY,
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
    let closing = cli
        .seen
        .iter()
        .position(|l| is_status(&l.json, "closing"))
        .expect("a closing status");
    // The first line close() handed back comes once the session closed:
    // the close waited the 500 ms grace for the deaf broker, no longer.
    // (The final `closed` comes after every unsent line is reported.)
    let handed_back = cli.seen[closing..]
        .iter()
        .position(|l| {
            l.json["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("not written before the session closed"))
        })
        .map(|i| closing + i)
        .expect("a line close() handed back");
    let t = |i: usize| cli.seen[i].json["t_ms"].as_u64().unwrap();
    let grace = t(handed_back) - t(closing);
    println!("exit after SIGTERM during a blocked send: {took:?} (close grace: {grace} ms)");
    assert_eq!(status.code(), Some(0), "\n{}", cli.tail(20));
    cli.assert_ends_closed();
    // The contract says 1 s; the slack is for a loaded machine and the
    // megabyte of unsent lines reported (a signal stuck behind the waiting
    // line would never be seen at all).
    assert!(took < Duration::from_secs(2), "exit {took:?} after SIGTERM");
    assert!(
        (400..1000).contains(&grace),
        "the close lasted {grace} ms\n{}",
        cli.tail(20)
    );
    // Every line taken and never written (about the whole send capacity,
    // held back by the stalled link; the kernel may still take a few
    // during the grace), the one waiting for room and those read but not
    // taken: each reported, none lost. Without close()'s hand-back only
    // the last two kinds (at most 257) would be.
    let handed_back = cli
        .events("send_failed")
        .iter()
        .filter(|l| {
            l["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("not written before the session closed"))
        })
        .count();
    assert!(
        handed_back >= SEND_CAPACITY / 2,
        "{handed_back} lines handed back by close() reported\n{}",
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

#[test]
fn lines_piped_in_before_the_first_open_wait_for_it_and_are_all_echoed() {
    const LINES: u64 = 200;
    // The ack comes late: every line is piped in while the first
    // connection is still being made.
    let broker = start_broker(broker::Options {
        ack_delay: Some(Duration::from_millis(300)),
        ..broker::Options::default()
    });
    let mut cli = Cli::spawn(&[&broker.url()]);
    for n in 0..LINES {
        cli.write_line(&format!(r#"{{"n":{n}}}"#));
    }
    for n in 0..LINES {
        let echo = cli.wait_for("an echo", |l| l["event"] == "message");
        assert_eq!(echoed_n(&echo), Some(n), "{echo}");
    }
    assert!(cli.events("send_failed").is_empty(), "\n{}", cli.tail(20));
    cli.close_stdin();
    let (status, _) = cli.wait_exit(EXIT_WAIT);
    assert_eq!(status.code(), Some(0), "\n{}", cli.tail(20));
    cli.assert_ends_closed();
}

#[test]
fn eof_before_the_first_attempt_ends_closes_at_once() {
    // A broker that never acks: the first attempt would take the whole
    // hello timeout to end.
    let broker = start_broker(broker::Options {
        never_ack: true,
        ..broker::Options::default()
    });
    let mut cli = Cli::spawn(&["--hello-timeout", "20000", &broker.url()]);
    cli.wait_status("awaiting_ack");
    let eof = Instant::now();
    cli.close_stdin();
    let (status, _) = cli.wait_exit(EXIT_WAIT);
    let took = eof.elapsed();
    println!("exit after EOF before the first ack: {took:?}");
    assert_eq!(status.code(), Some(0), "\n{}", cli.tail(20));
    cli.assert_ends_closed();
    assert!(
        took < Duration::from_millis(1500),
        "exit {took:?} after EOF"
    );
}

/// A broker that acks, then sends text frames as fast as the client reads
/// them, until the client goes.
fn flooding_broker() -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let thread = std::thread::spawn(move || {
        let Some(stream) = accept_within(&listener, Duration::from_secs(30)) else {
            return;
        };
        let mut ws = tungstenite::accept(stream).unwrap();
        let _hello = ws.read().unwrap();
        let _ = ws.send(Message::text(r#"{"type":"hello_ack"}"#));
        let frame = format!(r#"{{"pad":"{}"}}"#, "y".repeat(2048));
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && ws.send(Message::text(frame.clone())).is_ok() {}
    });
    (url, thread)
}

#[test]
fn sigterm_during_an_inbound_flood_exits_0_at_once() {
    let _heavy = heavy();
    let (url, broker) = flooding_broker();
    let mut cli = Cli::spawn(&[&url]);
    cli.wait_status("open");
    // Well into the flood.
    for _ in 0..2000 {
        cli.wait_for("a message", |l| l["event"] == "message");
    }
    let signalled = Instant::now();
    cli.signal(Signal::TERM);
    let (status, _) = cli.wait_exit(EXIT_WAIT);
    let took = signalled.elapsed();
    println!("exit after SIGTERM during an inbound flood: {took:?}");
    assert_eq!(status.code(), Some(0), "\n{}", cli.tail(20));
    cli.assert_ends_closed();
    assert!(
        took < Duration::from_millis(1500),
        "exit {took:?} after SIGTERM"
    );
    broker.join().expect("the flooding broker");
}
