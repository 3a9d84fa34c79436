//! The ack on its way to `FlushQueue`, and the contexts the caller's
//! per-attempt code is given (built from what the handles' state keeps:
//! the latest ack and the latest disconnect).

use std::panic::AssertUnwindSafe;

use crate::fsm::Attempt;

use super::context::{AfterAckContext, HelloContext};
use super::shared::Shared;
use super::spec::{HelloError, Spec};

/// An ack read from the socket, with the after-ack frames the caller's
/// builder made for it, until its `FlushQueue` publishes all of it.
pub(crate) struct Acking {
    pub(crate) attempt: Attempt,
    pub(crate) ack: serde_json::Value,
    pub(crate) frames: Vec<String>,
}

impl Acking {
    /// The ack of `attempt` arrived: builds its after-ack frames (a panic in
    /// the caller's builder fails the attempt like a failed hello). Boxed:
    /// it lives for one drain, the session for long.
    pub(crate) fn new(
        spec: &Spec,
        shared: &Shared,
        attempt: Attempt,
        ack: serde_json::Value,
    ) -> Result<Box<Acking>, HelloError> {
        let frames = match &spec.after_ack {
            None => Vec::new(),
            Some(build) => {
                let (previous_ack, last_disconnect) = {
                    let inner = shared.lock();
                    // Not yet replaced by this ack: that happens on `FlushQueue`.
                    (inner.last_ack(), inner.last_disconnect.as_deref().cloned())
                };
                let context = AfterAckContext {
                    attempt,
                    ack: ack.clone(),
                    previous_ack,
                    last_disconnect,
                };
                std::panic::catch_unwind(AssertUnwindSafe(|| build(&context)))
                    .map_err(|_| HelloError::from("the after-ack builder panicked"))?
                    .into_iter()
                    .map(|frame| frame.0)
                    .collect()
            }
        };
        Ok(Box::new(Acking {
            attempt,
            ack,
            frames,
        }))
    }
}

impl Shared {
    /// The context of `attempt`'s hello or request.
    pub(crate) fn hello_context(&self, attempt: Attempt) -> HelloContext {
        let inner = self.lock();
        HelloContext {
            attempt,
            previous_ack: inner.last_ack(),
            last_disconnect: inner.last_disconnect.as_deref().cloned(),
        }
    }
}
