//! The lifecycle, played out on your machine in about ten seconds.
//!
//! ```text
//! cargo run --example demo
//! ```
//!
//! No arguments, no network: it starts an embedded broker on 127.0.0.1
//! (the same code as `examples/broker.rs`) behind a small TCP proxy that
//! can make the link half-dead, connects one client with short timings, and
//! plays a script: hello and ack, a few messages, a broker restart
//! (reconnect with backoff), a half-dead link (detected, reconnect), a clean
//! close. Every transition is printed as it happens.
//!
//! Session resumption (a resume token in the ack, a broker that replays
//! what the client missed) has an example of its own: `cargo run --example resume`.

#[path = "common/broker.rs"]
mod broker;
#[path = "common/proxy.rs"]
mod proxy;
#[path = "common/story.rs"]
mod story;

use std::net::SocketAddr;
use std::time::Instant;

use async_io::Timer;
use futures_lite::StreamExt;
use story::ms;
use ws_lifecycle::{Client, Config, SessionEvent, Status};

fn main() {
    story::main("demo", run());
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let stamp = story::stamp(Instant::now());

    let any: SocketAddr = "127.0.0.1:0".parse()?;
    let broker = broker::Broker::start(any, broker::Options::default())?;
    let broker_addr = broker.addr;
    let proxy = proxy::Proxy::start(broker_addr)?;
    println!(
        "{} broker on ws://{broker_addr}, client goes through a proxy at {}",
        stamp(),
        proxy.addr
    );

    let config = Config {
        connect_timeout: ms(1000),
        ack_timeout: ms(1000),
        ping_interval: ms(300),
        stale_after: ms(1200),
        backoff: vec![ms(250), ms(500), ms(1000)],
        jitter: 0.2,
        stable_after: ms(1000),
        close_grace: ms(500),
        ..Config::default()
    };
    let (client, mut events) = Client::builder(proxy.url())
        // The broker is local: a developer's http_proxy must not apply.
        .no_proxy()
        .config(config)
        .ack_type("hello_ack")
        .spawn()?;

    // Print every event as it happens.
    let printer = smol::spawn(async move {
        while let Some(event) = events.next().await {
            let line = match event {
                SessionEvent::Status {
                    from,
                    to,
                    cause,
                    attempt,
                } => {
                    format!("{from:?} → {to:?}  ({cause}, attempt {attempt})")
                }
                SessionEvent::Acked { attempt, ack } => {
                    format!("    ack of attempt {attempt}: {ack}")
                }
                SessionEvent::Message(v) => format!("    message {v}"),
                SessionEvent::Disconnected {
                    attempt,
                    code,
                    reason,
                } => {
                    format!("    disconnected: attempt {attempt}, code {code}, {reason:?}")
                }
                SessionEvent::ReconnectScheduled { attempt, delay } => {
                    format!(
                        "    attempt {attempt} scheduled in {} ms",
                        delay.as_millis()
                    )
                }
                SessionEvent::ConnectFailed { attempt, error } => {
                    format!("    attempt {attempt} failed: {error}")
                }
                SessionEvent::Closed(reason) => format!("closed: {reason}"),
                SessionEvent::Upgraded(_) => continue,
                other => format!("    {other:?}"),
            };
            println!("{} {line}", stamp());
        }
    });

    println!("{} ── 1. hello, ack, a few messages", stamp());
    client.ready().await?;
    for n in 1..=3 {
        client.send(&serde_json::json!({"type": "greeting", "n": n}))?;
    }
    Timer::after(ms(500)).await;

    println!("{} ── 2. the broker restarts (down for 1.5 s)", stamp());
    broker.stop();
    Timer::after(ms(1500)).await;
    let broker = broker::Broker::start(broker_addr, broker::Options::default())?;
    client.wait_for(Status::Open).await;
    println!("{} ── back online after the restart", stamp());
    Timer::after(ms(1200)).await;

    println!(
        "{} ── 3. the link goes half-dead (the proxy swallows every byte, sockets stay open)",
        stamp()
    );
    proxy.set_blackhole(true);
    client.wait_for(Status::Reconnecting).await;
    proxy.set_blackhole(false);
    client.wait_for(Status::Open).await;
    client.send(&serde_json::json!({"type": "greeting", "n": "after the half-dead link"}))?;
    Timer::after(ms(500)).await;

    println!("{} ── 4. clean close", stamp());
    let closed = client.close().await;
    printer.await;
    Timer::after(ms(100)).await;
    let codes = broker
        .stats
        .closes
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default();
    println!(
        "{} done: {}; the broker received close frames {codes:?}; {} messages unsent",
        stamp(),
        closed.reason,
        closed.unsent.len()
    );
    Ok(())
}
