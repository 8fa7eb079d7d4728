//! The metrics stage: exact side volumes and the imbalance ratio.
//!
//! Volumes are integer sums (u128, checked); a metric is kept as an exact
//! fraction so a trigger's comparison with its threshold is exact to the last
//! unit — `f64` is only the human-readable rendering of the same value.

use crate::book::{Book, BookSide, SideKind};
use crate::units::{Volume, VolumeMode};

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
}

/// Σ qty or Σ price × qty over the first `top_n` levels of a side, exactly.
#[inline]
pub fn side_volume<S: SideKind>(side: &BookSide<S>, spec: VolumeSpec) -> Result<u128, MetricError> {
    let levels = side.levels();
    let levels = levels.get(..spec.top_n.min(levels.len())).unwrap_or(levels);
    let mut sum: u128 = 0;
    match spec.mode {
        VolumeMode::Qty => {
            // At most 20 u64 terms: cannot overflow u128.
            for l in levels {
                sum += u128::from(l.qty.0);
            }
        }
        VolumeMode::Notional => {
            for l in levels {
                let n = u128::from(l.price.0) * u128::from(l.qty.0);
                sum = sum.checked_add(n).ok_or(MetricError::Overflow)?;
            }
        }
    }
    Ok(sum)
}

/// An exact signed fraction `±mag / den` with `den > 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fraction {
    pub negative: bool,
    pub mag: u128,
    pub den: u128,
}

impl Fraction {
    /// The nearest `f64` (within an ulp or two), for display and gauges.
    #[inline]
    pub fn to_f64(self) -> f64 {
        let v = self.mag as f64 / self.den as f64;
        if self.negative { -v } else { v }
    }

    /// Exact three-way comparison with a decimal threshold.
    #[inline]
    pub fn cmp_decimal(self, t: Decimal) -> std::cmp::Ordering {
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

/// A threshold as an exact decimal `±mag / 10^scale`, taken from the shortest
/// representation of the configured number, i.e. what the user wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal {
    pub negative: bool,
    pub mag: u64,
    /// Decimal places (`den = 10^scale`), at most [`Decimal::MAX_SCALE`].
    pub scale: u32,
}

impl Decimal {
    /// Most decimal places a threshold may have; keeps `10^scale` in a u64.
    pub const MAX_SCALE: u32 = 18;

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
        let _ = 10u64.checked_pow(scale)?;
        Some(Decimal { negative: v < 0.0, mag, scale })
    }

    /// `10^scale`.
    #[inline]
    pub fn den(self) -> u64 {
        10u64.pow(self.scale)
    }
}

/// A metric reading: the exact value and its `f64` rendering, computed once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    pub exact: Fraction,
    pub value: f64,
}

impl Reading {
    /// From an exact fraction.
    #[inline]
    pub fn new(exact: Fraction) -> Self {
        Reading { exact, value: exact.to_f64() }
    }
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
    let den = bid.checked_add(ask).ok_or(MetricError::Overflow)?;
    if den == 0 {
        return Err(MetricError::NoVolume);
    }
    let exact = Fraction { negative: ask > bid, mag: bid.abs_diff(ask), den };
    Ok(Imbalance {
        bid: Volume { raw: bid, mode: spec.mode },
        ask: Volume { raw: ask, mode: spec.mode },
        ratio: Reading::new(exact),
    })
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
        assert_eq!(one.ratio.value, 0.5);
        let all = imbalance(&b, VolumeSpec { mode: VolumeMode::Qty, top_n: 20 }).unwrap();
        assert_eq!((all.bid.raw, all.ask.raw), (103, 101));
    }

    #[test]
    fn notional_multiplies_price_by_qty_exactly() {
        // 61837.63 × 3.78826 = 234257.0202238 exactly (scale 1e16).
        let b = book(&[(6_183_763_000_000, 378_826_000)], &[]);
        let v = imbalance(&b, VolumeSpec { mode: VolumeMode::Notional, top_n: 10 }).unwrap();
        assert_eq!(v.bid.to_string(), "234257.0202238");
        assert_eq!(v.ratio.value, 1.0);
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
        assert_eq!(Decimal::from_f64(0.25), Some(Decimal { negative: false, mag: 25, scale: 2 }));
        assert_eq!(Decimal::from_f64(-0.3), Some(Decimal { negative: true, mag: 3, scale: 1 }));
        assert_eq!(Decimal::from_f64(1.0), Some(Decimal { negative: false, mag: 1, scale: 0 }));
        assert_eq!(Decimal::from_f64(1e-7), Some(Decimal { negative: false, mag: 1, scale: 7 }));
        assert_eq!(Decimal::from_f64(f64::NAN), None);
        assert_eq!(Decimal::from_f64(1e-30), None);
    }

    #[test]
    fn comparison_is_exact_where_f64_would_round() {
        let t = Decimal::from_f64(0.3).unwrap();
        // 3/10 exactly, with a denominator beyond 2^53 where f64 division rounds.
        let big = 10u128.pow(30);
        assert_eq!(frac(false, 3 * big, 10 * big).cmp_decimal(t), Equal);
        assert_eq!(frac(false, 3 * big - 1, 10 * big).cmp_decimal(t), Less);
        assert_eq!(frac(false, 3 * big + 1, 10 * big).cmp_decimal(t), Greater);
        let n = Decimal::from_f64(-0.25).unwrap();
        assert_eq!(frac(true, 1, 4).cmp_decimal(n), Equal);
        assert_eq!(frac(true, 2, 4).cmp_decimal(n), Less);
        assert_eq!(frac(false, 0, 4).cmp_decimal(n), Greater);
        assert_eq!(frac(true, 0, 4).cmp_decimal(Decimal::from_f64(0.0).unwrap()), Equal);
        assert_eq!(frac(false, u128::MAX, u128::MAX).cmp_decimal(Decimal::from_f64(1.0).unwrap()), Equal);
    }

    #[test]
    fn wide_multiplication_carries_into_the_high_word() {
        assert_eq!(mul_wide(u128::MAX, u64::MAX), (u64::MAX - 1, u128::MAX - u128::from(u64::MAX) + 1));
        assert_eq!(mul_wide(1 << 64, 1 << 63), (0, 1 << 127));
        assert_eq!(mul_wide(1 << 127, 2), (1, 0));
    }
}
