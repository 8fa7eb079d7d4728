//! The dashboard's cold-side collector: a [`Sink`] on the cold thread that
//! keeps what the gauges alone cannot tell — recent alerts, frame rates,
//! the ratio's recent history, latency percentiles — and assembles a
//! [`DashboardState`] on request (the `/state` route, `run --tui`).
//!
//! It never touches the hot thread: the hot side's only part is the relaxed
//! atomic gauges it already keeps ([`PairGauges`]); everything here runs on
//! the cold thread or on whoever asks for a snapshot, behind one mutex the
//! hot thread never sees.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::state::{AlertRow, DashboardState, PairState, STATE_VERSION, Side, StageLatency, TriggerMark};
use crate::config::Config;
use crate::gauges::PairGauges;
use crate::metrics_http::TelegramCounts;
use crate::sinks::{AlertEvent, Sink};
use crate::stats::Stage;
use crate::stats::report::StatsReport;
use crate::units::{Price, UnixNanos};

/// Ratio samples kept per pair: five minutes at one per second.
pub const HISTORY_LEN: usize = 300;
/// Time between two history samples.
pub const HISTORY_STEP: Duration = Duration::from_secs(1);
/// Recent alerts kept for the list.
pub const ALERTS_KEPT: usize = 50;

/// What the collector knows, shared by the cold thread (writes) and the
/// readers of snapshots.
pub struct WatchHub {
    pairs: Vec<String>,
    stale_after: Duration,
    volume_mode: String,
    /// 10^frac_digits of the volume mode: turns the gauges' mantissas into units.
    volume_scale: f64,
    gauges: Arc<PairGauges>,
    triggers: Vec<TriggerMark>,
    telegram: Option<TelegramCounts>,
    started_ns: u64,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for WatchHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHub").field("pairs", &self.pairs).finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    frames: Vec<u64>,
    frames_per_sec: Vec<f64>,
    /// When the frame counts were last turned into rates.
    rate_at: Option<Instant>,
    history: Vec<VecDeque<Option<f64>>>,
    history_at: Option<Instant>,
    alerts: VecDeque<AlertRow>,
    last_alert: Vec<Option<AlertRow>>,
    latency: Vec<StageLatency>,
    reconnects: u64,
}

impl WatchHub {
    /// For a validated config, reading the hot thread's `gauges`.
    pub fn new(config: &Config, gauges: Arc<PairGauges>, telegram: Option<TelegramCounts>) -> Arc<WatchHub> {
        let pairs = config.pairs.clone();
        let triggers = config
            .triggers
            .iter()
            .map(|t| TriggerMark {
                name: t.name.clone(),
                metric: t.metric.as_str().to_string(),
                op: t.op.as_str().to_string(),
                value: t.value,
                pairs: t
                    .pairs
                    .as_ref()
                    .map(|ids| ids.iter().filter_map(|id| pairs.get(id.index()).cloned()).collect::<Vec<String>>()),
                side: Side::of_op(t.op.as_str()),
            })
            .collect();
        let n = pairs.len();
        Arc::new(WatchHub {
            stale_after: config.binance.stale_after,
            volume_mode: config.volume.mode.to_string(),
            volume_scale: 10f64.powi(config.volume.mode.frac_digits() as i32),
            gauges,
            triggers,
            telegram,
            started_ns: UnixNanos::now().0,
            inner: Mutex::new(Inner {
                frames: vec![0; n],
                frames_per_sec: vec![0.0; n],
                history: vec![VecDeque::with_capacity(HISTORY_LEN); n],
                last_alert: vec![None; n],
                ..Inner::default()
            }),
            pairs,
        })
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere leaves plain data behind; a dashboard keeps going.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes an alert (the cold thread, in firing order).
    pub fn alert(&self, event: &AlertEvent<'_>) {
        let a = event.view.alert;
        let side = event.view.trigger.map_or(Side::Buy, |t| Side::of_op(t.op.as_str()));
        let row = AlertRow {
            id: event.id.to_string(),
            recv_ns: a.recv.0,
            pair: event.view.pair.to_string(),
            trigger: event.view.trigger_name().to_string(),
            value: a.value_f64(),
            side,
            telegram: if self.telegram.is_some() { "queued" } else { "off" }.to_string(),
        };
        let mut inner = self.inner();
        if let Some(last) = inner.last_alert.get_mut(a.pair.index()) {
            *last = Some(row.clone());
        }
        if inner.alerts.len() == ALERTS_KEPT {
            inner.alerts.pop_back();
        }
        inner.alerts.push_front(row);
    }

    /// Records a Telegram outcome for an alert still in the list.
    pub fn delivery(&self, alert_id: &str, status: &str) {
        let mut inner = self.inner();
        let Inner { alerts, last_alert, .. } = &mut *inner;
        for row in alerts.iter_mut().chain(last_alert.iter_mut().flatten()) {
            // With several chats the worst outcome stays visible.
            if row.id == alert_id && (row.telegram == "queued" || row.telegram.starts_with("sent")) {
                row.telegram = status.to_string();
            }
        }
    }

    /// Takes in fresh statistics: frame rates, latency, and (once per
    /// [`HISTORY_STEP`]) a history sample of every pair's ratio.
    pub fn stats(&self, report: &StatsReport, now: Instant) {
        let totals = report.totals();
        let mut inner = self.inner();
        let inner = &mut *inner;
        inner.reconnects = totals.feed.disconnects;
        let elapsed = inner.rate_at.map(|t| now.saturating_duration_since(t));
        if elapsed.is_none_or(|e| e >= Duration::from_millis(500)) {
            for (i, frames) in inner.frames.iter_mut().enumerate() {
                let now_frames = totals.engine.frames_by_pair.get(i).copied().unwrap_or(0);
                if let (Some(e), Some(rate)) = (elapsed, inner.frames_per_sec.get_mut(i)) {
                    *rate = now_frames.saturating_sub(*frames) as f64 / e.as_secs_f64();
                }
                *frames = now_frames;
            }
            inner.rate_at = Some(now);
        }
        inner.latency = Stage::ALL
            .iter()
            .filter_map(|&stage| {
                let h = report.total(stage).filter(|h| !h.is_empty())?;
                Some(StageLatency {
                    stage: stage.name().to_string(),
                    count: h.len(),
                    p50_ns: h.value_at_quantile(0.5),
                    p99_ns: h.value_at_quantile(0.99),
                })
            })
            .collect();
        if inner.history_at.is_none_or(|t| now.saturating_duration_since(t) >= HISTORY_STEP) {
            inner.history_at = Some(now);
            for (i, h) in inner.history.iter_mut().enumerate() {
                if h.len() == HISTORY_LEN {
                    h.pop_front();
                }
                h.push_back(self.gauges.last_ratio(i));
            }
        }
    }

    /// The state right now: gauges read live, the rest as last collected.
    pub fn snapshot(&self) -> DashboardState {
        let now = UnixNanos::now().0;
        let stale_ns = u64::try_from(self.stale_after.as_nanos()).unwrap_or(u64::MAX);
        let inner = self.inner();
        let pairs = self
            .pairs
            .iter()
            .enumerate()
            .map(|(i, pair)| {
                let since = self.gauges.last_frame(i).map(|t| now.saturating_sub(t));
                let (bid, ask) = self.gauges.last_touch(i);
                let volumes = self.gauges.last_volumes(i);
                PairState {
                    pair: pair.clone(),
                    ratio: self.gauges.last_ratio(i),
                    bid_volume: volumes.map(|(b, _)| b / self.volume_scale),
                    ask_volume: volumes.map(|(_, a)| a / self.volume_scale),
                    best_bid: bid.map(|p| p.to_string()),
                    best_ask: ask.map(|p| p.to_string()),
                    spread_bps: spread_bps(bid, ask),
                    frames: inner.frames.get(i).copied().unwrap_or(0),
                    frames_per_sec: inner.frames_per_sec.get(i).copied().unwrap_or(0.0),
                    since_last_frame_sec: since.map(|ns| ns as f64 / 1e9),
                    stale: since.is_none_or(|ns| ns > stale_ns),
                    feed_down: self.gauges.feed_down(i),
                    last_alert: inner.last_alert.get(i).cloned().flatten(),
                    history: inner.history.get(i).map(|h| h.iter().copied().collect()).unwrap_or_default(),
                }
            })
            .collect();
        DashboardState {
            version: STATE_VERSION,
            now_ns: now,
            started_ns: self.started_ns,
            stale_after_ms: u64::try_from(self.stale_after.as_millis()).unwrap_or(u64::MAX),
            volume_mode: self.volume_mode.clone(),
            connections_open: self.gauges.connections_open.load(std::sync::atomic::Ordering::Relaxed),
            reconnects: inner.reconnects,
            pairs,
            triggers: self.triggers.clone(),
            alerts: inner.alerts.iter().cloned().collect(),
            latency: inner.latency.clone(),
            telegram: self.telegram.as_ref().map(|t| t().into_iter().map(|(s, n)| (s.to_string(), n)).collect()),
            history_step_sec: HISTORY_STEP.as_secs_f64(),
        }
    }
}

/// (ask − bid) / mid in bps, from the exact prices (cold side, so `f64` is fine).
fn spread_bps(bid: Option<Price>, ask: Option<Price>) -> Option<f64> {
    let (b, a) = (bid?.0 as f64, ask?.0 as f64);
    let mid = (a + b) / 2.0;
    (mid > 0.0).then(|| (a - b) / mid * 1e4)
}

/// The hub as one of the cold thread's sinks.
pub struct WatchSink(pub Arc<WatchHub>);

impl Sink for WatchSink {
    fn name(&self) -> &'static str {
        "watch"
    }

    fn on_alert(&mut self, event: &AlertEvent<'_>) {
        self.0.alert(event);
    }

    fn on_stats(&mut self, report: &StatsReport) {
        self.0.stats(report, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::Fraction;
    use crate::sinks::Catalog;

    fn config() -> Config {
        let text = "pairs = [\"BTCUSDT\"]\n[[triggers]]\nname = \"buy\"\nop = \">=\"\nvalue = 0.25\n[[triggers]]\nname = \"sell\"\nop = \"<=\"\nvalue = -0.25\n";
        Config::from_toml(std::path::Path::new("t.toml"), text).unwrap()
    }

    #[test]
    fn alerts_are_listed_newest_first_capped_with_their_telegram_outcome() {
        let cfg = config();
        let catalog = Catalog::from_config(&cfg);
        let counts: TelegramCounts = Arc::new(Vec::new);
        let hub = WatchHub::new(&cfg, PairGauges::new(1), Some(counts));
        for i in 0..(ALERTS_KEPT as u64 + 5) {
            let trigger = (i % 2) as u16;
            let value = Fraction { negative: trigger == 1, mag: 3, den: 10 };
            let mut alert = crate::sinks::sample_alert(trigger, value);
            alert.seq = i;
            let id = format!("run-{i}");
            hub.alert(&AlertEvent { id: &id, view: catalog.view(&alert), decided: Instant::now() });
        }
        hub.delivery("run-54", "sent");
        hub.delivery("run-53", "failed");
        hub.delivery("run-53", "sent");
        let state = hub.snapshot();
        assert_eq!(state.alerts.len(), ALERTS_KEPT);
        let (newest, next) = (&state.alerts[0], &state.alerts[1]);
        assert_eq!((newest.id.as_str(), newest.side, newest.telegram.as_str()), ("run-54", Side::Buy, "sent"));
        assert_eq!((next.id.as_str(), next.side, next.telegram.as_str()), ("run-53", Side::Sell, "failed"));
        assert_eq!(state.alerts[2].telegram, "queued");
        assert_eq!(state.alerts.last().unwrap().id, "run-5");
        assert_eq!(state.pairs[0].last_alert.as_ref().unwrap().telegram, "sent");
        assert_eq!(
            state.triggers.iter().map(|t| (t.name.as_str(), t.side)).collect::<Vec<_>>(),
            [("buy", Side::Buy), ("sell", Side::Sell)]
        );
    }

    #[test]
    fn spread_is_measured_from_the_mid() {
        let s = spread_bps(Some(Price(9_999_000_000)), Some(Price(10_001_000_000))).unwrap();
        assert!((s - 2.0).abs() < 1e-9, "{s}");
        assert_eq!(spread_bps(None, Some(Price(1))), None);
    }
}
