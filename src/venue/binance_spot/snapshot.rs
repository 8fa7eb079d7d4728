//! The parse stage for Binance Spot's REST depth snapshot, `GET /api/v3/depth`:
//! `{"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000"]],"asks":[…]}`.
//! Collector recordings carry the same JSON as a bare line, so a replay and a
//! live fetch read snapshots with this one function.
//!
//! Keys come in any order, unknown keys and insignificant whitespace are
//! skipped, each of the three fields must appear exactly once. Levels go
//! into a caller-owned [`SnapshotBook`] whose vectors never grow: a snapshot
//! deeper than their capacity is refused, so parsing a 5,000-level snapshot
//! allocates nothing once the book exists. Decimals are read exactly, at
//! scale 1e8, by the same scanner as the stream decoder; nothing panics on
//! any bytes.

use crate::book::{Asks, Bids, Level, SideKind};
use crate::reject::RejectKind;
use crate::scan::json::{Scan, once};

/// A parsed REST snapshot, reused from one fetch to the next: its vectors
/// are sized once ([`SnapshotBook::with_capacity`]) and only refilled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotBook {
    /// Binance's `lastUpdateId`: the snapshot reflects every diff event with
    /// `u` up to and including it.
    pub last_update_id: u64,
    /// Best (highest) first, strictly descending.
    pub bids: Vec<Level>,
    /// Best (lowest) first, strictly ascending.
    pub asks: Vec<Level>,
}

impl SnapshotBook {
    /// A book holding up to `levels` levels per side (the request's `limit`);
    /// the only allocation a snapshot ever costs.
    pub fn with_capacity(levels: usize) -> Self {
        SnapshotBook { last_update_id: 0, bids: Vec::with_capacity(levels), asks: Vec::with_capacity(levels) }
    }

    /// Levels per side this book holds without growing.
    pub fn capacity(&self) -> usize {
        self.bids.capacity().min(self.asks.capacity())
    }
}

/// Parses one snapshot body into `into`. On `Err`, `into`'s content is
/// unspecified (scratch space) but its capacity is unchanged. A side with
/// more levels than [`SnapshotBook::capacity`] is
/// [`RejectKind::SnapshotTooDeep`]; a price not strictly worse than the one
/// before is [`RejectKind::BidsNotDescending`] / [`RejectKind::AsksNotAscending`].
pub fn parse_snapshot(bytes: &[u8], into: &mut SnapshotBook) -> Result<(), RejectKind> {
    let cap = into.capacity();
    into.bids.clear();
    into.asks.clear();
    let mut s = Scan { b: bytes, i: 0 };
    let c = s.next_token()?;
    if c != b'{' {
        return Err(s.type_error(c));
    }
    s.i += 1;
    let (mut seen_id, mut seen_bids, mut seen_asks) = (false, false, false);
    if s.next_token()? == b'}' {
        s.i += 1;
    } else {
        loop {
            let key = s.key()?;
            if key.eq(b"lastUpdateId") {
                once(&mut seen_id)?;
                into.last_update_id = s.uint()?;
            } else if key.eq(b"bids") {
                once(&mut seen_bids)?;
                s.snapshot_side::<Bids>(&mut into.bids, cap, RejectKind::BidsNotDescending)?;
            } else if key.eq(b"asks") {
                once(&mut seen_asks)?;
                s.snapshot_side::<Asks>(&mut into.asks, cap, RejectKind::AsksNotAscending)?;
            } else {
                s.skip_value()?;
            }
            if !s.more(b'}')? {
                break;
            }
        }
    }
    s.ws();
    if s.i < bytes.len() {
        return Err(RejectKind::TrailingBytes);
    }
    if seen_id && seen_bids && seen_asks { Ok(()) } else { Err(RejectKind::MissingField) }
}

impl Scan<'_> {
    /// `[["price","qty"],…]` into `side` (cleared by the caller), best first,
    /// at most `cap` levels.
    fn snapshot_side<S: SideKind>(
        &mut self,
        side: &mut Vec<Level>,
        cap: usize,
        misordered: RejectKind,
    ) -> Result<(), RejectKind> {
        self.level_array(|level| {
            if side.last().is_some_and(|prev| !S::follows(prev.price, level.price)) {
                return Err(misordered);
            }
            if side.len() >= cap {
                return Err(RejectKind::SnapshotTooDeep);
            }
            side.push(level);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};

    use super::*;
    use crate::units::{Price, Qty};

    /// The bare REST snapshot line of the real BTCUSDT recording (line 8,
    /// after its receive-time prefix).
    fn real_snapshot() -> Vec<u8> {
        static LINE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        LINE.get_or_init(read_real_snapshot).clone()
    }

    fn read_real_snapshot() -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/btcusdt_20240808.gz");
        let gz = flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap());
        let line = BufReader::new(gz).split(b'\n').nth(7).unwrap().unwrap();
        let json = line.iter().position(|&c| c == b' ').unwrap() + 1;
        line[json..].to_vec()
    }

    fn parse(s: &str, cap: usize) -> Result<SnapshotBook, RejectKind> {
        let mut book = SnapshotBook::with_capacity(cap);
        parse_snapshot(s.as_bytes(), &mut book).map(|()| book)
    }

    fn lvl(price: u64, qty: u64) -> Level {
        Level { price: Price(price), qty: Qty(qty) }
    }

    #[test]
    fn the_real_snapshot_parses_exactly_without_growing_the_book() {
        let bytes = real_snapshot();
        let mut book = SnapshotBook::with_capacity(1000);
        let (bids_at, asks_at) = (book.bids.as_ptr(), book.asks.as_ptr());
        parse_snapshot(&bytes, &mut book).unwrap();
        assert_eq!(book.last_update_id, 50_093_239_218);
        assert_eq!(book.bids.len(), 1000);
        assert_eq!(book.asks.len(), 1000);
        assert_eq!(book.bids[..2], [lvl(6_183_763_000_000, 378_826_000), lvl(6_183_762_000_000, 61_700_000)]);
        assert!(book.bids.windows(2).all(|w| w[0].price > w[1].price));
        assert!(book.asks.windows(2).all(|w| w[0].price < w[1].price));
        assert!(book.bids[0].price < book.asks[0].price);
        // Same buffers: nothing was reallocated.
        assert_eq!((book.bids.as_ptr(), book.asks.as_ptr()), (bids_at, asks_at));
        // Reused for a second parse, the answer is the same.
        let first = book.clone();
        parse_snapshot(&bytes, &mut book).unwrap();
        assert_eq!(book, first);
    }

    #[test]
    fn the_documented_example_parses_in_any_key_order_with_whitespace_and_unknown_keys() {
        let want = SnapshotBook {
            last_update_id: 1_027_024,
            bids: vec![lvl(400_000_000, 43_100_000_000)],
            asks: vec![lvl(400_000_200, 1_200_000_000)],
        };
        let docs = "{\n  \"lastUpdateId\": 1027024,\n  \"bids\": [\n    [\n      \"4.00000000\",\n      \"431.00000000\"\n    ]\n  ],\n  \"asks\": [[\"4.00000200\", \"12.00000000\"]]\n}\n";
        assert_eq!(parse(docs, 5).unwrap(), want);
        let reordered =
            r#"{"asks":[["4.000002","12"]],"x":{"y":[1,null]},"bids":[["4","431"]],"lastUpdateId":1027024,"z":"s"}"#;
        assert_eq!(parse(reordered, 5).unwrap(), want);
        let empty = parse(r#"{"lastUpdateId":0,"bids":[],"asks":[]}"#, 5).unwrap();
        assert_eq!(empty, SnapshotBook { last_update_id: 0, bids: vec![], asks: vec![] });
    }

    #[test]
    fn a_side_deeper_than_the_capacity_is_refused_not_grown() {
        let asks = (1..=6).map(|p| format!(r#"["{p}","1"]"#)).collect::<Vec<_>>().join(",");
        let body = format!(r#"{{"lastUpdateId":1,"bids":[],"asks":[{asks}]}}"#);
        assert_eq!(parse(&body, 6).unwrap().asks.len(), 6);
        let mut book = SnapshotBook::with_capacity(5);
        let cap = (book.bids.capacity(), book.asks.capacity());
        assert_eq!(parse_snapshot(body.as_bytes(), &mut book), Err(RejectKind::SnapshotTooDeep));
        assert_eq!((book.bids.capacity(), book.asks.capacity()), cap);
        assert_eq!(parse(r#"{"lastUpdateId":1,"bids":[["1","1"]],"asks":[]}"#, 0), Err(RejectKind::SnapshotTooDeep));
    }

    #[test]
    fn misordered_and_duplicated_levels_and_fields_are_typed_rejects() {
        let body = |bids: &str, asks: &str| format!(r#"{{"lastUpdateId":9,"bids":{bids},"asks":{asks}}}"#);
        let err = |s: &str| parse(s, 10).unwrap_err();
        assert_eq!(err(&body(r#"[["1","1"],["2","1"]]"#, "[]")), RejectKind::BidsNotDescending);
        assert_eq!(err(&body(r#"[["2","1"],["2.0","5"]]"#, "[]")), RejectKind::BidsNotDescending);
        assert_eq!(err(&body("[]", r#"[["2","1"],["1","1"]]"#)), RejectKind::AsksNotAscending);
        assert_eq!(err(&body("[]", r#"[["2","1"],["2","1"]]"#)), RejectKind::AsksNotAscending);
        assert_eq!(err(r#"{"lastUpdateId":1,"lastUpdateId":1,"bids":[],"asks":[]}"#), RejectKind::DuplicateField);
        assert_eq!(err(r#"{"lastUpdateId":1,"bids":[],"asks":[],"bids":[]}"#), RejectKind::DuplicateField);
        assert_eq!(err(r#"{"lastUpdateId":1,"bids":[]}"#), RejectKind::MissingField);
        assert_eq!(err(r#"{"bids":[],"asks":[]}"#), RejectKind::MissingField);
        assert_eq!(err("{}"), RejectKind::MissingField);
    }

    #[test]
    fn absurd_numbers_and_wrong_shapes_are_typed_rejects() {
        let err = |s: &str| parse(s, 10).unwrap_err();
        let with_bid = |p: &str| err(&format!(r#"{{"lastUpdateId":1,"bids":[["{p}","1"]],"asks":[]}}"#));
        assert_eq!(with_bid("184467440737.09551616"), RejectKind::Overflow);
        assert_eq!(with_bid("99999999999999999999999"), RejectKind::Overflow);
        assert_eq!(with_bid("1.000000001"), RejectKind::TooManyDecimals);
        assert_eq!(with_bid("-1"), RejectKind::Sign);
        assert_eq!(with_bid("1e5"), RejectKind::Exponent);
        assert_eq!(with_bid(""), RejectKind::BadDecimal);
        assert_eq!(err(r#"{"lastUpdateId":18446744073709551616,"bids":[],"asks":[]}"#), RejectKind::Overflow);
        assert_eq!(err(r#"{"lastUpdateId":-1,"bids":[],"asks":[]}"#), RejectKind::Sign);
        assert_eq!(err(r#"{"lastUpdateId":"1","bids":[],"asks":[]}"#), RejectKind::WrongType);
        assert_eq!(err(r#"{"lastUpdateId":1,"bids":[[1,1]],"asks":[]}"#), RejectKind::WrongType);
        assert_eq!(err(r#"{"lastUpdateId":1,"bids":[["1","1","1"]],"asks":[]}"#), RejectKind::WrongType);
        assert_eq!(err(r#"{"lastUpdateId":1,"bids":{},"asks":[]}"#), RejectKind::WrongType);
        assert_eq!(err(r#"{"lastUpdateId":1,"bids":[],"asks":[]} x"#), RejectKind::TrailingBytes);
        assert_eq!(err("[]"), RejectKind::WrongType);
        assert_eq!(err(""), RejectKind::Truncated);
        assert_eq!(parse(r#" {"lastUpdateId":1,"bids":[],"asks":[]} "#, 1).unwrap().last_update_id, 1);
    }

    #[test]
    fn every_truncation_of_the_real_snapshot_is_rejected() {
        let bytes = real_snapshot();
        let mut book = SnapshotBook::with_capacity(1000);
        // Every cut inside the first levels and the last ones, and a spread between.
        let n = bytes.len();
        let cuts = (0..400).chain((400..n - 400).step_by(97)).chain(n - 400..n);
        for cut in cuts {
            let r = parse_snapshot(&bytes[..cut], &mut book);
            assert!(r.is_err(), "a snapshot cut at byte {cut} of {n} was accepted");
        }
    }

    proptest::proptest! {
        #[test]
        fn no_bytes_make_it_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let mut book = SnapshotBook::with_capacity(4);
            let _ = parse_snapshot(&bytes, &mut book);
            proptest::prop_assert!(book.bids.len() <= 4 && book.asks.len() <= 4);
        }

        #[test]
        fn mutated_real_snapshots_never_panic_nor_grow_the_book(
            at in 0usize..64_067, len in 0usize..64, byte in proptest::num::u8::ANY,
        ) {
            let mut bytes = real_snapshot();
            let at = at.min(bytes.len());
            let end = (at + len).min(bytes.len());
            for b in &mut bytes[at..end] {
                *b = byte;
            }
            let mut book = SnapshotBook::with_capacity(1000);
            let _ = parse_snapshot(&bytes, &mut book);
            proptest::prop_assert_eq!(book.capacity(), 1000);
        }
    }
}
