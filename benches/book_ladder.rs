//! The full-depth book (`book::ladder`) against a `BTreeMap<Price, Qty>` per
//! side, fed the same events of the real BTCUSDT diff-depth recordings
//! (snapshot, then every event after it; ~6,500 events, up to 1,076 changes
//! in one), each followed by reading the top 10 levels of both sides as the
//! metrics do.
//!
//! * `book_ladder/{ladder,btreemap}_all_events`: one iteration applies every
//!   event to a freshly seeded book; criterion's element throughput is events.
//! * `book_ladder/{ladder,btreemap}_max_event`: the largest event alone, on
//!   the book as it stands just before it.
//! * Printed before the groups: per-event apply cost over the recordings
//!   (median, p90, p99, max, the best of several passes per event), which
//!   criterion's mean hides, and how many sides took the one-pass merge.
//!
//! The ladder runs at capacity 5,000 (NautilusTrader's depth), which holds
//! the whole recorded book (no drops), so the unbounded maps hold the same
//! levels. Run: `cargo bench --bench book_ladder`.

#[path = "../tests/book_ladder_events/mod.rs"]
mod book_ladder_events;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use book_ladder_events::{DiffEvent, Recording, Snapshot};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use imbalance_monitor::book::Level;
use imbalance_monitor::book::ladder::{Applied, Ladder};
use imbalance_monitor::units::{Price, Qty};

const CAPACITY: usize = 5000;
const TOP_N: usize = 10;

/// The baseline: one ordered map per side.
#[derive(Clone, Default)]
struct MapBook {
    bids: BTreeMap<Price, Qty>,
    asks: BTreeMap<Price, Qty>,
}

fn map_side(side: &mut BTreeMap<Price, Qty>, changes: &[Level]) {
    for c in changes {
        if c.qty.0 == 0 {
            side.remove(&c.price);
        } else {
            side.insert(c.price, c.qty);
        }
    }
}

impl MapBook {
    fn seeded(s: &Snapshot) -> Self {
        let mut book = MapBook::default();
        map_side(&mut book.bids, &s.bids);
        map_side(&mut book.asks, &s.asks);
        book
    }

    fn apply(&mut self, e: &DiffEvent) {
        map_side(&mut self.bids, &e.bids);
        map_side(&mut self.asks, &e.asks);
    }

    /// Σ qty of the top levels of both sides: what a metric reads.
    fn top(&self) -> u64 {
        let bids = self.bids.iter().rev().take(TOP_N).map(|(_, q)| q.0);
        let asks = self.asks.iter().take(TOP_N).map(|(_, q)| q.0);
        bids.chain(asks).fold(0, u64::wrapping_add)
    }
}

fn seeded_ladder(s: &Snapshot) -> Ladder {
    let mut book = Ladder::with_capacity(CAPACITY);
    book.set_snapshot(s.last_update_id, &s.bids, &s.asks).expect("the snapshot is in order");
    book
}

/// Σ qty of the top levels of both sides: what a metric reads.
fn ladder_top(book: &Ladder) -> u64 {
    let bids = book.bids.levels().iter().take(TOP_N);
    let asks = book.asks.levels().iter().take(TOP_N);
    bids.chain(asks).map(|l| l.qty.0).fold(0, u64::wrapping_add)
}

fn ladder_all(book: &mut Ladder, events: &[DiffEvent]) -> u64 {
    let mut acc = 0u64;
    for e in events {
        book.apply(e.final_update_id, &e.bids, &e.asks);
        acc = acc.wrapping_add(ladder_top(book));
    }
    acc
}

fn map_all(book: &mut MapBook, events: &[DiffEvent]) -> u64 {
    let mut acc = 0u64;
    for e in events {
        book.apply(e);
        acc = acc.wrapping_add(book.top());
    }
    acc
}

/// Nanoseconds per event, the best of `passes` replays for each event, sorted.
fn per_event_ns(rec: &Recording, passes: usize, mut replay: impl FnMut(&mut dyn FnMut(usize, u64))) -> Vec<u64> {
    let mut best = vec![u64::MAX; rec.events.len()];
    for _ in 0..passes {
        replay(&mut |i, ns| {
            if let Some(b) = best.get_mut(i) {
                *b = (*b).min(ns);
            }
        });
    }
    best.sort_unstable();
    best
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).copied().unwrap_or(0)
}

fn report_per_event(rec: &Recording) {
    const PASSES: usize = 5;
    let ladder = per_event_ns(rec, PASSES, |record| {
        let mut book = seeded_ladder(&rec.snapshot);
        for (i, e) in rec.events.iter().enumerate() {
            let t = Instant::now();
            book.apply(e.final_update_id, &e.bids, &e.asks);
            black_box(ladder_top(&book));
            record(i, t.elapsed().as_nanos() as u64);
        }
    });
    let map = per_event_ns(rec, PASSES, |record| {
        let mut book = MapBook::seeded(&rec.snapshot);
        for (i, e) in rec.events.iter().enumerate() {
            let t = Instant::now();
            book.apply(e);
            black_box(book.top());
            record(i, t.elapsed().as_nanos() as u64);
        }
    });
    let mut book = seeded_ladder(&rec.snapshot);
    let (mut paths, mut deepest) = (Applied::default(), 0);
    for e in &rec.events {
        let a = book.apply(e.final_update_id, &e.bids, &e.asks);
        paths.sweeps += a.sweeps;
        paths.merges += a.merges;
        deepest = deepest.max(book.bids.len().max(book.asks.len()));
    }
    let mut changes: Vec<u64> = rec.events.iter().map(|e| e.changes() as u64).collect();
    changes.sort_unstable();
    println!(
        "book_ladder: {} events, changes per event median {} p90 {} max {}; deepest side {deepest} levels; \
         side updates: {} swept, {} merged",
        rec.events.len(),
        quantile(&changes, 0.5),
        quantile(&changes, 0.9),
        changes.last().copied().unwrap_or(0),
        paths.sweeps,
        paths.merges,
    );
    for (name, ns) in [("ladder", &ladder), ("btreemap", &map)] {
        println!(
            "book_ladder: {name:>8} ns/event (apply + top {TOP_N} both sides, best of {PASSES}): \
             median {} p90 {} p99 {} max {}",
            quantile(ns, 0.5),
            quantile(ns, 0.9),
            quantile(ns, 0.99),
            ns.last().copied().unwrap_or(0)
        );
    }
}

fn bench(c: &mut Criterion) {
    let rec = book_ladder_events::load();
    report_per_event(&rec);
    let events = &rec.events;
    let (max_at, max_event) =
        events.iter().enumerate().max_by_key(|(_, e)| e.changes()).expect("the recordings hold events");
    let before_max = events.get(..max_at).unwrap_or(&[]);

    let mut g = c.benchmark_group("book_ladder");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("ladder_all_events", |b| {
        b.iter_batched_ref(
            || seeded_ladder(&rec.snapshot),
            |book| black_box(ladder_all(book, events)),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("btreemap_all_events", |b| {
        b.iter_batched_ref(
            || MapBook::seeded(&rec.snapshot),
            |book| black_box(map_all(book, events)),
            BatchSize::LargeInput,
        )
    });

    g.throughput(Throughput::Elements(max_event.changes() as u64));
    let mut ladder_before = seeded_ladder(&rec.snapshot);
    ladder_all(&mut ladder_before, before_max);
    let mut map_before = MapBook::seeded(&rec.snapshot);
    map_all(&mut map_before, before_max);
    g.bench_function("ladder_max_event", |b| {
        b.iter_batched_ref(
            || ladder_before.clone(),
            |book| {
                book.apply(max_event.final_update_id, &max_event.bids, &max_event.asks);
                black_box(ladder_top(book))
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("btreemap_max_event", |b| {
        b.iter_batched_ref(
            || map_before.clone(),
            |book| {
                book.apply(max_event);
                black_box(book.top())
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    // No plots: criterion's plotters backend needs fonts a CI box may lack.
    config = Criterion::default().without_plots();
    targets = bench
}
criterion_main!(benches);
