//! The byte scanner against an independent oracle, on real Binance bytes.
//!
//! Oracle: sonic-rs typed deserialization into owned `String`s, and a decimal
//! converter written here from string operations (no crate code). Every
//! partial-depth frame of the six recordings, the two single-frame captures and
//! Binance's documented example must parse to the same pair, `lastUpdateId` and
//! levels. The golden metric tests recompute side volumes and the imbalance
//! ratio with exact long arithmetic and compare them with
//! `imbalance_monitor::metrics::imbalance`.

use std::path::{Path, PathBuf};

use imbalance_monitor::book::{Book, BookEvent, Level};
use imbalance_monitor::metrics::{VolumeSpec, imbalance};
use imbalance_monitor::pairs::PairId;
use imbalance_monitor::recording::{Line, RecordingReader};
use imbalance_monitor::units::VolumeMode;
use imbalance_monitor::venue::Message;
use imbalance_monitor::venue::binance_spot::{Depth, StreamKind, StreamTable, UpdateSpeed, parse_message};

// ---------------------------------------------------------------- fixtures

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Every frame of a recording, in file order.
fn recording(name: &str) -> Vec<Vec<u8>> {
    let mut reader = RecordingReader::open(&fixture(name)).expect("open recording");
    let mut frames = Vec::new();
    while let Some(line) = reader.next_line().expect("read recording") {
        match line {
            Line::Frame { json, .. } => frames.push(json.to_vec()),
            Line::Malformed => panic!("{name}: malformed line"),
        }
    }
    frames
}

fn single(name: &str) -> Vec<u8> {
    let bytes = std::fs::read(fixture(name)).expect("read fixture");
    bytes.trim_ascii().to_vec()
}

fn table(symbols: &[&str], depth: Depth, speed: UpdateSpeed) -> StreamTable {
    let symbols: Vec<String> = symbols.iter().map(|s| s.to_string()).collect();
    StreamTable::new(&symbols, StreamKind { depth, speed })
}

const RECORDINGS: [(&str, Depth); 6] = [
    ("btcusdt_depth5_100ms_20240808-09.txt.gz", Depth::D5),
    ("ethusdt_depth5_100ms_20240808-09.txt.gz", Depth::D5),
    ("btcusdt_depth10_100ms_20240808-09.txt.gz", Depth::D10),
    ("ethusdt_depth10_100ms_20240808-09.txt.gz", Depth::D10),
    ("btcusdt_depth20_100ms_20240808-09.txt.gz", Depth::D20),
    ("ethusdt_depth20_100ms_20240808-09.txt.gz", Depth::D20),
];

// ------------------------------------------------------------------ oracle

#[derive(serde::Deserialize)]
struct OracleEnvelope {
    stream: String,
    data: OracleDepth,
}

#[derive(serde::Deserialize)]
struct OracleDepth {
    #[serde(rename = "lastUpdateId")]
    last_update_id: u64,
    bids: Vec<[String; 2]>,
    asks: Vec<[String; 2]>,
}

/// `"61837.63"` → `6183763000000` (scale 1e8) by string operations: pad the
/// fraction to eight digits, glue the digits together, parse the integer.
fn mantissa_1e8(s: &str) -> Option<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits_only = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty()
        || !digits_only(int)
        || !digits_only(frac)
        || frac.len() > 8
        || (s.contains('.') && frac.is_empty())
    {
        return None;
    }
    format!("{int}{frac:0<8}").parse::<u64>().ok()
}

/// The levels the oracle reads, as `(price, qty)` mantissas.
fn oracle_levels(levels: &[[String; 2]]) -> Vec<(u64, u64)> {
    levels
        .iter()
        .map(|[p, q]| {
            (
                mantissa_1e8(p).unwrap_or_else(|| panic!("price {p:?}")),
                mantissa_1e8(q).unwrap_or_else(|| panic!("qty {q:?}")),
            )
        })
        .collect()
}

fn scanner_levels(levels: &[Level]) -> Vec<(u64, u64)> {
    levels.iter().map(|l| (l.price.0, l.qty.0)).collect()
}

/// Parses `frame` with both and asserts they agree; returns the oracle's view.
fn assert_agree(frame: &[u8], streams: &StreamTable) -> OracleEnvelope {
    let text = String::from_utf8_lossy(frame);
    let oracle: OracleEnvelope =
        sonic_rs::from_slice(frame).unwrap_or_else(|e| panic!("oracle rejects a real frame ({e}): {text}"));
    let mut book = Book::default();
    let msg = parse_message(frame, streams, &mut book).unwrap_or_else(|e| panic!("scanner rejects ({e:?}): {text}"));
    let Message::Book(pair, BookEvent::Snapshot) = msg else { panic!("not a depth message: {msg:?}: {text}") };
    assert_eq!(streams.stream_name(pair), oracle.stream, "pair: {text}");
    assert_eq!(book.last_update_id, oracle.data.last_update_id, "lastUpdateId: {text}");
    assert_eq!(scanner_levels(book.bids.levels()), oracle_levels(&oracle.data.bids), "bids: {text}");
    assert_eq!(scanner_levels(book.asks.levels()), oracle_levels(&oracle.data.asks), "asks: {text}");
    oracle
}

// ------------------------------------------------------- parse differential

#[test]
fn every_recorded_depth_frame_parses_as_typed_deserialization_reads_it() {
    for (name, depth) in RECORDINGS {
        let streams = table(&["BTCUSDT", "ETHUSDT"], depth, UpdateSpeed::Ms100);
        let frames = recording(name);
        assert!(frames.len() > 6000, "{name}: {} frames", frames.len());
        for frame in &frames {
            let oracle = assert_agree(frame, &streams);
            assert!(oracle.data.bids.len() <= depth.levels() && oracle.data.asks.len() <= depth.levels());
        }
    }
}

#[test]
fn btc_and_eth_frames_resolve_to_their_own_pair_through_one_table() {
    let streams = table(&["BTCUSDT", "ETHUSDT"], Depth::D10, UpdateSpeed::Ms100);
    let btc = recording("btcusdt_depth10_100ms_20240808-09.txt.gz");
    let eth = recording("ethusdt_depth10_100ms_20240808-09.txt.gz");
    let mut book = Book::default();
    let mut per_pair = [0usize; 2];
    // Interleaved, as one combined connection delivers them.
    for i in 0..btc.len().max(eth.len()) {
        for (frames, want) in [(&btc, PairId(0)), (&eth, PairId(1))] {
            let Some(frame) = frames.get(i) else { continue };
            assert_eq!(parse_message(frame, &streams, &mut book), Ok(Message::Book(want, BookEvent::Snapshot)));
            per_pair[want.index()] += 1;
        }
    }
    assert_eq!(per_pair, [btc.len(), eth.len()]);
    assert_eq!(streams.symbol(PairId(1)), "ETHUSDT");
}

#[test]
fn single_frame_captures_parse_as_typed_deserialization_reads_them() {
    let streams = table(&["BTCUSDT", "FLMUSDT"], Depth::D20, UpdateSpeed::Ms100);
    for name in ["btcusdt_depth20_single.json", "flmusdt_depth20_single.json"] {
        let oracle = assert_agree(&single(name), &streams);
        assert_eq!(oracle.data.bids.len(), 20, "{name}");
        assert_eq!(oracle.data.asks.len(), 20, "{name}");
    }
}

/// Binance's documented payload (`"0.0024"`, `"10"`: fewer than eight
/// decimals), compact and pretty-printed, in a 1000 ms stream's envelope.
#[test]
fn binance_documented_partial_depth_example_parses_inside_an_envelope() {
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(fixture("binance_doc_examples.json")).unwrap())
        .expect("doc examples are JSON");
    let payload = &doc["partial_book_depth_payload"];
    let streams = table(&["BNBBTC"], Depth::D5, UpdateSpeed::Ms1000);
    for text in [serde_json::to_string(payload).unwrap(), serde_json::to_string_pretty(payload).unwrap()] {
        let frame = format!("{{\"stream\":\"bnbbtc@depth5\",\"data\":{text}}}");
        let oracle = assert_agree(frame.as_bytes(), &streams);
        assert_eq!(oracle.data.last_update_id, 160);
        assert_eq!(oracle_levels(&oracle.data.bids), [(240_000, 1_000_000_000)]);
        assert_eq!(oracle_levels(&oracle.data.asks), [(260_000, 10_000_000_000)]);
    }
}

#[test]
fn the_test_decimal_converter_is_itself_exact() {
    assert_eq!(mantissa_1e8("61837.63000000"), Some(6_183_763_000_000));
    assert_eq!(mantissa_1e8("0.0024"), Some(240_000));
    assert_eq!(mantissa_1e8("10"), Some(1_000_000_000));
    assert_eq!(mantissa_1e8("184467440737.09551615"), Some(u64::MAX));
    assert_eq!(mantissa_1e8("184467440737.09551616"), None);
    assert_eq!(mantissa_1e8("1.123456789"), None);
    assert_eq!(mantissa_1e8("5."), None);
    assert_eq!(mantissa_1e8(".5"), None);
    assert_eq!(mantissa_1e8("-1"), None);
}

// ----------------------------------------------------------- golden metrics

/// `raw / 10^frac` written out exactly, trailing zeros trimmed: a formatter
/// independent of the crate's.
fn exact_decimal(raw: u128, frac: usize) -> String {
    let digits = format!("{raw:0>width$}", width = frac + 1);
    let (int, fraction) = digits.split_at(digits.len() - frac);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() { int.to_string() } else { format!("{int}.{fraction}") }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `num / den` (0 ≤ num ≤ den, den > 0) correctly rounded to `f64`
/// (round half to even), by binary long division.
fn correctly_rounded(num: u128, den: u128) -> f64 {
    assert!(den > 0 && num <= den && den < 1 << 126);
    if num == 0 {
        return 0.0;
    }
    if num == den {
        return 1.0;
    }
    // Quotient bits after the binary point; the first 1 bit is at 2^-exp.
    let mut rem = num;
    let mut exp = 0i32;
    loop {
        rem *= 2;
        exp += 1;
        if rem >= den {
            rem -= den;
            break;
        }
    }
    // 52 more mantissa bits, then a round bit; the remainder is the sticky bit.
    let mut mant: u64 = 1;
    for _ in 0..52 {
        rem *= 2;
        mant = mant * 2 + u64::from(rem >= den);
        if rem >= den {
            rem -= den;
        }
    }
    rem *= 2;
    let round = rem >= den;
    if round {
        rem -= den;
    }
    let sticky = rem != 0;
    if round && (sticky || mant & 1 == 1) {
        mant += 1; // may become 2^53: still exact as f64
    }
    // value = mant × 2^(-exp - 52); never subnormal here (exp ≤ 130).
    mant as f64 * 2f64.powi(-exp - 52)
}

fn ulps_apart(a: f64, b: f64) -> u64 {
    assert_eq!(a.is_sign_negative(), b.is_sign_negative(), "{a} vs {b}");
    a.to_bits().abs_diff(b.to_bits())
}

/// One frame's volumes over `top_n` levels, by the oracle's own arithmetic.
fn golden_volumes(levels: &[(u64, u64)], top_n: usize, mode: VolumeMode) -> u128 {
    levels
        .iter()
        .take(top_n)
        .map(|&(p, q)| match mode {
            VolumeMode::Qty => u128::from(q),
            VolumeMode::Notional => u128::from(p) * u128::from(q),
        })
        .sum()
}

fn assert_golden_metrics(frame: &[u8], streams: &StreamTable, max_ulps: u64) -> usize {
    let oracle = assert_agree(frame, streams);
    let bids = oracle_levels(&oracle.data.bids);
    let asks = oracle_levels(&oracle.data.asks);
    let mut book = Book::default();
    parse_message(frame, streams, &mut book).expect("parsed above");
    let mut checked = 0;
    for top_n in [1, 5, 10, 20] {
        for (mode, frac) in [(VolumeMode::Qty, 8), (VolumeMode::Notional, 16)] {
            let bid = golden_volumes(&bids, top_n, mode);
            let ask = golden_volumes(&asks, top_n, mode);
            let got = imbalance(&book, VolumeSpec { mode, top_n }).expect("real books have volume");
            let ctx = || format!("top_n {top_n} {mode}: {}", String::from_utf8_lossy(frame));
            assert_eq!(got.bid.to_string(), exact_decimal(bid, frac), "bid volume, {}", ctx());
            assert_eq!(got.ask.to_string(), exact_decimal(ask, frac), "ask volume, {}", ctx());
            // The ratio as an exact fraction, compared in lowest terms.
            let (neg, mag, den) = (ask > bid, bid.abs_diff(ask), bid + ask);
            let g = gcd(mag, den);
            let e = got.ratio.exact;
            let ge = gcd(e.mag, e.den);
            assert_eq!(
                (e.negative && e.mag != 0, e.mag / ge, e.den / ge),
                (neg, mag / g, den / g),
                "exact ratio, {}",
                ctx()
            );
            let want = correctly_rounded(mag, den);
            let want = if neg { -want } else { want };
            let ulps = ulps_apart(got.ratio.value(), want);
            assert!(ulps <= max_ulps, "ratio {} is {ulps} ulps from {want}, {}", got.ratio.value(), ctx());
            checked += 1;
        }
    }
    checked
}

/// Every `step`-th book of both depth20 recordings and both single frames.
fn golden_metrics_on_real_books(max_ulps: u64, step: usize) -> usize {
    let streams = table(&["BTCUSDT", "ETHUSDT"], Depth::D20, UpdateSpeed::Ms100);
    let mut checked = 0;
    for name in ["btcusdt_depth20_100ms_20240808-09.txt.gz", "ethusdt_depth20_100ms_20240808-09.txt.gz"] {
        for frame in recording(name).iter().step_by(step) {
            checked += assert_golden_metrics(frame, &streams, max_ulps);
        }
    }
    let singles = table(&["BTCUSDT", "FLMUSDT"], Depth::D20, UpdateSpeed::Ms100);
    for name in ["btcusdt_depth20_single.json", "flmusdt_depth20_single.json"] {
        checked += assert_golden_metrics(&single(name), &singles, max_ulps);
    }
    checked
}

/// Volumes and the exact ratio (what triggers compare) are exact, and the
/// `f64` the journal prints is the correctly rounded one (0 ulps). Every third
/// book keeps the debug-mode run short.
#[test]
fn volumes_and_ratio_match_exact_decimal_arithmetic_on_real_books() {
    let checked = golden_metrics_on_real_books(0, 3);
    assert!(checked > 30_000, "{checked} readings checked");
}

#[test]
fn golden_volume_of_the_first_recorded_btc_book_is_exact() {
    // Top level of the first BTCUSDT frame: 61837.63 × 3.78826 bid against
    // 61837.64 × 1.6052 ask, worked out by hand.
    let streams = table(&["BTCUSDT"], Depth::D10, UpdateSpeed::Ms100);
    let frame = recording("btcusdt_depth10_100ms_20240808-09.txt.gz").swap_remove(0);
    let mut book = Book::default();
    parse_message(&frame, &streams, &mut book).unwrap();
    let top = imbalance(&book, VolumeSpec { mode: VolumeMode::Notional, top_n: 1 }).unwrap();
    assert_eq!(top.bid.to_string(), "234257.0202238");
    assert_eq!(top.ask.to_string(), "99261.779728");
    let qty = imbalance(&book, VolumeSpec { mode: VolumeMode::Qty, top_n: 1 }).unwrap();
    assert_eq!((qty.bid.to_string(), qty.ask.to_string()), ("3.78826".into(), "1.6052".into()));
}

#[test]
fn the_test_rounding_reference_is_correct() {
    assert_eq!(correctly_rounded(1, 3), 1.0 / 3.0);
    assert_eq!(correctly_rounded(2, 3), 2.0 / 3.0);
    assert_eq!(correctly_rounded(1, 10), 0.1);
    assert_eq!(correctly_rounded(7, 7), 1.0);
    assert_eq!(correctly_rounded(1, 1 << 100), 2f64.powi(-100));
    // Exactly halfway between two doubles: ties go to the even mantissa.
    let den = 1u128 << 54;
    assert_eq!(correctly_rounded((1 << 53) + 1, den), 0.5);
    assert_eq!(correctly_rounded((1 << 53) + 3, den), 0.5 + 2f64.powi(-52));
    for (n, d) in [(123_456_789u128, 987_654_321u128), (5, 17), (99, 100)] {
        assert_eq!(correctly_rounded(n, d), n as f64 / d as f64, "{n}/{d}");
    }
}
