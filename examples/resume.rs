//! Session resumption end to end, in about three seconds.
//!
//! ```text
//! cargo run --example resume
//! ```
//!
//! An embedded broker keeps resumable sessions (`Options::resume`): its ack
//! hands out a resume token and every frame it sends is numbered (`seq`).
//! The client's hello carries the token of the last ack
//! ([`HelloContext::previous_ack`](ws_lifecycle::HelloContext)) and the last
//! `seq` it saw; its after-ack frame resubscribes. A publisher keeps
//! publishing while the broker is killed and restarted (its journal, like a
//! durable store, survives); after the reconnect the broker replays what the
//! client missed, and the example checks that every message arrived once,
//! in order.

#[path = "common/broker.rs"]
mod broker;
#[path = "common/story.rs"]
mod story;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_io::Timer;
use futures_lite::StreamExt;
use serde_json::json;
use story::ms;
use ws_lifecycle::{Client, Config, SessionEvent, Status};

/// Messages the publisher sends.
const MESSAGES: u64 = 20;

fn main() {
    story::main("resume", run());
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let stamp = story::stamp(Instant::now());

    let journal = Arc::new(broker::Journal::default());
    let options = broker::Options {
        resume: Some(journal.clone()),
        ..broker::Options::default()
    };
    let any: SocketAddr = "127.0.0.1:0".parse()?;
    let broker = broker::Broker::start(any, options.clone())?;
    let addr = broker.addr;
    println!("{} broker on ws://{addr} keeps resumable sessions", stamp());

    // The last `seq` the application processed; the next hello carries it.
    let seen = Arc::new(AtomicU64::new(0));
    let last_seq = seen.clone();
    let config = Config {
        backoff: vec![ms(200), ms(400)],
        jitter: 0.2,
        ..Config::default()
    };
    let (client, mut events) = Client::builder(broker.url())
        // The broker is local: a developer's http_proxy must not apply.
        .no_proxy()
        .config(config)
        .hello(move |ctx| {
            let mut hello = json!({"type": "hello"});
            // The resume token of the latest ack, and where we are.
            if let Some(token) = ctx.previous_ack.as_ref().map(|ack| ack["resume"].clone()) {
                hello["resume"] = token;
                hello["last_seq"] = last_seq.load(Ordering::SeqCst).into();
            }
            async move { Ok::<_, std::io::Error>(hello.to_string()) }
        })
        // Resubscribe right after every ack, before anything else is sent.
        .after_ack(|ctx, _ack| {
            [json!({"type": "subscribe", "topic": "ticks", "attempt": ctx.attempt})]
        })
        .spawn()?;

    // The application: processes numbered messages in order. A replay may
    // repeat what arrived just before a hello was built; `seq` tells.
    let consumer = smol::spawn(async move {
        let mut received = Vec::new();
        let mut repeated = 0;
        while let Some(event) = events.next().await {
            match event {
                SessionEvent::Acked { attempt, ack } => {
                    println!("{} acked attempt {attempt}: {ack}", stamp())
                }
                SessionEvent::Status { from, to, .. } if to != Status::Open => {
                    println!("{} {from:?} → {to:?}", stamp())
                }
                SessionEvent::Message(m) if m["type"] == "event" => {
                    let seq = m["seq"].as_u64().unwrap_or(0);
                    if seq <= seen.load(Ordering::SeqCst) {
                        repeated += 1;
                        continue;
                    }
                    match m["data"]["n"].as_u64() {
                        Some(n) => {
                            println!("{}     message seq {seq}: n = {n}", stamp());
                            received.push(n);
                        }
                        None => println!("{}     message seq {seq}: {}", stamp(), m["data"]),
                    }
                    seen.store(seq, Ordering::SeqCst);
                    if received.len() as u64 == MESSAGES {
                        break;
                    }
                }
                _ => {}
            }
        }
        (received, repeated)
    });

    client.ready().await?;
    let token = client
        .last_ack()
        .and_then(|ack| ack["resume"].as_str().map(str::to_owned))
        .ok_or("the ack carried no resume token")?;

    // The publisher: one message every 60 ms, whatever happens to the broker.
    let publisher = {
        let journal = journal.clone();
        smol::spawn(async move {
            for n in 1..=MESSAGES {
                journal.publish(&token, json!({ "n": n }));
                Timer::after(ms(60)).await;
            }
        })
    };

    Timer::after(ms(400)).await;
    println!("{} ── the broker is killed (down for 600 ms)", stamp());
    broker.stop();
    Timer::after(ms(600)).await;
    let broker = broker::Broker::start(addr, options)?;
    println!("{} ── the broker is back", stamp());
    client.wait_for(Status::Open).await;

    publisher.await;
    let (received, repeated) = consumer.await;
    let resumed = client.last_ack().is_some_and(|ack| ack["resumed"] == true);
    client.close().await;
    broker.stop();

    let expected: Vec<u64> = (1..=MESSAGES).collect();
    if received != expected || !resumed {
        return Err(format!("lost or reordered: got {received:?} (resumed: {resumed})").into());
    }
    println!(
        "{} nothing was lost: all {MESSAGES} messages arrived once, in order, across the \
         restart ({repeated} repeated by the replay were skipped by seq)",
        stamp()
    );
    Ok(())
}
