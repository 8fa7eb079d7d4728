//! The record a firing trigger produces, and the traits through which the
//! engine hands records out.
//!
//! Records are fixed-size and `Copy`: the hot thread fills them on the stack
//! and moves them through a bounded channel without allocating. Names (pair,
//! trigger) travel as indices and are looked up on the cold side.

use crate::book::BookView;
use crate::exact::Fraction;
use crate::metrics::Imbalance;
use crate::pairs::PairId;
use crate::triggers::TriggerId;
use crate::units::{Price, UnixNanos, Volume};

/// One trigger firing for one pair on one book update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Alert {
    /// Engine-wide sequence number, from 1, in firing order.
    pub seq: u64,
    /// Feed time of the frame that fired it.
    pub recv: UnixNanos,
    pub pair: PairId,
    pub trigger: TriggerId,
    /// The (first) condition's metric value, exact. Rendering it as `f64`
    /// (correctly rounded, a few 128-bit divisions) is left to whoever reads
    /// it, off the hot path: [`Alert::value_f64`].
    pub value: Fraction,
    /// Values of conditions 2..=4 of an `all` trigger, in order (unused slots are 0).
    pub extra_values: [Fraction; crate::triggers::MAX_CONDITIONS - 1],
    pub bid_volume: Volume,
    pub ask_volume: Volume,
    pub best_bid: Option<Price>,
    pub best_ask: Option<Price>,
    /// Binance's `lastUpdateId` of the book that fired.
    pub last_update_id: u64,
}

impl Alert {
    /// The (first) metric value, correctly rounded.
    pub fn value_f64(&self) -> f64 {
        self.value.to_f64()
    }
}

/// A metric reading of one evaluated book update, for the metric log and
/// the history's `samples` table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricUpdate {
    pub recv: UnixNanos,
    pub pair: PairId,
    pub imbalance: Imbalance,
    /// The book's touch, for the dashboard's best bid/ask and spread and the
    /// history's `samples` rows.
    pub best_bid: Option<Price>,
    pub best_ask: Option<Price>,
    /// Binance's `lastUpdateId` of the evaluated book.
    pub last_update_id: u64,
    /// The other metrics, exact, by [`crate::metrics::MetricKind`]; `None`
    /// where no trigger needs the metric (it is not computed then) or the
    /// book does not allow it (e.g. OFI before its window has two books).
    pub weighted_imbalance: Option<Fraction>,
    pub microprice_offset_bps: Option<Fraction>,
    pub spread_bps: Option<Fraction>,
    pub ofi: Option<Fraction>,
}

#[cfg(test)]
impl MetricUpdate {
    /// An update of `pair` received at `recv_ms` whose `last_update_id` is
    /// `recv_ms`, with empty volumes and no other metric: for tests of what
    /// is done with updates (sampling, hand-off), not of their values.
    pub(crate) fn at_ms(pair: PairId, recv_ms: u64) -> Self {
        MetricUpdate {
            recv: UnixNanos(recv_ms * 1_000_000),
            pair,
            imbalance: Imbalance {
                bid: Volume::default(),
                ask: Volume::default(),
                ratio: crate::exact::Reading::new(Fraction::default()),
            },
            last_update_id: recv_ms,
            best_bid: None,
            best_ask: None,
            weighted_imbalance: None,
            microprice_offset_bps: None,
            spread_bps: None,
            ofi: None,
        }
    }
}

/// Where the engine puts what it produces for one frame. Implementations on
/// the hot path must not block or allocate.
pub trait EngineSink {
    /// Called for every alert, in firing order.
    fn alert(&mut self, alert: &Alert);

    /// Called for every evaluated update when [`EngineSink::wants_metrics`] is true.
    fn metric(&mut self, _update: &MetricUpdate) {}

    /// Whether metric updates are wanted at all (checked per frame).
    fn wants_metrics(&self) -> bool {
        false
    }
}

/// Collects alerts into a vector; for replays and tests (allocates).
impl EngineSink for Vec<Alert> {
    fn alert(&mut self, alert: &Alert) {
        self.push(*alert);
    }
}

/// The hot-side action hook: called inline when a trigger fires, before the
/// alert is handed to the cold side. This is where auto-execution belongs,
/// because an order must not wait for another thread. It must not block or
/// allocate. The engine is generic over it, so the default costs nothing.
pub trait ActionHook {
    /// `book` is the book that fired, as the metrics saw it (the partial
    /// snapshot, or the local book with its touch overlay and price band).
    fn on_fire(&mut self, alert: &Alert, book: &BookView<'_>);
}

/// The default hook: does nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoAction;

impl ActionHook for NoAction {
    #[inline(always)]
    fn on_fire(&mut self, _alert: &Alert, _book: &BookView<'_>) {}
}
