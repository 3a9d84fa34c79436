//! `ClientBuilder`: everything a session needs, checked at construction.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

#[cfg(feature = "tls")]
use futures_rustls::rustls::ClientConfig;

use async_tungstenite::tungstenite::handshake::client::Request;
use async_tungstenite::tungstenite::http::HeaderMap;

use crate::fsm::{Attempt, Config, Failure, Verdict};

use super::client::{Client, Owner};
use super::config::{DeliveryConfig, TransportConfig};
use super::context::{AfterAckContext, AfterAckFrame, HelloContext};
use super::events::Events;
use super::flight::Flight;
use super::record::{ActionHook, RecordTo};
use super::session::Session;
use super::shared::{Core, Shared};
use super::spec::{
    AckFn, AfterAckFn, FailurePolicyFn, HeadersFn, HelloError, HelloFn, HookError, RequestFn, Spec,
    WallClock,
};
use super::transport::connect::ConnectSpec;
use super::transport::dial::Resolver;
use super::transport::endpoint::Endpoint;
use super::transport::error::BuildError;
use super::transport::proxy::ProxySetting;
use super::transport::tls::Trust;
use crate::fsm::outbound::Ledger;

/// Configures and starts sessions. One builder can start many sessions
/// (each gets its own jitter seed unless [`seed`](Self::seed) is set).
///
/// Defaults: hello `{"type":"hello"}`, ack = a JSON object whose `"type"`
/// is `"hello_ack"`, [`Config::default`], [`TransportConfig::default`],
/// [`DeliveryConfig::default`],
/// the operating system's roots for `wss://` (see "Networks" in the crate docs).
#[derive(Clone)]
pub struct ClientBuilder {
    url: String,
    config: Config,
    seed: Option<u64>,
    transport: TransportConfig,
    delivery: DeliveryConfig,
    tls: Trust,
    hello: Arc<HelloFn>,
    ack: Arc<AckFn>,
    request_hook: Option<Arc<RequestFn>>,
    request_headers: Option<Arc<HeadersFn>>,
    after_ack: Option<Arc<AfterAckFn>>,
    failure_policy: Option<Arc<FailurePolicyFn>>,
    resolver: Resolver,
    proxy: ProxySetting,
    wall_clock: Option<WallClock>,
    /// The flight recorder's writer, for the next session built.
    record: Option<RecordTo>,
    on_action: Option<Arc<ActionHook>>,
    /// The parsed, shared part of every session built from this builder;
    /// rebuilt after any change. Sharing it keeps per-session memory low.
    spec: Arc<OnceLock<Arc<Spec>>>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &super::transport::endpoint::redact(&self.url))
            .field("config", &self.config)
            .field("transport", &self.transport)
            .field("delivery", &self.delivery)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// A builder for sessions to `url` (`ws://` or `wss://`).
    pub fn new(url: impl Into<String>) -> Self {
        ClientBuilder {
            url: url.into(),
            config: Config::default(),
            seed: None,
            transport: TransportConfig::default(),
            delivery: DeliveryConfig::default(),
            tls: Trust::default(),
            hello: Arc::new(|_| Box::pin(async { Ok(r#"{"type":"hello"}"#.to_owned()) })),
            ack: Arc::new(|v| v.get("type").and_then(|t| t.as_str()) == Some("hello_ack")),
            request_hook: None,
            request_headers: None,
            after_ack: None,
            failure_policy: None,
            resolver: Resolver::default(),
            proxy: ProxySetting::Environment,
            wall_clock: None,
            record: None,
            on_action: None,
            spec: Arc::new(OnceLock::new()),
        }
    }

    /// Forgets the cached spec after a change.
    fn changed(mut self) -> Self {
        self.spec = Arc::new(OnceLock::new());
        self
    }

    /// The lifecycle policy (timeouts, keepalive, backoff, budgets, the
    /// failure policy: terminal close rules, retried HTTP statuses, the
    /// `Retry-After` cap). Its `seed` is ignored unless [`seed`](Self::seed) is set.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self.changed()
    }

    /// Fixes the jitter seed, for reproducible schedules. By default every
    /// session draws its own, so clients of a restarted broker spread out.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self.changed()
    }

    /// Socket and tungstenite buffer settings.
    pub fn transport(mut self, transport: TransportConfig) -> Self {
        self.transport = transport;
        self.changed()
    }

    /// Event buffer, send capacity, the opt-in queue, binary delivery, raw
    /// text.
    pub fn delivery(mut self, delivery: DeliveryConfig) -> Self {
        self.delivery = delivery;
        self.changed()
    }

    /// Uses this rustls configuration for `wss://` instead of the default
    /// (ring provider, the system's roots, verification on). Certificate
    /// verification is whatever this configuration says; roots added with
    /// [`add_root_pem`](Self::add_root_pem) or
    /// [`add_roots_from_file`](Self::add_roots_from_file) do not apply to
    /// it (the crate docs' "Networks" show how to build one that trusts
    /// exactly your roots). Needs the `tls` feature.
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: Arc<ClientConfig>) -> Self {
        self.tls.custom(config);
        self.changed()
    }

    /// Trusts the certificates in `pem` (PEM text, one or more
    /// `-----BEGIN CERTIFICATE-----` sections; other sections are skipped)
    /// for `wss://`, in addition to the system's roots: a company or test
    /// CA. Checked when the session is built: text without a certificate,
    /// or a certificate that is not a usable root, is a
    /// [`BuildError`]. Needs the `tls` feature.
    ///
    /// ```no_run
    /// # use ws_lifecycle::Client;
    /// let ca = std::fs::read("company-ca.pem")?;
    /// let (client, events) = Client::builder("wss://broker.internal/ws")
    ///     .add_root_pem(ca)
    ///     .spawn()?;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "tls")]
    pub fn add_root_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.tls.add_pem(pem.as_ref());
        self.changed()
    }

    /// Trusts the certificates in the PEM file at `path` for `wss://`, in
    /// addition to the system's roots, like [`add_root_pem`](Self::add_root_pem).
    /// The file is read when the session is built; a file that cannot be
    /// read or holds no certificate is a [`BuildError`]. Needs the
    /// `tls` feature.
    #[cfg(feature = "tls")]
    pub fn add_roots_from_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.tls.add_file(path.into());
        self.changed()
    }

    /// The hello builder: called anew on every attempt with that attempt's
    /// [`HelloContext`] (its number, the previous ack, how the last
    /// connection ended), so timestamps and signatures are fresh and a
    /// resume token from one ack can ride in the next hello. The text it
    /// returns is sent verbatim (never logged). An error (or a panic)
    /// abandons the attempt, which is retried. It runs under the ack
    /// deadline, so a hanging builder cannot wedge an attempt.
    ///
    /// The future must own what it uses: copy the fields it needs out of
    /// the context before `async move`. Its error is any
    /// `std::error::Error + Send + Sync`, reported in
    /// [`SessionEvent::HelloFailed`](super::SessionEvent::HelloFailed).
    ///
    /// ```no_run
    /// # use ws_lifecycle::Client;
    /// let builder = Client::builder("wss://broker.example/ws").hello(|ctx| {
    ///     let attempt = ctx.attempt;
    ///     let token = ctx.previous_ack.as_ref().and_then(|ack| ack.get("resume")).cloned();
    ///     async move {
    ///         let hello = serde_json::json!({"type": "hello", "attempt": attempt, "resume": token});
    ///         Ok::<_, std::io::Error>(hello.to_string())
    ///     }
    /// });
    /// ```
    pub fn hello<F, Fut, E>(mut self, build: F) -> Self
    where
        F: Fn(&HelloContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, E>> + Send + 'static,
        E: Into<HelloError>,
    {
        self.hello = Arc::new(move |ctx| {
            let fut = build(ctx);
            Box::pin(async move { fut.await.map_err(Into::into) })
        });
        self.changed()
    }

    /// A fixed JSON hello, sent on every attempt.
    pub fn hello_json(mut self, hello: serde_json::Value) -> Self {
        let text: Arc<str> = hello.to_string().into();
        self.hello = Arc::new(move |_| {
            let text = text.to_string();
            Box::pin(async move { Ok(text) })
        });
        self.changed()
    }

    /// The ack predicate: true for the frame that means "broker accepted
    /// us". Only asked while awaiting the ack.
    pub fn ack(
        mut self,
        is_ack: impl Fn(&serde_json::Value) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.ack = Arc::new(is_ack);
        self.changed()
    }

    /// Shorthand: a JSON object whose `"type"` equals `ty` is the ack.
    pub fn ack_type(self, ty: impl Into<String>) -> Self {
        let ty = ty.into();
        self.ack(move |v| v.get("type").and_then(|t| t.as_str()) == Some(ty.as_str()))
    }

    /// Adjusts each attempt's upgrade request (headers such as
    /// `Authorization`, `Sec-WebSocket-Protocol` for subprotocols). The
    /// response is visible as [`SessionEvent::Upgraded`](super::SessionEvent::Upgraded)
    /// and [`Client::upgrade_response`].
    ///
    /// It runs after the headers of [`request_headers`](Self::request_headers),
    /// so it has the last word.
    pub fn request(mut self, hook: impl Fn(Attempt, &mut Request) + Send + Sync + 'static) -> Self {
        self.request_hook = Some(Arc::new(hook));
        self.changed()
    }

    /// An async request hook: for every attempt, called with its
    /// [`HelloContext`]; the future it returns yields headers (such as an
    /// `Authorization` with a token fetched anew) that are added to that
    /// attempt's upgrade request, replacing headers of the same name. The
    /// headers belong to that attempt only and are never reused.
    ///
    /// The future runs while the attempt dials (TCP, TLS) and inside the
    /// connect deadline; the upgrade starts once both are done. The hook
    /// itself is called on the session's task: do the slow work (network,
    /// disk) inside the future it returns, not before returning it. An error or
    /// a panic is that attempt's failure,
    /// [`ConnectError::RequestHook`](super::ConnectError::RequestHook) (or
    /// [`RequestHookPanicked`](super::ConnectError::RequestHookPanicked)),
    /// retried like any failed connect.
    ///
    /// ```no_run
    /// # use ws_lifecycle::{Client, http::HeaderMap};
    /// # async fn fetch_token() -> std::io::Result<String> { Ok("t".into()) }
    /// let builder = Client::builder("wss://broker.example/ws").request_headers(|_ctx| async {
    ///     let token = fetch_token().await?;
    ///     let mut headers = HeaderMap::new();
    ///     headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    ///     Ok::<_, std::io::Error>(headers)
    /// });
    /// ```
    pub fn request_headers<F, Fut, E>(mut self, fetch: F) -> Self
    where
        F: Fn(&HelloContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<HeaderMap, E>> + Send + 'static,
        E: Into<HookError>,
    {
        self.request_headers = Some(Arc::new(move |ctx| {
            let fut = fetch(ctx);
            Box::pin(async move { fut.await.map_err(Into::into) })
        }));
        self.changed()
    }

    /// Frames sent right after every ack (resubscription), before anything
    /// queued or sent by the caller on that connection. Called anew for
    /// every acked attempt with what its hello knew (its [`HelloContext`]:
    /// the attempt, the ack before this one, how the last connection ended)
    /// and the ack itself, so subscriptions can come from application
    /// state. Each item goes out as its text (`to_string()`), in order: a
    /// JSON value serialised compactly, a `String` or `&str` verbatim.
    ///
    /// They belong to their connection: never handed back as unsent, never
    /// counted as the caller's messages, and not bounded by the send
    /// capacity. Nothing is sent when a close was requested before the ack.
    /// A panic in the builder fails that attempt like a failed hello
    /// ([`SessionEvent::HelloFailed`](super::SessionEvent::HelloFailed),
    /// close 1011), which is retried.
    ///
    /// ```no_run
    /// # use ws_lifecycle::Client;
    /// let builder = Client::builder("wss://broker.example/ws")
    ///     .after_ack(|_ctx, _ack| [serde_json::json!({"type": "subscribe", "topic": "peers"})]);
    /// ```
    pub fn after_ack<F, I>(mut self, build: F) -> Self
    where
        F: Fn(&HelloContext, &serde_json::Value) -> I + Send + Sync + 'static,
        I: IntoIterator,
        I::Item: std::fmt::Display,
    {
        self.after_ack = Some(Arc::new(move |ctx: &AfterAckContext| {
            (build(&ctx.hello(), &ctx.ack).into_iter())
                .map(|frame| AfterAckFrame(frame.to_string()))
                .collect()
        }));
        self.changed()
    }

    /// The caller's word on failures the [`Config`] policy does not
    /// express: called for every failure the session is about to act on
    /// (a connect failure — the connect deadline and HTTP answers
    /// included —, a failed hello, the ack deadline, a peer close, a lost
    /// transport, a stale link, a protocol error, a message too big) with
    /// the policy's default [`Verdict`]; it returns the verdict to apply
    /// (return `default` to keep it). A terminal verdict it gives ends the
    /// session with [`RejectedBy::Caller`](crate::RejectedBy::Caller).
    ///
    /// It runs inside the session's loop: keep it quick and non-blocking. A
    /// panic in it keeps the default. Not part of [`Config`], which stays
    /// plain data (comparable, printable, explorable).
    ///
    /// ```
    /// use ws_lifecycle::{Client, ConnectFailure, Failure, Verdict};
    ///
    /// // An untrusted certificate will not fix itself: stop.
    /// let builder = Client::builder("wss://broker.example/ws").failure_policy(|failure, default| {
    ///     match failure {
    ///         Failure::Connect(ConnectFailure::Tls) => Verdict::Terminal,
    ///         _ => default,
    ///     }
    /// });
    /// # drop(builder);
    /// ```
    pub fn failure_policy(
        mut self,
        judge: impl Fn(&Failure, Verdict) -> Verdict + Send + Sync + 'static,
    ) -> Self {
        self.failure_policy = Some(Arc::new(judge));
        self.changed()
    }

    /// Resolves host names with `resolve` (host and port in, addresses in
    /// preference order out) instead of the system's resolver (feature
    /// `testing`: for the Happy Eyeballs tests). IP literals are never
    /// resolved.
    #[cfg(feature = "testing")]
    pub fn resolver(
        mut self,
        resolve: impl Fn(&str, u16) -> std::io::Result<Vec<std::net::SocketAddr>>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.resolver = Resolver::custom(Arc::new(resolve));
        self.changed()
    }

    /// Tunnels every attempt through this proxy, whatever the environment
    /// says:
    ///
    /// - `http://[user:password@]host[:port]`: HTTP CONNECT
    ///   (RFC 9110 §9.3.6), with Basic credentials when given;
    /// - `socks5://[user:password@]host[:port]`: SOCKS5 (RFC 1928, user and
    ///   password by RFC 1929); the broker's name is resolved here and the
    ///   first address the system resolver returns is sent (getaddrinfo's
    ///   RFC 6724 order: an address of the family this host prefers);
    /// - `socks5h://…`: the same, but the name is sent for the proxy to
    ///   resolve.
    ///
    /// No scheme means `http://`; the port defaults to 1080 (as curl's);
    /// user info is percent-decoded. `https://` proxies (TLS to the proxy)
    /// are not supported. A URL that cannot be used is a
    /// [`BuildError::Proxy`] at [`build`](Self::build), whose text never
    /// holds the URL (it may hold a password). For `wss://`, TLS runs
    /// inside the tunnel and verifies the broker's name. The connect
    /// deadline bounds it all; a proxy's refusal is a
    /// [`ConnectError`](super::ConnectError) such as
    /// [`ProxyRefused`](super::ConnectError::ProxyRefused) (see the crate
    /// docs' "Networks" for the verdicts). Credentials never appear in
    /// logs, errors or `Debug` output.
    ///
    /// ```
    /// # use ws_lifecycle::Client;
    /// let builder = Client::builder("wss://broker.example/ws")
    ///     .proxy("socks5h://user:secret@127.0.0.1:1080");
    /// # drop(builder);
    /// ```
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = ProxySetting::Url(url.into());
        self.changed()
    }

    /// Connects directly, whatever the environment says.
    pub fn no_proxy(mut self) -> Self {
        self.proxy = ProxySetting::None;
        self.changed()
    }

    /// The default: the proxy comes from the environment, read as curl
    /// reads it, when this builder builds its first session (the result is
    /// shared by every session it builds until the builder changes):
    ///
    /// 1. `no_proxy`, else `NO_PROXY` (entries separated by commas):
    ///    a broker host that is an entry, or is in an entry's domain
    ///    (`example.com` or `.example.com` match `ws.example.com`), or an
    ///    IP address equal to an entry or within its CIDR range
    ///    (`10.0.0.0/8`), or any host when an entry is `*`, connects
    ///    directly.
    /// 2. Otherwise, for `ws://` `http_proxy` (lowercase only, as curl),
    ///    for `wss://` `https_proxy`, else `HTTPS_PROXY`; then `all_proxy`,
    ///    else `ALL_PROXY`. The first one set (and not empty) is the proxy,
    ///    read as [`proxy`](Self::proxy) reads a URL.
    ///
    /// A value that cannot be used is a [`BuildError::Proxy`] naming the
    /// variable (never its value).
    pub fn proxy_from_env(mut self) -> Self {
        self.proxy = ProxySetting::Environment;
        self.changed()
    }

    /// Like [`proxy_from_env`](Self::proxy_from_env), with the variables
    /// read through `lookup` instead of the process environment (a
    /// configuration file's values, or a test's table).
    ///
    /// ```
    /// # use ws_lifecycle::Client;
    /// let builder = Client::builder("ws://broker.example/ws").proxy_from_lookup(|name| {
    ///     (name == "http_proxy").then(|| "http://127.0.0.1:3128".to_owned())
    /// });
    /// # drop(builder);
    /// ```
    pub fn proxy_from_lookup(
        mut self,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.proxy = ProxySetting::Lookup(Arc::new(lookup));
        self.changed()
    }

    /// The wall clock the session compares with the monotonic one to
    /// notice that the host slept (default `SystemTime::now`; feature
    /// `testing`, so a test can make it jump).
    #[cfg(feature = "testing")]
    pub fn wall_clock(
        mut self,
        clock: impl Fn() -> std::time::SystemTime + Send + Sync + 'static,
    ) -> Self {
        self.wall_clock = Some(Arc::new(clock));
        self.changed()
    }

    /// Records every input the state machine receives, so the session can
    /// be replayed exactly in the core (see "Flight recorder" in the crate
    /// docs): a header line (the [`Config`] with the seed actually used,
    /// the crate version, the wall-clock start, the URL without user info
    /// or query), then one JSON line per input with its time since the
    /// start in nanoseconds. Message payloads, the hello and the ack never
    /// go in: an inbound frame is recorded as `Activity`, a sent one not at
    /// all. Close reasons (the caller's and the broker's) do.
    ///
    /// The session never waits for `writer`: records go through a bounded
    /// buffer (1024 records) to a thread of their own, which writes them and
    /// flushes whenever the buffer is empty. When the buffer is full a
    /// record is dropped, and a gap record (`{"gap":N}`) before the next
    /// one that fits says how many were. A write error ends the recording
    /// (logged), never the session. Once the session has ended and every
    /// record is written, the thread flushes and drops `writer`: its drop
    /// means the recording is complete.
    ///
    /// Only the next session built from this builder (or a clone of it)
    /// records into `writer`; later ones are not recorded. Read a
    /// recording with [`parse_recording`](crate::parse_recording).
    ///
    /// ```no_run
    /// # use ws_lifecycle::Client;
    /// let file = std::fs::OpenOptions::new().create(true).append(true).open("session.rec")?;
    /// let (client, events) = Client::builder("wss://broker.example/ws")
    ///     .record_to(file)
    ///     .spawn()?;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn record_to(mut self, writer: impl std::io::Write + Send + 'static) -> Self {
        self.record = Some(RecordTo::new(Box::new(writer)));
        self
    }

    /// The flight recorder's buffer, in records (default 1024; feature
    /// `testing`, so a test can overflow it).
    #[cfg(feature = "testing")]
    pub fn record_buffer(mut self, records: usize) -> Self {
        if let Some(record) = self.record.as_mut() {
            record.buffer = records;
        }
        self
    }

    /// Calls `hook` on the session's task with every action of the machine,
    /// in order, as it is carried out (feature `testing`: the recorder
    /// tests compare them with a replay's). It runs under the session's
    /// lock: it must not call back into the `Client` or `Events`.
    #[cfg(feature = "testing")]
    pub fn on_action(mut self, hook: impl Fn(&crate::fsm::Action) + Send + Sync + 'static) -> Self {
        self.on_action = Some(Arc::new(hook));
        self
    }

    /// What watches the next session's machine, if anything.
    fn flight(&self, url: &str) -> Option<Box<Flight>> {
        let recorder = self.record.as_ref().and_then(|r| r.recorder(url));
        let on_action = self.on_action.clone();
        (recorder.is_some() || on_action.is_some()).then(|| {
            Box::new(Flight {
                recorder,
                on_action,
            })
        })
    }

    /// Validates everything and returns the handle, the event stream and
    /// the session: a future to spawn on any executor (see "Runtimes" in
    /// the crate docs), or to await. Nothing happens until it is first
    /// polled; it completes once the session is Closed, and dropping it
    /// ends the session at once.
    pub fn build(
        &self,
    ) -> Result<(Client, Events, impl Future<Output = ()> + Send + use<>), BuildError> {
        self.build_session()
    }

    fn build_session(&self) -> Result<(Client, Events, Session), BuildError> {
        self.config.validate()?;
        let seed = self.seed.unwrap_or_else(|| fastrand::u64(..));
        self.transport.validate()?;
        self.delivery.validate()?;
        let spec = match self.spec.get() {
            Some(spec) => spec.clone(),
            None => {
                let built = Arc::new(self.make_spec()?);
                self.spec.get_or_init(|| built).clone()
            }
        };
        let queue = self.delivery.queue();
        let ledger = Ledger::new(self.delivery.send_capacity, queue);
        let capacity = self.delivery.event_capacity;
        let watch = self.flight(spec.url());
        let core = Core::new(
            spec.config.clone(),
            seed,
            ledger,
            capacity,
            watch,
            Instant::now(),
        );
        let shared = Shared::new(core);
        let session = Session::new(shared.clone(), spec);
        let owner = Owner::new(shared.clone());
        Ok((
            Client::new(owner.clone()),
            Events::new(shared, owner),
            session,
        ))
    }

    fn make_spec(&self) -> Result<Spec, BuildError> {
        let endpoint = Endpoint::parse(&self.url)?;
        let proxy = self.proxy.resolve(endpoint.is_tls(), endpoint.host())?;
        let tls = if endpoint.is_tls() {
            Some(self.tls.config()?)
        } else {
            None
        };
        Ok(Spec {
            config: Arc::new(self.config.clone()),
            connect: Arc::new(ConnectSpec {
                endpoint,
                tls,
                websocket: self.transport.websocket_config(),
                nodelay: self.transport.nodelay,
                resolver: self.resolver.clone(),
                proxy,
            }),
            hello: self.hello.clone(),
            ack: self.ack.clone(),
            request_hook: self.request_hook.clone(),
            request_headers: self.request_headers.clone(),
            after_ack: self.after_ack.clone(),
            binary: self.delivery.binary,
            raw_text: self.delivery.raw_text,
            failure_policy: self.failure_policy.clone(),
            wall_clock: self.wall_clock.clone(),
        })
    }

    /// [`build`](Self::build), then spawns the session on smol's global
    /// executor: the first attempt starts at once.
    pub fn spawn(&self) -> Result<(Client, Events), BuildError> {
        let (client, events, session) = self.build_session()?;
        smol::spawn(session).detach();
        Ok((client, events))
    }
}
