//! A small WebSocket broker for demos, load tests and integration tests,
//! written with async-tungstenite. It answers `{"type":"hello"}` with
//! `{"type":"hello_ack"}`, echoes every other JSON frame as
//! `{"type":"echo","data":<frame>}`, and answers pings (and, with
//! [`Options::ping_every`], pings every client itself). Test behaviours
//! (never ack, close after ack, garbage, …) are switched on by [`Options`].
//!
//! With [`Options::resume`] it keeps sessions in a [`Journal`] that outlives
//! a restart: its ack hands out a resume token, every frame it sends after
//! the ack is numbered (`{"type":"event","seq":N,"data":…}`) and kept, and a
//! hello that carries `"resume":TOKEN` and `"last_seq":N` gets everything
//! after `N` replayed.
//!
//! Shared by `examples/broker.rs`, `examples/demo.rs` and the tests (via
//! `#[path]`), so it is written once.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_io::Async;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use async_tungstenite::tungstenite::http::{HeaderMap, HeaderValue};
use async_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use futures_lite::{StreamExt, future};
use futures_util::SinkExt;
use smol::Task;

/// How the broker behaves. The default is a well-behaved echo broker.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Never answer the hello.
    pub never_ack: bool,
    /// Right after the ack, close with this code and reason.
    pub close_after_ack: Option<(u16, String)>,
    /// Right after the ack, send these raw frames.
    pub after_ack: Vec<Message>,
    /// Wait this long before acking.
    pub ack_delay: Option<Duration>,
    /// Record every upgrade request's headers in [`Stats::requests`].
    pub record_requests: bool,
    /// Select the first subprotocol the client offers
    /// (`Sec-WebSocket-Protocol`), echoing it in the upgrade response.
    pub echo_subprotocol: bool,
    /// Resumable sessions kept in this journal (shared by every broker
    /// started with it, so they survive a restart): the ack carries
    /// `"resume":TOKEN`, frames after the ack are numbered and replayed to
    /// a hello with that token and the last `seq` it saw.
    pub resume: Option<Arc<Journal>>,
    /// Ping every client this often (on a fixed beat from its upgrade),
    /// like brokers that keep their own side of the link alive; counted in
    /// [`Stats::pings_sent`].
    pub ping_every: Option<Duration>,
}

/// The resumable sessions of a broker, numbered messages and all. Like a
/// durable store, it outlives the broker processes that use it.
#[derive(Default)]
pub struct Journal {
    /// Per resume token, every frame sent after the ack, oldest first
    /// (`seq` is the index plus 1).
    sessions: Mutex<HashMap<String, Vec<String>>>,
    /// Notified on every publish, so live connections send at once.
    published: event_listener::Event,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("sessions", &self.sessions.lock().unwrap().len())
            .finish()
    }
}

impl Journal {
    /// Appends `data` to the session `token` as its next numbered frame
    /// (sent at once if it is connected, else replayed when it resumes);
    /// returns its `seq`, `None` for an unknown token.
    pub fn publish(&self, token: &str, data: serde_json::Value) -> Option<u64> {
        let mut sessions = self.sessions.lock().unwrap();
        let log = sessions.get_mut(token)?;
        let seq = log.len() as u64 + 1;
        let frame = serde_json::json!({"type": "event", "seq": seq, "data": data});
        log.push(frame.to_string());
        drop(sessions);
        self.published.notify(usize::MAX);
        Some(seq)
    }

    /// The session a hello asks for: its token and the last `seq` the
    /// client saw (a known `"resume"` token), or a new one. Returns (token,
    /// last seq seen, resumed).
    fn hello(&self, hello: &serde_json::Value) -> (String, u64, bool) {
        let mut sessions = self.sessions.lock().unwrap();
        if let Some(token) = hello.get("resume").and_then(|t| t.as_str()) {
            if let Some(log) = sessions.get(token) {
                let seen = hello.get("last_seq").and_then(|s| s.as_u64()).unwrap_or(0);
                return (token.to_owned(), seen.min(log.len() as u64), true);
            }
        }
        let token = format!("session-{}", sessions.len() + 1);
        sessions.insert(token.clone(), Vec::new());
        (token, 0, false)
    }

    /// The frames of `token` after `seq`.
    fn since(&self, token: &str, seq: u64) -> Vec<String> {
        let sessions = self.sessions.lock().unwrap();
        sessions
            .get(token)
            .map(|log| log.iter().skip(seq as usize).cloned().collect())
            .unwrap_or_default()
    }
}

/// What woke a connection's loop.
enum Wake<T> {
    Read(Option<T>),
    Published,
    Tick,
}

/// A resumable session on one connection: its token and the last `seq` sent.
struct Resumed {
    token: String,
    sent: u64,
}

/// What the broker saw, for assertions.
#[derive(Debug, Default)]
pub struct Stats {
    /// TCP connections accepted.
    pub connections: AtomicUsize,
    /// Hellos received.
    pub hellos: AtomicUsize,
    /// Close frames received from clients: (code, reason).
    pub closes: Mutex<Vec<(u16, String)>>,
    /// Text frames received (hellos included), in arrival order.
    pub texts: Mutex<Vec<String>>,
    /// Connections currently open.
    pub open: AtomicUsize,
    /// Upgrade request headers, in arrival order (only with
    /// [`Options::record_requests`]).
    pub requests: Mutex<Vec<HeaderMap>>,
    /// Pings sent by [`Options::ping_every`].
    pub pings_sent: AtomicUsize,
    /// Pings received from clients.
    pub pings_received: AtomicUsize,
}

/// Binds `addr` with SO_REUSEADDR (so a restart can take the same port at
/// once) and a large backlog (the std listener's 128 overflows when
/// thousands connect together).
pub fn bind(addr: SocketAddr) -> io::Result<Async<TcpListener>> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(16_384)?;
    Async::new(TcpListener::from(socket))
}

/// A running broker; dropping it (or [`Broker::stop`]) closes the listener
/// and every connection at once, like a killed process.
pub struct Broker {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it saw.
    pub stats: Arc<Stats>,
    task: Option<Task<()>>,
}

impl Broker {
    /// Starts a broker on `addr` (port 0 picks a free one) on smol's global executor.
    pub fn start(addr: SocketAddr, options: Options) -> io::Result<Broker> {
        let listener = bind(addr)?;
        let addr = listener.get_ref().local_addr()?;
        let stats = Arc::new(Stats::default());
        let task = smol::spawn(serve(listener, Arc::new(options), stats.clone()));
        Ok(Broker {
            addr,
            stats,
            task: Some(task),
        })
    }

    /// `ws://addr/ws`
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Stops listening and drops every connection without a close frame.
    pub fn stop(mut self) {
        self.task.take();
    }
}

/// Accepts forever; each connection runs as a task owned by this future,
/// so dropping it drops them all.
pub async fn serve(listener: Async<TcpListener>, options: Arc<Options>, stats: Arc<Stats>) {
    let mut conns: Vec<Task<()>> = Vec::new();
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(_) => {
                // EMFILE and friends: back off briefly instead of spinning.
                async_io::Timer::after(Duration::from_millis(10)).await;
                continue;
            }
        };
        stats.connections.fetch_add(1, Ordering::SeqCst);
        conns.retain(|t| !t.is_finished());
        conns.push(smol::spawn(handle(stream, options.clone(), stats.clone())));
    }
}

/// Small buffers: the broker holds thousands of idle connections in load tests.
pub fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

async fn handle(stream: Async<TcpStream>, options: Arc<Options>, stats: Arc<Stats>) {
    let _ = stream.get_ref().set_nodelay(true);
    // The signature is tungstenite's `Callback`; its error type is large.
    #[allow(clippy::result_large_err)]
    let on_request = |request: &Request, mut response: Response| {
        if options.record_requests {
            stats
                .requests
                .lock()
                .unwrap()
                .push(request.headers().clone());
        }
        if options.echo_subprotocol {
            let first = request
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|p| HeaderValue::from_str(p.trim()).ok());
            if let Some(protocol) = first {
                response
                    .headers_mut()
                    .insert("sec-websocket-protocol", protocol);
            }
        }
        Ok::<_, ErrorResponse>(response)
    };
    let Ok(mut ws) = async_tungstenite::accept_hdr_async_with_config(
        stream,
        on_request,
        Some(websocket_config()),
    )
    .await
    else {
        return;
    };
    stats.open.fetch_add(1, Ordering::SeqCst);
    let journal = options.resume.clone();
    let mut resumed: Option<Resumed> = None;
    let mut next_ping = options.ping_every.map(|every| Instant::now() + every);
    loop {
        // Listen before looking, so no publish in between is missed.
        let published = journal.as_ref().map(|j| j.published.listen());
        if let (Some(journal), Some(session)) = (&journal, &mut resumed) {
            let mut failed = false;
            for frame in journal.since(&session.token, session.sent) {
                if ws.send(Message::text(frame)).await.is_err() {
                    failed = true;
                    break;
                }
                session.sent += 1;
            }
            if failed {
                break;
            }
        }
        // A frame, a publish (resumable sessions) or our ping's beat.
        let read = async { Wake::Read(ws.next().await) };
        let publish = async {
            match published {
                Some(published) => published.await,
                None => future::pending().await,
            }
            Wake::Published
        };
        let tick = async {
            match next_ping {
                Some(at) => async_io::Timer::at(at).await,
                None => future::pending().await,
            };
            Wake::Tick
        };
        let next = match future::or(read, future::or(publish, tick)).await {
            Wake::Read(next) => next,
            Wake::Published => continue,
            Wake::Tick => {
                let (at, every) = next_ping.zip(options.ping_every).unwrap();
                next_ping = Some((at + every).max(Instant::now()));
                if ws.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
                stats.pings_sent.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        let Some(Ok(message)) = next else { break };
        match message {
            Message::Text(text) => {
                stats.texts.lock().unwrap().push(text.to_string());
                let Ok(value) = serde_json::from_str::<serde_json::Value>(text.as_str()) else {
                    continue;
                };
                if value.get("type").and_then(|t| t.as_str()) == Some("hello") {
                    stats.hellos.fetch_add(1, Ordering::SeqCst);
                    if options.never_ack {
                        continue;
                    }
                    if let Some(d) = options.ack_delay {
                        async_io::Timer::after(d).await;
                    }
                    let ack = match &journal {
                        None => r#"{"type":"hello_ack"}"#.to_owned(),
                        Some(journal) => {
                            let (token, sent, was_resumed) = journal.hello(&value);
                            let ack = serde_json::json!({
                                "type": "hello_ack",
                                "resume": token,
                                "resumed": was_resumed,
                            });
                            resumed = Some(Resumed { token, sent });
                            ack.to_string()
                        }
                    };
                    if ws.send(Message::text(ack)).await.is_err() {
                        break;
                    }
                    for frame in &options.after_ack {
                        let _ = ws.send(frame.clone()).await;
                    }
                    if let Some((code, reason)) = &options.close_after_ack {
                        let frame = CloseFrame {
                            code: (*code).into(),
                            reason: reason.clone().into(),
                        };
                        let _ = ws.send(Message::Close(Some(frame))).await;
                    }
                    continue;
                }
                if let (Some(journal), Some(session)) = (&journal, &resumed) {
                    // Numbered and kept; sent at the top of the loop.
                    journal.publish(&session.token, serde_json::json!({"echo": value}));
                    continue;
                }
                let echo = serde_json::json!({"type": "echo", "data": value});
                if ws.send(Message::text(echo.to_string())).await.is_err() {
                    break;
                }
            }
            Message::Close(frame) => {
                let (code, reason) = frame.map_or((1005, String::new()), |f| {
                    (u16::from(f.code), f.reason.to_string())
                });
                stats.closes.lock().unwrap().push((code, reason));
                // tungstenite queued the reply; flush it and finish.
                let _ = ws.flush().await;
                break;
            }
            Message::Ping(_) => {
                stats.pings_received.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
    stats.open.fetch_sub(1, Ordering::SeqCst);
}
