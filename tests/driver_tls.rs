//! `wss://` against a local TLS echo broker with a self-signed certificate
//! (rcgen): a client that trusts the certificate round-trips, one with the
//! default configuration (webpki roots) refuses it and keeps retrying.

mod driver_support;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_io::Async;
use async_tungstenite::tungstenite::Message;
use futures_lite::StreamExt;
use futures_rustls::TlsAcceptor;
use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use futures_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use futures_util::SinkExt;
use serde_json::json;
use smol::Task;
use ws_lifecycle::fsm::{Cause, Status};
use ws_lifecycle::{Client, SessionEvent};

use driver_support::*;

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed certificate for `localhost` and its key.
fn self_signed() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    (certified.cert.der().clone(), PrivateKeyDer::Pkcs8(key))
}

#[derive(Default)]
struct TlsStats {
    handshakes_failed: AtomicUsize,
    hellos: AtomicUsize,
    closes: AtomicUsize,
}

/// The example broker's protocol (hello → hello_ack, JSON echo) over TLS.
struct TlsBroker {
    port: u16,
    stats: Arc<TlsStats>,
    _task: Task<()>,
}

impl TlsBroker {
    fn start(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> TlsBroker {
        let server = ServerConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(server));
        let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
        let port = listener.get_ref().local_addr().unwrap().port();
        let stats = Arc::new(TlsStats::default());
        let shared = stats.clone();
        let task = smol::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, stats) = (acceptor.clone(), shared.clone());
                conns.push(smol::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        stats.handshakes_failed.fetch_add(1, Ordering::SeqCst);
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
                                    stats.hellos.fetch_add(1, Ordering::SeqCst);
                                    json!({ "type": "hello_ack" })
                                } else {
                                    json!({ "type": "echo", "data": v })
                                };
                                if ws.send(Message::text(reply.to_string())).await.is_err() {
                                    break;
                                }
                            }
                            Message::Close(_) => {
                                stats.closes.fetch_add(1, Ordering::SeqCst);
                                // tungstenite queued the reply; flush it.
                                let _ = ws.flush().await;
                                break;
                            }
                            _ => {}
                        }
                    }
                }));
            }
        });
        TlsBroker {
            port,
            stats,
            _task: task,
        }
    }

    fn url(&self) -> String {
        format!("wss://localhost:{}/ws", self.port)
    }
}

#[test]
fn wss_round_trip_with_a_trusted_self_signed_certificate() {
    run(async {
        let (cert, key) = self_signed();
        let broker = TlsBroker::start(cert.clone(), key);
        let mut roots = RootCertStore::empty();
        roots.add(cert).unwrap();
        let tls = ClientConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let (client, mut w) = spawn_watched(
            Client::builder(broker.url())
                .config(fast_config())
                .tls_config(Arc::new(tls)),
        );
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 1));
        client.send(&json!({ "over": "tls" })).unwrap();
        let echo = w.message().await;
        assert_eq!(echo["data"]["over"], "tls");
        let rest = close_and_end(&client, &mut w).await;
        assert!(
            rest.iter().any(|e| matches!(
                e,
                SessionEvent::Status {
                    cause: Cause::CloseCompleted,
                    ..
                }
            )),
            "the TLS broker answered the close: {rest:?}"
        );
        assert_eq!(broker.stats.hellos.load(Ordering::SeqCst), 1);
        assert_eq!(broker.stats.closes.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn default_tls_config_rejects_an_untrusted_certificate_and_retries() {
    run(async {
        let (cert, key) = self_signed();
        let broker = TlsBroker::start(cert, key);
        let (client, mut w) = start_client(broker.url(), fast_config());
        for expected in 1..=2 {
            let (attempt, error) = w.connect_failed().await;
            assert_eq!(attempt, expected);
            assert!(
                error.contains("certificate") || error.contains("UnknownIssuer"),
                "{error}"
            );
            if expected == 1 {
                println!("untrusted certificate: {error}");
            }
            // Retried on the schedule, not terminal.
            assert_eq!(
                w.status(Status::Reconnecting).await,
                (Cause::ConnectFailed, expected + 1)
            );
        }
        assert_eq!(broker.stats.hellos.load(Ordering::SeqCst), 0);
        wait_until("the server to see the failed handshakes", || {
            broker.stats.handshakes_failed.load(Ordering::SeqCst) >= 2
        })
        .await;
        close_and_end(&client, &mut w).await;
    });
}
