//! Configuration: the TOML file as written (`raw`), validated into the typed
//! [`Config`] every other stage runs on.
//!
//! Validation runs completely before anything connects: every problem is
//! reported at once, each naming the file, the line, the key and the fix.

mod locate;
mod raw;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::engine::EngineConfig;
use crate::exchange::binance::{Depth, PairId, StreamKind, StreamTable, UpdateSpeed};
use crate::metrics::{Decimal, LevelWeights, MetricKind, VolumeSpec};
use crate::triggers::{Condition, Emit, MAX_CONDITIONS, Op, TriggerSpec};

pub use raw::RawConfig;

/// The default config file, relative to the working directory.
pub const DEFAULT_PATH: &str = "config/config.toml";

/// One thing wrong with a config, located.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Key path, e.g. `triggers[1].op`; empty for whole-file problems.
    pub key: String,
    /// 1-based line in the file, when the key is present there.
    pub line: Option<usize>,
    /// What is wrong and how to fix it, as a sentence.
    pub message: String,
}

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the config file: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_problems(.path, .problems))]
    Invalid { path: PathBuf, problems: Vec<Problem> },
}

fn render_problems(path: &Path, problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&path.display().to_string());
        if let Some(line) = p.line {
            out.push_str(&format!(":{line}"));
        }
        out.push_str(": ");
        if !p.key.is_empty() {
            out.push_str(&format!("`{}` ", p.key));
        }
        out.push_str(&p.message);
    }
    out
}

/// Where the alert journal goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertsConfig {
    pub journal: PathBuf,
}

/// Binance connection settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinanceConfig {
    /// The combined-stream endpoint, `ws://` or `wss://`.
    pub ws_url: String,
    pub stream: StreamKind,
    /// Extra trusted roots (PEM) beside webpki-roots.
    pub ca_file: Option<PathBuf>,
    /// Streams per connection before splitting across connections.
    pub max_streams_per_connection: usize,
    /// No data frame for this long → reconnect.
    pub stale_after: Duration,
    /// Rotate (make-before-break) a connection this old.
    pub max_connection_age: Duration,
}

/// Hot/cold thread settings.
#[derive(Clone, Debug, PartialEq)]
pub struct RuntimeConfig {
    pub hot_core: Option<usize>,
    pub busy_poll: bool,
    pub shutdown_grace: Duration,
    /// Capacity of the hot → cold channel.
    pub channel_capacity: usize,
}

/// Log destinations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    pub file: PathBuf,
    pub level: log::LevelFilter,
}

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from (for messages).
    pub path: PathBuf,
    /// Symbols in upper case, config order; a symbol's index is its [`PairId`].
    pub pairs: Vec<String>,
    pub binance: BinanceConfig,
    pub volume: VolumeSpec,
    /// `weighted_imbalance` level decay.
    pub decay: f64,
    /// Updates in the `ofi` window.
    pub ofi_window: usize,
    /// Log a METRIC line per evaluated update (cold side).
    pub log_metrics: bool,
    pub triggers: Vec<TriggerSpec>,
    pub alerts: AlertsConfig,
    pub runtime: RuntimeConfig,
    pub log: LogConfig,
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::from_toml(path, &text)
    }

    /// Validates TOML `text`; `path` only names the source in messages.
    pub fn from_toml(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let invalid = |problems| ConfigError::Invalid { path: path.to_path_buf(), problems };
        let raw: RawConfig = toml::from_str(text).map_err(|e| invalid(vec![toml_problem(text, &e)]))?;
        let mut problems = Vec::new();
        let config = validate(path, raw, &mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            for p in &mut problems {
                p.line = locate::line_of(text, &p.key);
            }
            Err(invalid(problems))
        }
    }

    /// The interned stream table for these pairs.
    pub fn stream_table(&self) -> StreamTable {
        StreamTable::new(&self.pairs, self.binance.stream)
    }

    /// What the engine needs.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            streams: self.stream_table(),
            volume: self.volume,
            triggers: self.triggers.clone(),
            weights: LevelWeights::from_decay(self.decay),
            ofi_window: self.ofi_window,
        }
    }
}

/// A TOML syntax or type error as a located problem.
fn toml_problem(text: &str, e: &toml::de::Error) -> Problem {
    let line = e.span().map(|s| locate::line_at(text, s.start));
    let message = e.message().trim_end().replace('\n', "; ");
    Problem { key: String::new(), line, message }
}

struct Problems<'a>(&'a mut Vec<Problem>);

impl Problems<'_> {
    fn add(&mut self, key: impl fmt::Display, message: impl fmt::Display) {
        self.0.push(Problem { key: key.to_string(), line: None, message: message.to_string() });
    }
}

/// Checks everything serde cannot and builds the typed config. Problems are
/// collected, not returned early, so the user fixes them in one pass.
fn validate(path: &Path, raw: RawConfig, problems: &mut Vec<Problem>) -> Config {
    let mut p = Problems(problems);

    let mut pairs: Vec<String> = Vec::new();
    if raw.pairs.is_empty() {
        p.add("pairs", "is empty; list at least one symbol, e.g. pairs = [\"BTCUSDT\"]");
    }
    for (i, sym) in raw.pairs.iter().enumerate() {
        let upper = sym.trim().to_ascii_uppercase();
        if upper.is_empty() || upper.len() > 20 || !upper.bytes().all(|b| b.is_ascii_alphanumeric()) {
            p.add(
                format_args!("pairs[{i}]"),
                format_args!(
                    "is {sym:?}, not a Binance symbol; write the base and quote assets together in letters and digits, e.g. \"BTCUSDT\""
                ),
            );
        } else if pairs.contains(&upper) {
            p.add(format_args!("pairs[{i}]"), format_args!("{upper} is listed twice; remove the duplicate"));
        } else {
            pairs.push(upper);
        }
    }
    if pairs.len() > usize::from(u16::MAX) {
        p.add("pairs", "has more than 65535 symbols");
    }

    let depth = Depth::from_levels(raw.binance.depth).unwrap_or_else(|| {
        p.add("binance.depth", format_args!("is {}; Binance offers 5, 10 or 20", raw.binance.depth));
        Depth::D10
    });
    let speed = UpdateSpeed::from_millis(raw.binance.update_ms).unwrap_or_else(|| {
        p.add("binance.update_ms", format_args!("is {}; Binance offers 100 or 1000", raw.binance.update_ms));
        UpdateSpeed::Ms100
    });
    let ws_url = raw.binance.ws_url.trim().to_string();
    if !(ws_url.starts_with("ws://") || ws_url.starts_with("wss://")) {
        p.add(
            "binance.ws_url",
            format_args!(
                "is {ws_url:?}; expected a ws:// or wss:// URL such as \"wss://stream.binance.com:9443/stream\""
            ),
        );
    }

    if let Some(ca) = &raw.binance.ca_file
        && !ca.is_file()
    {
        p.add(
            "binance.ca_file",
            format_args!("is {}, which is not a readable file; point it at a PEM certificate", ca.display()),
        );
    }
    let max_streams = raw.binance.max_streams_per_connection;
    if !(1..=1024).contains(&max_streams) {
        p.add(
            "binance.max_streams_per_connection",
            format_args!("is {max_streams}; use 1 to 1024 (Binance allows at most 1024 streams per connection)"),
        );
    }
    if raw.binance.stale_after_ms < 100 {
        p.add(
            "binance.stale_after_ms",
            format_args!(
                "is {}; use at least 100 ms, well above the stream's update interval",
                raw.binance.stale_after_ms
            ),
        );
    }
    if !(60..=24 * 3600).contains(&raw.binance.max_connection_age_sec) {
        p.add(
            "binance.max_connection_age_sec",
            format_args!(
                "is {}; use 60 to 86400 seconds (Binance cuts connections at 24 h; the default rotates at 85800)",
                raw.binance.max_connection_age_sec
            ),
        );
    }

    let top_n = raw.metrics.top_n.unwrap_or(depth.levels() as u32) as usize;
    if top_n == 0 || top_n > depth.levels() {
        p.add(
            "metrics.top_n",
            format_args!(
                "is {top_n}; it must be between 1 and binance.depth ({}), the levels each message carries",
                depth.levels()
            ),
        );
    }

    let mut triggers: Vec<TriggerSpec> = Vec::new();
    if raw.triggers.len() > usize::from(u16::MAX) {
        p.add("triggers", "has more than 65535 entries");
    }
    for (i, t) in raw.triggers.iter().enumerate() {
        let key = |field: &str| format!("triggers[{i}].{field}");
        if t.name.is_empty()
            || t.name.len() > 64
            || !t.name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            p.add(
                key("name"),
                format_args!(
                    "is {:?}; use 1 to 64 letters, digits, '_', '-' or '.', e.g. \"imbalance_buy_strong\"",
                    t.name
                ),
            );
        }
        if let Some(j) = raw.triggers.iter().take(i).position(|o| o.name == t.name) {
            p.add(
                key("name"),
                format_args!("{:?} is also the name of triggers[{j}]; trigger names must be unique", t.name),
            );
        }
        let conditions = trigger_conditions(i, t, &mut p);
        let cooldown_ns = if t.cooldown_sec.is_finite() && (0.0..=1e9).contains(&t.cooldown_sec) {
            (t.cooldown_sec * 1e9).round() as u64
        } else {
            p.add(
                key("cooldown_sec"),
                format_args!("is {}; use a number of seconds ≥ 0, fractions allowed (e.g. 2.5)", t.cooldown_sec),
            );
            0
        };
        let trigger_pairs = t.pairs.as_ref().map(|list| {
            list.iter()
                .enumerate()
                .filter_map(|(j, s)| {
                    let upper = s.trim().to_ascii_uppercase();
                    let id = pairs.iter().position(|q| *q == upper).map(|k| PairId(k as u16));
                    if id.is_none() {
                        p.add(
                            format_args!("triggers[{i}].pairs[{j}]"),
                            format_args!("is {s:?}, which is not in `pairs`; add it there or remove it here"),
                        );
                    }
                    id
                })
                .collect::<Vec<_>>()
        });
        if let Some(list) = &t.pairs
            && list.is_empty()
        {
            p.add(key("pairs"), "is empty, so the trigger would never run; remove the key to watch every pair");
        }
        let first = conditions.first().copied().unwrap_or(Condition {
            metric: MetricKind::ImbalanceRatio,
            op: Op::Ge,
            value: 0.0,
            threshold: Decimal { negative: false, mag: 0, scale: 0 },
        });
        let rearm = t.rearm.and_then(|r| {
            let problem = if t.emit != Emit::Edge {
                Some("applies only to emit = \"edge\" triggers; remove it or use edge".to_string())
            } else if conditions.len() > 1 {
                Some("needs a single condition; it cannot be used with more than one `all` condition".to_string())
            } else if !r.is_finite() {
                Some(format!("is {r}; use a number"))
            } else {
                match first.op {
                    Op::Gt | Op::Ge if r >= first.value => Some(format!(
                        "is {r}; it must be below the trigger value {} (the side where `{} {}` is false), e.g. {}",
                        first.value,
                        first.op,
                        first.value,
                        first.value - 0.1
                    )),
                    Op::Lt | Op::Le if r <= first.value => Some(format!(
                        "is {r}; it must be above the trigger value {} (the side where `{} {}` is false), e.g. {}",
                        first.value,
                        first.op,
                        first.value,
                        first.value + 0.1
                    )),
                    _ => None,
                }
            };
            match problem {
                Some(m) => {
                    p.add(key("rearm"), m);
                    None
                }
                None => decimal_or_problem(r, &key("rearm"), &mut p),
            }
        });
        if t.sustain_ms > 86_400_000 {
            p.add(key("sustain_ms"), format_args!("is {}; use at most 86400000 (one day)", t.sustain_ms));
        }
        let min_volume = t.min_volume.and_then(|v| {
            let digits = raw.metrics.volume_mode.frac_digits();
            match Decimal::from_f64(v) {
                Some(d) if !d.negative && d.scale <= digits => Some(u128::from(d.mag) * 10u128.pow(digits - d.scale)),
                _ => {
                    p.add(
                        key("min_volume"),
                        format_args!(
                            "is {v}; use a volume ≥ 0 in the {} unit with at most {digits} decimals",
                            raw.metrics.volume_mode
                        ),
                    );
                    None
                }
            }
        });
        let max_spread_bps = t.max_spread_bps.and_then(|v| {
            if v.is_finite() && v >= 0.0 {
                decimal_or_problem(v, &key("max_spread_bps"), &mut p)
            } else {
                p.add(key("max_spread_bps"), format_args!("is {v}; use a spread in basis points ≥ 0, e.g. 2.5"));
                None
            }
        });
        triggers.push(TriggerSpec {
            name: t.name.clone(),
            metric: first.metric,
            op: first.op,
            value: first.value,
            threshold: first.threshold,
            extra: conditions.get(1..).unwrap_or(&[]).to_vec(),
            cooldown_ns,
            emit: t.emit,
            pairs: trigger_pairs,
            rearm,
            sustain_ns: t.sustain_ms.min(86_400_000) * 1_000_000,
            min_volume,
            max_spread_bps,
        });
    }

    let decay = raw.metrics.decay;
    if !(decay > 0.0 && decay <= 1.0) {
        p.add(
            "metrics.decay",
            format_args!("is {decay}; use a factor in (0, 1], e.g. 0.5 (1 weighs every level equally)"),
        );
    }
    let ofi_window = raw.metrics.ofi_window;
    if !(1..=10_000).contains(&ofi_window) {
        p.add("metrics.ofi_window", format_args!("is {ofi_window}; use 1 to 10000 updates"));
    }

    let rt = &raw.runtime;
    if let Some(core) = rt.hot_core {
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        if !cores.iter().any(|c| c.id == core) {
            let list: Vec<String> = cores.iter().map(|c| c.id.to_string()).collect();
            p.add(
                "runtime.hot_core",
                format_args!(
                    "is {core}, but this process may run on cores [{}]; pick one of them or remove the key",
                    list.join(", ")
                ),
            );
        }
    }
    if !rt.shutdown_grace_sec.is_finite() || !(0.0..=3600.0).contains(&rt.shutdown_grace_sec) {
        p.add("runtime.shutdown_grace_sec", format_args!("is {}; use 0 to 3600 seconds", rt.shutdown_grace_sec));
    }
    if !(16..=1 << 20).contains(&rt.channel_capacity) {
        p.add("runtime.channel_capacity", format_args!("is {}; use 16 to 1048576 records", rt.channel_capacity));
    }
    let level = log::LevelFilter::from_str(&raw.log.level).unwrap_or_else(|_| {
        p.add("log.level", format_args!("is {:?}; use one of error, warn, info, debug, trace, off", raw.log.level));
        log::LevelFilter::Info
    });

    Config {
        path: path.to_path_buf(),
        pairs,
        binance: BinanceConfig {
            ws_url,
            stream: StreamKind { depth, speed },
            ca_file: raw.binance.ca_file,
            max_streams_per_connection: max_streams.clamp(1, 1024) as usize,
            stale_after: Duration::from_millis(raw.binance.stale_after_ms),
            max_connection_age: Duration::from_secs(raw.binance.max_connection_age_sec),
        },
        volume: VolumeSpec { mode: raw.metrics.volume_mode, top_n },
        decay,
        ofi_window: ofi_window.clamp(1, 10_000) as usize,
        log_metrics: raw.metrics.log_metrics,
        triggers,
        alerts: AlertsConfig { journal: raw.alerts.journal },
        runtime: RuntimeConfig {
            hot_core: rt.hot_core,
            busy_poll: rt.busy_poll,
            shutdown_grace: Duration::from_secs_f64(rt.shutdown_grace_sec.clamp(0.0, 3600.0)),
            channel_capacity: rt.channel_capacity,
        },
        log: LogConfig { file: raw.log.file, level },
    }
}

/// The exact decimal of a threshold-like number, or a problem.
fn decimal_or_problem(v: f64, key: &str, p: &mut Problems<'_>) -> Option<Decimal> {
    let d = Decimal::from_f64(v);
    if d.is_none() {
        p.add(key, format_args!("is {v}; use at most {} decimal places", Decimal::MAX_SCALE));
    }
    d
}

/// The conditions of trigger `i`: its `metric/op/value`, or its `all` list.
fn trigger_conditions(i: usize, t: &raw::RawTrigger, p: &mut Problems<'_>) -> Vec<Condition> {
    let key = |field: &str| format!("triggers[{i}].{field}");
    let mut out = Vec::new();
    let mut check = |metric: MetricKind, op: Op, value: f64, key: String, p: &mut Problems<'_>| {
        let (lo, hi) = metric.range();
        if !value.is_finite() || value < lo || value > hi {
            let range =
                if metric == MetricKind::Ofi { "any finite number".to_string() } else { format!("[{lo}, {hi}]") };
            p.add(key, format_args!("is {value}; {metric} lies in {range}, so choose a threshold in that range"));
            return;
        }
        if let Some(threshold) = decimal_or_problem(value, &key, p) {
            out.push(Condition { metric, op, value, threshold });
        }
    };
    match &t.all {
        Some(all) => {
            if t.op.is_some() || t.value.is_some() || t.metric.is_some() {
                p.add(
                    key("all"),
                    "is set together with metric/op/value; use one form: either `op` and `value`, or `all = [...]`",
                );
            }
            if all.is_empty() || all.len() > MAX_CONDITIONS {
                p.add(key("all"), format_args!("has {} conditions; use 1 to {MAX_CONDITIONS}", all.len()));
            }
            for (j, c) in all.iter().enumerate().take(MAX_CONDITIONS) {
                check(c.metric, c.op, c.value, format!("triggers[{i}].all[{j}].value"), p);
            }
        }
        None => match (t.op, t.value) {
            (Some(op), Some(value)) => check(t.metric.unwrap_or_default(), op, value, key("value"), p),
            (None, _) => p.add(key("op"), "is missing; add e.g. op = \">=\" (or give the conditions as `all = [...]`)"),
            (_, None) => p.add(key("value"), "is missing; add the threshold, e.g. value = 0.25"),
        },
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triggers::{Emit, Op};
    use crate::units::VolumeMode;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(Path::new("test.toml"), text)
    }

    fn problems(text: &str) -> String {
        load(text).unwrap_err().to_string()
    }

    #[test]
    fn the_shipped_default_config_is_valid() {
        let text = include_str!("../../config/config.toml");
        let c = load(text).unwrap();
        assert_eq!(c.pairs, ["BTCUSDT", "DOTUSDT", "SOLUSDT"]);
        assert_eq!(c.binance.stream, StreamKind { depth: Depth::D10, speed: UpdateSpeed::Ms100 });
        assert_eq!(c.volume, VolumeSpec { mode: VolumeMode::Notional, top_n: 10 });
        assert_eq!(c.triggers.len(), 2);
        assert_eq!((c.triggers[0].op, c.triggers[0].value), (Op::Ge, 0.25));
        assert_eq!((c.triggers[1].op, c.triggers[1].value), (Op::Le, -0.25));
        assert!(c.triggers.iter().all(|t| t.emit == Emit::Edge && t.cooldown_ns == 10_000_000_000));
    }

    #[test]
    fn an_empty_file_gives_the_documented_defaults() {
        let c = load("").unwrap();
        assert_eq!(c.pairs, ["BTCUSDT", "DOTUSDT", "SOLUSDT"]);
        assert_eq!(c.binance.ws_url, "wss://stream.binance.com:9443/stream");
        assert_eq!(c.volume.top_n, 10);
        assert!(c.triggers.is_empty());
    }

    #[test]
    fn fractional_cooldowns_become_nanoseconds() {
        let c = load("[[triggers]]\nname='a'\nop='>'\nvalue=0.1\ncooldown_sec=2.5\n").unwrap();
        assert_eq!(c.triggers[0].cooldown_ns, 2_500_000_000);
    }

    #[test]
    fn errors_name_the_key_its_line_and_the_fix() {
        let e = problems("pairs = [\"BTCUSDT\", \"BTC/USDT\"]\n");
        assert!(e.contains("test.toml:1: `pairs[1]` is \"BTC/USDT\", not a Binance symbol"), "{e}");
        let e = problems("[binance]\ndepth = 10\n[metrics]\ntop_n = 15\n");
        assert!(e.contains("test.toml:4: `metrics.top_n` is 15; it must be between 1 and binance.depth (10)"), "{e}");
        let e = problems("[[triggers]]\nname='a'\nop='>'\nvalue=1.5\n");
        assert!(e.contains("test.toml:4: `triggers[0].value` is 1.5; imbalance_ratio lies in [-1, 1]"), "{e}");
        let e = problems("[[triggers]]\nname='a'\nop='>'\nvalue=0.1\n[[triggers]]\nname='a'\nop='<'\nvalue=-0.1\n");
        assert!(e.contains("`triggers[1].name` \"a\" is also the name of triggers[0]"), "{e}");
    }

    #[test]
    fn unknown_ops_and_keys_are_rejected_with_their_line() {
        let e = problems("[[triggers]]\nname='a'\nop='=>'\nvalue=0.1\n");
        assert!(
            e.contains("test.toml:3:") && e.contains("unknown variant `=>`, expected one of `>`, `>=`, `<`, `<=`"),
            "{e}"
        );
        let e = problems("[metrics]\nvolume = 'qty'\n");
        assert!(e.contains("test.toml:2:") && e.contains("unknown field `volume`"), "{e}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let e = problems("pairs=['a-b']\n[binance]\ndepth=7\nupdate_ms=250\n");
        assert_eq!(e.lines().count(), 3, "{e}");
    }

    #[test]
    fn signal_quality_options_are_validated_and_converted() {
        let c = load(
            "[metrics]\nvolume_mode='qty'\n[[triggers]]\nname='a'\nop='>='\nvalue=0.25\nrearm=0.15\nsustain_ms=1500\nmin_volume=2.5\nmax_spread_bps=3\n",
        )
        .unwrap();
        let t = &c.triggers[0];
        assert_eq!(t.rearm, Decimal::from_f64(0.15));
        assert_eq!(t.sustain_ns, 1_500_000_000);
        assert_eq!(t.min_volume, Some(250_000_000));
        assert_eq!(t.max_spread_bps, Decimal::from_f64(3.0));
        let e = problems("[[triggers]]\nname='a'\nop='>='\nvalue=0.25\nrearm=0.3\n");
        assert!(e.contains("`triggers[0].rearm` is 0.3; it must be below the trigger value 0.25"), "{e}");
        let e = problems("[[triggers]]\nname='a'\nop='<='\nvalue=-0.25\nrearm=-0.3\n");
        assert!(e.contains("`triggers[0].rearm` is -0.3; it must be above the trigger value -0.25"), "{e}");
        let e = problems("[[triggers]]\nname='a'\nop='>='\nvalue=0.25\nrearm=0.1\nemit='level'\n");
        assert!(e.contains("applies only to emit = \"edge\""), "{e}");
        let e = problems(
            "[[triggers]]\nname='a'\nop='>='\nvalue=0.25\nmin_volume=0.000000001\n[metrics]\nvolume_mode='qty'\n",
        );
        assert!(e.contains("`triggers[0].min_volume`"), "{e}");
    }

    #[test]
    fn multi_condition_triggers_take_one_form_or_the_other() {
        let c = load(
            "[[triggers]]\nname='a'\nall=[{metric='imbalance_ratio',op='>=',value=0.3},{metric='spread_bps',op='<=',value=2}]\n",
        )
        .unwrap();
        let conds: Vec<_> = c.triggers[0].conditions().map(|c| (c.metric, c.op, c.value)).collect();
        assert_eq!(conds, vec![(MetricKind::ImbalanceRatio, Op::Ge, 0.3), (MetricKind::SpreadBps, Op::Le, 2.0)]);
        let e = problems("[[triggers]]\nname='a'\nop='>'\nvalue=0.1\nall=[{op='>',value=0.2}]\n");
        assert!(e.contains("use one form"), "{e}");
        let e = problems("[[triggers]]\nname='a'\nall=[{metric='spread_bps',op='<',value=-1}]\n");
        assert!(e.contains("`triggers[0].all[0].value` is -1; spread_bps lies in [0, 20000]"), "{e}");
        let e = problems("[[triggers]]\nname='a'\nvalue=0.1\n");
        assert!(e.contains("`triggers[0].op` is missing"), "{e}");
        let e = problems("[metrics]\ndecay=0\nofi_window=0\n");
        assert!(e.contains("`metrics.decay` is 0") && e.contains("`metrics.ofi_window` is 0"), "{e}");
    }

    #[test]
    fn trigger_pair_filters_must_name_configured_pairs() {
        let c = load("pairs=['BTCUSDT','SOLUSDT']\n[[triggers]]\nname='a'\nop='>'\nvalue=0.1\npairs=['solusdt']\n")
            .unwrap();
        assert_eq!(c.triggers[0].pairs, Some(vec![PairId(1)]));
        let e = problems("pairs=['BTCUSDT']\n[[triggers]]\nname='a'\nop='>'\nvalue=0.1\npairs=['XRPUSDT']\n");
        assert!(e.contains("`triggers[0].pairs[0]` is \"XRPUSDT\", which is not in `pairs`"), "{e}");
    }
}
