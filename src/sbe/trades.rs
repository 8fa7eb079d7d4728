//! `TradesStreamEvent` (template 10000, `<symbol>@trade`): one or more trades
//! of one match, as a zero-copy view. The imbalance pipeline does not use
//! trades yet; they are decoded so a trade-based metric is a consumer, not a
//! second decoder.

use crate::pairs::PairId;
use crate::units::{Price, Qty};

use super::SbeError;
use super::decimal::Scale;
use super::group::{Dimension, Group};
use super::header::{Framed, short};
use super::symbol::{SymbolTable, read_pair};
use super::wire::{Reader, non_negative};

/// Known bytes of a trade entry: `id`, `price`, `qty` (`int64` each) and
/// `isBuyerMaker` (`uint8`); `isBestMatch` is a schema constant, not on the wire.
const TRADE_LEN: usize = 25;

/// One trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trade {
    pub id: u64,
    pub price: Price,
    pub qty: Qty,
    /// True when the buyer was the resting order (a sell hit the bid).
    pub buyer_is_maker: bool,
}

/// One trades event; its trades borrow the frame.
#[derive(Clone, Copy, Debug)]
pub struct Trades<'a> {
    pub pair: PairId,
    /// `eventTime`, µs since the Unix epoch.
    pub event_time_us: u64,
    /// `transactTime`, µs since the Unix epoch: when the match happened.
    pub transact_time_us: u64,
    trades: TradeIter<'a>,
}

impl<'a> Trades<'a> {
    /// The trades, in the order Binance sent them.
    pub fn trades(&self) -> TradeIter<'a> {
        self.trades
    }
}

/// Iterates a trades event. Every entry was converted once when the frame was
/// decoded, so each one it yields is exact and iteration never fails midway.
#[derive(Clone, Copy, Debug)]
pub struct TradeIter<'a> {
    group: Group<'a, TRADE_LEN>,
    price: Scale,
    qty: Scale,
}

impl TradeIter<'_> {
    #[inline(always)]
    fn trade(&self, e: &[u8; TRADE_LEN]) -> Result<Trade, SbeError> {
        let mut r = Reader::new(e);
        let (Some(id), Some(price), Some(qty), Some(maker)) = (r.i64(), r.i64(), r.i64(), r.u8()) else {
            return Err(SbeError::ShortBlock);
        };
        let buyer_is_maker = match maker {
            0 => false,
            1 => true,
            _ => return Err(SbeError::BadEnum),
        };
        Ok(Trade {
            id: non_negative(id)?,
            price: Price(self.price.apply(price)?),
            qty: Qty(self.qty.apply(qty)?),
            buyer_is_maker,
        })
    }
}

impl Iterator for TradeIter<'_> {
    type Item = Trade;

    #[inline]
    fn next(&mut self) -> Option<Trade> {
        let e = self.group.next_entry()?;
        self.trade(e).ok()
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.group.len(), Some(self.group.len()))
    }
}

impl ExactSizeIterator for TradeIter<'_> {}

#[inline(always)]
pub(crate) fn decode<'a>(f: Framed<'a>, symbols: &SymbolTable) -> Result<Trades<'a>, SbeError> {
    let mut root = f.root;
    let event_time_us = non_negative(short(root.i64())?)?;
    let transact_time_us = non_negative(short(root.i64())?)?;
    let price = Scale::for_exponent(short(root.i8())?);
    let qty = Scale::for_exponent(short(root.i8())?);
    let mut body = f.body;
    let group = Group::<TRADE_LEN>::read(&mut body, Dimension::Size32)?;
    let pair = read_pair(&mut body, symbols)?;
    f.check_end(body)?;
    let trades = TradeIter { group, price, qty };
    let mut check = trades;
    while let Some(e) = check.group.next_entry() {
        check.trade(e)?;
    }
    Ok(Trades { pair, event_time_us, transact_time_us, trades })
}
