//! The feed's side of the seam: what it asks of the handler that owns the
//! messages, what it hands over with each one, and the connection rules a
//! venue gives it. Nothing here knows what a message means.

use std::time::{Duration, Instant};

use super::FeedCounters;
use super::conn::FrameKind;
use crate::units::UnixNanos;

/// What a venue's servers allow: the feed enforces it on every attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionRules {
    /// At most this many connection attempts per `attempt_window`, over all
    /// groups (Binance bans the IP beyond 300 per 5 minutes).
    pub max_attempts: usize,
    pub attempt_window: Duration,
    /// The limit's name in the log line when it holds an attempt back.
    pub limit_name: &'static str,
}

/// One connection group as the handler's side laid it out: the URL its
/// connections open and how many streams that URL carries (for the log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSpec {
    pub url: String,
    pub streams: usize,
}

/// When a message arrived, as the feed measured it: an explicit value
/// handed to the handler with each message.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    /// Wall-clock time the poll returned (feed time for every message read
    /// in this iteration).
    pub recv: UnixNanos,
    /// Monotonic time the poll returned: the start of `wire_to_decision`.
    pub poll_at: Instant,
    /// Nanoseconds spent inside socket reads since the poll returned, up to
    /// this message: the kernel's share of `wire_to_decision`.
    pub socket_read_ns: u64,
}

/// What the feed asks of the side that owns the messages. The feed calls it
/// on its own thread, inline; every method must return quickly and must not
/// block. Only [`FrameHandler::on_frame`] runs per message; it must not
/// allocate after warm-up.
pub trait FrameHandler {
    /// One complete WebSocket data message (text or binary) of connection
    /// group `group`. The answer drives the stale watchdog and rotation.
    fn on_frame(&mut self, group: usize, bytes: &[u8], arrival: Arrival) -> FrameKind;

    /// Two connections of `group` are open at once (make-before-break), or
    /// no longer: while `on`, the same message may arrive twice.
    fn on_overlap(&mut self, group: usize, on: bool);

    /// `group` has a connection open again.
    fn on_feed_up(&mut self, _group: usize) {}

    /// `group` has no connection; `why` says why and when the next attempt is.
    fn on_feed_down(&mut self, _group: usize, _why: &str) {}

    /// The feed's waker fired (another thread has something for the
    /// handler, e.g. a REST snapshot): look for it without blocking.
    fn on_wake(&mut self) {}

    /// Open connections now.
    fn on_connections_open(&mut self, _open: usize) {}

    /// After every poll iteration's reads (flush hand-offs, publish stats).
    fn after_batch(&mut self, _now: Instant, _feed: FeedCounters) {}

    /// The next instant `after_batch` has work even without I/O.
    fn next_due(&self) -> Option<Instant> {
        None
    }

    /// Once, after the last connection is gone.
    fn on_stop(&mut self, _feed: FeedCounters) {}
}
