//! Steady-state Open events allocate nothing.
//!
//! A counting global allocator sees every thread of its test binary, so this
//! test has a binary of its own, and it counts only on the thread that has
//! switched counting on (the test harness's own threads may allocate freely).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use ws_lifecycle::fsm::{Action, Event, Machine};
use ws_lifecycle::{Config, Status};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    // Per thread, so tests running in parallel cannot add to each other's count.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the allocator may run while this thread's locals are torn down.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to `System`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Counts the allocations `f` makes on this thread.
fn allocations_in<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let start = ALLOCATIONS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (ALLOCATIONS.with(Cell::get) - start, r)
}

#[test]
fn the_counter_sees_allocations() {
    let (n, v) = allocations_in(|| vec![1u8; 64]);
    assert!(n >= 1, "the counting allocator is not active");
    drop(v);
}

#[test]
fn steady_state_open_events_allocate_nothing() {
    let t0 = Instant::now();
    let mut m = Machine::new(Config::default(), t0).unwrap();
    m.handle(Event::SocketOpened { attempt: 1 }, t0);
    m.handle(Event::Ack { attempt: 1 }, t0 + Duration::from_millis(20));
    while m.poll_action().is_some() {}
    assert_eq!(m.status(), Status::Open);

    const EVENTS: usize = 10_000;
    let (allocations, (pings, other)) = allocations_in(|| {
        let mut now = t0 + Duration::from_secs(1);
        let (mut pings, mut other) = (0usize, 0usize);
        for i in 0..EVENTS {
            // ~0.3 s between inputs: inbound frames, some of them pongs or
            // frames the driver runs through the ack predicate, and the
            // timer whenever it is due.
            now += Duration::from_millis(250 + (i as u64 % 7) * 20);
            match m.poll_timeout() {
                Some(due) if due <= now => m.handle_timeout(due),
                _ if i % 5 == 0 => m.handle(Event::Ack { attempt: 1 }, now),
                _ => m.handle(Event::Activity { attempt: 1 }, now),
            }
            while let Some(a) = m.poll_action() {
                match a {
                    Action::SendPing { attempt: 1 } => pings += 1,
                    _ => other += 1,
                }
            }
        }
        (pings, other)
    });
    eprintln!("{EVENTS} steady-state events: {pings} pings, {allocations} allocations");
    assert_eq!(m.status(), Status::Open);
    assert_eq!(other, 0, "only pings in steady state");
    assert!(pings >= 90, "timer ticks were exercised: {pings} pings");
    assert_eq!(allocations, 0, "steady-state Open events allocated");
}

/// With `ping_when_idle`, skipped pings (busy stretches) and sent ones
/// (quiet stretches) allocate nothing either.
#[test]
fn ping_when_idle_allocates_nothing() {
    let t0 = Instant::now();
    let cfg = Config {
        ping_interval: Duration::from_secs(1),
        stale_after: Duration::from_secs(10),
        ping_when_idle: true,
        ..Config::default()
    };
    let mut m = Machine::new(cfg, t0).unwrap();
    m.handle(Event::SocketOpened { attempt: 1 }, t0);
    m.handle(Event::Ack { attempt: 1 }, t0);
    while m.poll_action().is_some() {}

    const STEPS: usize = 10_000;
    let (allocations, (pings, skips, other)) = allocations_in(|| {
        let mut now = t0;
        let (mut pings, mut skips, mut other) = (0usize, 0usize, 0usize);
        for i in 0..STEPS {
            now += Duration::from_millis(300);
            // Busy for 20 steps (a frame every 0.3 s), quiet for the next 20
            // (the peer only answers our pings).
            let busy = (i / 20) % 2 == 0;
            while let Some(due) = m.poll_timeout().filter(|d| *d <= now) {
                m.handle_timeout(due);
                let mut pinged = false;
                while let Some(a) = m.poll_action() {
                    match a {
                        Action::SendPing { attempt: 1 } => pinged = true,
                        _ => other += 1,
                    }
                }
                if pinged {
                    pings += 1;
                    m.handle(Event::Activity { attempt: 1 }, due); // the pong
                } else {
                    skips += 1;
                }
            }
            if busy {
                m.handle(Event::Activity { attempt: 1 }, now);
            }
        }
        (pings, skips, other)
    });
    eprintln!("{STEPS} steps: {pings} pings, {skips} skipped, {allocations} allocations");
    assert_eq!(m.status(), Status::Open);
    assert_eq!(other, 0, "only pings in steady state");
    assert!(pings >= 100 && skips >= 100, "{pings} pings, {skips} skips");
    assert_eq!(allocations, 0, "ping_when_idle allocated");
}
