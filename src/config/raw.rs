//! The config file exactly as written: serde types with defaults and
//! `deny_unknown_fields`, so a misspelt key is an error rather than silently
//! ignored. Semantic checks live in the parent module.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::metrics::MetricKind;
use crate::triggers::{Emit, Op};
use crate::units::VolumeMode;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default = "default_pairs")]
    pub pairs: Vec<String>,
    /// Shorthand: `threshold = X` creates edge triggers `>= X` and `<= -X`.
    pub threshold: Option<f64>,
    /// Cooldown of the shorthand triggers (default 10 s).
    pub cooldown_sec: Option<f64>,
    #[serde(default)]
    pub pair_overrides: BTreeMap<String, RawPairOverride>,
    #[serde(default)]
    pub binance: RawBinance,
    #[serde(default)]
    pub metrics: RawMetrics,
    #[serde(default)]
    pub triggers: Vec<RawTrigger>,
    #[serde(default)]
    pub alerts: RawAlerts,
    #[serde(default)]
    pub runtime: RawRuntime,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub metrics_http: RawMetricsHttp,
    #[serde(default)]
    pub telegram: super::telegram::RawTelegram,
    pub history: Option<super::history::RawHistory>,
}

/// `[metrics_http]`: the Prometheus endpoint, off unless `listen` is set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetricsHttp {
    pub listen: Option<String>,
}

fn default_pairs() -> Vec<String> {
    ["BTCUSDT", "DOTUSDT", "SOLUSDT"].map(String::from).to_vec()
}

/// `[binance]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBinance {
    #[serde(default = "default_ws_url")]
    pub ws_url: String,
    #[serde(default = "default_depth")]
    pub depth: u32,
    #[serde(default = "default_update_ms")]
    pub update_ms: u32,
    /// Extra trusted root certificates (PEM), e.g. a test server's CA.
    pub ca_file: Option<PathBuf>,
    #[serde(default = "default_max_streams")]
    pub max_streams_per_connection: u32,
    #[serde(default = "default_stale_after_ms")]
    pub stale_after_ms: u64,
    #[serde(default = "default_max_age")]
    pub max_connection_age_sec: u64,
    /// `partial` (depth snapshots) or `diff` (a local book).
    #[serde(default)]
    pub book: BookMode,
    /// REST base for depth snapshots in diff mode.
    #[serde(default = "default_rest_url")]
    pub rest_url: String,
    /// Levels per side of each REST snapshot (diff mode).
    #[serde(default = "default_snapshot_limit")]
    pub snapshot_limit: u32,
    /// Add `<sym>@bookTicker` as the touch overlay (diff mode).
    #[serde(default)]
    pub book_ticker: bool,
}

/// Where a pair's book comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BookMode {
    /// `<sym>@depth<N>@100ms` snapshots of the top N levels.
    #[default]
    Partial,
    /// `<sym>@depth@100ms` diffs on a REST snapshot: the local book.
    Diff,
}

fn default_rest_url() -> String {
    "https://api.binance.com".into()
}

/// Binance's default for the local-book procedure's snapshot.
fn default_snapshot_limit() -> u32 {
    1000
}

impl Default for RawBinance {
    fn default() -> Self {
        RawBinance {
            ws_url: default_ws_url(),
            depth: default_depth(),
            update_ms: default_update_ms(),
            ca_file: None,
            max_streams_per_connection: default_max_streams(),
            stale_after_ms: default_stale_after_ms(),
            max_connection_age_sec: default_max_age(),
            book: BookMode::default(),
            rest_url: default_rest_url(),
            snapshot_limit: default_snapshot_limit(),
            book_ticker: false,
        }
    }
}

/// Binance's documented limit of streams per connection.
fn default_max_streams() -> u32 {
    1024
}

fn default_stale_after_ms() -> u64 {
    5000
}

/// 23 h 50 m: rotate before Binance's 24 h cut.
fn default_max_age() -> u64 {
    23 * 3600 + 50 * 60
}

fn default_ws_url() -> String {
    "wss://stream.binance.com:9443/stream".into()
}

fn default_depth() -> u32 {
    10
}

fn default_update_ms() -> u32 {
    100
}

/// `[metrics]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    #[serde(default)]
    pub volume_mode: VolumeMode,
    /// Defaults to `binance.depth`.
    pub top_n: Option<u32>,
    /// Log a METRIC line for every evaluated update.
    #[serde(default)]
    pub log_metrics: bool,
    /// Level weight decay of `weighted_imbalance`.
    #[serde(default = "default_decay")]
    pub decay: f64,
    /// Updates in the `ofi` window.
    #[serde(default = "default_ofi_window")]
    pub ofi_window: u32,
    /// Only levels within this many basis points of the mid count.
    pub band_bps: Option<u32>,
}

impl Default for RawMetrics {
    fn default() -> Self {
        RawMetrics {
            volume_mode: VolumeMode::default(),
            top_n: None,
            log_metrics: false,
            decay: default_decay(),
            ofi_window: default_ofi_window(),
            band_bps: None,
        }
    }
}

fn default_decay() -> f64 {
    0.5
}

fn default_ofi_window() -> u32 {
    10
}

/// One `[[triggers]]` entry: a single condition (`metric op value`) or `all`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrigger {
    pub name: String,
    pub metric: Option<MetricKind>,
    pub op: Option<Op>,
    pub value: Option<f64>,
    pub all: Option<Vec<RawCondition>>,
    #[serde(default)]
    pub cooldown_sec: f64,
    #[serde(default)]
    pub emit: Emit,
    pub pairs: Option<Vec<String>>,
    pub rearm: Option<f64>,
    #[serde(default)]
    pub sustain_ms: u64,
    pub min_volume: Option<f64>,
    pub max_spread_bps: Option<f64>,
    pub direction: Option<super::Direction>,
}

/// One condition of an `all = [...]` trigger.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCondition {
    #[serde(default)]
    pub metric: MetricKind,
    pub op: Op,
    pub value: f64,
}

/// `[alerts]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    #[serde(default = "default_journal")]
    pub journal: PathBuf,
}

impl Default for RawAlerts {
    fn default() -> Self {
        RawAlerts { journal: default_journal() }
    }
}

fn default_journal() -> PathBuf {
    PathBuf::from("logs/alerts.jsonl")
}

/// `[runtime]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuntime {
    /// Core to pin the hot thread to; unset = not pinned.
    pub hot_core: Option<usize>,
    #[serde(default)]
    pub busy_poll: bool,
    #[serde(default = "default_grace")]
    pub shutdown_grace_sec: f64,
    #[serde(default = "default_channel_capacity")]
    pub channel_capacity: usize,
    #[serde(default = "default_stats_interval")]
    pub stats_interval_sec: u64,
}

fn default_stats_interval() -> u64 {
    60
}

impl Default for RawRuntime {
    fn default() -> Self {
        RawRuntime {
            hot_core: None,
            busy_poll: false,
            shutdown_grace_sec: default_grace(),
            channel_capacity: default_channel_capacity(),
            stats_interval_sec: default_stats_interval(),
        }
    }
}

fn default_grace() -> f64 {
    10.0
}

fn default_channel_capacity() -> usize {
    4096
}

/// `[log]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    #[serde(default = "default_log_file")]
    pub file: PathBuf,
    #[serde(default = "default_log_level")]
    pub level: String,
    /// Rotate when the file would grow past this many MiB; 0 = at midnight only.
    #[serde(default = "default_log_max_size_mb")]
    pub max_size_mb: u64,
    /// Rotated files kept; older ones are deleted.
    #[serde(default = "default_log_keep_files")]
    pub keep_files: usize,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            file: default_log_file(),
            level: default_log_level(),
            max_size_mb: default_log_max_size_mb(),
            keep_files: default_log_keep_files(),
        }
    }
}

fn default_log_max_size_mb() -> u64 {
    crate::logging::Rotation::DEFAULT.max_bytes.map_or(0, |b| b >> 20)
}

fn default_log_keep_files() -> usize {
    crate::logging::Rotation::DEFAULT.keep_files
}

fn default_log_file() -> PathBuf {
    PathBuf::from("logs/imbalance-monitor.log")
}

fn default_log_level() -> String {
    "info".into()
}

/// `[pair_overrides.<PAIR>]`: per-pair trigger values.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPairOverride {
    /// Overrides the `threshold` shorthand for this pair.
    pub threshold: Option<f64>,
    /// `[pair_overrides.<PAIR>.triggers.<NAME>]`
    #[serde(default)]
    pub triggers: BTreeMap<String, RawTriggerOverride>,
}

/// The keys of a trigger that may differ per pair.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTriggerOverride {
    /// `false` turns the trigger off for this pair.
    pub enabled: Option<bool>,
    pub value: Option<f64>,
    pub cooldown_sec: Option<f64>,
    pub rearm: Option<f64>,
    pub sustain_ms: Option<u64>,
    pub min_volume: Option<f64>,
    pub max_spread_bps: Option<f64>,
}
