//! The config file exactly as written: serde types with defaults and
//! `deny_unknown_fields`, so a misspelt key is an error rather than silently
//! ignored. Semantic checks live in the parent module.

use std::path::PathBuf;

use serde::Deserialize;

use crate::triggers::{Emit, MetricKind, Op};
use crate::units::VolumeMode;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default = "default_pairs")]
    pub pairs: Vec<String>,
    #[serde(default)]
    pub binance: RawBinance,
    #[serde(default)]
    pub metrics: RawMetrics,
    #[serde(default)]
    pub triggers: Vec<RawTrigger>,
    #[serde(default)]
    pub alerts: RawAlerts,
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
}

impl Default for RawBinance {
    fn default() -> Self {
        RawBinance { ws_url: default_ws_url(), depth: default_depth(), update_ms: default_update_ms() }
    }
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
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    #[serde(default)]
    pub volume_mode: VolumeMode,
    /// Defaults to `binance.depth`.
    pub top_n: Option<u32>,
}

/// One `[[triggers]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrigger {
    pub name: String,
    #[serde(default)]
    pub metric: MetricKind,
    pub op: Op,
    pub value: f64,
    #[serde(default)]
    pub cooldown_sec: f64,
    #[serde(default)]
    pub emit: Emit,
    pub pairs: Option<Vec<String>>,
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
