//! Ping round-trip time: which pong answers our latest ping, and the
//! smoothed estimate.
//!
//! Every ping carries a one-byte tag (0, 1, …, 255, then 0 again; the
//! driver cuts its payload from a static table, so sending one allocates
//! nothing). Its clock starts when
//! the meter saw the ping's last byte taken by the transport, and stops
//! when a pong with the same tag is read: a pong answering an older ping is
//! not a sample, and neither is one the broker sends on its own (RFC 6455
//! §5.5.3 allows that) unless its payload happens to be the same single
//! byte; such a pong read before ours gives one short sample. Only the
//! last pong of a read pass is looked at, so an unsolicited one read right
//! after ours costs that ping its sample (never a wrong one).

use std::time::{Duration, Instant};

/// A pong whose payload could be one of our tags, and when it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pong {
    pub(crate) tag: u8,
    pub(crate) at: Instant,
}

/// The tag a pong's payload carries, if it can be one of ours.
pub(crate) fn tag_of(payload: &[u8]) -> Option<u8> {
    match payload {
        [tag] => Some(*tag),
        _ => None,
    }
}

/// The latest ping of the current link and when its last byte was written.
#[derive(Debug, Default, Clone)]
pub(crate) struct PingClock {
    next_tag: u8,
    /// The tag of the latest ping handed to tungstenite, until answered.
    latest: Option<u8>,
    /// Pings handed over whose last byte the transport has not taken.
    unwritten: u32,
    /// When the latest ping's last byte was taken.
    written_at: Option<Instant>,
}

impl PingClock {
    /// A ping is handed to the transport: its tag (the payload's one byte).
    pub(crate) fn tag(&mut self) -> u8 {
        let tag = self.next_tag;
        self.next_tag = tag.wrapping_add(1);
        self.latest = Some(tag);
        self.unwritten = self.unwritten.saturating_add(1);
        self.written_at = None;
        tag
    }

    /// The transport took the last byte of `pings` ping frames at `at`;
    /// frames go out in order, so the latest is written once none is left.
    pub(crate) fn written(&mut self, pings: u32, at: Instant) {
        if pings == 0 {
            return;
        }
        self.unwritten = self.unwritten.saturating_sub(pings);
        if self.unwritten == 0 && self.latest.is_some() {
            self.written_at = Some(at);
        }
    }

    /// A pong was read: the round trip, when it answers the latest ping
    /// and that ping was written (once per ping).
    pub(crate) fn pong(&mut self, pong: Pong) -> Option<Duration> {
        let written = self.written_at.filter(|_| Some(pong.tag) == self.latest)?;
        self.latest = None;
        self.written_at = None;
        Some(pong.at.saturating_duration_since(written))
    }

    /// The link is gone: nothing of it can answer.
    pub(crate) fn reset(&mut self) {
        self.latest = None;
        self.unwritten = 0;
        self.written_at = None;
    }
}

/// The last round trip and the smoothed one, as TCP's SRTT (RFC 6298
/// §2): the first sample is taken as is, then
/// `srtt ← srtt + (sample − srtt) / 8` (α = 1/8). Kept in nanoseconds
/// (every session holds one; 2^64 ns is 584 years, and longer saturates);
/// no sample yet while `samples` is 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Rtt {
    last: u64,
    smoothed: u64,
    samples: u64,
}

impl Rtt {
    pub(crate) fn sample(&mut self, rtt: Duration) {
        let nanos = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX);
        self.last = nanos;
        self.smoothed = match self.samples {
            0 => nanos,
            _ => ewma(self.smoothed, nanos),
        };
        self.samples = self.samples.saturating_add(1);
    }

    /// The last round trip, once there is one.
    pub(crate) fn last(&self) -> Option<Duration> {
        (self.samples > 0).then(|| Duration::from_nanos(self.last))
    }

    /// The smoothed round trip, once there is one.
    pub(crate) fn smoothed(&self) -> Option<Duration> {
        (self.samples > 0).then(|| Duration::from_nanos(self.smoothed))
    }

    /// Round trips measured.
    pub(crate) fn samples(&self) -> u64 {
        self.samples
    }
}

/// `srtt + (sample − srtt) / 8`, as `(7·srtt + sample) / 8` (in u128: no
/// overflow; the result lies between the two, so it fits a u64).
fn ewma(srtt: u64, sample: u64) -> u64 {
    let mean = (7 * u128::from(srtt) + u128::from(sample)) / 8;
    u64::try_from(mean).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_first_sample_is_taken_as_is_then_each_moves_it_an_eighth() {
        let mut rtt = Rtt::default();
        assert_eq!((rtt.last(), rtt.smoothed()), (None, None));
        rtt.sample(ms(80));
        assert_eq!((rtt.last(), rtt.smoothed()), (Some(ms(80)), Some(ms(80))));
        rtt.sample(ms(160));
        assert_eq!(rtt.last(), Some(ms(160)));
        assert_eq!(rtt.smoothed(), Some(ms(90)), "80 + (160 − 80) / 8");
        rtt.sample(ms(10));
        assert_eq!(rtt.smoothed(), Some(ms(80)), "90 + (10 − 90) / 8");
        assert_eq!(rtt.samples(), 3);
    }

    #[test]
    fn a_steady_sample_converges_and_extremes_do_not_overflow() {
        let mut rtt = Rtt::default();
        rtt.sample(ms(1000));
        for _ in 0..200 {
            rtt.sample(ms(40));
        }
        let srtt = rtt.smoothed().unwrap();
        assert!(srtt >= ms(40) && srtt < ms(41), "{srtt:?}");
        // Past 2^64 ns (584 years) a sample saturates; nothing overflows.
        rtt.sample(Duration::MAX);
        assert_eq!(rtt.last(), Some(Duration::from_nanos(u64::MAX)));
        rtt.sample(Duration::MAX);
        let srtt = rtt.smoothed().unwrap();
        assert!(
            srtt > Duration::from_nanos(u64::MAX / 8) && srtt < Duration::MAX,
            "{srtt:?}"
        );
    }

    /// The pong the meter would report for `payload` read at `at`.
    fn pong(payload: &[u8], at: Instant) -> Option<Pong> {
        tag_of(payload).map(|tag| Pong { tag, at })
    }

    /// Feeds a pong for `payload` (if it could be ours) to `clock`.
    fn answer(clock: &mut PingClock, payload: &[u8], at: Instant) -> Option<Duration> {
        pong(payload, at).and_then(|p| clock.pong(p))
    }

    #[test]
    fn only_the_pong_of_the_latest_written_ping_is_a_sample() {
        let t0 = super::super::tests::t0();
        let mut clock = PingClock::default();
        let first = [clock.tag()];
        assert_eq!(first, [0]);
        // Not written yet: a matching pong is no sample.
        assert_eq!(answer(&mut clock, &first, t0), None);
        clock.written(1, t0);
        // The broker's own pongs (empty, or another payload) are ignored.
        assert_eq!(answer(&mut clock, b"", t0 + ms(5)), None);
        assert_eq!(answer(&mut clock, &[7], t0 + ms(5)), None);
        assert_eq!(answer(&mut clock, &first, t0 + ms(30)), Some(ms(30)));
        // Once per ping.
        assert_eq!(answer(&mut clock, &first, t0 + ms(40)), None);
    }

    #[test]
    fn a_late_pong_of_an_older_ping_is_not_a_sample() {
        let t0 = super::super::tests::t0();
        let mut clock = PingClock::default();
        let old = [clock.tag()];
        let new = [clock.tag()];
        assert_ne!(old, new);
        // Both in tungstenite's buffer; the first one's bytes go out first.
        clock.written(1, t0);
        assert_eq!(answer(&mut clock, &new, t0 + ms(1)), None, "unwritten");
        clock.written(1, t0 + ms(2));
        assert_eq!(answer(&mut clock, &old, t0 + ms(3)), None);
        assert_eq!(answer(&mut clock, &new, t0 + ms(12)), Some(ms(10)));
    }

    #[test]
    fn tags_wrap_and_a_reset_forgets_the_link() {
        let t0 = super::super::tests::t0();
        let mut clock = PingClock::default();
        let tags: Vec<u8> = (0..300).map(|_| clock.tag()).collect();
        assert_eq!((tags[255], tags[256], tags[299]), (255, 0, 43));
        clock.written(300, t0);
        clock.reset();
        assert_eq!(answer(&mut clock, &[43], t0), None);
    }
}
