//! The sinks stage (cold side): where alerts go once the hot thread has
//! decided — log lines, the alert journal, Telegram.
//!
//! Alert records carry indices; [`Catalog`] turns them back into names and
//! thresholds, and [`AlertView`] renders one alert for every sink the same way.

pub mod journal;
pub mod log;
pub mod telegram;

use std::fmt::{self, Write as _};
use std::time::{Duration, Instant};

use crate::alert::{Alert, MetricUpdate};
use crate::config::Config;
use crate::exact::Fraction;
use crate::metrics::VolumeSpec;
use crate::sanitize::json_str;
use crate::triggers::TriggerSpec;
use crate::units::{Price, write_decimal};
use crate::venue::Venue;
use crate::venue::binance_spot::StreamTable;

/// One alert as the cold side hands it to every sink: its journal id and
/// its rendering context.
#[derive(Clone, Copy, Debug)]
pub struct AlertEvent<'a> {
    /// Unique across runs: `<run start unix ms>-<engine sequence>`.
    pub id: &'a str,
    pub view: AlertView<'a>,
    /// When the hot thread decided it (monotonic clock).
    pub decided: Instant,
}

/// A cold-side destination for alerts. Log, journal and Telegram are
/// implementations; a database or webhook sink is one more file, not a
/// change to the others. Sinks run on the cold thread: they may block
/// briefly, but one that talks to the network hands work to its own thread.
pub trait Sink: Send {
    /// A short name for logs (`journal`, `telegram`).
    fn name(&self) -> &'static str;

    /// Called for every alert, in firing order.
    fn on_alert(&mut self, event: &AlertEvent<'_>);

    /// Called for every metric update when `metrics.log_metrics` is on.
    fn on_metric(&mut self, _update: &MetricUpdate, _catalog: &Catalog) {}

    /// Called whenever fresh statistics arrived from the hot thread.
    fn on_stats(&mut self, _report: &crate::stats::report::StatsReport) {}

    /// The feed has stopped: finish pending work by `deadline`.
    fn shutdown(&mut self, _deadline: Instant) {}
}

/// One delivery attempt of a sink that sends alerts somewhere (Telegram
/// today), for the cold side's latency histograms: the cold loop reads these
/// and knows no sink's own types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Where it went, as the sink names it (a Telegram chat id).
    pub recipient: String,
    /// From sending the request to reading the whole answer (or giving up).
    pub round_trip: Duration,
    /// HTTP status, when an answer arrived.
    pub status: Option<u16>,
    /// Whether this attempt delivered the message.
    pub delivered: bool,
    /// When each alert the delivered message carried was decided (empty
    /// unless `delivered`): decision → delivered latency, per alert.
    pub decided: Vec<Instant>,
    /// When the answer arrived (or the attempt was given up).
    pub finished: Instant,
}

/// Names and settings needed to render alerts, shared by every sink.
#[derive(Clone, Debug)]
pub struct Catalog {
    pub streams: StreamTable,
    pub triggers: Vec<TriggerSpec>,
    pub volume: VolumeSpec,
}

impl Catalog {
    /// From a validated config.
    pub fn from_config(config: &Config) -> Self {
        Catalog { streams: config.stream_table(), triggers: config.triggers.clone(), volume: config.volume }
    }

    /// An alert with its names resolved.
    pub fn view<'a>(&'a self, alert: &'a Alert) -> AlertView<'a> {
        let trigger = self.triggers.get(alert.trigger.index());
        AlertView { alert, pair: self.streams.symbol(alert.pair), venue: &self.streams, trigger, volume: self.volume }
    }
}

/// One alert with everything a person needs to read it.
#[derive(Clone, Copy, Debug)]
pub struct AlertView<'a> {
    pub alert: &'a Alert,
    pub pair: &'a str,
    /// The venue the pair trades on (its links and symbol naming).
    pub venue: &'a dyn Venue,
    pub trigger: Option<&'a TriggerSpec>,
    pub volume: VolumeSpec,
}

impl AlertView<'_> {
    /// The trigger's name, or `?` for an index the catalog does not know.
    pub fn trigger_name(&self) -> &str {
        self.trigger.map_or("?", |t| t.name.as_str())
    }

    /// `TRIGGER | pair=BTCUSDT | imbalance_buy_strong: imbalance_ratio >= 0.25 | value=0.285928 | bid=… ask=…`
    pub fn log_line(&self) -> String {
        let a = self.alert;
        let mut s = String::with_capacity(200);
        let _ = write!(s, "TRIGGER | pair={} | {}", self.pair, self.trigger_name());
        if let Some(t) = self.trigger {
            let _ = write!(s, ": {} {} {}", t.metric.as_str(), t.op, t.value);
            for c in &t.extra {
                let _ = write!(s, " and {} {} {}", c.metric, c.op, c.value);
            }
        }
        let _ = write!(s, " | value={:.6}", a.value_f64());
        if let Some(t) = self.trigger {
            for (c, v) in t.extra.iter().zip(a.extra_values.iter()) {
                let _ = write!(s, " {}={:.6}", c.metric, v.to_f64());
            }
        }
        let _ = write!(s, " | bid={} ask={}", a.bid_volume, a.ask_volume);
        let _ = write!(s, " | best_bid={} best_ask={}", OptPrice(a.best_bid), OptPrice(a.best_ask));
        s
    }

    /// The journal's alert object (one line, no newline), fields in the
    /// documented order; `extra` fields (already JSON) are inserted first.
    pub fn journal_json(&self, alert_id: Option<&str>) -> String {
        let a = self.alert;
        let mut s = String::with_capacity(480);
        s.push('{');
        if let Some(id) = alert_id {
            s.push_str("\"alert_id\":");
            json_str(&mut s, id);
            s.push(',');
        }
        let _ = write!(s, "\"time\":\"{}\",\"recv_ns\":{},\"pair\":", a.recv, a.recv.0);
        json_str(&mut s, self.pair);
        s.push_str(",\"trigger\":");
        json_str(&mut s, self.trigger_name());
        if let Some(t) = self.trigger {
            let _ = write!(
                s,
                ",\"metric\":\"{}\",\"op\":\"{}\",\"threshold\":{}",
                t.metric.as_str(),
                t.op,
                JsonF64(t.value)
            );
        }
        let _ = write!(
            s,
            ",\"value\":{},\"volume_mode\":\"{}\",\"top_n\":{},\"bid_volume\":\"{}\",\"ask_volume\":\"{}\",\"best_bid\":{},\"best_ask\":{},\"last_update_id\":{}}}",
            JsonF64(a.value_f64()),
            self.volume.mode,
            self.volume.top_n,
            a.bid_volume,
            a.ask_volume,
            JsonPrice(a.best_bid),
            JsonPrice(a.best_ask),
            a.last_update_id
        );
        if let Some(t) = self.trigger.filter(|t| !t.extra.is_empty()) {
            // An `all` trigger: every condition with its value, the first
            // repeated so the list is complete on its own.
            s.pop();
            s.push_str(",\"conditions\":[");
            let values = std::iter::once(a.value).chain(a.extra_values.iter().copied()).map(Fraction::to_f64);
            for (i, (c, v)) in t.conditions().zip(values).enumerate() {
                if i > 0 {
                    s.push(',');
                }
                let _ = write!(
                    s,
                    "{{\"metric\":\"{}\",\"op\":\"{}\",\"threshold\":{},\"value\":{}}}",
                    c.metric,
                    c.op,
                    JsonF64(c.value),
                    JsonF64(v)
                );
            }
            s.push_str("]}");
        }
        s
    }
}

/// A price or `-` when the side was empty.
struct OptPrice(Option<Price>);

impl fmt::Display for OptPrice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write_decimal(f, u128::from(p.0), crate::units::FRAC_DIGITS),
            None => f.write_str("-"),
        }
    }
}

/// A price as a JSON string, or `null`.
struct JsonPrice(Option<Price>);

impl fmt::Display for JsonPrice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, "\"{p}\""),
            None => f.write_str("null"),
        }
    }
}

/// An `f64` as a JSON number in its shortest round-trip form (`null` if not finite).
pub struct JsonF64(pub f64);

impl fmt::Display for JsonF64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_finite() { write!(f, "{}", self.0) } else { f.write_str("null") }
    }
}

/// A BTCUSDT alert as the seed tracker's example shows it, for sink tests.
#[cfg(test)]
pub(crate) fn sample_alert(trigger: u16, value: Fraction) -> Alert {
    use crate::pairs::PairId;
    use crate::triggers::TriggerId;
    use crate::units::{UnixNanos, Volume, VolumeMode};
    Alert {
        seq: 1,
        recv: UnixNanos(1_723_161_254_137_307_667),
        pair: PairId(0),
        trigger: TriggerId(trigger),
        value,
        extra_values: [Fraction::default(); 3],
        bid_volume: Volume { raw: 7_625_960_012_000_000_000_000, mode: VolumeMode::Notional },
        ask_volume: Volume { raw: 4_234_673_400_000_000_000_000, mode: VolumeMode::Notional },
        best_bid: Some(Price(6_183_763_000_000)),
        best_ask: Some(Price(6_183_764_000_000)),
        last_update_id: 50_093_239_224,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triggers::{Emit, MetricKind, Op};
    use crate::units::VolumeMode;
    use crate::venue::binance_spot::{Depth, StreamKind, UpdateSpeed};

    fn catalog() -> Catalog {
        Catalog {
            streams: StreamTable::new(&["BTCUSDT".into()], StreamKind { depth: Depth::D10, speed: UpdateSpeed::Ms100 }),
            triggers: vec![TriggerSpec::simple(
                "imbalance_buy_strong",
                MetricKind::ImbalanceRatio,
                Op::Ge,
                0.25,
                0,
                Emit::Edge,
            )],
            volume: VolumeSpec { mode: VolumeMode::Notional, top_n: 10 },
        }
    }

    fn alert() -> Alert {
        sample_alert(0, Fraction { negative: false, mag: 2_859_281, den: 10_000_000 })
    }

    #[test]
    fn journal_line_has_exactly_the_documented_fields() {
        let c = catalog();
        let a = alert();
        assert_eq!(
            c.view(&a).journal_json(None),
            r#"{"time":"2024-08-08T23:54:14.137307667Z","recv_ns":1723161254137307667,"pair":"BTCUSDT","trigger":"imbalance_buy_strong","metric":"imbalance_ratio","op":">=","threshold":0.25,"value":0.2859281,"volume_mode":"notional","top_n":10,"bid_volume":"762596.0012","ask_volume":"423467.34","best_bid":"61837.63","best_ask":"61837.64","last_update_id":50093239224}"#
        );
    }

    #[test]
    fn log_line_follows_the_seed_trackers_style() {
        let c = catalog();
        let a = alert();
        assert_eq!(
            c.view(&a).log_line(),
            "TRIGGER | pair=BTCUSDT | imbalance_buy_strong: imbalance_ratio >= 0.25 | value=0.285928 | bid=762596.0012 ask=423467.34 | best_bid=61837.63 best_ask=61837.64"
        );
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut s = String::new();
        json_str(&mut s, "a\"b\\c\n\u{1}");
        assert_eq!(s, r#""a\"b\\c\n\u0001""#);
    }
}
