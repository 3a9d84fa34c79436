//! The failure policy on real sockets, against a hand-written broker that
//! answers each upgrade from a script: a 403 ends the session after one
//! upgrade request; a 503 with `Retry-After: 1` delays the next request by
//! at least a second; a `1008 capacity` close is retried and a `1008
//! unauthorized` close is terminal under the rule `1008:unauthorized`; the
//! caller's predicate can make a retried failure terminal; the connect
//! deadline is reported as a connect failure. Exact delays belong to the
//! core's virtual-clock tests (`tests/fsm_policy.rs`); here only order and
//! generous bounds.

mod driver_support;
mod raw_server;

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use driver_support::{Watch, fast_config, ms, run, spawn_watched, start_client, ws_url};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use raw_server::{read_head, switching, text_frame};
use ws_lifecycle::{
    Cause, Client, CloseReason, CloseRule, Config, ConnectError, ConnectFailure, Failure,
    RejectedBy, SessionEvent, Status, Verdict,
};

/// How the scripted broker answers one upgrade request.
#[derive(Clone)]
enum Answer {
    /// These bytes (an HTTP answer other than 101), then the connection ends.
    Refuse(&'static str),
    /// 101 and the ack, then a close frame with this code and reason.
    AckThenClose(u16, &'static str),
    /// 101 and the ack; the connection stays.
    Ack,
    /// Nothing at all: the upgrade hangs.
    Silence,
}

/// A broker answering the n-th upgrade request with `script[n]` (the last
/// entry repeats), recording when each request arrived.
struct Scripted {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Instant>>>,
    _task: smol::Task<()>,
}

impl Scripted {
    fn start(script: Vec<Answer>) -> Scripted {
        let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
        let addr = listener.get_ref().local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let task = smol::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((mut stream, _)) = listener.accept().await {
                let seen = seen.clone();
                let script = script.clone();
                conns.push(smol::spawn(async move {
                    let head = read_head(&mut stream).await;
                    let n = {
                        let mut seen = seen.lock().unwrap();
                        seen.push(Instant::now());
                        seen.len() - 1
                    };
                    let answer = script[n.min(script.len() - 1)].clone();
                    let mut bytes = match answer {
                        Answer::Refuse(http) => {
                            let _ = stream.write_all(http.as_bytes()).await;
                            return;
                        }
                        Answer::Silence => Vec::new(),
                        Answer::Ack | Answer::AckThenClose(..) => {
                            let mut b = switching(&head, "").into_bytes();
                            b.extend(text_frame(r#"{"type":"hello_ack"}"#));
                            b
                        }
                    };
                    if let Answer::AckThenClose(code, reason) = answer {
                        bytes.extend([0x88, 2 + reason.len() as u8]);
                        bytes.extend(code.to_be_bytes());
                        bytes.extend(reason.as_bytes());
                    }
                    if stream.write_all(&bytes).await.is_err() {
                        return;
                    }
                    let mut sink = [0u8; 1024];
                    while stream.read(&mut sink).await.is_ok_and(|n| n > 0) {}
                }));
            }
        });
        Scripted {
            addr,
            requests,
            _task: task,
        }
    }

    fn url(&self) -> String {
        ws_url(self.addr)
    }

    fn requests(&self) -> Vec<Instant> {
        self.requests.lock().unwrap().clone()
    }
}

const FORBIDDEN: &str = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
const UNAVAILABLE: &str = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
const UNAVAILABLE_1S: &str =
    "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n";

/// The session's last event, which must be `Closed`; returns its reason.
async fn closed_reason(w: &mut Watch) -> CloseReason {
    w.until("Closed", |e| match e {
        SessionEvent::Closed(outcome) => Some(outcome.reason.clone()),
        _ => None,
    })
    .await
}

/// Waits for a reconnect to be scheduled; returns (attempt, delay).
async fn reconnect_scheduled(w: &mut Watch) -> (u64, Duration) {
    w.until("ReconnectScheduled", |e| match e {
        SessionEvent::ReconnectScheduled { attempt, delay } => Some((*attempt, *delay)),
        _ => None,
    })
    .await
}

#[test]
fn a_403_ends_the_session_after_one_upgrade_request() {
    run(async {
        let broker = Scripted::start(vec![Answer::Refuse(FORBIDDEN)]);
        let (client, mut w) = start_client(broker.url(), fast_config());
        let status = w
            .until("ConnectFailed", |e| match e {
                SessionEvent::ConnectFailed { attempt, error } => {
                    Some((*attempt, error.http_status()))
                }
                _ => None,
            })
            .await;
        assert_eq!(status, (1, Some(403)));
        assert_eq!(
            w.next_status_change().await,
            (Status::Connecting, Status::Closed, Cause::Rejected, 1)
        );
        let by = RejectedBy::Http { status: 403 };
        assert_eq!(closed_reason(&mut w).await, CloseReason::Rejected { by });
        assert!(w.next_within(ms(500)).await.is_none(), "events end");
        // Well past the first backoff step (50 ms): no second request.
        Timer::after(ms(300)).await;
        assert_eq!(broker.requests().len(), 1);
        assert_eq!(client.status(), Status::Closed);
        assert!(client.ready().await.is_err());
    });
}

#[test]
fn a_503_with_retry_after_delays_the_next_upgrade_request() {
    run(async {
        let broker = Scripted::start(vec![Answer::Refuse(UNAVAILABLE_1S), Answer::Ack]);
        // Backoff 50 ms; the broker asks for 1 s.
        let (client, mut w) = start_client(broker.url(), fast_config());
        let (failed, status) = w
            .until("ConnectFailed", |e| match e {
                SessionEvent::ConnectFailed { attempt, error } => {
                    Some((*attempt, error.http_status()))
                }
                _ => None,
            })
            .await;
        assert_eq!((failed, status), (1, Some(503)));
        let (next, delay) = reconnect_scheduled(&mut w).await;
        assert_eq!(next, 2);
        // The notice shows the real delay: the hint, spread upward by the
        // jitter (none in fast_config), far above the 50 ms step.
        assert_eq!(delay, Duration::from_secs(1));
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 2));
        let requests = broker.requests();
        assert_eq!(requests.len(), 2);
        let gap = requests[1] - requests[0];
        assert!(
            gap >= Duration::from_secs(1) && gap < Duration::from_secs(5),
            "second upgrade request {gap:?} after the first"
        );
        println!("503 + Retry-After: 1: next upgrade request after {gap:?}");
        client.close().await;
    });
}

#[test]
fn a_capacity_close_is_retried_and_an_unauthorized_close_is_terminal() {
    run(async {
        let broker = Scripted::start(vec![
            Answer::AckThenClose(1008, "capacity"),
            Answer::AckThenClose(1008, "unauthorized: token revoked"),
        ]);
        let config = Config {
            terminal_closes: vec!["1008:unauthorized".parse::<CloseRule>().unwrap()],
            ..fast_config()
        };
        let (client, mut w) = start_client(broker.url(), config);
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 1));
        assert_eq!(w.next_disconnected().await, (1, 1008, "capacity".into()));
        assert_eq!(
            w.next_status_change().await,
            (Status::Open, Status::Reconnecting, Cause::PeerClosed, 2)
        );
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 2));
        let reason = "unauthorized: token revoked".to_owned();
        assert_eq!(w.next_disconnected().await, (2, 1008, reason.clone()));
        assert_eq!(
            w.next_status_change().await,
            (Status::Open, Status::Closed, Cause::Rejected, 2)
        );
        let by = RejectedBy::Close { code: 1008, reason };
        assert_eq!(closed_reason(&mut w).await, CloseReason::Rejected { by });
        Timer::after(ms(300)).await;
        assert_eq!(broker.requests().len(), 2, "no third attempt");
        assert_eq!(client.status(), Status::Closed);
    });
}

#[test]
fn the_callers_predicate_can_make_a_retried_failure_terminal() {
    run(async {
        let broker = Scripted::start(vec![Answer::Refuse(UNAVAILABLE)]);
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        let builder = Client::builder(broker.url())
            .config(fast_config())
            .failure_policy(move |failure, default| {
                log.lock().unwrap().push((failure.clone(), default));
                match failure {
                    Failure::Connect(ConnectFailure::Http { status: 503, .. }) => Verdict::Terminal,
                    _ => default,
                }
            });
        let (client, mut w) = spawn_watched(builder);
        let failure = Failure::Connect(ConnectFailure::Http {
            status: 503,
            retry_after: None,
        });
        let by = RejectedBy::Caller {
            failure: failure.clone(),
        };
        assert_eq!(closed_reason(&mut w).await, CloseReason::Rejected { by });
        // Asked once, with the policy's default: retry.
        assert_eq!(*asked.lock().unwrap(), [(failure, Verdict::Retry)]);
        Timer::after(ms(300)).await;
        assert_eq!(broker.requests().len(), 1);
        assert_eq!(client.status(), Status::Closed);
    });
}

#[test]
fn a_predicate_that_keeps_the_default_changes_nothing_and_a_panicking_one_is_ignored() {
    run(async {
        let broker = Scripted::start(vec![
            Answer::Refuse(UNAVAILABLE),
            Answer::AckThenClose(4000, "bye"),
            Answer::Ack,
        ]);
        let builder = Client::builder(broker.url())
            .config(fast_config())
            .failure_policy(|failure, default| match failure {
                Failure::PeerClosed { .. } => panic!("a bug in the caller's predicate"),
                _ => default,
            });
        let (client, mut w) = spawn_watched(builder);
        // 503: retried (the default); the close: retried (the panic keeps
        // the default); attempt 3 opens.
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 2));
        assert_eq!(w.next_disconnected().await, (2, 4000, "bye".into()));
        assert_eq!(w.status(Status::Open).await, (Cause::Acked, 3));
        client.close().await;
    });
}

#[test]
fn the_connect_deadline_is_reported_as_a_connect_failure() {
    run(async {
        let broker = Scripted::start(vec![Answer::Silence]);
        let config = Config {
            connect_timeout: ms(300),
            ..fast_config()
        };
        let (client, mut w) = start_client(broker.url(), config);
        let (attempt, deadline, status) = w
            .until("ConnectFailed", |e| match e {
                SessionEvent::ConnectFailed { attempt, error } => Some((
                    *attempt,
                    matches!(error, ConnectError::Deadline { after } if *after == ms(300)),
                    error.http_status(),
                )),
                _ => None,
            })
            .await;
        assert_eq!((attempt, deadline, status), (1, true, None));
        // The connect-failed notice comes before the status change.
        assert_eq!(
            w.next_status_change().await,
            (
                Status::Connecting,
                Status::Reconnecting,
                Cause::ConnectTimeout,
                2
            )
        );
        client.close().await;
    });
}

/// A broker's malformed answer (a status below 100) is the broker's fault:
/// the policy is told `Handshake`, never `Request` (which blames the
/// caller's request).
#[test]
fn a_malformed_upgrade_answer_is_a_handshake_failure_not_a_request_failure() {
    run(async {
        let broker = Scripted::start(vec![Answer::Refuse("HTTP/1.1 099 Weird\r\n\r\n")]);
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        let builder = Client::builder(broker.url())
            .config(fast_config())
            .failure_policy(move |failure, default| {
                log.lock().unwrap().push(failure.clone());
                let _ = default;
                Verdict::Terminal
            });
        let (_client, mut w) = spawn_watched(builder);
        let _ = closed_reason(&mut w).await;
        let asked = asked.lock().unwrap().clone();
        assert_eq!(asked, [Failure::Connect(ConnectFailure::Handshake)]);
    });
}
