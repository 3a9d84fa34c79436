//! Inbound flood: right after the ack a broker sends N small JSON messages
//! (default 1,000,000); one client reads them all. Compared, in alternating
//! rounds of the same run:
//!
//! - `raw json`: raw async-tungstenite reading the frames and parsing each
//!   into a `serde_json::Value` (the baseline for ws-lifecycle's JSON mode);
//! - `lifecycle json`: ws-lifecycle, `SessionEvent::Message(Value)`;
//! - `raw text`: raw async-tungstenite reading the frames, no parsing (the
//!   baseline for the raw-text mode);
//! - `lifecycle text`: ws-lifecycle with `DeliveryConfig::raw_text`,
//!   `SessionEvent::Text`, no parsing;
//! - `lifecycle json spawned`: as `lifecycle json`, but the session runs on
//!   smol's executor thread (`ClientBuilder::spawn`, the usual way) while
//!   the consumer runs on the main thread: reading and parsing overlap
//!   with consuming. Its CPU time counts both threads.
//!
//! ```text
//! cargo bench --bench inbound                    # N = 1,000,000, 3 rounds
//! INBOUND_N=200000 INBOUND_ROUNDS=5 cargo bench --bench inbound
//! INBOUND_ONLY="lifecycle json" cargo bench --bench inbound   # one mode (for a profiler)
//! ```
//!
//! The broker runs on a thread of its own and writes pre-encoded frames in
//! 256 KiB chunks, so it is not the bottleneck; its CPU time is left out.
//! The client's CPU time is the on-CPU time (`/proc/self/task/*/schedstat`,
//! nanoseconds) of every other thread of the process, from the ack to the
//! last message: the client's own thread and async-io's reactor thread if
//! it ran. Each client runs on the bench's main thread (`smol::block_on`;
//! ws-lifecycle's session is polled in the same `block_on` as the consumer).

use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use async_io::Async;
use async_tungstenite::tungstenite::Message;
use futures_lite::{AsyncWriteExt, StreamExt, future};
use ws_lifecycle::{Client, DeliveryConfig, SessionEvent, TransportConfig};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Both clients read through a 64 KiB buffer (the per-session default is
/// 4 KiB, sized for many idle sessions).
fn transport() -> TransportConfig {
    TransportConfig {
        read_buffer_size: 64 << 10,
        ..TransportConfig::default()
    }
}

/// N unmasked server text frames `{"type":"tick","seq":i,"px":…}`, each
/// under 126 bytes (a two-byte header).
fn encode_flood(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 48);
    for seq in 0..n {
        let payload = format!(
            r#"{{"type":"tick","seq":{seq},"px":{}.25}}"#,
            100 + seq % 50
        );
        out.push(0x81);
        out.push(payload.len() as u8);
        out.extend_from_slice(payload.as_bytes());
    }
    out
}

/// Serves one connection per round: acks the hello, writes the flood, then
/// reads until the client's close (tungstenite answers it). Reports its
/// thread id first, so its CPU time can be left out.
fn broker(flood: Vec<u8>, tid: mpsc::Sender<u32>) -> SocketAddr {
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).expect("bind");
    let addr = listener.get_ref().local_addr().expect("addr");
    std::thread::Builder::new()
        .name("flood-broker".into())
        .spawn(move || {
            tid.send(thread_id()).expect("tid");
            async_io::block_on(async {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let _ = stream.get_ref().set_nodelay(true);
                    let Ok(mut ws) = async_tungstenite::accept_async(stream).await else {
                        continue;
                    };
                    match ws.next().await {
                        Some(Ok(Message::Text(_))) => {}
                        _ => continue,
                    }
                    if ws
                        .send(Message::text(r#"{"type":"hello_ack"}"#))
                        .await
                        .is_err()
                    {
                        continue;
                    }
                    // tungstenite's write buffer is empty after `send`: raw
                    // bytes written below it keep the stream well formed.
                    let mut failed = false;
                    for chunk in flood.chunks(256 << 10) {
                        if ws.get_mut().write_all(chunk).await.is_err() {
                            failed = true;
                            break;
                        }
                    }
                    if !failed {
                        let _ = ws.get_mut().flush().await;
                        while let Some(Ok(_)) = ws.next().await {}
                    }
                }
            });
        })
        .expect("broker thread");
    addr
}

/// This thread's id (the name of `/proc/thread-self`'s target).
fn thread_id() -> u32 {
    let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
    link.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .expect("tid")
}

/// On-CPU nanoseconds of every thread of this process but `except`.
fn cpu_ns_except(except: u32) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let Ok(entry) = entry else { continue };
        if entry.file_name().to_str() == Some(&except.to_string()) {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("schedstat")).unwrap_or_default();
        total += stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

/// One client's figures for one round.
#[derive(Clone, Copy)]
struct Figure {
    elapsed: Duration,
    cpu_ns: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    RawJson,
    LifecycleJson,
    RawText,
    LifecycleText,
    LifecycleJsonSpawned,
}

impl Mode {
    const ALL: [Mode; 5] = [
        Mode::RawJson,
        Mode::LifecycleJson,
        Mode::RawText,
        Mode::LifecycleText,
        Mode::LifecycleJsonSpawned,
    ];

    fn name(self) -> &'static str {
        match self {
            Mode::RawJson => "raw json",
            Mode::LifecycleJson => "lifecycle json",
            Mode::RawText => "raw text",
            Mode::LifecycleText => "lifecycle text",
            Mode::LifecycleJsonSpawned => "lifecycle json spawned",
        }
    }

    /// The raw mode a lifecycle mode is compared with.
    fn baseline(self) -> Option<Mode> {
        match self {
            Mode::LifecycleJson | Mode::LifecycleJsonSpawned => Some(Mode::RawJson),
            Mode::LifecycleText => Some(Mode::RawText),
            _ => None,
        }
    }
}

async fn lifecycle_round(
    addr: SocketAddr,
    n: usize,
    raw_text: bool,
    spawned: bool,
    broker: u32,
) -> Figure {
    let builder = Client::builder(format!("ws://{addr}/ws"))
        .no_proxy()
        .transport(transport())
        .delivery(DeliveryConfig {
            raw_text,
            ..DeliveryConfig::default()
        });
    let (client, mut events, session) = builder.build().expect("valid builder");
    // Spawned: on smol's executor thread; else polled beside the consumer.
    let (session, task) = match spawned {
        true => (None, Some(smol::spawn(session))),
        false => (Some(session), None),
    };
    let run = async {
        client.ready().await.expect("ready");
        let (start, cpu) = (Instant::now(), cpu_ns_except(broker));
        let mut got = 0usize;
        let mut bytes = 0usize;
        while got < n {
            match events.next().await {
                Some(SessionEvent::Message(v)) => {
                    // The same check as the raw client's.
                    assert_eq!(v["seq"].as_u64(), Some(got as u64), "in order");
                    got += 1;
                }
                Some(SessionEvent::Text(t)) => {
                    bytes += t.len();
                    got += 1;
                }
                Some(_) => {}
                None => panic!("session ended early"),
            }
        }
        let figure = Figure {
            elapsed: start.elapsed(),
            cpu_ns: cpu_ns_except(broker) - cpu,
        };
        std::hint::black_box(bytes);
        client.close().await;
        figure
    };
    let figure = match session {
        Some(session) => future::zip(run, session).await.0,
        None => run.await,
    };
    if let Some(task) = task {
        task.await;
    }
    figure
}

async fn raw_round(addr: SocketAddr, n: usize, parse: bool, broker: u32) -> Figure {
    let tcp = Async::<std::net::TcpStream>::connect(addr)
        .await
        .expect("tcp");
    tcp.get_ref().set_nodelay(true).expect("nodelay");
    let config = transport().websocket_config();
    let (mut ws, _) =
        async_tungstenite::client_async_with_config(format!("ws://{addr}/ws"), tcp, Some(config))
            .await
            .expect("upgrade");
    ws.send(Message::text(r#"{"type":"hello"}"#))
        .await
        .expect("hello");
    loop {
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            panic!("no ack")
        };
        let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("json");
        if v["type"] == "hello_ack" {
            break;
        }
    }
    let (start, cpu) = (Instant::now(), cpu_ns_except(broker));
    let mut got = 0usize;
    let mut bytes = 0usize;
    while got < n {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if parse => {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("json");
                assert_eq!(v["seq"].as_u64(), Some(got as u64), "in order");
                got += 1;
            }
            Some(Ok(Message::Text(t))) => {
                bytes += t.len();
                got += 1;
            }
            Some(Ok(_)) => {}
            other => panic!("stream ended: {other:?}"),
        }
    }
    let figure = Figure {
        elapsed: start.elapsed(),
        cpu_ns: cpu_ns_except(broker) - cpu,
    };
    std::hint::black_box(bytes);
    let _ = ws.close(None).await;
    while let Some(Ok(_)) = ws.next().await {}
    figure
}

async fn round(mode: Mode, addr: SocketAddr, n: usize, broker: u32) -> Figure {
    match mode {
        Mode::RawJson => raw_round(addr, n, true, broker).await,
        Mode::RawText => raw_round(addr, n, false, broker).await,
        Mode::LifecycleJson => lifecycle_round(addr, n, false, false, broker).await,
        Mode::LifecycleText => lifecycle_round(addr, n, true, false, broker).await,
        Mode::LifecycleJsonSpawned => lifecycle_round(addr, n, false, true, broker).await,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn range(v: &[f64]) -> (f64, f64) {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

fn main() {
    // `cargo test --benches` passes no --bench flag; run only under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n = env("INBOUND_N", 1_000_000);
    let rounds = env("INBOUND_ROUNDS", 3);
    let only = std::env::var("INBOUND_ONLY").ok();
    let modes: Vec<Mode> = Mode::ALL
        .into_iter()
        .filter(|m| only.as_deref().is_none_or(|o| o == m.name()))
        .collect();
    let (tid_tx, tid_rx) = mpsc::channel();
    let addr = broker(encode_flood(n), tid_tx);
    let broker_tid = tid_rx.recv().expect("broker tid");
    // Per mode, per round: msgs/s, CPU ns per message; and per lifecycle
    // mode the per-round ratios to its baseline of the same round.
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); Mode::ALL.len()];
    let mut cpus: Vec<Vec<f64>> = vec![Vec::new(); Mode::ALL.len()];
    smol::block_on(async {
        // Warm up every path once.
        for &mode in &modes {
            round(mode, addr, n / 10, broker_tid).await;
        }
        for _ in 0..rounds {
            for &mode in &modes {
                let f = round(mode, addr, n, broker_tid).await;
                let i = mode as usize;
                rates[i].push(n as f64 / f.elapsed.as_secs_f64());
                cpus[i].push(f.cpu_ns as f64 / n as f64);
            }
        }
    });
    println!(
        "inbound flood, {n} small JSON messages, {rounds} alternating rounds (median [min..max]):"
    );
    for &mode in &modes {
        let i = mode as usize;
        let (rlo, rhi) = range(&rates[i]);
        let (clo, chi) = range(&cpus[i]);
        println!(
            "  {:<22}: {:>9.0} msg/s [{rlo:.0}..{rhi:.0}]   client CPU {:>6.1} ns/msg [{clo:.1}..{chi:.1}]",
            mode.name(),
            median(rates[i].clone()),
            median(cpus[i].clone()),
        );
    }
    for &mode in &modes {
        let Some(base) = mode.baseline().filter(|b| modes.contains(b)) else {
            continue;
        };
        let (i, b) = (mode as usize, base as usize);
        let rate: Vec<f64> = rates[i].iter().zip(&rates[b]).map(|(l, r)| l / r).collect();
        // CPU: baseline over lifecycle, so above 1.0 means cheaper.
        let cpu: Vec<f64> = cpus[i].iter().zip(&cpus[b]).map(|(l, r)| r / l).collect();
        let ((rlo, rhi), (clo, chi)) = (range(&rate), range(&cpu));
        println!(
            "  ratio {} / {}: msg/s {:.3} [{rlo:.3}..{rhi:.3}]   CPU efficiency (raw CPU / ours) {:.3} [{clo:.3}..{chi:.3}]",
            mode.name(),
            base.name(),
            median(rate),
            median(cpu),
        );
    }
}
