//! A small standalone broker for trying the crate out and for load tests.
//!
//! ```text
//! cargo run --release --example broker [--ping-ms MS] [ADDR]     (default 127.0.0.1:9001)
//! ```
//!
//! Answers `{"type":"hello"}` with `{"type":"hello_ack"}`, echoes every other
//! JSON frame as `{"type":"echo","data":<frame>}`, answers pings. With
//! `--ping-ms MS` it also pings every client every MS milliseconds (default
//! off), and prints the pings sent and received every 10 s. Listens
//! with a 16,384-connection backlog. Raises its open-files limit to the hard limit.

#[path = "common/broker.rs"]
mod broker;
#[path = "common/rlimit.rs"]
mod rlimit;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn main() {
    let mut addr = "127.0.0.1:9001".to_owned();
    let mut options = broker::Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--ping-ms" => match args.next().and_then(|v| v.parse::<u64>().ok()) {
                Some(ms) if ms > 0 => options.ping_every = Some(Duration::from_millis(ms)),
                _ => {
                    eprintln!("broker: --ping-ms needs a positive number of milliseconds");
                    std::process::exit(2);
                }
            },
            other => addr = other.to_owned(),
        }
    }
    let addr: SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("broker: bad address: {e}");
            std::process::exit(2);
        }
    };
    if let Some((from, to)) = rlimit::raise_nofile() {
        eprintln!("broker: raised the open-files limit from {from} to {to}");
    }
    let listener = match broker::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("broker: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("broker: listening on ws://{addr}/");
    let stats = Arc::new(broker::Stats::default());
    if options.ping_every.is_some() {
        let stats = stats.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(10));
                eprintln!(
                    "broker: {} open, pings sent {}, received {}",
                    stats.open.load(Ordering::Relaxed),
                    stats.pings_sent.load(Ordering::Relaxed),
                    stats.pings_received.load(Ordering::Relaxed)
                );
            }
        });
    }
    smol::block_on(broker::serve(listener, Arc::new(options), stats));
}
