//! Caller code that panics (a hello builder, a request hook) fails that
//! attempt, which is retried; it never ends the session. Bounded in time by
//! `driver_support::run`'s 20 s limit.

#[path = "../examples/common/broker.rs"]
mod broker;
mod driver_support;

use broker::{Broker, Options};
use driver_support::{any_port, fast_config, run, spawn_watched};
use ws_lifecycle::{Client, SessionEvent, Status};

/// A hello builder that panics before returning its future is a hello
/// failure (retried), not the end of the session.
#[test]
fn hello_builder_that_panics_synchronously_is_a_retried_hello_failure() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let builder = Client::builder(broker.url())
            .config(fast_config())
            .hello(|ctx| {
                if ctx.attempt == 1 {
                    panic!("a hello builder that panics before returning its future");
                }
                async move { Ok::<_, std::io::Error>(r#"{"type":"hello"}"#.to_owned()) }
            });
        first_attempt_fails_then_second_opens(builder, "HelloFailed", |e| match e {
            SessionEvent::HelloFailed { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .await;
        broker.stop();
    });
}

/// A panicking request hook is that attempt's connect failure, retried.
#[test]
fn request_hook_that_panics_is_a_retried_connect_failure() {
    run(async {
        let broker = Broker::start(any_port(), Options::default()).unwrap();
        let builder =
            Client::builder(broker.url())
                .config(fast_config())
                .request(|attempt, _request| {
                    if attempt == 1 {
                        panic!("a request hook that panics");
                    }
                });
        first_attempt_fails_then_second_opens(builder, "ConnectFailed", |e| match e {
            SessionEvent::ConnectFailed { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .await;
        broker.stop();
    });
}

/// Runs `builder`'s session: attempt 1 must end in the failure `failure`
/// recognises (not in Closed: caller code that panics fails the attempt,
/// never the session), and attempt 2 must open.
async fn first_attempt_fails_then_second_opens(
    builder: ws_lifecycle::ClientBuilder,
    what: &str,
    failure: impl Fn(&SessionEvent) -> Option<u64>,
) {
    let (client, mut w) = spawn_watched(builder);
    let first = w
        .until(&format!("{what} or Closed"), |e| match e {
            SessionEvent::Closed(reason) => Some(Err(reason.clone())),
            other => failure(other).map(Ok),
        })
        .await;
    assert_eq!(
        first,
        Ok(1),
        "the panic must fail attempt 1 ({what}), not end the session"
    );
    assert_eq!(w.status(Status::Open).await.1, 2);
    client.close().await;
}
