//! Moves the core's frames to the socket: the write pass, the last chance
//! before a drop, and the count of frames the transport took. Every
//! decision about a message (accept, order, hand back) is the pure
//! ledger's; this side only turns its frames into tungstenite's.

use std::task::{Context, Poll};

use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};

use crate::fsm::outbound::{Frame, Payload};

use super::shared::{Core, Inner};

/// Frames one write pass hands to the socket at most, so one busy session
/// cannot hold its task (and the lock) for long.
const BATCH: usize = 256;

/// The ping payloads, each a slice of this table (no allocation per ping).
static TAGS: [u8; 256] = {
    let mut tags = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        tags[i] = i as u8;
        i += 1;
    }
    tags
};

/// The link broke while writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WireError;

/// The socket as the outbound side sees it: tungstenite's sink.
pub(crate) trait Wire {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WireError>>;
    fn start_send(&mut self, message: Message) -> Result<(), WireError>;
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WireError>>;
}

impl Payload for Utf8Bytes {
    fn from_text(text: String) -> Self {
        text.into()
    }

    fn into_text(self) -> String {
        String::from_utf8(Vec::from(Bytes::from(self)))
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

/// One write pass: the core's frames, up to a batch, then a flush.
/// `Ok(true)` when a frame was handed to the socket. What the transport
/// took is the caller's to tell the core (with the meter's other news).
pub(crate) fn poll_write(
    inner: &mut Inner,
    wire: &mut impl Wire,
    cx: &mut Context<'_>,
) -> Result<bool, WireError> {
    write_some(&mut inner.core, &mut inner.flush, wire, cx)
}

fn write_some(
    core: &mut Core,
    flush: &mut bool,
    wire: &mut impl Wire,
    cx: &mut Context<'_>,
) -> Result<bool, WireError> {
    let mut progress = false;
    for _ in 0..BATCH {
        if !core.has_frame() {
            break;
        }
        match wire.poll_ready(cx) {
            Poll::Pending => break,
            Poll::Ready(result) => result?,
        }
        let Some(frame) = core.poll_frame() else {
            break;
        };
        let message = match frame {
            Frame::Hello(text) | Frame::AfterAck(text) => Message::Text(text.into()),
            Frame::Ping => {
                let i = usize::from(core.ping_tag());
                Message::Ping(Bytes::from_static(&TAGS[i..=i]))
            }
            Frame::Message(text) => Message::Text(text),
            Frame::Close { code, reason } => Message::Close(Some(close_frame(code, reason))),
        };
        wire.start_send(message)?;
        *flush = true;
        progress = true;
    }
    if *flush {
        match wire.poll_flush(cx) {
            Poll::Ready(Ok(())) => *flush = false,
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => {}
        }
    }
    Ok(progress)
}

/// Before the link is dropped: one non-blocking chance for a pending close
/// frame and whatever tungstenite still holds. No wait: a half-dead peer
/// must not delay the drop.
pub(crate) fn write_before_drop(inner: &mut Inner, wire: &mut impl Wire, cx: &mut Context<'_>) {
    if let Some((code, reason)) = inner.core.take_close() {
        if let Poll::Ready(Ok(())) = wire.poll_ready(cx) {
            let _ = wire.start_send(Message::Close(Some(close_frame(code, reason))));
        }
    }
    let _ = wire.poll_flush(cx);
}

fn close_frame(code: u16, reason: String) -> CloseFrame {
    CloseFrame {
        code: code.into(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::transport::meter::Completed;
    use crate::fsm::Status;
    use std::collections::VecDeque;

    /// A socket that takes `budget` frames whole, then stalls, or fails.
    #[derive(Default)]
    struct FakeWire {
        budget: usize,
        buffered: VecDeque<Message>,
        on_wire: Vec<Message>,
        completed: Completed,
        broken: bool,
        /// The transport breaks while tungstenite writes the next frame.
        fail_send: bool,
    }

    impl FakeWire {
        fn drain(&mut self) {
            while self.budget > 0 {
                let Some(frame) = self.buffered.pop_front() else {
                    return;
                };
                self.budget -= 1;
                match frame {
                    Message::Text(_) => self.completed.text += 1,
                    Message::Ping(_) => self.completed.pings += 1,
                    _ => {}
                }
                self.on_wire.push(frame);
            }
        }
    }

    impl Wire for FakeWire {
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), WireError>> {
            if self.broken {
                return Poll::Ready(Err(WireError));
            }
            Poll::Ready(Ok(()))
        }

        fn start_send(&mut self, message: Message) -> Result<(), WireError> {
            self.buffered.push_back(message);
            if self.fail_send {
                self.broken = true;
                return Err(WireError);
            }
            self.drain();
            Ok(())
        }

        fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), WireError>> {
            if self.broken {
                return Poll::Ready(Err(WireError));
            }
            self.drain();
            if self.buffered.is_empty() {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        }
    }

    impl FakeWire {
        fn take_completed(&mut self) -> Completed {
            std::mem::take(&mut self.completed)
        }
    }

    /// The shared state of one session, its core fresh.
    fn inner() -> Inner {
        let config = std::sync::Arc::new(crate::fsm::Config::default());
        let ledger = crate::fsm::outbound::Ledger::new(8, None);
        let core = Core::new(config, 0, ledger, 8, None, std::time::Instant::now());
        Inner {
            core,
            flush: false,
            events_waker: None,
            session_waker: None,
            last_response: None,
        }
    }

    /// Tells the core which frames the transport took (the session does
    /// it with the meter's other news after each pass).
    fn settle(core: &mut Core, wire: &mut FakeWire) {
        let completed = wire.take_completed();
        let nothing = crate::fsm::session::Traffic::default();
        let now = std::time::Instant::now();
        core.traffic(completed.text, completed.pings, &nothing, now);
    }

    fn cx() -> Context<'static> {
        Context::from_waker(std::task::Waker::noop())
    }

    fn open(texts: &[&str]) -> Inner {
        let mut out = inner();
        out.core.ledger_mut().opened();
        out.core.ledger_mut().acked(Vec::new());
        for t in texts {
            out.core
                .ledger_mut()
                .send((*t).to_owned(), Status::Open)
                .unwrap();
        }
        out
    }

    #[test]
    fn a_send_that_fails_mid_write_is_handed_back_not_dropped() {
        let mut out = open(&["a", "b"]);
        // The socket breaks while "a" is being written (ECONNRESET, EPIPE).
        let mut wire = FakeWire {
            fail_send: true,
            ..FakeWire::default()
        };
        assert_eq!(poll_write(&mut out, &mut wire, &mut cx()), Err(WireError));
        settle(&mut out.core, &mut wire);
        assert_eq!(out.core.ledger_mut().written(), 0);
        assert_eq!(
            out.core.ledger_mut().lost(true),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
    }

    #[test]
    fn frames_completed_by_the_last_chance_flush_count_as_written_and_close_goes_last() {
        let mut out = open(&["a", "b"]);
        let mut wire = FakeWire::default();
        poll_write(&mut out, &mut wire, &mut cx()).unwrap();
        settle(&mut out.core, &mut wire);
        assert_eq!(out.core.ledger_mut().written(), 0);
        out.core.ledger_mut().close(1002, "protocol error".into());
        wire.budget = 3;
        write_before_drop(&mut out, &mut wire, &mut cx());
        settle(&mut out.core, &mut wire);
        assert_eq!(
            out.core.ledger_mut().written(),
            2,
            "a and b completed during the last flush"
        );
        assert!(
            matches!(wire.on_wire.last(), Some(Message::Close(Some(f))) if f.code == 1002.into())
        );
        assert_eq!(out.core.ledger_mut().lost(true), None);
    }

    #[test]
    fn pings_and_protocol_frames_become_tungstenite_frames_in_order() {
        let mut out = inner();
        out.core.ledger_mut().opened();
        out.core.ledger_mut().hello("hi".into());
        out.core.ledger_mut().acked(vec!["sub".into()]);
        out.core
            .ledger_mut()
            .send("a".into(), Status::Open)
            .unwrap();
        out.core.ledger_mut().ping();
        out.core.ledger_mut().close(1000, String::new());
        let mut wire = FakeWire {
            budget: 10,
            ..FakeWire::default()
        };
        assert_eq!(poll_write(&mut out, &mut wire, &mut cx()), Ok(true));
        settle(&mut out.core, &mut wire);
        let kinds: Vec<String> = wire
            .on_wire
            .iter()
            .map(|m| match m {
                Message::Text(t) => t.as_str().to_owned(),
                Message::Ping(_) => "ping".to_owned(),
                Message::Close(_) => "close".to_owned(),
                _ => "other".to_owned(),
            })
            .collect();
        assert_eq!(kinds, ["hi", "ping", "sub", "a", "close"]);
        assert_eq!(out.core.ledger_mut().written(), 1);
        assert_eq!(poll_write(&mut out, &mut wire, &mut cx()), Ok(false));
    }

    #[test]
    fn a_payload_turns_back_into_its_text() {
        let bytes = Utf8Bytes::from_text("héllo".to_owned());
        assert_eq!(bytes.clone().into_text(), "héllo");
        drop(bytes);
    }
}
