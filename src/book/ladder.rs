//! The full-depth local book a diff-depth stream maintains: per side a
//! contiguous, best-first array of up to a fixed number of levels, allocated
//! once, so metrics read a side as the same `&[Level]` slice a partial-depth
//! [`BookSide`](super::BookSide) gives them.
//!
//! Each side is a *two-ended sorted array*: the live levels sit in the middle
//! of a buffer twice the capacity (plus slack), so an insert or delete at
//! index `i` shifts only the `min(i, len − i)` levels on its shorter side —
//! changes near the touch (most of them) and at the far end are cheap. When
//! the end a shift needs is full, the live levels are moved back to the
//! middle (O(n), and then not again for at least `capacity / 2` inserts).
//!
//! A diff event's changes are applied by one of three paths, all giving
//! exactly the result of applying them one by one in the order given,
//! including which levels the capacity drops:
//! * the *sweep*, for changes in the side's order (as Binance sends them)
//!   that cannot fill the side: the changes near the touch in one in-place
//!   walk that moves each level at most twice, the deepest ones by shifting
//!   the back. On the real recordings that moves about 6× fewer levels than
//!   shifting change by change, whose cost is the *sum* of the changes' depths;
//! * the *merge*, for many sorted changes on a side they may overflow (the
//!   recordings hold an event of 1,076): side and changes merged in one pass
//!   into a second buffer of the same size, which becomes the live one;
//! * change by change otherwise: a binary search and a shift each.
//!
//! Nothing here allocates after [`LadderSide::with_capacity`], and no input
//! can make it panic: every access is a checked `get`, and every shift's
//! bounds follow from the invariants stated where it is made.

use std::marker::PhantomData;

use super::{Asks, Bids, Level, PushError, SideKind};
use crate::units::Price;

/// Free slots beyond twice the capacity, so a full side still has room to
/// shift into at both ends after a recentre.
const SLACK: usize = 2;

/// A sorted event too big to sweep (it may fill the side) with at least
/// `len / MERGE_DIVISOR` changes (and at least [`MERGE_MIN_CHANGES`]) is
/// merged in one pass instead of change by change: a merge copies the whole
/// side, a change shifts up to a quarter of it on average when changes land
/// anywhere, so the merge wins well before `k` reaches `n`. A model's
/// estimate, not tuned: only a book near its capacity comes here.
const MERGE_DIVISOR: usize = 16;

/// Below this many changes an event is applied change by change whatever the
/// side's length: the shifts of a handful of changes cost less than copying
/// even a short side.
const MERGE_MIN_CHANGES: usize = 8;

/// What applying one event's changes did, beyond the levels it left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// New levels the capacity turned away: either the new level itself
    /// (worse than every level of a full side) or the side's worst level,
    /// dropped to make room for a better one. Counted so a book too shallow
    /// for its market is visible.
    pub dropped: u32,
    /// How many sides took the in-place sweep (0 or 1 for a side, up to 2 for
    /// a [`Ladder`]); with `merges`, what tells the benchmarks and tests which
    /// paths ran.
    pub sweeps: u32,
    /// How many sides took the one-pass merge into the second buffer.
    pub merges: u32,
}

impl Applied {
    /// The sum of two results (both sides of one event).
    #[inline]
    fn and(self, other: Applied) -> Applied {
        Applied {
            dropped: self.dropped.saturating_add(other.dropped),
            sweeps: self.sweeps.saturating_add(other.sweeps),
            merges: self.merges.saturating_add(other.merges),
        }
    }
}

/// One side of a full-depth book: at most [`LadderSide::capacity`] levels,
/// best first, strictly ordered by price, every quantity non-zero.
///
/// Invariants: `buf.len() == spare.len() == 2 · cap + SLACK`, `at.len() == cap`,
/// `start + len ≤ buf.len()`, `len ≤ cap`, and `buf[start..start + len]` is
/// the side.
#[derive(Clone, Debug)]
pub struct LadderSide<S: SideKind> {
    buf: Box<[Level]>,
    /// The merge target; swapped with `buf` after a merge.
    spare: Box<[Level]>,
    /// Per change of a sweep, its index among the side's levels before the
    /// event: `cap` slots, and a sweep has at most `cap − len` changes.
    at: Box<[usize]>,
    start: usize,
    len: usize,
    cap: usize,
    kind: PhantomData<S>,
}

/// Where a change's price already has a level during a merge.
enum Found {
    /// The last level written to the output (a level an earlier change of the
    /// same event inserted).
    Written,
    /// The next old level not yet written.
    Old,
    Absent,
}

impl<S: SideKind> LadderSide<S> {
    /// An empty side for up to `cap` levels: the only allocation a side ever
    /// makes, so a hot thread builds its books before the feed starts.
    pub fn with_capacity(cap: usize) -> Self {
        let room = cap.saturating_mul(2).saturating_add(SLACK);
        LadderSide {
            buf: vec![Level::default(); room].into_boxed_slice(),
            spare: vec![Level::default(); room].into_boxed_slice(),
            at: vec![0; cap].into_boxed_slice(),
            start: room / 2,
            len: 0,
            cap,
            kind: PhantomData,
        }
    }

    /// Most levels the side holds; further levels are dropped worst-first.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Empties the side, keeping its storage (a resync starts from here).
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
        self.start = self.buf.len() / 2;
    }

    /// The levels, best first: bids strictly descending, asks strictly
    /// ascending, as the metrics read them.
    #[inline]
    pub fn levels(&self) -> &[Level] {
        self.buf.get(self.start..self.start + self.len).unwrap_or(&[])
    }

    /// The best level, if the side has any.
    #[inline]
    pub fn best(&self) -> Option<Level> {
        self.levels().first().copied()
    }

    /// Number of levels held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the side holds no level.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when `levels` could be a side as given: strictly worse prices
    /// one after another.
    fn in_order(levels: &[Level]) -> bool {
        levels.iter().zip(levels.iter().skip(1)).all(|(prev, next)| S::follows(prev.price, next.price))
    }

    /// Replaces the side by a REST snapshot's side, best first. A snapshot
    /// out of order is refused (`Err(PushError::OutOfOrder)`) and the side
    /// left as it was; levels beyond the capacity are the worst ones and are
    /// dropped, their count returned. A zero quantity is no level (Binance
    /// never sends one in a snapshot; kept, it would be a ghost level), so it
    /// is skipped and not counted.
    pub fn set_snapshot(&mut self, levels: &[Level]) -> Result<u32, PushError> {
        if !Self::in_order(levels) {
            return Err(PushError::OutOfOrder);
        }
        let mut live = levels.iter().filter(|l| l.qty.0 != 0);
        self.start = (self.buf.len() - self.cap) / 2;
        self.len = 0;
        for (slot, level) in self.buf.iter_mut().skip(self.start).take(self.cap).zip(live.by_ref()) {
            *slot = *level;
            self.len += 1;
        }
        Ok(u32::try_from(live.count()).unwrap_or(u32::MAX))
    }

    /// Applies one diff event's changes for this side in the order given
    /// (Binance sends them in the side's order, but nothing relies on it; a
    /// price repeated in one event: the last change wins). A zero quantity
    /// removes the level; removing an absent price is a no-op, as Binance
    /// documents. A new level on a full side is dropped if it is worse than
    /// the worst level, otherwise the worst level is dropped; each drop is
    /// counted.
    #[inline]
    pub fn apply(&mut self, changes: &[Level]) -> Applied {
        if changes.is_empty() {
            return Applied::default();
        }
        let sorted = Self::in_side_order(changes);
        if sorted && changes.len() <= self.cap - self.len {
            self.apply_swept(changes);
            return Applied { sweeps: 1, ..Applied::default() };
        }
        let many = changes.len() >= MERGE_MIN_CHANGES && changes.len() >= self.len / MERGE_DIVISOR;
        if sorted && many {
            Applied { dropped: self.apply_merged(changes), merges: 1, ..Applied::default() }
        } else {
            Applied { dropped: self.apply_each(changes), ..Applied::default() }
        }
    }

    /// True when the changes are in the side's order, a repeated price next
    /// to its repetitions: what the one-pass merge needs.
    fn in_side_order(changes: &[Level]) -> bool {
        changes
            .iter()
            .zip(changes.iter().skip(1))
            .all(|(prev, next)| prev.price == next.price || S::follows(prev.price, next.price))
    }

    /// The position of `price`: `Ok(i)` where a level has it, `Err(i)` where
    /// a level with it would go.
    #[inline]
    fn find(&self, price: Price) -> Result<usize, usize> {
        let live = self.levels();
        let i = live.partition_point(|l| S::follows(l.price, price));
        match live.get(i) {
            Some(l) if l.price == price => Ok(i),
            _ => Err(i),
        }
    }

    /// The sweep, for changes in the side's order that cannot fill the side
    /// (`k ≤ cap − len`: no drop is possible, so a repeated price's last
    /// change alone decides it). Changes near the touch are applied in one
    /// walk from the front: the new best levels are written into the free
    /// space before the side, each old level between changes moved at most
    /// twice (once by the walk, once to close the gap the walk leaves), so k
    /// changes within the top d levels cost O(d), not k shifts of up to d.
    /// The deepest changes, where shifting the back is cheaper than walking
    /// to them, go change by change. Where to split is chosen per event from
    /// each change's index, found by a galloping search from the previous one.
    fn apply_swept(&mut self, changes: &[Level]) {
        let Some(old) = self.buf.get(self.start..self.start + self.len) else { return };
        let len = old.len();
        let mut from = 0;
        for (change, at) in changes.iter().zip(self.at.iter_mut()) {
            from += gallop::<S>(old.get(from..).unwrap_or(&[]), change.price);
            *at = from;
        }
        let at = self.at.get(..changes.len()).unwrap_or(&[]);
        // How a change (the last of its price's run) changes the level count.
        let delta = |j: usize| -> isize {
            let (Some(change), Some(&i)) = (changes.get(j), at.get(j)) else { return 0 };
            if changes.get(j + 1).is_some_and(|next| next.price == change.price) {
                return 0;
            }
            let before = old.get(i).is_some_and(|l| l.price == change.price);
            isize::from(change.qty.0 != 0) - isize::from(before)
        };
        // Cost of the split before change j: the walk to the deepest count
        // change in front plus the back shifts of the ones behind.
        let back_cost = |j: usize| if delta(j) != 0 { at.get(j).map_or(0, |&i| len - i) } else { 0 };
        let mut behind: usize = (0..changes.len()).map(back_cost).sum();
        let (mut split, mut best_cost, mut walk) = (0, behind, 0);
        for j in 0..changes.len() {
            if delta(j) != 0 {
                walk = at.get(j).copied().unwrap_or(0);
            }
            behind -= back_cost(j);
            let at_run_end = changes.get(j + 1).is_none_or(|next| Some(next.price) != changes.get(j).map(|c| c.price));
            if at_run_end && walk + behind < best_cost {
                (split, best_cost) = (j + 1, walk + behind);
            }
        }
        let (mut d, mut gap) = (0isize, 0isize);
        for j in 0..split {
            d += delta(j);
            gap = gap.max(d);
        }
        let gap = gap.unsigned_abs();
        if gap > 0 && self.start < gap {
            self.recentre();
        }
        let (front, back) = changes.split_at_checked(split).unwrap_or((changes, &[]));
        self.sweep_front(front, gap, d);
        self.apply_each(back);
    }

    /// The walk of [`apply_swept`](Self::apply_swept) over its `front`
    /// changes (their indices in `at`, found on the side before the event),
    /// writing from `gap` slots before the side. `gap` is the most the level
    /// count grows at any point of the walk (and `grown` its net growth), so
    /// the write position never passes the read position: no level is
    /// overwritten before it is read. Positions stay within the buffer:
    /// `first ≤ w ≤ r ≤ target ≤ end ≤ buf.len()`.
    fn sweep_front(&mut self, front: &[Level], gap: usize, grown: isize) {
        let Some(first) = self.start.checked_sub(gap) else { return };
        let end = self.start + self.len;
        let (mut w, mut r) = (first, self.start);
        for (j, (change, &i)) in front.iter().zip(self.at.iter()).enumerate() {
            if front.get(j + 1).is_some_and(|next| next.price == change.price) {
                continue;
            }
            let target = (self.start + i).min(end).max(r);
            if w != r {
                self.buf.copy_within(r..target, w);
            }
            w += target - r;
            r = target;
            let present = r < end && self.buf.get(r).is_some_and(|l| l.price == change.price);
            if present {
                r += 1;
            }
            if change.qty.0 != 0 {
                if let Some(slot) = self.buf.get_mut(w) {
                    *slot = *change;
                }
                w += 1;
            }
        }
        // Close the gap the walk leaves: the new front moves up to the
        // untouched rest, which stays where it is.
        let left = r.saturating_sub(w);
        if left > 0 {
            self.buf.copy_within(first..w, first + left);
        }
        self.start = first + left;
        self.len = self.len.saturating_add_signed(grown);
    }

    /// The change-by-change path: a binary search and a short shift each.
    fn apply_each(&mut self, changes: &[Level]) -> u32 {
        let mut dropped: u32 = 0;
        for change in changes {
            match self.find(change.price) {
                Ok(i) if change.qty.0 == 0 => self.remove_at(i),
                Ok(i) => {
                    if let Some(level) = self.buf.get_mut(self.start + i) {
                        level.qty = change.qty;
                    }
                }
                Err(_) if change.qty.0 == 0 => {}
                Err(i) if self.len < self.cap => self.insert_at(i, *change),
                Err(i) => {
                    dropped = dropped.saturating_add(1);
                    if i < self.len {
                        self.remove_at(self.len - 1);
                        self.insert_at(i, *change);
                    }
                }
            }
        }
        dropped
    }

    /// Inserts `level` at index `i ≤ len` of a side with `len < cap`,
    /// shifting the shorter part outwards.
    fn insert_at(&mut self, i: usize, level: Level) {
        if i < self.len - i {
            if self.start == 0 {
                self.recentre();
            }
            let Some(from) = self.start.checked_sub(1) else { return };
            // buf[from..start + i] moves one slot towards the front.
            if let Some(part) = self.buf.get_mut(from..self.start + i) {
                part.copy_within(1.., 0);
            }
            self.start = from;
        } else {
            if self.start + self.len == self.buf.len() {
                self.recentre();
            }
            let end = self.start + self.len;
            // buf[start + i..end] moves one slot towards the back.
            match self.buf.get_mut(self.start + i..=end) {
                Some(part) => part.copy_within(..part.len() - 1, 1),
                None => return,
            }
        }
        if let Some(slot) = self.buf.get_mut(self.start + i) {
            *slot = level;
            self.len += 1;
        }
    }

    /// Removes the level at index `i < len`, shifting the shorter part inwards.
    fn remove_at(&mut self, i: usize) {
        if i >= self.len {
            return;
        }
        if i < self.len - 1 - i {
            // buf[start..start + i] moves one slot towards the back.
            if let Some(part) = self.buf.get_mut(self.start..=self.start + i) {
                part.copy_within(..i, 1);
            }
            self.start += 1;
        } else if let Some(part) = self.buf.get_mut(self.start + i..self.start + self.len) {
            part.copy_within(1.., 0);
        }
        self.len -= 1;
    }

    /// Moves the live levels to the middle of the buffer, so both ends have
    /// at least `(cap − len) + SLACK / 2` free slots. Called only when a
    /// shift finds its end full, which `len < cap` makes rare.
    #[cold]
    fn recentre(&mut self) {
        let centred = (self.buf.len() - self.len) / 2;
        if self.start + self.len <= self.buf.len() {
            self.buf.copy_within(self.start..self.start + self.len, centred);
            self.start = centred;
        }
    }

    /// The one-pass path for many changes in the side's order: the side and
    /// the changes are merged into `spare`, which becomes the side.
    ///
    /// At every step the side as the change-by-change path would hold it is
    /// `out[..w]` followed by `old[o..end]`: every old level better than the
    /// current change's price is written out first, so the change meets its
    /// price either as the last level written (an earlier change of this
    /// event inserted it) or as `old[o]`, and the side's worst level is
    /// `old[end − 1]` while any old level remains. A drop of the worst level
    /// is then `end −= 1`, exactly the level the other path drops.
    fn apply_merged(&mut self, changes: &[Level]) -> u32 {
        let out_start = (self.spare.len() - self.cap) / 2;
        let (Some(old), Some(out)) =
            (self.buf.get_mut(self.start..self.start + self.len), self.spare.get_mut(out_start..out_start + self.cap))
        else {
            return 0;
        };
        let (mut o, mut end, mut w) = (0, old.len(), 0);
        let mut dropped: u32 = 0;
        for change in changes {
            let better = old.get(o..end).map_or(0, |rest| rest.partition_point(|l| S::follows(l.price, change.price)));
            if better > 0 {
                match (out.get_mut(w..w + better), old.get(o..o + better)) {
                    (Some(dst), Some(src)) => dst.copy_from_slice(src),
                    _ => return 0,
                }
                w += better;
                o += better;
            }
            let found = match (w.checked_sub(1).and_then(|i| out.get(i)), old.get(o)) {
                (Some(l), _) if l.price == change.price => Found::Written,
                (_, Some(l)) if o < end && l.price == change.price => Found::Old,
                _ => Found::Absent,
            };
            match found {
                Found::Written if change.qty.0 == 0 => w -= 1,
                Found::Written => {
                    if let Some(l) = w.checked_sub(1).and_then(|i| out.get_mut(i)) {
                        l.qty = change.qty;
                    }
                }
                Found::Old if change.qty.0 == 0 => o += 1,
                Found::Old => {
                    if let Some(l) = old.get_mut(o) {
                        l.qty = change.qty;
                    }
                }
                Found::Absent if change.qty.0 == 0 => {}
                Found::Absent => {
                    let full = w + (end - o) >= self.cap;
                    if full {
                        dropped = dropped.saturating_add(1);
                        if o == end {
                            // Worse than every level of a full side.
                            continue;
                        }
                        end -= 1;
                    }
                    let Some(slot) = out.get_mut(w) else { return dropped };
                    *slot = *change;
                    w += 1;
                }
            }
        }
        let rest = end - o;
        match (out.get_mut(w..w + rest), old.get(o..end)) {
            (Some(dst), Some(src)) => dst.copy_from_slice(src),
            _ => return dropped,
        }
        std::mem::swap(&mut self.buf, &mut self.spare);
        self.start = out_start;
        self.len = w + rest;
        dropped
    }
}

/// The index of the first of `levels` (a side, best first) not better than
/// `price`, as `partition_point` gives it, found in doubling steps from the
/// front: O(log i) for an answer i, which is small for the next of a sorted
/// event's changes, searched from the previous one's index.
#[inline]
fn gallop<S: SideKind>(levels: &[Level], price: Price) -> usize {
    let better = |l: &Level| S::follows(l.price, price);
    let (mut lo, mut step) = (0, 1);
    while let Some(l) = levels.get(lo + step - 1)
        && better(l)
    {
        lo += step;
        step *= 2;
    }
    let hi = (lo + step - 1).min(levels.len());
    lo + levels.get(lo..hi).map_or(0, |window| window.partition_point(better))
}

/// Both sides of one pair's full-depth book and its update id: Binance's
/// `lastUpdateId` after a snapshot, the last applied event's `u` after an
/// event. Whether an event may be applied (the `U`/`u` chain) is the book
/// stage's decision; this only holds the result.
#[derive(Clone, Debug)]
pub struct Ladder {
    pub bids: LadderSide<Bids>,
    pub asks: LadderSide<Asks>,
    pub update_id: u64,
}

impl Ladder {
    /// An empty book with room for `levels_per_side` levels on each side;
    /// the only allocation it makes.
    pub fn with_capacity(levels_per_side: usize) -> Self {
        Ladder {
            bids: LadderSide::with_capacity(levels_per_side),
            asks: LadderSide::with_capacity(levels_per_side),
            update_id: 0,
        }
    }

    /// Empties both sides and forgets the update id (before a resync).
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
        self.update_id = 0;
    }

    /// Replaces the book by a REST snapshot. Both sides are checked before
    /// either is set, so a refused snapshot leaves the whole book as it was.
    /// Returns the levels dropped beyond the capacity, both sides together.
    pub fn set_snapshot(&mut self, last_update_id: u64, bids: &[Level], asks: &[Level]) -> Result<u32, PushError> {
        if !LadderSide::<Bids>::in_order(bids) || !LadderSide::<Asks>::in_order(asks) {
            return Err(PushError::OutOfOrder);
        }
        let dropped = self.bids.set_snapshot(bids)?.saturating_add(self.asks.set_snapshot(asks)?);
        self.update_id = last_update_id;
        Ok(dropped)
    }

    /// Applies one diff event (its bid and ask changes) and takes its final
    /// update id `u` as the book's.
    #[inline]
    pub fn apply(&mut self, final_update_id: u64, bids: &[Level], asks: &[Level]) -> Applied {
        let applied = self.bids.apply(bids).and(self.asks.apply(asks));
        self.update_id = final_update_id;
        applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::Qty;

    fn lvl(p: u64, q: u64) -> Level {
        Level { price: Price(p), qty: Qty(q) }
    }

    fn prices(levels: &[Level]) -> Vec<u64> {
        levels.iter().map(|l| l.price.0).collect()
    }

    /// Applies `changes` to copies of `side` by both paths (the merge only
    /// when the changes allow it), asserts they agree, keeps the result and
    /// returns the drop count.
    fn apply_both<S: SideKind>(side: &mut LadderSide<S>, changes: &[Level]) -> u32 {
        let mut each = side.clone();
        let dropped = each.apply_each(changes);
        if LadderSide::<S>::in_side_order(changes) {
            let mut merged = side.clone();
            assert_eq!(merged.apply_merged(changes), dropped, "drop counts differ for {changes:?}");
            assert_eq!(merged.levels(), each.levels(), "merge differs for {changes:?}");
            if changes.len() <= side.cap - side.len {
                let mut swept = side.clone();
                swept.apply_swept(changes);
                assert_eq!(swept.levels(), each.levels(), "sweep differs for {changes:?}");
            }
        }
        *side = each;
        dropped
    }

    #[test]
    fn inserts_at_the_touch_and_at_the_far_end_keep_the_side_best_first() {
        let mut bids = LadderSide::<Bids>::with_capacity(8);
        bids.set_snapshot(&[lvl(50, 1), lvl(40, 1), lvl(30, 1)]).unwrap();
        assert_eq!(apply_both(&mut bids, &[lvl(60, 2)]), 0);
        assert_eq!(apply_both(&mut bids, &[lvl(10, 3)]), 0);
        assert_eq!(apply_both(&mut bids, &[lvl(45, 4), lvl(35, 5)]), 0);
        assert_eq!(prices(bids.levels()), [60, 50, 45, 40, 35, 30, 10]);
        assert_eq!(bids.best(), Some(lvl(60, 2)));

        let mut asks = LadderSide::<Asks>::with_capacity(8);
        apply_both(&mut asks, &[lvl(50, 1), lvl(40, 1)]);
        apply_both(&mut asks, &[lvl(30, 1)]);
        apply_both(&mut asks, &[lvl(60, 1)]);
        assert_eq!(prices(asks.levels()), [30, 40, 50, 60]);
    }

    #[test]
    fn zero_quantity_removes_a_level_and_an_absent_one_is_a_no_op() {
        let mut asks = LadderSide::<Asks>::with_capacity(8);
        asks.set_snapshot(&[lvl(10, 1), lvl(11, 1), lvl(12, 1), lvl(13, 1), lvl(14, 1)]).unwrap();
        apply_both(&mut asks, &[lvl(10, 0)]);
        apply_both(&mut asks, &[lvl(14, 0)]);
        apply_both(&mut asks, &[lvl(12, 0)]);
        assert_eq!(prices(asks.levels()), [11, 13]);
        apply_both(&mut asks, &[lvl(9, 0), lvl(12, 0), lvl(99, 0)]);
        assert_eq!(prices(asks.levels()), [11, 13]);
        apply_both(&mut asks, &[lvl(11, 0), lvl(13, 0)]);
        assert!(asks.is_empty());
        assert_eq!(asks.best(), None);
    }

    #[test]
    fn an_update_replaces_the_quantity_in_place() {
        let mut bids = LadderSide::<Bids>::with_capacity(4);
        bids.set_snapshot(&[lvl(20, 1), lvl(10, 1)]).unwrap();
        apply_both(&mut bids, &[lvl(20, 7), lvl(10, 8)]);
        assert_eq!(bids.levels(), [lvl(20, 7), lvl(10, 8)]);
    }

    #[test]
    fn a_full_side_drops_a_worse_new_level_or_else_its_worst_level() {
        let mut asks = LadderSide::<Asks>::with_capacity(3);
        asks.set_snapshot(&[lvl(10, 1), lvl(20, 1), lvl(30, 1)]).unwrap();
        assert_eq!(apply_both(&mut asks, &[lvl(40, 1)]), 1, "worse than the worst: the new level goes");
        assert_eq!(prices(asks.levels()), [10, 20, 30]);
        assert_eq!(apply_both(&mut asks, &[lvl(15, 1)]), 1, "better: the worst level goes");
        assert_eq!(prices(asks.levels()), [10, 15, 20]);
        assert_eq!(apply_both(&mut asks, &[lvl(5, 1), lvl(6, 1)]), 2);
        assert_eq!(prices(asks.levels()), [5, 6, 10]);
        // Order matters: the 40 comes while the side is full, before the delete.
        assert_eq!(apply_both(&mut asks, &[lvl(5, 0), lvl(40, 1)]), 0);
        assert_eq!(prices(asks.levels()), [6, 10, 40]);
        assert_eq!(apply_both(&mut asks, &[lvl(50, 1), lvl(6, 0)]), 1);
        assert_eq!(prices(asks.levels()), [10, 40]);
    }

    #[test]
    fn a_sorted_event_dropping_levels_merges_like_the_change_by_change_path() {
        let mut bids = LadderSide::<Bids>::with_capacity(4);
        bids.set_snapshot(&[lvl(90, 1), lvl(70, 1), lvl(50, 1), lvl(30, 1)]).unwrap();
        // Inserts push the old worst levels out, a delete then frees a slot
        // the next insert takes (the level dropped before stays dropped),
        // later inserts are worse than a full side, the last delete meets a
        // level long gone.
        let event = [lvl(95, 1), lvl(80, 1), lvl(70, 0), lvl(60, 1), lvl(40, 1), lvl(20, 1), lvl(10, 0)];
        assert_eq!(apply_both(&mut bids, &event), 4);
        assert_eq!(prices(bids.levels()), [95, 90, 80, 60]);
    }

    #[test]
    fn a_capacity_of_zero_drops_every_new_level() {
        let mut asks = LadderSide::<Asks>::with_capacity(0);
        assert_eq!(asks.set_snapshot(&[lvl(1, 1), lvl(2, 1)]), Ok(2));
        assert_eq!(apply_both(&mut asks, &[lvl(1, 1), lvl(2, 0)]), 1);
        assert!(asks.is_empty());
    }

    #[test]
    fn a_price_repeated_in_one_event_takes_its_last_change() {
        let mut asks = LadderSide::<Asks>::with_capacity(4);
        asks.set_snapshot(&[lvl(10, 1), lvl(20, 1)]).unwrap();
        apply_both(&mut asks, &[lvl(10, 0), lvl(10, 5)]);
        apply_both(&mut asks, &[lvl(15, 1), lvl(15, 0)]);
        apply_both(&mut asks, &[lvl(20, 3), lvl(20, 4), lvl(30, 1), lvl(30, 2)]);
        assert_eq!(asks.levels(), [lvl(10, 5), lvl(20, 4), lvl(30, 2)]);
        // Unsorted repeats take the change-by-change path.
        apply_both(&mut asks, &[lvl(30, 0), lvl(10, 9), lvl(30, 6)]);
        assert_eq!(asks.levels(), [lvl(10, 9), lvl(20, 4), lvl(30, 6)]);
    }

    #[test]
    fn a_window_sliding_through_the_buffer_recentres_at_both_ends_and_keeps_every_level() {
        // A market moving one way: a new best each event, the worst gone.
        // Every insert shifts the front, so the live levels drift towards
        // the buffer's start until it recentres; then the other way.
        let mut bids = LadderSide::<Bids>::with_capacity(16);
        bids.set_snapshot(&(100..110).rev().map(|p| lvl(p, 1)).collect::<Vec<_>>()).unwrap();
        let mut recentres = 0;
        for p in 110..200 {
            let before = bids.start;
            apply_both(&mut bids, &[lvl(p, 1), lvl(p - 10, 0)]);
            recentres += usize::from(bids.start > before);
            assert_eq!(prices(bids.levels()), (p - 9..=p).rev().collect::<Vec<_>>());
        }
        assert!(recentres > 0, "the front never ran out");
        recentres = 0;
        for p in (0..190).rev() {
            let before = bids.start + bids.len;
            apply_both(&mut bids, &[lvl(p + 10, 0), lvl(p, 1)]);
            recentres += usize::from(bids.start + bids.len < before);
            assert_eq!(prices(bids.levels()), (p..p + 10).rev().collect::<Vec<_>>());
        }
        assert!(recentres > 0, "the back never ran out");
    }

    #[test]
    fn a_snapshot_out_of_order_is_refused_and_changes_nothing() {
        let mut book = Ladder::with_capacity(4);
        book.set_snapshot(7, &[lvl(20, 1), lvl(10, 1)], &[lvl(30, 1)]).unwrap();
        assert_eq!(book.set_snapshot(8, &[lvl(20, 1), lvl(20, 1)], &[]), Err(PushError::OutOfOrder));
        assert_eq!(book.set_snapshot(8, &[lvl(25, 1)], &[lvl(40, 1), lvl(35, 1)]), Err(PushError::OutOfOrder));
        assert_eq!(book.bids.levels(), [lvl(20, 1), lvl(10, 1)]);
        assert_eq!(book.asks.levels(), [lvl(30, 1)]);
        assert_eq!(book.update_id, 7);
    }

    #[test]
    fn a_snapshot_deeper_than_the_capacity_keeps_the_best_levels_and_skips_zero_quantities() {
        let mut bids = LadderSide::<Bids>::with_capacity(2);
        assert_eq!(bids.set_snapshot(&[lvl(40, 1), lvl(30, 0), lvl(20, 1), lvl(10, 1)]), Ok(1));
        assert_eq!(bids.levels(), [lvl(40, 1), lvl(20, 1)]);
    }

    #[test]
    fn sorted_changes_are_swept_or_merged_and_unsorted_ones_go_one_by_one() {
        let mut book = Ladder::with_capacity(100);
        let bids: Vec<_> = (1..=40).rev().map(|p| lvl(p, 1)).collect();
        let asks: Vec<_> = (41..=80).map(|p| lvl(p, 1)).collect();
        assert_eq!(book.apply(5, &bids, &asks), Applied { dropped: 0, sweeps: 2, merges: 0 });
        let mut shuffled = asks.clone();
        shuffled.swap(0, 39);
        assert_eq!(book.apply(6, &[], &shuffled), Applied::default());
        assert_eq!(book.update_id, 6);
        assert_eq!(book.bids.levels(), bids);
        assert_eq!(book.asks.levels(), asks);
        // 40 levels and 70 new ones overflow 100: merged, the 10 worst dropped.
        let deeper: Vec<_> = (81..=150).map(|p| lvl(p, 1)).collect();
        assert_eq!(book.apply(7, &[], &deeper), Applied { dropped: 10, sweeps: 0, merges: 1 });
        assert_eq!(prices(book.asks.levels()), (41..=80).chain(81..=140).collect::<Vec<_>>());
    }
}
