//! Repeating groups: a dimension header (`blockLength`, `numInGroup`) and
//! `numInGroup` entries of `blockLength` bytes each.
//!
//! The whole group is bounds-checked when its header is read — count ×
//! entry length, in checked arithmetic, against the bytes that remain — so
//! iterating it afterwards cannot run past the frame. An entry longer than
//! the fields this decoder knows (a newer version's appended fields) is
//! stepped over by its announced length.

use super::SbeError;
use super::wire::Reader;

/// The entries of one group, each at least `E` bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Group<'a, const E: usize> {
    entries: &'a [u8],
    /// Announced entry length; ≥ `E` ≥ 1, so iteration always advances.
    stride: usize,
    count: usize,
}

/// Which dimension encoding a group uses in the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dimension {
    /// `groupSize16Encoding`: `uint16` blockLength, `uint16` numInGroup (depth sides).
    Size16,
    /// `groupSizeEncoding`: `uint16` blockLength, `uint32` numInGroup (trades).
    Size32,
}

impl<'a, const E: usize> Group<'a, E> {
    /// Reads a group header from `body` and takes its entries off it.
    #[inline(always)]
    pub(crate) fn read(body: &mut Reader<'a>, dimension: Dimension) -> Result<Self, SbeError> {
        let block_length = body.u16().ok_or(SbeError::Truncated)?;
        let count = match dimension {
            Dimension::Size16 => body.u16().map(u32::from),
            Dimension::Size32 => body.u32(),
        }
        .ok_or(SbeError::Truncated)?;
        let stride = usize::from(block_length);
        if stride < E.max(1) {
            return Err(SbeError::ShortBlock);
        }
        let count = usize::try_from(count).map_err(|_| SbeError::GroupOverrun)?;
        let len = count.checked_mul(stride).ok_or(SbeError::GroupOverrun)?;
        let entries = body.bytes(len).ok_or(SbeError::GroupOverrun)?;
        Ok(Self { entries, stride, count })
    }

    /// Entries not yet taken.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Every remaining entry's known fields, in order.
    #[inline(always)]
    pub(crate) fn entries(self) -> impl Iterator<Item = &'a [u8; E]> {
        // `stride` ≥ 1 by construction; `max` keeps `chunks_exact` panic-free regardless.
        self.entries.chunks_exact(self.stride.max(1)).filter_map(<[u8]>::first_chunk::<E>)
    }

    /// The entries as arrays of exactly the known fields, when that is what
    /// they are (every schema 1:0 frame): no per-entry length checks at all.
    #[inline(always)]
    pub(crate) fn exact(&self) -> Option<&'a [[u8; E]]> {
        if self.stride != E {
            return None;
        }
        let (entries, rest) = self.entries.as_chunks::<E>();
        rest.is_empty().then_some(entries)
    }

    /// The next entry's known fields.
    #[inline(always)]
    pub(crate) fn next_entry(&mut self) -> Option<&'a [u8; E]> {
        let (entry, rest) = self.entries.split_at_checked(self.stride)?;
        self.entries = rest;
        self.count = self.count.saturating_sub(1);
        entry.first_chunk::<E>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longer_entries_are_stepped_over_by_their_announced_length() {
        // blockLength 3, two entries of which we know 2 bytes each.
        let bytes = [3, 0, 2, 0, 1, 2, 0xee, 3, 4, 0xee, 9];
        let mut body = Reader::new(&bytes);
        let mut g = Group::<2>::read(&mut body, Dimension::Size16).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g.next_entry(), Some(&[1, 2]));
        assert_eq!(g.next_entry(), Some(&[3, 4]));
        assert_eq!(g.next_entry(), None);
        assert_eq!(body.rest(), &[9]);
    }

    #[test]
    fn a_count_past_the_end_is_an_overrun_and_a_short_entry_a_short_block() {
        let mut body = Reader::new(&[16, 0, 0xff, 0xff, 0xff, 0x7f, 0]);
        assert_eq!(Group::<16>::read(&mut body, Dimension::Size32).unwrap_err(), SbeError::GroupOverrun);
        let mut body = Reader::new(&[15, 0, 1, 0]);
        assert_eq!(Group::<16>::read(&mut body, Dimension::Size16).unwrap_err(), SbeError::ShortBlock);
        let mut body = Reader::new(&[16, 0]);
        assert_eq!(Group::<16>::read(&mut body, Dimension::Size16).unwrap_err(), SbeError::Truncated);
        let mut body = Reader::new(&[16, 0, 0, 0]);
        assert_eq!(Group::<16>::read(&mut body, Dimension::Size16).unwrap().len(), 0);
    }
}
