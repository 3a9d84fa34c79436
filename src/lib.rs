//! ws-lifecycle (work in progress)
#![deny(missing_docs)]
pub mod fsm;
