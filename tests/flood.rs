//! Flood: right after the ack the broker sends 50,000 small numbered JSON
//! messages (1,000,000 with `WS_LIFECYCLE_HEAVY=1`). The consumer gets every
//! one, in order, none lost or repeated; the session's event buffer stays
//! within its bound and the process's peak RSS stays low; and the link is
//! never judged stale, although the flood lasts twice `stale_after` and the
//! broker answers no ping while it floods (it does not read): the messages
//! themselves are the activity.
//!
//! `WS_LIFECYCLE_HEAVY=1` also raises the number of chaos cases
//! (`tests/chaos.rs`). This is the binary's only test, so the peak RSS is
//! its own.

mod driver_support;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use async_tungstenite::tungstenite::Message;
use futures_lite::StreamExt;
use futures_util::SinkExt;
use ws_lifecycle::{Client, Config, SessionEvent, Status};

use driver_support::{assert_ends_closed, ms, within, ws_url};

/// Messages in the flood: 50,000, or 1,000,000 with `WS_LIFECYCLE_HEAVY=1`.
fn flood_size() -> u64 {
    if std::env::var_os("WS_LIFECYCLE_HEAVY").is_some_and(|v| v == "1") {
        1_000_000
    } else {
        50_000
    }
}

const STALE_AFTER: Duration = Duration::from_millis(1000);

/// The flood comes in this many batches with a pause between two (the
/// pauses are the scenario: together they make the flood last at least
/// twice `stale_after`; each is far below it).
const BATCHES: u64 = 45;
const PAUSE: Duration = Duration::from_millis(50);

/// A `kB` field of /proc/self/status.
fn status_kib(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /proc/self/status"))
}

/// One connection: acks the hello, then sends `n` messages `{"seq":i}`
/// (1-based) in [`BATCHES`] batches without reading (so it answers no
/// ping), then reads until the client's close ends the connection. Returns
/// how long the flood took.
fn flooding_broker(n: u64) -> (SocketAddr, smol::Task<Duration>) {
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
    let addr = listener.get_ref().local_addr().unwrap();
    let task = smol::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = async_tungstenite::accept_async(stream).await.unwrap();
        match ws.next().await {
            Some(Ok(Message::Text(_))) => {}
            other => panic!("expected the hello, got {other:?}"),
        }
        ws.send(Message::text(r#"{"type":"hello_ack"}"#))
            .await
            .unwrap();
        let started = Instant::now();
        let per_batch = n.div_ceil(BATCHES);
        for batch in 0..BATCHES {
            if batch > 0 {
                Timer::after(PAUSE).await;
            }
            let first = batch * per_batch + 1;
            for seq in first..(first + per_batch).min(n + 1) {
                ws.feed(Message::text(format!(r#"{{"seq":{seq}}}"#)))
                    .await
                    .unwrap();
            }
            ws.flush().await.unwrap();
        }
        let took = started.elapsed();
        // The client's pings, then its close; tungstenite answers it.
        while let Some(Ok(_)) = ws.next().await {}
        took
    });
    (addr, task)
}

#[test]
fn a_flood_arrives_in_order_within_bounded_memory_and_never_looks_stale() {
    let n = flood_size();
    smol::block_on(within(
        Duration::from_secs(if n > 50_000 { 600 } else { 60 }),
        async {
            let (addr, broker) = flooding_broker(n);
            let config = Config {
                connect_timeout: Duration::from_secs(5),
                ack_timeout: Duration::from_secs(5),
                ping_interval: ms(250),
                stale_after: STALE_AFTER,
                ..Config::default()
            };
            let (client, mut events) = Client::builder(ws_url(addr))
                .no_proxy()
                .config(config)
                .spawn()
                .unwrap();
            // Read directly (a `Watch` would keep a copy of every event).
            let mut next = async || {
                within(Duration::from_secs(10), events.next())
                    .await
                    .expect("the events ended")
            };
            while !matches!(next().await, SessionEvent::Acked { .. }) {}
            let rss_before = status_kib("VmRSS");
            let started = Instant::now();

            // Only messages may come, numbered 1..=n; anything else (a
            // disconnect, a status change, a `Lagged` hiding one) fails.
            let mut expected = 1;
            let mut events_capacity = 0;
            while expected <= n {
                match next().await {
                    SessionEvent::Message(v) => {
                        let seq = v["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {v}"));
                        assert_eq!(seq, expected, "out of order, lost or repeated");
                        expected += 1;
                    }
                    other => panic!(
                        "after {} of {n} messages: {other:?}; status {}",
                        expected - 1,
                        client.status()
                    ),
                }
                if expected % 1000 == 0 {
                    events_capacity = events_capacity.max(client.buffer_capacities()[0].1);
                }
            }
            let received_in = started.elapsed();
            let hwm = status_kib("VmHWM");
            assert_eq!(client.status(), Status::Open);
            assert_eq!(client.attempt(), 1, "no reconnect");
            client.close().await;
            let mut rest = Vec::new();
            while let Some(e) = within(Duration::from_secs(10), events.next()).await {
                rest.push(e);
            }
            assert_ends_closed(&rest);
            let flood_took = within(Duration::from_secs(10), broker).await;

            println!(
                "flood: {n} messages received in {received_in:?} (the broker sent them in \
             {flood_took:?}, stale_after {STALE_AFTER:?}); VmRSS before {rss_before} KiB, \
             peak (VmHWM) {hwm} KiB; event buffer capacity at most {events_capacity}"
            );
            assert!(
                flood_took >= 2 * STALE_AFTER,
                "the flood must outlast stale_after for the check to mean anything"
            );
            // The event buffer holds `event_capacity` (1024) events and a few
            // that always go in: its capacity never doubles past 2048.
            assert!(
                events_capacity <= 2048,
                "event buffer grew to {events_capacity}"
            );
            // Loose: everything in flight is bounded by the buffers, whatever n.
            assert!(
                hwm <= rss_before + 16 * 1024,
                "peak RSS {hwm} KiB, {} KiB above the {rss_before} KiB before the flood",
                hwm - rss_before
            );
        },
    ));
}
