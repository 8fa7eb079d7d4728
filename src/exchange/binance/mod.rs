//! Binance Spot: stream naming, the combined-stream URL and the partial-depth
//! frame scanner.

mod depth;
mod streams;

pub use depth::{Message, ParseError, parse_message};
pub use streams::{Depth, PairId, StreamKind, StreamTable, UpdateSpeed, combined_stream_url};
