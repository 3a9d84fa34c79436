//! Ping only when idle (`Config::ping_when_idle`), on a virtual clock: a
//! broker that sends something every second costs no pings of ours; once
//! the link goes quiet the first ping goes out exactly `ping_interval` after
//! the last inbound frame, then every `ping_interval`; stale detection and
//! the wake probe are unchanged; and with the option off (the default)
//! nothing changes.

use std::time::{Duration, Instant};

use ws_lifecycle::fsm::{Action, Event, Machine, State};
use ws_lifecycle::{Cause, Config, Status};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn config(ping_when_idle: bool) -> Config {
    Config {
        ping_interval: secs(1),
        stale_after: ms(5_500),
        ping_when_idle,
        jitter: 0.0,
        ..Config::default()
    }
}

fn drain(m: &mut Machine) -> Vec<Action> {
    std::iter::from_fn(|| m.poll_action()).collect()
}

/// A machine Open on attempt 1 since `t0`, actions drained.
fn open(cfg: Config, t0: Instant) -> Machine {
    let mut m = Machine::new(cfg, t0).unwrap();
    m.handle(Event::SocketOpened { attempt: 1 }, t0);
    m.handle(Event::Ack { attempt: 1 }, t0);
    drain(&mut m);
    assert_eq!(m.status(), Status::Open);
    m
}

/// What happened on the virtual clock.
#[derive(Debug, Default)]
struct Log {
    /// When each ping went out.
    pings: Vec<Instant>,
    /// Timer fires that emitted nothing (skipped pings).
    silent_fires: usize,
    /// When the link was dropped as stale, if it was.
    stale_at: Option<Instant>,
}

/// Runs the machine like the driver does until `until`: inbound frames at
/// `frames` (sorted); the timer at `poll_timeout`; at the same instant the
/// frame first (the session reads before it fires its timer). With
/// `pong_after`, the peer answers each ping that long after it. Checks on
/// every fire that the next deadline is strictly later.
fn run(m: &mut Machine, frames: &[Instant], pong_after: Option<Duration>, until: Instant) -> Log {
    let mut log = Log::default();
    let mut frames: Vec<Instant> = frames.to_vec();
    frames.reverse(); // pop from the back: earliest first
    while m.status() == Status::Open {
        let timer = m.poll_timeout().expect("Open has a deadline");
        let frame = frames.last().copied();
        match frame {
            Some(f) if f <= timer && f <= until => {
                frames.pop();
                m.handle(Event::Activity { attempt: 1 }, f);
                assert!(drain(m).is_empty(), "a frame emitted actions");
            }
            _ if timer <= until => {
                m.handle_timeout(timer);
                let actions = drain(m);
                if m.status() == Status::Open {
                    let next = m.poll_timeout().unwrap();
                    assert!(next > timer, "the deadline did not move past {timer:?}");
                }
                match actions.as_slice() {
                    [] => log.silent_fires += 1,
                    [Action::SendPing { attempt: 1 }] => {
                        log.pings.push(timer);
                        if let Some(rtt) = pong_after {
                            let at = timer + rtt;
                            let i = frames.partition_point(|f| *f > at);
                            frames.insert(i, at);
                        }
                    }
                    [Action::SendClose { .. }, ..] => {
                        let stale = actions.iter().any(|a| {
                            matches!(
                                a,
                                Action::StatusChanged {
                                    cause: Cause::Stale,
                                    ..
                                }
                            )
                        });
                        assert!(stale, "dropped, but not as stale: {actions:?}");
                        log.stale_at = Some(timer);
                    }
                    other => panic!("unexpected actions at {timer:?}: {other:?}"),
                }
            }
            _ => break,
        }
    }
    log
}

/// A frame every second from `t0 + first` for `count` frames.
fn every_second(t0: Instant, first: Duration, count: u64) -> Vec<Instant> {
    (0..count).map(|k| t0 + first + secs(k)).collect()
}

#[test]
fn a_broker_frame_every_second_costs_no_pings_over_a_minute() {
    let t0 = Instant::now();
    // Frames on the ping's own beat (a tie at every deadline) and off it.
    for first in [secs(1), ms(300), ms(999)] {
        let mut m = open(config(true), t0);
        let frames = every_second(t0, first, 61);
        let log = run(&mut m, &frames, None, t0 + secs(60));
        assert_eq!(log.pings, [], "first frame at {first:?}");
        assert_eq!(log.stale_at, None);
        assert_eq!(m.status(), Status::Open);
        // The timer still fires about once a second, without an action.
        assert!(
            (59..=61).contains(&log.silent_fires),
            "{}",
            log.silent_fires
        );
    }
}

#[test]
fn the_default_pings_every_interval_whatever_arrives() {
    let t0 = Instant::now();
    assert!(!Config::default().ping_when_idle);
    let mut m = open(config(false), t0);
    let frames = every_second(t0, ms(300), 61);
    let log = run(&mut m, &frames, None, t0 + secs(60));
    let want: Vec<Instant> = (1..=60).map(|k| t0 + secs(k)).collect();
    assert_eq!(log.pings, want);
    assert_eq!(log.silent_fires, 0);
}

#[test]
fn a_quiet_link_pings_at_last_frame_plus_interval_then_every_interval_and_goes_stale_on_time() {
    let t0 = Instant::now();
    let cfg = config(true);
    let mut m = open(cfg.clone(), t0);
    // Frames every second up to 10.3 s, then silence (the peer answers
    // nothing, not even our pings).
    let frames = every_second(t0, ms(300), 11);
    let last = *frames.last().unwrap();
    assert_eq!(last, t0 + ms(10_300));
    let log = run(&mut m, &frames, None, t0 + secs(60));
    let want: Vec<Instant> = (1..=5).map(|k| last + cfg.ping_interval * k).collect();
    assert_eq!(log.pings, want);
    // Stale exactly at the last frame + stale_after, as without the option.
    assert_eq!(log.stale_at, Some(last + cfg.stale_after));
    assert_eq!(m.status(), Status::Reconnecting);

    // The same link with the option off: the pings keep their own beat, the
    // stale deadline is the same.
    let mut m = open(config(false), t0);
    let off = run(&mut m, &frames, None, t0 + secs(60));
    let want: Vec<Instant> = (1..=15).map(|k| t0 + secs(k)).collect();
    assert_eq!(off.pings, want);
    assert_eq!(off.stale_at, log.stale_at);
}

#[test]
fn a_quiet_link_whose_peer_answers_pings_every_interval_after_the_pong() {
    let t0 = Instant::now();
    let cfg = config(true);
    let mut m = open(cfg, t0);
    // No traffic but the pongs, 50 ms after each ping: a pong is an inbound
    // frame, so the next ping is due a ping interval after it.
    let log = run(&mut m, &[], Some(ms(50)), t0 + secs(10));
    let want: Vec<Instant> = (0..9).map(|k| t0 + secs(1) + ms(1_050) * k).collect();
    assert_eq!(log.pings, want);
    assert_eq!(log.stale_at, None);
    assert_eq!(log.silent_fires, want.len() - 1);
}

#[test]
fn the_skip_moves_the_ping_deadline_to_the_last_frame_plus_interval() {
    let t0 = Instant::now();
    let cfg = config(true);
    let mut m = open(cfg.clone(), t0);
    m.handle(Event::Activity { attempt: 1 }, t0 + ms(400));
    assert_eq!(m.poll_timeout(), Some(t0 + secs(1)));
    m.handle_timeout(t0 + secs(1));
    assert_eq!(drain(&mut m), []);
    let State::Open {
        last_activity,
        next_ping,
        ..
    } = *m.state()
    else {
        panic!("{:?}", m.state())
    };
    assert_eq!(last_activity, t0 + ms(400));
    assert_eq!(next_ping, t0 + ms(1_400));
    assert_eq!(m.poll_timeout(), Some(t0 + ms(1_400)));
    // Calling it early does nothing; at the deadline the ping goes out.
    m.handle_timeout(t0 + ms(1_399));
    assert_eq!(drain(&mut m), []);
    m.handle_timeout(t0 + ms(1_400));
    assert_eq!(drain(&mut m), [Action::SendPing { attempt: 1 }]);
    assert_eq!(m.poll_timeout(), Some(t0 + ms(2_400)));
}

#[test]
fn the_wake_probe_still_pings_at_once_on_a_busy_link() {
    let t0 = Instant::now();
    let cfg = config(true);
    let mut m = open(cfg.clone(), t0);
    m.handle(Event::Activity { attempt: 1 }, t0 + ms(500));
    m.handle(Event::Woke, t0 + ms(600));
    assert_eq!(drain(&mut m), [Action::SendPing { attempt: 1 }]);
    let State::Open {
        probe, next_ping, ..
    } = *m.state()
    else {
        panic!("{:?}", m.state())
    };
    assert_eq!(probe, Some(t0 + ms(600) + cfg.wake_probe));
    assert_eq!(next_ping, t0 + ms(1_600));
}

#[test]
fn pings_still_go_out_while_reading_is_paused() {
    // Nothing is read while paused, so no frame is seen: the ping goes out
    // a ping interval after the last frame read, like on a quiet link.
    let t0 = Instant::now();
    let mut m = open(config(true), t0);
    m.handle(Event::Activity { attempt: 1 }, t0 + ms(500));
    m.handle(Event::ReadPaused, t0 + ms(600));
    m.handle_timeout(t0 + secs(1));
    assert_eq!(drain(&mut m), []);
    assert_eq!(m.poll_timeout(), Some(t0 + ms(1_500)));
    m.handle_timeout(t0 + ms(1_500));
    assert_eq!(drain(&mut m), [Action::SendPing { attempt: 1 }]);
}
