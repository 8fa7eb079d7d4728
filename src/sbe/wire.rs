//! Little-endian reads from a shrinking byte slice.
//!
//! Every read returns `None` when the bytes run out, so a decoder built on it
//! cannot index past a frame's end: the caller maps `None` to the error that
//! names the place (a short block, a truncated frame).

/// A forward-only reader over borrowed bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    #[inline(always)]
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// The bytes not read yet.
    #[inline(always)]
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    #[inline(always)]
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.rest.split_first_chunk::<N>()?;
        self.rest = rest;
        Some(*head)
    }

    #[inline(always)]
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(u8::from_le_bytes)
    }

    #[inline(always)]
    pub(crate) fn i8(&mut self) -> Option<i8> {
        self.array::<1>().map(i8::from_le_bytes)
    }

    #[inline(always)]
    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.array::<2>().map(u16::from_le_bytes)
    }

    #[inline(always)]
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.array::<4>().map(u32::from_le_bytes)
    }

    #[inline(always)]
    pub(crate) fn i64(&mut self) -> Option<i64> {
        self.array::<8>().map(i64::from_le_bytes)
    }

    /// The next `n` bytes, borrowed.
    #[inline(always)]
    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.rest.split_at_checked(n)?;
        self.rest = rest;
        Some(head)
    }
}

/// An `int64` the schema uses for ids and timestamps that are never negative.
#[inline(always)]
pub(crate) fn non_negative(v: i64) -> Result<u64, super::SbeError> {
    u64::try_from(v).map_err(|_| super::SbeError::Negative)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_little_endian_and_stop_at_the_end() {
        let bytes = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u16(), Some(0x0201));
        assert_eq!(r.u32(), Some(0x0605_0403));
        assert_eq!(r.i64(), None, "one byte left");
        assert_eq!(r.u8(), Some(7));
        assert_eq!(r.bytes(1), None);
        assert_eq!(r.bytes(0), Some(&[][..]));
    }
}
