//! The hand-off stage: the hot thread's side of the bounded channel to the
//! cold thread.
//!
//! The hot thread never waits here. `try_send` either succeeds or the alert
//! goes into a preallocated overflow ring that is retried, in order, before
//! every later send; only when the ring is full too is an alert dropped, and
//! then it is counted and reported. The cold side polls with `try_recv` and
//! backs off into sleeps ([`crate::cold::IdleBackoff`]) rather than parking
//! inside the channel: waking a parked receiver costs the sender a futex
//! syscall (~9 µs measured), a polling receiver costs it ~70 ns.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::alert::{Alert, EngineSink, MetricUpdate};
use crate::gauges::PairGauges;
use crate::history::sampler::Sampler;

/// What crosses from the hot thread to the cold thread.
///
/// Variants differ in size on purpose: boxing the alert would allocate per
/// alert on the hot thread, while the channel's slots are allocated once.
#[derive(Clone, Copy, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum ColdMsg {
    /// An alert and the moment it was decided (for the `queue` latency).
    Alert(Alert, Instant),
    Metric(MetricUpdate),
}

/// Hand-off totals, owned by the hot thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HandOffCounters {
    /// Alerts that entered the channel.
    pub alerts_sent: u64,
    /// Alerts that found the channel full and waited in the overflow ring.
    pub alerts_deferred: u64,
    /// Alerts lost because the channel and the overflow ring were both full
    /// (or the cold side was gone).
    pub alerts_dropped: u64,
    /// Metric updates not sent because the channel was full.
    pub metrics_dropped: u64,
}

/// What the hot loop needs from its engine sink besides [`EngineSink`].
pub trait HotSink: EngineSink {
    /// Called once per poll iteration, after every ready socket was read.
    fn after_batch(&mut self) {}

    /// Hand-off totals for the statistics.
    fn handoff_counters(&self) -> HandOffCounters {
        HandOffCounters::default()
    }
}

/// Tests collect alerts in a vector.
impl HotSink for Vec<Alert> {}

/// The hot side of the channel, usable as the engine's sink.
pub struct HandOff {
    tx: Sender<ColdMsg>,
    overflow: VecDeque<(Alert, Instant)>,
    overflow_capacity: usize,
    log_metrics: bool,
    /// `[history]` without `log_metrics`: only each window's last update per
    /// pair crosses, not every update.
    sampler: Option<Sampler>,
    gauges: Option<Arc<PairGauges>>,
    counters: HandOffCounters,
}

/// A bounded channel of `capacity` records.
pub fn channel(capacity: usize) -> (Sender<ColdMsg>, Receiver<ColdMsg>) {
    crossbeam_channel::bounded(capacity)
}

impl HandOff {
    /// `overflow_capacity` alerts can wait when the channel is full; the ring
    /// is allocated now and never grows.
    pub fn new(tx: Sender<ColdMsg>, overflow_capacity: usize, log_metrics: bool) -> Self {
        HandOff {
            tx,
            overflow: VecDeque::with_capacity(overflow_capacity),
            overflow_capacity,
            log_metrics,
            sampler: None,
            gauges: None,
            counters: HandOffCounters::default(),
        }
    }

    /// Sends each pair's last update per `window` of feed time (the history's
    /// `sample_ms`), so the channel carries ~one update per pair per window
    /// instead of every one. Its state is allocated now and never grows. No
    /// effect while `log_metrics` sends every update anyway.
    pub fn with_sampling(mut self, window: std::time::Duration, pairs: usize) -> Self {
        self.sampler = Some(Sampler::new(window, pairs));
        self
    }

    /// Sends the open windows' updates (when the feed stops), so the last
    /// window of each pair is not lost.
    pub fn flush_samples(&mut self) {
        if let Some(sampler) = &mut self.sampler {
            for update in sampler.drain() {
                if self.tx.try_send(ColdMsg::Metric(update)).is_err() {
                    self.counters.metrics_dropped += 1;
                }
            }
        }
    }

    /// Keeps each pair's latest ratio in `gauges` (for the metrics endpoint).
    pub fn with_gauges(mut self, gauges: Arc<PairGauges>) -> Self {
        self.gauges = Some(gauges);
        self
    }

    /// Moves waiting alerts into the channel while it has room. Called by the
    /// hot loop once per poll iteration.
    #[inline]
    pub fn flush_overflow(&mut self) {
        while let Some((alert, decided)) = self.overflow.front().copied() {
            match self.tx.try_send(ColdMsg::Alert(alert, decided)) {
                Ok(()) => {
                    self.overflow.pop_front();
                    self.counters.alerts_sent += 1;
                }
                Err(TrySendError::Full(_)) => return,
                Err(TrySendError::Disconnected(_)) => {
                    self.counters.alerts_dropped += self.overflow.len() as u64;
                    self.overflow.clear();
                    return;
                }
            }
        }
    }

    /// Alerts still waiting in the overflow ring.
    pub fn pending(&self) -> usize {
        self.overflow.len()
    }

    /// Totals so far.
    pub fn counters(&self) -> HandOffCounters {
        self.counters
    }

    fn defer(&mut self, alert: Alert, decided: Instant) {
        if self.overflow.len() < self.overflow_capacity {
            self.overflow.push_back((alert, decided));
            self.counters.alerts_deferred += 1;
        } else {
            self.counters.alerts_dropped += 1;
        }
    }
}

impl EngineSink for HandOff {
    #[inline]
    fn alert(&mut self, alert: &Alert) {
        let decided = Instant::now();
        if !self.overflow.is_empty() {
            self.flush_overflow();
            if !self.overflow.is_empty() {
                self.defer(*alert, decided);
                return;
            }
        }
        match self.tx.try_send(ColdMsg::Alert(*alert, decided)) {
            Ok(()) => self.counters.alerts_sent += 1,
            Err(TrySendError::Full(_)) => self.defer(*alert, decided),
            Err(TrySendError::Disconnected(_)) => self.counters.alerts_dropped += 1,
        }
    }

    #[inline]
    fn metric(&mut self, update: &MetricUpdate) {
        if let Some(g) = &self.gauges {
            g.ratio(update.pair.index(), update.imbalance.ratio.exact.approx_f64());
            g.book(update);
        }
        let send = if self.log_metrics { Some(*update) } else { self.sampler.as_mut().and_then(|s| s.push(update)) };
        if let Some(u) = send
            && self.tx.try_send(ColdMsg::Metric(u)).is_err()
        {
            self.counters.metrics_dropped += 1;
        }
    }

    #[inline]
    fn wants_metrics(&self) -> bool {
        self.log_metrics || self.sampler.is_some() || self.gauges.is_some()
    }
}

impl HotSink for HandOff {
    #[inline]
    fn after_batch(&mut self) {
        self.flush_overflow();
    }

    fn handoff_counters(&self) -> HandOffCounters {
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairs::PairId;
    use crate::triggers::TriggerId;
    use crate::units::{UnixNanos, Volume};

    fn alert(seq: u64) -> Alert {
        Alert {
            seq,
            recv: UnixNanos(seq),
            pair: PairId(0),
            trigger: TriggerId(0),
            value: crate::exact::Fraction { negative: false, mag: 1, den: 2 },
            extra_values: [crate::exact::Fraction::default(); 3],
            bid_volume: Volume::default(),
            ask_volume: Volume::default(),
            best_bid: None,
            best_ask: None,
            last_update_id: seq,
        }
    }

    fn seqs(rx: &Receiver<ColdMsg>) -> Vec<u64> {
        rx.try_iter()
            .filter_map(|m| match m {
                ColdMsg::Alert(a, _) => Some(a.seq),
                ColdMsg::Metric(_) => None,
            })
            .collect()
    }

    #[test]
    fn a_full_channel_defers_alerts_in_order_instead_of_losing_them() {
        let (tx, rx) = channel(2);
        let mut h = HandOff::new(tx, 3, false);
        for s in 1..=4 {
            h.alert(&alert(s));
        }
        assert_eq!(h.pending(), 2);
        assert_eq!(seqs(&rx), vec![1, 2]);
        h.flush_overflow();
        h.alert(&alert(5));
        assert_eq!(seqs(&rx), vec![3, 4]);
        h.flush_overflow();
        assert_eq!(seqs(&rx), vec![5]);
        assert_eq!(
            h.counters(),
            HandOffCounters { alerts_sent: 5, alerts_deferred: 3, alerts_dropped: 0, metrics_dropped: 0 }
        );
    }

    fn update(recv_ms: u64) -> MetricUpdate {
        MetricUpdate::at_ms(PairId(0), recv_ms)
    }

    #[test]
    fn with_history_sampling_only_each_windows_last_update_crosses() {
        let (tx, rx) = channel(16);
        let mut h = HandOff::new(tx, 1, false).with_sampling(std::time::Duration::from_secs(1), 1);
        assert!(h.wants_metrics());
        for ms in [100, 500, 900, 1200, 1300, 2100] {
            h.metric(&update(ms));
        }
        h.flush_samples();
        let sent: Vec<u64> = rx
            .try_iter()
            .filter_map(|m| match m {
                ColdMsg::Metric(u) => Some(u.last_update_id),
                ColdMsg::Alert(..) => None,
            })
            .collect();
        assert_eq!(sent, vec![900, 1300, 2100]);
    }

    #[test]
    fn alerts_beyond_the_overflow_ring_are_counted_as_dropped() {
        let (tx, _rx) = channel(1);
        let mut h = HandOff::new(tx, 1, false);
        for s in 1..=4 {
            h.alert(&alert(s));
        }
        assert_eq!(h.counters().alerts_dropped, 2);
        assert_eq!(h.pending(), 1);
    }
}
