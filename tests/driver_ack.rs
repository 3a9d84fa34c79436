//! The broker's word as data, on real sockets: the ack frame as an event
//! and in the next hello's context (resumption), frames sent right after
//! every ack (resubscription), and the async per-attempt request hook.
//! Every test is time-limited by `driver_support::run`.

#[path = "../examples/common/broker.rs"]
mod broker;
mod driver_support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_io::Timer;
use serde_json::{Value, json};
use ws_lifecycle::{
    Cause, Client, ConnectError, DeliveryConfig, SessionEvent, Status, http::HeaderMap,
};

use broker::{Broker, Journal, Options};
use driver_support::*;

fn resumable() -> (Options, Arc<Journal>) {
    let journal = Arc::new(Journal::default());
    let options = Options {
        resume: Some(journal.clone()),
        ..Options::default()
    };
    (options, journal)
}

/// The text frames the broker received, split per connection (each starts
/// with its hello).
fn per_connection(texts: &[String]) -> Vec<Vec<Value>> {
    let mut connections: Vec<Vec<Value>> = Vec::new();
    for text in texts {
        let value: Value = serde_json::from_str(text).unwrap();
        if value["type"] == "hello" {
            connections.push(Vec::new());
        }
        if let Some(current) = connections.last_mut() {
            current.push(value);
        }
    }
    connections
}

#[test]
fn acked_follows_open_at_once_and_carries_the_ack_frame() {
    run(async {
        let (options, _journal) = resumable();
        let broker = Broker::start(any_port(), options).unwrap();
        let (client, mut w) = start_client(broker.url(), fast_config());
        let attempt = w
            .until("status Open", |e| match e {
                SessionEvent::Status {
                    to: Status::Open,
                    attempt,
                    ..
                } => Some(*attempt),
                _ => None,
            })
            .await;
        // The very next event, never folded into Lagged.
        let ack = match w.next().await {
            SessionEvent::Acked { attempt: a, ack } => {
                assert_eq!(a, attempt);
                ack
            }
            other => panic!("expected Acked right after Open, got {other:?}"),
        };
        assert_eq!(ack["type"], "hello_ack", "{ack}");
        assert_eq!(ack["resume"], "session-1", "{ack}");
        assert_eq!(client.last_ack(), Some(ack));

        // A second connection: a new Acked, and last_ack follows it.
        client.reconnect_now();
        let (_, attempt) = w
            .until("status Open", |e| match e {
                SessionEvent::Status {
                    to: Status::Open,
                    cause,
                    attempt,
                    ..
                } => Some((*cause, *attempt)),
                _ => None,
            })
            .await;
        let second = w.acked(attempt).await;
        assert_eq!(second["resumed"], false, "the hello had no token: {second}");
        assert_eq!(client.last_ack(), Some(second));
        close_and_end(&client, &mut w).await;
        broker.stop();
    });
}

#[test]
fn the_second_hello_carries_the_first_acks_token() {
    run(async {
        let (options, _journal) = resumable();
        let broker = Broker::start(any_port(), options).unwrap();
        let builder = Client::builder(broker.url())
            .config(fast_config())
            .hello(|ctx| {
                let hello = json!({
                    "type": "hello",
                    "attempt": ctx.attempt,
                    "resume": ctx.previous_ack.as_ref().map(|ack| ack["resume"].clone()),
                    "last_disconnect": ctx.last_disconnect,
                });
                async move { Ok::<_, std::io::Error>(hello.to_string()) }
            });
        let (client, mut w) = spawn_watched(builder);
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 1));
        let token = client.last_ack().unwrap()["resume"].clone();
        assert_eq!(token, "session-1");

        client.reconnect_now();
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 2));
        assert_eq!(client.last_ack().unwrap()["resumed"], true);
        let hellos: Vec<Value> = per_connection(&broker.stats.texts.lock().unwrap())
            .into_iter()
            .map(|c| c[0].clone())
            .collect();
        assert_eq!(
            hellos,
            [
                json!({"type": "hello", "attempt": 1, "resume": null, "last_disconnect": null}),
                json!({
                    "type": "hello",
                    "attempt": 2,
                    "resume": "session-1",
                    "last_disconnect": [1006, "reconnect requested"],
                }),
            ]
        );
        close_and_end(&client, &mut w).await;
        broker.stop();
    });
}

#[test]
fn after_ack_frames_arrive_first_on_every_connection() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        // Application state the subscriptions come from.
        let topics = Arc::new(Mutex::new(vec!["a".to_owned()]));
        let state = topics.clone();
        let builder = Client::builder(broker.url())
            .config(fast_config())
            .delivery(DeliveryConfig {
                queue_capacity: 8,
                ..DeliveryConfig::default()
            })
            .after_ack(move |ctx, ack| {
                let attempt = ctx.attempt;
                let acked = ack["type"].clone();
                let mut frames: Vec<String> = state
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|t| json!({"sub": t, "attempt": attempt, "acked": acked}).to_string())
                    .collect();
                // Text is sent verbatim.
                frames.push(format!(r#"{{"sub":"raw","attempt":{attempt}}}"#));
                frames
            });
        let (client, mut w) = spawn_watched(builder);
        // Queued before the first ack.
        client.send(&json!({"q": 1})).unwrap();
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 1));
        client.send(&json!({"new": 1})).unwrap();
        wait_until("4 frames after the first hello", || {
            broker.stats.texts.lock().unwrap().len() >= 5
        })
        .await;

        topics.lock().unwrap().push("b".to_owned());
        client.reconnect_now();
        w.status(Status::Connecting).await;
        // Queued while connecting (or, if the session is already Open
        // again, a new send): after the after-ack frames either way.
        client.send(&json!({"q": 2})).unwrap();
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 2));
        client.send(&json!({"new": 2})).unwrap();
        wait_until("5 frames after the second hello", || {
            broker.stats.texts.lock().unwrap().len() >= 5 + 6
        })
        .await;

        let connections = per_connection(&broker.stats.texts.lock().unwrap());
        assert_eq!(
            connections,
            [
                vec![
                    json!({"type": "hello"}),
                    json!({"sub": "a", "attempt": 1, "acked": "hello_ack"}),
                    json!({"sub": "raw", "attempt": 1}),
                    json!({"q": 1}),
                    json!({"new": 1}),
                ],
                vec![
                    json!({"type": "hello"}),
                    json!({"sub": "a", "attempt": 2, "acked": "hello_ack"}),
                    json!({"sub": "b", "attempt": 2, "acked": "hello_ack"}),
                    json!({"sub": "raw", "attempt": 2}),
                    json!({"q": 2}),
                    json!({"new": 2}),
                ],
            ]
        );
        // Only the caller's four messages count as written.
        wait_until("the caller's messages written", || client.written() == 4).await;
        let closed = client.close().await;
        assert!(closed.unsent.is_empty(), "{closed}");
        assert_eq!(client.written(), 4, "after-ack frames are not counted");
        broker.stop();
    });
}

#[test]
fn a_panicking_after_ack_builder_fails_the_attempt_like_a_failed_hello() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let builder = Client::builder(broker.url())
            .config(fast_config())
            .after_ack(|ctx, _ack| {
                assert!(ctx.attempt > 1, "no subscriptions for attempt 1");
                vec![json!({"sub": "a"})]
            });
        let (client, mut w) = spawn_watched(builder);
        let (attempt, error) = w
            .until("HelloFailed", |e| match e {
                SessionEvent::HelloFailed { attempt, error } => Some((*attempt, error.to_string())),
                _ => None,
            })
            .await;
        assert_eq!(attempt, 1);
        assert!(error.contains("after-ack builder panicked"), "{error}");
        assert_eq!(
            w.next_disconnected().await,
            (1, 1006, "hello failed".into())
        );
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 2));
        close_and_end(&client, &mut w).await;
        assert_eq!(
            broker.stats.closes.lock().unwrap().first(),
            Some(&(1011, "hello failed".to_owned()))
        );
        broker.stop();
    });
}

#[test]
fn the_async_request_hook_is_awaited_per_attempt_with_a_fresh_header_each_time() {
    run(async {
        let options = Options {
            record_requests: true,
            ..Options::default()
        };
        let broker = Broker::start(any_port(), options).unwrap();
        let fetched = Arc::new(AtomicU64::new(0));
        let fetches = fetched.clone();
        let builder = Client::builder(broker.url())
            .config(fast_config())
            .request_headers(move |ctx| {
                let attempt = ctx.attempt;
                let fetches = fetches.clone();
                async move {
                    // A token service that takes a while.
                    Timer::after(ms(100)).await;
                    let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
                    let mut headers = HeaderMap::new();
                    let token = format!("Bearer token-{n}-for-attempt-{attempt}");
                    headers.insert("authorization", token.parse().unwrap());
                    Ok::<_, std::io::Error>(headers)
                }
            })
            // The sync hook still runs, after the async one.
            .request(|attempt, request| {
                let value = format!("sync-{attempt}").parse().unwrap();
                request.headers_mut().insert("x-sync", value);
            });
        let (client, mut w) = spawn_watched(builder);
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 1));
        client.reconnect_now();
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 2));
        let seen: Vec<(String, String)> = broker
            .stats
            .requests
            .lock()
            .unwrap()
            .iter()
            .map(|h| {
                let get = |name: &str| h[name].to_str().unwrap().to_owned();
                (get("authorization"), get("x-sync"))
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("Bearer token-1-for-attempt-1".into(), "sync-1".into()),
                ("Bearer token-2-for-attempt-2".into(), "sync-2".into()),
            ]
        );
        assert_eq!(fetched.load(Ordering::SeqCst), 2);
        close_and_end(&client, &mut w).await;
        broker.stop();
    });
}

#[test]
fn a_failing_async_request_hook_is_a_retried_connect_failure_with_a_clear_error() {
    run(async {
        let options = Options {
            record_requests: true,
            ..Options::default()
        };
        let broker = Broker::start(any_port(), options).unwrap();
        let builder = Client::builder(broker.url())
            .config(fast_config())
            .request_headers(|ctx| {
                let attempt = ctx.attempt;
                if attempt == 2 {
                    panic!("a request hook that panics before returning its future");
                }
                async move {
                    if attempt == 1 {
                        return Err("token service unavailable".into());
                    }
                    let mut headers = HeaderMap::new();
                    headers.insert("authorization", "Bearer ok".parse().unwrap());
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(headers)
                }
            });
        let (client, mut w) = spawn_watched(builder);
        let (attempt, error) = w
            .until("ConnectFailed", |e| match e {
                SessionEvent::ConnectFailed { attempt, error } => {
                    Some((*attempt, error.to_string()))
                }
                _ => None,
            })
            .await;
        assert_eq!(attempt, 1);
        assert_eq!(error, "the request hook failed: token service unavailable");
        assert_eq!(
            w.status(Status::Reconnecting).await,
            (Cause::ConnectFailed, 2)
        );
        let panicked = w
            .until("ConnectFailed", |e| match e {
                SessionEvent::ConnectFailed { attempt, error } => {
                    Some((*attempt, matches!(error, ConnectError::RequestHookPanicked)))
                }
                _ => None,
            })
            .await;
        assert_eq!(panicked, (2, true));
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 3));
        let requests = broker.stats.requests.lock().unwrap().len();
        assert_eq!(requests, 1, "failed hooks send no upgrade request");
        close_and_end(&client, &mut w).await;
        broker.stop();
    });
}

#[test]
fn a_hanging_async_request_hook_is_bounded_by_the_connect_deadline() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let config = ws_lifecycle::Config {
            connect_timeout: ms(300),
            ..fast_config()
        };
        let builder = Client::builder(broker.url())
            .config(config)
            .request_headers(|ctx| {
                let attempt = ctx.attempt;
                async move {
                    if attempt == 1 {
                        futures_lite::future::pending::<()>().await;
                    }
                    Ok::<_, std::io::Error>(HeaderMap::new())
                }
            });
        let (client, mut w) = spawn_watched(builder);
        assert_eq!(
            w.status(Status::Reconnecting).await,
            (Cause::ConnectTimeout, 2)
        );
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 2));
        close_and_end(&client, &mut w).await;
        broker.stop();
    });
}

/// Resumption end to end: the ack hands out a token, the broker numbers
/// its frames, the client's hello carries the token and the last `seq` it
/// saw; the broker restarts, replays what was missed, and nothing is lost
/// or repeated.
#[test]
fn a_restarted_broker_replays_what_the_resuming_client_missed() {
    run(async {
        let (options, journal) = resumable();
        let broker = Broker::start(any_port(), options.clone()).unwrap();
        let addr = broker.addr;
        let seen = Arc::new(AtomicU64::new(0));
        let last_seq = seen.clone();
        let builder = Client::builder(broker.url())
            .config(fast_config())
            .hello(move |ctx| {
                let mut hello = json!({"type": "hello"});
                if let Some(token) = ctx.previous_ack.as_ref().map(|ack| ack["resume"].clone()) {
                    hello["resume"] = token;
                    hello["last_seq"] = last_seq.load(Ordering::SeqCst).into();
                }
                async move { Ok::<_, std::io::Error>(hello.to_string()) }
            });
        let (client, mut w) = spawn_watched(builder);
        w.status(Status::Open).await;
        let token = client.last_ack().unwrap()["resume"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut received = Vec::new();
        let mut receive = async |w: &mut Watch, upto: u64| {
            while seen.load(Ordering::SeqCst) < upto {
                let event = w.message().await;
                let seq = event["seq"].as_u64().unwrap();
                assert_eq!(event["data"]["n"], seq, "{event}");
                received.push(seq);
                seen.store(seq, Ordering::SeqCst);
            }
        };
        for n in 1..=3 {
            journal.publish(&token, json!({ "n": n }));
        }
        receive(&mut w, 3).await;

        broker.stop();
        w.status(Status::Reconnecting).await;
        // Published while the broker is down: kept in its journal.
        for n in 4..=6 {
            journal.publish(&token, json!({ "n": n }));
        }
        let broker = retry_until_ok(|| Broker::start(addr, options.clone())).await;
        w.status(Status::Open).await;
        assert_eq!(client.last_ack().unwrap()["resumed"], true);
        journal.publish(&token, json!({ "n": 7 }));
        receive(&mut w, 7).await;
        assert_eq!(
            received,
            (1..=7).collect::<Vec<u64>>(),
            "nothing lost, nothing twice"
        );
        close_and_end(&client, &mut w).await;
        broker.stop();
    });
}
