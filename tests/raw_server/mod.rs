//! Pieces of a hand-written WebSocket server, for tests that need a server
//! to answer the upgrade in ways a real broker would not.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use async_io::Async;
use async_tungstenite::tungstenite::handshake::derive_accept_key;
use futures_lite::{AsyncReadExt, AsyncWriteExt};

/// Reads an HTTP request head, byte by byte so nothing past it is taken.
pub async fn read_head(stream: &mut Async<std::net::TcpStream>) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.expect("request bytes");
        assert!(n == 1, "client closed during the request");
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("ASCII request")
}

/// Every value of header `name` (case-insensitive) in a request head.
pub fn header_values<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .collect()
}

/// An unmasked server text frame.
pub fn text_frame(payload: &str) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut frame = vec![0x81, payload.len() as u8];
    frame.extend_from_slice(payload.as_bytes());
    frame
}

/// A correct 101 answer to the request `head`, with `extra_headers` (each
/// ending in CRLF) added.
pub fn switching(head: &str, extra_headers: &str) -> String {
    let key = header_values(head, "sec-websocket-key")[0];
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n{extra_headers}\r\n",
        derive_accept_key(key.as_bytes())
    )
}

/// Serves every connection with `reply(request head)`, written at once (one
/// TCP segment), then holds the connection open until the client goes.
pub fn serve_bytes(
    reply: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static,
) -> (SocketAddr, smol::Task<()>) {
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
    let addr = listener.get_ref().local_addr().unwrap();
    let reply = Arc::new(reply);
    let task = smol::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let reply = reply.clone();
            conns.push(smol::spawn(async move {
                let head = read_head(&mut stream).await;
                if stream.write_all(&reply(&head)).await.is_err() {
                    return;
                }
                let mut sink = [0u8; 1024];
                while stream.read(&mut sink).await.is_ok_and(|n| n > 0) {}
            }));
        }
    });
    (addr, task)
}

/// Serves every connection with `answer(request head)` followed by an ack
/// frame, then holds the connection open until the client goes.
pub fn serve_with(
    answer: impl Fn(&str) -> String + Send + Sync + 'static,
) -> (SocketAddr, smol::Task<()>) {
    serve_bytes(move |head| {
        let mut bytes = answer(head).into_bytes();
        bytes.extend(text_frame(r#"{"type":"hello_ack"}"#));
        bytes
    })
}
