//! Price levels in the depth messages' groups: `price` and `qty` mantissas
//! (two `int64`, 16 bytes) at the message's exponents.

use crate::book::{BookSide, Level, MAX_LEVELS, PushError, SideKind};
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
        let (price, qty) = split_level(entry);
        Ok(Level { price: Price(self.price.apply(price)?), qty: Qty(self.qty.apply(qty)?) })
    }
}

/// Fills a snapshot side from its group, best first; the side's own rules
/// (strict order, at most 20 levels) become the errors a user sees.
///
/// Out of line: called twice per snapshot, and alone the loop is optimised
/// as a unit (inlined into `decode` with the other messages, it was not).
#[inline(never)]
pub(crate) fn fill_side<S: SideKind>(
    side: &mut BookSide<S>,
    group: Group<'_, LEVEL_LEN>,
    scales: Scales,
    misordered: SbeError,
) -> Result<(), SbeError> {
    if group.len() > MAX_LEVELS {
        return Err(SbeError::TooManyLevels);
    }
    if let (Scale::Mul(pf), Scale::Mul(qf)) = (scales.price, scales.qty) {
        // Every exponent Binance sends (−8 ≤ e ≤ 11): one multiply per value,
        // the signs of both values tested at once.
        let convert = |entry: &[u8; LEVEL_LEN]| {
            let (p, q) = split_level(entry);
            if (p | q) < 0 {
                return Err(SbeError::Negative);
            }
            match ((p as u64).checked_mul(pf), (q as u64).checked_mul(qf)) {
                (Some(price), Some(qty)) => Ok(Level { price: Price(price), qty: Qty(qty) }),
                _ => Err(SbeError::Overflow),
            }
        };
        fill_with(side, group, convert, misordered)
    } else {
        fill_with(side, group, |entry| scales.level(entry), misordered)
    }
}

/// Converts the group into a local array, then hands the side the whole of
/// it at once: the loop keeps its count in a register and the side checks
/// order in one pass.
#[inline(always)]
fn fill_with<S: SideKind>(
    side: &mut BookSide<S>,
    group: Group<'_, LEVEL_LEN>,
    convert: impl Fn(&[u8; LEVEL_LEN]) -> Result<Level, SbeError>,
    misordered: SbeError,
) -> Result<(), SbeError> {
    let mut levels = [Level::default(); MAX_LEVELS];
    let mut n = 0;
    let mut put = |entry: &[u8; LEVEL_LEN]| {
        let slot = levels.get_mut(n).ok_or(SbeError::TooManyLevels)?;
        *slot = convert(entry)?;
        n += 1;
        Ok(())
    };
    match group.exact() {
        Some(entries) => entries.iter().try_for_each(&mut put)?,
        None => group.entries().try_for_each(&mut put)?,
    }
    side.set_levels(levels.get(..n).unwrap_or(&[])).map_err(|e| match e {
        PushError::Full => SbeError::TooManyLevels,
        PushError::OutOfOrder => misordered,
    })
}

/// The price and quantity mantissas of a level entry.
#[inline(always)]
fn split_level(entry: &[u8; LEVEL_LEN]) -> (i64, i64) {
    let (p, q) = entry.split_at(8);
    let read = |b: &[u8]| b.first_chunk::<8>().map_or(0, |c| i64::from_le_bytes(*c));
    (read(p), read(q))
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
