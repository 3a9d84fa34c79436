//! What happens to the messages the caller hands over, on real sockets:
//! exact accounting when the broker resets mid-stream, the cap on what is
//! held back, what comes back and in which order, sends while closing,
//! typed sends, and `ready()`.

#[path = "../examples/common/broker.rs"]
mod broker;
mod client_frames;
mod driver_support;
mod raw_server;

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};
use serde::Serialize;
use ws_lifecycle::{
    Client, CloseReason, Config, DeliveryConfig, NotReady, SendErrorKind, Sent, SessionEvent,
    Status,
};

use broker::{Broker, Options};
use client_frames::ClientFrames;
use driver_support::*;
use raw_server::{read_head, switching, text_frame};

// ── a broker that counts what it got, then resets ──────────────────────────

/// Accepts one connection: answers the upgrade with 101 and the ack, reads
/// frames until `budget` bytes arrived, optionally stops reading for
/// `stall` (so the client's socket fills and a frame is left half written),
/// then resets the connection (RST). Returns the text payloads received
/// completely (hello included).
fn resetting_broker(budget: usize, stall: Duration) -> (SocketAddr, smol::Task<Vec<String>>) {
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
    let addr = listener.get_ref().local_addr().unwrap();
    let task = smol::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let head = read_head(&mut stream).await;
        let mut answer = switching(&head, "").into_bytes();
        answer.extend(text_frame(r#"{"type":"hello_ack"}"#));
        stream.write_all(&answer).await.unwrap();
        let mut frames = ClientFrames::default();
        let mut texts = Vec::new();
        let mut read = 0;
        let mut chunk = vec![0u8; 16 << 10];
        while read < budget {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    read += n;
                    texts.extend(
                        frames
                            .push(&chunk[..n])
                            .into_iter()
                            .filter_map(|f| f.text()),
                    );
                }
            }
        }
        // The scenario, not synchronisation: the client fills its socket.
        Timer::after(stall).await;
        socket2::SockRef::from(stream.get_ref())
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(stream);
        texts
    });
    (addr, task)
}

/// One round of defect 1's scenario: the client sends in a loop while the
/// broker resets after `budget` bytes. Returns (accepted, written, handed
/// back, received).
async fn reset_round(round: usize, budget: usize) -> (usize, u64, usize, usize) {
    let stall = Duration::from_millis(if round % 2 == 0 { 0 } else { 150 });
    let (addr, broker) = resetting_broker(budget, stall);
    let (client, mut w) = spawn_watched(
        Client::builder(ws_url(addr))
            .config(Config {
                backoff: vec![Duration::from_secs(30)],
                ..fast_config()
            })
            .delivery(DeliveryConfig {
                send_capacity: 64,
                ..DeliveryConfig::default()
            }),
    );
    w.status(Status::Open).await;
    let mut accepted = Vec::new();
    let mut handed_back: Vec<String> = Vec::new();
    let payload = "x".repeat(700 + round * 37);
    // Send until the session leaves Open; collect every Unsent on the way.
    'send: for i in 0.. {
        let text = format!(r#"{{"i":{i},"pad":"{payload}"}}"#);
        match client.send_wait(text.clone()).await {
            Ok(Sent::Accepted) => accepted.push(text),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) if matches!(e.kind, SendErrorKind::NotOpen(_)) => break 'send,
            Err(e) => panic!("send failed: {e}"),
        }
    }
    let outcome = client.close().await;
    for e in w.end().await {
        match e {
            SessionEvent::Unsent(back) => handed_back.extend(back),
            SessionEvent::Closed(c) => handed_back.extend(c.unsent),
            _ => {}
        }
    }
    handed_back.extend(outcome.unsent);
    let written = client.written();
    let received: Vec<String> = broker.await.into_iter().skip(1).collect();
    // Never both: nothing handed back reached the broker, and nothing
    // was handed back twice.
    let back: HashSet<&String> = handed_back.iter().collect();
    assert_eq!(back.len(), handed_back.len(), "a message came back twice");
    assert!(
        received.iter().all(|m| !back.contains(m)),
        "a message was both received and handed back"
    );
    // Handed back oldest first, and the accepted ones in acceptance order.
    let order: Vec<&String> = accepted.iter().filter(|m| back.contains(m)).collect();
    assert_eq!(order, handed_back.iter().collect::<Vec<_>>());
    (accepted.len(), written, handed_back.len(), received.len())
}

/// Defect 1: an accepted message is written (its last byte taken by the
/// socket; it may die with the link) or handed back: never both, never
/// neither. 20 rounds in a row, with reset points that land mid-frame.
#[test]
fn accounting_is_exact_when_the_broker_resets_while_the_client_sends() {
    smol::block_on(within(Duration::from_secs(120), async {
        for round in 0..20 {
            let budget = 20_000 + round * 7_919;
            let (accepted, written, back, received) = reset_round(round, budget).await;
            println!(
                "round {round}: accepted {accepted} = written {written} + handed back {back}; broker got {received}"
            );
            assert!(accepted > 0);
            assert_eq!(
                accepted as u64,
                written + back as u64,
                "round {round}: accepted != written + handed back"
            );
            assert!(
                received as u64 <= written,
                "round {round}: the broker got {received} > {written} written"
            );
        }
    }));
}

// ── the cap on what is held back, and who gets it back ─────────────────────

/// Defect 2: everything held back for the caller is capped at the send
/// capacity (`Full` at the cap), and with the event stream dropped the
/// messages a lost link never wrote come back from `close()`.
#[test]
fn without_an_event_stream_unwritten_messages_come_back_from_close() {
    run(async {
        // Acks, never reads, resets after 400 ms.
        let (addr, broker) = resetting_broker(0, ms(400));
        let (client, events) = Client::builder(ws_url(addr))
            .no_proxy()
            .config(Config {
                backoff: vec![Duration::from_secs(30)],
                ..fast_config()
            })
            .delivery(DeliveryConfig {
                send_capacity: 4,
                ..DeliveryConfig::default()
            })
            .spawn()
            .unwrap();
        drop(events);
        client.ready().await.unwrap();
        let big = "y".repeat(256 << 10);
        let mut accepted = Vec::new();
        let mut full = false;
        for i in 0..10_000 {
            let text = format!(r#"{{"i":{i},"pad":"{big}"}}"#);
            match client.send_text(text.clone()) {
                Ok(Sent::Accepted) => accepted.push(text),
                Err(e) if e.kind == SendErrorKind::Full => {
                    assert_eq!(e.message, Some(text), "a refused message is handed back");
                    full = true;
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
            // Let the session write between sends.
            future::yield_now().await;
        }
        assert!(full, "a peer that never reads must make `send` return Full");
        // Keep the buffer full until the reset ends the connection.
        for i in 0.. {
            let text = format!(r#"{{"more":{i},"pad":"{big}"}}"#);
            match client.send_wait(text.clone()).await {
                Ok(_) => accepted.push(text),
                Err(e) if e.kind == SendErrorKind::NotOpen(Status::Reconnecting) => break,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        broker.await;
        let outcome = client.close().await;
        assert_eq!(outcome.reason, CloseReason::Requested);
        let written = client.written() as usize;
        assert!(!outcome.unsent.is_empty(), "some were never written");
        assert_eq!(
            accepted.len(),
            written + outcome.unsent.len(),
            "written + handed back = accepted"
        );
        assert_eq!(
            outcome.unsent,
            accepted[written..],
            "handed back oldest first: exactly the ones after the written prefix"
        );
        assert!(client.close().await.unsent.is_empty(), "only once");
    });
}

/// Defect 4: once `close()` is requested, `send` fails with
/// `NotOpen(Closing)`, with or without a queue; what was accepted before is
/// written before the close frame.
#[test]
fn a_send_after_close_was_requested_is_refused_as_closing() {
    for queue_capacity in [0, 4] {
        run(async {
            let broker = Broker::start(any_port(), Options::default()).unwrap();
            let (client, mut w) = spawn_watched(
                Client::builder(broker.url())
                    .config(fast_config())
                    .delivery(DeliveryConfig {
                        queue_capacity,
                        ..DeliveryConfig::default()
                    }),
            );
            w.status(Status::Open).await;
            client.send_text(r#"{"before":1}"#.into()).unwrap();
            let mut closing = Box::pin(client.close());
            assert!(future::poll_once(&mut closing).await.is_none());
            let refused = client.send_text(r#"{"after":1}"#.into()).unwrap_err();
            assert_eq!(
                refused.kind,
                SendErrorKind::NotOpen(Status::Closing),
                "queue of {queue_capacity}"
            );
            assert_eq!(refused.message.as_deref(), Some(r#"{"after":1}"#));
            let outcome = closing.await;
            assert!(outcome.unsent.is_empty(), "{outcome:?}");
            let texts = broker.stats.texts.lock().unwrap().clone();
            assert_eq!(texts.last().map(String::as_str), Some(r#"{"before":1}"#));
            assert_ends_closed(&w.end().await);
            broker.stop();
        });
    }
}

/// Defect 11: queued messages at GaveUp come back in the `Closed` event,
/// oldest first, without a `close()` call; `close()` then returns none.
#[test]
fn queued_messages_come_back_in_the_closed_event_when_the_session_gives_up() {
    run(async {
        let (client, mut w) = spawn_watched(
            Client::builder(ws_url(free_addr()))
                .config(Config {
                    max_attempts: Some(2),
                    ..fast_config()
                })
                .delivery(DeliveryConfig {
                    queue_capacity: 8,
                    ..DeliveryConfig::default()
                }),
        );
        let sent: Vec<String> = (0..3).map(|i| format!(r#"{{"q":{i}}}"#)).collect();
        for m in &sent {
            assert_eq!(client.send_text(m.clone()).unwrap(), Sent::Queued);
        }
        let closed = w
            .until("Closed", |e| match e {
                SessionEvent::Closed(c) => Some(c.clone()),
                _ => None,
            })
            .await;
        assert_eq!(closed.reason, CloseReason::GaveUp { attempts: 2 });
        assert_eq!(closed.unsent, sent);
        let outcome = client.close().await;
        assert!(outcome.unsent.is_empty(), "never both: {outcome:?}");
        assert_eq!(outcome.reason, CloseReason::GaveUp { attempts: 2 });
    });
}

// ── typed sends ─────────────────────────────────────────────────────────────

struct Subscribe<'a> {
    r#type: &'a str,
    topics: Vec<&'a str>,
}

// By hand: the crate does not pull serde's derive macros in.
impl Serialize for Subscribe<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Subscribe", 2)?;
        st.serialize_field("type", self.r#type)?;
        st.serialize_field("topics", &self.topics)?;
        st.end()
    }
}

/// Defect 12: a typed value is serialised once, straight to the frame.
#[test]
fn send_json_sends_a_typed_value() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let (client, mut w) = start_client(broker.url(), fast_config());
        w.status(Status::Open).await;
        let sub = Subscribe {
            r#type: "subscribe",
            topics: vec!["a", "b"],
        };
        assert_eq!(client.send_json(&sub).unwrap(), Sent::Accepted);
        let echo = w.message().await;
        assert_eq!(
            echo["data"],
            serde_json::json!({"type": "subscribe", "topics": ["a", "b"]})
        );
        let bad = client
            .send_json(&f64::NAN)
            .unwrap_or_else(|e| panic!("{e}"));
        // serde_json writes NaN as null: still one well-formed frame.
        assert_eq!(bad, Sent::Accepted);
        close_and_end(&client, &mut w).await;
        broker.stop();
    });
}

// ── ready() ─────────────────────────────────────────────────────────────────

/// Defect 8: `ready()` resolves when the session is Open now (at once if
/// it is), waits while it is not, and fails once it is Closed.
#[test]
fn ready_answers_for_the_present() {
    run(async {
        let addr = free_addr();
        let broker = Broker::start(addr, Options::default()).unwrap();
        let (client, mut w) = start_client(ws_url(addr), fast_config());
        client.ready().await.unwrap();
        client.ready().await.unwrap();
        broker.stop();
        w.status(Status::Reconnecting).await;
        let early = future::or(async { Some(client.ready().await) }, async {
            Timer::after(ms(300)).await;
            None
        })
        .await;
        assert_eq!(early, None, "not Open while the broker is down");
        let waiting = smol::spawn({
            let client = client.clone();
            async move { client.ready().await }
        });
        let broker = retry_until_ok(|| Broker::start(addr, Options::default())).await;
        waiting.await.unwrap();
        assert_eq!(client.status(), Status::Open);
        client.close().await;
        assert_eq!(client.ready().await, Err(NotReady(CloseReason::Requested)));
        broker.stop();
    });
}
