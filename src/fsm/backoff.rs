//! Reconnect delays: the configured schedule, jittered down by a seeded
//! generator, never below the floor.

use std::time::Duration;

use super::Config;

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
}
