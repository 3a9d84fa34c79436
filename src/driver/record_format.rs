//! The flight recorder's file: JSON lines, one run after another. Each run
//! is a header line, then one line per input or gap:
//!
//! ```text
//! {"recording":"ws-lifecycle","format":1,"crate_version":"0.1.0","started_unix_ns":N,"url":"ws://host/ws","config":{…}}
//! {"t_ns":N,"event":{"type":"SocketOpened","attempt":1}}
//! {"gap":N}
//! ```
//!
//! [`parse_recording`] reads them back into typed [`Run`]s for
//! [`fsm::Recording::replay`](crate::fsm::Recording::replay).

use std::io::{self, BufRead};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::fsm::{Config, Event, Record, Recording};

use super::record_codec::{
    Bad, config_from_json, config_to_json, event_from_json, event_to_json, field, nanos, object,
    str_field, u64_field,
};

/// The version of the recording format this crate writes and reads.
pub const RECORDING_FORMAT: u64 = 1;

/// The header's marker: a line with it starts a run.
const MARKER: &str = "ws-lifecycle";

/// One recorded session: what its header says, and its records.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The header.
    pub header: RunHeader,
    /// The configuration and the records, ready to
    /// [`replay`](crate::fsm::Recording::replay).
    pub recording: Recording,
}

/// What a run's header says besides the configuration (information only:
/// the replay needs none of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunHeader {
    /// The format version ([`RECORDING_FORMAT`]).
    pub format: u64,
    /// The version of this crate that wrote the run.
    pub crate_version: String,
    /// The wall-clock time at which the machine started: a record's wall
    /// time is this plus its offset.
    pub started: SystemTime,
    /// The broker's URL, without user info or query (as logged).
    pub url: String,
}

/// A recording that could not be read: the line (counted from 1) and what
/// is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("recording line {line}: {problem}")]
pub struct RecordingError {
    /// The line, counted from 1.
    pub line: usize,
    /// What is wrong.
    pub problem: RecordingProblem,
}

/// What is wrong with a line of a recording.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordingProblem {
    /// The reader failed (or the line is not UTF-8).
    #[error("cannot read it: {0}")]
    Io(#[from] io::Error),
    /// The line is not JSON.
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A record came before any header.
    #[error("a record before any header line")]
    NoHeader,
    /// The header is of a format version this crate does not read.
    #[error("format version {0} is not supported (this crate reads version {RECORDING_FORMAT})")]
    Format(u64),
    /// A field is missing or has the wrong type or value.
    #[error("{0}")]
    Field(String),
}

// ── writing ────────────────────────────────────────────────────────────

/// The header line of a run (without the newline).
pub(crate) fn header_line(config: &Config, started: SystemTime, url: &str) -> String {
    let since_epoch = started
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let header = json!({
        "recording": MARKER,
        "format": RECORDING_FORMAT,
        "crate_version": env!("CARGO_PKG_VERSION"),
        "started_unix_ns": nanos(since_epoch),
        "url": url,
        "config": config_to_json(config),
    });
    let order = [
        "recording",
        "format",
        "crate_version",
        "started_unix_ns",
        "url",
    ];
    ordered(&header, &order)
}

/// An input's line, `at` after the start.
pub(crate) fn input_line(at: Duration, event: &Event) -> String {
    let line = json!({"t_ns": nanos(at), "event": event_to_json(event)});
    ordered(&line, &["t_ns"])
}

/// A gap's line.
pub(crate) fn gap_line(dropped: u64) -> String {
    json!({ "gap": dropped }).to_string()
}

/// `value` as JSON text with the keys of an object in `first` first (the
/// others after them in name order) and, in nested objects, `type` first:
/// the lines are for people too, and serde_json sorts keys by name.
fn ordered(value: &Value, first: &[&str]) -> String {
    let Value::Object(o) = value else {
        return match value {
            Value::Array(items) => {
                let items: Vec<String> = items.iter().map(|v| ordered(v, &["type"])).collect();
                format!("[{}]", items.join(","))
            }
            other => other.to_string(),
        };
    };
    let rest = o.keys().filter(|k| !first.contains(&k.as_str()));
    let keys = first.iter().copied().filter(|k| o.contains_key(*k));
    let fields: Vec<String> = keys
        .chain(rest.map(String::as_str))
        .map(|k| format!("{}:{}", Value::from(k), ordered(&o[k], &["type"])))
        .collect();
    format!("{{{}}}", fields.join(","))
}

// ── reading ────────────────────────────────────────────────────────────

/// Reads every run of a recording (a file `wsclient --record` appended to
/// holds one per run). Blank lines are skipped; anything else that is not
/// a header, an input or a gap is an error naming its line.
pub fn parse_recording(reader: impl BufRead) -> Result<Vec<Run>, RecordingError> {
    let mut runs: Vec<Run> = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let error = |problem| RecordingError {
            line: n + 1,
            problem,
        };
        let line = line.map_err(|e| error(e.into()))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&line).map_err(|e| error(e.into()))?;
        match parse_line(&value).map_err(&error)? {
            Line::Header(run) => runs.push(*run),
            Line::Record(record) => match runs.last_mut() {
                Some(run) => run.recording.records.push(record),
                None => return Err(error(RecordingProblem::NoHeader)),
            },
        }
    }
    Ok(runs)
}

enum Line {
    Header(Box<Run>),
    Record(Record),
}

fn parse_line(value: &Value) -> Result<Line, RecordingProblem> {
    let bad = RecordingProblem::Field;
    let o = object(value, "line").map_err(bad)?;
    if o.contains_key("recording") {
        return header(o).map(|run| Line::Header(Box::new(run)));
    }
    if o.contains_key("gap") {
        let dropped = u64_field(o, "line", "gap").map_err(bad)?;
        return Ok(Line::Record(Record::Gap { dropped }));
    }
    let record = (|| -> Result<Record, Bad> {
        Ok(Record::Input {
            at: Duration::from_nanos(u64_field(o, "line", "t_ns")?),
            event: event_from_json(field(o, "line", "event")?, "event")?,
        })
    })();
    record.map(Line::Record).map_err(bad)
}

fn header(o: &serde_json::Map<String, Value>) -> Result<Run, RecordingProblem> {
    let bad = RecordingProblem::Field;
    if str_field(o, "header", "recording").map_err(bad)? != MARKER {
        return Err(bad(format!("`header.recording` must be {MARKER:?}")));
    }
    let format = u64_field(o, "header", "format").map_err(bad)?;
    if format != RECORDING_FORMAT {
        return Err(RecordingProblem::Format(format));
    }
    let started = u64_field(o, "header", "started_unix_ns").map_err(bad)?;
    Ok(Run {
        header: RunHeader {
            format,
            crate_version: str_field(o, "header", "crate_version")
                .map_err(bad)?
                .to_owned(),
            // Never overflows on the platforms std supports; never panics.
            started: SystemTime::UNIX_EPOCH
                .checked_add(Duration::from_nanos(started))
                .unwrap_or(SystemTime::UNIX_EPOCH),
            url: str_field(o, "header", "url").map_err(bad)?.to_owned(),
        },
        recording: Recording {
            config: config_from_json(field(o, "header", "config").map_err(bad)?, "config")
                .map_err(bad)?,
            records: Vec::new(),
        },
    })
}
