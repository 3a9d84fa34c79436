//! After close nothing of a session remains: its task completes, its socket
//! is gone on the broker's side, and no timer ever starts another attempt.
//! Also: a session future dropped by its executor ends the session for the
//! handles instead of leaving them waiting forever.

#[path = "../examples/common/broker.rs"]
mod broker;
mod driver_support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_io::Timer;
use driver_support::{any_port, fast_config, free_addr, ms, run, wait_until, ws_url};
use futures_lite::future;
use ws_lifecycle::{Client, CloseReason, Config, NotReady, SendErrorKind, Status};

/// Short timings with a fast ping and a single short backoff step.
fn config() -> Config {
    Config {
        ping_interval: ms(100),
        backoff: vec![ms(50)],
        ..fast_config()
    }
}

#[test]
fn after_close_no_task_socket_or_timer_remains() {
    run(async {
        let b = broker::Broker::start(any_port(), broker::Options::default()).unwrap();
        let (client, events, session) = Client::builder(b.url())
            .no_proxy()
            .config(config())
            .build()
            .unwrap();
        drop(events);
        let task = smol::spawn(session);
        client.ready().await.unwrap();
        wait_until("the broker to see the connection", || {
            b.stats.open.load(Ordering::SeqCst) == 1
        })
        .await;

        let closed = client.close().await;
        assert_eq!(closed.reason, CloseReason::Requested);
        // The task: the session future has completed.
        future::or(task, async {
            Timer::after(Duration::from_secs(5)).await;
            panic!("the session task is still running after close");
        })
        .await;
        // The socket: the broker's side of the connection has ended.
        wait_until("the broker to see the socket closed", || {
            b.stats.open.load(Ordering::SeqCst) == 0
        })
        .await;
        // The timers: nothing reconnects, ever (many backoff periods later).
        let connections = b.stats.connections.load(Ordering::SeqCst);
        Timer::after(ms(500)).await;
        assert_eq!(b.stats.connections.load(Ordering::SeqCst), connections);
        assert_eq!(client.status(), Status::Closed);
        let refused = client.send(&serde_json::json!({"late": true})).unwrap_err();
        assert_eq!(refused.kind, SendErrorKind::Ended);
        assert!(refused.message.is_some(), "the message is handed back");
    });
}

#[test]
fn close_while_reconnecting_ends_the_task_at_once() {
    run(async {
        // Nobody listens: every attempt is refused and the session sits in
        // Reconnecting between attempts (a long delay after the first).
        let slow = Config {
            backoff: vec![Duration::from_secs(30)],
            ..config()
        };
        let (client, events, session) = Client::builder(ws_url(free_addr()))
            .no_proxy()
            .config(slow)
            .build()
            .unwrap();
        drop(events);
        let task = smol::spawn(session);
        assert_eq!(
            client.wait_for(Status::Reconnecting).await,
            Status::Reconnecting
        );
        let started = Instant::now();
        client.close().await;
        task.await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "close did not wait out the backoff"
        );
        assert!(
            client.ready().await.is_err(),
            "never opened, so ready fails with the reason"
        );
    });
}

#[test]
fn dropping_every_handle_ends_the_task() {
    run(async {
        let b = broker::Broker::start(any_port(), broker::Options::default()).unwrap();
        let (client, events, session) = Client::builder(b.url())
            .no_proxy()
            .config(config())
            .build()
            .unwrap();
        let task = smol::spawn(session);
        client.ready().await.unwrap();
        let second = client.clone();
        drop(client);
        // One handle left: still open.
        Timer::after(ms(200)).await;
        assert_eq!(second.status(), Status::Open);
        drop(second);
        drop(events);
        future::or(task, async {
            Timer::after(Duration::from_secs(5)).await;
            panic!("the session task outlived its last handle");
        })
        .await;
        wait_until("the broker to record the close frame", || {
            b.stats
                .closes
                .lock()
                .unwrap()
                .iter()
                .any(|(code, _)| *code == 1000)
        })
        .await;
    });
}

#[test]
fn a_dropped_session_future_ends_the_session_for_its_handles() {
    run(async {
        let b = broker::Broker::start(any_port(), broker::Options::default()).unwrap();
        let (client, _events, session) = Client::builder(b.url())
            .no_proxy()
            .config(config())
            .build()
            .unwrap();
        let task = smol::spawn(session);
        client.ready().await.unwrap();
        // The executor drops the future (shutdown, cancellation).
        drop(task.cancel());
        wait_until("the handle to see Closed", || {
            client.status() == Status::Closed
        })
        .await;
        // Nothing waits forever: close returns, ready answers.
        let closed = future::or(async { Some(client.close().await) }, async {
            Timer::after(Duration::from_secs(5)).await;
            None
        })
        .await;
        assert!(closed.is_some(), "close() hung on a dropped session");
        // Closed now: `ready` fails, even though an attempt was acked once.
        assert_eq!(
            client.ready().await,
            Err(NotReady(CloseReason::Requested)),
            "ready() answers for now, not for the past"
        );
        wait_until("the broker to see the socket gone", || {
            b.stats.open.load(Ordering::SeqCst) == 0
        })
        .await;
    });
}
