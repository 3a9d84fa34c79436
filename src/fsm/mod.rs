//! The core: a pure, explicit lifecycle state machine.
//!
//! Nothing here performs I/O, reads a clock, awaits, or touches a global
//! random generator: time comes in as `now: Instant` on every call, jitter
//! comes from a generator seeded by [`Config::seed`] and held in the
//! machine. So every lifecycle edge is testable without sockets and every
//! schedule is reproducible.
//!
//! Here: the [`Machine`], what goes in ([`Event`]) and comes out
//! ([`Action`]), its [`State`] with the named [`Timer`]s, and the replay
//! of a flight recording ([`Recording`], [`Record`], [`Replay`],
//! [`Step`]). What the machine shares with the client is at the crate
//! root: the [`Config`] with its failure policy ([`CloseRule`],
//! [`Failure`], [`ConnectFailure`], [`Verdict`]), the [`Status`] and its
//! [`Cause`], and [`CloseReason`] with [`RejectedBy`].
//!
//! # Driving the machine
//!
//! ```text
//! loop {
//!     while let Some(action) = machine.poll_action() { carry it out }
//!     wait for a socket event, a caller command, or machine.poll_timeout()
//!     machine.handle(event, now)   or   machine.handle_timeout(now)
//! }
//! ```
//!
//! **Drain every action after every input.** Actions are ordered: when the
//! machine drops an opened socket itself, a best-effort `SendClose` comes
//! right before the `DropTransport`; a `DropTransport` comes before the
//! `Disconnected` notice, which comes before the `ReconnectScheduled`
//! notice; a `FlushQueue` comes right after the ack and before anything else
//! may be sent.
//!
//! # Timers
//!
//! Each state owns its deadlines, named by [`Timer`] (connect deadline in
//! Connecting, ack deadline in AwaitingAck, ping and stale deadlines and,
//! after the host woke from a suspend ([`Event::Woke`]), the wake probe in
//! Open, retry time in Reconnecting, close grace in Closing), so leaving a
//! state cancels its timers by construction. [`Machine::poll_timeout`] exposes only
//! the earliest; [`Machine::handle_timeout`] is a no-op when called early.
//!
//! While reading is paused ([`Event::ReadPaused`]: the caller's event buffer
//! is full) the Ack, Stale, Probe and Retry timers stop, so `poll_timeout` may be
//! `None` in AwaitingAck and Reconnecting; the paused span is not counted as
//! silence when reading resumes ([`Event::ReadResumed`]).
//!
//! # Failures
//!
//! Every failure is a [`Failure`] value; [`Config::verdict`] classifies it
//! (retry, retry no earlier than a `Retry-After` hint, or terminal →
//! [`CloseReason::Rejected`] with a [`RejectedBy`]). A driver may hand in
//! the caller's own verdict with the event ([`Event::Judged`]).
//!
//! # Attempts
//!
//! Every socket event names the attempt it belongs to (counted from 1). An
//! event of any attempt but the current one is ignored, so a late ack or a
//! late close of a dead socket can never disturb a newer connection.
//!
//! # Replay
//!
//! The machine is a pure function of its [`Config`] (the jitter seed
//! among it) and its timed inputs, so a recorded session replays exactly:
//! [`Recording::replay`] feeds the recorded inputs at their recorded
//! offsets and yields, per input, the actions and the status before and
//! after ([`Step`]). The driver's flight recorder writes such recordings
//! (see "Flight recorder" in the crate docs).

// The session's vocabulary (the configuration, statuses, causes, the
// failure policy) is defined here and exported at the crate root only;
// these modules are visible to it for that.
pub(crate) mod action;
// Scaffolding (feature `testing`): the backoff arithmetic, checked deadline
// arithmetic, the exploration behind the exhaustive tests and the diagram.
#[cfg(feature = "testing")]
pub mod backoff;
#[cfg(not(feature = "testing"))]
mod backoff;
pub(crate) mod config;
#[cfg(feature = "testing")]
pub mod diagram;
mod event;
#[cfg(feature = "testing")]
pub mod explore;
mod machine;
// The pure ledger: the accounting exploration and property
// (`tests/fsm_accounting.rs`) build it for the session core (feature `testing`).
#[cfg(feature = "testing")]
pub mod outbound;
#[cfg(not(feature = "testing"))]
pub(crate) mod outbound;
pub(crate) mod policy;
mod replay;
pub(crate) mod retry_after;
// The session core: the accounting exploration and property
// (`tests/fsm_accounting.rs`) drive it as the driver does (feature `testing`).
#[cfg(feature = "testing")]
pub mod session;
#[cfg(not(feature = "testing"))]
pub(crate) mod session;
pub(crate) mod state;
#[cfg(feature = "testing")]
pub mod time;
#[cfg(not(feature = "testing"))]
mod time;
mod timer;
mod transition;

pub use action::Action;
pub use event::Event;
pub use machine::Machine;
pub use replay::{Record, Recording, Replay, Step};
pub use state::State;
pub use timer::Timer;

// At the crate root for users; here for the crate's own paths.
pub(crate) use action::Cause;
pub(crate) use config::{Config, ConfigError};
pub(crate) use policy::{CloseRule, ConnectFailure, Failure, RejectedBy, Verdict};
pub(crate) use state::{Attempt, CloseReason, Status};
// The pure transition function under the machine (feature `testing`).
#[cfg(feature = "testing")]
pub use transition::{Lifecycle, apply, step};
