//! Closing puts only what is right on the wire and loses nothing silently:
//! messages accepted before a close are written or handed back, and
//! `close_with` sends close frames that are valid (RFC 6455 §5.5, §7.4.1)
//! whatever code and reason it is given. Bounded in time by
//! `driver_support::run`'s 20 s limit.

#[path = "../examples/common/broker.rs"]
mod broker;
mod client_frames;
mod driver_support;
mod raw_server;

use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_io::{Async, Timer};
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use broker::{Broker, Options};
use client_frames::{ClientFrames, Frame};
use driver_support::{
    any_port, fast_config, ms, run, spawn_watched, start_client, wait_until, ws_url,
};
use futures_lite::{AsyncReadExt, AsyncWriteExt, StreamExt, future};
use raw_server::{read_head, switching};
use ws_lifecycle::{Cause, Client, Config, DeliveryConfig, Sent, SessionEvent, Status};

// ── Messages accepted before close are written or handed back ──────────────

/// `close()` while Open writes what `send` accepted before the close frame;
/// against a broker that stopped reading, the close grace expires and what
/// the socket never took comes back in `CloseOutcome::unsent`: written plus
/// handed back is exactly what was accepted.
#[test]
fn accepted_sends_are_not_silently_dropped_when_the_close_grace_expires() {
    run(async {
        let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
        let addr = listener.get_ref().local_addr().unwrap();
        let (go_tx, go_rx) = smol::channel::bounded::<()>(1);
        // A broker that acks, then stops reading until told to, then reads
        // everything the client managed to put on the wire.
        let server = smol::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let config = WebSocketConfig::default()
                .max_message_size(None)
                .max_frame_size(None);
            let mut ws = async_tungstenite::accept_async_with_config(stream, Some(config))
                .await
                .unwrap();
            let _hello = ws.next().await;
            ws.send(Message::text(r#"{"type":"hello_ack"}"#))
                .await
                .unwrap();
            let _ = go_rx.recv().await;
            let mut received = 0usize;
            while let Some(Ok(m)) = ws.next().await {
                if m.is_text() {
                    received += 1;
                }
            }
            received
        });
        let config = Config {
            // No keepalive interference while the broker is not reading.
            ping_interval: Duration::from_secs(10),
            stale_after: Duration::from_secs(30),
            close_grace: ms(300),
            ..fast_config()
        };
        let (client, mut w) = spawn_watched(Client::builder(ws_url(addr)).config(config).delivery(
            DeliveryConfig {
                send_capacity: 16,
                ..DeliveryConfig::default()
            },
        ));
        w.status(Status::Open).await;
        // Fill the socket and then the send buffer: stop once `send_wait`
        // has made no progress for 500 ms (the link is jammed).
        let big = format!("\"{}\"", "x".repeat(256 << 10));
        let mut accepted = 0usize;
        loop {
            let attempt = future::or(async { Some(client.send_wait(big.clone()).await) }, async {
                Timer::after(ms(500)).await;
                None
            })
            .await;
            match attempt {
                Some(Ok(Sent::Accepted)) => accepted += 1,
                Some(other) => panic!("unexpected send result {other:?}"),
                None => break,
            }
            assert!(accepted < 400, "the socket never filled up");
        }
        let closed = client.close().await;
        let rest = w.end().await;
        let unsent_events: usize = rest
            .iter()
            .map(|e| match e {
                SessionEvent::Unsent(m) => m.len(),
                _ => 0,
            })
            .sum();
        go_tx.send(()).await.unwrap();
        let received = future::or(server, async {
            Timer::after(ms(8000)).await;
            panic!("the server did not finish reading")
        })
        .await;
        let handed_back = closed.unsent.len() + unsent_events;
        let written = client.written() as usize;
        eprintln!(
            "accepted {accepted}: written {written} + handed back {handed_back}; the broker got {received}"
        );
        // Exact: every accepted message was written or handed back, never
        // both, never neither; the broker got no more than was written.
        assert_eq!(accepted, written + handed_back);
        assert!(
            received <= written,
            "received {received} > written {written}"
        );
        assert!(handed_back > 0, "the jammed link left messages unwritten");
    });
}

// ── close_with puts only valid close frames on the wire ─────────────────────

async fn broker_closes_after(code: u16, reason: &str) -> Vec<(u16, String)> {
    let broker = Broker::start(any_port(), Options::default()).unwrap();
    let (client, mut w) = start_client(broker.url(), fast_config());
    w.status(Status::Open).await;
    client.close_with(code, reason).await;
    wait_until("the broker to drop the connection", || {
        broker.stats.open.load(Ordering::SeqCst) == 0
    })
    .await;
    let closes = broker.stats.closes.lock().unwrap().clone();
    broker.stop();
    closes
}

/// RFC 6455 §5.5: a close frame carries at most 123 bytes of reason
/// (tungstenite does not check on send): a longer reason is cut, so the
/// broker sees a clean close, not an oversized control frame.
#[test]
fn close_with_a_long_reason_sends_a_valid_close_frame() {
    run(async {
        let closes = broker_closes_after(1000, &"r".repeat(200)).await;
        assert_eq!(
            closes.iter().map(|c| c.0).collect::<Vec<_>>(),
            [1000],
            "the broker must receive one valid close frame (got {closes:?}); a 200-byte \
             reason makes a 202-byte control frame"
        );
    });
}

/// RFC 6455 §7.4.1: 1005, 1006 and 1015 must never be sent in a close frame
/// (tungstenite does not check on send): `close_with(1006, …)` goes out as
/// 1000, so the broker sees a clean close, not a protocol violation.
#[test]
fn close_with_a_reserved_code_sends_a_valid_close_frame() {
    run(async {
        let closes = broker_closes_after(1006, "").await;
        assert_eq!(closes.len(), 1, "{closes:?}");
        assert_ne!(
            closes[0].0, 1002,
            "the broker saw a protocol violation: a reserved close code went on the wire"
        );
    });
}

// ── a hello that finishes after the close frame never follows it ────────────

/// `close()` while a slow hello builder runs: the close frame goes out, the
/// hello (built later) never does, and the session waits for the broker's
/// close answer instead of failing on a frame sent after its close (which
/// would drop the socket before the answer).
#[test]
fn a_hello_finished_after_close_is_not_sent_and_the_close_completes() {
    run(async {
        let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
        let addr = listener.get_ref().local_addr().unwrap();
        // Answers the upgrade, never acks; after the client's close frame
        // it waits 800 ms (longer than the hello takes) before answering.
        let server = smol::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let head = read_head(&mut stream).await;
            stream
                .write_all(switching(&head, "").as_bytes())
                .await
                .unwrap();
            let mut frames = ClientFrames::default();
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while !seen.iter().any(|f: &Frame| f.close().is_some()) {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "the client went away before its close frame");
                seen.extend(frames.push(&buf[..n]));
            }
            let gone_early = future::or(
                async {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    seen.extend(frames.push(&buf[..n]));
                    n == 0
                },
                async {
                    Timer::after(ms(800)).await;
                    false
                },
            )
            .await;
            let _ = stream.write_all(&[0x88, 0x02, 0x03, 0xE8]).await;
            (seen, gone_early)
        });
        let (client, mut w) = spawn_watched(
            Client::builder(ws_url(addr))
                .config(Config {
                    close_grace: Duration::from_secs(5),
                    ..fast_config()
                })
                .hello(|_| async {
                    Timer::after(ms(300)).await;
                    Ok::<_, std::io::Error>(r#"{"type":"hello"}"#.to_owned())
                }),
        );
        w.status(Status::AwaitingAck).await;
        client.close().await;
        let rest = w.end().await;
        let causes: Vec<Cause> = rest
            .iter()
            .filter_map(|e| match e {
                SessionEvent::Status { cause, .. } => Some(*cause),
                _ => None,
            })
            .collect();
        assert_eq!(
            causes,
            [Cause::CloseRequested, Cause::CloseCompleted],
            "{rest:?}"
        );
        let (seen, gone_early) = server.await;
        assert!(
            !gone_early,
            "the client dropped the socket before the close answer"
        );
        assert!(
            seen.iter().all(|f| f.opcode != 0x1),
            "a text frame (the hello) was sent: {seen:?}"
        );
    });
}
