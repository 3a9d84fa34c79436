//! Replays a flight recording (`wsclient --record FILE`, or
//! `ClientBuilder::record_to`) in the core and prints each run's timeline:
//! every input that changed something, with the state before and after and
//! the actions it produced. See `docs/TROUBLESHOOTING.md`.
//!
//! ```text
//! cargo run --example replay -- FILE [--all]
//! ```
//!
//! `--all` also prints the inputs that changed nothing (inbound activity on
//! an open link, a pause while paused, …). Times are since the run's start
//! and, after them, the wall-clock time (UTC) they correspond to. Exit code
//! 1 when the file cannot be read or parsed (the message names the line),
//! 2 on a usage error.

use std::io::BufReader;
use std::time::{Instant, SystemTime};

use ws_lifecycle::fsm::{Recording, State, Step};
use ws_lifecycle::parse_recording;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let all = args.iter().any(|a| a == "--all");
    let files: Vec<&String> = args.iter().filter(|a| *a != "--all").collect();
    let [file] = files.as_slice() else {
        eprintln!("usage: replay FILE [--all]");
        std::process::exit(2);
    };
    let runs = std::fs::File::open(file)
        .map_err(|e| e.to_string())
        .and_then(|f| parse_recording(BufReader::new(f)).map_err(|e| e.to_string()));
    let runs = runs.unwrap_or_else(|e| {
        eprintln!("replay: {file}: {e}");
        std::process::exit(1);
    });
    for (n, run) in runs.iter().enumerate() {
        print_run(n + 1, run, all);
    }
}

fn print_run(n: usize, run: &Recording, all: bool) {
    let inputs = run.records.len();
    println!(
        "run {n}: {} started {} (ws-lifecycle {}), seed {:#x}, {inputs} records",
        run.url,
        utc(run.started),
        run.crate_version,
        run.config.seed,
    );
    let mut replay = match run.replay(Instant::now()) {
        Ok(replay) => replay,
        Err(e) => {
            println!("  cannot replay: {e}");
            return;
        }
    };
    let mut quiet = 0usize;
    for step in replay.by_ref() {
        let at = match &step {
            step if !all && !step.is_eventful() => {
                quiet += 1;
                continue;
            }
            Step::Input { at, .. } => run.started.checked_add(*at),
            Step::Start { .. } => Some(run.started),
            Step::Gap { .. } => None,
        };
        let wall = at.map_or_else(|| " ".repeat(12), clock);
        println!("  {wall}  {step}");
    }
    let end = match replay.machine().state() {
        State::Closed { reason } => format!("Closed: {reason}"),
        other => format!(
            "{} (the run ended before the session did)",
            other.status().name()
        ),
    };
    println!("  end: {end}");
    if quiet > 0 {
        println!("  ({quiet} inputs that changed nothing are hidden; --all shows them)");
    }
    if replay.dropped() > 0 {
        println!(
            "  not exact: {} inputs were lost in gaps (the recorder fell behind)",
            replay.dropped()
        );
    }
    println!();
}

/// `2024-05-01T12:03:17.123Z`
fn utc(t: SystemTime) -> String {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let days = since.as_secs() / 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{}Z", clock(t))
}

/// `12:03:17.123` (UTC)
fn clock(t: SystemTime) -> String {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
