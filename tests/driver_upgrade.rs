//! The client side of the upgrade against hand-written servers: bytes that
//! arrive in the same segment as the 101 response are not lost, every wrong
//! answer is a connect failure with a clear error (retried, except an HTTP
//! status the policy says not to retry, such as 403), RFC
//! 6455 §4.1 client steps 5 and 6 (extensions, subprotocols) in full, and a
//! server that never answers hits the connect deadline and is retried.

mod driver_support;
mod raw_server;

use raw_server::{header_values, read_head, serve_with, switching, text_frame};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use async_io::Async;
use driver_support::{
    WAIT, Watch, close_and_check, fast_config, ms, run, spawn_watched, start_client, within, ws_url,
};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use ws_lifecycle::{Cause, Client, CloseReason, Config, RejectedBy, SessionEvent, Status};

#[test]
fn a_frame_sent_with_the_101_response_is_not_lost() {
    run(async {
        let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
        let addr = listener.get_ref().local_addr().unwrap();
        let server = smol::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let head = read_head(&mut stream).await;
            // The response head and the ack in one write: one TCP segment.
            let mut bytes = switching(&head, "").into_bytes();
            bytes.extend(text_frame(r#"{"type":"hello_ack"}"#));
            bytes.extend(text_frame(r#"{"type":"welcome","n":1}"#));
            stream.write_all(&bytes).await.unwrap();
            // Keep the connection until the client goes.
            let mut sink = [0u8; 256];
            while stream.read(&mut sink).await.is_ok_and(|n| n > 0) {}
        });
        let (client, mut watch) = start_client(ws_url(addr), fast_config());
        watch.status(Status::Open).await;
        let welcome = watch.message().await;
        assert_eq!(welcome["type"], "welcome");
        client.close().await;
        drop(server);
    });
}

/// A server's whole reply to a request head.
type Answer = fn(&str) -> String;

/// Serves one connection with `answer(head)`, then closes it; repeats.
fn serve_forever(answer: Answer) -> (std::net::SocketAddr, smol::Task<()>) {
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
    let addr = listener.get_ref().local_addr().unwrap();
    let task = smol::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let head = read_head(&mut stream).await;
            let _ = stream.write_all(answer(&head).as_bytes()).await;
            let _ = stream.flush().await;
        }
    });
    (addr, task)
}

/// Wrong answers are clear connect failures, retried — except an HTTP
/// status that is not retried (any but 408, 429 and 5xx by default): a 403
/// ends the session (the request itself is wrong).
#[test]
fn wrong_answers_are_clear_retried_connect_failures() {
    let cases: [(Answer, &str); 5] = [
        (
            |_| "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".into(),
            "503",
        ),
        (
            |_| {
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n".into()
            },
            "Sec-WebSocket-Accept",
        ),
        (
            |head| switching(head, "").replace("Upgrade: websocket\r\n", ""),
            "Upgrade",
        ),
        (
            |_| "\u{0}\u{1}garbage that is not HTTP\r\n\r\n".into(),
            "upgrade failed",
        ),
        (|_| String::new(), "upgrade failed"),
    ];
    for (answer, expected) in cases {
        run(async move {
            let (addr, server) = serve_forever(answer);
            let (client, mut watch) = start_client(ws_url(addr), fast_config());
            for attempt in 1..=2 {
                let (failed, error) = watch.connect_failed().await;
                eprintln!("attempt {attempt}: {error}");
                assert_eq!(failed, attempt);
                assert!(
                    error.to_lowercase().contains(&expected.to_lowercase()),
                    "attempt {attempt}: {error:?} should mention {expected:?}"
                );
            }
            assert_ne!(client.status(), Status::Open);
            assert_ne!(
                client.status(),
                Status::Closed,
                "a wrong answer is retried, not terminal"
            );
            let closed = client.close().await;
            assert!(closed.unsent.is_empty());
            let rest = watch.end().await;
            assert!(rest.iter().any(|e| matches!(e, SessionEvent::Closed(_))));
            drop(server);
        });
    }
    // 403: a clear connect failure with its status, then the end.
    run(async {
        let (addr, server) =
            serve_forever(|_| "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".into());
        let (client, mut watch) = start_client(ws_url(addr), fast_config());
        let (failed, error) = watch.connect_failed().await;
        assert_eq!(failed, 1);
        assert!(error.contains("403"), "{error:?} should mention 403");
        let rest = watch.end().await;
        let rejected = CloseReason::Rejected {
            by: RejectedBy::Http { status: 403 },
        };
        assert!(
            rest.iter()
                .any(|e| matches!(e, SessionEvent::Closed(o) if o.reason == rejected)),
            "{rest:?}"
        );
        assert!(
            !rest
                .iter()
                .any(|e| matches!(e, SessionEvent::ConnectFailed { .. }))
        );
        assert_eq!(client.status(), Status::Closed);
        drop(server);
    });
}

/// A server that accepts TCP but never answers the upgrade: the attempt
/// hits `connect_timeout`, is abandoned well within bounds, and the next
/// attempt connects again.
#[test]
fn a_server_that_never_answers_the_upgrade_hits_the_connect_deadline_and_is_retried() {
    run(async {
        let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
        let addr = listener.get_ref().local_addr().unwrap();
        let config = Config {
            connect_timeout: ms(300),
            ..fast_config()
        };
        let (client, mut w) = start_client(ws_url(addr), config);
        let (_first, _) = listener.accept().await.unwrap();
        let start = Instant::now();
        assert_eq!(
            w.status(Status::Reconnecting).await,
            (Cause::ConnectTimeout, 2)
        );
        let took = start.elapsed();
        assert!(took < Duration::from_secs(3), "{took:?}");
        // The next attempt connects again.
        let (_second, _) = within(WAIT, listener.accept()).await.unwrap();
        assert_eq!(w.status(Status::Connecting).await, (Cause::RetryDue, 2));
        println!(
            "hanging upgrade: abandoned {took:?} after the TCP accept (connect_timeout 300ms)"
        );
        close_and_check(&client, &mut w, Status::Connecting).await;
    });
}

// ── RFC 6455 §4.1 client checks ─────────────────────────────────────────────

/// The first of: the session opened (`Ok(attempt)`), or an attempt failed to
/// connect (`Err(error)`).
async fn open_or_connect_failure(w: &mut Watch) -> Result<u64, (u64, String)> {
    w.until("Open or ConnectFailed", |e| match e {
        SessionEvent::Status {
            to: Status::Open,
            attempt,
            ..
        } => Some(Ok(*attempt)),
        SessionEvent::ConnectFailed { attempt, error } => Some(Err((*attempt, error.to_string()))),
        _ => None,
    })
    .await
}

/// Client step 5: an extension the client did not offer (it offers none;
/// tungstenite implements none) fails the handshake with a clear error,
/// instead of opening and dying on the first compressed frame.
#[test]
fn upgrade_fails_on_an_extension_the_client_did_not_offer() {
    run(async {
        let (addr, server) =
            serve_with(|head| switching(head, "Sec-WebSocket-Extensions: permessage-deflate\r\n"));
        let (client, mut w) = start_client(ws_url(addr), fast_config());
        let outcome = open_or_connect_failure(&mut w).await;
        assert!(
            matches!(&outcome, Err((1, _))),
            "an unrequested extension must fail the upgrade of attempt 1, got {outcome:?}"
        );
        client.close().await;
        drop(server);
    });
}

/// RFC 6455 §11.3.4: a request may offer subprotocols over several header
/// lines; a server choosing one offered on the second line is accepted.
#[test]
fn upgrade_accepts_a_subprotocol_offered_on_a_second_header_line() {
    run(async {
        let (addr, server) = serve_with(|head| {
            let offered = header_values(head, "sec-websocket-protocol");
            assert_eq!(offered, ["v1", "v2"], "the request carries both lines");
            switching(head, "Sec-WebSocket-Protocol: v2\r\n")
        });
        let builder = Client::builder(ws_url(addr))
            .config(fast_config())
            .request(|_, request| {
                let headers = request.headers_mut();
                headers.append("sec-websocket-protocol", "v1".parse().unwrap());
                headers.append("sec-websocket-protocol", "v2".parse().unwrap());
            });
        let (client, mut w) = spawn_watched(builder);
        let outcome = open_or_connect_failure(&mut w).await;
        assert_eq!(
            outcome,
            Ok(1),
            "v2 was offered (second header line), so the broker may select it"
        );
        assert_eq!(
            client
                .upgrade_response()
                .and_then(|r| r.subprotocol().map(str::to_owned)),
            Some("v2".to_owned())
        );
        client.close().await;
        drop(server);
    });
}
