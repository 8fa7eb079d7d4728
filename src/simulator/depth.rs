//! The recorded market's order books: the simulator's own view of each
//! symbol's depth, kept from the recording's REST snapshot lines and diff
//! events, so that `GET /api/v3/depth` answers with the book the streamed
//! events describe, and the 1000 ms `<sym>@depth` stream (which the
//! recordings do not hold) can be derived from the 100 ms one.
//!
//! This is deliberately *not* the client's book code: the simulator is the
//! other side of the protocol the client is tested against, so it keeps a
//! plain `BTreeMap` of price units to quantity units and parses decimals
//! itself. A bug shared by both sides would otherwise go unseen.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;

use serde::Deserialize;

/// Price and quantity strings carry at most this many decimals (Binance
/// spot's 8); a value is kept as an integer count of `10^-SCALE` units.
const SCALE: u32 = 8;
const UNITS: u64 = 10u64.pow(SCALE);

/// Diff events per `<sym>@depth` (1000 ms) event: ten 100 ms events.
pub const EVENTS_PER_SECOND_EVENT: usize = 10;

/// Recent diff events kept per symbol, so a snapshot line recorded after
/// events that straddle its update id (the collector fetched it while the
/// stream ran) is brought forward with them; 64 events are 6.4 s at 100 ms.
const RECENT_EVENTS: usize = 64;

/// `"61737.63000000"` as units of 1e-8; `None` for anything that is not a
/// non-negative decimal with at most 8 significant decimals, or overflows.
pub fn units(text: &str) -> Option<u64> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (kept, rest) = frac.split_at(frac.len().min(SCALE as usize));
    if rest.bytes().any(|b| b != b'0') {
        return None;
    }
    let mut whole: u64 = 0;
    for d in int.bytes() {
        whole = whole.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    let mut part: u64 = 0;
    for d in kept.bytes() {
        part = part * 10 + u64::from(d - b'0');
    }
    let pad = SCALE - u32::try_from(kept.len()).ok()?;
    whole.checked_mul(UNITS)?.checked_add(part * 10u64.pow(pad))
}

/// Units back to Binance's string: always 8 decimals (`"0.00100000"`).
fn write_units(out: &mut String, value: u64) {
    let _ = write!(out, "{}.{:08}", value / UNITS, value % UNITS);
}

/// One side's changes or levels: `(price units, quantity units)`.
pub type Levels = Vec<(u64, u64)>;

/// A `depthUpdate` payload, as the simulator needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffEvent {
    /// `"s"`, as sent (`BTCUSDT`).
    pub symbol: Box<str>,
    /// `"E"`, event time in ms.
    pub event_ms: u64,
    /// `"U"`: first update id in the event.
    pub first_id: u64,
    /// `"u"`: final update id in the event.
    pub last_id: u64,
    pub bids: Levels,
    pub asks: Levels,
}

/// A REST depth snapshot (`{"lastUpdateId":…,"bids":…,"asks":…}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub last_update_id: u64,
    pub bids: Levels,
    pub asks: Levels,
}

#[derive(Deserialize)]
struct WireDiff<'a> {
    e: &'a str,
    #[serde(rename = "E")]
    event_ms: u64,
    s: &'a str,
    #[serde(rename = "U")]
    first_id: u64,
    u: u64,
    #[serde(borrow)]
    b: Vec<(&'a str, &'a str)>,
    #[serde(borrow)]
    a: Vec<(&'a str, &'a str)>,
}

#[derive(Deserialize)]
struct WireSnapshot<'a> {
    #[serde(rename = "lastUpdateId")]
    last_update_id: u64,
    #[serde(borrow)]
    bids: Vec<(&'a str, &'a str)>,
    #[serde(borrow)]
    asks: Vec<(&'a str, &'a str)>,
}

fn levels(wire: &[(&str, &str)]) -> Option<Levels> {
    wire.iter().map(|&(p, q)| Some((units(p)?, units(q)?))).collect()
}

impl DiffEvent {
    /// Parses a `depthUpdate` payload; `None` for anything else, or for a
    /// price or quantity that is not a plain decimal of at most 8 places.
    pub fn parse(payload: &str) -> Option<Self> {
        let w: WireDiff<'_> = sonic_rs::from_str(payload).ok()?;
        (w.e == "depthUpdate").then_some(())?;
        Some(DiffEvent {
            symbol: w.s.into(),
            event_ms: w.event_ms,
            first_id: w.first_id,
            last_id: w.u,
            bids: levels(&w.b)?,
            asks: levels(&w.a)?,
        })
    }
}

impl Snapshot {
    /// Parses a bare REST snapshot line; `None` for anything else.
    pub fn parse(json: &str) -> Option<Self> {
        let w: WireSnapshot<'_> = sonic_rs::from_str(json).ok()?;
        Some(Snapshot { last_update_id: w.last_update_id, bids: levels(&w.bids)?, asks: levels(&w.asks)? })
    }
}

/// One symbol's book: price units to quantity units, and the update id it
/// is at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimBook {
    pub last_update_id: u64,
    pub bids: BTreeMap<u64, u64>,
    pub asks: BTreeMap<u64, u64>,
}

fn apply_side(side: &mut BTreeMap<u64, u64>, changes: &[(u64, u64)]) {
    for &(price, qty) in changes {
        if qty == 0 {
            side.remove(&price);
        } else {
            side.insert(price, qty);
        }
    }
}

fn write_side<'a>(out: &mut String, levels: impl Iterator<Item = (&'a u64, &'a u64)>) {
    out.push('[');
    for (i, (&price, &qty)) in levels.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("[\"");
        write_units(out, price);
        out.push_str("\",\"");
        write_units(out, qty);
        out.push_str("\"]");
    }
    out.push(']');
}

impl SimBook {
    pub fn from_snapshot(s: &Snapshot) -> Self {
        let mut book = SimBook { last_update_id: s.last_update_id, ..SimBook::default() };
        apply_side(&mut book.bids, &s.bids);
        apply_side(&mut book.asks, &s.asks);
        book
    }

    /// Applies an event newer than the book (quantity 0 removes a level);
    /// an event the book already contains is ignored.
    pub fn apply(&mut self, e: &DiffEvent) {
        if e.last_id <= self.last_update_id {
            return;
        }
        apply_side(&mut self.bids, &e.bids);
        apply_side(&mut self.asks, &e.asks);
        self.last_update_id = e.last_id;
    }

    /// Binance's `GET /api/v3/depth` body: the best `limit` levels of each
    /// side, best first, 8 decimals.
    pub fn render(&self, limit: usize) -> String {
        let mut out = String::with_capacity(64 + 60 * limit.min(self.bids.len() + self.asks.len()));
        let _ = write!(out, "{{\"lastUpdateId\":{},\"bids\":", self.last_update_id);
        write_side(&mut out, self.bids.iter().rev().take(limit));
        out.push_str(",\"asks\":");
        write_side(&mut out, self.asks.iter().take(limit));
        out.push('}');
        out
    }
}

/// Ten consecutive 100 ms events merged into one 1000 ms event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergedDiff {
    pub symbol: Box<str>,
    /// `E` of the last event.
    pub event_ms: u64,
    /// `U` of the first event.
    pub first_id: u64,
    /// `u` of the last event.
    pub last_id: u64,
    /// Changes, last one wins per price.
    pub bids: BTreeMap<u64, u64>,
    pub asks: BTreeMap<u64, u64>,
    events: usize,
}

impl MergedDiff {
    /// Adds the next event; the merged event once it holds ten.
    fn push(&mut self, e: &DiffEvent) -> Option<MergedDiff> {
        if self.events == 0 {
            self.symbol = e.symbol.clone();
            self.first_id = e.first_id;
        }
        self.events += 1;
        self.event_ms = e.event_ms;
        self.last_id = e.last_id;
        self.bids.extend(e.bids.iter().copied());
        self.asks.extend(e.asks.iter().copied());
        (self.events == EVENTS_PER_SECOND_EVENT).then(|| std::mem::take(self))
    }

    /// The `depthUpdate` payload, levels ordered best first.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(96 + 60 * (self.bids.len() + self.asks.len()));
        let _ = write!(
            out,
            "{{\"e\":\"depthUpdate\",\"E\":{},\"s\":\"{}\",\"U\":{},\"u\":{},\"b\":",
            self.event_ms, self.symbol, self.first_id, self.last_id
        );
        write_side(&mut out, self.bids.iter().rev());
        out.push_str(",\"a\":");
        write_side(&mut out, self.asks.iter());
        out.push('}');
        out
    }
}

/// One symbol's depth as far as the market clock has passed.
#[derive(Default)]
struct SymbolDepth {
    /// `None` until the recording's first snapshot line for the symbol.
    book: Option<SimBook>,
    recent: VecDeque<Arc<DiffEvent>>,
    merging: MergedDiff,
}

/// The books of every symbol the clock has met.
#[derive(Default)]
pub struct DepthBooks {
    symbols: HashMap<Box<str>, SymbolDepth>,
}

impl DepthBooks {
    /// The clock passed a diff event; the merged 1000 ms event when it
    /// completes one.
    pub fn on_diff(&mut self, e: &Arc<DiffEvent>) -> Option<MergedDiff> {
        let depth = self.symbols.entry(e.symbol.clone()).or_default();
        if let Some(book) = &mut depth.book {
            if e.first_id > book.last_update_id.saturating_add(1) && e.last_id > book.last_update_id {
                log::warn!(
                    "simulator: {} recording has a gap (book at {}, next event starts at {}); REST snapshots are \
                     wrong until the next snapshot line",
                    e.symbol,
                    book.last_update_id,
                    e.first_id
                );
            }
            book.apply(e);
        }
        if depth.recent.len() == RECENT_EVENTS {
            depth.recent.pop_front();
        }
        depth.recent.push_back(Arc::clone(e));
        depth.merging.push(e)
    }

    /// The clock passed a snapshot line of `symbol`. It seeds the book, and
    /// the events already passed that it does not contain are applied on it;
    /// a snapshot older than a book already kept is ignored (the book is
    /// already past it).
    pub fn on_snapshot(&mut self, symbol: &str, s: &Snapshot) {
        let depth = self.symbols.entry(symbol.into()).or_default();
        if depth.book.as_ref().is_some_and(|b| b.last_update_id >= s.last_update_id) {
            return;
        }
        let mut book = SimBook::from_snapshot(s);
        for e in &depth.recent {
            book.apply(e);
        }
        depth.book = Some(book);
    }

    /// Whether the clock has met `symbol`.
    pub fn knows(&self, symbol: &str) -> bool {
        self.symbols.contains_key(symbol)
    }

    /// `symbol`'s book at the clock, once a snapshot line has seeded it.
    pub fn book(&self, symbol: &str) -> Option<&SimBook> {
        self.symbols.get(symbol)?.book.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(first: u64, last: u64, bids: Levels, asks: Levels) -> Arc<DiffEvent> {
        Arc::new(DiffEvent { symbol: "BTCUSDT".into(), event_ms: last, first_id: first, last_id: last, bids, asks })
    }

    #[test]
    fn decimals_become_exact_units_and_back() {
        assert_eq!(units("61737.63000000"), Some(6_173_763_000_000));
        assert_eq!(units("0.00000001"), Some(1));
        assert_eq!(units("5"), Some(500_000_000));
        assert_eq!(units("1.5000000000"), Some(150_000_000));
        for bad in ["", ".5", "1.000000001", "-1", "1e5", "1.2.3", "184467440737.09551616"] {
            assert_eq!(units(bad), None, "{bad:?}");
        }
        let mut s = String::new();
        write_units(&mut s, 150_000_001);
        assert_eq!(s, "1.50000001");
    }

    #[test]
    fn real_diff_payload_parses() {
        let payload = r#"{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":50093239203,"u":50093239207,"b":[["55653.87000000","0.00000000"]],"a":[["61838.04000000","0.12000000"]]}"#;
        let e = DiffEvent::parse(payload).unwrap();
        assert_eq!((e.first_id, e.last_id, e.event_ms), (50_093_239_203, 50_093_239_207, 1_723_161_255_308));
        assert_eq!(e.bids, vec![(5_565_387_000_000, 0)]);
        assert_eq!(e.asks, vec![(6_183_804_000_000, 12_000_000)]);
        assert_eq!(DiffEvent::parse(r#"{"e":"trade","E":1,"s":"X","U":1,"u":1,"b":[],"a":[]}"#), None);
    }

    #[test]
    fn book_applies_newer_events_ignores_stale_ones_and_renders_best_first() {
        let snap =
            Snapshot { last_update_id: 10, bids: vec![(100, 1), (99, 2), (98, 3)], asks: vec![(101, 1), (102, 2)] };
        let mut book = SimBook::from_snapshot(&snap);
        book.apply(&event(5, 10, vec![(100, 0)], vec![]));
        assert_eq!(book.bids.len(), 3, "an event the snapshot contains is ignored");
        book.apply(&event(11, 12, vec![(100, 0), (97, 4)], vec![(101, 5)]));
        assert_eq!(book.last_update_id, 12);
        assert_eq!(
            book.render(2),
            r#"{"lastUpdateId":12,"bids":[["0.00000099","0.00000002"],["0.00000098","0.00000003"]],"asks":[["0.00000101","0.00000005"],["0.00000102","0.00000002"]]}"#
        );
    }

    #[test]
    fn ten_events_merge_last_wins_with_first_u_and_last_u() {
        let mut books = DepthBooks::default();
        let mut merged = None;
        for i in 0..10u64 {
            let e = event(10 * i + 1, 10 * i + 10, vec![(100, i), (90 + i, 1)], vec![(200 - i, i + 1)]);
            let out = books.on_diff(&e);
            assert_eq!(out.is_some(), i == 9);
            merged = merged.or(out);
        }
        let m = merged.unwrap();
        assert_eq!((m.first_id, m.last_id, m.event_ms), (1, 100, 100));
        assert_eq!(m.bids.get(&100), Some(&9));
        assert_eq!(m.bids.len(), 11);
        let json = m.render();
        assert!(json.starts_with(r#"{"e":"depthUpdate","E":100,"s":"BTCUSDT","U":1,"u":100,"b":[["0.00000100","0.00000009"],["0.00000099""#), "{json}");
        assert!(json.contains(r#""a":[["0.00000191","0.00000010"],["0.00000192""#), "{json}");
        assert!(books.on_diff(&event(101, 102, vec![], vec![])).is_none(), "a new group starts");
    }

    #[test]
    fn a_snapshot_after_straddling_events_is_brought_forward_and_an_older_one_ignored() {
        let mut books = DepthBooks::default();
        books.on_diff(&event(1, 8, vec![(100, 1)], vec![]));
        books.on_diff(&event(9, 14, vec![(100, 7), (95, 1)], vec![]));
        assert!(books.knows("BTCUSDT") && books.book("BTCUSDT").is_none());
        books.on_snapshot("BTCUSDT", &Snapshot { last_update_id: 11, bids: vec![(100, 2)], asks: vec![] });
        let book = books.book("BTCUSDT").unwrap();
        assert_eq!((book.last_update_id, book.bids.get(&100), book.bids.get(&95)), (14, Some(&7), Some(&1)));
        books.on_snapshot("BTCUSDT", &Snapshot { last_update_id: 12, bids: vec![], asks: vec![] });
        assert_eq!(books.book("BTCUSDT").unwrap().bids.len(), 2);
    }
}
