//! [`BuildError`]: every caller mistake a builder can find, in one type,
//! defined below the modules that find them (the URL, the settings, the
//! proxy URL, the trust roots) so each can return it.

use std::io;
use std::path::PathBuf;

use crate::fsm::ConfigError;

/// Why a session could not be built. Every caller mistake lands here, at
/// construction, never later: the URL, a setting, the proxy URL, the TLS
/// setup for `wss://`. Its text never holds a credential: a URL is shown
/// without user info or query, a proxy URL not at all (only where it came
/// from).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The URL is not a usable `ws://` or `wss://` URL.
    #[error("bad url {url}: {why}")]
    Url {
        /// The URL, without user info, query string or fragment.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The lifecycle configuration ([`Config`](crate::Config)) is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A setting of the [`TransportConfig`](crate::TransportConfig) or the
    /// [`DeliveryConfig`](crate::DeliveryConfig) is invalid (including
    /// those tungstenite would panic on).
    #[error("{config} config: `{setting}` {why}")]
    Setting {
        /// Which configuration: `"transport"` or `"delivery"`.
        config: &'static str,
        /// The field, as written in that configuration.
        setting: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// The proxy URL (given to
    /// [`ClientBuilder::proxy`](crate::ClientBuilder::proxy) or found in the
    /// environment) cannot be used: malformed, or an `https://` proxy.
    #[error("bad proxy ({origin}): {why}")]
    Proxy {
        /// Where it came from: the builder, or the environment variable
        /// named (never the URL, which may hold a password).
        origin: String,
        /// What is wrong with it.
        why: String,
    },
    /// `wss://`, but this build of the crate has no TLS: its `tls` feature
    /// is off.
    #[error(
        "tls setup failed: wss:// needs TLS, but ws-lifecycle was built without its `tls` \
         feature (only ws:// works); enable the feature"
    )]
    TlsDisabled,
    /// `wss://`: the operating system's trust store gave no usable
    /// certificate and no other root was given.
    #[error(
        "tls setup failed: the system trust store has no usable certificate ({}); install the \
         system's CA certificates (e.g. the ca-certificates package), point SSL_CERT_FILE at \
         a PEM bundle, add roots with ClientBuilder::add_root_pem or add_roots_from_file, or \
         enable the `webpki-roots` feature",
        .problems.join("; ")
    )]
    NoSystemRoots {
        /// What went wrong while loading it (files that could not be read,
        /// certificates that could not be parsed, or that none were found).
        problems: Vec<String>,
    },
    /// A file of extra roots
    /// ([`ClientBuilder::add_roots_from_file`](crate::ClientBuilder::add_roots_from_file))
    /// could not be read.
    #[error("tls setup failed: cannot read root certificates from {}: {source}", .path.display())]
    ReadRoots {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Extra roots held no PEM certificate.
    #[error("tls setup failed: {origin} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificate {
        /// Where the roots came from: a file's path, or which PEM bytes.
        origin: String,
    },
    /// Extra roots were not valid PEM.
    #[error("tls setup failed: {origin} is not valid PEM: {why}")]
    BadPem {
        /// Where the roots came from.
        origin: String,
        /// What is wrong.
        why: String,
    },
    /// A certificate of the extra roots is not usable as a trust anchor.
    #[error("tls setup failed: certificate {index} of {origin} is not a usable root: {why}")]
    BadRoot {
        /// Where the roots came from.
        origin: String,
        /// Which certificate, counting from 1.
        index: usize,
        /// What is wrong.
        why: String,
    },
    /// rustls refused the TLS configuration.
    #[cfg(feature = "tls")]
    #[error("tls setup failed: rustls refused the configuration: {0}")]
    Rustls(#[from] futures_rustls::rustls::Error),
}

impl BuildError {
    /// A refused setting of the transport configuration.
    pub(crate) fn transport(setting: &'static str, why: impl Into<String>) -> Self {
        BuildError::Setting {
            config: "transport",
            setting,
            why: why.into(),
        }
    }

    /// A refused setting of the delivery configuration.
    pub(crate) fn delivery(setting: &'static str, why: impl Into<String>) -> Self {
        BuildError::Setting {
            config: "delivery",
            setting,
            why: why.into(),
        }
    }
}
