//! What every attempt of a session shares: where to connect, how to say
//! hello, how to recognise the ack. Built once by the builder.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use async_tungstenite::tungstenite::handshake::client::Request;

use async_tungstenite::tungstenite::http::HeaderMap;

use crate::fsm::{Attempt, Config, Failure, Verdict};

use super::context::{AfterAckContext, AfterAckFrame, HelloContext};
use super::transport::connect::ConnectSpec;

/// The error a hello builder may return (or the after-ack builder's panic).
pub(crate) type HelloError = Box<dyn std::error::Error + Send + Sync>;

/// A boxed, sendable future.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The error the async request hook may return.
pub(crate) type HookError = Box<dyn std::error::Error + Send + Sync>;

pub(crate) type HelloFn =
    dyn Fn(&HelloContext) -> BoxFuture<Result<String, HelloError>> + Send + Sync;
pub(crate) type AckFn = dyn Fn(&serde_json::Value) -> bool + Send + Sync;
pub(crate) type RequestFn = dyn Fn(Attempt, &mut Request) + Send + Sync;
pub(crate) type HeadersFn =
    dyn Fn(&HelloContext) -> BoxFuture<Result<HeaderMap, HookError>> + Send + Sync;
pub(crate) type AfterAckFn = dyn Fn(&AfterAckContext) -> Vec<AfterAckFrame> + Send + Sync;

/// The caller's failure predicate: the failure and the policy's default
/// verdict in, the verdict to apply out.
pub(crate) type FailurePolicyFn = dyn Fn(&Failure, Verdict) -> Verdict + Send + Sync;

/// The wall clock the session reads; `SystemTime::now` unless a test
/// injected one ([`ClientBuilder::wall_clock`](crate::ClientBuilder::wall_clock)).
pub(crate) type WallClock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The parsed, shared part of every session a builder starts.
pub(crate) struct Spec {
    /// The validated lifecycle configuration, one copy for every session
    /// (each draws its own seed).
    pub(crate) config: Arc<Config>,
    pub(crate) connect: Arc<ConnectSpec>,
    pub(crate) hello: Arc<HelloFn>,
    pub(crate) ack: Arc<AckFn>,
    pub(crate) request_hook: Option<Arc<RequestFn>>,
    pub(crate) request_headers: Option<Arc<HeadersFn>>,
    pub(crate) after_ack: Option<Arc<AfterAckFn>>,
    pub(crate) binary: bool,
    /// Text frames go to the caller unparsed (`DeliveryConfig::raw_text`).
    pub(crate) raw_text: bool,
    /// The caller's failure predicate, if any.
    pub(crate) failure_policy: Option<Arc<FailurePolicyFn>>,
    /// An injected wall clock (tests); `None` reads the system's.
    pub(crate) wall_clock: Option<WallClock>,
}

impl Spec {
    /// The URL, safe to log.
    pub(crate) fn url(&self) -> &str {
        self.connect.endpoint.redacted()
    }
}
