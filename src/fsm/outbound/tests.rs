//! The ledger without a socket: a model link takes the frames a write pass
//! gives it and reports how many the transport took, as the driver does.

use std::collections::VecDeque;

use proptest::prelude::*;

use super::*;
use crate::fsm::Status;

/// A link as the ledger sees it: frames given to it wait in the layer
/// below (`buffered`, as tungstenite holds them) until the transport takes
/// them whole, `budget` frames at most.
#[derive(Default)]
struct Link {
    budget: usize,
    buffered: VecDeque<Frame<String>>,
    on_wire: Vec<Frame<String>>,
    /// The close frame was given: nothing may follow it.
    closed: bool,
}

impl Link {
    fn taking(budget: usize) -> Self {
        Link {
            budget,
            ..Link::default()
        }
    }

    /// One write pass: every frame the ledger has, then what the
    /// transport takes of them.
    fn pass(&mut self, ledger: &mut Ledger<String>) {
        while let Some(frame) = ledger.poll_frame() {
            self.give(frame);
        }
        self.drain(ledger);
    }

    /// A frame handed to the layer below; none may follow a close frame.
    fn give(&mut self, frame: Frame<String>) {
        assert!(!self.closed, "{frame:?} after the close frame");
        self.closed = matches!(frame, Frame::Close { .. });
        self.buffered.push_back(frame);
    }

    /// The transport takes frames, in order, while its budget lasts.
    fn drain(&mut self, ledger: &mut Ledger<String>) {
        let mut text = 0;
        while self.budget > 0 {
            let Some(frame) = self.buffered.pop_front() else {
                break;
            };
            self.budget -= 1;
            if matches!(
                frame,
                Frame::Hello(_) | Frame::AfterAck(_) | Frame::Message(_)
            ) {
                text += 1;
            }
            self.on_wire.push(frame);
        }
        ledger.frames_taken(text);
    }

    fn texts(&self) -> Vec<&str> {
        self.on_wire
            .iter()
            .filter_map(|f| match f {
                Frame::Hello(t) | Frame::AfterAck(t) | Frame::Message(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.on_wire
            .iter()
            .map(|f| match f {
                Frame::Hello(_) => "hello",
                Frame::Ping => "ping",
                Frame::AfterAck(_) => "after-ack",
                Frame::Message(_) => "message",
                Frame::Close { .. } => "close",
            })
            .collect()
    }
}

fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| (*t).to_owned()).collect()
}

fn queue(n: usize) -> Option<(usize, Overflow)> {
    Some((n, Overflow::RejectNew))
}

fn open(capacity: usize, queue: Option<(usize, Overflow)>) -> Ledger<String> {
    let mut out = Ledger::new(capacity, queue);
    out.opened();
    out.acked(Vec::new());
    out
}

fn send_all(out: &mut Ledger<String>, texts: &[&str]) {
    for t in texts {
        assert_eq!(
            out.send((*t).to_owned(), Status::Open).unwrap(),
            Sent::Accepted
        );
    }
}

#[test]
fn a_message_is_written_only_once_the_transport_took_its_frame() {
    let mut out = open(8, None);
    send_all(&mut out, &["a", "b", "c"]);
    let mut link = Link::taking(1);
    link.pass(&mut out);
    // All three given to the link; only "a" reached the transport.
    assert_eq!(out.written(), 1);
    assert_eq!(link.texts(), ["a"]);
    // The link dies: b and c come back, in order, never a.
    assert_eq!(out.lost(true), Some(strings(&["b", "c"])));
    assert_eq!(out.written() + 2, 3);
}

#[test]
fn frames_taken_after_the_pass_count_as_written() {
    let mut out = open(8, None);
    send_all(&mut out, &["a", "b"]);
    let mut link = Link::taking(0);
    link.pass(&mut out);
    assert_eq!(out.written(), 0);
    // The last-chance flush before a drop completes "a".
    link.budget = 1;
    link.drain(&mut out);
    assert_eq!(out.written(), 1, "a completed during the last flush");
    assert_eq!(out.lost(true), Some(strings(&["b"])));
}

#[test]
fn hello_and_ping_go_first_and_the_close_frame_last() {
    let mut out = Ledger::<String>::new(8, None);
    out.opened();
    out.hello("hi".into());
    out.acked(Vec::new());
    send_all(&mut out, &["a"]);
    out.ping();
    out.close(1000, String::new());
    assert!(out.has_frame());
    let mut link = Link::taking(10);
    link.pass(&mut out);
    assert_eq!(link.kinds(), ["hello", "ping", "message", "close"]);
    assert_eq!(out.written(), 1, "the hello is not a caller's message");
    assert_eq!(out.frames_written(), 2);
    assert!(!out.has_frame());
}

#[test]
fn the_close_frame_can_be_taken_for_a_last_chance_write_and_nothing_follows_it() {
    let mut out = open(8, None);
    send_all(&mut out, &["a"]);
    out.close(1002, "protocol error".into());
    assert_eq!(out.take_close(), Some((1002, "protocol error".to_owned())));
    assert_eq!(out.take_close(), None);
    // Neither the message, nor a ping, nor a second close frame.
    out.ping();
    out.close(1000, String::new());
    assert!(!out.has_frame());
    let mut link = Link::taking(10);
    link.pass(&mut out);
    assert!(link.on_wire.is_empty(), "{:?}", link.kinds());
    assert_eq!(out.lost(true), Some(strings(&["a"])));
    // The next link starts afresh.
    out.opened();
    out.ping();
    assert!(out.has_frame());
}

#[test]
fn everything_held_back_is_capped_at_the_send_capacity() {
    let mut out = open(2, None);
    send_all(&mut out, &["a", "b"]);
    let full = out.send("c".into(), Status::Open).unwrap_err();
    assert_eq!(full.kind, SendErrorKind::Full);
    assert_eq!(full.message.as_deref(), Some("c"));
    // Lost, and handed back in an event the consumer has not taken.
    let back = out.lost(true).unwrap();
    assert!(out.take_room_freed());
    out.opened();
    out.acked(Vec::new());
    let err = out.send("d".into(), Status::Open).unwrap_err();
    assert_eq!(err.kind, SendErrorKind::Full, "held-back messages count");
    assert!(!out.take_room_freed());
    out.unsent_taken(back.len());
    assert!(out.take_room_freed());
    assert_eq!(out.send("d".into(), Status::Open).unwrap(), Sent::Accepted);
}

#[test]
fn a_written_message_frees_room() {
    let mut out = open(1, None);
    send_all(&mut out, &["a"]);
    assert_eq!(
        out.send("b".into(), Status::Open).unwrap_err().kind,
        SendErrorKind::Full
    );
    let mut link = Link::taking(0);
    link.pass(&mut out);
    assert!(!out.take_room_freed(), "in flight still counts");
    link.budget = 1;
    link.drain(&mut out);
    assert!(out.take_room_freed());
    assert_eq!(out.send("b".into(), Status::Open).unwrap(), Sent::Accepted);
}

#[test]
fn without_a_reader_handed_back_messages_wait_for_close() {
    let mut out = open(8, None);
    send_all(&mut out, &["a"]);
    assert_eq!(out.lost(false), None);
    assert_eq!(out.finished(false), ["a"]);
}

#[test]
fn lost_messages_go_back_to_the_front_of_the_queue() {
    let mut out = open(8, queue(4));
    send_all(&mut out, &["a", "b"]);
    assert_eq!(out.lost(true), None);
    assert_eq!(
        out.send("c".into(), Status::Reconnecting).unwrap(),
        Sent::Queued
    );
    assert_eq!(out.queued(), 3);
    out.opened();
    out.acked(Vec::new());
    let mut link = Link::taking(10);
    link.pass(&mut out);
    assert_eq!(link.texts(), ["a", "b", "c"]);
    assert_eq!(out.written(), 3);
}

#[test]
fn a_full_queue_refuses_or_evicts_by_its_policy() {
    let mut reject = Ledger::<String>::new(8, queue(1));
    assert_eq!(
        reject.send("a".into(), Status::Connecting).unwrap(),
        Sent::Queued
    );
    let err = reject.send("b".into(), Status::Connecting).unwrap_err();
    assert_eq!(
        (err.kind, err.message.as_deref()),
        (SendErrorKind::QueueFull, Some("b"))
    );
    let mut evict = Ledger::<String>::new(8, Some((1, Overflow::DropOldest)));
    evict.send("a".into(), Status::Connecting).unwrap();
    assert_eq!(
        evict.send("b".into(), Status::Connecting).unwrap(),
        Sent::QueuedEvicting("a".into())
    );
    let mut none = Ledger::<String>::new(8, None);
    let err = none.send("a".into(), Status::Reconnecting).unwrap_err();
    assert_eq!(err.kind, SendErrorKind::NotOpen(Status::Reconnecting));
}

#[test]
fn after_a_close_request_sends_are_refused_and_what_was_accepted_comes_back_oldest_first() {
    let mut out = open(8, queue(4));
    send_all(&mut out, &["a", "b", "c"]);
    let mut link = Link::taking(1);
    link.pass(&mut out);
    out.close_requested();
    assert!(out.is_closing());
    let err = out.send("late".into(), Status::Open).unwrap_err();
    assert_eq!(err.kind, SendErrorKind::NotOpen(Status::Closing));
    assert_eq!(out.lost(true), None, "closing: kept for close()");
    assert_eq!(out.finished(true), Vec::<String>::new());
    assert_eq!(out.take_returned(), ["b", "c"]);
    assert_eq!(out.written(), 1);
}

#[test]
fn a_hello_built_after_the_close_frame_is_never_written_after_it() {
    // AwaitingAck; close() requested before the slow hello builder returns.
    let mut out = Ledger::<String>::new(8, None);
    out.opened();
    out.close_requested();
    out.close(1000, String::new());
    let mut link = Link::taking(10);
    link.pass(&mut out);
    out.hello("hi".into());
    link.pass(&mut out);
    assert_eq!(link.kinds(), ["close"]);
}

#[test]
fn queued_messages_come_back_at_the_end_after_older_ones() {
    let mut out = Ledger::<String>::new(8, queue(4));
    out.send("q1".into(), Status::Connecting).unwrap();
    out.opened();
    out.acked(Vec::new());
    send_all(&mut out, &["o1"]);
    assert_eq!(out.finished(false), ["q1", "o1"]);
    let err = out.send("x".into(), Status::Closed).unwrap_err();
    assert_eq!(err.kind, SendErrorKind::Ended);
}

#[test]
fn after_ack_frames_go_first_before_queued_and_new_sends() {
    let mut out = Ledger::<String>::new(8, queue(4));
    out.send("q1".into(), Status::AwaitingAck).unwrap();
    out.opened();
    out.hello("hi".into());
    out.acked(strings(&["sub1", "sub2"]));
    send_all(&mut out, &["new"]);
    let mut link = Link::taking(10);
    link.pass(&mut out);
    assert_eq!(link.texts(), ["hi", "sub1", "sub2", "q1", "new"]);
    assert_eq!(out.written(), 2, "only the caller's messages count");
}

#[test]
fn after_ack_frames_are_never_handed_back() {
    let mut out = Ledger::<String>::new(8, queue(4));
    out.send("q1".into(), Status::Reconnecting).unwrap();
    out.opened();
    out.acked(strings(&["sub1", "sub2", "sub3"]));
    // sub1 reaches the transport; sub2, sub3 and q1 are in flight.
    let mut link = Link::taking(1);
    link.pass(&mut out);
    assert_eq!(link.texts(), ["sub1"]);
    assert_eq!(out.written(), 0);
    // The link goes: only the caller's message goes back to the queue.
    assert_eq!(out.lost(true), None);
    assert_eq!(out.queued(), 1);
    out.opened();
    out.acked(Vec::new());
    let mut next = Link::taking(10);
    next.pass(&mut out);
    assert_eq!(next.texts(), ["q1"]);
    assert_eq!(out.written(), 1);
    // Without a queue, an Unsent hand-back carries only the caller's messages.
    let mut plain = Ledger::<String>::new(8, None);
    plain.opened();
    plain.acked(strings(&["sub1"]));
    send_all(&mut plain, &["a"]);
    Link::taking(0).pass(&mut plain);
    assert_eq!(plain.lost(true), Some(strings(&["a"])));
    assert_eq!(plain.finished(false), Vec::<String>::new());
}

#[test]
fn after_ack_frames_belong_to_their_connection() {
    let mut out = Ledger::<String>::new(8, None);
    out.opened();
    out.acked(strings(&["sub-for-1"]));
    assert_eq!(out.lost(true), None, "never written, never handed back");
    out.opened();
    out.acked(strings(&["sub-for-2"]));
    let mut link = Link::taking(10);
    link.pass(&mut out);
    assert_eq!(link.texts(), ["sub-for-2"]);
    assert_eq!(out.written(), 0);
}

#[test]
fn after_ack_frames_do_not_count_against_the_send_capacity() {
    let mut out = Ledger::<String>::new(1, None);
    out.opened();
    out.acked(strings(&["sub1", "sub2", "sub3"]));
    assert_eq!(out.send("a".into(), Status::Open).unwrap(), Sent::Accepted);
    let full = out.send("b".into(), Status::Open).unwrap_err();
    assert_eq!(full.kind, SendErrorKind::Full, "the cap counts only `a`");
    let mut link = Link::taking(10);
    link.pass(&mut out);
    assert_eq!(link.texts(), ["sub1", "sub2", "sub3", "a"]);
    assert_eq!(out.written(), 1);
}

#[test]
fn no_after_ack_frames_once_a_close_was_requested() {
    let mut out = Ledger::<String>::new(8, None);
    out.opened();
    out.close_requested();
    out.close(1000, String::new());
    out.acked(strings(&["sub1"]));
    let mut link = Link::taking(10);
    link.pass(&mut out);
    assert_eq!(link.kinds(), ["close"]);
}

#[test]
fn a_dropped_event_stream_hands_its_messages_to_close() {
    let mut out = open(2, None);
    send_all(&mut out, &["a", "b"]);
    let back = out.lost(true).unwrap();
    out.events_dropped(back, strings(&["c"]));
    out.opened();
    out.acked(Vec::new());
    assert_eq!(
        out.send("d".into(), Status::Open).unwrap_err().kind,
        SendErrorKind::Full
    );
    assert_eq!(out.take_returned(), ["a", "b", "c"]);
    assert_eq!(out.send("d".into(), Status::Open).unwrap(), Sent::Accepted);
    assert_eq!(out.capacities().len(), 4);
}

#[test]
fn capacities_name_each_buffer_and_follow_its_allocation() {
    let mut out = open(8, None);
    let names = out.capacities().map(|(name, _)| name);
    assert_eq!(
        names,
        [
            "send buffer",
            "in flight",
            "after-ack frames",
            "handed back"
        ]
    );
    send_all(&mut out, &["a", "b"]);
    assert!(out.capacities()[0].1 >= 2, "{:?}", out.capacities());
    Link::taking(0).pass(&mut out);
    assert!(out.capacities()[1].1 >= 2, "{:?}", out.capacities());
    out.lost(false);
    assert!(out.capacities()[3].1 >= 2, "{:?}", out.capacities());
}

#[test]
fn a_new_link_starts_with_none_of_the_last_ones_protocol_frames() {
    let mut out = Ledger::<String>::new(8, None);
    out.opened();
    // A hello built for a link that is already gone, a ping and a close
    // frame for it: none of them belongs to the next link.
    out.hello("old hello".into());
    out.ping();
    out.close(1001, "stale".into());
    out.opened();
    let mut link = Link::taking(10);
    link.pass(&mut out);
    assert!(link.on_wire.is_empty(), "{:?}", link.kinds());
}

#[test]
fn a_close_asked_for_or_a_close_frame_pending_keeps_after_ack_frames_out() {
    // Close asked for (the close frame not yet set): no after-ack frames.
    let mut asked = Ledger::<String>::new(8, None);
    asked.opened();
    assert!(!asked.is_closing());
    asked.close_requested();
    assert!(asked.is_closing());
    asked.acked(strings(&["sub"]));
    let mut link = Link::taking(10);
    link.pass(&mut asked);
    assert!(link.on_wire.is_empty(), "{:?}", link.kinds());
    // A close frame pending (the machine drops the link itself): the
    // same, and the close frame is all that goes.
    let mut dropping = Ledger::<String>::new(8, None);
    dropping.opened();
    dropping.close(1001, "stale".into());
    dropping.acked(strings(&["sub"]));
    let mut link = Link::taking(10);
    link.pass(&mut dropping);
    assert_eq!(link.kinds(), ["close"]);
}

#[test]
fn a_link_lost_while_closing_hands_back_to_close_not_to_the_queue() {
    let mut out = open(8, queue(4));
    send_all(&mut out, &["a", "b"]);
    out.close_requested();
    assert_eq!(out.lost(true), None);
    assert_eq!(out.queued(), 0, "nothing goes back into the queue");
    assert_eq!(out.take_returned(), ["a", "b"]);
}

// ── exact accounting, over random interleavings ──────────────────────

/// What the world may do to the ledger next. Steps that make no sense in
/// the link's current state (an ack without a link) are skipped, as the
/// lifecycle machine never asks for them.
#[derive(Debug, Clone)]
enum Op {
    Send,
    Open {
        hello: bool,
    },
    Ack {
        after_ack: u8,
    },
    /// A write pass; the transport takes this many frames at most.
    Write(u8),
    /// The layer below completes up to this many held frames.
    Drain(u8),
    Ping,
    /// The machine drops the link itself (a close frame first).
    OwnDrop,
    Lost,
    TakeUnsent,
    DropEvents,
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Send),
        2 => any::<bool>().prop_map(|hello| Op::Open { hello }),
        2 => (0u8..3).prop_map(|after_ack| Op::Ack { after_ack }),
        4 => (0u8..6).prop_map(Op::Write),
        2 => (0u8..4).prop_map(Op::Drain),
        1 => Just(Op::Ping),
        1 => Just(Op::OwnDrop),
        2 => Just(Op::Lost),
        2 => Just(Op::TakeUnsent),
        1 => Just(Op::DropEvents),
        1 => Just(Op::Close),
    ]
}

/// Where every accepted message ended, by id.
#[derive(Default)]
struct Books {
    accepted: Vec<u32>,
    written: Vec<u32>,
    handed_back: Vec<u32>,
}

fn id(text: &str) -> u32 {
    text.strip_prefix('m')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a caller's message: {text}"))
}

fn assert_oldest_first(batch: &[String]) {
    let ids: Vec<u32> = batch.iter().map(|t| id(t)).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "not oldest first: {ids:?}"
    );
}

/// Runs `ops` on a ledger and checks, at the end, that every accepted
/// message was written once or handed back once (never both, never
/// neither), written in the order accepted, each hand-back oldest first;
/// throughout, that no frame follows a close frame and (without a queue,
/// whose flush may exceed it) that what is held back stays within the
/// send capacity. The session ends as `close()` ends it (`for_close`: the
/// rest waits for `take_returned`) or by itself (the `Closed` event).
fn run(ops: &[Op], capacity: usize, queue: Option<(usize, Overflow)>, for_close: bool) {
    let mut out = Ledger::<String>::new(capacity, queue);
    let mut books = Books::default();
    let mut link: Option<(Link, bool)> = None; // (link, acked)
    let mut unsent: Vec<Vec<String>> = Vec::new(); // hand-backs not taken
    let mut events_alive = true;
    let mut next = 0u32;
    let back = |books: &mut Books, batch: Vec<String>| {
        assert_oldest_first(&batch);
        books.handed_back.extend(batch.iter().map(|t| id(t)));
    };
    for op in ops {
        match (op, &mut link) {
            (Op::Send, _) => {
                let status = match &link {
                    Some((_, true)) => Status::Open,
                    Some((_, false)) => Status::AwaitingAck,
                    None => Status::Reconnecting,
                };
                let text = format!("m{next}");
                match out.send(text.clone(), status) {
                    Ok(sent) => {
                        books.accepted.push(next);
                        if let Sent::QueuedEvicting(old) = sent {
                            back(&mut books, vec![old]);
                        }
                    }
                    Err(e) => assert_eq!(e.message, Some(text), "a refusal hands back"),
                }
                next += 1;
            }
            (Op::Open { hello }, None) => {
                out.opened();
                if *hello {
                    out.hello("hello".into());
                }
                link = Some((Link::default(), false));
            }
            (Op::Ack { after_ack }, Some((_, acked @ false))) => {
                *acked = true;
                out.acked((0..*after_ack).map(|n| format!("sub{n}")).collect());
            }
            (Op::Write(budget), Some((wire, _))) => {
                wire.budget += usize::from(*budget);
                wire.pass(&mut out);
            }
            (Op::Drain(budget), Some((wire, _))) => {
                wire.budget += usize::from(*budget);
                wire.drain(&mut out);
            }
            (Op::Ping, Some(_)) => out.ping(),
            (Op::OwnDrop, Some((wire, _))) => {
                out.close(1001, "stale".into());
                // One non-blocking chance for the close frame.
                if let Some((code, reason)) = out.take_close() {
                    wire.give(Frame::Close { code, reason });
                }
                wire.drain(&mut out);
                if let Some(batch) = out.lost(events_alive) {
                    unsent.push(batch);
                }
                link = None;
            }
            (Op::Lost, Some(_)) => {
                if let Some(batch) = out.lost(events_alive) {
                    assert!(events_alive, "a hand-back nobody reads");
                    unsent.push(batch);
                }
                link = None;
            }
            (Op::TakeUnsent, _) if !unsent.is_empty() => {
                let batch = unsent.remove(0);
                out.unsent_taken(batch.len());
                back(&mut books, batch);
            }
            (Op::DropEvents, _) if events_alive => {
                events_alive = false;
                let held: Vec<String> = unsent.drain(..).flatten().collect();
                out.events_dropped(held, Vec::new());
            }
            (Op::Close, _) => {
                out.close_requested();
                if link.is_some() {
                    out.close(1000, String::new());
                }
            }
            _ => {} // not possible in this state
        }
        // Every message on the wire is written, in the order accepted.
        let on_wire: Vec<u32> = link
            .iter()
            .flat_map(|(wire, _)| wire.on_wire.iter())
            .filter_map(|f| match f {
                Frame::Message(t) => Some(id(t)),
                _ => None,
            })
            .collect();
        if let Some((wire, _)) = &mut link {
            wire.on_wire.retain(|f| !matches!(f, Frame::Message(_)));
        }
        books.written.extend(on_wire);
        if queue.is_none() {
            assert!(out.held_back() <= capacity, "{} held back", out.held_back());
        }
    }
    // The end: the session finishes; the rest is handed back.
    if let Some((wire, _)) = &mut link {
        wire.drain(&mut out);
        let on_wire = wire.on_wire.iter().filter_map(|f| match f {
            Frame::Message(t) => Some(id(t)),
            _ => None,
        });
        books.written.extend(on_wire);
    }
    for batch in unsent.drain(..) {
        back(&mut books, batch);
    }
    let rest = if for_close {
        assert_eq!(out.finished(true), Vec::<String>::new());
        out.take_returned()
    } else {
        out.finished(false)
    };
    back(&mut books, rest);

    assert_eq!(
        out.written(),
        books.written.len() as u64,
        "written() counts each once"
    );
    assert!(
        books.written.windows(2).all(|w| w[0] < w[1]),
        "written out of order: {:?}",
        books.written
    );
    let mut ends: Vec<u32> = books
        .written
        .iter()
        .chain(&books.handed_back)
        .copied()
        .collect();
    ends.sort_unstable();
    assert_eq!(
        ends, books.accepted,
        "every accepted message written or handed back exactly once\nwritten {:?}\nhanded back {:?}",
        books.written, books.handed_back
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_accepted_message_is_written_or_handed_back_exactly_once(
        ops in proptest::collection::vec(op(), 0..80),
        capacity in 0usize..6,
        queue in prop_oneof![
            Just(None),
            (0usize..4).prop_map(|n| Some((n, Overflow::RejectNew))),
            (0usize..4).prop_map(|n| Some((n, Overflow::DropOldest))),
        ],
        for_close in any::<bool>(),
    ) {
        run(&ops, capacity, queue, for_close);
    }
}

#[test]
fn has_frame_says_whether_poll_frame_would_give_one() {
    let mut out = Ledger::<String>::new(8, None);
    out.opened();
    assert!(!out.has_frame());
    let cases: [fn(&mut Ledger<String>); 5] = [
        |l| l.hello("hi".into()),
        |l| l.ping(),
        |l| l.acked(vec!["sub".into()]),
        |l| {
            l.acked(Vec::new());
            l.send("m".into(), Status::Open).unwrap();
        },
        |l| l.close(1000, String::new()),
    ];
    for (i, set) in cases.iter().enumerate() {
        let mut out = Ledger::<String>::new(8, None);
        out.opened();
        set(&mut out);
        assert!(out.has_frame(), "case {i}");
        while out.poll_frame().is_some() {}
        assert!(!out.has_frame(), "case {i}");
    }
}
