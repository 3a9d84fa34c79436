//! Proxies on real sockets: `ws://` and `wss://` through tinyproxy (HTTP
//! CONNECT) and microsocks (SOCKS5, `socks5://` and `socks5h://`), with
//! credentials right and wrong; the environment through a lookup; and, from
//! in-test proxies, the faults a real proxy will not make (silence, garbage)
//! and what a SOCKS5 request carries.
//!
//! The real proxies are Debian's `tinyproxy` and `microsocks`: without
//! them the tests that need them are skipped, each with a `SKIPPED` line
//! on stderr that plain `cargo test` shows (they fail under `CI`).

#[path = "../examples/common/broker.rs"]
mod broker;
mod driver_support;
mod proxy_support;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_io::Async;
use async_tungstenite::tungstenite::Message;
use futures_lite::{AsyncReadExt, AsyncWriteExt, StreamExt};
use futures_rustls::TlsAcceptor;
use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use futures_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use futures_util::SinkExt;
use serde_json::json;
use smol::Task;
use ws_lifecycle::{
    BuildError, Cause, Client, ClientBuilder, CloseReason, ConnectError, RejectedBy, SessionEvent,
    Status,
};

use broker::{Broker, Options};
use driver_support::*;
use proxy_support::{microsocks, on_localhost, tinyproxy};

const ALICE: (&str, &str) = ("alice", "s3cret-pw");
const WRONG: (&str, &str) = ("alice", "wrong-pw");

/// An echo broker on every address of `localhost`, one port.
fn localhost_broker() -> (Vec<Broker>, u16) {
    on_localhost(|addr| {
        let b = Broker::start(addr, Options::default())?;
        let port = b.addr.port();
        Ok((b, port))
    })
}

/// How many connections the brokers saw.
fn connections(brokers: &[Broker]) -> usize {
    brokers
        .iter()
        .map(|b| b.stats.connections.load(Ordering::SeqCst))
        .sum()
}

fn via(url: String, proxy: &str) -> ClientBuilder {
    Client::builder(url).config(fast_config()).proxy(proxy)
}

/// Open on attempt 1, one echo, a clean close.
async fn round_trip(client: &Client, w: &mut Watch) {
    assert_eq!(w.status(Status::Open).await, (Cause::Acked, 1));
    client.send(&json!({ "via": "proxy" })).unwrap();
    assert_eq!(w.message().await["data"]["via"], "proxy");
    close_and_end(client, w).await;
}

/// The first `ConnectFailed` as (attempt, error text, whether `check`
/// holds for the typed error).
async fn first_failure(
    w: &mut Watch,
    check: impl Fn(&ConnectError) -> bool,
) -> (u64, String, bool) {
    w.until("ConnectFailed", |e| match e {
        SessionEvent::ConnectFailed { attempt, error } => {
            Some((*attempt, error.to_string(), check(error)))
        }
        _ => None,
    })
    .await
}

/// The session ends by itself, rejected by `by`, after exactly one attempt.
async fn rejected_after_one_attempt(client: &Client, w: &mut Watch, by: RejectedBy) {
    let rest = w.end().await;
    let outcome = match rest.last() {
        Some(SessionEvent::Closed(outcome)) => outcome,
        other => panic!("expected Closed, got {other:?}; seen:\n  {}", w.history()),
    };
    assert_eq!(outcome.reason, CloseReason::Rejected { by });
    assert!(
        !rest
            .iter()
            .any(|e| matches!(e, SessionEvent::ReconnectScheduled { .. })),
        "{rest:?}"
    );
    assert_eq!(client.status(), Status::Closed);
}

// ── HTTP CONNECT: tinyproxy ────────────────────────────────────────────

#[test]
fn ws_through_tinyproxy_round_trips() {
    let Some(proxy) = tinyproxy(None) else { return };
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let (client, mut w) = spawn_as_is(via(broker.url(), &proxy.url("http", None)));
        round_trip(&client, &mut w).await;
        let log = proxy.log();
        assert!(
            log.contains(&format!("CONNECT {} HTTP/1.1", broker.addr)),
            "tinyproxy did not carry it:\n{log}"
        );
    });
}

#[test]
fn ws_through_tinyproxy_with_basic_credentials() {
    let Some(proxy) = tinyproxy(Some(ALICE)) else {
        return;
    };
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        // No scheme means http://.
        let url = proxy.url("http", Some(ALICE)).replace("http://", "");
        let (client, mut w) = spawn_as_is(via(broker.url(), &url));
        round_trip(&client, &mut w).await;
    });
}

#[test]
fn missing_or_wrong_credentials_at_tinyproxy_are_terminal() {
    let Some(proxy) = tinyproxy(Some(ALICE)) else {
        return;
    };
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        // Missing: 407. Wrong: tinyproxy 1.11 answers 401 (terminal too, as
        // every status outside `retried_statuses`).
        for (credentials, status) in [(None, 407), (Some(WRONG), 401)] {
            let (client, mut w) = spawn_as_is(via(broker.url(), &proxy.url("http", credentials)));
            let (attempt, error, typed) = first_failure(&mut w, |e| {
                matches!(e, ConnectError::ProxyRefused { status: s, .. } if *s == status)
                    && e.http_status().is_none()
            })
            .await;
            assert_eq!(attempt, 1);
            assert!(typed, "{error}");
            assert!(error.contains(&status.to_string()), "{error}");
            assert!(
                !error.contains("wrong-pw") && !error.contains("alice"),
                "{error}"
            );
            let by = RejectedBy::Proxy {
                status: Some(status),
            };
            rejected_after_one_attempt(&client, &mut w, by).await;
        }
        assert_eq!(broker.stats.connections.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn a_5xx_from_tinyproxy_is_retried() {
    let Some(proxy) = tinyproxy(None) else { return };
    run(async {
        // Nothing listens there: tinyproxy answers 500.
        let (client, mut w) = spawn_as_is(via(ws_url(free_addr()), &proxy.url("http", None)));
        for expected in 1..=2 {
            let (attempt, error, typed) = first_failure(
                &mut w,
                |e| matches!(e, ConnectError::ProxyRefused { status, .. } if *status >= 500),
            )
            .await;
            assert_eq!(attempt, expected);
            assert!(typed, "{error}");
            assert_eq!(
                w.status(Status::Reconnecting).await,
                (Cause::ConnectFailed, expected + 1)
            );
        }
        close_and_end(&client, &mut w).await;
    });
}

#[test]
fn wss_through_tinyproxy_verifies_the_brokers_name() {
    let Some(proxy) = tinyproxy(None) else { return };
    run(async {
        let tls = TlsBroker::on_localhost();
        let (client, mut w) =
            spawn_as_is(via(tls.url(), &proxy.url("http", None)).tls_config(tls.client_config()));
        round_trip(&client, &mut w).await;
        assert_eq!(tls.hellos.load(Ordering::SeqCst), 1);
        assert!(
            proxy
                .log()
                .contains(&format!("CONNECT localhost:{}", tls.port))
        );
    });
}

// ── SOCKS5: microsocks ─────────────────────────────────────────────────

#[test]
fn ws_through_microsocks_socks5_and_socks5h_with_and_without_credentials() {
    let Some(open) = microsocks(None) else { return };
    let Some(guarded) = microsocks(Some(ALICE)) else {
        return;
    };
    run(async {
        let (brokers, port) = localhost_broker();
        // socks5h: microsocks resolves `localhost`; socks5: the client does.
        for url in [
            open.url("socks5h", None),
            open.url("socks5", None),
            guarded.url("socks5h", Some(ALICE)),
            guarded.url("SOCKS5", Some(ALICE)),
        ] {
            let (client, mut w) = spawn_as_is(via(format!("ws://localhost:{port}/ws"), &url));
            round_trip(&client, &mut w).await;
        }
        assert_eq!(connections(&brokers), 4);
    });
}

#[test]
fn wss_through_microsocks_verifies_the_brokers_name() {
    let Some(proxy) = microsocks(Some(ALICE)) else {
        return;
    };
    run(async {
        let tls = TlsBroker::on_localhost();
        for scheme in ["socks5h", "socks5"] {
            let (client, mut w) = spawn_as_is(
                via(tls.url(), &proxy.url(scheme, Some(ALICE))).tls_config(tls.client_config()),
            );
            round_trip(&client, &mut w).await;
        }
        assert_eq!(tls.hellos.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn wrong_or_missing_credentials_at_microsocks_are_terminal() {
    let Some(proxy) = microsocks(Some(ALICE)) else {
        return;
    };
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        // Wrong password: RFC 1929 status 1. None at all: no acceptable method.
        for credentials in [Some(WRONG), None] {
            let (client, mut w) = spawn_as_is(via(broker.url(), &proxy.url("socks5", credentials)));
            let (attempt, error, typed) = first_failure(&mut w, |e| match credentials {
                Some(_) => matches!(e, ConnectError::SocksAuth { .. }),
                None => matches!(e, ConnectError::SocksNoMethod { .. }),
            })
            .await;
            assert_eq!(attempt, 1);
            assert!(typed, "{error}");
            assert!(
                !error.contains("wrong-pw") && !error.contains("alice"),
                "{error}"
            );
            rejected_after_one_attempt(&client, &mut w, RejectedBy::SocksAuth).await;
        }
        assert_eq!(broker.stats.connections.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn a_socks5_reply_code_is_a_typed_retried_failure() {
    let Some(proxy) = microsocks(None) else {
        return;
    };
    run(async {
        // Nothing listens there: microsocks replies with a failure code.
        let (client, mut w) = spawn_as_is(via(ws_url(free_addr()), &proxy.url("socks5", None)));
        let (attempt, error, typed) = first_failure(
            &mut w,
            |e| matches!(e, ConnectError::SocksReply { reply, .. } if *reply != 0),
        )
        .await;
        assert_eq!(attempt, 1);
        assert!(typed, "{error}");
        println!("microsocks to a closed port: {error}");
        assert_eq!(
            w.status(Status::Reconnecting).await,
            (Cause::ConnectFailed, 2)
        );
        close_and_end(&client, &mut w).await;
    });
}

// ── in-test proxies: what a SOCKS5 request carries, silence, garbage ───

/// A listener that runs `serve` on every connection it accepts.
struct FakeProxy {
    port: u16,
    accepted: Arc<AtomicUsize>,
    _task: Task<()>,
}

impl FakeProxy {
    fn start<F, Fut>(serve: F) -> FakeProxy
    where
        F: Fn(Async<std::net::TcpStream>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
        let port = listener.get_ref().local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = smol::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                conns.push(smol::spawn(serve(stream)));
            }
        });
        FakeProxy {
            port,
            accepted,
            _task: task,
        }
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }
}

#[test]
fn socks5_sends_an_address_and_socks5h_the_name() {
    run(async {
        let requests: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let seen = requests.clone();
        // Accepts no authentication, records the request, refuses it
        // (reply 2: not allowed by the ruleset).
        let fake = FakeProxy::start(move |mut s| {
            let seen = seen.clone();
            async move {
                let mut greeting = [0u8; 3];
                if s.read_exact(&mut greeting).await.is_err() {
                    return;
                }
                let _ = s.write_all(&[5, 0]).await;
                let mut buf = vec![0u8; 64];
                let Ok(n) = s.read(&mut buf).await else {
                    return;
                };
                buf.truncate(n);
                seen.lock().unwrap().push(buf);
                let _ = s.write_all(&[5, 2, 0, 1, 0, 0, 0, 0, 0, 0]).await;
            }
        });
        for scheme in ["socks5", "socks5h"] {
            let (client, mut w) =
                spawn_as_is(via("ws://localhost:4242/ws".into(), &fake.url(scheme)));
            let (_, error, typed) = first_failure(&mut w, |e| {
                matches!(e, ConnectError::SocksReply { reply: 2, .. })
            })
            .await;
            assert!(typed, "{error}");
            assert!(error.contains("not allowed by ruleset"), "{error}");
            // A reply code is retried.
            w.status(Status::Reconnecting).await;
            close_and_end(&client, &mut w).await;
        }
        let requests = requests.lock().unwrap().clone();
        let port = 4242u16.to_be_bytes();
        // socks5: an address of localhost (IPv4 or IPv6), resolved here.
        let local = &requests[0];
        assert_eq!(local[..3], [5, 1, 0]);
        assert!(
            (local[3] == 1 && local[4..8] == [127, 0, 0, 1] && local[8..] == port)
                || (local[3] == 4 && local[4..20] == std::net::Ipv6Addr::LOCALHOST.octets()),
            "{local:?}"
        );
        // socks5h: the name.
        assert_eq!(
            requests[1],
            [&[5, 1, 0, 3, 9][..], b"localhost", &port].concat()
        );
    });
}

#[test]
fn a_proxy_that_says_nothing_meets_the_connect_deadline() {
    run(async {
        let fake = FakeProxy::start(|s| async move {
            // Holds the connection and never answers.
            async_io::Timer::after(Duration::from_secs(30)).await;
            drop(s);
        });
        for scheme in ["http", "socks5h"] {
            let builder = Client::builder("ws://127.0.0.1:4242/ws")
                .config(ws_lifecycle::Config {
                    connect_timeout: ms(300),
                    ..fast_config()
                })
                .proxy(fake.url(scheme));
            let (client, mut w) = spawn_as_is(builder);
            let (attempt, error, typed) =
                first_failure(&mut w, |e| matches!(e, ConnectError::Deadline { .. })).await;
            assert_eq!(attempt, 1);
            assert!(typed, "{error}");
            assert_eq!(
                w.status(Status::Reconnecting).await,
                (Cause::ConnectTimeout, 2)
            );
            close_and_end(&client, &mut w).await;
        }
        assert!(fake.accepted.load(Ordering::SeqCst) >= 2);
    });
}

#[test]
fn a_proxy_that_answers_garbage_is_a_retried_protocol_error() {
    run(async {
        let fake = FakeProxy::start(|mut s| async move {
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"SSH-2.0-OpenSSH\r\n\r\n").await;
        });
        for scheme in ["http", "socks5"] {
            let (client, mut w) =
                spawn_as_is(via("ws://127.0.0.1:4242/ws".into(), &fake.url(scheme)));
            let (attempt, error, typed) =
                first_failure(&mut w, |e| matches!(e, ConnectError::ProxyProtocol { .. })).await;
            assert_eq!(attempt, 1);
            assert!(typed, "{error}");
            println!("{scheme} garbage: {error}");
            assert_eq!(
                w.status(Status::Reconnecting).await,
                (Cause::ConnectFailed, 2)
            );
            close_and_end(&client, &mut w).await;
        }
    });
}

// ── the environment, through a lookup ──────────────────────────────────

#[test]
fn the_environment_chooses_the_proxy_and_no_proxy_bypasses_it() {
    let Some(proxy) = tinyproxy(None) else { return };
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let proxy_url = proxy.url("http", None);
        let env = move |no_proxy: &'static str| {
            let proxy_url = proxy_url.clone();
            move |name: &str| match name {
                "http_proxy" => Some(proxy_url.clone()),
                "no_proxy" => Some(no_proxy.to_owned()),
                _ => None,
            }
        };
        // Through the proxy.
        let (client, mut w) = spawn_as_is(
            Client::builder(broker.url())
                .config(fast_config())
                .proxy_from_lookup(env("example.com")),
        );
        round_trip(&client, &mut w).await;
        let connects = || proxy.log().matches("CONNECT 127.0.0.1").count();
        assert_eq!(connects(), 1, "{}", proxy.log());
        // Bypassed: the broker's address is in no_proxy.
        let (client, mut w) = spawn_as_is(
            Client::builder(broker.url())
                .config(fast_config())
                .proxy_from_lookup(env("localhost, 127.0.0.1")),
        );
        round_trip(&client, &mut w).await;
        assert_eq!(connects(), 1, "{}", proxy.log());
        assert_eq!(broker.stats.connections.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn unusable_proxy_urls_are_build_errors_without_their_credentials() {
    let build = |builder: ClientBuilder| match builder.build() {
        Err(e @ BuildError::Proxy { .. }) => e.to_string(),
        Err(other) => panic!("expected BuildError::Proxy, got {other}"),
        Ok(_) => panic!("expected BuildError::Proxy, built"),
    };
    let url = "wss://broker.example/ws";
    let https = build(Client::builder(url).proxy("https://u:s3cret@proxy:443"));
    assert!(https.contains("https:// proxies"), "{https}");
    let bad = build(Client::builder(url).proxy("http://u:s3cret@proxy:99999"));
    assert!(bad.contains("port"), "{bad}");
    let env = build(Client::builder(url).proxy_from_lookup(|name| {
        (name == "HTTPS_PROXY").then(|| "socks4://u:s3cret@proxy".to_owned())
    }));
    assert!(
        env.contains("HTTPS_PROXY") && env.contains("SOCKS4"),
        "{env}"
    );
    for text in [https, bad, env] {
        assert!(!text.contains("s3cret"), "{text}");
    }
    // The builder's Debug hides them too.
    let builder = Client::builder(url).proxy("socks5h://alice:s3cret@proxy:1080");
    let shown = format!("{builder:?}");
    assert!(
        shown.contains("proxy:1080") && !shown.contains("s3cret") && !shown.contains("alice"),
        "{shown}"
    );
    // An explicit choice overrides the environment, in either direction.
    let broken_env = |_: &str| Some("https://proxy".to_owned());
    assert!(
        Client::builder(url)
            .proxy_from_lookup(broken_env)
            .no_proxy()
            .build()
            .is_ok()
    );
    assert!(
        Client::builder(url)
            .proxy_from_lookup(broken_env)
            .proxy("http://proxy:3128")
            .build()
            .is_ok()
    );
}

// ── a TLS echo broker ──────────────────────────────────────────────────

/// The example broker's protocol over TLS, with a self-signed certificate
/// for `localhost`, on every address of `localhost`.
struct TlsBroker {
    port: u16,
    cert: CertificateDer<'static>,
    hellos: Arc<AtomicUsize>,
    _tasks: Vec<Task<()>>,
}

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsBroker {
    fn on_localhost() -> TlsBroker {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
        let cert = certified.cert.der().clone();
        let server = ServerConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], PrivateKeyDer::Pkcs8(key))
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(server));
        let hellos = Arc::new(AtomicUsize::new(0));
        let (tasks, port) = on_localhost(|addr: SocketAddr| {
            let listener = Async::<TcpListener>::bind(addr)?;
            let port = listener.get_ref().local_addr()?.port();
            let (acceptor, hellos) = (acceptor.clone(), hellos.clone());
            Ok((smol::spawn(serve_tls(listener, acceptor, hellos)), port))
        });
        TlsBroker {
            port,
            cert,
            hellos,
            _tasks: tasks,
        }
    }

    fn url(&self) -> String {
        format!("wss://localhost:{}/ws", self.port)
    }

    /// A client configuration that trusts this broker's certificate.
    fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.clone()).unwrap();
        Arc::new(
            ClientConfig::builder_with_provider(ring())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

async fn serve_tls(listener: Async<TcpListener>, acceptor: TlsAcceptor, hellos: Arc<AtomicUsize>) {
    let mut conns = Vec::new();
    while let Ok((tcp, _)) = listener.accept().await {
        let (acceptor, hellos) = (acceptor.clone(), hellos.clone());
        conns.push(smol::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let Ok(mut ws) = async_tungstenite::accept_async(tls).await else {
                return;
            };
            while let Some(Ok(message)) = ws.next().await {
                match message {
                    Message::Text(text) => {
                        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                            continue;
                        };
                        let reply = if v["type"] == "hello" {
                            hellos.fetch_add(1, Ordering::SeqCst);
                            json!({ "type": "hello_ack" })
                        } else {
                            json!({ "type": "echo", "data": v })
                        };
                        if ws.send(Message::text(reply.to_string())).await.is_err() {
                            break;
                        }
                    }
                    Message::Close(_) => {
                        let _ = ws.flush().await;
                        break;
                    }
                    _ => {}
                }
            }
        }));
    }
}
