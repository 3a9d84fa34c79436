//! The harness of the `wsclient` end-to-end tests: the CLI as a child
//! process with its stdout parsed line by line, the in-test broker, and
//! bounded waits. Every child is killed and reaped when its [`Cli`] drops.
//!
//! The program under test is the `cli` feature's binary when the tests are
//! built with `--features cli`, else the example (`example_bin::wsclient`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use serde_json::Value;

use crate::{broker, example_bin};

/// Bound for any one expected output line.
pub const LINE_WAIT: Duration = Duration::from_secs(10);
/// Bound for the child's exit once it was asked to stop (the contract says
/// 1 s; this is generous for loaded machines, the measured time is printed).
pub const EXIT_WAIT: Duration = Duration::from_secs(5);

// ── the child process ──────────────────────────────────────────────────

/// One stdout line, as received.
pub struct Line {
    pub at: Instant,
    pub json: Value,
}

/// A running `wsclient`. Dropping it kills and reaps the process.
pub struct Cli {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub stdout: mpsc::Receiver<(Instant, String)>,
    pub stderr: Arc<Mutex<String>>,
    /// Disconnects when the stderr reader has seen EOF.
    pub stderr_done: mpsc::Receiver<()>,
    /// Every stdout line read so far, parsed and checked.
    pub seen: Vec<Line>,
    /// Lines that were not JSON (only expected for `--help`).
    pub raw: Vec<String>,
    pub exit: Option<ExitStatus>,
}

impl Drop for Cli {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Cli {
    pub fn spawn(args: &[&str]) -> Cli {
        Cli::spawn_logging(args, None)
    }

    /// [`spawn`](Self::spawn) with `RUST_LOG` set to `rust_log`.
    pub fn spawn_logging(args: &[&str], rust_log: Option<&str>) -> Cli {
        Cli::spawn_env(args, rust_log, &[])
    }

    /// [`spawn_logging`](Self::spawn_logging) with `env` set (the proxy
    /// variables are cleared first, so the caller's environment never
    /// counts).
    pub fn spawn_env(args: &[&str], rust_log: Option<&str>, env: &[(&str, &str)]) -> Cli {
        let mut command = Command::new(example_bin::wsclient());
        example_bin::without_proxy_env(&mut command);
        command.envs(env.iter().copied());
        match rust_log {
            Some(spec) => command.env("RUST_LOG", spec),
            None => command.env_remove("RUST_LOG"),
        };
        let mut child = command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start wsclient");
        let stdin = child.stdin.take();
        let out = child.stdout.take().expect("piped stdout");
        let (tx, stdout) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let (done, stderr_done) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            let _done = done;
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Cli {
            child,
            stdin,
            stdout,
            stderr,
            stderr_done,
            seen: Vec::new(),
            raw: Vec::new(),
            exit: None,
        }
    }

    /// Everything seen so far, for failure messages.
    pub fn transcript(&self) -> String {
        let mut s = String::from("stdout:\n");
        for line in &self.seen {
            s.push_str(&format!("  {}\n", line.json));
        }
        for line in &self.raw {
            s.push_str(&format!("  (not JSON) {line}\n"));
        }
        s.push_str(&format!("stderr:\n{}", self.stderr.lock().unwrap()));
        s
    }

    /// The last `n` stdout lines and all of stderr, for failure messages
    /// of tests that see too many lines to print them all.
    pub fn tail(&self, n: usize) -> String {
        let mut s = format!("stdout (last {n} of {} lines):\n", self.seen.len());
        for line in &self.seen[self.seen.len().saturating_sub(n)..] {
            s.push_str(&format!("  {}\n", line.json));
        }
        s.push_str(&format!("stderr:\n{}", self.stderr.lock().unwrap()));
        s
    }

    /// Takes one stdout line, checks that it is a JSON object with a
    /// numeric `t_ms` and a string `event`, and records it. `None` when the
    /// deadline passed or stdout ended.
    pub fn next_line(&mut self, deadline: Instant) -> Option<&Line> {
        let wait = deadline.saturating_duration_since(Instant::now());
        let (at, text) = match self.stdout.recv_timeout(wait) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
        };
        let json: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => panic!(
                "stdout line is not JSON ({e}): {text}\n{}",
                self.transcript()
            ),
        };
        assert!(
            json.is_object() && json["t_ms"].is_u64() && json["event"].is_string(),
            "stdout line lacks a numeric t_ms or a string event: {text}\n{}",
            self.transcript()
        );
        if let Some(prev) = self.seen.last() {
            assert!(
                json["t_ms"].as_u64() >= prev.json["t_ms"].as_u64(),
                "t_ms went backwards: {text}\n{}",
                self.transcript()
            );
        }
        self.seen.push(Line { at, json });
        self.seen.last()
    }

    /// Reads lines until one satisfies `pred`; panics after [`LINE_WAIT`].
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + LINE_WAIT;
        loop {
            match self.next_line(deadline) {
                Some(line) if pred(&line.json) => return line.json.clone(),
                Some(_) => {}
                None => panic!("no {what} within {LINE_WAIT:?}\n{}", self.transcript()),
            }
        }
    }

    pub fn wait_status(&mut self, status: &str) -> Value {
        self.wait_for(&format!("status {status:?}"), |l| is_status(l, status))
    }

    pub fn write_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .expect("cannot write to wsclient's stdin");
    }

    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Waits for the exit (killing the child after `bound`), then reads the
    /// rest of stdout. Returns the exit status and how long the wait took.
    pub fn wait_exit(&mut self, bound: Duration) -> (ExitStatus, Duration) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if start.elapsed() > bound {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.drain_stdout();
                panic!(
                    "wsclient did not exit within {bound:?}\n{}",
                    self.transcript()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let took = start.elapsed();
        self.exit = Some(status);
        self.drain_stdout();
        (status, took)
    }

    /// After the exit: every remaining stdout line (JSON lines are checked
    /// and recorded, others kept raw).
    pub fn drain_stdout(&mut self) {
        let deadline = Instant::now() + LINE_WAIT;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(wait) {
                Ok((at, text)) => match serde_json::from_str::<Value>(&text) {
                    Ok(json) if json["t_ms"].is_u64() && json["event"].is_string() => {
                        self.seen.push(Line { at, json })
                    }
                    _ => self.raw.push(text),
                },
                Err(_) => break,
            }
        }
        // And all of stderr (the reader thread ends at EOF).
        let _ = self
            .stderr_done
            .recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }

    pub fn events(&self, event: &str) -> Vec<&Value> {
        self.seen
            .iter()
            .map(|l| &l.json)
            .filter(|j| j["event"] == event)
            .collect()
    }

    pub fn statuses(&self) -> Vec<&str> {
        self.events("status")
            .iter()
            .filter_map(|j| j["status"].as_str())
            .collect()
    }

    /// The last line must be the one and only `closed` status.
    pub fn assert_ends_closed(&self) {
        let last = self.seen.last().map(|l| &l.json);
        assert!(
            last.is_some_and(|l| is_status(l, "closed")),
            "the last line is not status closed\n{}",
            self.transcript()
        );
        let closed = self.statuses().iter().filter(|s| **s == "closed").count();
        assert_eq!(closed, 1, "\n{}", self.transcript());
    }

    pub fn signal(&self, signal: Signal) {
        kill_process(Pid::from_child(&self.child), signal).expect("cannot signal wsclient");
    }
}

pub fn is_status(line: &Value, status: &str) -> bool {
    line["event"] == "status" && line["status"] == status
}

pub fn start_broker(options: broker::Options) -> broker::Broker {
    broker::Broker::start("127.0.0.1:0".parse().unwrap(), options).expect("cannot start broker")
}

/// The close frames the broker received, waiting (bounded) for the first.
pub fn broker_closes(broker: &broker::Broker) -> Vec<(u16, String)> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let closes = broker.stats.closes.lock().unwrap().clone();
        if !closes.is_empty() || Instant::now() > deadline {
            return closes;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A URL on which nothing listens (a port just released).
pub fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("ws://{addr}/ws")
}

/// Starts a broker on `addr` (just released by a stopped one), retrying
/// while the old listener is still going away; bounded.
pub fn restart_broker(addr: SocketAddr, options: broker::Options) -> broker::Broker {
    let deadline = Instant::now() + LINE_WAIT;
    loop {
        match broker::Broker::start(addr, options.clone()) {
            Ok(broker) => return broker,
            Err(e) => assert!(Instant::now() < deadline, "cannot rebind {addr}: {e}"),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The text frames a broker received, parsed.
pub fn broker_texts(broker: &broker::Broker) -> Vec<Value> {
    let texts = broker.stats.texts.lock().unwrap().clone();
    texts
        .iter()
        .map(|t| serde_json::from_str(t).expect("the client sent JSON"))
        .collect()
}

/// Runs a command line that must exit at once; returns code, stdout, stderr.
pub fn run_to_exit(args: &[&str]) -> (Option<i32>, String, String) {
    let mut cli = Cli::spawn(args);
    cli.close_stdin();
    let (status, _) = cli.wait_exit(EXIT_WAIT);
    let stdout: Vec<String> = cli
        .seen
        .iter()
        .map(|l| l.json.to_string())
        .chain(cli.raw.iter().cloned())
        .collect();
    let stderr = cli.stderr.lock().unwrap().clone();
    (status.code(), stdout.join("\n"), stderr)
}
