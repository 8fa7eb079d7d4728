//! The triggers stage: when a metric reading becomes an alert.
//!
//! Semantics (DESIGN.md, exact; tests rely on them). State is kept per
//! (pair, trigger):
//!
//! * *condition* = `metric op value`, evaluated on every evaluated book update
//!   of the pair (crossed or empty books never reach this module).
//! * *cooled* = the pair has never fired this trigger, or its last firing was at
//!   least `cooldown` ago in feed time (nanoseconds).
//! * `level` fires on every update where condition and cooled hold.
//! * `edge` is armed at start and re-arms on every update where the condition
//!   is false; it fires when condition, armed and cooled all hold, and firing
//!   disarms it. An episode that begins inside the cooldown therefore fires on
//!   its first update after the cooldown ends, and a condition that stays true
//!   fires once.
//!
//! Options (all optional; without them the rules above hold unchanged):
//!
//! * `rearm` (edge only) — hysteresis: after a firing, the trigger re-arms
//!   only on an update where the (first) metric is strictly past `rearm` on
//!   the non-firing side (`< rearm` for `>`/`>=`, `> rearm` for `<`/`<=`),
//!   instead of on any update where the condition is false.
//! * `sustain_ms` — confirmation: the condition must have held on every
//!   evaluated update for at least this long (feed time) before the trigger
//!   fires; an update where it fails restarts the clock. The clock starts at
//!   the first update where it holds, so `sustain_ms = 0` changes nothing.
//! * `min_volume`, `max_spread_bps` — liquidity filters: on an update where
//!   BidVol + AskVol (top_n, the trigger's volume unit) is below `min_volume`,
//!   or the spread is wider than `max_spread_bps` (or a side is empty), the
//!   trigger is not evaluated at all and its state does not change, exactly
//!   as for a crossed book. Equality passes.
//! * `all = [{metric, op, value}, …]` — the condition is the conjunction; one
//!   cooldown and one state for the whole trigger. An update on which any of
//!   its metrics cannot be computed (e.g. OFI still warming up) is not
//!   evaluated.
//!
//! Time is passed in, never read here, so live runs, replays and tests share
//! one deterministic engine.

use std::cmp::Ordering;

use crate::exact::{Decimal, Reading};
use crate::pairs::PairId;
use crate::units::UnixNanos;

/// Comparison between a metric and a trigger's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize)]
pub enum Op {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
}

impl Op {
    /// The operator as written in the config.
    pub const fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }

    /// Whether `reading op threshold` holds, given `reading.cmp(threshold)`.
    ///
    /// A bit test, not a branch per operator: bit `ord + 1` of the
    /// operator's mask says whether that ordering satisfies it.
    #[inline(always)]
    pub fn holds(self, ord: Ordering) -> bool {
        // Bits: 0 = Less, 1 = Equal, 2 = Greater; indexed by `Op as usize`.
        const ACCEPTS: [u8; 4] = [0b100, 0b110, 0b001, 0b011];
        let accepts = ACCEPTS[self as usize & 3];
        accepts & (1 << (ord as i8 + 1)) != 0
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a trigger fires once per episode or on every qualifying update.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Emit {
    /// Once when the condition becomes true (and the cooldown allows).
    #[default]
    Edge,
    /// On every update while the condition holds (and the cooldown allows).
    Level,
}

impl Emit {
    /// The name used in the config.
    pub const fn as_str(self) -> &'static str {
        match self {
            Emit::Edge => "edge",
            Emit::Level => "level",
        }
    }
}

pub use crate::metrics::{MetricKind, Readings};

/// Index of a trigger, in config order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TriggerId(pub u16);

impl TriggerId {
    /// The index into per-trigger vectors.
    #[inline]
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// Most conditions in one `all = […]` trigger; keeps alert records fixed-size.
pub const MAX_CONDITIONS: usize = 4;

/// One `metric op value` comparison.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Condition {
    pub metric: MetricKind,
    pub op: Op,
    /// The threshold as configured, for display.
    pub value: f64,
    /// The same threshold, exactly, for the comparison.
    pub threshold: Decimal,
}

impl Condition {
    /// Whether `reading op value` holds, exactly.
    #[inline]
    pub fn holds(&self, reading: &Reading) -> bool {
        self.op.holds(reading.cmp_decimal(&self.threshold))
    }
}

/// A validated trigger definition. The first (or only) condition is stored
/// inline as `metric/op/value/threshold`; further `all` conditions in `extra`.
#[derive(Clone, Debug, PartialEq)]
pub struct TriggerSpec {
    pub name: String,
    pub metric: MetricKind,
    pub op: Op,
    /// The threshold as configured, for display.
    pub value: f64,
    /// The same threshold, exactly, for the comparison.
    pub threshold: Decimal,
    /// Conditions 2..=4 of an `all` trigger (empty for a single condition).
    pub extra: Vec<Condition>,
    /// Minimum feed time between two firings for one pair.
    pub cooldown_ns: u64,
    pub emit: Emit,
    /// Pairs this trigger watches; `None` means every pair.
    pub pairs: Option<Vec<PairId>>,
    /// Hysteresis level for `edge` re-arming (on the non-firing side of `value`).
    pub rearm: Option<Decimal>,
    /// How long the condition must hold before firing, nanoseconds.
    pub sustain_ns: u64,
    /// Skip books whose BidVol + AskVol (raw, in the volume mode's unit) is below this.
    pub min_volume: Option<u128>,
    /// Skip books whose spread in bps is wider than this.
    pub max_spread_bps: Option<Decimal>,
}

impl TriggerSpec {
    /// A single-condition trigger with no options, as DESIGN.md's base rules.
    pub fn simple(name: &str, metric: MetricKind, op: Op, value: f64, cooldown_ns: u64, emit: Emit) -> Self {
        TriggerSpec {
            name: name.into(),
            metric,
            op,
            value,
            threshold: Decimal::from_f64(value).unwrap_or(Decimal::ZERO),
            extra: Vec::new(),
            cooldown_ns,
            emit,
            pairs: None,
            rearm: None,
            sustain_ns: 0,
            min_volume: None,
            max_spread_bps: None,
        }
    }

    /// Whether the trigger watches `pair`.
    pub fn applies_to(&self, pair: PairId) -> bool {
        self.pairs.as_ref().is_none_or(|p| p.contains(&pair))
    }

    /// The first condition.
    pub fn primary(&self) -> Condition {
        Condition { metric: self.metric, op: self.op, value: self.value, threshold: self.threshold }
    }

    /// Every condition, the first one first.
    pub fn conditions(&self) -> impl Iterator<Item = Condition> + '_ {
        std::iter::once(self.primary()).chain(self.extra.iter().copied())
    }

    /// Whether a reading of the first metric is past the re-arm level, on the
    /// non-firing side.
    #[inline(always)]
    pub fn past_rearm(&self, first: &Reading) -> bool {
        let Some(r) = &self.rearm else { return false };
        let ord = first.cmp_decimal(r);
        match self.op {
            Op::Gt | Op::Ge => ord == Ordering::Less,
            Op::Lt | Op::Le => ord == Ordering::Greater,
        }
    }
}

/// Per (pair, trigger) state. Lives in the engine for the whole run, so it
/// survives reconnects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TriggerState {
    armed: bool,
    last_fired: Option<UnixNanos>,
    /// Start of the current run of updates where the condition held.
    holding_since: Option<UnixNanos>,
}

impl Default for TriggerState {
    fn default() -> Self {
        TriggerState { armed: true, last_fired: None, holding_since: None }
    }
}

impl TriggerState {
    /// Whether an `edge` trigger is armed.
    pub fn armed(&self) -> bool {
        self.armed
    }

    /// Feed time of the last firing, if any.
    pub fn last_fired(&self) -> Option<UnixNanos> {
        self.last_fired
    }
}

/// What one evaluated update says about a trigger's condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observation {
    /// Every condition holds.
    pub condition: bool,
    /// The first metric is past the `rearm` level (false without `rearm`).
    pub past_rearm: bool,
}

/// Applies one evaluated update at feed time `now`; returns whether the
/// trigger fires. Filters have already been applied by the caller (a
/// filtered update never reaches here).
#[inline(always)]
pub fn step(spec: &TriggerSpec, state: &mut TriggerState, obs: Observation, now: UnixNanos) -> bool {
    if !obs.condition {
        state.holding_since = None;
        if spec.emit == Emit::Edge && (spec.rearm.is_none() || obs.past_rearm) {
            state.armed = true;
        }
        return false;
    }
    let since = *state.holding_since.get_or_insert(now);
    let sustained = now.0.saturating_sub(since.0) >= spec.sustain_ns;
    let cooled = state.last_fired.is_none_or(|t| now.0.saturating_sub(t.0) >= spec.cooldown_ns);
    let fire = sustained
        && cooled
        && match spec.emit {
            Emit::Level => true,
            Emit::Edge => state.armed,
        };
    if fire {
        state.armed = false;
        state.last_fired = Some(now);
    }
    fire
}

/// [`step`] for a single-condition trigger from its reading.
#[inline]
pub fn evaluate(spec: &TriggerSpec, state: &mut TriggerState, reading: &Reading, now: UnixNanos) -> bool {
    let obs = Observation { condition: spec.primary().holds(reading), past_rearm: spec.past_rearm(reading) };
    step(spec, state, obs, now)
}

/// The metrics the triggers need on every update, by [`MetricKind::index`]:
/// each condition's metric, and the spread for a `max_spread_bps` filter.
/// Only these are computed.
pub fn needed_metrics(triggers: &[TriggerSpec]) -> [bool; MetricKind::COUNT] {
    let mut needs = [false; MetricKind::COUNT];
    for t in triggers {
        for c in t.conditions() {
            needs[c.metric.index()] = true;
        }
        if t.max_spread_bps.is_some() {
            needs[MetricKind::SpreadBps.index()] = true;
        }
    }
    needs
}

/// Every pair's triggers and their state: the decision loop.
///
/// Per pair, the triggers watching it in config order, each with its state
/// for that pair, so a decision walks one contiguous slice. Storage is sized
/// at start-up; deciding never allocates.
#[derive(Clone, Debug)]
pub struct TriggerLanes {
    lanes: Vec<Vec<(TriggerId, TriggerState)>>,
    /// Triggers that fired on the current update, in config order; capacity
    /// is the trigger count, so it never grows.
    fired: Vec<TriggerId>,
}

impl TriggerLanes {
    /// Lanes for `pairs`, each holding the triggers that apply to it.
    pub fn new(triggers: &[TriggerSpec], pairs: impl Iterator<Item = PairId>) -> Self {
        let lanes = pairs
            .map(|p| {
                (0..triggers.len())
                    .filter(|&t| triggers[t].applies_to(p))
                    .map(|t| (TriggerId(t as u16), TriggerState::default()))
                    .collect()
            })
            .collect();
        TriggerLanes { lanes, fired: Vec::with_capacity(triggers.len()) }
    }

    /// Decides every trigger watching `pair` on one evaluated update at feed
    /// time `now`: applies the filters (`min_volume` against `total_volume`,
    /// `max_spread_bps` against the spread reading), then the conditions and
    /// [`step`]. Returns the triggers that fired, in config order.
    ///
    /// A filtered update, or one where a needed reading is `None`, leaves
    /// that trigger's state untouched, as the module rules say.
    #[inline]
    pub fn decide(
        &mut self,
        specs: &[TriggerSpec],
        pair: PairId,
        readings: &Readings,
        total_volume: u128,
        now: UnixNanos,
    ) -> &[TriggerId] {
        self.fired.clear();
        let Some(lanes) = self.lanes.get_mut(pair.index()) else { return &self.fired };
        'triggers: for (tid, state) in lanes.iter_mut() {
            let tid = *tid;
            let Some(spec) = specs.get(tid.index()) else { continue };
            if spec.min_volume.is_some_and(|min| total_volume < min) {
                continue;
            }
            if let Some(max) = &spec.max_spread_bps {
                match &readings[MetricKind::SpreadBps.index()] {
                    Some(r) if r.cmp_decimal(max) != Ordering::Greater => {}
                    _ => continue,
                }
            }
            let Some(first) = &readings[spec.metric.index()] else { continue };
            let mut condition = spec.op.holds(first.cmp_decimal(&spec.threshold));
            for c in &spec.extra {
                let Some(r) = &readings[c.metric.index()] else { continue 'triggers };
                condition &= c.holds(r);
            }
            // Only a false condition can re-arm: the re-arm comparison is
            // skipped on every other update.
            let obs = Observation { condition, past_rearm: !condition && spec.past_rearm(first) };
            if step(spec, state, obs, now) && self.fired.len() < self.fired.capacity() {
                self.fired.push(tid);
            }
        }
        &self.fired
    }

    /// State of (pair, trigger), for inspection.
    pub fn state(&self, pair: PairId, trigger: TriggerId) -> Option<TriggerState> {
        self.lanes.get(pair.index())?.iter().find(|(id, _)| *id == trigger).map(|&(_, state)| state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::Fraction;

    const SEC: u64 = 1_000_000_000;

    fn spec(op: Op, value: f64, cooldown_ns: u64, emit: Emit) -> TriggerSpec {
        TriggerSpec::simple("t", MetricKind::ImbalanceRatio, op, value, cooldown_ns, emit)
    }

    /// A reading of `num/100` exactly.
    fn r(num: i64) -> Reading {
        Reading::new(Fraction { negative: num < 0, mag: u128::from(num.unsigned_abs()), den: 100 })
    }

    /// Feeds `(seconds, ratio×100)` updates and returns the times that fired.
    fn run(spec: &TriggerSpec, updates: &[(u64, i64)]) -> Vec<u64> {
        let mut st = TriggerState::default();
        updates.iter().filter(|&&(t, v)| evaluate(spec, &mut st, &r(v), UnixNanos(t * SEC))).map(|&(t, _)| t).collect()
    }

    #[test]
    fn operators_compare_exactly_at_the_threshold() {
        assert!(Op::Ge.holds(r(25).cmp_decimal(&Decimal::from_f64(0.25).unwrap())));
        assert!(!Op::Gt.holds(r(25).cmp_decimal(&Decimal::from_f64(0.25).unwrap())));
        assert!(Op::Le.holds(r(-25).cmp_decimal(&Decimal::from_f64(-0.25).unwrap())));
        assert!(!Op::Lt.holds(r(-25).cmp_decimal(&Decimal::from_f64(-0.25).unwrap())));
        assert!(Op::Lt.holds(r(-26).cmp_decimal(&Decimal::from_f64(-0.25).unwrap())));
    }

    #[test]
    fn every_operator_accepts_exactly_its_orderings() {
        use Ordering::*;
        for (op, accepted) in
            [(Op::Gt, [Greater].as_slice()), (Op::Ge, &[Greater, Equal]), (Op::Lt, &[Less]), (Op::Le, &[Less, Equal])]
        {
            for ord in [Less, Equal, Greater] {
                assert_eq!(op.holds(ord), accepted.contains(&ord), "{op} on {ord:?}");
            }
        }
    }

    #[test]
    fn edge_fires_once_per_episode_and_rearms_when_false() {
        let s = spec(Op::Ge, 0.25, 0, Emit::Edge);
        assert_eq!(run(&s, &[(1, 30), (2, 40), (3, 25), (4, 10), (5, 30), (6, 30)]), vec![1, 5]);
    }

    #[test]
    fn level_fires_on_every_update_while_true() {
        let s = spec(Op::Ge, 0.25, 0, Emit::Level);
        assert_eq!(run(&s, &[(1, 30), (2, 40), (3, 10), (4, 30)]), vec![1, 2, 4]);
    }

    #[test]
    fn level_respects_the_cooldown() {
        let s = spec(Op::Ge, 0.25, 3 * SEC, Emit::Level);
        assert_eq!(run(&s, &[(1, 30), (2, 30), (3, 30), (4, 30), (5, 30), (7, 30)]), vec![1, 4, 7]);
    }

    #[test]
    fn edge_fires_when_episode_outlives_cooldown() {
        // Fires at 1, false at 2 (re-arms), true again at 3 inside the cooldown:
        // held back, and fires at 11, the first update after the cooldown.
        let s = spec(Op::Ge, 0.25, 10 * SEC, Emit::Edge);
        assert_eq!(run(&s, &[(1, 30), (2, 0), (3, 30), (5, 30), (11, 30), (12, 30)]), vec![1, 11]);
    }

    #[test]
    fn edge_episode_that_ends_inside_cooldown_is_not_fired_late() {
        let s = spec(Op::Ge, 0.25, 10 * SEC, Emit::Edge);
        assert_eq!(run(&s, &[(1, 30), (2, 0), (3, 30), (4, 0), (12, 0)]), vec![1]);
    }

    #[test]
    fn cooldown_boundary_is_exact_to_the_nanosecond() {
        let s = spec(Op::Ge, 0.25, 2_500_000_000, Emit::Level);
        let mut st = TriggerState::default();
        let t0 = 1_000_000_000_000;
        assert!(evaluate(&s, &mut st, &r(30), UnixNanos(t0)));
        assert!(!evaluate(&s, &mut st, &r(30), UnixNanos(t0 + 2_499_999_999)));
        assert!(evaluate(&s, &mut st, &r(30), UnixNanos(t0 + 2_500_000_000)));
    }

    #[test]
    fn sell_side_triggers_fire_on_negative_imbalance() {
        let s = spec(Op::Le, -0.25, 0, Emit::Edge);
        assert_eq!(run(&s, &[(1, -10), (2, -25), (3, -90), (4, 0), (5, -30)]), vec![2, 5]);
    }

    #[test]
    fn rearm_requires_the_metric_past_the_hysteresis_level() {
        let mut s = spec(Op::Ge, 0.25, 0, Emit::Edge);
        s.rearm = Decimal::from_f64(0.15);
        // 0.20 is below the trigger but not past 0.15: no re-arm, no refire.
        assert_eq!(run(&s, &[(1, 30), (2, 20), (3, 30), (4, 14), (5, 30)]), vec![1, 5]);
    }

    #[test]
    fn rearm_exactly_at_the_level_does_not_rearm() {
        let mut s = spec(Op::Ge, 0.25, 0, Emit::Edge);
        s.rearm = Decimal::from_f64(0.15);
        assert_eq!(run(&s, &[(1, 30), (2, 15), (3, 30), (4, 14), (5, 30)]), vec![1, 5]);
        let mut sell = spec(Op::Le, -0.25, 0, Emit::Edge);
        sell.rearm = Decimal::from_f64(-0.15);
        assert_eq!(run(&sell, &[(1, -30), (2, -15), (3, -30), (4, -14), (5, -30)]), vec![1, 5]);
    }

    #[test]
    fn sustain_fires_once_the_condition_has_held_long_enough() {
        let mut s = spec(Op::Ge, 0.25, 0, Emit::Edge);
        s.sustain_ns = 2 * SEC;
        assert_eq!(run(&s, &[(1, 30), (2, 30), (3, 30), (4, 30)]), vec![3]);
    }

    #[test]
    fn sustain_clock_restarts_when_the_condition_fails() {
        let mut s = spec(Op::Ge, 0.25, 0, Emit::Level);
        s.sustain_ns = 2 * SEC;
        assert_eq!(run(&s, &[(1, 30), (2, 30), (3, 10), (4, 30), (5, 30), (6, 30), (7, 30)]), vec![6, 7]);
    }

    #[test]
    fn clock_going_backwards_does_not_end_a_cooldown() {
        let s = spec(Op::Ge, 0.25, 5 * SEC, Emit::Level);
        assert_eq!(run(&s, &[(10, 30), (4, 30), (14, 30), (15, 30)]), vec![10, 15]);
    }
}
