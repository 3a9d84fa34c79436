//! A fault proxy and a recording broker for the chaos tests
//! (`tests/chaos.rs`).
//!
//! The proxy stands between the client and the broker and treats the n-th
//! connection it accepts by the n-th [`Plan`] of its schedule (connections
//! past the schedule are forwarded untouched). A session makes one
//! connection per attempt, one attempt after the other, so connection n is
//! attempt n. A plan shapes the bytes (delayed, or split at random byte
//! boundaries), may put garbage right after the broker's 101 answer, and
//! says how the connection ends: blackholed, reset, closed (FIN) after a
//! number of the client's bytes, closed by the broker with a close frame in
//! the middle of the client's send burst, or never upgraded at all. Every
//! end is certain: the proxy or the broker enforces it, or the client's own
//! deadlines do (stale link, ack timeout, connect timeout).
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use futures_lite::{AsyncReadExt, AsyncWriteExt, StreamExt, future};
use futures_util::SinkExt;

/// How the proxy forwards a connection's bytes (both ways).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shaping {
    /// As they come.
    Plain,
    /// Every chunk read waits this many milliseconds before it goes on.
    Delay { ms: u8 },
    /// Every chunk read goes on in pieces of 1 to 16 bytes, drawn from a
    /// generator seeded with `seed`, each written on its own.
    Split { seed: u64 },
}

/// How a connection ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// After `after` of the client's bytes (the upgrade request included),
    /// nothing more is read or forwarded either way, so the client's
    /// socket fills up (a half-dead link, as a NAT that dropped the flow
    /// makes); both sockets stay open for [`BLACKHOLE_HOLD`], then are
    /// reset.
    Blackhole { after: usize },
    /// After `after` of the client's bytes, both connections are reset
    /// (RST: SO_LINGER 0).
    Reset { after: usize },
    /// After `after` of the client's bytes, both connections are closed
    /// (FIN).
    Fin { after: usize },
    /// The broker sends a close frame (1012) once it received `after` of the
    /// client's messages on this connection (0: right after the ack), in
    /// the middle of the client's send burst; it drops the connection if
    /// the client has not answered within a second.
    CloseFrame { after: usize },
    /// The proxy accepts the connection and never answers the upgrade
    /// (nothing is forwarded; no connection to the broker).
    SilentUpgrade,
}

impl End {
    fn after_bytes(&self) -> Option<usize> {
        match self {
            End::Blackhole { after } | End::Reset { after } | End::Fin { after } => Some(*after),
            End::CloseFrame { .. } | End::SilentUpgrade => None,
        }
    }
}

/// What the proxy (and the broker) do to one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub shaping: Shaping,
    /// Bytes put right after the broker's 101 answer (none when empty).
    pub garbage: Vec<u8>,
    pub end: End,
}

/// Counts a live connection until dropped.
struct Live(Arc<AtomicUsize>);

impl Live {
    fn new(count: &Arc<AtomicUsize>) -> Live {
        count.fetch_add(1, Ordering::SeqCst);
        Live(count.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

// ── the proxy ──────────────────────────────────────────────────────────────

/// How long a blackholed connection is held (twice the chaos tests'
/// `stale_after`: the client has given up on it by then).
pub const BLACKHOLE_HOLD: Duration = Duration::from_millis(1000);

/// The receive buffer of the proxy's client-side sockets, and the segment
/// size it announces: small, so a connection that stops being read fills
/// up soon and the client is left holding messages it could not write. (On
/// loopback the segments are 64 KiB and Linux sizes a new connection's send
/// buffer for ten of them: megabytes the kernel would take.)
const RECEIVE_BUFFER: usize = 8 << 10;
const SEGMENT: u32 = 536;

/// A running fault proxy; [`stop`](Self::stop) (or dropping it) ends every
/// connection.
pub struct FaultProxy {
    /// Where the client connects.
    pub addr: SocketAddr,
    /// Connections accepted so far.
    pub accepted: Arc<AtomicUsize>,
    /// Client connections not yet ended (their sockets not yet dropped).
    pub live: Arc<AtomicUsize>,
    task: smol::Task<()>,
}

impl FaultProxy {
    /// Forwards a free loopback port to `upstream`, connection n by
    /// `schedule[n - 1]`.
    pub fn start(upstream: SocketAddr, schedule: Vec<Plan>) -> FaultProxy {
        let listener = small_window_listener();
        let addr = listener.get_ref().local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let live = Arc::new(AtomicUsize::new(0));
        let task = smol::spawn({
            let (accepted, live) = (accepted.clone(), live.clone());
            async move {
                let mut conns: Vec<smol::Task<()>> = Vec::new();
                while let Ok((client, _)) = listener.accept().await {
                    let n = accepted.fetch_add(1, Ordering::SeqCst);
                    let plan = schedule.get(n).cloned().unwrap_or(Plan {
                        shaping: Shaping::Plain,
                        garbage: Vec::new(),
                        end: End::Fin { after: usize::MAX },
                    });
                    let guard = Live::new(&live);
                    conns.retain(|t| !t.is_finished());
                    conns.push(smol::spawn(async move {
                        let _guard = guard;
                        connection(client, upstream, plan).await;
                    }));
                }
            }
        });
        FaultProxy {
            addr,
            accepted,
            live,
            task,
        }
    }

    /// `ws://addr/ws`
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Stops listening and drops every connection; returns once they are
    /// gone.
    pub async fn stop(self) {
        self.task.cancel().await;
    }
}

/// A loopback listener whose connections have a small receive buffer and
/// small segments (set before `listen`, so they hold from the handshake on).
fn small_window_listener() -> Async<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(RECEIVE_BUFFER).unwrap();
    socket.set_tcp_mss(SEGMENT).unwrap();
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    socket.listen(128).unwrap();
    Async::new(TcpListener::from(socket)).unwrap()
}

/// How a pump ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Its source ended or a write failed.
    Gone,
    Blackhole,
    Reset,
    Fin,
}

async fn connection(client: Async<TcpStream>, upstream: SocketAddr, plan: Plan) {
    let _ = client.get_ref().set_nodelay(true);
    if plan.end == End::SilentUpgrade {
        // Read and drop the request (and whatever follows) until the
        // client goes.
        let mut sink = [0u8; 1024];
        while (&client).read(&mut sink).await.is_ok_and(|n| n > 0) {}
        return;
    }
    let Ok(server) = Async::<TcpStream>::connect(upstream).await else {
        return;
    };
    let _ = server.get_ref().set_nodelay(true);
    let up = pump(&client, &server, true, &plan);
    let down = pump(&server, &client, false, &plan);
    // When either side ends, both do, as a real connection would.
    let ended = future::or(up, down).await;
    if ended == Ended::Blackhole {
        // Neither side is read or written now. The fault itself: the
        // link stays silent for this long.
        Timer::after(BLACKHOLE_HOLD).await;
    }
    if matches!(ended, Ended::Blackhole | Ended::Reset) {
        for socket in [client.get_ref(), server.get_ref()] {
            let _ = socket2::SockRef::from(socket).set_linger(Some(Duration::ZERO));
        }
    }
}

/// Forwards `from` → `to` by the plan; `up` is the client's direction
/// (where the byte-counted ends apply); the other carries the garbage.
async fn pump(mut from: &Async<TcpStream>, to: &Async<TcpStream>, up: bool, plan: &Plan) -> Ended {
    let mut rng = match plan.shaping {
        Shaping::Split { seed } => fastrand::Rng::with_seed(seed ^ u64::from(up)),
        _ => fastrand::Rng::with_seed(0),
    };
    let limit = if up { plan.end.after_bytes() } else { None };
    // Down, with garbage: the 101 answer's head, gathered until complete.
    let mut head = (!up && !plan.garbage.is_empty()).then(Vec::new);
    let mut forwarded = 0usize;
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return Ended::Gone,
            Ok(n) => n,
        };
        let mut chunk = &buf[..n];
        let mut reached = false;
        if let Some(after) = limit {
            let room = after - forwarded;
            if chunk.len() >= room {
                chunk = &chunk[..room];
                reached = true;
            }
            forwarded += chunk.len();
        }
        let out: Vec<u8> = match head.as_mut() {
            None => chunk.to_vec(),
            Some(h) => {
                h.extend_from_slice(chunk);
                match h.windows(4).position(|w| w == b"\r\n\r\n") {
                    None => Vec::new(),
                    Some(at) => {
                        let mut out = h[..at + 4].to_vec();
                        out.extend_from_slice(&plan.garbage);
                        out.extend_from_slice(&h[at + 4..]);
                        head = None;
                        out
                    }
                }
            }
        };
        if write(to, &out, &plan.shaping, &mut rng).await.is_err() {
            return Ended::Gone;
        }
        if reached {
            return match plan.end {
                End::Blackhole { .. } => Ended::Blackhole,
                End::Reset { .. } => Ended::Reset,
                _ => Ended::Fin,
            };
        }
    }
}

async fn write(
    to: &Async<TcpStream>,
    mut bytes: &[u8],
    shaping: &Shaping,
    rng: &mut fastrand::Rng,
) -> std::io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut to = to;
    match shaping {
        Shaping::Plain => to.write_all(bytes).await,
        Shaping::Delay { ms } => {
            // The fault itself: the link is slow.
            Timer::after(Duration::from_millis(u64::from(*ms))).await;
            to.write_all(bytes).await
        }
        Shaping::Split { .. } => {
            while !bytes.is_empty() {
                let (piece, rest) = bytes.split_at(rng.usize(1..=16).min(bytes.len()));
                to.write_all(piece).await?;
                bytes = rest;
                // Let the reader see this piece alone, when it is quick.
                future::yield_now().await;
            }
            Ok(())
        }
    }
}

// ── the broker ─────────────────────────────────────────────────────────────

/// A broker that acks every hello (`{"type":"hello","attempt":N}`), records
/// every `{"seq":S}` message with its connection's attempt, and, for the
/// attempts in its `close_after` map, sends a close frame after that many
/// messages.
pub struct RecordingBroker {
    pub addr: SocketAddr,
    /// (attempt, seq) of every message received, in arrival order.
    pub received: Arc<Mutex<Vec<(u64, u64)>>>,
    /// Connections not yet ended.
    pub live: Arc<AtomicUsize>,
    /// What it could not make sense of (a hello without its attempt, a
    /// message without its number); a test asserts there is none.
    pub problems: Arc<Mutex<Vec<String>>>,
    task: smol::Task<()>,
}

impl RecordingBroker {
    pub fn start(close_after: HashMap<u64, usize>) -> RecordingBroker {
        let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
        let addr = listener.get_ref().local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let live = Arc::new(AtomicUsize::new(0));
        let problems = Arc::new(Mutex::new(Vec::new()));
        let close_after = Arc::new(close_after);
        let task = smol::spawn({
            let (received, live, problems) = (received.clone(), live.clone(), problems.clone());
            async move {
                let mut conns: Vec<smol::Task<()>> = Vec::new();
                while let Ok((stream, _)) = listener.accept().await {
                    let guard = Live::new(&live);
                    let (received, problems) = (received.clone(), problems.clone());
                    let close_after = close_after.clone();
                    conns.retain(|t| !t.is_finished());
                    conns.push(smol::spawn(async move {
                        let _guard = guard;
                        if let Err(problem) = serve(stream, &received, &close_after).await {
                            problems.lock().unwrap().push(problem);
                        }
                    }));
                }
            }
        });
        RecordingBroker {
            addr,
            received,
            live,
            problems,
            task,
        }
    }

    /// Stops listening and drops every connection; returns once they are
    /// gone.
    pub async fn stop(self) {
        self.task.cancel().await;
    }
}

async fn serve(
    stream: Async<TcpStream>,
    received: &Mutex<Vec<(u64, u64)>>,
    close_after: &HashMap<u64, usize>,
) -> Result<(), String> {
    let _ = stream.get_ref().set_nodelay(true);
    let Ok(mut ws) = async_tungstenite::accept_async(stream).await else {
        return Ok(());
    };
    let attempt = match ws.next().await {
        Some(Ok(Message::Text(t))) => serde_json::from_str::<serde_json::Value>(t.as_str())
            .ok()
            .and_then(|v| v["attempt"].as_u64())
            .ok_or_else(|| format!("not a hello with its attempt: {t}"))?,
        _ => return Ok(()),
    };
    if ws
        .send(Message::text(r#"{"type":"hello_ack"}"#))
        .await
        .is_err()
    {
        return Ok(());
    }
    let close_at = close_after.get(&attempt).copied();
    let mut count = 0;
    // Once the close frame is out: when the connection is dropped anyway.
    let mut give_up: Option<Instant> = None;
    loop {
        if close_at == Some(count) && give_up.is_none() {
            let frame = CloseFrame {
                code: 1012.into(),
                reason: "restart mid-burst".into(),
            };
            if ws.send(Message::Close(Some(frame))).await.is_err() {
                return Ok(());
            }
            give_up = Some(Instant::now() + Duration::from_secs(1));
        }
        let next = match give_up {
            None => ws.next().await,
            Some(at) => {
                future::or(ws.next(), async {
                    Timer::at(at).await;
                    None
                })
                .await
            }
        };
        match next {
            Some(Ok(Message::Text(t))) => {
                let seq = serde_json::from_str::<serde_json::Value>(t.as_str())
                    .ok()
                    .and_then(|v| v["seq"].as_u64())
                    .ok_or_else(|| format!("not a numbered message: {t}"))?;
                received.lock().unwrap().push((attempt, seq));
                count += 1;
            }
            Some(Ok(Message::Close(_))) => {
                // tungstenite queued the answer (if it is owed one).
                let _ = ws.flush().await;
                return Ok(());
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Ok(()),
        }
    }
}
