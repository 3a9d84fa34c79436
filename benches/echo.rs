//! Echo throughput of one session: N pipelined JSON messages and their N
//! echoes over loopback, through ws-lifecycle and through raw
//! async-tungstenite, alternating in the same run so machine drift hits both.
//!
//! ```text
//! cargo bench --bench echo                 # N = 20000, 7 rounds each
//! ECHO_N=50000 ECHO_ROUNDS=9 cargo bench --bench echo
//! ECHO_ONLY=lifecycle cargo bench --bench echo   # one client (for a profiler)
//! ECHO_WRITE_BUFFER=16384 cargo bench --bench echo  # both gather writes
//! ```
//!
//! Both clients run on the bench's main thread (the session is polled in
//! the same `block_on` as the test code); the broker (`examples/common/broker.rs`)
//! runs on smol's global executor thread. Both parse every echo into a
//! `serde_json::Value` and serialise every message from one.

#[path = "../examples/common/broker.rs"]
mod broker;

use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message;
use futures_lite::{StreamExt, future};
use futures_util::SinkExt;
use ws_lifecycle::{Client, SessionEvent, TransportConfig};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The transport settings both clients use: a 64 KiB read buffer suits a
/// throughput test (the per-session default is 4 KiB, sized for many idle
/// sessions).
fn transport() -> TransportConfig {
    TransportConfig {
        read_buffer_size: 64 << 10,
        // `ECHO_WRITE_BUFFER=N`: both clients gather N bytes before writing.
        write_buffer_size: env("ECHO_WRITE_BUFFER", 0),
        ..TransportConfig::default()
    }
}

fn load(seq: usize) -> serde_json::Value {
    serde_json::json!({"type": "load", "seq": seq})
}

/// This thread's on-CPU time, in nanoseconds (both clients and the
/// ws-lifecycle session run on the bench's main thread; the broker does not).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// One round: wall time and the main thread's CPU time.
type Took = (Duration, u64);

async fn lifecycle_round(url: &str, n: usize) -> Took {
    let (client, mut events, session) = Client::builder(url)
        // The broker is local: a developer's http_proxy must not apply.
        .no_proxy()
        .transport(transport())
        .build()
        .expect("valid builder");
    let run = async {
        client.ready().await.expect("ready");
        let (start, cpu) = (Instant::now(), thread_cpu_ns());
        let send = async {
            for i in 0..n {
                let text = load(i).to_string();
                client.send_wait(text).await.expect("send");
            }
        };
        let receive = async {
            let mut got = 0;
            while got < n {
                match events.next().await {
                    Some(SessionEvent::Message(v)) => {
                        assert_eq!(
                            v["data"]["seq"].as_u64(),
                            Some(got as u64),
                            "echoes in order"
                        );
                        got += 1;
                    }
                    Some(_) => {}
                    None => panic!("session ended early"),
                }
            }
        };
        future::zip(send, receive).await;
        let took = (start.elapsed(), thread_cpu_ns() - cpu);
        client.close().await;
        took
    };
    let (took, ()) = future::zip(run, session).await;
    took
}

async fn raw_round(url: &str, n: usize) -> Took {
    let config = transport().websocket_config();
    let addr = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .expect("host:port");
    let tcp = async_io::Async::<std::net::TcpStream>::connect(
        addr.parse::<std::net::SocketAddr>().expect("addr"),
    )
    .await
    .expect("tcp");
    tcp.get_ref().set_nodelay(true).expect("nodelay");
    let (ws, _) = async_tungstenite::client_async_with_config(url, tcp, Some(config))
        .await
        .expect("upgrade");
    let (mut sink, mut stream) = ws.split();
    sink.send(Message::text(r#"{"type":"hello"}"#))
        .await
        .expect("hello");
    loop {
        let Some(Ok(Message::Text(t))) = stream.next().await else {
            panic!("no ack")
        };
        let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("json");
        if v["type"] == "hello_ack" {
            break;
        }
    }
    let (start, cpu) = (Instant::now(), thread_cpu_ns());
    let send = async {
        for i in 0..n {
            let text = load(i).to_string();
            sink.feed(Message::text(text)).await.expect("send");
        }
        sink.flush().await.expect("flush");
    };
    let receive = async {
        let mut got = 0;
        while got < n {
            match stream.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("json");
                    assert_eq!(
                        v["data"]["seq"].as_u64(),
                        Some(got as u64),
                        "echoes in order"
                    );
                    got += 1;
                }
                Some(Ok(_)) => {}
                other => panic!("stream ended: {other:?}"),
            }
        }
    };
    future::zip(send, receive).await;
    (start.elapsed(), thread_cpu_ns() - cpu)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // `cargo test --benches` passes --bench-less flags; run only under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n = env("ECHO_N", 20_000);
    let rounds = env("ECHO_ROUNDS", 7);
    let b = broker::Broker::start("127.0.0.1:0".parse().unwrap(), broker::Options::default())
        .expect("broker");
    let url = b.url();
    let only = std::env::var("ECHO_ONLY").ok();
    let (do_raw, do_ours) = match only.as_deref() {
        Some("raw") => (true, false),
        Some("lifecycle") => (false, true),
        _ => (true, true),
    };
    let (mut raw, mut ours) = (Vec::new(), Vec::new());
    let (mut raw_cpu, mut ours_cpu) = (Vec::new(), Vec::new());
    smol::block_on(async {
        // Warm up both paths once.
        if do_raw {
            raw_round(&url, n / 10).await;
        }
        if do_ours {
            lifecycle_round(&url, n / 10).await;
        }
        for _ in 0..rounds {
            if do_raw {
                let (r, cpu) = raw_round(&url, n).await;
                raw.push(n as f64 / r.as_secs_f64());
                raw_cpu.push(cpu as f64 / n as f64);
            }
            if do_ours {
                let (l, cpu) = lifecycle_round(&url, n).await;
                ours.push(n as f64 / l.as_secs_f64());
                ours_cpu.push(cpu as f64 / n as f64);
            }
        }
    });
    println!(
        "echo throughput, {n} pipelined JSON messages, median of {rounds} alternating rounds [min..max]:"
    );
    let clients = [
        ("raw async-tungstenite", &raw, &raw_cpu),
        ("ws-lifecycle", &ours, &ours_cpu),
    ];
    for (name, v, cpu) in clients {
        if !v.is_empty() {
            let ((lo, hi), (clo, chi)) = (range(v), range(cpu));
            println!(
                "  {name:<21} : {:>10.0} msg/s [{lo:.0}..{hi:.0}]   client CPU {:>6.0} ns/echo [{clo:.0}..{chi:.0}]",
                median(v.clone()),
                median(cpu.clone())
            );
        }
    }
    if do_raw && do_ours {
        // Per round: each lifecycle round against the raw round just before it.
        let ratios: Vec<f64> = ours.iter().zip(&raw).map(|(l, r)| l / r).collect();
        let (lo, hi) = range(&ratios);
        println!(
            "  ratio (lifecycle/raw) : {:>10.3} [{lo:.3}..{hi:.3}] (medians: {:.3})",
            median(ratios.clone()),
            median(ours) / median(raw)
        );
    }
}

fn range(v: &[f64]) -> (f64, f64) {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}
