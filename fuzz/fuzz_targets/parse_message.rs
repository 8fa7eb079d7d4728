//! Feeds arbitrary bytes to the depth scanner. It must never panic, and what
//! it accepts must be a book the rest of the pipeline may trust: each side at
//! most 20 levels, bids strictly descending, asks strictly ascending, a pair
//! that exists, and the same answer on a second parse (no hidden state).
#![no_main]

use std::sync::OnceLock;

use imbalance_monitor::book::{Book, BookEvent, MAX_LEVELS};
use imbalance_monitor::venue::Message;
use imbalance_monitor::venue::binance_spot::{Depth, StreamKind, StreamTable, UpdateSpeed, parse_message};
use libfuzzer_sys::fuzz_target;

fn streams() -> &'static StreamTable {
    static T: OnceLock<StreamTable> = OnceLock::new();
    T.get_or_init(|| {
        let pairs = ["BTCUSDT".to_string(), "ETHUSDT".to_string(), "FLMUSDT".to_string(), "BNBBTC".to_string()];
        StreamTable::new(&pairs, StreamKind { depth: Depth::D10, speed: UpdateSpeed::Ms100 })
    })
}

fuzz_target!(|data: &[u8]| {
    let streams = streams();
    let mut book = Book::default();
    let first = parse_message(data, streams, &mut book);
    if let Ok(Message::Book(pair, BookEvent::Snapshot)) = first {
        assert!(pair.index() < streams.len(), "pair {pair:?} out of range");
        let (bids, asks) = (book.bids.levels(), book.asks.levels());
        assert!(bids.len() <= MAX_LEVELS && asks.len() <= MAX_LEVELS);
        assert!(bids.windows(2).all(|w| w[1].price < w[0].price), "bids not strictly descending: {bids:?}");
        assert!(asks.windows(2).all(|w| w[1].price > w[0].price), "asks not strictly ascending: {asks:?}");
    }
    // Deterministic: a dirty scratch book must not change the answer.
    let mut dirty = book;
    let second = parse_message(data, streams, &mut dirty);
    assert_eq!(first, second);
    if let Ok(Message::Book(_, BookEvent::Snapshot)) = first {
        assert_eq!(book.bids.levels(), dirty.bids.levels());
        assert_eq!(book.asks.levels(), dirty.asks.levels());
        assert_eq!(book.last_update_id, dirty.last_update_id);
    }
});
