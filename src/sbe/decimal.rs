//! SBE decimals (`mantissa64` × 10^`exponent8`) into the fixed-point units of
//! [`crate::units`], exactly or not at all.
//!
//! Binance sends one exponent per message for all prices and one for all
//! quantities, so the conversion factor is worked out once per message
//! ([`Scale::for_exponent`]) and each value then costs one multiply (or one
//! remainder and divide). A value that would need rounding, or that does not
//! fit, is an error the caller counts: a price is never silently changed.

use crate::units::FRAC_DIGITS;

use super::SbeError;

/// How a mantissa at one exponent becomes a mantissa at scale 1e8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scale {
    /// Exponent ≥ −8: multiply by 10^(exponent + 8), checked.
    Mul(u64),
    /// Exponent < −8: the mantissa must be a multiple of 10^(−exponent − 8).
    Div(u64),
    /// The factor does not fit in a `u64`: only a zero mantissa converts;
    /// any other is this error (overflow upwards, inexact downwards).
    ZeroOnly(SbeError),
}

impl Scale {
    /// The conversion for values carrying `exponent`.
    #[inline]
    pub(crate) fn for_exponent(exponent: i8) -> Self {
        let shift = i32::from(exponent) + FRAC_DIGITS as i32;
        let digits = shift.unsigned_abs();
        match (shift >= 0, 10u64.checked_pow(digits)) {
            (true, Some(f)) => Scale::Mul(f),
            (false, Some(d)) => Scale::Div(d),
            (true, None) => Scale::ZeroOnly(SbeError::Overflow),
            (false, None) => Scale::ZeroOnly(SbeError::InexactDecimal),
        }
    }

    /// `mantissa` × 10^exponent as a `u64` at scale 1e8.
    #[inline(always)]
    pub(crate) fn apply(self, mantissa: i64) -> Result<u64, SbeError> {
        let m = u64::try_from(mantissa).map_err(|_| SbeError::Negative)?;
        match self {
            Scale::Mul(f) => m.checked_mul(f).ok_or(SbeError::Overflow),
            Scale::Div(d) => match (m.checked_rem(d), m.checked_div(d)) {
                (Some(0), Some(q)) => Ok(q),
                _ => Err(SbeError::InexactDecimal),
            },
            Scale::ZeroOnly(e) => {
                if m == 0 {
                    Ok(0)
                } else {
                    Err(e)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_1e8(mantissa: i64, exponent: i8) -> Result<u64, SbeError> {
        Scale::for_exponent(exponent).apply(mantissa)
    }

    #[test]
    fn binance_exponents_convert_exactly() {
        // 61837.63 as Binance sends BTCUSDT prices (tick 0.01).
        assert_eq!(at_1e8(6_183_763, -2), Ok(6_183_763_000_000));
        // 3.78826 at the BTCUSDT step 0.00001.
        assert_eq!(at_1e8(378_826, -5), Ok(378_826_000));
        assert_eq!(at_1e8(1, -8), Ok(1));
        assert_eq!(at_1e8(7, 3), Ok(700_000_000_000));
        assert_eq!(at_1e8(0, 0), Ok(0));
    }

    #[test]
    fn more_than_eight_fractional_digits_convert_only_when_the_extra_digits_are_zero() {
        assert_eq!(at_1e8(1_230, -9), Ok(123));
        assert_eq!(at_1e8(1_234, -9), Err(SbeError::InexactDecimal));
        assert_eq!(at_1e8(5_000_000_000_000_000_000, -26), Ok(5));
        assert_eq!(at_1e8(i64::MAX, -27), Err(SbeError::InexactDecimal));
        assert_eq!(at_1e8(1, i8::MIN), Err(SbeError::InexactDecimal));
        assert_eq!(at_1e8(0, i8::MIN), Ok(0));
    }

    #[test]
    fn values_past_u64_at_scale_1e8_overflow_and_negatives_are_refused() {
        assert_eq!(at_1e8(184_467_440_738, 0), Err(SbeError::Overflow));
        assert_eq!(at_1e8(184_467_440_737, 0), Ok(18_446_744_073_700_000_000));
        assert_eq!(at_1e8(1, 12), Err(SbeError::Overflow));
        assert_eq!(at_1e8(1, i8::MAX), Err(SbeError::Overflow));
        assert_eq!(at_1e8(0, i8::MAX), Ok(0));
        assert_eq!(at_1e8(-1, -2), Err(SbeError::Negative));
        assert_eq!(at_1e8(i64::MIN, -8), Err(SbeError::Negative));
    }
}
