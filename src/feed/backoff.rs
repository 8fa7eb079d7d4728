//! Reconnection pacing: exponential backoff with full jitter, and a cap on
//! connection attempts that keeps the process inside the venue's limit
//! ([`super::ConnectionRules`]; Binance's is 300 attempts per 5 minutes per
//! IP, and exceeding it gets the IP banned).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Exponential backoff with full jitter: the n-th consecutive failure waits a
/// uniformly random time in `[0, min(cap, base × 2^n)]`, so many clients
/// restarting together do not reconnect in lockstep.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
    rng: u64,
}

impl Backoff {
    /// 100 ms doubling to a 30 s cap, as the product promises.
    pub fn standard(seed: u64) -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(30), seed)
    }

    pub fn new(base: Duration, cap: Duration, seed: u64) -> Self {
        Backoff { base, cap, failures: 0, rng: seed | 1 }
    }

    /// The delay before the next attempt after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.failures.min(20));
        let ceiling = exp.min(self.cap);
        self.failures = self.failures.saturating_add(1);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(if nanos == 0 { 0 } else { self.next_random() % (nanos + 1) })
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Forget past failures (after a connection stayed healthy long enough).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// xorshift64*: plenty for jitter, no dependency.
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// A sliding-window cap on connection attempts.
#[derive(Clone, Debug)]
pub struct AttemptLimiter {
    max: usize,
    window: Duration,
    recent: VecDeque<Instant>,
}

impl AttemptLimiter {
    pub fn new(max: usize, window: Duration) -> Self {
        AttemptLimiter { max, window, recent: VecDeque::with_capacity(max) }
    }

    /// `None` if an attempt may start at `now` (and records it), otherwise the
    /// earliest instant one may.
    pub fn try_acquire(&mut self, now: Instant) -> Option<Instant> {
        while self.recent.front().is_some_and(|&t| now.duration_since(t) >= self.window) {
            self.recent.pop_front();
        }
        if self.recent.len() < self.max {
            self.recent.push_back(now);
            None
        } else {
            self.recent.front().map(|&t| t + self.window)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_within_the_cap_and_reset() {
        let mut b = Backoff::standard(42);
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
        let mut b = Backoff::standard(7);
        let delays: Vec<Duration> = (0..12).map(|_| b.next_delay()).collect();
        let mut distinct = delays.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 8, "{delays:?}");
    }

    #[test]
    fn attempts_are_capped_per_window() {
        let mut l = AttemptLimiter::new(3, Duration::from_secs(300));
        let t0 = Instant::now();
        assert_eq!(l.try_acquire(t0), None);
        assert_eq!(l.try_acquire(t0 + Duration::from_secs(1)), None);
        assert_eq!(l.try_acquire(t0 + Duration::from_secs(2)), None);
        assert_eq!(l.try_acquire(t0 + Duration::from_secs(3)), Some(t0 + Duration::from_secs(300)));
        assert_eq!(l.try_acquire(t0 + Duration::from_secs(300)), None);
    }
}
