//! `BestBidAskStreamEvent` (template 10001, `<symbol>@bestBidAsk`): the touch,
//! in real time with auto-culling (a missing event is normal, never a gap).

use crate::book::Level;
use crate::pairs::PairId;
use crate::units::{Price, Qty};

use super::SbeError;
use super::decimal::Scale;
use super::header::{Framed, short};
use super::symbol::{SymbolTable, read_pair};
use super::wire::non_negative;

/// The best bid and ask at one book update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BestBidAsk {
    pub pair: PairId,
    /// `eventTime`, µs since the Unix epoch (JSON bookTicker has none).
    pub event_time_us: u64,
    /// `bookUpdateId`: orders touches against diffs of the same book.
    pub book_update_id: u64,
    pub bid: Level,
    pub ask: Level,
}

#[inline(always)]
pub(crate) fn decode(f: Framed<'_>, symbols: &SymbolTable) -> Result<BestBidAsk, SbeError> {
    let mut root = f.root;
    let event_time_us = non_negative(short(root.i64())?)?;
    let book_update_id = non_negative(short(root.i64())?)?;
    let price = Scale::for_exponent(short(root.i8())?);
    let qty = Scale::for_exponent(short(root.i8())?);
    let [bid_price, bid_qty, ask_price, ask_qty] =
        [short(root.i64())?, short(root.i64())?, short(root.i64())?, short(root.i64())?];
    let mut body = f.body;
    let pair = read_pair(&mut body, symbols)?;
    f.check_end(body)?;
    Ok(BestBidAsk {
        pair,
        event_time_us,
        book_update_id,
        bid: Level { price: Price(price.apply(bid_price)?), qty: Qty(qty.apply(bid_qty)?) },
        ask: Level { price: Price(price.apply(ask_price)?), qty: Qty(qty.apply(ask_qty)?) },
    })
}
