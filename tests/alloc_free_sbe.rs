//! Proof that SBE decoding allocates nothing: after warm-up, `sbe::decode`
//! runs over every frame of the two real depth20 recordings encoded as SBE,
//! plus hand-made diff, best bid/ask and trades frames (their views iterated
//! to the end) and hostile frames of every error kind, with zero calls into
//! the global allocator.
//!
//! The allocator counts only on the thread that sets `MEASURING`; the test
//! harness allocates on its own threads. This file holds a single `#[test]`
//! so no other test runs concurrently on the measured thread.

mod sbe_common;

mod counting_alloc;

use std::sync::atomic::Ordering::Relaxed;

use counting_alloc::{ALLOCS, DEALLOCS, MEASURING, REALLOCS};

use imbalance_monitor::book::Book;
use imbalance_monitor::sbe::{SbeError, SbeEvent, SymbolTable, decode};
use sbe_common::*;

/// What the measured loop saw, in fixed storage.
#[derive(Default)]
struct Tally {
    snapshots: u64,
    levels: u64,
    diffs: u64,
    touches: u64,
    trades: u64,
    errors: [u64; SbeError::COUNT],
    checksum: u64,
}

fn run(frames: &[Vec<u8>], symbols: &SymbolTable, book: &mut Book, tally: &mut Tally) {
    for frame in frames {
        match decode(frame, symbols, book) {
            Ok(SbeEvent::DepthSnapshot(s)) => {
                tally.snapshots += 1;
                tally.levels += (book.bids.len() + book.asks.len()) as u64;
                tally.checksum ^= s.event_time_us ^ book.last_update_id;
            }
            Ok(SbeEvent::DepthDiff(d)) => {
                tally.diffs += 1;
                for l in d.bids().chain(d.asks()) {
                    tally.checksum = tally.checksum.wrapping_add(l.price.0 ^ l.qty.0);
                }
            }
            Ok(SbeEvent::BestBidAsk(t)) => {
                tally.touches += 1;
                tally.checksum = tally.checksum.wrapping_add(t.bid.price.0 ^ t.ask.qty.0);
            }
            Ok(SbeEvent::Trades(t)) => {
                for trade in t.trades() {
                    tally.trades += 1;
                    tally.checksum = tally.checksum.wrapping_add(trade.id);
                }
            }
            Err(e) => tally.errors[e.index()] += 1,
        }
    }
}

#[test]
fn sbe_decoding_allocates_nothing_per_frame_after_warm_up() {
    let symbols = SymbolTable::new(&["BTCUSDT".into(), "ETHUSDT".into()]);
    // Everything in memory first: reading fixtures allocates.
    let mut frames: Vec<Vec<u8>> = RECORDINGS.iter().flat_map(|r| sbe_frames(r)).collect();
    let real = frames.len() as u64;
    frames.extend([diff().bytes(), best_bid_ask().bytes(), trades().bytes()]);
    let mut wrong_schema = snapshot(&BIDS, &ASKS);
    wrong_schema.schema = 9;
    let mut short_block = best_bid_ask();
    short_block.block_length = Some(10);
    let whole = snapshot(&BIDS, &ASKS).bytes();
    frames.extend([
        wrong_schema.bytes(),
        short_block.bytes(),
        snapshot(&[BIDS[1], BIDS[0]], &ASKS).bytes(),
        snapshot(&[(-1, 1)], &ASKS).bytes(),
        whole[..whole.len() - 3].to_vec(),
        whole[..40].to_vec(),
    ]);

    let symbols = &symbols;
    let mut book = Book::default();
    let (warm_up, measured) = frames.split_at(16);
    run(warm_up, symbols, &mut book, &mut Tally::default());
    let mut tally = Tally::default();

    MEASURING.with(|m| m.set(true));
    run(measured, symbols, &mut book, &mut tally);
    MEASURING.with(|m| m.set(false));

    let counts = (ALLOCS.load(Relaxed), REALLOCS.load(Relaxed), DEALLOCS.load(Relaxed));
    assert_eq!(counts, (0, 0, 0), "(allocs, reallocs, deallocs) during {} frames", measured.len());

    // The run did real work on every path, so the zero above means something.
    assert_eq!(tally.snapshots, real - 16);
    assert_eq!(tally.levels, tally.snapshots * 40);
    assert_eq!((tally.diffs, tally.touches, tally.trades), (1, 1, 2));
    assert_eq!(tally.errors.iter().sum::<u64>(), 6, "{:?}", tally.errors);
    for kind in [SbeError::WrongSchema, SbeError::ShortBlock, SbeError::BidsNotDescending, SbeError::Negative] {
        assert_eq!(tally.errors[kind.index()], 1, "{}", kind.name());
    }
    assert_ne!(tally.checksum, 0);
}
