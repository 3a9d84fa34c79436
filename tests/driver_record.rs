//! The flight recorder on real sockets: a recorded fault scenario (a broker
//! restart, a half-dead link judged by the caller's policy, a terminal
//! close) replays in the core to the
//! very actions the driver carried out and the same final state; a
//! recording holds no payload, hello or credential; a writer that blocks
//! costs records (a gap), never the session.

#[path = "../examples/common/broker.rs"]
mod broker;
mod driver_support;
mod raw_server;

use std::io::Write;
use std::net::TcpListener;
use std::sync::mpsc::{self, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_io::Async;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use serde_json::json;
use ws_lifecycle::fsm::{Action, Event, Record, Recording, State};
use ws_lifecycle::{
    Cause, Client, CloseReason, CloseRule, Config, Failure, RejectedBy, Status, Verdict,
    parse_recording,
};

use broker::{Broker, Options};
use driver_support::*;
use raw_server::{read_head, switching, text_frame};

// ── an in-memory recording ─────────────────────────────────────────────

/// Bytes written by the recorder; it knows when the recorder dropped its
/// writer, which means the recording is complete.
struct Tape {
    bytes: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

/// The writer end of a [`Tape`].
struct TapeWriter {
    bytes: Arc<Mutex<Vec<u8>>>,
    _alive: mpsc::Sender<()>,
}

impl Write for TapeWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Tape {
    fn new() -> (Tape, TapeWriter) {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let (alive, done) = mpsc::channel();
        let writer = TapeWriter {
            bytes: bytes.clone(),
            _alive: alive,
        };
        (Tape { bytes, done }, writer)
    }

    /// Waits (bounded) until the recorder dropped the writer; the bytes.
    async fn complete(&self) -> Vec<u8> {
        wait_until("the recording to be complete", || {
            self.done.try_recv() == Err(TryRecvError::Disconnected)
        })
        .await;
        self.bytes.lock().unwrap().clone()
    }

    async fn run(&self) -> Recording {
        let bytes = self.complete().await;
        let mut runs = parse_recording(bytes.as_slice()).expect("the recording parses");
        assert_eq!(runs.len(), 1, "{}", String::from_utf8_lossy(&bytes));
        runs.remove(0)
    }
}

/// Collects every action the driver carries out, in order.
fn action_log() -> (Arc<Mutex<Vec<Action>>>, impl Fn(&Action) + Send + Sync) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    (log, move |a: &Action| sink.lock().unwrap().push(a.clone()))
}

// ── the fault scenario ─────────────────────────────────────────────────

/// A close frame from the server.
fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut frame = vec![0x88, 2 + reason.len() as u8];
    frame.extend(code.to_be_bytes());
    frame.extend(reason.as_bytes());
    frame
}

/// After the restart: the first connection is acked and then never hears
/// another byte (no pongs: a half-dead link); the second is acked and
/// closed with 4001 "banned". Each is read until the client goes.
async fn faulty_broker(listener: Async<TcpListener>) {
    let mut conns = Vec::new();
    for n in 0..2 {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        conns.push(smol::spawn(async move {
            let head = read_head(&mut stream).await;
            let mut answer = switching(&head, "").into_bytes();
            answer.extend(text_frame(r#"{"type":"hello_ack"}"#));
            if n == 1 {
                answer.extend(close_frame(4001, "banned"));
            }
            if stream.write_all(&answer).await.is_err() {
                return;
            }
            let mut sink = [0u8; 1024];
            while stream.read(&mut sink).await.is_ok_and(|n| n > 0) {}
        }));
    }
    for conn in conns {
        conn.await;
    }
}

#[test]
fn a_recorded_fault_scenario_replays_to_the_same_actions_and_end() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let addr = broker.addr;
        let config = Config {
            // Jitter on, and the seed left to the builder: the replay must
            // take both from the recording.
            jitter: 0.5,
            ping_interval: ms(150),
            stale_after: ms(600),
            terminal_closes: vec![CloseRule::code(4001)],
            ..fast_config()
        };
        let (tape, writer) = Tape::new();
        let (actions, hook) = action_log();
        let builder = Client::builder(ws_url(addr))
            .config(config)
            .record_to(writer)
            .on_action(hook)
            // A caller's verdict goes into the recording with its input.
            .failure_policy(|failure, default| match failure {
                Failure::Stale => Verdict::RetryAfter(ms(120)),
                _ => default,
            });
        let (client, mut w) = spawn_watched(builder);

        // 1. The broker restarts: the link ends without a close frame.
        w.status(Status::Open).await;
        broker.stop();
        let (cause, _) = w.status(Status::Reconnecting).await;
        // A closed TCP stream (EOF, no close frame) is a lost transport.
        assert_eq!(cause, Cause::TransportLost);
        let listener = retry_until_ok(|| broker::bind(addr)).await;
        let server = smol::spawn(faulty_broker(listener));

        // 2. It acks, then answers nothing: dropped as stale.
        w.status(Status::Open).await;
        let (cause, _) = w.status(Status::Reconnecting).await;
        assert_eq!(cause, Cause::Stale);

        // 3. A terminal close ends the session.
        let rest = w.end().await;
        assert_ends_closed(&rest);
        let rejected = CloseReason::Rejected {
            by: RejectedBy::Close {
                code: 4001,
                reason: "banned".into(),
            },
        };
        assert_eq!(client.closed_reason(), Some(rejected.clone()));
        server.await;

        // The replay: the same actions, in order, and the same end.
        let run = tape.run().await;
        assert_eq!(run.config.jitter, 0.5);
        assert_eq!(run.url, ws_url(addr));
        let mut replay = run.replay(Instant::now()).unwrap();
        let replayed = replay.finish();
        let carried_out = actions.lock().unwrap().clone();
        assert_eq!(replay.dropped(), 0);
        assert_eq!(replayed, carried_out);
        assert_eq!(
            replay.machine().state(),
            &State::Closed { reason: rejected }
        );
        let inputs: Vec<&Event> = run
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Input { event, .. } => Some(event),
                Record::Gap { .. } => None,
            })
            .collect();
        assert!(
            inputs
                .iter()
                .any(|e| matches!(e, Event::TransportLost { attempt: 1 }))
        );
        assert!(inputs.iter().any(|e| matches!(e, Event::Timeout)));
        assert!(inputs.iter().any(|e| matches!(
            e,
            Event::Judged { verdict: Verdict::RetryAfter(_), event } if **event == Event::Timeout
        )));
        assert!(
            inputs
                .iter()
                .any(|e| matches!(e, Event::PeerClosed { code: 4001, .. }))
        );

        // The check has teeth: another seed draws other delays.
        let mut other = run.clone();
        other.config.seed = other.config.seed.wrapping_add(1);
        let elsewhere = other.replay(Instant::now()).unwrap().finish();
        assert_ne!(elsewhere, carried_out);
    });
}

// ── what a recording holds ─────────────────────────────────────────────

#[test]
fn a_recording_holds_no_payload_hello_or_credentials() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let url = broker
            .url()
            .replacen("ws://", "ws://user:pa55word@", 1)
            .replace("/ws", "/ws?token=t0ken-q");
        let (tape, writer) = Tape::new();
        let builder = Client::builder(url)
            .config(fast_config())
            .hello_json(json!({"type": "hello", "secret": "h3llo-s3cret"}))
            .record_to(writer);
        let (client, mut w) = spawn_watched(builder);
        w.status(Status::Open).await;
        client.send(&json!({"marker": "payl0ad-marker"})).unwrap();
        let echo = w.message().await;
        assert_eq!(echo["data"]["marker"], "payl0ad-marker");
        for n in 0..10 {
            client.send(&json!({ "n": n })).unwrap();
            assert_eq!(w.message().await["data"]["n"], n);
        }
        close_and_end(&client, &mut w).await;

        let bytes = tape.complete().await;
        let text = String::from_utf8(bytes).unwrap();
        for secret in [
            "pa55word",
            "t0ken-q",
            "h3llo-s3cret",
            "payl0ad-marker",
            "hello_ack",
        ] {
            assert!(
                !text.contains(secret),
                "{secret} is in the recording:\n{text}"
            );
        }
        let runs = parse_recording(text.as_bytes()).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].url, broker.url());
        // The echoes are there, as what they meant to the machine: activity,
        // a run of it written as its last (it replays the same).
        let activity = |r: &Record| {
            matches!(
                r,
                Record::Input {
                    event: Event::Activity { attempt: 1 },
                    ..
                }
            )
        };
        let records = &runs[0].records;
        assert!(records.iter().any(activity));
        assert!(
            !records
                .windows(2)
                .any(|w| activity(&w[0]) && activity(&w[1])),
            "a run of activity is one record: {records:?}"
        );
    });
}

// ── a writer that blocks ───────────────────────────────────────────────

/// A writer whose first write waits until the test opens the gate (or
/// gives up: it never outlives the test's limit).
struct Gated {
    gate: mpsc::Receiver<()>,
    opened: bool,
    tape: TapeWriter,
}

impl Write for Gated {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.opened {
            // A message or the test's end (the sender dropped) opens it.
            let _ = self.gate.recv_timeout(TEST_LIMIT);
            self.opened = true;
        }
        self.tape.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_writer_that_blocks_costs_records_not_the_session() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let (tape, tape_writer) = Tape::new();
        let (open, gate) = mpsc::channel();
        let writer = Gated {
            gate,
            opened: false,
            tape: tape_writer,
        };
        let builder = Client::builder(broker.url())
            .config(fast_config())
            .record_to(writer)
            .record_buffer(4);
        let (client, mut w) = spawn_watched(builder);

        // The writer is stuck from its first write on; the session goes on.
        w.status(Status::Open).await;
        for _ in 0..10 {
            client.reconnect_now();
            w.status(Status::Open).await;
        }
        close_and_end(&client, &mut w).await;

        open.send(()).unwrap();
        let run = tape.run().await;
        let records = &run.records;
        let dropped: u64 = records
            .iter()
            .map(|r| match r {
                Record::Gap { dropped } => *dropped,
                Record::Input { .. } => 0,
            })
            .sum();
        // 10 reconnects are at least 30 inputs (the request, the socket
        // open, the ack); at most the buffer's 4 and what the thread took
        // before it blocked got through.
        assert!(dropped >= 20, "dropped {dropped}: {records:?}");
        assert!(
            matches!(records.last(), Some(Record::Gap { .. })),
            "the count unreported at the end is written last: {records:?}"
        );
        // Not exact any more, but it still replays.
        let mut replay = run.replay(Instant::now()).unwrap();
        replay.by_ref().for_each(drop);
        assert_eq!(replay.dropped(), dropped);
    });
}
