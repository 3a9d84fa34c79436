//! Reconnect storm: N sessions (default 1000) in one process against a
//! broker that goes down for 3 s and comes back, with the default backoff
//! and jitter. Reports how concentrated the reconnects are: the share of
//! them that land in the busiest 100 ms window (target ≤ 10 %).
//!
//! ```text
//! cargo run --release --example storm [-- N [DOWN_MS]]
//! ```
//!
//! Two shares are printed: of every reconnect attempt made during the
//! episode (what the broker's accept queue sees), and of the successful
//! re-opens after it returns (what its hello handler sees). For contrast it
//! runs the same storm with jitter 0 (the original's behaviour).

#[path = "common/broker.rs"]
mod broker;
#[path = "common/rlimit.rs"]
mod rlimit;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::{FutureExt, StreamExt};
use futures_util::stream::select_all;
use ws_lifecycle::{Cause, Client, Config, SessionEvent, Status};

/// The largest number of `times` (seconds, any order) within any window of
/// `window` seconds.
fn busiest(times: &mut [f64], window: f64) -> usize {
    times.sort_by(|a, b| a.total_cmp(b));
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi] - times[lo] >= window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

async fn storm(ex: &smol::LocalExecutor<'_>, n: usize, down: Duration, jitter: f64) {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let first = broker::Broker::start(any, broker::Options::default()).expect("broker");
    let addr = first.addr;
    let builder = Client::builder(first.url())
        // The broker is local: a developer's http_proxy must not apply.
        .no_proxy()
        .config(Config {
            jitter,
            ..Config::default()
        });
    let mut clients = Vec::with_capacity(n);
    let mut streams = Vec::with_capacity(n);
    for i in 0..n {
        let (client, events, session) = builder.build().expect("valid builder");
        ex.spawn(session).detach();
        clients.push(client);
        streams.push(events.map(move |e| (i, e)));
    }
    let mut events = select_all(streams);
    let mut open = 0;
    while open < n {
        if let Some((
            _,
            SessionEvent::Status {
                to: Status::Open, ..
            },
        )) = events.next().await
        {
            open += 1;
        }
    }
    // The outage.
    let t0 = Instant::now();
    first.stop();
    let restart_at = t0 + down;
    let mut broker = None;
    let (mut attempts, mut reopens) = (Vec::new(), Vec::new());
    let mut reopened = vec![false; n];
    let mut reopened_count = 0;
    while reopened_count < n {
        if broker.is_none() && Instant::now() >= restart_at {
            broker = Some(
                broker::Broker::start(addr, broker::Options::default())
                    .expect("restart on the same port"),
            );
        }
        let wake = if broker.is_none() {
            restart_at
        } else {
            Instant::now() + Duration::from_secs(120)
        };
        let next = async { events.next().await }
            .or(async {
                Timer::at(wake).await;
                None
            })
            .await;
        let Some((i, event)) = next else { continue };
        let t = t0.elapsed().as_secs_f64();
        match event {
            SessionEvent::Status {
                to: Status::Connecting,
                cause: Cause::RetryDue,
                ..
            } => attempts.push(t),
            SessionEvent::Status {
                to: Status::Open, ..
            } if !reopened[i] => {
                reopened[i] = true;
                reopened_count += 1;
                reopens.push(t);
            }
            _ => {}
        }
    }
    let total_attempts = attempts.len();
    let a = busiest(&mut attempts, 0.1);
    let r = busiest(&mut reopens, 0.1);
    let last = reopens.last().copied().unwrap_or(0.0);
    println!(
        "{{\"sessions\":{n},\"jitter\":{jitter},\"down_ms\":{},\"reconnect_attempts\":{total_attempts},\"busiest_100ms_attempts\":{a},\"busiest_100ms_attempt_share\":{:.3},\"reopens\":{},\"busiest_100ms_reopens\":{r},\"busiest_100ms_reopen_share\":{:.3},\"all_reopened_after_s\":{last:.2}}}",
        down.as_millis(),
        a as f64 / total_attempts.max(1) as f64,
        reopens.len(),
        r as f64 / reopens.len().max(1) as f64,
    );
    for c in &clients {
        let _ = c.close().await;
    }
    drop(broker);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let down = Duration::from_millis(args.next().and_then(|v| v.parse().ok()).unwrap_or(3000));
    if let Some((from, to)) = rlimit::raise_nofile() {
        eprintln!("storm: raised the open-files limit from {from} to {to}");
    }
    let ex = smol::LocalExecutor::new();
    smol::block_on(ex.run(async {
        storm(&ex, n, down, Config::default().jitter).await;
        storm(&ex, n, down, 0.0).await;
    }));
}
