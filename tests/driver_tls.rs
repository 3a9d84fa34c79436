//! `wss://` against a local TLS echo broker whose certificates come from a
//! test CA (rcgen): a client that trusts the CA round-trips; an unknown
//! issuer, a certificate for another name and an expired certificate are
//! each refused with their own typed cause and retried; the failure policy
//! can make them terminal; extra roots from PEM bytes or a file are
//! trusted beside the system's.

mod driver_support;
mod tls_support;

use std::sync::atomic::Ordering;

use serde_json::json;
use ws_lifecycle::{
    Cause, Client, CloseReason, ConnectError, ConnectFailure, Failure, RejectedBy, SessionEvent,
    Status, TlsFailure, Verdict,
};

use driver_support::*;
use tls_support::*;

/// The next connect failure, which must be a TLS one: (attempt, host,
/// cause, the error's text).
async fn tls_failure(w: &mut Watch) -> (u64, String, TlsFailure, String) {
    w.until("a TLS ConnectFailed", |e| match e {
        SessionEvent::ConnectFailed {
            attempt,
            error: error @ ConnectError::Tls { host, cause, .. },
        } => Some((*attempt, host.clone(), cause.clone(), error.to_string())),
        SessionEvent::ConnectFailed { error, .. } => panic!("not a TLS failure: {error}"),
        _ => None,
    })
    .await
}

/// Starts a client for `url` trusting only `ca`, and checks that attempts
/// 1 and 2 fail with `cause` (the broker never sees a hello) and are
/// retried on the schedule.
fn refused_with(ca: &Ca, broker: &TlsBroker, url: String, cause: TlsFailure, words: &str) {
    run(async {
        let (client, mut w) = spawn_watched(
            Client::builder(url)
                .config(fast_config())
                .tls_config(ca.client_config()),
        );
        for expected in 1..=2 {
            let (attempt, _host, got, text) = tls_failure(&mut w).await;
            assert_eq!((attempt, &got), (expected, &cause), "{text}");
            assert!(text.contains(words), "{text:?} lacks {words:?}");
            if expected == 1 {
                println!("{cause:?}: {text}");
            }
            // An attempt failure, retried on the schedule, not terminal.
            assert_eq!(
                w.status(Status::Reconnecting).await,
                (Cause::ConnectFailed, expected + 1)
            );
        }
        assert_eq!(broker.stats.hellos.load(Ordering::SeqCst), 0);
        wait_until("the server to see the failed handshakes", || {
            broker.stats.handshakes_failed.load(Ordering::SeqCst) >= 2
        })
        .await;
        close_and_end(&client, &mut w).await;
    });
}

/// Opens, echoes one message over TLS, and closes cleanly (the broker
/// answers the close).
async fn round_trip(builder: ws_lifecycle::ClientBuilder, broker: &TlsBroker) {
    let (client, mut w) = spawn_watched(builder.config(fast_config()));
    assert_eq!(w.status(Status::Open).await, (Cause::Acked, 1));
    client.send(&json!({ "over": "tls" })).unwrap();
    let echo = w.message().await;
    assert_eq!(echo["data"]["over"], "tls");
    let rest = close_and_end(&client, &mut w).await;
    assert!(
        rest.iter().any(|e| matches!(
            e,
            SessionEvent::Status {
                cause: Cause::CloseCompleted,
                ..
            }
        )),
        "the TLS broker answered the close: {rest:?}"
    );
    assert_eq!(broker.stats.hellos.load(Ordering::SeqCst), 1);
    assert_eq!(broker.stats.closes.load(Ordering::SeqCst), 1);
}

#[test]
fn wss_round_trip_with_a_custom_config_that_trusts_the_ca() {
    let ca = Ca::new("test CA");
    let broker = TlsBroker::start(ca.issue(&["localhost"]));
    let builder = Client::builder(broker.url()).tls_config(ca.client_config());
    run(round_trip(builder, &broker));
}

#[test]
fn wss_round_trip_with_a_trusted_self_signed_certificate() {
    let server = self_signed();
    let mut roots = ws_lifecycle::rustls::RootCertStore::empty();
    roots.add(server.cert.clone()).unwrap();
    let broker = TlsBroker::start(server);
    let tls = config_from_roots(roots);
    run(round_trip(
        Client::builder(broker.url()).tls_config(tls),
        &broker,
    ));
}

#[test]
fn extra_roots_from_pem_bytes_are_trusted_beside_the_system_roots() {
    let ca = Ca::new("company CA");
    let broker = TlsBroker::start(ca.issue(&["localhost"]));
    let builder = Client::builder(broker.url()).add_root_pem(ca.pem.as_bytes());
    run(round_trip(builder, &broker));
}

#[test]
fn extra_roots_from_a_pem_file_are_trusted_beside_the_system_roots() {
    let ca = Ca::new("company CA");
    let broker = TlsBroker::start(ca.issue(&["localhost"]));
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join(format!("driver_tls-ca-{}.pem", std::process::id()));
    // Another CA first: every certificate of the file is trusted.
    let other = Ca::new("another CA");
    std::fs::write(&file, format!("{}{}", other.pem, ca.pem)).unwrap();
    let builder = Client::builder(broker.url()).add_roots_from_file(&file);
    run(round_trip(builder, &broker));
    let _ = std::fs::remove_file(&file);
}

#[test]
fn an_unknown_issuer_is_refused_as_unknown_issuer_and_retried() {
    let (ca, other) = (Ca::new("the broker's CA"), Ca::new("the client's CA"));
    let broker = TlsBroker::start(ca.issue(&["localhost"]));
    refused_with(
        &other,
        &broker,
        broker.url(),
        TlsFailure::UnknownIssuer,
        "unknown issuer",
    );
}

#[test]
fn a_self_signed_certificate_is_refused_by_the_default_roots_as_unknown_issuer() {
    let broker = TlsBroker::start(self_signed());
    run(async {
        // The system's roots, plus a root that is not the broker's (so a
        // machine without a CA bundle builds this too).
        let other = Ca::new("not the broker's");
        let (client, mut w) = spawn_watched(
            Client::builder(broker.url())
                .config(fast_config())
                .add_root_pem(other.pem.as_bytes()),
        );
        let (attempt, host, cause, text) = tls_failure(&mut w).await;
        assert_eq!((attempt, host.as_str()), (1, "localhost"));
        assert_eq!(cause, TlsFailure::UnknownIssuer, "{text}");
        assert_eq!(
            w.status(Status::Reconnecting).await,
            (Cause::ConnectFailed, 2)
        );
        close_and_end(&client, &mut w).await;
    });
}

#[test]
fn a_certificate_for_another_name_is_refused_as_not_valid_for_name() {
    let ca = Ca::new("test CA");
    let broker = TlsBroker::start(ca.issue(&["broker.example"]));
    refused_with(
        &ca,
        &broker,
        broker.url(),
        TlsFailure::NotValidForName,
        "not valid for this host name",
    );
}

#[test]
fn a_certificate_for_a_name_used_by_ip_address_is_refused_as_not_valid_for_name() {
    let ca = Ca::new("test CA");
    let broker = TlsBroker::start(ca.issue(&["localhost"]));
    refused_with(
        &ca,
        &broker,
        broker.url_for("127.0.0.1"),
        TlsFailure::NotValidForName,
        "tls handshake with 127.0.0.1 failed",
    );
}

#[test]
fn an_expired_certificate_is_refused_as_expired() {
    let ca = Ca::new("test CA");
    let broker = TlsBroker::start(ca.issue_expired(&["localhost"]));
    refused_with(
        &ca,
        &broker,
        broker.url(),
        TlsFailure::Expired,
        "has expired",
    );
}

#[test]
fn the_failure_policy_makes_a_tls_failure_terminal() {
    let ca = Ca::new("test CA");
    let broker = TlsBroker::start(ca.issue_expired(&["localhost"]));
    run(async {
        let (client, mut w) = spawn_watched(
            Client::builder(broker.url())
                .config(fast_config())
                .tls_config(ca.client_config())
                .failure_policy(|failure, default| match failure {
                    Failure::Connect(ConnectFailure::Tls) => Verdict::Terminal,
                    _ => default,
                }),
        );
        let (attempt, _, cause, _) = tls_failure(&mut w).await;
        assert_eq!((attempt, cause), (1, TlsFailure::Expired));
        let reason = w
            .until("Closed", |e| match e {
                SessionEvent::Closed(outcome) => Some(outcome.reason.clone()),
                _ => None,
            })
            .await;
        let by = RejectedBy::Caller {
            failure: Failure::Connect(ConnectFailure::Tls),
        };
        assert_eq!(reason, CloseReason::Rejected { by });
        assert_eq!(client.status(), Status::Closed);
    });
}
