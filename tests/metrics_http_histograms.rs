//! The Prometheus latency histograms after real traffic (simulator → engine
//! → cold thread → `/metrics` over a real socket), read with a real
//! text-format parser and checked against the hdrhistograms they come from
//! (the run's HdrHistogram interval log): buckets never decrease, `+Inf`
//! exists and equals `_count`, and `histogram_quantile` lands in the bucket
//! that holds the hdrhistogram's own quantile.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use imbalance_monitor::config::Config;
use imbalance_monitor::run::{RunOptions, Runner};
use imbalance_monitor::simulator::{Rate, SimOptions, Simulator};
use imbalance_monitor::stats::new_histogram;
use prometheus_parse::{Scrape, Value};
use support::live::{base64_decode, http_get, recording, scratch, wait_until};

/// One stage's exported histogram: cumulative `(le seconds, count)` in the
/// order of `le`, and `_count`.
#[derive(Debug)]
struct Exported {
    buckets: Vec<(f64, f64)>,
    count: f64,
}

/// Every `imbalance_monitor_latency_seconds` histogram of a scrape, by stage.
fn exported(text: &str) -> BTreeMap<String, Exported> {
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("the exposition parses");
    let mut out = BTreeMap::new();
    for s in &scrape.samples {
        let Some(stage) = s.labels.get("stage") else { continue };
        if let ("imbalance_monitor_latency_seconds", Value::Histogram(h)) = (s.metric.as_str(), &s.value) {
            let mut buckets: Vec<(f64, f64)> = h.iter().map(|b| (b.less_than, b.count)).collect();
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            out.entry(stage.to_string()).or_insert(Exported { buckets: Vec::new(), count: f64::NAN }).buckets = buckets;
        }
    }
    for s in &scrape.samples {
        let Some(stage) = s.labels.get("stage") else { continue };
        if s.metric == "imbalance_monitor_latency_seconds_count"
            && let Value::Untyped(n) | Value::Counter(n) | Value::Gauge(n) = s.value
            && let Some(e) = out.get_mut(stage)
        {
            e.count = n;
        }
    }
    out
}

/// The run-long hdrhistogram of each stage: the sum of the log's intervals.
/// `None` while the log is still being written past its last whole entry.
fn logged(path: &Path) -> Option<BTreeMap<String, Histogram<u64>>> {
    let bytes = std::fs::read(path).ok()?;
    let mut out = BTreeMap::<String, Histogram<u64>>::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let LogEntry::Interval(h) = entry.ok()? else { continue };
        let tag = h.tag()?.as_str().to_string();
        let decoded: Histogram<u64> =
            Deserializer::new().deserialize(&mut base64_decode(h.encoded_histogram()).as_slice()).ok()?;
        out.entry(tag).or_insert_with(new_histogram).add(&decoded).ok()?;
    }
    Some(out)
}

/// Prometheus' `histogram_quantile`: the estimate by linear interpolation
/// inside the bucket where rank `q × count` falls, and that bucket's bounds.
fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> (f64, f64, f64) {
    let total = buckets.last().unwrap().1;
    let rank = q * total;
    let b = buckets.iter().position(|&(_, c)| c >= rank).unwrap();
    if b == buckets.len() - 1 {
        let lo = buckets[b - 1].0;
        return (lo, lo, f64::INFINITY);
    }
    let (lo, below) = if b == 0 { (0.0, 0.0) } else { buckets[b - 1] };
    let (hi, upto) = buckets[b];
    (lo + (hi - lo) * (rank - below) / (upto - below), lo, hi)
}

#[test]
fn latency_histograms_are_cumulative_end_in_inf_and_agree_with_the_hdrhistograms() {
    let dir = scratch("metrics-hist");
    let s = Simulator::start(SimOptions {
        replay: vec![recording(&dir, 600)],
        rate: Rate::PerSecond(300),
        ..SimOptions::default()
    })
    .unwrap();
    let text = format!(
        "pairs = [\"BTCUSDT\"]\n[binance]\nws_url = {:?}\n[alerts]\njournal = {:?}\n[[triggers]]\nname = \"every\"\nop = \">=\"\nvalue = -1\nemit = \"level\"\n",
        s.url(),
        dir.join("alerts.jsonl")
    );
    let mut cfg = Config::from_toml(&dir.join("config.toml"), &text).unwrap();
    cfg.runtime.stats_interval = Duration::from_millis(300);
    let hlog = dir.join("latency.hlog");
    let runner = Runner::start(
        &cfg,
        RunOptions { metrics_listen: Some("127.0.0.1:0".into()), hdr_log: Some(hlog.clone()), ..RunOptions::default() },
    )
    .unwrap();
    let addr = runner.metrics_addr().unwrap();
    wait_until("the recording", Duration::from_secs(60), || s.stats().recording_finished);

    // Once the traffic is over, wait until a scrape and the log hold the same samples.
    let mut last = None;
    wait_until("the scrape and the hdr log to agree", Duration::from_secs(30), || {
        let scrape = exported(&http_get(addr, "/metrics").1);
        let Some(log) = logged(&hlog) else { return false };
        let same = !scrape.is_empty()
            && scrape.get("parse").is_some_and(|e| e.count >= 600.0)
            && scrape.iter().all(|(stage, e)| log.get(stage).is_some_and(|h| h.len() as f64 == e.count));
        last = Some((scrape, log));
        same
    });
    runner.stop_handle().stop();
    assert!(runner.wait().ok());
    let (scrape, log) = last.unwrap();

    for stage in ["wire_to_decision", "socket_read", "in_process", "parse", "eval", "queue"] {
        assert!(scrape.contains_key(stage), "stage {stage} missing: {:?}", scrape.keys());
    }
    for (stage, e) in &scrape {
        let b = &e.buckets;
        assert!(b.windows(2).all(|w| w[0].1 <= w[1].1), "{stage}: buckets decrease: {b:?}");
        assert_eq!(b.last().map(|l| l.0), Some(f64::INFINITY), "{stage}: no +Inf bucket: {b:?}");
        assert_eq!(b.last().unwrap().1, e.count, "{stage}: +Inf is not _count: {b:?}");
        let h = &log[stage];
        for q in [0.5, 0.9, 0.99, 0.999] {
            let (estimate, lo, hi) = histogram_quantile(q, b);
            assert!(lo <= estimate && estimate <= hi, "{stage} q={q}: {estimate} outside ({lo}, {hi}]");
            // The hdrhistogram knows a value to 3 significant digits: its
            // range of equivalent values must meet the bucket.
            let v = h.value_at_quantile(q);
            let (v_lo, v_hi) = (h.lowest_equivalent(v) as f64 / 1e9, h.highest_equivalent(v) as f64 / 1e9);
            assert!(
                v_lo <= hi && lo <= v_hi,
                "{stage} q={q}: the hdrhistogram says {v} ns, outside the bucket ({lo}, {hi}] s where histogram_quantile puts {estimate} s"
            );
        }
    }
}
