//! The client side of the upgrade against hand-written servers: bytes that
//! arrive in the same segment as the 101 response are not lost, and every
//! wrong answer is an ordinary, retried connect failure with a clear error.

mod driver_support;
mod raw_server;

use raw_server::{read_head, switching, text_frame};
use std::net::TcpListener;
use std::time::Duration;

use async_io::Async;
use driver_support::{fast_config, run, ws_url};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use ws_lifecycle::SessionEvent;
use ws_lifecycle::fsm::Status;

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
        let (client, mut watch) = driver_support::start_client(ws_url(addr), fast_config());
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

#[test]
fn wrong_answers_are_clear_retried_connect_failures() {
    let cases: [(Answer, &str); 5] = [
        (
            |_| "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".into(),
            "403",
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
            let (client, mut watch) = driver_support::start_client(ws_url(addr), fast_config());
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
}

#[test]
fn a_server_that_never_answers_the_upgrade_hits_the_connect_deadline() {
    run(async {
        let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
        let addr = listener.get_ref().local_addr().unwrap();
        let server = smol::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let config = ws_lifecycle::fsm::Config {
            connect_timeout: Duration::from_millis(300),
            ..fast_config()
        };
        let (client, mut watch) = driver_support::start_client(ws_url(addr), config);
        let (cause, attempt) = watch.status(Status::Reconnecting).await;
        assert_eq!(cause, ws_lifecycle::fsm::Cause::ConnectTimeout);
        assert_eq!(attempt, 2);
        client.close().await;
        drop(server);
    });
}
