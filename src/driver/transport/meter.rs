//! What crosses the socket below tungstenite, counted.
//!
//! Two facts the session cannot learn from tungstenite: whether any inbound
//! bytes arrived (a large message arriving slowly is proof of life long
//! before its last frame completes), and whether the last byte of an
//! outbound text frame was taken by the transport (the TCP socket, or
//! rustls' buffer for `wss://`). The second is what "written" means for the
//! send accounting: tungstenite may hold a frame, or part of one, in its
//! out-buffer, and may slip a pong in between. Parsing the frame headers of
//! the bytes the transport accepted is exact whatever tungstenite buffers.
//! The same parse tells when a ping's last byte went out (the start of a
//! round trip), and the byte counts are the stats' wire bytes.
//!
//! Everything here is a plain field of the link's stream: the session
//! publishes it under the lock it takes anyway ([`Traffic`]).
//!
//! The meter also keeps reads from costing syscalls that cannot succeed.
//! async-io's `Async::poll_read` always tries the `recv` first, and only a
//! failing one (`EAGAIN`) consumes the readiness the reactor delivered, so
//! each inbound frame would cost its `recv`, then two failing ones, and the
//! session's wake-ups for timers one failing `recv` each. Once a read came
//! back short (the kernel's queue is empty) or blocked, the next read first
//! asks the reactor whether the socket signalled since ([`Readiness`]); if
//! not, it is `Pending` at no cost (the waker stays registered: the one
//! tungstenite reads with, so nothing is re-registered).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};

use crate::fsm::session::{Traffic, rtt};

use super::tls::MaybeTls;

/// Whether the transport may have bytes to read: `Pending` (with `cx`
/// registered, as a failing read would) when the reactor has not reported
/// it readable since the last failing or short read.
pub(crate) trait Readiness {
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<()>;
}

impl Readiness for MaybeTls {
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            // An error shows on the read that follows.
            MaybeTls::Plain(tcp) => tcp.poll_readable(cx).map(|_| ()),
            // rustls may hold decrypted bytes or owe a write: always read.
            #[cfg(feature = "tls")]
            MaybeTls::Tls(_) => Poll::Ready(()),
        }
    }
}

/// The text-frame opcode (RFC 6455 §5.2).
const OPCODE_TEXT: u8 = 0x1;
/// The ping opcode.
const OPCODE_PING: u8 = 0x9;

/// Outbound frames whose last byte the transport took.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Completed {
    pub(crate) text: u32,
    pub(crate) pings: u32,
}

impl Completed {
    fn add(&mut self, other: Completed) {
        self.text = self.text.saturating_add(other.text);
        self.pings = self.pings.saturating_add(other.pings);
    }
}

/// A stream that counts read progress, bytes, and completed outbound
/// frames.
pub(crate) struct Metered<S> {
    inner: S,
    read_progress: bool,
    /// The last read blocked or came back short: read again only once the
    /// transport signals readable (see the module docs).
    drained: bool,
    cursor: FrameCursor,
    completed: Completed,
    traffic: Traffic,
}

impl<S> Metered<S> {
    pub(crate) fn new(inner: S) -> Self {
        Metered {
            inner,
            read_progress: false,
            drained: false,
            cursor: FrameCursor::default(),
            completed: Completed::default(),
            traffic: Traffic::default(),
        }
    }

    /// Counts `bytes` read before the meter was in place (past the upgrade
    /// response, handed to tungstenite directly).
    pub(crate) fn with_read(mut self, bytes: usize) -> Self {
        self.traffic.bytes_in = u32::try_from(bytes).unwrap_or(u32::MAX);
        self
    }

    /// Whether bytes were read since the last call.
    pub(crate) fn take_read_progress(&mut self) -> bool {
        std::mem::take(&mut self.read_progress)
    }

    /// Whether anything happened that the session has not published yet:
    /// completed frames, bytes either way, frames read, a pong.
    pub(crate) fn has_news(&self) -> bool {
        self.completed != Completed::default() || self.traffic != Traffic::default()
    }

    /// Outbound frames whose last byte the transport took since the last
    /// call.
    pub(crate) fn take_completed(&mut self) -> Completed {
        std::mem::take(&mut self.completed)
    }

    /// The traffic since the last call.
    pub(crate) fn take_traffic(&mut self) -> Traffic {
        std::mem::take(&mut self.traffic)
    }

    /// tungstenite returned a data frame (text or binary).
    pub(crate) fn frame_read(&mut self) {
        self.traffic.frames_in = self.traffic.frames_in.saturating_add(1);
    }

    /// tungstenite returned a pong with `payload`.
    pub(crate) fn pong_read(&mut self, payload: &[u8]) {
        if let Some(tag) = rtt::tag_of(payload) {
            self.traffic.pong = Some(tag);
        }
    }
}

impl<S: AsyncRead + Readiness + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.drained && this.inner.poll_readable(cx).is_pending() {
            return Poll::Pending;
        }
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.drained = match read {
            Poll::Ready(Ok(n)) => {
                this.read_progress |= n > 0;
                this.traffic.bytes_in = saturating_add(this.traffic.bytes_in, n);
                // End of stream (0) is read again: it stays readable.
                0 < n && n < buf.len()
            }
            Poll::Ready(Err(_)) => false,
            Poll::Pending => true,
        };
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            let taken = buf.get(..n).unwrap_or(buf);
            this.completed.add(this.cursor.advance(taken));
            this.traffic.bytes_out = saturating_add(this.traffic.bytes_out, taken.len());
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

fn saturating_add(count: u32, n: usize) -> u32 {
    count.saturating_add(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Follows the outbound byte stream frame by frame (RFC 6455 §5.2): a
/// header of 2 to 14 bytes, then the payload, skipped by length.
#[derive(Debug, Default)]
struct FrameCursor {
    header: [u8; 14],
    have: usize,
    /// Payload bytes left of the current frame, once its header is complete.
    payload_left: Option<u64>,
}

impl FrameCursor {
    /// Feeds bytes the transport accepted; returns how many text frames
    /// (with FIN) and pings they completed.
    fn advance(&mut self, mut bytes: &[u8]) -> Completed {
        let mut completed = Completed::default();
        loop {
            match self.payload_left {
                Some(left) => {
                    let take = (bytes.len() as u64).min(left);
                    bytes = &bytes[take as usize..];
                    let left = left - take;
                    if left > 0 {
                        self.payload_left = Some(left);
                        return completed;
                    }
                    let first = self.header[0];
                    match first & 0x0f {
                        OPCODE_TEXT if first & 0x80 != 0 => completed.text += 1,
                        // Control frames are never fragmented (§5.5).
                        OPCODE_PING => completed.pings += 1,
                        _ => {}
                    }
                    self.payload_left = None;
                    self.have = 0;
                }
                None => {
                    let Some((&byte, rest)) = bytes.split_first() else {
                        return completed;
                    };
                    bytes = rest;
                    self.header[self.have] = byte;
                    self.have += 1;
                    if self.have == self.header_len() {
                        self.payload_left = Some(self.payload_len());
                    }
                }
            }
        }
    }

    /// The header length, as far as the bytes seen so far tell (never more
    /// than 14, so `header` cannot overflow).
    fn header_len(&self) -> usize {
        if self.have < 2 {
            return 2;
        }
        let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
        let extended = match self.header[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        2 + extended + mask
    }

    fn payload_len(&self) -> u64 {
        match self.header[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
            127 => {
                let mut be = [0u8; 8];
                be.copy_from_slice(&self.header[2..10]);
                u64::from_be_bytes(be)
            }
            short => u64::from(short),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: u8 = 0x1;
    const BINARY: u8 = 0x2;
    const PING: u8 = 0x9;
    const PONG: u8 = 0xA;

    /// A masked client frame with FIN, encoded by hand (RFC 6455 §5.2).
    fn client_frame(opcode: u8, payload: Vec<u8>) -> Vec<u8> {
        let mut out = vec![0x80 | opcode];
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n @ 126..=65_535 => {
                out.push(0x80 | 126);
                out.extend((n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend((n as u64).to_be_bytes());
            }
        }
        out.extend([1, 2, 3, 4]);
        out.extend(payload);
        out
    }

    fn text(len: usize) -> Vec<u8> {
        client_frame(TEXT, vec![b'x'; len])
    }

    #[test]
    fn a_text_frame_counts_only_when_its_last_byte_is_taken() {
        for len in [0, 1, 125, 126, 65_535, 65_536, 70_000] {
            let bytes = text(len);
            let mut cursor = FrameCursor::default();
            let (head, last) = bytes.split_at(bytes.len() - 1);
            assert_eq!(cursor.advance(head).text, 0, "len {len}");
            assert_eq!(cursor.advance(last).text, 1, "len {len}");
        }
    }

    #[test]
    fn frames_split_anywhere_and_mixed_with_pongs_are_counted_exactly() {
        let mut stream = Vec::new();
        stream.extend(text(3));
        stream.extend(client_frame(PONG, vec![1, 2]));
        stream.extend(text(300));
        stream.extend(client_frame(BINARY, vec![0; 10]));
        stream.extend(client_frame(PING, vec![7]));
        stream.extend(text(70_000));
        for step in [1, 2, 3, 7, 64, 1000, stream.len()] {
            let mut cursor = FrameCursor::default();
            let mut total = Completed::default();
            stream
                .chunks(step)
                .for_each(|c| total.add(cursor.advance(c)));
            assert_eq!(total, Completed { text: 3, pings: 1 }, "step {step}");
            assert_eq!(cursor.have, 0);
            assert_eq!(cursor.payload_left, None);
        }
    }
}
