//! The cost per diff event of the local book (issue 13): parse + apply +
//! metrics + triggers, on the real BTCUSDT diff recordings
//! (`btcusdt_20240808.gz` then `btcusdt_20240809.gz`), with and without the
//! bookTicker overlay, and the book alone against a `BTreeMap<Price, Qty>`
//! fed the same events in the same run.
//!
//! Every line is loaded into memory first. An iteration is one pass over
//! every event after the recording's REST snapshot line: a fresh engine (or
//! book) is warmed up to the snapshot outside the timing — the events before
//! it, buffered, then the snapshot — and the pass is timed. Criterion's
//! per-iteration time is the pass; its throughput line is events per second,
//! so ns/event = 1e9 / throughput. Cases:
//!
//! * `engine_diff_{plain,every_metric}` — (a) diff lines only
//!   (`book_ticker = false`): per diff event.
//! * `engine_diff_ticker_{plain,every_metric}` — (b) diff and bookTicker
//!   lines (`book_ticker = true`): per event of either kind (the diffs
//!   alone are printed at start-up, to turn the pass time into ns per diff).
//! * `book_btreemap` vs `book_ladder` — (c) vs (d): the same diffs, decoded
//!   once in setup, applied to a `BTreeMap<Price, Qty>` per side or to the
//!   engine's [`Ladder`], each followed by the same top-10 notional
//!   imbalance. Asserted equal after every event before timing.
//! * `pipeline_btreemap` — our parser + `BTreeMap` apply + top-10 imbalance
//!   on the lines of (a): what (a) costs with a textbook book instead of
//!   ours (and without sequence checks or triggers, which flatters it).
//!
//! Run: `cargo bench --bench local_book`.

// Only the trigger sets are used here; the depth10 loader and the other cases serve hot_path.rs.
#[allow(dead_code)]
mod common;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Case, CountingSink};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use imbalance_monitor::book::event::EventScratch;
use imbalance_monitor::book::ladder::Ladder;
use imbalance_monitor::book::{BookView, Level};
use imbalance_monitor::engine::{Engine, EngineConfig};
use imbalance_monitor::metrics::{Imbalance, MetricError, VolumeSpec, imbalance};
use imbalance_monitor::pairs::PairId;
use imbalance_monitor::recording::{Line, RecordingReader};
use imbalance_monitor::units::{Price, Qty, UnixNanos, VolumeMode};
use imbalance_monitor::venue::Message;
use imbalance_monitor::venue::binance_spot::collector::is_snapshot_line;
use imbalance_monitor::venue::binance_spot::parse_diff_message;
use imbalance_monitor::venue::binance_spot::snapshot::{SnapshotBook, parse_snapshot};
use imbalance_monitor::venue::binance_spot::{DiffKind, StreamTable, UpdateSpeed};

const FILES: [&str; 2] = ["tests/fixtures/btcusdt_20240808.gz", "tests/fixtures/btcusdt_20240809.gz"];
const SYMBOL: &str = "BTCUSDT";
/// Levels per side, as `binance.snapshot_limit = 1000` gets with room to grow.
const CAPACITY: usize = 2000;
const SPEC: VolumeSpec = VolumeSpec { mode: VolumeMode::Notional, top_n: 10 };

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Snapshot,
    Diff,
    Ticker,
    Other,
}

struct RecLine {
    recv: UnixNanos,
    kind: Kind,
    json: Vec<u8>,
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn load() -> Vec<RecLine> {
    let mut out = Vec::new();
    for file in FILES {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let mut reader = RecordingReader::open(&path).expect("open the diff recording");
        while let Some(line) = reader.next_line().expect("read the diff recording") {
            let Line::Frame { recv, json } = line else { continue };
            let kind = if is_snapshot_line(json) {
                Kind::Snapshot
            } else if contains(json, b"@bookTicker\"") {
                Kind::Ticker
            } else if contains(json, b"\"depthUpdate\"") {
                Kind::Diff
            } else {
                Kind::Other
            };
            out.push(RecLine { recv, kind, json: json.to_vec() });
        }
    }
    out
}

/// One case's input: the lines up to the snapshot (fed in setup), the
/// snapshot, and the lines after it (timed).
struct Feed<'a> {
    warm: Vec<&'a RecLine>,
    snapshot: SnapshotBook,
    measured: Vec<&'a RecLine>,
}

fn feed<'a>(lines: &'a [RecLine], kinds: &[Kind]) -> Feed<'a> {
    let at = lines.iter().position(|l| l.kind == Kind::Snapshot).expect("the recording holds a snapshot line");
    let (before, after) = lines.split_at(at);
    let (snap, after) = after.split_first().expect("the snapshot line");
    let mut snapshot = SnapshotBook::with_capacity(5000);
    parse_snapshot(&snap.json, &mut snapshot).expect("the recording's snapshot parses");
    assert!(after.iter().all(|l| l.kind != Kind::Snapshot), "one snapshot line only");
    let pick = |ls: &'a [RecLine]| ls.iter().filter(|l| kinds.contains(&l.kind)).collect::<Vec<_>>();
    Feed { warm: pick(before), snapshot, measured: pick(after) }
}

fn engine(case: Case, book_ticker: bool) -> Engine {
    let venue = StreamTable::diff(&[SYMBOL.into()], DiffKind { speed: UpdateSpeed::Ms100, book_ticker });
    Engine::new(EngineConfig::new(venue, SPEC, case.config().triggers).with_local_book(CAPACITY))
}

/// A fresh engine with the lines before the snapshot and the snapshot fed.
fn warmed(case: Case, book_ticker: bool, f: &Feed, sink: &mut CountingSink) -> Engine {
    let mut e = engine(case, book_ticker);
    for l in &f.warm {
        e.on_frame(&l.json, l.recv, sink);
    }
    let s = &f.snapshot;
    e.on_snapshot(PairId(0), None, s.last_update_id, &s.bids, &s.asks, sink);
    e
}

/// Feeds `f` once untimed and checks the pass does what the bench claims:
/// every measured line decoded, the book synced throughout.
fn check_engine(case: Case, book_ticker: bool, f: &Feed) {
    let mut sink = CountingSink::default();
    let mut e = warmed(case, book_ticker, f, &mut sink);
    let before = e.counters().clone();
    for l in &f.measured {
        e.on_frame(&l.json, l.recv, &mut sink);
    }
    let c = e.counters();
    let local = *e.local_books().expect("diff mode").counters();
    assert_eq!(c.rejected() - before.rejected(), 0, "every measured line is a stream of the engine");
    assert_eq!((local.gaps, local.resyncs), (0, 0), "the recording is gap-free");
    assert!(c.evaluated - before.evaluated > f.measured.len() as u64 / 2, "most events are evaluated");
    eprintln!(
        "{} ticker={book_ticker}: {} events ({} diffs), {} evaluated, {} alerts, {} levels dropped",
        case.name(),
        f.measured.len(),
        f.measured.iter().filter(|l| l.kind == Kind::Diff).count(),
        c.evaluated - before.evaluated,
        sink.alerts,
        local.levels_dropped
    );
}

fn engine_cases(c: &mut Criterion, lines: &[RecLine]) {
    let mut group = c.benchmark_group("local_book");
    group.sampling_mode(SamplingMode::Flat);
    for (label, book_ticker, kinds) in
        [("engine_diff", false, &[Kind::Diff][..]), ("engine_diff_ticker", true, &[Kind::Diff, Kind::Ticker][..])]
    {
        let f = feed(lines, kinds);
        for (case, name) in [(Case::Plain, "plain"), (Case::EveryMetric, "every_metric")] {
            check_engine(case, book_ticker, &f);
            group.throughput(Throughput::Elements(f.measured.len() as u64));
            group.bench_function(format!("{label}_{name}"), |b| {
                b.iter_custom(|iters| {
                    let mut sink = CountingSink::default();
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let mut e = warmed(case, book_ticker, &f, &mut sink);
                        let start = Instant::now();
                        for l in &f.measured {
                            black_box(e.on_frame(black_box(&l.json), l.recv, &mut sink));
                        }
                        total += start.elapsed();
                    }
                    total
                })
            });
        }
    }
    group.finish();
}

// --- The book alone: the same decoded events, two books. ---

/// One diff event, decoded once.
struct Decoded {
    first: u64,
    last: u64,
    bids: Vec<Level>,
    asks: Vec<Level>,
}

fn decode(json: &[u8], streams: &StreamTable, scratch: &mut EventScratch) -> Decoded {
    let msg = parse_diff_message(json, streams, scratch).expect("a diff line decodes");
    assert!(matches!(msg, Message::Book(PairId(0), _)));
    let d = &scratch.diff;
    Decoded {
        first: d.first_update_id,
        last: d.final_update_id,
        bids: d.bids.levels().to_vec(),
        asks: d.asks.levels().to_vec(),
    }
}

/// The textbook local book: one ordered map per side.
#[derive(Clone, Default)]
struct MapBook {
    bids: BTreeMap<Price, Qty>,
    asks: BTreeMap<Price, Qty>,
}

fn set_side(side: &mut BTreeMap<Price, Qty>, changes: &[Level]) {
    for l in changes {
        if l.qty.0 == 0 {
            side.remove(&l.price);
        } else {
            side.insert(l.price, l.qty);
        }
    }
}

impl MapBook {
    fn from_snapshot(s: &SnapshotBook) -> Self {
        let mut m = MapBook::default();
        set_side(&mut m.bids, &s.bids);
        set_side(&mut m.asks, &s.asks);
        m
    }

    #[inline]
    fn apply(&mut self, bids: &[Level], asks: &[Level]) {
        set_side(&mut self.bids, bids);
        set_side(&mut self.asks, asks);
    }

    /// The top-10 notional imbalance with the product's own metric code, on
    /// the ten best levels copied out of the maps.
    #[inline]
    fn imbalance(&self) -> Result<Imbalance, MetricError> {
        let fill = |out: &mut [Level; 10], it: &mut dyn Iterator<Item = (&Price, &Qty)>| {
            let mut n = 0;
            for (slot, (p, q)) in out.iter_mut().zip(it) {
                *slot = Level { price: *p, qty: *q };
                n += 1;
            }
            n
        };
        let (mut b, mut a) = ([Level::default(); 10], [Level::default(); 10]);
        let nb = fill(&mut b, &mut self.bids.iter().rev());
        let na = fill(&mut a, &mut self.asks.iter());
        let view = BookView { bids: &b[..nb], asks: &a[..na], last_update_id: 0, event_time_ms: None };
        imbalance(&view, SPEC)
    }
}

#[inline]
fn ladder_imbalance(l: &Ladder) -> Result<Imbalance, MetricError> {
    let view =
        BookView { bids: l.bids.levels(), asks: l.asks.levels(), last_update_id: l.update_id, event_time_ms: None };
    imbalance(&view, SPEC)
}

/// The decoded diffs newer than the snapshot, split into those before the
/// snapshot line (applied in setup) and after it (timed), and both books as
/// of the snapshot plus the former.
struct BookInput {
    timed: Vec<Decoded>,
    map: MapBook,
    ladder: Ladder,
}

fn book_input(lines: &[RecLine]) -> BookInput {
    let f = feed(lines, &[Kind::Diff]);
    let streams = StreamTable::diff(&[SYMBOL.into()], DiffKind { speed: UpdateSpeed::Ms100, book_ticker: false });
    let mut scratch = EventScratch::with_capacity(8192);
    let lid = f.snapshot.last_update_id;
    let newer = |ls: &[&RecLine], scratch: &mut EventScratch| {
        ls.iter().map(|l| decode(&l.json, &streams, scratch)).filter(|d| d.last > lid).collect::<Vec<_>>()
    };
    let warm = newer(&f.warm, &mut scratch);
    let timed = newer(&f.measured, &mut scratch);
    let mut map = MapBook::from_snapshot(&f.snapshot);
    let mut ladder = Ladder::with_capacity(CAPACITY);
    ladder.set_snapshot(lid, &f.snapshot.bids, &f.snapshot.asks).expect("the snapshot fits");
    let mut prev = lid;
    for (i, d) in warm.iter().chain(&timed).enumerate() {
        assert!(d.first <= prev + 1, "event {i}: U {} after u {prev}: a gap", d.first);
        prev = d.last;
    }
    for d in &warm {
        map.apply(&d.bids, &d.asks);
        ladder.apply(d.last, &d.bids, &d.asks);
    }
    // Both books see the same thing after every event, so timing them compares like with like.
    let (mut m, mut l) = (map.clone(), ladder.clone());
    for (i, d) in timed.iter().enumerate() {
        m.apply(&d.bids, &d.asks);
        l.apply(d.last, &d.bids, &d.asks);
        assert_eq!(m.imbalance(), ladder_imbalance(&l), "event {i}: the books disagree");
    }
    let changes: usize = timed.iter().map(|d| d.bids.len() + d.asks.len()).sum();
    eprintln!(
        "book: {} timed events, {changes} level changes, {} / {} levels at the end (map / ladder)",
        timed.len(),
        m.bids.len() + m.asks.len(),
        l.bids.len() + l.asks.len()
    );
    BookInput { timed, map, ladder }
}

fn book_cases(c: &mut Criterion, lines: &[RecLine]) {
    let input = book_input(lines);
    let mut group = c.benchmark_group("local_book");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(input.timed.len() as u64));
    group.bench_function("book_btreemap", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut m = input.map.clone();
                let start = Instant::now();
                for d in &input.timed {
                    m.apply(black_box(&d.bids), black_box(&d.asks));
                    black_box(m.imbalance()).ok();
                }
                total += start.elapsed();
            }
            total
        })
    });
    group.bench_function("book_ladder", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut l = input.ladder.clone();
                let start = Instant::now();
                for d in &input.timed {
                    black_box(l.apply(d.last, black_box(&d.bids), black_box(&d.asks)));
                    black_box(ladder_imbalance(&l)).ok();
                }
                total += start.elapsed();
            }
            total
        })
    });

    // (a)'s lines through our parser into the BTreeMap book: the same
    // events as `engine_diff_plain`, with the book swapped.
    let f = feed(lines, &[Kind::Diff]);
    let streams = StreamTable::diff(&[SYMBOL.into()], DiffKind { speed: UpdateSpeed::Ms100, book_ticker: false });
    let lid = f.snapshot.last_update_id;
    let mut scratch = EventScratch::with_capacity(8192);
    group.throughput(Throughput::Elements(f.measured.len() as u64));
    group.bench_function("pipeline_btreemap", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut m = input.map.clone();
                let start = Instant::now();
                for l in &f.measured {
                    if parse_diff_message(black_box(&l.json), &streams, &mut scratch).is_ok()
                        && scratch.diff.final_update_id > lid
                    {
                        m.apply(scratch.diff.bids.levels(), scratch.diff.asks.levels());
                        black_box(m.imbalance()).ok();
                    }
                }
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

fn local_book(c: &mut Criterion) {
    let lines = load();
    engine_cases(c, &lines);
    book_cases(c, &lines);
}

criterion_group! {
    name = benches;
    // No plots: the report runs where no fonts are installed (as on the shared bench machine).
    config = Criterion::default().without_plots().sample_size(10).warm_up_time(Duration::from_secs(2)).measurement_time(Duration::from_secs(6));
    targets = local_book
}
criterion_main!(benches);
