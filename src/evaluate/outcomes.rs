//! Forward outcomes: the move of the mid price a horizon after each alert
//! (and after every evaluated update, the baseline), resolved while the
//! recording streams past, so memory grows with the outcomes, not the books.
//!
//! Definitions (README "Is the signal any good?"): `mid(t)` is the mid of the
//! book the alert was decided on; `mid(t+h)` is the mid of the pair's last
//! evaluated book with both sides at or before `t + h` (receive time). An
//! outcome whose `t + h` lies after the pair's last evaluated update is
//! excluded and counted. Updates of a pair are expected in receive-time order
//! (recordings are); an outcome waits for the first update past its deadline.

use std::collections::VecDeque;

use crate::book::{Book, Sides};
use crate::exact::Fraction;
use crate::pairs::PairId;
use crate::units::{Price, UnixNanos};

use super::horizons::Horizon;

/// Twice the mid price (best bid + best ask) at scale 1e8: exact, and a
/// ratio of mids is the ratio of these sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MidSum(pub u128);

impl MidSum {
    /// The mid of a book with both sides, `None` for a one-sided book (or
    /// one priced at zero, which no return can be relative to).
    pub fn of_prices(bid: Option<Price>, ask: Option<Price>) -> Option<MidSum> {
        Some(MidSum(u128::from(bid?.0) + u128::from(ask?.0))).filter(|m| m.0 > 0)
    }

    /// [`MidSum::of_prices`] of a book's best levels.
    pub fn of_book(book: &Book) -> Option<MidSum> {
        let (bid, ask) = book.best_prices();
        MidSum::of_prices(bid, ask)
    }
}

/// `(end − start) / start × 10⁴ × sign` in bps: exact as a fraction of the
/// integer sums, correctly rounded to `f64` once.
pub fn forward_bps(start: MidSum, end: MidSum, sign: i8) -> f64 {
    if start.0 == 0 {
        return 0.0;
    }
    let up = end.0 >= start.0;
    // |end − start| < 2^65, times 10⁴ < 2^79: no overflow in u128.
    let fraction = Fraction { negative: up != (sign > 0), mag: end.0.abs_diff(start.0) * 10_000, den: start.0 };
    if fraction.mag == 0 { 0.0 } else { fraction.to_f64() }
}

/// Where a resolved outcome is recorded: an alert slot or the pair's baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Alert(usize),
    Baseline,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    deadline_ns: u64,
    start_ns: u64,
    start: MidSum,
    sign: i8,
    target: Target,
}

/// One resolved alert outcome.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Receive time of the alert's frame.
    pub start_ns: u64,
    pub bps: f64,
}

#[derive(Default)]
struct PairTrack {
    last_update_ns: Option<u64>,
    last_mid: Option<MidSum>,
    /// Per horizon, outcomes waiting for their deadline, earliest first.
    pending: Vec<VecDeque<Pending>>,
}

/// Collects every outcome of one evaluation. Alert outcomes are kept per
/// *slot* (the caller's index of a variant × trigger × pair) and horizon.
pub struct Outcomes {
    horizons: Vec<Horizon>,
    pairs: Vec<PairTrack>,
    /// At `slot * horizons + h`, in alert order.
    alert_samples: Vec<Vec<Sample>>,
    /// At `slot * horizons + h`: alerts whose horizon ran past the data.
    alert_past_end: Vec<u64>,
    /// At `pair * horizons + h`.
    baseline_samples: Vec<Vec<f64>>,
    baseline_past_end: Vec<u64>,
    /// Evaluated updates of a pair with one empty side (no mid), per pair.
    baseline_no_mid: Vec<u64>,
}

impl Outcomes {
    /// Room for `slots` alert slots over `pairs` pairs.
    pub fn new(horizons: &[Horizon], pairs: usize, slots: usize) -> Self {
        let h = horizons.len();
        Outcomes {
            horizons: horizons.to_vec(),
            pairs: (0..pairs)
                .map(|_| PairTrack { pending: vec![VecDeque::new(); h], ..PairTrack::default() })
                .collect(),
            alert_samples: vec![Vec::new(); slots * h],
            alert_past_end: vec![0; slots * h],
            baseline_samples: vec![Vec::new(); pairs * h],
            baseline_past_end: vec![0; pairs * h],
            baseline_no_mid: vec![0; pairs],
        }
    }

    /// An evaluated update of `pair` at `recv`, `mid` its mid if it has both
    /// sides: resolves every outcome whose deadline it passes, then starts
    /// the update's own baseline outcomes. Call it before the update's alerts.
    pub fn on_update(&mut self, pair: PairId, recv: UnixNanos, mid: Option<MidSum>) {
        let Some(track) = self.pairs.get_mut(pair.index()) else { return };
        let now = recv.0;
        let hs = self.horizons.len();
        for (h, queue) in track.pending.iter_mut().enumerate() {
            while let Some(p) = queue.front().copied().filter(|p| p.deadline_ns < now) {
                queue.pop_front();
                // The start book had a mid, so a last mid exists.
                let end = track.last_mid.unwrap_or(p.start);
                record(&mut self.alert_samples, &mut self.baseline_samples, (pair, hs, h), p, end);
            }
        }
        track.last_update_ns = Some(now);
        match mid {
            Some(m) => {
                track.last_mid = Some(m);
                push_all(track, &self.horizons, now, m, 1, Target::Baseline);
            }
            None => {
                if let Some(n) = self.baseline_no_mid.get_mut(pair.index()) {
                    *n += 1;
                }
            }
        }
    }

    /// An alert in `slot` on `pair`'s update at `recv` whose book had mid
    /// `start`, betting on `sign` (+1 up, −1 down).
    pub fn on_alert(&mut self, pair: PairId, recv: UnixNanos, slot: usize, start: MidSum, sign: i8) {
        if let Some(track) = self.pairs.get_mut(pair.index()) {
            push_all(track, &self.horizons, recv.0, start, sign, Target::Alert(slot));
        }
    }

    /// Ends the data: outcomes due exactly at a pair's last update resolve
    /// with its mid; the rest ran past the end and are counted as excluded.
    pub fn finish(&mut self) {
        let hs = self.horizons.len();
        for (pi, track) in self.pairs.iter_mut().enumerate() {
            let pair = PairId(pi as u16);
            let last = track.last_update_ns.unwrap_or(0);
            for (h, queue) in track.pending.iter_mut().enumerate() {
                for p in queue.drain(..) {
                    if p.deadline_ns <= last {
                        let end = track.last_mid.unwrap_or(p.start);
                        record(&mut self.alert_samples, &mut self.baseline_samples, (pair, hs, h), p, end);
                    } else {
                        let i = match p.target {
                            Target::Alert(slot) => self.alert_past_end.get_mut(slot * hs + h),
                            Target::Baseline => self.baseline_past_end.get_mut(pi * hs + h),
                        };
                        if let Some(n) = i {
                            *n += 1;
                        }
                    }
                }
            }
        }
    }

    /// The resolved outcomes of an alert slot at horizon index `h`.
    pub fn alert_samples(&self, slot: usize, h: usize) -> &[Sample] {
        self.alert_samples.get(slot * self.horizons.len() + h).map_or(&[], Vec::as_slice)
    }

    /// Alerts of a slot left out of horizon `h` because it ran past the data.
    pub fn alert_past_end(&self, slot: usize, h: usize) -> u64 {
        self.alert_past_end.get(slot * self.horizons.len() + h).copied().unwrap_or(0)
    }

    /// The baseline returns of a pair at horizon index `h`.
    pub fn baseline_samples(&self, pair: usize, h: usize) -> &[f64] {
        self.baseline_samples.get(pair * self.horizons.len() + h).map_or(&[], Vec::as_slice)
    }

    /// Baseline updates of a pair left out of horizon `h` at the end.
    pub fn baseline_past_end(&self, pair: usize, h: usize) -> u64 {
        self.baseline_past_end.get(pair * self.horizons.len() + h).copied().unwrap_or(0)
    }

    /// Evaluated updates of a pair without a mid (one side empty).
    pub fn baseline_no_mid(&self, pair: usize) -> u64 {
        self.baseline_no_mid.get(pair).copied().unwrap_or(0)
    }
}

fn push_all(track: &mut PairTrack, horizons: &[Horizon], now: u64, start: MidSum, sign: i8, target: Target) {
    for (queue, h) in track.pending.iter_mut().zip(horizons) {
        queue.push_back(Pending { deadline_ns: now.saturating_add(h.ns), start_ns: now, start, sign, target });
    }
}

/// Records a resolved outcome; `at` is (pair, horizon count, horizon index).
fn record(alerts: &mut [Vec<Sample>], baseline: &mut [Vec<f64>], at: (PairId, usize, usize), p: Pending, end: MidSum) {
    let (pair, hs, h) = at;
    let bps = forward_bps(p.start, end, p.sign);
    match p.target {
        Target::Alert(slot) => {
            if let Some(v) = alerts.get_mut(slot * hs + h) {
                v.push(Sample { start_ns: p.start_ns, bps });
            }
        }
        Target::Baseline => {
            if let Some(v) = baseline.get_mut(pair.index() * hs + h) {
                v.push(bps);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn mid(bid: u64, ask: u64) -> Option<MidSum> {
        MidSum::of_prices(Some(Price(bid * 100_000_000)), Some(Price(ask * 100_000_000)))
    }

    #[test]
    fn forward_returns_are_exact_fractions_rounded_once_and_signed() {
        // mid 100.5 → 101: 0.5 / 100.5 × 10⁴ = 10⁴ / 201, one correctly rounded division.
        let (start, end) = (mid(100, 101).unwrap(), mid(100, 102).unwrap());
        assert_eq!(forward_bps(start, end, 1), 1e4 / 201.0);
        assert_eq!(forward_bps(start, end, -1), -1e4 / 201.0);
        assert_eq!(forward_bps(end, start, -1), 1e4 / 202.0);
        assert_eq!(forward_bps(start, start, -1), 0.0);
        assert_eq!(MidSum::of_prices(Some(Price(1)), None), None);
        assert_eq!(MidSum::of_prices(Some(Price(0)), Some(Price(0))), None);
    }

    #[test]
    fn an_outcome_resolves_on_the_first_update_past_its_deadline_with_the_last_mid_at_or_before_it() {
        let h = [Horizon { ns: SEC }];
        let mut o = Outcomes::new(&h, 1, 1);
        let p = PairId(0);
        o.on_update(p, UnixNanos(0), mid(100, 101));
        o.on_alert(p, UnixNanos(0), 0, mid(100, 101).unwrap(), 1);
        o.on_update(p, UnixNanos(SEC), mid(100, 102)); // exactly t + h: counts
        assert!(o.alert_samples(0, 0).is_empty(), "not resolved before a later update");
        o.on_update(p, UnixNanos(SEC + 1), mid(100, 103));
        assert_eq!(o.alert_samples(0, 0), &[Sample { start_ns: 0, bps: 1e4 / 201.0 }]);
        o.finish();
        // The baseline from 0 resolved; those from 1 s and 1 s + 1 ns run past the end.
        assert_eq!((o.baseline_samples(0, 0).len(), o.baseline_past_end(0, 0)), (1, 2));
    }
}
