//! The `/metrics` body: every counter, gauge and latency histogram in the
//! OpenMetrics text format, through prometheus-client's encoder.
//!
//! Latency histograms are converted from the run-long hdrhistograms into the
//! fixed bucket layout of [`BUCKETS_NS`] at scrape time, so the hot thread
//! never touches a Prometheus type.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use hdrhistogram::Histogram;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::State;
use crate::reject::RejectKind;
use crate::units::UnixNanos;

/// Upper bounds of the latency histogram buckets, nanoseconds (exported in
/// seconds). Integers, so a bound is compared with the hdrhistogram's
/// nanosecond values exactly; above the last one is the `+Inf` bucket.
const BUCKETS_NS: [u64; 25] = [
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Fills `out` with what prometheus-client's `encode_histogram` expects:
/// `(upper bound in seconds, count in this bucket alone)` — the encoder makes
/// them cumulative itself — ending with the `+Inf` bucket, so the last
/// cumulative count is `h.len()`, the `_count`.
///
/// A value is counted at or below a bound when its hdrhistogram bucket starts
/// at or below it (`count_between`), so a bound is exact to the histogram's
/// 3 significant digits.
fn histogram_buckets(h: &Histogram<u64>, out: &mut Vec<(f64, u64)>) {
    out.clear();
    let mut below = 0;
    for ns in BUCKETS_NS {
        let cumulative = h.count_between(0, ns).min(h.len());
        out.push((ns as f64 / 1e9, cumulative.saturating_sub(below)));
        below = below.max(cumulative);
    }
    out.push((f64::INFINITY, h.len().saturating_sub(below)));
}

/// Encodes one scrape of `state`.
pub(super) fn encode(state: &Arc<State>) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("imbalance_monitor");
    registry.register_collector(Box::new(ScrapeCollector(Arc::clone(state))));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

#[derive(Debug)]
struct ScrapeCollector(Arc<State>);

fn counter(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: u64) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(v);
    c.encode(enc.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: f64) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(v);
    g.encode(enc.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for ScrapeCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let st = &self.0;
        let snap = st.snapshot.lock().map_err(|_| std::fmt::Error)?;
        let t = &snap.totals;
        let e = &t.engine;

        let mut m = enc.encode_descriptor("frames", "Depth frames received, by pair.", None, MetricType::Counter)?;
        for (i, pair) in st.pairs.iter().enumerate() {
            let n = e.frames_by_pair.get(i).copied().unwrap_or(0);
            ConstCounter::new(n).encode(m.encode_family(&[("pair", pair.as_str())])?)?;
        }
        let mut m =
            enc.encode_descriptor("frames_rejected", "Frames rejected, by error kind.", None, MetricType::Counter)?;
        for kind in RejectKind::ALL {
            ConstCounter::new(e.errors[kind.index()]).encode(m.encode_family(&[("kind", kind.name())])?)?;
        }
        let mut m = enc.encode_descriptor(
            "books_skipped",
            "Books not evaluated, by reason (crossed, empty, overflow, duplicate).",
            None,
            MetricType::Counter,
        )?;
        for (reason, n) in
            [("crossed", e.crossed), ("empty", e.empty), ("overflow", e.overflow), ("duplicate", e.duplicates)]
        {
            ConstCounter::new(n).encode(m.encode_family(&[("reason", reason)])?)?;
        }
        counter(&mut enc, "books_evaluated", "Books evaluated by the triggers.", e.evaluated)?;
        if let Some(l) = &e.local {
            let mut m = enc.encode_descriptor(
                "local_book_events",
                "Local book (binance.book = diff) events, by kind.",
                None,
                MetricType::Counter,
            )?;
            for (kind, n) in [
                ("buffered", l.buffered),
                ("stale", l.stale_events),
                ("gap", l.gaps),
                ("resync", l.resyncs),
                ("buffer_overflow", l.buffer_overflows),
                ("snapshot_applied", l.snapshots_applied),
                ("snapshot_too_old", l.snapshots_too_old),
                ("snapshot_refused", l.snapshots_refused),
                ("touch", l.touches),
                ("stale_touch", l.stale_touches),
                ("level_dropped", l.levels_dropped),
            ] {
                ConstCounter::new(n).encode(m.encode_family(&[("kind", kind)])?)?;
            }
        }
        let mut m = enc.encode_descriptor("alerts", "Alerts fired, by trigger and pair.", None, MetricType::Counter)?;
        for ((trigger, pair), n) in &snap.alerts {
            ConstCounter::new(*n)
                .encode(m.encode_family(&[("trigger", trigger.as_str()), ("pair", pair.as_str())])?)?;
        }
        counter(
            &mut enc,
            "alerts_dropped",
            "Alerts lost at the hot/cold hand-off (channel and overflow full).",
            t.handoff.alerts_dropped,
        )?;
        counter(
            &mut enc,
            "alerts_deferred",
            "Alerts that waited in the hot-side overflow ring.",
            t.handoff.alerts_deferred,
        )?;
        counter(
            &mut enc,
            "reconnects",
            "Feed connections lost (errors, stale feed, server close).",
            t.feed.disconnects,
        )?;
        counter(&mut enc, "connects", "Feed WebSocket handshakes completed.", t.feed.connects)?;
        counter(&mut enc, "stale_feeds", "Stale-feed watchdog firings.", t.feed.stale)?;
        counter(&mut enc, "rotations", "Make-before-break connection rotations.", t.feed.rotations)?;
        counter(&mut enc, "record_dropped", "Frames the recorder could not keep up with.", t.record_dropped)?;
        let mut m = enc.encode_descriptor(
            "http_rejected",
            "Connections to this endpoint ended without a normal answer, by reason (evicted: closed unanswered to make room, the table being full; timed_out: head or answer not complete within the deadline; too_large: head over the cap, answered 431).",
            None,
            MetricType::Counter,
        )?;
        let server = &st.server;
        for (reason, n) in
            [("evicted", &server.evicted), ("timed_out", &server.timed_out), ("too_large", &server.too_large)]
        {
            ConstCounter::new(n.load(Ordering::Relaxed)).encode(m.encode_family(&[("reason", reason)])?)?;
        }
        if let Some(tg) = &st.telegram {
            let mut m =
                enc.encode_descriptor("telegram_sends", "Telegram deliveries, by status.", None, MetricType::Counter)?;
            for (status, n) in tg() {
                ConstCounter::new(n).encode(m.encode_family(&[("status", status)])?)?;
            }
        }

        let mut m =
            enc.encode_descriptor("imbalance_ratio", "Latest imbalance_ratio, by pair.", None, MetricType::Gauge)?;
        for (i, pair) in st.pairs.iter().enumerate() {
            if let Some(v) = st.gauges.last_ratio(i) {
                ConstGauge::new(v).encode(m.encode_family(&[("pair", pair.as_str())])?)?;
            }
        }
        let now = UnixNanos::now().0;
        let mut m = enc.encode_descriptor(
            "seconds_since_last_frame",
            "Seconds since each pair's last depth frame (absent before the first).",
            None,
            MetricType::Gauge,
        )?;
        for (i, pair) in st.pairs.iter().enumerate() {
            if let Some(last) = st.gauges.last_frame(i) {
                let ago = now.saturating_sub(last) as f64 / 1e9;
                ConstGauge::new(ago).encode(m.encode_family(&[("pair", pair.as_str())])?)?;
            }
        }
        gauge(
            &mut enc,
            "connections_open",
            "Feed connections currently open.",
            f64::from(st.gauges.connections_open.load(Ordering::Relaxed)),
        )?;
        gauge(&mut enc, "start_time_seconds", "Unix time the process started.", st.started_unix)?;

        let mut m = enc.encode_descriptor(
            "latency_seconds",
            "Latency per stage (wire_to_decision, socket_read, in_process, parse, eval, exchange (includes clock offset), queue, telegram, decision_to_delivered).",
            None,
            MetricType::Histogram,
        )?;
        let mut buckets: Vec<(f64, u64)> = Vec::with_capacity(BUCKETS_NS.len() + 1);
        for (stage, h) in &snap.latency {
            if h.is_empty() {
                continue;
            }
            histogram_buckets(h, &mut buckets);
            let sum = h.mean() * h.len() as f64 / 1e9;
            m.encode_family(&[("stage", *stage)])?.encode_histogram::<NoLabelSet>(sum, h.len(), &buckets, None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_histogram;

    fn cumulative(h: &Histogram<u64>) -> Vec<(f64, u64)> {
        let mut per_bucket = Vec::new();
        histogram_buckets(h, &mut per_bucket);
        let mut total = 0;
        let mut out = Vec::new();
        for (le, n) in per_bucket {
            total += n;
            out.push((le, total));
        }
        out
    }

    #[test]
    fn buckets_count_each_value_once_and_end_in_inf_equal_to_the_count() {
        let mut h = new_histogram();
        // 100 ns (on a bound: counted at or below it), 3 µs, 3 µs, 2 ms, 20 s (above every bound).
        for ns in [100, 3_000, 3_000, 2_000_000, 20_000_000_000] {
            h.record(ns).unwrap();
        }
        let c = cumulative(&h);
        assert_eq!(c.len(), BUCKETS_NS.len() + 1);
        let at = |le: f64| c.iter().find(|(b, _)| *b == le).map(|&(_, n)| n).unwrap();
        assert_eq!(at(1e-7), 1);
        assert_eq!(at(2.5e-6), 1);
        assert_eq!(at(5e-6), 3);
        assert_eq!(at(2.5e-3), 4);
        assert_eq!(at(10.0), 4);
        assert_eq!(c.last(), Some(&(f64::INFINITY, 5)));
        assert!(c.windows(2).all(|w| w[0].1 <= w[1].1), "{c:?}");
    }

    #[test]
    fn bounds_in_seconds_print_as_the_usual_prometheus_labels() {
        let secs: Vec<f64> = BUCKETS_NS.iter().map(|&ns| ns as f64 / 1e9).collect();
        assert_eq!(secs[0], 1e-7);
        assert_eq!(secs[4], 2.5e-6);
        assert_eq!(secs[24], 10.0);
    }
}
