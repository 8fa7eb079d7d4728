//! The dashboard's state document: what `GET /state` on the metrics
//! endpoint serves as JSON, what `watch` fetches, and what `run --tui`
//! renders in-process. One type for all three, so the remote and the local
//! view can never disagree.
//!
//! Everything in it is for people: ratios and volumes are `f64`, prices are
//! exact decimal strings (the hot path's fixed point, printed), times are
//! Unix nanoseconds of this host's clock.

use serde::{Deserialize, Serialize};

/// Bumped when a field changes meaning, so an old `watch` can say so.
pub const STATE_VERSION: u32 = 1;

/// One snapshot of a running `run`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DashboardState {
    pub version: u32,
    /// When the snapshot was taken (Unix ns).
    pub now_ns: u64,
    /// When the process started (Unix ns).
    pub started_ns: u64,
    /// `binance.stale_after_ms`: a pair without a frame for longer is stale.
    pub stale_after_ms: u64,
    /// `metrics.volume_mode` (`qty` or `notional`), the unit of the volumes.
    pub volume_mode: String,
    /// Feed connections open now.
    pub connections_open: u32,
    /// Connections lost since the start (errors, stale feed, server close).
    pub reconnects: u64,
    pub pairs: Vec<PairState>,
    /// Every trigger, for the threshold marks on the bars.
    pub triggers: Vec<TriggerMark>,
    /// The most recent alerts, newest first.
    pub alerts: Vec<AlertRow>,
    /// Run-long latency per stage (stages without samples are left out).
    pub latency: Vec<StageLatency>,
    /// Telegram outcomes by status, when Telegram is enabled.
    pub telegram: Option<Vec<(String, u64)>>,
    /// Seconds between two `history` samples.
    pub history_step_sec: f64,
}

/// One pair's row.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PairState {
    pub pair: String,
    /// The latest `imbalance_ratio` (absent before the first evaluated book).
    pub ratio: Option<f64>,
    /// Bid and ask volume over `top_n` levels, in the volume mode's unit.
    pub bid_volume: Option<f64>,
    pub ask_volume: Option<f64>,
    /// Best bid and ask, exact decimals.
    pub best_bid: Option<String>,
    pub best_ask: Option<String>,
    /// (ask − bid) / mid × 10⁴.
    pub spread_bps: Option<f64>,
    /// Depth frames received since the start.
    pub frames: u64,
    /// Frames per second over the last statistics interval (about 1 s).
    pub frames_per_sec: f64,
    /// Seconds since the last frame (absent before the first).
    pub since_last_frame_sec: Option<f64>,
    /// No frame within `stale_after_ms`.
    pub stale: bool,
    /// Why the feed is down and when it is tried next, while it is.
    pub feed_down: Option<String>,
    pub last_alert: Option<AlertRow>,
    /// The ratio sampled every `history_step_sec`, oldest first; `None`
    /// where the pair had no ratio yet.
    pub history: Vec<Option<f64>>,
}

/// Which way a trigger leans: buy-side triggers fire on a high metric
/// (`>`, `>=`), sell-side ones on a low one (`<`, `<=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    #[default]
    Buy,
    Sell,
}

impl Side {
    /// From a trigger operator as written (`>`, `>=`, `<`, `<=`).
    pub fn of_op(op: &str) -> Side {
        if op.starts_with('<') { Side::Sell } else { Side::Buy }
    }

    /// ▲ for a buy-side alert, ▼ for a sell-side one (dashboard and chart).
    pub fn marker(self) -> char {
        match self {
            Side::Buy => '▲',
            Side::Sell => '▼',
        }
    }
}

/// A trigger's threshold, to mark on the bars of the pairs it watches.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TriggerMark {
    pub name: String,
    pub metric: String,
    pub op: String,
    pub value: f64,
    /// The pairs it watches; `None` means every pair.
    pub pairs: Option<Vec<String>>,
    pub side: Side,
}

impl TriggerMark {
    /// Whether it watches `pair`.
    pub fn watches(&self, pair: &str) -> bool {
        self.pairs.as_ref().is_none_or(|p| p.iter().any(|x| x == pair))
    }
}

/// One alert as the dashboard lists it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertRow {
    /// The journal's `alert_id`.
    pub id: String,
    /// Feed time of the frame that fired it (Unix ns).
    pub recv_ns: u64,
    pub pair: String,
    pub trigger: String,
    pub value: f64,
    pub side: Side,
    /// `off` (Telegram disabled), `queued`, or the delivery outcome
    /// (`sent`, `sent_unconfirmed`, `failed`, `dropped`).
    pub telegram: String,
}

/// A stage's latency percentiles, nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StageLatency {
    pub stage: String,
    pub count: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
}

impl DashboardState {
    /// The document as one JSON line.
    pub fn to_json(&self) -> String {
        // A derived Serialize of plain fields and strings cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Parses a document served by `/state`.
    pub fn from_json(text: &str) -> Result<DashboardState, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_survives_the_json_round_trip() {
        let state = DashboardState {
            version: STATE_VERSION,
            now_ns: 1_723_161_254_137_307_667,
            pairs: vec![PairState {
                pair: "BTCUSDT".into(),
                ratio: Some(0.2859281),
                best_bid: Some("61837.63".into()),
                history: vec![None, Some(-0.5), Some(0.25)],
                ..PairState::default()
            }],
            triggers: vec![TriggerMark {
                name: "imbalance_sell".into(),
                op: "<=".into(),
                value: -0.25,
                side: Side::of_op("<="),
                ..TriggerMark::default()
            }],
            telegram: Some(vec![("sent".into(), 3)]),
            ..DashboardState::default()
        };
        let json = state.to_json();
        assert!(json.contains(r#""side":"sell""#), "{json}");
        assert_eq!(DashboardState::from_json(&json).unwrap(), state);
    }

    #[test]
    fn a_trigger_without_pairs_watches_every_pair() {
        let all = TriggerMark::default();
        assert!(all.watches("SOLUSDT"));
        let one = TriggerMark { pairs: Some(vec!["BTCUSDT".into()]), ..TriggerMark::default() };
        assert!(one.watches("BTCUSDT") && !one.watches("SOLUSDT"));
    }
}
