//! Reconnect delays: the configured schedule, jittered down by a seeded
//! generator, never below the floor; and a server's `Retry-After` hint,
//! capped and spread upward by the same generator.

use std::time::Duration;

use super::Config;
use super::config::MAX_DURATION;

/// The delay before the attempt that follows the `failures`-th consecutive
/// failure (counted from 1).
///
/// The base is `backoff[failures - 1]`, the last entry repeating. The result
/// is drawn uniformly from `[base·(1−jitter), base]` in whole nanoseconds
/// (integer arithmetic, so the bounds hold exactly) and then raised to
/// `min_delay`.
pub fn delay(config: &Config, failures: u32, rng: &mut fastrand::Rng) -> Duration {
    let (lo, hi) = bounds(config, failures);
    if lo == hi {
        return hi;
    }
    let lo_ns = lo.as_nanos() as u64;
    let hi_ns = hi.as_nanos() as u64;
    Duration::from_nanos(rng.u64(lo_ns..=hi_ns))
}

/// The closed interval [`delay`] draws from, floor included.
pub fn bounds(config: &Config, failures: u32) -> (Duration, Duration) {
    let index = (failures.max(1) as usize - 1).min(config.backoff.len().saturating_sub(1));
    let base = config
        .backoff
        .get(index)
        .copied()
        .unwrap_or(config.min_delay);
    // Durations are validated to at most 100 years, which fits u64 nanoseconds.
    let base_ns = u64::try_from(base.as_nanos()).unwrap_or(u64::MAX);
    let jitter = if config.jitter.is_finite() {
        config.jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let span = ((base_ns as f64) * jitter) as u64;
    let lo = Duration::from_nanos(base_ns - span.min(base_ns));
    (lo.max(config.min_delay), base.max(config.min_delay))
}

/// The delay after a failure that came with a server's hint (`Retry-After`):
/// `max(backoff delay, min(hint × (1 + jitter × u), max_retry_after))`.
///
/// The backoff delay is drawn first, as by [`delay`]; then `u`, uniformly,
/// as a whole number of nanoseconds in `[hint, hint + hint·jitter]` (no
/// draw when that span is empty). So a fleet told "2 s" does not return in
/// one instant, and no hint can push the retry past `max_retry_after` (nor
/// below the backoff delay).
pub fn hinted(config: &Config, failures: u32, hint: Duration, rng: &mut fastrand::Rng) -> Duration {
    let backoff = delay(config, failures, rng);
    let (lo, hi) = spread(config, hint);
    let drawn = if lo == hi {
        Duration::from_nanos(lo)
    } else {
        Duration::from_nanos(rng.u64(lo..=hi))
    };
    backoff.max(drawn.min(config.max_retry_after))
}

/// The closed interval [`hinted`] draws from.
#[cfg(any(test, feature = "testing"))]
pub fn hinted_bounds(config: &Config, failures: u32, hint: Duration) -> (Duration, Duration) {
    let (b_lo, b_hi) = bounds(config, failures);
    let (lo, hi) = spread(config, hint);
    let cap = config.max_retry_after;
    (
        b_lo.max(Duration::from_nanos(lo).min(cap)),
        b_hi.max(Duration::from_nanos(hi).min(cap)),
    )
}

/// The hint's spread in nanoseconds: `[hint, hint·(1 + jitter)]`, the hint
/// first clamped to [`Config::MAX_DURATION`] (which fits `u64` nanoseconds).
fn spread(config: &Config, hint: Duration) -> (u64, u64) {
    let hint_ns = u64::try_from(hint.min(MAX_DURATION).as_nanos()).unwrap_or(u64::MAX);
    let jitter = if config.jitter.is_finite() {
        config.jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let span = ((hint_ns as f64) * jitter) as u64;
    (hint_ns, hint_ns.saturating_add(span))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(jitter: f64) -> Config {
        Config {
            jitter,
            ..Config::default()
        }
    }

    #[test]
    fn without_jitter_the_schedule_is_exact_and_the_last_entry_repeats() {
        let c = cfg(0.0);
        let mut rng = fastrand::Rng::with_seed(1);
        let got: Vec<u64> = (1..=8).map(|f| delay(&c, f, &mut rng).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let c = cfg(0.5);
        let mut rng = fastrand::Rng::with_seed(7);
        let draws: Vec<Duration> = (0..200).map(|_| delay(&c, 3, &mut rng)).collect();
        assert!(
            draws
                .iter()
                .all(|d| *d >= Duration::from_secs(2) && *d <= Duration::from_secs(4))
        );
        assert!(draws.iter().any(|d| *d != draws[0]));
    }

    #[test]
    fn full_jitter_never_goes_below_the_floor() {
        let c = cfg(1.0);
        let mut rng = fastrand::Rng::with_seed(3);
        assert!((0..1000).all(|_| delay(&c, 1, &mut rng) >= c.min_delay));
        assert_eq!(bounds(&c, 1).0, c.min_delay);
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let c = cfg(0.5);
        let run = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (1..10).map(|f| delay(&c, f, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn saturated_failure_counts_use_the_last_entry() {
        let c = cfg(0.0);
        let mut rng = fastrand::Rng::with_seed(1);
        assert_eq!(delay(&c, u32::MAX, &mut rng), Duration::from_secs(30));
    }

    /// An interval of one value draws nothing from the generator (the
    /// documented "no draw when that span is empty"), so the draws that
    /// follow do not depend on which delays sat at a bound.
    #[test]
    fn an_empty_interval_draws_nothing() {
        let s = Duration::from_secs;
        let untouched = fastrand::Rng::with_seed(5);
        // Without jitter neither the backoff nor a hint draws.
        let c = cfg(0.0);
        let mut rng = untouched.clone();
        assert_eq!(delay(&c, 3, &mut rng), s(4));
        assert_eq!(hinted(&c, 3, s(20), &mut rng), s(20));
        assert_eq!(rng, untouched);
        // A schedule entry below the floor is the floor, whatever the jitter.
        let floor = Config {
            backoff: vec![Duration::from_millis(10)],
            ..cfg(0.5)
        };
        assert_eq!(bounds(&floor, 1), (floor.min_delay, floor.min_delay));
        assert_eq!(delay(&floor, 1, &mut rng), floor.min_delay);
        assert_eq!(rng, untouched);
        // With jitter a zero hint spreads to nothing: only the backoff draws.
        let c = cfg(0.5);
        let (mut one, mut other) = (untouched.clone(), untouched.clone());
        let backoff = delay(&c, 3, &mut other);
        assert_eq!(hinted(&c, 3, Duration::ZERO, &mut one), backoff);
        assert_eq!(one, other);
        assert_ne!(one, untouched);
    }

    #[test]
    fn a_hint_is_spread_upward_capped_and_never_below_the_backoff() {
        let c = cfg(0.5);
        let mut rng = fastrand::Rng::with_seed(9);
        let s = Duration::from_secs;
        // 20 s hint, first failure (backoff 0.5–1 s): within [20, 30] s.
        let draws: Vec<Duration> = (0..500).map(|_| hinted(&c, 1, s(20), &mut rng)).collect();
        assert!(draws.iter().all(|d| *d >= s(20) && *d <= s(30)));
        assert!(draws.iter().any(|d| *d > s(25)) && draws.iter().any(|d| *d < s(25)));
        assert_eq!(hinted_bounds(&c, 1, s(20)), (s(20), s(30)));
        // A hint below the backoff: the backoff wins.
        assert_eq!(
            hinted_bounds(&c, 6, Duration::from_millis(1)),
            (s(15), s(30))
        );
        // The cap.
        assert_eq!(hinted(&c, 1, s(3600), &mut rng), s(600));
        assert_eq!(hinted(&c, 1, Duration::MAX, &mut rng), s(600));
        // A zero cap ignores hints.
        let zero = Config {
            max_retry_after: Duration::ZERO,
            ..cfg(0.0)
        };
        assert_eq!(hinted(&zero, 1, s(20), &mut rng), s(1));
    }
}
