//! ws-lifecycle (work in progress)
#![deny(missing_docs)]
pub mod driver;
pub mod fsm;
