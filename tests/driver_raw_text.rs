//! `DeliveryConfig::raw_text`: text frames reach the caller verbatim as
//! `SessionEvent::Text`, JSON or not, in order; the ack predicate still
//! sees parsed JSON while the session awaits the ack; a close never
//! overtakes the frames read before it; and a stalled consumer still
//! pauses reading.

mod driver_support;

use std::net::{SocketAddr, TcpListener};

use async_io::{Async, Timer};
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use futures_lite::{StreamExt, future};
use ws_lifecycle::{Client, Config, DeliveryConfig, SessionEvent};

use driver_support::*;

const ACK: &str = r#"{"type":"hello_ack","token":"t-1"}"#;

/// One connection: reads the hello, sends `before` (while the client awaits
/// the ack), the ack, `after`, then a close frame (4000, "bye") if
/// `close`; then reads until the client's close or EOF.
fn broker(before: Vec<String>, after: Vec<String>, close: bool) -> (SocketAddr, smol::Task<()>) {
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
    let addr = listener.get_ref().local_addr().unwrap();
    let task = smol::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = async_tungstenite::accept_async(stream).await.unwrap();
        match ws.next().await {
            Some(Ok(Message::Text(_))) => {}
            other => panic!("expected the hello, got {other:?}"),
        }
        let frames = before.into_iter().chain([ACK.to_owned()]).chain(after);
        for text in frames {
            ws.send(Message::text(text)).await.unwrap();
        }
        if close {
            let bye = CloseFrame {
                code: 4000.into(),
                reason: "bye".into(),
            };
            let _ = ws.send(Message::Close(Some(bye))).await;
        }
        while let Some(Ok(_)) = ws.next().await {}
    });
    (addr, task)
}

fn raw_delivery(event_capacity: usize) -> DeliveryConfig {
    DeliveryConfig {
        event_capacity,
        raw_text: true,
        ..DeliveryConfig::default()
    }
}

/// The caller's view of an event, for comparing sequences.
fn describe(event: &SessionEvent) -> Option<String> {
    match event {
        SessionEvent::Text(text) => Some(format!("text {text}")),
        SessionEvent::Acked { ack, .. } => Some(format!("acked {ack}")),
        SessionEvent::Message(value) => Some(format!("message {value}")),
        SessionEvent::InvalidFrame { .. } => Some("invalid".to_owned()),
        SessionEvent::Disconnected { code, reason, .. } => {
            Some(format!("disconnected {code} {reason}"))
        }
        _ => None,
    }
}

#[test]
fn raw_text_is_delivered_verbatim_in_order_and_the_ack_still_works() {
    run(async {
        let before = vec![r#"{"type":"welcome"}"#.to_owned(), "not json".to_owned()];
        let after = vec![
            r#"{ "seq" : 1 }"#.to_owned(),
            r#"{"seq":2"#.to_owned(),
            "plain words, é ü".to_owned(),
            r#"{"seq":3}"#.to_owned(),
        ];
        let (addr, broker) = broker(before, after, true);
        let (client, events) = Client::builder(ws_url(addr))
            .no_proxy()
            .config(fast_config())
            .delivery(raw_delivery(1024))
            .spawn()
            .unwrap();
        let mut w = Watch::new(events);
        let mut seen = Vec::new();
        while !seen.iter().any(|s: &String| s.starts_with("disconnected")) {
            if let Some(s) = describe(&w.next().await) {
                seen.push(s);
            }
        }
        assert_eq!(
            seen,
            [
                // Before the ack: parsed for the predicate (not the ack),
                // delivered verbatim; not JSON is no InvalidFrame here.
                r#"text {"type":"welcome"}"#,
                "text not json",
                r#"acked {"token":"t-1","type":"hello_ack"}"#,
                r#"text { "seq" : 1 }"#,
                r#"text {"seq":2"#,
                "text plain words, é ü",
                r#"text {"seq":3}"#,
                // Read after every frame before it.
                "disconnected 4000 bye",
            ],
            "seen:\n  {}",
            w.history()
        );
        assert_eq!(
            client.last_ack(),
            Some(serde_json::from_str(ACK).unwrap()),
            "the ack is kept parsed"
        );
        close_and_end(&client, &mut w).await;
        drop(broker);
    });
}

#[test]
fn without_raw_text_the_same_frames_are_parsed_and_non_json_is_reported() {
    run(async {
        let after = vec![r#"{ "seq" : 1 }"#.to_owned(), "not json".to_owned()];
        let (addr, broker) = broker(Vec::new(), after, true);
        let (client, events) = Client::builder(ws_url(addr))
            .no_proxy()
            .config(fast_config())
            .spawn()
            .unwrap();
        let mut w = Watch::new(events);
        let mut seen = Vec::new();
        while !seen.iter().any(|s: &String| s.starts_with("disconnected")) {
            if let Some(s) = describe(&w.next().await) {
                seen.push(s);
            }
        }
        assert_eq!(
            seen,
            [
                r#"acked {"token":"t-1","type":"hello_ack"}"#,
                r#"message {"seq":1}"#,
                "invalid",
                "disconnected 4000 bye",
            ]
        );
        close_and_end(&client, &mut w).await;
        drop(broker);
    });
}

/// A consumer that stalls: the session reads at most `event_capacity`
/// frames (and at most one past it) and stops; once the consumer drains,
/// every frame arrives, in order, verbatim.
#[test]
fn a_stalled_raw_text_consumer_still_pauses_reading() {
    run(async {
        const CAPACITY: usize = 8;
        const N: usize = 2000;
        let texts: Vec<String> = (0..N).map(|i| format!("frame {i}")).collect();
        let (addr, broker) = broker(Vec::new(), texts.clone(), false);
        let config = Config {
            stale_after: ms(10_000),
            ..fast_config()
        };
        let (client, mut events) = Client::builder(ws_url(addr))
            .no_proxy()
            .config(config)
            .delivery(raw_delivery(CAPACITY))
            .spawn()
            .unwrap();
        let mut next = async || within(WAIT, events.next()).await.expect("the events ended");
        while !matches!(next().await, SessionEvent::Acked { .. }) {}
        // The stall is the scenario: the broker has sent everything by now.
        Timer::after(ms(300)).await;
        // `messages_in` counts the ack too.
        let read = client.stats().messages_in - 1;
        assert!(
            (1..=CAPACITY as u64 + 1).contains(&read),
            "{read} frames read while the consumer (capacity {CAPACITY}) stalled"
        );
        for (i, want) in texts.iter().enumerate() {
            match next().await {
                SessionEvent::Text(text) => assert_eq!(&text, want, "frame {i}"),
                other => panic!("frame {i}: {other:?}"),
            }
        }
        assert_eq!(client.stats().messages_in, N as u64 + 1);
        client.close().await;
        while future::poll_once(events.next()).await.flatten().is_some() {}
        drop(broker);
    });
}
