//! What a chart shows, taken from recordings by the same engine a live run
//! uses: per pair, the mid price and every metric a trigger watches at each
//! evaluated book, and every alert, within the chosen window.
//!
//! All frames go through the engine, also those before `--from`, so that
//! cooldowns and edge states at the window's start are what the live run had.

use std::path::PathBuf;

use crate::alert::{Alert, EngineSink, MetricUpdate};
use crate::config::Config;
use crate::engine::{Engine, FrameOutcome};
use crate::metrics::{LevelWeights, MetricKind, microprice_offset_bps, spread_bps, weighted_imbalance};
use crate::recording::{Line, RecordingError, RecordingReader};
use crate::units::UnixNanos;

/// One pair's series, times in Unix ns.
#[derive(Clone, Debug, Default)]
pub struct PairSeries {
    pub pair: String,
    /// (time, mid price).
    pub mid: Vec<(u64, f64)>,
    /// One series per metric the config's triggers watch, `imbalance_ratio` first.
    pub metrics: Vec<(MetricKind, Vec<(u64, f64)>)>,
    pub alerts: Vec<Alert>,
}

/// Every pair that had a frame in the window, in config order.
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub pairs: Vec<PairSeries>,
    /// First and last time plotted.
    pub from: u64,
    pub to: u64,
}

/// Which frames to plot.
#[derive(Clone, Debug, Default)]
pub struct Window {
    pub pair: Option<String>,
    pub from: Option<UnixNanos>,
    pub to: Option<UnixNanos>,
}

impl Window {
    fn contains(&self, t: u64) -> bool {
        self.from.is_none_or(|f| t >= f.0) && self.to.is_none_or(|to| t <= to.0)
    }
}

/// The metrics to chart: `imbalance_ratio`, then each other one a trigger
/// (or one of its conditions) watches, in trigger order.
pub fn charted_metrics(config: &Config) -> Vec<MetricKind> {
    let mut out = vec![MetricKind::ImbalanceRatio];
    for t in &config.triggers {
        for c in t.conditions() {
            if !out.contains(&c.metric) {
                out.push(c.metric);
            }
        }
    }
    out
}

/// Collects the latest metric update of a frame, and its alerts.
#[derive(Default)]
struct Collect {
    update: Option<MetricUpdate>,
    alerts: Vec<Alert>,
}

impl EngineSink for Collect {
    fn alert(&mut self, alert: &Alert) {
        self.alerts.push(*alert);
    }

    fn metric(&mut self, update: &MetricUpdate) {
        self.update = Some(*update);
    }

    fn wants_metrics(&self) -> bool {
        true
    }
}

/// Replays `files` in order and keeps what falls in `window`.
pub fn collect(config: &Config, files: &[PathBuf], window: &Window) -> Result<Series, RecordingError> {
    let mut readers = Vec::with_capacity(files.len());
    for f in files {
        readers.push(RecordingReader::open(f)?);
    }
    let metrics = charted_metrics(config);
    let weights = LevelWeights::from_decay(config.decay);
    let mut engine = Engine::new(config.engine_config());
    let mut pairs: Vec<PairSeries> = config
        .pairs
        .iter()
        .map(|p| PairSeries {
            pair: p.clone(),
            metrics: metrics.iter().map(|&m| (m, Vec::new())).collect(),
            ..PairSeries::default()
        })
        .collect();
    let mut sink = Collect::default();
    let (mut from, mut to) = (u64::MAX, 0);
    for reader in &mut readers {
        while let Some(line) = reader.next_line()? {
            let Line::Frame { recv, json } = line else { continue };
            sink.update = None;
            sink.alerts.clear();
            let outcome = engine.on_frame(json, recv, &mut sink);
            let FrameOutcome::Evaluated { pair, .. } = outcome else { continue };
            let wanted = pairs.get(pair.index()).is_some_and(|p| window.pair.as_ref().is_none_or(|w| *w == p.pair));
            if !wanted || !window.contains(recv.0) {
                continue;
            }
            let (Some(series), Some(update)) = (pairs.get_mut(pair.index()), sink.update) else { continue };
            from = from.min(recv.0);
            to = to.max(recv.0);
            if let (Some(b), Some(a)) = (update.best_bid, update.best_ask) {
                series.mid.push((recv.0, (b.0 as f64 + a.0 as f64) / 2e8));
            }
            let book = engine.book(pair);
            for (kind, points) in &mut series.metrics {
                let value = match kind {
                    MetricKind::ImbalanceRatio => Some(update.imbalance.ratio.exact.to_f64()),
                    MetricKind::WeightedImbalance => {
                        book.and_then(|b| weighted_imbalance(b, config.volume, &weights).ok()).map(|r| r.exact.to_f64())
                    }
                    MetricKind::SpreadBps => book.and_then(|b| spread_bps(b).ok()).map(|r| r.exact.to_f64()),
                    MetricKind::MicropriceOffsetBps => {
                        book.and_then(|b| microprice_offset_bps(b).ok()).map(|r| r.exact.to_f64())
                    }
                    // Its window lives inside the engine: the value an alert carries is plotted at the alert.
                    MetricKind::Ofi => None,
                };
                if let Some(v) = value {
                    points.push((recv.0, v));
                }
            }
            series.alerts.extend_from_slice(&sink.alerts);
        }
    }
    pairs.retain(|p| !p.mid.is_empty());
    Ok(Series { pairs, from: from.min(to), to })
}
