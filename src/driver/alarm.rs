//! The session's one timer.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_io::Timer;

/// A deadline may fire up to 1/`SLACK_DIVISOR` of its lead late ...
const SLACK_DIVISOR: u64 = 32;
/// ... on a grid of at least 1 ms (closer deadlines are exact) ...
const MIN_STEP_NS: u64 = 1 << 20;
/// ... and at most about 17 ms (the step of a deadline a second away).
const MAX_STEP_NS: u64 = 1 << 24;

/// One `async_io::Timer`, re-armed only when the machine's deadline moved
/// *earlier*: a busy socket moves the stale deadline later on every frame,
/// and touching the reactor per message would cost more than one early,
/// harmless wake-up (`handle_timeout` is a no-op when early).
///
/// Deadlines are rounded up onto a process-wide grid ([`coalesced`]), so
/// the timers of many sessions fall due together: one reactor wake-up (and
/// one notification for the timers re-armed after it) serves them all,
/// where exact deadlines cost each session its own.
pub(crate) struct Alarm {
    timer: Timer,
    /// The deadline asked for (the timer is set at most a little later).
    armed: Option<Instant>,
}

impl Alarm {
    pub(crate) fn new() -> Self {
        Alarm {
            timer: Timer::never(),
            armed: None,
        }
    }

    /// Arms for `want` (if earlier than what is armed) and reports whether
    /// the armed instant has passed.
    pub(crate) fn poll(&mut self, want: Option<Instant>, cx: &mut Context<'_>) -> bool {
        if let Some(want) = want {
            if self.armed.is_none_or(|armed| want < armed) {
                self.timer.set_at(coalesced(want, Instant::now()));
                self.armed = Some(want);
            }
        }
        if self.armed.is_none() {
            return false;
        }
        match Pin::new(&mut self.timer).poll(cx) {
            Poll::Pending => false,
            Poll::Ready(_) => {
                self.armed = None;
                true
            }
        }
    }

    /// Releases the reactor registration.
    pub(crate) fn disarm(&mut self) {
        self.timer = Timer::never();
        self.armed = None;
    }
}

/// `want`, rounded up to the next multiple of the largest power-of-two step
/// (in nanoseconds, counted from a process-wide epoch) that is at most
/// 1/32 of the time left until it, within 1 ms to 17 ms: a deadline a
/// second or more away fires up to 17 ms late, one less than 32 ms away
/// exactly on time. Steps are powers of two so that the grids of near and
/// far deadlines line up. The machine's deadlines stay exact; only the
/// wake-up that delivers them may come this much later (about what a busy
/// executor adds anyway).
fn coalesced(want: Instant, now: Instant) -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(|| now);
    let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let step = (nanos(want.saturating_duration_since(now)) / SLACK_DIVISOR).min(MAX_STEP_NS);
    if step < MIN_STEP_NS {
        return want;
    }
    let step = 1 << step.ilog2();
    let since = nanos(want.saturating_duration_since(epoch));
    epoch + Duration::from_nanos(since.div_ceil(step).saturating_mul(step))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_onto_a_shared_grid_by_a_bounded_slack() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        // Close deadlines (and overdue ones) are exact.
        for lead in [ms(0), ms(1), ms(31)] {
            assert_eq!(coalesced(now + lead, now), now + lead);
        }
        assert_eq!(coalesced(now - ms(5), now), now - ms(5));
        for lead in [ms(40), ms(250), ms(1000), ms(30_000), ms(3_600_000)] {
            let want = now + lead;
            let got = coalesced(want, now);
            assert!(got >= want, "never early ({lead:?})");
            let slack = (lead / 32).min(Duration::from_nanos(MAX_STEP_NS));
            assert!(got - want < slack, "{:?} late for {lead:?}", got - want);
        }
        // Two sessions whose pings are due a few ms apart share a wake-up.
        let a = coalesced(now + ms(1000), now);
        let b = coalesced(now + ms(1000) + Duration::from_micros(300), now + ms(1));
        let c = coalesced(now + ms(1000) + Duration::from_micros(300), now);
        assert!(
            a == c || c - a == Duration::from_nanos(1 << 24),
            "{a:?} {c:?}"
        );
        assert_eq!(b, c, "the grid does not depend on when it is asked");
    }
}
