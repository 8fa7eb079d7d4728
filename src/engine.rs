//! The deterministic engine: one frame in, alerts out.
//!
//! [`Engine::on_frame`] is the single entry point the live feed, `replay` and
//! the tests all call: parse → book → metric → triggers → sink. It owns every
//! pair's book and trigger state and allocates nothing per frame; storage is
//! sized once in [`Engine::new`].

use crate::alert::{ActionHook, Alert, EngineSink, MetricUpdate, NoAction};
use crate::book::{Book, BookShape};
use crate::exchange::binance::{Message, PairId, ParseError, StreamTable, parse_message};
use crate::metrics::{MetricError, VolumeSpec, imbalance};
use crate::triggers::{TriggerId, TriggerSpec, TriggerState, evaluate};
use crate::units::UnixNanos;

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
    /// Binance announced this connection will close.
    ServerShutdown,
    /// A reply to a request on the connection.
    Reply,
    /// The frame was rejected; nothing changed.
    Rejected(ParseError),
}

/// Running totals since start. Plain integers: read them between frames.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineCounters {
    pub frames: u64,
    pub evaluated: u64,
    pub crossed: u64,
    pub empty: u64,
    pub overflow: u64,
    pub duplicates: u64,
    pub server_shutdowns: u64,
    pub replies: u64,
    /// Rejected frames by [`ParseError::index`].
    pub errors: [u64; ParseError::COUNT],
    /// Depth frames accepted per pair (evaluated or not).
    pub frames_by_pair: Vec<u64>,
    /// Alerts fired, at `trigger * pairs + pair`.
    pub alerts: Vec<u64>,
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

/// Everything the engine needs to know, validated.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub streams: StreamTable,
    pub volume: VolumeSpec,
    pub triggers: Vec<TriggerSpec>,
}

/// The hot-path state machine. Generic over the action hook so a firing costs
/// a direct call, and the default hook nothing.
pub struct Engine<H: ActionHook = NoAction> {
    config: EngineConfig,
    /// Book storage: one slot per pair plus one scratch slot a frame is
    /// parsed into; a valid frame swaps its slot with the pair's.
    slots: Vec<Book>,
    current: Vec<usize>,
    scratch: usize,
    /// Triggers watching each pair.
    watching: Vec<Vec<TriggerId>>,
    /// State at `pair * triggers + trigger`.
    states: Vec<TriggerState>,
    counters: EngineCounters,
    /// Pairs currently delivered by two connections; their frames are
    /// deduplicated by `lastUpdateId`.
    overlap: Vec<bool>,
    /// Whether the pair has an evaluated book yet.
    has_book: Vec<bool>,
    next_seq: u64,
    hook: H,
}

impl Engine<NoAction> {
    /// An engine without an action hook.
    pub fn new(config: EngineConfig) -> Self {
        Engine::with_hook(config, NoAction)
    }
}

impl<H: ActionHook> Engine<H> {
    /// An engine that calls `hook` inline on every firing.
    pub fn with_hook(config: EngineConfig, hook: H) -> Self {
        let pairs = config.streams.len();
        let triggers = config.triggers.len();
        let watching = config
            .streams
            .pairs()
            .map(|p| (0..triggers).filter(|&t| config.triggers[t].applies_to(p)).map(|t| TriggerId(t as u16)).collect())
            .collect();
        Engine {
            slots: vec![Book::default(); pairs + 1],
            current: (0..pairs).collect(),
            scratch: pairs,
            watching,
            states: vec![TriggerState::default(); pairs * triggers],
            counters: EngineCounters {
                frames_by_pair: vec![0; pairs],
                alerts: vec![0; pairs * triggers],
                ..EngineCounters::default()
            },
            overlap: vec![false; pairs],
            has_book: vec![false; pairs],
            next_seq: 1,
            hook,
            config,
        }
    }

    /// Processes one WebSocket message received at `recv` (feed time).
    ///
    /// Never panics and never allocates on any input; every outcome is counted.
    pub fn on_frame(&mut self, bytes: &[u8], recv: UnixNanos, sink: &mut impl EngineSink) -> FrameOutcome {
        self.counters.frames += 1;
        let outcome = self.process(bytes, recv, sink);
        let c = &mut self.counters;
        match outcome {
            FrameOutcome::Evaluated { .. } => c.evaluated += 1,
            FrameOutcome::Crossed(_) => c.crossed += 1,
            FrameOutcome::Empty(_) => c.empty += 1,
            FrameOutcome::Overflow(_) => c.overflow += 1,
            FrameOutcome::Duplicate(_) => c.duplicates += 1,
            FrameOutcome::ServerShutdown => c.server_shutdowns += 1,
            FrameOutcome::Reply => c.replies += 1,
            FrameOutcome::Rejected(e) => {
                if let Some(n) = c.errors.get_mut(e.index()) {
                    *n += 1;
                }
            }
        }
        outcome
    }

    #[inline]
    fn process(&mut self, bytes: &[u8], recv: UnixNanos, sink: &mut impl EngineSink) -> FrameOutcome {
        let Some(scratch) = self.slots.get_mut(self.scratch) else {
            return FrameOutcome::Rejected(ParseError::NoStream);
        };
        let pair = match parse_message(bytes, &self.config.streams, scratch) {
            Ok(Message::Depth(pair)) => pair,
            Ok(Message::ServerShutdown) => return FrameOutcome::ServerShutdown,
            Ok(Message::Reply) => return FrameOutcome::Reply,
            Err(e) => return FrameOutcome::Rejected(e),
        };
        if let Some(n) = self.counters.frames_by_pair.get_mut(pair.index()) {
            *n += 1;
        }
        let Some(book) = self.slots.get(self.scratch) else {
            return FrameOutcome::Rejected(ParseError::NoStream);
        };
        if self.overlap.get(pair.index()).copied().unwrap_or(false)
            && self.has_book.get(pair.index()).copied().unwrap_or(false)
            && let Some(cur) = self.current.get(pair.index()).and_then(|&i| self.slots.get(i))
            && book.last_update_id <= cur.last_update_id
        {
            return FrameOutcome::Duplicate(pair);
        }
        match book.shape() {
            BookShape::Valid => {}
            BookShape::Crossed => return FrameOutcome::Crossed(pair),
            BookShape::Empty => return FrameOutcome::Empty(pair),
        }
        let imb = match imbalance(book, self.config.volume) {
            Ok(imb) => imb,
            Err(MetricError::NoVolume) => return FrameOutcome::Empty(pair),
            Err(MetricError::Overflow) => return FrameOutcome::Overflow(pair),
        };
        // Commit: the scratch slot becomes the pair's book (an index swap, no copy).
        if let Some(cur) = self.current.get_mut(pair.index()) {
            std::mem::swap(cur, &mut self.scratch);
        }
        if let Some(h) = self.has_book.get_mut(pair.index()) {
            *h = true;
        }
        if sink.wants_metrics() {
            sink.metric(&MetricUpdate { recv, pair, imbalance: imb });
        }
        let ntrig = self.config.triggers.len();
        let npairs = self.current.len();
        let (best_bid, best_ask) = book.best_prices();
        let mut fired = 0;
        let Some(watching) = self.watching.get(pair.index()) else {
            return FrameOutcome::Evaluated { pair, alerts: 0 };
        };
        for &tid in watching {
            let (Some(spec), Some(state)) =
                (self.config.triggers.get(tid.index()), self.states.get_mut(pair.index() * ntrig + tid.index()))
            else {
                continue;
            };
            if evaluate(spec, state, &imb.ratio, recv) {
                let alert = Alert {
                    seq: self.next_seq,
                    recv,
                    pair,
                    trigger: tid,
                    value: imb.ratio.value,
                    bid_volume: imb.bid,
                    ask_volume: imb.ask,
                    best_bid,
                    best_ask,
                    last_update_id: book.last_update_id,
                };
                self.next_seq += 1;
                fired += 1;
                if let Some(n) = self.counters.alerts.get_mut(tid.index() * npairs + pair.index()) {
                    *n += 1;
                }
                self.hook.on_fire(&alert, book);
                sink.alert(&alert);
            }
        }
        FrameOutcome::Evaluated { pair, alerts: fired }
    }

    /// Marks `pairs` as delivered by two connections at once (or no longer).
    /// While set, a pair's snapshots that are not newer than its book are
    /// skipped as [`FrameOutcome::Duplicate`], so a make-before-break
    /// reconnection neither loses nor double-counts a frame.
    pub fn set_overlap(&mut self, pairs: &[PairId], on: bool) {
        for p in pairs {
            if let Some(o) = self.overlap.get_mut(p.index()) {
                *o = on;
            }
        }
    }

    /// Running totals.
    pub fn counters(&self) -> &EngineCounters {
        &self.counters
    }

    /// The validated configuration the engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The last evaluated book of a pair.
    pub fn book(&self, pair: PairId) -> Option<&Book> {
        self.current.get(pair.index()).and_then(|&s| self.slots.get(s))
    }

    /// Trigger state of (pair, trigger), for inspection.
    pub fn trigger_state(&self, pair: PairId, trigger: TriggerId) -> Option<TriggerState> {
        self.states.get(pair.index() * self.config.triggers.len() + trigger.index()).copied()
    }

    /// The action hook, e.g. to read what an execution hook did.
    pub fn hook(&self) -> &H {
        &self.hook
    }
}
