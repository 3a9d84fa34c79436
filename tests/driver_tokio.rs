//! The session under tokio: the `Session` future from `ClientBuilder::build`
//! spawned on a tokio multi-thread runtime goes through hello, ack, an echo
//! and close against the example broker. Nothing of tokio's reactor is used:
//! the sockets and the timer are async-io's, whose reactor runs on its own
//! thread, "async-io" (one per process, however many sessions).

#[path = "../examples/common/broker.rs"]
mod broker;

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_lite::StreamExt;
use serde_json::json;
use ws_lifecycle::{Client, CloseReason, Events, SessionEvent, Status};

use broker::{Broker, Options};

const LIMIT: Duration = Duration::from_secs(15);

/// The names of this process's threads (Linux: `/proc/self/task/*/comm`).
fn thread_names() -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

/// The next event that `pick` accepts; panics when the stream ends first.
async fn until<T>(events: &mut Events, mut pick: impl FnMut(&SessionEvent) -> Option<T>) -> T {
    while let Some(event) = events.next().await {
        if let Some(t) = pick(&event) {
            return t;
        }
    }
    panic!("the event stream ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_runs_on_a_tokio_multi_thread_runtime() {
    let broker = Broker::start("127.0.0.1:0".parse().unwrap(), Options::default()).unwrap();
    let url = format!("ws://{}/ws", broker.addr);
    let (client, mut events, session) = Client::builder(url).build().unwrap();
    let task = tokio::spawn(session);
    tokio::time::timeout(LIMIT, async {
        // Hello and ack: Open, then the ack frame itself.
        until(&mut events, |e| match e {
            SessionEvent::Status {
                to: Status::Open, ..
            } => Some(()),
            _ => None,
        })
        .await;
        let ack = until(&mut events, |e| match e {
            SessionEvent::Acked { attempt: 1, ack } => Some(ack.clone()),
            _ => None,
        })
        .await;
        assert_eq!(ack["type"], "hello_ack", "{ack}");
        assert_eq!(broker.stats.hellos.load(Ordering::SeqCst), 1);
        client.ready().await.unwrap();

        // An echo, both ways through the session on tokio's workers.
        client.send(&json!({ "n": 7 })).unwrap();
        let echo = until(&mut events, |e| match e {
            SessionEvent::Message(v) => Some(v.clone()),
            _ => None,
        })
        .await;
        assert_eq!(echo["data"]["n"], 7, "{echo}");

        // The crate's one helper thread: async-io's reactor, exactly once.
        // A thread just spawned shows its parent's name until it names
        // itself, so look again until the names settle (never two).
        let mut names = thread_names();
        for _ in 0..200 {
            let reactors = names.iter().filter(|n| *n == "async-io").count();
            assert!(reactors <= 1, "threads: {names:?}");
            if reactors == 1 || names.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            names = thread_names();
        }
        if !names.is_empty() {
            let reactors = names.iter().filter(|n| *n == "async-io").count();
            assert_eq!(reactors, 1, "threads: {names:?}");
        }

        // Close: the broker answers our close frame, the future completes.
        let closed = client.close().await;
        assert_eq!(closed.reason, CloseReason::Requested);
        assert_eq!(client.status(), Status::Closed);
        task.await
            .expect("the session future completed without panicking");
        let rest: Vec<SessionEvent> = events.collect().await;
        assert!(
            matches!(rest.last(), Some(SessionEvent::Closed(_))),
            "{rest:?}"
        );
    })
    .await
    .expect("hello, ack, echo and close within the limit");
    // The broker saw our close frame (it records it as it reads it).
    for _ in 0..500 {
        if !broker.stats.closes.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let closes = broker.stats.closes.lock().unwrap().clone();
    assert_eq!(closes.first().map(|c| c.0), Some(1000), "{closes:?}");
}
