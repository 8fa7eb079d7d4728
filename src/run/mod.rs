//! `run`: the live pipeline — a pinned hot thread (feed, engine, hand-off)
//! and a cold thread (journal, log, Telegram) — started from a validated
//! config and stopped by a signal or a [`StopHandle`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Once};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::alert::NoAction;
use crate::cold::{self, ColdConfig, ColdReport};
use crate::config::Config;
use crate::engine::{Engine, EngineCounters};
use crate::feed::tls::{self, TlsConfigError};
use crate::feed::{FeedConfig, FeedCounters, FeedError, StopHandle};
use crate::gauges::PairGauges;
use crate::handoff::{self, HandOff, HandOffCounters};
use crate::hot::HotLoop;
use crate::recorder::{self, RecordConfig, RecordError, RecordReport};
use crate::sinks::Catalog;
use crate::sinks::journal::{BACKLOG_LINES, Journal, JournalError};
use crate::stats;
use crate::stats::report::StatsReport;
use crate::units::UnixNanos;
use crate::watch::hub::WatchHub;

mod sink_set;

use sink_set::{BuildError, SinkSet};

/// Alerts that may wait on the hot side while the channel is full.
const OVERFLOW_RING: usize = 4096;

/// Why the pipeline could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error("cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Sinks(#[from] BuildError),
    #[error(transparent)]
    Snapshots(#[from] crate::snapshot::SnapshotError),
    #[error("--hdr-log {path}: cannot create: {source}")]
    HdrLog {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Per-run options from the command line.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// SIGINT/SIGTERM stop the run (the CLI); otherwise only the stop handle.
    pub handle_signals: bool,
    /// Record every received message.
    pub record: Option<RecordConfig>,
    /// Write an HdrHistogram interval log of every latency stage.
    pub hdr_log: Option<PathBuf>,
    /// Serve Prometheus metrics on this address (overrides the config).
    pub metrics_listen: Option<String>,
    /// Collect the dashboard's state even without the metrics endpoint
    /// (`run --tui`); with the endpoint it is always collected, for `/state`.
    pub dashboard: bool,
}

/// What the hot thread did.
#[derive(Clone, Debug, Default)]
pub struct HotReport {
    pub engine: EngineCounters,
    pub handoff: HandOffCounters,
    pub feed: FeedCounters,
}

/// Everything a finished run reports.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    pub hot: HotReport,
    pub cold: ColdReport,
    pub record: Option<RecordReport>,
    /// Threads that ended by a panic (`hot`, `cold`, `record`): a bug, and
    /// a run that failed (the CLI exits 1).
    pub panicked: Vec<&'static str>,
}

impl RunReport {
    /// Whether every thread ended normally.
    pub fn ok(&self) -> bool {
        self.panicked.is_empty()
    }
}

/// A running pipeline.
pub struct Runner {
    stop: StopHandle,
    hot: JoinHandle<HotReport>,
    cold: JoinHandle<ColdReport>,
    recorder: Option<JoinHandle<RecordReport>>,
    metrics_addr: Option<std::net::SocketAddr>,
    gauges: Arc<PairGauges>,
    dashboard: Option<Arc<WatchHub>>,
    /// The REST snapshot fetcher (diff mode).
    fetcher: Option<crate::snapshot::Fetcher>,
}

/// How often [`Runner::wait`] looks for a cold thread that ended early.
const SUPERVISE_EVERY: Duration = Duration::from_millis(50);

/// Logs every panic, on any thread, through the logger (with the thread
/// and the place), then runs the hook that was there before (which prints
/// to stderr). Without it a panic reached only stderr, never the log file.
/// Installed once per process, by the first [`Runner::start`].
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("a panic without a message");
            let place = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
            log::error!(
                "PANIC | thread {} panicked at {place}: {message} | this is a bug",
                std::thread::current().name().unwrap_or("unnamed")
            );
            log::logger().flush();
            previous(info);
        }));
    });
}

impl Runner {
    /// Starts the hot and cold threads (and the recorder and metrics
    /// endpoint when asked). Everything that can fail does so before the
    /// first connection attempt.
    pub fn start(config: &Config, options: RunOptions) -> Result<Runner, RunError> {
        install_panic_hook();
        let tls = tls::client_config(config.binance.ca_file.as_deref())?;
        let journal = Arc::new(Mutex::new(Journal::open(&config.alerts.journal)?.with_backlog(BACKLOG_LINES)));
        let catalog = Arc::new(Catalog::from_config(config));
        let gauges = PairGauges::new(config.pairs.len());
        let SinkSet { sinks, deliveries, metrics_addr, dashboard } =
            sink_set::build(config, &catalog, &journal, &gauges, options.metrics_listen.as_deref(), options.dashboard)?;
        let stats_report =
            StatsReport::new(config.pairs.clone(), config.runtime.stats_interval, options.hdr_log.as_deref())
                .map_err(|source| RunError::HdrLog { path: options.hdr_log.clone().unwrap_or_default(), source })?;
        let (publisher, stats_rx) = stats::stats_channel(stats::PUBLISH_INTERVAL);
        let (record_producer, recorder) = match options.record.clone() {
            Some(rc) => {
                let (p, h) = recorder::start(rc)?;
                (Some(p), Some(h))
            }
            None => (None, None),
        };

        let (tx, rx) = handoff::channel(config.runtime.channel_capacity);
        let mut hand_off = HandOff::new(tx, OVERFLOW_RING, config.log_metrics).with_gauges(Arc::clone(&gauges));
        if let Some(h) = &config.history {
            hand_off = hand_off.with_sampling(h.sample, config.pairs.len());
        }
        let engine = Engine::new(config.engine_config());
        let feed = FeedConfig {
            ws_url: config.binance.ws_url.clone(),
            max_streams_per_connection: config.binance.max_streams_per_connection,
            stale_after: config.binance.stale_after,
            max_connection_age: config.binance.max_connection_age,
            busy_poll: config.runtime.busy_poll,
            tls,
        };
        let mut hot_loop: HotLoop<NoAction, HandOff> =
            HotLoop::new(feed, engine, hand_off)?.with_stats(publisher).with_gauges(Arc::clone(&gauges));
        if let Some(p) = record_producer {
            hot_loop = hot_loop.with_recorder(p);
        }
        let fetcher = if config.binance.book == crate::config::BookMode::Diff {
            let mut fc = crate::snapshot::FetcherConfig::new(
                &config.binance.rest_url,
                config.binance.snapshot_limit,
                config.pairs.clone(),
            );
            fc.ca_file = config.binance.ca_file.clone();
            let waker = hot_loop.waker();
            let (client, fetcher) = crate::snapshot::spawn(
                fc,
                Box::new(move || {
                    let _ = waker.wake();
                }),
            )?;
            hot_loop = hot_loop.with_snapshots(client);
            Some(fetcher)
        } else {
            None
        };
        if options.handle_signals {
            hot_loop.handle_signals().map_err(RunError::Signals)?;
        }
        let stop = hot_loop.stop_handle();
        let stream = match config.stream_table().diff_kind() {
            Some(d) => format!(
                "{} + REST snapshots (limit {}) from {}{}",
                d.label(),
                config.binance.snapshot_limit,
                config.binance.rest_url,
                if d.book_ticker { " + bookTicker" } else { "" }
            ),
            None => config.binance.stream.label(),
        };
        log::info!(
            "Runner started | pairs=[{}] | stream={} | connections={} | volume={} top_n={} | triggers={}",
            config.pairs.join(", "),
            stream,
            hot_loop.connection_groups(),
            config.volume.mode,
            config.volume.top_n,
            config.triggers.len()
        );

        let cold = cold::spawn(
            rx,
            ColdConfig {
                catalog,
                sinks,
                run_id: (UnixNanos::now().0 / 1_000_000).to_string(),
                shutdown_grace: config.runtime.shutdown_grace,
                stats: Some((stats_rx, stats_report)),
                deliveries,
            },
        )
        .map_err(RunError::Thread)?;

        let hot_core = config.runtime.hot_core;
        if let Some(id) = hot_core {
            match crate::affinity::isolate(id) {
                Ok(crate::affinity::Isolation::Done { threads, others }) => {
                    log::info!("HOT | core {id} reserved: {threads} other threads moved to cores {others:?}");
                }
                Ok(crate::affinity::Isolation::NoOtherCore) => {
                    log::warn!("HOT | core {id} is the only allowed core; the other threads share it");
                }
                Err(e) => log::warn!("HOT | could not move the other threads off core {id}: {e}"),
            }
        }
        let hot = std::thread::Builder::new()
            .name("hot".into())
            .spawn(move || {
                if let Some(id) = hot_core {
                    if core_affinity::set_for_current(core_affinity::CoreId { id }) {
                        log::info!("HOT | pinned to core {id}");
                    } else {
                        log::warn!("HOT | could not pin to core {id}; running unpinned");
                    }
                }
                let (engine, mut hand_off, feed) = hot_loop.run();
                hand_off.flush_samples();
                HotReport { engine: engine.counters().clone(), handoff: hand_off.counters(), feed }
            })
            .map_err(RunError::Thread)?;
        Ok(Runner { stop, hot, cold, recorder, metrics_addr, gauges, dashboard, fetcher })
    }

    /// Where the metrics endpoint listens, when enabled.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_addr
    }

    /// The dashboard's collector, when the run keeps one.
    pub fn dashboard(&self) -> Option<&Arc<WatchHub>> {
        self.dashboard.as_ref()
    }

    /// The hot thread's live per-pair gauges.
    pub fn gauges(&self) -> &Arc<PairGauges> {
        &self.gauges
    }

    /// Whether the hot thread has ended (a signal, a stop, a panic).
    pub fn is_finished(&self) -> bool {
        self.hot.is_finished()
    }

    /// A handle that stops the run from any thread.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Waits for the hot thread to stop (signal or stop handle), then for the
    /// cold side to deliver what is pending within the grace period.
    ///
    /// A panic ends the run at once instead of leaving half a pipeline: a
    /// panicked hot thread drops its end of the hand-off, so the cold side
    /// drains and ends; a cold thread that ends while the hot one runs can
    /// only have panicked (it ends only after the hot side hangs up), so the
    /// feed is stopped. Either way the report's `panicked` says so.
    pub fn wait(self) -> RunReport {
        while !self.hot.is_finished() {
            if self.cold.is_finished() {
                log::error!("COLD | the cold thread ended while the feed was running; stopping the feed");
                self.stop.stop();
                break;
            }
            std::thread::sleep(SUPERVISE_EVERY);
        }
        let mut panicked = Vec::new();
        let hot = self.hot.join().unwrap_or_else(|_| {
            log::error!("HOT | the hot thread panicked (see the PANIC line); the run ends with a failure");
            panicked.push("hot");
            HotReport::default()
        });
        if let Some(f) = self.fetcher {
            f.stop();
        }
        let cold = self.cold.join().unwrap_or_else(|_| {
            log::error!("COLD | the cold thread panicked (see the PANIC line); the run ends with a failure");
            panicked.push("cold");
            ColdReport::default()
        });
        let record = self.recorder.map(|h| {
            let r = h.join().unwrap_or_else(|_| {
                log::error!("RECORD | the recorder thread panicked (see the PANIC line); the run ends with a failure");
                panicked.push("record");
                RecordReport::default()
            });
            log::info!("RECORD | {} frames, {} bytes, {} rotation(s)", r.frames, r.bytes, r.rotations);
            r
        });
        let e = &hot.engine;
        log::info!(
            "Runner stopped | frames={} evaluated={} rejected={} crossed={} empty={} duplicates={} | alerts={} (deferred={} dropped={}) | connects={} disconnects={} rotations={} stale={}",
            e.frames,
            e.evaluated,
            e.rejected(),
            e.crossed,
            e.empty,
            e.duplicates,
            cold.alerts,
            hot.handoff.alerts_deferred,
            hot.handoff.alerts_dropped,
            hot.feed.connects,
            hot.feed.disconnects,
            hot.feed.rotations,
            hot.feed.stale
        );
        RunReport { hot, cold, record, panicked }
    }
}
