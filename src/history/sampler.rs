//! `history.sample_ms`: at most one sample per pair per window of feed
//! time, the window's last evaluated update. A window's sample is known
//! once the pair's first update of a later window arrives (or at the end),
//! so live runs and replays of the same frames store the same rows.

use std::time::Duration;

use crate::alert::MetricUpdate;

/// Per-pair last update of the open window.
#[derive(Debug)]
pub struct Sampler {
    /// Window length in ns; 0 passes every update through.
    window_ns: u64,
    open: Vec<Option<MetricUpdate>>,
}

impl Sampler {
    pub fn new(window: Duration, pairs: usize) -> Self {
        Sampler { window_ns: u64::try_from(window.as_nanos()).unwrap_or(u64::MAX), open: vec![None; pairs] }
    }

    /// Takes one update; returns the sample of the window it closes, if any
    /// (with a zero window, the update itself).
    pub fn push(&mut self, update: &MetricUpdate) -> Option<MetricUpdate> {
        if self.window_ns == 0 {
            return Some(*update);
        }
        let slot = self.open.get_mut(update.pair.index())?;
        let w = self.window_ns;
        match slot {
            Some(prev) if prev.recv.0 / w == update.recv.0 / w => {
                *prev = *update;
                None
            }
            _ => slot.replace(*update),
        }
    }

    /// The samples of every open window (at the end of a run or replay).
    pub fn drain(&mut self) -> impl Iterator<Item = MetricUpdate> + '_ {
        self.open.iter_mut().filter_map(Option::take)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairs::PairId;

    fn update(pair: u16, recv_ms: u64) -> MetricUpdate {
        MetricUpdate::at_ms(PairId(pair), recv_ms)
    }

    #[test]
    fn each_window_keeps_its_last_update_per_pair() {
        let mut s = Sampler::new(Duration::from_secs(1), 2);
        let mut out = Vec::new();
        for (pair, ms) in [(0, 100), (1, 150), (0, 900), (0, 1100), (1, 1200), (0, 2500), (0, 2600)] {
            out.extend(s.push(&update(pair, ms)).map(|u| (u.pair.0, u.last_update_id)));
        }
        assert_eq!(out, vec![(0, 900), (1, 150), (0, 1100)]);
        let mut rest: Vec<_> = s.drain().map(|u| (u.pair.0, u.last_update_id)).collect();
        rest.sort();
        assert_eq!(rest, vec![(0, 2600), (1, 1200)]);
    }

    #[test]
    fn a_zero_window_keeps_every_update() {
        let mut s = Sampler::new(Duration::ZERO, 1);
        assert_eq!(s.push(&update(0, 5)).map(|u| u.last_update_id), Some(5));
        assert_eq!(s.push(&update(0, 6)).map(|u| u.last_update_id), Some(6));
        assert_eq!(s.drain().count(), 0);
    }
}
