//! `Client::stats()` on real loopback sockets: counts after known
//! scenarios, the ping round trip against a broker that delays its pong,
//! the time in the current status and the connection's uptime, the last
//! failure.

#[path = "../examples/common/broker.rs"]
mod broker;
mod client_frames;
mod driver_support;
mod raw_server;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use serde_json::json;
use ws_lifecycle::{Cause, CloseReason, Config, ConnectFailure, Failure, SessionEvent, Status};

use broker::{Broker, Options};
use client_frames::ClientFrames;
use driver_support::*;
use raw_server::{read_head, switching, text_frame};

/// Waits for the session's end; returns why it ended.
async fn closed(w: &mut Watch) -> CloseReason {
    w.until("Closed", |e| match e {
        SessionEvent::Closed(outcome) => Some(outcome.reason.clone()),
        _ => None,
    })
    .await
}

/// A broker that acks and closes at once, every time: three attempts, each
/// opened and closed by the peer, then the budget is spent.
#[test]
fn a_flapping_broker_counts_attempts_opens_and_peer_closes() {
    run(async {
        let options = Options {
            close_after_ack: Some((4000, "bye".into())),
            ..Options::default()
        };
        let broker = Broker::start(any_port(), options).unwrap();
        let config = Config {
            max_attempts: Some(3),
            ..fast_config()
        };
        let (client, mut w) = start_client(broker.url(), config);
        assert_eq!(closed(&mut w).await, CloseReason::GaveUp { attempts: 3 });

        let s = client.stats();
        assert_eq!((s.attempts, s.opens), (3, 3), "{s:?}");
        // The last close also spent the budget: still counted as a peer close.
        assert_eq!(s.disconnects.get(Cause::PeerClosed), 3, "{s:?}");
        assert_eq!(s.disconnects.get(Cause::GaveUp), 0, "{s:?}");
        assert_eq!(s.disconnects.total(), 3);
        // One hello out and one ack in per connection; close frames are
        // not messages.
        assert_eq!((s.messages_out, s.messages_in), (3, 3), "{s:?}");
        let last = s.last_failure.expect("a failure");
        assert_eq!(
            last.failure,
            Failure::PeerClosed {
                code: 4000,
                reason: "bye".into()
            }
        );
        assert_eq!(last.attempt, 3);
        assert_eq!(s.status, Status::Closed);
        assert_eq!(s.connected_for, None);
    });
}

/// N echoes: exactly N + 1 messages each way (the hello out, the ack in),
/// and wire bytes at least the payloads plus a client frame's header and
/// mask (6 bytes) each.
#[test]
fn echoes_are_counted_exactly_and_wire_bytes_cover_the_payloads() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let (client, mut w) = start_client(broker.url(), fast_config());
        w.status(Status::Open).await;
        let open = client.stats();
        assert_eq!((open.messages_out, open.messages_in), (1, 1), "{open:?}");
        assert!(open.connected_for.is_some(), "{open:?}");

        const N: usize = 40;
        let mut payload = 0;
        for i in 0..N {
            let text = json!({"type": "load", "seq": i, "pad": "x".repeat(i * 10)}).to_string();
            payload += text.len();
            client.send_wait(text).await.unwrap();
        }
        for _ in 0..N {
            w.message().await;
        }
        let s = client.stats();
        let frames = N as u64 + 1;
        assert_eq!((s.messages_out, s.messages_in), (frames, frames), "{s:?}");
        let hello = r#"{"type":"hello"}"#.len() as u64;
        assert!(
            s.bytes_out >= payload as u64 + hello + 6 * frames,
            "{s:?}, payload {payload}"
        );
        // Each echo wraps its message: {"type":"echo","data":…}.
        let ack = r#"{"type":"hello_ack"}"#.len() as u64;
        assert!(
            s.bytes_in >= payload as u64 + ack,
            "{s:?}, payload {payload}"
        );
        assert_eq!((s.attempts, s.opens, s.disconnects.total()), (1, 1, 0));

        close_and_end(&client, &mut w).await;
        let end = client.stats();
        assert_eq!(end.status, Status::Closed);
        assert_eq!(end.connected_for, None, "{end:?}");
        assert_eq!(
            end.messages_out, s.messages_out,
            "a close frame is no message"
        );
        assert_eq!(
            end.disconnects.total(),
            0,
            "a requested close is no disconnect"
        );
        assert_eq!(end.last_failure, None);
    });
}

/// The broker waits before acking: the socket was open that long before
/// Open was entered, and the two clocks show it.
#[test]
fn time_in_status_starts_at_open_and_uptime_at_the_socket() {
    run(async {
        let ack_delay = ms(300);
        let options = Options {
            ack_delay: Some(ack_delay),
            ..Options::default()
        };
        let broker = Broker::start(any_port(), options).unwrap();
        let (client, mut w) = start_client(broker.url(), fast_config());
        w.status(Status::Open).await;
        let s = client.stats();
        assert_eq!(s.status, Status::Open);
        let up = s.connected_for.expect("connected");
        assert!(
            up >= s.in_status_for + ack_delay,
            "the socket opened at least the ack delay before Open: {s:?}"
        );
        close_and_end(&client, &mut w).await;
    });
}

/// A server that answers each ping twice: at once with a pong of its own
/// (empty payload, as RFC 6455 §5.5.3 allows), then after `delay` with
/// the ping's payload, followed by a `{"type":"ponged"}` message so the
/// test knows the pong was read.
fn slow_pong_server(delay: Duration) -> (SocketAddr, smol::Task<()>) {
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
    let addr = listener.get_ref().local_addr().unwrap();
    let task = smol::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let head = read_head(&mut stream).await;
        let mut answer = switching(&head, "").into_bytes();
        answer.extend(text_frame(r#"{"type":"hello_ack"}"#));
        stream.write_all(&answer).await.unwrap();
        let mut frames = ClientFrames::default();
        let mut buf = [0u8; 4096];
        let result: io::Result<()> = async {
            loop {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                for frame in frames.push(&buf[..n]) {
                    if frame.opcode != 0x9 {
                        continue;
                    }
                    stream.write_all(&[0x8A, 0]).await?;
                    // The scenario, not synchronisation: a slow answer.
                    Timer::after(delay).await;
                    let mut pong = vec![0x8A, frame.payload.len() as u8];
                    pong.extend(&frame.payload);
                    pong.extend(text_frame(r#"{"type":"ponged"}"#));
                    stream.write_all(&pong).await?;
                }
            }
        }
        .await;
        drop(result);
    });
    (addr, task)
}

#[test]
fn latency_is_the_round_trip_of_our_ping_to_its_own_pong() {
    run(async {
        let delay = ms(150);
        let (addr, _server) = slow_pong_server(delay);
        let config = Config {
            ping_interval: ms(400),
            ..fast_config()
        };
        let (client, mut w) = start_client(ws_url(addr), config);
        w.status(Status::Open).await;
        assert_eq!(client.stats().latency, None, "no ping answered yet");
        w.until("ponged", |e| match e {
            SessionEvent::Message(v) if v["type"] == "ponged" => Some(()),
            _ => None,
        })
        .await;
        let s = client.stats();
        let latency = s.latency.expect("a round trip");
        // The immediate empty pong is not ours: only the delayed one counts.
        assert!(latency >= delay, "{s:?}");
        assert!(latency < delay + Duration::from_secs(5), "{s:?}");
        assert!(s.latency_samples >= 1, "{s:?}");
        let smoothed = s.latency_smoothed.expect("smoothed");
        assert!(smoothed >= delay, "every sample was: {s:?}");
        // Every byte the server wrote after its 101 (the ack came in the
        // same segment, so the upgrade read it): the ack, both pongs (an
        // empty one, one with our one-byte tag) and the marker.
        let sent = [r#"{"type":"hello_ack"}"#, r#"{"type":"ponged"}"#]
            .map(|t| text_frame(t).len() as u64)
            .iter()
            .sum::<u64>()
            + 2
            + 3;
        assert!(s.bytes_in >= sent, "{s:?}, the server sent at least {sent}");
        close_and_end(&client, &mut w).await;
    });
}

/// A refused connect with a budget of one attempt: the failure as the
/// policy saw it, and nothing opened.
#[test]
fn the_last_failure_is_the_refused_connect() {
    run(async {
        let config = Config {
            max_attempts: Some(1),
            ..fast_config()
        };
        let before = Instant::now();
        let (client, mut w) = start_client(ws_url(free_addr()), config);
        assert_eq!(closed(&mut w).await, CloseReason::GaveUp { attempts: 1 });
        let s = client.stats();
        assert_eq!((s.attempts, s.opens, s.disconnects.total()), (1, 0, 0));
        let last = s.last_failure.expect("a failure");
        assert_eq!(
            last.failure,
            Failure::Connect(ConnectFailure::Io(io::ErrorKind::ConnectionRefused))
        );
        assert_eq!(last.attempt, 1);
        assert!(last.at >= before && last.at <= Instant::now());
        assert_eq!((s.bytes_in, s.bytes_out, s.latency), (0, 0, None));
        assert_eq!(s.connected_for, None);
    });
}

/// `reconnect_now` while Open: a disconnect by that cause, no failure.
#[test]
fn reconnect_now_is_a_disconnect_without_a_failure() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let (client, mut w) = start_client(broker.url(), fast_config());
        w.status(Status::Open).await;
        client.reconnect_now();
        let (_, attempt) = w.status(Status::Open).await;
        assert_eq!(attempt, 2);
        let s = client.stats();
        assert_eq!((s.attempts, s.opens), (2, 2), "{s:?}");
        assert_eq!(s.disconnects.get(Cause::ReconnectNow), 1, "{s:?}");
        assert_eq!(s.disconnects.total(), 1);
        assert_eq!(s.last_failure, None);
        close_and_end(&client, &mut w).await;
    });
}
