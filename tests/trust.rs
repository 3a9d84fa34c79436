//! The operating system's trust store, tested in child processes: each
//! test runs `wsclient` (examples/wsclient) with `SSL_CERT_FILE` pointing at PEM
//! files made here (rcgen) and `SSL_CERT_DIR` removed, so the child's
//! "system store" is exactly that file. Nothing is installed on the
//! machine and this process's environment is never changed.
//!
//! Also `wsclient --ca-file FILE` (contract version 2): PEM roots trusted
//! in addition to the system's, and its usage errors.

mod example_bin;
mod tls_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use tls_support::{Ca, TlsBroker};

/// Bound for any expected line, and for an exit.
const WAIT: Duration = Duration::from_secs(10);

/// A PEM file under the test's temporary directory, removed on drop.
struct PemFile(PathBuf);

impl PemFile {
    fn new(name: &str, text: &str) -> PemFile {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let path = dir.join(format!("trust-{}-{name}.pem", std::process::id()));
        std::fs::write(&path, text).unwrap();
        PemFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for PemFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A running `wsclient` whose system trust store is `system` (the value
/// of `SSL_CERT_FILE`). Dropping it kills and reaps the process.
struct Wsclient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<Value>,
    stderr: Option<JoinHandle<String>>,
}

impl Wsclient {
    fn spawn(system: &str, args: &[&str]) -> Wsclient {
        let mut command = Command::new(example_bin::wsclient());
        let mut child = example_bin::without_proxy_env(&mut command)
            .args(args)
            .env("SSL_CERT_FILE", system)
            .env_remove("SSL_CERT_DIR")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start wsclient");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Wsclient {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
            stderr: Some(stderr),
        }
    }

    /// The first stdout event for which `pick` holds (within [`WAIT`]).
    fn wait_for(&mut self, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => panic!("no {what} within {WAIT:?}; stdout: {:?}", self.seen),
            };
            let event: Value = serde_json::from_str(&line).expect("stdout is JSON lines");
            self.seen.push(event.clone());
            if pick(&event) {
                return event;
            }
        }
    }

    fn event(&mut self, name: &str) -> Value {
        self.wait_for(name, |e| e["event"] == name)
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
    }

    /// Closes stdin (when still open) and waits for the exit: (code,
    /// stderr).
    fn finish(mut self) -> (Option<i32>, String) {
        drop(self.stdin.take());
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "wsclient did not exit");
            std::thread::sleep(Duration::from_millis(10));
        };
        let stderr = self.stderr.take().unwrap().join().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(1)) {
            self.seen.push(serde_json::from_str(&line).unwrap());
        }
        (status.code(), stderr)
    }
}

impl Drop for Wsclient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens, echoes a line, closes on EOF with exit 0.
fn opens_and_echoes(mut cli: Wsclient) {
    let acked = cli.event("acked");
    assert_eq!(acked["attempt"], 1);
    cli.send(r#"{"over":"tls"}"#);
    let echo = cli.event("message");
    assert_eq!(echo["data"]["data"]["over"], "tls");
    let (code, stderr) = cli.finish();
    assert_eq!(code, Some(0), "stderr: {stderr}");
}

#[test]
fn the_system_trust_store_is_the_default_read_from_ssl_cert_file_in_a_child() {
    let ca = Ca::new("company CA installed on the machine");
    let system = PemFile::new("system", &ca.pem);
    let broker = TlsBroker::start(ca.issue(&["localhost"]));
    opens_and_echoes(Wsclient::spawn(system.path(), &[&broker.url()]));
}

#[test]
fn a_system_trust_store_without_a_usable_certificate_is_a_build_error() {
    let empty = PemFile::new("empty-system", "");
    let missing = format!("{}.missing", empty.path());
    for system in [empty.path(), missing.as_str()] {
        let cli = Wsclient::spawn(system, &["wss://localhost:1/ws"]);
        let (code, stderr) = cli.finish();
        assert_eq!(code, Some(1), "system store {system}: {stderr}");
        assert!(
            stderr.contains("the system trust store has no usable certificate"),
            "{stderr}"
        );
        println!("{system}: {stderr}");
    }
    // Only wss:// needs it.
    let mut cli = Wsclient::spawn(empty.path(), &["ws://127.0.0.1:1/ws"]);
    cli.event("connect_failed");
    let (code, stderr) = cli.finish();
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn ca_file_is_trusted_in_addition_to_the_system_roots() {
    let (system_ca, broker_ca) = (Ca::new("a system CA"), Ca::new("the broker's CA"));
    let system = PemFile::new("other-system", &system_ca.pem);
    let ca_file = PemFile::new("ca-file", &broker_ca.pem);
    let broker = TlsBroker::start(broker_ca.issue(&["localhost"]));

    // The system's roots alone do not trust the broker: retried failures.
    let mut cli = Wsclient::spawn(system.path(), &[&broker.url()]);
    let failed = cli.event("connect_failed");
    let detail = failed["detail"].as_str().unwrap();
    assert!(detail.contains("unknown issuer"), "{failed}");
    assert_eq!(failed["http_status"], Value::Null);
    cli.event("reconnect_scheduled");
    let (code, stderr) = cli.finish();
    assert_eq!(code, Some(0), "{stderr}");

    // With --ca-file they do.
    opens_and_echoes(Wsclient::spawn(
        system.path(),
        &["--ca-file", ca_file.path(), &broker.url()],
    ));
    // The system's roots are still trusted beside it.
    let other = Ca::new("unrelated");
    let other_file = PemFile::new("unrelated", &other.pem);
    let system_broker = TlsBroker::start(system_ca.issue(&["localhost"]));
    opens_and_echoes(Wsclient::spawn(
        system.path(),
        &[
            &format!("--ca-file={}", other_file.path()),
            &system_broker.url(),
        ],
    ));
}

#[test]
fn ca_file_is_enough_when_the_system_store_is_empty() {
    let ca = Ca::new("the broker's CA");
    let empty = PemFile::new("empty-system-2", "");
    let ca_file = PemFile::new("ca-file-2", &ca.pem);
    let broker = TlsBroker::start(ca.issue(&["localhost"]));
    opens_and_echoes(Wsclient::spawn(
        empty.path(),
        &["--ca-file", ca_file.path(), &broker.url()],
    ));
}

#[test]
fn a_missing_empty_or_non_pem_ca_file_is_a_usage_error() {
    let system = PemFile::new("system-3", &Ca::new("system").pem);
    let empty = PemFile::new("empty", "");
    let blank = PemFile::new("blank", " \n\n");
    let not_pem = PemFile::new("not-pem", "this is not a certificate\n");
    let bad_pem = PemFile::new(
        "bad-pem",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    );
    let missing = format!("{}.missing", empty.path());
    let dir = env!("CARGO_TARGET_TMPDIR");
    let cases = [
        (missing.as_str(), "cannot read"),
        (dir, "cannot read"),
        (empty.path(), "empty"),
        (blank.path(), "empty"),
        (not_pem.path(), "no PEM certificate"),
        (bad_pem.path(), "not valid PEM"),
    ];
    for (file, mentions) in cases {
        let cli = Wsclient::spawn(system.path(), &["--ca-file", file, "wss://localhost:1/ws"]);
        let (code, stderr) = cli.finish();
        assert_eq!(code, Some(2), "--ca-file {file}: {stderr}");
        assert!(stderr.contains(mentions), "--ca-file {file}: {stderr}");
        assert!(stderr.contains(file), "--ca-file {file}: {stderr}");
    }
    let cli = Wsclient::spawn(system.path(), &["wss://localhost:1/ws", "--ca-file"]);
    let (code, stderr) = cli.finish();
    assert_eq!(code, Some(2), "{stderr}");
}

#[test]
fn help_lists_ca_file() {
    let cli = Wsclient::spawn("/nonexistent", &["--help"]);
    let deadline = Instant::now() + WAIT;
    let mut help = String::new();
    while let Ok(line) = cli
        .lines
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
    {
        help.push_str(&line);
        help.push('\n');
    }
    assert!(
        help.contains(
            "  --ca-file FILE               PEM certificates trusted for wss:// in addition to the system's roots\n"
        ),
        "{help}"
    );
    let (code, _) = cli.finish();
    assert_eq!(code, Some(0));
}
