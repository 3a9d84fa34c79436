//! The flight recorder's file: JSON lines, one run after another. Each run
//! is a header line, then one line per input or gap:
//!
//! ```text
//! {"recording":"ws-lifecycle","format":1,"crate_version":"0.1.0","started_unix_ns":N,"url":"ws://host/ws","config":{…}}
//! {"t_ns":N,"event":{"type":"SocketOpened","attempt":1}}
//! {"gap":N}
//! ```
//!
//! [`parse_recording`] reads them back into typed
//! [`Recording`]s for [`Recording::replay`].

use std::io::{self, BufRead};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::fsm::{Config, Event, Record, Recording};

use super::record_codec::{
    Bad, config_from_json, config_to_json, event_from_json, event_to_json, field, nanos, object,
    str_field, u64_field,
};

/// The version of the recording format this crate writes and reads.
const RECORDING_FORMAT: u64 = 1;

/// The header's marker: a line with it starts a run.
const MARKER: &str = "ws-lifecycle";

/// A recording that could not be read: each variant names the line
/// (counted from 1; see [`line`](Self::line)) and says what is wrong with
/// it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordingError {
    /// The reader failed (or the line is not UTF-8).
    #[error("recording line {line}: cannot read it: {source}")]
    Io {
        /// The line.
        line: usize,
        /// The reader's error.
        source: io::Error,
    },
    /// The line is not JSON.
    #[error("recording line {line}: not JSON: {source}")]
    Json {
        /// The line.
        line: usize,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// A record came before any header.
    #[error("recording line {line}: a record before any header line")]
    NoHeader {
        /// The line.
        line: usize,
    },
    /// The header is of a format version this crate does not read (it
    /// reads version 1).
    #[error(
        "recording line {line}: format version {version} is not supported (this crate reads \
         version {RECORDING_FORMAT})"
    )]
    Format {
        /// The line.
        line: usize,
        /// The header's version.
        version: u64,
    },
    /// A field is missing or has the wrong type or value.
    #[error("recording line {line}: {detail}")]
    Field {
        /// The line.
        line: usize,
        /// Which field, and what is wrong with it.
        detail: String,
    },
}

impl RecordingError {
    /// The line it is about, counted from 1.
    pub fn line(&self) -> usize {
        match self {
            RecordingError::Io { line, .. }
            | RecordingError::Json { line, .. }
            | RecordingError::NoHeader { line }
            | RecordingError::Format { line, .. }
            | RecordingError::Field { line, .. } => *line,
        }
    }
}

/// What is wrong with a line, before its number is known.
enum Problem {
    Format(u64),
    Field(String),
}

impl Problem {
    fn at(self, line: usize) -> RecordingError {
        match self {
            Problem::Format(version) => RecordingError::Format { line, version },
            Problem::Field(detail) => RecordingError::Field { line, detail },
        }
    }
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

/// Reads every run of a flight recording
/// ([`ClientBuilder::record_to`](crate::ClientBuilder::record_to); a file
/// `wsclient --record` appended to holds one per run), each a
/// [`Recording`] with what its header says, ready to
/// [`replay`](Recording::replay). Blank lines are skipped; anything else
/// that is not a header, an input or a gap is an error naming its line.
pub fn parse_recording(reader: impl BufRead) -> Result<Vec<Recording>, RecordingError> {
    let mut runs: Vec<Recording> = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line_no = n + 1;
        let line = line.map_err(|source| RecordingError::Io {
            line: line_no,
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&line).map_err(|source| RecordingError::Json {
            line: line_no,
            source,
        })?;
        match parse_line(&value).map_err(|problem| problem.at(line_no))? {
            Line::Header(run) => runs.push(*run),
            Line::Record(record) => match runs.last_mut() {
                Some(run) => run.records.push(record),
                None => return Err(RecordingError::NoHeader { line: line_no }),
            },
        }
    }
    Ok(runs)
}

enum Line {
    Header(Box<Recording>),
    Record(Record),
}

fn parse_line(value: &Value) -> Result<Line, Problem> {
    let bad = Problem::Field;
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

fn header(o: &serde_json::Map<String, Value>) -> Result<Recording, Problem> {
    let bad = Problem::Field;
    if str_field(o, "header", "recording").map_err(bad)? != MARKER {
        return Err(bad(format!("`header.recording` must be {MARKER:?}")));
    }
    let format = u64_field(o, "header", "format").map_err(bad)?;
    if format != RECORDING_FORMAT {
        return Err(Problem::Format(format));
    }
    let started = u64_field(o, "header", "started_unix_ns").map_err(bad)?;
    Ok(Recording {
        crate_version: str_field(o, "header", "crate_version")
            .map_err(bad)?
            .to_owned(),
        // Never overflows on the platforms std supports; never panics.
        started: SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_nanos(started))
            .unwrap_or(SystemTime::UNIX_EPOCH),
        url: str_field(o, "header", "url").map_err(bad)?.to_owned(),
        config: config_from_json(field(o, "header", "config").map_err(bad)?, "config")
            .map_err(bad)?,
        records: Vec::new(),
    })
}
