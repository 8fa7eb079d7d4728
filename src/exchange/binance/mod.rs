//! Binance Spot: stream naming, the combined-stream URL and the partial-depth
//! frame scanner.

mod depth;
mod streams;

pub use depth::{Message, parse_message};
pub use streams::{Depth, StreamKind, StreamTable, UpdateSpeed, combined_stream_url};
