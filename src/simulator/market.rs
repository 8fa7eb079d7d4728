//! The market clock: one thread that takes frames from the source (a
//! recording or the synthetic walk) and releases them on schedule, in batches,
//! to the network thread, which fans each out to every subscribed client.
//!
//! Pacing is against an absolute schedule (`origin + offset`), so sleep
//! granularity delays a frame but never drifts the rate: whatever is due when
//! the thread wakes goes out together as one small batch. A schedule that
//! falls more than [`MAX_LATENESS`] behind (nobody wanted anything for a
//! while) is moved forward instead of being caught up in one burst.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use mio::{Token, Waker};

use super::frame::Frame;
use super::options::Rate;
use super::streams::StreamId;
use crate::recording::RecordingError;

/// Most frames per batch handed to the network thread.
const BATCH: usize = 256;
/// Lateness beyond which the schedule is moved forward rather than caught up.
const MAX_LATENESS: Duration = Duration::from_secs(1);

/// What the source has next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peek {
    /// A frame, due at this offset on the source's own clock.
    At(Duration),
    /// Nothing until the wanted streams change.
    Idle,
    /// The source is exhausted.
    End,
}

/// A producer of market frames. `now` is the current time on the source's
/// clock (the schedule's origin is its zero).
pub trait Source: Send {
    /// Gets ready before the clock starts (loads what must be loaded), so the
    /// first frames are not already late when it does.
    fn prepare(&mut self) -> Result<(), RecordingError>;
    /// A stream gained its first subscriber (`wanted`) or lost its last.
    fn want(&mut self, id: StreamId, wanted: bool, now: Duration);
    /// When the next frame is due; repeated calls without `take` announce
    /// the same frame.
    fn peek(&mut self, now: Duration) -> Result<Peek, RecordingError>;
    /// The frame the last `peek` announced; `None` when its stream is not
    /// wanted (it has had its time, and is dropped).
    fn take(&mut self) -> Option<Arc<Frame>>;
    /// The `GET /api/v3/depth` body for `symbol` at the clock's position,
    /// best `limit` levels per side. A source without books (the synthetic
    /// walk) knows no symbol.
    fn snapshot(&mut self, symbol: &str, limit: usize) -> SnapshotAnswer {
        let _ = (symbol, limit);
        SnapshotAnswer::UnknownSymbol
    }
}

/// What the market answers to a snapshot query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotAnswer {
    /// Binance's JSON body.
    Body(String),
    /// The recordings hold no such symbol (Binance's `-1121`).
    UnknownSymbol,
    /// The symbol is recorded but no snapshot of it is: its book cannot be
    /// known.
    NoBook,
}

/// A REST connection waiting for a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotQuery {
    pub token: Token,
    /// The connection's request number, so a late answer is never taken
    /// for a later request's.
    pub seq: u64,
    /// Upper case, as in the request (`BTCUSDT`).
    pub symbol: String,
    pub limit: usize,
}

/// From the network thread to the market.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MarketCtl {
    /// A stream gained its first subscriber.
    Want(StreamId),
    /// A stream lost its last subscriber.
    Unwant(StreamId),
    /// How many connections are subscribed to at least one stream.
    Subscribers(usize),
    /// A REST client asks for a book snapshot; answered with
    /// [`MarketEvent::Snapshot`] after every frame already released, so the
    /// answer never describes a market older than what was streamed.
    Snapshot(SnapshotQuery),
}

/// From the market to the network thread.
#[derive(Debug)]
pub enum MarketEvent {
    Frames(Vec<Arc<Frame>>),
    /// The recording has been played to its end.
    Finished,
    /// The source failed; nothing more will come.
    Failed(String),
    /// The answer to a [`MarketCtl::Snapshot`].
    Snapshot(SnapshotQuery, SnapshotAnswer),
}

/// The market thread's state.
pub struct Market {
    source: Box<dyn Source>,
    rate: Rate,
    wait_for_subscribers: usize,
    subscribers: usize,
    /// Streams with at least one subscriber.
    wanted: usize,
    ctl: Receiver<MarketCtl>,
    out: Sender<MarketEvent>,
    waker: Arc<Waker>,
    batch: Vec<Arc<Frame>>,
}

/// Why waiting stopped.
enum Wake {
    /// The deadline passed.
    Due,
    /// A control message changed what is wanted: plan again.
    Changed,
    /// The network thread is gone.
    Stop,
}

/// Time elapsed since `origin`: the source clock's reading.
fn since(origin: Instant) -> Duration {
    Instant::now().saturating_duration_since(origin)
}

/// The pacing schedule.
struct Schedule {
    origin: Instant,
    /// Frames released so far (for fixed rates).
    released: u64,
}

impl Market {
    pub fn new(
        source: Box<dyn Source>,
        rate: Rate,
        wait_for_subscribers: usize,
        ctl: Receiver<MarketCtl>,
        out: Sender<MarketEvent>,
        waker: Arc<Waker>,
    ) -> Self {
        Market {
            source,
            rate,
            wait_for_subscribers,
            subscribers: 0,
            wanted: 0,
            ctl,
            out,
            waker,
            batch: Vec::with_capacity(BATCH),
        }
    }

    /// Runs until the network thread goes away. Once the source has ended
    /// (or failed) no frame comes any more, but snapshot queries are still
    /// answered, from the books as the market left them.
    pub fn run(mut self) {
        self.play();
        while self.next_ctl(None) {}
    }

    /// Plays the source until it ends, fails, or the network thread goes away.
    fn play(&mut self) {
        if let Err(e) = self.source.prepare() {
            self.fail(&e);
            return;
        }
        while self.subscribers < self.wait_for_subscribers {
            // Streams wanted before the clock starts all start at its zero.
            if !self.next_ctl(None) {
                return;
            }
        }
        let mut schedule = Schedule { origin: Instant::now(), released: 0 };
        loop {
            if !self.drain_ctl(schedule.origin) {
                return;
            }
            // `Rate::Max` keeps no clock: with nothing wanted, wait for a
            // subscriber rather than spin through frames nobody gets.
            if self.rate == Rate::Max && self.wanted == 0 {
                if !self.flush() || !self.next_ctl(Some(schedule.origin)) {
                    return;
                }
                continue;
            }
            let now = Instant::now();
            let peek = match self.source.peek(since(schedule.origin)) {
                Ok(p) => p,
                Err(e) => {
                    self.fail(&e);
                    return;
                }
            };
            let wake = match peek {
                Peek::End => {
                    if self.flush() {
                        self.send(MarketEvent::Finished);
                    }
                    return;
                }
                Peek::Idle => {
                    if !self.flush() || !self.next_ctl(Some(schedule.origin)) {
                        return;
                    }
                    continue;
                }
                Peek::At(at) => match self.due(&mut schedule, at, now) {
                    Some(due) if due > now => {
                        if !self.flush() {
                            return;
                        }
                        self.wait_until(due, schedule.origin)
                    }
                    _ => Wake::Due,
                },
            };
            match wake {
                Wake::Stop => return,
                Wake::Changed => continue,
                Wake::Due => {}
            }
            if let Some(frame) = self.source.take() {
                self.batch.push(frame);
            }
            schedule.released += 1;
            if self.batch.len() >= BATCH && !self.flush() {
                return;
            }
        }
    }

    /// Blocks for the next control message and applies it (at the clock's
    /// zero before it starts); false once the network thread is gone.
    fn next_ctl(&mut self, origin: Option<Instant>) -> bool {
        match self.ctl.recv() {
            Ok(msg) => {
                self.apply(msg, origin.map_or(Duration::ZERO, since));
                true
            }
            Err(_) => false,
        }
    }

    /// Applies every waiting control message; false once the network thread
    /// is gone.
    fn drain_ctl(&mut self, origin: Instant) -> bool {
        loop {
            match self.ctl.try_recv() {
                Ok(msg) => self.apply(msg, since(origin)),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    /// When the frame at source offset `at` is due; `None` at `Rate::Max`.
    fn due(&self, schedule: &mut Schedule, at: Duration, now: Instant) -> Option<Instant> {
        let offset = match self.rate {
            Rate::Max => return None,
            Rate::Recorded => at,
            Rate::PerSecond(n) => {
                let ns = u128::from(schedule.released) * 1_000_000_000 / u128::from(n.max(1));
                Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
            }
        };
        let due = super::deadline(schedule.origin, offset);
        let late = now.saturating_duration_since(due);
        if late > MAX_LATENESS {
            schedule.origin += late;
            return Some(now);
        }
        Some(due)
    }

    /// Sleeps until `deadline`, waking early for control messages.
    fn wait_until(&mut self, deadline: Instant, origin: Instant) -> Wake {
        let timeout = deadline.saturating_duration_since(Instant::now());
        match self.ctl.recv_timeout(timeout) {
            Ok(msg) => {
                self.apply(msg, since(origin));
                Wake::Changed
            }
            Err(RecvTimeoutError::Timeout) => Wake::Due,
            Err(RecvTimeoutError::Disconnected) => Wake::Stop,
        }
    }

    /// Applies a control message at `now` on the source's clock.
    fn apply(&mut self, msg: MarketCtl, now: Duration) {
        match msg {
            MarketCtl::Want(id) => {
                self.wanted += 1;
                self.source.want(id, true, now);
            }
            MarketCtl::Unwant(id) => {
                self.wanted = self.wanted.saturating_sub(1);
                self.source.want(id, false, now);
            }
            MarketCtl::Subscribers(n) => self.subscribers = n,
            MarketCtl::Snapshot(query) => {
                let answer = self.source.snapshot(&query.symbol, query.limit);
                if self.flush() {
                    self.send(MarketEvent::Snapshot(query, answer));
                }
            }
        }
    }

    /// Reports a source failure after whatever was already released.
    fn fail(&mut self, e: &RecordingError) {
        log::error!("simulator: recording failed, the market stops here: {e}");
        if self.flush() {
            self.send(MarketEvent::Failed(e.to_string()));
        }
    }

    /// Hands the batch over; false once the network thread is gone.
    fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.send(MarketEvent::Frames(batch))
    }

    fn send(&self, event: MarketEvent) -> bool {
        if self.out.send(event).is_err() {
            return false;
        }
        // A failed wake means the network thread's poll is gone with it.
        self.waker.wake().is_ok()
    }
}
