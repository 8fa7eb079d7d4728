//! The JSON tokenizer and skipper every venue's decoder builds on: strings
//! (escapes validated, decoded lazily and without allocating), integers,
//! literals, numbers, and any value skipped iteratively to a bounded depth.
//!
//! It knows no schema. A venue's decoder walks its own keys with these
//! primitives (and may read its common layout with a faster byte-exact
//! path first); what goes wrong is a [`RejectKind`].

use crate::reject::RejectKind;

use super::decimal::{non_digit_bytes, swar_eight_digits};
use crate::units::SCALE;

/// Deepest JSON nesting skipped inside unknown fields.
pub(crate) const MAX_SKIP_DEPTH: usize = 64;

/// A cursor over one message's bytes: `b[i..]` is what is left to read.
/// Every method either consumes a well-formed token or returns the
/// [`RejectKind`] that says why not; none panics on any input.
pub(crate) struct Scan<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) i: usize,
}

/// A JSON string's raw bytes between the quotes, and whether it has escapes.
pub(crate) struct RawStr<'a> {
    pub(crate) raw: &'a [u8],
    pub(crate) escaped: bool,
}

impl<'a> RawStr<'a> {
    /// Compares the decoded string with `want` (plain ASCII) without allocating.
    pub(crate) fn eq(&self, want: &[u8]) -> bool {
        if self.escaped { self.decoded().eq(want.iter().copied()) } else { self.raw == want }
    }

    /// The string's bytes with escapes decoded.
    pub(crate) fn decoded(&self) -> Decoded<'a> {
        Decoded { raw: self.raw, i: 0 }
    }
}

/// Stands for a non-ASCII `\u` escape: no name or number this scanner looks
/// for contains one, and this byte matches none of them.
pub(crate) const NON_ASCII: u8 = 0x80;

/// The bytes of a JSON string (already validated by [`Scan::string`]) with its
/// escapes decoded; an escape of a non-ASCII character yields [`NON_ASCII`].
pub(crate) struct Decoded<'a> {
    raw: &'a [u8],
    i: usize,
}

impl Iterator for Decoded<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let c = *self.raw.get(self.i)?;
        self.i += 1;
        if c != b'\\' {
            return Some(c);
        }
        let e = *self.raw.get(self.i)?;
        self.i += 1;
        Some(match e {
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let hex = self.raw.get(self.i..self.i + 4)?;
                self.i += 4;
                let v = hex.iter().try_fold(0u32, |v, &h| Some(v * 16 + char::from(h).to_digit(16)?))?;
                u8::try_from(v).ok().filter(u8::is_ascii).unwrap_or(NON_ASCII)
            }
            other => other, // `"`, `\\`, `/`
        })
    }
}

/// Decodes an escaped string into `buf`; `None` when it does not fit (no
/// configured stream name is that long).
pub(crate) fn decode_into<'b>(s: &RawStr<'_>, buf: &'b mut [u8; 64]) -> Option<&'b [u8]> {
    let mut n = 0;
    for c in s.decoded() {
        *buf.get_mut(n)? = c;
        n += 1;
    }
    buf.get(..n)
}

/// Marks a field as seen, rejecting a second occurrence.
#[inline(always)]
pub(crate) fn once(seen: &mut bool) -> Result<(), RejectKind> {
    if std::mem::replace(seen, true) { Err(RejectKind::DuplicateField) } else { Ok(()) }
}

/// SWAR: a mask whose lowest set bit is the high bit of the first byte in
/// `x` (little-endian) that ends a run of plain string bytes: `"`, `\\` or a
/// control character. Bits above the lowest may be false positives (borrows
/// only travel upward from a flagged byte), so use only `trailing_zeros`.
#[inline(always)]
pub(crate) fn special_string_bytes(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let quote = zero_byte(x ^ (ONES * u64::from(b'"')));
    let backslash = zero_byte(x ^ (ONES * u64::from(b'\\')));
    let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
    quote | backslash | control
}

/// Bytes before the closing quote of a string without escapes or control
/// characters; `None` if another special byte comes first or none does.
#[inline(always)]
pub(crate) fn plain_string_len(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(chunk) = b.get(i..).and_then(|r| r.first_chunk::<8>()) {
        let special = special_string_bytes(u64::from_le_bytes(*chunk));
        if special != 0 {
            i += (special.trailing_zeros() / 8) as usize;
            return (b.get(i) == Some(&b'"')).then_some(i);
        }
        i += 8;
    }
    let tail = b.get(i..)?;
    let end = tail.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    (tail.get(end) == Some(&b'"')).then_some(i + end)
}

/// A JSON integer (no sign, no leading zero) that fits in a `u64`, and the
/// bytes after it; `None` also when a fraction or exponent follows.
#[inline(always)]
pub(crate) fn fast_uint(b: &[u8]) -> Option<(u64, &[u8])> {
    // Eight digits at a time while there are eight (lastUpdateId has 11).
    let mut v: u64 = 0;
    let mut digits = 0;
    while let Some(chunk) = b.get(digits..).and_then(|r| r.first_chunk::<8>()) {
        let x = u64::from_le_bytes(*chunk) ^ 0x3030_3030_3030_3030;
        if non_digit_bytes(x) != 0 {
            break;
        }
        v = v.checked_mul(SCALE)?.checked_add(swar_eight_digits(x))?;
        digits += 8;
    }
    while let Some(&d @ b'0'..=b'9') = b.get(digits) {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        digits += 1;
    }
    let (int, rest) = b.split_at_checked(digits)?;
    if int.is_empty()
        || (int.len() > 1 && int.first() == Some(&b'0'))
        || matches!(rest.first(), Some(b'.' | b'e' | b'E'))
    {
        return None;
    }
    Some((v, rest))
}

impl<'a> Scan<'a> {
    #[inline(always)]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline(always)]
    pub(crate) fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    /// Skips whitespace and returns the next byte without consuming it.
    #[inline(always)]
    pub(crate) fn next_token(&mut self) -> Result<u8, RejectKind> {
        self.ws();
        self.peek().ok_or(RejectKind::Truncated)
    }

    #[inline(always)]
    pub(crate) fn expect(&mut self, want: u8) -> Result<(), RejectKind> {
        if self.next_token()? == want {
            self.i += 1;
            Ok(())
        } else {
            Err(RejectKind::Syntax)
        }
    }

    /// After an object member or array element: `Ok(true)` for `,` (more to
    /// come), `Ok(false)` for the closing byte.
    #[inline(always)]
    pub(crate) fn more(&mut self, close: u8) -> Result<bool, RejectKind> {
        let c = self.next_token()?;
        self.i += 1;
        if c == b',' {
            Ok(true)
        } else if c == close {
            Ok(false)
        } else {
            Err(RejectKind::Syntax)
        }
    }

    /// The byte that opens a value of a given JSON type, for type errors.
    pub(crate) fn type_error(&self, c: u8) -> RejectKind {
        match c {
            b'{' | b'[' | b'"' | b't' | b'f' | b'n' | b'-' | b'0'..=b'9' => RejectKind::WrongType,
            _ => RejectKind::Syntax,
        }
    }

    /// A string, positioned at its opening quote (after whitespace).
    pub(crate) fn string(&mut self) -> Result<RawStr<'a>, RejectKind> {
        let c = self.next_token()?;
        if c != b'"' {
            return Err(self.type_error(c));
        }
        self.i += 1;
        let start = self.i;
        let mut escaped = false;
        loop {
            // Plain bytes eight at a time; the loop below sees only the
            // special ones and the last few.
            while let Some(chunk) = self.b.get(self.i..).and_then(|r| r.first_chunk::<8>()) {
                let special = special_string_bytes(u64::from_le_bytes(*chunk));
                if special != 0 {
                    self.i += (special.trailing_zeros() / 8) as usize;
                    break;
                }
                self.i += 8;
            }
            let c = self.peek().ok_or(RejectKind::Truncated)?;
            match c {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    let e = self.b.get(self.i + 1).copied().ok_or(RejectKind::Truncated)?;
                    match e {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 2,
                        b'u' => {
                            let hex = self.b.get(self.i + 2..self.i + 6).ok_or(RejectKind::Truncated)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return Err(RejectKind::Syntax);
                            }
                            self.i += 6;
                        }
                        _ => return Err(RejectKind::Syntax),
                    }
                }
                0x00..=0x1f => return Err(RejectKind::Syntax),
                _ => self.i += 1,
            }
        }
        let raw = self.b.get(start..self.i).ok_or(RejectKind::Truncated)?;
        self.i += 1;
        Ok(RawStr { raw, escaped })
    }

    /// An object key and its colon.
    #[inline(always)]
    pub(crate) fn key(&mut self) -> Result<RawStr<'a>, RejectKind> {
        let k = self.string()?;
        self.expect(b':')?;
        Ok(k)
    }

    /// A non-negative JSON integer (`lastUpdateId`).
    pub(crate) fn uint(&mut self) -> Result<u64, RejectKind> {
        let c = self.next_token()?;
        match c {
            b'0'..=b'9' => {}
            b'-' => return Err(RejectKind::Sign),
            _ => return Err(self.type_error(c)),
        }
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            v = v.checked_mul(10).and_then(|v| v.checked_add(u64::from(d - b'0'))).ok_or(RejectKind::Overflow)?;
            self.i += 1;
        }
        if self.i - start > 1 && c == b'0' {
            return Err(RejectKind::Syntax);
        }
        match self.peek() {
            Some(b'.') => Err(RejectKind::WrongType),
            Some(b'e' | b'E') => Err(RejectKind::Exponent),
            _ => Ok(v),
        }
    }

    /// Skips one JSON value of any type, validating it, iteratively.
    pub(crate) fn skip_value(&mut self) -> Result<(), RejectKind> {
        // Closers of the open containers: bit set = object, clear = array.
        let mut stack: u64 = 0;
        let mut depth: usize = 0;
        loop {
            // A value.
            let c = self.next_token()?;
            match c {
                b'{' | b'[' => {
                    if depth == MAX_SKIP_DEPTH {
                        return Err(RejectKind::TooDeep);
                    }
                    self.i += 1;
                    let is_obj = c == b'{';
                    stack = (stack << 1) | u64::from(is_obj);
                    depth += 1;
                    let close = if is_obj { b'}' } else { b']' };
                    if self.next_token()? == close {
                        self.i += 1;
                        stack >>= 1;
                        depth -= 1;
                    } else {
                        if is_obj {
                            self.key()?;
                        }
                        continue;
                    }
                }
                b'"' => {
                    self.string()?;
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return Err(RejectKind::Syntax),
            }
            // After a value: close containers or move to the next element.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let is_obj = stack & 1 == 1;
                let close = if is_obj { b'}' } else { b']' };
                if self.more(close)? {
                    if is_obj {
                        self.key()?;
                    }
                    break;
                }
                stack >>= 1;
                depth -= 1;
            }
        }
    }

    pub(crate) fn literal(&mut self, word: &[u8]) -> Result<(), RejectKind> {
        let end = self.i + word.len();
        match self.b.get(self.i..end) {
            Some(w) if w == word => {
                self.i = end;
                Ok(())
            }
            Some(_) => Err(RejectKind::Syntax),
            None if self.b.get(self.i..).is_some_and(|rest| word.starts_with(rest)) => Err(RejectKind::Truncated),
            None => Err(RejectKind::Syntax),
        }
    }

    /// Any JSON number, validated against the grammar and skipped.
    pub(crate) fn number(&mut self) -> Result<(), RejectKind> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let digits = |s: &mut Self| {
            let start = s.i;
            while let Some(b'0'..=b'9') = s.peek() {
                s.i += 1;
            }
            s.i - start
        };
        let first = self.peek();
        let n = digits(self);
        if n == 0 {
            return Err(if first.is_none() { RejectKind::Truncated } else { RejectKind::Syntax });
        }
        if n > 1 && first == Some(b'0') {
            return Err(RejectKind::Syntax);
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return Err(self.peek().map_or(RejectKind::Truncated, |_| RejectKind::Syntax));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(self.peek().map_or(RejectKind::Truncated, |_| RejectKind::Syntax));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swar_string_scan_stops_at_the_first_special_byte() {
        let first = |s: &[u8; 8]| (special_string_bytes(u64::from_le_bytes(*s)).trailing_zeros() / 8) as usize;
        assert_eq!(first(b"abcdefgh"), 8);
        assert_eq!(first(b"abc\"defg"), 3);
        assert_eq!(first(b"\\bcdefgh"), 0);
        assert_eq!(first(b"abcdefg\x1f"), 7);
        assert_eq!(first(b"ab\x00\"\"\"\"\""), 2);
        assert_eq!(first(b"\x7f\xff\x20!#[]~"), 8);
        // Every byte value at every position agrees with the obvious test.
        for pos in 0..8 {
            for v in 0..=255u8 {
                let mut s = *b"xxxxxxxx";
                s[pos] = v;
                let special = v == b'"' || v == b'\\' || v < 0x20;
                assert_eq!(first(&s), if special { pos } else { 8 }, "byte {v:#x} at {pos}");
            }
        }
    }

    #[test]
    fn fast_integer_reads_json_integers_that_fit() {
        let read = |s: &str| fast_uint(s.as_bytes()).map(|(v, rest)| (v, rest.len()));
        assert_eq!(read("50093239224,"), Some((50_093_239_224, 1)));
        assert_eq!(read("0,"), Some((0, 1)));
        assert_eq!(read("12345678"), Some((12_345_678, 0)));
        assert_eq!(read("18446744073709551615}"), Some((u64::MAX, 1)));
        assert_eq!(read("18446744073709551616}"), None);
        assert_eq!(read("99999999999999999999999999"), None);
        for bad in ["", ",", "01", "-1", "1.5", "1e3", "1E3", "12345678.5"] {
            assert_eq!(read(bad), None, "{bad:?}");
        }
    }
}
