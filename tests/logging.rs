//! Logging: every transition at debug with from, to, cause and attempt; the
//! URL's query string and the hello frame never reach a log record of this
//! crate (both carry credentials). A binary of its own: it installs a global
//! logger.

#[path = "../examples/common/broker.rs"]
mod broker;
mod driver_support;

use std::sync::Mutex;

use driver_support::{Watch, fast_config, run};
use log::{Level, LevelFilter, Log, Metadata, Record};
use ws_lifecycle::{Client, Status};

struct Capture;

static RECORDS: Mutex<Vec<(Level, String, String)>> = Mutex::new(Vec::new());

impl Log for Capture {
    fn enabled(&self, _: &Metadata) -> bool {
        true
    }

    fn log(&self, record: &Record) {
        let line = (
            record.level(),
            record.target().to_owned(),
            record.args().to_string(),
        );
        RECORDS.lock().unwrap_or_else(|p| p.into_inner()).push(line);
    }

    fn flush(&self) {}
}

static LOGGER: Capture = Capture;

#[test]
fn transitions_are_logged_and_secrets_never_are() {
    log::set_logger(&LOGGER).expect("the only logger in this binary");
    log::set_max_level(LevelFilter::Trace);
    run(async {
        let b = broker::Broker::start("127.0.0.1:0".parse().unwrap(), broker::Options::default())
            .unwrap();
        let url = format!("ws://{}/ws?token=SECRET-IN-QUERY", b.addr);
        let (client, events) = Client::builder(url)
            .no_proxy()
            .config(fast_config())
            .hello(|ctx| {
                let attempt = ctx.attempt;
                async move {
                    Ok::<_, std::io::Error>(format!(
                        r#"{{"type":"hello","sig":"SECRET-IN-HELLO-{attempt}"}}"#
                    ))
                }
            })
            .spawn()
            .unwrap();
        let mut watch = Watch::new(events);
        watch.status(Status::Open).await;
        // A disconnect and a reconnect, so failure paths log too.
        client.reconnect_now();
        watch.status(Status::Open).await;
        client.close().await;
        watch.end().await;
    });
    let records = RECORDS.lock().unwrap().clone();
    let ours: Vec<&(Level, String, String)> = records
        .iter()
        .filter(|(_, target, _)| target.starts_with("ws_lifecycle"))
        .collect();
    assert!(!ours.is_empty(), "the driver logs");
    let leaks = records
        .iter()
        .filter(|(_, _, t)| t.contains("SECRET"))
        .count();
    // tungstenite itself traces requests and frame payloads: documented in
    // the crate docs (keep `tungstenite` above trace in production).
    eprintln!(
        "{} records, {} from this crate; {leaks} of tungstenite's trace records mention a secret",
        records.len(),
        ours.len()
    );
    for (_, _, text) in &ours {
        assert!(!text.contains("SECRET"), "a secret reached the log: {text}");
    }
    // Every transition at debug, naming from, to, cause and attempt.
    let transitions: Vec<&String> = ours
        .iter()
        .filter(|(level, _, text)| *level == Level::Debug && text.contains(" -> "))
        .map(|(_, _, text)| text)
        .collect();
    for expected in [
        "connecting -> awaiting_ack (cause socket_opened, attempt 1)",
        "awaiting_ack -> open (cause acked, attempt 1)",
        "open -> connecting (cause reconnect_now, attempt 2)",
        "open -> closing (cause close_requested, attempt 2)",
        "closing -> closed (cause close_completed, attempt 2)",
    ] {
        assert!(
            transitions.iter().any(|t| t.ends_with(expected)),
            "missing transition log {expected:?} in {transitions:#?}"
        );
    }
    // The redacted URL is there instead.
    assert!(
        transitions
            .iter()
            .all(|t| t.contains("/ws:") && !t.contains('?'))
    );
}
