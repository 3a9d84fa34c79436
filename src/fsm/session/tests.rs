//! The session core's decisions, without sockets: what the consumer sees
//! and in which order, the read pause, the ack hand-off, hand-backs.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::buffer::Notice;
use super::core::{SessionCore, Watch};
use crate::fsm::outbound::{Frame, Ledger, SendErrorKind, Sent};
use crate::fsm::{Action, CloseReason, Config, Event, Failure, Status};

/// Watches nothing.
struct Unwatched;

impl Watch for Unwatched {
    fn started(&mut self, _: &Config, _: Instant) {}
    fn input(&mut self, _: &Event, _: Instant) {}
    fn action(&mut self, _: &Action) {}
}

/// Sees every input and action, as the recorder and the hook do.
#[derive(Default)]
struct Seen(Vec<String>);

impl Watch for Seen {
    fn started(&mut self, config: &Config, _: Instant) {
        self.0.push(format!("started seed {}", config.seed));
    }
    fn input(&mut self, event: &Event, _: Instant) {
        self.0.push(format!("input {}", event.name()));
    }
    fn action(&mut self, action: &Action) {
        self.0.push(format!("action {}", action_name(action)));
    }
}

fn action_name(action: &Action) -> String {
    match action {
        Action::StatusChanged { to, .. } => format!("status {to}"),
        other => format!("{other:?}")
            .split([' ', '{'])
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

type Core<W = Unwatched> = SessionCore<String, &'static str, W>;

fn core_with<W: Watch>(capacity: usize, events: usize, watch: Option<W>) -> Core<W> {
    let config = Arc::new(Config {
        seed: 7,
        ..Config::default()
    });
    let ledger = Ledger::new(capacity, None);
    // The session's own seed differs from the shared config's: the watch
    // must be told the one this session draws from.
    SessionCore::new(config, 11, ledger, events, watch.map(Box::new), t0())
}

fn core(events: usize) -> Core {
    core_with(8, events, None)
}

pub(super) fn t0() -> Instant {
    // One base for every test: the machine never reads a clock.
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn at(ms: u64) -> Instant {
    t0() + Duration::from_millis(ms)
}

/// Drains what the driver would see, doing its part: `DropTransport` is
/// followed by `link_dropped`.
fn drain<W: Watch>(core: &mut Core<W>, now: Instant) -> Vec<String> {
    let mut seen = Vec::new();
    while let Some(action) = core.poll_action(now) {
        if matches!(action, Action::DropTransport { .. }) {
            core.link_dropped(now);
        }
        seen.push(action_name(&action));
    }
    seen
}

/// Starts the session and takes attempt 1 to Open.
fn open<W: Watch>(core: &mut Core<W>) {
    core.start(at(0)).unwrap();
    drain(core, at(0));
    core.opened(at(1));
    core.handle(Event::SocketOpened { attempt: 1 }, at(1));
    drain(core, at(1));
    core.acked(1, json!({"type": "hello_ack"}), vec!["sub".into()], at(2));
    drain(core, at(2));
    assert_eq!(core.status(), Status::Open);
}

/// Everything the consumer would read now, as short names.
fn read<W: Watch>(core: &mut Core<W>) -> Vec<String> {
    let mut hand = VecDeque::new();
    core.consumer_takes(&mut hand);
    let names = hand.iter().map(notice_name).collect();
    core.consumer_holds(0, 0, 0, at(50));
    names
}

fn notice_name(notice: &Notice<&'static str>) -> String {
    match notice {
        Notice::Status { to, .. } => format!("status {to}"),
        Notice::Acked { attempt, ack } => format!("acked {attempt} {ack}"),
        Notice::Disconnected { code, .. } => format!("disconnected {code}"),
        Notice::ReconnectScheduled { attempt, .. } => format!("scheduled {attempt}"),
        Notice::Unsent(m) => format!("unsent {m:?}"),
        Notice::Lagged { missed } => format!("lagged {missed}"),
        Notice::Closed { reason, unsent } => format!("closed {reason} {unsent:?}"),
        Notice::Json { text, .. } => format!("json {text}"),
        Notice::Message(v) => format!("message {v}"),
        Notice::Text(t) => format!("text {t}"),
        Notice::Binary(b) => format!("binary {}", b.len()),
        Notice::InvalidFrame { detail, .. } => format!("invalid {detail}"),
        Notice::Report(x) => format!("report {x}"),
    }
}

/// Every frame the ledger gives, as short names, all taken by the
/// transport (which counts text frames: the hello and after-ack ones too).
fn frames<W: Watch>(core: &mut Core<W>) -> Vec<String> {
    let mut out = Vec::new();
    let mut texts = 0;
    while let Some(frame) = core.ledger_mut().poll_frame() {
        out.push(match frame {
            Frame::Hello(t) => {
                texts += 1;
                format!("hello {t}")
            }
            Frame::Ping => "ping".into(),
            Frame::AfterAck(t) => {
                texts += 1;
                format!("after-ack {t}")
            }
            Frame::Message(m) => {
                texts += 1;
                m
            }
            Frame::Close { code, .. } => format!("close {code}"),
        });
    }
    core.traffic(texts, 0, &Default::default(), at(60));
    out
}

#[test]
fn open_and_its_ack_are_never_folded_into_lagged() {
    let mut core = core(1);
    core.start(at(0)).unwrap();
    drain(&mut core, at(0));
    core.opened(at(1));
    core.handle(Event::SocketOpened { attempt: 1 }, at(1));
    drain(&mut core, at(1));
    // The buffer (capacity 1) is full: the driver's report is counted,
    // but Open and its ack always go in, after the Lagged report.
    core.deliver(Notice::Report("upgraded"), at(1));
    core.acked(1, json!({"type": "hello_ack"}), Vec::new(), at(2));
    drain(&mut core, at(2));
    assert_eq!(
        read(&mut core),
        [
            "status awaiting_ack",
            "lagged 1",
            "status open",
            r#"acked 1 {"type":"hello_ack"}"#
        ]
    );
    assert_eq!(core.last_ack(), Some(json!({"type": "hello_ack"})));
}

#[test]
fn the_read_pause_is_the_machines_and_follows_the_buffer() {
    let mut core = core(2);
    open(&mut core);
    let paused = |core: &Core| core.machine().unwrap().read_paused();
    // status open + acked fill the buffer: reading pauses.
    assert_eq!(core.events_room(), 0);
    assert!(paused(&core));
    // The consumer takes both and still holds one: room, reading resumes.
    let mut hand = VecDeque::new();
    core.consumer_takes(&mut hand);
    core.consumer_holds(1, hand.capacity(), 0, at(10));
    assert_eq!(core.events_room(), 1);
    assert!(!paused(&core));
    // A frame fills it again.
    core.deliver(Notice::Text("m".into()), at(11));
    assert!(paused(&core));
    // Nobody reads any more: reading never pauses again.
    core.consumer_dropped(hand, at(12));
    assert!(!paused(&core));
    assert_eq!(core.events_room(), usize::MAX);
    core.deliver(Notice::Text("m".into()), at(13));
    assert!(!paused(&core));
}

#[test]
fn the_pause_starts_when_the_buffer_fills_and_ends_when_the_consumer_makes_room() {
    let mut core = core(2);
    open(&mut core);
    // Open and Acked filled it at the ack (2 ms).
    let since = |core: &Core| core.machine().unwrap().lifecycle().read_paused_since();
    assert_eq!(since(&core), Some(at(2)));
    // The consumer takes both but holds both: still no room, still paused.
    let mut hand = VecDeque::new();
    core.consumer_takes(&mut hand);
    core.consumer_holds(2, hand.capacity(), 0, at(4_000));
    assert_eq!(since(&core), Some(at(2)));
    core.consumer_holds(0, hand.capacity(), 0, at(5_000));
    assert_eq!(since(&core), None);
}

#[test]
fn the_ack_is_one_input_after_ack_frames_then_the_queue_then_sends() {
    let mut core = core_with(8, 16, Some(Seen::default()));
    core.start(at(0)).unwrap();
    drain(&mut core, at(0));
    core.opened(at(1));
    core.handle(Event::SocketOpened { attempt: 1 }, at(1));
    drain(&mut core, at(1));
    core.hello("hi".into());
    // Not open yet: a send is refused (no queue configured).
    let refused = core.send("early".into()).unwrap_err();
    assert_eq!(refused.kind, SendErrorKind::NotOpen(Status::AwaitingAck));
    core.acked(
        1,
        json!({"ok": true}),
        vec!["sub-a".into(), "sub-b".into()],
        at(2),
    );
    // Open is visible with the flush already in place: a send now goes
    // after the after-ack frames.
    let actions = drain(&mut core, at(2));
    // `FlushQueue` is the core's own business: the driver sees Open.
    assert_eq!(actions, ["status open"]);
    assert_eq!(core.send("m1".into()).unwrap(), Sent::Accepted);
    assert_eq!(
        frames(&mut core),
        ["hello hi", "after-ack sub-a", "after-ack sub-b", "m1"]
    );
    assert_eq!(core.ledger().written(), 1);
}

#[test]
fn an_ack_for_an_older_attempt_hands_nothing_over() {
    let mut core = core(16);
    open(&mut core);
    core.handle(Event::TransportLost { attempt: 1 }, at(10));
    drain(&mut core, at(10));
    // A late ack of attempt 1 while attempt 2 is not up: ignored, and its
    // after-ack frames never reach the ledger.
    core.acked(1, json!({"late": 1}), vec!["stale".into()], at(11));
    assert!(drain(&mut core, at(11)).is_empty());
    assert!(frames(&mut core).is_empty());
    assert_eq!(core.last_ack(), Some(json!({"type": "hello_ack"})));
}

#[test]
fn a_lost_link_hands_back_what_it_never_wrote_oldest_first() {
    let mut core = core(16);
    open(&mut core);
    read(&mut core);
    for m in ["a", "b", "c"] {
        core.send(m.into()).unwrap();
    }
    // "after-ack sub" and "a" are taken; "b" is in flight, "c" buffered.
    assert_eq!(
        core.ledger_mut().poll_frame(),
        Some(Frame::AfterAck("sub".into()))
    );
    assert_eq!(
        core.ledger_mut().poll_frame(),
        Some(Frame::Message("a".into()))
    );
    assert_eq!(
        core.ledger_mut().poll_frame(),
        Some(Frame::Message("b".into()))
    );
    core.traffic(2, 0, &Default::default(), at(20));
    core.handle(Event::TransportLost { attempt: 1 }, at(21));
    let actions = drain(&mut core, at(21));
    assert_eq!(actions[0], "DropTransport");
    let seen = read(&mut core);
    assert_eq!(seen[0], r#"unsent ["b", "c"]"#, "{seen:?}");
    assert_eq!(core.ledger().written(), 1);
    // The failure is in the stats.
    let stats = core.stats(at(22));
    assert_eq!(
        stats.last_failure.map(|f| f.failure),
        Some(Failure::TransportLost)
    );
    assert_eq!((stats.attempts, stats.opens), (1, 1));
}

#[test]
fn a_close_before_the_start_waits_for_the_machine_and_refuses_sends_at_once() {
    let mut core = core_with(8, 16, Some(Seen::default()));
    core.close(4000, "bye".into(), at(0));
    let refused = core.send("late".into()).unwrap_err();
    assert_eq!(refused.kind, SendErrorKind::NotOpen(Status::Closing));
    assert_eq!(core.status(), Status::Connecting);
    assert_eq!(core.start(at(1)), Ok(true));
    assert_eq!(core.start(at(2)), Ok(false), "starts once");
    let actions = drain(&mut core, at(1));
    assert_eq!(actions[0], "Connect");
    assert_eq!(core.machine_closed(), Some(CloseReason::Requested));
    core.ended(CloseReason::Requested, at(3));
    assert!(core.is_finished());
    assert_eq!(core.status(), Status::Closed);
    assert_eq!(
        read(&mut core).last().unwrap(),
        "closed closed by the caller []"
    );
}

#[test]
fn the_watch_sees_the_seed_every_input_and_every_action_then_nothing() {
    let mut core = core_with(8, 16, Some(Seen::default()));
    open(&mut core);
    // A timeout with nothing due is not an input worth a record.
    core.handle(Event::Timeout, at(3));
    let seen = core.watch_log();
    assert_eq!(seen[0], "started seed 11");
    assert!(seen.contains(&"input SocketOpened".to_owned()), "{seen:?}");
    assert!(seen.contains(&"input Ack".to_owned()), "{seen:?}");
    assert!(seen.contains(&"action status open".to_owned()), "{seen:?}");
    assert!(!seen.contains(&"input Timeout".to_owned()), "{seen:?}");
}

#[test]
fn when_the_session_ends_unwritten_messages_go_to_closed_unless_a_close_was_asked_for() {
    let mut core = core(16);
    open(&mut core);
    core.send("x".into()).unwrap();
    core.ended(CloseReason::GaveUp { attempts: 3 }, at(9));
    let seen = read(&mut core);
    assert!(seen.last().unwrap().ends_with(r#"["x"]"#), "{seen:?}");

    let mut core = self::core(16);
    open(&mut core);
    core.send("y".into()).unwrap();
    core.close(1000, String::new(), at(8));
    core.ended(CloseReason::Requested, at(9));
    assert!(read(&mut core).last().unwrap().ends_with("[]"));
    assert_eq!(core.take_returned(), ["y"]);
    assert!(core.take_returned().is_empty(), "once");
}

impl Core<Seen> {
    fn watch_log(&self) -> Vec<String> {
        self.watch_ref().map(|w| w.0.clone()).unwrap_or_default()
    }
}

#[test]
fn once_nobody_reads_a_lost_links_messages_wait_for_close_instead_of_an_unsent_event() {
    let mut core = core(16);
    open(&mut core);
    core.send("a".into()).unwrap();
    core.consumer_dropped(VecDeque::new(), at(5));
    core.handle(Event::TransportLost { attempt: 1 }, at(6));
    drain(&mut core, at(6));
    assert_eq!(core.take_returned(), ["a"]);
    // While someone reads, the same loss is an `Unsent` event instead.
    let mut core = self::core(16);
    open(&mut core);
    read(&mut core);
    core.send("b".into()).unwrap();
    core.handle(Event::TransportLost { attempt: 1 }, at(6));
    drain(&mut core, at(6));
    assert!(core.take_returned().is_empty());
    assert_eq!(read(&mut core)[0], r#"unsent ["b"]"#);
}

#[test]
fn the_room_is_the_capacity_less_what_is_buffered_and_in_hand() {
    let mut buffer = super::buffer::EventBuffer::<&'static str>::new(5);
    assert_eq!((buffer.capacity(), buffer.room()), (5, 5));
    buffer.push(Notice::Text("a".into()));
    buffer.push(Notice::Text("b".into()));
    assert_eq!(buffer.room(), 3);
    buffer.in_hand(1, 0);
    assert_eq!(buffer.room(), 2);
    assert!(buffer.allocated() >= 2);
    let mut hand = VecDeque::new();
    buffer.take_all(&mut hand);
    buffer.in_hand(hand.len(), hand.capacity());
    assert_eq!(buffer.room(), 3);
    assert!(buffer.allocated() >= hand.capacity());
    assert!(buffer.is_alive());
    buffer.dropped();
    assert!(!buffer.is_alive());
    assert_eq!(buffer.room(), usize::MAX);
}

#[test]
fn a_send_after_a_reconnect_now_is_not_accepted_for_the_connection_going_away() {
    let mut core = core(16);
    open(&mut core);
    // The caller's reconnect-now reaches the machine at once; the session
    // carries out its `DropTransport` only when it next drains.
    core.reconnect_now(at(5));
    assert_ne!(core.status(), Status::Open);
    let refused = core.send("late".into()).unwrap_err();
    assert_eq!(refused.kind, SendErrorKind::NotOpen(core.status()));
    assert_eq!(refused.message.as_deref(), Some("late"));
    drain(&mut core, at(5));
    assert!(core.ledger().queued() == 0 && frames(&mut core).is_empty());
}

#[test]
fn the_getters_follow_the_session_the_handles_read_them_from() {
    let mut core = core(16);
    // Before the start: Connecting, no deadline, nothing entered yet.
    assert_eq!(
        (core.status(), core.poll_timeout()),
        (Status::Connecting, None)
    );
    assert_eq!(core.closed_reason(), None);
    open(&mut core);
    assert_eq!(core.attempt(), 1);
    assert_eq!(
        (
            core.entered(Status::AwaitingAck),
            core.entered(Status::Open)
        ),
        (1, 1)
    );
    assert_eq!(core.entered(Status::Reconnecting), 0);
    assert_eq!(core.entered(Status::Closed), 0);
    assert!(core.poll_timeout().is_some_and(|t| t > at(2)));
    assert_eq!(core.last_disconnect(), None);
    // The consumer is told about news once.
    assert!(core.take_wakeups().consumer);
    assert!(!core.take_wakeups().consumer);
    // The broker closes: the disconnect is kept for the next hello.
    let (code, reason) = (4000, "maintenance".to_owned());
    core.handle(
        Event::PeerClosed {
            attempt: 1,
            code,
            reason,
        },
        at(10),
    );
    drain(&mut core, at(10));
    assert_eq!(
        core.last_disconnect(),
        Some((4000, "maintenance".to_owned()))
    );
    assert_eq!(core.status(), Status::Reconnecting);
    assert_eq!(core.entered(Status::Reconnecting), 1);
    assert!(core.take_wakeups().consumer);
    // The retry: attempt 2 starts.
    let retry = core.poll_timeout().unwrap();
    core.handle(Event::Timeout, retry);
    drain(&mut core, retry);
    assert_eq!((core.status(), core.attempt()), (Status::Connecting, 2));
    assert_eq!(core.entered(Status::Connecting), 1);
    // The caller closes while connecting: Closed at once, for that reason.
    core.close(1000, String::new(), retry);
    drain(&mut core, retry);
    assert_eq!(core.machine_closed(), Some(CloseReason::Requested));
    assert_eq!(core.closed_reason(), Some(CloseReason::Requested));
    assert!(!core.is_finished());
    assert_eq!(core.poll_timeout(), None);
}

#[test]
fn a_session_ended_while_open_reads_closed_for_the_reason_given() {
    // The session future dropped while the machine is Open.
    let mut core = core(16);
    open(&mut core);
    assert!(!core.is_finished());
    core.ended(CloseReason::Requested, at(7));
    assert!(core.is_finished());
    assert_eq!(core.status(), Status::Closed);
    assert_eq!(
        core.machine_closed(),
        None,
        "the machine itself never closed"
    );
    assert_eq!(core.closed_reason(), Some(CloseReason::Requested));
    assert_eq!(core.entered(Status::Closed), 1);
}

#[test]
fn the_stats_count_what_the_transport_took_read_and_the_ping_round_trip() {
    let mut core = core(16);
    open(&mut core);
    let stats = core.stats(at(3));
    assert_eq!(
        stats.connected_for,
        Some(Duration::from_millis(2)),
        "since the open"
    );
    // A ping goes out: its tag, then the transport takes it (at 100 ms),
    // then its pong is read (at 130 ms): one round trip of 30 ms.
    core.handle(Event::Woke, at(90));
    drain(&mut core, at(90));
    assert!(frames(&mut core).contains(&"ping".to_owned()));
    let tag = core.ping_tag();
    let took = super::tally::Traffic {
        bytes_out: 6,
        ..Default::default()
    };
    core.traffic(0, 1, &took, at(100));
    let read = super::tally::Traffic {
        bytes_in: 40,
        frames_in: 2,
        pong: Some(tag),
        ..Default::default()
    };
    core.traffic(0, 0, &read, at(130));
    let stats = core.stats(at(131));
    assert_eq!(stats.latency, Some(Duration::from_millis(30)));
    assert_eq!(
        (stats.bytes_in, stats.bytes_out, stats.messages_in),
        (40, 6, 2)
    );
    // A pong with no ping written before it is no sample.
    let tag = core.ping_tag();
    let early = super::tally::Traffic {
        pong: Some(tag),
        ..Default::default()
    };
    core.traffic(0, 0, &early, at(140));
    assert_eq!(core.stats(at(141)).latency_samples, 1);
}

#[test]
fn a_failure_has_its_default_verdict_and_the_connect_deadline_is_named() {
    let mut core = core(16);
    core.start(at(0)).unwrap();
    drain(&mut core, at(0));
    // Nothing is due yet; at the connect deadline it is the connect timer.
    let deadline = core.poll_timeout().unwrap();
    assert_eq!(core.connect_deadline_due(at(1)), None);
    let timeout = Config::default().connect_timeout;
    assert_eq!(core.connect_deadline_due(deadline), Some((1, timeout)));
    let (failure, verdict) = core.failure(&Event::Timeout, deadline).unwrap();
    assert_eq!(
        failure,
        Failure::Connect(crate::fsm::ConnectFailure::Deadline)
    );
    assert_eq!(verdict, crate::fsm::Verdict::Retry);
    assert_eq!(core.failure(&Event::Timeout, at(1)), None);
    assert_eq!(core.failure(&Event::Activity { attempt: 1 }, at(1)), None);
    // Once open, no connect deadline runs.
    core.opened(at(2));
    core.handle(Event::SocketOpened { attempt: 1 }, at(2));
    drain(&mut core, at(2));
    assert_eq!(core.connect_deadline_due(deadline), None);
}

#[test]
fn room_freed_for_senders_and_the_capacities_are_reported() {
    let mut core = core_with(1, 4, None::<Unwatched>);
    assert_eq!(core.events_capacity(), 4);
    open(&mut core);
    assert!(core.events_allocated() >= 2, "open and acked are buffered");
    core.take_wakeups();
    core.send("a".into()).unwrap();
    let full = core.send("b".into()).unwrap_err();
    assert_eq!(full.kind, SendErrorKind::Full);
    assert!(!core.take_wakeups().room);
    // The transport takes "sub" and "a": room again for a sender waiting.
    frames(&mut core);
    assert!(core.take_wakeups().room);
}

#[test]
fn ping_tags_count_up_from_zero() {
    let mut core = core(16);
    assert_eq!(
        [core.ping_tag(), core.ping_tag(), core.ping_tag()],
        [0, 1, 2]
    );
}

#[test]
fn handed_back_messages_hold_their_room_until_the_consumer_takes_them_or_goes() {
    // Capacity 2: two messages handed back in `Unsent` still count.
    let mut core = core_with(2, 16, None::<Unwatched>);
    open(&mut core);
    read(&mut core);
    core.send("a".into()).unwrap();
    core.send("b".into()).unwrap();
    core.handle(Event::TransportLost { attempt: 1 }, at(10));
    drain(&mut core, at(10));
    let mut hand = VecDeque::new();
    core.consumer_takes(&mut hand);
    assert!(
        hand.iter()
            .any(|n| matches!(n, Notice::Unsent(m) if m.len() == 2))
    );
    // Held by the consumer: a new send (queued for the next connection, or
    // refused) finds no room yet.
    let retry = core.poll_timeout().unwrap();
    core.handle(Event::Timeout, retry);
    drain(&mut core, retry);
    core.opened(retry);
    core.handle(Event::SocketOpened { attempt: 2 }, retry);
    drain(&mut core, retry);
    core.acked(2, json!({}), Vec::new(), retry);
    drain(&mut core, retry);
    assert_eq!(core.send("c".into()).unwrap_err().kind, SendErrorKind::Full);
    // The consumer hands the `Unsent` out: its two slots are free again.
    core.consumer_holds(hand.len() - 1, hand.capacity(), 2, retry);
    assert_eq!(core.send("c".into()).unwrap(), Sent::Accepted);
}

#[test]
fn a_dropped_stream_gives_its_hand_backs_to_close() {
    let mut core = core(16);
    open(&mut core);
    read(&mut core);
    core.send("a".into()).unwrap();
    core.handle(Event::TransportLost { attempt: 1 }, at(10));
    drain(&mut core, at(10));
    // The consumer took the `Unsent` into its hand and then went away; the
    // session then ends by itself with "b" unwritten.
    let mut hand = VecDeque::new();
    core.consumer_takes(&mut hand);
    let retry = core.poll_timeout().unwrap();
    core.handle(Event::Timeout, retry);
    drain(&mut core, retry);
    let closed = Notice::Closed {
        reason: CloseReason::Requested,
        unsent: vec!["b".to_owned()],
    };
    hand.push_back(closed);
    core.consumer_dropped(hand, retry);
    assert_eq!(core.take_returned(), ["a", "b"]);
}

#[test]
fn the_stats_clocks_follow_the_status_and_the_link() {
    let mut core = core(16);
    open(&mut core);
    // In Open since the ack at 2 ms; connected since the open at 1 ms.
    let stats = core.stats(at(50));
    assert_eq!(stats.in_status_for, Duration::from_millis(48));
    assert_eq!(stats.connected_for, Some(Duration::from_millis(49)));
    core.handle(Event::TransportLost { attempt: 1 }, at(60));
    drain(&mut core, at(60));
    let stats = core.stats(at(70));
    assert_eq!(stats.connected_for, None, "the link is gone");
    assert_eq!(stats.in_status_for, Duration::from_millis(10));
}
