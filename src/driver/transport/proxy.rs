//! Proxies: the tunnel an attempt opens between TCP and TLS.
//!
//! The attempt connects TCP to the proxy (with the same address-connect
//! code as a direct connection, so the connect deadline bounds it), asks
//! the proxy for a tunnel to the broker, and then runs TLS (for `wss://`,
//! verifying the *broker's* name) and the WebSocket upgrade inside it.
//!
//! - `http://` — HTTP CONNECT (RFC 9110 §9.3.6), with Basic credentials
//!   (RFC 7617) in `Proxy-Authorization` when the URL has user info:
//!   [`http_connect`].
//! - `socks5://` and `socks5h://` — SOCKS5 (RFC 1928) with the
//!   username/password method (RFC 1929) when the URL has user info:
//!   [`socks5`]. `socks5://` resolves the broker's name here and sends the
//!   first address the system resolver returns (getaddrinfo orders its
//!   answers by RFC 6724, so that is an address of the family this host
//!   prefers); `socks5h://` sends the name for the proxy to resolve.
//!
//! Which proxy, if any: the builder's explicit choice, or the environment
//! read as curl reads it ([`env`]), when the builder builds its first
//! session. Credentials never leave this module except on the wire: every
//! `Debug`, `Display`, error and log line shows a proxy as
//! `scheme://host:port`.

mod env;
mod http_connect;
mod socks5;
mod url;

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use futures_lite::{AsyncRead, AsyncWrite};

use super::error::ConnectError;

use super::error::BuildError;

/// The protocol spoken to the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `http://`: HTTP CONNECT.
    Http,
    /// `socks5://`: SOCKS5, the broker's name resolved here.
    Socks5,
    /// `socks5h://`: SOCKS5, the name resolved by the proxy.
    Socks5h,
}

impl Kind {
    fn scheme(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Socks5 => "socks5",
            Kind::Socks5h => "socks5h",
        }
    }
}

/// User name and password, percent-decoded. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(***)")
    }
}

/// A parsed proxy URL.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Proxy {
    pub(crate) kind: Kind,
    /// A name or an IP address (IPv6 without brackets).
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) credentials: Option<Credentials>,
}

/// `scheme://host:port`, plus `***@` when there are credentials.
impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = if self.credentials.is_some() {
            "***@"
        } else {
            ""
        };
        write!(
            f,
            "{}://{auth}{}",
            self.kind.scheme(),
            authority(&self.host, self.port)
        )
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proxy({self})")
    }
}

/// `host:port`, with brackets around an IPv6 address.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl Proxy {
    /// The host TCP connects to.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// The port TCP connects to.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The proxy as errors name it: `scheme://host:port`, no credentials.
    fn name(&self) -> String {
        format!(
            "{}://{}",
            self.kind.scheme(),
            authority(&self.host, self.port)
        )
    }

    /// Asks the proxy, over `stream` (TCP to the proxy), for a tunnel to
    /// `host:port`. On success the stream carries the broker's bytes.
    pub(crate) async fn tunnel<S>(
        &self,
        stream: &mut S,
        host: &str,
        port: u16,
    ) -> Result<(), ConnectError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = self.name();
        match self.kind {
            Kind::Http => http_connect::connect(stream, self, &name, host, port).await,
            Kind::Socks5h => {
                let target = match host.parse::<IpAddr>() {
                    Ok(ip) => socks5::Target::Ip(ip),
                    Err(_) => socks5::Target::Name(host),
                };
                socks5::connect(stream, self, &name, target, port).await
            }
            Kind::Socks5 => {
                let ip = match host.parse::<IpAddr>() {
                    Ok(ip) => ip,
                    Err(_) => resolve_first(host, port).await?,
                };
                socks5::connect(stream, self, &name, socks5::Target::Ip(ip), port).await
            }
        }
    }
}

/// `socks5://`: the first address the system resolver returns for `host`.
async fn resolve_first(host: &str, port: u16) -> Result<IpAddr, ConnectError> {
    let resolve_error = |source| ConnectError::ProxyResolve {
        host: host.to_owned(),
        source,
    };
    let addrs = smol::net::resolve((host, port))
        .await
        .map_err(resolve_error)?;
    addrs
        .first()
        .map(|a| a.ip())
        .ok_or_else(|| resolve_error(io::Error::new(io::ErrorKind::NotFound, "no addresses")))
}

/// A lookup of environment variables: `std::env::var` in production, a
/// table in tests.
pub(crate) type LookupFn = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Where a builder's proxy comes from.
#[derive(Clone)]
pub(crate) enum ProxySetting {
    /// The process environment, read as curl reads it (the default).
    Environment,
    /// Like the environment, through the caller's lookup.
    Lookup(Arc<LookupFn>),
    /// No proxy, whatever the environment says.
    None,
    /// This proxy URL.
    Url(String),
}

impl fmt::Debug for ProxySetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxySetting::Environment => f.write_str("Environment"),
            ProxySetting::Lookup(_) => f.write_str("Lookup(..)"),
            ProxySetting::None => f.write_str("None"),
            ProxySetting::Url(text) => write!(f, "Url({:?})", url::redact(text)),
        }
    }
}

impl ProxySetting {
    /// The proxy for a broker at `host` (`tls`: a `wss://` URL), if any.
    pub(crate) fn resolve(&self, tls: bool, host: &str) -> Result<Option<Proxy>, BuildError> {
        let proxy = match self {
            ProxySetting::None => None,
            ProxySetting::Url(text) => Some(url::parse(text).map_err(|why| BuildError::Proxy {
                origin: "the builder's proxy URL".into(),
                why,
            })?),
            ProxySetting::Environment => {
                env::from_env(&|name| std::env::var(name).ok(), tls, host)?
            }
            ProxySetting::Lookup(lookup) => env::from_env(&**lookup, tls, host)?,
        };
        if let Some(p) = &proxy {
            log::debug!("connecting to {host} through the proxy {p}");
        }
        Ok(proxy)
    }
}
