//! Soak: 1000 reconnect cycles against a broker that acks every hello and
//! then closes with 1012 ("service restart", retried by default), with a
//! few-millisecond backoff. Open file descriptors, threads, resident memory,
//! the live heap and the session's own buffers must be flat from cycle 100
//! to cycle 1000.
//!
//! File descriptors, threads and RSS belong to the process, so this test has
//! a binary of its own and is its only test. `cargo test --test soak --
//! --nocapture` prints the figures.
//!
//! Each sample is taken at the same point of a cycle: the broker holds the
//! ack of connection 100 (and 1000) until the sample is taken, after every
//! earlier connection of the broker has ended, so the session is in
//! AwaitingAck with exactly one socket, and the figures cannot depend on
//! where a cycle happened to be.

mod driver_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_io::Async;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use futures_lite::{StreamExt, future};
use smol::channel::{Receiver, Sender};
use ws_lifecycle::{Client, CloseReason, Config, SendErrorKind, Sent, SessionEvent};

use driver_support::{ms, wait_until, within, ws_url};

// ── the live heap, counted ─────────────────────────────────────────────────

/// Bytes allocated and not yet freed, by every thread of this binary.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: every call is forwarded unchanged to `System`; only a counter is
// updated beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ── process figures ────────────────────────────────────────────────────────

const CYCLES: usize = 1000;
const FIRST_SAMPLE: usize = 100;

/// The process's figures at one point of a cycle.
#[derive(Debug)]
struct Sample {
    cycle: usize,
    fds: usize,
    threads: usize,
    rss_kib: u64,
    heap_bytes: isize,
    buffers: Vec<(&'static str, usize)>,
}

/// A `kB` or count field of /proc/self/status.
fn status_field(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /proc/self/status"))
}

fn sample(cycle: usize, client: &Client) -> Sample {
    Sample {
        cycle,
        fds: std::fs::read_dir("/proc/self/fd")
            .expect("/proc/self/fd")
            .count(),
        threads: status_field("Threads") as usize,
        rss_kib: status_field("VmRSS"),
        heap_bytes: LIVE.load(Ordering::Relaxed),
        buffers: client.buffer_capacities(),
    }
}

// ── the broker: ack, then close 1012 ───────────────────────────────────────

/// Where the broker holds an ack for a sample.
struct Gate {
    /// The broker sends the connection's number when it holds its ack.
    held: Sender<usize>,
    /// The test lets it go on.
    release: Receiver<()>,
}

/// Decrements the count of live connections when the handler ends (after
/// its socket is dropped: it is declared first, so dropped last).
struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Accepts connections (numbered from 1 in order: the session makes one at
/// a time), acks each hello, then closes with 1012 and reads until the
/// client's answer ends the connection. Holds the ack of the connections in
/// `hold_at` until the test releases it.
fn start_broker(
    hold_at: [usize; 2],
    gate: Gate,
    live: Arc<AtomicUsize>,
) -> (SocketAddr, smol::Task<()>) {
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
    let addr = listener.get_ref().local_addr().unwrap();
    let gate = Arc::new(gate);
    let task = smol::spawn(async move {
        let mut conns: Vec<smol::Task<()>> = Vec::new();
        let mut n = 0;
        while let Ok((stream, _)) = listener.accept().await {
            n += 1;
            conns.retain(|t| !t.is_finished());
            live.fetch_add(1, Ordering::SeqCst);
            let guard = Live(live.clone());
            let hold = hold_at.contains(&n).then(|| gate.clone());
            conns.push(smol::spawn(async move {
                let _guard = guard;
                let Ok(mut ws) = async_tungstenite::accept_async(stream).await else {
                    return;
                };
                match ws.next().await {
                    Some(Ok(Message::Text(_))) => {}
                    _ => return,
                }
                if let Some(gate) = hold {
                    gate.held.send(n).await.unwrap();
                    gate.release.recv().await.unwrap();
                }
                let close = CloseFrame {
                    code: 1012.into(),
                    reason: "restart".into(),
                };
                let answered = async {
                    ws.send(Message::text(r#"{"type":"hello_ack"}"#)).await?;
                    ws.send(Message::Close(Some(close))).await
                };
                if answered.await.is_err() {
                    return;
                }
                while let Some(Ok(_)) = ws.next().await {}
            }));
        }
    });
    (addr, task)
}

// ── the soak ───────────────────────────────────────────────────────────────

enum Next {
    Event(Option<SessionEvent>),
    Held(usize),
}

#[test]
fn a_thousand_reconnect_cycles_leave_fds_threads_memory_and_buffers_flat() {
    smol::block_on(within(Duration::from_secs(150), async {
        let live = Arc::new(AtomicUsize::new(0));
        let (held_tx, held_rx) = smol::channel::bounded(1);
        let (release_tx, release_rx) = smol::channel::bounded(1);
        let gate = Gate {
            held: held_tx,
            release: release_rx,
        };
        let (addr, broker) = start_broker([FIRST_SAMPLE, CYCLES], gate, live.clone());
        let config = Config {
            // The broker acks and closes at once, so no connection is ever
            // stable and the last step repeats: a 2 ms backoff throughout.
            backoff: vec![ms(2)],
            jitter: 0.0,
            min_delay: ms(1),
            connect_timeout: Duration::from_secs(5),
            ack_timeout: Duration::from_secs(30),
            ..Config::default()
        };
        let (client, mut events, session) = Client::builder(ws_url(addr))
            .no_proxy()
            .config(config)
            .build()
            .unwrap();
        let session = smol::spawn(session);

        let started = Instant::now();
        let mut samples = Vec::new();
        let (mut cycles, mut accepted, mut handed_back) = (0usize, 0u64, 0u64);
        let mut connect_failures = 0;
        let mut reasons = std::collections::BTreeMap::new();
        while cycles < CYCLES {
            let next = within(
                Duration::from_secs(10),
                future::or(async { Next::Event(events.next().await) }, async {
                    Next::Held(held_rx.recv().await.unwrap())
                }),
            )
            .await;
            match next {
                Next::Held(n) => {
                    // The session waits for this connection's ack; every
                    // earlier connection must be gone on the broker's side
                    // too before the figures are read.
                    assert_eq!(client.attempt(), n as u64, "one connection per attempt");
                    wait_until("the broker's earlier connections to end", || {
                        live.load(Ordering::SeqCst) == 1
                    })
                    .await;
                    samples.push(sample(n, &client));
                    release_tx.send(()).await.unwrap();
                }
                Next::Event(Some(SessionEvent::Acked { .. })) => {
                    cycles += 1;
                    // Two messages per cycle: the close that follows the
                    // ack leaves some written, some handed back.
                    for i in 0..2 {
                        match client.send_text(format!(r#"{{"cycle":{cycles},"i":{i}}}"#)) {
                            Ok(Sent::Accepted) => accepted += 1,
                            Err(e) if matches!(e.kind, SendErrorKind::NotOpen(_)) => {}
                            other => panic!("unexpected send result {other:?}"),
                        }
                    }
                }
                Next::Event(Some(SessionEvent::Unsent(back))) => handed_back += back.len() as u64,
                Next::Event(Some(SessionEvent::ConnectFailed { .. })) => connect_failures += 1,
                Next::Event(Some(SessionEvent::Disconnected { code, reason, .. })) => {
                    *reasons.entry((code, reason)).or_insert(0usize) += 1;
                }
                Next::Event(Some(SessionEvent::Closed(c))) => panic!("the session ended: {c:?}"),
                Next::Event(Some(_)) => {}
                Next::Event(None) => panic!("the event stream ended"),
            }
        }
        let took = started.elapsed();

        let outcome = client.close().await;
        assert_eq!(outcome.reason, CloseReason::Requested);
        // The rest of the events (the last Unsent among them), to the end.
        while let Some(e) = within(Duration::from_secs(10), events.next()).await {
            if let SessionEvent::Unsent(back) = e {
                handed_back += back.len() as u64;
            }
        }
        within(Duration::from_secs(10), session).await;
        handed_back += outcome.unsent.len() as u64;
        let written = client.written();
        broker.cancel().await;

        println!(
            "soak: {cycles} cycles in {took:?} ({:.2} ms a cycle); {connect_failures} connect \
             failures; disconnects {reasons:?}",
            took.as_secs_f64() * 1000.0 / cycles as f64
        );
        println!(
            "soak: messages accepted {accepted} = written {written} + handed back {handed_back}"
        );
        for s in &samples {
            println!(
                "soak: cycle {:>4}: fds {}, threads {}, VmRSS {} KiB, live heap {} bytes, \
                 session buffers {:?}",
                s.cycle, s.fds, s.threads, s.rss_kib, s.heap_bytes, s.buffers
            );
        }

        assert_eq!(
            accepted,
            written + handed_back,
            "written + handed back = accepted"
        );
        assert!(accepted > 0, "some sends were accepted");
        let [early, late] = &samples[..] else {
            panic!("expected two samples, got {samples:?}");
        };
        assert_eq!((early.cycle, late.cycle), (FIRST_SAMPLE, CYCLES));
        assert!(
            late.fds.abs_diff(early.fds) <= 2,
            "open fds moved: {} at cycle {} → {} at cycle {}",
            early.fds,
            early.cycle,
            late.fds,
            late.cycle
        );
        assert!(
            late.threads <= early.threads + 2,
            "threads grew: {} → {}",
            early.threads,
            late.threads
        );
        assert!(
            late.rss_kib <= early.rss_kib + 4096,
            "VmRSS grew by more than 4 MiB: {} KiB → {} KiB",
            early.rss_kib,
            late.rss_kib
        );
        // 900 cycles: a leak of 300 bytes a cycle would show.
        assert!(
            late.heap_bytes <= early.heap_bytes + (256 << 10),
            "the live heap grew by {} bytes over {} cycles",
            late.heap_bytes - early.heap_bytes,
            late.cycle - early.cycle
        );
        // A capacity only grows; anything held per cycle (two messages a
        // cycle) would have pushed one far past this.
        for ((name, before), (_, after)) in early.buffers.iter().zip(&late.buffers) {
            assert!(
                *after <= (2 * before).max(64),
                "the session's {name} buffer grew from {before} to {after}"
            );
        }
    }));
}
