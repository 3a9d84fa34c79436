//! What every attempt of a session shares: where to connect, how to say
//! hello, how to recognise the ack. Built once by the builder.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_tungstenite::tungstenite::handshake::client::Request;

use crate::fsm::Attempt;

use super::connect::ConnectSpec;
use super::failure::FailurePolicyFn;

/// The error a hello builder may return.
pub type HelloError = Box<dyn std::error::Error + Send + Sync>;

/// A boxed, sendable future.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

pub(crate) type HelloFn = dyn Fn(Attempt) -> BoxFuture<Result<String, HelloError>> + Send + Sync;
pub(crate) type AckFn = dyn Fn(&serde_json::Value) -> bool + Send + Sync;
pub(crate) type RequestFn = dyn Fn(Attempt, &mut Request) + Send + Sync;

/// The parsed, shared part of every session a builder starts.
pub(crate) struct Spec {
    pub(crate) connect: ConnectSpec,
    pub(crate) hello: Arc<HelloFn>,
    pub(crate) ack: Arc<AckFn>,
    pub(crate) request_hook: Option<Arc<RequestFn>>,
    pub(crate) binary: bool,
    /// The caller's failure predicate, if any.
    pub(crate) failure_policy: Option<Arc<FailurePolicyFn>>,
}

impl Spec {
    /// The URL, safe to log.
    pub(crate) fn url(&self) -> &str {
        self.connect.endpoint.redacted()
    }
}
