//! Pair identity, venue-neutral: every stage after the decoder names a pair
//! by a [`PairId`], whatever venue or stream it came from.
//!
//! Pairs are interned once at start-up, in config order; per-pair state
//! everywhere lives in flat vectors indexed by the id.

use std::hash::Hasher;

/// Index of a configured pair, in config order. Small and `Copy` so per-pair
/// state lives in flat vectors indexed by it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PairId(pub u16);

impl PairId {
    /// The index into per-pair vectors.
    #[inline]
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// The configured pairs' symbols, in config order: what every stage after
/// the decoder needs to name a pair to a person (`BTCUSDT`).
#[derive(Clone, Debug, Default)]
pub struct PairTable {
    symbols: Vec<String>,
}

impl PairTable {
    /// Interns `symbols` (upper case, config order); pair `i` is `symbols[i]`.
    pub fn new(symbols: &[String]) -> Self {
        PairTable { symbols: symbols.to_vec() }
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    /// True when no pair is configured.
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// Upper-case symbol of a pair (`BTCUSDT`); `?` for an id not in the table.
    pub fn symbol(&self, pair: PairId) -> &str {
        self.symbols.get(pair.index()).map_or("?", String::as_str)
    }

    /// Every pair id, in config order.
    pub fn ids(&self) -> impl Iterator<Item = PairId> + '_ {
        (0..self.symbols.len()).map(|i| PairId(i as u16))
    }
}

/// FNV-1a: stream names are short and trusted-length, so a tiny
/// non-cryptographic hash beats SipHash on the hot path.
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_numbered_in_config_order_and_unknown_ids_read_as_a_question_mark() {
        let t = PairTable::new(&["BTCUSDT".into(), "SOLUSDT".into()]);
        assert_eq!(t.ids().collect::<Vec<_>>(), [PairId(0), PairId(1)]);
        assert_eq!(t.symbol(PairId(1)), "SOLUSDT");
        assert_eq!(t.symbol(PairId(7)), "?");
    }
}
