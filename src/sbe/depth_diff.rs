//! `DepthDiffStreamEvent` (template 10003, `<symbol>@depth`, every 20 ms):
//! levels set (quantity > 0) or removed (quantity 0) with the update-id
//! range, as a zero-copy view for the book stage to apply in order.

use crate::pairs::PairId;

use super::SbeError;
use super::decimal::Scale;
use super::group::{Dimension, Group};
use super::header::{Framed, short};
use super::levels::{LEVEL_LEN, Levels, Scales};
use super::symbol::{SymbolTable, read_pair};
use super::wire::non_negative;

/// One diff event; its sides borrow the frame.
#[derive(Clone, Copy, Debug)]
pub struct DepthDiff<'a> {
    pub pair: PairId,
    /// `eventTime`, µs since the Unix epoch.
    pub event_time_us: u64,
    /// `firstBookUpdateId` (JSON `U`).
    pub first_update_id: u64,
    /// `lastBookUpdateId` (JSON `u`).
    pub last_update_id: u64,
    bids: Levels<'a>,
    asks: Levels<'a>,
}

impl<'a> DepthDiff<'a> {
    /// Changed bid levels, in the order Binance sent them.
    pub fn bids(&self) -> Levels<'a> {
        self.bids
    }

    /// Changed ask levels, in the order Binance sent them.
    pub fn asks(&self) -> Levels<'a> {
        self.asks
    }
}

#[inline(always)]
pub(crate) fn decode<'a>(f: Framed<'a>, symbols: &SymbolTable) -> Result<DepthDiff<'a>, SbeError> {
    let mut root = f.root;
    let event_time_us = non_negative(short(root.i64())?)?;
    let first_update_id = non_negative(short(root.i64())?)?;
    let last_update_id = non_negative(short(root.i64())?)?;
    let scales = Scales { price: Scale::for_exponent(short(root.i8())?), qty: Scale::for_exponent(short(root.i8())?) };
    let mut body = f.body;
    let bids = Group::<LEVEL_LEN>::read(&mut body, Dimension::Size16)?;
    let asks = Group::<LEVEL_LEN>::read(&mut body, Dimension::Size16)?;
    let pair = read_pair(&mut body, symbols)?;
    f.check_end(body)?;
    Ok(DepthDiff {
        pair,
        event_time_us,
        first_update_id,
        last_update_id,
        bids: Levels::validated(bids, scales)?,
        asks: Levels::validated(asks, scales)?,
    })
}
