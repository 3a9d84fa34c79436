//! What the scripted examples (`demo`, `resume`) share: running the story
//! and stamping its lines with the time since it began.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

/// Runs `story` on smol; an error is printed and exits with 1.
pub fn main(name: &str, story: impl Future<Output = Result<(), Box<dyn std::error::Error>>>) {
    if let Err(e) = smol::block_on(story) {
        eprintln!("{name} failed: {e}");
        std::process::exit(1);
    }
}

/// `d` milliseconds.
pub fn ms(d: u64) -> Duration {
    Duration::from_millis(d)
}

/// `[  1.234s]`: the time since `start`, for the story's lines.
pub fn stamp(start: Instant) -> impl Fn() -> String + Copy {
    move || format!("[{:>6.3}s]", start.elapsed().as_secs_f64())
}
