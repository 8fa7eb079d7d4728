//! Price levels in the depth messages' groups: `price` and `qty` mantissas
//! (two `int64`, 16 bytes) at the message's exponents.

use crate::book::{BookSide, Level, PushError, SideKind};
use crate::units::{Price, Qty};

use super::SbeError;
use super::decimal::Scale;
use super::group::Group;

/// Bytes of the fields this decoder knows in a level entry.
pub(crate) const LEVEL_LEN: usize = 16;

/// The exponents' conversions of one message.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scales {
    pub(crate) price: Scale,
    pub(crate) qty: Scale,
}

impl Scales {
    #[inline(always)]
    pub(crate) fn level(self, entry: &[u8; LEVEL_LEN]) -> Result<Level, SbeError> {
        let (p, q) = entry.split_at(8);
        let (Some(p), Some(q)) = (p.first_chunk::<8>(), q.first_chunk::<8>()) else {
            return Err(SbeError::ShortBlock);
        };
        Ok(Level {
            price: Price(self.price.apply(i64::from_le_bytes(*p))?),
            qty: Qty(self.qty.apply(i64::from_le_bytes(*q))?),
        })
    }
}

/// Fills a snapshot side from its group, best first; the side's own rules
/// (strict order, at most 20 levels) become the errors a user sees.
#[inline(always)]
pub(crate) fn fill_side<S: SideKind>(
    side: &mut BookSide<S>,
    mut group: Group<'_, LEVEL_LEN>,
    scales: Scales,
    misordered: SbeError,
) -> Result<(), SbeError> {
    side.clear();
    while let Some(entry) = group.next_entry() {
        side.push(scales.level(entry)?).map_err(|e| match e {
            PushError::Full => SbeError::TooManyLevels,
            PushError::OutOfOrder => misordered,
        })?;
    }
    Ok(())
}

/// A zero-copy view of one side of a depth diff: the levels are converted as
/// they are read, from the frame's own bytes.
///
/// Only [`super::decode`] makes one, after converting every level once, so
/// each level it yields is exact; iteration never fails midway.
#[derive(Clone, Copy, Debug)]
pub struct Levels<'a> {
    group: Group<'a, LEVEL_LEN>,
    scales: Scales,
}

impl<'a> Levels<'a> {
    /// Checks every level converts; the view is returned only if all do.
    #[inline(always)]
    pub(crate) fn validated(group: Group<'a, LEVEL_LEN>, scales: Scales) -> Result<Self, SbeError> {
        let mut check = group;
        while let Some(entry) = check.next_entry() {
            scales.level(entry)?;
        }
        Ok(Self { group, scales })
    }
}

impl Iterator for Levels<'_> {
    type Item = Level;

    #[inline]
    fn next(&mut self) -> Option<Level> {
        self.group.next_entry().and_then(|e| self.scales.level(e).ok())
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.group.len(), Some(self.group.len()))
    }
}

impl ExactSizeIterator for Levels<'_> {}
