//! The caller's per-attempt code around an ack: the contexts it is given
//! (built from what the session core keeps: the latest ack and the latest
//! disconnect), and the after-ack builder, run when an ack arrives.

use std::panic::AssertUnwindSafe;

use crate::fsm::Attempt;

use super::context::{AfterAckContext, HelloContext};
use super::shared::Shared;
use super::spec::{HelloError, Spec};

/// The ack of `attempt` arrived: the caller's after-ack frames for it (a
/// panic in the builder fails the attempt like a failed hello). Runs
/// outside the lock.
pub(crate) fn after_ack_frames(
    spec: &Spec,
    shared: &Shared,
    attempt: Attempt,
    ack: &serde_json::Value,
) -> Result<Vec<String>, HelloError> {
    let Some(build) = &spec.after_ack else {
        return Ok(Vec::new());
    };
    let (previous_ack, last_disconnect) = {
        let inner = shared.lock();
        // Not yet replaced by this ack: that happens on `FlushQueue`.
        (inner.core.last_ack(), inner.core.last_disconnect())
    };
    let context = AfterAckContext {
        attempt,
        ack: ack.clone(),
        previous_ack,
        last_disconnect,
    };
    let frames = std::panic::catch_unwind(AssertUnwindSafe(|| build(&context)))
        .map_err(|_| HelloError::from("the after-ack builder panicked"))?;
    Ok(frames.into_iter().map(|frame| frame.0).collect())
}

impl Shared {
    /// The context of `attempt`'s hello or request.
    pub(crate) fn hello_context(&self, attempt: Attempt) -> HelloContext {
        let inner = self.lock();
        HelloContext {
            attempt,
            previous_ack: inner.core.last_ack(),
            last_disconnect: inner.core.last_disconnect(),
        }
    }
}
