//! The metrics stage: exact side volumes, the imbalance ratio and the rest of
//! the book-pressure family.
//!
//! Volumes are integer sums (u128, checked); every metric is kept as an exact
//! fraction so a trigger's comparison with its threshold is exact to the last
//! unit — `f64` is only the human-readable rendering of the same value. Each
//! metric is one function over a pair's book (OFI also over its own small
//! fixed-size history), registered by [`MetricKind`].

use crate::book::{Book, BookSide, Level, SideKind};
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
fn level_volume(l: &crate::book::Level, mode: VolumeMode) -> u128 {
    match mode {
        VolumeMode::Qty => u128::from(l.qty.0),
        VolumeMode::Notional => u128::from(l.price.0) * u128::from(l.qty.0),
    }
}

/// The first `top_n` levels of a side, best first.
#[inline(always)]
fn top<S: SideKind>(side: &BookSide<S>, top_n: usize) -> &[crate::book::Level] {
    let levels = side.levels();
    levels.get(..top_n.min(levels.len())).unwrap_or(levels)
}

/// Σ qty or Σ price × qty over the first `top_n` levels of a side, exactly.
#[inline]
pub fn side_volume<S: SideKind>(side: &BookSide<S>, spec: VolumeSpec) -> Result<u128, MetricError> {
    let mut sum: u128 = 0;
    for l in top(side, spec.top_n) {
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

/// An exact signed fraction `±mag / den` with `den > 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fraction {
    pub negative: bool,
    pub mag: u128,
    pub den: u128,
}

impl Default for Fraction {
    /// Zero.
    fn default() -> Self {
        Fraction { negative: false, mag: 0, den: 1 }
    }
}

impl From<Decimal> for Fraction {
    fn from(d: Decimal) -> Self {
        Fraction { negative: d.negative, mag: u128::from(d.mag), den: u128::from(d.den()) }
    }
}

impl Fraction {
    /// The correctly rounded `f64` (round half to even), for what people
    /// read: alert values, the journal, logs. Exact operands take one IEEE
    /// division; larger ones a long division (a few hundred ns), which is why
    /// the hot path only asks for it when an alert fires.
    pub fn to_f64(self) -> f64 {
        let v = div_correctly_rounded(self.mag, self.den);
        if self.negative { -v } else { v }
    }

    /// A quick `f64` within two ulps, for per-frame gauges where the last
    /// digit does not matter.
    #[inline]
    pub fn approx_f64(self) -> f64 {
        let v = self.mag as f64 / self.den as f64;
        if self.negative { -v } else { v }
    }

    /// Exact three-way comparison with a decimal threshold.
    #[inline]
    pub fn cmp_decimal(self, t: &Decimal) -> std::cmp::Ordering {
        use std::cmp::Ordering::*;
        let self_neg = self.negative && self.mag != 0;
        let t_neg = t.negative && t.mag != 0;
        match (self_neg, t_neg) {
            (true, false) => return Less,
            (false, true) => return Greater,
            _ => {}
        }
        // Same sign: compare magnitudes |a|/d vs |t|/10^k by cross-multiplying
        // into 192 bits, then flip for negatives.
        let lhs = mul_wide(self.mag, t.den());
        let rhs = mul_wide(self.den, t.mag);
        let ord = lhs.cmp(&rhs);
        if self_neg { ord.reverse() } else { ord }
    }
}

/// `a / b` rounded once to the nearest `f64`, ties to even.
fn div_correctly_rounded(a: u128, b: u128) -> f64 {
    const EXACT: u128 = 1 << 53;
    if b == 0 {
        return f64::NAN;
    }
    if a == 0 {
        return 0.0;
    }
    if a <= EXACT && b <= EXACT {
        // Both operands are exact doubles: IEEE division rounds correctly.
        return a as f64 / b as f64;
    }
    // 64 significant bits of the quotient, `m · 2^exp`, plus a sticky bit.
    let q = a / b;
    let mut r = a % b;
    let bits = 128 - q.leading_zeros() as i32;
    let (mut m, mut exp, sticky) = if bits > 64 {
        let shift = bits - 64;
        let rest = q & ((1u128 << shift) - 1);
        ((q >> shift) as u64, shift, rest != 0 || r != 0)
    } else {
        // Long division in chunks: `r < b`, so `r` can be shifted left by
        // `b`'s leading zeros without overflow, giving that many quotient
        // bits per division (53+ for realistic sums: two or three steps).
        let room = b.leading_zeros();
        let mut m = q as u64;
        let mut exp = 0i32;
        while m < 1 << 63 {
            let need = 64 - (64 - m.leading_zeros());
            if room == 0 {
                // b ≥ 2^127: one bit at a time, 2r ≥ b written overflow-free.
                let bit = r >= b - r;
                r = if bit { r - (b - r) } else { r + r };
                m = (m << 1) | u64::from(bit);
                exp -= 1;
                continue;
            }
            let k = need.min(room).min(63);
            r <<= k;
            let d = (r / b) as u64;
            r %= b;
            m = (m << k) | d;
            exp -= k as i32;
        }
        (m, exp, r != 0)
    };
    // Round 64 bits to 53: drop 11, ties to even.
    let low = m & 0x7ff;
    m >>= 11;
    exp += 11;
    if low > 0x400 || (low == 0x400 && (sticky || m & 1 == 1)) {
        m += 1;
    }
    // m ≤ 2^53 is exact; scaling by a power of two within the normal range is exact.
    m as f64 * f64::from_bits(((1023 + exp) as u64) << 52)
}

/// `a × b` if it fits in 128 bits: two 64-bit multiplies instead of the
/// general 128 × 128 overflow-checked libcall.
#[inline]
fn mul_u64(a: u128, b: u64) -> Option<u128> {
    match mul_wide(a, b) {
        (0, lo) => Some(lo),
        _ => None,
    }
}

/// `a × b` as a 192-bit number `(high 64 bits, low 128 bits)`, ordered correctly
/// by tuple comparison.
#[inline]
fn mul_wide(a: u128, b: u64) -> (u64, u128) {
    let b = u128::from(b);
    let lo = (a & u128::from(u64::MAX)) * b;
    let hi = (a >> 64) * b;
    let (low, carry) = lo.overflowing_add(hi << 64);
    ((hi >> 64) as u64 + u64::from(carry), low)
}

/// `10^k` for every scale a [`Decimal`] may have.
const POW10: [u64; Decimal::MAX_SCALE as usize + 1] = {
    let mut t = [1u64; Decimal::MAX_SCALE as usize + 1];
    let mut k = 1;
    while k < t.len() {
        t[k] = t[k - 1] * 10;
        k += 1;
    }
    t
};

/// `10^-k`, each correctly rounded, for every scale a [`Decimal`] may have.
const INV_POW10: [f64; Decimal::MAX_SCALE as usize + 1] = [
    1e0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11, 1e-12, 1e-13, 1e-14, 1e-15, 1e-16, 1e-17,
    1e-18,
];

/// A threshold as an exact decimal `±mag / 10^scale`, taken from the shortest
/// representation of the configured number, i.e. what the user wrote.
///
/// Built once at start-up, so it also carries what every comparison on the
/// hot path would otherwise recompute: `10^scale` and an `f64` estimate.
/// The fields are private so the three can never disagree.
#[derive(Clone, Copy, Debug)]
pub struct Decimal {
    negative: bool,
    mag: u64,
    scale: u32,
    den: u64,
    /// The value within 3.4·10⁻¹⁶ relative, for [`Reading::cmp_decimal`].
    approx: f64,
}

impl PartialEq for Decimal {
    /// The same number written the same way (sign, digits, decimal places).
    fn eq(&self, other: &Self) -> bool {
        (self.negative, self.mag, self.scale) == (other.negative, other.mag, other.scale)
    }
}

impl Eq for Decimal {}

impl Decimal {
    /// Most decimal places a threshold may have; keeps `10^scale` in a u64.
    pub const MAX_SCALE: u32 = 18;

    /// Zero.
    pub const ZERO: Decimal = Decimal { negative: false, mag: 0, scale: 0, den: 1, approx: 0.0 };

    /// `±mag / 10^scale`, or `None` if `scale` exceeds [`Decimal::MAX_SCALE`].
    pub fn new(negative: bool, mag: u64, scale: u32) -> Option<Self> {
        let den = *POW10.get(usize::try_from(scale).ok()?)?;
        let inv = INV_POW10.get(scale as usize).copied().unwrap_or(0.0);
        let v = mag as f64 * inv;
        Some(Decimal { negative, mag, scale, den, approx: if negative { -v } else { v } })
    }

    /// The decimal the user wrote for `v` (shortest round-trip digits), or
    /// `None` if it is not finite, has more than 18 decimals or does not fit.
    pub fn from_f64(v: f64) -> Option<Self> {
        if !v.is_finite() {
            return None;
        }
        let s = format!("{}", v.abs());
        let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
        let scale = u32::try_from(frac.len()).ok().filter(|&k| k <= Self::MAX_SCALE)?;
        let mut mag: u64 = 0;
        for c in int.bytes().chain(frac.bytes()) {
            let d = c.checked_sub(b'0').filter(|d| *d <= 9)?;
            mag = mag.checked_mul(10)?.checked_add(u64::from(d))?;
        }
        Decimal::new(v < 0.0, mag, scale)
    }

    /// Whether a minus sign was written (`-0` included).
    #[inline]
    pub fn negative(self) -> bool {
        self.negative
    }

    /// The digits as an integer.
    #[inline]
    pub fn mag(self) -> u64 {
        self.mag
    }

    /// Decimal places (`den = 10^scale`), at most [`Decimal::MAX_SCALE`].
    #[inline]
    pub fn scale(self) -> u32 {
        self.scale
    }

    /// The threshold as an `f64` within 3.4·10⁻¹⁶ relative, for the filter
    /// in [`Reading::cmp_decimal`].
    #[inline(always)]
    pub fn approx(&self) -> f64 {
        self.approx
    }

    /// `10^scale`.
    #[inline(always)]
    pub fn den(&self) -> u64 {
        self.den
    }
}

/// A metric reading, kept exact; its correctly rounded `f64` is rendered
/// only when someone reads it (an alert, a log line), never per frame.
///
/// It also carries quick `f64`s of its numerator and denominator, accurate
/// to a few ulps, so that [`Reading::cmp_decimal`] can settle most threshold
/// comparisons with one floating-point multiply-and-subtract and fall back
/// to the exact 192-bit cross-multiplication only when the two sides are too
/// close for the estimates to be sure (a filtered exact predicate). A
/// trigger set compares one reading with many thresholds; the estimates are
/// made once per reading, and no division is needed at all.
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    pub exact: Fraction,
    /// `±mag` and `den` of `exact`, each within 2⁻⁵³ + 2⁻⁶² relative (see
    /// [`quick_f64`]).
    num: f64,
    den: f64,
}

impl PartialEq for Reading {
    /// Readings are equal when their exact values are.
    fn eq(&self, other: &Self) -> bool {
        self.exact == other.exact
    }
}

impl Eq for Reading {}

/// Relative gap between `num` and `threshold × den` above which their order
/// is certain: 2⁻⁴⁸ ≈ 3.6·10⁻¹⁵, ten times the worst combined error of the
/// estimates (≤ 1.2·10⁻¹⁶ for `num`; ≤ 4.5·10⁻¹⁶ for the product: the
/// denominator's conversion, the threshold's conversion and table reciprocal,
/// the product's rounding) plus the subtraction's own rounding.
const FILTER_MARGIN: f64 = 1.0 / (1u64 << 48) as f64;

impl Reading {
    /// From an exact fraction.
    #[inline]
    pub fn new(exact: Fraction) -> Self {
        let num = quick_f64(exact.mag);
        Reading { exact, num: if exact.negative { -num } else { num }, den: quick_f64(exact.den) }
    }

    /// The correctly rounded value.
    pub fn value(&self) -> f64 {
        self.exact.to_f64()
    }

    /// Exact three-way comparison with a decimal threshold: the same answer
    /// as [`Fraction::cmp_decimal`], usually without its 128-bit multiplications.
    #[inline(always)]
    pub fn cmp_decimal(&self, t: &Decimal) -> std::cmp::Ordering {
        // value ⋛ t  ⇔  ±mag ⋛ t·den, as den > 0.
        let rhs = t.approx() * self.den;
        let diff = self.num - rhs;
        // Values within the margin (equal ones included) take the exact path.
        if diff.abs() > FILTER_MARGIN * (self.num.abs() + rhs.abs()) {
            return if diff > 0.0 { std::cmp::Ordering::Greater } else { std::cmp::Ordering::Less };
        }
        self.exact.cmp_decimal(t)
    }
}

/// `x` as an `f64` within 2⁻⁵³ + 2⁻⁶² relative: its leading 63 bits,
/// truncated, converted once. Signed conversions only (one instruction on
/// x86-64, where unsigned ones take several and `u128 as f64` is a call).
#[inline(always)]
fn quick_f64(x: u128) -> f64 {
    let hi = (x >> 64) as u64;
    if hi == 0 {
        let lo = x as u64;
        return match i64::try_from(lo) {
            Ok(v) => v as f64,
            Err(_) => (lo >> 1) as i64 as f64 * 2.0,
        };
    }
    let lz = hi.leading_zeros();
    let top = ((x << lz) >> 65) as i64;
    // × 2^(65 − lz), built as the power of two's bit pattern (exponent 2..=65).
    top as f64 * f64::from_bits(u64::from(1023 + 65 - lz) << 52)
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
pub fn imbalance(book: &Book, spec: VolumeSpec) -> Result<Imbalance, MetricError> {
    let bid = side_volume(&book.bids, spec)?;
    let ask = side_volume(&book.asks, spec)?;
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
    book: &Book,
    spec: VolumeSpec,
    w: &LevelWeights,
) -> Result<(Imbalance, Result<Reading, MetricError>), MetricError> {
    /// Plain sums below this keep the unchecked weighted sum exact.
    const EXACT_BELOW: u128 = 1 << (128 - LevelWeights::MAX_BITS);
    #[inline(always)]
    fn sides<S: SideKind>(side: &BookSide<S>, spec: VolumeSpec, w: &LevelWeights) -> Result<(u128, u128), MetricError> {
        let (mut plain, mut weighted) = (0u128, 0u128);
        for (l, &wi) in top(side, spec.top_n).iter().zip(w.0.iter()) {
            let v = level_volume(l, spec.mode);
            plain = plain.checked_add(v).ok_or(MetricError::Overflow)?;
            weighted = weighted.wrapping_add(v.wrapping_mul(u128::from(wi)));
        }
        Ok((plain, weighted))
    }
    #[cold]
    fn checked_weighted<S: SideKind>(side: &BookSide<S>, spec: VolumeSpec, w: &LevelWeights) -> Option<u128> {
        top(side, spec.top_n)
            .iter()
            .zip(w.0.iter())
            .try_fold(0u128, |acc, (l, &wi)| mul_u64(level_volume(l, spec.mode), wi).and_then(|t| acc.checked_add(t)))
    }
    let (bid, mut wbid) = sides(&book.bids, spec, w)?;
    let (ask, mut wask) = sides(&book.asks, spec, w)?;
    let imb = Imbalance {
        bid: Volume { raw: bid, mode: spec.mode },
        ask: Volume { raw: ask, mode: spec.mode },
        ratio: Reading::new(ratio(bid, ask)?),
    };
    if bid >= EXACT_BELOW || ask >= EXACT_BELOW {
        match (checked_weighted(&book.bids, spec, w), checked_weighted(&book.asks, spec, w)) {
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
pub fn weighted_imbalance(book: &Book, spec: VolumeSpec, w: &LevelWeights) -> Result<Reading, MetricError> {
    imbalance_and_weighted(book, spec, w)?.1
}

/// The best bid and ask levels, when both sides have one.
#[inline]
pub(crate) fn touch(book: &Book) -> Result<(Level, Level), MetricError> {
    match (book.bids.best(), book.asks.best()) {
        (Some(b), Some(a)) => Ok((b, a)),
        _ => Err(MetricError::OneSided),
    }
}

/// `(ask − bid) / mid × 10⁴ = 2·10⁴ (ask − bid) / (ask + bid)`.
#[inline]
pub fn spread_bps(book: &Book) -> Result<Reading, MetricError> {
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
pub fn microprice_offset_bps(book: &Book) -> Result<Reading, MetricError> {
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
#[derive(Clone, Debug)]
pub struct OfiWindow {
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
        OfiWindow { e: vec![0; n], depth: vec![0; n], next: 0, filled: 0, sum_e: 0, sum_depth: 0 }
    }

    /// Adds the step from `prev` to `cur` (consecutive evaluated books of the
    /// pair). One-sided books add nothing.
    #[inline]
    pub fn push(&mut self, prev: &Book, cur: &Book) {
        let (Ok((pb, pa)), Ok((cb, ca))) = (touch(prev), touch(cur)) else { return };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::Level;
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
    fn thresholds_are_the_decimals_the_user_wrote() {
        assert_eq!(Decimal::from_f64(0.25), Decimal::new(false, 25, 2));
        assert_eq!(Decimal::from_f64(-0.3), Decimal::new(true, 3, 1));
        assert_eq!(Decimal::from_f64(1.0), Decimal::new(false, 1, 0));
        assert_eq!(Decimal::from_f64(1e-7), Decimal::new(false, 1, 7));
        assert_eq!(Decimal::from_f64(1e-7).map(|d| (d.den(), d.approx())), Some((10_000_000, 1e-7)));
        assert_eq!(Decimal::new(false, 1, Decimal::MAX_SCALE + 1), None);
        assert_eq!(Decimal::from_f64(f64::NAN), None);
        assert_eq!(Decimal::from_f64(1e-30), None);
    }

    /// Both comparison paths: the exact one and the filtered one.
    fn cmp_both(f: Fraction, t: Decimal) -> std::cmp::Ordering {
        let exact = f.cmp_decimal(&t);
        assert_eq!(Reading::new(f).cmp_decimal(&t), exact, "{f:?} vs {t:?}");
        exact
    }

    #[test]
    fn comparison_is_exact_where_f64_would_round() {
        let t = Decimal::from_f64(0.3).unwrap();
        // 3/10 exactly, with a denominator beyond 2^53 where f64 division rounds.
        let big = 10u128.pow(30);
        assert_eq!(cmp_both(frac(false, 3 * big, 10 * big), t), Equal);
        assert_eq!(cmp_both(frac(false, 3 * big - 1, 10 * big), t), Less);
        assert_eq!(cmp_both(frac(false, 3 * big + 1, 10 * big), t), Greater);
        let n = Decimal::from_f64(-0.25).unwrap();
        assert_eq!(cmp_both(frac(true, 1, 4), n), Equal);
        assert_eq!(cmp_both(frac(true, 2, 4), n), Less);
        assert_eq!(cmp_both(frac(false, 0, 4), n), Greater);
        assert_eq!(cmp_both(frac(true, 0, 4), Decimal::from_f64(0.0).unwrap()), Equal);
        assert_eq!(cmp_both(frac(false, u128::MAX, u128::MAX), Decimal::from_f64(1.0).unwrap()), Equal);
        assert_eq!(cmp_both(frac(false, 1, 0), Decimal::from_f64(1.0).unwrap()), Greater);
    }

    #[test]
    fn quick_f64_is_within_its_documented_error() {
        let edges = [0, 1, (1 << 53) - 1, 1 << 53, (1 << 53) + 1, u128::from(u64::MAX), 10u128.pow(30) + 7, u128::MAX];
        for x in edges.into_iter().chain((0..128).map(|k| (1u128 << k) | 0x5555_5555_5555_5555_5555)) {
            let (quick, exact) = (quick_f64(x), x as f64);
            // |quick − x| ≤ (2⁻⁵³ + 2⁻⁶²) x and |exact − x| ≤ 2⁻⁵³ x.
            assert!((quick - exact).abs() <= exact * 2f64.powi(-51), "{x}: {quick} vs {exact}");
        }
    }

    proptest::proptest! {
        /// The filtered comparison agrees with the exact one everywhere, and
        /// in particular within a few units of the threshold, where the
        /// estimates cannot tell and the exact path must decide.
        #[test]
        fn filtered_comparison_agrees_with_the_exact_one(
            t_mag in 0u64..=1_000_000_000_000,
            scale in 0u32..=Decimal::MAX_SCALE,
            t_neg: bool,
            k in 1u128..=(1u128 << 100),
            shift in -3i128..=3,
            far: u128,
            far_den in 1u128..,
            neg: bool,
        ) {
            let t = Decimal::new(t_neg, t_mag, scale).unwrap();
            // A fraction equal to the threshold scaled by k, nudged by a few units.
            let den = u128::from(t.den()).saturating_mul(k);
            let mag = u128::from(t_mag).saturating_mul(k).saturating_add_signed(shift);
            cmp_both(frac(t_neg, mag, den.max(1)), t);
            cmp_both(frac(neg, far, far_den), t);
        }
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
        w.push(&b0, &b1);
        assert_eq!(w.reading(), Err(MetricError::Warmup));
        // Both prices fall by one tick: the old bid queue is gone (e_b = −7)
        // and the ask improves with 4 (e_a = −4): e = −11, Σe = 2 − 11 = −9.
        let b2 = book(&[(99, 7)], &[(100, 4)]);
        w.push(&b1, &b2);
        // Depth: (7+5) + (7+4) = 23 → OFI = 2·2·(−9)/23.
        let r = w.reading().unwrap();
        assert_eq!(r.exact, frac(true, 36, 23));
    }

    #[test]
    fn values_are_correctly_rounded_beyond_53_bits() {
        // Expected values from Python's float(Fraction(a, b)).
        let cases: [(u128, u128, f64); 6] = [
            (10u128.pow(30) + 1, 3 * 10u128.pow(30), 0.3333333333333333),
            ((1 << 127) + 12345, (1 << 127) + 3, 1.0),
            (1, (1 << 100) + 1, 7.888609052210118e-31),
            (3_391_286_612_000_000_000_000, 11_860_633_412_000_000_000_000, 0.2859279512482752),
            (u128::MAX, 3, 1.1342745564031281e+38),
            (12_345_678_901_234_567_890_123, 98_765_432_109_876_543_210_987, 0.1249999988609375),
        ];
        for (a, b, want) in cases {
            assert_eq!(frac(false, a, b).to_f64(), want, "{a}/{b}");
            assert_eq!(frac(true, a, b).to_f64(), -want, "-{a}/{b}");
        }
        assert_eq!(frac(false, 1, 3).to_f64(), 1.0 / 3.0);
        assert_eq!(frac(false, 0, 7).to_f64(), 0.0);
    }

    #[test]
    fn wide_multiplication_carries_into_the_high_word() {
        assert_eq!(mul_wide(u128::MAX, u64::MAX), (u64::MAX - 1, u128::MAX - u128::from(u64::MAX) + 1));
        assert_eq!(mul_wide(1 << 64, 1 << 63), (0, 1 << 127));
        assert_eq!(mul_wide(1 << 127, 2), (1, 0));
    }
}
