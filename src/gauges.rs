//! Gauges the hot thread keeps current for other threads to read: per-pair
//! last-frame times and feed status, and the open-connection count. Relaxed
//! atomic stores on the hot side (no syscall, no lock); the health endpoint,
//! Prometheus and the cold side read them. A leaf: any stage may hold one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};

use crate::alert::MetricUpdate;
use crate::units::Price;

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
    /// Why each pair's local book is not synced (empty while it is, or in
    /// partial mode): such a pair is stale for `/healthz`.
    pub unsynced: Vec<TextCell>,
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
            unsynced: (0..pairs).map(|_| TextCell::new()).collect(),
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

    /// Records why a pair's local book is not synced (`""`: it is).
    pub fn set_unsynced(&self, pair: usize, why: &str) {
        if let Some(cell) = self.unsynced.get(pair) {
            cell.set(why);
        }
    }

    /// Why a pair's local book is not synced, if it is not.
    pub fn unsynced(&self, pair: usize) -> Option<String> {
        self.unsynced.get(pair).map(TextCell::get).filter(|why| !why.is_empty())
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
}
