//! Table-driven edge test: one row per (state, event) pair, naming the next
//! status, the cause of the change and the exact action list.
//!
//! Representative states are built by driving the pure `fsm::step` from the
//! initial state, so every row runs against a lifecycle the machine can
//! really reach. Socket events carry attempt 2 (the representatives are all
//! about attempt 2, or about to start attempt 3), so "another attempt" can be
//! an old one (1) and a future one (3).

use std::time::{Duration, Instant};

use ws_lifecycle::fsm::explore::REFUSED;
use ws_lifecycle::fsm::{
    Action, Event, Lifecycle, State, backoff,
    explore::{PREFIX_CODE, TERMINAL_CODE, TERMINAL_PREFIX, exploration_config},
    step,
};
use ws_lifecycle::{Cause, Config, ConnectFailure, Status, Verdict};

/// The representative states, one or two per status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rep {
    /// Connecting, attempt 2 (attempt 1 failed).
    Connecting,
    /// AwaitingAck, attempt 2: socket open, hello sent.
    AwaitingAck,
    /// Open, attempt 2, just acked: the next deadline is the first ping.
    Open,
    /// Open, attempt 2, 60 s after the ack with two pings out and nothing
    /// heard: the next deadline is the stale one (ack + 75 s).
    OpenSilent,
    /// Reconnecting: attempt 2 failed, attempt 3 waits for its retry time.
    Reconnecting,
    /// Closing, attempt 2: our close frame is out.
    Closing,
    /// Closed by the caller.
    Closed,
    /// AwaitingAck, with reading paused right after the socket opened: the
    /// ack deadline does not run.
    AwaitingAckPaused,
    /// OpenSilent with reading paused: the stale deadline does not run, the
    /// next deadline is the third ping.
    OpenSilentPaused,
    /// Reconnecting with reading paused: the retry does not run.
    ReconnectingPaused,
    /// Open, attempt 2, one second after the host woke from a suspend 1 s
    /// after the ack: the next deadline is the wake probe's.
    OpenProbing,
    /// OpenProbing with reading paused: the probe does not run, the next
    /// deadline is the ping.
    OpenProbingPaused,
}

const REPS: [Rep; 12] = [
    Rep::Connecting,
    Rep::AwaitingAck,
    Rep::Open,
    Rep::OpenSilent,
    Rep::Reconnecting,
    Rep::Closing,
    Rep::Closed,
    Rep::AwaitingAckPaused,
    Rep::OpenSilentPaused,
    Rep::ReconnectingPaused,
    Rep::OpenProbing,
    Rep::OpenProbingPaused,
];

/// The events, as classes. Socket events carry attempt 2 (the representative's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    SocketOpened,
    ConnectFailed,
    HelloFailed,
    Ack,
    Activity,
    /// `PeerClosed` with 1000.
    PeerClosedNormal,
    /// `PeerClosed` with the configured terminal code.
    PeerClosedTerminal,
    TransportLost,
    MessageTooBig,
    /// `ProtocolError` with 1002 and with 1007.
    ProtocolError,
    ReadPaused,
    ReadResumed,
    Close,
    ReconnectNow,
    /// `Timeout` exactly at the state's earliest deadline.
    TimeoutAtDeadline,
    /// `Timeout` one nanosecond before it.
    TimeoutEarly,
    /// Every socket event above, for attempt 1 (old) and attempt 3 (future).
    OtherAttempt,
    /// `ConnectFailed` with a refusal that is terminal by default: the
    /// broker's HTTP 403, a proxy's 407, a SOCKS5 proxy refusing the
    /// credentials.
    ConnectHttpTerminal,
    /// `ConnectFailed` with an HTTP 503 answer and `Retry-After: 20`.
    ConnectRetryAfter,
    /// `PeerClosed` with 1008 and a reason starting with the rule's prefix.
    PeerClosedPrefix,
    /// `PeerClosed` with 1008 and another reason (`capacity`).
    PeerClosedPrefixMiss,
    /// `TransportLost`, judged terminal by the caller.
    JudgedTransportLost,
    /// A refused connect, judged terminal by the caller.
    JudgedConnectFailed,
    /// `Timeout` at the deadline, judged terminal by the caller (the verdict
    /// applies only when the timer due reports a failure).
    JudgedTimeout,
    /// The host woke from a suspend.
    Woke,
}

const EVS: [Ev; 25] = [
    Ev::SocketOpened,
    Ev::ConnectFailed,
    Ev::HelloFailed,
    Ev::Ack,
    Ev::Activity,
    Ev::PeerClosedNormal,
    Ev::PeerClosedTerminal,
    Ev::TransportLost,
    Ev::MessageTooBig,
    Ev::ProtocolError,
    Ev::ReadPaused,
    Ev::ReadResumed,
    Ev::Close,
    Ev::ReconnectNow,
    Ev::TimeoutAtDeadline,
    Ev::TimeoutEarly,
    Ev::OtherAttempt,
    Ev::ConnectHttpTerminal,
    Ev::ConnectRetryAfter,
    Ev::PeerClosedPrefix,
    Ev::PeerClosedPrefixMiss,
    Ev::JudgedTransportLost,
    Ev::JudgedConnectFailed,
    Ev::JudgedTimeout,
    Ev::Woke,
];

/// What a row expects.
#[derive(Debug, Clone, Copy)]
enum Out {
    /// Does not apply: no actions, lifecycle unchanged.
    Ignored,
    /// No actions; only Open's `last_activity` moves to the event's time
    /// (and a wake probe is cleared).
    Touch,
    /// Same state, these actions, no status change (a ping).
    Emit(&'static [&'static str]),
    /// A status change (or re-entry) with this cause and exactly these actions.
    Go(Status, Cause, &'static [&'static str]),
    /// No actions; only the read pause starts (at the event's time).
    Pause,
    /// No actions; the read pause ends (the deadline shift it makes is
    /// checked by the virtual-clock scenarios).
    Resume,
    /// With `ping_when_idle`: the ping is skipped (no actions); only
    /// `next_ping` moves, to `last_activity + ping_interval`.
    Skip,
}

use Out::{Emit, Go, Ignored, Pause, Resume, Skip, Touch};
use Status as S;

// Action lists, by name, in emission order.
const FAIL_NO_SOCKET: &[&str] = &["DropTransport", "StatusChanged", "ReconnectScheduled"];
const FAIL_OPENED: &[&str] = &[
    "DropTransport",
    "Disconnected",
    "StatusChanged",
    "ReconnectScheduled",
];
const TOO_BIG: &[&str] = &[
    "SendClose",
    "DropTransport",
    "Disconnected",
    "StatusChanged",
    "ReconnectScheduled",
];
/// We drop an opened socket ourselves: a best-effort close frame first.
const OWN_DROP: &[&str] = &[
    "SendClose",
    "DropTransport",
    "Disconnected",
    "StatusChanged",
    "ReconnectScheduled",
];
const REJECTED: &[&str] = &["DropTransport", "Disconnected", "StatusChanged"];
/// We drop an opened socket ourselves and the verdict is terminal.
const OWN_DROP_REJECTED: &[&str] = &[
    "SendClose",
    "DropTransport",
    "Disconnected",
    "StatusChanged",
];
const CLOSE_OPEN: &[&str] = &["SendClose", "StatusChanged"];
const DROP_CLOSED: &[&str] = &["DropTransport", "StatusChanged"];
const RECONNECT_OPENED: &[&str] = &[
    "SendClose",
    "DropTransport",
    "Disconnected",
    "StatusChanged",
    "Connect",
];

#[rustfmt::skip]
const TABLE: &[(Rep, Ev, Out)] = &[
    // ── Connecting (attempt 2) ──────────────────────────────────────────
    (Rep::Connecting, Ev::SocketOpened,       Go(S::AwaitingAck, Cause::SocketOpened, &["StatusChanged", "SendHello"])),
    (Rep::Connecting, Ev::ConnectFailed,      Go(S::Reconnecting, Cause::ConnectFailed, FAIL_NO_SOCKET)),
    (Rep::Connecting, Ev::HelloFailed,        Ignored),
    (Rep::Connecting, Ev::Ack,                Ignored),
    (Rep::Connecting, Ev::Activity,           Ignored),
    (Rep::Connecting, Ev::PeerClosedNormal,   Ignored),
    (Rep::Connecting, Ev::PeerClosedTerminal, Ignored),
    (Rep::Connecting, Ev::TransportLost,      Ignored),
    (Rep::Connecting, Ev::MessageTooBig,      Ignored),
    (Rep::Connecting, Ev::ProtocolError,      Ignored),
    (Rep::Connecting, Ev::ReadPaused,         Pause),
    (Rep::Connecting, Ev::ReadResumed,        Ignored),
    (Rep::Connecting, Ev::Close,              Go(S::Closed, Cause::CloseRequested, DROP_CLOSED)),
    (Rep::Connecting, Ev::ReconnectNow,       Go(S::Connecting, Cause::ReconnectNow, &["DropTransport", "StatusChanged", "Connect"])),
    (Rep::Connecting, Ev::TimeoutAtDeadline,  Go(S::Reconnecting, Cause::ConnectTimeout, FAIL_NO_SOCKET)),
    (Rep::Connecting, Ev::TimeoutEarly,       Ignored),
    (Rep::Connecting, Ev::OtherAttempt,       Ignored),
    (Rep::Connecting, Ev::ConnectHttpTerminal, Go(S::Closed, Cause::Rejected, DROP_CLOSED)),
    (Rep::Connecting, Ev::ConnectRetryAfter, Go(S::Reconnecting, Cause::ConnectFailed, FAIL_NO_SOCKET)),
    (Rep::Connecting, Ev::PeerClosedPrefix, Ignored),
    (Rep::Connecting, Ev::PeerClosedPrefixMiss, Ignored),
    (Rep::Connecting, Ev::JudgedTransportLost, Ignored),
    (Rep::Connecting, Ev::JudgedConnectFailed, Go(S::Closed, Cause::Rejected, DROP_CLOSED)),
    (Rep::Connecting, Ev::JudgedTimeout, Go(S::Closed, Cause::Rejected, DROP_CLOSED)),
    (Rep::Connecting, Ev::Woke, Ignored),
    // ── AwaitingAck (attempt 2) ─────────────────────────────────────────
    (Rep::AwaitingAck, Ev::SocketOpened,       Ignored),
    (Rep::AwaitingAck, Ev::ConnectFailed,      Ignored),
    (Rep::AwaitingAck, Ev::HelloFailed,        Go(S::Reconnecting, Cause::HelloFailed, OWN_DROP)),
    (Rep::AwaitingAck, Ev::Ack,                Go(S::Open, Cause::Acked, &["StatusChanged", "FlushQueue"])),
    (Rep::AwaitingAck, Ev::Activity,           Ignored),
    (Rep::AwaitingAck, Ev::PeerClosedNormal,   Go(S::Reconnecting, Cause::PeerClosed, FAIL_OPENED)),
    (Rep::AwaitingAck, Ev::PeerClosedTerminal, Go(S::Closed, Cause::Rejected, REJECTED)),
    (Rep::AwaitingAck, Ev::TransportLost,      Go(S::Reconnecting, Cause::TransportLost, FAIL_OPENED)),
    (Rep::AwaitingAck, Ev::MessageTooBig,      Go(S::Reconnecting, Cause::MessageTooBig, TOO_BIG)),
    (Rep::AwaitingAck, Ev::ProtocolError,      Go(S::Reconnecting, Cause::ProtocolError, OWN_DROP)),
    (Rep::AwaitingAck, Ev::ReadPaused,         Pause),
    (Rep::AwaitingAck, Ev::ReadResumed,        Ignored),
    (Rep::AwaitingAck, Ev::Close,              Go(S::Closing, Cause::CloseRequested, CLOSE_OPEN)),
    (Rep::AwaitingAck, Ev::ReconnectNow,       Go(S::Connecting, Cause::ReconnectNow, RECONNECT_OPENED)),
    (Rep::AwaitingAck, Ev::TimeoutAtDeadline,  Go(S::Reconnecting, Cause::AckTimeout, OWN_DROP)),
    (Rep::AwaitingAck, Ev::TimeoutEarly,       Ignored),
    (Rep::AwaitingAck, Ev::OtherAttempt,       Ignored),
    (Rep::AwaitingAck, Ev::ConnectHttpTerminal, Ignored),
    (Rep::AwaitingAck, Ev::ConnectRetryAfter, Ignored),
    (Rep::AwaitingAck, Ev::PeerClosedPrefix, Go(S::Closed, Cause::Rejected, REJECTED)),
    (Rep::AwaitingAck, Ev::PeerClosedPrefixMiss, Go(S::Reconnecting, Cause::PeerClosed, FAIL_OPENED)),
    (Rep::AwaitingAck, Ev::JudgedTransportLost, Go(S::Closed, Cause::Rejected, REJECTED)),
    (Rep::AwaitingAck, Ev::JudgedConnectFailed, Ignored),
    (Rep::AwaitingAck, Ev::JudgedTimeout, Go(S::Closed, Cause::Rejected, OWN_DROP_REJECTED)),
    (Rep::AwaitingAck, Ev::Woke, Ignored),
    // ── Open (attempt 2, just acked; next deadline: ping) ───────────────
    (Rep::Open, Ev::SocketOpened,       Ignored),
    (Rep::Open, Ev::ConnectFailed,      Ignored),
    (Rep::Open, Ev::HelloFailed,        Ignored),
    (Rep::Open, Ev::Ack,                Touch),
    (Rep::Open, Ev::Activity,           Touch),
    (Rep::Open, Ev::PeerClosedNormal,   Go(S::Reconnecting, Cause::PeerClosed, FAIL_OPENED)),
    (Rep::Open, Ev::PeerClosedTerminal, Go(S::Closed, Cause::Rejected, REJECTED)),
    (Rep::Open, Ev::TransportLost,      Go(S::Reconnecting, Cause::TransportLost, FAIL_OPENED)),
    (Rep::Open, Ev::MessageTooBig,      Go(S::Reconnecting, Cause::MessageTooBig, TOO_BIG)),
    (Rep::Open, Ev::ProtocolError,      Go(S::Reconnecting, Cause::ProtocolError, OWN_DROP)),
    (Rep::Open, Ev::ReadPaused,         Pause),
    (Rep::Open, Ev::ReadResumed,        Ignored),
    (Rep::Open, Ev::Close,              Go(S::Closing, Cause::CloseRequested, CLOSE_OPEN)),
    (Rep::Open, Ev::ReconnectNow,       Go(S::Connecting, Cause::ReconnectNow, RECONNECT_OPENED)),
    (Rep::Open, Ev::TimeoutAtDeadline,  Emit(&["SendPing"])),
    (Rep::Open, Ev::TimeoutEarly,       Ignored),
    (Rep::Open, Ev::OtherAttempt,       Ignored),
    (Rep::Open, Ev::ConnectHttpTerminal, Ignored),
    (Rep::Open, Ev::ConnectRetryAfter, Ignored),
    (Rep::Open, Ev::PeerClosedPrefix, Go(S::Closed, Cause::Rejected, REJECTED)),
    (Rep::Open, Ev::PeerClosedPrefixMiss, Go(S::Reconnecting, Cause::PeerClosed, FAIL_OPENED)),
    (Rep::Open, Ev::JudgedTransportLost, Go(S::Closed, Cause::Rejected, REJECTED)),
    (Rep::Open, Ev::JudgedConnectFailed, Ignored),
    (Rep::Open, Ev::JudgedTimeout, Emit(&["SendPing"])),
    (Rep::Open, Ev::Woke, Emit(&["SendPing"])),
    // ── Open (attempt 2, silent for 60 s; next deadline: stale) ─────────
    (Rep::OpenSilent, Ev::SocketOpened,       Ignored),
    (Rep::OpenSilent, Ev::ConnectFailed,      Ignored),
    (Rep::OpenSilent, Ev::HelloFailed,        Ignored),
    (Rep::OpenSilent, Ev::Ack,                Touch),
    (Rep::OpenSilent, Ev::Activity,           Touch),
    (Rep::OpenSilent, Ev::PeerClosedNormal,   Go(S::Reconnecting, Cause::PeerClosed, FAIL_OPENED)),
    (Rep::OpenSilent, Ev::PeerClosedTerminal, Go(S::Closed, Cause::Rejected, REJECTED)),
    (Rep::OpenSilent, Ev::TransportLost,      Go(S::Reconnecting, Cause::TransportLost, FAIL_OPENED)),
    (Rep::OpenSilent, Ev::MessageTooBig,      Go(S::Reconnecting, Cause::MessageTooBig, TOO_BIG)),
    (Rep::OpenSilent, Ev::ProtocolError,      Go(S::Reconnecting, Cause::ProtocolError, OWN_DROP)),
    (Rep::OpenSilent, Ev::ReadPaused,         Pause),
    (Rep::OpenSilent, Ev::ReadResumed,        Ignored),
    (Rep::OpenSilent, Ev::Close,              Go(S::Closing, Cause::CloseRequested, CLOSE_OPEN)),
    (Rep::OpenSilent, Ev::ReconnectNow,       Go(S::Connecting, Cause::ReconnectNow, RECONNECT_OPENED)),
    (Rep::OpenSilent, Ev::TimeoutAtDeadline,  Go(S::Reconnecting, Cause::Stale, OWN_DROP)),
    (Rep::OpenSilent, Ev::TimeoutEarly,       Ignored),
    (Rep::OpenSilent, Ev::OtherAttempt,       Ignored),
    (Rep::OpenSilent, Ev::ConnectHttpTerminal, Ignored),
    (Rep::OpenSilent, Ev::ConnectRetryAfter, Ignored),
    (Rep::OpenSilent, Ev::PeerClosedPrefix, Go(S::Closed, Cause::Rejected, REJECTED)),
    (Rep::OpenSilent, Ev::PeerClosedPrefixMiss, Go(S::Reconnecting, Cause::PeerClosed, FAIL_OPENED)),
    (Rep::OpenSilent, Ev::JudgedTransportLost, Go(S::Closed, Cause::Rejected, REJECTED)),
    (Rep::OpenSilent, Ev::JudgedConnectFailed, Ignored),
    (Rep::OpenSilent, Ev::JudgedTimeout, Go(S::Closed, Cause::Rejected, OWN_DROP_REJECTED)),
    (Rep::OpenSilent, Ev::Woke, Emit(&["SendPing"])),
    // ── Reconnecting (attempt 2 failed; attempt 3 pending) ──────────────
    (Rep::Reconnecting, Ev::SocketOpened,       Ignored),
    (Rep::Reconnecting, Ev::ConnectFailed,      Ignored),
    (Rep::Reconnecting, Ev::HelloFailed,        Ignored),
    (Rep::Reconnecting, Ev::Ack,                Ignored),
    (Rep::Reconnecting, Ev::Activity,           Ignored),
    (Rep::Reconnecting, Ev::PeerClosedNormal,   Ignored),
    (Rep::Reconnecting, Ev::PeerClosedTerminal, Ignored),
    (Rep::Reconnecting, Ev::TransportLost,      Ignored),
    (Rep::Reconnecting, Ev::MessageTooBig,      Ignored),
    (Rep::Reconnecting, Ev::ProtocolError,      Ignored),
    (Rep::Reconnecting, Ev::ReadPaused,         Pause),
    (Rep::Reconnecting, Ev::ReadResumed,        Ignored),
    (Rep::Reconnecting, Ev::Close,              Go(S::Closed, Cause::CloseRequested, &["StatusChanged"])),
    (Rep::Reconnecting, Ev::ReconnectNow,       Go(S::Connecting, Cause::ReconnectNow, &["StatusChanged", "Connect"])),
    (Rep::Reconnecting, Ev::TimeoutAtDeadline,  Go(S::Connecting, Cause::RetryDue, &["StatusChanged", "Connect"])),
    (Rep::Reconnecting, Ev::TimeoutEarly,       Ignored),
    (Rep::Reconnecting, Ev::OtherAttempt,       Ignored),
    (Rep::Reconnecting, Ev::ConnectHttpTerminal, Ignored),
    (Rep::Reconnecting, Ev::ConnectRetryAfter, Ignored),
    (Rep::Reconnecting, Ev::PeerClosedPrefix, Ignored),
    (Rep::Reconnecting, Ev::PeerClosedPrefixMiss, Ignored),
    (Rep::Reconnecting, Ev::JudgedTransportLost, Ignored),
    (Rep::Reconnecting, Ev::JudgedConnectFailed, Ignored),
    (Rep::Reconnecting, Ev::JudgedTimeout, Go(S::Connecting, Cause::RetryDue, &["StatusChanged", "Connect"])),
    (Rep::Reconnecting, Ev::Woke, Ignored),
    // ── Closing (attempt 2) ─────────────────────────────────────────────
    (Rep::Closing, Ev::SocketOpened,       Ignored),
    (Rep::Closing, Ev::ConnectFailed,      Ignored),
    (Rep::Closing, Ev::HelloFailed,        Ignored),
    (Rep::Closing, Ev::Ack,                Ignored),
    (Rep::Closing, Ev::Activity,           Ignored),
    (Rep::Closing, Ev::PeerClosedNormal,   Go(S::Closed, Cause::CloseCompleted, DROP_CLOSED)),
    (Rep::Closing, Ev::PeerClosedTerminal, Go(S::Closed, Cause::CloseCompleted, DROP_CLOSED)),
    (Rep::Closing, Ev::TransportLost,      Go(S::Closed, Cause::CloseCompleted, DROP_CLOSED)),
    (Rep::Closing, Ev::MessageTooBig,      Go(S::Closed, Cause::CloseCompleted, DROP_CLOSED)),
    (Rep::Closing, Ev::ProtocolError,      Go(S::Closed, Cause::CloseCompleted, DROP_CLOSED)),
    (Rep::Closing, Ev::ReadPaused,         Pause),
    (Rep::Closing, Ev::ReadResumed,        Ignored),
    (Rep::Closing, Ev::Close,              Ignored),
    (Rep::Closing, Ev::ReconnectNow,       Ignored),
    (Rep::Closing, Ev::TimeoutAtDeadline,  Go(S::Closed, Cause::CloseGraceExpired, DROP_CLOSED)),
    (Rep::Closing, Ev::TimeoutEarly,       Ignored),
    (Rep::Closing, Ev::OtherAttempt,       Ignored),
    (Rep::Closing, Ev::ConnectHttpTerminal, Ignored),
    (Rep::Closing, Ev::ConnectRetryAfter, Ignored),
    (Rep::Closing, Ev::PeerClosedPrefix, Go(S::Closed, Cause::CloseCompleted, DROP_CLOSED)),
    (Rep::Closing, Ev::PeerClosedPrefixMiss, Go(S::Closed, Cause::CloseCompleted, DROP_CLOSED)),
    (Rep::Closing, Ev::JudgedTransportLost, Go(S::Closed, Cause::CloseCompleted, DROP_CLOSED)),
    (Rep::Closing, Ev::JudgedConnectFailed, Ignored),
    (Rep::Closing, Ev::JudgedTimeout, Go(S::Closed, Cause::CloseGraceExpired, DROP_CLOSED)),
    (Rep::Closing, Ev::Woke, Ignored),
    // ── Closed: absorbs everything ──────────────────────────────────────
    (Rep::Closed, Ev::SocketOpened,       Ignored),
    (Rep::Closed, Ev::ConnectFailed,      Ignored),
    (Rep::Closed, Ev::HelloFailed,        Ignored),
    (Rep::Closed, Ev::Ack,                Ignored),
    (Rep::Closed, Ev::Activity,           Ignored),
    (Rep::Closed, Ev::PeerClosedNormal,   Ignored),
    (Rep::Closed, Ev::PeerClosedTerminal, Ignored),
    (Rep::Closed, Ev::TransportLost,      Ignored),
    (Rep::Closed, Ev::MessageTooBig,      Ignored),
    (Rep::Closed, Ev::ProtocolError,      Ignored),
    (Rep::Closed, Ev::ReadPaused,         Ignored),
    (Rep::Closed, Ev::ReadResumed,        Ignored),
    (Rep::Closed, Ev::Close,              Ignored),
    (Rep::Closed, Ev::ReconnectNow,       Ignored),
    (Rep::Closed, Ev::TimeoutAtDeadline,  Ignored),
    (Rep::Closed, Ev::TimeoutEarly,       Ignored),
    (Rep::Closed, Ev::OtherAttempt,       Ignored),
    (Rep::Closed, Ev::ConnectHttpTerminal, Ignored),
    (Rep::Closed, Ev::ConnectRetryAfter, Ignored),
    (Rep::Closed, Ev::PeerClosedPrefix, Ignored),
    (Rep::Closed, Ev::PeerClosedPrefixMiss, Ignored),
    (Rep::Closed, Ev::JudgedTransportLost, Ignored),
    (Rep::Closed, Ev::JudgedConnectFailed, Ignored),
    (Rep::Closed, Ev::JudgedTimeout, Ignored),
    (Rep::Closed, Ev::Woke, Ignored),
    // ── AwaitingAck (attempt 2), reading paused: no ack deadline ────────
    (Rep::AwaitingAckPaused, Ev::SocketOpened,       Ignored),
    (Rep::AwaitingAckPaused, Ev::ConnectFailed,      Ignored),
    (Rep::AwaitingAckPaused, Ev::HelloFailed,        Go(S::Reconnecting, Cause::HelloFailed, OWN_DROP)),
    (Rep::AwaitingAckPaused, Ev::Ack,                Go(S::Open, Cause::Acked, &["StatusChanged", "FlushQueue"])),
    (Rep::AwaitingAckPaused, Ev::Activity,           Ignored),
    (Rep::AwaitingAckPaused, Ev::PeerClosedNormal,   Go(S::Reconnecting, Cause::PeerClosed, FAIL_OPENED)),
    (Rep::AwaitingAckPaused, Ev::PeerClosedTerminal, Go(S::Closed, Cause::Rejected, REJECTED)),
    (Rep::AwaitingAckPaused, Ev::TransportLost,      Go(S::Reconnecting, Cause::TransportLost, FAIL_OPENED)),
    (Rep::AwaitingAckPaused, Ev::MessageTooBig,      Go(S::Reconnecting, Cause::MessageTooBig, TOO_BIG)),
    (Rep::AwaitingAckPaused, Ev::ProtocolError,      Go(S::Reconnecting, Cause::ProtocolError, OWN_DROP)),
    (Rep::AwaitingAckPaused, Ev::ReadPaused,         Ignored),
    (Rep::AwaitingAckPaused, Ev::ReadResumed,        Resume),
    (Rep::AwaitingAckPaused, Ev::Close,              Go(S::Closing, Cause::CloseRequested, CLOSE_OPEN)),
    (Rep::AwaitingAckPaused, Ev::ReconnectNow,       Go(S::Connecting, Cause::ReconnectNow, RECONNECT_OPENED)),
    (Rep::AwaitingAckPaused, Ev::TimeoutAtDeadline,  Ignored),
    (Rep::AwaitingAckPaused, Ev::TimeoutEarly,       Ignored),
    (Rep::AwaitingAckPaused, Ev::OtherAttempt,       Ignored),
    (Rep::AwaitingAckPaused, Ev::ConnectHttpTerminal, Ignored),
    (Rep::AwaitingAckPaused, Ev::ConnectRetryAfter, Ignored),
    (Rep::AwaitingAckPaused, Ev::PeerClosedPrefix, Go(S::Closed, Cause::Rejected, REJECTED)),
    (Rep::AwaitingAckPaused, Ev::PeerClosedPrefixMiss, Go(S::Reconnecting, Cause::PeerClosed, FAIL_OPENED)),
    (Rep::AwaitingAckPaused, Ev::JudgedTransportLost, Go(S::Closed, Cause::Rejected, REJECTED)),
    (Rep::AwaitingAckPaused, Ev::JudgedConnectFailed, Ignored),
    (Rep::AwaitingAckPaused, Ev::JudgedTimeout, Ignored),
    (Rep::AwaitingAckPaused, Ev::Woke, Ignored),
    // ── Open (attempt 2, silent, stale overdue), reading paused: pings only
    (Rep::OpenSilentPaused, Ev::SocketOpened,       Ignored),
    (Rep::OpenSilentPaused, Ev::ConnectFailed,      Ignored),
    (Rep::OpenSilentPaused, Ev::HelloFailed,        Ignored),
    (Rep::OpenSilentPaused, Ev::Ack,                Touch),
    (Rep::OpenSilentPaused, Ev::Activity,           Touch),
    (Rep::OpenSilentPaused, Ev::PeerClosedNormal,   Go(S::Reconnecting, Cause::PeerClosed, FAIL_OPENED)),
    (Rep::OpenSilentPaused, Ev::PeerClosedTerminal, Go(S::Closed, Cause::Rejected, REJECTED)),
    (Rep::OpenSilentPaused, Ev::TransportLost,      Go(S::Reconnecting, Cause::TransportLost, FAIL_OPENED)),
    (Rep::OpenSilentPaused, Ev::MessageTooBig,      Go(S::Reconnecting, Cause::MessageTooBig, TOO_BIG)),
    (Rep::OpenSilentPaused, Ev::ProtocolError,      Go(S::Reconnecting, Cause::ProtocolError, OWN_DROP)),
    (Rep::OpenSilentPaused, Ev::ReadPaused,         Ignored),
    (Rep::OpenSilentPaused, Ev::ReadResumed,        Resume),
    (Rep::OpenSilentPaused, Ev::Close,              Go(S::Closing, Cause::CloseRequested, CLOSE_OPEN)),
    (Rep::OpenSilentPaused, Ev::ReconnectNow,       Go(S::Connecting, Cause::ReconnectNow, RECONNECT_OPENED)),
    (Rep::OpenSilentPaused, Ev::TimeoutAtDeadline,  Emit(&["SendPing"])),
    (Rep::OpenSilentPaused, Ev::TimeoutEarly,       Ignored),
    (Rep::OpenSilentPaused, Ev::OtherAttempt,       Ignored),
    (Rep::OpenSilentPaused, Ev::ConnectHttpTerminal, Ignored),
    (Rep::OpenSilentPaused, Ev::ConnectRetryAfter, Ignored),
    (Rep::OpenSilentPaused, Ev::PeerClosedPrefix, Go(S::Closed, Cause::Rejected, REJECTED)),
    (Rep::OpenSilentPaused, Ev::PeerClosedPrefixMiss, Go(S::Reconnecting, Cause::PeerClosed, FAIL_OPENED)),
    (Rep::OpenSilentPaused, Ev::JudgedTransportLost, Go(S::Closed, Cause::Rejected, REJECTED)),
    (Rep::OpenSilentPaused, Ev::JudgedConnectFailed, Ignored),
    (Rep::OpenSilentPaused, Ev::JudgedTimeout, Emit(&["SendPing"])),
    (Rep::OpenSilentPaused, Ev::Woke, Emit(&["SendPing"])),
    // ── Reconnecting (attempt 3 pending), reading paused: no retry ──────
    (Rep::ReconnectingPaused, Ev::SocketOpened,       Ignored),
    (Rep::ReconnectingPaused, Ev::ConnectFailed,      Ignored),
    (Rep::ReconnectingPaused, Ev::HelloFailed,        Ignored),
    (Rep::ReconnectingPaused, Ev::Ack,                Ignored),
    (Rep::ReconnectingPaused, Ev::Activity,           Ignored),
    (Rep::ReconnectingPaused, Ev::PeerClosedNormal,   Ignored),
    (Rep::ReconnectingPaused, Ev::PeerClosedTerminal, Ignored),
    (Rep::ReconnectingPaused, Ev::TransportLost,      Ignored),
    (Rep::ReconnectingPaused, Ev::MessageTooBig,      Ignored),
    (Rep::ReconnectingPaused, Ev::ProtocolError,      Ignored),
    (Rep::ReconnectingPaused, Ev::ReadPaused,         Ignored),
    (Rep::ReconnectingPaused, Ev::ReadResumed,        Resume),
    (Rep::ReconnectingPaused, Ev::Close,              Go(S::Closed, Cause::CloseRequested, &["StatusChanged"])),
    (Rep::ReconnectingPaused, Ev::ReconnectNow,       Go(S::Connecting, Cause::ReconnectNow, &["StatusChanged", "Connect"])),
    (Rep::ReconnectingPaused, Ev::TimeoutAtDeadline,  Ignored),
    (Rep::ReconnectingPaused, Ev::TimeoutEarly,       Ignored),
    (Rep::ReconnectingPaused, Ev::OtherAttempt,       Ignored),
    (Rep::ReconnectingPaused, Ev::ConnectHttpTerminal, Ignored),
    (Rep::ReconnectingPaused, Ev::ConnectRetryAfter, Ignored),
    (Rep::ReconnectingPaused, Ev::PeerClosedPrefix, Ignored),
    (Rep::ReconnectingPaused, Ev::PeerClosedPrefixMiss, Ignored),
    (Rep::ReconnectingPaused, Ev::JudgedTransportLost, Ignored),
    (Rep::ReconnectingPaused, Ev::JudgedConnectFailed, Ignored),
    (Rep::ReconnectingPaused, Ev::JudgedTimeout, Ignored),
    (Rep::ReconnectingPaused, Ev::Woke, Ignored),
    // ── Open (attempt 2), probing after a wake-up; next deadline: probe ──
    (Rep::OpenProbing, Ev::SocketOpened,       Ignored),
    (Rep::OpenProbing, Ev::ConnectFailed,      Ignored),
    (Rep::OpenProbing, Ev::HelloFailed,        Ignored),
    (Rep::OpenProbing, Ev::Ack,                Touch),
    (Rep::OpenProbing, Ev::Activity,           Touch),
    (Rep::OpenProbing, Ev::PeerClosedNormal,   Go(S::Reconnecting, Cause::PeerClosed, FAIL_OPENED)),
    (Rep::OpenProbing, Ev::PeerClosedTerminal, Go(S::Closed, Cause::Rejected, REJECTED)),
    (Rep::OpenProbing, Ev::TransportLost,      Go(S::Reconnecting, Cause::TransportLost, FAIL_OPENED)),
    (Rep::OpenProbing, Ev::MessageTooBig,      Go(S::Reconnecting, Cause::MessageTooBig, TOO_BIG)),
    (Rep::OpenProbing, Ev::ProtocolError,      Go(S::Reconnecting, Cause::ProtocolError, OWN_DROP)),
    (Rep::OpenProbing, Ev::ReadPaused,         Pause),
    (Rep::OpenProbing, Ev::ReadResumed,        Ignored),
    (Rep::OpenProbing, Ev::Close,              Go(S::Closing, Cause::CloseRequested, CLOSE_OPEN)),
    (Rep::OpenProbing, Ev::ReconnectNow,       Go(S::Connecting, Cause::ReconnectNow, RECONNECT_OPENED)),
    (Rep::OpenProbing, Ev::TimeoutAtDeadline,  Go(S::Reconnecting, Cause::WakeProbeFailed, OWN_DROP)),
    (Rep::OpenProbing, Ev::TimeoutEarly,       Ignored),
    (Rep::OpenProbing, Ev::OtherAttempt,       Ignored),
    (Rep::OpenProbing, Ev::ConnectHttpTerminal, Ignored),
    (Rep::OpenProbing, Ev::ConnectRetryAfter, Ignored),
    (Rep::OpenProbing, Ev::PeerClosedPrefix, Go(S::Closed, Cause::Rejected, REJECTED)),
    (Rep::OpenProbing, Ev::PeerClosedPrefixMiss, Go(S::Reconnecting, Cause::PeerClosed, FAIL_OPENED)),
    (Rep::OpenProbing, Ev::JudgedTransportLost, Go(S::Closed, Cause::Rejected, REJECTED)),
    (Rep::OpenProbing, Ev::JudgedConnectFailed, Ignored),
    (Rep::OpenProbing, Ev::JudgedTimeout, Go(S::Closed, Cause::Rejected, OWN_DROP_REJECTED)),
    (Rep::OpenProbing, Ev::Woke, Emit(&["SendPing"])),
    // ── Open (attempt 2), probing, reading paused: the probe waits; pings go
    (Rep::OpenProbingPaused, Ev::SocketOpened,       Ignored),
    (Rep::OpenProbingPaused, Ev::ConnectFailed,      Ignored),
    (Rep::OpenProbingPaused, Ev::HelloFailed,        Ignored),
    (Rep::OpenProbingPaused, Ev::Ack,                Touch),
    (Rep::OpenProbingPaused, Ev::Activity,           Touch),
    (Rep::OpenProbingPaused, Ev::PeerClosedNormal,   Go(S::Reconnecting, Cause::PeerClosed, FAIL_OPENED)),
    (Rep::OpenProbingPaused, Ev::PeerClosedTerminal, Go(S::Closed, Cause::Rejected, REJECTED)),
    (Rep::OpenProbingPaused, Ev::TransportLost,      Go(S::Reconnecting, Cause::TransportLost, FAIL_OPENED)),
    (Rep::OpenProbingPaused, Ev::MessageTooBig,      Go(S::Reconnecting, Cause::MessageTooBig, TOO_BIG)),
    (Rep::OpenProbingPaused, Ev::ProtocolError,      Go(S::Reconnecting, Cause::ProtocolError, OWN_DROP)),
    (Rep::OpenProbingPaused, Ev::ReadPaused,         Ignored),
    (Rep::OpenProbingPaused, Ev::ReadResumed,        Resume),
    (Rep::OpenProbingPaused, Ev::Close,              Go(S::Closing, Cause::CloseRequested, CLOSE_OPEN)),
    (Rep::OpenProbingPaused, Ev::ReconnectNow,       Go(S::Connecting, Cause::ReconnectNow, RECONNECT_OPENED)),
    (Rep::OpenProbingPaused, Ev::TimeoutAtDeadline,  Emit(&["SendPing"])),
    (Rep::OpenProbingPaused, Ev::TimeoutEarly,       Ignored),
    (Rep::OpenProbingPaused, Ev::OtherAttempt,       Ignored),
    (Rep::OpenProbingPaused, Ev::ConnectHttpTerminal, Ignored),
    (Rep::OpenProbingPaused, Ev::ConnectRetryAfter, Ignored),
    (Rep::OpenProbingPaused, Ev::PeerClosedPrefix, Go(S::Closed, Cause::Rejected, REJECTED)),
    (Rep::OpenProbingPaused, Ev::PeerClosedPrefixMiss, Go(S::Reconnecting, Cause::PeerClosed, FAIL_OPENED)),
    (Rep::OpenProbingPaused, Ev::JudgedTransportLost, Go(S::Closed, Cause::Rejected, REJECTED)),
    (Rep::OpenProbingPaused, Ev::JudgedConnectFailed, Ignored),
    (Rep::OpenProbingPaused, Ev::JudgedTimeout, Emit(&["SendPing"])),
    (Rep::OpenProbingPaused, Ev::Woke, Emit(&["SendPing"])),
];

fn config() -> Config {
    exploration_config()
}

/// Applies `event` at `at`, insisting that it did something.
fn go(lc: &Lifecycle, event: Event, at: Instant, cfg: &Config) -> Lifecycle {
    let (next, actions) = step(lc, event.clone(), at, cfg);
    assert!(!actions.is_empty(), "building reps: {event:?} did nothing");
    next
}

fn deadline(lc: &Lifecycle, cfg: &Config) -> Instant {
    lc.state().deadline(cfg.stale_after).expect("a deadline")
}

/// Builds a representative (lifecycle, now) by driving `step` from the start.
fn build(rep: Rep, t0: Instant, cfg: &Config) -> (Lifecycle, Instant) {
    let unpaused = match rep {
        Rep::AwaitingAckPaused => Rep::AwaitingAck,
        Rep::OpenSilentPaused => Rep::OpenSilent,
        Rep::ReconnectingPaused => Rep::Reconnecting,
        Rep::OpenProbingPaused => Rep::OpenProbing,
        other => return build_unpaused(other, t0, cfg),
    };
    let (lc, now) = build_unpaused(unpaused, t0, cfg);
    let (paused, actions) = step(&lc, Event::ReadPaused, now, cfg);
    assert!(
        actions.is_empty() && paused.read_paused(),
        "building reps: pause"
    );
    (paused, now)
}

/// The representatives with reading not paused.
fn build_unpaused(rep: Rep, t0: Instant, cfg: &Config) -> (Lifecycle, Instant) {
    let ms = Duration::from_millis;
    let (lc, _) = Lifecycle::start(cfg, t0);
    let mut now = t0 + ms(100);
    let lc = go(
        &lc,
        Event::ConnectFailed {
            attempt: 1,
            failure: REFUSED,
        },
        now,
        cfg,
    );
    now = deadline(&lc, cfg);
    let connecting = go(&lc, Event::Timeout, now, cfg);
    assert_eq!(connecting.state().status(), S::Connecting);
    if rep == Rep::Connecting {
        return (connecting, now);
    }
    now += ms(100);
    if rep == Rep::Reconnecting {
        let lc = go(
            &connecting,
            Event::ConnectFailed {
                attempt: 2,
                failure: REFUSED,
            },
            now,
            cfg,
        );
        return (lc, now);
    }
    let awaiting = go(&connecting, Event::SocketOpened { attempt: 2 }, now, cfg);
    if rep == Rep::AwaitingAck {
        return (awaiting, now);
    }
    now += ms(100);
    let open = go(&awaiting, Event::Ack { attempt: 2 }, now, cfg);
    match rep {
        Rep::Open => (open, now),
        Rep::OpenProbing => {
            now += Duration::from_secs(1);
            let probing = go(&open, Event::Woke, now, cfg);
            now += Duration::from_secs(1);
            (probing, now)
        }
        Rep::OpenSilent => {
            let mut lc = open;
            for _ in 0..2 {
                now = deadline(&lc, cfg);
                lc = go(&lc, Event::Timeout, now, cfg);
            }
            (lc, now)
        }
        Rep::Closing | Rep::Closed => {
            now += ms(100);
            let close = Event::Close {
                code: 1000,
                reason: "bye".into(),
            };
            let closing = go(&open, close, now, cfg);
            if rep == Rep::Closing {
                return (closing, now);
            }
            now += ms(100);
            let peer = Event::PeerClosed {
                attempt: 2,
                code: 1000,
                reason: "bye".into(),
            };
            (go(&closing, peer, now, cfg), now)
        }
        _ => unreachable!(),
    }
}

fn socket_events(attempt: u64) -> [Event; 11] {
    [
        Event::SocketOpened { attempt },
        Event::ConnectFailed {
            attempt,
            failure: REFUSED,
        },
        Event::HelloFailed { attempt },
        Event::Ack { attempt },
        Event::Activity { attempt },
        Event::PeerClosed {
            attempt,
            code: 1000,
            reason: "bye".into(),
        },
        Event::PeerClosed {
            attempt,
            code: TERMINAL_CODE,
            reason: "banned".into(),
        },
        Event::TransportLost { attempt },
        Event::MessageTooBig { attempt },
        Event::ProtocolError {
            attempt,
            code: 1002,
        },
        Event::ProtocolError {
            attempt,
            code: 1007,
        },
    ]
}

/// The concrete (event, time) inputs of an event class at a representative.
fn inputs(ev: Ev, lc: &Lifecycle, now: Instant, cfg: &Config) -> Vec<(Event, Instant)> {
    let later = now + Duration::from_millis(1);
    let due = lc.deadline(cfg);
    let [
        opened,
        connect_failed,
        hello_failed,
        ack,
        activity,
        closed_normal,
        closed_terminal,
        lost,
        too_big,
        protocol,
        utf8,
    ] = socket_events(2);
    let one = |e: Event| vec![(e, later)];
    match ev {
        Ev::SocketOpened => one(opened),
        Ev::ConnectFailed => one(connect_failed),
        Ev::HelloFailed => one(hello_failed),
        Ev::Ack => one(ack),
        Ev::Activity => one(activity),
        Ev::PeerClosedNormal => one(closed_normal),
        Ev::PeerClosedTerminal => one(closed_terminal),
        Ev::TransportLost => one(lost),
        Ev::MessageTooBig => one(too_big),
        Ev::ProtocolError => vec![(protocol, later), (utf8, later)],
        Ev::ReadPaused => one(Event::ReadPaused),
        Ev::ReadResumed => one(Event::ReadResumed),
        Ev::Close => one(Event::Close {
            code: 1000,
            reason: "bye".into(),
        }),
        Ev::ReconnectNow => one(Event::ReconnectNow),
        // Closed (and a paused AwaitingAck or Reconnecting) has no running
        // deadline: an hour later, it still does nothing.
        Ev::TimeoutAtDeadline => vec![(
            Event::Timeout,
            due.unwrap_or(now + Duration::from_secs(3600)),
        )],
        Ev::TimeoutEarly => vec![(
            Event::Timeout,
            due.map_or(later, |d| d - Duration::from_nanos(1)),
        )],
        Ev::OtherAttempt => socket_events(1)
            .into_iter()
            .chain(socket_events(3))
            .chain(policy_events(1))
            .chain(policy_events(3))
            .chain(proxy_refusals(1))
            .chain(proxy_refusals(3))
            .map(|e| (e, later))
            .collect(),
        Ev::ConnectHttpTerminal => std::iter::once(policy_events(2)[0].clone())
            .chain(proxy_refusals(2))
            .map(|e| (e, later))
            .collect(),
        Ev::ConnectRetryAfter => one(policy_events(2)[1].clone()),
        Ev::PeerClosedPrefix => one(policy_events(2)[2].clone()),
        Ev::PeerClosedPrefixMiss => one(policy_events(2)[3].clone()),
        Ev::JudgedTransportLost => one(policy_events(2)[4].clone()),
        Ev::JudgedConnectFailed => one(policy_events(2)[5].clone()),
        Ev::JudgedTimeout => vec![(
            Event::Timeout.judged(Verdict::Terminal),
            due.unwrap_or(now + Duration::from_secs(3600)),
        )],
        Ev::Woke => one(Event::Woke),
    }
}

/// A proxy's terminal refusals: HTTP 407 and a SOCKS5 authentication failure.
fn proxy_refusals(attempt: u64) -> [Event; 2] {
    let failed = |failure| Event::ConnectFailed { attempt, failure };
    [
        failed(ConnectFailure::Proxy { status: Some(407) }),
        failed(ConnectFailure::SocksAuth),
    ]
}

/// The failure policy's socket events: a 403 answer, a 503 answer with
/// `Retry-After: 20`, 1008 closes matching and missing the prefix rule, and
/// a lost transport and a refused connect judged terminal by the caller.
fn policy_events(attempt: u64) -> [Event; 6] {
    let http = |status, retry_after| Event::ConnectFailed {
        attempt,
        failure: ConnectFailure::Http {
            status,
            retry_after,
        },
    };
    let peer = |reason: &str| Event::PeerClosed {
        attempt,
        code: PREFIX_CODE,
        reason: reason.into(),
    };
    [
        http(403, None),
        http(503, Some(Duration::from_secs(20))),
        peer(&format!("{TERMINAL_PREFIX}: token expired")),
        peer("capacity"),
        Event::TransportLost { attempt }.judged(Verdict::Terminal),
        Event::ConnectFailed {
            attempt,
            failure: REFUSED,
        }
        .judged(Verdict::Terminal),
    ]
}

/// Checks one input against the row's expectation; returns what went wrong.
fn check(
    rep: Rep,
    out: Out,
    lc: &Lifecycle,
    event: &Event,
    at: Instant,
    cfg: &Config,
) -> Result<(), String> {
    let (next, actions) = step(lc, event.clone(), at, cfg);
    let names: Vec<&str> = actions.iter().map(Action::name).collect();
    let from = lc.state().status();
    let to = next.state().status();
    let fail = |what: String| {
        Err(format!(
            "{rep:?} + {event:?}: {what}\n    got {from:?} -> {to:?} with {names:?}"
        ))
    };
    // Checks every row shares.
    for a in &actions {
        match a {
            Action::StatusChanged { from: f, to: t, .. } if (*f, *t) != (from, to) => {
                return fail(format!("StatusChanged says {f:?} -> {t:?}"));
            }
            Action::ReconnectScheduled { delay, .. } => {
                let hint = match lc.failure(event, at, cfg).map(|f| cfg.verdict(&f)) {
                    Some(Verdict::RetryAfter(hint)) => Some(hint),
                    _ => None,
                };
                let (lo, hi) = match hint {
                    Some(hint) => backoff::hinted_bounds(cfg, next.failures(), hint),
                    None => backoff::bounds(cfg, next.failures()),
                };
                if *delay < lo || *delay > hi {
                    return fail(format!("delay {delay:?} outside [{lo:?}, {hi:?}]"));
                }
            }
            _ => {}
        }
    }
    match out {
        Out::Ignored => {
            if !actions.is_empty() || next != *lc {
                return fail("expected ignored: no actions, lifecycle unchanged".into());
            }
        }
        Out::Touch => {
            let expected = match *lc.state() {
                State::Open {
                    attempt,
                    since,
                    next_ping,
                    ..
                } => lc.clone().with_state(State::Open {
                    attempt,
                    since,
                    last_activity: at,
                    next_ping,
                    probe: None,
                }),
                _ => lc.clone(),
            };
            if from != S::Open || !actions.is_empty() || next != expected {
                return fail("expected only Open's last_activity to move".into());
            }
        }
        Out::Pause => {
            let expected_state = lc.state() == next.state();
            if !actions.is_empty() || !expected_state || next.read_paused_since() != Some(at) {
                return fail("expected only the read pause to start".into());
            }
            // Resuming at the same instant undoes it exactly: nothing else
            // changed.
            if step(&next, Event::ReadResumed, at, cfg).0 != *lc {
                return fail("the pause changed more than the pause".into());
            }
        }
        Out::Resume => {
            if !actions.is_empty() || from != to || next.read_paused() {
                return fail("expected only the read pause to end".into());
            }
        }
        Out::Skip => {
            let expected = match *lc.state() {
                State::Open {
                    attempt,
                    since,
                    last_activity,
                    probe,
                    ..
                } => lc.clone().with_state(State::Open {
                    attempt,
                    since,
                    last_activity,
                    next_ping: last_activity + cfg.ping_interval,
                    probe,
                }),
                _ => lc.clone(),
            };
            if from != S::Open || !actions.is_empty() || next != expected {
                return fail(
                    "expected only next_ping to move to last_activity + ping_interval".into(),
                );
            }
        }
        Out::Emit(want) => {
            if to != from || names != want {
                return fail(format!("expected to stay {from:?} with {want:?}"));
            }
        }
        Out::Go(want_to, want_cause, want) => {
            let cause = actions.iter().find_map(|a| match a {
                Action::StatusChanged { cause, .. } => Some(*cause),
                _ => None,
            });
            if to != want_to || cause != Some(want_cause) || names != want {
                return fail(format!(
                    "expected -> {want_to:?} [{want_cause:?}] with {want:?}, cause was {cause:?}"
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn every_state_event_pair_has_exactly_one_row() {
    for rep in REPS {
        for ev in EVS {
            let n = TABLE
                .iter()
                .filter(|(r, e, _)| (*r, *e) == (rep, ev))
                .count();
            assert_eq!(n, 1, "({rep:?}, {ev:?}) has {n} rows");
        }
    }
    assert_eq!(TABLE.len(), REPS.len() * EVS.len());
}

#[test]
fn representatives_have_the_expected_shape() {
    let cfg = config();
    let t0 = Instant::now();
    let want = [
        (Rep::Connecting, S::Connecting, Some(2)),
        (Rep::AwaitingAck, S::AwaitingAck, Some(2)),
        (Rep::Open, S::Open, Some(2)),
        (Rep::OpenSilent, S::Open, Some(2)),
        (Rep::Reconnecting, S::Reconnecting, None),
        (Rep::Closing, S::Closing, Some(2)),
        (Rep::Closed, S::Closed, None),
        (Rep::AwaitingAckPaused, S::AwaitingAck, Some(2)),
        (Rep::OpenSilentPaused, S::Open, Some(2)),
        (Rep::ReconnectingPaused, S::Reconnecting, None),
        (Rep::OpenProbing, S::Open, Some(2)),
        (Rep::OpenProbingPaused, S::Open, Some(2)),
    ];
    for (rep, status, attempt) in want {
        let (lc, _) = build(rep, t0, &cfg);
        assert_eq!(lc.state().status(), status, "{rep:?}");
        assert_eq!(lc.state().transport_attempt(), attempt, "{rep:?}");
        let paused = matches!(
            rep,
            Rep::AwaitingAckPaused
                | Rep::OpenSilentPaused
                | Rep::ReconnectingPaused
                | Rep::OpenProbingPaused
        );
        assert_eq!(lc.read_paused(), paused, "{rep:?}");
    }
    // Paused: AwaitingAck and Reconnecting have no running deadline; a
    // silent Open's next one is the third ping, past the stopped stale one.
    for rep in [Rep::AwaitingAckPaused, Rep::ReconnectingPaused] {
        assert_eq!(build(rep, t0, &cfg).0.deadline(&cfg), None, "{rep:?}");
    }
    let (lc, _) = build(Rep::OpenSilentPaused, t0, &cfg);
    let State::Open {
        since, next_ping, ..
    } = *lc.state()
    else {
        unreachable!()
    };
    assert_eq!(next_ping, since + 3 * cfg.ping_interval);
    assert_eq!(lc.deadline(&cfg), Some(next_ping));
    assert!(lc.state().deadline(cfg.stale_after) < Some(next_ping));
    let (silent, now) = build(Rep::OpenSilent, t0, &cfg);
    let State::Open {
        since,
        last_activity,
        next_ping,
        ..
    } = *silent.state()
    else {
        unreachable!()
    };
    assert_eq!(last_activity, since);
    assert_eq!(now, since + 2 * cfg.ping_interval);
    assert!(
        since + cfg.stale_after < next_ping,
        "stale is the next deadline"
    );
    let (reconnecting, _) = build(Rep::Reconnecting, t0, &cfg);
    assert!(matches!(
        *reconnecting.state(),
        State::Reconnecting {
            next_attempt: 3,
            ..
        }
    ));
}

#[test]
fn the_table_holds() {
    let cfg = config();
    let t0 = Instant::now();
    let mut errors = Vec::new();
    let mut checked = 0;
    for &(rep, ev, out) in TABLE {
        let (lc, now) = build(rep, t0, &cfg);
        for (event, at) in inputs(ev, &lc, now, &cfg) {
            checked += 1;
            if let Err(e) = check(rep, out, &lc, &event, at, &cfg) {
                errors.push(e);
            }
        }
    }
    eprintln!("fsm_table: {} rows, {checked} concrete inputs", TABLE.len());
    assert!(
        errors.is_empty(),
        "{} table rows failed:\n{}",
        errors.len(),
        errors.join("\n")
    );
}

/// The table names actions; here the payloads of the interesting rows.
#[test]
fn payloads_of_the_main_edges() {
    let cfg = Config {
        jitter: 0.0,
        ..config()
    };
    let t0 = Instant::now();
    let ms = Duration::from_millis;

    // AwaitingAck + Ack: Open with fresh timers, FlushQueue for attempt 2.
    let (lc, now) = build(Rep::AwaitingAck, t0, &cfg);
    let (next, actions) = step(&lc, Event::Ack { attempt: 2 }, now + ms(1), &cfg);
    assert_eq!(
        *next.state(),
        State::Open {
            attempt: 2,
            since: now + ms(1),
            last_activity: now + ms(1),
            next_ping: now + ms(1) + cfg.ping_interval,
            probe: None,
        }
    );
    assert_eq!(
        actions,
        [
            Action::StatusChanged {
                from: S::AwaitingAck,
                to: S::Open,
                cause: Cause::Acked,
                attempt: 2
            },
            Action::FlushQueue { attempt: 2 },
        ]
    );

    // Open + PeerClosed(terminal): the notice carries the peer's code and reason.
    let (lc, now) = build(Rep::Open, t0, &cfg);
    let ev = Event::PeerClosed {
        attempt: 2,
        code: TERMINAL_CODE,
        reason: "banned".into(),
    };
    let (next, actions) = step(&lc, ev, now, &cfg);
    assert_eq!(
        actions[..2],
        [
            Action::DropTransport { attempt: 2 },
            Action::Disconnected {
                attempt: 2,
                code: TERMINAL_CODE,
                reason: "banned".into()
            },
        ]
    );
    assert_eq!(
        *next.state(),
        State::Closed {
            reason: ws_lifecycle::CloseReason::Rejected {
                by: ws_lifecycle::RejectedBy::Close {
                    code: TERMINAL_CODE,
                    reason: "banned".into()
                }
            }
        }
    );

    // Open (just acked, so not stable) + TransportLost: 1006, attempt 3 after
    // the second backoff step (one failure already counted).
    let (next, actions) = step(&lc, Event::TransportLost { attempt: 2 }, now, &cfg);
    assert!(matches!(
        actions[1],
        Action::Disconnected {
            attempt: 2,
            code: 1006,
            ..
        }
    ));
    assert_eq!(
        actions[3],
        Action::ReconnectScheduled {
            attempt: 3,
            delay: cfg.backoff[1]
        }
    );
    assert_eq!(
        *next.state(),
        State::Reconnecting {
            next_attempt: 3,
            retry_at: now + cfg.backoff[1]
        }
    );

    // OpenSilent is stable (60 s > stable_after), so its stale failure resets
    // the backoff: attempt 3 after the first step.
    let (lc, now) = build(Rep::OpenSilent, t0, &cfg);
    let stale = deadline(&lc, &cfg);
    let (next, actions) = step(&lc, Event::Timeout, stale, &cfg);
    assert_eq!(next.failures(), 1);
    assert_eq!(next.attempts_since_stable(), 0);
    assert_eq!(next.unstable_since(), stale);
    assert!(stale > now);
    assert_eq!(
        actions.last(),
        Some(&Action::ReconnectScheduled {
            attempt: 3,
            delay: cfg.backoff[0]
        })
    );

    // MessageTooBig: a close frame with 1009 goes out best-effort first.
    let (lc, now) = build(Rep::Open, t0, &cfg);
    let (_, actions) = step(&lc, Event::MessageTooBig { attempt: 2 }, now, &cfg);
    assert_eq!(
        actions[0],
        Action::SendClose {
            attempt: 2,
            code: 1009,
            reason: "message too big".into()
        }
    );

    // Close from Open: our code and reason go out verbatim; grace deadline set.
    let ev = Event::Close {
        code: 4000,
        reason: "shutting down".into(),
    };
    let (next, actions) = step(&lc, ev, now, &cfg);
    assert_eq!(
        actions[0],
        Action::SendClose {
            attempt: 2,
            code: 4000,
            reason: "shutting down".into()
        }
    );
    assert_eq!(
        *next.state(),
        State::Closing {
            attempt: 2,
            deadline: now + cfg.close_grace
        }
    );
}

/// Attempt numbers saturate rather than wrap, even at the very end.
#[test]
fn attempt_numbers_saturate() {
    let cfg = config();
    let t0 = Instant::now();
    let (lc, _) = Lifecycle::start(&cfg, t0);
    let lc = lc.with_state(State::Connecting {
        attempt: u64::MAX,
        deadline: t0 + cfg.connect_timeout,
    });
    let (next, _) = step(
        &lc,
        Event::ConnectFailed {
            attempt: u64::MAX,
            failure: REFUSED,
        },
        t0,
        &cfg,
    );
    let State::Reconnecting { next_attempt, .. } = *next.state() else {
        panic!("{next:?}")
    };
    assert_eq!(next_attempt, u64::MAX);
    let (next, actions) = step(&lc, Event::ReconnectNow, t0, &cfg);
    assert_eq!(next.state().transport_attempt(), Some(u64::MAX));
    assert_eq!(actions.last(), Some(&Action::Connect { attempt: u64::MAX }));
}

// ── Ping only when idle (`Config::ping_when_idle`) ───────────────────────

/// The Open representatives under `ping_when_idle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdleRep {
    /// Open, attempt 2, a frame 1 s after the ack: the next deadline is the
    /// first ping (ack + 30 s), which a frame within 30 s skips.
    OpenBusy,
    /// OpenBusy after the skip: the next deadline is the frame + 30 s, and
    /// nothing came since, so the ping goes out.
    OpenQuiet,
}

/// Every event at the two idle representatives: as at [`Rep::Open`] except
/// the timer's rows (skip when busy, ping when quiet; a ping reports no
/// failure, so a terminal verdict changes nothing).
#[rustfmt::skip]
const IDLE_TABLE: &[(IdleRep, Ev, Out)] = &[
    (IdleRep::OpenBusy, Ev::TimeoutAtDeadline,  Skip),
    (IdleRep::OpenBusy, Ev::JudgedTimeout,      Skip),
    (IdleRep::OpenBusy, Ev::TimeoutEarly,       Ignored),
    (IdleRep::OpenBusy, Ev::Woke,               Emit(&["SendPing"])),
    (IdleRep::OpenBusy, Ev::Activity,           Touch),
    (IdleRep::OpenQuiet, Ev::TimeoutAtDeadline, Emit(&["SendPing"])),
    (IdleRep::OpenQuiet, Ev::JudgedTimeout,     Emit(&["SendPing"])),
    (IdleRep::OpenQuiet, Ev::TimeoutEarly,      Ignored),
    (IdleRep::OpenQuiet, Ev::Woke,              Emit(&["SendPing"])),
    (IdleRep::OpenQuiet, Ev::Activity,          Touch),
];

fn idle_config() -> Config {
    Config {
        ping_when_idle: true,
        ..config()
    }
}

fn build_idle(rep: IdleRep, t0: Instant, cfg: &Config) -> (Lifecycle, Instant) {
    let (open, now) = build(Rep::Open, t0, cfg);
    let now = now + Duration::from_secs(1);
    let (busy, actions) = step(&open, Event::Activity { attempt: 2 }, now, cfg);
    assert!(actions.is_empty());
    if rep == IdleRep::OpenBusy {
        return (busy, now);
    }
    let due = deadline(&busy, cfg);
    let (quiet, actions) = step(&busy, Event::Timeout, due, cfg);
    assert!(actions.is_empty(), "the skip emitted {actions:?}");
    (quiet, due)
}

#[test]
fn the_idle_table_holds() {
    let cfg = idle_config();
    let t0 = Instant::now();
    let mut errors = Vec::new();
    let mut checked = 0;
    for rep in [IdleRep::OpenBusy, IdleRep::OpenQuiet] {
        let (lc, now) = build_idle(rep, t0, &cfg);
        for ev in EVS {
            // The rows of the idle table, else the same as at Rep::Open.
            let out = IDLE_TABLE
                .iter()
                .find(|(r, e, _)| (*r, *e) == (rep, ev))
                .map(|(_, _, out)| *out)
                .or_else(|| {
                    let row = TABLE.iter().find(|(r, e, _)| (*r, *e) == (Rep::Open, ev));
                    row.map(|(_, _, out)| *out)
                })
                .unwrap();
            for (event, at) in inputs(ev, &lc, now, &cfg) {
                checked += 1;
                if let Err(e) = check(Rep::Open, out, &lc, &event, at, &cfg) {
                    errors.push(format!("{rep:?}: {e}"));
                }
            }
        }
    }
    eprintln!("fsm_table (ping_when_idle): {checked} concrete inputs");
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // The representatives are what they claim.
    let (busy, now) = build_idle(IdleRep::OpenBusy, t0, &cfg);
    let State::Open {
        since,
        last_activity,
        next_ping,
        ..
    } = *busy.state()
    else {
        unreachable!()
    };
    assert_eq!((last_activity, next_ping), (now, since + cfg.ping_interval));
    let (quiet, now) = build_idle(IdleRep::OpenQuiet, t0, &cfg);
    let State::Open {
        last_activity,
        next_ping,
        ..
    } = *quiet.state()
    else {
        unreachable!()
    };
    assert_eq!(now, since + cfg.ping_interval);
    assert_eq!(next_ping, last_activity + cfg.ping_interval);
    // The same busy Open with the option off pings at the deadline.
    let off = config();
    let (busy, now) = build_idle(IdleRep::OpenBusy, t0, &off);
    let due = deadline(&busy, &off);
    assert!(due > now);
    let (_, actions) = step(&busy, Event::Timeout, due, &off);
    assert_eq!(actions, [Action::SendPing { attempt: 2 }]);
}
