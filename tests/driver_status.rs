//! Waiting for a status: `wait_for` sees a status that the session enters
//! and leaves within one poll.

mod driver_support;
mod raw_server;

use async_io::Timer;
use driver_support::{TEST_LIMIT, fast_config, ms, within, ws_url};
use futures_lite::future;
use raw_server::{serve_bytes, switching, text_frame};
use ws_lifecycle::{Client, Status};

/// Against a broker that acks and closes in one segment (a flapping
/// broker), the session enters and leaves Open within one poll on every
/// attempt; `wait_for(Open)` still returns. Deterministic: the session
/// future and the waiter are polled on one thread.
#[test]
fn wait_for_open_sees_an_open_that_the_session_passes_through() {
    smol::block_on(within(TEST_LIMIT, async {
        // Every connection: 101, ack and a close frame (1000) in one write.
        let (addr, server) = serve_bytes(|head| {
            let mut bytes = switching(head, "").into_bytes();
            bytes.extend(text_frame(r#"{"type":"hello_ack"}"#));
            bytes.extend([0x88, 0x02, 0x03, 0xE8]);
            bytes
        });
        let (client, events, session) = Client::builder(ws_url(addr))
            .no_proxy()
            .config(fast_config())
            .build()
            .unwrap();
        drop(events);
        // (`ready()` answers for the present: it may well miss these Opens.)
        let waiter = async {
            future::or(async { Some(client.wait_for(Status::Open).await) }, async {
                Timer::after(ms(3000)).await;
                None
            })
            .await
        };
        let open = future::or(
            async {
                session.await;
                panic!("the session ended")
            },
            waiter,
        )
        .await;
        let attempts = client.attempt();
        drop(client);
        drop(server);
        assert_eq!(
            open,
            Some(Status::Open),
            "wait_for(Open) hung for 3 s while the session opened on every one of {attempts} attempts"
        );
    }));
}
