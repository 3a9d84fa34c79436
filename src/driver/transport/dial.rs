//! Dialing a host: resolve its name off the executor, then race its
//! addresses the Happy Eyeballs way (RFC 8305). The connect deadline is the
//! core's: dropping the future cancels every attempt still running.
//!
//! - Resolution runs on smol's blocking pool (`getaddrinfo`), or through an
//!   injected resolver (tests). An IP literal is not resolved.
//! - The addresses are sorted by [`interleave`] (§4): families alternate,
//!   starting with the family of the first answer.
//! - Attempts start one [`ATTEMPT_DELAY`] (250 ms, §5) apart, or at once
//!   when one fails; several run side by side. The first to connect wins;
//!   the others are dropped, which closes their sockets.
//! - When every address failed, [`ConnectError::Tcp`] lists each address
//!   with its error, in the order tried.
//!
//! Not done: the Resolution Delay of §3 (the system resolver answers for
//! both families at once) and a delay adapted to measured round trips.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::{Async, Timer};

use super::error::ConnectError;

/// RFC 8305 §5, "Connection Attempt Delay": how long an attempt runs alone
/// before the next address is tried beside it (the RFC's recommended value).
pub(crate) const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// A resolver that stands in for the system's: host and port in, the
/// addresses (in preference order) out.
pub(crate) type ResolveFn = dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync;

/// How host names are resolved: the system's resolver (the default), or
/// one injected for tests.
#[derive(Clone, Default)]
pub(crate) struct Resolver(Option<Arc<ResolveFn>>);

impl Resolver {
    /// A resolver that asks `resolve` instead of the system.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn custom(resolve: Arc<ResolveFn>) -> Self {
        Resolver(Some(resolve))
    }

    /// The addresses of `host`: the system's answer comes from smol's
    /// blocking thread pool, so the executor never waits on `getaddrinfo`.
    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        match &self.0 {
            Some(resolve) => resolve(host, port),
            None => smol::net::resolve((host, port)).await,
        }
    }
}

/// A TCP connection to `host` (a name or an IP literal) on `port`: resolve,
/// interleave the families, race the addresses.
pub(crate) async fn tcp(
    host: &str,
    port: u16,
    resolver: &Resolver,
) -> Result<Async<TcpStream>, ConnectError> {
    let resolve_error = |source| ConnectError::Resolve {
        host: host.to_owned(),
        source,
    };
    let addrs = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => resolver.resolve(host, port).await.map_err(resolve_error)?,
    };
    if addrs.is_empty() {
        return Err(resolve_error(io::Error::new(
            io::ErrorKind::NotFound,
            "no addresses",
        )));
    }
    race(interleave(addrs), ATTEMPT_DELAY).await
}

/// RFC 8305 §4: the addresses with their families alternating (IPv6, IPv4,
/// IPv6, … or the other way round), starting with the family of the first
/// address; within a family the resolver's order is kept, and what is left
/// of the longer family comes last.
pub(crate) fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return addrs;
    };
    let first_v6 = first.is_ipv6();
    let (leading, other): (Vec<_>, Vec<_>) =
        addrs.into_iter().partition(|a| a.is_ipv6() == first_v6);
    let mut ordered = Vec::with_capacity(leading.len() + other.len());
    let (mut leading, mut other) = (leading.into_iter(), other.into_iter());
    loop {
        match (leading.next(), other.next()) {
            (None, None) => break,
            (a, b) => ordered.extend(a.into_iter().chain(b)),
        }
    }
    ordered
}

/// One address's connect in flight.
type Connecting = Pin<Box<dyn Future<Output = io::Result<Async<TcpStream>>> + Send>>;

/// Races `addrs` in order, starting one every `delay` or at once when an
/// attempt fails; the first connection wins.
pub(crate) async fn race(
    addrs: Vec<SocketAddr>,
    delay: Duration,
) -> Result<Async<TcpStream>, ConnectError> {
    if let [addr] = addrs[..] {
        // One address (an IP literal, most often): nothing to race.
        return Async::<TcpStream>::connect(addr)
            .await
            .map_err(|source| ConnectError::Tcp {
                attempts: vec![(addr, source)],
            });
    }
    let mut race = Race {
        addrs,
        next: 0,
        running: Vec::new(),
        failed: Vec::new(),
        timer: Timer::never(),
        delay,
    };
    futures_lite::future::poll_fn(|cx| race.poll(cx)).await
}

/// The state of one race: which address starts next, those running, those
/// that failed, and when the next one starts anyway.
struct Race {
    addrs: Vec<SocketAddr>,
    next: usize,
    /// The attempts in flight, with their index in `addrs`.
    running: Vec<(usize, Connecting)>,
    /// The attempts that failed, with their index in `addrs`.
    failed: Vec<(usize, io::Error)>,
    /// Fires `delay` after the last attempt started.
    timer: Timer,
    delay: Duration,
}

impl Race {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<Async<TcpStream>, ConnectError>> {
        loop {
            // Nothing running (the start, or every attempt failed) or a
            // failure just now: the next address starts at once.
            let mut start_now = self.running.is_empty();
            let mut i = 0;
            while i < self.running.len() {
                match self.running[i].1.as_mut().poll(cx) {
                    Poll::Pending => i += 1,
                    Poll::Ready(Ok(stream)) => {
                        // The winner; the losers are closed here.
                        self.running.clear();
                        return Poll::Ready(Ok(stream));
                    }
                    Poll::Ready(Err(e)) => {
                        let (index, _) = self.running.swap_remove(i);
                        self.failed.push((index, e));
                        start_now = true;
                    }
                }
            }
            if self.next < self.addrs.len() {
                if start_now || Pin::new(&mut self.timer).poll(cx).is_ready() {
                    self.start_next();
                    continue;
                }
            } else if self.running.is_empty() {
                return Poll::Ready(Err(self.all_failed()));
            }
            return Poll::Pending;
        }
    }

    fn start_next(&mut self) {
        let index = self.next;
        self.next += 1;
        let addr = self.addrs[index];
        self.running
            .push((index, Box::pin(Async::<TcpStream>::connect(addr))));
        self.timer.set_after(self.delay);
    }

    /// Every address's failure, in the order the addresses were tried.
    fn all_failed(&mut self) -> ConnectError {
        let mut failed = std::mem::take(&mut self.failed);
        failed.sort_by_key(|(index, _)| *index);
        ConnectError::Tcp {
            attempts: failed
                .into_iter()
                .map(|(index, e)| (self.addrs[index], e))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Instant;

    fn v4(last: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, last], port))
    }

    fn v6(last: u16, port: u16) -> SocketAddr {
        SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, last], port))
    }

    #[test]
    fn families_alternate_starting_with_the_first_answer() {
        let (a6, b6, c6) = (v6(1, 80), v6(2, 80), v6(3, 80));
        let (a4, b4) = (v4(1, 80), v4(2, 80));
        // IPv6 first: v6, v4, v6, v4, then the rest of v6.
        assert_eq!(
            interleave(vec![a6, b6, c6, a4, b4]),
            vec![a6, a4, b6, b4, c6]
        );
        // IPv4 first: the order starts with v4 even when v6 is there.
        assert_eq!(
            interleave(vec![a4, a6, b6, c6, b4]),
            vec![a4, a6, b4, b6, c6]
        );
        // Already alternating: unchanged.
        assert_eq!(interleave(vec![a6, a4, b6, b4]), vec![a6, a4, b6, b4]);
    }

    #[test]
    fn one_family_keeps_the_resolver_order() {
        let v4s = vec![v4(3, 1), v4(1, 1), v4(2, 1)];
        assert_eq!(interleave(v4s.clone()), v4s);
        let v6s = vec![v6(9, 1), v6(1, 1)];
        assert_eq!(interleave(v6s.clone()), v6s);
        assert_eq!(interleave(Vec::new()), Vec::<SocketAddr>::new());
    }

    /// A loopback port nobody listens on (bound, then released): refused.
    fn refused_addr() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    }

    #[test]
    fn when_all_fail_the_error_lists_every_address_in_order() {
        let (a, b, c) = (refused_addr(), refused_addr(), refused_addr());
        let error = smol::block_on(race(vec![a, b, c], Duration::from_millis(20))).unwrap_err();
        let ConnectError::Tcp { attempts } = &error else {
            panic!("expected Tcp, got {error:?}");
        };
        let tried: Vec<SocketAddr> = attempts.iter().map(|(addr, _)| *addr).collect();
        assert_eq!(tried, vec![a, b, c]);
        assert!(
            attempts
                .iter()
                .all(|(_, e)| e.kind() == io::ErrorKind::ConnectionRefused),
            "{attempts:?}"
        );
        let text = error.to_string();
        for addr in [a, b, c] {
            assert!(text.contains(&addr.to_string()), "{text}");
        }
    }

    #[test]
    fn a_failed_attempt_starts_the_next_address_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let working = listener.local_addr().unwrap();
        let start = Instant::now();
        // An attempt delay far beyond the test: only the refusal can have
        // started the second address.
        let stream = smol::block_on(race(
            vec![refused_addr(), working],
            Duration::from_secs(3600),
        ))
        .unwrap();
        assert_eq!(stream.get_ref().peer_addr().unwrap(), working);
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn an_ip_literal_is_not_resolved() {
        let resolver = Resolver::custom(Arc::new(|_, _| panic!("resolved an IP literal")));
        let error = smol::block_on(tcp("127.0.0.1", refused_addr().port(), &resolver)).unwrap_err();
        assert!(matches!(&error, ConnectError::Tcp { attempts } if attempts.len() == 1));
    }

    #[test]
    fn a_name_without_addresses_is_a_resolve_error() {
        let resolver = Resolver::custom(Arc::new(|_, _| Ok(Vec::new())));
        let error = smol::block_on(tcp("broker.test", 80, &resolver)).unwrap_err();
        assert!(
            matches!(&error, ConnectError::Resolve { host, .. } if host == "broker.test"),
            "{error:?}"
        );
    }
}
