//! Real-socket scenarios for the driver: a client against the example
//! broker on loopback. Timings are short and bounds generous (exact timing
//! is the virtual-clock core tests' job); every test is time-limited and
//! cleans up after itself.

#[path = "../examples/common/broker.rs"]
mod broker;
mod driver_support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::future;
use serde_json::json;
use ws_lifecycle::{
    Cause, Client, CloseReason, DeliveryConfig, SendErrorKind, Sent, SessionEvent, Status,
};

use broker::{Broker, Options};
use driver_support::*;

// 1 ─────────────────────────────────────────────────────────────────────────
#[test]
fn happy_path_echoes_1000_messages_in_order() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let (client, mut w) = start_client(broker.url(), fast_config());
        client.ready().await.unwrap();
        assert_eq!(client.status(), Status::Open);
        let (cause, attempt) = w.status(Status::Open).await;
        assert_eq!((cause, attempt), (Cause::Acked, 1));

        let start = Instant::now();
        for seq in 0..1000u32 {
            assert_eq!(client.send(&json!({ "seq": seq })).unwrap(), Sent::Accepted);
        }
        let mut next = 0u32;
        while next < 1000 {
            match w.next().await {
                SessionEvent::Message(v) => {
                    assert_eq!(v["type"], "echo", "{v}");
                    assert_eq!(v["data"]["seq"], next, "out of order: {v}");
                    next += 1;
                }
                other => panic!("unexpected event while echoing: {other:?}"),
            }
        }
        println!("happy path: 1000 echoes in order in {:?}", start.elapsed());
        assert_eq!(broker.stats.hellos.load(Ordering::SeqCst), 1);
        assert_eq!(broker.stats.connections.load(Ordering::SeqCst), 1);
        close_and_end(&client, &mut w).await;
        broker.stop();
    });
}

// 2 ─────────────────────────────────────────────────────────────────────────
#[test]
fn broker_that_never_acks_is_retried() {
    run(async {
        let options = Options {
            never_ack: true,
            ..Options::default()
        };
        let broker = Broker::start(any_port(), options).unwrap();
        let config = ws_lifecycle::Config {
            ack_timeout: ms(300),
            ..fast_config()
        };
        let (client, mut w) = start_client(broker.url(), config);
        let started = Instant::now();
        assert_eq!(
            w.status(Status::AwaitingAck).await,
            (Cause::SocketOpened, 1)
        );
        // The ack deadline expires: the socket is dropped (1006), the
        // disconnect is reported before the reconnect is scheduled.
        let (attempt, code, _) = w.next_disconnected().await;
        assert_eq!((attempt, code), (1, 1006));
        let timed_out = started.elapsed();
        assert_eq!(
            w.next_status_change().await,
            (
                Status::AwaitingAck,
                Status::Reconnecting,
                Cause::AckTimeout,
                2
            )
        );
        match w.next().await {
            SessionEvent::ReconnectScheduled { attempt, delay } => {
                assert_eq!((attempt, delay), (2, ms(50)));
            }
            other => panic!("expected ReconnectScheduled, got {other:?}"),
        }
        assert_eq!(w.status(Status::Connecting).await, (Cause::RetryDue, 2));
        assert_eq!(
            w.status(Status::AwaitingAck).await,
            (Cause::SocketOpened, 2)
        );
        wait_until("hellos on two attempts", || {
            broker.stats.hellos.load(Ordering::SeqCst) >= 2
        })
        .await;
        assert!(broker.stats.connections.load(Ordering::SeqCst) >= 2);
        assert!(
            future::poll_once(client.ready()).await.is_none(),
            "ready() must stay pending without an ack"
        );
        println!("never-ack: attempt 1 abandoned after {timed_out:?} (ack_timeout 300ms)");
        let pending = client.clone();
        let waiter = smol::spawn(async move { pending.ready().await });
        close_and_end(&client, &mut w).await;
        // Never acknowledged: ready() fails with the reason the session ended.
        assert_eq!(
            waiter.await,
            Err(ws_lifecycle::NotReady(CloseReason::Requested))
        );
        broker.stop();
    });
}

// 4 ─────────────────────────────────────────────────────────────────────────
#[test]
fn broker_restart_on_same_port_reopens_the_same_client() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let addr = broker.addr;
        let (client, mut w) = start_client(broker.url(), fast_config());
        client.ready().await.unwrap();

        let killed = Instant::now();
        broker.stop();
        let (attempt, code) = w
            .until("Disconnected", |e| match e {
                SessionEvent::Disconnected { attempt, code, .. } => Some((*attempt, *code)),
                _ => None,
            })
            .await;
        assert_eq!((attempt, code), (1, 1006));
        let broker = retry_until_ok(|| Broker::start(addr, Options::default())).await;
        let (_, reopened) = w.status(Status::Open).await;
        let took = killed.elapsed();
        assert!(reopened >= 2);
        assert_eq!(client.status(), Status::Open);
        assert_eq!(broker.stats.hellos.load(Ordering::SeqCst), 1);
        println!("broker restart: reopened on attempt {reopened}, {took:?} after the kill");
        close_and_end(&client, &mut w).await;
        broker.stop();
    });
}

// 5 ─────────────────────────────────────────────────────────────────────────
#[test]
fn flapping_broker_meets_an_escalating_backoff() {
    run(async {
        let options = Options {
            close_after_ack: Some((1000, "bye".into())),
            ..Options::default()
        };
        let broker = Broker::start(any_port(), options).unwrap();
        // The last step is long so the session is surely parked in
        // Reconnecting when the test closes it.
        let schedule = vec![ms(50), ms(100), ms(200), ms(400), ms(30_000)];
        let config = ws_lifecycle::Config {
            backoff: schedule.clone(),
            ..fast_config()
        };
        let (client, mut w) = start_client(broker.url(), config);
        let mut delays = Vec::new();
        let mut observed = Vec::new();
        let mut opens = 0;
        let mut lost_at: Option<Instant> = None;
        while delays.len() < schedule.len() {
            match w.next().await {
                SessionEvent::Status {
                    to: Status::Open, ..
                } => opens += 1,
                SessionEvent::Upgraded(_) => {
                    if let Some(t) = lost_at.take() {
                        observed.push(t.elapsed());
                    }
                }
                SessionEvent::Disconnected { code, reason, .. } => {
                    assert_eq!((code, reason.as_str()), (1000, "bye"));
                    lost_at = Some(Instant::now());
                }
                SessionEvent::ReconnectScheduled { delay, .. } => delays.push(delay),
                SessionEvent::ConnectFailed { error, .. } => panic!("connect failed: {error}"),
                _ => {}
            }
        }
        assert_eq!(
            delays, schedule,
            "delays must follow the schedule (jitter 0)"
        );
        assert_eq!(client.status(), Status::Reconnecting);
        let connections = broker.stats.connections.load(Ordering::SeqCst);
        close_and_end(&client, &mut w).await;
        assert_eq!(opens, 5);
        assert_eq!(connections, 5);
        assert_eq!(broker.stats.connections.load(Ordering::SeqCst), 5);
        println!(
            "flapping broker: {connections} connections, scheduled delays {delays:?}, \
             observed disconnect-to-upgrade {observed:?}"
        );
        broker.stop();
    });
}

// 6 ─────────────────────────────────────────────────────────────────────────
#[test]
fn broker_down_at_first_then_up_opens_the_same_handle() {
    run(async {
        let addr = free_addr();
        let (client, mut w) = start_client(ws_url(addr), fast_config());
        for expected in 1..=2 {
            let (attempt, error) = w.connect_failed().await;
            assert_eq!(attempt, expected);
            assert!(error.contains("refused"), "{error}");
            let (cause, next) = w.status(Status::Reconnecting).await;
            assert_eq!((cause, next), (Cause::ConnectFailed, expected + 1));
        }
        assert!(future::poll_once(client.ready()).await.is_none());
        let broker = Broker::start(addr, Options::default()).unwrap();
        let (cause, attempt) = w.status(Status::Open).await;
        assert_eq!(cause, Cause::Acked);
        assert!(attempt >= 3, "attempt {attempt}");
        client.ready().await.unwrap();
        println!("down at first: opened on attempt {attempt}");
        close_and_end(&client, &mut w).await;
        broker.stop();
    });
}

// 9 ─────────────────────────────────────────────────────────────────────────
#[test]
fn clean_close_sends_1000_and_ends_everything() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let config = fast_config();
        let grace = config.close_grace;
        let (client, mut w) = start_client(broker.url(), config);
        w.status(Status::Open).await;

        let start = Instant::now();
        let closed = client.close().await;
        let took = start.elapsed();
        assert_eq!(closed.reason, CloseReason::Requested);
        assert!(closed.unsent.is_empty());
        assert!(took < grace + ms(1000), "close took {took:?}");
        assert_eq!(w.status(Status::Closing).await, (Cause::CloseRequested, 1));
        let (cause, _) = w.status(Status::Closed).await;
        assert_eq!(
            cause,
            Cause::CloseCompleted,
            "the broker answered the close"
        );
        match w.next_within(WAIT).await {
            Some(SessionEvent::Closed(c)) if c.reason == CloseReason::Requested => {}
            other => panic!("expected Closed(Requested), got {other:?}"),
        }
        assert!(w.next_within(WAIT).await.is_none(), "events must end");
        assert_eq!(client.closed_reason(), Some(CloseReason::Requested));
        assert_eq!(
            recorded_closes(&broker.stats.closes).await,
            vec![(1000, String::new())]
        );
        // Absence of a reconnect: wait several backoff periods.
        Timer::after(ms(400)).await;
        assert_eq!(broker.stats.connections.load(Ordering::SeqCst), 1);
        let err = client.send(&json!({"late": true})).unwrap_err();
        assert_eq!(err.kind, SendErrorKind::Ended);
        println!("clean close: close() returned in {took:?} (close_grace {grace:?})");
        broker.stop();
    });
}

// 11 ────────────────────────────────────────────────────────────────────────
#[test]
fn the_session_lives_while_a_client_or_the_event_stream_lives() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let (client, mut w) = start_client(broker.url(), fast_config());
        w.status(Status::Open).await;
        let other = client.clone();
        drop(client);
        // One clone still keeps the session alive.
        assert_eq!(other.status(), Status::Open);
        drop(other);
        // A read-only consumer (`let (_, events) = ...`) keeps it alive too:
        // no Closing while the stream lives (pings keep going meanwhile).
        let quiet = future::or(async { Some(w.next().await) }, async {
            Timer::after(ms(400)).await;
            None
        })
        .await;
        assert!(
            quiet.is_none(),
            "the session changed without a cause: {quiet:?}"
        );
        assert_eq!(broker.stats.open.load(Ordering::SeqCst), 1);
        // The last owner goes: the session closes with 1000.
        drop(w);
        assert_eq!(
            recorded_closes(&broker.stats.closes).await,
            vec![(1000, String::new())]
        );
        wait_until("the socket to be gone", || {
            broker.stats.open.load(Ordering::SeqCst) == 0
        })
        .await;
        broker.stop();
    });
}

// 12 ────────────────────────────────────────────────────────────────────────
/// Runs `body` on `futures_lite::future::block_on` (no smol runtime on this
/// thread), failing after [`TEST_LIMIT`].
fn run_plain(body: impl std::future::Future<Output = ()>) {
    future::block_on(within(TEST_LIMIT, body));
}

#[test]
fn session_runs_on_a_local_executor_and_starts_on_first_poll() {
    let broker = Broker::start(any_port(), Options::default()).unwrap();
    let (client, events, session) = Client::builder(broker.url())
        .no_proxy()
        .config(fast_config())
        .build()
        .unwrap();
    let mut w = Watch::new(events);
    run_plain(async {
        // Not polled yet: nothing connects, nothing is reported.
        Timer::after(ms(200)).await;
        assert_eq!(broker.stats.connections.load(Ordering::SeqCst), 0);
        assert_eq!(client.status(), Status::Connecting);
        assert!(future::poll_once(w.next_within(ms(1))).await.is_none());

        let ex = smol::Executor::new();
        ex.run(async {
            let task = ex.spawn(session);
            client.ready().await.unwrap();
            assert_eq!(w.status(Status::Open).await, (Cause::Acked, 1));
            client.send(&json!({"n": 1})).unwrap();
            let echo = w.message().await;
            assert_eq!(echo["data"]["n"], 1);
            close_and_end(&client, &mut w).await;
            task.await;
        })
        .await;
    });
    assert_eq!(broker.stats.connections.load(Ordering::SeqCst), 1);
    broker.stop();
}

#[test]
fn session_runs_under_plain_block_on() {
    let broker = Broker::start(any_port(), Options::default()).unwrap();
    let (client, events, session) = Client::builder(broker.url())
        .no_proxy()
        .config(fast_config())
        .build()
        .unwrap();
    let mut w = Watch::new(events);
    assert_eq!(broker.stats.connections.load(Ordering::SeqCst), 0);
    // The session future and the test body side by side; the session
    // completes once closed, so the zip finishes.
    run_plain(async {
        future::zip(session, async {
            client.ready().await.unwrap();
            client.send(&json!({"n": 2})).unwrap();
            let echo = w.message().await;
            assert_eq!(echo["data"]["n"], 2);
            close_and_end(&client, &mut w).await;
        })
        .await;
    });
    broker.stop();
}

// 13 ────────────────────────────────────────────────────────────────────────
/// A queue of `capacity` that drops its oldest message when full, or not.
fn queued(capacity: usize, drops_oldest: bool) -> DeliveryConfig {
    DeliveryConfig {
        queue_capacity: capacity,
        queue_drops_oldest: drops_oldest,
        ..DeliveryConfig::default()
    }
}

#[test]
fn queued_sends_flush_in_order_before_later_sends() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let (client, events, session) = Client::builder(broker.url())
            .no_proxy()
            .config(fast_config())
            .delivery(queued(3, false))
            .build()
            .unwrap();
        let mut w = Watch::new(events);
        // The session is not running yet, so it is surely not Open.
        for i in 1..=3 {
            assert_eq!(client.send(&json!({ "m": i })).unwrap(), Sent::Queued);
        }
        let err = client.send(&json!({ "m": 4 })).unwrap_err();
        assert_eq!(err.kind, SendErrorKind::QueueFull);
        assert_eq!(err.message.as_deref(), Some(r#"{"m":4}"#));
        assert_eq!(client.queued(), 3);

        smol::spawn(session).detach();
        w.status(Status::Open).await;
        assert_eq!(client.send(&json!({ "m": 5 })).unwrap(), Sent::Accepted);
        let mut got = Vec::new();
        while got.len() < 4 {
            if let SessionEvent::Message(v) = w.next().await {
                got.push(v["data"]["m"].as_i64().unwrap());
            }
        }
        assert_eq!(got, [1, 2, 3, 5]);
        assert_eq!(client.queued(), 0);
        assert_eq!(
            *broker.stats.texts.lock().unwrap(),
            [
                r#"{"type":"hello"}"#,
                r#"{"m":1}"#,
                r#"{"m":2}"#,
                r#"{"m":3}"#,
                r#"{"m":5}"#
            ]
        );
        close_and_end(&client, &mut w).await;
        broker.stop();
    });
}

#[test]
fn drop_oldest_queue_evicts_and_hands_back_unsent_on_close() {
    run(async {
        let options = Options {
            never_ack: true,
            ..Options::default()
        };
        let broker = Broker::start(any_port(), options).unwrap();
        let (client, events, session) = Client::builder(broker.url())
            .no_proxy()
            .config(fast_config())
            .delivery(queued(3, true))
            .build()
            .unwrap();
        let mut w = Watch::new(events);
        for i in 1..=3 {
            assert_eq!(client.send(&json!({ "m": i })).unwrap(), Sent::Queued);
        }
        assert_eq!(
            client.send(&json!({ "m": 4 })).unwrap(),
            Sent::QueuedEvicting(r#"{"m":1}"#.into())
        );
        smol::spawn(session).detach();
        w.status(Status::AwaitingAck).await;
        // The hello is built after AwaitingAck is entered; a close before
        // that would (rightly) keep it off the wire.
        wait_until("the hello at the broker", || {
            broker.stats.hellos.load(Ordering::SeqCst) == 1
        })
        .await;
        // Still not open: more sends keep queueing.
        assert_eq!(
            client.send(&json!({ "m": 5 })).unwrap(),
            Sent::QueuedEvicting(r#"{"m":2}"#.into())
        );
        let closed = client.close().await;
        assert_eq!(closed.reason, CloseReason::Requested);
        assert_eq!(closed.unsent, [r#"{"m":3}"#, r#"{"m":4}"#, r#"{"m":5}"#]);
        assert_ends_closed(&w.end().await);
        // Only the hello reached the broker.
        assert_eq!(*broker.stats.texts.lock().unwrap(), [r#"{"type":"hello"}"#]);
        broker.stop();
    });
}

#[test]
fn without_a_queue_sends_before_open_are_refused_and_handed_back() {
    let broker = Broker::start(any_port(), Options::default()).unwrap();
    let (client, events, session) = Client::builder(broker.url())
        .no_proxy()
        .config(fast_config())
        .build()
        .unwrap();
    let err = client.send(&json!({"early": 1})).unwrap_err();
    assert_eq!(err.kind, SendErrorKind::NotOpen(Status::Connecting));
    assert_eq!(err.message.as_deref(), Some(r#"{"early":1}"#));
    let err = client.send_text("raw".into()).unwrap_err();
    assert_eq!(err.message.as_deref(), Some("raw"));
    // Dropping the never-polled session ends it: the handle sees Closed.
    drop(session);
    assert_eq!(client.status(), Status::Closed);
    let err = client.send(&json!({"late": 1})).unwrap_err();
    assert_eq!(err.kind, SendErrorKind::Ended);
    let mut w = Watch::new(events);
    run(async {
        assert_ends_closed(&w.end().await);
    });
    assert_eq!(broker.stats.connections.load(Ordering::SeqCst), 0);
    broker.stop();
}

// 14 ────────────────────────────────────────────────────────────────────────
#[test]
fn reconnect_now_from_open_starts_a_new_attempt_at_once() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let (client, mut w) = start_client(broker.url(), fast_config());
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 1));
        client.reconnect_now();
        let (attempt, code, _) = w.next_disconnected().await;
        assert_eq!((attempt, code), (1, 1006));
        assert_eq!(
            w.next_status_change().await,
            (Status::Open, Status::Connecting, Cause::ReconnectNow, 2)
        );
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 2));
        assert_eq!(client.attempt(), 2);
        assert_eq!(broker.stats.connections.load(Ordering::SeqCst), 2);
        close_and_end(&client, &mut w).await;
        broker.stop();
    });
}

#[test]
fn reconnect_now_skips_a_long_backoff() {
    run(async {
        let addr = free_addr();
        let config = ws_lifecycle::Config {
            backoff: vec![Duration::from_secs(30)],
            ..fast_config()
        };
        let (client, mut w) = start_client(ws_url(addr), config);
        let delay = w
            .until("ReconnectScheduled", |e| match e {
                SessionEvent::ReconnectScheduled { delay, .. } => Some(*delay),
                _ => None,
            })
            .await;
        assert_eq!(delay, Duration::from_secs(30));
        assert_eq!(client.status(), Status::Reconnecting);
        let broker = Broker::start(addr, Options::default()).unwrap();
        let start = Instant::now();
        client.reconnect_now();
        assert_eq!(
            w.next_status_change().await,
            (
                Status::Reconnecting,
                Status::Connecting,
                Cause::ReconnectNow,
                2
            )
        );
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 2));
        let took = start.elapsed();
        assert!(took < Duration::from_secs(10), "{took:?}");
        println!("reconnect_now from Reconnecting (30 s backoff): open after {took:?}");
        close_and_end(&client, &mut w).await;
        broker.stop();
    });
}

// 15 ────────────────────────────────────────────────────────────────────────
#[test]
fn request_hook_sets_headers_per_attempt_and_sees_the_subprotocol() {
    run(async {
        let options = Options {
            record_requests: true,
            echo_subprotocol: true,
            ..Options::default()
        };
        let broker = Broker::start(any_port(), options).unwrap();
        let builder =
            Client::builder(broker.url())
                .config(fast_config())
                .request(|attempt, req| {
                    let headers = req.headers_mut();
                    let token = format!("Bearer token-{attempt}");
                    headers.insert("authorization", token.parse().unwrap());
                    headers.insert(
                        "sec-websocket-protocol",
                        "lifecycle.v1, lifecycle.v0".parse().unwrap(),
                    );
                });
        let (client, mut w) = spawn_watched(builder);
        let upgraded = w
            .until("Upgraded", |e| match e {
                SessionEvent::Upgraded(r) => Some(r.clone()),
                _ => None,
            })
            .await;
        assert_eq!(upgraded.attempt, 1);
        assert_eq!(upgraded.status.as_u16(), 101);
        assert_eq!(upgraded.subprotocol(), Some("lifecycle.v1"));
        w.status(Status::Open).await;
        let response = client.upgrade_response().expect("an upgrade response");
        assert_eq!(response.subprotocol(), Some("lifecycle.v1"));
        assert_eq!(response.attempt, 1);

        client.reconnect_now();
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 2));
        assert_eq!(client.upgrade_response().unwrap().attempt, 2);
        let auth: Vec<String> = broker
            .stats
            .requests
            .lock()
            .unwrap()
            .iter()
            .map(|h| h["authorization"].to_str().unwrap().to_owned())
            .collect();
        assert_eq!(auth, ["Bearer token-1", "Bearer token-2"]);
        close_and_end(&client, &mut w).await;
        broker.stop();
    });
}

// Extras ────────────────────────────────────────────────────────────────────
#[test]
fn small_buffers_apply_backpressure_without_loss_or_reordering() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let (client, mut w) = spawn_watched(
            Client::builder(broker.url())
                .config(fast_config())
                .delivery(DeliveryConfig {
                    send_capacity: 4,
                    event_capacity: 8,
                    ..DeliveryConfig::default()
                }),
        );
        w.status(Status::Open).await;
        const N: u32 = 300;
        let sender = client.clone();
        let sending = smol::spawn(async move {
            for seq in 0..N {
                let text = json!({ "seq": seq }).to_string();
                assert_eq!(sender.send_wait(text).await.unwrap(), Sent::Accepted);
            }
        });
        // A consumer that stalls (shorter than stale_after): the session
        // stops reading, and resumes when the consumer drains again.
        let mut next = 0u32;
        while next < N {
            match w.next().await {
                SessionEvent::Message(v) => {
                    assert_eq!(v["data"]["seq"], next, "{v}");
                    next += 1;
                    if next == 1 {
                        Timer::after(ms(300)).await;
                    }
                }
                other => panic!("unexpected event: {other:?}"),
            }
        }
        sending.await;
        assert_eq!(client.attempt(), 1, "no reconnect under backpressure");
        close_and_end(&client, &mut w).await;
        broker.stop();
    });
}

#[test]
fn hello_builder_is_called_per_attempt_and_its_failure_is_retried() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let builder = Client::builder(broker.url())
            .config(fast_config())
            .hello(|ctx| {
                let attempt = ctx.attempt;
                async move {
                    if attempt == 1 {
                        return Err("signing key not loaded yet".into());
                    }
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                        json!({ "type": "hello", "attempt": attempt }).to_string(),
                    )
                }
            });
        let (client, mut w) = spawn_watched(builder);
        match w
            .until("HelloFailed", |e| match e {
                SessionEvent::HelloFailed { attempt, error } => Some((*attempt, error.to_string())),
                _ => None,
            })
            .await
        {
            (1, error) => assert!(error.contains("signing key"), "{error}"),
            other => panic!("unexpected {other:?}"),
        }
        let (attempt, code, _) = w.next_disconnected().await;
        assert_eq!((attempt, code), (1, 1006));
        assert_eq!(
            w.status(Status::Reconnecting).await,
            (Cause::HelloFailed, 2)
        );
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 2));
        assert_eq!(
            *broker.stats.texts.lock().unwrap(),
            [r#"{"attempt":2,"type":"hello"}"#]
        );
        close_and_end(&client, &mut w).await;
        broker.stop();
    });
}

/// `send` then `close` at once: whatever had not reached the socket when
/// the close began is handed back (as `Unsent` without a queue, in
/// `Closed.unsent` with one). How much is written first is a race; that
/// nothing is lost or reordered is not.
#[test]
fn messages_accepted_before_close_are_written_or_handed_back() {
    for queue_capacity in [0, 64] {
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
            let sent: Vec<String> = (0..50).map(|i| json!({ "i": i }).to_string()).collect();
            for text in &sent {
                assert_eq!(client.send_text(text.clone()).unwrap(), Sent::Accepted);
            }
            let closed = client.close().await;
            assert_eq!(closed.reason, CloseReason::Requested);
            let rest = w.end().await;
            assert_ends_closed(&rest);
            let mut handed_back: Vec<String> = rest
                .into_iter()
                .filter_map(|e| match e {
                    SessionEvent::Unsent(m) => Some(m),
                    _ => None,
                })
                .flatten()
                .collect();
            if queue_capacity > 0 {
                assert!(
                    handed_back.is_empty(),
                    "with a queue they come back from close()"
                );
            }
            handed_back.extend(closed.unsent);
            // The close handshake completed, so the broker has read
            // everything written before our close frame.
            let written: Vec<String> = broker.stats.texts.lock().unwrap()[1..].to_vec();
            println!(
                "send then close (queue: {}): {} written, {} handed back",
                queue_capacity > 0,
                written.len(),
                handed_back.len()
            );
            let mut all = written;
            all.extend(handed_back);
            assert_eq!(all, sent);
            broker.stop();
        });
    }
}
