//! The full-depth book (`book::ladder`) against a `BTreeMap<Price, Qty>`
//! model with the same capacity rule, after every event: random snapshots
//! and random events (inserts, updates, deletes of present and absent
//! prices, repeated prices, sorted and unsorted, small and huge, capacities
//! small enough to drop levels both ways), and the real BTCUSDT recordings.

mod book_ladder_events;

use std::collections::BTreeMap;

use proptest::prelude::*;

use imbalance_monitor::book::Level;
use imbalance_monitor::book::ladder::{Applied, Ladder};
use imbalance_monitor::units::{Price, Qty};

/// One side of the model: the rule spelled out on a map, change by change.
struct ModelSide {
    levels: BTreeMap<Price, Qty>,
    bids: bool,
    cap: usize,
}

impl ModelSide {
    fn new(bids: bool, cap: usize) -> Self {
        ModelSide { levels: BTreeMap::new(), bids, cap }
    }

    fn worst(&self) -> Option<Price> {
        if self.bids { self.levels.keys().next().copied() } else { self.levels.keys().next_back().copied() }
    }

    fn better(&self, a: Price, b: Price) -> bool {
        if self.bids { a > b } else { a < b }
    }

    fn snapshot(&mut self, levels: &[Level]) -> u32 {
        self.levels.clear();
        let mut dropped = 0;
        for l in levels.iter().filter(|l| l.qty.0 != 0) {
            if self.levels.len() < self.cap {
                self.levels.insert(l.price, l.qty);
            } else {
                dropped += 1;
            }
        }
        dropped
    }

    fn apply(&mut self, changes: &[Level]) -> u32 {
        let mut dropped = 0;
        for c in changes {
            if c.qty.0 == 0 {
                self.levels.remove(&c.price);
            } else if let Some(q) = self.levels.get_mut(&c.price) {
                *q = c.qty;
            } else if self.levels.len() < self.cap {
                self.levels.insert(c.price, c.qty);
            } else {
                dropped += 1;
                if let Some(worst) = self.worst()
                    && self.better(c.price, worst)
                {
                    self.levels.remove(&worst);
                    self.levels.insert(c.price, c.qty);
                }
            }
        }
        dropped
    }

    /// Best first, as `LadderSide::levels` must give them.
    fn best_first(&self) -> Vec<Level> {
        let level = |(&price, &qty): (&Price, &Qty)| Level { price, qty };
        if self.bids { self.levels.iter().rev().map(level).collect() } else { self.levels.iter().map(level).collect() }
    }
}

fn lvl(price: u64, qty: u64) -> Level {
    Level { price: Price(price), qty: Qty(qty) }
}

/// A change on a narrow price range, so updates and deletes of present
/// levels are common; one in three deletes.
fn change() -> impl Strategy<Value = Level> {
    (0u64..48, prop_oneof![1 => Just(0u64), 2 => 1u64..1000]).prop_map(|(p, q)| lvl(p, q))
}

/// One side's changes: few or many, in the side's order (as Binance sends
/// them, repeated prices kept in their order) or as generated.
fn changes(bids: bool) -> impl Strategy<Value = Vec<Level>> {
    (prop_oneof![prop::collection::vec(change(), 0..6), prop::collection::vec(change(), 0..120)], any::<bool>())
        .prop_map(move |(mut v, sort)| {
            if sort {
                // Stable: repeats of a price keep their order, so the last still wins.
                v.sort_by(|a, b| if bids { b.price.cmp(&a.price) } else { a.price.cmp(&b.price) });
            }
            v
        })
}

/// A snapshot side: distinct prices best first, some quantities zero.
fn snapshot_side(bids: bool) -> impl Strategy<Value = Vec<Level>> {
    prop::collection::btree_map(0u64..48, prop_oneof![1 => Just(0u64), 8 => 1u64..1000], 0..40).prop_map(move |m| {
        let v = m.into_iter().map(|(p, q)| lvl(p, q));
        if bids { v.rev().collect() } else { v.collect() }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_book_equals_the_model_after_every_event(
        cap in prop_oneof![0usize..24, Just(1000)],
        bids in snapshot_side(true),
        asks in snapshot_side(false),
        events in prop::collection::vec((changes(true), changes(false)), 1..24),
    ) {
        let mut book = Ladder::with_capacity(cap);
        let (mut model_bids, mut model_asks) = (ModelSide::new(true, cap), ModelSide::new(false, cap));
        let dropped = book.set_snapshot(1, &bids, &asks).unwrap();
        prop_assert_eq!(dropped, model_bids.snapshot(&bids) + model_asks.snapshot(&asks));
        for (n, (b, a)) in events.iter().enumerate() {
            let Applied { dropped, .. } = book.apply(n as u64 + 2, b, a);
            prop_assert_eq!(dropped, model_bids.apply(b) + model_asks.apply(a), "drops after event {}", n);
            prop_assert_eq!(book.bids.levels().to_vec(), model_bids.best_first(), "bids after event {}", n);
            prop_assert_eq!(book.asks.levels().to_vec(), model_asks.best_first(), "asks after event {}", n);
            prop_assert_eq!(book.update_id, n as u64 + 2);
        }
    }
}

/// Seeds the book and the model from the recordings' snapshot, applies every
/// event after it to both and compares them after each; returns how many
/// side updates took each path (sweep, merge, change by change) and the
/// levels dropped.
fn replay_against_model(cap: usize) -> ([u32; 3], u64) {
    let rec = book_ladder_events::load();
    let mut book = Ladder::with_capacity(cap);
    let (mut model_bids, mut model_asks) = (ModelSide::new(true, cap), ModelSide::new(false, cap));
    let s = &rec.snapshot;
    let dropped = book.set_snapshot(s.last_update_id, &s.bids, &s.asks).unwrap();
    assert_eq!(dropped, model_bids.snapshot(&s.bids) + model_asks.snapshot(&s.asks));
    let (mut paths, mut total_dropped) = ([0; 3], u64::from(dropped));
    for e in &rec.events {
        let applied = book.apply(e.final_update_id, &e.bids, &e.asks);
        assert_eq!(applied.dropped, model_bids.apply(&e.bids) + model_asks.apply(&e.asks), "u {}", e.final_update_id);
        assert_eq!(book.bids.levels(), model_bids.best_first(), "bids after u {}", e.final_update_id);
        assert_eq!(book.asks.levels(), model_asks.best_first(), "asks after u {}", e.final_update_id);
        let sides = u32::from(!e.bids.is_empty()) + u32::from(!e.asks.is_empty());
        paths[0] += applied.sweeps;
        paths[1] += applied.merges;
        paths[2] += sides - applied.sweeps - applied.merges;
        total_dropped += u64::from(applied.dropped);
    }
    (paths, total_dropped)
}

#[test]
fn the_real_recordings_build_the_model_book_at_full_depth() {
    let ([swept, _, _], dropped) = replay_against_model(5000);
    assert!(swept > 10_000, "sorted events that cannot fill the side are swept: {swept}");
    assert_eq!(dropped, 0, "5,000 levels hold the whole recorded book");
}

#[test]
fn the_real_recordings_build_the_model_book_when_the_capacity_drops_levels() {
    let ([swept, merged, each], dropped) = replay_against_model(200);
    assert!(swept > 0 && merged > 0 && each > 0, "every path ran: {swept} swept, {merged} merged, {each} one by one");
    assert!(dropped > 1000, "a 200-level book of a 1,000-level snapshot drops levels: {dropped}");
}
