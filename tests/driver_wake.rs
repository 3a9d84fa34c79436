//! Waking from sleep on real sockets: the session compares an injected wall
//! clock with the monotonic one at every poll; a jump of an hour between two
//! polls is a suspend, and the machine probes the link (a ping, then
//! `wake_probe`). A blackholed link is dropped within the probe deadline
//! instead of `stale_after`; a live broker answers and the link stays Open.
//! Bounds are generous; exact timing is the core's virtual-clock tests'.

#[path = "../examples/common/broker.rs"]
mod broker;
mod driver_support;
#[path = "../examples/common/proxy.rs"]
mod proxy;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_io::Timer;
use serde_json::json;
use ws_lifecycle::{Cause, Client, Config, Status};

use broker::{Broker, Options};
use driver_support::*;
use proxy::Proxy;

/// The session's log lines that say the host slept, by URL.
struct Slept(Mutex<Vec<String>>);

impl log::Log for Slept {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = record.args().to_string();
        if line.contains("the host slept") {
            self.0.lock().unwrap().push(line);
        }
    }
    fn flush(&self) {}
}

static SLEPT: Slept = Slept(Mutex::new(Vec::new()));

fn install_logger() {
    // Both tests of this binary install it; the first one wins.
    if log::set_logger(&SLEPT).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
}

fn slept_logged(url: &str) -> bool {
    let url = url.trim_end_matches("/ws");
    SLEPT.0.lock().unwrap().iter().any(|l| l.contains(url))
}

const PROBE: Duration = Duration::from_millis(500);
const PING: Duration = Duration::from_millis(200);

/// Pings often (so an idle session is polled soon after the jump), a stale
/// deadline far beyond the test's limit, a short probe.
fn config() -> Config {
    Config {
        ping_interval: PING,
        stale_after: Duration::from_secs(60),
        wake_probe: PROBE,
        ..fast_config()
    }
}

/// A client for `url` whose wall clock runs `offset` seconds ahead.
fn client_with_clock(url: String, offset: Arc<AtomicU64>) -> (Client, Watch) {
    let builder = Client::builder(url)
        .config(config())
        .wall_clock(move || SystemTime::now() + Duration::from_secs(offset.load(Ordering::SeqCst)));
    spawn_watched(builder)
}

async fn echo(client: &Client, w: &mut Watch, n: i64) {
    client.send(&json!({ "n": n })).unwrap();
    let v = w.message().await;
    assert_eq!(v["data"]["n"], n, "{v}");
}

#[test]
fn a_suspend_with_a_dead_link_drops_it_within_the_wake_probe() {
    install_logger();
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let proxy = Proxy::start(broker.addr).unwrap();
        let offset = Arc::new(AtomicU64::new(0));
        let (client, mut w) = client_with_clock(proxy.url(), offset.clone());
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 1));
        // Pings come and go: no suspend is seen while both clocks agree.
        Timer::after(PING * 3).await;
        echo(&client, &mut w, 1).await;
        assert!(!slept_logged(&proxy.url()), "a suspend seen without a jump");

        // The link dies "during the night", and the night passes.
        proxy.set_blackhole(true);
        offset.store(3600, Ordering::SeqCst);
        let woke = Instant::now();
        let (attempt, code, reason) = w.next_disconnected().await;
        let detected = woke.elapsed();
        assert_eq!((attempt, code), (1, 1006));
        assert!(reason.starts_with("wake probe failed"), "{reason}");
        let (from, to, cause, _) = w.next_status_change().await;
        assert_eq!(
            (from, to, cause),
            (Status::Open, Status::Reconnecting, Cause::WakeProbeFailed)
        );
        assert!(slept_logged(&proxy.url()));
        println!(
            "dead link after a suspend: dropped {detected:?} after the jump \
             (wake_probe {PROBE:?}, ping {PING:?}, stale_after {:?})",
            config().stale_after
        );
        // Detection waits for the next poll (at most a ping away), then the
        // probe runs its full deadline.
        assert!(detected >= PROBE.mul_f64(0.9), "too early: {detected:?}");
        assert!(
            detected < PROBE + PING + Duration::from_secs(2),
            "too late: {detected:?}"
        );

        // The network is back: a new attempt opens.
        proxy.set_blackhole(false);
        let (_, attempt) = w.status(Status::Open).await;
        assert!(attempt >= 2);
        echo(&client, &mut w, 2).await;
        close_and_end(&client, &mut w).await;
    });
}

#[test]
fn a_suspend_with_a_live_link_keeps_it_open() {
    install_logger();
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let url = ws_url(broker.addr);
        let offset = Arc::new(AtomicU64::new(0));
        let (client, mut w) = client_with_clock(url.clone(), offset.clone());
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 1));
        echo(&client, &mut w, 1).await;

        offset.store(3600, Ordering::SeqCst);
        wait_until("the session to notice the suspend", || slept_logged(&url)).await;
        // The broker answers the probe's ping: well past the probe deadline
        // nothing happened but pongs.
        Timer::after(PROBE * 3).await;
        assert_eq!(client.status(), Status::Open);
        echo(&client, &mut w, 2).await;
        let seen = w.history();
        assert!(
            !seen.contains("Disconnected") && !seen.contains("Reconnecting"),
            "the link was dropped:\n  {seen}"
        );
        assert_eq!(broker.stats.connections.load(Ordering::SeqCst), 1);
        close_and_end(&client, &mut w).await;
    });
}
