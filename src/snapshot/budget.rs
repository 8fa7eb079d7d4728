//! Binance's request weight for depth snapshots, and the rolling budget the
//! fetcher spends it from.
//!
//! Binance counts weight per IP per minute (6,000) and answers 429, then 418
//! (a ban of 2 minutes to 3 days), to an IP that goes over. The fetcher keeps
//! its own rolling account of what it sent, raised to the server's count
//! (`X-MBX-USED-WEIGHT-1M`) whenever that is higher — the IP may be shared
//! with other programs — and sends a request only when it fits.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Binance Spot's request-weight limit per IP per minute (REST API docs, "LIMITS").
pub const BINANCE_WEIGHT_PER_MINUTE: u32 = 6_000;

/// The weight the fetcher allows itself per minute: half of Binance's limit,
/// so another program on the same IP (a second monitor, a trading bot) and
/// the delay before the server's count corrects ours never push the IP over.
pub const DEFAULT_WEIGHT_BUDGET: u32 = BINANCE_WEIGHT_PER_MINUTE / 2;

/// Binance's weight window.
pub const WEIGHT_WINDOW: Duration = Duration::from_secs(60);

/// The request weight of `GET /api/v3/depth` with `limit` (REST API docs,
/// "Order book"): 1–100 → 5, 101–500 → 25, 501–1000 → 50, 1001–5000 → 250.
pub const fn depth_weight(limit: u32) -> u32 {
    match limit {
        0..=100 => 5,
        101..=500 => 25,
        501..=1000 => 50,
        _ => 250,
    }
}

/// Weight spent within the last `window`, as (when, weight) entries oldest
/// first. Cold-thread state: it may allocate.
#[derive(Debug)]
pub(crate) struct WeightBudget {
    window: Duration,
    limit: u32,
    spent: VecDeque<(Instant, u32)>,
}

impl WeightBudget {
    /// A budget of `limit` weight per rolling `window`.
    pub(crate) fn new(limit: u32, window: Duration) -> Self {
        WeightBudget { window, limit, spent: VecDeque::new() }
    }

    /// Weight spent within the window ending at `now`.
    pub(crate) fn used(&mut self, now: Instant) -> u32 {
        while let Some(&(at, _)) = self.spent.front() {
            if now.saturating_duration_since(at) < self.window {
                break;
            }
            self.spent.pop_front();
        }
        self.spent.iter().fold(0u32, |sum, &(_, w)| sum.saturating_add(w))
    }

    /// The earliest instant, `now` or later, at which a request of `weight`
    /// fits. A request heavier than the whole budget fits once nothing else
    /// is in the window.
    pub(crate) fn ready_at(&mut self, weight: u32, now: Instant) -> Instant {
        let used = self.used(now);
        let Some(mut excess) = used.checked_add(weight).and_then(|total| total.checked_sub(self.limit)) else {
            return now;
        };
        if excess == 0 {
            return now;
        }
        for &(at, w) in &self.spent {
            excess = excess.saturating_sub(w);
            if excess == 0 {
                return at + self.window;
            }
        }
        self.spent.back().map_or(now, |&(at, _)| at + self.window)
    }

    /// Records a request of `weight` sent at `now`.
    pub(crate) fn spend(&mut self, weight: u32, now: Instant) {
        self.spent.push_back((now, weight));
    }

    /// Raises the account to the server's count of the IP's weight this
    /// minute, when that is higher than ours (others share the IP, or we
    /// restarted); a lower count changes nothing, since ours is the more
    /// cautious rolling window.
    pub(crate) fn observe_server_count(&mut self, server_used: u32, now: Instant) {
        let ours = self.used(now);
        if let Some(missing) = server_used.checked_sub(ours).filter(|&m| m > 0) {
            self.spend(missing, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_follow_binances_table() {
        for (limit, weight) in [(5, 5), (100, 5), (101, 25), (500, 25), (501, 50), (1000, 50), (1001, 250), (5000, 250)]
        {
            assert_eq!(depth_weight(limit), weight, "limit {limit}");
        }
    }

    #[test]
    fn a_request_waits_until_enough_old_weight_leaves_the_window() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut b = WeightBudget::new(100, s(60));
        b.spend(50, t0);
        b.spend(40, t0 + s(10));
        assert_eq!(b.used(t0 + s(11)), 90);
        assert_eq!(b.ready_at(10, t0 + s(11)), t0 + s(11));
        // 20 or 60 more need the first 50 gone; 61 more needs both.
        assert_eq!(b.ready_at(20, t0 + s(11)), t0 + s(60));
        assert_eq!(b.ready_at(60, t0 + s(11)), t0 + s(60));
        assert_eq!(b.ready_at(61, t0 + s(11)), t0 + s(70));
        assert_eq!(b.used(t0 + s(60)), 40);
        // Heavier than the budget: it waits for an empty window.
        assert_eq!(b.ready_at(500, t0 + s(61)), t0 + s(70));
        assert_eq!(b.ready_at(500, t0 + s(70)), t0 + s(70));
    }

    #[test]
    fn the_servers_higher_count_is_taken_and_a_lower_one_ignored() {
        let t0 = Instant::now();
        let mut b = WeightBudget::new(3000, WEIGHT_WINDOW);
        b.spend(50, t0);
        b.observe_server_count(20, t0);
        assert_eq!(b.used(t0), 50);
        b.observe_server_count(2_990, t0);
        assert_eq!(b.used(t0), 2_990);
        assert_eq!(b.ready_at(50, t0), t0 + WEIGHT_WINDOW);
    }
}
