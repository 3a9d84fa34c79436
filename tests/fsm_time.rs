//! Checked deadline arithmetic. Lives outside `src/fsm` because it needs
//! an `Instant` to start from, and the core never reads a clock.

use std::time::{Duration, Instant};

use ws_lifecycle::fsm::time::deadline;

#[test]
fn adds_exactly_when_it_fits() {
    let t0 = Instant::now();
    assert_eq!(
        deadline(t0, Duration::from_secs(3)),
        t0 + Duration::from_secs(3)
    );
}

#[test]
fn never_panics_on_overflow_and_still_moves_forward() {
    let t0 = Instant::now();
    assert!(deadline(t0, Duration::MAX) > t0);
}
