//! The event buffer stays bounded: a consumer that stalls does not make the
//! session store notices without limit. Bounded in time by
//! `driver_support::run`'s 20 s limit.

mod driver_support;

use async_io::Timer;
use driver_support::{fast_config, free_addr, ms, run, ws_url};
use futures_lite::{StreamExt, future};
use ws_lifecycle::fsm::Config;
use ws_lifecycle::{Client, DeliveryConfig, SessionEvent};

/// A consumer that stalls while the broker is down: notices beyond
/// `event_capacity` are counted, not stored, and reported as one
/// `SessionEvent::Lagged`.
#[test]
fn event_buffer_stays_bounded_while_the_consumer_stalls() {
    run(async {
        const CAPACITY: usize = 8;
        let config = Config {
            backoff: vec![ms(2)],
            min_delay: ms(2),
            jitter: 0.0,
            ..fast_config()
        };
        let (client, mut events) = Client::builder(ws_url(free_addr()))
            .config(config)
            .delivery(DeliveryConfig {
                event_capacity: CAPACITY,
                ..DeliveryConfig::default()
            })
            .spawn()
            .unwrap();
        // The consumer stalls for one second (this is the scenario, not a
        // synchronisation sleep) while every attempt is refused.
        Timer::after(ms(1000)).await;
        let mut buffered = 0usize;
        let mut missed = 0u64;
        while let Some(Some(event)) = future::poll_once(events.next()).await {
            match event {
                SessionEvent::Lagged { missed: n } => missed += n,
                _ => buffered += 1,
            }
        }
        client.close().await;
        assert!(
            buffered <= CAPACITY,
            "event_capacity is {CAPACITY}, but {buffered} events were buffered for a stalled consumer"
        );
        assert!(missed > 0, "the dropped notices are reported as Lagged");
        eprintln!("stalled 1 s: {buffered} events kept, {missed} notices reported as missed");
    });
}
