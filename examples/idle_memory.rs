//! Memory per idle session: N supervised ws-lifecycle sessions versus N raw
//! async-tungstenite connections with the same `WebSocketConfig`, against a
//! broker in another process.
//!
//! ```text
//! cargo run --release --example broker 127.0.0.1:9001 &
//! cargo run --release --example idle_memory -- --mode lifecycle --n 1000 ws://127.0.0.1:9001/ws
//! cargo run --release --example idle_memory -- --mode raw       --n 1000 ws://127.0.0.1:9001/ws
//! cargo run --release --example idle_memory -- --mode raw-naive --n 1000 ws://127.0.0.1:9001/ws
//! ```
//!
//! Options: `--ping-ms MS` and `--hold-ms MS` (measure keepalive CPU over a
//! hold), `--read-buffer BYTES` (both modes; default the transport default).
//!
//! Prints one JSON line: RSS before and after (from /proc/self/statm), the
//! RSS delta per session, and the live heap per session (a counting global
//! allocator: bytes allocated minus bytes freed). Both modes do the same
//! work per connection: TCP connect, upgrade, hello, wait for the ack, then
//! keep reading (so pings are answered). The raw mode has no deadlines
//! and no reconnect: one `async_io::Timer` per client, created once and
//! re-armed with `set_at` for each ping (as a careful raw user would write
//! it), and a read always pending: it is the floor. `--mode raw-naive` is
//! the earlier baseline that builds a new `Timer` for every wait.

#[path = "common/procstat.rs"]
mod procstat;
#[path = "common/rlimit.rs"]
mod rlimit;

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::Duration;

use async_io::{Async, Timer};
use async_tungstenite::tungstenite::Message;
use futures_lite::{FutureExt, StreamExt};
use ws_lifecycle::{Client, Config, Status, TransportConfig};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);
static COUNT: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now =
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed) + layout.size() as isize;
        PEAK.fetch_max(now, Ordering::Relaxed);
        COUNT.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut mode = "lifecycle".to_owned();
    let mut n = 1000usize;
    let mut url = "ws://127.0.0.1:9001/ws".to_owned();
    let mut ping_ms = 30_000u64;
    let mut hold_ms = 0u64;
    let mut read_buffer_size = TransportConfig::default().read_buffer_size;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--mode" => mode = it.next().unwrap_or_default(),
            "--n" => n = it.next().and_then(|v| v.parse().ok()).unwrap_or(n),
            "--ping-ms" => ping_ms = it.next().and_then(|v| v.parse().ok()).unwrap_or(ping_ms),
            "--hold-ms" => hold_ms = it.next().and_then(|v| v.parse().ok()).unwrap_or(hold_ms),
            "--read-buffer" => {
                read_buffer_size = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(read_buffer_size)
            }
            other => url = other.to_owned(),
        }
    }
    if let Some((from, to)) = rlimit::raise_nofile() {
        eprintln!("idle_memory: raised the open-files limit from {from} to {to}");
    }
    let transport = TransportConfig {
        read_buffer_size,
        ..TransportConfig::default()
    };
    let rss0 = procstat::rss_bytes() as usize;
    let anon0 = procstat::anon_rss_bytes() as f64;
    let heap0 = LIVE.load(Ordering::Relaxed);
    let opened = Arc::new(AtomicUsize::new(0));
    let mut keep: Vec<Box<dyn std::any::Any>> = Vec::with_capacity(n);
    smol::block_on(async {
        match mode.as_str() {
            "raw" | "raw-naive" => {
                let addr: SocketAddr = url
                    .trim_start_matches("ws://")
                    .split('/')
                    .next()
                    .and_then(|a| a.parse().ok())
                    .expect("raw mode needs ws://IP:PORT/...");
                let naive = mode == "raw-naive";
                for _ in 0..n {
                    let (url, opened) = (url.clone(), opened.clone());
                    let config = transport.websocket_config();
                    keep.push(Box::new(smol::spawn(async move {
                        let tcp = Async::<TcpStream>::connect(addr).await.expect("tcp");
                        let _ = tcp.get_ref().set_nodelay(true);
                        let (mut ws, _) =
                            async_tungstenite::client_async_with_config(url, tcp, Some(config)).await.expect("upgrade");
                        ws.send(Message::text(r#"{"type":"hello"}"#)).await.expect("hello");
                        let mut acked = false;
                        // The raw floor of keepalive: read always, ping on a
                        // timer. One timer per client, re-armed in place (a
                        // careful raw user); raw-naive builds one per wait.
                        let interval = Duration::from_millis(ping_ms);
                        let mut next_ping = std::time::Instant::now() + interval;
                        let mut timer = Timer::at(next_ping);
                        loop {
                            let next = async { Some(ws.next().await) }
                                .or(async {
                                    if naive {
                                        Timer::at(next_ping).await;
                                    } else {
                                        (&mut timer).await;
                                    }
                                    None
                                })
                                .await;
                            match next {
                                Some(Some(Ok(m))) => {
                                    if !acked && matches!(&m, Message::Text(t) if t.as_str().contains("hello_ack")) {
                                        acked = true;
                                        opened.fetch_add(1, Ordering::SeqCst);
                                    }
                                }
                                Some(_) => break,
                                None => {
                                    next_ping += interval;
                                    timer.set_at(next_ping);
                                    if ws.send(Message::Ping(Default::default())).await.is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                    })));
                }
            }
            _ => {
                let config = Config {
                    ping_interval: Duration::from_millis(ping_ms),
                    stale_after: Duration::from_millis(ping_ms * 5 / 2),
                    ..Config::default()
                };
                let builder = Client::builder(url.clone())
                    .transport(transport.clone())
                    .config(config);
                for _ in 0..n {
                    let (client, events) = builder.spawn().expect("valid builder");
                    drop(events);
                    keep.push(Box::new(client));
                }
            }
        }
        let open_clients = |keep: &Vec<Box<dyn std::any::Any>>| {
            keep.iter()
                .filter_map(|k| k.downcast_ref::<Client>())
                .filter(|c| c.status() == Status::Open)
                .count()
        };
        while opened.load(Ordering::SeqCst) + open_clients(&keep) < n {
            Timer::after(Duration::from_millis(50)).await;
        }
        // Let allocator and kernel settle.
        Timer::after(Duration::from_millis(1000)).await;
        if std::env::var_os("TRIM").is_some() {
            unsafe extern "C" {
                fn malloc_trim(pad: usize) -> i32;
            }
            unsafe { malloc_trim(0) };
        }
        let rss1 = procstat::rss_bytes() as usize;
        let anon_per = (procstat::anon_rss_bytes() as f64 - anon0) / n as f64 / 1024.0;
        let cpu0 = procstat::cpu_time();
        let hold_start = std::time::Instant::now();
        Timer::after(Duration::from_millis(hold_ms)).await;
        let cpu = procstat::cpu_time().saturating_sub(cpu0);
        let trips = (hold_start.elapsed().as_millis() as u64 / ping_ms.max(1)) * n as u64;
        if hold_ms > 0 {
            eprintln!(
                "{{\"mode\":\"{mode}\",\"hold_ms\":{hold_ms},\"ping_ms\":{ping_ms},\"cpu_ms\":{},\"round_trips\":{trips},\"cpu_us_per_round_trip\":{:.2}}}",
                cpu.as_millis(),
                cpu.as_secs_f64() * 1e6 / trips.max(1) as f64
            );
        }
        let heap1 = LIVE.load(Ordering::Relaxed);
        let rss_per = (rss1 as f64 - rss0 as f64) / n as f64 / 1024.0;
        let heap_per = (heap1 - heap0) as f64 / n as f64 / 1024.0;
        println!(
            "{{\"mode\":\"{mode}\",\"sessions\":{n},\"rss_before_kib\":{},\"rss_after_kib\":{},\"rss_per_session_kib\":{rss_per:.2},\"anon_rss_per_session_kib\":{anon_per:.2},\"heap_per_session_kib\":{heap_per:.2},\"peak_heap_per_session_kib\":{:.2},\"allocs_per_session\":{}}}",
            rss0 / 1024,
            rss1 / 1024,
            (PEAK.load(Ordering::Relaxed) - heap0) as f64 / n as f64 / 1024.0,
            COUNT.load(Ordering::Relaxed) / n
        );
        if !mode.starts_with("raw") {
            let open_now = open_clients(&keep);
            eprintln!("idle_memory: {open_now} sessions open at the end");
        }
    });
}
