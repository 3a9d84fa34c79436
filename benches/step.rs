//! Step cost of the core: time per event over a realistic Open-state mix —
//! inbound frames (`Activity`), pongs and frames seen by the ack predicate
//! (`Ack` while Open is plain activity), timer ticks through
//! `handle_timeout` (a ping every 30 s of virtual time), and draining
//! `poll_action` after every input.
//!
//! Run: `cargo bench --bench step`. Each sample feeds a batch of `BATCH`
//! events; divan reports the batch time and the throughput in items
//! (events) per second, so ns/event = batch time / `BATCH`.

use std::time::{Duration, Instant};

use divan::{Bencher, black_box, counter::ItemsCount};
use ws_lifecycle::fsm::{Event, Machine};
use ws_lifecycle::{Config, Status};

const BATCH: usize = 1000;

fn main() {
    divan::main();
}

/// A machine in Open at `t0`, every action drained.
fn open_machine(t0: Instant) -> Machine {
    let mut m = Machine::new(Config::default(), t0).expect("valid config");
    m.handle(Event::SocketOpened { attempt: 1 }, t0);
    m.handle(Event::Ack { attempt: 1 }, t0);
    while m.poll_action().is_some() {}
    assert_eq!(m.status(), Status::Open);
    m
}

/// One batch of the Open-state mix; returns the number of actions drained.
fn batch(m: &mut Machine, now: &mut Instant) -> usize {
    let mut drained = 0;
    for i in 0..BATCH {
        // ~50 ms between inputs; the timer fires whenever it is due.
        *now += Duration::from_millis(50);
        match m.poll_timeout() {
            Some(due) if due <= *now => m.handle_timeout(black_box(due)),
            _ if i % 4 == 0 => m.handle(black_box(Event::Ack { attempt: 1 }), *now),
            _ => m.handle(black_box(Event::Activity { attempt: 1 }), *now),
        }
        while let Some(action) = m.poll_action() {
            black_box(action);
            drained += 1;
        }
    }
    drained
}

/// Per-event cost of the steady-state Open mix, in batches of `BATCH`.
#[divan::bench]
fn open_mix(bencher: Bencher) {
    let t0 = Instant::now();
    let mut m = open_machine(t0);
    let mut now = t0;
    bencher
        .counter(ItemsCount::new(BATCH))
        .bench_local(|| black_box(batch(&mut m, &mut now)));
    assert_eq!(m.status(), Status::Open, "the mix keeps the link alive");
}

/// For contrast: the pure `fsm::step` (clones the lifecycle, returns a Vec).
#[divan::bench]
fn pure_step_activity(bencher: Bencher) {
    let t0 = Instant::now();
    let config = Config::default();
    let m = open_machine(t0);
    let lifecycle = m.lifecycle().clone();
    let at = t0 + Duration::from_secs(1);
    bencher.bench_local(|| {
        ws_lifecycle::fsm::step(
            black_box(&lifecycle),
            black_box(Event::Activity { attempt: 1 }),
            at,
            &config,
        )
    });
}
