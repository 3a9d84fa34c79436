//! Happy Eyeballs (RFC 8305) on real sockets, all on 127.0.0.1: a name
//! whose first address is blackholed and whose second is the broker opens
//! on attempt 1, long before the connect deadline, and the blackholed
//! attempt is dropped; a name whose addresses all refuse reports each one.
//! The names resolve through the builder's injected (doc-hidden) resolver.

#[path = "../examples/common/broker.rs"]
mod broker;
mod driver_support;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::json;
use socket2::{Domain, Socket, Type};
use ws_lifecycle::{Client, Config, Status};

use broker::{Broker, Options};
use driver_support::*;

/// A listener on 127.0.0.1 that never accepts, its accept queue full: the
/// kernel drops further SYNs, so a connect to it hangs (it is retried for
/// minutes) instead of being refused.
struct Blackhole {
    addr: SocketAddr,
    _listener: Socket,
    _queued: Vec<TcpStream>,
}

/// Listens with a backlog of 0 and connects until a connect hangs: the
/// connections that completed fill the accept queue and are never
/// accepted. On Linux one fills it; the loop does not rely on that.
fn blackhole() -> Blackhole {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener.bind(&any_port().into()).unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let mut queued = Vec::new();
    for _ in 0..16 {
        match TcpStream::connect_timeout(&addr, ms(300)) {
            Ok(stream) => queued.push(stream),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Blackhole {
                    addr,
                    _listener: listener,
                    _queued: queued,
                };
            }
            Err(e) => panic!("filling the accept queue of {addr}: {e}"),
        }
    }
    panic!("{addr} accepted 16 connections into a backlog of 0: connects do not hang here")
}

/// How many sockets on this machine are in SYN_SENT towards `addr`
/// (`/proc/net/tcp`), i.e. connects to it still in flight.
#[cfg(target_os = "linux")]
fn syn_sent_to(addr: SocketAddr) -> usize {
    let SocketAddr::V4(v4) = addr else {
        panic!("IPv4 only")
    };
    // The kernel prints the address as the hex of its in-memory u32.
    let remote = format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(v4.ip().octets()),
        v4.port()
    );
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(2) == Some(&remote.as_str()) && fields.get(3) == Some(&"02")
        })
        .count()
}

#[cfg(target_os = "linux")]
#[test]
fn the_blackhole_holds_connects_in_syn_sent() {
    let hole = blackhole();
    assert_eq!(syn_sent_to(hole.addr), 0);
    let probe = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    probe.set_nonblocking(true).unwrap();
    let _ = probe.connect(&hole.addr.into()); // EINPROGRESS
    std::thread::sleep(ms(300));
    assert_eq!(syn_sent_to(hole.addr), 1, "the connect did not hang");
    drop(probe);
    assert_eq!(syn_sent_to(hole.addr), 0);
}

#[test]
fn a_blackholed_first_address_does_not_eat_the_deadline() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let hole = blackhole();
        let (blackholed, working) = (hole.addr, broker.addr);
        let config = Config {
            connect_timeout: Duration::from_secs(10),
            ..fast_config()
        };
        let builder = Client::builder(format!("ws://broker.test:{}/ws", working.port()))
            .config(config)
            .resolver(move |host, _port| {
                assert_eq!(host, "broker.test");
                Ok(vec![blackholed, working])
            });
        let started = Instant::now();
        let (client, mut w) = spawn_watched(builder);
        let (_, attempt) = w.status(Status::Open).await;
        let took = started.elapsed();
        assert_eq!(attempt, 1, "seen:\n  {}", w.history());
        // 250 ms for the blackholed address alone, then the broker; the
        // deadline is 10 s away.
        assert!(took < Duration::from_secs(3), "Open after {took:?}");
        #[cfg(target_os = "linux")]
        assert_eq!(
            syn_sent_to(blackholed),
            0,
            "the blackholed attempt was not dropped"
        );
        client.send(&json!({ "n": 1 })).unwrap();
        assert_eq!(w.message().await["data"]["n"], 1);
        close_and_end(&client, &mut w).await;
        assert_eq!(
            broker
                .stats
                .connections
                .load(std::sync::atomic::Ordering::SeqCst),
            1
        );
    });
}

#[test]
fn every_refused_address_is_in_the_connect_error() {
    run(async {
        let a = free_addr();
        let b = std::iter::repeat_with(free_addr).find(|b| *b != a).unwrap();
        let builder = Client::builder(format!("ws://broker.test:{}/ws", a.port()))
            .config(fast_config())
            .resolver(move |_, _| Ok(vec![a, b]));
        let (client, mut w) = spawn_watched(builder);
        let (attempt, error) = w.connect_failed().await;
        assert_eq!(attempt, 1);
        let (at_a, at_b) = (error.find(&a.to_string()), error.find(&b.to_string()));
        assert!(
            matches!((at_a, at_b), (Some(x), Some(y)) if x < y),
            "both addresses, in order: {error}"
        );
        close_and_end(&client, &mut w).await;
    });
}
