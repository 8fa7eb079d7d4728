//! Feeds arbitrary bytes to the SBE decoder. It must never panic, and what it
//! accepts must be something the rest of the pipeline may trust: a snapshot
//! book with at most 20 levels a side in strict order, a pair that exists,
//! views that yield exactly the entries they announce, and the same answer on
//! a second decode into a dirty book (no hidden state).
#![no_main]

use std::sync::OnceLock;

use imbalance_monitor::book::{Book, MAX_LEVELS};
use imbalance_monitor::sbe::{SbeEvent, SymbolTable, decode};
use libfuzzer_sys::fuzz_target;

fn symbols() -> &'static SymbolTable {
    static T: OnceLock<SymbolTable> = OnceLock::new();
    T.get_or_init(|| SymbolTable::new(&["BTCUSDT".into(), "ETHUSDT".into(), "FLMUSDT".into(), "BNBBTC".into()]))
}

fuzz_target!(|data: &[u8]| {
    let symbols = symbols();
    let mut book = Book::default();
    let first = decode(data, symbols, &mut book);
    match first {
        Ok(SbeEvent::DepthSnapshot(s)) => {
            assert!(s.pair.index() < 4, "pair {:?} out of range", s.pair);
            let (bids, asks) = (book.bids.levels(), book.asks.levels());
            assert!(bids.len() <= MAX_LEVELS && asks.len() <= MAX_LEVELS);
            assert!(bids.windows(2).all(|w| w[1].price < w[0].price), "bids not strictly descending: {bids:?}");
            assert!(asks.windows(2).all(|w| w[1].price > w[0].price), "asks not strictly ascending: {asks:?}");
        }
        Ok(SbeEvent::DepthDiff(d)) => {
            assert!(d.pair.index() < 4);
            assert_eq!(d.bids().len(), d.bids().count());
            assert_eq!(d.asks().len(), d.asks().count());
        }
        Ok(SbeEvent::Trades(t)) => {
            assert!(t.pair.index() < 4);
            assert_eq!(t.trades().len(), t.trades().count());
        }
        Ok(SbeEvent::BestBidAsk(t)) => assert!(t.pair.index() < 4),
        Err(_) => {}
    }
    let mut dirty = book;
    let second = decode(data, symbols, &mut dirty);
    assert_eq!(first.is_ok(), second.is_ok());
    if let (Err(a), Err(b)) = (first, second) {
        assert_eq!(a, b);
    }
    if let Ok(SbeEvent::DepthSnapshot(_)) = first {
        assert_eq!(book.bids.levels(), dirty.bids.levels());
        assert_eq!(book.asks.levels(), dirty.asks.levels());
        assert_eq!(book.last_update_id, dirty.last_update_id);
    }
});
