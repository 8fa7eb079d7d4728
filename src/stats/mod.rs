//! Latency you can see: per-stage histograms and counters.
//!
//! The hot thread records into hdrhistograms allocated once (fixed bounds,
//! `saturating_record`), in one of two buffers: every publish interval it
//! sends the filled buffer to the cold side and continues in an empty one the
//! cold side sent back, so neither thread allocates or waits. The cold side
//! merges what it receives into interval and run-long totals ([`report`]).

pub mod report;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use hdrhistogram::Histogram;

use crate::alert::MetricUpdate;
use crate::engine::EngineCounters;
use crate::feed::FeedCounters;
use crate::handoff::HandOffCounters;
use crate::units::Price;

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

/// A duration in whole nanoseconds, saturating (for histogram records).
#[inline]
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

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

/// Per-pair gauges the hot thread keeps current with relaxed atomic stores
/// (no syscall, no lock), read by the health endpoint and the metrics.
#[derive(Debug)]
pub struct PairGauges {
    /// Unix ns of each pair's last depth frame (0 = none yet).
    pub last_frame_ns: Vec<AtomicU64>,
    /// Bits of each pair's last `imbalance_ratio` (NaN = none yet).
    pub ratio_bits: Vec<AtomicU64>,
    /// Bits of each pair's last bid and ask volume mantissas as `f64` (the
    /// unit is the volume mode's; NaN = none yet), for the dashboard.
    pub bid_raw_bits: Vec<AtomicU64>,
    pub ask_raw_bits: Vec<AtomicU64>,
    /// Each pair's last best bid and ask mantissa (scale 1e8; 0 = none).
    pub best_bid: Vec<AtomicU64>,
    pub best_ask: Vec<AtomicU64>,
    /// Open feed connections.
    pub connections_open: AtomicU32,
    /// Why each pair's feed is down and when it is tried again (empty while
    /// it is up or being established): what `/healthz` says besides "stale".
    pub feed_down: Vec<TextCell>,
}

impl PairGauges {
    pub fn new(pairs: usize) -> Arc<Self> {
        Arc::new(PairGauges {
            last_frame_ns: (0..pairs).map(|_| AtomicU64::new(0)).collect(),
            ratio_bits: (0..pairs).map(|_| AtomicU64::new(f64::NAN.to_bits())).collect(),
            bid_raw_bits: (0..pairs).map(|_| AtomicU64::new(f64::NAN.to_bits())).collect(),
            ask_raw_bits: (0..pairs).map(|_| AtomicU64::new(f64::NAN.to_bits())).collect(),
            best_bid: (0..pairs).map(|_| AtomicU64::new(0)).collect(),
            best_ask: (0..pairs).map(|_| AtomicU64::new(0)).collect(),
            connections_open: AtomicU32::new(0),
            feed_down: (0..pairs).map(|_| TextCell::new()).collect(),
        })
    }

    #[inline]
    pub fn frame(&self, pair: usize, recv_ns: u64) {
        if let Some(a) = self.last_frame_ns.get(pair) {
            a.store(recv_ns, Ordering::Relaxed);
        }
    }

    #[inline]
    pub fn ratio(&self, pair: usize, value: f64) {
        if let Some(a) = self.ratio_bits.get(pair) {
            a.store(value.to_bits(), Ordering::Relaxed);
        }
    }

    /// Keeps a pair's volumes and touch from an evaluated update. The
    /// fields are stored one by one: a reader may see one from the update
    /// before, which a dashboard tolerates; no lock is taken.
    #[inline]
    pub fn book(&self, update: &MetricUpdate) {
        let i = update.pair.index();
        let store = |cells: &[AtomicU64], v: u64| {
            if let Some(a) = cells.get(i) {
                a.store(v, Ordering::Relaxed);
            }
        };
        store(&self.bid_raw_bits, (update.imbalance.bid.raw as f64).to_bits());
        store(&self.ask_raw_bits, (update.imbalance.ask.raw as f64).to_bits());
        store(&self.best_bid, update.best_bid.map_or(0, |p| p.0));
        store(&self.best_ask, update.best_ask.map_or(0, |p| p.0));
    }

    /// A pair's last bid and ask volume mantissas (lossy), if any.
    pub fn last_volumes(&self, pair: usize) -> Option<(f64, f64)> {
        let load = |cells: &[AtomicU64]| cells.get(pair).map(|a| f64::from_bits(a.load(Ordering::Relaxed)));
        match (load(&self.bid_raw_bits), load(&self.ask_raw_bits)) {
            (Some(b), Some(a)) if !b.is_nan() && !a.is_nan() => Some((b, a)),
            _ => None,
        }
    }

    /// A pair's last best bid and ask, each if present.
    pub fn last_touch(&self, pair: usize) -> (Option<Price>, Option<Price>) {
        let load =
            |cells: &[AtomicU64]| cells.get(pair).map(|a| a.load(Ordering::Relaxed)).filter(|&p| p != 0).map(Price);
        (load(&self.best_bid), load(&self.best_ask))
    }

    /// Last frame time of a pair, if any.
    pub fn last_frame(&self, pair: usize) -> Option<u64> {
        self.last_frame_ns.get(pair).map(|a| a.load(Ordering::Relaxed)).filter(|&t| t != 0)
    }

    /// Last ratio of a pair, if any.
    pub fn last_ratio(&self, pair: usize) -> Option<f64> {
        self.ratio_bits.get(pair).map(|a| f64::from_bits(a.load(Ordering::Relaxed))).filter(|v| !v.is_nan())
    }

    /// Records why a pair's feed is down (the hot thread, on a failure).
    pub fn set_feed_down(&self, pair: usize, why: &str) {
        if let Some(cell) = self.feed_down.get(pair) {
            cell.set(why);
        }
    }

    /// Why a pair's feed is down, if it is.
    pub fn feed_down(&self, pair: usize) -> Option<String> {
        self.feed_down.get(pair).map(TextCell::get).filter(|why| !why.is_empty())
    }
}

/// Bytes a [`TextCell`] holds; longer text is cut at a character boundary.
pub const TEXT_CELL_BYTES: usize = 320;

/// A short text that one thread (the hot one) publishes and any thread reads
/// without a lock: a sequence lock over atomic words. The writer makes the
/// sequence odd, stores the words, makes it even; a reader that saw it odd,
/// or changed across its read, reads again. Writes are rare (a connection
/// failing), so a reader practically never retries; the writer never waits.
#[derive(Debug)]
pub struct TextCell {
    seq: AtomicU64,
    len: AtomicUsize,
    words: [AtomicU64; TEXT_CELL_BYTES / 8],
}

impl Default for TextCell {
    fn default() -> Self {
        TextCell::new()
    }
}

impl TextCell {
    pub fn new() -> Self {
        TextCell { seq: AtomicU64::new(0), len: AtomicUsize::new(0), words: std::array::from_fn(|_| AtomicU64::new(0)) }
    }

    /// Publishes `text` (cut to [`TEXT_CELL_BYTES`]). One writer at a time:
    /// concurrent writers could publish a mix of both texts.
    pub fn set(&self, text: &str) {
        let mut end = text.len().min(TEXT_CELL_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let bytes = text.as_bytes().get(..end).unwrap_or_default();
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        for (i, word) in self.words.iter().enumerate() {
            let mut chunk = [0u8; 8];
            let part = bytes.get(i * 8..).unwrap_or_default();
            let n = part.len().min(8);
            chunk[..n].copy_from_slice(&part[..n]);
            word.store(u64::from_le_bytes(chunk), Ordering::Relaxed);
        }
        self.len.store(end, Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// The text last published (empty before the first).
    pub fn get(&self) -> String {
        let mut bytes = [0u8; TEXT_CELL_BYTES];
        loop {
            let before = self.seq.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::thread::yield_now();
                continue;
            }
            for (i, word) in self.words.iter().enumerate() {
                bytes[i * 8..i * 8 + 8].copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
            }
            let len = self.len.load(Ordering::Relaxed).min(TEXT_CELL_BYTES);
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                return String::from_utf8_lossy(&bytes[..len]).into_owned();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_cell_reader_sees_whole_texts_while_the_writer_rewrites_them() {
        let cell = Arc::new(TextCell::new());
        assert_eq!(cell.get(), "");
        let texts = ["short", &"é".repeat(200), "feed down: WebSocket upgrade refused with HTTP 429"];
        let writer = {
            let cell = Arc::clone(&cell);
            let texts = texts.map(String::from);
            std::thread::spawn(move || {
                for i in 0..20_000 {
                    cell.set(&texts[i % 3]);
                }
            })
        };
        // The long text is cut at a character boundary: 160 'é' of 2 bytes.
        let cut = "é".repeat(160);
        let allowed = ["", "short", cut.as_str(), texts[2]];
        while !writer.is_finished() {
            let seen = cell.get();
            assert!(allowed.contains(&seen.as_str()), "torn read: {seen:?}");
        }
        writer.join().unwrap();
        assert_eq!(cell.get(), cut);
    }

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
