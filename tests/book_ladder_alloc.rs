//! Proof that the full-depth book allocates nothing per event: after
//! `Ladder::with_capacity` and the snapshot, every diff event of the real
//! BTCUSDT recordings (among them one changing 1,076 levels at once) is applied with zero calls into the global allocator, at
//! a capacity holding the whole book and at one that drops levels.
//!
//! The allocator counts only on the thread that sets `MEASURING`. This file
//! holds a single `#[test]` so no other test runs on the measured thread.

mod book_ladder_events;
mod counting_alloc;

use std::sync::atomic::Ordering::Relaxed;

use counting_alloc::{ALLOCS, DEALLOCS, MEASURING, REALLOCS};

use imbalance_monitor::book::ladder::Ladder;

#[test]
fn applying_every_recorded_event_allocates_nothing() {
    let rec = book_ladder_events::load();
    let s = &rec.snapshot;
    for cap in [5000, 200] {
        let mut book = Ladder::with_capacity(cap);
        book.set_snapshot(s.last_update_id, &s.bids, &s.asks).expect("the snapshot is in order");
        let (mut batched, mut dropped, mut touch) = (0u32, 0u64, 0u64);
        MEASURING.with(|m| m.set(true));
        for e in &rec.events {
            let applied = book.apply(e.final_update_id, &e.bids, &e.asks);
            batched += applied.sweeps + applied.merges;
            dropped += u64::from(applied.dropped);
            touch = touch.wrapping_add(book.bids.best().map_or(0, |l| l.price.0));
        }
        MEASURING.with(|m| m.set(false));
        let counts = (ALLOCS.load(Relaxed), REALLOCS.load(Relaxed), DEALLOCS.load(Relaxed));
        assert_eq!(counts, (0, 0, 0), "allocs, reallocs, deallocs over {} events at capacity {cap}", rec.events.len());
        assert!(batched > 0, "the sweep or merge path ran at capacity {cap}");
        assert!(touch > 0);
        assert_eq!(dropped > 0, cap == 200, "levels dropped at capacity {cap}: {dropped}");
    }
}
