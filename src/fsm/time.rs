//! Checked deadline arithmetic: no configuration or clock value can make the
//! core panic on `Instant` overflow.

use std::time::{Duration, Instant};

/// `now + after`, never panicking.
///
/// Validation keeps every duration far below what an `Instant` can hold, so
/// the fallback only matters for an `Instant` already near its own limit:
/// there the delay is halved until it fits, which still moves the deadline
/// forward (a deadline equal to `now` would make a driver spin).
pub fn deadline(now: Instant, after: Duration) -> Instant {
    let mut d = after;
    loop {
        if let Some(t) = now.checked_add(d) {
            return t;
        }
        d /= 2;
    }
}
