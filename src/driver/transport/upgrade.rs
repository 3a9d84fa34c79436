//! The client side of the WebSocket upgrade (RFC 6455 §4.1) as a small,
//! nameable future.
//!
//! async-tungstenite's own handshake is an unnameable `async fn` of about
//! 2 KiB plus a 4 KiB read buffer, which a session could only box per
//! attempt; with thousands of sessions connecting at once that transient
//! memory set the process's RSS. This one is ~100 bytes, lives inline in the
//! session, and reads the response in 1 KiB steps. The request bytes come
//! from tungstenite's `generate_request`, the accept key from its
//! `derive_accept_key`; the frames after the handshake are tungstenite's.

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use async_tungstenite::tungstenite::handshake::client::{Request, Response, generate_request};
use async_tungstenite::tungstenite::handshake::derive_accept_key;
use async_tungstenite::tungstenite::http::{
    HeaderMap, HeaderName, HeaderValue, StatusCode, Version,
};

use crate::fsm::Attempt;
use async_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use async_tungstenite::tungstenite::{Error as WsError, http};
use futures_lite::{AsyncRead, AsyncWrite};

use super::meter::Metered;
use super::tls::MaybeTls;

/// The WebSocket type the driver runs on: the stream is metered, so the
/// session knows what the transport took and whether bytes arrived.
pub(crate) type Socket = WebSocketStream<Metered<MaybeTls>>;

/// The largest upgrade response head accepted.
const MAX_RESPONSE_HEAD: usize = 16 << 10;
/// The most response headers accepted.
const MAX_HEADERS: usize = 64;

/// Writes the upgrade request, reads and verifies the response, and turns
/// the stream into a [`Socket`] (keeping any bytes read past the response).
pub(crate) struct Upgrade {
    stream: Option<MaybeTls>,
    request: Vec<u8>,
    written: usize,
    flushed: bool,
    response: Vec<u8>,
    accept_key: String,
    /// The `Sec-WebSocket-Protocol` value the request offered, if any.
    offered: Option<String>,
    config: WebSocketConfig,
}

impl Upgrade {
    /// Prepares the upgrade of `stream` with `request` (from
    /// `IntoClientRequest`, possibly adjusted by the caller's hook).
    pub fn new(
        request: Request,
        stream: MaybeTls,
        config: WebSocketConfig,
    ) -> Result<Self, WsError> {
        // A request may offer subprotocols over several header lines.
        let lines: Vec<&str> = request
            .headers()
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let offered = (!lines.is_empty()).then(|| lines.join(","));
        let (bytes, key) = generate_request(request)?;
        Ok(Upgrade {
            stream: Some(stream),
            request: bytes,
            written: 0,
            flushed: false,
            response: Vec::new(),
            accept_key: derive_accept_key(key.as_bytes()),
            offered,
            config,
        })
    }
}

impl Future for Upgrade {
    type Output = Result<(Socket, Response), WsError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(stream) = this.stream.as_mut() else {
            return Poll::Ready(Err(WsError::AlreadyClosed));
        };
        while this.written < this.request.len() {
            match Pin::new(&mut *stream).poll_write(cx, &this.request[this.written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into()));
                }
                Poll::Ready(Ok(n)) => this.written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => return Poll::Pending,
            }
        }
        if !this.flushed {
            // TLS buffers the request until flushed.
            match Pin::new(&mut *stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    this.flushed = true;
                    this.request = Vec::new();
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => return Poll::Pending,
            }
        }
        loop {
            let mut chunk = [0u8; 1024];
            let n = match Pin::new(&mut *stream).poll_read(cx, &mut chunk) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(WsError::Protocol(ProtocolError::HandshakeIncomplete)));
                }
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => return Poll::Pending,
            };
            this.response.extend_from_slice(&chunk[..n]);
            match parse_response(&this.response) {
                Err(e) => return Poll::Ready(Err(e)),
                Ok(None) if this.response.len() > MAX_RESPONSE_HEAD => {
                    return Poll::Ready(Err(WsError::Capacity(CapacityError::MessageTooLong {
                        size: this.response.len(),
                        max_size: MAX_RESPONSE_HEAD,
                    })));
                }
                Ok(None) => continue,
                Ok(Some((head, response))) => {
                    if let Err(e) = verify(&response, &this.accept_key, this.offered.as_deref()) {
                        return Poll::Ready(Err(e));
                    }
                    let rest = this.response.split_off(head);
                    this.response = Vec::new();
                    let Some(stream) = this.stream.take() else {
                        return Poll::Ready(Err(WsError::AlreadyClosed));
                    };
                    return Poll::Ready(
                        into_socket(stream, rest, this.config).map(|s| (s, response)),
                    );
                }
            }
        }
    }
}

/// Wraps the stream; `from_partially_read` is `async` but completes on its
/// first poll (it only builds the wrapper), so it is polled once here.
fn into_socket(
    stream: MaybeTls,
    rest: Vec<u8>,
    config: WebSocketConfig,
) -> Result<Socket, WsError> {
    let mut wrap = pin!(WebSocketStream::from_partially_read(
        // Bytes read past the response are the first frames' bytes.
        Metered::new(stream).with_read(rest.len()),
        rest,
        Role::Client,
        Some(config)
    ));
    match wrap.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(socket) => Ok(socket),
        Poll::Pending => Err(WsError::Io(io::Error::other(
            "stream wrapper did not complete at once",
        ))),
    }
}

/// The response head, once complete: its length and the parsed response.
fn parse_response(bytes: &[u8]) -> Result<Option<(usize, Response)>, WsError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut raw = httparse::Response::new(&mut headers);
    let head = match raw.parse(bytes)? {
        httparse::Status::Partial => return Ok(None),
        httparse::Status::Complete(n) => n,
    };
    if raw.version != Some(1) {
        return Err(WsError::Protocol(ProtocolError::WrongHttpVersion));
    }
    let status = StatusCode::from_u16(raw.code.unwrap_or(0)).map_err(http::Error::from)?;
    let mut response = Response::new(None);
    *response.status_mut() = status;
    *response.version_mut() = Version::HTTP_11;
    for h in raw.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(http::Error::from)?;
        let value = HeaderValue::from_bytes(h.value).map_err(http::Error::from)?;
        response.headers_mut().append(name, value);
    }
    Ok(Some((head, response)))
}

/// RFC 6455 §4.1, the client's checks of the server's handshake.
fn verify(response: &Response, accept_key: &str, offered: Option<&str>) -> Result<(), WsError> {
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let mut refused = Response::new(None);
        *refused.status_mut() = response.status();
        *refused.headers_mut() = response.headers().clone();
        return Err(WsError::Http(Box::new(refused)));
    }
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
    if !header("upgrade").is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket")) {
        return Err(WsError::Protocol(
            ProtocolError::MissingUpgradeWebSocketHeader,
        ));
    }
    let has_upgrade_token = |v: &str| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    };
    if !header("connection").is_some_and(has_upgrade_token) {
        return Err(WsError::Protocol(
            ProtocolError::MissingConnectionUpgradeHeader,
        ));
    }
    if header("sec-websocket-accept").map(str::trim) != Some(accept_key) {
        return Err(WsError::Protocol(
            ProtocolError::SecWebSocketAcceptKeyMismatch,
        ));
    }
    // Step 5: no extension was offered (tungstenite implements none, so a
    // hook must not offer one either): any in the response fails it.
    let extensions = response.headers().get_all("sec-websocket-extensions");
    if extensions
        .iter()
        .any(|v| !v.as_bytes().trim_ascii().is_empty())
    {
        return Err(WsError::Protocol(ProtocolError::InvalidHeader(Box::new(
            HeaderName::from_static("sec-websocket-extensions"),
        ))));
    }
    // Step 6: a subprotocol the client did not offer, or more than one,
    // fails the connection; none selected is allowed (the caller sees it in
    // the upgrade response).
    if response
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .count()
        > 1
    {
        use async_tungstenite::tungstenite::error::SubProtocolError;
        return Err(WsError::Protocol(
            ProtocolError::SecWebSocketSubProtocolError(SubProtocolError::InvalidSubProtocol),
        ));
    }
    if let Some(chosen) = header("sec-websocket-protocol") {
        let offered_it = offered.is_some_and(|o| o.split(',').any(|p| p.trim() == chosen.trim()));
        if !offered_it {
            use async_tungstenite::tungstenite::error::SubProtocolError;
            let e = if offered.is_some() {
                SubProtocolError::InvalidSubProtocol
            } else {
                SubProtocolError::ServerSentSubProtocolNoneRequested
            };
            return Err(WsError::Protocol(
                ProtocolError::SecWebSocketSubProtocolError(e),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn head(lines: &[&str]) -> Vec<u8> {
        let mut s = lines.join("\r\n");
        s.push_str("\r\n\r\n");
        s.into_bytes()
    }

    fn check(bytes: &[u8], offered: Option<&str>) -> Result<Response, WsError> {
        let (_, response) = parse_response(bytes)?.expect("complete");
        verify(&response, &derive_accept_key(KEY.as_bytes()), offered)?;
        Ok(response)
    }

    fn ok_lines() -> Vec<&'static str> {
        vec![
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            // The RFC's own example accept value for KEY.
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
        ]
    }

    #[test]
    fn the_rfc_example_is_accepted_and_trailing_bytes_are_kept() {
        let mut bytes = head(&ok_lines());
        let len = bytes.len();
        bytes.extend_from_slice(b"\x81\x02hi");
        let (n, _) = parse_response(&bytes).unwrap().unwrap();
        assert_eq!(n, len);
        assert!(check(&bytes, None).is_ok());
    }

    #[test]
    fn a_partial_head_waits_for_more() {
        assert!(
            parse_response(b"HTTP/1.1 101 Switching Protocols\r\nUpgr")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn every_rfc_check_fails_the_connection() {
        let mut refused = ok_lines();
        refused[0] = "HTTP/1.1 403 Forbidden";
        assert!(matches!(check(&head(&refused), None), Err(WsError::Http(r)) if r.status() == 403));

        let mut no_upgrade = ok_lines();
        no_upgrade.remove(1);
        assert!(matches!(
            check(&head(&no_upgrade), None),
            Err(WsError::Protocol(
                ProtocolError::MissingUpgradeWebSocketHeader
            ))
        ));

        let mut no_connection = ok_lines();
        no_connection[2] = "Connection: keep-alive";
        assert!(matches!(
            check(&head(&no_connection), None),
            Err(WsError::Protocol(
                ProtocolError::MissingConnectionUpgradeHeader
            ))
        ));

        let mut bad_key = ok_lines();
        bad_key[3] = "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        assert!(matches!(
            check(&head(&bad_key), None),
            Err(WsError::Protocol(
                ProtocolError::SecWebSocketAcceptKeyMismatch
            ))
        ));

        let mut unasked = ok_lines();
        unasked.push("Sec-WebSocket-Protocol: chat");
        assert!(matches!(
            check(&head(&unasked), None),
            Err(WsError::Protocol(
                ProtocolError::SecWebSocketSubProtocolError(_)
            ))
        ));
        assert!(matches!(
            check(&head(&unasked), Some("v1, v2")),
            Err(WsError::Protocol(
                ProtocolError::SecWebSocketSubProtocolError(_)
            ))
        ));
        assert!(check(&head(&unasked), Some("v1, chat")).is_ok());
    }

    #[test]
    fn header_tokens_are_case_insensitive() {
        let mut lines = ok_lines();
        lines[1] = "upgrade: WebSocket";
        lines[2] = "connection: keep-alive, UPGRADE";
        assert!(check(&head(&lines), None).is_ok());
    }

    #[test]
    fn garbage_and_http_1_0_are_errors_not_panics() {
        assert!(parse_response(b"\x00\x01garbage\r\n\r\n").is_err());
        assert!(parse_response(&head(&["HTTP/1.0 101 Switching Protocols"])).is_err());
        let many: Vec<String> = (0..100).map(|i| format!("X-{i}: y")).collect();
        let mut lines = vec!["HTTP/1.1 101 Switching Protocols".to_owned()];
        lines.extend(many);
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        assert!(matches!(
            parse_response(&head(&refs)),
            Err(WsError::Capacity(CapacityError::TooManyHeaders))
        ));
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: 2000,
            failure_persistence: Some(Box::new(
                proptest::test_runner::FileFailurePersistence::Direct("proptest-regressions/upgrade.txt"),
            )),
            ..proptest::test_runner::Config::default()
        })]

        /// Whatever a server sends as its handshake, parsing and checking
        /// return a value or a typed error: no panic.
        #[test]
        fn any_server_bytes_are_an_answer_or_a_typed_error(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
            prefix in proptest::sample::select(vec!["", "HTTP/1.1 101 Switching Protocols\r\n", "HTTP/1.1 "]),
        ) {
            let mut input = prefix.as_bytes().to_vec();
            input.extend_from_slice(&bytes);
            if let Ok(Some((n, response))) = parse_response(&input) {
                proptest::prop_assert!(n <= input.len());
                let _ = verify(&response, "key", Some("a, b"));
                let _ = verify(&response, "key", None);
            }
        }
    }
}

/// The visible part of the broker's upgrade response.
#[derive(Debug, Clone)]
pub struct UpgradeResponse {
    /// The attempt it belongs to.
    pub attempt: Attempt,
    /// The HTTP status (101).
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
}

impl UpgradeResponse {
    /// The subprotocol the broker selected, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.headers.get("sec-websocket-protocol")?.to_str().ok()
    }
}

/// The last upgrade response, as [`Client::upgrade_response`](crate::Client::upgrade_response) keeps it
/// between calls: one small allocation instead of a `HeaderMap` (about 650
/// bytes in every session, for a caller that rarely asks).
pub(crate) struct KeptResponse {
    attempt: Attempt,
    status: u16,
    /// `name:value\n` for each value, in order. Neither a name nor a value
    /// can hold `\n`, and a name cannot hold `:`.
    headers: Box<[u8]>,
}

impl KeptResponse {
    pub(crate) fn new(response: &UpgradeResponse) -> Self {
        let mut headers = Vec::new();
        for (name, value) in &response.headers {
            headers.extend_from_slice(name.as_str().as_bytes());
            headers.push(b':');
            headers.extend_from_slice(value.as_bytes());
            headers.push(b'\n');
        }
        KeptResponse {
            attempt: response.attempt,
            status: response.status.as_u16(),
            headers: headers.into_boxed_slice(),
        }
    }

    /// The response as it was read.
    pub(crate) fn response(&self) -> UpgradeResponse {
        use async_tungstenite::tungstenite::http::{
            HeaderMap, HeaderName, HeaderValue, StatusCode,
        };
        let mut headers = HeaderMap::new();
        for line in self.headers.split(|b| *b == b'\n') {
            let Some(colon) = line.iter().position(|b| *b == b':') else {
                continue;
            };
            // Both parts came from a valid map: these cannot fail.
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(&line[..colon]),
                HeaderValue::from_bytes(&line[colon + 1..]),
            ) {
                headers.append(name, value);
            }
        }
        UpgradeResponse {
            attempt: self.attempt,
            status: StatusCode::from_u16(self.status).unwrap_or(StatusCode::SWITCHING_PROTOCOLS),
            headers,
        }
    }
}

#[cfg(test)]
mod response_tests {
    use super::*;
    use async_tungstenite::tungstenite::http::{HeaderMap, HeaderValue, StatusCode};

    #[test]
    fn the_kept_response_is_the_response_read() {
        let mut headers = HeaderMap::new();
        headers.insert("upgrade", HeaderValue::from_static("websocket"));
        headers.append("set-cookie", HeaderValue::from_static("a=1; Path=/"));
        headers.append("set-cookie", HeaderValue::from_static("b=2"));
        headers.insert("x-odd", HeaderValue::from_bytes(b"caf\xe9: \t1").unwrap());
        headers.insert("x-empty", HeaderValue::from_static(""));
        let read = UpgradeResponse {
            attempt: 7,
            status: StatusCode::SWITCHING_PROTOCOLS,
            headers,
        };
        let kept = KeptResponse::new(&read).response();
        assert_eq!(kept.attempt, 7);
        assert_eq!(kept.status, StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(kept.headers, read.headers);
        let cookies: Vec<_> = kept.headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1; Path=/", "b=2"]);
    }
}
