//! `DepthSnapshotStreamEvent` (template 10002, `<symbol>@depth20`): the top
//! 20 levels, decoded into the same [`Book`] the JSON partial-depth parser
//! fills, so every later stage reads either encoding alike.

use crate::book::Book;
use crate::pairs::PairId;

use super::SbeError;
use super::decimal::Scale;
use super::group::{Dimension, Group};
use super::header::{Framed, short};
use super::levels::{LEVEL_LEN, Scales, fill_side};
use super::symbol::{SymbolTable, read_pair};
use super::wire::non_negative;

/// What a snapshot frame said besides its levels (which are in the book).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DepthSnapshot {
    pub pair: PairId,
    /// Binance's `eventTime`, µs since the Unix epoch (the JSON depth20
    /// stream carries no event time at all).
    pub event_time_us: u64,
}

/// Decodes the frame into `book`. Structure (groups, symbol, end) is checked
/// before a level is written; on an error `book` is scratch, as with JSON.
#[inline(always)]
pub(crate) fn decode(f: Framed<'_>, symbols: &SymbolTable, book: &mut Book) -> Result<DepthSnapshot, SbeError> {
    let mut root = f.root;
    let event_time_us = non_negative(short(root.i64())?)?;
    let book_update_id = non_negative(short(root.i64())?)?;
    let scales = Scales { price: Scale::for_exponent(short(root.i8())?), qty: Scale::for_exponent(short(root.i8())?) };
    let mut body = f.body;
    let bids = Group::<LEVEL_LEN>::read(&mut body, Dimension::Size16)?;
    let asks = Group::<LEVEL_LEN>::read(&mut body, Dimension::Size16)?;
    let pair = read_pair(&mut body, symbols)?;
    f.check_end(body)?;
    fill_side(&mut book.bids, bids, scales, SbeError::BidsNotDescending)?;
    fill_side(&mut book.asks, asks, scales, SbeError::AsksNotAscending)?;
    book.last_update_id = book_update_id;
    book.event_time_ms = Some(event_time_us / 1000);
    Ok(DepthSnapshot { pair, event_time_us })
}
