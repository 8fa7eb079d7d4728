//! Exact arithmetic for metrics and thresholds: signed fractions of
//! integers, decimal thresholds as the user wrote them, 64 × 128-bit and
//! 192-bit products, correctly rounded division, and the quick `f64`
//! estimates that settle most comparisons without the exact path.
//!
//! Kept apart from `metrics` so a metric definition reads as a formula over
//! a book, and every metric (and a later venue's decoder, or a band measure)
//! shares one implementation of what "exact" means. Nothing here allocates,
//! panics or reads a clock.

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
pub fn div_correctly_rounded(a: u128, b: u128) -> f64 {
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
pub fn mul_u64(a: u128, b: u64) -> Option<u128> {
    match mul_wide(a, b) {
        (0, lo) => Some(lo),
        _ => None,
    }
}

/// `a × b` as a 192-bit number `(high 64 bits, low 128 bits)`, ordered correctly
/// by tuple comparison.
#[inline]
pub fn mul_wide(a: u128, b: u64) -> (u64, u128) {
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
pub fn quick_f64(x: u128) -> f64 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    fn frac(negative: bool, mag: u128, den: u128) -> Fraction {
        Fraction { negative, mag, den }
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
