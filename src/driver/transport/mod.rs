//! The transport: dial, proxy, TLS and upgrade for one attempt, and the meter on its bytes.

pub(crate) mod connect;
pub(crate) mod dial;
pub(crate) mod endpoint;
pub(crate) mod error;
pub(crate) mod meter;
pub(crate) mod proxy;
pub(crate) mod tls;
pub(crate) mod upgrade;
