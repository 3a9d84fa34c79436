//! The event buffer stays bounded: a consumer that stalls does not make the
//! session store notices without limit. Bounded in time by
//! `driver_support::run`'s 20 s limit.

mod driver_support;

use async_io::Timer;
use driver_support::{fast_config, free_addr, ms, run, ws_url};
use futures_lite::{StreamExt, future};
use ws_lifecycle::{Client, Config, DeliveryConfig, SessionEvent};

/// A consumer that stalls while the broker is down: notices beyond
/// `event_capacity` are counted, not stored, and reported as one
/// `SessionEvent::Lagged`; and with the buffer full no new attempt starts.
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
            .no_proxy()
            .config(config)
            .delivery(DeliveryConfig {
                event_capacity: CAPACITY,
                ..DeliveryConfig::default()
            })
            .spawn()
            .unwrap();
        // The consumer stalls for one second (this is the scenario, not a
        // synchronisation sleep) while every attempt is refused. Once the
        // buffer is full, reading pauses and no new attempt starts.
        Timer::after(ms(500)).await;
        let attempt = client.attempt();
        Timer::after(ms(500)).await;
        assert_eq!(
            client.attempt(),
            attempt,
            "an attempt started while the consumer was full"
        );
        // Close first: draining makes room, and a live session would refill it.
        client.close().await;
        let mut buffered = 0usize;
        let mut missed = 0u64;
        while let Some(Some(event)) = future::poll_once(events.next()).await {
            match event {
                SessionEvent::Lagged { missed: n } => missed += n,
                // The last event always goes in, whatever the buffer holds.
                SessionEvent::Closed(_) => {}
                _ => buffered += 1,
            }
        }
        assert!(
            buffered <= CAPACITY,
            "event_capacity is {CAPACITY}, but {buffered} events were buffered for a stalled consumer"
        );
        assert!(missed > 0, "the dropped notices are reported as Lagged");
        eprintln!("stalled 1 s: {buffered} events kept, {missed} notices reported as missed");
    });
}
