//! The one pseudo-random source: SplitMix64. Tiny, seedable, no dependency,
//! and plenty for what it serves — backoff jitter (feed and Telegram) and
//! the simulator's synthetic walk. Nothing here is for secrets.

use std::hash::{BuildHasher, Hasher};

/// SplitMix64 (Steele, Lea & Flood 2014): a 64-bit state advanced by the
/// golden-ratio increment, each output a finalised copy of it.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A sequence fixed by `seed` (the simulator's walk is reproducible).
    pub const fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// A sequence that differs per process, from the standard library's
    /// per-process hasher keys: several monitors restarting together do not
    /// retry in lockstep.
    pub fn from_entropy() -> Self {
        let mut h = std::hash::RandomState::new().build_hasher();
        h.write_u64(0x9e37_79b9_7f4a_7c15);
        SplitMix64(h.finish())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0; the modulo bias is irrelevant for jitter
    /// and walks).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_splitmix64() {
        // Reference outputs for seed 0 (Vigna's splitmix64.c).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(r.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn below_stays_below() {
        let mut r = SplitMix64::new(7);
        assert!((0..1000).all(|_| r.below(10) < 10));
        assert_eq!(r.below(0), 0);
    }
}
