//! The session around the lifecycle machine, pure: [`SessionCore`] owns
//! the machine, the outbound ledger, the consumer's event buffer and its
//! back-pressure, the status the handles see, the ack hand-off and the
//! counters. The driver feeds it what happened on the socket and carries
//! out what it decides.
//!
//! | file | one idea |
//! |---|---|
//! | `core.rs` | [`SessionCore`]: inputs in, the machine's actions out with their bookkeeping done |
//! | `buffer.rs` | the consumer's bounded buffer, `Lagged` folding |
//! | `inbound.rs` | what a frame read means: a notice, an event, the ack |
//! | `tally.rs`, `stats.rs` | the counters and their public snapshot, [`Stats`] |
//! | `rtt.rs` | which pong answers our ping; the smoothed round trip |

mod buffer;
mod core;
pub(crate) mod inbound;
pub(crate) mod rtt;
mod stats;
mod tally;
#[cfg(test)]
mod tests;

pub use buffer::Notice;
pub use core::{SessionCore, Watch};
pub use stats::{Disconnects, LastFailure, Stats};
pub use tally::Traffic;
