//! Latency you can see: per-stage histograms and counters.
//!
//! The hot thread records into hdrhistograms allocated once (fixed bounds,
//! `saturating_record`), in one of two buffers: every publish interval it
//! sends the filled buffer to the cold side and continues in an empty one the
//! cold side sent back, so neither thread allocates or waits. The cold side
//! merges what it receives into interval and run-long totals ([`report`]).

pub mod report;

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use hdrhistogram::Histogram;

use crate::engine::EngineCounters;
use crate::feed::FeedCounters;
use crate::handoff::HandOffCounters;

/// A latency stage. `Hot` stages are measured on the hot thread, the others
/// on the cold side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// From the poll returning the readable event that carried a frame to
    /// the trigger decision on it.
    WireToDecision,
    /// Time inside socket reads (the kernel's `recv`, for TLS the encrypted
    /// records) between that poll returning and the decision: the part of
    /// `wire_to_decision` spent in the kernel, which this process does not
    /// control. On loopback it includes the peer's TCP work (ACKs) too.
    SocketRead,
    /// `wire_to_decision − socket_read` for the same frame: what this
    /// process adds (TLS decryption, WebSocket framing, parse, eval).
    InProcess,
    /// Parsing one frame into a book.
    Parse,
    /// Metrics and triggers on one parsed book.
    Eval,
    /// Receive time minus the exchange's event time `E` (when the stream
    /// carries one); includes the clock offset between the two machines.
    Exchange,
    /// From the decision to the cold thread taking the alert off the channel.
    Queue,
    /// One Telegram request's round trip.
    Telegram,
    /// From the decision to Telegram confirming delivery.
    DecisionToDelivered,
}

impl Stage {
    /// Stages the hot thread records.
    pub const HOT: [Stage; 6] =
        [Stage::WireToDecision, Stage::SocketRead, Stage::InProcess, Stage::Parse, Stage::Eval, Stage::Exchange];
    /// Stages the cold side records.
    pub const COLD: [Stage; 3] = [Stage::Queue, Stage::Telegram, Stage::DecisionToDelivered];
    /// Every stage, in report order.
    pub const ALL: [Stage; 9] = [
        Stage::WireToDecision,
        Stage::SocketRead,
        Stage::InProcess,
        Stage::Parse,
        Stage::Eval,
        Stage::Exchange,
        Stage::Queue,
        Stage::Telegram,
        Stage::DecisionToDelivered,
    ];

    /// Label in logs, metrics and the HdrHistogram log.
    pub const fn name(self) -> &'static str {
        match self {
            Stage::WireToDecision => "wire_to_decision",
            Stage::SocketRead => "socket_read",
            Stage::InProcess => "in_process",
            Stage::Parse => "parse",
            Stage::Eval => "eval",
            Stage::Exchange => "exchange",
            Stage::Queue => "queue",
            Stage::Telegram => "telegram",
            Stage::DecisionToDelivered => "decision_to_delivered",
        }
    }

    /// Index into [`Stage::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

pub use crate::units::nanos;

/// A latency histogram in nanoseconds, 1 ns to 1 hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("constant bounds 1 ns..1 h at 3 digits are valid")
}

/// One buffer of hot-side statistics.
pub struct HotStats {
    /// By [`Stage::index`] for the hot stages (others unused).
    pub hist: [Histogram<u64>; Stage::HOT.len()],
    /// Running totals at the moment the buffer was published.
    pub engine: EngineCounters,
    pub feed: FeedCounters,
    pub handoff: HandOffCounters,
    /// Frames that could not be recorded because the recorder fell behind.
    pub record_dropped: u64,
    /// When this buffer started and stopped collecting.
    pub since: Instant,
    pub until: Instant,
}

impl HotStats {
    fn new(now: Instant) -> Self {
        HotStats {
            hist: std::array::from_fn(|_| new_histogram()),
            engine: EngineCounters::default(),
            feed: FeedCounters::default(),
            handoff: HandOffCounters::default(),
            record_dropped: 0,
            since: now,
            until: now,
        }
    }

    /// Records one hot-stage latency.
    #[inline]
    pub fn record(&mut self, stage: Stage, nanos: u64) {
        if let Some(h) = self.hist.get_mut(stage.index()) {
            h.saturating_record(nanos.max(1));
        }
    }

    /// Clears the histograms for reuse (the counters are overwritten on publish).
    pub fn clear(&mut self) {
        for h in &mut self.hist {
            h.reset();
        }
    }
}

/// The hot side of the stats double buffer.
pub struct StatsPublisher {
    current: Box<HotStats>,
    tx: Sender<Box<HotStats>>,
    spares: Receiver<Box<HotStats>>,
    /// Puts primed spares back (the cold side's sender, cloned).
    tx_spare: Sender<Box<HotStats>>,
    interval: Duration,
    next: Instant,
}

/// The cold side of the stats double buffer: filled buffers arrive on
/// `filled`; cleared ones go back on `spares`.
pub struct StatsReceiver {
    pub filled: Receiver<Box<HotStats>>,
    pub spares: Sender<Box<HotStats>>,
}

/// How often the hot thread hands its histograms over.
pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// A connected publisher/receiver pair with its buffers allocated now.
pub fn stats_channel(interval: Duration) -> (StatsPublisher, StatsReceiver) {
    let now = Instant::now();
    let (tx, filled) = crossbeam_channel::bounded(4);
    let (spare_tx, spares) = crossbeam_channel::bounded(4);
    for _ in 0..2 {
        let _ = spare_tx.try_send(Box::new(HotStats::new(now)));
    }
    (
        StatsPublisher {
            current: Box::new(HotStats::new(now)),
            tx,
            spares,
            tx_spare: spare_tx.clone(),
            interval,
            next: now + interval,
        },
        StatsReceiver { filled, spares: spare_tx },
    )
}

impl StatsPublisher {
    /// The buffer being recorded into.
    #[inline]
    pub fn current(&mut self) -> &mut HotStats {
        &mut self.current
    }

    /// Sizes every buffer's counters like `engine`'s now, so that no publish
    /// ever allocates (a buffer's first copy would otherwise grow its vectors).
    pub fn prime(&mut self, engine: &EngineCounters) {
        self.current.engine.clone_from(engine);
        let spares: Vec<Box<HotStats>> = self.spares.try_iter().collect();
        for mut spare in spares {
            spare.engine.clone_from(engine);
            let _ = self.tx_spare.try_send(spare);
        }
    }

    /// When the next publish is due.
    pub fn next_due(&self) -> Instant {
        self.next
    }

    /// Publishes if due (or `force`): swaps in a spare buffer and sends the
    /// filled one with the counters as of now. Without a spare (the cold side
    /// is behind) it keeps recording into the current buffer; nothing waits.
    pub fn publish(
        &mut self,
        now: Instant,
        force: bool,
        counters: (&EngineCounters, FeedCounters, HandOffCounters, u64),
    ) {
        if !force && now < self.next {
            return;
        }
        self.next = now + self.interval;
        let Ok(mut spare) = self.spares.try_recv() else { return };
        spare.since = now;
        std::mem::swap(&mut self.current, &mut spare);
        let (engine, feed, handoff, record_dropped) = counters;
        spare.engine.clone_from(engine);
        spare.feed = feed;
        spare.handoff = handoff;
        spare.record_dropped = record_dropped;
        spare.until = now;
        // The channel holds every buffer in existence, so this cannot be full.
        let _ = self.tx.try_send(spare);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_circulate_without_waiting_and_carry_counters() {
        let (mut publisher, receiver) = stats_channel(Duration::from_secs(1));
        let t0 = Instant::now();
        publisher.current().record(Stage::Parse, 120);
        let engine = EngineCounters { frames: 7, ..EngineCounters::default() };
        publisher.publish(t0, false, (&engine, FeedCounters::default(), HandOffCounters::default(), 0));
        assert!(receiver.filled.try_recv().is_err(), "not due yet");
        publisher.publish(
            t0 + Duration::from_secs(1),
            false,
            (&engine, FeedCounters::default(), HandOffCounters::default(), 0),
        );
        let got = receiver.filled.try_recv().unwrap();
        assert_eq!(got.engine.frames, 7);
        assert_eq!(got.hist[Stage::Parse.index()].len(), 1);
        assert_eq!(publisher.current().hist[Stage::Parse.index()].len(), 0);
        // The cold side is slow (returns no spare): once the spares run out
        // the publisher keeps recording into its current buffer, losing nothing.
        publisher.current().record(Stage::Parse, 5);
        for k in 2..6 {
            let at = t0 + Duration::from_secs(k);
            publisher.publish(at, false, (&engine, FeedCounters::default(), HandOffCounters::default(), 0));
            publisher.current().record(Stage::Parse, 5);
        }
        // Published at k=2 (the last spare); k=3..5 found none.
        assert_eq!(receiver.filled.try_iter().count(), 1);
        assert_eq!(publisher.current().hist[Stage::Parse.index()].len(), 4);
    }
}
