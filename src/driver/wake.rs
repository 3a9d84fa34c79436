//! Noticing that the host slept. On Linux the monotonic clock (`Instant`)
//! stops while the machine is suspended and the wall clock (`SystemTime`)
//! does not, so a link that died during a night's sleep looks fresh at wake.
//! The session samples both clocks whenever it is polled; when wall time ran
//! ahead of monotonic time by more than [`SUSPEND_THRESHOLD`] between two
//! polls, the host slept, and the machine is told ([`Event::Woke`]): the
//! decision (a ping, the probe deadline) is the core's.
//!
//! An idle session is polled at its next deadline (at the latest the next
//! ping), so detection may lag the wake by up to `ping_interval`. A wall
//! clock stepped forward by hand or by NTP looks the same: it costs one
//! ping and a probe a live link answers.
//!
//! [`Event::Woke`]: crate::fsm::Event::Woke

use std::time::{Duration, Instant, SystemTime};

use super::spec::Spec;

/// How far wall time may run ahead of monotonic time between two polls
/// before it counts as a suspend (clock slew and a busy host stay far below).
pub(crate) const SUSPEND_THRESHOLD: Duration = Duration::from_secs(2);

/// Both clocks as last sampled.
#[derive(Debug, Default)]
pub(crate) struct WakeWatch {
    last: Option<(Instant, SystemTime)>,
}

impl WakeWatch {
    /// Samples both clocks (the spec's wall clock, or the system's) and
    /// says whether the host slept since the last sample: longer than the
    /// threshold (logged).
    pub(crate) fn woke(&mut self, spec: &Spec) -> bool {
        let wall = spec
            .wall_clock
            .as_ref()
            .map_or_else(SystemTime::now, |clock| clock());
        let slept = self.sample(Instant::now(), wall);
        if let Some(slept) = slept {
            log::debug!("ws-lifecycle {}: the host slept for {slept:?}", spec.url());
        }
        slept.is_some()
    }

    fn sample(&mut self, now: Instant, wall: SystemTime) -> Option<Duration> {
        let (then, wall_then) = self.last.replace((now, wall))?;
        // A wall clock stepped back is no suspend.
        let walled = wall.duration_since(wall_then).ok()?;
        let slept = walled.checked_sub(now.saturating_duration_since(then))?;
        (slept > SUSPEND_THRESHOLD).then_some(slept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wall_clock_ahead_of_the_monotonic_one_is_a_suspend() {
        let (t0, w0) = (
            Instant::now(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 30),
        );
        let s = Duration::from_secs;
        let mut watch = WakeWatch::default();
        assert_eq!(
            watch.sample(t0, w0),
            None,
            "the first sample has nothing to compare"
        );
        // Both clocks advance together: no suspend, however long.
        assert_eq!(watch.sample(t0 + s(100), w0 + s(100)), None);
        // Wall time 2 s ahead: at the threshold, not over it.
        assert_eq!(watch.sample(t0 + s(101), w0 + s(103)), None);
        // An hour of sleep between two polls a second apart.
        assert_eq!(watch.sample(t0 + s(102), w0 + s(3704)), Some(s(3600)));
        // Compared with the latest sample, not the first.
        assert_eq!(watch.sample(t0 + s(103), w0 + s(3705)), None);
        // A wall clock stepped back is ignored.
        assert_eq!(watch.sample(t0 + s(104), w0), None);
    }
}
