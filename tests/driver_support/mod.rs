//! Helpers shared by the real-socket driver tests (`tests/driver_*.rs`):
//! a per-test time limit, short lifecycle timings, spawning a watched
//! client, an event watcher that waits for a matching event and reports
//! what it saw on failure, and closing a session and checking its end.
#![allow(dead_code)]

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::StreamExt;
use futures_lite::future;
use ws_lifecycle::{
    Cause, Client, ClientBuilder, CloseReason, Config, Events, SessionEvent, Status,
};

/// Every test body runs under this limit.
pub const TEST_LIMIT: Duration = Duration::from_secs(20);

/// How long a single wait for an event may take before the test fails with
/// the events it saw (generous: the machine is small and loaded).
pub const WAIT: Duration = Duration::from_secs(8);

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Runs `body` under `smol::block_on`, failing the test if it takes longer
/// than [`TEST_LIMIT`].
pub fn run(body: impl Future<Output = ()>) {
    smol::block_on(within(TEST_LIMIT, body));
}

/// `body`, or a panic once `limit` has passed.
pub async fn within<T>(limit: Duration, body: impl Future<Output = T>) -> T {
    future::or(body, async {
        Timer::after(limit).await;
        panic!("test timed out after {limit:?}")
    })
    .await
}

/// Short timings for loopback tests. Timeouts that a test does not mean to
/// hit are kept comfortably long, since this runs on a loaded machine; the
/// backoff is short, without jitter, with a low floor.
pub fn fast_config() -> Config {
    Config {
        connect_timeout: ms(2000),
        ack_timeout: ms(2000),
        ping_interval: ms(150),
        stale_after: ms(2000),
        backoff: vec![ms(50), ms(100), ms(200)],
        jitter: 0.0,
        min_delay: ms(10),
        stable_after: Duration::from_secs(10),
        close_grace: ms(400),
        ..Config::default()
    }
}

/// Loopback, port 0: bind there for a port the OS picks.
pub fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A loopback address nobody listens on (bound, then released).
pub fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr")
}

/// The `ws://` URL of a broker (or of nothing) at `addr`.
pub fn ws_url(addr: SocketAddr) -> String {
    format!("ws://{addr}/ws")
}

/// Spawns the session `builder` describes, with no proxy (so a
/// developer's `http_proxy` or `all_proxy` cannot change a test's result),
/// and watches its events. Tests of proxies use [`spawn_as_is`].
pub fn spawn_watched(builder: ClientBuilder) -> (Client, Watch) {
    spawn_as_is(builder.no_proxy())
}

/// Spawns the session `builder` describes, proxy setting included, and
/// watches its events.
pub fn spawn_as_is(builder: ClientBuilder) -> (Client, Watch) {
    let (client, events) = builder.spawn().unwrap();
    (client, Watch::new(events))
}

/// A client for `url` with `config` and nothing else set, spawned and
/// watched.
pub fn start_client(url: impl Into<String>, config: Config) -> (Client, Watch) {
    spawn_watched(Client::builder(url).config(config))
}

/// Polls `cond` every 10 ms until it holds, for broker-side facts that no
/// client event announces. Panics with `what` after [`WAIT`].
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "gave up waiting for {what}");
        Timer::after(ms(10)).await;
    }
}

/// Retries `start` every 10 ms until it succeeds, e.g. a broker restarted
/// on a port whose previous listener is still being torn down. Panics with
/// the last error after [`WAIT`].
pub async fn retry_until_ok<T, E: std::fmt::Debug>(mut start: impl FnMut() -> Result<T, E>) -> T {
    let begun = Instant::now();
    loop {
        match start() {
            Ok(t) => return t,
            Err(e) => assert!(begun.elapsed() < WAIT, "gave up retrying: {e:?}"),
        }
        Timer::after(ms(10)).await;
    }
}

/// Reads a session's events, remembering them for failure messages.
pub struct Watch {
    events: Events,
    seen: Vec<String>,
}

impl Watch {
    pub fn new(events: Events) -> Self {
        Watch {
            events,
            seen: Vec::new(),
        }
    }

    /// The last 60 events seen, one a line.
    pub fn history(&self) -> String {
        let from = self.seen.len().saturating_sub(60);
        self.seen[from..].join("\n  ")
    }

    /// The next event, `None` once the stream ended. Panics after `limit`.
    pub async fn next_within(&mut self, limit: Duration) -> Option<SessionEvent> {
        let next = future::or(async { Some(self.events.next().await) }, async {
            Timer::after(limit).await;
            None
        })
        .await;
        match next {
            Some(Some(event)) => {
                self.seen.push(format!("{event:?}"));
                Some(event)
            }
            Some(None) => None,
            None => panic!(
                "no event within {limit:?}; seen so far:\n  {}",
                self.history()
            ),
        }
    }

    /// The next event; panics if the stream ended or nothing came.
    pub async fn next(&mut self) -> SessionEvent {
        match self.next_within(WAIT).await {
            Some(e) => e,
            None => panic!("events ended; seen:\n  {}", self.history()),
        }
    }

    /// Skips events until `pick` returns `Some`, and returns that. Panics
    /// if the stream ends or nothing matches within [`WAIT`].
    pub async fn until<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&SessionEvent) -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            let left = WAIT.saturating_sub(start.elapsed());
            if left.is_zero() {
                panic!("no {what} within {WAIT:?}; seen:\n  {}", self.history());
            }
            match self.next_within(left).await {
                Some(e) => {
                    if let Some(t) = pick(&e) {
                        return t;
                    }
                }
                None => panic!("events ended before {what}; seen:\n  {}", self.history()),
            }
        }
    }

    /// Waits for a status change to `to`; returns (cause, attempt). A
    /// change to Open is followed at once by its `Acked` event, which is
    /// checked and taken too.
    pub async fn status(&mut self, to: Status) -> (Cause, u64) {
        let (cause, attempt) = self
            .until(&format!("status {to}"), |e| match e {
                SessionEvent::Status {
                    to: t,
                    cause,
                    attempt,
                    ..
                } if *t == to => Some((*cause, *attempt)),
                _ => None,
            })
            .await;
        if to == Status::Open {
            self.acked(attempt).await;
        }
        (cause, attempt)
    }

    /// The next event, which must be `Acked` for `attempt`; returns its
    /// ack frame.
    pub async fn acked(&mut self, attempt: u64) -> serde_json::Value {
        match self.next().await {
            SessionEvent::Acked { attempt: a, ack } if a == attempt => ack,
            other => panic!(
                "expected Acked for attempt {attempt} right after Open, got {other:?}; seen:\n  {}",
                self.history()
            ),
        }
    }

    /// Waits for a JSON message (an echo); returns it.
    pub async fn message(&mut self) -> serde_json::Value {
        self.until("echo", |e| match e {
            SessionEvent::Message(v) => Some(v.clone()),
            _ => None,
        })
        .await
    }

    /// Waits for a failed connection attempt; returns (attempt, error).
    pub async fn connect_failed(&mut self) -> (u64, String) {
        self.until("ConnectFailed", |e| match e {
            SessionEvent::ConnectFailed { attempt, error } => Some((*attempt, error.to_string())),
            _ => None,
        })
        .await
    }

    /// The next event, which must be `Disconnected`; returns (attempt,
    /// code, reason).
    pub async fn next_disconnected(&mut self) -> (u64, u16, String) {
        match self.next().await {
            SessionEvent::Disconnected {
                attempt,
                code,
                reason,
            } => (attempt, code, reason),
            other => panic!(
                "expected Disconnected, got {other:?}; seen:\n  {}",
                self.history()
            ),
        }
    }

    /// The next event, which must be a status change; returns (from, to,
    /// cause, attempt).
    pub async fn next_status_change(&mut self) -> (Status, Status, Cause, u64) {
        match self.next().await {
            SessionEvent::Status {
                from,
                to,
                cause,
                attempt,
            } => (from, to, cause, attempt),
            other => panic!(
                "expected Status, got {other:?}; seen:\n  {}",
                self.history()
            ),
        }
    }

    /// Drains the stream to its end; returns the events that were left.
    /// Panics if it does not end within [`WAIT`].
    pub async fn end(&mut self) -> Vec<SessionEvent> {
        let mut rest = Vec::new();
        while let Some(e) = self.next_within(WAIT).await {
            rest.push(e);
        }
        rest
    }
}

/// Asserts that the last event of `rest` is `Closed`.
pub fn assert_ends_closed(rest: &[SessionEvent]) {
    assert!(
        matches!(rest.last(), Some(SessionEvent::Closed(_))),
        "the last event must be Closed, got {:?}",
        rest.last()
    );
}

/// Closes the client and checks the session ended as requested: the event
/// stream ends with `Closed` and the handle reports `Closed`. Returns the
/// events that were left.
pub async fn close_and_end(client: &Client, w: &mut Watch) -> Vec<SessionEvent> {
    let closed = client.close().await;
    assert_eq!(closed.reason, CloseReason::Requested);
    let rest = w.end().await;
    assert_ends_closed(&rest);
    assert_eq!(client.status(), Status::Closed);
    rest
}

/// Closes, checks the session ended with `Requested`, the stream ended
/// with `Closed` and the first status change left `from`; returns how long
/// `close()` took.
pub async fn close_and_check(client: &Client, w: &mut Watch, from: Status) -> Duration {
    let start = Instant::now();
    let closed = client.close().await;
    let took = start.elapsed();
    assert_eq!(closed.reason, CloseReason::Requested);
    assert_eq!(client.status(), Status::Closed);
    let rest = w.end().await;
    assert_ends_closed(&rest);
    let first = rest.iter().find_map(|e| match e {
        SessionEvent::Status { from, .. } => Some(*from),
        _ => None,
    });
    assert_eq!(first, Some(from), "left {from:?} first; rest {rest:?}");
    took
}

/// Waits until the broker recorded at least one close frame (no client
/// event announces that); returns the (code, reason) of every one so far.
pub async fn recorded_closes(closes: &Mutex<Vec<(u16, String)>>) -> Vec<(u16, String)> {
    wait_until("the broker to record the close", || {
        !closes.lock().unwrap().is_empty()
    })
    .await;
    closes.lock().unwrap().clone()
}
