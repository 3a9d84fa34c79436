//! A small standalone broker for trying the crate out and for load tests.
//!
//! ```text
//! cargo run --release --example broker [ADDR]     (default 127.0.0.1:9001)
//! ```
//!
//! Answers `{"type":"hello"}` with `{"type":"hello_ack"}`, echoes every other
//! JSON frame as `{"type":"echo","data":<frame>}`, answers pings. Listens
//! with a 16,384-connection backlog. Raises its open-files limit to the hard limit.

#[path = "common/broker.rs"]
mod broker;
#[path = "common/rlimit.rs"]
mod rlimit;

use std::net::SocketAddr;
use std::sync::Arc;

fn main() {
    let addr: SocketAddr = match std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("127.0.0.1:9001")
        .parse()
    {
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
    smol::block_on(broker::serve(
        listener,
        Arc::new(broker::Options::default()),
        stats,
    ));
}
