//! The cold side of the statistics: merges hot buffers and cold-stage
//! latencies into per-interval and run-long histograms, writes one STATS log
//! line per interval, an optional HdrHistogram interval log, and the summary
//! at shutdown.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use super::{HotStats, Stage, new_histogram};
use crate::engine::EngineCounters;
use crate::feed::FeedCounters;
use crate::handoff::HandOffCounters;
use crate::reject::RejectKind;

/// Totals as of the latest hot buffer.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    pub engine: EngineCounters,
    pub feed: FeedCounters,
    pub handoff: HandOffCounters,
    pub record_dropped: u64,
}

/// Cold-side statistics.
pub struct StatsReport {
    pairs: Vec<String>,
    interval: Duration,
    interval_started: Instant,
    run_started: Instant,
    interval_hist: Vec<Histogram<u64>>,
    total_hist: Vec<Histogram<u64>>,
    /// Totals at the start of the current interval, for per-interval deltas.
    at_interval_start: Totals,
    latest: Totals,
    hdr: Option<HdrLog>,
}

/// An HdrHistogram interval log (the format HdrHistogram's plotting tools read).
struct HdrLog {
    out: BufWriter<File>,
    serializer: V2DeflateSerializer,
    /// Interval start times are written relative to this (the log's BaseTime).
    start_instant: Instant,
}

impl HdrLog {
    fn create(path: &Path) -> io::Result<HdrLog> {
        let mut out = BufWriter::new(File::create(path)?);
        let mut serializer = V2DeflateSerializer::new();
        let start = SystemTime::now();
        IntervalLogWriterBuilder::new()
            .add_comment("imbalance-monitor latency log: one histogram per stage per interval, values in ns")
            .add_comment("Tags: wire_to_decision socket_read in_process parse eval exchange queue telegram decision_to_delivered")
            .add_comment("exchange = recv - E: includes the clock offset between Binance and this host")
            .with_start_time(start)
            .with_base_time(start)
            .with_max_value_divisor(1e6)
            .begin_log_with(&mut out, &mut serializer)
            .map_err(io::Error::other)?;
        writeln!(out, "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"")?;
        out.flush()?;
        Ok(HdrLog { out, serializer, start_instant: Instant::now() })
    }

    fn write(&mut self, since: Instant, length: Duration, hists: &[Histogram<u64>]) -> io::Result<()> {
        let offset = since.saturating_duration_since(self.start_instant);
        let mut w = IntervalLogWriterBuilder::new()
            .with_max_value_divisor(1e6)
            .begin_log_with(&mut self.out, &mut self.serializer)
            .map_err(io::Error::other)?;
        for stage in Stage::ALL {
            let Some(h) = hists.get(stage.index()).filter(|h| !h.is_empty()) else { continue };
            w.write_histogram(h, offset, length, Tag::new(stage.name()))
                .map_err(|e| io::Error::other(e.to_string()))?;
        }
        self.out.flush()
    }
}

/// `1.234us`, `87ns`, `3.2ms`: latency for a person.
pub fn human_ns(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns}ns"),
        1_000..=999_999 => format!("{:.2}us", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.2}ms", ns as f64 / 1e6),
        _ => format!("{:.2}s", ns as f64 / 1e9),
    }
}

/// `p50=… p99=… p99.9=… max=…` of a histogram.
pub fn quantiles(h: &Histogram<u64>) -> String {
    format!(
        "p50={} p99={} p99.9={} max={} n={}",
        human_ns(h.value_at_quantile(0.5)),
        human_ns(h.value_at_quantile(0.99)),
        human_ns(h.value_at_quantile(0.999)),
        human_ns(h.max()),
        h.len()
    )
}

impl StatsReport {
    /// Statistics for `pairs`, logged every `interval`, with an optional
    /// HdrHistogram log at `hdr_log`.
    pub fn new(pairs: Vec<String>, interval: Duration, hdr_log: Option<&Path>) -> io::Result<StatsReport> {
        let now = Instant::now();
        let hdr = hdr_log.map(HdrLog::create).transpose()?;
        Ok(StatsReport {
            at_interval_start: Totals { engine: EngineCounters::default(), ..Totals::default() },
            latest: Totals::default(),
            pairs,
            interval,
            interval_started: now,
            run_started: now,
            interval_hist: Stage::ALL.iter().map(|_| new_histogram()).collect(),
            total_hist: Stage::ALL.iter().map(|_| new_histogram()).collect(),
            hdr,
        })
    }

    /// Merges a hot buffer (its histograms and the totals it carries).
    pub fn absorb(&mut self, hot: &HotStats) {
        for stage in Stage::HOT {
            if let Some(h) = hot.hist.get(stage.index()) {
                if let Some(i) = self.interval_hist.get_mut(stage.index()) {
                    let _ = i.add(h);
                }
                if let Some(t) = self.total_hist.get_mut(stage.index()) {
                    let _ = t.add(h);
                }
            }
        }
        self.latest.engine.clone_from(&hot.engine);
        self.latest.feed = hot.feed;
        self.latest.handoff = hot.handoff;
        self.latest.record_dropped = hot.record_dropped;
    }

    /// Records a cold-stage latency.
    pub fn record(&mut self, stage: Stage, nanos: u64) {
        for hs in [&mut self.interval_hist, &mut self.total_hist] {
            if let Some(h) = hs.get_mut(stage.index()) {
                h.saturating_record(nanos.max(1));
            }
        }
    }

    /// Totals as of the latest hot buffer.
    pub fn totals(&self) -> &Totals {
        &self.latest
    }

    /// Run-long histogram of a stage.
    pub fn total(&self, stage: Stage) -> Option<&Histogram<u64>> {
        self.total_hist.get(stage.index())
    }

    /// The STATS line, when an interval has passed (then a new one starts).
    pub fn tick(&mut self, now: Instant) -> Option<String> {
        let elapsed = now.saturating_duration_since(self.interval_started);
        if elapsed < self.interval {
            return None;
        }
        let line = self.interval_line(elapsed);
        if let Some(hdr) = &mut self.hdr
            && let Err(e) = hdr.write(self.interval_started, elapsed, &self.interval_hist)
        {
            log::warn!("STATS | cannot write the HdrHistogram log: {e}");
        }
        for h in &mut self.interval_hist {
            h.reset();
        }
        self.at_interval_start = self.latest.clone();
        self.interval_started = now;
        Some(line)
    }

    fn interval_line(&self, elapsed: Duration) -> String {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let (now, then) = (&self.latest, &self.at_interval_start);
        let mut s = format!("STATS | {:.0}s | frames", secs);
        for (i, pair) in self.pairs.iter().enumerate() {
            let count = |t: &Totals| t.engine.frames_by_pair.get(i).copied().unwrap_or(0);
            let n = count(now).saturating_sub(count(then));
            let _ = write!(s, " {pair}={n} ({:.1}/s)", n as f64 / secs);
        }
        for stage in Stage::ALL {
            if let Some(h) = self.interval_hist.get(stage.index()).filter(|h| !h.is_empty()) {
                let _ = write!(s, " | {} {}", stage.name(), quantiles(h));
            }
        }
        self.write_counters(&mut s, now, Some(then));
        if self.interval_hist.get(Stage::Exchange.index()).is_some_and(|h| !h.is_empty()) {
            s.push_str(" | exchange latency includes the clock offset to Binance");
        }
        s
    }

    /// Counter fields, as deltas since `since` when given.
    fn write_counters(&self, s: &mut String, now: &Totals, since: Option<&Totals>) {
        let d = |a: u64, b: fn(&Totals) -> u64| a.saturating_sub(since.map_or(0, b));
        let e = &now.engine;
        let _ = write!(
            s,
            " | reconnects={} stale={} rotations={} | crossed={} empty={} duplicates={} | alerts_deferred={} alerts_dropped={} metrics_dropped={} record_dropped={}",
            d(now.feed.disconnects, |t| t.feed.disconnects),
            d(now.feed.stale, |t| t.feed.stale),
            d(now.feed.rotations, |t| t.feed.rotations),
            d(e.crossed, |t| t.engine.crossed),
            d(e.empty, |t| t.engine.empty),
            d(e.duplicates, |t| t.engine.duplicates),
            d(now.handoff.alerts_deferred, |t| t.handoff.alerts_deferred),
            d(now.handoff.alerts_dropped, |t| t.handoff.alerts_dropped),
            d(now.handoff.metrics_dropped, |t| t.handoff.metrics_dropped),
            d(now.record_dropped, |t| t.record_dropped),
        );
        if let Some(l) = &e.local {
            let was = since.and_then(|t| t.engine.local).unwrap_or_default();
            let _ = write!(
                s,
                " | book: resyncs={} gaps={} stale={} buffered={} buffer_overflows={} snapshots={} too_old={} touches={} levels_dropped={}",
                l.resyncs.saturating_sub(was.resyncs),
                l.gaps.saturating_sub(was.gaps),
                l.stale_events.saturating_sub(was.stale_events),
                l.buffered.saturating_sub(was.buffered),
                l.buffer_overflows.saturating_sub(was.buffer_overflows),
                l.snapshots_applied.saturating_sub(was.snapshots_applied),
                l.snapshots_too_old.saturating_sub(was.snapshots_too_old),
                l.touches.saturating_sub(was.touches),
                l.levels_dropped.saturating_sub(was.levels_dropped),
            );
        }
        let mut errors = String::new();
        for kind in RejectKind::ALL {
            let n = e.errors[kind.index()].saturating_sub(since.map_or(0, |t| t.engine.errors[kind.index()]));
            if n > 0 {
                let _ = write!(errors, " {}={n}", kind.name());
            }
        }
        if !errors.is_empty() {
            let _ = write!(s, " | rejected:{errors}");
        }
    }

    /// The full summary for the whole run, one line per subject.
    pub fn summary(&self) -> Vec<String> {
        let secs = self.run_started.elapsed().as_secs_f64().max(1e-9);
        let t = &self.latest;
        let mut lines = vec![format!(
            "SUMMARY | {:.0}s | frames={} evaluated={} rejected={} ({:.1} frames/s)",
            secs,
            t.engine.frames,
            t.engine.evaluated,
            t.engine.rejected(),
            t.engine.frames as f64 / secs
        )];
        for (i, pair) in self.pairs.iter().enumerate() {
            let n = t.engine.frames_by_pair.get(i).copied().unwrap_or(0);
            lines.push(format!("SUMMARY | pair={pair} | frames={n} ({:.1}/s)", n as f64 / secs));
        }
        for stage in Stage::ALL {
            if let Some(h) = self.total_hist.get(stage.index()).filter(|h| !h.is_empty()) {
                lines.push(format!("SUMMARY | {} | {}", stage.name(), quantiles(h)));
            }
        }
        let mut counters = String::from("SUMMARY | counters");
        self.write_counters(&mut counters, t, None);
        counters.push_str(&format!(" | connects={} attempts={}", t.feed.connects, t.feed.attempts));
        lines.push(counters);
        lines
    }

    /// Unix seconds of the run start (for the metrics endpoint).
    pub fn started_unix(&self) -> f64 {
        let ago = self.run_started.elapsed();
        SystemTime::now()
            .checked_sub(ago)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_print_for_people() {
        assert_eq!(human_ns(87), "87ns");
        assert_eq!(human_ns(1_234), "1.23us");
        assert_eq!(human_ns(3_200_000), "3.20ms");
    }

    #[test]
    fn an_interval_line_reports_deltas_and_quantiles() {
        let mut r = StatsReport::new(vec!["BTCUSDT".into()], Duration::from_secs(60), None).unwrap();
        let mut hot = HotStats::new(Instant::now());
        hot.record(Stage::WireToDecision, 1_500);
        hot.engine.frames_by_pair = vec![600];
        hot.engine.crossed = 2;
        hot.engine.errors[RejectKind::Truncated.index()] = 3;
        r.absorb(&hot);
        r.record(Stage::Queue, 40_000);
        assert!(r.tick(r.interval_started + Duration::from_secs(59)).is_none());
        let line = r.tick(r.interval_started + Duration::from_secs(60)).unwrap();
        assert!(line.starts_with("STATS | 60s | frames BTCUSDT=600 (10.0/s) | wire_to_decision p50=1.50us"), "{line}");
        assert!(line.contains("| queue p50=40.0"), "{line}");
        assert!(line.contains("crossed=2") && line.contains("rejected: truncated=3"), "{line}");
        // The next interval starts from zero.
        let next = r.tick(r.interval_started + Duration::from_secs(60)).unwrap();
        assert!(next.contains("BTCUSDT=0 (0.0/s)") && !next.contains("wire_to_decision"), "{next}");
    }
}
