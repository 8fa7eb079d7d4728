//! Binance Spot: stream naming, the combined-stream URL, the partial-depth
//! decoder with its fast path, connection rules and trade links.

pub mod collector;
mod depth;
mod diff;
mod links;
pub mod snapshot;
mod streams;

use std::time::Duration;

use crate::book::Book;
use crate::book::event::EventScratch;
use crate::feed::ConnectionRules;
use crate::pairs::PairTable;
use crate::reject::RejectKind;

use super::{Message, StreamGroup, Venue};

pub use depth::parse_message;
pub use diff::parse_diff_message;
pub use links::{split_symbol, trade_link};
pub use streams::{Depth, DiffKind, StreamKind, StreamRole, StreamTable, UpdateSpeed, combined_stream_url};

/// Binance Spot is its stream table: the pairs and the one stream kind they
/// are read from.
impl Venue for StreamTable {
    #[inline]
    fn decode(&self, bytes: &[u8], book: &mut Book, events: &mut EventScratch) -> Result<Message, RejectKind> {
        if self.diff_kind().is_some() {
            return parse_diff_message(bytes, self, events);
        }
        parse_message(bytes, self, book)
    }

    fn pair_table(&self) -> &PairTable {
        StreamTable::pair_table(self)
    }

    fn stream_groups(&self, ws_url: &str, max_streams_per_connection: usize) -> Vec<StreamGroup> {
        let all: Vec<_> = self.pairs().collect();
        let per_pair = self.streams_per_pair();
        all.chunks((max_streams_per_connection / per_pair).max(1))
            .map(|chunk| StreamGroup { url: combined_stream_url(ws_url, self, chunk), pairs: chunk.to_vec() })
            .collect()
    }

    /// Binance's per-IP limit: 300 connection attempts per 5 minutes
    /// (exceeding it gets the IP banned).
    fn connection_rules(&self) -> ConnectionRules {
        ConnectionRules {
            max_attempts: 300,
            attempt_window: Duration::from_secs(300),
            limit_name: "Binance's per-IP limit",
        }
    }

    fn name(&self) -> &'static str {
        "Binance"
    }

    fn split_symbol<'s>(&self, symbol: &'s str) -> Option<(&'s str, &'s str)> {
        split_symbol(symbol)
    }

    fn trade_link(&self, symbol: &str) -> (String, String) {
        trade_link(symbol)
    }
}
