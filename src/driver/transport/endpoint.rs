//! The session's URL: parsed and checked once, at construction, and kept
//! in a form that is safe to log.

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::handshake::client::Request;
use async_tungstenite::tungstenite::http::Uri;

use super::error::BuildError;

/// A parsed `ws://` or `wss://` URL.
#[derive(Clone)]
pub struct Endpoint {
    url: String,
    host: String,
    port: u16,
    tls: bool,
    redacted: String,
}

/// Only the redacted URL: the full one may hold credentials.
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.redacted)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .finish()
    }
}

impl Endpoint {
    /// Parses and checks `url`: scheme `ws` or `wss`, a host, a port that
    /// is absent (80 or 443 by scheme) or in 1..=65535, no fragment
    /// (RFC 6455 §3). A query without a path gets the path `/`.
    ///
    /// User info (`wss://user:password@host/`) is accepted but sent
    /// nowhere: tungstenite leaves it out of `Host` and adds no
    /// `Authorization` (set headers with the builder's request hook). A
    /// `/`, `?`, `#` or `@` in it must be percent-encoded; unencoded, the
    /// URL is refused, since it would read as another host and path.
    ///
    /// A refusal is [`BuildError::Url`], whose text never holds the query
    /// string, fragment or user info of the URL (they carry secrets).
    pub fn parse(url: &str) -> Result<Self, BuildError> {
        let redacted = redact(url);
        let bad = |why: &str| BuildError::Url {
            url: redacted.clone(),
            why: why.to_owned(),
        };
        // Checks on the text as written, first: `http::Uri` reads these
        // URLs as something else (another host, the default port, no
        // fragment) without complaint.
        let (scheme, authority, tail) = split(url);
        if let Some(why) = credentials_problem(authority, tail) {
            return Err(bad(why));
        }
        if url.contains('#') {
            return Err(bad(
                "a fragment (#...) is not allowed in a WebSocket URL (RFC 6455 section 3)",
            ));
        }
        let hostport = authority.rsplit('@').next().unwrap_or(authority);
        let explicit_port = port_text(hostport)
            .map(port_number)
            .transpose()
            .map_err(bad)?;
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
        let port = explicit_port.unwrap_or(if tls { 443 } else { 80 });
        // `wss://broker?token=x` would send `GET ?token=x`.
        let url = if tail.starts_with('?') {
            format!("{scheme}{authority}/{tail}")
        } else {
            url.to_owned()
        };
        // tungstenite checks the rest of the request when it builds one; do
        // it once here so a bad URL fails at construction, not per attempt.
        url.as_str()
            .into_client_request()
            .map_err(|e| bad(&e.to_string()))?;
        Ok(Endpoint {
            redacted: redact(&url),
            url,
            host,
            port,
            tls,
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

/// The URL as written: `scheme://` (empty when absent), the authority (up
/// to the first `/`, `?` or `#`, as every URL parser reads it), the rest.
fn split(url: &str) -> (&str, &str, &str) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    (&url[..start], &url[start..end], &url[end..])
}

/// The text after the port's `:` in `host[:port]`, if there is a `:`.
fn port_text(hostport: &str) -> Option<&str> {
    let after_host = match hostport.strip_prefix('[') {
        Some(v6) => v6.find(']').map_or("", |i| &v6[i + 1..]),
        None => hostport,
    };
    after_host.rfind(':').map(|i| &after_host[i + 1..])
}

/// The port in `text` (RFC 3986: digits only), in 1..=65535.
fn port_number(text: &str) -> Result<u16, &'static str> {
    if text.is_empty() {
        return Err("empty port after ':' (leave the ':' out for the default port)");
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the port is not a number");
    }
    match text.trim_start_matches('0') {
        "" => Err("port 0 cannot be connected to (use 1 to 65535)"),
        digits => digits
            .parse::<u16>()
            .map_err(|_| "the port is out of range (1 to 65535)"),
    }
}

/// User info that holds a character that must be percent-encoded, which
/// makes the URL read as another host and path (or another user info).
fn credentials_problem(authority: &str, tail: &str) -> Option<&'static str> {
    if authority.matches('@').count() > 1 {
        return Some("the user info holds an '@': percent-encode it as %40");
    }
    // `u:pa/ss@host` reads as host `u`, port `pa`, path `/ss@host`: a
    // port that is not one, then an '@', is taken for cut-off user info.
    let cut_user_info = !authority.contains('@')
        && tail.contains('@')
        && port_text(authority).is_some_and(|p| port_number(p).is_err());
    cut_user_info.then_some(
        "the text after ':' is not a port and an '@' follows: if this is user info, \
         percent-encode '/', '?' and '#' in it as %2F, %3F and %23",
    )
}

/// Strips the query string, fragment and user info: they often carry
/// credentials and must never reach a log. When user info holding an
/// unencoded `/`, `?` or `#` makes it unclear where the host starts, all
/// that follows the scheme is replaced by `<redacted>`.
pub fn redact(url: &str) -> String {
    let (scheme, authority, tail) = split(url);
    let path = &tail[..tail.find(['?', '#']).unwrap_or(tail.len())];
    // User info ends at the authority's last '@' (a password may hold '@';
    // a path may too, but that is past the authority).
    if let Some(at) = authority.rfind('@') {
        return format!("{scheme}{}{path}", &authority[at + 1..]);
    }
    if credentials_problem(authority, tail).is_some() {
        return format!("{scheme}<redacted>");
    }
    format!("{scheme}{authority}{path}")
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
                matches!(Endpoint::parse(bad), Err(BuildError::Url { .. })),
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

    /// What a refusal of the URL says.
    struct Refused {
        why: String,
        shown: String,
    }

    impl std::fmt::Display for Refused {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.shown)
        }
    }

    /// Parses `url`, which must be refused, and checks that neither the
    /// error's Display nor its Debug holds any of `secrets`.
    fn refused(url: &str, secrets: &[&str]) -> Refused {
        let e = match Endpoint::parse(url) {
            Ok(e) => panic!("{url} was accepted as {e:?} (port {})", e.port()),
            Err(e) => e,
        };
        let (shown, debug) = (format!("{e}"), format!("{e:?}"));
        for secret in secrets {
            assert!(!shown.contains(secret), "{url}: {secret:?} in {shown}");
            assert!(!debug.contains(secret), "{url}: {secret:?} in {debug}");
        }
        match e {
            BuildError::Url { why, .. } => Refused { why, shown },
            other => panic!("{url}: not a URL error: {other:?}"),
        }
    }

    #[test]
    fn a_port_out_of_range_is_refused() {
        for url in [
            "ws://h:99999/",
            "ws://h:65536/",
            "ws://h:123456789012345678901/",
        ] {
            let e = refused(url, &[]);
            assert!(e.why.contains("out of range"), "{url}: {e}");
        }
        let e = refused("wss://u:s3cret@h:99999/ws?token=q1", &["s3cret", "q1"]);
        assert!(e.why.contains("out of range"), "{e}");
    }

    #[test]
    fn a_port_that_is_not_a_number_is_refused() {
        for url in [
            "ws://h:abc/",
            "ws://h:+80/",
            "ws://h:8o/ws",
            "ws://[::1]:x/ws",
        ] {
            let e = refused(url, &[]);
            assert!(e.why.contains("not a number"), "{url}: {e}");
        }
        let e = refused("wss://u:s3cret@h:abc/ws?token=q1", &["s3cret", "q1"]);
        assert!(e.why.contains("not a number"), "{e}");
    }

    #[test]
    fn port_0_is_refused() {
        for url in [
            "ws://h:0/",
            "ws://h:00/ws",
            "wss://u:s3cret@h:0/ws?token=q1",
        ] {
            let e = refused(url, &["s3cret", "q1"]);
            assert!(e.why.contains("port 0"), "{url}: {e}");
        }
    }

    #[test]
    fn an_empty_port_is_refused() {
        for url in [
            "ws://h:/",
            "ws://h:",
            "ws://[::1]:/ws",
            "ws://u:s3cret@h:/?token=q1",
        ] {
            let e = refused(url, &["s3cret", "q1"]);
            assert!(e.why.contains("empty port"), "{url}: {e}");
        }
    }

    #[test]
    fn valid_ports_are_kept() {
        assert_eq!(Endpoint::parse("ws://h:65535/").unwrap().port(), 65535);
        assert_eq!(Endpoint::parse("ws://h:1/").unwrap().port(), 1);
        assert_eq!(Endpoint::parse("ws://h:00080/").unwrap().port(), 80);
        assert_eq!(Endpoint::parse("ws://h/").unwrap().port(), 80);
        assert_eq!(Endpoint::parse("wss://h/").unwrap().port(), 443);
    }

    #[test]
    fn a_fragment_is_refused() {
        for url in [
            "ws://h/ws#s3cret",
            "ws://h/ws#",
            "ws://h#s3cret",
            "ws://h/ws?q1#s3cret",
        ] {
            let e = refused(url, &["s3cret", "q1"]);
            assert!(e.why.contains("fragment"), "{url}: {e}");
        }
    }

    /// What the issue's `pa/ss`-style passwords must not show: any piece
    /// of the password next to its neighbours.
    fn pieces(sep: char) -> Vec<String> {
        vec![
            ":pa".into(),
            format!("pa{sep}"),
            format!("{sep}ss"),
            "ss@".into(),
        ]
    }

    fn refused_for_credentials(url: &str, secrets: &[&str]) {
        let e = refused(url, secrets);
        assert!(e.why.contains("percent-encode"), "{url}: {e}");
    }

    #[test]
    fn a_password_with_a_slash_is_refused_without_leaking_it() {
        let pieces = pieces('/');
        let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
        refused_for_credentials("wss://u:pa/ss@host/ws", &pieces);
        let e = refused("wss://u:pa/ss@host/ws", &[]);
        assert!(e.why.contains("%2F"), "{e}");
        refused_for_credentials(
            "wss://u:s3c/r3t@host:9001/ws?token=q1",
            &["s3c", "r3t", "q1"],
        );
        refused_for_credentials("wss://u:/s3cr3t@host/ws", &["s3cr3t"]);
        refused_for_credentials("wss://u:99999/s3cr3t@host/ws", &["s3cr3t"]);
        refused_for_credentials("wss://u:0/s3cr3t@host/ws", &["s3cr3t"]);
    }

    #[test]
    fn a_password_with_a_question_mark_is_refused_without_leaking_it() {
        let pieces = pieces('?');
        let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
        refused_for_credentials("wss://u:pa?ss@host/ws", &pieces);
        refused_for_credentials("wss://u:s3c?r3t@host/ws", &["s3c", "r3t"]);
    }

    #[test]
    fn a_password_with_a_hash_is_refused_without_leaking_it() {
        let pieces = pieces('#');
        let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
        refused_for_credentials("wss://u:pa#ss@host/ws", &pieces);
        refused_for_credentials("wss://u:s3c#r3t@host/ws", &["s3c", "r3t"]);
    }

    #[test]
    fn a_password_with_an_at_sign_is_refused_without_leaking_it() {
        // Accepted before, and tungstenite then sent `Host: ss@host`.
        let pieces = pieces('@');
        let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
        refused_for_credentials("wss://u:pa@ss@host/ws", &pieces);
        let e = refused("wss://u:s3c@r3t@host/ws", &["s3c", "r3t"]);
        assert!(e.why.contains("%40"), "{e}");
    }

    #[test]
    fn redaction_never_shows_a_password_holding_reserved_characters() {
        for sep in ['/', '?', '#', '@'] {
            for url in [
                format!("wss://u:s3c{sep}r3t@host/ws?token=q1"),
                format!("wss://u:s3c{sep}r3t@host:9001"),
                format!("u:s3c{sep}r3t@host/ws"),
                format!("wss://u:{sep}s3cr3t@host/ws"),
            ] {
                let r = redact(&url);
                for secret in ["s3c", "r3t", "q1"] {
                    assert!(!r.contains(secret), "{url} -> {r}");
                }
            }
            let url = format!("wss://u:pa{sep}ss@host/ws");
            let r = redact(&url);
            for piece in pieces(sep) {
                assert!(!r.contains(&piece), "{url} -> {r}");
            }
        }
    }

    #[test]
    fn a_query_without_a_path_gets_the_root_path() {
        let e = Endpoint::parse("wss://broker?token=x").unwrap();
        let request = e.request().unwrap();
        let target = request.uri().path_and_query().unwrap().as_str();
        assert_eq!(target, "/?token=x");
        assert_eq!(e.redacted(), "wss://broker/");
        let e = Endpoint::parse("ws://[::1]:9001?token=x").unwrap();
        let request = e.request().unwrap();
        let target = request.uri().path_and_query().unwrap().as_str();
        assert_eq!(target, "/?token=x");
    }

    #[test]
    fn ipv6_with_a_port_still_works() {
        let e = Endpoint::parse("ws://[::1]:9001/ws").unwrap();
        assert_eq!((e.host(), e.port(), e.is_tls()), ("::1", 9001, false));
        assert_eq!(e.redacted(), "ws://[::1]:9001/ws");
        let e = Endpoint::parse("wss://u:p@[::1]/ws").unwrap();
        assert_eq!((e.host(), e.port()), ("::1", 443));
    }

    #[test]
    fn an_at_sign_in_the_path_is_still_accepted() {
        let e = Endpoint::parse("ws://h:9001/path@with-at").unwrap();
        assert_eq!((e.host(), e.port()), ("h", 9001));
        assert_eq!(e.redacted(), "ws://h:9001/path@with-at");
    }

    /// User info is accepted but sent nowhere: tungstenite leaves it out
    /// of `Host` and adds no `Authorization`.
    #[test]
    fn user_info_is_accepted_and_not_sent() {
        let e = Endpoint::parse("wss://u:p%2Fss@host:9001/ws").unwrap();
        assert_eq!((e.host(), e.port()), ("host", 9001));
        assert_eq!(e.redacted(), "wss://host:9001/ws");
        let request = e.request().unwrap();
        assert_eq!(request.headers()["host"], "host:9001");
        assert!(request.headers().get("authorization").is_none());
        assert!(!format!("{e:?}").contains("p%2Fss"), "{e:?}");
    }

    #[test]
    fn the_endpoint_debug_holds_no_query() {
        let e = Endpoint::parse("ws://h/ws?token=s3cret").unwrap();
        assert!(!format!("{e:?}").contains("s3cret"), "{e:?}");
    }
}
