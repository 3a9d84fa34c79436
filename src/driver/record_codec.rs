//! The machine's inputs and its [`Config`] as JSON values and back, for the
//! flight recorder: written by hand (the core has no serde) and exact, so
//! a replay sees what the machine saw. Durations are integer nanoseconds,
//! the jitter is Rust's shortest round-trip decimal in a string (JSON
//! numbers may lose a last bit on the way back), I/O error kinds go by
//! name.

use std::io;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::fsm::{CloseRule, Config, ConnectFailure, Event, Verdict};

/// What is wrong with a value, with the path to it (`event.attempt`).
pub(crate) type Bad = String;

// ── writing ────────────────────────────────────────────────────────────

/// Nanoseconds; a duration beyond `u64` (584 years, far past any valid
/// setting) saturates.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

pub(crate) fn event_to_json(event: &Event) -> Value {
    let mut v = json!({"type": event.name()});
    let mut put = |key: &str, value: Value| {
        v[key] = value;
    };
    if let Some(attempt) = event
        .attempt()
        .filter(|_| !matches!(event, Event::Judged { .. }))
    {
        put("attempt", attempt.into());
    }
    match event {
        Event::ConnectFailed { failure, .. } => put("failure", failure_to_json(failure)),
        Event::PeerClosed { code, reason, .. } | Event::Close { code, reason } => {
            put("code", (*code).into());
            put("reason", reason.as_str().into());
        }
        Event::ProtocolError { code, .. } => put("code", (*code).into()),
        Event::Judged { verdict, event } => {
            put("verdict", verdict_to_json(verdict));
            put("event", event_to_json(event));
        }
        Event::SocketOpened { .. }
        | Event::HelloFailed { .. }
        | Event::Ack { .. }
        | Event::Activity { .. }
        | Event::TransportLost { .. }
        | Event::MessageTooBig { .. }
        | Event::ReadPaused
        | Event::ReadResumed
        | Event::Woke
        | Event::ReconnectNow
        | Event::Timeout => {}
    }
    v
}

fn verdict_to_json(verdict: &Verdict) -> Value {
    match verdict {
        Verdict::Retry => "retry".into(),
        Verdict::Terminal => "terminal".into(),
        Verdict::RetryAfter(d) => json!({"retry_after_ns": nanos(*d)}),
    }
}

fn failure_to_json(failure: &ConnectFailure) -> Value {
    let name = |ty: &str| json!({"type": ty});
    match failure {
        ConnectFailure::Resolve => name("Resolve"),
        ConnectFailure::Io(kind) => json!({"type": "Io", "kind": format!("{kind:?}")}),
        ConnectFailure::Tls => name("Tls"),
        ConnectFailure::Proxy { status } => json!({"type": "Proxy", "status": status}),
        ConnectFailure::SocksAuth => name("SocksAuth"),
        ConnectFailure::Deadline => name("Deadline"),
        ConnectFailure::Http {
            status,
            retry_after,
        } => json!({
            "type": "Http",
            "status": status,
            "retry_after_ns": retry_after.map(nanos),
        }),
        ConnectFailure::Handshake => name("Handshake"),
        ConnectFailure::Request => name("Request"),
    }
}

pub(crate) fn config_to_json(c: &Config) -> Value {
    let rules: Vec<Value> = c
        .terminal_closes
        .iter()
        .map(|r| json!({"code": r.code, "prefix": r.reason_prefix}))
        .collect();
    let statuses: Vec<Value> = c
        .retried_statuses
        .iter()
        .map(|r| json!([r.start(), r.end()]))
        .collect();
    json!({
        "connect_timeout_ns": nanos(c.connect_timeout),
        "ack_timeout_ns": nanos(c.ack_timeout),
        "ping_interval_ns": nanos(c.ping_interval),
        "ping_when_idle": c.ping_when_idle,
        "stale_after_ns": nanos(c.stale_after),
        "wake_probe_ns": nanos(c.wake_probe),
        "backoff_ns": c.backoff.iter().copied().map(nanos).collect::<Vec<_>>(),
        "jitter": c.jitter.to_string(),
        "min_delay_ns": nanos(c.min_delay),
        "stable_after_ns": nanos(c.stable_after),
        "close_grace_ns": nanos(c.close_grace),
        "terminal_closes": rules,
        "retried_statuses": statuses,
        "max_retry_after_ns": nanos(c.max_retry_after),
        "max_attempts": c.max_attempts,
        "max_unstable_ns": c.max_unstable.map(nanos),
        "seed": c.seed,
    })
}

// ── reading ────────────────────────────────────────────────────────────

/// The object at `path`, or why not.
pub(crate) fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, Bad> {
    v.as_object()
        .ok_or_else(|| format!("`{path}` must be an object"))
}

/// Field `key` of `o` (under `path`), or why not.
pub(crate) fn field<'a>(
    o: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<&'a Value, Bad> {
    o.get(key)
        .ok_or_else(|| format!("`{path}.{key}` is missing"))
}

pub(crate) fn u64_field(o: &Map<String, Value>, path: &str, key: &str) -> Result<u64, Bad> {
    field(o, path, key)?
        .as_u64()
        .ok_or_else(|| format!("`{path}.{key}` must be an unsigned integer"))
}

fn u16_field(o: &Map<String, Value>, path: &str, key: &str) -> Result<u16, Bad> {
    u16::try_from(u64_field(o, path, key)?)
        .map_err(|_| format!("`{path}.{key}` must be within 0-65535"))
}

pub(crate) fn str_field<'a>(
    o: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<&'a str, Bad> {
    field(o, path, key)?
        .as_str()
        .ok_or_else(|| format!("`{path}.{key}` must be a string"))
}

/// `null` (or absent) is `None`.
fn opt<T>(
    o: &Map<String, Value>,
    key: &str,
    read: impl FnOnce() -> Result<T, Bad>,
) -> Result<Option<T>, Bad> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => read().map(Some),
    }
}

fn ns_field(o: &Map<String, Value>, path: &str, key: &str) -> Result<Duration, Bad> {
    u64_field(o, path, key).map(Duration::from_nanos)
}

pub(crate) fn event_from_json(v: &Value, path: &str) -> Result<Event, Bad> {
    let o = object(v, path)?;
    let attempt = || u64_field(o, path, "attempt");
    let code = || u16_field(o, path, "code");
    let reason = || str_field(o, path, "reason").map(str::to_owned);
    Ok(match str_field(o, path, "type")? {
        "SocketOpened" => Event::SocketOpened {
            attempt: attempt()?,
        },
        "ConnectFailed" => Event::ConnectFailed {
            attempt: attempt()?,
            failure: failure_from_json(field(o, path, "failure")?, &format!("{path}.failure"))?,
        },
        "HelloFailed" => Event::HelloFailed {
            attempt: attempt()?,
        },
        "Ack" => Event::Ack {
            attempt: attempt()?,
        },
        "Activity" => Event::Activity {
            attempt: attempt()?,
        },
        "PeerClosed" => Event::PeerClosed {
            attempt: attempt()?,
            code: code()?,
            reason: reason()?,
        },
        "TransportLost" => Event::TransportLost {
            attempt: attempt()?,
        },
        "MessageTooBig" => Event::MessageTooBig {
            attempt: attempt()?,
        },
        "ProtocolError" => Event::ProtocolError {
            attempt: attempt()?,
            code: code()?,
        },
        "ReadPaused" => Event::ReadPaused,
        "ReadResumed" => Event::ReadResumed,
        "Woke" => Event::Woke,
        "Close" => Event::Close {
            code: code()?,
            reason: reason()?,
        },
        "ReconnectNow" => Event::ReconnectNow,
        "Timeout" => Event::Timeout,
        "Judged" => Event::Judged {
            verdict: verdict_from_json(field(o, path, "verdict")?, path)?,
            event: Box::new(event_from_json(
                field(o, path, "event")?,
                &format!("{path}.event"),
            )?),
        },
        other => return Err(format!("`{path}.type`: unknown event {other:?}")),
    })
}

fn verdict_from_json(v: &Value, path: &str) -> Result<Verdict, Bad> {
    match v {
        Value::String(s) if s == "retry" => Ok(Verdict::Retry),
        Value::String(s) if s == "terminal" => Ok(Verdict::Terminal),
        Value::Object(o) => {
            ns_field(o, &format!("{path}.verdict"), "retry_after_ns").map(Verdict::RetryAfter)
        }
        _ => Err(format!(
            "`{path}.verdict` must be \"retry\", \"terminal\" or {{\"retry_after_ns\":N}}"
        )),
    }
}

fn failure_from_json(v: &Value, path: &str) -> Result<ConnectFailure, Bad> {
    let o = object(v, path)?;
    Ok(match str_field(o, path, "type")? {
        "Resolve" => ConnectFailure::Resolve,
        "Io" => ConnectFailure::Io(error_kind(str_field(o, path, "kind")?)),
        "Tls" => ConnectFailure::Tls,
        "Proxy" => ConnectFailure::Proxy {
            status: opt(o, "status", || u16_field(o, path, "status"))?,
        },
        "SocksAuth" => ConnectFailure::SocksAuth,
        "Deadline" => ConnectFailure::Deadline,
        "Http" => ConnectFailure::Http {
            status: u16_field(o, path, "status")?,
            retry_after: opt(o, "retry_after_ns", || ns_field(o, path, "retry_after_ns"))?,
        },
        "Handshake" => ConnectFailure::Handshake,
        "Request" => ConnectFailure::Request,
        other => return Err(format!("`{path}.type`: unknown connect failure {other:?}")),
    })
}

/// The kinds a name can stand for: every stable kind (as of the crate's
/// minimum Rust), so a socket error's kind comes back as it went. A name
/// not listed (a kind std cannot name, such as `Uncategorized`) reads as
/// `Other`; the machine's verdict never depends on the kind.
const KINDS: &[io::ErrorKind] = {
    use io::ErrorKind::*;
    &[
        NotFound,
        PermissionDenied,
        ConnectionRefused,
        ConnectionReset,
        HostUnreachable,
        NetworkUnreachable,
        ConnectionAborted,
        NotConnected,
        AddrInUse,
        AddrNotAvailable,
        NetworkDown,
        BrokenPipe,
        AlreadyExists,
        WouldBlock,
        NotADirectory,
        IsADirectory,
        DirectoryNotEmpty,
        ReadOnlyFilesystem,
        StaleNetworkFileHandle,
        InvalidInput,
        InvalidData,
        TimedOut,
        WriteZero,
        StorageFull,
        NotSeekable,
        FileTooLarge,
        ResourceBusy,
        ExecutableFileBusy,
        Deadlock,
        TooManyLinks,
        ArgumentListTooLong,
        Interrupted,
        Unsupported,
        UnexpectedEof,
        OutOfMemory,
        Other,
    ]
};

fn error_kind(name: &str) -> io::ErrorKind {
    KINDS
        .iter()
        .copied()
        .find(|k| format!("{k:?}") == name)
        .unwrap_or(io::ErrorKind::Other)
}

pub(crate) fn config_from_json(v: &Value, path: &str) -> Result<Config, Bad> {
    let o = object(v, path)?;
    let ns = |key| ns_field(o, path, key);
    let list = |key| {
        field(o, path, key)?
            .as_array()
            .ok_or_else(|| format!("`{path}.{key}` must be an array"))
    };
    let backoff = list("backoff_ns")?
        .iter()
        .map(|d| d.as_u64().map(Duration::from_nanos))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| format!("`{path}.backoff_ns` must hold unsigned integers"))?;
    let jitter = str_field(o, path, "jitter")?
        .parse::<f64>()
        .map_err(|_| format!("`{path}.jitter` must be a number in a string"))?;
    let terminal_closes = list("terminal_closes")?
        .iter()
        .map(|r| {
            let p = format!("{path}.terminal_closes[]");
            let r = object(r, &p)?;
            Ok(CloseRule {
                code: u16_field(r, &p, "code")?,
                reason_prefix: opt(r, "prefix", || {
                    str_field(r, &p, "prefix").map(str::to_owned)
                })?,
            })
        })
        .collect::<Result<Vec<_>, Bad>>()?;
    let retried_statuses = list("retried_statuses")?
        .iter()
        .map(|r| match r.as_array().map(Vec::as_slice) {
            Some([a, b]) => {
                let s = |v: &Value| v.as_u64().and_then(|n| u16::try_from(n).ok());
                Some(s(a)?..=s(b)?)
            }
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| format!("`{path}.retried_statuses` must hold [FROM, TO] pairs"))?;
    Ok(Config {
        connect_timeout: ns("connect_timeout_ns")?,
        ack_timeout: ns("ack_timeout_ns")?,
        ping_interval: ns("ping_interval_ns")?,
        // Recordings older than the option have no such field: off.
        ping_when_idle: opt(o, "ping_when_idle", || {
            field(o, path, "ping_when_idle")?
                .as_bool()
                .ok_or_else(|| format!("`{path}.ping_when_idle` must be true or false"))
        })?
        .unwrap_or(false),
        stale_after: ns("stale_after_ns")?,
        wake_probe: ns("wake_probe_ns")?,
        backoff,
        jitter,
        min_delay: ns("min_delay_ns")?,
        stable_after: ns("stable_after_ns")?,
        close_grace: ns("close_grace_ns")?,
        terminal_closes,
        retried_statuses,
        max_retry_after: ns("max_retry_after_ns")?,
        max_attempts: opt(o, "max_attempts", || {
            u32::try_from(u64_field(o, path, "max_attempts")?)
                .map_err(|_| format!("`{path}.max_attempts` is too large"))
        })?,
        max_unstable: opt(o, "max_unstable_ns", || ns("max_unstable_ns"))?,
        seed: u64_field(o, path, "seed")?,
    })
}

#[cfg(test)]
#[path = "record_codec_tests.rs"]
mod tests;
