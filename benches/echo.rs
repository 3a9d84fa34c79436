//! Echo throughput of one session: N pipelined JSON messages and their N
//! echoes over loopback, through ws-lifecycle and through raw
//! async-tungstenite, alternating in the same run so machine drift hits both.
//!
//! ```text
//! cargo bench --bench echo                 # N = 20000, 7 rounds each
//! ECHO_N=50000 ECHO_ROUNDS=9 cargo bench --bench echo
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
        ..TransportConfig::default()
    }
}

fn load(seq: usize) -> serde_json::Value {
    serde_json::json!({"type": "load", "seq": seq})
}

async fn lifecycle_round(url: &str, n: usize) -> Duration {
    let (client, mut events, session) = Client::builder(url)
        // The broker is local: a developer's http_proxy must not apply.
        .no_proxy()
        .transport(transport())
        .build()
        .expect("valid builder");
    let run = async {
        client.ready().await.expect("ready");
        let start = Instant::now();
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
        let elapsed = start.elapsed();
        client.close().await;
        elapsed
    };
    let (elapsed, ()) = future::zip(run, session).await;
    elapsed
}

async fn raw_round(url: &str, n: usize) -> Duration {
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
    let start = Instant::now();
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
    start.elapsed()
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
    let (mut raw, mut ours) = (Vec::new(), Vec::new());
    smol::block_on(async {
        // Warm up both paths once.
        raw_round(&url, n / 10).await;
        lifecycle_round(&url, n / 10).await;
        for _ in 0..rounds {
            let r = raw_round(&url, n).await;
            let l = lifecycle_round(&url, n).await;
            raw.push(n as f64 / r.as_secs_f64());
            ours.push(n as f64 / l.as_secs_f64());
        }
    });
    let (r, l) = (median(raw), median(ours));
    println!(
        "echo throughput, {n} pipelined JSON messages, median of {rounds} alternating rounds:"
    );
    println!("  raw async-tungstenite : {r:>10.0} msg/s");
    println!("  ws-lifecycle          : {l:>10.0} msg/s");
    println!("  ratio (lifecycle/raw) : {:>10.3}", l / r);
}
