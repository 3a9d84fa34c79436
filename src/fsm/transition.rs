//! The pure transition function: (lifecycle, event, now, config) → (next
//! lifecycle, actions). No I/O, no clock, no global randomness: the jitter
//! generator is part of the lifecycle value, so equal inputs give equal
//! outputs.

use std::collections::VecDeque;
use std::time::Instant;

use super::time::deadline;
use super::{Action, Attempt, Cause, CloseReason, Config, Event, State, backoff};

/// Everything the machine remembers: the current state plus the counters that
/// outlive a single state, and the seeded jitter generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    /// The current state with its deadlines.
    pub state: State,
    /// Consecutive failures since the last stable Open (saturating); picks
    /// the backoff entry.
    pub failures: u32,
    /// Attempts started since the last stable Open (saturating); the
    /// attempt budget counts these.
    pub attempts_since_stable: u32,
    /// When the current unstable stretch began (creation, or the end of the
    /// last stable Open); the time budget counts from here.
    pub unstable_since: Instant,
    /// The jitter generator, seeded from the config.
    pub rng: fastrand::Rng,
}

impl Lifecycle {
    /// A lifecycle at the start of attempt 1, and the action that starts it.
    pub fn start(config: &Config, now: Instant) -> (Self, Action) {
        let lifecycle = Lifecycle {
            state: State::Connecting {
                attempt: 1,
                deadline: deadline(now, config.connect_timeout),
            },
            failures: 0,
            attempts_since_stable: 1,
            unstable_since: now,
            rng: fastrand::Rng::with_seed(config.seed),
        };
        (lifecycle, Action::Connect { attempt: 1 })
    }
}

/// The pure form: returns the next lifecycle and the actions, leaving the
/// input untouched. Used by tests and the diagram generator.
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
    if let Some(a) = event.attempt() {
        if lc.state.transport_attempt() != Some(a) {
            return;
        }
    }
    use Event as E;
    use State as S;
    match (&mut lc.state, event) {
        // ── Closed absorbs everything ───────────────────────────────────
        (S::Closed { .. }, _) => {}

        // ── Connecting ──────────────────────────────────────────────────
        (S::Connecting { attempt, .. }, E::SocketOpened { .. }) => {
            let attempt = *attempt;
            let deadline = deadline(now, config.ack_timeout);
            enter(
                lc,
                S::AwaitingAck { attempt, deadline },
                Cause::SocketOpened,
                out,
            );
            out.push_back(Action::SendHello { attempt });
        }
        (S::Connecting { .. }, E::ConnectFailed { .. }) => {
            fail(lc, now, config, Cause::ConnectFailed, None, out)
        }
        (S::Connecting { deadline, .. }, E::Timeout) if now >= *deadline => {
            fail(lc, now, config, Cause::ConnectTimeout, None, out)
        }

        // ── AwaitingAck ─────────────────────────────────────────────────
        (S::AwaitingAck { attempt, .. }, E::Ack { .. }) => {
            let attempt = *attempt;
            let open = S::Open {
                attempt,
                since: now,
                last_activity: now,
                next_ping: deadline(now, config.ping_interval),
            };
            enter(lc, open, Cause::Acked, out);
            out.push_back(Action::FlushQueue { attempt });
        }
        (S::AwaitingAck { .. }, E::HelloFailed { .. }) => fail(
            lc,
            now,
            config,
            Cause::HelloFailed,
            Some(lost("hello failed")),
            out,
        ),
        (S::AwaitingAck { deadline, .. }, E::Timeout) if now >= *deadline => fail(
            lc,
            now,
            config,
            Cause::AckTimeout,
            Some(lost("hello ack timeout")),
            out,
        ),

        // ── Open ────────────────────────────────────────────────────────
        (S::Open { last_activity, .. }, E::Activity { .. } | E::Ack { .. }) => *last_activity = now,
        (
            S::Open {
                attempt,
                last_activity,
                next_ping,
                ..
            },
            E::Timeout,
        ) => {
            if now >= deadline(*last_activity, config.stale_after) {
                fail(
                    lc,
                    now,
                    config,
                    Cause::Stale,
                    Some(lost("no inbound frame within stale_after")),
                    out,
                )
            } else if now >= *next_ping {
                *next_ping = deadline(now, config.ping_interval);
                out.push_back(Action::SendPing { attempt: *attempt });
            }
        }

        // ── Any state with an open socket: AwaitingAck, Open ────────────
        (S::AwaitingAck { .. } | S::Open { .. }, E::PeerClosed { code, reason, .. }) => {
            let cause = if config.is_terminal(code, &reason) {
                Cause::Rejected
            } else {
                Cause::PeerClosed
            };
            fail(lc, now, config, cause, Some((code, reason)), out)
        }
        (S::AwaitingAck { .. } | S::Open { .. }, E::TransportLost { .. }) => fail(
            lc,
            now,
            config,
            Cause::TransportLost,
            Some(lost("connection lost without a close frame")),
            out,
        ),
        (S::AwaitingAck { attempt, .. } | S::Open { attempt, .. }, E::MessageTooBig { .. }) => {
            out.push_back(Action::SendClose {
                attempt: *attempt,
                code: 1009,
                reason: "message too big".into(),
            });
            let notice = (1009, "message too big".to_owned());
            fail(lc, now, config, Cause::MessageTooBig, Some(notice), out)
        }
        (S::AwaitingAck { attempt, .. } | S::Open { attempt, .. }, E::Close { code, reason }) => {
            let attempt = *attempt;
            out.push_back(Action::SendClose {
                attempt,
                code,
                reason,
            });
            let closing = S::Closing {
                attempt,
                deadline: deadline(now, config.close_grace),
            };
            enter(lc, closing, Cause::CloseRequested, out);
        }
        (S::AwaitingAck { attempt, .. } | S::Open { attempt, .. }, E::ReconnectNow) => {
            let attempt = *attempt;
            end_transport(lc, now, config, out);
            out.push_back(Action::Disconnected {
                attempt,
                code: 1006,
                reason: "reconnect requested".into(),
            });
            restart(lc, attempt, now, config, out);
        }

        // ── Connecting: caller commands ─────────────────────────────────
        (S::Connecting { attempt, .. }, E::Close { .. }) => {
            out.push_back(Action::DropTransport { attempt: *attempt });
            close(lc, CloseReason::Requested, Cause::CloseRequested, out);
        }
        (S::Connecting { attempt, .. }, E::ReconnectNow) => {
            let attempt = *attempt;
            out.push_back(Action::DropTransport { attempt });
            restart(lc, attempt, now, config, out);
        }

        // ── Reconnecting ────────────────────────────────────────────────
        (
            S::Reconnecting {
                next_attempt,
                retry_at,
            },
            E::Timeout,
        ) if now >= *retry_at => {
            let next = *next_attempt;
            if budget_time_spent(lc, now, config) {
                let attempts = lc.attempts_since_stable;
                close(lc, CloseReason::GaveUp { attempts }, Cause::GaveUp, out);
            } else {
                begin_attempt(lc, next, now, config, Cause::RetryDue, out);
            }
        }
        (S::Reconnecting { next_attempt, .. }, E::ReconnectNow) => {
            let next = *next_attempt;
            begin_attempt(lc, next, now, config, Cause::ReconnectNow, out);
        }
        (S::Reconnecting { .. }, E::Close { .. }) => {
            close(lc, CloseReason::Requested, Cause::CloseRequested, out)
        }

        // ── Closing ─────────────────────────────────────────────────────
        (
            S::Closing { attempt, .. },
            E::PeerClosed { .. } | E::TransportLost { .. } | E::MessageTooBig { .. },
        ) => {
            out.push_back(Action::DropTransport { attempt: *attempt });
            close(lc, CloseReason::Requested, Cause::CloseCompleted, out);
        }
        (S::Closing { attempt, deadline }, E::Timeout) if now >= *deadline => {
            out.push_back(Action::DropTransport { attempt: *attempt });
            close(lc, CloseReason::Requested, Cause::CloseGraceExpired, out);
        }

        // ── Everything else does not apply: ignored, no actions ─────────
        _ => {}
    }
}

/// A close notice for a socket we dropped ourselves: code 1006.
fn lost(why: &str) -> (u16, String) {
    (1006, why.to_owned())
}

/// Moves to `next`, reporting the change.
fn enter(lc: &mut Lifecycle, next: State, cause: Cause, out: &mut VecDeque<Action>) {
    let from = lc.state.status();
    let attempt = match &next {
        State::Reconnecting { next_attempt, .. } => *next_attempt,
        other => other.transport_attempt().unwrap_or(0),
    };
    let to = next.status();
    lc.state = next;
    out.push_back(Action::StatusChanged {
        from,
        to,
        cause,
        attempt,
    });
}

/// Moves to Closed for good.
fn close(lc: &mut Lifecycle, reason: CloseReason, cause: Cause, out: &mut VecDeque<Action>) {
    let from = lc.state.status();
    // The last attempt made: from Reconnecting, the one before the next.
    let attempt = match lc.state {
        State::Reconnecting { next_attempt, .. } => next_attempt.saturating_sub(1),
        ref other => other.transport_attempt().unwrap_or(0),
    };
    lc.state = State::Closed { reason };
    out.push_back(Action::StatusChanged {
        from,
        to: super::Status::Closed,
        cause,
        attempt,
    });
}

/// Drops the current transport; an Open that lasted `stable_after` resets
/// the backoff and the give-up budget first.
fn end_transport(lc: &mut Lifecycle, now: Instant, config: &Config, out: &mut VecDeque<Action>) {
    if let State::Open { since, .. } = lc.state {
        if now >= deadline(since, config.stable_after) {
            lc.failures = 0;
            lc.attempts_since_stable = 0;
            lc.unstable_since = now;
        }
    }
    if let Some(attempt) = lc.state.transport_attempt() {
        out.push_back(Action::DropTransport { attempt });
    }
}

/// Starts attempt `attempt` at once.
fn begin_attempt(
    lc: &mut Lifecycle,
    attempt: Attempt,
    now: Instant,
    config: &Config,
    cause: Cause,
    out: &mut VecDeque<Action>,
) {
    lc.attempts_since_stable = lc.attempts_since_stable.saturating_add(1);
    let connecting = State::Connecting {
        attempt,
        deadline: deadline(now, config.connect_timeout),
    };
    enter(lc, connecting, cause, out);
    out.push_back(Action::Connect { attempt });
}

/// The caller's reconnect-now: the attempt after `attempt` starts at once,
/// with no delay and no failure counted.
fn restart(
    lc: &mut Lifecycle,
    attempt: Attempt,
    now: Instant,
    config: &Config,
    out: &mut VecDeque<Action>,
) {
    begin_attempt(
        lc,
        attempt.saturating_add(1),
        now,
        config,
        Cause::ReconnectNow,
        out,
    );
}

fn budget_time_spent(lc: &Lifecycle, now: Instant, config: &Config) -> bool {
    config
        .max_unstable
        .is_some_and(|max| now >= deadline(lc.unstable_since, max))
}

/// The one failure path: drop the transport, report the disconnect (if the
/// socket had opened), then end (terminal code, spent budget) or schedule the
/// next attempt.
fn fail(
    lc: &mut Lifecycle,
    now: Instant,
    config: &Config,
    cause: Cause,
    disconnect: Option<(u16, String)>,
    out: &mut VecDeque<Action>,
) {
    let attempt = lc.state.transport_attempt().unwrap_or(0);
    end_transport(lc, now, config, out);
    if let Some((code, reason)) = disconnect {
        if cause == Cause::Rejected {
            let notice_reason = reason.clone();
            out.push_back(Action::Disconnected {
                attempt,
                code,
                reason: notice_reason,
            });
            return close(
                lc,
                CloseReason::Rejected { code, reason },
                Cause::Rejected,
                out,
            );
        }
        out.push_back(Action::Disconnected {
            attempt,
            code,
            reason,
        });
    }
    lc.failures = lc.failures.saturating_add(1);
    let attempts_spent = config
        .max_attempts
        .is_some_and(|max| lc.attempts_since_stable >= max);
    if attempts_spent || budget_time_spent(lc, now, config) {
        let attempts = lc.attempts_since_stable;
        return close(lc, CloseReason::GaveUp { attempts }, Cause::GaveUp, out);
    }
    let delay = backoff::delay(config, lc.failures, &mut lc.rng);
    let next_attempt = attempt.saturating_add(1);
    let reconnecting = State::Reconnecting {
        next_attempt,
        retry_at: deadline(now, delay),
    };
    enter(lc, reconnecting, cause, out);
    out.push_back(Action::ReconnectScheduled {
        attempt: next_attempt,
        delay,
    });
}
