//! The SBE decoder: Binance's binary spot market-data frames
//! (`stream-sbe.binance.com`, schema `spot_stream` id 1 version 0,
//! `stream_1_0.xml` in binance/binance-spot-api-docs) into the same book
//! types the JSON parser produces.
//!
//! Why a second decoder: the SBE streams are the fastest view Binance offers
//! (diffs every 20 ms, depth20 every 50 ms, best bid/ask in real time, µs event
//! times), and reading fixed-offset little-endian integers costs a fraction of
//! scanning JSON decimals.
//!
//! What must hold, for every input: no panic, no allocation, no `f64`; every
//! length on the wire (block lengths, group counts × entry lengths, the
//! symbol's length) checked against the bytes that remain, in checked
//! arithmetic, before anything is read; every price and quantity converted
//! exactly to scale 1e8 or the frame refused with a typed [`SbeError`]. A
//! frame is applied whole or not at all.
//!
//! Stages, one file each: `header` (message header, root block) → `group`
//! (repeating groups) → `decimal` (mantissa × 10^exponent to 1e8) → `symbol`
//! (the trailing `varString8` to a [`PairId`](crate::pairs::PairId))
//! → one file per message.
//!
//! Not wired into the feed yet: the connection, config (`binance.encoding`)
//! and simulator parts of issue #17 wait on the venue seams refactor.

mod best_bid_ask;
mod decimal;
mod depth_diff;
mod depth_snapshot;
mod error;
mod group;
mod header;
mod levels;
mod symbol;
mod trades;
mod wire;

pub use best_bid_ask::BestBidAsk;
pub use depth_diff::DepthDiff;
pub use depth_snapshot::DepthSnapshot;
pub use error::SbeError;
pub use header::{SCHEMA_ID, SCHEMA_VERSION, Template};
pub use levels::Levels;
pub use symbol::SymbolTable;
pub use trades::{Trade, TradeIter, Trades};

use crate::book::Book;

/// What a well-formed frame turned out to be.
#[derive(Clone, Copy, Debug)]
pub enum SbeEvent<'a> {
    /// A depth20 snapshot, now in the caller's book.
    DepthSnapshot(DepthSnapshot),
    /// A diff-depth event, borrowing the frame.
    DepthDiff(DepthDiff<'a>),
    /// A best bid/ask update.
    BestBidAsk(BestBidAsk),
    /// A trades event, borrowing the frame.
    Trades(Trades<'a>),
}

/// Decodes one binary WebSocket message. On `Ok(SbeEvent::DepthSnapshot(_))`
/// `book` holds the snapshot; on any other result its content is unspecified
/// (it is scratch space, as for [`crate::venue::binance_spot::parse_message`]).
#[inline]
pub fn decode<'a>(frame: &'a [u8], symbols: &SymbolTable, book: &mut Book) -> Result<SbeEvent<'a>, SbeError> {
    let framed = header::split(frame)?;
    match framed.template {
        Template::DepthSnapshot => depth_snapshot::decode(framed, symbols, book).map(SbeEvent::DepthSnapshot),
        Template::DepthDiff => depth_diff::decode(framed, symbols).map(SbeEvent::DepthDiff),
        Template::BestBidAsk => best_bid_ask::decode(framed, symbols).map(SbeEvent::BestBidAsk),
        Template::Trades => trades::decode(framed, symbols).map(SbeEvent::Trades),
    }
}
