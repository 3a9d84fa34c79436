//! Real-socket fault scenarios: a half-dead link (blackholing proxy),
//! garbage and oversized frames, a terminal close code, and `close()` in
//! every state. Bounds are generous; exact timing is the virtual-clock core
//! tests' job.

#[path = "../examples/common/broker.rs"]
mod broker;
mod driver_support;
#[path = "../examples/common/proxy.rs"]
mod proxy;
mod raw_server;

use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use async_tungstenite::tungstenite::Message;
use futures_lite::{AsyncReadExt, future};
use serde_json::json;
use ws_lifecycle::{
    Cause, Client, CloseReason, CloseRule, Config, DeliveryConfig, RejectedBy, SessionEvent,
    Status, TransportConfig,
};

use broker::{Broker, Options};
use driver_support::*;
use proxy::Proxy;

async fn echo_round_trip(client: &Client, w: &mut Watch, n: i64) {
    client.send(&json!({ "n": n })).unwrap();
    let v = w.message().await;
    assert_eq!(v["data"]["n"], n, "{v}");
}

// 3 ─────────────────────────────────────────────────────────────────────────
#[test]
fn half_dead_link_is_detected_at_stale_after_and_recovers() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let proxy = Proxy::start(broker.addr).unwrap();
        let stale = ms(600);
        let ping = ms(100);
        let config = Config {
            ping_interval: ping,
            stale_after: stale,
            ..fast_config()
        };
        let (client, mut w) = start_client(proxy.url(), config);
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 1));
        // Let a few pings and pongs go by, then cut the link right after an
        // echo arrives: the last inbound frame is (at most a pong) ≤ now.
        Timer::after(ms(250)).await;
        echo_round_trip(&client, &mut w, 1).await;
        proxy.set_blackhole(true);
        let cut = Instant::now();
        let (attempt, code, _) = w.next_disconnected().await;
        assert_eq!((attempt, code), (1, 1006));
        let detected = cut.elapsed();
        let (from, to, cause, _) = w.next_status_change().await;
        assert_eq!(
            (from, to, cause),
            (Status::Open, Status::Reconnecting, Cause::Stale)
        );
        let ratio = detected.as_secs_f64() / stale.as_secs_f64();
        println!(
            "half-dead link: detected {detected:?} after the cut, {ratio:.3} × stale_after \
             ({stale:?}, ping {ping:?})"
        );
        assert!(
            detected >= stale.mul_f64(0.9),
            "detected too early: {detected:?}"
        );
        assert!(
            detected < stale + ms(300),
            "detected too late: {detected:?}"
        );

        proxy.set_blackhole(false);
        let (_, attempt) = w.status(Status::Open).await;
        assert!(attempt >= 2);
        echo_round_trip(&client, &mut w, 2).await;
        close_and_end(&client, &mut w).await;
        drop(proxy);
        broker.stop();
    });
}

// 7 ─────────────────────────────────────────────────────────────────────────
fn garbage() -> Options {
    Options {
        after_ack: vec![
            Message::text("this is not json {"),
            Message::binary(vec![1u8, 2, 3]),
        ],
        ..Options::default()
    }
}

#[test]
fn garbage_frames_are_reported_and_the_session_stays_open() {
    run(async {
        let broker = Broker::start(any_port(), garbage()).unwrap();
        let (client, mut w) = start_client(broker.url(), fast_config());
        w.status(Status::Open).await;
        for expected in ["not JSON", "binary frame of 3 bytes"] {
            match w.next().await {
                SessionEvent::InvalidFrame { attempt, detail } => {
                    assert_eq!(attempt, 1);
                    assert!(detail.contains(expected), "{detail}");
                }
                other => panic!("expected InvalidFrame, got {other:?}"),
            }
        }
        assert_eq!(client.status(), Status::Open);
        echo_round_trip(&client, &mut w, 7).await;
        assert_eq!(client.attempt(), 1);
        client.close().await;
        assert_ends_closed(&w.end().await);
        assert_eq!(broker.stats.connections.load(Ordering::SeqCst), 1);
        broker.stop();
    });
}

#[test]
fn binary_frames_are_delivered_when_enabled() {
    run(async {
        let broker = Broker::start(any_port(), garbage()).unwrap();
        let (client, mut w) = spawn_watched(
            Client::builder(broker.url())
                .config(fast_config())
                .delivery(DeliveryConfig {
                    binary: true,
                    ..DeliveryConfig::default()
                }),
        );
        w.status(Status::Open).await;
        assert!(matches!(
            w.next().await,
            SessionEvent::InvalidFrame { attempt: 1, .. }
        ));
        match w.next().await {
            SessionEvent::Binary(bytes) => assert_eq!(bytes, [1, 2, 3]),
            other => panic!("expected Binary, got {other:?}"),
        }
        echo_round_trip(&client, &mut w, 8).await;
        client.close().await;
        assert_ends_closed(&w.end().await);
        broker.stop();
    });
}

#[test]
fn oversized_message_ends_the_connection_with_1009_and_reconnects() {
    run(async {
        let big = json!({ "pad": "x".repeat(4096) }).to_string();
        let options = Options {
            after_ack: vec![Message::text(big)],
            ..Options::default()
        };
        let broker = Broker::start(any_port(), options).unwrap();
        let (client, mut w) = spawn_watched(
            Client::builder(broker.url())
                .config(fast_config())
                .transport(TransportConfig {
                    max_message_size: 1024,
                    max_frame_size: 1024,
                    ..TransportConfig::default()
                }),
        );
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 1));
        assert_eq!(
            w.next_disconnected().await,
            (1, 1009, "message too big".to_owned())
        );
        assert_eq!(
            w.status(Status::Reconnecting).await,
            (Cause::MessageTooBig, 2)
        );
        // The broker keeps sending the big message after every ack, so the
        // session flaps; it must get back to Open each time.
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 2));
        // Best-effort close frame: if the broker got one, it says 1009.
        let deadline = Instant::now() + ms(1000);
        while broker.stats.closes.lock().unwrap().is_empty() && Instant::now() < deadline {
            Timer::after(ms(10)).await;
        }
        let closes = broker.stats.closes.lock().unwrap().clone();
        println!("oversized: broker saw close frames {closes:?}");
        assert!(closes.iter().all(|(code, _)| *code == 1009), "{closes:?}");
        client.close().await;
        assert_ends_closed(&w.end().await);
        broker.stop();
    });
}

// 8 ─────────────────────────────────────────────────────────────────────────
#[test]
fn terminal_close_code_ends_the_session_without_retry() {
    run(async {
        let options = Options {
            close_after_ack: Some((4001, "banned".into())),
            ..Options::default()
        };
        let broker = Broker::start(any_port(), options).unwrap();
        let config = Config {
            terminal_closes: vec![CloseRule::code(4001)],
            ..fast_config()
        };
        let (client, mut w) = start_client(broker.url(), config);
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 1));
        assert_eq!(w.next_disconnected().await, (1, 4001, "banned".to_owned()));
        let (from, to, cause, _) = w.next_status_change().await;
        assert_eq!(
            (from, to, cause),
            (Status::Open, Status::Closed, Cause::Rejected)
        );
        let rejected = CloseReason::Rejected {
            by: RejectedBy::Close {
                code: 4001,
                reason: "banned".into(),
            },
        };
        match w.next().await {
            SessionEvent::Closed(closed) => assert_eq!(closed.reason, rejected),
            other => panic!("expected Closed, got {other:?}"),
        }
        assert!(w.next_within(WAIT).await.is_none(), "events must end");
        assert_eq!(client.closed_reason(), Some(rejected.clone()));
        assert_eq!(client.status(), Status::Closed);
        // close() after the end is a no-op that reports the real reason.
        assert_eq!(client.close().await.reason, rejected);
        // No further attempt: wait several backoff periods.
        Timer::after(ms(500)).await;
        assert_eq!(broker.stats.connections.load(Ordering::SeqCst), 1);
        broker.stop();
    });
}

// 10 ────────────────────────────────────────────────────────────────────────
#[test]
fn close_while_connecting_cancels_the_upgrade() {
    run(async {
        // A server that accepts TCP but never answers the upgrade: the
        // session stays in Connecting.
        let listener = Async::<TcpListener>::bind(any_port()).unwrap();
        let addr = listener.get_ref().local_addr().unwrap();
        let config = Config {
            connect_timeout: Duration::from_secs(10),
            ..fast_config()
        };
        let (client, mut w) = start_client(ws_url(addr), config);
        let (mut held, _) = listener.accept().await.unwrap();
        // Read the upgrade request, so the client is surely mid-upgrade.
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            let n = held.read(&mut buf).await.unwrap();
            assert!(n > 0, "client hung up early");
            request.extend_from_slice(&buf[..n]);
        }
        assert!(request.starts_with(b"GET /ws HTTP/1.1"));
        assert_eq!(client.status(), Status::Connecting);
        let took = close_and_check(&client, &mut w, Status::Connecting).await;
        // The transport is gone: our end sees EOF.
        let n = within(WAIT, held.read(&mut buf)).await.unwrap_or(0);
        assert_eq!(n, 0, "the client socket must be closed");
        println!("close in Connecting: {took:?}");
    });
}

#[test]
fn close_while_awaiting_ack_sends_a_close_frame() {
    run(async {
        let options = Options {
            never_ack: true,
            ..Options::default()
        };
        let broker = Broker::start(any_port(), options).unwrap();
        let config = Config {
            ack_timeout: Duration::from_secs(10),
            ..fast_config()
        };
        let (client, mut w) = start_client(broker.url(), config);
        w.status(Status::AwaitingAck).await;
        wait_until("the hello", || {
            broker.stats.hellos.load(Ordering::SeqCst) == 1
        })
        .await;
        let took = close_and_check(&client, &mut w, Status::AwaitingAck).await;
        assert_eq!(
            recorded_closes(&broker.stats.closes).await,
            vec![(1000, String::new())]
        );
        println!("close in AwaitingAck: {took:?}");
        broker.stop();
    });
}

#[test]
fn close_while_open_with_a_custom_code() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let (client, mut w) = start_client(broker.url(), fast_config());
        w.status(Status::Open).await;
        let start = Instant::now();
        let closed = client.close_with(4000, "going away").await;
        let took = start.elapsed();
        assert_eq!(closed.reason, CloseReason::Requested);
        let rest = w.end().await;
        assert_ends_closed(&rest);
        assert_eq!(
            recorded_closes(&broker.stats.closes).await,
            vec![(4000, "going away".to_owned())]
        );
        println!("close in Open: {took:?}");
        broker.stop();
    });
}

#[test]
fn close_while_reconnecting_is_immediate() {
    run(async {
        let addr = free_addr();
        let config = Config {
            backoff: vec![Duration::from_secs(30)],
            ..fast_config()
        };
        let (client, mut w) = start_client(ws_url(addr), config);
        w.status(Status::Reconnecting).await;
        let took = close_and_check(&client, &mut w, Status::Reconnecting).await;
        assert!(took < Duration::from_secs(2), "{took:?}");
        println!("close in Reconnecting: {took:?}");
    });
}

#[test]
fn close_while_closing_is_bounded_by_the_grace() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let proxy = Proxy::start(broker.addr).unwrap();
        let config = fast_config();
        let grace = config.close_grace;
        let (client, mut w) = start_client(proxy.url(), config);
        w.status(Status::Open).await;
        // The broker will never see (or answer) the close frame.
        proxy.set_blackhole(true);
        let start = Instant::now();
        // A second close while Closing is absorbed; both calls return.
        let (first, second) = future::zip(client.close(), async {
            while client.status() != Status::Closing {
                Timer::after(ms(5)).await;
            }
            client.close_with(4000, "ignored").await
        })
        .await;
        let took = start.elapsed();
        assert_eq!(first.reason, CloseReason::Requested);
        assert_eq!(second.reason, CloseReason::Requested);
        let rest = w.end().await;
        assert_ends_closed(&rest);
        let grace_expired = rest.iter().any(|e| {
            matches!(
                e,
                SessionEvent::Status {
                    from: Status::Closing,
                    to: Status::Closed,
                    cause: Cause::CloseGraceExpired,
                    ..
                }
            )
        });
        assert!(grace_expired, "{rest:?}");
        assert!(took >= grace.mul_f64(0.9), "{took:?}");
        assert!(took < grace + ms(1000), "{took:?}");
        println!("close in Closing (peer silent): {took:?} (close_grace {grace:?})");
        assert!(broker.stats.closes.lock().unwrap().is_empty());
        drop(proxy);
        broker.stop();
    });
}

#[test]
fn close_when_closed_is_idempotent() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let (client, mut w) = start_client(broker.url(), fast_config());
        w.status(Status::Open).await;
        client.send(&json!({"x": 1})).unwrap();
        let first = client.close().await;
        assert_eq!(first.reason, CloseReason::Requested);
        assert_ends_closed(&w.end().await);
        let start = Instant::now();
        let second = client.close().await;
        let took = start.elapsed();
        assert_eq!(second.reason, CloseReason::Requested);
        assert!(second.unsent.is_empty());
        assert!(took < ms(500), "{took:?}");
        assert_eq!(client.status(), Status::Closed);
        assert!(w.next_within(WAIT).await.is_none());
        println!("close in Closed: {took:?}");
        broker.stop();
    });
}

// Extra ─────────────────────────────────────────────────────────────────────
#[test]
fn attempt_budget_gives_up_and_fails_ready() {
    run(async {
        let addr = free_addr();
        let config = Config {
            max_attempts: Some(3),
            ..fast_config()
        };
        let (client, mut w) = start_client(ws_url(addr), config);
        let rest = w.end().await;
        assert_ends_closed(&rest);
        let failed: Vec<u64> = rest
            .iter()
            .filter_map(|e| match e {
                SessionEvent::ConnectFailed { attempt, .. } => Some(*attempt),
                _ => None,
            })
            .collect();
        assert_eq!(failed, [1, 2, 3]);
        let gave_up = CloseReason::GaveUp { attempts: 3 };
        assert!(matches!(rest.last(), Some(SessionEvent::Closed(c)) if c.reason == gave_up));
        assert_eq!(client.closed_reason(), Some(gave_up.clone()));
        assert_eq!(client.ready().await, Err(ws_lifecycle::NotReady(gave_up)));
    });
}

// A peer that leaves without a close frame (process killed, broker
// restarted) is a lost transport, not a protocol error: no 1002 goes out.
#[test]
fn a_peer_leaving_without_a_close_frame_is_a_lost_transport() {
    run(async {
        let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
        let addr = listener.get_ref().local_addr().unwrap();
        let server = smol::spawn(async move {
            // Two connections: each acked, then its TCP closed (FIN, no frame).
            for _ in 0..2 {
                let (mut stream, _) = listener.accept().await.unwrap();
                let head = raw_server::read_head(&mut stream).await;
                let mut reply = raw_server::switching(&head, "").into_bytes();
                reply.extend(raw_server::text_frame(r#"{"type":"hello_ack"}"#));
                futures_lite::AsyncWriteExt::write_all(&mut stream, &reply)
                    .await
                    .unwrap();
                drop(stream);
            }
            listener
        });
        let (client, mut w) = start_client(format!("ws://{addr}/ws"), fast_config());
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 1));
        let (attempt, code, _) = w.next_disconnected().await;
        assert_eq!((attempt, code), (1, 1006));
        let (from, to, cause, _) = w.next_status_change().await;
        assert_eq!(
            (from, to, cause),
            (Status::Open, Status::Reconnecting, Cause::TransportLost)
        );
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 2));
        client.close().await;
        assert_ends_closed(&w.end().await);
        drop(within(ms(5000), server).await);
    });
}
