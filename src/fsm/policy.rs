//! The failure policy as data: every failure is a [`Failure`] value, the
//! [`Config`] classifies it into a [`Verdict`] (retry on the schedule, retry
//! no earlier than a server's hint, or stop), and a terminal verdict ends the
//! session in [`CloseReason::Rejected`](super::CloseReason::Rejected) with a
//! [`RejectedBy`] saying who refused and how.
//!
//! Default verdicts ([`Config::verdict`]):
//!
//! | failure | default verdict |
//! |---|---|
//! | [`ConnectFailure::Http`] with a status in [`Config::retried_statuses`] (5xx, 408, 429) | retry; no earlier than its `Retry-After` when it had one |
//! | [`ConnectFailure::Http`] with any other status | terminal, [`RejectedBy::Http`] |
//! | [`ConnectFailure::Proxy`] with a status in `retried_statuses`, or none | retry |
//! | [`ConnectFailure::Proxy`] with any other status (407, 403, …) | terminal, [`RejectedBy::Proxy`] |
//! | [`ConnectFailure::SocksAuth`] (a SOCKS5 proxy refused the credentials) | terminal, [`RejectedBy::SocksAuth`] |
//! | any other [`ConnectFailure`] (resolve, I/O, TLS, deadline, bad handshake, request) | retry |
//! | [`Failure::PeerClosed`] matching a rule of [`Config::terminal_closes`] | terminal, [`RejectedBy::Close`] |
//! | every other failure | retry |
//!
//! A caller's verdict ([`Event::Judged`](super::Event::Judged)) replaces
//! the default; a terminal one is [`RejectedBy::Caller`].

use std::fmt;
use std::io;
use std::str::FromStr;
use std::time::Duration;

use super::{Config, ConfigError};

/// Why an attempt failed, as the policy sees it: a plain value, so the
/// verdict is a pure function of it and the [`Config`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// The transport never opened (see [`ConnectFailure`]).
    Connect(ConnectFailure),
    /// The hello builder (or the after-ack builder) failed.
    HelloFailed,
    /// The ack deadline passed.
    AckTimeout,
    /// The peer's close frame arrived.
    PeerClosed {
        /// The peer's close code (1005 when its frame carried none).
        code: u16,
        /// The peer's close reason.
        reason: String,
    },
    /// The transport ended without a close frame.
    TransportLost,
    /// Nothing arrived within `stale_after`: the link is half-dead.
    Stale,
    /// An inbound message exceeded the size limit.
    MessageTooBig,
    /// The peer broke the protocol (the close code naming it: 1002, 1007).
    ProtocolError {
        /// 1002 (protocol violation) or 1007 (invalid UTF-8).
        code: u16,
    },
}

/// Why a transport did not open: resolve, TCP, TLS, proxy, the upgrade, or
/// the connect deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectFailure {
    /// The host name did not resolve.
    Resolve,
    /// A socket error (connect refused, reset, unreachable, …), by kind.
    Io(io::ErrorKind),
    /// The TLS handshake failed (an untrusted certificate lands here).
    Tls,
    /// The proxy refused the tunnel: its HTTP status for an HTTP CONNECT
    /// proxy, `None` when it gave none (SOCKS, a dropped connection).
    Proxy {
        /// The proxy's answer, if it gave one.
        status: Option<u16>,
    },
    /// A SOCKS5 proxy refused the credentials (RFC 1929 status other than
    /// 0) or accepted none of the authentication methods offered (RFC 1928
    /// method `X'FF'`, e.g. it wants a password and none was given): the
    /// SOCKS counterpart of an HTTP proxy's 407, terminal by default.
    SocksAuth,
    /// The connect deadline (`Config::connect_timeout`) passed.
    Deadline,
    /// The broker answered the upgrade with an HTTP status other than 101.
    Http {
        /// The status.
        status: u16,
        /// Its `Retry-After` as a delay from the moment the answer arrived
        /// (a date already turned into a delay by the driver); `None` when
        /// absent or malformed.
        retry_after: Option<Duration>,
    },
    /// The answer to the upgrade was not a valid WebSocket handshake (not
    /// HTTP, a missing header, a wrong accept key, an unoffered
    /// subprotocol or extension).
    Handshake,
    /// The upgrade request could not be built (the caller's request hook
    /// failed or produced an invalid request).
    Request,
}

/// What happens after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Retry after the next backoff delay.
    Retry,
    /// Retry no earlier than this hint (a server's `Retry-After`): the delay
    /// is `max(backoff delay, min(hint × (1 + jitter × u), max_retry_after))`
    /// with `u` uniform in `[0, 1]` from the seeded generator. Counts as a
    /// failure like [`Retry`](Self::Retry).
    RetryAfter(Duration),
    /// Stop: no reconnect, the session ends in
    /// [`CloseReason::Rejected`](super::CloseReason::Rejected). No failure is
    /// counted.
    Terminal,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Retry => f.write_str("retry"),
            Verdict::RetryAfter(d) => write!(f, "retry after {d:?}"),
            Verdict::Terminal => f.write_str("terminal"),
        }
    }
}

/// Who refused the session, and how: carried by
/// [`CloseReason::Rejected`](super::CloseReason::Rejected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectedBy {
    /// The broker closed with a code (and reason) matching a rule of
    /// [`Config::terminal_closes`].
    Close {
        /// The peer's close code.
        code: u16,
        /// The peer's close reason.
        reason: String,
    },
    /// The broker answered the upgrade with an HTTP status that is not
    /// retried ([`Config::retried_statuses`]).
    Http {
        /// The status.
        status: u16,
    },
    /// The proxy refused the tunnel with a status that is not retried.
    Proxy {
        /// The proxy's answer, if it gave one.
        status: Option<u16>,
    },
    /// A SOCKS5 proxy refused the credentials
    /// ([`ConnectFailure::SocksAuth`]).
    SocksAuth,
    /// The caller's failure predicate said terminal.
    Caller {
        /// The failure it judged.
        failure: Failure,
    },
}

impl fmt::Display for RejectedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectedBy::Close { code, reason } => {
                write!(f, "the broker with close code {code} ({reason:?})")
            }
            RejectedBy::Http { status } => write!(f, "the broker with HTTP status {status}"),
            RejectedBy::Proxy { status: Some(s) } => write!(f, "the proxy with HTTP status {s}"),
            RejectedBy::Proxy { status: None } => f.write_str("the proxy"),
            RejectedBy::SocksAuth => f.write_str("the SOCKS5 proxy, which refused the credentials"),
            RejectedBy::Caller { failure } => write!(f, "the caller's policy on {failure:?}"),
        }
    }
}

/// A peer close that ends the session instead of a reconnect: a close
/// code, optionally with a reason **prefix** (`1008:unauthorized` matches
/// the reasons `unauthorized` and `unauthorized: token expired`, not
/// `capacity`).
///
/// Parses from and prints as `CODE` or `CODE:PREFIX` (see [`FromStr`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CloseRule {
    /// The close code (1000–4999).
    pub code: u16,
    /// When set (non-empty), the rule matches only reasons starting with it
    /// (byte-wise, case-sensitive).
    pub reason_prefix: Option<String>,
}

impl CloseRule {
    /// Any close frame with `code` matches, whatever its reason.
    pub fn code(code: u16) -> Self {
        Self {
            code,
            reason_prefix: None,
        }
    }

    /// A close frame matches with this `code` and a reason starting with
    /// `prefix`.
    pub fn code_with_prefix(code: u16, prefix: impl Into<String>) -> Self {
        Self {
            code,
            reason_prefix: Some(prefix.into()),
        }
    }

    /// Whether a close frame with `code` and `reason` matches this rule.
    pub fn matches(&self, code: u16, reason: &str) -> bool {
        self.code == code
            && self
                .reason_prefix
                .as_deref()
                .is_none_or(|p| reason.starts_with(p))
    }

    /// Why this rule could never be right, if it could not: a code outside
    /// 1000–4999, or an empty prefix.
    pub fn problem(&self) -> Option<&'static str> {
        if !(1000..=4999).contains(&self.code) {
            return Some("the code must be within 1000-4999");
        }
        if self.reason_prefix.as_deref() == Some("") {
            return Some("the reason prefix must not be empty (leave it out to match any reason)");
        }
        None
    }
}

impl fmt::Display for CloseRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason_prefix {
            None => write!(f, "{}", self.code),
            Some(p) => write!(f, "{}:{p}", self.code),
        }
    }
}

impl FromStr for CloseRule {
    type Err = ConfigError;

    /// `CODE` or `CODE:PREFIX`: CODE a decimal number within 1000–4999,
    /// PREFIX non-empty (everything after the first `:`, verbatim). Text
    /// that is neither is [`ConfigError::BadCloseRule`].
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let error = |problem| ConfigError::BadCloseRule {
            spec: spec.to_owned(),
            problem,
        };
        let (code, prefix) = match spec.split_once(':') {
            Some((code, prefix)) => (code, Some(prefix)),
            None => (spec, None),
        };
        if code.is_empty() || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error("the code is not a number"));
        }
        let code = code
            .parse::<u16>()
            .map_err(|_| error("the code must be within 1000-4999"))?;
        let rule = match prefix {
            None => CloseRule::code(code),
            Some(p) => CloseRule::code_with_prefix(code, p),
        };
        match rule.problem() {
            Some(problem) => Err(error(problem)),
            None => Ok(rule),
        }
    }
}

/// The statuses retried by default: 408, 429 and 5xx.
pub(crate) fn default_retried_statuses() -> Vec<std::ops::RangeInclusive<u16>> {
    vec![408..=408, 429..=429, 500..=599]
}

impl Config {
    /// Whether a peer close with `code` and `reason` matches a rule of
    /// [`terminal_closes`](Self::terminal_closes).
    pub fn is_terminal(&self, code: u16, reason: &str) -> bool {
        self.terminal_closes.iter().any(|t| t.matches(code, reason))
    }

    /// Whether an HTTP answer with `status` (upgrade or proxy) is retried.
    pub fn is_retried_status(&self, status: u16) -> bool {
        self.retried_statuses.iter().any(|r| r.contains(&status))
    }

    /// The default verdict on `failure` (the table in the module docs).
    pub fn verdict(&self, failure: &Failure) -> Verdict {
        match failure {
            Failure::Connect(ConnectFailure::Http {
                status,
                retry_after,
            }) => match (self.is_retried_status(*status), retry_after) {
                (false, _) => Verdict::Terminal,
                (true, Some(hint)) => Verdict::RetryAfter(*hint),
                (true, None) => Verdict::Retry,
            },
            Failure::Connect(ConnectFailure::Proxy {
                status: Some(status),
            }) if !self.is_retried_status(*status) => Verdict::Terminal,
            Failure::Connect(ConnectFailure::SocksAuth) => Verdict::Terminal,
            Failure::PeerClosed { code, reason } if self.is_terminal(*code, reason) => {
                Verdict::Terminal
            }
            Failure::Connect(_)
            | Failure::HelloFailed
            | Failure::AckTimeout
            | Failure::PeerClosed { .. }
            | Failure::TransportLost
            | Failure::Stale
            | Failure::MessageTooBig
            | Failure::ProtocolError { .. } => Verdict::Retry,
        }
    }
}

impl Failure {
    /// Who refused, when `verdict` is terminal: the broker's close or HTTP
    /// answer, or the proxy, when the default policy said so
    /// (`by_caller == false`); the caller otherwise.
    pub(crate) fn rejected_by(&self, by_caller: bool) -> RejectedBy {
        match self {
            _ if by_caller => RejectedBy::Caller {
                failure: self.clone(),
            },
            Failure::PeerClosed { code, reason } => RejectedBy::Close {
                code: *code,
                reason: reason.clone(),
            },
            Failure::Connect(ConnectFailure::Http { status, .. }) => {
                RejectedBy::Http { status: *status }
            }
            Failure::Connect(ConnectFailure::Proxy { status }) => {
                RejectedBy::Proxy { status: *status }
            }
            Failure::Connect(ConnectFailure::SocksAuth) => RejectedBy::SocksAuth,
            other => RejectedBy::Caller {
                failure: other.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_rules_match_code_and_reason_prefix() {
        let any = CloseRule::code(4001);
        let prefix = CloseRule::code_with_prefix(1008, "unauthorized");
        assert!(any.matches(4001, "whatever"));
        assert!(!any.matches(4000, ""));
        assert!(prefix.matches(1008, "unauthorized"));
        assert!(prefix.matches(1008, "unauthorized: token expired"));
        assert!(!prefix.matches(1008, "capacity"));
        assert!(!prefix.matches(1008, "Unauthorized"));
        assert!(!prefix.matches(1000, "unauthorized"));
    }

    #[test]
    fn close_rules_parse_and_print() {
        assert_eq!("4001".parse(), Ok(CloseRule::code(4001)));
        assert_eq!(
            "1008:unauthorized".parse(),
            Ok(CloseRule::code_with_prefix(1008, "unauthorized"))
        );
        // Everything after the first colon is the prefix, verbatim.
        assert_eq!(
            "1000:session:replaced".parse(),
            Ok(CloseRule::code_with_prefix(1000, "session:replaced"))
        );
        for bad in [
            "", "x", "1008:", "999", "5000", "70000", "-1", "+1000", " 1000", ":x",
        ] {
            assert!(bad.parse::<CloseRule>().is_err(), "{bad:?}");
        }
        for spec in ["4001", "1008:unauthorized", "1000:session_replaced"] {
            assert_eq!(spec.parse::<CloseRule>().unwrap().to_string(), spec);
        }
    }

    #[test]
    fn default_verdicts() {
        let c = Config {
            terminal_closes: vec![CloseRule::code_with_prefix(1008, "unauthorized")],
            ..Config::default()
        };
        let http = |status, retry_after| {
            c.verdict(&Failure::Connect(ConnectFailure::Http {
                status,
                retry_after,
            }))
        };
        let s2 = Duration::from_secs(2);
        for status in [500, 502, 503, 504, 599, 408, 429] {
            assert_eq!(http(status, None), Verdict::Retry, "{status}");
            assert_eq!(http(status, Some(s2)), Verdict::RetryAfter(s2), "{status}");
        }
        for status in [100, 200, 301, 400, 401, 403, 404, 407, 426, 499, 600] {
            assert_eq!(http(status, Some(s2)), Verdict::Terminal, "{status}");
        }
        let proxy = |status| c.verdict(&Failure::Connect(ConnectFailure::Proxy { status }));
        assert_eq!(proxy(None), Verdict::Retry);
        assert_eq!(proxy(Some(502)), Verdict::Retry);
        assert_eq!(proxy(Some(407)), Verdict::Terminal);
        assert_eq!(
            c.verdict(&Failure::Connect(ConnectFailure::SocksAuth)),
            Verdict::Terminal
        );
        let close = |code, reason: &str| {
            c.verdict(&Failure::PeerClosed {
                code,
                reason: reason.into(),
            })
        };
        assert_eq!(close(1008, "unauthorized"), Verdict::Terminal);
        assert_eq!(close(1008, "capacity"), Verdict::Retry);
        for f in [
            Failure::Connect(ConnectFailure::Deadline),
            Failure::Connect(ConnectFailure::Io(io::ErrorKind::ConnectionRefused)),
            Failure::Connect(ConnectFailure::Tls),
            Failure::Connect(ConnectFailure::Handshake),
            Failure::HelloFailed,
            Failure::AckTimeout,
            Failure::Stale,
            Failure::TransportLost,
        ] {
            assert_eq!(c.verdict(&f), Verdict::Retry, "{f:?}");
        }
        // Retrying 401 is one range away.
        let mut c = c;
        c.retried_statuses.push(401..=401);
        assert_eq!(
            c.verdict(&Failure::Connect(ConnectFailure::Http {
                status: 401,
                retry_after: None
            })),
            Verdict::Retry
        );
    }
}
