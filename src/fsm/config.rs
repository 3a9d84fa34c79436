//! The lifecycle's policy as plain data, and its validation.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::policy::{CloseRule, default_retried_statuses};

/// [`Config::MAX_DURATION`], for the core's own arithmetic.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Everything the state machine decides by: timeouts, keepalive, backoff,
/// give-up budget, the failure policy (terminal close rules, retried HTTP
/// statuses, the `Retry-After` cap) and the jitter seed.
///
/// Build one with [`Config::default`] and adjust fields; the
/// [`Machine`](crate::fsm::Machine) constructor validates it.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Bounds TCP connect, TLS and the WebSocket upgrade together (default 10 s).
    pub connect_timeout: Duration,
    /// From socket open until the hello ack must arrive; covers building and
    /// sending the hello, so a hanging builder cannot wedge an attempt
    /// (default 15 s).
    pub ack_timeout: Duration,
    /// A ping goes out this often while Open (default 30 s). With
    /// `ping_when_idle`, only this long after the last inbound frame.
    pub ping_interval: Duration,
    /// Ping only when idle (default `false`: a ping every `ping_interval`
    /// whatever arrives). When set, a ping that falls due while some inbound
    /// frame arrived within the last `ping_interval` is skipped and the next
    /// one is due `ping_interval` after that frame, so a broker that pings
    /// us, or steady traffic, costs no pings of ours; once the link goes
    /// quiet a ping goes out exactly `ping_interval` after the last frame,
    /// then every `ping_interval`. Stale detection and the wake probe's
    /// ping are unchanged.
    pub ping_when_idle: bool,
    /// The link is declared dead exactly this long after the last inbound
    /// frame (default 75 s). Must exceed `ping_interval`.
    pub stale_after: Duration,
    /// After the host woke from a suspend, something must arrive within
    /// this long after the ping that goes out at once, or the link is
    /// dropped as dead (default 5 s; must be positive). See
    /// [`Event::Woke`](crate::fsm::Event::Woke).
    pub wake_probe: Duration,
    /// Reconnect delays before jitter; the last one repeats
    /// (default 1, 2, 4, 8, 16, 30 s).
    pub backoff: Vec<Duration>,
    /// Each delay `d` is drawn from `[d·(1−jitter), d]`; 0 reproduces the
    /// schedule exactly (default 0.5).
    pub jitter: f64,
    /// No reconnect delay is ever shorter than this, whatever the schedule
    /// and jitter say, so nothing can spin on a refused loopback connect
    /// (default 100 ms; must be positive).
    pub min_delay: Duration,
    /// An Open connection that lasts this long resets the backoff and the
    /// give-up budget (default 10 s).
    pub stable_after: Duration,
    /// After our close frame, how long to wait for the peer's before
    /// dropping the socket (default 1 s).
    pub close_grace: Duration,
    /// Peer closes that end the session with
    /// [`CloseReason::Rejected`](crate::fsm::CloseReason::Rejected): a code,
    /// or a code with a reason prefix (default none: every close is
    /// retried).
    pub terminal_closes: Vec<CloseRule>,
    /// HTTP statuses (of the upgrade answer, or of a proxy) that are
    /// retried; any other status but 101 is terminal, since retrying the
    /// same request unchanged does not help (default 408, 429, 500–599).
    /// A caller whose request hook refreshes credentials may add
    /// `401..=401`.
    pub retried_statuses: Vec<RangeInclusive<u16>>,
    /// The longest delay a server's `Retry-After` can impose (default
    /// 10 min; zero ignores such hints).
    pub max_retry_after: Duration,
    /// Give up after this many attempts without a stable Open (default: never).
    pub max_attempts: Option<u32>,
    /// Give up once this long has passed without a stable Open (default: never).
    pub max_unstable: Option<Duration>,
    /// Seed of the jitter generator, so every schedule is reproducible
    /// (default: a fixed seed; drivers usually pass a random one).
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            ack_timeout: Duration::from_secs(15),
            ping_interval: Duration::from_secs(30),
            ping_when_idle: false,
            stale_after: Duration::from_secs(75),
            wake_probe: Duration::from_secs(5),
            backoff: [1, 2, 4, 8, 16, 30]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            jitter: 0.5,
            min_delay: Duration::from_millis(100),
            stable_after: Duration::from_secs(10),
            close_grace: Duration::from_secs(1),
            terminal_closes: Vec::new(),
            retried_statuses: default_retried_statuses(),
            max_retry_after: Duration::from_secs(600),
            max_attempts: None,
            max_unstable: None,
            seed: 0x5eed_f11e,
        }
    }
}

/// Why a [`Config`] was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A duration that must be positive is zero.
    #[error("config: `{0}` must be greater than zero")]
    Zero(&'static str),
    /// A duration exceeds [`Config::MAX_DURATION`], so a deadline could
    /// overflow.
    #[error("config: `{0}` exceeds the maximum of 100 years")]
    TooLong(&'static str),
    /// `stale_after` must be strictly longer than `ping_interval`, or the
    /// link would be declared dead before a ping could be answered.
    #[error(
        "config: `stale_after` ({stale_after:?}) must exceed `ping_interval` ({ping_interval:?})"
    )]
    StaleNotAbovePing {
        /// The configured stale threshold.
        stale_after: Duration,
        /// The configured ping interval.
        ping_interval: Duration,
    },
    /// The backoff schedule has no entries.
    #[error("config: `backoff` schedule is empty")]
    EmptyBackoff,
    /// `jitter` is NaN or outside `0.0..=1.0`.
    #[error("config: `jitter` must be within 0.0..=1.0, got {0}")]
    Jitter(f64),
    /// `max_attempts` is `Some(0)`, which would give up before trying.
    #[error("config: `max_attempts` must be at least 1")]
    ZeroAttempts,
    /// A rule of `terminal_closes` can never be right.
    #[error("config: `terminal_closes` rule {rule}: {problem}")]
    CloseRule {
        /// The rule, as `CODE` or `CODE:PREFIX`.
        rule: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Text that does not parse as a [`CloseRule`] (`"1008:unauthorized"`
    /// parses; see [`CloseRule`]'s `FromStr`).
    #[error("bad close rule {spec:?}: {problem} (expected CODE or CODE:PREFIX, CODE 1000-4999)")]
    BadCloseRule {
        /// The text given.
        spec: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

impl Config {
    /// The longest duration any setting may hold (100 years of 365 days).
    ///
    /// Validation rejects anything longer, so no deadline computed from the
    /// configuration can overflow an [`Instant`](std::time::Instant); the
    /// core still uses checked arithmetic as a second line of defence.
    pub const MAX_DURATION: Duration = MAX_DURATION;

    /// Checks every rule; the first broken one is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("connect_timeout", self.connect_timeout),
            ("ack_timeout", self.ack_timeout),
            ("ping_interval", self.ping_interval),
            ("stale_after", self.stale_after),
            ("wake_probe", self.wake_probe),
            ("close_grace", self.close_grace),
            ("min_delay", self.min_delay),
        ];
        for (name, d) in positive {
            if d.is_zero() {
                return Err(ConfigError::Zero(name));
            }
        }
        let bounded = positive.into_iter().chain([
            ("stable_after", self.stable_after),
            ("max_unstable", self.max_unstable.unwrap_or_default()),
            ("max_retry_after", self.max_retry_after),
        ]);
        for (name, d) in bounded {
            if d > MAX_DURATION {
                return Err(ConfigError::TooLong(name));
            }
        }
        if self.backoff.is_empty() {
            return Err(ConfigError::EmptyBackoff);
        }
        if self.backoff.iter().any(|d| *d > MAX_DURATION) {
            return Err(ConfigError::TooLong("backoff"));
        }
        if self.stale_after <= self.ping_interval {
            return Err(ConfigError::StaleNotAbovePing {
                stale_after: self.stale_after,
                ping_interval: self.ping_interval,
            });
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(ConfigError::Jitter(self.jitter));
        }
        if self.max_attempts == Some(0) {
            return Err(ConfigError::ZeroAttempts);
        }
        if self.max_unstable.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::Zero("max_unstable"));
        }
        for rule in &self.terminal_closes {
            if let Some(problem) = rule.problem() {
                return Err(ConfigError::CloseRule {
                    rule: rule.to_string(),
                    problem,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_design() {
        let c = Config::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.ack_timeout, Duration::from_secs(15));
        assert_eq!(c.wake_probe, Duration::from_secs(5));
        assert_eq!(c.backoff.len(), 6);
        assert_eq!(c.backoff[5], Duration::from_secs(30));
        assert_eq!(c.max_retry_after, Duration::from_secs(600));
        assert_eq!(c.retried_statuses, [408..=408, 429..=429, 500..=599]);
        assert!(c.terminal_closes.is_empty());
        assert!(!c.ping_when_idle);
        let idle = Config {
            ping_when_idle: true,
            ..Config::default()
        };
        assert_eq!(idle.validate(), Ok(()));
    }

    #[test]
    fn each_rule_is_a_typed_error() {
        let bad = |f: fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(
            bad(|c| c.ping_interval = Duration::ZERO),
            ConfigError::Zero("ping_interval")
        );
        assert!(matches!(
            bad(|c| c.stale_after = c.ping_interval),
            ConfigError::StaleNotAbovePing { .. }
        ));
        assert_eq!(bad(|c| c.backoff.clear()), ConfigError::EmptyBackoff);
        assert!(matches!(bad(|c| c.jitter = 1.5), ConfigError::Jitter(_)));
        assert!(matches!(
            bad(|c| c.jitter = f64::NAN),
            ConfigError::Jitter(_)
        ));
        assert_eq!(
            bad(|c| c.connect_timeout = Duration::MAX),
            ConfigError::TooLong("connect_timeout")
        );
        assert_eq!(
            bad(|c| c.backoff = vec![Duration::MAX]),
            ConfigError::TooLong("backoff")
        );
        assert_eq!(
            bad(|c| c.max_unstable = Some(Duration::MAX)),
            ConfigError::TooLong("max_unstable")
        );
        assert_eq!(bad(|c| c.max_attempts = Some(0)), ConfigError::ZeroAttempts);
        assert_eq!(
            bad(|c| c.wake_probe = Duration::ZERO),
            ConfigError::Zero("wake_probe")
        );
        assert_eq!(
            bad(|c| c.wake_probe = Duration::MAX),
            ConfigError::TooLong("wake_probe")
        );
    }

    #[test]
    fn close_rules_are_checked() {
        let mut c = Config {
            terminal_closes: vec![CloseRule::code(999)],
            ..Config::default()
        };
        assert!(matches!(c.validate(), Err(ConfigError::CloseRule { .. })));
        c.terminal_closes = vec![CloseRule::code_with_prefix(1008, "")];
        assert!(matches!(c.validate(), Err(ConfigError::CloseRule { .. })));
        c.terminal_closes = vec![CloseRule::code_with_prefix(1008, "unauthorized")];
        assert_eq!(c.validate(), Ok(()));
        c.max_retry_after = Duration::MAX;
        assert_eq!(c.validate(), Err(ConfigError::TooLong("max_retry_after")));
    }
}
