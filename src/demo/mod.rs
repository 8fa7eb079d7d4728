//! `imbalance-monitor demo`: the whole product on one machine without a
//! network. The simulator serves two minutes of real BTCUSDT and ETHUSDT
//! depth10 frames (bundled in the binary) over TLS on loopback, with its own
//! CA; the live pipeline — TLS, WebSocket, engine, cold thread, journal, log —
//! connects to it exactly as it would to Binance and prints metrics and alerts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::{Config, ConfigError};
use crate::run::{RunError, RunOptions, RunReport, Runner};
use crate::simulator::{Rate, SimError, SimOptions, Simulator};

/// Two minutes of real Binance frames (2024-08-08 23:54 UTC), BTCUSDT and
/// ETHUSDT `@depth10@100ms`, in the recording format.
const RECORDING: &[u8] = include_bytes!("btc_eth_depth10_2min.txt.gz");

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo: cannot prepare {path}: {source}")]
    Files {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("demo: {0}")]
    Simulator(#[from] SimError),
    #[error("demo: {0}")]
    Config(#[from] ConfigError),
    #[error("demo: {0}")]
    Run(#[from] RunError),
}

/// Demo settings.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Frames per second the simulator plays (the recording's own pace is 20/s).
    pub rate: u32,
    /// Play the recording again and again until stopped.
    pub looped: bool,
    /// Where the demo's config, CA, journal and log go.
    pub dir: PathBuf,
}

/// The config the demo runs with: the shipped defaults, pointed at the simulator.
fn config_text(url: &str, ca: &Path, dir: &Path) -> String {
    format!(
        r#"pairs = ["BTCUSDT", "ETHUSDT"]

[binance]
ws_url = "{url}"
ca_file = {ca:?}
depth = 10
update_ms = 100

[metrics]
volume_mode = "notional"
top_n = 10
log_metrics = true

[[triggers]]
name = "imbalance_buy_strong"
op = ">="
value = 0.25
cooldown_sec = 10
rearm = 0.15

[[triggers]]
name = "imbalance_sell_strong"
op = "<="
value = -0.25
cooldown_sec = 10
rearm = -0.15

[alerts]
journal = {journal:?}

[runtime]
stats_interval_sec = 10
shutdown_grace_sec = 2

[log]
file = {log:?}
"#,
        journal = dir.join("alerts.jsonl"),
        log = dir.join("imbalance-monitor.log"),
    )
}

/// Runs the demo until the recording has played (or `stop` returns true),
/// then stops the pipeline cleanly and returns its report.
pub fn run(options: &DemoOptions, stop: &dyn Fn() -> bool) -> Result<(RunReport, PathBuf), DemoError> {
    let dir = &options.dir;
    let files = |path: &Path| {
        let p = path.to_path_buf();
        move |source| DemoError::Files { path: p.clone(), source }
    };
    std::fs::create_dir_all(dir).map_err(files(dir))?;
    let recording = dir.join("btc_eth_depth10_2min.txt.gz");
    std::fs::write(&recording, RECORDING).map_err(files(&recording))?;
    let sim = Simulator::start(SimOptions {
        tls: true,
        ca_out: Some(dir.join("demo-ca.pem")),
        replay: vec![recording],
        rate: Rate::PerSecond(options.rate.max(1)),
        looped: options.looped,
        ..SimOptions::default()
    })?;
    let ca = sim.ca_path().map(Path::to_path_buf).unwrap_or_else(|| dir.join("demo-ca.pem"));
    let config_path = dir.join("demo.toml");
    let text = config_text(&sim.url(), &ca, dir);
    std::fs::write(&config_path, &text).map_err(files(&config_path))?;
    let config = Config::from_toml(&config_path, &text)?;
    log::info!("DEMO | simulator {} (TLS, CA {}) | config {}", sim.url(), ca.display(), config_path.display());
    let runner = Runner::start(&config, RunOptions::default())?;
    let handle = runner.stop_handle();
    let started = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let s = sim.stats();
        // Let the last frames through the pipeline before stopping.
        let played = s.recording_finished && started.elapsed() > Duration::from_secs(1);
        if played || stop() || s.market_error.is_some() {
            if let Some(e) = s.market_error {
                log::error!("DEMO | simulator stopped: {e}");
            }
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    handle.stop();
    let report = runner.wait();
    let sim_stats = sim.stop();
    log::info!(
        "DEMO | simulator sent {} frames; the engine evaluated {}",
        sim_stats.frames_sent,
        report.hot.engine.evaluated
    );
    Ok((report, dir.join("alerts.jsonl")))
}
