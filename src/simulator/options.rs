//! What a simulator run is asked to do: where to listen, what market to play,
//! how fast, and which faults to inject.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::error::SimError;
use super::rest::SnapshotStatus;

/// How fast the market clock releases frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rate {
    /// Recordings keep their own inter-frame timing (from each line's receive
    /// time); the synthetic walk sends each stream at its Binance update
    /// interval (100 ms for `@100ms` streams, 1000 ms otherwise), as the real
    /// exchange does.
    #[default]
    Recorded,
    /// A fixed number of frames per second, paced against an absolute
    /// schedule so that sleep granularity never drifts the average rate (high
    /// rates go out in small batches). A recording advances this many frames
    /// per second (a frame of a stream nobody asked for takes its slot but is
    /// not sent); the synthetic walk makes this many across the requested
    /// streams.
    PerSecond(u32),
    /// As fast as the subscribed sockets take them: the market waits for the
    /// slowest subscribed client (one that takes nothing for
    /// [`MAX_RATE_STALL`](super::MAX_RATE_STALL) is dropped), which is what a
    /// throughput benchmark wants. With nobody subscribed the market pauses:
    /// there is no clock to keep.
    Max,
}

/// Everything a simulator run can be told. Build it with struct-update syntax
/// from [`Default`], which gives a plain-`ws` loopback server on a free port
/// with Binance's keepalive timings and no faults.
///
/// Fault counters (`*_after`, `garbage_every`) count *data frames sent to one
/// connection*; every connection gets the same faults, each on its own count.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Address to bind; port 0 picks a free port (see
    /// [`RunningSimulator::addr`](super::RunningSimulator::addr)).
    pub listen: SocketAddr,
    /// Serve `wss://` with a freshly generated CA and server certificate for
    /// `localhost` and `127.0.0.1`.
    pub tls: bool,
    /// Where to write the CA certificate (PEM) a client must trust; default a
    /// file in a fresh temporary directory, removed again when the simulator
    /// stops.
    pub ca_out: Option<PathBuf>,
    /// Recordings to play in order (`<recv_unix_ns> <raw JSON>` lines,
    /// gzip-compressed when the name ends in `.gz`).
    pub replay: Vec<PathBuf>,
    /// Play the recordings side by side, merged by receive time, instead of
    /// one after the other: one market of several symbols from collector
    /// files that hold one symbol each (consecutive files of one symbol still
    /// play in sequence, as their times do not overlap).
    pub interleave: bool,
    /// Play a seeded random-walk book for any requested partial-depth stream
    /// instead of recordings.
    pub synthetic: bool,
    /// Seed of the synthetic walk: the same seed and the same subscriptions
    /// give the same frames.
    pub seed: u64,
    /// Frame pacing.
    pub rate: Rate,
    /// Start the recording again after its last frame (the first pass is
    /// byte-for-byte; later passes shift `lastUpdateId` so it keeps increasing,
    /// because clients deduplicate by it).
    pub looped: bool,
    /// The market clock starts once this many connections have subscribed to
    /// at least one stream, so that a test or benchmark client sees the
    /// recording from its first frame; 0 starts it at once, like the real
    /// exchange, whose market never waits.
    pub wait_for_subscribers: usize,
    /// How often the server pings each client (Binance: 20 s).
    pub ping_interval: Duration,
    /// How long a ping may stay unanswered before the client is dropped
    /// (Binance: 60 s).
    pub pong_timeout: Duration,
    /// After this many data frames, reset the TCP connection (RST, no Close
    /// frame), as a crashed proxy or a network fault would.
    pub drop_after: Option<u64>,
    /// After this many data frames, send Binance's `serverShutdown` event, keep
    /// streaming for [`shutdown_grace`](Self::shutdown_grace), then close.
    pub shutdown_after: Option<u64>,
    /// How long a connection keeps streaming after its `serverShutdown` event.
    pub shutdown_grace: Duration,
    /// After every this many data frames, send one extra malformed text frame.
    pub garbage_every: Option<u64>,
    /// After this many data frames, send no more data but keep the connection
    /// and its pings alive: the silent feed a stale-feed watchdog must catch.
    pub stall_after: Option<u64>,
    /// Data frames a client may fall behind before it is dropped as too slow
    /// (at a paced rate), so one slow client never slows the market or anyone
    /// else.
    pub client_queue_frames: usize,
    /// Skip every N-th diff-depth event sent to a connection (counted per
    /// connection, over its `@depth@100ms` and `@depth` streams): the client
    /// sees `U` > its previous `u` + 1 and must resync.
    pub gap_every: Option<u64>,
    /// Answer the first `count` `GET /api/v3/depth` requests with this HTTP
    /// status (429, 418, 5xx) and [`retry_after`](Self::retry_after).
    pub snapshot_status: Option<SnapshotStatus>,
    /// The `Retry-After` of a `snapshot_status` answer (whole seconds).
    pub retry_after: Duration,
    /// Every depth answer leaves this long after its request arrived; the
    /// WebSocket side keeps streaming meanwhile.
    pub snapshot_delay: Duration,
    /// The REST side is down: every REST connection is closed unanswered.
    pub rest_down: bool,
    /// Also write the request log (`<recv_unix_ns> <path+query> <status>`
    /// per REST request) to this file; it is always kept in memory for
    /// [`RunningSimulator::requests`](super::RunningSimulator::requests).
    pub request_log: Option<PathBuf>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            tls: false,
            ca_out: None,
            replay: Vec::new(),
            interleave: false,
            synthetic: false,
            seed: 1,
            rate: Rate::Recorded,
            looped: false,
            wait_for_subscribers: 1,
            ping_interval: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(60),
            drop_after: None,
            shutdown_after: None,
            shutdown_grace: Duration::from_secs(10),
            garbage_every: None,
            stall_after: None,
            client_queue_frames: 65_536,
            gap_every: None,
            snapshot_status: None,
            retry_after: Duration::from_secs(1),
            snapshot_delay: Duration::ZERO,
            rest_down: false,
            request_log: None,
        }
    }
}

impl SimOptions {
    /// Rejects option combinations that cannot run, before anything binds.
    pub(crate) fn validate(&self) -> Result<(), SimError> {
        match (self.synthetic, self.replay.is_empty()) {
            (false, true) => return Err(SimError::NoSource),
            (true, false) => return Err(SimError::TwoSources),
            _ => {}
        }
        if self.rate == Rate::PerSecond(0) {
            return Err(SimError::ZeroRate);
        }
        if self.garbage_every == Some(0) {
            return Err(SimError::ZeroGarbage);
        }
        if self.ping_interval.is_zero() || self.pong_timeout.is_zero() {
            return Err(SimError::ZeroKeepalive);
        }
        if let Some(n) = self.gap_every.filter(|&n| n < 2) {
            return Err(SimError::GapEvery(n));
        }
        if let Some(s) = self.snapshot_status.filter(|s| !(400..=599).contains(&s.status)) {
            return Err(SimError::SnapshotStatus(s.status));
        }
        Ok(())
    }
}
