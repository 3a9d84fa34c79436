//! The per-session footprint, as sizes the compiler knows: the figures in
//! `docs/PERFORMANCE.md` ("Memory and scale") come from here, and the
//! bounds below keep them from growing unnoticed.
//!
//! `cargo test --lib footprint -- --nocapture` prints the table.

use std::mem::size_of;

use crate::fsm::{Action, Config, Lifecycle, Machine, State};

use super::alarm::Alarm;
use super::client::{Client, Owner};
use super::events::Events;
use super::link::Link;
use super::session::Session;
use super::session_event::SessionEvent;
use super::shared::{Core, Inner, Shared};
use super::transport::connect::Socket;
use super::transport::meter::Metered;
use super::transport::tls::MaybeTls;
use super::transport::upgrade::UpgradeResponse;
use super::wake::WakeWatch;

fn rows() -> Vec<(&'static str, usize)> {
    vec![
        ("Session (the task's future)", size_of::<Session>()),
        ("  Option<Link>", size_of::<Option<Link>>()),
        (
            "    Socket (WebSocketStream<Metered<MaybeTls>>)",
            size_of::<Socket>(),
        ),
        ("    MaybeTls", size_of::<MaybeTls>()),
        (
            "    Metered<MaybeTls> (the meter around it)",
            size_of::<Metered<MaybeTls>>(),
        ),
        ("  Alarm", size_of::<Alarm>()),
        ("  WakeWatch", size_of::<WakeWatch>()),
        ("Shared (in its Arc)", size_of::<Shared>()),
        ("  Inner", size_of::<Inner>()),
        ("    Core (SessionCore)", size_of::<Core>()),
        ("      Machine", size_of::<Machine>()),
        ("        Config", size_of::<Config>()),
        ("        Lifecycle", size_of::<Lifecycle>()),
        ("        State", size_of::<State>()),
        ("        Action (queue slot)", size_of::<Action>()),
        (
            "    Option<UpgradeResponse>",
            size_of::<Option<UpgradeResponse>>(),
        ),
        ("    SessionEvent (event slot)", size_of::<SessionEvent>()),
        ("Owner (in its Arc)", size_of::<Owner>()),
        ("Client", size_of::<Client>()),
        ("Events", size_of::<Events>()),
    ]
}

/// The bounds behind the figures in `docs/PERFORMANCE.md`: a field added
/// to the session or the shared state must be paid for somewhere else (or
/// the table updated).
#[test]
fn the_per_session_structures_stay_within_the_reported_sizes() {
    // The machine moved from the task into the shared state (issue 17):
    // together they are no bigger than before (704 + 552).
    assert!(size_of::<Session>() <= 536, "{}", size_of::<Session>());
    assert!(size_of::<Shared>() <= 720, "{}", size_of::<Shared>());
    let both = size_of::<Session>() + size_of::<Shared>();
    assert!(both <= 704 + 552, "{both}");
    assert!(size_of::<Machine>() <= 160, "{}", size_of::<Machine>());
}

#[test]
fn print_the_footprint() {
    for (name, bytes) in rows() {
        println!("{name:<50} {bytes:>5}");
    }
}

#[test]
fn print_the_fields() {
    use crate::fsm::outbound::Ledger;
    use crate::fsm::session::Disconnects;
    use crate::fsm::{Cause, CloseReason, Status};
    use async_tungstenite::tungstenite::Utf8Bytes;
    use async_tungstenite::tungstenite::protocol::CloseFrame;
    use std::collections::VecDeque;
    let rows: Vec<(&str, usize)> = vec![
        ("Option<CloseReason>", size_of::<Option<CloseReason>>()),
        (
            "Option<(Status, Cause)>",
            size_of::<Option<(Status, Cause)>>(),
        ),
        ("Cause", size_of::<Cause>()),
        ("Option<(u16, String)>", size_of::<Option<(u16, String)>>()),
        ("Disconnects", size_of::<Disconnects>()),
        ("Ledger<Utf8Bytes>", size_of::<Ledger<Utf8Bytes>>()),
        ("Option<CloseFrame>", size_of::<Option<CloseFrame>>()),
        ("VecDeque<String>", size_of::<VecDeque<String>>()),
        ("Option<Waker>", size_of::<Option<std::task::Waker>>()),
        ("event_listener::Event", size_of::<event_listener::Event>()),
        ("std::sync::Mutex<()>", size_of::<std::sync::Mutex<()>>()),
        ("Option<Instant>", size_of::<Option<std::time::Instant>>()),
        ("async_io::Timer", size_of::<async_io::Timer>()),
        ("Upgrade", size_of::<super::transport::upgrade::Upgrade>()),
    ];
    for (name, bytes) in rows {
        println!("{name:<50} {bytes:>5}");
    }
}
