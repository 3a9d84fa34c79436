//! Telling a live link from a dead one on real sockets: inbound bytes are
//! activity even mid-frame, a slow consumer is not a dead link, the close
//! frames the session sends when it drops a link itself, and the attempt
//! budget of `reconnect_now`.

#[path = "../examples/common/broker.rs"]
mod broker;
mod client_frames;
mod driver_support;
mod raw_server;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use serde_json::json;
use ws_lifecycle::{Cause, Client, CloseReason, Config, DeliveryConfig, SessionEvent, Status};

use broker::{Broker, Options};
use client_frames::{ClientFrames, Frame};
use driver_support::*;
use raw_server::{read_head, switching, text_frame};

/// A one-connection server: answers the upgrade with 101 and the ack, then
/// writes `script` in pieces of `piece` bytes `gap` apart, then reads the
/// client's frames until it closes. Returns them (hello first).
fn scripted_server(
    script: Vec<u8>,
    piece: usize,
    gap: Duration,
) -> (SocketAddr, smol::Task<Vec<Frame>>) {
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
    let addr = listener.get_ref().local_addr().unwrap();
    let task = smol::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let head = read_head(&mut stream).await;
        let mut answer = switching(&head, "").into_bytes();
        answer.extend(text_frame(r#"{"type":"hello_ack"}"#));
        stream.write_all(&answer).await.unwrap();
        for chunk in script.chunks(piece.max(1)) {
            // The scenario, not synchronisation: a slow sender.
            Timer::after(gap).await;
            if stream.write_all(chunk).await.is_err() {
                break;
            }
        }
        let mut frames = ClientFrames::default();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend(frames.push(&buf[..n])),
            }
            if seen.iter().any(|f: &Frame| f.opcode == 0x8) {
                break;
            }
        }
        seen
    });
    (addr, task)
}

/// An unmasked server text frame of any length.
fn long_text_frame(payload: &str) -> Vec<u8> {
    let mut frame = vec![0x81, 126];
    frame.extend((payload.len() as u16).to_be_bytes());
    frame.extend(payload.as_bytes());
    frame
}

/// Defect 6: a large message arriving slowly is proof of life long before
/// its last byte: the link is not declared dead mid-frame.
#[test]
fn a_slowly_arriving_message_keeps_the_link_alive() {
    run(async {
        let body = format!(r#"{{"big":"{}"}}"#, "z".repeat(6000));
        // About 1.6 s for the whole frame, a piece every 50 ms; the stale
        // deadline is 500 ms and nothing else arrives (no pongs).
        let pieces = 32;
        let frame = long_text_frame(&body);
        let piece = frame.len().div_ceil(pieces);
        let (addr, server) = scripted_server(frame, piece, ms(50));
        let config = Config {
            ping_interval: ms(200),
            stale_after: ms(500),
            ..fast_config()
        };
        let (client, mut w) = start_client(ws_url(addr), config);
        w.status(Status::Open).await;
        let got = w
            .until("the big message", |e| match e {
                SessionEvent::Message(v) => Some(v.clone()),
                SessionEvent::Disconnected { code, reason, .. } => {
                    panic!("declared dead mid-frame: {code} {reason}")
                }
                _ => None,
            })
            .await;
        assert_eq!(got["big"].as_str().map(str::len), Some(6000));
        close_and_end(&client, &mut w).await;
        server.await;
    });
}

/// Defect 7: a consumer that stops draining events for several stale
/// periods does not make a healthy link look dead: reading pauses, the
/// stale deadline with it, and nothing is lost.
#[test]
fn a_slow_consumer_is_not_a_dead_link() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let config = Config {
            ping_interval: ms(100),
            stale_after: ms(400),
            ..fast_config()
        };
        let (client, mut w) = spawn_watched(Client::builder(broker.url()).config(config).delivery(
            DeliveryConfig {
                event_capacity: 4,
                ..DeliveryConfig::default()
            },
        ));
        w.status(Status::Open).await;
        for n in 0..40 {
            client.send(&json!({ "n": n })).unwrap();
        }
        // The consumer stalls for three stale periods (the scenario).
        Timer::after(ms(1200)).await;
        assert_eq!(client.status(), Status::Open, "the link was declared dead");
        let mut next = 0;
        while next < 40 {
            match w.next().await {
                SessionEvent::Message(v) => {
                    assert_eq!(v["data"]["n"], next, "in order, none lost");
                    next += 1;
                }
                SessionEvent::Disconnected { code, reason, .. } => {
                    panic!("disconnected while the consumer was slow: {code} {reason}")
                }
                _ => {}
            }
        }
        assert_eq!(broker.stats.connections.load(Ordering::SeqCst), 1);
        close_and_end(&client, &mut w).await;
        broker.stop();
    });
}

/// Defect 7: while reading is paused and the link is lost, no new attempt
/// starts (it would connect, never read the ack, and time out); it starts
/// once the consumer makes room.
#[test]
fn no_new_attempt_starts_while_the_consumer_is_full() {
    run(async {
        let addr = free_addr();
        let broker = Broker::start(addr, Options::default()).unwrap();
        let (client, mut w) = spawn_watched(
            Client::builder(ws_url(addr))
                .config(fast_config())
                .delivery(DeliveryConfig {
                    event_capacity: 2,
                    ..DeliveryConfig::default()
                }),
        );
        w.status(Status::Open).await;
        for n in 0..4 {
            client.send(&json!({ "n": n })).unwrap();
        }
        wait_until("the echoes to fill the event buffer", || {
            broker.stats.texts.lock().unwrap().len() >= 5
        })
        .await;
        // The scenario: the broker restarts while the consumer is full.
        broker.stop();
        let broker = retry_until_ok(|| Broker::start(addr, Options::default())).await;
        Timer::after(ms(600)).await;
        assert_eq!(
            broker.stats.connections.load(Ordering::SeqCst),
            0,
            "an attempt started while the consumer was full"
        );
        // Room again: the session notices the loss and reconnects.
        let (cause, attempt) = w.status(Status::Open).await;
        assert_eq!((cause, attempt), (Cause::Acked, 2));
        close_and_end(&client, &mut w).await;
        broker.stop();
    });
}

/// Defect 5: a protocol violation or invalid UTF-8 from the peer ends the
/// link with a best-effort close frame of 1002 / 1007; `Disconnected`
/// reports what the peer said (nothing: 1006) and why.
#[test]
fn bad_frames_get_a_close_frame_with_the_matching_code() {
    // A frame with a reserved bit set; a text frame that is not UTF-8.
    let cases: [(Vec<u8>, u16); 2] = [
        (vec![0xC1, 0x01, b'x'], 1002),
        (vec![0x81, 0x02, 0xff, 0xfe], 1007),
    ];
    for (bad, code) in cases {
        run(async {
            let (addr, server) = scripted_server(bad, 64, ms(0));
            let config = Config {
                backoff: vec![Duration::from_secs(30)],
                ..fast_config()
            };
            let (client, mut w) = start_client(ws_url(addr), config);
            w.status(Status::Open).await;
            let (attempt, seen, reason) = w.next_disconnected().await;
            assert_eq!((attempt, seen), (1, 1006), "{reason}");
            assert!(reason.contains(&code.to_string()), "{reason}");
            let frames = server.await;
            let closes: Vec<(u16, String)> = frames.iter().filter_map(Frame::close).collect();
            assert_eq!(closes.len(), 1, "{frames:?}");
            assert_eq!(closes[0].0, code);
            client.close().await;
        });
    }
}

/// Defect 5: `reconnect_now()` drops the link with close code 1000 and a
/// reason; Defect 10: it respects the attempt budget.
#[test]
fn reconnect_now_sends_1000_and_gives_up_when_the_budget_is_spent() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let config = Config {
            max_attempts: Some(2),
            ..fast_config()
        };
        let (client, mut w) = start_client(broker.url(), config);
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 1));
        client.reconnect_now();
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 2));
        let closes = recorded_closes(&broker.stats.closes).await;
        assert_eq!(closes, vec![(1000, "reconnect requested".to_owned())]);
        client.reconnect_now();
        let rest = w.end().await;
        let closed = rest.iter().find_map(|e| match e {
            SessionEvent::Closed(c) => Some(c.reason.clone()),
            _ => None,
        });
        assert_eq!(closed, Some(CloseReason::GaveUp { attempts: 2 }));
        assert_eq!(broker.stats.connections.load(Ordering::SeqCst), 2);
        broker.stop();
    });
}
