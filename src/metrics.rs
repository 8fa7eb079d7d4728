//! The metrics stage: exact side volumes, the imbalance ratio and the rest of
//! the book-pressure family.
//!
//! Volumes are integer sums (u128, checked); every metric is kept as an exact
//! fraction so a trigger's comparison with its threshold is exact to the last
//! unit — `f64` is only the human-readable rendering of the same value. Each
//! metric is one function over a pair's book (OFI also over its own small
//! fixed-size history), registered by [`MetricKind`].

use crate::book::{Level, Sides};
use crate::exact::{Fraction, Reading, mul_u64};
use crate::pairs::PairId;
use crate::units::{Volume, VolumeMode};

/// The metrics a trigger can watch. `as_str` is the name in configs, logs
/// and the journal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// `(BidVol − AskVol) / (BidVol + AskVol)` over `top_n` levels, in [-1, 1].
    #[default]
    ImbalanceRatio,
    /// The same ratio with level i weighted by `decay^i` (level 0 = best).
    WeightedImbalance,
    /// Stoikov's microprice from the best level, as basis points from the mid.
    MicropriceOffsetBps,
    /// `(ask − bid) / mid` in basis points.
    SpreadBps,
    /// Order-flow imbalance at the best level (Cont, Kukanov & Stoikov 2014),
    /// summed over a window of updates and divided by the window's mean depth.
    Ofi,
}

impl MetricKind {
    /// Every metric, in [`MetricKind::index`] order.
    pub const ALL: [MetricKind; 5] = [
        MetricKind::ImbalanceRatio,
        MetricKind::WeightedImbalance,
        MetricKind::MicropriceOffsetBps,
        MetricKind::SpreadBps,
        MetricKind::Ofi,
    ];

    /// Number of metrics; sizes per-metric arrays.
    pub const COUNT: usize = Self::ALL.len();

    /// The name used in the config, logs and the journal.
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricKind::ImbalanceRatio => "imbalance_ratio",
            MetricKind::WeightedImbalance => "weighted_imbalance",
            MetricKind::MicropriceOffsetBps => "microprice_offset_bps",
            MetricKind::SpreadBps => "spread_bps",
            MetricKind::Ofi => "ofi",
        }
    }

    /// Position in [`MetricKind::ALL`].
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The closed range the metric's values lie in (thresholds outside it
    /// could never fire, so the config rejects them).
    pub const fn range(self) -> (f64, f64) {
        match self {
            MetricKind::ImbalanceRatio | MetricKind::WeightedImbalance => (-1.0, 1.0),
            MetricKind::MicropriceOffsetBps => (-10_000.0, 10_000.0),
            MetricKind::SpreadBps => (0.0, 20_000.0),
            MetricKind::Ofi => (f64::MIN, f64::MAX),
        }
    }
}

impl std::fmt::Display for MetricKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which levels and which measure enter a volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VolumeSpec {
    pub mode: VolumeMode,
    /// Levels per side summed, best first (1..=depth).
    pub top_n: usize,
}

/// Why no metric could be computed for a valid book.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetricError {
    /// Both sides' volumes are zero: the ratio is undefined.
    #[error("both sides have zero volume")]
    NoVolume,
    /// A sum exceeded 128 bits (only possible with absurd prices and quantities).
    #[error("a volume sum overflowed 128 bits")]
    Overflow,
    /// The metric needs both a best bid and a best ask.
    #[error("the book has only one side")]
    OneSided,
    /// The metric needs more history (OFI before its window is full).
    #[error("not enough updates yet")]
    Warmup,
}

/// One level's volume in the mode's unit: qty, or price × qty (a 64 × 64-bit
/// product, exact in u128).
#[inline(always)]
fn level_volume(l: &Level, mode: VolumeMode) -> u128 {
    match mode {
        VolumeMode::Qty => u128::from(l.qty.0),
        VolumeMode::Notional => u128::from(l.price.0) * u128::from(l.qty.0),
    }
}

/// The first `top_n` of a side's levels (best first).
#[inline(always)]
fn top(levels: &[Level], top_n: usize) -> &[Level] {
    levels.get(..top_n.min(levels.len())).unwrap_or(levels)
}

/// Σ qty or Σ price × qty over the first `top_n` levels of a side, exactly.
///
/// Sides are read as slices of levels, best first, so a book holding
/// thousands of levels and a 20-level snapshot are the same to a metric.
#[inline]
pub fn side_volume(levels: &[Level], spec: VolumeSpec) -> Result<u128, MetricError> {
    let mut sum: u128 = 0;
    for l in top(levels, spec.top_n) {
        // At most 20 terms: only notional sums of absurd values can overflow.
        sum = sum.checked_add(level_volume(l, spec.mode)).ok_or(MetricError::Overflow)?;
    }
    Ok(sum)
}

/// `(bid − ask) / (bid + ask)` exactly, from two side sums.
#[inline]
fn ratio(bid: u128, ask: u128) -> Result<Fraction, MetricError> {
    let den = bid.checked_add(ask).ok_or(MetricError::Overflow)?;
    if den == 0 {
        return Err(MetricError::NoVolume);
    }
    Ok(Fraction { negative: ask > bid, mag: bid.abs_diff(ask), den })
}

/// The imbalance of one book: both side volumes and the ratio.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Imbalance {
    pub bid: Volume,
    pub ask: Volume,
    /// `(bid − ask) / (bid + ask)`, in [-1, 1].
    pub ratio: Reading,
}

/// `(BidVol − AskVol) / (BidVol + AskVol)` over the first `top_n` levels.
#[inline]
pub fn imbalance(book: &impl Sides, spec: VolumeSpec) -> Result<Imbalance, MetricError> {
    let bid = side_volume(book.bids(), spec)?;
    let ask = side_volume(book.asks(), spec)?;
    Ok(Imbalance {
        bid: Volume { raw: bid, mode: spec.mode },
        ask: Volume { raw: ask, mode: spec.mode },
        ratio: Reading::new(ratio(bid, ask)?),
    })
}

/// [`imbalance`] and [`weighted_imbalance`] in one pass over the levels:
/// each level's volume (a 64 × 64-bit product in notional mode) is computed
/// once for both sums. The weighted reading carries its own error, which
/// does not stop the plain one.
///
/// The weighted sums are accumulated without overflow checks: every weight
/// is at most [`LevelWeights::MAX`] < 2³⁰, so `Σ vᵢ·wᵢ ≤ 2³⁰ · Σ vᵢ`, which
/// fits in 128 bits whenever the (checked) plain sum is below 2⁹⁸ — always,
/// for real books. Only beyond that are the weighted sums redone with checks.
#[inline]
pub fn imbalance_and_weighted(
    book: &impl Sides,
    spec: VolumeSpec,
    w: &LevelWeights,
) -> Result<(Imbalance, Result<Reading, MetricError>), MetricError> {
    /// Plain sums below this keep the unchecked weighted sum exact.
    const EXACT_BELOW: u128 = 1 << (128 - LevelWeights::MAX_BITS);
    #[inline(always)]
    fn sides(levels: &[Level], spec: VolumeSpec, w: &LevelWeights) -> Result<(u128, u128), MetricError> {
        let (mut plain, mut weighted) = (0u128, 0u128);
        for (l, &wi) in top(levels, spec.top_n).iter().zip(w.0.iter()) {
            let v = level_volume(l, spec.mode);
            plain = plain.checked_add(v).ok_or(MetricError::Overflow)?;
            weighted = weighted.wrapping_add(v.wrapping_mul(u128::from(wi)));
        }
        Ok((plain, weighted))
    }
    #[cold]
    fn checked_weighted(levels: &[Level], spec: VolumeSpec, w: &LevelWeights) -> Option<u128> {
        top(levels, spec.top_n)
            .iter()
            .zip(w.0.iter())
            .try_fold(0u128, |acc, (l, &wi)| mul_u64(level_volume(l, spec.mode), wi).and_then(|t| acc.checked_add(t)))
    }
    let (bid, mut wbid) = sides(book.bids(), spec, w)?;
    let (ask, mut wask) = sides(book.asks(), spec, w)?;
    let imb = Imbalance {
        bid: Volume { raw: bid, mode: spec.mode },
        ask: Volume { raw: ask, mode: spec.mode },
        ratio: Reading::new(ratio(bid, ask)?),
    };
    if bid >= EXACT_BELOW || ask >= EXACT_BELOW {
        match (checked_weighted(book.bids(), spec, w), checked_weighted(book.asks(), spec, w)) {
            (Some(b), Some(a)) => (wbid, wask) = (b, a),
            _ => return Ok((imb, Err(MetricError::Overflow))),
        }
    }
    Ok((imb, ratio(wbid, wask).map(Reading::new)))
}

/// Per-level weights of [`weighted_imbalance`]: `decay^i` at scale 1e9,
/// rounded once at start-up; every sum after that is exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelWeights([u64; crate::book::MAX_LEVELS]);

/// Scale of [`LevelWeights`].
const WEIGHT_SCALE: f64 = 1e9;

impl LevelWeights {
    /// The largest weight (`decay⁰`); every weight is at most this.
    pub const MAX: u64 = WEIGHT_SCALE as u64;
    /// Bits in [`LevelWeights::MAX`].
    const MAX_BITS: u32 = u64::BITS - Self::MAX.leading_zeros();

    /// Weights for `decay` in (0, 1] (the config rejects anything else; a
    /// value outside is clamped so no weight ever exceeds [`LevelWeights::MAX`]).
    pub fn from_decay(decay: f64) -> Self {
        let decay = if decay.is_nan() { 1.0 } else { decay.clamp(0.0, 1.0) };
        let mut w = [0u64; crate::book::MAX_LEVELS];
        for (i, slot) in w.iter_mut().enumerate() {
            *slot = ((decay.powi(i as i32) * WEIGHT_SCALE).round() as u64).min(Self::MAX);
        }
        LevelWeights(w)
    }
}

/// The imbalance ratio with level `i` weighted by `decay^i`: pressure at the
/// touch counts more than far levels.
#[inline]
pub fn weighted_imbalance(book: &impl Sides, spec: VolumeSpec, w: &LevelWeights) -> Result<Reading, MetricError> {
    imbalance_and_weighted(book, spec, w)?.1
}

/// The best bid and ask levels, when both sides have one.
#[inline]
pub(crate) fn touch(book: &impl Sides) -> Result<(Level, Level), MetricError> {
    match (book.bids().first(), book.asks().first()) {
        (Some(&b), Some(&a)) => Ok((b, a)),
        _ => Err(MetricError::OneSided),
    }
}

/// `(ask − bid) / mid × 10⁴ = 2·10⁴ (ask − bid) / (ask + bid)`.
#[inline]
pub fn spread_bps(book: &impl Sides) -> Result<Reading, MetricError> {
    let (b, a) = touch(book)?;
    spread_bps_at(&b, &a)
}

/// [`spread_bps`] from the best bid and ask levels.
#[inline]
pub(crate) fn spread_bps_at(b: &Level, a: &Level) -> Result<Reading, MetricError> {
    let (bid, ask) = (u128::from(b.price.0), u128::from(a.price.0));
    let spread = ask.checked_sub(bid).ok_or(MetricError::OneSided)?;
    Ok(Reading::new(Fraction { negative: false, mag: spread * 20_000, den: bid + ask }))
}

/// Stoikov's microprice `(bid·askQty + ask·bidQty)/(bidQty + askQty)` as basis
/// points from the mid. Algebraically
/// `10⁴ (ask − bid)(bidQty − askQty) / ((bidQty + askQty)(bid + ask))`:
/// positive when the bid queue is the heavier one (price pressure upwards).
#[inline]
pub fn microprice_offset_bps(book: &impl Sides) -> Result<Reading, MetricError> {
    let (b, a) = touch(book)?;
    microprice_offset_bps_at(&b, &a)
}

/// [`microprice_offset_bps`] from the best bid and ask levels.
#[inline]
pub(crate) fn microprice_offset_bps_at(b: &Level, a: &Level) -> Result<Reading, MetricError> {
    let (bq, aq) = (b.qty.0, a.qty.0);
    let qsum = u128::from(bq) + u128::from(aq);
    if qsum == 0 {
        return Err(MetricError::NoVolume);
    }
    let spread = a.price.0.checked_sub(b.price.0).ok_or(MetricError::OneSided)?;
    // 64 × 64 bits always fits in 128; only the scalings can overflow.
    let mag = mul_u64(u128::from(spread) * u128::from(bq.abs_diff(aq)), 10_000).ok_or(MetricError::Overflow)?;
    let psum = u128::from(b.price.0) + u128::from(a.price.0);
    let den = match u64::try_from(psum) {
        Ok(p) => mul_u64(qsum, p),
        Err(_) => qsum.checked_mul(psum),
    }
    .ok_or(MetricError::Overflow)?;
    Ok(Reading::new(Fraction { negative: aq > bq, mag, den }))
}

/// Order-flow imbalance over the last `window` updates of one pair.
///
/// Per update n (Cont, Kukanov & Stoikov 2014), from the best levels:
/// `e = 1[Pb ≥ Pb'] qb − 1[Pb ≤ Pb'] qb' − 1[Pa ≤ Pa'] qa + 1[Pa ≥ Pa'] qa'`
/// (primes: the previous update). The metric is `Σe / D` with `D` the mean
/// best-level depth `(qb + qa)/2` over the same updates, i.e.
/// `2N·Σe / Σ(qb + qa)` — dimensionless, comparable across pairs. It exists
/// once `window` differences have been seen. Storage is allocated once.
/// The window keeps the touch of the last book it was shown, so any kind of
/// book (a snapshot, the local book updated in place) feeds it the same way.
#[derive(Clone, Debug)]
pub struct OfiWindow {
    /// The touch of the previous book shown (`None` before the first, or
    /// when that book was one-sided).
    prev: Option<(Level, Level)>,
    e: Vec<i128>,
    depth: Vec<u128>,
    next: usize,
    filled: usize,
    sum_e: i128,
    sum_depth: u128,
}

impl OfiWindow {
    /// A window of `n ≥ 1` updates.
    pub fn new(n: usize) -> Self {
        let n = n.max(1);
        OfiWindow { prev: None, e: vec![0; n], depth: vec![0; n], next: 0, filled: 0, sum_e: 0, sum_depth: 0 }
    }

    /// Adds the step from the previous book shown to `cur` (consecutive
    /// evaluated books of the pair). A step from or to a one-sided book adds
    /// nothing.
    #[inline]
    pub fn push(&mut self, cur: &impl Sides) {
        let now = touch(cur).ok();
        let (Some((pb, pa)), Some((cb, ca))) = (std::mem::replace(&mut self.prev, now), now) else { return };
        let q = |x: crate::units::Qty| i128::from(x.0);
        let mut e: i128 = 0;
        if cb.price >= pb.price {
            e += q(cb.qty);
        }
        if cb.price <= pb.price {
            e -= q(pb.qty);
        }
        if ca.price <= pa.price {
            e -= q(ca.qty);
        }
        if ca.price >= pa.price {
            e += q(pa.qty);
        }
        let depth = u128::from(cb.qty.0) + u128::from(ca.qty.0);
        let len = self.e.len();
        let (Some(old_e), Some(old_d)) = (self.e.get_mut(self.next), self.depth.get_mut(self.next)) else { return };
        if self.filled == len {
            self.sum_e -= *old_e;
            self.sum_depth -= *old_d;
        } else {
            self.filled += 1;
        }
        *old_e = e;
        *old_d = depth;
        self.sum_e += e;
        self.sum_depth += depth;
        self.next = if self.next + 1 == len { 0 } else { self.next + 1 };
    }

    /// The normalised OFI once the window is full.
    #[inline]
    pub fn reading(&self) -> Result<Reading, MetricError> {
        if self.filled < self.e.len() {
            return Err(MetricError::Warmup);
        }
        if self.sum_depth == 0 {
            return Err(MetricError::NoVolume);
        }
        let mag = mul_u64(self.sum_e.unsigned_abs(), 2 * self.e.len() as u64).ok_or(MetricError::Overflow)?;
        Ok(Reading::new(Fraction { negative: self.sum_e < 0, mag, den: self.sum_depth }))
    }
}

/// One update's metric readings, by [`MetricKind::index`]; `None` where a
/// metric cannot be computed on this book (or is not needed).
pub type Readings = [Option<Reading>; MetricKind::COUNT];

/// The metrics some trigger needs, computed per update, with the history
/// the stateful ones keep (OFI windows, one per pair). Sized at start-up.
#[derive(Clone, Debug)]
pub struct MetricSet {
    /// Which metrics to compute, by [`MetricKind::index`].
    needs: [bool; MetricKind::COUNT],
    /// OFI history per pair (empty unless `ofi` is needed).
    ofi: Vec<OfiWindow>,
}

impl MetricSet {
    /// The metrics in `needs`, for `pairs` pairs; OFI over `ofi_window` updates.
    pub fn new(needs: [bool; MetricKind::COUNT], pairs: usize, ofi_window: usize) -> Self {
        let ofi = if needs[MetricKind::Ofi.index()] { vec![OfiWindow::new(ofi_window); pairs] } else { Vec::new() };
        MetricSet { needs, ofi }
    }

    /// Whether `kind` is computed.
    #[inline]
    pub fn needs(&self, kind: MetricKind) -> bool {
        self.needs[kind.index()]
    }

    /// Readings holding only the two imbalance ratios (computed by the
    /// caller in one pass over the levels).
    #[inline]
    pub fn ratios_only(ratio: Reading, weighted: Option<Reading>) -> Readings {
        let mut r = [None; MetricKind::COUNT];
        r[MetricKind::ImbalanceRatio.index()] = Some(ratio);
        r[MetricKind::WeightedImbalance.index()] = weighted;
        r
    }

    /// The needed metrics for `pair`'s new `book`, beside the ratios (this
    /// updates the OFI history with the book).
    #[inline]
    pub fn readings(&mut self, pair: PairId, ratio: Reading, weighted: Option<Reading>, book: &impl Sides) -> Readings {
        let mut r = Self::ratios_only(ratio, weighted);
        let (micro, spread) = (self.needs(MetricKind::MicropriceOffsetBps), self.needs(MetricKind::SpreadBps));
        // Both touch metrics from one look at the best levels.
        if (micro || spread)
            && let Ok((b, a)) = touch(book)
        {
            if micro {
                r[MetricKind::MicropriceOffsetBps.index()] = microprice_offset_bps_at(&b, &a).ok();
            }
            if spread {
                r[MetricKind::SpreadBps.index()] = spread_bps_at(&b, &a).ok();
            }
        }
        if let Some(window) = self.ofi.get_mut(pair.index()) {
            window.push(book);
            r[MetricKind::Ofi.index()] = window.reading().ok();
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::{Book, Level};
    use crate::exact::Decimal;
    use crate::units::{Price, Qty};
    use std::cmp::Ordering::*;

    fn book(bids: &[(u64, u64)], asks: &[(u64, u64)]) -> Book {
        let mut b = Book::default();
        for &(p, q) in bids {
            b.bids.push(Level { price: Price(p), qty: Qty(q) }).unwrap();
        }
        for &(p, q) in asks {
            b.asks.push(Level { price: Price(p), qty: Qty(q) }).unwrap();
        }
        b
    }

    fn frac(negative: bool, mag: u128, den: u128) -> Fraction {
        Fraction { negative, mag, den }
    }

    #[test]
    fn ratio_uses_only_the_top_n_levels() {
        let b = book(&[(100, 3), (99, 100)], &[(101, 1), (102, 100)]);
        let one = imbalance(&b, VolumeSpec { mode: VolumeMode::Qty, top_n: 1 }).unwrap();
        assert_eq!(one.ratio.exact, frac(false, 2, 4));
        assert_eq!(one.ratio.value(), 0.5);
        let all = imbalance(&b, VolumeSpec { mode: VolumeMode::Qty, top_n: 20 }).unwrap();
        assert_eq!((all.bid.raw, all.ask.raw), (103, 101));
    }

    #[test]
    fn notional_multiplies_price_by_qty_exactly() {
        // 61837.63 × 3.78826 = 234257.0202238 exactly (scale 1e16).
        let b = book(&[(6_183_763_000_000, 378_826_000)], &[]);
        let v = imbalance(&b, VolumeSpec { mode: VolumeMode::Notional, top_n: 10 }).unwrap();
        assert_eq!(v.bid.to_string(), "234257.0202238");
        assert_eq!(v.ratio.value(), 1.0);
    }

    #[test]
    fn empty_volume_gives_no_metric() {
        let b = book(&[(100, 0)], &[(101, 0)]);
        assert_eq!(imbalance(&b, VolumeSpec { mode: VolumeMode::Qty, top_n: 5 }), Err(MetricError::NoVolume));
    }

    #[test]
    fn absurd_notional_sums_overflow_as_an_error_not_a_panic() {
        let b = book(&[(u64::MAX, u64::MAX), (u64::MAX - 1, u64::MAX)], &[]);
        assert_eq!(imbalance(&b, VolumeSpec { mode: VolumeMode::Notional, top_n: 5 }), Err(MetricError::Overflow));
    }

    #[test]
    fn spread_is_in_basis_points_of_the_mid() {
        // bid 99, ask 101: spread 2 on a mid of 100 = 200 bps.
        let b = book(&[(99, 1)], &[(101, 1)]);
        assert_eq!(spread_bps(&b).unwrap().exact, frac(false, 40_000, 200));
        assert_eq!(spread_bps(&b).unwrap().value(), 200.0);
        assert_eq!(spread_bps(&book(&[(99, 1)], &[])), Err(MetricError::OneSided));
    }

    #[test]
    fn microprice_leans_towards_the_thinner_queue() {
        // bid 99 ×3, ask 101 ×1: micro = (99·1 + 101·3)/4 = 100.5, mid 100 → +50 bps.
        let b = book(&[(99, 3)], &[(101, 1)]);
        let r = microprice_offset_bps(&b).unwrap();
        assert_eq!(r.value(), 50.0);
        assert_eq!(r.exact.cmp_decimal(&Decimal::from_f64(50.0).unwrap()), Equal);
        let sell = microprice_offset_bps(&book(&[(99, 1)], &[(101, 3)])).unwrap();
        assert_eq!(sell.value(), -50.0);
        assert_eq!(microprice_offset_bps(&book(&[(99, 2)], &[(101, 2)])).unwrap().value(), 0.0);
    }

    #[test]
    fn weighted_imbalance_discounts_far_levels() {
        // Bids heavy far from the touch, asks heavy at the touch.
        let b = book(&[(100, 1), (99, 9)], &[(101, 3), (102, 1)]);
        let spec = VolumeSpec { mode: VolumeMode::Qty, top_n: 2 };
        let plain = imbalance(&b, spec).unwrap().ratio.value();
        let w = weighted_imbalance(&b, spec, &LevelWeights::from_decay(0.5)).unwrap();
        // plain: (10 − 4)/14; weighted: (1 + 4.5 − 3 − 0.5)/(1 + 4.5 + 3 + 0.5) = 2/9.
        assert_eq!(plain, 6.0 / 14.0);
        assert_eq!(w.exact.cmp_decimal(&Decimal::from_f64(0.2).unwrap()), Greater);
        assert_eq!(w.value(), 2.0 / 9.0);
        let flat = weighted_imbalance(&b, spec, &LevelWeights::from_decay(1.0)).unwrap();
        assert_eq!(flat.value(), plain);
    }

    /// `Σ vᵢ·wᵢ` level by level with checked 128-bit arithmetic: the
    /// reference the unchecked one-pass sums must agree with.
    fn weighted_reference(levels: &[(u64, u64)], mode: VolumeMode, w: &LevelWeights) -> Option<u128> {
        levels.iter().zip(w.0).try_fold(0u128, |acc, (&(p, q), wi)| {
            let v = match mode {
                VolumeMode::Qty => u128::from(q),
                VolumeMode::Notional => u128::from(p) * u128::from(q),
            };
            acc.checked_add(v.checked_mul(u128::from(wi))?)
        })
    }

    fn weighted_expected(bids: &[(u64, u64)], asks: &[(u64, u64)], mode: VolumeMode) -> Result<Reading, MetricError> {
        let w = LevelWeights::from_decay(0.5);
        match (weighted_reference(bids, mode, &w), weighted_reference(asks, mode, &w)) {
            (Some(b), Some(a)) => ratio(b, a).map(Reading::new),
            _ => Err(MetricError::Overflow),
        }
    }

    #[test]
    fn the_one_pass_weighted_sums_equal_the_checked_reference() {
        let bids = [(6_183_763_000_000, 378_826_000), (6_183_762_000_000, 61_700_000)];
        let asks = [(6_183_764_000_000, 160_520_000)];
        let w = LevelWeights::from_decay(0.5);
        for mode in [VolumeMode::Qty, VolumeMode::Notional] {
            let spec = VolumeSpec { mode, top_n: 10 };
            let (imb, weighted) = imbalance_and_weighted(&book(&bids, &asks), spec, &w).unwrap();
            assert_eq!(imb, imbalance(&book(&bids, &asks), spec).unwrap());
            assert_eq!(weighted, weighted_expected(&bids, &asks, mode));
        }
    }

    #[test]
    fn weighted_sums_beyond_the_unchecked_bound_are_exact_or_an_overflow() {
        let spec = VolumeSpec { mode: VolumeMode::Notional, top_n: 10 };
        let w = LevelWeights::from_decay(0.5);
        // A level-5 notional of 2¹⁰⁰ puts the plain sum past 2⁹⁸; its weight
        // (0.5⁵ · 10⁹ < 2²⁵) keeps the weighted sum in 128 bits: exact.
        const P: u64 = 1 << 50;
        let far = [(P + 5, 1), (P + 4, 1), (P + 3, 1), (P + 2, 1), (P + 1, 1), (P, P)];
        let asks = [(P + 6, 7)];
        let (imb, weighted) = imbalance_and_weighted(&book(&far, &asks), spec, &w).unwrap();
        assert!(imb.bid.raw >= 1 << 98);
        assert!(weighted.is_ok());
        assert_eq!(weighted, weighted_expected(&far, &asks, VolumeMode::Notional));
        // The same notional at the touch (weight 10⁹ ≈ 2³⁰) overflows the
        // weighted sum only; the plain ratio is still computed.
        let near = [(P, P)];
        let (imb, weighted) = imbalance_and_weighted(&book(&near, &asks), spec, &w).unwrap();
        assert_eq!(imb.bid.raw, 1 << 100);
        assert_eq!(weighted, Err(MetricError::Overflow));
        assert_eq!(weighted_expected(&near, &asks, VolumeMode::Notional), Err(MetricError::Overflow));
    }

    #[test]
    fn weights_never_exceed_the_bound_the_unchecked_sums_rely_on() {
        for decay in [0.5, 1.0, 1.5, f64::NAN, -1.0, f64::INFINITY] {
            let w = LevelWeights::from_decay(decay);
            assert!(w.0.iter().all(|&x| x <= LevelWeights::MAX), "decay {decay}: {:?}", w.0);
        }
        assert_eq!(LevelWeights::MAX_BITS, 30);
    }

    #[test]
    fn ofi_follows_cont_kukanov_stoikov_and_needs_a_full_window() {
        let mut w = OfiWindow::new(2);
        let b0 = book(&[(100, 5)], &[(101, 5)]);
        // Bid queue grows at the same price: e = 7 − 5 = +2 (ask unchanged: −5 + 5).
        let b1 = book(&[(100, 7)], &[(101, 5)]);
        w.push(&b0);
        assert_eq!(w.reading(), Err(MetricError::Warmup), "the first book is no step");
        w.push(&b1);
        assert_eq!(w.reading(), Err(MetricError::Warmup));
        // Both prices fall by one tick: the old bid queue is gone (e_b = −7)
        // and the ask improves with 4 (e_a = −4): e = −11, Σe = 2 − 11 = −9.
        let b2 = book(&[(99, 7)], &[(100, 4)]);
        w.push(&b2);
        // Depth: (7+5) + (7+4) = 23 → OFI = 2·2·(−9)/23.
        let r = w.reading().unwrap();
        assert_eq!(r.exact, frac(true, 36, 23));
        // A one-sided book breaks the chain: neither step around it counts.
        let one_sided = book(&[(99, 7)], &[]);
        w.push(&one_sided);
        w.push(&b2);
        assert_eq!(w.reading().unwrap().exact, frac(true, 36, 23));
    }
}
