//! Configuration: the TOML file as written (`raw`), validated into the typed
//! [`Config`] every other stage runs on.
//!
//! Validation runs completely before anything connects: every problem is
//! reported at once, each naming the file, the line, the key and the fix.

pub mod env;
mod files;
pub mod history;
mod locate;
mod pairs;
mod raw;
mod render;
mod rest_url;
pub mod telegram;
mod triggers;
mod ws_url;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::book::local::LocalBookConfig;
use crate::engine::EngineConfig;
use crate::logging::{LogFile, Rotation};
use crate::metrics::{LevelWeights, VolumeSpec};
use crate::triggers::TriggerSpec;
use crate::venue::binance_spot::{Depth, DiffKind, StreamKind, StreamTable, UpdateSpeed};

pub use raw::BookMode;

pub use env::Env;
pub use history::{HistoryBackend, HistoryConfig};
pub use raw::RawConfig;
use telegram::TelegramConfig;
pub use triggers::Direction;

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
    /// Partial-depth snapshots, or a local book from diffs.
    pub book: BookMode,
    /// REST base of depth snapshots (diff mode).
    pub rest_url: String,
    /// Levels per side of each snapshot (diff mode).
    pub snapshot_limit: u32,
    /// `<sym>@bookTicker` overlays the touch (diff mode).
    pub book_ticker: bool,
}

impl BinanceConfig {
    /// Levels each local book keeps per side: twice the snapshot's, so levels
    /// that appear beyond the snapshot's depth have room before the worst
    /// are dropped.
    pub fn book_capacity(&self) -> usize {
        (self.snapshot_limit as usize).saturating_mul(2).max(64)
    }
}

/// Hot/cold thread settings.
#[derive(Clone, Debug, PartialEq)]
pub struct RuntimeConfig {
    /// The core the hot thread is pinned to. Reserving it moves every other
    /// thread of the process (an embedding application's included) to the
    /// remaining allowed cores: see [`crate::affinity::isolate`].
    pub hot_core: Option<usize>,
    pub busy_poll: bool,
    pub shutdown_grace: Duration,
    /// Capacity of the hot → cold channel.
    pub channel_capacity: usize,
    /// Period of the STATS log line.
    pub stats_interval: Duration,
}

/// Log destinations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    pub file: PathBuf,
    pub level: log::LevelFilter,
    /// Size rotation and retention of `file`.
    pub rotation: Rotation,
}

impl LogConfig {
    /// The file and its rotation, for [`crate::logging::init`].
    pub fn log_file(&self) -> LogFile {
        LogFile { path: self.file.clone(), rotation: self.rotation }
    }
}

/// Largest `log.max_size_mb`: 1 TiB.
const MAX_LOG_SIZE_MB: u64 = 1 << 20;
/// Largest `log.keep_files`.
const MAX_LOG_KEEP_FILES: usize = 100_000;

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from (for messages).
    pub path: PathBuf,
    /// Symbols in upper case, config order; a symbol's index is its [`PairId`](crate::pairs::PairId).
    pub pairs: Vec<String>,
    pub binance: BinanceConfig,
    pub volume: VolumeSpec,
    /// `weighted_imbalance` level decay.
    pub decay: f64,
    /// Updates in the `ofi` window.
    pub ofi_window: usize,
    /// Only levels within this many basis points of the mid count.
    pub band_bps: Option<u32>,
    /// Log a METRIC line per evaluated update (cold side).
    pub log_metrics: bool,
    pub triggers: Vec<TriggerSpec>,
    /// The way each trigger (same index) expects the price to move: its
    /// `direction`, or the one its metric and operator imply; `None` when
    /// neither says (`evaluate` reports such triggers as "no direction").
    pub directions: Vec<Option<Direction>>,
    pub alerts: AlertsConfig,
    pub runtime: RuntimeConfig,
    pub log: LogConfig,
    /// Address of the Prometheus endpoint, if enabled.
    pub metrics_http: Option<String>,
    /// Telegram delivery (validated, environment applied).
    pub telegram: TelegramConfig,
    /// The history database, when `[history]` is present.
    pub history: Option<HistoryConfig>,
}

impl Config {
    /// Reads and validates `path`, with the process environment and the
    /// `.env` file beside it applied.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let env = Env::for_config(path)
            .map_err(|problem| ConfigError::Invalid { path: path.to_path_buf(), problems: vec![problem] })?;
        Config::from_toml_with_env(path, &text, &env)
    }

    /// Validates TOML `text` without environment overrides; `path` only
    /// names the source in messages.
    pub fn from_toml(path: &Path, text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_with_env(path, text, &Env::fixed(&[], &[]))
    }

    /// Validates TOML `text` with `env`'s overrides applied.
    pub fn from_toml_with_env(path: &Path, text: &str, env: &Env) -> Result<Config, ConfigError> {
        let invalid = |problems| ConfigError::Invalid { path: path.to_path_buf(), problems };
        let mut raw: RawConfig = toml::from_str(text).map_err(|e| invalid(vec![toml_problem(text, &e)]))?;
        let mut problems = Vec::new();
        if let Some(v) = env.get(env::THRESHOLD_VAR) {
            match v.trim().parse::<f64>() {
                Ok(x) => raw.threshold = Some(x),
                Err(_) => problems.push(Problem {
                    key: env::THRESHOLD_VAR.into(),
                    line: None,
                    message: format!("(environment) is {v:?}; expected a number such as 0.5"),
                }),
            }
        }
        let config = validate(path, raw, env, &mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            let locator = locate::Locator::new(text);
            for p in &mut problems {
                p.line = locator.line_of(&p.key);
            }
            Err(invalid(problems))
        }
    }

    /// The interned stream table for these pairs.
    pub fn stream_table(&self) -> StreamTable {
        match self.binance.book {
            BookMode::Partial => StreamTable::new(&self.pairs, self.binance.stream),
            BookMode::Diff => StreamTable::diff(
                &self.pairs,
                DiffKind { speed: self.binance.stream.speed, book_ticker: self.binance.book_ticker },
            ),
        }
    }

    /// What the engine needs.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            venue: self.stream_table(),
            volume: self.volume,
            triggers: self.triggers.clone(),
            weights: LevelWeights::from_decay(self.decay),
            ofi_window: self.ofi_window,
            band_bps: self.band_bps,
            local_book: (self.binance.book == BookMode::Diff)
                .then(|| LocalBookConfig::new(self.binance.book_capacity(), self.volume.top_n, self.band_bps)),
            max_event_levels: crate::engine::MAX_EVENT_LEVELS,
        }
    }
}

/// A TOML syntax or type error as a located problem: the key where the
/// source parses far enough to tell, the message as a sentence, and the
/// offending line with a caret under the problem, as `toml` renders it.
fn toml_problem(text: &str, e: &toml::de::Error) -> Problem {
    let at = locate::Locator::new(text);
    let span = e.span();
    let raw = e.message().trim_end().replace('\n', "; ");
    let mut message = serde_message(&raw).unwrap_or(raw);
    if let Some(s) = &span {
        message.push('\n');
        message.push_str(&excerpt(text, s.start, s.end, at.line_at(s.start)));
    }
    Problem {
        key: span.as_ref().and_then(|s| at.path_at(s.start)).unwrap_or_default(),
        line: span.map(|s| at.line_at(s.start)),
        message,
    }
}

/// serde's wording as the rest of the config errors read (the key is
/// printed before it): ``unknown variant `=>`, expected one of `>`, `>=` ``
/// → ``is "=>"; expected one of >, >=``, and ``invalid type: string "five",
/// expected u32`` → ``is string "five"; expected u32``.
fn serde_message(message: &str) -> Option<String> {
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (value, expected) = rest.split_once("`, ")?;
        return Some(format!("is {value:?}; {}", expected.replace('`', "")));
    }
    let (found, expected) = message.strip_prefix("invalid type: ")?.split_once(", expected ")?;
    Some(format!("is {found}; expected {expected}"))
}

/// The source line holding bytes `start..end`, and a caret line under them:
///
/// ```text
///   5 | op = "=>"
///     |      ^^^^
/// ```
fn excerpt(text: &str, start: usize, end: usize, line_no: usize) -> String {
    let start = start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[line_start..].find('\n').map_or(text.len(), |i| line_start + i);
    let line = text[line_start..line_end].trim_end_matches('\r');
    let column = text[line_start..start].chars().count();
    let width = text.get(start..end.clamp(start, line_end)).map_or(1, |s| s.chars().count().max(1));
    let gutter = " ".repeat(line_no.to_string().len());
    format!(" {line_no} | {line}\n {gutter} | {}{}", " ".repeat(column), "^".repeat(width))
}

/// Collects problems with their key paths (lines are found later).
pub(crate) struct Problems<'a>(&'a mut Vec<Problem>);

impl Problems<'_> {
    pub(crate) fn add(&mut self, key: impl fmt::Display, message: impl fmt::Display) {
        self.0.push(Problem { key: key.to_string(), line: None, message: message.to_string() });
    }
}

/// Checks everything serde cannot and builds the typed config. Problems are
/// collected, not returned early, so the user fixes them in one pass.
fn validate(path: &Path, mut raw: RawConfig, env: &Env, problems: &mut Vec<Problem>) -> Config {
    let mut p = Problems(problems);
    let telegram_raw = std::mem::take(&mut raw.telegram);
    let telegram = telegram::validate(telegram_raw, |k| env.get(k)).unwrap_or_else(|found| {
        for (key, message) in found {
            p.add(key, message);
        }
        TelegramConfig::disabled()
    });
    let history = history::validate(raw.history.take(), &|k| env.get(k), &mut p);

    let pairs = pairs::validate(&raw.pairs, &mut p);

    let depth = Depth::from_levels(raw.binance.depth).unwrap_or_else(|| {
        p.add("binance.depth", format_args!("is {}; Binance offers 5, 10 or 20", raw.binance.depth));
        Depth::D10
    });
    let speed = UpdateSpeed::from_millis(raw.binance.update_ms).unwrap_or_else(|| {
        p.add("binance.update_ms", format_args!("is {}; Binance offers 100 or 1000", raw.binance.update_ms));
        UpdateSpeed::Ms100
    });
    let ws_url = raw.binance.ws_url.trim().to_string();
    let ws_url_ok = ws_url::check(&ws_url, &mut p);
    if let Some(ca) = &raw.binance.ca_file {
        files::check_ca_file("binance.ca_file", ca, &mut p);
    }
    let max_streams = raw.binance.max_streams_per_connection;
    if !(1..=1024).contains(&max_streams) {
        p.add(
            "binance.max_streams_per_connection",
            format_args!("is {max_streams}; use 1 to 1024 (Binance allows at most 1024 streams per connection)"),
        );
    } else if ws_url_ok {
        let table = match raw.binance.book {
            BookMode::Partial => StreamTable::new(pairs.symbols(), StreamKind { depth, speed }),
            BookMode::Diff => {
                StreamTable::diff(pairs.symbols(), DiffKind { speed, book_ticker: raw.binance.book_ticker })
            }
        };
        ws_url::check_streams(&ws_url, &table, max_streams as usize, &mut p);
    }
    let diff = raw.binance.book == BookMode::Diff;
    let rest_url = raw.binance.rest_url.trim().to_string();
    let limit = raw.binance.snapshot_limit;
    if diff {
        rest_url::check(&rest_url, &mut p);
        if !(5..=5000).contains(&limit) {
            p.add(
                "binance.snapshot_limit",
                format_args!("is {limit}; Binance's depth snapshot takes 5 to 5000 levels (default 1000)"),
            );
        }
    } else if raw.binance.book_ticker {
        p.add(
            "binance.book_ticker",
            "is true but binance.book is \"partial\"; the touch overlay needs the local book: set book = \"diff\"",
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
    if diff {
        if top_n == 0 || top_n > limit as usize {
            p.add(
                "metrics.top_n",
                format_args!(
                    "is {top_n}; with binance.book = \"diff\" it must be between 1 and binance.snapshot_limit ({limit}): \
                     levels beyond the snapshot's depth appear only when they change, so deeper is not knowable"
                ),
            );
        }
    } else if top_n == 0 || top_n > depth.levels() {
        p.add(
            "metrics.top_n",
            format_args!(
                "is {top_n}; it must be between 1 and binance.depth ({}), the levels each message carries",
                depth.levels()
            ),
        );
    }

    let band_bps = raw.metrics.band_bps;
    if let Some(bps) = band_bps
        && !(1..=10_000).contains(&bps)
    {
        p.add("metrics.band_bps", format_args!("is {bps}; use 1 to 10000 basis points of the mid (250 = 2.5 %)"));
    }

    let triggers = triggers::validate_all(&raw, &pairs, &mut p);
    if top_n > crate::book::MAX_LEVELS
        && triggers.iter().any(|t| {
            let w = crate::metrics::MetricKind::WeightedImbalance;
            t.metric == w || t.extra.iter().any(|c| c.metric == w)
        })
    {
        p.add(
            "metrics.top_n",
            format_args!(
                "is {top_n}; weighted_imbalance weighs at most {} levels (metrics.decay): use top_n ≤ {} with it",
                crate::book::MAX_LEVELS,
                crate::book::MAX_LEVELS
            ),
        );
    }
    let directions = triggers::directions(&raw, &triggers);

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
    if !(1..=86_400).contains(&rt.stats_interval_sec) {
        p.add("runtime.stats_interval_sec", format_args!("is {}; use 1 to 86400 seconds", rt.stats_interval_sec));
    }
    let metrics_http = raw.metrics_http.listen.clone();
    if let Some(addr) = &metrics_http {
        match addr.parse::<std::net::SocketAddr>() {
            Ok(socket) if !is_local_ip(socket.ip()) => p.add(
                "metrics_http.listen",
                format_args!(
                    "is {addr:?}, but {} is not an address of this host, so nothing could listen there; use \
                     127.0.0.1 (this host only), 0.0.0.0 (every interface) or one of the host's addresses",
                    socket.ip()
                ),
            ),
            Ok(_) => {}
            Err(_) => p.add(
                "metrics_http.listen",
                format_args!(
                    "is {addr:?}; use IP:PORT, e.g. \"127.0.0.1:9184\" (0.0.0.0 to expose it beyond this host)"
                ),
            ),
        }
    }
    let level = log::LevelFilter::from_str(&raw.log.level).unwrap_or_else(|_| {
        p.add("log.level", format_args!("is {:?}; use one of error, warn, info, debug, trace, off", raw.log.level));
        log::LevelFilter::Info
    });
    let max_size_mb = raw.log.max_size_mb;
    if max_size_mb > MAX_LOG_SIZE_MB {
        p.add(
            "log.max_size_mb",
            format_args!(
                "is {max_size_mb}; use 1 to {MAX_LOG_SIZE_MB} MiB per file, or 0 to rotate only at midnight (default 100)"
            ),
        );
    }
    let keep_files = raw.log.keep_files;
    if !(1..=MAX_LOG_KEEP_FILES).contains(&keep_files) {
        p.add(
            "log.keep_files",
            format_args!("is {keep_files}; keep 1 to {MAX_LOG_KEEP_FILES} rotated files (default 14)"),
        );
    }
    let journal = files::FileKey { key: "alerts.journal", path: &raw.alerts.journal, example: "alerts.jsonl" };
    let log_file = files::FileKey { key: "log.file", path: &raw.log.file, example: "imbalance-monitor.log" };
    let config_file = files::FileKey { key: "the config file", path, example: "" };
    files::check_writable_file(&journal, &mut p);
    files::check_writable_file(&log_file, &mut p);
    files::check_distinct(&journal, &log_file, &mut p);
    files::check_distinct(&journal, &config_file, &mut p);
    files::check_distinct(&log_file, &config_file, &mut p);
    if let Some(HistoryConfig { backend: HistoryBackend::Sqlite { path }, .. }) = &history {
        // The SQLite file is a file the run creates, like the journal; one
        // shared with the journal or the log would be written into by both.
        let db = files::FileKey { key: "history.path", path, example: "history.sqlite" };
        files::check_writable_file(&db, &mut p);
        for other in [&journal, &log_file, &config_file] {
            files::check_distinct(&db, other, &mut p);
        }
    }

    let rotation = Rotation {
        max_bytes: (max_size_mb > 0).then(|| max_size_mb.min(MAX_LOG_SIZE_MB) << 20),
        keep_files: keep_files.clamp(1, MAX_LOG_KEEP_FILES),
    };

    Config {
        path: path.to_path_buf(),
        pairs: pairs.into_symbols(),
        binance: BinanceConfig {
            ws_url,
            stream: StreamKind { depth, speed },
            ca_file: raw.binance.ca_file,
            max_streams_per_connection: max_streams.clamp(1, 1024) as usize,
            stale_after: Duration::from_millis(raw.binance.stale_after_ms),
            max_connection_age: Duration::from_secs(raw.binance.max_connection_age_sec),
            book: raw.binance.book,
            rest_url,
            snapshot_limit: limit.clamp(5, 5000),
            book_ticker: raw.binance.book_ticker,
        },
        band_bps,
        volume: VolumeSpec { mode: raw.metrics.volume_mode, top_n },
        decay,
        ofi_window: ofi_window.clamp(1, 10_000) as usize,
        log_metrics: raw.metrics.log_metrics,
        triggers,
        directions,
        alerts: AlertsConfig { journal: raw.alerts.journal },
        runtime: RuntimeConfig {
            hot_core: rt.hot_core,
            busy_poll: rt.busy_poll,
            shutdown_grace: Duration::from_secs_f64(rt.shutdown_grace_sec.clamp(0.0, 3600.0)),
            channel_capacity: rt.channel_capacity,
            stats_interval: Duration::from_secs(rt.stats_interval_sec.clamp(1, 86_400)),
        },
        log: LogConfig { file: raw.log.file, level, rotation },
        metrics_http,
        telegram,
        history,
    }
}

/// Whether `ip` belongs to this host, tried by binding it with port 0 (a
/// free port, released at once), so a port the running service holds is no
/// obstacle. Only "not an address of this host" counts; any other failure
/// (permissions, no free port) is the run's to report.
fn is_local_ip(ip: std::net::IpAddr) -> bool {
    match std::net::TcpListener::bind((ip, 0)) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::AddrNotAvailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::Decimal;
    use crate::metrics::MetricKind;
    use crate::pairs::PairId;
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
            e.contains("test.toml:3: `triggers[0].op` is \"=>\"; expected one of >, >=, <, <=\n 3 | op='=>'"),
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
    fn the_threshold_shorthand_creates_symmetric_edge_triggers() {
        let c = load("pairs=['BTCUSDT']\nthreshold = 0.5\n").unwrap();
        let t: Vec<_> = c.triggers.iter().map(|t| (t.name.as_str(), t.op, t.value, t.emit, t.cooldown_ns)).collect();
        assert_eq!(
            t,
            vec![
                ("imbalance_buy", Op::Ge, 0.5, Emit::Edge, 10_000_000_000),
                ("imbalance_sell", Op::Le, -0.5, Emit::Edge, 10_000_000_000)
            ]
        );
        let c = load("threshold = 0.3\ncooldown_sec = 2.5\n").unwrap();
        assert_eq!(c.triggers[1].cooldown_ns, 2_500_000_000);
        let e = problems("threshold = 1.5\n");
        assert!(e.contains("test.toml:1: `threshold` is 1.5; use a ratio in (0, 1]"), "{e}");
        let e = problems("threshold = 0.5\n[[triggers]]\nname='imbalance_buy'\nop='>'\nvalue=0.1\n");
        assert!(e.contains("\"imbalance_buy\" is also the name of triggers[0]"), "{e}");
    }

    #[test]
    fn pair_overrides_split_a_trigger_per_pair() {
        let c = load(
            "pairs=['BTCUSDT','DOTUSDT','SOLUSDT']\nthreshold=0.25\n[pair_overrides.DOTUSDT]\nthreshold=0.6\n[pair_overrides.SOLUSDT.triggers.imbalance_sell]\nenabled=false\n",
        )
        .unwrap();
        let t: Vec<_> = c.triggers.iter().map(|t| (t.name.as_str(), t.value, t.pairs.clone())).collect();
        assert_eq!(
            t,
            vec![
                ("imbalance_buy", 0.25, Some(vec![PairId(0), PairId(2)])),
                ("imbalance_buy", 0.6, Some(vec![PairId(1)])),
                ("imbalance_sell", -0.25, Some(vec![PairId(0)])),
                ("imbalance_sell", -0.6, Some(vec![PairId(1)])),
            ]
        );
    }

    #[test]
    fn pair_override_errors_name_the_override_key() {
        let base = "pairs=['BTCUSDT','DOTUSDT']\n[[triggers]]\nname='buy'\nop='>='\nvalue=0.25\n";
        let e = problems(&format!("{base}[pair_overrides.DOTUSDT.triggers.buy]\nvalue=1.5\n"));
        assert!(e.contains("test.toml:7: `pair_overrides.DOTUSDT.triggers.buy.value` is 1.5"), "{e}");
        let e = problems(&format!("{base}[pair_overrides.DOTUSDT.triggers.sell]\nvalue=0.5\n"));
        assert!(e.contains("`pair_overrides.DOTUSDT.triggers.sell` names no trigger; the triggers are: buy"), "{e}");
        let e = problems(&format!("{base}[pair_overrides.XRPUSDT.triggers.buy]\nvalue=0.5\n"));
        assert!(e.contains("`pair_overrides.XRPUSDT` names \"XRPUSDT\", which is not in `pairs`"), "{e}");
        let e = problems(&format!("{base}[pair_overrides.DOTUSDT.triggers.buy]\nvalu=0.5\n"));
        assert!(e.contains("unknown field `valu`"), "{e}");
    }

    #[test]
    fn log_rotation_keys_are_validated_and_rendered() {
        let c = load("").unwrap();
        assert_eq!(c.log.rotation, Rotation { max_bytes: Some(100 << 20), keep_files: 14 });
        let c = load("[log]\nmax_size_mb = 0\nkeep_files = 3\n").unwrap();
        assert_eq!(c.log.rotation, Rotation { max_bytes: None, keep_files: 3 });
        let rendered = c.render();
        assert!(rendered.contains("[log]\n") && rendered.contains("\nmax_size_mb = 0\nkeep_files = 3\n"), "{rendered}");
        assert_eq!(load(&rendered.replace("keep_files = 3", "keep_files = 4")).unwrap().log.rotation.keep_files, 4);
        let e = problems("[log]\nmax_size_mb = 18446744073709551615\nkeep_files = 0\n");
        assert!(e.contains("test.toml:2: `log.max_size_mb` is 18446744073709551615; use 1 to 1048576 MiB"), "{e}");
        assert!(e.contains("test.toml:3: `log.keep_files` is 0; keep 1 to 100000 rotated files"), "{e}");
    }

    #[test]
    fn trigger_pair_filters_must_name_configured_pairs() {
        let c = load("pairs=['BTCUSDT','SOLUSDT']\n[[triggers]]\nname='a'\nop='>'\nvalue=0.1\npairs=['solusdt']\n")
            .unwrap();
        assert_eq!(c.triggers[0].pairs, Some(vec![PairId(1)]));
        let e = problems("pairs=['BTCUSDT']\n[[triggers]]\nname='a'\nop='>'\nvalue=0.1\npairs=['XRPUSDT']\n");
        assert!(e.contains("`triggers[0].pairs[0]` is \"XRPUSDT\", which is not in `pairs`"), "{e}");
    }

    #[test]
    fn diff_mode_keys_are_read_and_build_a_local_book_engine() {
        let c = load(
            "[binance]\nbook='diff'\nrest_url='https://data-api.binance.vision'\nsnapshot_limit=5000\nbook_ticker=true\n[metrics]\ntop_n=250\nband_bps=250\n",
        )
        .unwrap();
        assert_eq!(c.binance.book, BookMode::Diff);
        assert_eq!(c.binance.rest_url, "https://data-api.binance.vision");
        assert_eq!((c.binance.snapshot_limit, c.binance.book_ticker, c.band_bps), (5000, true, Some(250)));
        assert_eq!(c.volume.top_n, 250);
        let t = c.stream_table();
        assert_eq!(t.stream_name(PairId(0)), "btcusdt@depth@100ms/btcusdt@bookTicker");
        let e = c.engine_config();
        assert_eq!(e.local_book.map(|l| (l.capacity, l.view_depth, l.band_bps)), Some((10_000, 250, Some(250))));
        let slow = load("[binance]\nbook='diff'\nupdate_ms=1000\n").unwrap();
        assert_eq!(slow.stream_table().stream_name(PairId(0)), "btcusdt@depth");
        let partial = load("").unwrap();
        assert_eq!(partial.binance.book, BookMode::Partial);
        assert!(partial.engine_config().local_book.is_none());
    }

    #[test]
    fn bad_diff_mode_keys_name_the_key_and_the_fix() {
        let e = problems("[binance]\nbook='diff'\nsnapshot_limit=6000\n");
        assert!(e.contains("`binance.snapshot_limit` is 6000; Binance's depth snapshot takes 5 to 5000 levels"), "{e}");
        let e = problems("[binance]\nbook='diff'\nsnapshot_limit=100\n[metrics]\ntop_n=101\n");
        assert!(e.contains("`metrics.top_n` is 101; with binance.book = \"diff\" it must be between 1 and binance.snapshot_limit (100)"), "{e}");
        let e = problems("[binance]\nbook_ticker=true\n");
        assert!(e.contains("`binance.book_ticker` is true but binance.book is \"partial\""), "{e}");
        let e = problems("[binance]\nbook='diff'\nrest_url='ftp://x'\n");
        assert!(e.contains("`binance.rest_url` is \"ftp://x\"; it must start with https://"), "{e}");
        let e = problems("[binance]\nbook='full'\n");
        assert!(e.contains("binance.book"), "{e}");
        let e = problems("[metrics]\nband_bps=0\n");
        assert!(e.contains("`metrics.band_bps` is 0; use 1 to 10000"), "{e}");
        let e = problems(
            "[binance]\nbook='diff'\n[metrics]\ntop_n=50\n[[triggers]]\nname='w'\nmetric='weighted_imbalance'\nop='>'\nvalue=0.1\n",
        );
        assert!(e.contains("weighted_imbalance weighs at most 20 levels"), "{e}");
        // A partial book is still bounded by the stream's depth.
        let e = problems("[metrics]\ntop_n=21\n");
        assert!(e.contains("between 1 and binance.depth"), "{e}");
    }
}
