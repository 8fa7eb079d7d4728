//! The rows the history stores, built on the cold side from what the hot
//! thread handed over. Owned and allocating: none of this runs on the hot
//! thread.

use crate::alert::MetricUpdate;
use crate::exact::Fraction;
use crate::sinks::{AlertView, Catalog};
use crate::units::Price;

/// The venue every row names. One venue today; the column is there so that
/// rows of a second venue need no migration.
pub const VENUE: &str = "binance";

/// One `samples` row: a pair's evaluated book update.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleRow {
    /// Receive time of the update, unix ns (the journal's `recv_ns`).
    pub time_ns: i64,
    pub venue: String,
    pub pair: String,
    pub last_update_id: i64,
    /// Exact decimals, as Binance sent them (trailing zeros trimmed).
    pub best_bid: Option<String>,
    pub best_ask: Option<String>,
    pub bid_volume: String,
    pub ask_volume: String,
    pub imbalance_ratio: f64,
    /// `None` where the metric was not computed (no trigger needs it).
    pub weighted_imbalance: Option<f64>,
    pub microprice_offset_bps: Option<f64>,
    pub spread_bps: Option<f64>,
    pub ofi: Option<f64>,
}

/// One `alerts` row: exactly the journal's alert fields.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertRow {
    /// `None` for alerts of a replay, whose journal lines carry no id either.
    pub alert_id: Option<String>,
    pub time_ns: i64,
    pub venue: String,
    pub pair: String,
    pub trigger: String,
    /// `None` only for a trigger index the catalog does not know.
    pub metric: Option<String>,
    pub op: Option<String>,
    pub threshold: Option<f64>,
    pub value: f64,
    pub last_update_id: i64,
    pub bid_volume: String,
    pub ask_volume: String,
    pub best_bid: Option<String>,
    pub best_ask: Option<String>,
}

/// One `deliveries` row: a journal delivery line.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryRow {
    pub alert_id: String,
    /// When the outcome was known, unix ns.
    pub time_ns: i64,
    pub sink: String,
    pub chat_id: String,
    /// `sent`, `sent_unconfirmed`, `failed` or `dropped`.
    pub status: String,
    pub attempts: i64,
    pub error: Option<String>,
}

/// Rows written together in one transaction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    pub samples: Vec<SampleRow>,
    pub alerts: Vec<AlertRow>,
    pub deliveries: Vec<DeliveryRow>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty() && self.alerts.is_empty() && self.deliveries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.samples.len() + self.alerts.len() + self.deliveries.len()
    }

    pub fn clear(&mut self) {
        self.samples.clear();
        self.alerts.clear();
        self.deliveries.clear();
    }
}

/// Nanoseconds or ids beyond `i64` (never met in practice) saturate: the
/// databases' integers are signed 64-bit.
pub fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn price(p: Option<Price>) -> Option<String> {
    p.map(|p| p.to_string())
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn metric(f: Option<Fraction>) -> Option<f64> {
    f.map(Fraction::to_f64).and_then(finite)
}

impl SampleRow {
    /// The row of one metric update.
    pub fn from_update(u: &MetricUpdate, catalog: &Catalog) -> SampleRow {
        SampleRow {
            time_ns: to_i64(u.recv.0),
            venue: VENUE.into(),
            pair: catalog.symbol(u.pair).to_string(),
            last_update_id: to_i64(u.last_update_id),
            best_bid: price(u.best_bid),
            best_ask: price(u.best_ask),
            bid_volume: u.imbalance.bid.to_string(),
            ask_volume: u.imbalance.ask.to_string(),
            imbalance_ratio: u.imbalance.ratio.value(),
            weighted_imbalance: metric(u.weighted_imbalance),
            microprice_offset_bps: metric(u.microprice_offset_bps),
            spread_bps: metric(u.spread_bps),
            ofi: metric(u.ofi),
        }
    }
}

impl AlertRow {
    /// The row of one alert, with the values its journal line carries.
    pub fn from_view(view: &AlertView<'_>, alert_id: Option<&str>) -> AlertRow {
        let a = view.alert;
        AlertRow {
            alert_id: alert_id.map(str::to_string),
            time_ns: to_i64(a.recv.0),
            venue: VENUE.into(),
            pair: view.pair.to_string(),
            trigger: view.trigger_name().to_string(),
            metric: view.trigger.map(|t| t.metric.as_str().to_string()),
            op: view.trigger.map(|t| t.op.to_string()),
            threshold: view.trigger.map(|t| t.value),
            value: a.value_f64(),
            last_update_id: to_i64(a.last_update_id),
            bid_volume: a.bid_volume.to_string(),
            ask_volume: a.ask_volume.to_string(),
            best_bid: price(a.best_bid),
            best_ask: price(a.best_ask),
        }
    }
}
