//! The book stage: every pair's book, the pending book a decoder writes the
//! next message into, and the sequencing that decides whether an event is
//! news.
//!
//! This stage holds partial-depth books: a [`super::BookEvent::Snapshot`]
//! replaces both sides; sequencing is the `lastUpdateId` dedupe while two
//! connections carry a pair (make-before-break). Diff and touch events, and
//! the update-id chains and resync state they need, are the local books'
//! ([`super::local`]).
//!
//! Storage is one slot per pair plus one pending slot, allocated once;
//! applying an event swaps the pending slot with the pair's (an index swap,
//! no copy), so the pair's previous book stays readable until the next
//! message is decoded.

use super::Book;
use crate::pairs::PairId;

/// Whether a decoded event changes the pair's book.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sequence {
    /// Newer than the pair's book (or no sequencing applies): apply it.
    Fresh,
    /// While two connections carry the pair, a snapshot not newer than the
    /// pair's book: the other connection delivered it already.
    Duplicate,
}

/// Whether a pair's snapshots are deduplicated by `lastUpdateId`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Overlap {
    Off,
    /// Two connections deliver the pair.
    Live,
    /// The overlap ended; nothing newer than the book has arrived since
    /// (the old connection may have been ahead: what it delivered may still
    /// be in flight on the new one).
    Ending,
}

/// Every pair's book and its sequencing state.
#[derive(Clone, Debug)]
pub struct BookStage {
    slots: Vec<Book>,
    /// Per pair, the index of its slot.
    current: Vec<usize>,
    /// The pending slot: what the decoder writes into.
    pending: usize,
    /// Pairs delivered by two connections, or whose overlap ended but whose
    /// remaining connection has not yet sent anything newer.
    overlap: Vec<Overlap>,
    /// Whether the pair has had an event applied yet.
    has_book: Vec<bool>,
}

impl BookStage {
    /// Empty books for `pairs` pairs.
    pub fn new(pairs: usize) -> Self {
        BookStage {
            slots: vec![Book::default(); pairs + 1],
            current: (0..pairs).collect(),
            pending: pairs,
            overlap: vec![Overlap::Off; pairs],
            has_book: vec![false; pairs],
        }
    }

    /// The book the next message is decoded into. Its content is whatever
    /// was there before: a decoder overwrites what its event carries.
    /// (`pending` always indexes a slot: both are set in `new`, and `apply`
    /// only swaps indices.)
    #[inline]
    pub fn pending_mut(&mut self) -> Option<&mut Book> {
        self.slots.get_mut(self.pending)
    }

    /// The decoded, not yet applied book.
    #[inline]
    pub fn pending(&self) -> Option<&Book> {
        self.slots.get(self.pending)
    }

    /// Sequencing: whether the pending snapshot for `pair` is news. A newer
    /// snapshot after an overlap ended ends the deduplication. Without an
    /// overlap (nearly always) this is one load and a compare.
    #[inline]
    pub fn sequence(&mut self, pair: PairId) -> Sequence {
        let i = pair.index();
        let overlap = self.overlap.get(i).copied().unwrap_or(Overlap::Off);
        if overlap == Overlap::Off || !self.has_book.get(i).copied().unwrap_or(false) {
            return Sequence::Fresh;
        }
        let cur = self.current.get(i).and_then(|&s| self.slots.get(s));
        let (Some(cur), Some(new)) = (cur, self.slots.get(self.pending)) else { return Sequence::Fresh };
        if new.last_update_id <= cur.last_update_id {
            return Sequence::Duplicate;
        }
        if overlap == Overlap::Ending
            && let Some(o) = self.overlap.get_mut(i)
        {
            *o = Overlap::Off;
        }
        Sequence::Fresh
    }

    /// Applies the pending snapshot to `pair`'s book; returns whether the
    /// pair had a book before (then [`BookStage::previous`] is that book).
    #[inline]
    pub fn apply(&mut self, pair: PairId) -> bool {
        if let Some(cur) = self.current.get_mut(pair.index()) {
            std::mem::swap(cur, &mut self.pending);
        }
        self.has_book.get_mut(pair.index()).map(|h| std::mem::replace(h, true)).unwrap_or(false)
    }

    /// The pair's current book (empty before its first event).
    #[inline]
    pub fn book(&self, pair: PairId) -> Option<&Book> {
        self.current.get(pair.index()).and_then(|&s| self.slots.get(s))
    }

    /// Right after [`BookStage::apply`]: the pair's book before it.
    #[inline]
    pub fn previous(&self) -> Option<&Book> {
        self.pending()
    }

    /// Marks `pairs` as delivered by two connections at once (or no longer:
    /// then deduplication goes on until a newer snapshot arrives).
    pub fn set_overlap(&mut self, pairs: &[PairId], on: bool) {
        for p in pairs {
            if let Some(o) = self.overlap.get_mut(p.index()) {
                *o = match (on, *o) {
                    (true, _) => Overlap::Live,
                    (false, Overlap::Off) => Overlap::Off,
                    (false, _) => Overlap::Ending,
                };
            }
        }
    }

    /// Number of pairs.
    pub fn pairs(&self) -> usize {
        self.current.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::Level;
    use crate::units::{Price, Qty};

    fn decode(stage: &mut BookStage, id: u64, bid: u64) {
        let b = stage.pending_mut().unwrap();
        b.bids.clear();
        b.bids.push(Level { price: Price(bid), qty: Qty(1) }).unwrap();
        b.last_update_id = id;
    }

    #[test]
    fn a_snapshot_replaces_the_book_and_the_previous_one_stays_readable() {
        let mut stage = BookStage::new(2);
        decode(&mut stage, 5, 100);
        assert!(!stage.apply(PairId(1)));
        decode(&mut stage, 6, 101);
        assert!(stage.apply(PairId(1)));
        assert_eq!(stage.book(PairId(1)).map(|b| b.last_update_id), Some(6));
        assert_eq!(stage.previous().map(|b| b.last_update_id), Some(5));
        assert_eq!(stage.book(PairId(0)).map(|b| b.bids.len()), Some(0));
    }

    #[test]
    fn while_two_connections_overlap_only_newer_snapshots_are_fresh() {
        let mut stage = BookStage::new(1);
        decode(&mut stage, 10, 100);
        assert_eq!(stage.sequence(PairId(0)), Sequence::Fresh);
        stage.apply(PairId(0));
        decode(&mut stage, 10, 100);
        assert_eq!(stage.sequence(PairId(0)), Sequence::Fresh, "no overlap: no dedupe");
        stage.set_overlap(&[PairId(0)], true);
        assert_eq!(stage.sequence(PairId(0)), Sequence::Duplicate);
        decode(&mut stage, 11, 100);
        assert_eq!(stage.sequence(PairId(0)), Sequence::Fresh);
        stage.apply(PairId(0));
        stage.set_overlap(&[PairId(0)], false);
        // Ending: still deduplicated until something newer arrives.
        decode(&mut stage, 11, 100);
        assert_eq!(stage.sequence(PairId(0)), Sequence::Duplicate);
        decode(&mut stage, 12, 100);
        assert_eq!(stage.sequence(PairId(0)), Sequence::Fresh);
        stage.apply(PairId(0));
        decode(&mut stage, 3, 100);
        assert_eq!(stage.sequence(PairId(0)), Sequence::Fresh, "overlap over: no dedupe");
    }
}
