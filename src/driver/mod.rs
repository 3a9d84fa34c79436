//! The driver: runs the [`fsm`](crate::fsm) machine on a real WebSocket
//! (smol + async-tungstenite, rustls for `wss://`). It only carries out the
//! machine's actions; every decision stays in the core. Its public types
//! are re-exported at the crate root; this module is private.
//!
//! Layout, from the wire up: `transport/` (one attempt's socket:
//! `endpoint`, the URL; `dial`, resolve, then race the addresses: Happy
//! Eyeballs; `connect`, the opening of one attempt: TCP, the proxy tunnel,
//! TLS, the upgrade request; `upgrade`, RFC 6455 §4.1 and its response;
//! `error`, why a session could not be built and why an attempt failed;
//! `proxy`; `tls`, trust roots, the TLS step; `meter`, what the transport
//! took), `link` (one attempt's transport and hello as one value),
//! `inbound` (what tungstenite read, told to the session core), `outbound`
//! (the write pass), `session` (the loop), `shared` and `report` (the one
//! lock around the session core, and what the session hands it), and the
//! caller's side: `client`, `events`, `session_event`, `context` (what the
//! caller's per-attempt code is told), `hooks` (that code run around an
//! ack), `wake` (noticing that the host
//! slept), `flight` (what watches the machine), and the flight recorder:
//! `record` (the bounded buffer and its writer thread), `record_format`
//! (the JSON-lines file and its parser), `record_codec` (inputs and config
//! as JSON values). Every decision is the session core's
//! (`fsm::session`).

mod alarm;
mod builder;
mod client;
mod config;
mod context;
mod events;
mod failure;
mod flight;
#[cfg(test)]
mod footprint;
mod hooks;
mod inbound;
mod link;
mod outbound;
mod record;
mod record_codec;
mod record_format;
mod report;
mod session;
mod session_event;
mod shared;
mod spec;
mod transport;
mod wake;

pub use crate::fsm::outbound::{SendError, SendErrorKind, Sent};
pub use crate::fsm::session::{Disconnects, LastFailure, Stats};
pub use builder::ClientBuilder;
pub use client::{Client, NotReady};
pub use config::{DeliveryConfig, TransportConfig};
pub use context::HelloContext;
pub use events::Events;
pub use record_format::{RecordingError, parse_recording};
pub use session_event::{CloseOutcome, SessionEvent};
pub use transport::error::{BuildError, ConnectError, TlsFailure};
pub use transport::upgrade::UpgradeResponse;

impl Client {
    /// Shorthand for [`ClientBuilder::new`].
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(url)
    }
}
