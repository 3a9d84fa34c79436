//! TLS for `wss://`: which roots are trusted (the operating system's store
//! by default, extra PEM roots, or a whole custom rustls configuration),
//! the handshake step of a connect, and what a refused certificate means
//! ([`TlsFailure`]).
//!
//! Built without the `tls` feature, `wss://` is refused at construction
//! ([`BuildError::TlsDisabled`]); the setup's errors are
//! [`BuildError`] variants.

use std::io;
use std::net::TcpStream;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_io::Async;
use futures_lite::{AsyncRead, AsyncWrite};

use super::error::BuildError;
use super::error::{ConnectError, TlsFailure};

#[cfg(feature = "tls")]
pub(crate) use enabled::{TlsConfig, Trust};

impl TlsFailure {
    /// The cause of a failed handshake, read from the rustls error inside
    /// the I/O error that the TLS stream returned.
    #[cfg(feature = "tls")]
    pub(crate) fn of(error: &io::Error) -> TlsFailure {
        use futures_rustls::rustls::{CertificateError, Error};
        let rustls_error = error.get_ref().and_then(|e| e.downcast_ref::<Error>());
        match rustls_error {
            Some(Error::InvalidCertificate(cert)) => match cert {
                CertificateError::UnknownIssuer => TlsFailure::UnknownIssuer,
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => TlsFailure::NotValidForName,
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    TlsFailure::Expired
                }
                _ => TlsFailure::Other(Error::InvalidCertificate(cert.clone()).to_string()),
            },
            Some(other) => TlsFailure::Other(other.to_string()),
            None => TlsFailure::Other(error.to_string()),
        }
    }
}

/// A TCP stream, plain or wrapped in TLS. The TLS state is boxed so a
/// plain connection stays small.
pub(crate) enum MaybeTls {
    /// `ws://`
    Plain(Async<TcpStream>),
    /// `wss://`
    #[cfg(feature = "tls")]
    Tls(Box<futures_rustls::client::TlsStream<Async<TcpStream>>>),
}

/// What a `wss://` session connects with. Without the `tls` feature no
/// value exists, so no session can hold one.
#[cfg(not(feature = "tls"))]
pub(crate) type TlsConfig = std::convert::Infallible;

/// The TLS step of a connect: `tcp` as is for `ws://` (no `config`),
/// else the TLS handshake with `host` as the server name.
pub(crate) async fn secure(
    config: Option<&TlsConfig>,
    host: &str,
    tcp: Async<TcpStream>,
) -> Result<MaybeTls, ConnectError> {
    match config {
        None => Ok(MaybeTls::Plain(tcp)),
        #[cfg(feature = "tls")]
        Some(config) => enabled::handshake(config, host, tcp).await,
        #[cfg(not(feature = "tls"))]
        Some(never) => {
            let _ = host;
            match *never {}
        }
    }
}

impl AsyncRead for MaybeTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_close(cx),
            #[cfg(feature = "tls")]
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

/// Without the `tls` feature there is nothing to configure: `wss://` is
/// refused.
#[cfg(not(feature = "tls"))]
#[derive(Clone, Default)]
pub(crate) struct Trust {}

#[cfg(not(feature = "tls"))]
impl Trust {
    /// Always [`BuildError::TlsDisabled`].
    pub(crate) fn config(&self) -> Result<TlsConfig, BuildError> {
        Err(BuildError::TlsDisabled)
    }
}

#[cfg(feature = "tls")]
mod enabled {
    use std::net::TcpStream;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, OnceLock};

    use async_io::Async;
    use futures_rustls::TlsConnector;
    use futures_rustls::rustls::pki_types::pem::PemObject;
    use futures_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use futures_rustls::rustls::{self, ClientConfig, RootCertStore};

    use super::{BuildError, ConnectError, MaybeTls, TlsFailure};

    /// What a `wss://` session connects with.
    pub(crate) type TlsConfig = Arc<ClientConfig>;

    /// A TLS configuration that trusts exactly `roots`: ring as the crypto
    /// provider (never the process-wide default, which panics unless
    /// exactly one provider is compiled in), the safe protocol versions, no
    /// client certificate.
    fn config_from_roots(roots: RootCertStore) -> Result<Arc<ClientConfig>, BuildError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    /// The operating system's roots (and the bundled ones with the
    /// `webpki-roots` feature) into `roots`. Finding none is an error
    /// unless `others` (the caller gave roots of their own).
    fn add_default_roots(roots: &mut RootCertStore, others: bool) -> Result<(), BuildError> {
        let loaded = rustls_native_certs::load_native_certs();
        let found = loaded.certs.len();
        let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
        let mut problems: Vec<String> = loaded.errors.iter().map(|e| e.to_string()).collect();
        if ignored > 0 {
            problems.push(format!("{ignored} certificates could not be parsed"));
        }
        if found == 0 {
            problems.push("no certificate found".to_owned());
        }
        for problem in &problems {
            log::debug!("system trust store: {problem}");
        }
        log::debug!("system trust store: {added} roots");
        #[cfg(feature = "webpki-roots")]
        let bundled = {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            true
        };
        #[cfg(not(feature = "webpki-roots"))]
        let bundled = false;
        if added == 0 && !bundled {
            if !others {
                return Err(BuildError::NoSystemRoots { problems });
            }
            log::warn!(
                "the system trust store has no usable certificate; only the roots given \
                 to the builder are trusted"
            );
        }
        Ok(())
    }

    /// Extra roots given to the builder, read when the session is built.
    #[derive(Clone)]
    enum ExtraRoots {
        /// `add_root_pem`, with its place among those calls (from 1).
        Pem(Arc<[u8]>, usize),
        /// `add_roots_from_file`.
        File(PathBuf),
    }

    impl ExtraRoots {
        fn add_to(&self, roots: &mut RootCertStore) -> Result<(), BuildError> {
            match self {
                ExtraRoots::Pem(bytes, nth) => add_pem(
                    roots,
                    bytes,
                    &format!("the PEM bytes of add_root_pem call {nth}"),
                ),
                ExtraRoots::File(path) => {
                    let bytes = std::fs::read(path).map_err(|source| BuildError::ReadRoots {
                        path: path.clone(),
                        source,
                    })?;
                    add_pem(roots, &bytes, &display(path))
                }
            }
        }
    }

    fn display(path: &Path) -> String {
        path.display().to_string()
    }

    /// Every certificate of the PEM text `bytes` into `roots`; other
    /// sections (keys) are skipped. At least one is required.
    fn add_pem(roots: &mut RootCertStore, bytes: &[u8], origin: &str) -> Result<(), BuildError> {
        let mut count = 0;
        for (i, cert) in CertificateDer::pem_slice_iter(bytes).enumerate() {
            let cert = cert.map_err(|e| BuildError::BadPem {
                origin: origin.to_owned(),
                why: e.to_string(),
            })?;
            roots.add(cert).map_err(|e| BuildError::BadRoot {
                origin: origin.to_owned(),
                index: i + 1,
                why: e.to_string(),
            })?;
            count += 1;
        }
        if count == 0 {
            return Err(BuildError::NoCertificate {
                origin: origin.to_owned(),
            });
        }
        Ok(())
    }

    /// The builder's trust settings for `wss://`.
    #[derive(Clone, Default)]
    pub(crate) struct Trust {
        /// `tls_config`: used as is.
        custom: Option<Arc<ClientConfig>>,
        /// Roots trusted beside the system's, in the order given.
        extra: Vec<ExtraRoots>,
        /// The configuration built from the above, shared by the clones of
        /// a builder (loading the system's store is not free).
        built: Arc<OnceLock<Arc<ClientConfig>>>,
    }

    impl Trust {
        /// Uses `config` as is.
        pub(crate) fn custom(&mut self, config: Arc<ClientConfig>) {
            self.custom = Some(config);
            self.built = Arc::default();
        }

        /// Trusts the certificates of the PEM text `pem` too.
        pub(crate) fn add_pem(&mut self, pem: &[u8]) {
            let nth = 1 + self
                .extra
                .iter()
                .filter(|e| matches!(e, ExtraRoots::Pem(..)))
                .count();
            self.extra.push(ExtraRoots::Pem(pem.into(), nth));
            self.built = Arc::default();
        }

        /// Trusts the certificates of the PEM file at `path` too.
        pub(crate) fn add_file(&mut self, path: PathBuf) {
            self.extra.push(ExtraRoots::File(path));
            self.built = Arc::default();
        }

        /// The configuration for `wss://`: the custom one, or the system's
        /// roots and the extra ones.
        pub(crate) fn config(&self) -> Result<Arc<ClientConfig>, BuildError> {
            if let Some(config) = &self.custom {
                return Ok(config.clone());
            }
            if let Some(config) = self.built.get() {
                return Ok(config.clone());
            }
            let mut roots = RootCertStore::empty();
            for extra in &self.extra {
                extra.add_to(&mut roots)?;
            }
            add_default_roots(&mut roots, !self.extra.is_empty())?;
            let built = config_from_roots(roots)?;
            Ok(self.built.get_or_init(|| built).clone())
        }
    }

    /// The TLS handshake over `tcp` with `host` as the server name.
    pub(crate) async fn handshake(
        config: &Arc<ClientConfig>,
        host: &str,
        tcp: Async<TcpStream>,
    ) -> Result<MaybeTls, ConnectError> {
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            let source = std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
            ConnectError::Tls {
                host: host.to_owned(),
                cause: TlsFailure::Other(format!("{host:?} cannot be a TLS server name")),
                source,
            }
        })?;
        // Boxed: the TLS handshake state is large and only `wss://` needs it.
        let handshake = Box::pin(TlsConnector::from(config.clone()).connect(name, tcp));
        let tls = handshake.await.map_err(|source| ConnectError::Tls {
            host: host.to_owned(),
            cause: TlsFailure::of(&source),
            source,
        })?;
        Ok(MaybeTls::Tls(Box::new(tls)))
    }
}
