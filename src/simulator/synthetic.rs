//! The synthetic market: a seeded random-walk order book per symbol, rendered
//! as Binance partial-depth frames for any `<sym>@depth{5,10,20}[@100ms]`
//! stream a client asks for.
//!
//! Each symbol has one 20-level book, so its depth5 and depth10 streams agree.
//! Every step moves the mid by a few ticks (0.01), redraws the ladder with
//! strictly ordered, uncrossed sides and 8-decimal quantities as Binance
//! formats them (`"61837.63000000"`), raises `lastUpdateId`, and drifts a
//! buy/sell pressure that tilts quantities, so the imbalance ratio wanders
//! through the ranges triggers watch.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use super::frame::Frame;
use super::market::{Peek, Source};
use super::streams::{DepthStream, StreamId, StreamNames};
use crate::prng::SplitMix64;
use crate::recording::RecordingError;

/// Levels kept per side: the deepest partial-depth stream.
const LEVELS: usize = 20;
/// Price mantissa (scale 1e8) of one tick of 0.01.
const TICK: u64 = 1_000_000;
/// Quantity mantissa (scale 1e8) of one lot of 0.00001.
const LOT: u64 = 1_000;
/// Lowest mid, in ticks: keeps the deepest bid above zero.
const MIN_MID_TICKS: u64 = 500;

/// The walk's random source: the process's one PRNG, seeded per symbol so
/// every run of a synthetic market is the same.
#[derive(Clone, Debug)]
struct Rng(SplitMix64);

impl Rng {
    /// Uniform in `0..n` (n > 0; modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + i64::try_from(self.below(hi.abs_diff(lo) + 1)).unwrap_or(0)
    }
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// One level: price and quantity mantissas at scale 1e8.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Level {
    price: u64,
    qty: u64,
}

/// One symbol's book and the walk that moves it.
#[derive(Clone, Debug)]
pub struct Walk {
    rng: Rng,
    mid_ticks: u64,
    /// Percent by which bid quantities are raised and ask quantities lowered.
    pressure: i64,
    last_update_id: u64,
    bids: [Level; LEVELS],
    asks: [Level; LEVELS],
}

impl Walk {
    /// A book for `symbol` (lower case), at a price plausible for it.
    pub fn new(symbol: &str, seed: u64) -> Self {
        let mut rng = Rng(SplitMix64::new(seed ^ fnv1a(symbol)));
        let mid_ticks = match symbol {
            "btcusdt" => 6_183_763,
            "ethusdt" => 261_500,
            "bnbusdt" => 52_000,
            "solusdt" => 14_500,
            _ => 1_000 + fnv1a(symbol) % 99_000,
        };
        let last_update_id = 1_000_000 + rng.below(1_000_000_000);
        let mut walk = Walk {
            rng,
            mid_ticks,
            pressure: 0,
            last_update_id,
            bids: [Level::default(); LEVELS],
            asks: [Level::default(); LEVELS],
        };
        walk.step();
        walk
    }

    /// Moves the market one update.
    pub fn step(&mut self) {
        let drift = self.rng.between(-3, 3);
        self.mid_ticks = self.mid_ticks.saturating_add_signed(drift).max(MIN_MID_TICKS);
        self.pressure = (self.pressure + self.rng.between(-6, 6)).clamp(-60, 60);
        self.last_update_id += 1 + self.rng.below(40);

        let best_bid = self.mid_ticks - self.rng.below(2);
        let best_ask = best_bid + 1 + self.rng.below(3);
        let (mut bid, mut ask) = (best_bid, best_ask);
        for i in 0..LEVELS {
            let bid_qty = self.quantity(100 + self.pressure);
            let ask_qty = self.quantity(100 - self.pressure);
            self.bids[i] = Level { price: bid * TICK, qty: bid_qty };
            self.asks[i] = Level { price: ask * TICK, qty: ask_qty };
            bid -= 1 + self.rng.below(3);
            ask += 1 + self.rng.below(3);
        }
    }

    /// A quantity of 0.00001 to ~10 lots-worth, scaled by `percent`.
    fn quantity(&mut self, percent: i64) -> u64 {
        let lots = 1 + self.rng.below(50_000) * if self.rng.below(10) == 0 { 20 } else { 1 };
        let scaled = lots * LOT * percent.unsigned_abs() / 100;
        scaled.max(LOT)
    }

    /// Appends `{"stream":"<name>","data":{…top `depth` levels…}}` to `out`
    /// and returns the range of the data object in it.
    pub fn render(&self, stream: &str, depth: usize, out: &mut String) -> Range<usize> {
        let depth = depth.min(LEVELS);
        out.push_str("{\"stream\":\"");
        out.push_str(stream);
        out.push_str("\",\"data\":");
        let start = out.len();
        let _ = write!(out, "{{\"lastUpdateId\":{},\"bids\":", self.last_update_id);
        write_side(out, &self.bids[..depth]);
        out.push_str(",\"asks\":");
        write_side(out, &self.asks[..depth]);
        out.push('}');
        let end = out.len();
        out.push('}');
        start..end
    }
}

fn write_side(out: &mut String, levels: &[Level]) {
    out.push('[');
    for (i, level) in levels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("[\"");
        write_decimal(out, level.price);
        out.push_str("\",\"");
        write_decimal(out, level.qty);
        out.push_str("\"]");
    }
    out.push(']');
}

/// A mantissa at scale 1e8 with all 8 decimals, as Binance writes them.
fn write_decimal(out: &mut String, mantissa: u64) {
    let _ = write!(out, "{}.{:08}", mantissa / 100_000_000, mantissa % 100_000_000);
}

/// A requested stream the walk serves, and when it is next due.
struct Scheduled {
    id: StreamId,
    name: Arc<str>,
    stream: DepthStream,
    next_at: Duration,
}

/// The synthetic market as a frame source for the market clock.
pub struct Synthetic {
    seed: u64,
    names: StreamNames,
    books: HashMap<String, Walk>,
    streams: Vec<Scheduled>,
    /// Source time of the last frame taken.
    clock: Duration,
    /// Index into `streams` of the stream `peek` announced.
    peeked: Option<usize>,
}

impl Synthetic {
    pub fn new(seed: u64, names: StreamNames) -> Self {
        Synthetic { seed, names, books: HashMap::new(), streams: Vec::new(), clock: Duration::ZERO, peeked: None }
    }
}

impl Source for Synthetic {
    fn prepare(&mut self) -> Result<(), RecordingError> {
        Ok(())
    }

    fn want(&mut self, id: StreamId, wanted: bool, now: Duration) {
        self.peeked = None;
        if !wanted {
            self.streams.retain(|s| s.id != id);
            return;
        }
        if self.streams.iter().any(|s| s.id == id) {
            return;
        }
        let name = self.names.name(id);
        if let Some(stream) = DepthStream::parse(&name) {
            // A new stream starts now, or at the source's own clock when that
            // runs ahead (an unpaced rate), so it joins the rotation fairly.
            let next_at = now.max(self.clock);
            self.streams.push(Scheduled { id, name, stream, next_at });
        }
    }

    fn peek(&mut self, _now: Duration) -> Result<Peek, RecordingError> {
        let next = self.streams.iter().enumerate().min_by_key(|(_, s)| s.next_at);
        Ok(match next {
            Some((i, s)) => {
                self.peeked = Some(i);
                Peek::At(s.next_at)
            }
            None => Peek::Idle,
        })
    }

    fn take(&mut self) -> Option<Arc<Frame>> {
        let s = self.streams.get_mut(self.peeked.take()?)?;
        let seed = self.seed;
        let book = self.books.entry(s.stream.symbol.clone()).or_insert_with(|| Walk::new(&s.stream.symbol, seed));
        book.step();
        let mut json = String::with_capacity(64 + s.stream.depth.levels() * 80);
        let data = book.render(&s.name, s.stream.depth.levels(), &mut json);
        self.clock = s.next_at;
        s.next_at += Duration::from_millis(u64::from(s.stream.speed.millis()));
        Frame::from_combined(s.id, json, data).map(Arc::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_is_deterministic_for_a_seed() {
        let (mut a, mut b) = (Walk::new("btcusdt", 7), Walk::new("btcusdt", 7));
        let (mut sa, mut sb) = (String::new(), String::new());
        for _ in 0..50 {
            a.step();
            b.step();
        }
        a.render("btcusdt@depth5", 5, &mut sa);
        b.render("btcusdt@depth5", 5, &mut sb);
        assert_eq!(sa, sb);
        let mut other = String::new();
        Walk::new("btcusdt", 8).render("btcusdt@depth5", 5, &mut other);
        assert_ne!(sa, other);
    }

    #[test]
    fn decimals_have_eight_places() {
        let mut s = String::new();
        write_decimal(&mut s, 6_183_763 * TICK);
        assert_eq!(s, "61837.63000000");
        s.clear();
        write_decimal(&mut s, 378_826 * LOT);
        assert_eq!(s, "3.78826000");
    }

    #[test]
    fn sides_stay_ordered_and_uncrossed() {
        let mut walk = Walk::new("dogeusdt", 3);
        for _ in 0..2_000 {
            walk.step();
            assert!(walk.bids.windows(2).all(|w| w[0].price > w[1].price));
            assert!(walk.asks.windows(2).all(|w| w[0].price < w[1].price));
            assert!(walk.bids[0].price < walk.asks[0].price);
            assert!(walk.bids[LEVELS - 1].price > 0);
            assert!(walk.bids.iter().chain(&walk.asks).all(|l| l.qty > 0));
        }
    }
}
