//! The book stage: a pair's top-of-book levels in fixed-size arrays, the
//! venue-neutral events decoders emit, and the [`stage`] that applies them.
//!
//! A side can only be built level by level through [`BookSide::push`], which
//! enforces strict price order and the capacity, so a `Book` that exists is
//! sorted and bounded by construction; no later stage re-checks it. Metrics
//! read a side as a slice of levels ([`BookSide::levels`]), so a deeper book
//! kind serves them unchanged.

pub mod ladder;
pub mod stage;

use std::marker::PhantomData;

use crate::units::{Price, Qty};

/// How a decoded message changes a pair's book; the [`stage`] applies it.
/// Diff-depth updates and best-bid/ask overlays are the next variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BookEvent {
    /// A partial-depth snapshot: replaces both sides.
    Snapshot,
}

/// Largest partial-depth stream Binance offers (`@depth20`); every side has
/// room for this many levels whatever the configured depth.
pub const MAX_LEVELS: usize = 20;

/// One price level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Level {
    pub price: Price,
    pub qty: Qty,
}

/// Which way a side is ordered: best level first.
pub trait SideKind: Copy {
    /// True when `next` may follow `prev` on this side (strictly worse price).
    fn follows(prev: Price, next: Price) -> bool;
}

/// Bids: best (highest) price first, strictly descending.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bids;
/// Asks: best (lowest) price first, strictly ascending.
#[derive(Clone, Copy, Debug, Default)]
pub struct Asks;

impl SideKind for Bids {
    #[inline(always)]
    fn follows(prev: Price, next: Price) -> bool {
        next < prev
    }
}

impl SideKind for Asks {
    #[inline(always)]
    fn follows(prev: Price, next: Price) -> bool {
        next > prev
    }
}

/// Why a level could not be appended to a side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushError {
    /// The side already holds [`MAX_LEVELS`] levels.
    Full,
    /// The price does not strictly follow the previous level's.
    OutOfOrder,
}

/// One side of a book: up to [`MAX_LEVELS`] levels, best first, strictly ordered.
#[derive(Clone, Copy, Debug)]
pub struct BookSide<S: SideKind> {
    levels: [Level; MAX_LEVELS],
    len: u8,
    kind: PhantomData<S>,
}

impl<S: SideKind> Default for BookSide<S> {
    fn default() -> Self {
        Self { levels: [Level::default(); MAX_LEVELS], len: 0, kind: PhantomData }
    }
}

impl<S: SideKind> BookSide<S> {
    /// Empties the side, keeping its storage.
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends the next-worse level.
    #[inline]
    pub fn push(&mut self, level: Level) -> Result<(), PushError> {
        let len = usize::from(self.len);
        if len == MAX_LEVELS {
            return Err(PushError::Full);
        }
        if let Some(prev) = len.checked_sub(1).and_then(|i| self.levels.get(i))
            && !S::follows(prev.price, level.price)
        {
            return Err(PushError::OutOfOrder);
        }
        if let Some(slot) = self.levels.get_mut(len) {
            *slot = level;
            self.len += 1;
        }
        Ok(())
    }

    /// Replaces the side with `levels`, best first, under the rules of
    /// [`BookSide::push`] (strictly worse prices, at most [`MAX_LEVELS`]),
    /// checked in one pass: for decoders that hold a whole side at once (the
    /// SBE depth snapshot), where pushing level by level costs more than the
    /// decoding. On an error the side is left as it was.
    #[inline]
    pub fn set_levels(&mut self, levels: &[Level]) -> Result<(), PushError> {
        let slots = self.levels.get_mut(..levels.len()).ok_or(PushError::Full)?;
        if !levels.iter().zip(levels.iter().skip(1)).all(|(prev, next)| S::follows(prev.price, next.price)) {
            return Err(PushError::OutOfOrder);
        }
        slots.copy_from_slice(levels);
        self.len = levels.len() as u8;
        Ok(())
    }

    /// The levels, best first.
    #[inline]
    pub fn levels(&self) -> &[Level] {
        self.levels.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The best level, if the side has any.
    #[inline]
    pub fn best(&self) -> Option<Level> {
        self.levels().first().copied()
    }

    /// Number of levels held.
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True when the side holds no level.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A partial-depth snapshot of one pair, as the last frame described it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Book {
    pub bids: BookSide<Bids>,
    pub asks: BookSide<Asks>,
    /// Binance's `lastUpdateId` of the snapshot.
    pub last_update_id: u64,
    /// The exchange's event time `E` (Unix ms), when the stream carries one
    /// (partial-depth streams do not; diff depth and futures streams do).
    pub event_time_ms: Option<u64>,
}

/// Whether a book can be evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookShape {
    /// At least one side has levels and the best bid is below the best ask.
    Valid,
    /// Both sides are empty: there is no metric to compute.
    Empty,
    /// Best bid ≥ best ask: a snapshot no exchange should send; not evaluated.
    Crossed,
}

impl Book {
    /// Classifies the book; only a `Valid` book reaches metrics and triggers.
    #[inline]
    pub fn shape(&self) -> BookShape {
        match (self.bids.best(), self.asks.best()) {
            (None, None) => BookShape::Empty,
            (Some(b), Some(a)) if b.price >= a.price => BookShape::Crossed,
            _ => BookShape::Valid,
        }
    }

    /// Best bid and best ask prices, when present.
    #[inline]
    pub fn best_prices(&self) -> (Option<Price>, Option<Price>) {
        (self.bids.best().map(|l| l.price), self.asks.best().map(|l| l.price))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lvl(p: u64, q: u64) -> Level {
        Level { price: Price(p), qty: Qty(q) }
    }

    #[test]
    fn bids_must_strictly_descend_and_asks_strictly_ascend() {
        let mut bids = BookSide::<Bids>::default();
        bids.push(lvl(10, 1)).unwrap();
        assert_eq!(bids.push(lvl(10, 1)), Err(PushError::OutOfOrder));
        assert_eq!(bids.push(lvl(11, 1)), Err(PushError::OutOfOrder));
        bids.push(lvl(9, 1)).unwrap();
        let mut asks = BookSide::<Asks>::default();
        asks.push(lvl(10, 1)).unwrap();
        assert_eq!(asks.push(lvl(9, 1)), Err(PushError::OutOfOrder));
        asks.push(lvl(11, 1)).unwrap();
        assert_eq!(bids.levels(), &[lvl(10, 1), lvl(9, 1)]);
    }

    #[test]
    fn set_levels_follows_the_rules_of_push_and_leaves_the_side_alone_on_error() {
        let mut bids = BookSide::<Bids>::default();
        bids.set_levels(&[lvl(10, 1), lvl(9, 2)]).unwrap();
        assert_eq!(bids.set_levels(&[lvl(10, 1), lvl(10, 1)]), Err(PushError::OutOfOrder));
        assert_eq!(bids.set_levels(&[lvl(1, 1); MAX_LEVELS + 1]), Err(PushError::Full));
        assert_eq!(bids.levels(), &[lvl(10, 1), lvl(9, 2)]);
        let twenty: Vec<_> = (1..=MAX_LEVELS as u64).rev().map(|p| lvl(p, 1)).collect();
        bids.set_levels(&twenty).unwrap();
        assert_eq!(bids.len(), MAX_LEVELS);
        bids.set_levels(&[]).unwrap();
        assert!(bids.is_empty());
    }

    #[test]
    fn a_side_holds_at_most_twenty_levels() {
        let mut asks = BookSide::<Asks>::default();
        for p in 1..=MAX_LEVELS as u64 {
            asks.push(lvl(p, 1)).unwrap();
        }
        assert_eq!(asks.push(lvl(100, 1)), Err(PushError::Full));
        assert_eq!(asks.len(), MAX_LEVELS);
    }

    #[test]
    fn crossed_and_empty_books_are_recognised() {
        let mut book = Book::default();
        assert_eq!(book.shape(), BookShape::Empty);
        book.bids.push(lvl(10, 1)).unwrap();
        assert_eq!(book.shape(), BookShape::Valid);
        book.asks.push(lvl(10, 1)).unwrap();
        assert_eq!(book.shape(), BookShape::Crossed);
        book.asks.clear();
        book.asks.push(lvl(11, 1)).unwrap();
        assert_eq!(book.shape(), BookShape::Valid);
    }
}
