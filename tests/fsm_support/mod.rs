//! The per-edge invariant checker shared by the exhaustive exploration
//! (`tests/fsm_exhaustive.rs`) and the random-run properties
//! (`tests/fsm_props.rs`): one edge is a lifecycle before, an event at an
//! instant, and the lifecycle and actions `step` produced.

use std::time::Instant;

use ws_lifecycle::fsm::{Action, Config, Event, Lifecycle, State, Status, backoff};

/// The highest attempt started so far, as far as the state tells: the live
/// transport's, or the one before the pending retry.
fn high_water(state: &State) -> Option<u64> {
    match *state {
        State::Reconnecting { next_attempt, .. } => Some(next_attempt.saturating_sub(1)),
        ref other => other.transport_attempt(),
    }
}

/// Every invariant that can be judged from one edge. `Err` describes the
/// first broken one.
pub fn check_edge(
    cfg: &Config,
    before: &Lifecycle,
    event: &Event,
    at: Instant,
    after: &Lifecycle,
    actions: &[Action],
) -> Result<(), String> {
    let from = before.state.status();
    let to = after.state.status();

    // Closed is absorbing.
    if from == Status::Closed && (!actions.is_empty() || after != before) {
        return Err("Closed is not absorbing".into());
    }
    // No state but Closed is without a deadline; Closed has none.
    match (to, after.state.deadline(cfg.stale_after)) {
        (Status::Closed, Some(_)) => return Err("Closed has a deadline".into()),
        (Status::Closed, None) | (_, Some(_)) => {}
        (_, None) => return Err(format!("{to:?} has no deadline")),
    }
    // A timeout at or after the deadline always does something, and the next
    // deadline is strictly later (poll_timeout moves forward: no busy loop).
    if let (Event::Timeout, Some(due)) = (event, before.state.deadline(cfg.stale_after)) {
        if at >= due {
            if actions.is_empty() {
                return Err("a due timeout did nothing".into());
            }
            if let Some(next) = after.state.deadline(cfg.stale_after) {
                if next <= at {
                    return Err(format!("deadline did not move past {at:?}: {next:?}"));
                }
            }
        } else if !actions.is_empty() || after != before {
            return Err("an early timeout did something".into());
        }
    }
    // An event without actions changed nothing, or only Open's activity time.
    if actions.is_empty() && after != before {
        let only_activity = matches!(event, Event::Activity { .. } | Event::Ack { .. })
            && matches!(
                (&before.state, &after.state),
                (
                    State::Open { attempt: a, since: s, next_ping: p, .. },
                    State::Open { attempt: b, since: t, next_ping: q, last_activity },
                ) if a == b && s == t && p == q && *last_activity == at
            )
            && (
                before.failures,
                before.attempts_since_stable,
                before.unstable_since,
            ) == (
                after.failures,
                after.attempts_since_stable,
                after.unstable_since,
            );
        if !only_activity {
            return Err("changed the lifecycle without any action".into());
        }
    }

    // Walk the actions in order, tracking the live transport.
    let mut live = before.state.transport_attempt();
    let hw = high_water(&before.state);
    let mut status_changes = 0;
    let mut entered: Option<Status> = None;
    let mut disconnects = 0;
    let mut scheduled = false;
    for a in actions {
        match a {
            Action::DropTransport { attempt } => {
                if live != Some(*attempt) {
                    return Err(format!("DropTransport {attempt} but live is {live:?}"));
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
                let about = match after.state {
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
                if !opened || Some(*attempt) != before.state.transport_attempt() {
                    return Err("Disconnected for a socket that was not open".into());
                }
                if entered.is_some() || scheduled {
                    return Err("Disconnected after the status change".into());
                }
            }
            Action::ReconnectScheduled { attempt, delay } => {
                scheduled = true;
                let (lo, hi) = backoff::bounds(cfg, after.failures);
                if *delay < lo || *delay > hi || *delay < cfg.min_delay {
                    return Err(format!("delay {delay:?} outside [{lo:?}, {hi:?}]"));
                }
                let State::Reconnecting {
                    next_attempt,
                    retry_at,
                } = after.state
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
                    return Err(format!("ReconnectScheduled {attempt} vs {:?}", after.state));
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
    if live != after.state.transport_attempt() {
        return Err(format!(
            "actions leave {live:?} live, state holds {:?}",
            after.state.transport_attempt()
        ));
    }
    // Exactly one Disconnected when an opened socket goes, except by our
    // own close (Closing) — and none otherwise.
    let opened = matches!(from, Status::AwaitingAck | Status::Open);
    let socket_gone = opened && after.state.transport_attempt() != before.state.transport_attempt();
    let want = usize::from(socket_gone && to != Status::Closing);
    if disconnects != want {
        return Err(format!(
            "{disconnects} Disconnected notices, expected {want}"
        ));
    }
    // Attempt numbers never decrease.
    if let (Some(b), Some(a)) = (hw, high_water(&after.state)) {
        if a < b {
            return Err(format!("attempt went back from {b} to {a}"));
        }
    }
    Ok(())
}
