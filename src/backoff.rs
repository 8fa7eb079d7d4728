//! The one backoff: exponential with full jitter, for every retry loop in
//! the process (feed reconnects, Telegram resends).
//!
//! The n-th consecutive failure waits a uniformly random time in
//! `[0, min(cap, base × 2^n)]`, so many clients failing together do not
//! retry in lockstep (AWS Architecture Blog, "Exponential Backoff And
//! Jitter", 2015).

use std::time::Duration;

use crate::prng::SplitMix64;

/// Exponential backoff with full jitter, counting its own failures.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
    rng: SplitMix64,
}

impl Backoff {
    /// Delays doubling from `base` up to `cap`, jittered by `rng`.
    pub fn new(base: Duration, cap: Duration, rng: SplitMix64) -> Self {
        Backoff { base, cap, failures: 0, rng }
    }

    /// The delay before the next attempt after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.delay(self.failures);
        self.failures = self.failures.saturating_add(1);
        d
    }

    /// The delay after failure number `n + 1` when the caller counts
    /// failures itself (one backoff serving many queued items).
    pub fn delay(&mut self, n: u32) -> Duration {
        let ceiling = self.base.saturating_mul(1u32 << n.min(20)).min(self.cap);
        let nanos = crate::units::nanos(ceiling);
        Duration::from_nanos(if nanos == 0 { 0 } else { self.rng.next_u64() % (nanos + 1) })
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Forget past failures (after a connection stayed healthy long enough).
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standard(seed: u64) -> Backoff {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(30), SplitMix64::new(seed))
    }

    #[test]
    fn delays_grow_exponentially_within_the_cap_and_reset() {
        let mut b = standard(42);
        for n in 0..40u32 {
            let d = b.next_delay();
            let ceiling = Duration::from_millis(100).saturating_mul(1 << n.min(20)).min(Duration::from_secs(30));
            assert!(d <= ceiling, "attempt {n}: {d:?} > {ceiling:?}");
        }
        assert_eq!(b.failures(), 40);
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut b = standard(7);
        let delays: Vec<Duration> = (0..12).map(|_| b.next_delay()).collect();
        let mut distinct = delays.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 8, "{delays:?}");
    }
}
