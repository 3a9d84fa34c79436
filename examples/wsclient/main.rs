//! `wsclient`: one long-lived WebSocket session on the command line, with
//! one JSON event per line on stdout, for scripts and other programs.
//!
//! ```text
//! wsclient [OPTIONS] URL      (cargo install --path . --features cli; or cargo build --release --example wsclient)
//! Contract version 2 (everything of version 1 still holds).
//! Options (durations in milliseconds):
//!   --hello JSON          hello frame sent after every socket open; default {"type":"hello"}
//!   --ack-type TYPE       a received JSON object whose "type" equals TYPE is the hello ack; default hello_ack
//!   --connect-timeout MS  default 10000
//!   --hello-timeout MS    ack deadline; default 15000
//!   --ping-interval MS    default 30000
//!   --stale-after MS      default 75000
//!   --backoff MS,MS,...   reconnect delays before jitter; default 1000,2000,4000,8000,16000,30000
//!   --jitter FRACTION     0 disables jitter; default the library's default
//!   --max-message BYTES   largest inbound message accepted; default the library's default
//!   --terminal-codes SPEC,SPEC   SPEC is CODE or CODE:PREFIX (CODE 1000-4999, PREFIX non-empty). A peer close whose
//!                                code matches, and whose reason starts with PREFIX when one is given, stops the client
//!                                (final status "closed", exit 3), e.g. 4001,1008:unauthorized,1000:session_replaced.
//!                                Other closes reconnect. Default none.
//!   --resume-field NAME          when an ack carries a field NAME, every later hello carries NAME with that value
//!                                (added to the --hello object, which must then be a JSON object; a newer ack's value
//!                                replaces it)
//!   --after-ack JSON             a frame sent right after every ack, before anything else is sent on that
//!                                connection (resubscription); may be given several times, sent in that order
//!   --proxy URL                  http://[user:pass@]host:port, socks5://[user:pass@]host:port (the client resolves
//!                                the broker's name) or socks5h://... (the proxy resolves it); "none" disables.
//!                                Default: the environment, read as curl reads it: for ws:// http_proxy, for wss://
//!                                https_proxy or HTTPS_PROXY, then all_proxy or ALL_PROXY; no_proxy or NO_PROXY
//!                                (comma-separated hosts, domain suffixes, "*") bypasses
//!   --ca-file FILE               PEM certificates trusted for wss:// in addition to the system's roots
//!   --record FILE                flight recorder: appends this run to FILE (created if missing) as JSON lines, a header
//!                                line (the lifecycle configuration, the jitter seed used) and then every input of the
//!                                state machine with its time since the start; never a message payload or the hello.
//!                                Replay it with `cargo run --example replay -- FILE`. A FILE that cannot be opened for
//!                                appending is a usage error (exit 2).
//! stdout: one JSON object per line, each with "t_ms" (milliseconds since program start) and "event":
//!   {"event":"status","status":"connecting"|"awaiting_ack"|"open"|"reconnecting"|"closing"|"closed"}
//!   {"event":"message","data":<the JSON value received>}
//!   {"event":"acked","attempt":N,"data":<the ack frame>}
//!   {"event":"connect_failed","attempt":N,"detail":"...","http_status":N|null}
//!                                every attempt that ended before its socket opened: refused, unreachable, TLS error,
//!                                connect deadline, an upgrade answer other than 101;
//!                                http_status is the broker's upgrade answer, null otherwise
//!   {"event":"disconnected","code":N,"reason":"...","attempt":N}   (1006 when no close frame arrived)
//!   {"event":"reconnect_scheduled","attempt":N,"delay_ms":N}
//!   {"event":"invalid_frame","detail":"..."}                        (non-JSON text, unexpected binary)
//!   {"event":"send_failed","detail":"..."}                          (a stdin line that could not be sent)
//! logs go to stderr.
//! Upgrade answers other than 101:
//!   5xx, 408 and 429 are retried. With a Retry-After header (seconds, or an HTTP date) the next attempt starts no
//!   earlier than that (at most 10 minutes later), and reconnect_scheduled shows that delay.
//!   Any other status stops the client: connect_failed with its http_status, final status "closed", exit 3.
//! A proxy that refuses the credentials (HTTP 407, SOCKS5 authentication failure) stops the client: connect_failed
//! (http_status null), final status "closed", exit 3. A malformed --proxy is a usage error (exit 2).
//! stdin: one JSON value per line, sent as a text frame, in the order read. While the session is open and its send
//!   buffer is full, wsclient reads no more of stdin until there is room, so the pipe pushes back on the writer: no line
//!   is refused for want of room. Lines are sent from the first attempt's outcome on (open, or its failure): until then
//!   the first line waits and the pipe pushes back, so lines piped in before the first connection opened are not refused
//!   (an EOF before any line closes at once). send_failed is one line per stdin line refused for another reason: the
//!   session is not open (a line read during an outage is not kept for later), the line is not JSON (the client goes on),
//!   the client is closing or closed, or the line was read or taken but not written before its connection or the session
//!   ended.
//! EOF on stdin, SIGINT or SIGTERM: explicit close (close frame, code 1000), a final status "closed", exit 0 within 1 s.
//! A terminal close (--terminal-codes), a terminal upgrade answer or a give-up: final status "closed", exit code 3.
//! Usage errors (exit 2, message on stderr): a bad SPEC, --resume-field with a --hello that is not an object,
//! an --after-ack that is not JSON; also an unknown option, any other bad value, a bad URL.
//! Exit code 1: stdout became unwritable.
//! Credentials (userinfo of the URL, the hello, Authorization headers) never appear on stdout or stderr,
//! whatever RUST_LOG says.
//! Options may also be written --name=VALUE. Set RUST_LOG (e.g. RUST_LOG=debug) for logs on stderr.
//! -h, --help prints this text; -V, --version prints "wsclient VERSION"; both exit 0.
//! ```
//!
//! Details beyond the contract:
//!
//! - Options also take the form `--name=VALUE`; `--` ends the options;
//!   `-h`/`--help` prints this text to stdout and exits 0.
//! - Exit code 2: a usage error (unknown option, bad value, bad URL, bad
//!   hello JSON, a configuration the library refuses), with a message on
//!   stderr. Exit code 1: stdout became unwritable (the session is still
//!   closed cleanly first) or TLS could not be set up.
//! - The close grace is 500 ms, so an explicit close finishes within 1 s even
//!   when the broker never answers the close frame.
//! - Lines are sent verbatim (surrounding whitespace trimmed) once they parse
//!   as JSON. Once the first attempt has an outcome, a line read without an
//!   open session fails at once (`send_failed`, nothing is queued); a line
//!   accepted while open but not yet written when the connection ended also
//!   gives `send_failed`, and so does a line still waiting to be sent, or
//!   read and not yet taken, when the client closes.
//! - Logs: set `RUST_LOG` (`error`, `warn`, `info`, `debug`, `trace`; any
//!   other non-empty value means `debug`) to get them on stderr. Other
//!   crates' logs (tungstenite traces requests and payloads) never get past
//!   `info`, whatever `RUST_LOG` says.
//! - `--terminal-codes`: spaces around a CODE are allowed (`4000, 4001`); a
//!   PREFIX is everything after the first `:` up to the next `,`, verbatim
//!   (so it cannot hold a comma); an empty value means no rule. Given
//!   twice, the last one wins (as for every option but `--after-ack`).
//! - `--resume-field NAME`: NAME must not be empty. The value kept is the
//!   one of the latest ack that carried the field (an ack without it keeps
//!   the value of an earlier one); it replaces a field NAME the `--hello`
//!   object has. Before the first such ack the hello is `--hello` as given.
//! - `--after-ack`: each frame is sent verbatim (surrounding whitespace
//!   trimmed), like stdin lines. Usage errors never echo a `--hello` or an
//!   `--after-ack` value (they may hold credentials).
//! - `connect_failed.detail` is the library's description of the failure;
//!   it names the address or host, never the URL's user info or query.
//! - `--proxy`: `none` (exactly) connects directly whatever the
//!   environment says; anything else is a proxy URL as the library's
//!   `ClientBuilder::proxy` reads it (no scheme means `http://`, the port
//!   defaults to 1080, user info is percent-decoded; `https://` proxies are
//!   refused). A proxy's refusal with any status the policy does not retry
//!   (e.g. tinyproxy answers a wrong password with 401) stops the client
//!   like a 407; a proxy's 5xx is retried. Proxy credentials never appear
//!   on stdout or stderr.
//! - `--ca-file FILE`: a file that is missing, unreadable or empty, or
//!   that holds no PEM certificate, is a usage error (exit 2). The
//!   system's roots are those of the operating system (`SSL_CERT_FILE` and
//!   `SSL_CERT_DIR` replace them when set); a system store without a
//!   usable certificate is exit 1 unless `--ca-file` is given. Built
//!   without the library's `tls` feature, `--ca-file` and `wss://` URLs
//!   are refused (exit 2 and exit 1).
//! - `--record FILE`: the file is opened (append, create) while the
//!   options are read, so a bad path fails before anything connects. Every
//!   run appends one header line, so a file holds many runs; lines of a run
//!   are written by a thread of their own, never delaying the session (when
//!   it falls behind, a `{"gap":N}` line says how many inputs were lost).
//!   Before exiting, the client waits up to 500 ms for the last lines to be
//!   written. See `docs/TROUBLESHOOTING.md`.

#[path = "../common/session_args.rs"]
mod session_args;

use std::convert::Infallible;
use std::ffi::OsString;
use std::fs::File;
use std::future::Future;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_lite::{FutureExt, StreamExt};
use serde_json::{Map, Value};
use session_args::SessionArgs;
use ws_lifecycle::{
    BuildError, Client, ClientBuilder, CloseOutcome, CloseReason, CloseRule, Config, HelloContext,
    SendError, SendErrorKind, Sent, SessionEvent, Status, TransportConfig,
};

const USAGE: &str = r#"wsclient [OPTIONS] URL      (cargo install --path . --features cli; or cargo build --release --example wsclient)
Contract version 2 (everything of version 1 still holds).
Options (durations in milliseconds):
  --hello JSON          hello frame sent after every socket open; default {"type":"hello"}
  --ack-type TYPE       a received JSON object whose "type" equals TYPE is the hello ack; default hello_ack
  --connect-timeout MS  default 10000
  --hello-timeout MS    ack deadline; default 15000
  --ping-interval MS    default 30000
  --stale-after MS      default 75000
  --backoff MS,MS,...   reconnect delays before jitter; default 1000,2000,4000,8000,16000,30000
  --jitter FRACTION     0 disables jitter; default the library's default
  --max-message BYTES   largest inbound message accepted; default the library's default
  --terminal-codes SPEC,SPEC   SPEC is CODE or CODE:PREFIX (CODE 1000-4999, PREFIX non-empty). A peer close whose
                               code matches, and whose reason starts with PREFIX when one is given, stops the client
                               (final status "closed", exit 3), e.g. 4001,1008:unauthorized,1000:session_replaced.
                               Other closes reconnect. Default none.
  --resume-field NAME          when an ack carries a field NAME, every later hello carries NAME with that value
                               (added to the --hello object, which must then be a JSON object; a newer ack's value
                               replaces it)
  --after-ack JSON             a frame sent right after every ack, before anything else is sent on that
                               connection (resubscription); may be given several times, sent in that order
  --proxy URL                  http://[user:pass@]host:port, socks5://[user:pass@]host:port (the client resolves
                               the broker's name) or socks5h://... (the proxy resolves it); "none" disables.
                               Default: the environment, read as curl reads it: for ws:// http_proxy, for wss://
                               https_proxy or HTTPS_PROXY, then all_proxy or ALL_PROXY; no_proxy or NO_PROXY
                               (comma-separated hosts, domain suffixes, "*") bypasses
  --ca-file FILE               PEM certificates trusted for wss:// in addition to the system's roots
  --record FILE                flight recorder: appends this run to FILE (created if missing) as JSON lines, a header
                               line (the lifecycle configuration, the jitter seed used) and then every input of the
                               state machine with its time since the start; never a message payload or the hello.
                               Replay it with `cargo run --example replay -- FILE`. A FILE that cannot be opened for
                               appending is a usage error (exit 2).
stdout: one JSON object per line, each with "t_ms" (milliseconds since program start) and "event":
  {"event":"status","status":"connecting"|"awaiting_ack"|"open"|"reconnecting"|"closing"|"closed"}
  {"event":"message","data":<the JSON value received>}
  {"event":"acked","attempt":N,"data":<the ack frame>}
  {"event":"connect_failed","attempt":N,"detail":"...","http_status":N|null}
                               every attempt that ended before its socket opened: refused, unreachable, TLS error,
                               connect deadline, an upgrade answer other than 101;
                               http_status is the broker's upgrade answer, null otherwise
  {"event":"disconnected","code":N,"reason":"...","attempt":N}   (1006 when no close frame arrived)
  {"event":"reconnect_scheduled","attempt":N,"delay_ms":N}
  {"event":"invalid_frame","detail":"..."}                        (non-JSON text, unexpected binary)
  {"event":"send_failed","detail":"..."}                          (a stdin line that could not be sent)
logs go to stderr.
Upgrade answers other than 101:
  5xx, 408 and 429 are retried. With a Retry-After header (seconds, or an HTTP date) the next attempt starts no
  earlier than that (at most 10 minutes later), and reconnect_scheduled shows that delay.
  Any other status stops the client: connect_failed with its http_status, final status "closed", exit 3.
A proxy that refuses the credentials (HTTP 407, SOCKS5 authentication failure) stops the client: connect_failed
(http_status null), final status "closed", exit 3. A malformed --proxy is a usage error (exit 2).
stdin: one JSON value per line, sent as a text frame, in the order read. While the session is open and its send
  buffer is full, wsclient reads no more of stdin until there is room, so the pipe pushes back on the writer: no line
  is refused for want of room. Lines are sent from the first attempt's outcome on (open, or its failure): until then
  the first line waits and the pipe pushes back, so lines piped in before the first connection opened are not refused
  (an EOF before any line closes at once). send_failed is one line per stdin line refused for another reason: the
  session is not open (a line read during an outage is not kept for later), the line is not JSON (the client goes on),
  the client is closing or closed, or the line was read or taken but not written before its connection or the session
  ended.
EOF on stdin, SIGINT or SIGTERM: explicit close (close frame, code 1000), a final status "closed", exit 0 within 1 s.
A terminal close (--terminal-codes), a terminal upgrade answer or a give-up: final status "closed", exit code 3.
Usage errors (exit 2, message on stderr): a bad SPEC, --resume-field with a --hello that is not an object,
an --after-ack that is not JSON; also an unknown option, any other bad value, a bad URL.
Exit code 1: stdout became unwritable.
Credentials (userinfo of the URL, the hello, Authorization headers) never appear on stdout or stderr,
whatever RUST_LOG says.
Options may also be written --name=VALUE. Set RUST_LOG (e.g. RUST_LOG=debug) for logs on stderr.
-h, --help prints this text; -V, --version prints "wsclient VERSION"; both exit 0.
"#;

/// The close grace the CLI uses (the library default is longer): an
/// explicit close must finish within 1 s even if the broker never answers.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// Safety net: if the session has not finished this long after the close
/// request, stop anyway (the close grace should have ended it long before).
const CLOSE_WATCHDOG: Duration = Duration::from_millis(900);

/// How long the exit waits for `close()`'s outcome once the session ended.
const CLOSE_OUTCOME_WAIT: Duration = Duration::from_millis(50);

/// How long the exit waits for the flight recorder's last lines.
const RECORD_WAIT: Duration = Duration::from_millis(500);

/// Lines buffered between the stdin thread and the main loop.
const INPUT_CAPACITY: usize = 256;

const EXIT_OK: i32 = 0;
const EXIT_FAILURE: i32 = 1;
const EXIT_USAGE: i32 = 2;
const EXIT_STOPPED: i32 = 3;

// ── command line ───────────────────────────────────────────────────────

/// Everything the command line says.
struct Options {
    url: String,
    hello: Value,
    ack_type: String,
    config: Config,
    transport: TransportConfig,
    /// `--resume-field`: the ack field carried into later hellos.
    resume_field: Option<String>,
    /// `--after-ack`: frames sent right after every ack, in order.
    after_ack: Vec<String>,
    /// `--proxy`: `Some(None)` for `none`, `Some(Some(url))` for a proxy;
    /// `None`: the environment.
    proxy: Option<Option<String>>,
    /// `--ca-file`: PEM roots trusted beside the system's (checked readable
    /// and not empty).
    ca_file: Option<PathBuf>,
    /// `--record`: the file this run is appended to, open.
    record: Option<File>,
}

/// What the command line asks for.
enum Parsed {
    /// Run a session.
    Run(Box<Options>),
    /// `-h`/`--help`.
    Help,
    /// `-V`/`--version`.
    Version,
}

/// Parses the arguments (without the program name).
fn parse_args(args: Vec<OsString>) -> Result<Parsed, String> {
    let args = args
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("argument {:?} is not valid UTF-8", a.to_string_lossy()))
        })
        .collect::<Result<Vec<String>, String>>()?;
    let before_dashes = || args.iter().take_while(|a| *a != "--");
    if before_dashes().any(|a| a == "-h" || a == "--help") {
        return Ok(Parsed::Help);
    }
    if before_dashes().any(|a| a == "-V" || a == "--version") {
        return Ok(Parsed::Version);
    }

    let mut url: Option<String> = None;
    let mut session = SessionArgs::new(Config {
        close_grace: CLOSE_GRACE.min(Config::default().close_grace),
        ..Config::default()
    });
    let mut transport = TransportConfig::default();
    let mut resume_field: Option<String> = None;
    let mut after_ack: Vec<String> = Vec::new();
    let mut proxy: Option<Option<String>> = None;
    let mut ca_file: Option<PathBuf> = None;
    let mut record: Option<File> = None;

    let mut it = args.into_iter();
    let mut options_done = false;
    while let Some(arg) = it.next() {
        if options_done || arg == "-" || !arg.starts_with('-') {
            if let Some(first) = &url {
                return Err(format!("more than one URL given ({first:?} and {arg:?})"));
            }
            url = Some(arg);
            continue;
        }
        if arg == "--" {
            options_done = true;
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        let own = [
            "--max-message",
            "--terminal-codes",
            "--resume-field",
            "--after-ack",
            "--proxy",
            "--ca-file",
            "--record",
        ];
        let known = || session_args::SHARED.iter().chain(own.iter());
        if !known().any(|k| *k == name) {
            return Err(format!("unknown option {name}"));
        }
        let value = match inline {
            Some(v) => v,
            None => it.next().ok_or_else(|| format!("{name} needs a value"))?,
        };
        if session.apply(&name, &value)? {
            continue;
        }
        match name.as_str() {
            "--max-message" => {
                let bytes = value
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| format!("{name}: expected a number of bytes, got {value:?}"))?;
                transport.max_message_size = bytes;
                transport.max_frame_size = bytes;
            }
            "--terminal-codes" => session.config.terminal_closes = close_rules(&name, &value)?,
            "--resume-field" => {
                if value.is_empty() {
                    return Err(format!("{name}: the field name is empty"));
                }
                resume_field = Some(value);
            }
            "--after-ack" => {
                let frame = value.trim();
                // The error says where, never what: the frame may hold a token.
                serde_json::from_str::<serde::de::IgnoredAny>(frame)
                    .map_err(|e| format!("{name}: not valid JSON ({e})"))?;
                after_ack.push(frame.to_owned());
            }
            // Checked when the session is built (a usage error, exit 2).
            "--proxy" => proxy = Some((value != "none").then_some(value)),
            "--ca-file" => ca_file = Some(readable_pem_file(&name, &value)?),
            "--record" => record = Some(appendable_file(&name, &value)?),
            _ => unreachable!("checked against the known options above"),
        }
    }
    let url = url.ok_or("missing URL")?;
    if resume_field.is_some() && !session.hello.is_object() {
        return Err("--resume-field needs a --hello that is a JSON object".to_owned());
    }
    Ok(Parsed::Run(Box::new(Options {
        url,
        hello: session.hello,
        ack_type: session.ack_type,
        config: session.config,
        transport,
        resume_field,
        after_ack,
        proxy,
        ca_file,
        record,
    })))
}

/// `--record FILE`: opened for appending, created if missing.
fn appendable_file(name: &str, value: &str) -> Result<File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(value)
        .map_err(|e| format!("{name} {value}: cannot open it for appending: {e}"))
}

/// The recording's file; its drop (by the recorder, once every line is
/// written) tells `main` the recording is complete.
struct Recording {
    file: File,
    _complete: mpsc::Sender<()>,
}

impl Write for Recording {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// `--ca-file FILE`: a file that can be read and is not empty (whether it
/// holds certificates is checked when the session is built).
fn readable_pem_file(name: &str, value: &str) -> Result<PathBuf, String> {
    let bytes = std::fs::read(value).map_err(|e| format!("{name} {value}: cannot read it: {e}"))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(format!("{name} {value}: the file is empty"));
    }
    Ok(PathBuf::from(value))
}

/// `--ca-file`: its roots, trusted beside the system's.
#[cfg(feature = "tls")]
fn with_ca_file(builder: ClientBuilder, file: PathBuf) -> ClientBuilder {
    builder.add_roots_from_file(file)
}

#[cfg(not(feature = "tls"))]
fn with_ca_file(_: ClientBuilder, _: PathBuf) -> ClientBuilder {
    usage_error("--ca-file: this wsclient was built without TLS (the library's `tls` feature)")
}

/// `--terminal-codes`: SPEC,SPEC,… where SPEC is `CODE` or `CODE:PREFIX`,
/// checked by [`CloseRule`]'s parser. Spaces around a code are allowed; a
/// prefix is taken verbatim. An empty value is no rule at all.
fn close_rules(name: &str, value: &str) -> Result<Vec<CloseRule>, String> {
    if value.trim().is_empty() {
        return Ok(Vec::new());
    }
    value
        .split(',')
        .map(|spec| {
            let spec = match spec.split_once(':') {
                Some((code, prefix)) => format!("{}:{prefix}", code.trim()),
                None => spec.trim().to_owned(),
            };
            spec.parse::<CloseRule>()
                .map_err(|e| format!("{name}: {e}"))
        })
        .collect()
}

/// The hello builder of `--resume-field NAME`: `hello` (an object) with
/// NAME set to the value of the latest ack that carried NAME, if any. Every
/// ack is the `previous_ack` of the hello that follows it, so remembering
/// the value here misses none.
fn resuming_hello(
    hello: Map<String, Value>,
    field: String,
) -> impl Fn(&HelloContext) -> std::future::Ready<Result<String, Infallible>> + Send + Sync + 'static
{
    let kept: Mutex<Option<Value>> = Mutex::new(None);
    move |ctx| {
        let mut kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(value) = ctx.previous_ack.as_ref().and_then(|ack| ack.get(&field)) {
            *kept = Some(value.clone());
        }
        let mut hello = hello.clone();
        if let Some(value) = kept.as_ref() {
            hello.insert(field.clone(), value.clone());
        }
        std::future::ready(Ok(Value::Object(hello).to_string()))
    }
}

fn usage_error(message: &str) -> ! {
    eprintln!("wsclient: {message}");
    eprintln!("Try 'wsclient --help'.");
    std::process::exit(EXIT_USAGE);
}

// ── logging ────────────────────────────────────────────────────────────

/// Level and message to stderr; nothing unless `RUST_LOG` is set.
struct StderrLog {
    level: log::LevelFilter,
}

impl log::Log for StderrLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        // Other crates log requests (URL, headers) and payloads (the hello)
        // at debug and trace: credentials. They never get past info,
        // whatever RUST_LOG says; this crate and the CLI redact their own.
        let ours = ["ws_lifecycle", "wsclient"]
            .iter()
            .any(|c| metadata.target().starts_with(c));
        let cap = if ours {
            self.level
        } else {
            self.level.min(log::LevelFilter::Info)
        };
        metadata.level() <= cap
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let _ = writeln!(
                std::io::stderr().lock(),
                "{:<5} {}",
                record.level(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}

fn init_logging() {
    let Some(spec) = std::env::var_os("RUST_LOG") else {
        return;
    };
    let spec = spec.to_string_lossy();
    if spec.trim().is_empty() {
        return;
    }
    // `debug`, or env_logger-style `ws_lifecycle=debug,info`: the most
    // verbose level named wins.
    let level = spec
        .split([',', '='])
        .filter_map(|t| t.trim().parse::<log::LevelFilter>().ok())
        .max()
        .unwrap_or(log::LevelFilter::Debug);
    let logger: &'static StderrLog = Box::leak(Box::new(StderrLog { level }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}

// ── stdout ─────────────────────────────────────────────────────────────

/// Writes one JSON object per line, flushed at once.
struct Output {
    start: Instant,
    broken: bool,
}

impl Output {
    /// `{"t_ms":N,"event":EVENT,<fields>}` in that order.
    fn emit(&mut self, event: &str, fields: &[(&str, Value)]) {
        let mut line = format!(
            "{{\"t_ms\":{},\"event\":{}",
            self.start.elapsed().as_millis(),
            Value::from(event)
        );
        for (key, value) in fields {
            line.push(',');
            line.push_str(&Value::from(*key).to_string());
            line.push(':');
            line.push_str(&value.to_string());
        }
        line.push_str("}\n");
        if self.broken {
            return;
        }
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
            log::error!("stdout is unwritable ({e}); closing");
            self.broken = true;
        }
    }

    fn status(&mut self, status: Status) {
        self.emit("status", &[("status", status.as_str().into())]);
    }

    fn send_failed(&mut self, detail: String) {
        self.emit("send_failed", &[("detail", detail.into())]);
    }
}

// ── input ──────────────────────────────────────────────────────────────

/// What the stdin thread hands the main loop. Signals come on a channel of
/// their own: while a line waits for room this one is not read, and a
/// signal must never wait behind it.
enum Input {
    /// A stdin line.
    Line(String),
    /// A stdin line that could not be read as text.
    Unreadable(String),
    /// stdin ended (or failed for good).
    Eof,
}

fn spawn_stdin_reader(tx: smol::channel::Sender<Input>) {
    let spawned = std::thread::Builder::new()
        .name("wsclient-stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let input = match line {
                    Ok(line) => Input::Line(line),
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        Input::Unreadable(format!("the line is not valid UTF-8: {e}"))
                    }
                    Err(e) => {
                        log::warn!("reading stdin failed: {e}; treating it as EOF");
                        break;
                    }
                };
                if tx.send_blocking(input).is_err() {
                    return;
                }
            }
            let _ = tx.send_blocking(Input::Eof);
        });
    if let Err(e) = spawned {
        log::error!("cannot start the stdin thread: {e}");
    }
}

// ── main ───────────────────────────────────────────────────────────────

/// The program (the example's `main`, and the `cli` feature's binary
/// through `examples/wsclient/installed.rs`).
pub fn main() {
    let start = Instant::now();
    init_logging();
    let options = match parse_args(std::env::args_os().skip(1).collect()) {
        Ok(Parsed::Run(options)) => *options,
        Ok(Parsed::Version) => {
            let mut out = std::io::stdout().lock();
            let version = format!("wsclient {}\n", env!("CARGO_PKG_VERSION"));
            let _ = out.write_all(version.as_bytes()).and_then(|()| out.flush());
            std::process::exit(EXIT_OK);
        }
        Ok(Parsed::Help) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(USAGE.as_bytes()).and_then(|()| out.flush());
            std::process::exit(EXIT_OK);
        }
        Err(message) => usage_error(&message),
    };
    let mut builder = Client::builder(options.url)
        .config(options.config)
        .transport(options.transport)
        .ack_type(options.ack_type);
    builder = match (options.resume_field, options.hello) {
        (Some(field), Value::Object(hello)) => builder.hello(resuming_hello(hello, field)),
        (_, hello) => builder.hello_json(hello),
    };
    builder = match options.proxy {
        None => builder,
        Some(None) => builder.no_proxy(),
        Some(Some(url)) => builder.proxy(url),
    };
    if !options.after_ack.is_empty() {
        let frames = options.after_ack;
        builder = builder.after_ack(move |_, _| frames.clone());
    }
    if let Some(file) = options.ca_file {
        builder = with_ca_file(builder, file);
    }
    let mut recorded = None;
    if let Some(file) = options.record {
        let (complete, done) = mpsc::channel::<()>();
        builder = builder.record_to(Recording {
            file,
            _complete: complete,
        });
        recorded = Some(done);
    }
    let (client, mut events, session) = match builder.build() {
        Ok(parts) => parts,
        // --ca-file's content: a usage error like a bad value.
        // TLS that cannot be set up here (no feature, no system roots).
        Err(e @ (BuildError::TlsDisabled | BuildError::NoSystemRoots { .. })) => {
            eprintln!("wsclient: {e}");
            std::process::exit(EXIT_FAILURE);
        }
        #[cfg(feature = "tls")]
        Err(e @ BuildError::Rustls(_)) => {
            eprintln!("wsclient: {e}");
            std::process::exit(EXIT_FAILURE);
        }
        // Everything else, --ca-file's content among it, is a usage error
        // like a bad value.
        Err(e) => usage_error(&e.to_string()),
    };

    let mut out = Output {
        start,
        broken: false,
    };
    // The driver reports transitions, not the state it starts in.
    out.status(Status::Connecting);

    let (tx, rx) = smol::channel::bounded::<Input>(INPUT_CAPACITY);
    let (signal_tx, signals) = smol::channel::bounded::<()>(1);
    if let Err(e) = ctrlc::set_handler(move || {
        // A signal already waiting is enough.
        let _ = signal_tx.try_send(());
    }) {
        log::warn!("cannot handle SIGINT/SIGTERM: {e}");
    }
    spawn_stdin_reader(tx);
    smol::spawn(session).detach();

    let code = smol::block_on(async {
        enum Step {
            Event(Option<SessionEvent>),
            Input(Input),
            /// The line that waited for room was sent, or refused.
            Sent(Result<Sent, SendError>),
            Signal,
            Watchdog,
        }

        // Set once a close was requested: the safety-net deadline.
        let mut closing: Option<Instant> = None;
        // The close request; its outcome hands back what was taken but
        // never written.
        let mut closer: Option<smol::Task<CloseOutcome>> = None;
        let mut reason: Option<CloseReason> = None;
        // A line refused for want of room on an open link, waiting for
        // room. While it waits no stdin line is taken (the pipe pushes
        // back), but events, signals and the watchdog still are.
        let mut waiting: Option<WaitingLine<'_>> = None;
        // Lines are sent from the first attempt's outcome on (open, or a
        // failure): lines piped in while the first connection is still
        // being made are not an outage's, and must not be refused. Until
        // then the first line taken is parked, so the pipe pushes back,
        // but an EOF before any line still closes at once.
        let mut started = false;
        let mut parked: Option<String> = None;
        loop {
            let step = {
                let take_lines = closing.is_none() && waiting.is_none() && parked.is_none();
                let event = async { Step::Event(events.next().await) };
                let input = async {
                    if !take_lines {
                        // Closing: nothing more is sent. Waiting: the next
                        // line waits in the pipe.
                        std::future::pending().await
                    } else {
                        Step::Input(rx.recv().await.unwrap_or(Input::Eof))
                    }
                };
                let sent = async {
                    match waiting.as_mut() {
                        Some(line) => Step::Sent(line.as_mut().await),
                        None => std::future::pending().await,
                    }
                };
                let signal = async {
                    match closing {
                        None if signals.recv().await.is_ok() => Step::Signal,
                        _ => std::future::pending().await,
                    }
                };
                let watchdog = async {
                    match closing {
                        Some(since) => {
                            smol::Timer::at(since + CLOSE_WATCHDOG).await;
                            Step::Watchdog
                        }
                        None => std::future::pending().await,
                    }
                };
                // Signals and the watchdog first (they are rare); events
                // race the line side, so neither a flood of inbound
                // messages nor a fast pipe starves the other.
                signal.or(watchdog).or(event.race(sent.or(input))).await
            };
            let close_now = match step {
                Step::Event(None) => break,
                Step::Event(Some(SessionEvent::Closed(why))) => {
                    log::info!("session ended: {why}");
                    for message in why.unsent {
                        out.send_failed(format!(
                            "not written before the session closed: {message}"
                        ));
                    }
                    reason = Some(why.reason);
                    break;
                }
                Step::Event(Some(event)) => {
                    started |= matches!(
                        event,
                        SessionEvent::Status {
                            to: Status::Open | Status::Reconnecting,
                            ..
                        }
                    );
                    report(&mut out, event);
                    false
                }
                Step::Input(Input::Line(line)) if !started => {
                    parked = Some(line);
                    false
                }
                Step::Input(Input::Line(line)) => {
                    waiting = send_line(&client, &mut out, &line);
                    false
                }
                Step::Input(Input::Unreadable(detail)) => {
                    out.send_failed(detail);
                    false
                }
                Step::Input(Input::Eof) => {
                    log::info!("stdin ended; closing");
                    true
                }
                Step::Sent(result) => {
                    waiting = None;
                    match result {
                        Ok(sent) => log::trace!("sent a line after waiting for room ({sent:?})"),
                        Err(e) => out.send_failed(e.to_string()),
                    }
                    false
                }
                Step::Signal => {
                    log::info!("signal received; closing");
                    true
                }
                Step::Watchdog => {
                    log::warn!(
                        "the session did not finish within {CLOSE_WATCHDOG:?} of the close; exiting"
                    );
                    break;
                }
            };
            if (close_now || out.broken) && closing.is_none() {
                closing = Some(Instant::now());
                let client = client.clone();
                closer = Some(smol::spawn(async move { client.close().await }));
            }
            if started && closing.is_none() {
                if let Some(line) = parked.take() {
                    waiting = send_line(&client, &mut out, &line);
                }
            }
        }
        // What close() hands back: taken, never written. The session has
        // ended (or the watchdog gave up on it), so this is quick.
        if let Some(closer) = closer {
            let bounded = async {
                smol::Timer::after(CLOSE_OUTCOME_WAIT).await;
                None
            };
            if let Some(outcome) = async { Some(closer.await) }.or(bounded).await {
                for message in outcome.unsent {
                    out.send_failed(format!("not written before the session closed: {message}"));
                }
            }
        }
        // Lines read from stdin but never taken (parked, or in the channel
        // when the client closed): not sent, and said so. Only those there
        // now: stdin may go on filling the channel until the exit.
        let in_channel = rx.len();
        let unread =
            parked
                .into_iter()
                .chain((0..in_channel).filter_map(|_| match rx.try_recv() {
                    Ok(Input::Line(line)) => Some(line),
                    _ => None,
                }));
        for _ in unread {
            out.send_failed("not sent: the client closed first".to_owned());
        }
        // A line still waiting for room was never sent: say so. Once the
        // session has ended, waiting ends at once with its refusal.
        if let Some(mut line) = waiting.take() {
            let detail = match futures_lite::future::poll_once(line.as_mut()).await {
                Some(Ok(_)) => None,
                Some(Err(e)) => Some(e.to_string()),
                None => Some("the client closed before there was room".to_owned()),
            };
            if let Some(detail) = detail {
                out.send_failed(detail);
            }
        }
        let reason = reason
            .or_else(|| client.closed_reason())
            .unwrap_or(CloseReason::Requested);
        out.status(Status::Closed);
        match reason {
            CloseReason::Requested if out.broken => EXIT_FAILURE,
            CloseReason::Requested => EXIT_OK,
            stopped @ (CloseReason::Rejected { .. } | CloseReason::GaveUp { .. }) => {
                eprintln!("wsclient: {stopped}");
                EXIT_STOPPED
            }
        }
    });
    // Disconnected once the recorder has written everything and dropped the file.
    if let Some(Ok(()) | Err(mpsc::RecvTimeoutError::Timeout)) =
        recorded.map(|done| done.recv_timeout(RECORD_WAIT))
    {
        log::warn!("the recording may lack its last lines: not written within {RECORD_WAIT:?}");
    }
    log::debug!("exiting with code {code} after {:?}", start.elapsed());
    std::process::exit(code);
}

/// Prints one session event (the final `Closed` is handled by the caller).
fn report(out: &mut Output, event: SessionEvent) {
    match event {
        // "closed" is printed once, at the very end.
        SessionEvent::Status {
            to: Status::Closed, ..
        } => {}
        SessionEvent::Status {
            to, cause, attempt, ..
        } => {
            log::debug!("status {to} (cause {cause}, attempt {attempt})");
            out.status(to);
        }
        SessionEvent::Message(data) => out.emit("message", &[("data", data)]),
        // Only with `DeliveryConfig::raw_text`, which this client does not set.
        SessionEvent::Text(text) => out.emit("text", &[("data", text.as_str().into())]),
        SessionEvent::Disconnected {
            attempt,
            code,
            reason,
        } => out.emit(
            "disconnected",
            &[
                ("code", code.into()),
                ("reason", reason.into()),
                ("attempt", attempt.into()),
            ],
        ),
        SessionEvent::ReconnectScheduled { attempt, delay } => out.emit(
            "reconnect_scheduled",
            &[
                ("attempt", attempt.into()),
                (
                    "delay_ms",
                    u64::try_from(delay.as_millis()).unwrap_or(u64::MAX).into(),
                ),
            ],
        ),
        SessionEvent::InvalidFrame { detail, .. } => {
            out.emit("invalid_frame", &[("detail", detail.into())]);
        }
        SessionEvent::Binary(bytes) => out.emit(
            "invalid_frame",
            &[(
                "detail",
                format!("unexpected binary frame of {} bytes", bytes.len()).into(),
            )],
        ),
        SessionEvent::Unsent(messages) => {
            for message in messages {
                out.send_failed(format!(
                    "not written before the connection ended: {message}"
                ));
            }
        }
        SessionEvent::ConnectFailed { attempt, error } => {
            log::info!("attempt {attempt} failed to connect: {error}");
            out.emit(
                "connect_failed",
                &[
                    ("attempt", attempt.into()),
                    ("detail", error.to_string().into()),
                    ("http_status", error.http_status().into()),
                ],
            );
        }
        SessionEvent::HelloFailed { attempt, error } => {
            log::warn!("attempt {attempt}: the hello could not be built: {error}");
        }
        SessionEvent::Acked { attempt, ack } => {
            log::debug!("attempt {attempt} acked");
            out.emit("acked", &[("attempt", attempt.into()), ("data", ack)]);
        }
        SessionEvent::Upgraded(response) => {
            log::debug!(
                "attempt {} upgraded ({})",
                response.attempt,
                response.status
            );
        }
        // Not a stdout event in the contract: stdout is drained at once, so
        // this only happens when the pipe reader stalls.
        SessionEvent::Lagged { missed } => {
            log::warn!("{missed} session notices were dropped: the output fell behind");
        }
        SessionEvent::Closed(_) => {}
    }
}

/// A stdin line waiting for room in the send buffer (`Client::send_wait`).
type WaitingLine<'a> = Pin<Box<dyn Future<Output = Result<Sent, SendError>> + 'a>>;

/// Sends one stdin line if it is JSON; reports why not otherwise. A line
/// refused only for want of room on an open link is not refused: it comes
/// back as a [`WaitingLine`] that resolves once there is room.
fn send_line<'a>(client: &'a Client, out: &mut Output, line: &str) -> Option<WaitingLine<'a>> {
    let text = line.trim();
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        out.send_failed(format!("the line is not JSON: {e}"));
        return None;
    }
    match client.send_text(text.to_owned()) {
        Ok(sent) => log::trace!("sent a line ({sent:?})"),
        Err(SendError {
            kind: SendErrorKind::Full,
            message: Some(text),
        }) => return Some(Box::pin(client.send_wait(text))),
        Err(e) => out.send_failed(e.to_string()),
    }
    None
}
