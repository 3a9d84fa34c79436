//! The proxy from the environment, read as curl reads it, as a pure
//! function over a lookup (tests pass a table: setting variables is
//! `unsafe` in edition 2024).
//!
//! 1. `no_proxy`, else `NO_PROXY`: a list of entries separated by commas
//!    (or white space). The broker's host bypasses the proxy when an entry
//!    is `*`, or equals the host, or is a domain the host is in
//!    (`example.com` and `.example.com` both match `example.com` and
//!    `ws.example.com`, not `badexample.com`), or, for an IP address, is
//!    that address or a CIDR range holding it (`10.0.0.0/8`, `::1/128`).
//!    Names compare without case and without a trailing dot; IPv6 entries
//!    may be written in brackets.
//! 2. Otherwise, for `ws://`: `http_proxy` (lowercase only, as curl: an
//!    uppercase `HTTP_PROXY` may be set by a CGI request's `Proxy:` header);
//!    for `wss://`: `https_proxy`, else `HTTPS_PROXY`. Then `all_proxy`,
//!    else `ALL_PROXY`. The first one set is used.
//!
//! A variable that is empty (or only white space) counts as unset. A value
//! that cannot be used (malformed, `https://`) is an error naming the
//! variable, never its value.

use std::net::IpAddr;

use ipnet::IpNet;

use super::super::error::BuildError;
use super::Proxy;
use super::url::parse;

/// The proxy for a broker at `host` (`tls` for `wss://`), from `lookup`.
pub(crate) fn from_env(
    lookup: &dyn Fn(&str) -> Option<String>,
    tls: bool,
    host: &str,
) -> Result<Option<Proxy>, BuildError> {
    let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    if let Some(list) = get("no_proxy").or_else(|| get("NO_PROXY")) {
        if bypassed(&list, host) {
            return Ok(None);
        }
    }
    let names: &[&str] = if tls {
        &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
    } else {
        &["http_proxy", "all_proxy", "ALL_PROXY"]
    };
    for name in names {
        if let Some(value) = get(name) {
            return parse(&value).map(Some).map_err(|why| BuildError::Proxy {
                origin: format!("the environment variable {name}"),
                why,
            });
        }
    }
    Ok(None)
}

/// Whether a `no_proxy` list lets `host` bypass the proxy.
fn bypassed(list: &str, host: &str) -> bool {
    let host = normal(host);
    let ip = host.parse::<IpAddr>().ok();
    list.split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let entry = normal(entry);
            match ip {
                Some(ip) => ip_matches(&entry, ip),
                None => {
                    let domain = entry.strip_prefix('.').unwrap_or(&entry);
                    !domain.is_empty()
                        && (host == domain
                            || host
                                .strip_suffix(domain)
                                .is_some_and(|head| head.ends_with('.')))
                }
            }
        })
}

/// Lowercase, without brackets or a trailing dot.
fn normal(name: &str) -> String {
    let name = name.trim_start_matches('[').trim_end_matches('.');
    name.replace(']', "").to_ascii_lowercase()
}

/// `entry` is `ip` itself or a CIDR range holding it.
fn ip_matches(entry: &str, ip: IpAddr) -> bool {
    match entry.parse::<IpNet>() {
        Ok(net) => net.contains(&ip),
        Err(_) => entry.parse() == Ok(ip),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The proxy chosen for `url`'s scheme and host with only `vars` set,
    /// as `scheme://host:port`, "direct", or "error: ...".
    fn choose(vars: &[(&str, &str)], tls: bool, host: &str) -> String {
        let lookup = |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        };
        match from_env(&lookup, tls, host) {
            Ok(Some(p)) => p.to_string(),
            Ok(None) => "direct".into(),
            Err(e) => format!("error: {e}"),
        }
    }

    /// Variables set, `wss://`, the broker's host, the choice.
    type Row = (
        &'static [(&'static str, &'static str)],
        bool,
        &'static str,
        &'static str,
    );

    const H: &str = "http_proxy";
    const WS: bool = false;
    const WSS: bool = true;

    #[test]
    fn the_environment_table() {
        let rows: &[Row] = &[
            // Nothing set: direct.
            (&[], WS, "broker.example", "direct"),
            (&[], WSS, "broker.example", "direct"),
            // ws:// reads http_proxy, lowercase only.
            (&[(H, "p:3128")], WS, "broker.example", "http://p:3128"),
            (&[("HTTP_PROXY", "p:3128")], WS, "broker.example", "direct"),
            (&[(H, "p:3128")], WSS, "broker.example", "direct"),
            // wss:// reads https_proxy, then HTTPS_PROXY.
            (
                &[("https_proxy", "a:1"), ("HTTPS_PROXY", "b:2")],
                WSS,
                "x",
                "http://a:1",
            ),
            (&[("HTTPS_PROXY", "b:2")], WSS, "x", "http://b:2"),
            (&[("HTTPS_PROXY", "b:2")], WS, "x", "direct"),
            // Then all_proxy, then ALL_PROXY, for both.
            (
                &[("all_proxy", "socks5h://s:1"), ("ALL_PROXY", "t:2")],
                WS,
                "x",
                "socks5h://s:1",
            ),
            (&[("ALL_PROXY", "socks5://t:2")], WSS, "x", "socks5://t:2"),
            (&[(H, "a:1"), ("all_proxy", "b:2")], WS, "x", "http://a:1"),
            (
                &[("https_proxy", "a:1"), ("all_proxy", "b:2")],
                WSS,
                "x",
                "http://a:1",
            ),
            // Empty counts as unset.
            (&[(H, " "), ("all_proxy", "b:2")], WS, "x", "http://b:2"),
            // Credentials are kept (and never shown).
            (&[(H, "http://u:pw@p:1")], WS, "x", "http://***@p:1"),
            // no_proxy, then NO_PROXY.
            (&[(H, "p:1"), ("no_proxy", "*")], WS, "x", "direct"),
            (&[(H, "p:1"), ("NO_PROXY", "*")], WS, "x", "direct"),
            (
                &[(H, "p:1"), ("no_proxy", "other"), ("NO_PROXY", "*")],
                WS,
                "x",
                "http://p:1",
            ),
            (&[(H, "p:1"), ("no_proxy", "")], WS, "x", "http://p:1"),
            // Host names and domain suffixes, at label boundaries.
            (
                &[(H, "p:1"), ("no_proxy", "example.com")],
                WS,
                "example.com",
                "direct",
            ),
            (
                &[(H, "p:1"), ("no_proxy", "example.com")],
                WS,
                "ws.example.com",
                "direct",
            ),
            (
                &[(H, "p:1"), ("no_proxy", ".example.com")],
                WS,
                "ws.example.com",
                "direct",
            ),
            (
                &[(H, "p:1"), ("no_proxy", ".example.com")],
                WS,
                "example.com",
                "direct",
            ),
            (
                &[(H, "p:1"), ("no_proxy", "example.com")],
                WS,
                "badexample.com",
                "http://p:1",
            ),
            (
                &[(H, "p:1"), ("no_proxy", "ws.example.com")],
                WS,
                "example.com",
                "http://p:1",
            ),
            (
                &[(H, "p:1"), ("no_proxy", "EXAMPLE.com.")],
                WS,
                "Ws.Example.COM",
                "direct",
            ),
            (
                &[(H, "p:1"), ("no_proxy", "a, b ,localhost")],
                WS,
                "localhost",
                "direct",
            ),
            (
                &[(H, "p:1"), ("no_proxy", "a b\tlocalhost")],
                WS,
                "localhost",
                "direct",
            ),
            (&[(H, "p:1"), ("no_proxy", "a,*")], WS, "x", "direct"),
            (&[(H, "p:1"), ("no_proxy", ".")], WS, "x", "http://p:1"),
            // IP addresses and CIDR ranges; no suffix matching for them.
            (
                &[(H, "p:1"), ("no_proxy", "127.0.0.1")],
                WS,
                "127.0.0.1",
                "direct",
            ),
            (
                &[(H, "p:1"), ("no_proxy", "127.0.0.1")],
                WS,
                "127.0.0.2",
                "http://p:1",
            ),
            (
                &[(H, "p:1"), ("no_proxy", "10.0.0.0/8")],
                WS,
                "10.2.3.4",
                "direct",
            ),
            (
                &[(H, "p:1"), ("no_proxy", "10.0.0.0/8")],
                WS,
                "11.2.3.4",
                "http://p:1",
            ),
            (
                &[(H, "p:1"), ("no_proxy", "192.168.1.0/25")],
                WS,
                "192.168.1.200",
                "http://p:1",
            ),
            (
                &[(H, "p:1"), ("no_proxy", "0.0.1")],
                WS,
                "10.0.0.1",
                "http://p:1",
            ),
            (&[(H, "p:1"), ("no_proxy", "::1")], WS, "::1", "direct"),
            (&[(H, "p:1"), ("no_proxy", "[::1]")], WS, "::1", "direct"),
            (
                &[(H, "p:1"), ("no_proxy", "fd00::/8")],
                WS,
                "fd12::1",
                "direct",
            ),
            (
                &[(H, "p:1"), ("no_proxy", "127.0.0.1")],
                WS,
                "::1",
                "http://p:1",
            ),
            (
                &[(H, "p:1"), ("no_proxy", "localhost")],
                WS,
                "127.0.0.1",
                "http://p:1",
            ),
            // A bypassed host never reads the proxy variables (as curl).
            (&[(H, "https://p:1"), ("no_proxy", "*")], WS, "x", "direct"),
        ];
        for (vars, tls, host, want) in rows {
            assert_eq!(
                choose(vars, *tls, host),
                *want,
                "{vars:?} tls={tls} host={host}"
            );
        }
    }

    #[test]
    fn unusable_values_are_errors_that_name_the_variable_not_the_value() {
        for (var, value, tls, why) in [
            (
                "https_proxy",
                "https://u:s3cret@p:1",
                WSS,
                "https:// proxies",
            ),
            ("http_proxy", "http://u:s3cret@p:0", WS, "port 0"),
            ("ALL_PROXY", "ftp://u:s3cret@p", WS, "unknown scheme ftp://"),
            ("all_proxy", "socks5://u:s3cret@p/x", WSS, "no path"),
        ] {
            let got = choose(&[(var, value)], tls, "x");
            assert!(
                got.starts_with(&format!(
                    "error: bad proxy (the environment variable {var}): "
                )),
                "{got}"
            );
            assert!(got.contains(why), "{got}");
            assert!(!got.contains("s3cret"), "{got}");
        }
    }
}
