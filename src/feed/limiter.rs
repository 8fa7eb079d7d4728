//! The cap on connection attempts that keeps the process inside the venue's
//! limit ([`super::ConnectionRules`]; Binance's is 300 attempts per 5
//! minutes per IP, and exceeding it gets the IP banned). The backoff between
//! attempts is the process's one [`crate::backoff::Backoff`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

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
