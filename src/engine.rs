//! The deterministic engine: one frame in, alerts out.
//!
//! [`Engine::on_frame`] is the single entry point the live feed, `replay` and
//! the tests all call: parse → book → metric → triggers → sink. It owns every
//! pair's book and trigger state and allocates nothing per frame; storage is
//! sized once in [`Engine::new`].

use crate::alert::{ActionHook, Alert, EngineSink, MetricUpdate, NoAction};
use crate::book::event::EventScratch;
use crate::book::local::{DiffStep, LocalBookConfig, LocalBooks, LocalCounters, SnapshotStep, TouchStep, within_band};
use crate::book::stage::{BookStage, Sequence};
use crate::book::{Book, BookEvent, BookShape, BookView, Level, Sides};
use crate::exact::{Fraction, Reading};
use crate::metrics::{
    Imbalance, LevelWeights, MetricError, MetricKind, MetricSet, VolumeSpec, imbalance, imbalance_and_weighted,
};
use crate::pairs::PairId;
use crate::reject::RejectKind;
use crate::triggers::{MAX_CONDITIONS, TriggerId, TriggerLanes, TriggerSpec, TriggerState, needed_metrics};
use crate::units::UnixNanos;
use crate::venue::binance_spot::StreamTable;
use crate::venue::{Message, Venue};

/// What one frame amounted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameOutcome {
    /// A valid book was evaluated; `alerts` triggers fired.
    Evaluated { pair: PairId, alerts: u32 },
    /// Best bid ≥ best ask: counted, not evaluated, no state changed.
    Crossed(PairId),
    /// No volume on either side: counted, no metric, no state changed.
    Empty(PairId),
    /// A volume sum overflowed: counted, not evaluated.
    Overflow(PairId),
    /// While two connections carry the pair (make-before-break), a snapshot
    /// not newer than the pair's book: the other connection delivered it.
    Duplicate(PairId),
    /// A diff event held until the pair's snapshot arrives.
    Buffered(PairId),
    /// A diff or best bid/ask event not newer than the pair's local book.
    Stale(PairId),
    /// A diff event skipped past the local book's update id: events were
    /// lost and the pair resyncs (nothing is evaluated on it until then).
    Resync(PairId),
    /// A best bid/ask event for a pair whose local book is not synced.
    Unsynced(PairId),
    /// Binance announced this connection will close.
    ServerShutdown,
    /// A reply to a request on the connection.
    Reply,
    /// The frame was rejected; nothing changed.
    Rejected(RejectKind),
}

impl FrameOutcome {
    /// The pair a depth frame belonged to, for outcomes that have one.
    #[inline]
    pub fn pair(self) -> Option<PairId> {
        match self {
            FrameOutcome::Evaluated { pair, .. }
            | FrameOutcome::Crossed(pair)
            | FrameOutcome::Empty(pair)
            | FrameOutcome::Overflow(pair)
            | FrameOutcome::Duplicate(pair)
            | FrameOutcome::Buffered(pair)
            | FrameOutcome::Stale(pair)
            | FrameOutcome::Resync(pair)
            | FrameOutcome::Unsynced(pair) => Some(pair),
            FrameOutcome::ServerShutdown | FrameOutcome::Reply | FrameOutcome::Rejected(_) => None,
        }
    }
}

/// Marks the engine's stage boundaries for a caller that measures them. The
/// engine reads no clock itself: time is the caller's business.
pub trait StageClock {
    /// The frame has been parsed (whatever the result).
    fn parsed(&mut self) {}
    /// The triggers have decided on an evaluated book.
    fn decided(&mut self) {}
}

/// No measurement.
pub struct NoClock;

impl StageClock for NoClock {}

/// Running totals since start. Plain integers: read them between frames.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EngineCounters {
    pub frames: u64,
    pub evaluated: u64,
    pub crossed: u64,
    pub empty: u64,
    pub overflow: u64,
    pub duplicates: u64,
    pub server_shutdowns: u64,
    pub replies: u64,
    /// Rejected frames by [`RejectKind::index`].
    pub errors: [u64; RejectKind::COUNT],
    /// Depth frames accepted per pair (evaluated or not).
    pub frames_by_pair: Vec<u64>,
    /// Alerts fired, at `trigger * pairs + pair`.
    pub alerts: Vec<u64>,
    /// The local books' counters (diff mode; see [`Engine::sync_local_counters`]).
    pub local: Option<LocalCounters>,
}

impl Clone for EngineCounters {
    fn clone(&self) -> Self {
        let mut c = EngineCounters::default();
        c.clone_from(self);
        c
    }

    /// Field by field, reusing the vectors' storage: the hot thread copies
    /// its counters into a stats buffer every publish without allocating.
    fn clone_from(&mut self, src: &Self) {
        self.frames = src.frames;
        self.evaluated = src.evaluated;
        self.crossed = src.crossed;
        self.empty = src.empty;
        self.overflow = src.overflow;
        self.duplicates = src.duplicates;
        self.server_shutdowns = src.server_shutdowns;
        self.replies = src.replies;
        self.errors = src.errors;
        self.frames_by_pair.clone_from(&src.frames_by_pair);
        self.alerts.clone_from(&src.alerts);
        self.local = src.local;
    }
}

impl EngineCounters {
    /// Total rejected frames.
    pub fn rejected(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Alerts fired by `trigger` for `pair`.
    pub fn alerts_for(&self, trigger: TriggerId, pair: PairId) -> u64 {
        let pairs = self.frames_by_pair.len();
        self.alerts.get(trigger.index() * pairs + pair.index()).copied().unwrap_or(0)
    }
}

/// Everything the engine needs to know, validated. Generic over the venue
/// whose messages it decodes (a direct call per frame, no `dyn`); Binance
/// Spot by default.
#[derive(Clone, Debug)]
pub struct EngineConfig<V: Venue = StreamTable> {
    /// Decodes messages into book events and names the pairs.
    pub venue: V,
    pub volume: VolumeSpec,
    pub triggers: Vec<TriggerSpec>,
    /// Level weights of `weighted_imbalance` (`metrics.decay`).
    pub weights: LevelWeights,
    /// Updates in the OFI window (`metrics.ofi_window`).
    pub ofi_window: usize,
    /// Only levels within this many basis points of the mid count
    /// (`metrics.band_bps`).
    pub band_bps: Option<u32>,
    /// Diff-depth books (`binance.book = "diff"`): their sizes. `None`: the
    /// venue sends partial-depth snapshots only.
    pub local_book: Option<LocalBookConfig>,
    /// Changed levels per side one diff event may carry.
    pub max_event_levels: usize,
}

impl<V: Venue> EngineConfig<V> {
    /// Default decay (0.5) and OFI window (10 updates), no band, partial
    /// depth.
    pub fn new(venue: V, volume: VolumeSpec, triggers: Vec<TriggerSpec>) -> Self {
        EngineConfig {
            venue,
            volume,
            triggers,
            weights: LevelWeights::from_decay(0.5),
            ofi_window: 10,
            band_bps: None,
            local_book: None,
            max_event_levels: MAX_EVENT_LEVELS,
        }
    }

    /// The same, keeping local books from diff events of `capacity` levels
    /// per side.
    pub fn with_local_book(mut self, capacity: usize) -> Self {
        self.local_book = Some(LocalBookConfig::new(capacity, self.volume.top_n, self.band_bps));
        self
    }
}

/// Changed levels per side one diff event may carry by default: the
/// largest event in the real recordings changes 1,076 levels in all.
pub const MAX_EVENT_LEVELS: usize = 8192;

/// What a snapshot for a pair's local book amounted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotOutcome {
    pub step: SnapshotStep,
    /// Held events the snapshot was followed by and that were evaluated.
    pub evaluated: u32,
    pub alerts: u32,
    /// Whether a held event skipped past it (the pair resyncs again).
    pub gap: bool,
}

/// The hot-path state machine. Generic over the action hook so a firing costs
/// a direct call, and the default hook nothing.
pub struct Engine<H: ActionHook = NoAction, V: Venue = StreamTable> {
    config: EngineConfig<V>,
    /// Every pair's book, the pending one a frame is decoded into, and
    /// their sequencing.
    books: BookStage,
    /// Diff-depth events and best bid/ask updates as decoded.
    scratch: EventScratch,
    /// Every pair's local book, in diff mode.
    local: Option<LocalBooks>,
    core: Core<H>,
}

/// What evaluates a book, apart from the books: triggers, metrics history,
/// counters, the alert sequence and the hook.
struct Core<H: ActionHook> {
    /// Every pair's triggers and their state.
    lanes: TriggerLanes,
    counters: EngineCounters,
    /// The metrics some trigger (or filter) needs, with their history.
    metrics: MetricSet,
    next_seq: u64,
    hook: H,
}

impl<V: Venue> Engine<NoAction, V> {
    /// An engine without an action hook.
    pub fn new(config: EngineConfig<V>) -> Self {
        Engine::with_hook(config, NoAction)
    }
}

impl<H: ActionHook, V: Venue> Engine<H, V> {
    /// An engine that calls `hook` inline on every firing.
    pub fn with_hook(config: EngineConfig<V>, hook: H) -> Self {
        let pairs = config.venue.pair_table().len();
        let triggers = config.triggers.len();
        let lanes = TriggerLanes::new(&config.triggers, config.venue.pair_table().ids());
        let metrics = MetricSet::new(needed_metrics(&config.triggers), pairs, config.ofi_window);
        let local = config.local_book.map(|c| LocalBooks::new(pairs, c));
        let scratch = EventScratch::with_capacity(if local.is_some() { config.max_event_levels } else { 0 });
        Engine {
            books: BookStage::new(pairs),
            scratch,
            local,
            core: Core {
                metrics,
                lanes,
                counters: EngineCounters {
                    frames_by_pair: vec![0; pairs],
                    alerts: vec![0; pairs * triggers],
                    ..EngineCounters::default()
                },
                next_seq: 1,
                hook,
            },
            config,
        }
    }

    /// Processes one WebSocket message received at `recv` (feed time).
    ///
    /// Never panics and never allocates on any input; every outcome is counted.
    pub fn on_frame(&mut self, bytes: &[u8], recv: UnixNanos, sink: &mut impl EngineSink) -> FrameOutcome {
        self.on_frame_timed(bytes, recv, sink, &mut NoClock)
    }

    /// [`Engine::on_frame`], telling `clock` when parsing ends and when the
    /// triggers have decided.
    #[inline]
    pub fn on_frame_timed(
        &mut self,
        bytes: &[u8],
        recv: UnixNanos,
        sink: &mut impl EngineSink,
        clock: &mut impl StageClock,
    ) -> FrameOutcome {
        self.core.counters.frames += 1;
        let outcome = self.process(bytes, recv, sink, clock);
        self.core.count(outcome);
        outcome
    }

    /// [`Engine::on_frame`] for a message already decoded into `book` and
    /// `events` by this venue's decoder (`decoded` is what it returned):
    /// several engines over one parse, as `evaluate`'s sweeps run them. The
    /// event is copied into this engine's own storage; everything after
    /// decoding is the same path.
    pub fn on_decoded(
        &mut self,
        decoded: Result<Message, RejectKind>,
        book: &Book,
        events: &EventScratch,
        recv: UnixNanos,
        sink: &mut impl EngineSink,
    ) -> FrameOutcome {
        self.core.counters.frames += 1;
        let copied = match decoded {
            Ok(Message::Book(_, BookEvent::Snapshot)) => self.books.pending_mut().map(|p| *p = *book).is_some(),
            Ok(Message::Book(_, BookEvent::Diff)) => self.scratch.diff.copy_from(&events.diff).is_ok(),
            Ok(Message::Book(_, BookEvent::Touch)) => {
                self.scratch.touch = events.touch;
                true
            }
            _ => true,
        };
        let outcome = if copied {
            self.after_decode(decoded, recv, sink, &mut NoClock)
        } else {
            FrameOutcome::Rejected(RejectKind::TooManyLevels)
        };
        self.core.count(outcome);
        outcome
    }

    #[inline]
    fn process(
        &mut self,
        bytes: &[u8],
        recv: UnixNanos,
        sink: &mut impl EngineSink,
        clock: &mut impl StageClock,
    ) -> FrameOutcome {
        let Some(pending) = self.books.pending_mut() else {
            return FrameOutcome::Rejected(RejectKind::NoStream);
        };
        let decoded = self.config.venue.decode(bytes, pending, &mut self.scratch);
        clock.parsed();
        self.after_decode(decoded, recv, sink, clock)
    }

    /// Sequencing, validity, metrics and triggers for a decoded message.
    #[inline]
    fn after_decode(
        &mut self,
        decoded: Result<Message, RejectKind>,
        recv: UnixNanos,
        sink: &mut impl EngineSink,
        clock: &mut impl StageClock,
    ) -> FrameOutcome {
        let (pair, event) = match decoded {
            Ok(Message::Book(pair, event)) => (pair, event),
            Ok(Message::ServerShutdown) => return FrameOutcome::ServerShutdown,
            Ok(Message::Reply) => return FrameOutcome::Reply,
            Err(e) => return FrameOutcome::Rejected(e),
        };
        if let Some(n) = self.core.counters.frames_by_pair.get_mut(pair.index()) {
            *n += 1;
        }
        match event {
            BookEvent::Snapshot => self.on_partial(pair, recv, sink, clock),
            BookEvent::Diff => self.on_diff(pair, recv, sink, clock),
            BookEvent::Touch => self.on_touch(pair, recv, sink, clock),
        }
    }

    /// A partial-depth snapshot in the pending book.
    #[inline]
    fn on_partial(
        &mut self,
        pair: PairId,
        recv: UnixNanos,
        sink: &mut impl EngineSink,
        clock: &mut impl StageClock,
    ) -> FrameOutcome {
        if self.books.sequence(pair) == Sequence::Duplicate {
            return FrameOutcome::Duplicate(pair);
        }
        let Some(book) = self.books.pending() else {
            return FrameOutcome::Rejected(RejectKind::NoStream);
        };
        let view = banded(book.view(), self.config.band_bps);
        let (imb, weighted) = match self.core.measure(&self.config, pair, &view) {
            Ok(m) => m,
            Err(outcome) => return outcome,
        };
        self.books.apply(pair);
        let Some(book) = self.books.book(pair) else {
            return FrameOutcome::Rejected(RejectKind::NoStream);
        };
        let view = banded(book.view(), self.config.band_bps);
        self.core.emit(&self.config, pair, &view, imb, weighted, recv, sink, clock)
    }

    /// A diff-depth event in the scratch.
    #[inline]
    fn on_diff(
        &mut self,
        pair: PairId,
        recv: UnixNanos,
        sink: &mut impl EngineSink,
        clock: &mut impl StageClock,
    ) -> FrameOutcome {
        let Some(local) = &mut self.local else { return FrameOutcome::Rejected(RejectKind::UnknownStream) };
        match local.on_diff(pair, &self.scratch.diff, recv) {
            DiffStep::Applied => self.evaluate_local(pair, recv, sink, clock),
            DiffStep::Stale => FrameOutcome::Stale(pair),
            DiffStep::Buffered => FrameOutcome::Buffered(pair),
            DiffStep::Gap => FrameOutcome::Resync(pair),
        }
    }

    /// A best bid/ask update in the scratch.
    #[inline]
    fn on_touch(
        &mut self,
        pair: PairId,
        recv: UnixNanos,
        sink: &mut impl EngineSink,
        clock: &mut impl StageClock,
    ) -> FrameOutcome {
        let Some(local) = &mut self.local else { return FrameOutcome::Rejected(RejectKind::UnknownStream) };
        match local.on_touch(pair, &self.scratch.touch) {
            TouchStep::Applied => self.evaluate_local(pair, recv, sink, clock),
            TouchStep::Stale => FrameOutcome::Stale(pair),
            TouchStep::Unsynced => FrameOutcome::Unsynced(pair),
        }
    }

    /// Metrics and triggers on `pair`'s local book as it is now.
    #[inline]
    fn evaluate_local(
        &mut self,
        pair: PairId,
        recv: UnixNanos,
        sink: &mut impl EngineSink,
        clock: &mut impl StageClock,
    ) -> FrameOutcome {
        let Some(view) = self.local.as_mut().and_then(|l| l.view(pair)) else {
            return FrameOutcome::Rejected(RejectKind::NoStream);
        };
        match self.core.measure(&self.config, pair, &view) {
            Ok((imb, weighted)) => self.core.emit(&self.config, pair, &view, imb, weighted, recv, sink, clock),
            Err(outcome) => outcome,
        }
    }

    /// A depth snapshot for `pair`'s local book (a REST reply to request
    /// `attempt`, or a recording's snapshot line: `attempt = None`). When it
    /// is applied, the events held since the stream opened follow, each
    /// evaluated as of its own receive time.
    pub fn on_snapshot(
        &mut self,
        pair: PairId,
        attempt: Option<u64>,
        last_update_id: u64,
        bids: &[Level],
        asks: &[Level],
        sink: &mut impl EngineSink,
    ) -> SnapshotOutcome {
        let mut out = SnapshotOutcome { step: SnapshotStep::Unwanted, evaluated: 0, alerts: 0, gap: false };
        let Some(local) = &mut self.local else { return out };
        out.step = local.on_snapshot(pair, attempt, last_update_id, bids, asks);
        if out.step != SnapshotStep::Applied {
            return out;
        }
        while let Some((step, recv)) = self.local.as_mut().and_then(|l| l.next_buffered(pair)) {
            match step {
                DiffStep::Applied => {
                    let outcome = self.evaluate_local(pair, recv, sink, &mut NoClock);
                    self.core.count(outcome);
                    if let FrameOutcome::Evaluated { alerts, .. } = outcome {
                        out.evaluated += 1;
                        out.alerts += alerts;
                    }
                }
                DiffStep::Gap => {
                    out.gap = true;
                    break;
                }
                DiffStep::Stale | DiffStep::Buffered => {}
            }
        }
        out
    }

    /// The local books (diff mode).
    pub fn local_books(&self) -> Option<&LocalBooks> {
        self.local.as_ref()
    }

    /// The local books, to hand out snapshot requests and streak reports.
    pub fn local_books_mut(&mut self) -> Option<&mut LocalBooks> {
        self.local.as_mut()
    }

    /// Marks `pairs` as delivered by two connections at once (or no longer).
    /// While set, a pair's snapshots that are not newer than its book are
    /// skipped as [`FrameOutcome::Duplicate`], so a make-before-break
    /// reconnection neither loses nor double-counts a frame. Clearing it
    /// keeps deduplicating until the remaining connection sends a newer
    /// snapshot: when the old connection was ahead, frames it already
    /// delivered may still be in flight on the new one.
    pub fn set_overlap(&mut self, pairs: &[PairId], on: bool) {
        self.books.set_overlap(pairs, on);
    }

    /// Running totals.
    pub fn counters(&self) -> &EngineCounters {
        &self.core.counters
    }

    /// Copies the local books' counters into [`EngineCounters::local`]
    /// (they are kept by the books; a publisher calls this before reading).
    pub fn sync_local_counters(&mut self) {
        self.core.counters.local = self.local.as_ref().map(|l| *l.counters());
    }

    /// The validated configuration the engine runs with.
    pub fn config(&self) -> &EngineConfig<V> {
        &self.config
    }

    /// The last evaluated partial-depth book of a pair.
    pub fn book(&self, pair: PairId) -> Option<&Book> {
        self.books.book(pair)
    }

    /// The exchange's event time (Unix ms) of the pair's book as last
    /// updated, whichever kind of book the pair has.
    pub fn event_time_ms(&self, pair: PairId) -> Option<u64> {
        match &self.local {
            Some(local) => local.event_time_ms(pair),
            None => self.books.book(pair).and_then(|b| b.event_time_ms),
        }
    }

    /// Trigger state of (pair, trigger), for inspection.
    pub fn trigger_state(&self, pair: PairId, trigger: TriggerId) -> Option<TriggerState> {
        self.core.lanes.state(pair, trigger)
    }

    /// The action hook, e.g. to read what an execution hook did.
    pub fn hook(&self) -> &H {
        &self.core.hook
    }
}

/// `view` within `band_bps` of its mid, when a band is configured.
#[inline(always)]
fn banded(view: BookView<'_>, band_bps: Option<u32>) -> BookView<'_> {
    match band_bps {
        None => view,
        Some(bps) => {
            let (bids, asks) = within_band(view.bids, view.asks, bps);
            BookView { bids, asks, ..view }
        }
    }
}

impl<H: ActionHook> Core<H> {
    #[inline]
    fn count(&mut self, outcome: FrameOutcome) {
        let c = &mut self.counters;
        match outcome {
            FrameOutcome::Evaluated { .. } => c.evaluated += 1,
            FrameOutcome::Crossed(_) => c.crossed += 1,
            FrameOutcome::Empty(_) => c.empty += 1,
            FrameOutcome::Overflow(_) => c.overflow += 1,
            FrameOutcome::Duplicate(_) => c.duplicates += 1,
            FrameOutcome::ServerShutdown => c.server_shutdowns += 1,
            FrameOutcome::Reply => c.replies += 1,
            // Counted by the local books.
            FrameOutcome::Buffered(_)
            | FrameOutcome::Stale(_)
            | FrameOutcome::Resync(_)
            | FrameOutcome::Unsynced(_) => {}
            FrameOutcome::Rejected(e) => {
                if let Some(n) = c.errors.get_mut(e.index()) {
                    *n += 1;
                }
            }
        }
    }

    /// Whether `view` can be evaluated, and its imbalance ratios.
    #[inline]
    fn measure<V: Venue>(
        &self,
        config: &EngineConfig<V>,
        pair: PairId,
        view: &BookView<'_>,
    ) -> Result<(Imbalance, Option<Reading>), FrameOutcome> {
        match view.shape() {
            BookShape::Valid => {}
            BookShape::Crossed => return Err(FrameOutcome::Crossed(pair)),
            BookShape::Empty => return Err(FrameOutcome::Empty(pair)),
        }
        let computed = if self.metrics.needs(MetricKind::WeightedImbalance) {
            imbalance_and_weighted(view, config.volume, &config.weights).map(|(imb, w)| (imb, w.ok()))
        } else {
            imbalance(view, config.volume).map(|imb| (imb, None))
        };
        match computed {
            Ok(both) => Ok(both),
            Err(MetricError::Overflow) => Err(FrameOutcome::Overflow(pair)),
            Err(MetricError::NoVolume | MetricError::OneSided | MetricError::Warmup) => Err(FrameOutcome::Empty(pair)),
        }
    }

    /// The remaining metrics, the triggers' decision and the alerts for
    /// `pair`'s book `view`, measured as `imb` (and `weighted`).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn emit<V: Venue>(
        &mut self,
        config: &EngineConfig<V>,
        pair: PairId,
        view: &BookView<'_>,
        imb: Imbalance,
        weighted: Option<Reading>,
        recv: UnixNanos,
        sink: &mut impl EngineSink,
        clock: &mut impl StageClock,
    ) -> FrameOutcome {
        let readings = self.metrics.readings(pair, imb.ratio, weighted, view);
        let (best_bid, best_ask) = view.best_prices();
        if sink.wants_metrics() {
            let exact = |m: MetricKind| readings[m.index()].map(|r| r.exact);
            sink.metric(&MetricUpdate {
                recv,
                pair,
                imbalance: imb,
                best_bid,
                best_ask,
                last_update_id: view.last_update_id,
                weighted_imbalance: exact(MetricKind::WeightedImbalance),
                microprice_offset_bps: exact(MetricKind::MicropriceOffsetBps),
                spread_bps: exact(MetricKind::SpreadBps),
                ofi: exact(MetricKind::Ofi),
            });
        }
        let total_volume = imb.bid.raw + imb.ask.raw;
        // Decide first, emit after: the decision loop keeps only what the
        // conditions need live, and the decision instant excludes the sinks.
        let fired = self.lanes.decide(&config.triggers, pair, &readings, total_volume, recv);
        clock.decided();
        let npairs = self.counters.frames_by_pair.len();
        for &tid in fired {
            let Some(spec) = config.triggers.get(tid.index()) else { continue };
            let Some(first) = &readings[spec.metric.index()] else { continue };
            let mut extra_values = [Fraction::default(); MAX_CONDITIONS - 1];
            for (c, slot) in spec.extra.iter().zip(extra_values.iter_mut()) {
                if let Some(r) = &readings[c.metric.index()] {
                    *slot = r.exact;
                }
            }
            let alert = Alert {
                seq: self.next_seq,
                recv,
                pair,
                trigger: tid,
                value: first.exact,
                extra_values,
                bid_volume: imb.bid,
                ask_volume: imb.ask,
                best_bid,
                best_ask,
                last_update_id: view.last_update_id,
            };
            self.next_seq += 1;
            if let Some(n) = self.counters.alerts.get_mut(tid.index() * npairs + pair.index()) {
                *n += 1;
            }
            self.hook.on_fire(&alert, view);
            sink.alert(&alert);
        }
        FrameOutcome::Evaluated { pair, alerts: fired.len() as u32 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{ActionHook, Alert};
    use crate::exact::Decimal;
    use crate::triggers::{Condition, Emit, MetricKind, Op};
    use crate::units::VolumeMode;
    use crate::venue::binance_spot::{Depth, StreamKind, UpdateSpeed};

    const SEC: u64 = 1_000_000_000;

    fn engine(triggers: Vec<TriggerSpec>) -> Engine {
        Engine::new(EngineConfig::new(
            StreamTable::new(
                &["BTCUSDT".into(), "ETHUSDT".into()],
                StreamKind { depth: Depth::D5, speed: UpdateSpeed::Ms100 },
            ),
            VolumeSpec { mode: VolumeMode::Qty, top_n: 5 },
            triggers,
        ))
    }

    /// A frame for `sym` with one bid and one ask level.
    fn frame(sym: &str, id: u64, bid: (&str, &str), ask: (&str, &str)) -> String {
        format!(
            r#"{{"stream":"{sym}@depth5@100ms","data":{{"lastUpdateId":{id},"bids":[["{}","{}"]],"asks":[["{}","{}"]]}}}}"#,
            bid.0, bid.1, ask.0, ask.1
        )
    }

    fn feed(e: &mut Engine, frames: &[(u64, String)]) -> Vec<Alert> {
        let mut out = Vec::new();
        for (t, f) in frames {
            e.on_frame(f.as_bytes(), UnixNanos(t * SEC), &mut out);
        }
        out
    }

    fn buy(emit: Emit) -> TriggerSpec {
        TriggerSpec::simple("buy", MetricKind::ImbalanceRatio, Op::Ge, 0.5, 0, emit)
    }

    #[test]
    fn crossed_and_empty_books_change_no_trigger_state() {
        let mut e = engine(vec![buy(Emit::Edge)]);
        let heavy = frame("btcusdt", 1, ("100", "9"), ("101", "1"));
        let crossed = frame("btcusdt", 2, ("102", "1"), ("101", "9"));
        let empty = r#"{"stream":"btcusdt@depth5@100ms","data":{"lastUpdateId":3,"bids":[],"asks":[]}}"#.to_string();
        let alerts = feed(&mut e, &[(1, heavy.clone()), (2, crossed), (3, empty), (4, heavy)]);
        // Still disarmed after the crossed/empty books: the episode fired once.
        assert_eq!(alerts.len(), 1);
        assert_eq!((e.counters().crossed, e.counters().empty, e.counters().evaluated), (1, 1, 2));
        assert_eq!(e.book(PairId(0)).unwrap().last_update_id, 1);
    }

    #[test]
    fn pair_filter_limits_a_trigger_to_its_pairs() {
        let mut t = buy(Emit::Level);
        t.pairs = Some(vec![PairId(1)]);
        let mut e = engine(vec![t]);
        let alerts = feed(
            &mut e,
            &[(1, frame("btcusdt", 1, ("100", "9"), ("101", "1"))), (2, frame("ethusdt", 1, ("10", "9"), ("11", "1")))],
        );
        assert_eq!(alerts.iter().map(|a| a.pair).collect::<Vec<_>>(), vec![PairId(1)]);
    }

    #[test]
    fn liquidity_filters_skip_thin_or_wide_books_and_pass_on_equality() {
        let mut t = buy(Emit::Level);
        t.min_volume = Some(10 * 100_000_000);
        t.max_spread_bps = Decimal::from_f64(200.0);
        let mut e = engine(vec![t]);
        let alerts = feed(
            &mut e,
            &[
                (1, frame("btcusdt", 1, ("99", "8"), ("101", "1"))),  // 9 < 10: thin
                (2, frame("btcusdt", 2, ("99", "9"), ("101", "1"))),  // 10, 200 bps: both equal, passes
                (3, frame("btcusdt", 3, ("98", "9"), ("101", "1"))),  // wider than 200 bps
                (4, frame("btcusdt", 4, ("99", "90"), ("101", "1"))), // passes
            ],
        );
        assert_eq!(alerts.iter().map(|a| a.last_update_id).collect::<Vec<_>>(), vec![2, 4]);
    }

    #[test]
    fn filtered_updates_do_not_rearm_an_edge_trigger() {
        let mut t = buy(Emit::Edge);
        t.max_spread_bps = Decimal::from_f64(300.0);
        let mut e = engine(vec![t]);
        let alerts = feed(
            &mut e,
            &[
                (1, frame("btcusdt", 1, ("99", "9"), ("101", "1"))),
                (2, frame("btcusdt", 2, ("90", "1"), ("101", "9"))), // false but filtered (wide)
                (3, frame("btcusdt", 3, ("99", "9"), ("101", "1"))),
            ],
        );
        assert_eq!(alerts.len(), 1);
    }

    #[test]
    fn all_conditions_must_hold_and_their_values_are_reported() {
        let mut t = buy(Emit::Level);
        t.extra = vec![Condition {
            metric: MetricKind::SpreadBps,
            op: Op::Le,
            value: 200.0,
            threshold: Decimal::from_f64(200.0).unwrap(),
        }];
        let mut e = engine(vec![t]);
        let alerts = feed(
            &mut e,
            &[
                (1, frame("btcusdt", 1, ("98", "9"), ("101", "1"))), // imbalance ok, spread 300 bps
                (2, frame("btcusdt", 2, ("99", "9"), ("101", "1"))), // both hold
                (3, frame("btcusdt", 3, ("99", "1"), ("101", "9"))), // spread ok, imbalance not
            ],
        );
        assert_eq!(alerts.len(), 1);
        assert_eq!((alerts[0].value_f64(), alerts[0].extra_values[0].to_f64()), (0.8, 200.0));
    }

    #[test]
    fn ofi_triggers_wait_for_a_full_window() {
        let t = TriggerSpec::simple("ofi", MetricKind::Ofi, Op::Gt, 0.0, 0, Emit::Level);
        let mut config = EngineConfig::new(
            StreamTable::new(&["BTCUSDT".into()], StreamKind { depth: Depth::D5, speed: UpdateSpeed::Ms100 }),
            VolumeSpec { mode: VolumeMode::Qty, top_n: 5 },
            vec![t],
        );
        config.ofi_window = 2;
        let mut e = Engine::new(config);
        let alerts = feed(
            &mut e,
            &[
                (1, frame("btcusdt", 1, ("100", "5"), ("101", "5"))),
                (2, frame("btcusdt", 2, ("100", "7"), ("101", "5"))),
                (3, frame("btcusdt", 3, ("100", "8"), ("101", "5"))),
            ],
        );
        assert_eq!(alerts.iter().map(|a| a.last_update_id).collect::<Vec<_>>(), vec![3]);
    }

    #[test]
    fn overlapping_connections_are_deduplicated_by_update_id() {
        let mut e = engine(vec![buy(Emit::Level)]);
        e.set_overlap(&[PairId(0)], true);
        let f = |id| frame("btcusdt", id, ("100", "9"), ("101", "1"));
        let alerts = feed(&mut e, &[(1, f(1)), (1, f(1)), (2, f(2)), (2, f(1)), (3, f(3))]);
        assert_eq!(alerts.iter().map(|a| a.last_update_id).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(e.counters().duplicates, 2);
        e.set_overlap(&[PairId(0)], false);
        // The old connection was ahead: what it delivered may still arrive on
        // the new one, until the new one sends something newer.
        let alerts = feed(&mut e, &[(4, f(2)), (4, f(3)), (5, f(4))]);
        assert_eq!(alerts.iter().map(|a| a.last_update_id).collect::<Vec<_>>(), vec![4]);
        assert_eq!(e.counters().duplicates, 4);
        // Then a restarted sequence is accepted (e.g. a looped recording).
        assert_eq!(feed(&mut e, &[(6, f(1))]).len(), 1);
    }

    #[derive(Default)]
    struct Recorder(Vec<(u64, u64)>);

    impl ActionHook for Recorder {
        fn on_fire(&mut self, alert: &Alert, book: &BookView<'_>) {
            self.0.push((alert.seq, book.last_update_id));
        }
    }

    #[test]
    fn the_action_hook_sees_every_firing_inline_with_its_book() {
        let config = EngineConfig::new(
            StreamTable::new(&["BTCUSDT".into()], StreamKind { depth: Depth::D5, speed: UpdateSpeed::Ms100 }),
            VolumeSpec { mode: VolumeMode::Qty, top_n: 5 },
            vec![buy(Emit::Level)],
        );
        let mut e = Engine::with_hook(config, Recorder::default());
        let mut out = Vec::new();
        for id in 1..=2 {
            e.on_frame(frame("btcusdt", id, ("100", "9"), ("101", "1")).as_bytes(), UnixNanos(id), &mut out);
        }
        assert_eq!(e.hook().0, vec![(1, 1), (2, 2)]);
    }
}
