//! The session's URL: parsed and checked once, at construction, and kept
//! in a form that is safe to log.

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::handshake::client::Request;
use async_tungstenite::tungstenite::http::Uri;

/// The URL is not a usable `ws://` or `wss://` URL. Its text never holds
/// the query string, fragment or user info of the URL (they carry secrets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad url {url}: {why}")]
pub struct UrlError {
    /// The URL, without query string or credentials.
    pub url: String,
    /// What is wrong with it.
    pub why: String,
}

/// A parsed `ws://` or `wss://` URL.
#[derive(Debug, Clone)]
pub struct Endpoint {
    url: String,
    host: String,
    port: u16,
    tls: bool,
    redacted: String,
}

impl Endpoint {
    /// Parses and checks `url`: scheme `ws` or `wss`, a host, a valid port.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let bad = |why: &str| UrlError {
            url: redact(url),
            why: why.to_owned(),
        };
        let uri: Uri =
            url.parse()
                .map_err(|e: async_tungstenite::tungstenite::http::uri::InvalidUri| {
                    bad(&e.to_string())
                })?;
        let tls = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            Some(_) => return Err(bad("the scheme must be ws:// or wss://")),
            None => return Err(bad("missing scheme: expected ws:// or wss://")),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("missing host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        // tungstenite checks the rest of the request when it builds one; do
        // it once here so a bad URL fails at construction, not per attempt.
        url.into_client_request().map_err(|e| bad(&e.to_string()))?;
        Ok(Endpoint {
            url: url.to_owned(),
            host,
            port,
            tls,
            redacted: redact(url),
        })
    }

    /// The URL without its query string or user info, safe to log.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The host name or IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port: explicit, or 80 / 443 by scheme.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the scheme is `wss`.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// A fresh upgrade request for one attempt.
    pub fn request(&self) -> Result<Request, async_tungstenite::tungstenite::Error> {
        self.url.as_str().into_client_request()
    }
}

/// Strips the query string, fragment and user info: they often carry
/// credentials and must never reach a log.
pub fn redact(url: &str) -> String {
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    let base = &url[..cut];
    let Some(scheme_end) = base.find("://").map(|i| i + 3) else {
        return base.to_owned();
    };
    // User info ends at the authority's last '@' (a password may hold '@';
    // a path may too, but that is past the authority).
    let rest = &base[scheme_end..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => format!("{}{}", &base[..scheme_end], &rest[at + 1..]),
        None => base.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_at_construction() {
        assert!(Endpoint::parse("ws://127.0.0.1:9001/ws").is_ok());
        assert!(Endpoint::parse("wss://example.com/ws").unwrap().is_tls());
        for bad in ["http://x/", "127.0.0.1:80", "ws://", "not a url", ""] {
            assert!(
                matches!(Endpoint::parse(bad), Err(UrlError { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn redaction_drops_query_and_credentials() {
        assert_eq!(redact("wss://u:p@h:1/ws?token=s3cret#x"), "wss://h:1/ws");
        assert_eq!(redact("ws://h/ws"), "ws://h/ws");
        assert_eq!(redact("ws://user:p@ss-w0rd@h:1/ws"), "ws://h:1/ws");
        assert_eq!(redact("ws://h/path@with-at"), "ws://h/path@with-at");
        let e = Endpoint::parse("ws://h/ws?token=abc").unwrap();
        assert_eq!(e.redacted(), "ws://h/ws");
    }
}
