//! Reads the masked frames a client writes (RFC 6455 §5.2), for tests
//! whose server must see exactly what reached the wire.
#![allow(dead_code)]

/// One complete client frame, unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The payload of a text frame.
    pub fn text(self) -> Option<String> {
        (self.opcode == 0x1).then(|| String::from_utf8(self.payload).expect("UTF-8 text"))
    }

    /// The code and reason of a close frame.
    pub fn close(&self) -> Option<(u16, String)> {
        if self.opcode != 0x8 || self.payload.len() < 2 {
            return None;
        }
        let code = u16::from_be_bytes([self.payload[0], self.payload[1]]);
        Some((
            code,
            String::from_utf8_lossy(&self.payload[2..]).into_owned(),
        ))
    }
}

/// Frames split across reads are put back together.
#[derive(Default)]
pub struct ClientFrames {
    buf: Vec<u8>,
}

impl ClientFrames {
    /// Appends bytes; returns every frame they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Frame> {
        self.buf.extend_from_slice(bytes);
        let mut frames = Vec::new();
        while let Some((frame, used)) = parse(&self.buf) {
            frames.push(frame);
            self.buf.drain(..used);
        }
        frames
    }
}

fn parse(b: &[u8]) -> Option<(Frame, usize)> {
    if b.len() < 2 {
        return None;
    }
    let (len, at) = match b[1] & 0x7f {
        126 => (u64::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?])), 4),
        127 => (u64::from_be_bytes(b.get(2..10)?.try_into().ok()?), 10),
        short => (u64::from(short), 2),
    };
    let end = at + 4 + len as usize;
    let mask = b.get(at..at + 4)?;
    let payload = b
        .get(at + 4..end)?
        .iter()
        .enumerate()
        .map(|(i, x)| x ^ mask[i % 4])
        .collect();
    let frame = Frame {
        opcode: b[0] & 0x0f,
        payload,
    };
    Some((frame, end))
}
