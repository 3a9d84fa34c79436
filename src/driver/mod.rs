//! The driver: runs the [`fsm`](crate::fsm) machine on a real WebSocket
//! (smol + async-tungstenite, rustls for `wss://`). It only carries out the
//! machine's actions; every decision stays in the core.

mod builder;
mod client;
mod config;
mod connect;
mod endpoint;
mod session;
mod shared;
mod upgrade;

pub use builder::{BuildError, ClientBuilder, HelloError};
pub use client::{
    Client, Closed, Events, NotReady, SendError, SendErrorKind, Sent, SessionEvent, UpgradeResponse,
};
pub use config::{QueueConfig, TransportConfig, TransportConfigError};
pub use connect::{ConnectError, default_tls_config};
pub use endpoint::{UrlError, redact};
pub use session::Session;

impl Client {
    /// Shorthand for [`ClientBuilder::new`].
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(url)
    }
}
