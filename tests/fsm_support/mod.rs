//! The per-edge invariant checker shared by the exhaustive exploration
//! (`tests/fsm_exhaustive.rs`) and the random-run properties
//! (`tests/fsm_props.rs`): one edge is a lifecycle before, an event at an
//! instant, and the lifecycle and actions `step` produced.

use std::time::Instant;

use ws_lifecycle::fsm::{Action, Event, Lifecycle, State, Timer, backoff};
use ws_lifecycle::{CloseReason, Config, Failure, RejectedBy, Status, Verdict};

/// The highest attempt started so far, as far as the state tells: the live
/// transport's, or the one before the pending retry.
fn high_water(state: &State) -> Option<u64> {
    match *state {
        State::Reconnecting { next_attempt, .. } => Some(next_attempt.saturating_sub(1)),
        ref other => other.transport_attempt(),
    }
}

/// A due ping skipped under `ping_when_idle`: the Ping timer was due at `at`
/// with an inbound frame within the last ping interval, and the only change
/// is `next_ping` moving to that frame + `ping_interval` (strictly after
/// `at`).
fn ping_skipped(cfg: &Config, before: &Lifecycle, at: Instant, after: &Lifecycle) -> bool {
    cfg.ping_when_idle
        && before.due(at, cfg) == Some(Timer::Ping)
        && before.read_paused_since() == after.read_paused_since()
        && match (before.state(), after.state()) {
            (
                State::Open {
                    attempt: a,
                    since: s,
                    last_activity: l,
                    probe: x,
                    ..
                },
                State::Open {
                    attempt: b,
                    since: t,
                    last_activity: m,
                    probe: y,
                    next_ping,
                },
            ) => {
                a == b
                    && s == t
                    && l == m
                    && x == y
                    && l.checked_add(cfg.ping_interval) == Some(*next_ping)
                    && *next_ping > at
            }
            _ => false,
        }
}

/// What the Ping timer must do when it fires at `at`: a ping, unless
/// `ping_when_idle` is set and an inbound frame arrived within the last
/// `ping_interval` (then nothing goes out). `Err` when `actions` disagree.
fn check_ping(
    cfg: &Config,
    before: &Lifecycle,
    at: Instant,
    actions: &[Action],
) -> Result<(), String> {
    if before.due(at, cfg) != Some(Timer::Ping) {
        return Ok(());
    }
    let State::Open { last_activity, .. } = *before.state() else {
        return Err("the Ping timer is due outside Open".into());
    };
    let busy = cfg.ping_when_idle
        && last_activity
            .checked_add(cfg.ping_interval)
            .is_some_and(|idle_at| idle_at > at);
    let pinged = matches!(actions, [Action::SendPing { .. }]);
    match (busy, pinged) {
        (false, false) => Err(format!("the Ping timer fired without a ping: {actions:?}")),
        (true, true) => Err("pinged although a frame arrived within ping_interval".into()),
        (true, false) if !actions.is_empty() => Err(format!("a skipped ping emitted {actions:?}")),
        _ => Ok(()),
    }
}

/// The changes an event may make without any action: Activity or Ack in
/// Open moves `last_activity` to `at` and clears a wake probe; ReadPaused
/// starts a pause at `at`; ReadResumed ends it and moves AwaitingAck's ack
/// deadline, Open's `last_activity` (never past `at`) or Open's wake probe
/// later, by at most the paused span. Nothing else changes.
fn quiet_change(
    cfg: &Config,
    before: &Lifecycle,
    event: &Event,
    at: Instant,
    after: &Lifecycle,
) -> bool {
    let counters = |l: &Lifecycle| (l.failures(), l.attempts_since_stable(), l.unstable_since());
    if counters(before) != counters(after) {
        return false;
    }
    match event {
        Event::Activity { .. } | Event::Ack { .. } => {
            before.read_paused_since() == after.read_paused_since()
                && matches!(
                    (before.state(), after.state()),
                    (
                        State::Open { attempt: a, since: s, next_ping: p, .. },
                        State::Open { attempt: b, since: t, next_ping: q, last_activity, probe: None },
                    ) if a == b && s == t && p == q && *last_activity == at
                )
        }
        Event::ReadPaused => {
            before.read_paused_since().is_none()
                && after.read_paused_since() == Some(at)
                && before.state() == after.state()
        }
        Event::ReadResumed => {
            let Some(since) = before.read_paused_since() else {
                return false;
            };
            let span = at.saturating_duration_since(since);
            after.read_paused_since().is_none()
                && match (before.state(), after.state()) {
                    (
                        State::AwaitingAck {
                            attempt: a,
                            deadline: d,
                        },
                        State::AwaitingAck {
                            attempt: b,
                            deadline: e,
                        },
                    ) => a == b && *d <= *e && *e <= d.checked_add(span).unwrap_or(*e),
                    (
                        State::Open {
                            attempt: a,
                            since: s,
                            next_ping: p,
                            last_activity: l,
                            probe: x,
                        },
                        State::Open {
                            attempt: b,
                            since: t,
                            next_ping: q,
                            last_activity: m,
                            probe: y,
                        },
                    ) => {
                        let probe_moved = match (x, y) {
                            (None, None) => true,
                            (Some(x), Some(y)) => x <= y && *y <= x.checked_add(span).unwrap_or(*y),
                            _ => false,
                        };
                        a == b && s == t && p == q && l <= m && *m <= at.max(*l) && probe_moved
                    }
                    (x, y) => x == y,
                }
        }
        // Only the Ping timer under `ping_when_idle` fires without an action.
        Event::Timeout => ping_skipped(cfg, before, at, after),
        _ => false,
    }
}

/// The event inside any caller's verdict.
fn plain(event: &Event) -> &Event {
    match event {
        Event::Judged { event, .. } => plain(event),
        other => other,
    }
}

/// The failure `event` reports at `at` and the verdict that applies to it:
/// the caller's (outermost) when it gave one, the policy's otherwise.
pub fn judged(
    cfg: &Config,
    before: &Lifecycle,
    event: &Event,
    at: Instant,
) -> Option<(Failure, Verdict, bool)> {
    let failure = before.failure(event, at, cfg)?;
    Some(match event {
        Event::Judged { verdict, .. } => (failure, *verdict, true),
        _ => {
            let verdict = cfg.verdict(&failure);
            (failure, verdict, false)
        }
    })
}

/// The policy's invariants: a failure ends in Reconnecting (after a delay
/// within the verdict's bounds), in Closed { GaveUp } (not a terminal
/// verdict), or — exactly when the verdict is terminal — in Closed {
/// Rejected } naming who refused; nothing else rejects.
fn check_verdict(
    cfg: &Config,
    before: &Lifecycle,
    event: &Event,
    at: Instant,
    after: &Lifecycle,
    actions: &[Action],
) -> Result<(), String> {
    let rejected = matches!(
        after.state(),
        State::Closed {
            reason: CloseReason::Rejected { .. }
        }
    ) && before.state().status() != Status::Closed;
    let Some((failure, verdict, by_caller)) = judged(cfg, before, event, at) else {
        if rejected {
            return Err("rejected without a failure".into());
        }
        return Ok(());
    };
    match (verdict, after.state()) {
        (
            Verdict::Terminal,
            State::Closed {
                reason: CloseReason::Rejected { by },
            },
        ) => {
            let want = match (&failure, by_caller) {
                (_, true) => RejectedBy::Caller {
                    failure: failure.clone(),
                },
                (Failure::PeerClosed { code, reason }, false) => RejectedBy::Close {
                    code: *code,
                    reason: reason.clone(),
                },
                (Failure::Connect(ws_lifecycle::ConnectFailure::Http { status, .. }), false) => {
                    RejectedBy::Http { status: *status }
                }
                (Failure::Connect(ws_lifecycle::ConnectFailure::Proxy { status }), false) => {
                    RejectedBy::Proxy { status: *status }
                }
                (Failure::Connect(ws_lifecycle::ConnectFailure::SocksAuth), false) => {
                    RejectedBy::SocksAuth
                }
                (other, false) => return Err(format!("{other:?} terminal by default")),
            };
            if *by != want {
                return Err(format!("rejected by {by:?}, expected {want:?}"));
            }
            // (a stable Open's end may reset the count; it never grows)
            if after.failures() > before.failures() {
                return Err("a rejection counted a failure".into());
            }
            Ok(())
        }
        (Verdict::Terminal, other) => Err(format!("terminal verdict left {other:?}")),
        (
            _,
            State::Closed {
                reason: CloseReason::GaveUp { .. },
            },
        ) => Ok(()),
        (Verdict::Retry | Verdict::RetryAfter(_), State::Reconnecting { .. }) => {
            let hint = match verdict {
                Verdict::RetryAfter(hint) => Some(hint),
                _ => None,
            };
            let (lo, hi) = match hint {
                Some(hint) => backoff::hinted_bounds(cfg, after.failures(), hint),
                None => backoff::bounds(cfg, after.failures()),
            };
            let delay = actions.iter().find_map(|a| match a {
                Action::ReconnectScheduled { delay, .. } => Some(*delay),
                _ => None,
            });
            match delay {
                Some(d) if d >= lo && d <= hi => Ok(()),
                other => Err(format!(
                    "{verdict:?}: delay {other:?} outside [{lo:?}, {hi:?}]"
                )),
            }
        }
        (v, other) => Err(format!("verdict {v:?} on {failure:?} left {other:?}")),
    }
}

/// Every invariant that can be judged from one edge. `Err` describes the
/// first broken one.
pub fn check_edge(
    cfg: &Config,
    before: &Lifecycle,
    judged_event: &Event,
    at: Instant,
    after: &Lifecycle,
    actions: &[Action],
) -> Result<(), String> {
    check_verdict(cfg, before, judged_event, at, after, actions)?;
    let event = plain(judged_event);
    let from = before.state().status();
    let to = after.state().status();

    // Closed is absorbing.
    if from == Status::Closed && (!actions.is_empty() || after != before) {
        return Err("Closed is not absorbing".into());
    }
    // No state but Closed is without a deadline (nothing can stall), except
    // AwaitingAck and Reconnecting while reading is paused, where the wait is
    // on the consumer; Closed has none, and is never paused.
    match (to, after.deadline(cfg)) {
        (Status::Closed, Some(_)) => return Err("Closed has a deadline".into()),
        (Status::Closed, None) if after.read_paused() => return Err("Closed is paused".into()),
        (Status::AwaitingAck | Status::Reconnecting, None) if after.read_paused() => {}
        (Status::Closed, None) | (_, Some(_)) => {}
        (_, None) => return Err(format!("{to:?} has no deadline")),
    }
    // The lifecycle's deadline is the state's, minus the timers a pause stops.
    if !after.read_paused() && after.deadline(cfg) != after.state().deadline(cfg.stale_after) {
        return Err("unpaused, yet the deadline is not the state's".into());
    }
    // A timeout at or after the deadline always does something, and the next
    // deadline is strictly later (poll_timeout moves forward: no busy loop).
    if let (Event::Timeout, Some(due)) = (event, before.deadline(cfg)) {
        if at >= due {
            check_ping(cfg, before, at, actions)?;
            if actions.is_empty() && !ping_skipped(cfg, before, at, after) {
                return Err("a due timeout did nothing".into());
            }
            if let Some(next) = after.deadline(cfg) {
                if next <= at {
                    return Err(format!("deadline did not move past {at:?}: {next:?}"));
                }
            }
        } else if !actions.is_empty() || after != before {
            return Err("an early timeout did something".into());
        }
    }
    if matches!(event, Event::Timeout) && before.deadline(cfg).is_none() && after != before {
        return Err("a timeout with no running timer did something".into());
    }
    // Pausing and resuming are no status change: never an action.
    if matches!(event, Event::ReadPaused | Event::ReadResumed) && !actions.is_empty() {
        return Err("a read pause or resume emitted actions".into());
    }
    // An event without actions changed nothing, or only Open's activity time,
    // or the read pause (and, on resume, the deadline it stopped).
    if actions.is_empty() && after != before && !quiet_change(cfg, before, event, at, after) {
        return Err("changed the lifecycle without any action".into());
    }

    // Walk the actions in order, tracking the live transport.
    let mut live = before.state().transport_attempt();
    let hw = high_water(before.state());
    let mut status_changes = 0;
    let mut entered: Option<Status> = None;
    let mut disconnects = 0;
    let mut scheduled = false;
    // The machine drops an opened socket itself (anything but the peer's
    // close or a lost transport): a best-effort close frame goes first.
    let own_drop = matches!(from, Status::AwaitingAck | Status::Open)
        && !matches!(
            event,
            Event::PeerClosed { .. } | Event::TransportLost { .. }
        );
    let mut previous: Option<&Action> = None;
    for a in actions {
        let prev = previous.replace(a);
        match a {
            Action::DropTransport { attempt } => {
                if live != Some(*attempt) {
                    return Err(format!("DropTransport {attempt} but live is {live:?}"));
                }
                if own_drop
                    && !matches!(prev, Some(Action::SendClose { attempt: c, .. }) if c == attempt)
                {
                    return Err(format!(
                        "DropTransport {attempt} of an opened socket without a SendClose right before"
                    ));
                }
                live = None;
            }
            Action::Connect { attempt } => {
                if live.is_some() {
                    return Err(format!("Connect {attempt} while {live:?} is live"));
                }
                let want = hw.map_or(1, |h| h.saturating_add(1));
                if *attempt != want {
                    return Err(format!("Connect {attempt}, expected attempt {want}"));
                }
                live = Some(*attempt);
            }
            Action::SendHello { attempt } => {
                if entered != Some(Status::AwaitingAck) || live != Some(*attempt) {
                    return Err("SendHello outside the entry into AwaitingAck".into());
                }
            }
            Action::FlushQueue { attempt } => {
                if from != Status::AwaitingAck
                    || entered != Some(Status::Open)
                    || live != Some(*attempt)
                {
                    return Err("FlushQueue outside the transition into Open".into());
                }
            }
            Action::SendPing { attempt } => {
                if from != Status::Open || to != Status::Open || live != Some(*attempt) {
                    return Err("SendPing outside Open".into());
                }
            }
            Action::SendClose { attempt, .. } => {
                let opened = matches!(from, Status::AwaitingAck | Status::Open);
                if !opened || live != Some(*attempt) {
                    return Err("SendClose without an opened socket".into());
                }
            }
            Action::StatusChanged {
                from: f,
                to: t,
                attempt,
                ..
            } => {
                status_changes += 1;
                if (*f, *t) != (from, to) {
                    return Err(format!(
                        "StatusChanged {f:?}->{t:?}, really {from:?}->{to:?}"
                    ));
                }
                // The notice names the attempt the new state is about.
                let about = match *after.state() {
                    State::Reconnecting { next_attempt, .. } => next_attempt,
                    ref s => s.transport_attempt().unwrap_or(*attempt),
                };
                if *attempt != about {
                    return Err(format!(
                        "StatusChanged names attempt {attempt}, not {about}"
                    ));
                }
                entered = Some(*t);
            }
            Action::Disconnected { attempt, .. } => {
                disconnects += 1;
                let opened = matches!(from, Status::AwaitingAck | Status::Open);
                if !opened || Some(*attempt) != before.state().transport_attempt() {
                    return Err("Disconnected for a socket that was not open".into());
                }
                if entered.is_some() || scheduled {
                    return Err("Disconnected after the status change".into());
                }
            }
            Action::ReconnectScheduled { attempt, delay } => {
                scheduled = true;
                // The bounds of the verdict are `check_verdict`'s; a delay
                // is never below the floor nor above the longest of the
                // schedule and the Retry-After cap.
                let longest = cfg.backoff.iter().max().copied().unwrap_or_default();
                let ceiling = longest.max(cfg.max_retry_after).max(cfg.min_delay);
                if *delay < cfg.min_delay || *delay > ceiling {
                    return Err(format!(
                        "delay {delay:?} outside [{:?}, {ceiling:?}]",
                        cfg.min_delay
                    ));
                }
                let State::Reconnecting {
                    next_attempt,
                    retry_at,
                } = *after.state()
                else {
                    return Err("ReconnectScheduled but not Reconnecting".into());
                };
                // The retry is due exactly `delay` from now (unless that
                // overflows an `Instant`), and strictly later than now.
                if next_attempt != *attempt
                    || Some(attempt.saturating_sub(1)) != hw
                    || at.checked_add(*delay).is_some_and(|t| t != retry_at)
                    || retry_at <= at
                {
                    return Err(format!(
                        "ReconnectScheduled {attempt} vs {:?}",
                        after.state()
                    ));
                }
            }
        }
    }
    if status_changes > 1 {
        return Err("more than one status change".into());
    }
    if status_changes == 0 && from != to {
        return Err("status changed without a notice".into());
    }
    if live != after.state().transport_attempt() {
        return Err(format!(
            "actions leave {live:?} live, state holds {:?}",
            after.state().transport_attempt()
        ));
    }
    // Exactly one Disconnected when an opened socket goes, except by our
    // own close (Closing) — and none otherwise.
    let opened = matches!(from, Status::AwaitingAck | Status::Open);
    let socket_gone =
        opened && after.state().transport_attempt() != before.state().transport_attempt();
    let want = usize::from(socket_gone && to != Status::Closing);
    if disconnects != want {
        return Err(format!(
            "{disconnects} Disconnected notices, expected {want}"
        ));
    }
    // Attempt numbers never decrease.
    if let (Some(b), Some(a)) = (hw, high_water(after.state())) {
        if a < b {
            return Err(format!("attempt went back from {b} to {a}"));
        }
    }
    Ok(())
}
