//! The fixed-point decimal reader: a JSON decimal string (`"61837.63000000"`)
//! straight into a `u64` mantissa at scale 1e8, never through `f64`.
//!
//! Checked arithmetic throughout: more than 8 fractional digits, a sign, an
//! exponent or an overflow is a [`RejectKind`], never a rounded value. The
//! SWAR helpers read eight digits per step; they serve any venue whose
//! decimals have Binance's fixed shape, and the digit loop serves the rest.

use crate::reject::RejectKind;
use crate::units::{FRAC_DIGITS, SCALE};

use super::json::Scan;

impl<'a> Scan<'a> {
    /// A decimal string (`"61837.63000000"`) as a mantissa at scale 1e8.
    /// Out of line: a venue's fast path reads its usual layout before this
    /// is reached (Binance Spot's `fast_level`).
    #[inline(never)]
    pub(crate) fn decimal(&mut self) -> Result<u64, RejectKind> {
        let c = self.next_token()?;
        if c != b'"' {
            return Err(self.type_error(c));
        }
        let quote = self.i;
        self.i += 1;
        if let Some((v, len)) = self.b.get(self.i..).and_then(fast_decimal) {
            self.i += len;
            return Ok(v);
        }
        match self.plain_decimal() {
            Ok(v) => Ok(v),
            Err(e) => {
                // Cold: JSON lets any character be escaped (`"\u0031.5"` is
                // `"1.5"`); read such a string by its decoded bytes.
                self.i = quote;
                match self.string() {
                    Ok(s) if s.escaped => decimal_from(s.decoded()),
                    _ => Err(e),
                }
            }
        }
    }

    /// The body of an unescaped decimal string, after its opening quote.
    pub(crate) fn plain_decimal(&mut self) -> Result<u64, RejectKind> {
        let mut v: u64 = 0;
        let int_start = self.i;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            v = v.checked_mul(10).and_then(|v| v.checked_add(u64::from(d - b'0'))).ok_or(RejectKind::Overflow)?;
            self.i += 1;
        }
        let int_digits = self.i - int_start;
        let mut frac_digits: u32 = 0;
        if self.peek() == Some(b'.') {
            self.i += 1;
            while let Some(d @ b'0'..=b'9') = self.peek() {
                frac_digits += 1;
                if frac_digits > FRAC_DIGITS {
                    return Err(RejectKind::TooManyDecimals);
                }
                v = v.checked_mul(10).and_then(|v| v.checked_add(u64::from(d - b'0'))).ok_or(RejectKind::Overflow)?;
                self.i += 1;
            }
            if frac_digits == 0 {
                return Err(self.decimal_error());
            }
        }
        if self.peek() != Some(b'"') {
            return Err(self.decimal_error());
        }
        if int_digits == 0 {
            return Err(RejectKind::BadDecimal);
        }
        self.i += 1;
        v.checked_mul(10u64.pow(FRAC_DIGITS - frac_digits)).ok_or(RejectKind::Overflow)
    }

    /// Classifies the byte that stopped a decimal.
    pub(crate) fn decimal_error(&self) -> RejectKind {
        match self.peek() {
            None => RejectKind::Truncated,
            Some(b'e' | b'E') => RejectKind::Exponent,
            Some(b'+' | b'-') => RejectKind::Sign,
            _ => RejectKind::BadDecimal,
        }
    }
}

/// The body of a decimal string after its opening quote, in Binance's fixed
/// shape `ddddd.dddddddd"` (1–7 integer digits, so no overflow is possible):
/// the mantissa at scale 1e8 and the bytes read including the closing quote.
#[inline(always)]
pub(crate) fn fast_decimal(b: &[u8]) -> Option<(u64, usize)> {
    // SWAR over the first eight bytes: the first non-digit ends the integer part.
    let (head, _) = b.split_first_chunk::<8>()?;
    let x = u64::from_le_bytes(*head) ^ 0x3030_3030_3030_3030;
    let int_digits = (non_digit_bytes(x).trailing_zeros() / 8) as usize;
    if !(1..=7).contains(&int_digits) || b.get(int_digits) != Some(&b'.') {
        return None;
    }
    // Keep the integer digits, moved to the top so they read as the last of
    // eight (the bytes below become leading zeros).
    let int = swar_eight_digits(x << (64 - 8 * int_digits as u32));
    let frac = eight_digits_then_quote(b.get(int_digits + 1..)?)?;
    Some((int * SCALE + frac, int_digits + 10))
}

/// SWAR: the eight ASCII digits of a fixed 8-decimal fraction followed by the
/// closing quote, as a number — the shape of every price Binance has sent.
#[inline(always)]
pub(crate) fn eight_digits_then_quote(b: &[u8]) -> Option<u64> {
    let (digits, quote) = b.split_first_chunk::<8>()?;
    if quote.first() != Some(&b'"') {
        return None;
    }
    let x = u64::from_le_bytes(*digits) ^ 0x3030_3030_3030_3030;
    if non_digit_bytes(x) != 0 {
        return None;
    }
    Some(swar_eight_digits(x))
}

/// For bytes already xor-ed with `'0'`: the high bit of every byte that was
/// not an ASCII digit (digits are now 0..=9, anything else ≥ 0x0A). Adding
/// 0x76 carries out of a byte only if that byte is flagged, so the lowest
/// flag is always exact and a zero result means all eight are digits.
#[inline(always)]
pub(crate) fn non_digit_bytes(x: u64) -> u64 {
    (x.wrapping_add(0x7676_7676_7676_7676) | x) & 0x8080_8080_8080_8080
}

/// Eight digit values (0..=9, one per byte, first in the lowest byte) as a number.
#[inline(always)]
pub(crate) fn swar_eight_digits(v: u64) -> u64 {
    // Multiply-shift pairing (as in simdjson): each step turns adjacent
    // groups into one of twice the width, `high * 10^k + low`; bits carried
    // past the top fall off and are never read.
    let v = v.wrapping_mul(10 << 8 | 1) >> 8; // pairs in bytes 0, 2, 4, 6
    let v = (v & 0x00FF_00FF_00FF_00FF).wrapping_mul(100 << 16 | 1) >> 16; // quads in 16-bit lanes 0, 2
    (v & 0x0000_FFFF_0000_FFFF).wrapping_mul(10_000 << 32 | 1) >> 32
}

/// A decimal from its decoded bytes (the cold path for escaped strings),
/// under the same rules as [`Scan::plain_decimal`].
pub(crate) fn decimal_from(bytes: impl Iterator<Item = u8>) -> Result<u64, RejectKind> {
    let mut v: u64 = 0;
    let mut int_digits = 0u32;
    let mut frac_digits: Option<u32> = None;
    for c in bytes {
        match c {
            b'0'..=b'9' => {
                match &mut frac_digits {
                    None => int_digits += 1,
                    Some(f) if *f == FRAC_DIGITS => return Err(RejectKind::TooManyDecimals),
                    Some(f) => *f += 1,
                }
                v = v.checked_mul(10).and_then(|v| v.checked_add(u64::from(c - b'0'))).ok_or(RejectKind::Overflow)?;
            }
            b'.' if frac_digits.is_none() => frac_digits = Some(0),
            b'e' | b'E' => return Err(RejectKind::Exponent),
            b'+' | b'-' => return Err(RejectKind::Sign),
            _ => return Err(RejectKind::BadDecimal),
        }
    }
    if int_digits == 0 || frac_digits == Some(0) {
        return Err(RejectKind::BadDecimal);
    }
    v.checked_mul(10u64.pow(FRAC_DIGITS - frac_digits.unwrap_or(0))).ok_or(RejectKind::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swar_integer_part_matches_the_digit_loop() {
        for int in ["0", "7", "61837", "1234567", "9999999", "0000001"] {
            for frac in ["00000000", "63000000", "99999999"] {
                let text = format!("{int}.{frac}\"");
                let want = int.parse::<u64>().unwrap() * SCALE + frac.parse::<u64>().unwrap();
                assert_eq!(fast_decimal(text.as_bytes()), Some((want, text.len())), "{text}");
            }
        }
        for v in 0..=255u8 {
            // One odd byte inside the integer part: never read as a digit.
            let text = [b'1', v, b'2', b'.', b'0', b'0', b'0', b'0', b'0', b'0', b'0', b'0', b'"'];
            let want = v.is_ascii_digit().then(|| (100 + u64::from(v - b'0') * 10 + 2) * SCALE);
            assert_eq!(fast_decimal(&text).map(|(m, _)| m), want, "byte {v:#x}");
        }
    }

    #[test]
    fn swar_conversion_matches_the_digit_loop_on_many_values() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..100_000u64 {
            // A cheap xorshift walk plus the edges.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = match i {
                0 => 0,
                1 => 99_999_999,
                _ => x % 100_000_000,
            };
            let text = format!("{n:08}");
            let digits = u64::from_le_bytes(text.as_bytes().try_into().unwrap()) ^ 0x3030_3030_3030_3030;
            assert_eq!(swar_eight_digits(digits), n, "{text}");
        }
    }

    #[test]
    fn swar_fraction_matches_the_digit_loop() {
        assert_eq!(eight_digits_then_quote(b"12345678\""), Some(12_345_678));
        assert_eq!(eight_digits_then_quote(b"00000000\""), Some(0));
        assert_eq!(eight_digits_then_quote(b"99999999\""), Some(99_999_999));
        assert_eq!(eight_digits_then_quote(b"1234567:\""), None);
        assert_eq!(eight_digits_then_quote(b"12345678x"), None);
        assert_eq!(eight_digits_then_quote(b"1234567/\""), None);
    }
}
