//! A load generator for brokers: many independent supervised sessions.
//!
//! ```text
//! loadgen [OPTIONS] URL        (cargo build --release --example loadgen)
//!   --connections N      supervised sessions to open to URL, each with its own lifecycle (default 1000)
//!   --hold-ms MS         after all are open, stay idle this long (default 10000)
//!   --echo N             after the hold, send N JSON messages over one session, pipelined, and wait for all N echoes (default 0)
//!   --open-timeout MS    give up if not all sessions are open by then: print an error line, exit 1 (default 60000)
//!   --spread-ms MS       start the sessions evenly spread over MS instead of all at once, so their pings do not coincide (default 0)
//!   --hello JSON --ack-type TYPE --connect-timeout MS --hello-timeout MS --ping-interval MS --stale-after MS
//!   --backoff LIST --jitter FRACTION   (as in wsclient)
//!   --ping-when-idle     (no value) ping only when idle: skip a ping when a frame arrived within --ping-interval
//! stdout, one JSON object per line:
//!   {"event":"all_open","t_ms":..,"open":N}              as soon as every session has status open
//!   {"event":"hold_done","t_ms":..}                       when the hold ends
//!   {"event":"echo_done","t_ms":..,"count":N,"elapsed_ms":..}   (only with --echo)
//!   {"event":"summary","open":N,"disconnects":N}          last line, then exit 0
//! ```
//!
//! All sessions start together at program start (or spread evenly over
//! `--spread-ms`; the open timeout counts from program start either way), each an independent
//! lifecycle (own socket, hello, ack deadline, keepalive, backoff). They run
//! on one thread (a local executor), so the CPU figures on stderr are the
//! cost of supervision plus the socket work. An unrecoverable problem prints
//! `{"event":"error","detail":"..."}` and exits 1. Logs go to stderr and say
//! nothing per connection or per message; the last one sums up every
//! session's `Client::stats()` (attempts, opens, disconnects by cause, wire
//! bytes, the mean smoothed ping round trip).

#[path = "common/procstat.rs"]
mod procstat;
#[path = "common/rlimit.rs"]
mod rlimit;
#[path = "common/session_args.rs"]
mod session_args;

use std::io::Write;
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::{FutureExt, StreamExt};
use futures_util::stream::select_all;
use session_args::SessionArgs;
use ws_lifecycle::{Client, Config, SessionEvent, Stats, Status};

const USAGE: &str = "loadgen [OPTIONS] URL
  --connections N      supervised sessions to open to URL, each with its own lifecycle (default 1000)
  --hold-ms MS         after all are open, stay idle this long (default 10000)
  --echo N             after the hold, send N JSON messages over one session, pipelined, and wait for all N echoes (default 0)
  --open-timeout MS    give up if not all sessions are open by then: print an error line, exit 1 (default 60000)
  --spread-ms MS       start the sessions evenly spread over MS instead of all at once, so their pings do not coincide (default 0)
  --hello JSON --ack-type TYPE --connect-timeout MS --hello-timeout MS --ping-interval MS --stale-after MS
  --backoff LIST --jitter FRACTION   (as in wsclient)
  --ping-when-idle     (no value) ping only when idle: skip a ping when a frame arrived within --ping-interval";

struct Options {
    url: String,
    connections: usize,
    hold: Duration,
    echo: usize,
    open_timeout: Duration,
    spread: Duration,
    hello: serde_json::Value,
    ack_type: String,
    config: Config,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut url = None;
    let mut connections = 1000;
    let mut hold = Duration::from_millis(10_000);
    let mut echo = 0;
    let mut open_timeout = Duration::from_millis(60_000);
    let mut spread = Duration::ZERO;
    let mut session = SessionArgs::new(Config::default());
    let count = |name: &str, v: &str| {
        v.trim()
            .parse::<usize>()
            .map_err(|_| format!("{name}: expected a count, got {v:?}"))
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--help" || arg == "-h" {
            return Err(String::new());
        }
        if !arg.starts_with("--") {
            if url.replace(arg.clone()).is_some() {
                return Err("more than one URL given".into());
            }
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (arg.as_str(), None),
        };
        if name == "--ping-when-idle" && inline.is_none() {
            session.config.ping_when_idle = true;
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => it.next().cloned().ok_or(format!("{name} needs a value"))?,
        };
        if session.apply(name, &value)? {
            continue;
        }
        match name {
            "--connections" => connections = count(name, &value)?,
            "--hold-ms" => hold = session_args::millis(name, &value)?,
            "--echo" => echo = count(name, &value)?,
            "--open-timeout" => open_timeout = session_args::millis(name, &value)?,
            "--spread-ms" => spread = session_args::millis(name, &value)?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    Ok(Options {
        url: url.ok_or("missing URL")?,
        connections,
        hold,
        echo,
        open_timeout,
        spread,
        hello: session.hello,
        ack_type: session.ack_type,
        config: session.config,
    })
}

/// Which sessions are open, and how many connections were lost.
struct Tally {
    is_open: Vec<bool>,
    open: usize,
    disconnects: usize,
}

impl Tally {
    fn track(&mut self, i: usize, event: &SessionEvent) {
        match event {
            SessionEvent::Status { to, .. } => {
                let now_open = *to == Status::Open;
                if now_open != self.is_open[i] {
                    self.is_open[i] = now_open;
                    if now_open {
                        self.open += 1;
                    } else {
                        self.open -= 1;
                    }
                }
            }
            SessionEvent::Disconnected { .. } => self.disconnects += 1,
            _ => {}
        }
    }
}

struct Out {
    start: Instant,
}

impl Out {
    fn t_ms(&self) -> u128 {
        self.start.elapsed().as_millis()
    }

    /// One line, keys in the contract's order, flushed at once.
    fn line(&self, text: String) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    fn error(&self, detail: &str) -> ! {
        let detail = serde_json::Value::from(detail);
        self.line(format!(r#"{{"event":"error","detail":{detail}}}"#));
        std::process::exit(1);
    }
}

fn main() {
    let out = Out {
        start: Instant::now(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse_args(&args) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("loadgen: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    match rlimit::raise_nofile() {
        Some((from, to)) => {
            eprintln!("loadgen: raised the soft open-files limit from {from} to {to}")
        }
        None => eprintln!("loadgen: the soft open-files limit is already at the hard limit"),
    }
    let ex = smol::LocalExecutor::new();
    smol::block_on(ex.run(run(&ex, &out, options)));
}

/// Every session's stats, summed up in one line: attempts, opens,
/// disconnects (by cause), wire bytes, the ping round trips measured (pongs
/// that answered a ping) and the mean of the smoothed ping round trips of
/// the sessions that measured one.
fn stats_summary(clients: &[Client]) -> String {
    let all: Vec<Stats> = clients.iter().map(Client::stats).collect();
    let sum = |f: fn(&Stats) -> u64| all.iter().map(f).sum::<u64>();
    let mut causes = std::collections::BTreeMap::new();
    for s in &all {
        for (cause, n) in s.disconnects.iter() {
            *causes.entry(cause.as_str()).or_insert(0u64) += n;
        }
    }
    let causes: Vec<String> = causes.iter().map(|(c, n)| format!("{c} {n}")).collect();
    let rtts: Vec<Duration> = all.iter().filter_map(|s| s.latency_smoothed).collect();
    let mean = match rtts.len() {
        0 => "none".to_owned(),
        k => format!(
            "{:.3} ms",
            rtts.iter().sum::<Duration>().as_secs_f64() * 1e3 / k as f64
        ),
    };
    format!(
        "stats: {} sessions; attempts {}, opens {}, disconnects {} [{}]; bytes in {}, out {}; ping round trips {}; mean smoothed ping rtt {mean} ({} sessions measured)",
        all.len(),
        sum(|s| s.attempts),
        sum(|s| s.opens),
        sum(|s| s.disconnects.total()),
        causes.join(", "),
        sum(|s| s.bytes_in),
        sum(|s| s.bytes_out),
        sum(|s| s.latency_samples),
        rtts.len(),
    )
}

async fn run(ex: &smol::LocalExecutor<'_>, out: &Out, o: Options) {
    let builder = Client::builder(o.url.clone())
        .config(o.config.clone())
        .hello_json(o.hello.clone())
        .ack_type(o.ack_type.clone());
    let n = o.connections;
    let mut clients = Vec::with_capacity(n);
    let mut streams = Vec::with_capacity(n);
    let first = Instant::now();
    for i in 0..n {
        let (client, events, session) = builder
            .build()
            .unwrap_or_else(|e| out.error(&e.to_string()));
        // Session i starts at i/n of the spread (at once without one).
        let at = first + o.spread.mul_f64(i as f64 / n as f64);
        ex.spawn(async move {
            if at > Instant::now() {
                Timer::at(at).await;
            }
            session.await
        })
        .detach();
        clients.push(client);
        streams.push(events.map(move |e| (i, e)));
    }
    let mut events = select_all(streams);
    let mut t = Tally {
        is_open: vec![false; n],
        open: 0,
        disconnects: 0,
    };

    // Phase 1: wait until all are open at the same moment.
    let open_deadline = out.start + o.open_timeout;
    while t.open < n {
        let next = async { events.next().await.map(Some) }
            .or(async {
                Timer::at(open_deadline).await;
                None
            })
            .await;
        match next {
            Some(Some((i, e))) => t.track(i, &e),
            Some(None) => out.error("every session ended before all were open"),
            None => out.error(&format!(
                "only {} of {n} sessions were open after {} ms",
                t.open,
                o.open_timeout.as_millis()
            )),
        }
    }
    out.line(format!(
        r#"{{"event":"all_open","t_ms":{},"open":{}}}"#,
        out.t_ms(),
        t.open
    ));
    eprintln!(
        "loadgen: {n} sessions open; rss {} KiB",
        procstat::rss_bytes() / 1024
    );

    // Phase 2: hold, still counting disconnects.
    let cpu0 = procstat::cpu_time();
    let hold_start = Instant::now();
    let hold_end = hold_start + o.hold;
    loop {
        let next = async { events.next().await }
            .or(async {
                Timer::at(hold_end).await;
                None
            })
            .await;
        match next {
            Some((i, e)) => t.track(i, &e),
            None if Instant::now() >= hold_end => break,
            None => out.error("every session ended during the hold"),
        }
    }
    let cpu = procstat::cpu_time().saturating_sub(cpu0);
    out.line(format!(r#"{{"event":"hold_done","t_ms":{}}}"#, out.t_ms()));
    let pings_per_session =
        hold_start.elapsed().as_secs_f64() / o.config.ping_interval.as_secs_f64();
    let round_trips = pings_per_session.floor() * n as f64;
    eprintln!(
        "loadgen: hold of {} ms: process cpu {} ms; {:.0} ping round trips ({} sessions, one per {} ms); {:.2} us cpu per round trip per session; rss {} KiB",
        o.hold.as_millis(),
        cpu.as_millis(),
        round_trips,
        n,
        o.config.ping_interval.as_millis(),
        if round_trips > 0.0 {
            cpu.as_secs_f64() * 1e6 / round_trips
        } else {
            0.0
        },
        procstat::rss_bytes() / 1024
    );

    // Phase 3: pipelined echoes over one open session.
    if o.echo > 0 {
        let Some(sender) = t.is_open.iter().position(|&x| x) else {
            out.error("no session is open for the echo phase");
        };
        let client = clients[sender].clone();
        let count = o.echo;
        let started = Instant::now();
        let send = ex.spawn(async move {
            for seq in 0..count {
                let text = serde_json::json!({"type": "load", "seq": seq}).to_string();
                if let Err(e) = client.send_wait(text).await {
                    return Err(e.to_string());
                }
            }
            Ok(())
        });
        let mut got = 0usize;
        while got < count {
            match events.next().await {
                Some((i, SessionEvent::Message(v))) if i == sender && v["type"] == "echo" => {
                    got += 1
                }
                Some((i, e)) => t.track(i, &e),
                None => out.error("sessions ended during the echo phase"),
            }
        }
        let elapsed = started.elapsed();
        if let Err(e) = send.await {
            out.error(&format!("echo send failed: {e}"));
        }
        out.line(format!(
            r#"{{"event":"echo_done","t_ms":{},"count":{got},"elapsed_ms":{}}}"#,
            out.t_ms(),
            elapsed.as_millis()
        ));
    }

    // Take in whatever already arrived, then report.
    loop {
        let next = async { Some(events.next().await) }.or(async { None }).await;
        match next {
            Some(Some((i, e))) => t.track(i, &e),
            _ => break,
        }
    }
    eprintln!("loadgen: {}", stats_summary(&clients));
    out.line(format!(
        r#"{{"event":"summary","open":{},"disconnects":{}}}"#,
        t.open, t.disconnects
    ));
    let _ = std::io::stdout().flush();
    // Exit without a close handshake per session: the summary is the end.
    std::process::exit(0);
}
