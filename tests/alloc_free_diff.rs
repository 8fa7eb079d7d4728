//! Proof that the local book's hot path allocates nothing (issue 13): in diff
//! mode with the bookTicker overlay and a trigger on every metric, after
//! warm-up `Engine::on_frame` runs over every remaining line of the real
//! BTCUSDT and ETHUSDT recordings (both days, merged by receive time: diff
//! depth, bookTicker and trades) with zero calls into the global allocator;
//! and a resync — a lost event, the events buffered after it, a snapshot —
//! allocates nothing either.
//!
//! The allocator counts only on the thread that sets `MEASURING`, but its
//! counters are global: this file holds a single `#[test]`, so no other
//! measurement runs concurrently.

mod counting_alloc;

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;

use counting_alloc::{ALLOCS, DEALLOCS, MEASURING, REALLOCS};

use imbalance_monitor::alert::{Alert, EngineSink, MetricUpdate};
use imbalance_monitor::book::event::EventScratch;
use imbalance_monitor::book::local::LocalCounters;
use imbalance_monitor::engine::{Engine, EngineConfig};
use imbalance_monitor::exact::Decimal;
use imbalance_monitor::metrics::VolumeSpec;
use imbalance_monitor::pairs::PairId;
use imbalance_monitor::recording::{Line, RecordingReader};
use imbalance_monitor::reject::RejectKind;
use imbalance_monitor::triggers::{Condition, Emit, MetricKind, Op, TriggerSpec};
use imbalance_monitor::units::{UnixNanos, VolumeMode};
use imbalance_monitor::venue::binance_spot::collector::is_snapshot_line;
use imbalance_monitor::venue::binance_spot::snapshot::{SnapshotBook, parse_snapshot};
use imbalance_monitor::venue::binance_spot::{DiffKind, StreamTable, UpdateSpeed, parse_diff_message};

/// Events held after warm-up before the allocator counts.
const WARM_EVENTS: usize = 300;

/// A sink as the hot thread would use: fixed storage, never grows; it takes
/// metric updates too, as the hand-off does with history on.
struct FixedSink {
    kept: [Option<Alert>; 64],
    alerts: usize,
    metrics: usize,
}

impl FixedSink {
    fn new() -> Self {
        FixedSink { kept: [None; 64], alerts: 0, metrics: 0 }
    }
}

impl EngineSink for FixedSink {
    fn alert(&mut self, alert: &Alert) {
        if let Some(slot) = self.kept.get_mut(self.alerts) {
            *slot = Some(*alert);
        }
        self.alerts += 1;
    }

    fn metric(&mut self, _update: &MetricUpdate) {
        self.metrics += 1;
    }

    fn wants_metrics(&self) -> bool {
        true
    }
}

struct RecLine {
    pair: PairId,
    recv: UnixNanos,
    json: Vec<u8>,
}

/// Both days of one symbol's collector recording, in file order.
fn lines(symbol: &str, pair: PairId) -> Vec<RecLine> {
    let mut out = Vec::new();
    for day in ["20240808", "20240809"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{symbol}_{day}.gz"));
        let mut reader = RecordingReader::open(&path).expect("open recording");
        while let Some(line) = reader.next_line().expect("read recording") {
            if let Line::Frame { recv, json } = line {
                out.push(RecLine { pair, recv, json: json.to_vec() });
            }
        }
    }
    out
}

/// One feed of both symbols: merged by receive time, each symbol's lines
/// kept in file order (a bare snapshot line belongs to its file's symbol).
fn merged(a: Vec<RecLine>, b: Vec<RecLine>) -> Vec<RecLine> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.recv <= y.recv => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, _) => b.next(),
        };
        match next {
            Some(l) => out.push(l),
            None => return out,
        }
    }
}

/// A trigger on every metric, with every option (sustain, liquidity filters,
/// re-arm, a two-condition trigger), so every code path that could allocate
/// per event runs.
fn triggers() -> Vec<TriggerSpec> {
    let ratio = |name: &str, op, value, emit| TriggerSpec::simple(name, MetricKind::ImbalanceRatio, op, value, 0, emit);
    let mut triggers = vec![ratio("bid_heavy", Op::Gt, 0.3, Emit::Edge), ratio("ask_heavy", Op::Le, -0.3, Emit::Level)];
    for (name, metric, value) in [
        ("weighted", MetricKind::WeightedImbalance, 0.3),
        ("micro", MetricKind::MicropriceOffsetBps, 0.05),
        ("spread", MetricKind::SpreadBps, 0.002),
        ("ofi", MetricKind::Ofi, 1.0),
    ] {
        let mut t = TriggerSpec::simple(name, metric, Op::Gt, value, 0, Emit::Edge);
        t.sustain_ns = 200_000_000;
        t.min_volume = Some(1);
        t.max_spread_bps = Decimal::from_f64(5.0);
        t.rearm = Decimal::from_f64(value / 2.0);
        triggers.push(t);
    }
    let mut all = ratio("all_level", Op::Gt, 0.1, Emit::Level);
    all.extra = vec![Condition {
        metric: MetricKind::SpreadBps,
        op: Op::Le,
        value: 2.0,
        threshold: Decimal::from_f64(2.0).unwrap(),
    }];
    triggers.push(all);
    triggers
}

fn engine(symbols: &[&str]) -> Engine {
    let symbols: Vec<String> = symbols.iter().map(|s| s.to_string()).collect();
    let venue = StreamTable::diff(&symbols, DiffKind { speed: UpdateSpeed::Ms100, book_ticker: true });
    Engine::new(
        EngineConfig::new(venue, VolumeSpec { mode: VolumeMode::Notional, top_n: 10 }, triggers())
            .with_local_book(2000),
    )
}

/// Feeds one line as replay does: a bare snapshot line through the reused
/// `snapshot` book and `on_snapshot`, anything else through `on_frame`.
fn feed(engine: &mut Engine, line: &RecLine, snapshot: &mut SnapshotBook, sink: &mut FixedSink) {
    if is_snapshot_line(&line.json) {
        parse_snapshot(&line.json, snapshot).expect("the recording's snapshot parses");
        let s = &*snapshot;
        engine.on_snapshot(line.pair, None, s.last_update_id, &s.bids, &s.asks, sink);
    } else {
        engine.on_frame(&line.json, line.recv, sink);
    }
}

fn local(engine: &Engine) -> LocalCounters {
    *engine.local_books().expect("diff mode").counters()
}

/// Runs `f` with the allocator counting; returns (allocs, reallocs, deallocs).
fn counted(f: impl FnOnce()) -> (u64, u64, u64) {
    let before = (ALLOCS.load(Relaxed), REALLOCS.load(Relaxed), DEALLOCS.load(Relaxed));
    MEASURING.with(|m| m.set(true));
    f();
    MEASURING.with(|m| m.set(false));
    (ALLOCS.load(Relaxed) - before.0, REALLOCS.load(Relaxed) - before.1, DEALLOCS.load(Relaxed) - before.2)
}

fn is_diff(l: &RecLine) -> bool {
    l.json.windows(13).any(|w| w == b"\"depthUpdate\"")
}

/// Index just past the warm-up: every pair's snapshot line and then
/// [`WARM_EVENTS`] more lines.
fn warm_up_end(all: &[RecLine]) -> usize {
    let last_snapshot = all.iter().rposition(|l| is_snapshot_line(&l.json)).expect("snapshot lines");
    last_snapshot + 1 + WARM_EVENTS
}

fn whole_recordings() {
    let all = merged(lines("btcusdt", PairId(0)), lines("ethusdt", PairId(1)));
    let mut engine = engine(&["BTCUSDT", "ETHUSDT"]);
    let mut snapshot = SnapshotBook::with_capacity(5000);
    let mut sink = FixedSink::new();
    let (warm, measured) = all.split_at(warm_up_end(&all));
    for l in warm {
        feed(&mut engine, l, &mut snapshot, &mut sink);
    }
    assert_eq!(local(&engine).snapshots_applied, 2, "both books synced in the warm-up");
    let (before, local_before, alerts_before) = (engine.counters().clone(), local(&engine), sink.alerts);

    let counts = counted(|| {
        for l in measured {
            feed(&mut engine, l, &mut snapshot, &mut sink);
        }
    });
    assert_eq!(counts, (0, 0, 0), "(allocs, reallocs, deallocs) during {} lines", measured.len());

    // Every path ran, so the zero above means something.
    let (after, l) = (engine.counters(), local(&engine));
    let evaluated = after.evaluated - before.evaluated;
    let trades = after.errors[RejectKind::UnknownStream.index()] - before.errors[RejectKind::UnknownStream.index()];
    let diffs = measured.iter().filter(|l| is_diff(l)).count() as u64;
    assert_eq!((l.gaps, l.resyncs), (0, 0), "the recordings are gap-free");
    assert!(diffs > 12_000, "{diffs} diff events");
    assert!(l.touches - local_before.touches > 100_000, "{} bookTicker overlays", l.touches - local_before.touches);
    assert!(trades > 1_000, "{trades} trade lines skipped");
    assert_eq!(after.rejected() - before.rejected(), trades, "nothing but trades rejected");
    assert!(evaluated > diffs, "{evaluated} evaluations: every diff and every overlay");
    assert!(sink.alerts - alerts_before > 1_000, "{} alerts fired", sink.alerts - alerts_before);
    assert!(sink.kept.iter().all(Option::is_some), "the fixed sink filled up and kept counting");
    for pair in [PairId(0), PairId(1)] {
        assert!(after.frames_by_pair.get(pair.index()).copied().unwrap_or(0) > 50_000, "{pair:?} fed");
        assert_eq!(engine.local_books().unwrap().unsynced(pair), None, "{pair:?} synced at the end");
    }
}

fn resync() {
    let all = lines("btcusdt", PairId(0));
    let start = warm_up_end(&all);
    // The lost event, the event after it (where the gap shows), one more
    // (the snapshot is as of its `u`), and two to apply after the snapshot.
    let diffs: Vec<usize> = (start..all.len()).filter(|&i| is_diff(&all[i])).take(5).collect();
    let &[lost, gapped, as_of, _, last_held] = &diffs[..] else { panic!("five diff events after the warm-up") };

    // The snapshot: an engine fed every line up to `as_of`, nothing lost.
    let (mut reference, mut engine) = (engine(&["BTCUSDT"]), engine(&["BTCUSDT"]));
    let (mut snapshot, mut sink) = (SnapshotBook::with_capacity(5000), FixedSink::new());
    for l in &all[..=as_of] {
        feed(&mut reference, l, &mut snapshot, &mut sink);
    }
    // The book stage keeps the update id itself (the ladder's stays 0): the snapshot is as of `as_of`'s `u`.
    let streams = StreamTable::diff(&["BTCUSDT".into()], DiffKind { speed: UpdateSpeed::Ms100, book_ticker: true });
    let mut scratch = EventScratch::with_capacity(8192);
    parse_diff_message(&all[as_of].json, &streams, &mut scratch).expect("a diff event");
    let book = reference.local_books().unwrap().ladder(PairId(0)).unwrap();
    let resnapshot = SnapshotBook {
        last_update_id: scratch.diff.final_update_id,
        bids: book.bids.levels().to_vec(),
        asks: book.asks.levels().to_vec(),
    };
    assert!(!resnapshot.bids.is_empty() && !resnapshot.asks.is_empty());
    for l in &all[..start] {
        feed(&mut engine, l, &mut snapshot, &mut sink);
    }
    let before = local(&engine);
    let live_until = (last_held + 2_000).min(all.len());
    assert!(live_until > last_held + 1_000, "live lines after the resync");

    let counts = counted(|| {
        for (i, l) in all.iter().enumerate().take(last_held + 1).skip(start) {
            if i != lost {
                feed(&mut engine, l, &mut snapshot, &mut sink);
            }
        }
        let s = &resnapshot;
        engine.on_snapshot(PairId(0), None, s.last_update_id, &s.bids, &s.asks, &mut sink);
        for l in &all[last_held + 1..live_until] {
            feed(&mut engine, l, &mut snapshot, &mut sink);
        }
    });
    assert_eq!(counts, (0, 0, 0), "(allocs, reallocs, deallocs) through a gap and its resync");

    let after = local(&engine);
    assert!(gapped > lost);
    assert_eq!(after.gaps - before.gaps, 1, "the lost event is detected");
    assert_eq!(after.snapshots_applied - before.snapshots_applied, 1, "the snapshot is applied: {after:?}");
    assert_eq!(engine.local_books().unwrap().unsynced(PairId(0)), None, "synced again");
    // The resynced book is the book nothing was lost from.
    for l in &all[as_of + 1..live_until] {
        feed(&mut reference, l, &mut snapshot, &mut sink);
    }
    let (ours, theirs) = (
        engine.local_books().unwrap().ladder(PairId(0)).unwrap(),
        reference.local_books().unwrap().ladder(PairId(0)).unwrap(),
    );
    assert_eq!((ours.bids.levels(), ours.asks.levels()), (theirs.bids.levels(), theirs.asks.levels()));
}

#[test]
fn local_book_allocates_nothing_per_event_after_warm_up() {
    whole_recordings();
    resync();
}
