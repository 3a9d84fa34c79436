//! The pure transition function: (lifecycle, event, now, config) → (next
//! lifecycle, actions). No I/O, no clock, no global randomness: the jitter
//! generator is part of the lifecycle value, so equal inputs give equal
//! outputs.
//!
//! [`apply`] is one `match` on (state, input) that reads as a table: rows
//! grouped by state, every ignored pair listed (there is no wildcard arm, so
//! the compiler checks that every pair has a row), one line per row; the
//! helpers below it say what a row's word means. Every failure row goes
//! through [`fail`] with its [`Failure`] value, and the policy decides there:
//! retry on the schedule, retry no earlier than a hint, or reject (Closed).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{
    Action, Attempt, Cause, CloseReason, Config, ConnectFailure, Event, Failure, State, Timer,
    Verdict, backoff, time,
};

/// Everything the machine remembers: the current state, the counters that
/// outlive a single state, whether reading is paused, and the seeded jitter
/// generator. Only the transition function changes it; read it through the
/// getters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    state: State,
    failures: u32,
    attempts_since_stable: u32,
    unstable_since: Instant,
    read_paused_since: Option<Instant>,
    rng: fastrand::Rng,
}

impl Lifecycle {
    /// A lifecycle at the start of attempt 1, and the action that starts it.
    #[cfg(any(test, feature = "testing"))]
    pub fn start(config: &Config, now: Instant) -> (Self, Action) {
        Self::start_seeded(config, config.seed, now)
    }

    /// [`start`](Self::start) with the jitter drawn from `seed` instead of
    /// `config.seed`, so many lifecycles can share one configuration.
    pub fn start_seeded(config: &Config, seed: u64, now: Instant) -> (Self, Action) {
        let lifecycle = Lifecycle {
            state: State::Connecting {
                attempt: 1,
                deadline: time::deadline(now, config.connect_timeout),
            },
            failures: 0,
            attempts_since_stable: 1,
            unstable_since: now,
            read_paused_since: None,
            rng: fastrand::Rng::with_seed(seed),
        };
        (lifecycle, Action::Connect { attempt: 1 })
    }

    /// The current state with its deadlines.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Consecutive failures since the last stable Open (saturating); picks
    /// the backoff entry.
    #[cfg(any(test, feature = "testing"))]
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Attempts started since the last stable Open (saturating); the
    /// attempt budget counts these.
    #[cfg(any(test, feature = "testing"))]
    pub fn attempts_since_stable(&self) -> u32 {
        self.attempts_since_stable
    }

    /// When the current unstable stretch began (creation, or the end of the
    /// last stable Open); the time budget counts from here.
    #[cfg(any(test, feature = "testing"))]
    pub fn unstable_since(&self) -> Instant {
        self.unstable_since
    }

    /// When reading was paused ([`Event::ReadPaused`]), while it is; kept
    /// across state changes (cleared in Closed).
    ///
    /// On [`Event::ReadResumed`] the paused span is not counted as silence:
    /// AwaitingAck's ack deadline moves later by the part of the span spent
    /// in AwaitingAck, and Open's `last_activity` moves later by the span,
    /// but never past the moment of resuming.
    #[cfg(any(test, feature = "testing"))]
    pub fn read_paused_since(&self) -> Option<Instant> {
        self.read_paused_since
    }

    /// Whether reading is paused (the caller's event buffer is full).
    pub fn read_paused(&self) -> bool {
        self.read_paused_since.is_some()
    }

    /// The timers that are running, in priority order: the state's own (see
    /// [`State::timers`]), minus those a read pause stops
    /// ([`Timer::runs_while_read_paused`]).
    pub fn timers(&self, config: &Config) -> impl Iterator<Item = (Timer, Instant)> {
        let paused = self.read_paused();
        self.state
            .timers(config.stale_after)
            .filter(move |(timer, _)| !paused || timer.runs_while_read_paused())
    }

    /// The earliest running deadline: `None` in Closed, and in AwaitingAck
    /// and Reconnecting while reading is paused (the wait is on the
    /// consumer then, not on the clock).
    pub fn deadline(&self, config: &Config) -> Option<Instant> {
        if !self.read_paused() {
            // Every timer runs: the state's own deadline.
            return self.state.deadline(config.stale_after);
        }
        self.timers(config).map(|(_, at)| at).min()
    }

    /// The running timer that is due at `now`, if any (Stale before Ping).
    pub fn due(&self, now: Instant, config: &Config) -> Option<Timer> {
        self.timers(config)
            .find(|&(_, at)| now >= at)
            .map(|(timer, _)| timer)
    }

    /// The failure `event` would report if applied at `now`: a socket
    /// failure of the current attempt in a state where it is one
    /// (ConnectFailed in Connecting; a hello failure in AwaitingAck; a
    /// close, a lost transport, a protocol error or a message too big in
    /// AwaitingAck or Open), or a timeout whose due timer reports one
    /// ([`Timer::failure`]). Drivers ask it to know when to consult the
    /// caller's predicate (see [`Event::Judged`]).
    pub fn failure(&self, event: &Event, now: Instant, config: &Config) -> Option<Failure> {
        let event = event.innermost();
        if let Event::Timeout = event {
            return self.due(now, config)?.failure();
        }
        if event.attempt()? != self.state.transport_attempt()? {
            return None;
        }
        let failure = event.failure()?;
        let applies = matches!(
            (&self.state, &failure),
            (State::Connecting { .. }, Failure::Connect(_))
                | (State::AwaitingAck { .. }, Failure::HelloFailed)
                | (
                    State::AwaitingAck { .. } | State::Open { .. },
                    Failure::PeerClosed { .. }
                        | Failure::TransportLost
                        | Failure::MessageTooBig
                        | Failure::ProtocolError { .. },
                )
        );
        applies.then_some(failure)
    }

    /// The same counters in another state (feature `testing`: for tests
    /// that start a lifecycle in any state).
    #[cfg(feature = "testing")]
    pub fn with_state(mut self, state: State) -> Self {
        self.state = state;
        self
    }
}

/// The pure form: returns the next lifecycle and the actions, leaving the
/// input untouched. Used by tests and the diagram generator.
#[cfg(any(test, feature = "testing"))]
pub fn step(
    current: &Lifecycle,
    event: Event,
    now: Instant,
    config: &Config,
) -> (Lifecycle, Vec<Action>) {
    let mut next = current.clone();
    let mut out = VecDeque::new();
    apply(&mut next, event, now, config, &mut out);
    (next, out.into())
}

/// An event as the table sees it: after the attempt filter (so socket
/// events are about the current attempt and need not name it), with a
/// timeout turned into the timer that fired.
#[derive(Debug)]
enum Input {
    SocketOpened,
    ConnectFailed(ConnectFailure),
    HelloFailed,
    Ack,
    Activity,
    PeerClosed { code: u16, reason: String },
    TransportLost,
    MessageTooBig,
    ProtocolError { code: u16 },
    ReadPaused,
    ReadResumed,
    Woke,
    Close { code: u16, reason: String },
    ReconnectNow,
    Fired(Timer),
}

impl Input {
    /// `event` for the table; `None` for a timeout with no timer due. A
    /// caller's verdict ([`Event::Judged`]) goes to `verdict`.
    fn of(
        event: Event,
        lc: &Lifecycle,
        now: Instant,
        config: &Config,
        verdict: &mut Option<Verdict>,
    ) -> Option<Input> {
        // A loop, not recursion, so this inlines into `apply` (the hot path);
        // the innermost verdict counts.
        let mut event = event;
        while let Event::Judged {
            verdict: v,
            event: inner,
        } = event
        {
            *verdict = Some(v);
            event = *inner;
        }
        Some(match event {
            Event::Judged { .. } => return None, // unreachable: unwrapped above
            Event::SocketOpened { .. } => Input::SocketOpened,
            Event::ConnectFailed { failure, .. } => Input::ConnectFailed(failure),
            Event::HelloFailed { .. } => Input::HelloFailed,
            Event::Ack { .. } => Input::Ack,
            Event::Activity { .. } => Input::Activity,
            Event::PeerClosed { code, reason, .. } => Input::PeerClosed { code, reason },
            Event::TransportLost { .. } => Input::TransportLost,
            Event::MessageTooBig { .. } => Input::MessageTooBig,
            Event::ProtocolError { code, .. } => Input::ProtocolError { code },
            Event::ReadPaused => Input::ReadPaused,
            Event::ReadResumed => Input::ReadResumed,
            Event::Woke => Input::Woke,
            Event::Close { code, reason } => Input::Close { code, reason },
            Event::ReconnectNow => Input::ReconnectNow,
            Event::Timeout => Input::Fired(lc.due(now, config)?),
        })
    }
}

/// What every row's helper needs besides the lifecycle.
struct Cx<'a> {
    now: Instant,
    config: &'a Config,
    out: &'a mut VecDeque<Action>,
    /// The caller's verdict on this event's failure, if it gave one.
    verdict: Option<Verdict>,
}

// Reasons for sockets we drop ourselves (close frame and notice alike).
const HELLO_FAILED: &str = "hello failed";
const ACK_TIMEOUT: &str = "hello ack timeout";
const STALE: &str = "no inbound data within stale_after";
const WAKE_PROBE: &str = "wake probe failed: no inbound data within wake_probe after a suspend";
const RECONNECT: &str = "reconnect requested";
const LOST: &str = "connection lost without a close frame";
const TOO_BIG: &str = "message too big";

/// The in-place form the [`Machine`](super::Machine) uses: updates `lc` and
/// appends actions to `out`. Allocation-free on steady-state Open events.
pub fn apply(
    lc: &mut Lifecycle,
    event: Event,
    now: Instant,
    config: &Config,
    out: &mut VecDeque<Action>,
) {
    // Events of another attempt never touch this one.
    if event
        .attempt()
        .is_some_and(|a| lc.state.transport_attempt() != Some(a))
    {
        return;
    }
    let mut verdict = None;
    let Some(input) = Input::of(event, lc, now, config, &mut verdict) else {
        return; // a timeout with nothing due: early, or a stopped timer
    };
    let cx = &mut Cx {
        now,
        config,
        out,
        verdict,
    };
    use Input as I;
    use State as S;
    use Timer as T;
    #[rustfmt::skip]
    match (&mut lc.state, input) {
        // ── Connecting ──────────────────────────────────────────────────
        (S::Connecting { .. }, I::SocketOpened)        => opened(lc, cx),
        (S::Connecting { .. }, I::ConnectFailed(why))  => fail(lc, cx, Cause::ConnectFailed, Failure::Connect(why), None),
        (S::Connecting { .. }, I::Fired(T::Connect))   => fail(lc, cx, Cause::ConnectTimeout, Failure::Connect(ConnectFailure::Deadline), None),
        (S::Connecting { .. }, I::Close { .. })        => cancel(lc, cx),
        (S::Connecting { .. }, I::ReconnectNow)        => reconnect_now(lc, cx),
        (S::Connecting { .. }, I::ReadPaused)          => pause(lc, cx),
        (S::Connecting { .. }, I::ReadResumed)         => lc.read_paused_since = None, // the connect deadline ran on
        (S::Connecting { .. }, I::Woke)                => {} // the connect deadline still bounds the attempt
        (S::Connecting { .. }, I::HelloFailed | I::Ack | I::Activity | I::PeerClosed { .. }
            | I::TransportLost | I::MessageTooBig | I::ProtocolError { .. }) => {} // no socket yet
        (S::Connecting { .. }, I::Fired(T::Ack | T::Ping | T::Stale | T::Probe | T::Retry | T::CloseGrace)) => {}

        // ── AwaitingAck ─────────────────────────────────────────────────
        (S::AwaitingAck { .. }, I::Ack)                => acked(lc, cx),
        (S::AwaitingAck { .. }, I::HelloFailed)        => own_drop(lc, cx, Cause::HelloFailed, Failure::HelloFailed, 1011, HELLO_FAILED),
        (S::AwaitingAck { .. }, I::Fired(T::Ack))      => own_drop(lc, cx, Cause::AckTimeout, Failure::AckTimeout, 1008, ACK_TIMEOUT),
        (S::AwaitingAck { .. }, I::PeerClosed { code, reason }) => peer_closed(lc, cx, code, reason),
        (S::AwaitingAck { .. }, I::TransportLost)      => fail(lc, cx, Cause::TransportLost, Failure::TransportLost, Some(lost(LOST))),
        (S::AwaitingAck { .. }, I::MessageTooBig)      => too_big(lc, cx),
        (S::AwaitingAck { .. }, I::ProtocolError { code }) => protocol_error(lc, cx, code),
        (S::AwaitingAck { .. }, I::Close { code, reason }) => closing(lc, cx, code, reason),
        (S::AwaitingAck { .. }, I::ReconnectNow)       => reconnect_now(lc, cx),
        (S::AwaitingAck { .. }, I::ReadPaused)         => pause(lc, cx),
        (S::AwaitingAck { deadline, .. }, I::ReadResumed) => resume_ack(deadline, &mut lc.read_paused_since, cx),
        (S::AwaitingAck { .. }, I::Woke)               => {} // the ack deadline already probes the link
        (S::AwaitingAck { .. }, I::SocketOpened | I::ConnectFailed(_) | I::Activity) => {}
        (S::AwaitingAck { .. }, I::Fired(T::Connect | T::Ping | T::Stale | T::Probe | T::Retry | T::CloseGrace)) => {}

        // ── Open ────────────────────────────────────────────────────────
        (S::Open { last_activity, probe, .. }, I::Activity | I::Ack) => (*last_activity, *probe) = (now, None),
        (S::Open { attempt, last_activity, next_ping, .. }, I::Fired(T::Ping)) => ping_due(*attempt, *last_activity, next_ping, cx),
        (S::Open { .. }, I::Fired(T::Stale))           => own_drop(lc, cx, Cause::Stale, Failure::Stale, 1001, STALE),
        (S::Open { attempt, next_ping, probe, .. }, I::Woke) => wake_probe(*attempt, next_ping, probe, cx),
        (S::Open { .. }, I::Fired(T::Probe))           => own_drop(lc, cx, Cause::WakeProbeFailed, Failure::Stale, 1001, WAKE_PROBE),
        (S::Open { .. }, I::PeerClosed { code, reason }) => peer_closed(lc, cx, code, reason),
        (S::Open { .. }, I::TransportLost)             => fail(lc, cx, Cause::TransportLost, Failure::TransportLost, Some(lost(LOST))),
        (S::Open { .. }, I::MessageTooBig)             => too_big(lc, cx),
        (S::Open { .. }, I::ProtocolError { code })    => protocol_error(lc, cx, code),
        (S::Open { .. }, I::Close { code, reason })    => closing(lc, cx, code, reason),
        (S::Open { .. }, I::ReconnectNow)              => reconnect_now(lc, cx),
        (S::Open { .. }, I::ReadPaused)                => pause(lc, cx),
        (S::Open { last_activity, probe, .. }, I::ReadResumed) => resume_open(last_activity, probe, &mut lc.read_paused_since, cx),
        (S::Open { .. }, I::SocketOpened | I::ConnectFailed(_) | I::HelloFailed) => {}
        (S::Open { .. }, I::Fired(T::Connect | T::Ack | T::Retry | T::CloseGrace)) => {}

        // ── Reconnecting ────────────────────────────────────────────────
        (S::Reconnecting { .. }, I::Fired(T::Retry))   => retry(lc, cx),
        (S::Reconnecting { .. }, I::ReconnectNow)      => reconnect_now(lc, cx),
        (S::Reconnecting { .. }, I::Close { .. })      => close(lc, cx, CloseReason::Requested, Cause::CloseRequested),
        (S::Reconnecting { .. }, I::ReadPaused)        => pause(lc, cx),
        (S::Reconnecting { .. }, I::ReadResumed)       => lc.read_paused_since = None, // a retry due meanwhile is due at once
        (S::Reconnecting { .. }, I::Woke)              => {} // the retry time stands
        (S::Reconnecting { .. }, I::SocketOpened | I::ConnectFailed(_) | I::HelloFailed | I::Ack
            | I::Activity | I::PeerClosed { .. } | I::TransportLost | I::MessageTooBig
            | I::ProtocolError { .. }) => {} // no transport: the attempt filter already dropped these
        (S::Reconnecting { .. }, I::Fired(T::Connect | T::Ack | T::Ping | T::Stale | T::Probe | T::CloseGrace)) => {}

        // ── Closing ─────────────────────────────────────────────────────
        (S::Closing { .. }, I::PeerClosed { .. } | I::TransportLost | I::MessageTooBig
            | I::ProtocolError { .. })                 => finish(lc, cx, Cause::CloseCompleted),
        (S::Closing { .. }, I::Fired(T::CloseGrace))   => finish(lc, cx, Cause::CloseGraceExpired),
        (S::Closing { .. }, I::ReadPaused)             => pause(lc, cx),
        (S::Closing { .. }, I::ReadResumed)            => lc.read_paused_since = None, // the grace ran on
        (S::Closing { .. }, I::Woke)                   => {} // the close grace bounds the wait
        (S::Closing { .. }, I::SocketOpened | I::ConnectFailed(_) | I::HelloFailed | I::Ack
            | I::Activity | I::Close { .. } | I::ReconnectNow) => {}
        (S::Closing { .. }, I::Fired(T::Connect | T::Ack | T::Ping | T::Stale | T::Probe | T::Retry)) => {}

        // ── Closed: absorbs everything ──────────────────────────────────
        (S::Closed { .. }, I::SocketOpened | I::ConnectFailed(_) | I::HelloFailed | I::Ack
            | I::Activity | I::PeerClosed { .. } | I::TransportLost | I::MessageTooBig
            | I::ProtocolError { .. } | I::ReadPaused | I::ReadResumed | I::Woke | I::Close { .. }
            | I::ReconnectNow) => {}
        (S::Closed { .. }, I::Fired(T::Connect | T::Ack | T::Ping | T::Stale | T::Probe
            | T::Retry | T::CloseGrace)) => {}
    };
}

// ── What the rows' words mean ──────────────────────────────────────────

/// The attempt whose transport the state holds (0 when none).
fn current(lc: &Lifecycle) -> Attempt {
    lc.state.transport_attempt().unwrap_or(0)
}

/// A close notice for a socket we dropped ourselves: code 1006.
fn lost(why: &str) -> (u16, String) {
    (1006, why.to_owned())
}

/// Connecting → AwaitingAck: the hello goes out; the ack deadline counts
/// from now.
fn opened(lc: &mut Lifecycle, cx: &mut Cx<'_>) {
    let attempt = current(lc);
    let deadline = time::deadline(cx.now, cx.config.ack_timeout);
    enter(
        lc,
        cx,
        State::AwaitingAck { attempt, deadline },
        Cause::SocketOpened,
    );
    cx.out.push_back(Action::SendHello { attempt });
}

/// AwaitingAck → Open with fresh timers; the queue is flushed first.
fn acked(lc: &mut Lifecycle, cx: &mut Cx<'_>) {
    let attempt = current(lc);
    let open = State::Open {
        attempt,
        since: cx.now,
        last_activity: cx.now,
        next_ping: time::deadline(cx.now, cx.config.ping_interval),
        probe: None,
    };
    enter(lc, cx, open, Cause::Acked);
    cx.out.push_back(Action::FlushQueue { attempt });
}

/// The ping timer fired. With [`Config::ping_when_idle`], an inbound frame
/// within the last ping interval means the link is not idle: no ping, and
/// the next one is due a ping interval after that frame (strictly later
/// than now). Otherwise a ping goes out.
fn ping_due(attempt: Attempt, last_activity: Instant, next_ping: &mut Instant, cx: &mut Cx<'_>) {
    if cx.config.ping_when_idle {
        let idle_at = time::deadline(last_activity, cx.config.ping_interval);
        if idle_at > cx.now {
            *next_ping = idle_at;
            return;
        }
    }
    ping(attempt, next_ping, cx);
}

/// A ping goes out, the next one is due a ping interval from now.
fn ping(attempt: Attempt, next_ping: &mut Instant, cx: &mut Cx<'_>) {
    *next_ping = time::deadline(cx.now, cx.config.ping_interval);
    cx.out.push_back(Action::SendPing { attempt });
}

/// The host woke from a suspend while Open: a ping goes out at once (the
/// next one is due a ping interval from now) and the wake probe starts; a
/// probe already running keeps its deadline, so wake-ups cannot postpone it.
fn wake_probe(
    attempt: Attempt,
    next_ping: &mut Instant,
    probe: &mut Option<Instant>,
    cx: &mut Cx<'_>,
) {
    probe.get_or_insert(time::deadline(cx.now, cx.config.wake_probe));
    ping(attempt, next_ping, cx);
}

/// Reading stops; a second pause keeps the first one's start. No action:
/// it is no status change.
fn pause(lc: &mut Lifecycle, cx: &Cx<'_>) {
    lc.read_paused_since.get_or_insert(cx.now);
}

/// Reading resumes in AwaitingAck: the part of the paused span spent in
/// this state (it may have begun earlier) moves the ack deadline later.
fn resume_ack(deadline: &mut Instant, paused: &mut Option<Instant>, cx: &Cx<'_>) {
    let Some(since) = paused.take() else { return };
    *deadline = unpaused(*deadline, cx.config.ack_timeout, since, cx.now);
}

/// A deadline `timeout` after its start, stopped while reading was paused
/// from `since` to `now`: later by the part of the paused span after the
/// start (the pause may have begun earlier).
fn unpaused(deadline: Instant, timeout: Duration, since: Instant, now: Instant) -> Instant {
    // When it started (or the last resume moved it to): the deadline minus
    // the full timeout.
    let started = deadline.checked_sub(timeout).unwrap_or(since);
    let span = now.saturating_duration_since(since.max(started));
    time::deadline(deadline, span)
}

/// Reading resumes in Open: the paused span is not silence, so
/// `last_activity` moves later by it, never past now; a wake probe moves
/// later by the part of the span it ran for, like the ack deadline.
fn resume_open(
    last_activity: &mut Instant,
    probe: &mut Option<Instant>,
    paused: &mut Option<Instant>,
    cx: &Cx<'_>,
) {
    let Some(since) = paused.take() else { return };
    let span = cx.now.saturating_duration_since(since);
    *last_activity = time::deadline(*last_activity, span).min(cx.now);
    if let Some(at) = probe {
        *at = unpaused(*at, cx.config.wake_probe, since, cx.now);
    }
}

/// The caller closes while the socket is open: our close frame, then
/// Closing with the grace deadline.
fn closing(lc: &mut Lifecycle, cx: &mut Cx<'_>, code: u16, reason: String) {
    let attempt = current(lc);
    cx.out.push_back(Action::SendClose {
        attempt,
        code,
        reason,
    });
    let deadline = time::deadline(cx.now, cx.config.close_grace);
    enter(
        lc,
        cx,
        State::Closing { attempt, deadline },
        Cause::CloseRequested,
    );
}

/// The caller closes while connecting: cancel the connect, done.
fn cancel(lc: &mut Lifecycle, cx: &mut Cx<'_>) {
    let attempt = current(lc);
    cx.out.push_back(Action::DropTransport { attempt });
    close(lc, cx, CloseReason::Requested, Cause::CloseRequested);
}

/// Closing ends: the socket goes, the session is closed.
fn finish(lc: &mut Lifecycle, cx: &mut Cx<'_>, cause: Cause) {
    let attempt = current(lc);
    cx.out.push_back(Action::DropTransport { attempt });
    close(lc, cx, CloseReason::Requested, cause);
}

/// A best-effort close frame on the current socket (the driver writes it
/// once without waiting; `DropTransport` follows at once).
fn send_close(lc: &Lifecycle, cx: &mut Cx<'_>, code: u16, reason: &str) {
    cx.out.push_back(Action::SendClose {
        attempt: current(lc),
        code,
        reason: reason.to_owned(),
    });
}

/// We drop an opened socket ourselves: a close frame with `code` and `why`
/// first, then the failure path with a 1006 notice saying `why`.
fn own_drop(
    lc: &mut Lifecycle,
    cx: &mut Cx<'_>,
    cause: Cause,
    failure: Failure,
    code: u16,
    why: &str,
) {
    send_close(lc, cx, code, why);
    fail(lc, cx, cause, failure, Some(lost(why)));
}

/// The peer's close frame: a failure whose notice carries its code and
/// reason (terminal when a close rule matches).
fn peer_closed(lc: &mut Lifecycle, cx: &mut Cx<'_>, code: u16, reason: String) {
    let failure = Failure::PeerClosed {
        code,
        reason: reason.clone(),
    };
    fail(lc, cx, Cause::PeerClosed, failure, Some((code, reason)));
}

/// An inbound message over the limit: 1009 out, and 1009 in the notice.
fn too_big(lc: &mut Lifecycle, cx: &mut Cx<'_>) {
    send_close(lc, cx, 1009, TOO_BIG);
    fail(
        lc,
        cx,
        Cause::MessageTooBig,
        Failure::MessageTooBig,
        Some((1009, TOO_BIG.to_owned())),
    );
}

/// The peer broke the protocol: `code` out (1002 when it may not be sent),
/// a 1006 notice naming it.
fn protocol_error(lc: &mut Lifecycle, cx: &mut Cx<'_>, code: u16) {
    // RFC 6455 §7.4: 1004–1006 and 1015 are never sent; below 1000 and
    // 1016–2999 are unassigned; 5000 and up are invalid.
    let code = match code {
        1000..=1003 | 1007..=1014 | 3000..=4999 => code,
        _ => 1002,
    };
    let why = if code == 1007 {
        "invalid UTF-8"
    } else {
        "protocol error"
    };
    send_close(lc, cx, code, why);
    let notice = (1006, format!("{why} (sent {code})"));
    fail(
        lc,
        cx,
        Cause::ProtocolError,
        Failure::ProtocolError { code },
        Some(notice),
    );
}

/// The caller's reconnect-now: drop the transport (an opened one with a
/// best-effort 1000 close frame and a 1006 notice), then start the next
/// attempt at once, with no delay and no failure counted — unless a give-up
/// budget is spent.
fn reconnect_now(lc: &mut Lifecycle, cx: &mut Cx<'_>) {
    let next = match lc.state {
        State::Reconnecting { next_attempt, .. } => next_attempt,
        ref other => other.transport_attempt().unwrap_or(0).saturating_add(1),
    };
    if let State::AwaitingAck { attempt, .. } | State::Open { attempt, .. } = lc.state {
        send_close(lc, cx, 1000, RECONNECT);
        end_transport(lc, cx);
        let (code, reason) = lost(RECONNECT);
        cx.out.push_back(Action::Disconnected {
            attempt,
            code,
            reason,
        });
    } else {
        end_transport(lc, cx);
    }
    if budget_spent(lc, cx) {
        give_up(lc, cx);
    } else {
        begin_attempt(lc, cx, next, Cause::ReconnectNow);
    }
}

/// The retry time came: the next attempt starts, unless the time budget ran
/// out meanwhile.
fn retry(lc: &mut Lifecycle, cx: &mut Cx<'_>) {
    let State::Reconnecting { next_attempt, .. } = lc.state else {
        return;
    };
    if time_budget_spent(lc, cx) {
        give_up(lc, cx);
    } else {
        begin_attempt(lc, cx, next_attempt, Cause::RetryDue);
    }
}

/// Moves to `next`, reporting the change.
fn enter(lc: &mut Lifecycle, cx: &mut Cx<'_>, next: State, cause: Cause) {
    let from = lc.state.status();
    let attempt = match &next {
        State::Reconnecting { next_attempt, .. } => *next_attempt,
        other => other.transport_attempt().unwrap_or(0),
    };
    let to = next.status();
    lc.state = next;
    cx.out.push_back(Action::StatusChanged {
        from,
        to,
        cause,
        attempt,
    });
}

/// Moves to Closed for good (nothing is read any more: no pause either).
fn close(lc: &mut Lifecycle, cx: &mut Cx<'_>, reason: CloseReason, cause: Cause) {
    let from = lc.state.status();
    // The last attempt made: from Reconnecting, the one before the next.
    let attempt = match lc.state {
        State::Reconnecting { next_attempt, .. } => next_attempt.saturating_sub(1),
        ref other => other.transport_attempt().unwrap_or(0),
    };
    lc.state = State::Closed { reason };
    lc.read_paused_since = None;
    cx.out.push_back(Action::StatusChanged {
        from,
        to: super::Status::Closed,
        cause,
        attempt,
    });
}

/// A give-up budget is spent: Closed.
fn give_up(lc: &mut Lifecycle, cx: &mut Cx<'_>) {
    let attempts = lc.attempts_since_stable;
    close(lc, cx, CloseReason::GaveUp { attempts }, Cause::GaveUp);
}

/// Drops the current transport; an Open that lasted `stable_after` resets
/// the backoff and the give-up budget first.
fn end_transport(lc: &mut Lifecycle, cx: &mut Cx<'_>) {
    if let State::Open { since, .. } = lc.state {
        if cx.now >= time::deadline(since, cx.config.stable_after) {
            lc.failures = 0;
            lc.attempts_since_stable = 0;
            lc.unstable_since = cx.now;
        }
    }
    if let Some(attempt) = lc.state.transport_attempt() {
        cx.out.push_back(Action::DropTransport { attempt });
    }
}

/// Starts attempt `attempt` at once.
fn begin_attempt(lc: &mut Lifecycle, cx: &mut Cx<'_>, attempt: Attempt, cause: Cause) {
    lc.attempts_since_stable = lc.attempts_since_stable.saturating_add(1);
    let connecting = State::Connecting {
        attempt,
        deadline: time::deadline(cx.now, cx.config.connect_timeout),
    };
    enter(lc, cx, connecting, cause);
    cx.out.push_back(Action::Connect { attempt });
}

fn time_budget_spent(lc: &Lifecycle, cx: &Cx<'_>) -> bool {
    cx.config
        .max_unstable
        .is_some_and(|max| cx.now >= time::deadline(lc.unstable_since, max))
}

/// Either give-up budget: attempts since the last stable Open, or time.
fn budget_spent(lc: &Lifecycle, cx: &Cx<'_>) -> bool {
    let attempts_spent = cx
        .config
        .max_attempts
        .is_some_and(|max| lc.attempts_since_stable >= max);
    attempts_spent || time_budget_spent(lc, cx)
}

/// The one failure path: drop the transport, report the disconnect (if the
/// socket had opened), then ask the policy (the caller's verdict, else
/// [`Config::verdict`]): terminal → Closed { Rejected }, no failure
/// counted; otherwise count the failure and end (spent budget) or schedule
/// the next attempt after the backoff delay, or after the hint when the
/// verdict carries one.
fn fail(
    lc: &mut Lifecycle,
    cx: &mut Cx<'_>,
    cause: Cause,
    failure: Failure,
    notice: Option<(u16, String)>,
) {
    let attempt = current(lc);
    end_transport(lc, cx);
    if let Some((code, reason)) = notice {
        cx.out.push_back(Action::Disconnected {
            attempt,
            code,
            reason,
        });
    }
    let verdict = cx.verdict.unwrap_or_else(|| cx.config.verdict(&failure));
    let hint = match verdict {
        Verdict::Terminal => {
            let by = failure.rejected_by(cx.verdict.is_some());
            return close(lc, cx, CloseReason::Rejected { by }, Cause::Rejected);
        }
        Verdict::Retry => None,
        Verdict::RetryAfter(hint) => Some(hint),
    };
    lc.failures = lc.failures.saturating_add(1);
    if budget_spent(lc, cx) {
        return give_up(lc, cx);
    }
    let delay = match hint {
        None => backoff::delay(cx.config, lc.failures, &mut lc.rng),
        Some(hint) => backoff::hinted(cx.config, lc.failures, hint, &mut lc.rng),
    };
    let next_attempt = attempt.saturating_add(1);
    let reconnecting = State::Reconnecting {
        next_attempt,
        retry_at: time::deadline(cx.now, delay),
    };
    enter(lc, cx, reconnecting, cause);
    cx.out.push_back(Action::ReconnectScheduled {
        attempt: next_attempt,
        delay,
    });
}
