//! The flight recorder: every input the machine receives, written as JSON
//! lines ([`record_format`](super::record_format)) by a thread of its own.
//! The session only encodes a line and offers it to a bounded channel: it
//! never waits for the writer. A full channel drops the record and counts
//! it; the next record that fits is preceded by a gap record, and a count
//! still unreported when the session ends is written last by the thread.

use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::fsm::{Action, Attempt, Config, Event};

use super::record_format::{gap_line, header_line, input_line};

/// Records buffered between the session and the writer thread by default.
pub(crate) const RECORD_BUFFER: usize = 1024;

/// A hook the session calls with every action, in order (tests compare
/// them with a replay's).
pub(crate) type ActionHook = dyn Fn(&Action) + Send + Sync;

/// A builder's recording target: the writer, taken by the first session
/// built (two sessions' lines in one stream could not be told apart).
#[derive(Clone)]
pub(crate) struct RecordTo {
    writer: Arc<Mutex<Option<Box<dyn Write + Send>>>>,
    pub(crate) buffer: usize,
}

impl RecordTo {
    pub(crate) fn new(writer: Box<dyn Write + Send>) -> Self {
        RecordTo {
            writer: Arc::new(Mutex::new(Some(writer))),
            buffer: RECORD_BUFFER,
        }
    }

    /// A recorder for a session to `url` (shown without user info or query
    /// string), its writer thread started; `None` once an earlier session took the
    /// writer, or when no thread can be started (both logged).
    pub(crate) fn recorder(&self, url: &str) -> Option<Recorder> {
        let taken = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(writer) = taken else {
            log::warn!(
                "ws-lifecycle {url}: not recorded: the recorder's writer went to an earlier session"
            );
            return None;
        };
        let (tx, rx) = mpsc::sync_channel(self.buffer.max(1));
        let tail = Arc::new(AtomicU64::new(0));
        let thread_tail = tail.clone();
        let spawned = std::thread::Builder::new()
            .name("ws-lifecycle-recorder".into())
            .spawn(move || write_lines(rx, writer, &thread_tail));
        if let Err(e) = spawned {
            log::warn!("ws-lifecycle {url}: not recorded: cannot start the recorder thread: {e}");
            return None;
        }
        Some(Recorder {
            tx: Some(tx),
            url: url.into(),
            start: None,
            dropped: 0,
            held: None,
            tail,
        })
    }
}

/// The session's end of a recording.
pub(crate) struct Recorder {
    /// `None` once the writer thread is gone (a write failed).
    tx: Option<SyncSender<String>>,
    url: Box<str>,
    /// When the machine started: offsets count from here.
    start: Option<Instant>,
    /// Records dropped since the last one that fit.
    dropped: u64,
    /// The latest of a run of `Activity` inputs, not yet offered. Activity
    /// only moves the machine's `last_activity` and acts on nothing, so a
    /// run with no other input between replays exactly as its last one:
    /// written before the next other input or at the end, it keeps a busy
    /// link from costing a line (and an allocation) per read pass.
    held: Option<(Duration, Attempt)>,
    /// Where the count still unreported at the end goes, for the thread.
    tail: Arc<AtomicU64>,
}

impl Recorder {
    /// The machine started at `now` with `config`: the header.
    pub(crate) fn start(&mut self, config: &Config, now: Instant) {
        self.start = Some(now);
        self.offer(header_line(config, SystemTime::now(), &self.url));
    }

    /// The machine receives `event` at `now`.
    pub(crate) fn input(&mut self, event: &Event, now: Instant) {
        let Some(start) = self.start else {
            return;
        };
        let at = now.saturating_duration_since(start);
        if let Event::Activity { attempt } = *event {
            // A run is one attempt's: another attempt's activity ends it.
            if self.held.is_some_and(|(_, held)| held != attempt) {
                self.release();
            }
            self.held = Some((at, attempt));
            return;
        }
        self.release();
        self.offer(input_line(at, event));
    }

    /// Offers the held activity, if any.
    fn release(&mut self) {
        if let Some((at, attempt)) = self.held.take() {
            self.offer(input_line(at, &Event::Activity { attempt }));
        }
    }

    /// Hands `line` to the writer thread unless its buffer is full.
    fn offer(&mut self, line: String) {
        if self.dropped > 0 && !self.try_send(gap_line(self.dropped)) {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        self.dropped = 0;
        if !self.try_send(line) {
            self.dropped = 1;
        }
    }

    /// Whether `line` went in (a dead writer counts as taken: nothing is
    /// recorded any more).
    fn try_send(&mut self, line: String) -> bool {
        let Some(tx) = &self.tx else {
            return true;
        };
        match tx.try_send(line) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => false,
            Err(TrySendError::Disconnected(_)) => {
                self.tx = None;
                true
            }
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.release();
        // Read by the thread once the channel closes (when `tx` drops,
        // right after this).
        self.tail.store(self.dropped, Ordering::SeqCst);
    }
}

/// The writer thread: writes every line, flushing whenever the channel is
/// empty, until the session's end closes it; then the final gap, if any.
/// Dropping `writer` on the way out tells its owner the recording is
/// complete.
fn write_lines(rx: Receiver<String>, writer: Box<dyn Write + Send>, tail: &AtomicU64) {
    let mut out = BufWriter::new(writer);
    let mut written = || -> io::Result<()> {
        while let Ok(line) = rx.recv() {
            writeln!(out, "{line}")?;
            // Whatever queued meanwhile goes in the same flush.
            while let Ok(line) = rx.try_recv() {
                writeln!(out, "{line}")?;
            }
            out.flush()?;
        }
        let dropped = tail.load(Ordering::SeqCst);
        if dropped > 0 {
            writeln!(out, "{}", gap_line(dropped))?;
        }
        out.flush()
    };
    if let Err(e) = written() {
        log::warn!("ws-lifecycle: the flight recorder stopped: {e}");
    }
}
