//! The local order book: every pair's full-depth [`Ladder`] kept from
//! diff-depth events and REST snapshots exactly as Binance documents it
//! ("How to manage a local order book correctly"), with the best bid/ask
//! overlay and the views metrics read.
//!
//! Per pair:
//!
//! 1. **Idle → Buffering.** The first event after the stream opens (or after a
//!    resync) is buffered and a snapshot is asked for
//!    ([`LocalBooks::take_requests`]); later events are buffered too.
//! 2. **Snapshot.** One older than the first buffered event's `U` is refused
//!    and asked for again. Otherwise the book is set to it, buffered events
//!    with `u` ≤ its `lastUpdateId` are dropped, and the rest are replayed in
//!    order through the same sequencing as live events
//!    ([`LocalBooks::next_buffered`]), each evaluated with its own receive
//!    time. The snapshot alone is not an update.
//! 3. **Synced.** An event with `u` ≤ the book's update id is stale and
//!    ignored; one with `U` > update id + 1 means events were lost: the book
//!    is invalid until resynced (back to 1).
//!
//! While a pair is not synced nothing is evaluated on it. The buffer is
//! bounded (events and levels); an overflow restarts the buffer and is
//! counted. Every store is allocated in [`LocalBooks::new`]; nothing here
//! allocates afterwards.

use super::event::{DiffEvent, TouchEvent};
use super::ladder::Ladder;
use super::{BookView, Level};
use crate::pairs::PairId;
use crate::units::UnixNanos;

/// Sizes of the local books, fixed at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalBookConfig {
    /// Levels kept per side (levels beyond are dropped worst-first, counted).
    pub capacity: usize,
    /// Events buffered per pair while a snapshot is awaited.
    pub buffer_events: usize,
    /// Changed levels buffered per pair (over all buffered events).
    pub buffer_levels: usize,
    /// Levels per side a view needs at most (metrics' `top_n`): an overlay
    /// view copies at most this many.
    pub view_depth: usize,
    /// Only levels within this many basis points of the mid count.
    pub band_bps: Option<u32>,
}

impl LocalBookConfig {
    /// Buffer sizes that hold minutes of Binance's busiest 100 ms streams:
    /// 4,096 events (410 s at 10 events/s) and 256 Ki levels per pair.
    pub fn new(capacity: usize, view_depth: usize, band_bps: Option<u32>) -> Self {
        LocalBookConfig { capacity, buffer_events: 4096, buffer_levels: 1 << 18, view_depth, band_bps }
    }
}

/// Why a pair's book is not synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsynced {
    /// No event yet since the stream opened.
    Opening,
    /// Waiting for a snapshot (asked for, or being fetched).
    AwaitingSnapshot,
    /// An event's `U` skipped past the book's update id + 1.
    Gap,
    /// The connection carrying the pair was replaced or lost.
    Reconnected,
    /// Events arrived faster than the buffer holds while a snapshot was awaited.
    BufferOverflow,
    /// The snapshot's sides were out of order.
    BadSnapshot,
}

impl Unsynced {
    /// For logs and `/healthz`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Unsynced::Opening => "book not synced: no diff event yet",
            Unsynced::AwaitingSnapshot => "book not synced: awaiting REST snapshot",
            Unsynced::Gap => "book not synced: update-id gap, resyncing",
            Unsynced::Reconnected => "book not synced: reconnected, resyncing",
            Unsynced::BufferOverflow => "book not synced: event buffer overflowed, resyncing",
            Unsynced::BadSnapshot => "book not synced: snapshot refused, asking again",
        }
    }
}

/// What a diff event did to its pair's book.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffStep {
    /// Applied: evaluate the book.
    Applied,
    /// Not newer than the book (`u` ≤ its update id): ignored.
    Stale,
    /// Held until the snapshot arrives.
    Buffered,
    /// Events were lost: the book is invalid and a resync has begun.
    Gap,
}

/// What a best bid/ask update did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TouchStep {
    /// Newer than the book: it overlays the touch; evaluate.
    Applied,
    /// Not newer than the book: ignored.
    Stale,
    /// The book is not synced: ignored.
    Unsynced,
}

/// What a snapshot did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotStep {
    /// The book is set from it; buffered events follow
    /// ([`LocalBooks::next_buffered`]).
    Applied,
    /// Older than the first buffered event: asked for again.
    TooOld,
    /// Not the snapshot awaited (an earlier attempt's, or none awaited).
    Unwanted,
    /// Its sides were out of order: asked for again.
    Refused,
}

/// Counters of the local books (plain integers, hot thread only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalCounters {
    pub buffered: u64,
    pub stale_events: u64,
    pub gaps: u64,
    pub resyncs: u64,
    pub buffer_overflows: u64,
    pub snapshots_applied: u64,
    pub snapshots_too_old: u64,
    pub snapshots_refused: u64,
    pub touches: u64,
    pub stale_touches: u64,
    /// Levels dropped because a side was at capacity.
    pub levels_dropped: u64,
}

#[derive(Clone, Copy, Debug)]
struct Held {
    first: u64,
    last: u64,
    event_time_ms: Option<u64>,
    recv: UnixNanos,
    /// Its levels in the arena: bids `start..mid`, asks `mid..end`.
    start: usize,
    mid: usize,
    end: usize,
}

/// Events held while a snapshot is awaited: headers and their levels in two
/// preallocated arenas.
#[derive(Debug)]
struct EventBuffer {
    held: Vec<Held>,
    levels: Vec<Level>,
    /// The next held event to replay after a snapshot.
    next: usize,
    max_events: usize,
    max_levels: usize,
}

impl EventBuffer {
    fn new(max_events: usize, max_levels: usize) -> Self {
        EventBuffer {
            held: Vec::with_capacity(max_events),
            levels: Vec::with_capacity(max_levels),
            next: 0,
            max_events,
            max_levels,
        }
    }

    fn clear(&mut self) {
        self.held.clear();
        self.levels.clear();
        self.next = 0;
    }

    /// Drops the held events before index `from` (and their levels),
    /// keeping the rest in order; moves within the arenas, no allocation.
    fn keep_from(&mut self, from: usize) {
        let Some(start) = self.held.get(from).map(|h| h.start) else {
            self.clear();
            return;
        };
        self.held.drain(..from);
        self.levels.drain(..start);
        for h in &mut self.held {
            h.start = h.start.saturating_sub(start);
            h.mid = h.mid.saturating_sub(start);
            h.end = h.end.saturating_sub(start);
        }
        self.next = 0;
    }

    /// Holds `e`; `false` (nothing held) when it does not fit.
    fn push(&mut self, e: &DiffEvent, recv: UnixNanos) -> bool {
        let (b, a) = (e.bids.levels(), e.asks.levels());
        let start = self.levels.len();
        if self.held.len() >= self.max_events || b.len() + a.len() > self.max_levels.saturating_sub(start) {
            return false;
        }
        self.levels.extend_from_slice(b);
        self.levels.extend_from_slice(a);
        let mid = start + b.len();
        self.held.push(Held {
            first: e.first_update_id,
            last: e.final_update_id,
            event_time_ms: e.event_time_ms,
            recv,
            start,
            mid,
            end: mid + a.len(),
        });
        true
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Unsynced(Unsynced),
    /// The snapshot is applied; held events are being replayed.
    Replaying,
    Synced,
}

#[derive(Debug)]
struct PairBook {
    ladder: Ladder,
    state: State,
    buffer: EventBuffer,
    /// Attempt number of the snapshot awaited; replies of other attempts
    /// are ignored.
    attempt: u64,
    /// A snapshot request not yet handed out.
    request_due: bool,
    /// The overlaying best bid/ask, while newer than the book.
    touch: Option<TouchEvent>,
    /// The update id and event time of what the book last became.
    update_id: u64,
    event_time_ms: Option<u64>,
    /// Set when the pair falls out of sync, cleared when it is synced: one
    /// log line per streak.
    streak: bool,
    /// Whether this streak has been reported ([`LocalBooks::take_streak_report`]).
    reported: bool,
    /// What started the streak.
    cause: Unsynced,
    /// Overlay views: the ticker's level and the visible book levels after it.
    view_bids: Vec<Level>,
    view_asks: Vec<Level>,
}

impl PairBook {
    fn new(config: &LocalBookConfig) -> Self {
        let view = config.view_depth.min(config.capacity) + 1;
        PairBook {
            ladder: Ladder::with_capacity(config.capacity),
            state: State::Unsynced(Unsynced::Opening),
            buffer: EventBuffer::new(config.buffer_events, config.buffer_levels),
            attempt: 0,
            request_due: false,
            touch: None,
            update_id: 0,
            event_time_ms: None,
            streak: false,
            reported: false,
            cause: Unsynced::Opening,
            view_bids: Vec::with_capacity(view),
            view_asks: Vec::with_capacity(view),
        }
    }
}

/// Every pair's local book and its sync state.
#[derive(Debug)]
pub struct LocalBooks {
    pairs: Vec<PairBook>,
    config: LocalBookConfig,
    counters: LocalCounters,
}

impl LocalBooks {
    /// Empty, unsynced books for `pairs` pairs; all storage allocated here.
    pub fn new(pairs: usize, config: LocalBookConfig) -> Self {
        // Built one by one: cloning a vector drops its spare capacity, and
        // every store here must have its room before the first event.
        let pairs = (0..pairs).map(|_| PairBook::new(&config)).collect();
        LocalBooks { pairs, config, counters: LocalCounters::default() }
    }

    /// Running totals.
    pub fn counters(&self) -> &LocalCounters {
        &self.counters
    }

    /// Why `pair` is not synced, or `None` when it is.
    pub fn unsynced(&self, pair: PairId) -> Option<Unsynced> {
        match self.pairs.get(pair.index()).map(|p| p.state) {
            Some(State::Synced | State::Replaying) => None,
            Some(State::Unsynced(why)) => Some(why),
            None => Some(Unsynced::Opening),
        }
    }

    /// Begins a resync: the book is invalid, held events are dropped, any
    /// snapshot in flight is disregarded. The next event is buffered and a
    /// new snapshot asked for.
    fn restart(p: &mut PairBook, why: Unsynced) {
        p.state = State::Unsynced(why);
        p.buffer.clear();
        p.touch = None;
        p.attempt = p.attempt.wrapping_add(1);
        p.request_due = false;
        Self::out_of_sync(p, why);
    }

    /// Starts an out-of-sync streak for `why` unless one is on.
    fn out_of_sync(p: &mut PairBook, why: Unsynced) {
        if !p.streak {
            p.streak = true;
            p.reported = false;
            p.cause = why;
        }
    }

    /// Every pair in `pairs` resyncs (their connection was replaced or lost).
    pub fn reconnected(&mut self, pairs: &[PairId]) {
        for pair in pairs {
            if let Some(p) = self.pairs.get_mut(pair.index()) {
                Self::restart(p, Unsynced::Reconnected);
                self.counters.resyncs += 1;
            }
        }
    }

    /// Buffers `e` for an unsynced pair, asking for a snapshot with the first.
    fn hold(p: &mut PairBook, c: &mut LocalCounters, e: &DiffEvent, recv: UnixNanos) {
        // A refused snapshot has asked again already; otherwise the first
        // held event asks.
        if let State::Unsynced(why) = p.state
            && !matches!(why, Unsynced::AwaitingSnapshot | Unsynced::BadSnapshot)
        {
            p.state = State::Unsynced(Unsynced::AwaitingSnapshot);
            p.request_due = true;
        }
        if !p.buffer.push(e, recv) {
            // Restart the buffer from this event; the snapshot in flight is
            // still good if it turns out newer than the new first event.
            c.buffer_overflows += 1;
            p.buffer.clear();
            if !p.buffer.push(e, recv) {
                c.buffer_overflows += 1;
            }
        }
        c.buffered += 1;
    }

    /// Sequencing of one event against a book at `p.update_id`.
    fn sequence(p: &PairBook, first: u64, last: u64) -> DiffStep {
        if last <= p.update_id {
            DiffStep::Stale
        } else if first > p.update_id.saturating_add(1) {
            DiffStep::Gap
        } else {
            DiffStep::Applied
        }
    }

    /// Applies one event's levels to the book, which then is as of `last`
    /// (and the exchange's `event_time_ms`); an overlay no newer goes.
    fn apply_levels(
        p: &mut PairBook,
        c: &mut LocalCounters,
        (bids, asks): (&[Level], &[Level]),
        last: u64,
        event_time_ms: Option<u64>,
    ) {
        let db = p.ladder.bids.apply(bids).dropped;
        let da = p.ladder.asks.apply(asks).dropped;
        c.levels_dropped += u64::from(db) + u64::from(da);
        p.update_id = last;
        p.ladder.update_id = last;
        p.event_time_ms = event_time_ms;
        if p.touch.is_some_and(|t| t.update_id <= last) {
            p.touch = None;
        }
    }

    /// A live diff event for `pair`, received at `recv`.
    pub fn on_diff(&mut self, pair: PairId, e: &DiffEvent, recv: UnixNanos) -> DiffStep {
        let Some(p) = self.pairs.get_mut(pair.index()) else { return DiffStep::Stale };
        let c = &mut self.counters;
        match p.state {
            State::Unsynced(_) | State::Replaying => {
                // While replaying, `next_buffered` has not finished: keep order.
                if p.state == State::Replaying {
                    if !p.buffer.push(e, recv) {
                        Self::restart(p, Unsynced::BufferOverflow);
                        c.buffer_overflows += 1;
                        c.resyncs += 1;
                        Self::hold(p, c, e, recv);
                        return DiffStep::Gap;
                    }
                    c.buffered += 1;
                } else {
                    Self::hold(p, c, e, recv);
                }
                DiffStep::Buffered
            }
            State::Synced => match Self::sequence(p, e.first_update_id, e.final_update_id) {
                DiffStep::Applied => {
                    Self::apply_levels(p, c, (e.bids.levels(), e.asks.levels()), e.final_update_id, e.event_time_ms);
                    DiffStep::Applied
                }
                DiffStep::Gap => {
                    c.gaps += 1;
                    c.resyncs += 1;
                    Self::restart(p, Unsynced::Gap);
                    Self::hold(p, c, e, recv);
                    DiffStep::Gap
                }
                step => {
                    c.stale_events += 1;
                    step
                }
            },
        }
    }

    /// A best bid/ask update for `pair`.
    pub fn on_touch(&mut self, pair: PairId, t: &TouchEvent) -> TouchStep {
        let Some(p) = self.pairs.get_mut(pair.index()) else { return TouchStep::Unsynced };
        if p.state != State::Synced {
            return TouchStep::Unsynced;
        }
        if t.update_id <= p.update_id || p.touch.is_some_and(|cur| t.update_id <= cur.update_id) {
            self.counters.stale_touches += 1;
            return TouchStep::Stale;
        }
        p.touch = Some(*t);
        self.counters.touches += 1;
        TouchStep::Applied
    }

    /// Snapshot requests due, as (pair, attempt): each is handed out once.
    pub fn take_requests(&mut self, mut f: impl FnMut(PairId, u64)) {
        for (i, p) in self.pairs.iter_mut().enumerate() {
            if std::mem::take(&mut p.request_due) {
                f(PairId(u16::try_from(i).unwrap_or(u16::MAX)), p.attempt);
            }
        }
    }

    /// Whether any snapshot request is due (a cheap check before
    /// [`LocalBooks::take_requests`]).
    pub fn requests_due(&self) -> bool {
        self.pairs.iter().any(|p| p.request_due)
    }

    /// A snapshot for `pair` (`attempt`: the request it answers; `None`
    /// takes it whatever was asked, as a recording's snapshot lines are).
    pub fn on_snapshot(
        &mut self,
        pair: PairId,
        attempt: Option<u64>,
        last_update_id: u64,
        bids: &[Level],
        asks: &[Level],
    ) -> SnapshotStep {
        let Some(p) = self.pairs.get_mut(pair.index()) else { return SnapshotStep::Unwanted };
        let awaited = matches!(p.state, State::Unsynced(_)) && attempt.is_none_or(|a| a == p.attempt);
        if !awaited || (attempt.is_some() && p.state == State::Unsynced(Unsynced::Opening)) {
            return SnapshotStep::Unwanted;
        }
        let c = &mut self.counters;
        if p.buffer.held.first().is_some_and(|h| last_update_id < h.first) {
            c.snapshots_too_old += 1;
            p.attempt = p.attempt.wrapping_add(1);
            p.request_due = true;
            return SnapshotStep::TooOld;
        }
        let sides = p.ladder.bids.set_snapshot(bids).and_then(|db| Ok((db, p.ladder.asks.set_snapshot(asks)?)));
        let Ok((db, da)) = sides else {
            p.ladder.bids.clear();
            p.ladder.asks.clear();
            c.snapshots_refused += 1;
            p.state = State::Unsynced(Unsynced::BadSnapshot);
            p.attempt = p.attempt.wrapping_add(1);
            p.request_due = true;
            return SnapshotStep::Refused;
        };
        c.levels_dropped += u64::from(db) + u64::from(da);
        c.snapshots_applied += 1;
        p.update_id = last_update_id;
        p.ladder.update_id = last_update_id;
        p.event_time_ms = None;
        p.touch = None;
        p.buffer.next = 0;
        p.state = State::Replaying;
        SnapshotStep::Applied
    }

    /// After [`SnapshotStep::Applied`]: replays the next held event through
    /// the live sequencing. `Some((Applied, recv))` is an update to evaluate
    /// (as of `recv`); `Some((Stale, _))` an event the snapshot already
    /// held; `Some((Gap, _))` a gap (the pair resyncs); `None` when the
    /// buffer is done and the pair synced.
    pub fn next_buffered(&mut self, pair: PairId) -> Option<(DiffStep, UnixNanos)> {
        let p = self.pairs.get_mut(pair.index())?;
        if p.state != State::Replaying {
            return None;
        }
        let c = &mut self.counters;
        let Some(h) = p.buffer.held.get(p.buffer.next).copied() else {
            p.buffer.clear();
            p.state = State::Synced;
            p.streak = false;
            return None;
        };
        p.buffer.next += 1;
        match Self::sequence(p, h.first, h.last) {
            DiffStep::Applied => {
                // Lent out while the book takes them (an empty Vec in its
                // place allocates nothing).
                let levels = std::mem::take(&mut p.buffer.levels);
                let applied = match levels.get(h.start..h.mid).zip(levels.get(h.mid..h.end)) {
                    Some(sides) => {
                        Self::apply_levels(p, c, sides, h.last, h.event_time_ms);
                        true
                    }
                    None => false,
                };
                p.buffer.levels = levels;
                applied.then_some((DiffStep::Applied, h.recv))
            }
            DiffStep::Gap => {
                // The held events from this one on do not continue the
                // snapshot: they stay held (they are newer than anything the
                // book had) and a new snapshot is asked for.
                c.gaps += 1;
                c.resyncs += 1;
                p.buffer.keep_from(p.buffer.next - 1);
                p.state = State::Unsynced(Unsynced::AwaitingSnapshot);
                p.attempt = p.attempt.wrapping_add(1);
                p.request_due = true;
                Self::out_of_sync(p, Unsynced::Gap);
                Some((DiffStep::Gap, h.recv))
            }
            step => Some((step, h.recv)),
        }
    }

    /// Why `pair` fell out of sync, once per streak (a streak ends when the
    /// pair is synced again): the caller logs it, so a pair that keeps
    /// failing to sync logs one line, not one per attempt.
    pub fn take_streak_report(&mut self, pair: PairId) -> Option<Unsynced> {
        let p = self.pairs.get_mut(pair.index())?;
        if !matches!(p.state, State::Unsynced(_)) || !p.streak || std::mem::replace(&mut p.reported, true) {
            return None;
        }
        Some(p.cause)
    }

    /// The book of `pair` as metrics see it: after the touch overlay, within
    /// the price band, at most `view_depth` levels per side copied when an
    /// overlay is in place.
    pub fn view(&mut self, pair: PairId) -> Option<BookView<'_>> {
        let band = self.config.band_bps;
        let depth = self.config.view_depth;
        let p = self.pairs.get_mut(pair.index())?;
        let (bids, asks): (&[Level], &[Level]) = match p.touch {
            None => (p.ladder.bids.levels(), p.ladder.asks.levels()),
            Some(t) => {
                let (b, a) = (p.ladder.bids.levels(), p.ladder.asks.levels());
                // Levels priced through the ticker's best are hidden.
                let b = b.get(b.partition_point(|l| l.price >= t.bid.price)..).unwrap_or(&[]);
                let a = a.get(a.partition_point(|l| l.price <= t.ask.price)..).unwrap_or(&[]);
                overlay(&mut p.view_bids, t.bid, b, depth);
                overlay(&mut p.view_asks, t.ask, a, depth);
                (&p.view_bids, &p.view_asks)
            }
        };
        let (bids, asks) = match band {
            Some(bps) => within_band(bids, asks, bps),
            None => (bids, asks),
        };
        let last_update_id = p.touch.map_or(p.update_id, |t| t.update_id);
        let event_time_ms = p.touch.and_then(|t| t.event_time_ms).or(p.event_time_ms);
        Some(BookView { bids, asks, last_update_id, event_time_ms })
    }

    /// The exchange's event time (Unix ms) of what `pair`'s book last became.
    pub fn event_time_ms(&self, pair: PairId) -> Option<u64> {
        let p = self.pairs.get(pair.index())?;
        p.touch.and_then(|t| t.event_time_ms).or(p.event_time_ms)
    }

    /// The full book of `pair` without overlay or band (for tests and tools).
    pub fn ladder(&self, pair: PairId) -> Option<&Ladder> {
        self.pairs.get(pair.index()).map(|p| &p.ladder)
    }
}

/// `level` then up to `depth − 1` of `rest` into `out` (allocated with room
/// for `depth` levels and more, so this never grows it).
fn overlay(out: &mut Vec<Level>, level: Level, rest: &[Level], depth: usize) {
    out.clear();
    let room = depth.max(1).saturating_sub(1);
    out.push(level);
    out.extend_from_slice(rest.get(..room.min(rest.len())).unwrap_or(&[]));
}

/// The levels within `bps` basis points of the mid, exactly:
/// bid ≥ mid·(1 − bps/10⁴) ⟺ 2·10⁴·bid ≥ (bb + ba)·(10⁴ − bps), and
/// ask ≤ mid·(1 + bps/10⁴) ⟺ 2·10⁴·ask ≤ (bb + ba)·(10⁴ + bps). A
/// one-sided book has no mid: both sides are kept as they are (the metrics
/// then refuse it as one-sided where it matters).
pub fn within_band<'a>(bids: &'a [Level], asks: &'a [Level], bps: u32) -> (&'a [Level], &'a [Level]) {
    let (Some(bb), Some(ba)) = (bids.first(), asks.first()) else { return (bids, asks) };
    let sum = u128::from(bb.price.0) + u128::from(ba.price.0);
    let bps = u128::from(bps);
    let low = sum * 10_000u128.saturating_sub(bps);
    let high = sum * (10_000 + bps);
    let nb = bids.partition_point(|l| 20_000 * u128::from(l.price.0) >= low);
    let na = asks.partition_point(|l| 20_000 * u128::from(l.price.0) <= high);
    (bids.get(..nb).unwrap_or(bids), asks.get(..na).unwrap_or(asks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::event::EventScratch;
    use crate::units::{Price, Qty};

    fn lvl(p: u64, q: u64) -> Level {
        Level { price: Price(p), qty: Qty(q) }
    }

    fn books(capacity: usize) -> LocalBooks {
        LocalBooks::new(
            2,
            LocalBookConfig { capacity, buffer_events: 8, buffer_levels: 64, view_depth: 10, band_bps: None },
        )
    }

    fn event(first: u64, last: u64, bids: &[Level], asks: &[Level]) -> DiffEvent {
        let mut e = EventScratch::with_capacity(16).diff;
        e.first_update_id = first;
        e.final_update_id = last;
        e.bids.set(bids).unwrap();
        e.asks.set(asks).unwrap();
        e
    }

    const P: PairId = PairId(0);

    fn requests(b: &mut LocalBooks) -> Vec<(PairId, u64)> {
        let mut out = Vec::new();
        b.take_requests(|p, a| out.push((p, a)));
        out
    }

    fn replay_held(b: &mut LocalBooks) -> Vec<DiffStep> {
        std::iter::from_fn(|| b.next_buffered(P).map(|(s, _)| s)).collect()
    }

    /// Synced at `id` with one bid at 100 and one ask at 110.
    fn synced(b: &mut LocalBooks, id: u64) {
        assert_eq!(b.on_diff(P, &event(id, id + 1, &[], &[]), UnixNanos(1)), DiffStep::Buffered);
        let (_, attempt) = requests(b)[0];
        let step = b.on_snapshot(P, Some(attempt), id + 1, &[lvl(100, 1)], &[lvl(110, 1)]);
        assert_eq!(step, SnapshotStep::Applied);
        assert_eq!(replay_held(b), vec![DiffStep::Stale]);
        assert_eq!(b.unsynced(P), None);
    }

    #[test]
    fn events_are_held_until_the_snapshot_then_replayed_in_order_after_it() {
        let mut b = books(16);
        assert_eq!(b.unsynced(P), Some(Unsynced::Opening));
        assert_eq!(b.on_diff(P, &event(5, 7, &[lvl(100, 1)], &[]), UnixNanos(10)), DiffStep::Buffered);
        assert_eq!(b.on_diff(P, &event(8, 9, &[lvl(99, 2)], &[lvl(110, 3)]), UnixNanos(20)), DiffStep::Buffered);
        assert_eq!(b.on_diff(P, &event(10, 12, &[lvl(100, 0)], &[]), UnixNanos(30)), DiffStep::Buffered);
        assert_eq!(b.unsynced(P), Some(Unsynced::AwaitingSnapshot));
        let asked = requests(&mut b);
        assert_eq!(asked.len(), 1, "one request per sync, not per event");
        assert!(requests(&mut b).is_empty());
        // A reply to another attempt is not this one's.
        assert_eq!(b.on_snapshot(P, Some(asked[0].1 + 1), 9, &[], &[]), SnapshotStep::Unwanted);
        // Older than the first held event's U: asked again.
        assert_eq!(b.on_snapshot(P, Some(asked[0].1), 3, &[], &[]), SnapshotStep::TooOld);
        let again = requests(&mut b);
        assert_eq!(again.len(), 1);
        assert_ne!(again[0].1, asked[0].1);
        // At 8: the first event (u = 7) is stale, 8..9 straddles it, 10..12 follows.
        assert_eq!(
            b.on_snapshot(P, Some(again[0].1), 8, &[lvl(100, 5), lvl(98, 1)], &[lvl(111, 1)]),
            SnapshotStep::Applied
        );
        let steps: Vec<_> = std::iter::from_fn(|| b.next_buffered(P)).collect();
        assert_eq!(
            steps,
            vec![
                (DiffStep::Stale, UnixNanos(10)),
                (DiffStep::Applied, UnixNanos(20)),
                (DiffStep::Applied, UnixNanos(30))
            ]
        );
        let view = b.view(P).unwrap();
        assert_eq!(view.bids, &[lvl(99, 2), lvl(98, 1)]);
        assert_eq!(view.asks, &[lvl(110, 3), lvl(111, 1)]);
        assert_eq!(view.last_update_id, 12);
        assert_eq!(b.ladder(P).map(|l| l.update_id), Some(12));
        assert_eq!(b.unsynced(P), None);
        assert_eq!(b.unsynced(PairId(1)), Some(Unsynced::Opening), "the other pair is untouched");
    }

    #[test]
    fn a_stale_event_is_ignored_and_a_gap_invalidates_the_book_until_resynced() {
        let mut b = books(16);
        synced(&mut b, 100);
        assert_eq!(b.on_diff(P, &event(90, 101, &[lvl(100, 9)], &[]), UnixNanos(2)), DiffStep::Stale);
        assert_eq!(b.view(P).unwrap().bids, &[lvl(100, 1)]);
        assert_eq!(b.on_diff(P, &event(102, 103, &[lvl(101, 1)], &[]), UnixNanos(3)), DiffStep::Applied);
        // 104 is lost: 105.. is a gap.
        assert_eq!(b.on_diff(P, &event(105, 106, &[lvl(102, 1)], &[]), UnixNanos(4)), DiffStep::Gap);
        assert_eq!(b.unsynced(P), Some(Unsynced::AwaitingSnapshot));
        assert_eq!(b.take_streak_report(P), Some(Unsynced::Gap));
        assert_eq!(b.take_streak_report(P), None, "one report per streak");
        assert_eq!(b.on_touch(P, &TouchEvent { update_id: 200, ..TouchEvent::default() }), TouchStep::Unsynced);
        assert_eq!(b.counters().gaps, 1);
        let (_, attempt) = requests(&mut b)[0];
        // The gapped event is held: a snapshot at 105 leaves it to apply.
        assert_eq!(b.on_snapshot(P, Some(attempt), 105, &[lvl(100, 1)], &[lvl(110, 1)]), SnapshotStep::Applied);
        assert_eq!(replay_held(&mut b), vec![DiffStep::Applied]);
        assert_eq!(b.view(P).unwrap().bids, &[lvl(102, 1), lvl(100, 1)]);
    }

    #[test]
    fn a_held_event_that_skips_past_the_snapshot_is_a_gap_and_stays_held() {
        let mut b = books(16);
        b.on_diff(P, &event(10, 11, &[], &[]), UnixNanos(1));
        b.on_diff(P, &event(20, 21, &[lvl(1, 1)], &[]), UnixNanos(2));
        let (_, a) = requests(&mut b)[0];
        assert_eq!(b.on_snapshot(P, Some(a), 12, &[], &[]), SnapshotStep::Applied);
        assert_eq!(b.next_buffered(P), Some((DiffStep::Stale, UnixNanos(1))));
        assert_eq!(b.next_buffered(P), Some((DiffStep::Gap, UnixNanos(2))));
        assert_eq!(b.next_buffered(P), None);
        let (_, a2) = requests(&mut b)[0];
        assert_eq!(b.on_snapshot(P, Some(a2), 20, &[], &[lvl(5, 1)]), SnapshotStep::Applied);
        assert_eq!(replay_held(&mut b), vec![DiffStep::Applied]);
        assert_eq!(b.view(P).unwrap().bids, &[lvl(1, 1)]);
    }

    #[test]
    fn the_touch_overlays_level_zero_until_a_diff_as_new_supersedes_it() {
        let mut b = books(16);
        synced(&mut b, 100);
        b.on_diff(P, &event(102, 102, &[lvl(99, 1), lvl(98, 1)], &[lvl(111, 1)]), UnixNanos(2));
        let t = TouchEvent { update_id: 105, bid: lvl(101, 7), ask: lvl(111, 2), event_time_ms: None };
        assert_eq!(b.on_touch(P, &t), TouchStep::Applied);
        let v = b.view(P).unwrap();
        assert_eq!(v.bids, &[lvl(101, 7), lvl(100, 1), lvl(99, 1), lvl(98, 1)]);
        // Asks at or through 111 are hidden: the ticker's 111 stands for them.
        assert_eq!(v.asks, &[lvl(111, 2)]);
        assert_eq!(v.last_update_id, 105);
        // A bid queue eaten through: the ticker's best is below the book's.
        let t2 = TouchEvent { update_id: 106, bid: lvl(99, 3), ask: lvl(110, 1), event_time_ms: None };
        assert_eq!(b.on_touch(P, &t2), TouchStep::Applied);
        assert_eq!(b.view(P).unwrap().bids, &[lvl(99, 3), lvl(98, 1)]);
        assert_eq!(b.on_touch(P, &t), TouchStep::Stale, "older than the overlay");
        // A diff older than the ticker keeps the overlay; one as new drops it.
        b.on_diff(P, &event(103, 104, &[lvl(97, 1)], &[]), UnixNanos(3));
        assert_eq!(b.view(P).unwrap().bids.first(), Some(&lvl(99, 3)));
        b.on_diff(P, &event(105, 106, &[], &[]), UnixNanos(4));
        let v = b.view(P).unwrap();
        assert_eq!(v.bids, &[lvl(100, 1), lvl(99, 1), lvl(98, 1), lvl(97, 1)]);
        assert_eq!(v.last_update_id, 106);
        assert_eq!(b.on_touch(P, &t2), TouchStep::Stale, "not newer than the book");
    }

    #[test]
    fn an_overflowing_buffer_restarts_and_the_pair_still_syncs() {
        let mut b = books(16);
        for i in 0..20u64 {
            b.on_diff(P, &event(10 + 2 * i, 11 + 2 * i, &[lvl(100 + i, 1)], &[]), UnixNanos(i));
        }
        assert!(b.counters().buffer_overflows >= 2);
        let (_, a) = requests(&mut b)[0];
        // The buffer holds the last events only; a snapshot before them is too old.
        assert_eq!(b.on_snapshot(P, Some(a), 20, &[], &[]), SnapshotStep::TooOld);
        let (_, a) = requests(&mut b)[0];
        assert_eq!(b.on_snapshot(P, Some(a), 45, &[], &[lvl(500, 1)]), SnapshotStep::Applied);
        let steps = replay_held(&mut b);
        assert!(steps.contains(&DiffStep::Applied) && !steps.contains(&DiffStep::Gap), "{steps:?}");
        assert_eq!(b.view(P).unwrap().last_update_id, 49);
    }

    #[test]
    fn a_reconnect_resyncs_and_a_misordered_snapshot_is_refused() {
        let mut b = books(16);
        synced(&mut b, 100);
        b.reconnected(&[P]);
        assert_eq!(b.unsynced(P), Some(Unsynced::Reconnected));
        assert_eq!(b.on_diff(P, &event(300, 301, &[], &[]), UnixNanos(5)), DiffStep::Buffered);
        let (_, a) = requests(&mut b)[0];
        assert_eq!(b.on_snapshot(P, Some(a), 300, &[lvl(1, 1), lvl(2, 1)], &[]), SnapshotStep::Refused);
        assert_eq!(b.unsynced(P), Some(Unsynced::BadSnapshot));
        assert_eq!(requests(&mut b).len(), 1, "asked again");
    }

    #[test]
    fn the_band_keeps_exactly_the_levels_within_x_bps_of_the_mid() {
        // Mid 100; 100 bps = 1 %: bids ≥ 99, asks ≤ 101.
        let bids = [lvl(9_990, 1), lvl(9_900, 1), lvl(9_899, 1)];
        let asks = [lvl(10_010, 1), lvl(10_100, 1), lvl(10_101, 1)];
        let (b, a) = within_band(&bids, &asks, 100);
        assert_eq!((b.len(), a.len()), (2, 2));
        let (b, a) = within_band(&bids[..1], &[], 1);
        assert_eq!((b.len(), a.len()), (1, 0), "no mid: kept as is");
    }
}
