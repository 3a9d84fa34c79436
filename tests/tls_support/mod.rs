//! TLS test fixtures: a certificate authority made with rcgen that issues
//! server certificates (valid, for another name, expired), and a TLS echo
//! broker on 127.0.0.1 that speaks the example broker's protocol (hello →
//! hello_ack, JSON echo). Nothing is installed on the machine.
#![allow(dead_code)]

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
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};
use serde_json::json;
use smol::Task;

pub fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server certificate and its key.
pub struct ServerCert {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
}

/// A certificate authority of the test's own.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// Its certificate, DER.
    pub der: CertificateDer<'static>,
    /// Its certificate, PEM.
    pub pem: String,
}

impl Ca {
    /// A new CA called `name`.
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            der: cert.der().clone(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `names`, valid from 1975 to 4096.
    pub fn issue(&self, names: &[&str]) -> ServerCert {
        self.issue_with(names, |_| {})
    }

    /// A server certificate for `names` that expired in 2001.
    pub fn issue_expired(&self, names: &[&str]) -> ServerCert {
        self.issue_with(names, |p| {
            p.not_before = date_time_ymd(2000, 1, 1);
            p.not_after = date_time_ymd(2001, 1, 1);
        })
    }

    fn issue_with(
        &self,
        names: &[&str],
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> ServerCert {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "test broker");
        adjust(&mut params);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        ServerCert {
            cert: cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }

    /// A client configuration that trusts this CA only.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        config_from_roots(roots)
    }
}

/// A client configuration that trusts exactly `roots`, built as the crate
/// docs show (ring, never the process-wide default provider).
pub fn config_from_roots(roots: RootCertStore) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// A self-signed certificate for `localhost` and its key.
pub fn self_signed() -> ServerCert {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    ServerCert {
        cert: certified.cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(key),
    }
}

#[derive(Default)]
pub struct TlsStats {
    pub handshakes_failed: AtomicUsize,
    pub hellos: AtomicUsize,
    pub closes: AtomicUsize,
}

/// The example broker's protocol (hello → hello_ack, JSON echo) over TLS,
/// on 127.0.0.1, served on smol's global executor.
pub struct TlsBroker {
    pub port: u16,
    pub stats: Arc<TlsStats>,
    _task: Task<()>,
}

impl TlsBroker {
    pub fn start(server: ServerCert) -> TlsBroker {
        let config = ServerConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![server.cert], server.key)
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
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

    /// `wss://localhost:PORT/ws`.
    pub fn url(&self) -> String {
        self.url_for("localhost")
    }

    /// `wss://HOST:PORT/ws` (HOST must resolve to 127.0.0.1).
    pub fn url_for(&self, host: &str) -> String {
        format!("wss://{host}:{}/ws", self.port)
    }
}
