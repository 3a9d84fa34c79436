//! The outbound side of the session, pure: the [`Ledger`] of every message
//! the caller handed over and of the protocol frames, the opt-in queue,
//! and what a send answers. The driver only moves the frames the ledger
//! gives to the socket and reports how many the transport took.

mod ledger;
mod queue;
mod send;
#[cfg(test)]
mod tests;

pub use ledger::{Frame, Ledger, Payload};
pub use queue::Overflow;
pub use send::{SendError, SendErrorKind, Sent};
