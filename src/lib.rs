//! Keeps one long-lived WebSocket session to a broker alive: connect, send a
//! hello frame, wait for the broker's ack, detect half-dead links, reconnect
//! with jittered backoff, close cleanly.
//!
//! Two layers:
//!
//! - [`fsm`] — the core: an explicit, pure state machine (`Connecting`,
//!   `AwaitingAck`, `Open`, `Reconnecting`, `Closing`, `Closed`). Time is an
//!   input, jitter comes from a seeded generator, actions are plain data. Every
//!   lifecycle edge is testable without sockets. Drive it yourself with
//!   [`fsm::Machine`], or replay a flight recording with
//!   [`fsm::Recording`].
//! - the driver — a thin smol + async-tungstenite runner that carries out
//!   the machine's actions on a real socket (`ws://`, and `wss://` with
//!   rustls with the default `tls` feature, see [Networks](#networks)). Its
//!   types are here at the crate root: [`Client::builder`] gives a
//!   [`ClientBuilder`], which starts the session and returns its
//!   [`Client`] handle and its [`Events`] stream of [`SessionEvent`]s.
//!
//! The crate root also holds what both layers speak: the [`Config`] (with
//! its failure policy: [`CloseRule`], [`Failure`], [`ConnectFailure`],
//! [`Verdict`]), the [`Status`] and its [`Cause`], and why a session ended
//! ([`CloseReason`], [`RejectedBy`]).
//!
//! # Using the client
//!
//! ```no_run
//! use futures_lite::StreamExt;
//! use serde_json::json;
//! use ws_lifecycle::{Client, Config, SessionEvent};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! smol::block_on(async {
//!     let (client, mut events) = Client::builder("wss://broker.example/ws")
//!         // Called on every attempt with its context: sign a fresh hello
//!         // each time, and echo the resume token of the last ack.
//!         .hello(|ctx| {
//!             let attempt = ctx.attempt;
//!             let resume = ctx.previous_ack.as_ref().and_then(|ack| ack.get("resume")).cloned();
//!             async move {
//!                 let hello = json!({"type": "hello", "attempt": attempt, "resume": resume});
//!                 Ok::<_, std::io::Error>(hello.to_string())
//!             }
//!         })
//!         .ack_type("hello_ack")
//!         // Sent right after every ack, before anything else: resubscribe.
//!         .after_ack(|_ctx, _ack| [json!({"type": "subscribe", "topic": "peers"})])
//!         .config(Config::default())
//!         .spawn()?;
//!
//!     client.ready().await?; // Open now (fails once the session is Closed)
//!     client.send(&json!({"type": "publish", "topic": "peers", "text": "hi"}))?;
//!     while let Some(event) = events.next().await {
//!         match event {
//!             SessionEvent::Acked { attempt, ack } => eprintln!("attempt {attempt} acked: {ack}"),
//!             SessionEvent::Message(value) => println!("{value}"),
//!             SessionEvent::Disconnected { code, .. } => eprintln!("lost link ({code}), reconnecting"),
//!             SessionEvent::Closed(outcome) => { eprintln!("{outcome}"); break; }
//!             _ => {}
//!         }
//!     }
//!     client.close().await;
//!     Ok(())
//! })
//! # }
//! ```
//!
//! # The broker's word, per attempt
//!
//! - **The ack is data.** [`SessionEvent::Acked`] carries the ack frame right
//!   after the status change to Open (never folded into
//!   [`SessionEvent::Lagged`]); [`Client::last_ack`] returns the latest.
//! - **The hello has a context.** The builder given to
//!   [`ClientBuilder::hello`] receives a [`HelloContext`] (the attempt, the
//!   previous ack, the last disconnect's code and reason), so a resume
//!   token, a presence id or a lease from one ack rides in the next hello.
//!   `examples/resume.rs` shows resumption end to end.
//! - **Resubscription.** [`ClientBuilder::after_ack`] builds frames, anew
//!   for every ack (given the attempt's [`HelloContext`] and the ack), that
//!   go out right after it, before anything queued or sent by the caller. They belong to their connection: never handed back
//!   as unsent, never counted as the caller's messages.
//! - **Per-attempt requests.** [`ClientBuilder::request_headers`] is an async
//!   hook awaited for every attempt inside its connect deadline (a token
//!   fetched anew into an `Authorization` header); its error is that
//!   attempt's [`ConnectError::RequestHook`], retried.
//!   [`ClientBuilder::request`] adjusts the request synchronously.
//!
//! # Driving the core by hand
//!
//! The machine never reads a clock: pass `now`, drain actions after every
//! input, sleep until [`fsm::Machine::poll_timeout`].
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ws_lifecycle::fsm::{Action, Event, Machine};
//! use ws_lifecycle::{Config, Status};
//!
//! let t0 = Instant::now();
//! let config = Config { jitter: 0.0, ..Config::default() };
//! let mut m = Machine::new(config, t0).unwrap();
//! assert_eq!(m.poll_action(), Some(Action::Connect { attempt: 1 }));
//!
//! // The socket opened; the machine asks for the hello.
//! m.handle(Event::SocketOpened { attempt: 1 }, t0);
//! let actions: Vec<Action> = std::iter::from_fn(|| m.poll_action()).collect();
//! assert!(actions.contains(&Action::SendHello { attempt: 1 }));
//!
//! // No ack within 15 s: the machine drops the socket and schedules attempt 2 in 1 s.
//! let deadline = m.poll_timeout().unwrap();
//! assert_eq!(deadline, t0 + Duration::from_secs(15));
//! m.handle_timeout(deadline);
//! assert_eq!(m.status(), Status::Reconnecting);
//! assert!(std::iter::from_fn(|| m.poll_action()).any(|a| a
//!     == Action::ReconnectScheduled { attempt: 2, delay: Duration::from_secs(1) }));
//! ```
//!
//! # Delivery and backpressure
//!
//! `send` is at most once, and its accounting is exact: every accepted
//! message is either written (its frame's last byte taken by the socket;
//! it may die with the link) or handed back, oldest first, never both (see
//! [`Client::send_text`]). The event stream is bounded, and a slow
//! consumer pauses reading without making the link look dead: see
//! [`Events`]. The session lives while any [`Client`] clone or the
//! [`Events`] stream does.
//!
//! Inbound frames travel in batches: the session reads up to 64 frames per
//! pass (never more than the event buffer has room for) and hands them to
//! the stream in one critical section; [`Events`] takes everything buffered
//! at once and hands it out without locking. The consumer sees the same
//! events in the same order; what the stream has taken but not yet handed
//! out still counts against
//! [`DeliveryConfig::event_capacity`].
//!
//! # Text: parsed JSON or raw
//!
//! By default every text frame is parsed into a [`serde_json::Value`]
//! ([`SessionEvent::Message`]), and text that is not JSON is reported as
//! [`SessionEvent::InvalidFrame`]. Callers that deserialize into their own
//! types can skip that parse with [`DeliveryConfig::raw_text`]
//! (`DeliveryConfig { raw_text: true, .. }`): text frames arrive
//! verbatim as [`SessionEvent::Text`], and text that is not JSON is
//! delivered like any other (the "non-JSON text is reported" rule applies
//! only outside this mode). The ack is still recognised: while the session
//! awaits it, frames are parsed for the ack predicate, the ack arrives as
//! [`SessionEvent::Acked`], and the other frames of that time as `Text`.
//!
//! # Failure policy
//!
//! Every failure is a [`Failure`] value that a pure policy in [`Config`]
//! classifies ([`Config::verdict`]): retry on the backoff schedule, retry no
//! earlier than a server's `Retry-After`, or stop. A terminal verdict ends
//! the session in [`CloseReason::Rejected`] with a [`RejectedBy`] saying who
//! refused and how. By default:
//!
//! - an upgrade answered with 5xx, 408 or 429 is retried — with a
//!   `Retry-After` (seconds or an HTTP date) no earlier than that, at most
//!   [`Config::max_retry_after`] (10 min) later, spread upward by the
//!   jitter; any other status but 101 (a 403, a 401) is terminal, since the
//!   same request will not do better ([`Config::retried_statuses`] changes
//!   the list; [`ConnectError::http_status`] tells the status);
//! - a peer close is terminal when it matches a [`CloseRule`] of
//!   [`Config::terminal_closes`]: a code, or a code with a reason prefix
//!   (`"1008:unauthorized".parse()`); other closes are retried;
//! - everything else (refused, unreachable, TLS errors such as an untrusted
//!   certificate, the connect deadline, hello and ack failures, lost or
//!   stale links) is retried; bound it with `Config::max_attempts`.
//!
//! For anything else, [`ClientBuilder::failure_policy`] takes a predicate
//! that sees each failure with its default verdict and returns the verdict
//! to apply.
//!
//! ```
//! use ws_lifecycle::{Client, CloseRule, Config, ConnectFailure, Failure, Verdict};
//!
//! let config = Config {
//!     terminal_closes: vec![
//!         CloseRule::code(4002),                  // banned
//!         "1008:unauthorized".parse().unwrap(), // not 1008 "capacity"
//!     ],
//!     ..Config::default()
//! };
//! let builder = Client::builder("wss://broker.example/ws")
//!     .config(config)
//!     .failure_policy(|failure, default| match failure {
//!         Failure::Connect(ConnectFailure::Tls) => Verdict::Terminal,
//!         _ => default,
//!     });
//! # drop(builder);
//! ```
//!
//! # Networks
//!
//! ## Addresses (Happy Eyeballs)
//!
//! A host name is resolved off the executor and its addresses are raced
//! the Happy Eyeballs way (RFC 8305): IPv6 and IPv4 alternate, the next
//! address starts 250 ms after the previous one (at once when it fails),
//! the first connection wins, so a blackholed address costs 250 ms rather
//! than the connect deadline; when all fail, [`ConnectError::Tcp`] lists
//! each address with its error.
//!
//! ## Proxies
//!
//! Every attempt can tunnel through an HTTP CONNECT proxy (RFC 9110
//! §9.3.6, Basic credentials) or a SOCKS5 proxy (RFC 1928, user/password
//! by RFC 1929): TCP goes to the proxy, the tunnel on to the broker, and
//! for `wss://` TLS runs inside the tunnel and verifies the *broker's*
//! name. The connect deadline bounds all of it.
//!
//! - [`ClientBuilder::proxy`] takes `http://[user:password@]host[:port]`,
//!   `socks5://…` (the broker's name is resolved here; the first address
//!   the system resolver returns is sent — getaddrinfo's RFC 6724 order,
//!   so an address of the family this host prefers) or `socks5h://…` (the
//!   name is sent for the proxy to resolve). No scheme means `http://`, the
//!   port defaults to 1080 (as curl's). `https://` proxies are refused.
//! - [`ClientBuilder::no_proxy`] connects directly.
//! - By default ([`ClientBuilder::proxy_from_env`]) the environment decides,
//!   read as curl reads it when the builder builds its first session:
//!   `no_proxy`/`NO_PROXY` (host names, domain suffixes, IP addresses and
//!   CIDR ranges, `*`) bypasses; otherwise `http_proxy` for `ws://`,
//!   `https_proxy` or `HTTPS_PROXY` for `wss://`, then `all_proxy` or
//!   `ALL_PROXY`. [`ClientBuilder::proxy_from_lookup`] applies the same
//!   rules to the caller's own table.
//!
//! A proxy URL that cannot be used is a [`BuildError::Proxy`]. A proxy's
//! refusal is a [`ConnectError`] that says what it answered
//! ([`ProxyRefused`](ConnectError::ProxyRefused) with an HTTP status,
//! [`SocksReply`](ConnectError::SocksReply) with a SOCKS5 reply code,
//! [`SocksAuth`](ConnectError::SocksAuth): a refusal of the credentials)
//! or why its answer could not be read. By default a 407 (and every proxy status outside
//! [`Config::retried_statuses`]) and a SOCKS5 authentication failure
//! ([`ConnectFailure::SocksAuth`]) are terminal
//! ([`RejectedBy::Proxy`], [`RejectedBy::SocksAuth`]): wrong credentials
//! will not get better. A proxy's 5xx, a SOCKS5 reply code, an answer that
//! is not the protocol and a silent proxy (the connect deadline) are
//! retried. Proxy credentials never appear in logs, errors or `Debug`
//! output: a proxy is always shown as `scheme://host:port`.
//!
//! ```
//! use ws_lifecycle::Client;
//!
//! let builder = Client::builder("wss://broker.example/ws")
//!     .proxy("http://alice:secret@proxy.corp:3128");
//! assert!(!format!("{builder:?}").contains("secret"));
//! ```
//!
//! ## Trust (`wss://`)
//!
//! - **The system's roots by default.** `wss://` verifies the broker's
//!   certificate against the operating system's trust store, read with
//!   `rustls-native-certs` when the session is built (on Linux the
//!   distribution's bundle, replaced by `SSL_CERT_FILE` / `SSL_CERT_DIR`
//!   when set; the keychain on macOS; the certificate store on Windows),
//!   so a company CA installed on the machine just works. A store with no
//!   usable certificate is [`BuildError::NoSystemRoots`], unless the
//!   builder was given roots of its own (then only those are trusted, with
//!   a warning logged).
//! - **Extra roots**: [`ClientBuilder::add_root_pem`] (PEM bytes) and
//!   [`ClientBuilder::add_roots_from_file`] (a PEM file) are trusted
//!   beside the system's; they are read and checked at construction
//!   ([`BuildError::ReadRoots`], [`NoCertificate`](BuildError::NoCertificate),
//!   [`BadPem`](BuildError::BadPem), [`BadRoot`](BuildError::BadRoot)).
//!   `wsclient --ca-file FILE` does the same.
//! - **A whole configuration**: [`ClientBuilder::tls_config`] takes any
//!   [`rustls::ClientConfig`] and uses it as is. This crate builds every
//!   configuration with `ClientConfig::builder_with_provider` and ring,
//!   never with the process-wide default provider (which panics unless
//!   exactly one provider is compiled in); do the same in your own, for
//!   one that trusts exactly your roots:
//!
//! ```
//! # #[cfg(feature = "tls")] {
//! use std::sync::Arc;
//! use ws_lifecycle::{Client, rustls};
//!
//! let mut roots = rustls::RootCertStore::empty();
//! // roots.add(...) for each of your CA certificates
//! let provider = Arc::new(rustls::crypto::ring::default_provider());
//! let tls = rustls::ClientConfig::builder_with_provider(provider)
//!     .with_safe_default_protocol_versions()?
//!     .with_root_certificates(roots)
//!     .with_no_client_auth();
//! let builder = Client::builder("wss://broker.internal/ws").tls_config(Arc::new(tls));
//! # drop(builder);
//! # }
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! - **Refused certificates are typed.** A failed handshake is
//!   [`ConnectError::Tls`] whose `cause` is a [`TlsFailure`]:
//!   [`UnknownIssuer`](TlsFailure::UnknownIssuer) (self-signed, or a CA
//!   that is not trusted), [`NotValidForName`](TlsFailure::NotValidForName)
//!   (a certificate for another host), [`Expired`](TlsFailure::Expired), or
//!   [`Other`](TlsFailure::Other). Like other connect failures they are
//!   retried on the backoff schedule, since a broker's certificate can be
//!   fixed while the client waits. To stop instead, give the failure policy
//!   a terminal verdict for [`ConnectFailure::Tls`]; the session then ends
//!   in [`CloseReason::Rejected`] by [`RejectedBy::Caller`]:
//!
//! ```
//! use ws_lifecycle::{Client, ConnectFailure, Failure, Verdict};
//!
//! let builder = Client::builder("wss://broker.example/ws").failure_policy(|failure, default| {
//!     match failure {
//!         // Any TLS failure (untrusted, wrong name, expired) ends the session.
//!         Failure::Connect(ConnectFailure::Tls) => Verdict::Terminal,
//!         _ => default,
//!     }
//! });
//! # drop(builder);
//! ```
//!
//! The policy sees the kind of failure, not its cause; to stop for one
//! cause only, watch [`SessionEvent::ConnectFailed`] for it and call
//! [`Client::close`].
//!
//! ## Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tls` | on | `wss://` with rustls and ring, the system's roots (`rustls-native-certs`); the [`rustls`] re-export, [`ClientBuilder::tls_config`], [`ClientBuilder::add_root_pem`], [`ClientBuilder::add_roots_from_file`] |
//! | `webpki-roots` | off | also trusts the Mozilla roots bundled in `webpki-roots` (for machines without a CA bundle, such as small containers); implies `tls` |
//! | `testing` | off | not part of the API: scaffolding for this crate's own tests, benches and `diagram` example (state-space exploration, the diagram, the pure transition function, test hooks on the handles); its dev-dependency on itself turns it on, and docs.rs leaves it out |
//!
//! With `default-features = false` the crate is built for `ws://` only:
//! neither rustls nor ring is in its dependency tree, and a `wss://` URL is
//! refused at construction with [`BuildError::TlsDisabled`].
//!
//! # Keepalive
//!
//! While Open a ping goes out every [`Config::ping_interval`] (default
//! 30 s), and the link is dropped as stale exactly [`Config::stale_after`]
//! (default 75 s) after the last inbound byte. With
//! [`Config::ping_when_idle`] (default off) a ping is skipped when anything
//! arrived within the last `ping_interval`, and the next one is due
//! `ping_interval` after that frame: a broker that pings us, or steady
//! traffic, then costs no pings of ours, and a link that goes quiet gets its
//! first ping exactly `ping_interval` after the last frame, then one every
//! `ping_interval`. Stale detection and the wake-up ping (below) are the
//! same either way. Our pong to a broker's ping is written by the transport
//! whatever the setting.
//!
//! # Waking from sleep
//!
//! On Linux the monotonic clock stops while the machine is suspended, so a
//! link that died during a night's sleep would look fresh at wake and be
//! replaced only `stale_after` later. The session compares the wall clock
//! with the monotonic one whenever it is polled: when wall time ran ahead by
//! more than 2 s between two polls, the host slept, and the core
//! ([`fsm::Event::Woke`]) sends a ping at once and drops the link (close
//! 1001, [`Cause::WakeProbeFailed`], retried like [`Failure::Stale`]) unless
//! something arrives within [`Config::wake_probe`] (default 5 s). An idle
//! session is polled at its next deadline, so the detection may lag the
//! wake by up to `ping_interval`.
//!
//! # Runtimes: what the crate needs from its host
//!
//! The driver is built on async-io (sockets, the one timer per session)
//! and futures-io; it needs no particular executor:
//!
//! - [`ClientBuilder::build`] returns the session's future, which runs on
//!   any executor: `smol::block_on`, a local or global smol executor, or a
//!   tokio runtime (`tokio::spawn(session)`, multi-thread or current-thread;
//!   `tests/driver_tokio.rs` runs one through hello, ack, echo and close).
//!   Nothing of tokio's reactor is used, so no tokio feature is needed.
//! - [`ClientBuilder::spawn`] is the convenience that puts the session on
//!   smol's global executor; that executor (one thread named `smol-1`, or
//!   `SMOL_THREADS`) exists only if something calls `smol::spawn`.
//! - async-io drives its reactor (epoll on Linux) from a helper thread
//!   named `async-io`, started on first use and kept for the life of the
//!   process: **one thread per process, however many sessions**, with a
//!   default std stack (2 MiB of address space reserved, only the touched
//!   pages resident) and the reactor's registrations (one per socket and
//!   timer). Under `smol::block_on` the blocked thread drives the reactor
//!   itself and the helper mostly sleeps; under another runtime the helper
//!   wakes the session's tasks, so each wake-up crosses one thread.
//! - A host name (not an IP address) is resolved through `blocking`'s pool
//!   (threads named `blocking-N`, started on demand, each gone after
//!   500 ms idle), so the executor never blocks on DNS.
//!
//! # Flight recorder
//!
//! [`ClientBuilder::record_to`] records every input the state machine
//! receives, as JSON lines: a header (the [`Config`] with the jitter seed
//! actually used, the crate version, the wall-clock start, the URL without
//! user info or query string), then each input with its time since the
//! start in nanoseconds, including the caller's verdicts
//! ([`fsm::Event::Judged`]), read pauses and wake-ups (a run of `Activity`
//! with nothing between is written once, as its last: it replays the same).
//! Never a message payload, the hello or the ack: a recording holds no
//! credentials. Off by default. The session never waits for the writer: records go through a bounded buffer to a thread of
//! their own, and what does not fit becomes a gap record.
//!
//! [`parse_recording`] reads a file back, one [`fsm::Recording`] per header
//! (a file `wsclient --record` appended to holds many), and
//! [`fsm::Recording::replay`] replays a run in the pure core, one
//! [`fsm::Step`] per record: the same inputs at the same offsets give
//! exactly the same actions and final state, so "why did it reconnect at
//! 12:03:17?" has an answer.
//! `cargo run --example replay -- FILE` prints a run's timeline;
//! `docs/TROUBLESHOOTING.md` walks through a real one.
//!
//! ```
//! use std::time::Instant;
//! use ws_lifecycle::parse_recording;
//!
//! # let file = br#"{"recording":"ws-lifecycle","format":1,"crate_version":"0.1.0","started_unix_ns":0,"url":"ws://h/ws","config":{"connect_timeout_ns":10000000000,"ack_timeout_ns":15000000000,"ping_interval_ns":30000000000,"stale_after_ns":75000000000,"wake_probe_ns":5000000000,"backoff_ns":[1000000000],"jitter":"0.5","min_delay_ns":100000000,"stable_after_ns":10000000000,"close_grace_ns":1000000000,"terminal_closes":[],"retried_statuses":[[500,599]],"max_retry_after_ns":600000000000,"max_attempts":null,"max_unstable_ns":null,"seed":7}}
//! # {"t_ns":1000000,"event":{"type":"ConnectFailed","attempt":1,"failure":{"type":"Io","kind":"ConnectionRefused"}}}
//! # "#;
//! // let file = std::io::BufReader::new(std::fs::File::open("session.rec")?);
//! for run in parse_recording(&file[..])? {
//!     println!("{} started at {:?}", run.url, run.started);
//!     for step in run.replay(Instant::now())? {
//!         println!("{step}"); // +0.001000s Connecting --ConnectFailed#1(Io(ConnectionRefused))--> Reconnecting: …
//!     }
//! }
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! # Stats
//!
//! [`Client::stats`] returns a [`Stats`] snapshot: attempts, opens,
//! disconnects by [`Cause`], messages and wire bytes each way, the last
//! and the smoothed ping round trip (`latency`, measured from our ping's
//! last byte written to its pong; smoothed like TCP's SRTT, α = 1/8), time
//! in the current status, the current connection's uptime and the last
//! [`Failure`]. Keeping them costs no lock and no allocation per message.
//!
//! ```no_run
//! # async fn show(client: ws_lifecycle::Client) {
//! let stats = client.stats();
//! eprintln!(
//!     "attempts {} opens {} disconnects {} latency {:?}",
//!     stats.attempts, stats.opens, stats.disconnects.total(), stats.latency_smoothed
//! );
//! # }
//! ```
//!
//! # Logging
//!
//! Every transition is logged through [`log`] at debug (from, to, cause,
//! attempt). This crate logs URLs without query string or user info and
//! never logs hello frames. Note that tungstenite itself logs the upgrade
//! request (URL included) and frame payloads at *trace* level: keep the
//! `tungstenite` target above trace where credentials matter.
#![deny(missing_docs)]

mod driver;
pub mod fsm;

// The client: its handle, builder, events and settings.
pub use driver::{
    Client, ClientBuilder, CloseOutcome, DeliveryConfig, Events, HelloContext, SessionEvent,
    TransportConfig, UpgradeResponse,
};
// What `send`, `ready` and `build` answer, what a failed attempt was, stats.
pub use driver::{
    BuildError, ConnectError, Disconnects, LastFailure, NotReady, SendError, SendErrorKind, Sent,
    Stats, TlsFailure,
};
// The flight recorder's file (its replay is the core's: `fsm::Recording`).
pub use driver::{RecordingError, parse_recording};
// The session's vocabulary, shared by the client and the core: the
// configuration and its failure policy, statuses and why they change.
pub use fsm::action::Cause;
pub use fsm::config::{Config, ConfigError};
pub use fsm::policy::{CloseRule, ConnectFailure, Failure, RejectedBy, Verdict};
pub use fsm::state::{CloseReason, Status};

/// The `http` types of upgrade requests and responses (headers, status).
pub use async_tungstenite::tungstenite::http;
/// The rustls crate, for building a custom `wss://` configuration (with
/// the `tls` feature).
#[cfg(feature = "tls")]
pub use futures_rustls::rustls;
