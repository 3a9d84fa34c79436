//! Proxy URLs: `[scheme://][user[:password]@]host[:port][/]`.
//!
//! Schemes `http` (the default when there is none), `socks5`, `socks5h`,
//! case-insensitive. `https://` proxies (TLS to the proxy) are refused, as
//! is anything with a path, query or fragment. The port defaults to 1080,
//! as curl's does. User info is percent-decoded (RFC 3986 §2.1); for SOCKS5
//! each part must be 1 to 255 bytes (RFC 1929 §2).

use std::net::Ipv6Addr;

use super::{Credentials, Kind, Proxy};

/// curl's default proxy port, for every scheme it shares with us.
const DEFAULT_PORT: u16 = 1080;

/// Parses a proxy URL; the error says what is wrong, never echoing a
/// credential (the caller makes it a [`BuildError::Proxy`] naming where
/// the URL came from, never the URL itself, which may carry a password).
///
/// [`BuildError::Proxy`]: super::super::error::BuildError::Proxy
pub(crate) fn parse(text: &str) -> Result<Proxy, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the proxy URL is empty".into());
    }
    let (kind, rest) = match text.split_once("://") {
        None => (Kind::Http, text),
        Some((scheme, rest)) => {
            let kind = match scheme.to_ascii_lowercase().as_str() {
                "http" => Kind::Http,
                "socks5" => Kind::Socks5,
                "socks5h" => Kind::Socks5h,
                "https" => {
                    return Err("https:// proxies (TLS to the proxy) are not supported: \
                                use http://, socks5:// or socks5h://"
                        .into());
                }
                "socks4" | "socks4a" => {
                    return Err("SOCKS4 is not supported: use socks5:// or socks5h://".into());
                }
                s if !s.is_empty()
                    && s.len() <= 16
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-') =>
                {
                    return Err(format!(
                        "unknown scheme {s}:// (expected http://, socks5:// or socks5h://)"
                    ));
                }
                _ => {
                    return Err(
                        "malformed scheme (expected http://, socks5:// or socks5h://)".into(),
                    );
                }
            };
            (kind, rest)
        }
    };
    // User info ends at the last '@' (a password may hold one).
    let (userinfo, hostport) = match rest.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, rest),
    };
    let hostport = hostport.strip_suffix('/').unwrap_or(hostport);
    if hostport.contains(['/', '?', '#']) {
        return Err("a proxy URL has no path, query or fragment".into());
    }
    let (host, port) = host_port(hostport)?;
    let credentials = userinfo.map(|u| credentials(u, kind)).transpose()?;
    Ok(Proxy {
        kind,
        host,
        port: port.unwrap_or(DEFAULT_PORT),
        credentials,
    })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn host_port(text: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address lacks its closing ']'")?;
        v6.parse::<Ipv6Addr>()
            .map_err(|_| "the address in [...] is not an IPv6 address")?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("junk after the IPv6 address")?),
        };
        (v6, port)
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err("missing host".into());
    }
    if !text.starts_with('[')
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err("the host holds a character a host name cannot".into());
    }
    let port = port
        .map(|p| match p.parse::<u16>() {
            Ok(0) => Err("port 0".to_owned()),
            Ok(n) if p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
            _ if p.is_empty() => Err("empty port".to_owned()),
            _ => Err("the port is not a number within 1-65535".to_owned()),
        })
        .transpose()?;
    Ok((host.to_owned(), port))
}

/// `user[:password]`, percent-decoded.
fn credentials(userinfo: &str, kind: Kind) -> Result<Credentials, String> {
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let user = percent_decode(user).ok_or("bad percent-encoding in the user name")?;
    let password = percent_decode(password).ok_or("bad percent-encoding in the password")?;
    if kind != Kind::Http {
        for (what, part) in [("user name", &user), ("password", &password)] {
            if part.is_empty() || part.len() > 255 {
                return Err(format!("a SOCKS5 {what} must be 1 to 255 bytes (RFC 1929)"));
            }
        }
    } else if user.contains(':') {
        return Err("the user name holds a ':' (Basic credentials cannot)".into());
    }
    Ok(Credentials { user, password })
}

/// RFC 3986 §2.1; `None` for a bad escape (the decoder would keep a `%`
/// not followed by two hex digits as text) or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let hex = |s: &str| {
        s.get(..2)
            .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    if !text.split('%').skip(1).all(hex) {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()?;
    Some(decoded.into_owned())
}

/// The URL with its user info replaced by `***`, for `Debug`.
pub(crate) fn redact(text: &str) -> String {
    // A scheme is letters, digits, `+`, `-`, `.` before "://"; a "://"
    // after anything else belongs to the user info (a password may hold it).
    let is_scheme = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    };
    let (scheme, rest) = match text.find("://") {
        Some(i) if is_scheme(&text[..i]) => text.split_at(i + 3),
        _ => ("", text),
    };
    match rest.rfind('@') {
        Some(at) => format!("{scheme}***{}", &rest[at..]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_never_shows_a_password_holding_a_scheme_separator() {
        for url in ["alice:pa://ss@proxy:1", "http://alice:pa://ss@proxy:1"] {
            let shown = redact(url);
            assert!(
                !shown.contains("alice") && !shown.contains("pa:") && !shown.contains("ss@"),
                "{shown}"
            );
            assert!(shown.ends_with("@proxy:1"), "{shown}");
        }
    }

    fn show(text: &str) -> String {
        match parse(text) {
            Ok(p) => {
                let creds = p
                    .credentials
                    .as_ref()
                    .map(|c| format!(" user={:?} password={:?}", c.user, c.password))
                    .unwrap_or_default();
                format!("{p}{creds}")
            }
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn proxy_urls_parse() {
        for (text, want) in [
            ("http://127.0.0.1:8888", "http://127.0.0.1:8888"),
            ("127.0.0.1:8888", "http://127.0.0.1:8888"),
            ("proxy.corp", "http://proxy.corp:1080"),
            ("HTTP://Proxy.corp:3128/", "http://Proxy.corp:3128"),
            ("socks5://[::1]:1080", "socks5://[::1]:1080"),
            ("socks5h://localhost", "socks5h://localhost:1080"),
            (" socks5h://localhost:9050 ", "socks5h://localhost:9050"),
            (
                "http://al%40ce:p%3Ass@proxy:1",
                r#"http://***@proxy:1 user="al@ce" password="p:ss""#,
            ),
            (
                "http://alice:p@ss@proxy:1",
                r#"http://***@proxy:1 user="alice" password="p@ss""#,
            ),
            (
                "http://alice@proxy:1",
                r#"http://***@proxy:1 user="alice" password="""#,
            ),
            (
                "https://proxy:443",
                "error: https:// proxies (TLS to the proxy) are not supported: use http://, socks5:// or socks5h://",
            ),
            (
                "socks4://proxy:1080",
                "error: SOCKS4 is not supported: use socks5:// or socks5h://",
            ),
            (
                "ftp://proxy:21",
                "error: unknown scheme ftp:// (expected http://, socks5:// or socks5h://)",
            ),
            ("", "error: the proxy URL is empty"),
            ("http://", "error: missing host"),
            ("http://proxy:0", "error: port 0"),
            ("http://proxy:", "error: empty port"),
            (
                "http://proxy:99999",
                "error: the port is not a number within 1-65535",
            ),
            (
                "http://proxy:+80",
                "error: the port is not a number within 1-65535",
            ),
            (
                "http://proxy/path",
                "error: a proxy URL has no path, query or fragment",
            ),
            (
                "http://proxy?x=1",
                "error: a proxy URL has no path, query or fragment",
            ),
            (
                "http://[::1",
                "error: an IPv6 address lacks its closing ']'",
            ),
            (
                "http://[proxy]:1",
                "error: the address in [...] is not an IPv6 address",
            ),
            (
                "http://pro xy:1",
                "error: the host holds a character a host name cannot",
            ),
            (
                "socks5://:pw@proxy:1",
                "error: a SOCKS5 user name must be 1 to 255 bytes (RFC 1929)",
            ),
            (
                "socks5://u@proxy:1",
                "error: a SOCKS5 password must be 1 to 255 bytes (RFC 1929)",
            ),
            (
                "http://u:%zz@proxy:1",
                "error: bad percent-encoding in the password",
            ),
        ] {
            assert_eq!(show(text), want, "{text:?}");
        }
    }

    #[test]
    fn errors_and_debug_never_show_credentials() {
        for text in [
            "http://alice:s3cret@proxy:0",
            "https://alice:s3cret@proxy:1",
            "socks5://alice:s3cret@proxy/x",
            "http://alice:s3cret%zz@proxy:1",
        ] {
            let e = parse(text).unwrap_err();
            assert!(!e.contains("s3cret") && !e.contains("alice"), "{e}");
        }
        let p = parse("socks5h://alice:s3cret@proxy:1").unwrap();
        for shown in [
            format!("{p}"),
            format!("{p:?}"),
            redact("socks5h://alice:s3cret@proxy:1"),
        ] {
            assert!(
                !shown.contains("s3cret") && !shown.contains("alice"),
                "{shown}"
            );
        }
        assert_eq!(redact("alice:s3c@et@proxy:1"), "***@proxy:1");
    }
}
