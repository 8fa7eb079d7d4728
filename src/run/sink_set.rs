//! The sink set of a run, built from the config in one place: journal
//! first (an alert is on disk before any network attempt), then the log,
//! Telegram, the dashboard, Prometheus and the history database when
//! configured. A new sink is one more branch
//! here and a file of its own (in `sinks/`).
//!
//! It lives with the run, not in `sinks/`, because it names every sink,
//! Prometheus included, and `metrics_http` is itself a sink: `sinks/` stays
//! below both.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crossbeam_channel::Receiver;

use crate::config::Config;
use crate::gauges::PairGauges;
use crate::history::HistorySink;
use crate::metrics_http::{MetricsHttp, MetricsHttpError, TelegramCounts};
use crate::sinks::journal::{Journal, JournalSink};
use crate::sinks::log::LogSink;
use crate::sinks::telegram::{self, Outcome, OutcomeObserver, TelegramDelivery, TelegramSink};
use crate::sinks::{Catalog, Delivery, Sink};
use crate::watch::hub::{WatchHub, WatchSink};

/// Why a sink could not start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error(transparent)]
    MetricsHttp(#[from] MetricsHttpError),
}

/// The sinks of a run, in the order the cold loop hands them each alert.
pub struct SinkSet {
    pub sinks: Vec<Box<dyn Sink>>,
    /// Delivery outcomes of the sinks that deliver (Telegram), for the
    /// latency histograms.
    pub deliveries: Option<Receiver<Delivery>>,
    /// Where the Prometheus endpoint listens, when it is on.
    pub metrics_addr: Option<SocketAddr>,
    /// The dashboard's collector (`/state`, `run --tui`), when kept.
    pub dashboard: Option<Arc<WatchHub>>,
}

/// Builds the sink set: journal and log always, Telegram when enabled,
/// Prometheus when `metrics_listen` (the command line) or
/// `metrics_http.listen` asks for it, the dashboard's collector with the
/// endpoint or when `dashboard` (`run --tui`) asks for it, and the history
/// database with `[history]`.
pub fn build(
    config: &Config,
    catalog: &Arc<Catalog>,
    journal: &Arc<Mutex<Journal>>,
    gauges: &Arc<PairGauges>,
    metrics_listen: Option<&str>,
    dashboard: bool,
) -> Result<SinkSet, BuildError> {
    // Journal first: an alert is on disk before any network attempt.
    let mut sinks: Vec<Box<dyn Sink>> =
        vec![Box::new(JournalSink::new(Arc::clone(journal))), Box::new(LogSink { metrics: config.log_metrics })];
    // Started here, after the journal, so Telegram can hand it its outcomes;
    // it joins the set last, after the sinks that deliver.
    let history = match &config.history {
        Some(h) => Some(HistorySink::start(h, Arc::clone(catalog), Arc::clone(journal)).map_err(BuildError::Thread)?),
        None => None,
    };
    let mut telegram_counts: Option<TelegramCounts> = None;
    let mut deliveries = None;
    // The dashboard's collector, once made: Telegram outcomes go to it (and
    // to the history database).
    let dashboard_slot: Arc<std::sync::OnceLock<Arc<WatchHub>>> = Arc::default();
    if config.telegram.enabled {
        let (events_tx, events_rx) = crossbeam_channel::bounded(4096);
        let handle = TelegramSink::spawn_with_events(
            config.telegram.clone(),
            Arc::clone(catalog),
            Arc::clone(journal),
            Some(events_tx),
        )
        .map_err(BuildError::Thread)?;
        let counters = handle.counters();
        let slot = Arc::clone(&dashboard_slot);
        let tap = history.as_ref().map(HistorySink::delivery_tap);
        handle.observe_outcomes(OutcomeObserver(Arc::new(move |o: &Outcome<'_>| {
            if let Some(hub) = slot.get() {
                hub.delivery(o.alert_id, o.status);
            }
            if let Some(tap) = &tap {
                tap.record(o.alert_id, "telegram", &o.chat.to_string(), o.status, o.attempts, o.error);
            }
        })));
        telegram_counts = Some(Arc::new(move || {
            vec![
                ("sent", counters.sent.load(Ordering::Relaxed)),
                ("sent_unconfirmed", counters.sent_unconfirmed.load(Ordering::Relaxed)),
                ("failed", counters.failed.load(Ordering::Relaxed)),
                ("dropped", counters.dropped.load(Ordering::Relaxed)),
                ("retried", counters.retries.load(Ordering::Relaxed)),
                ("rate_limited", counters.rate_limited.load(Ordering::Relaxed)),
            ]
        }));
        deliveries = Some(events_rx);
        sinks.push(Box::new(TelegramDelivery::new(handle)));
        check_bot_token(config.telegram.clone());
    }
    let mut metrics_addr = None;
    let listen = metrics_listen.or(config.metrics_http.as_deref());
    let dashboard =
        (dashboard || listen.is_some()).then(|| WatchHub::new(config, Arc::clone(gauges), telegram_counts.clone()));
    if let Some(hub) = &dashboard {
        sinks.push(Box::new(WatchSink(Arc::clone(hub))));
        let _ = dashboard_slot.set(Arc::clone(hub));
    }
    if let Some(listen) = listen {
        let http = MetricsHttp::start(
            listen,
            config.pairs.clone(),
            config.binance.stale_after,
            Arc::clone(gauges),
            telegram_counts,
        )?;
        if let Some(hub) = &dashboard {
            http.serve_dashboard(Arc::clone(hub));
        }
        metrics_addr = Some(http.addr());
        sinks.push(Box::new(http));
    }
    if let Some(h) = history {
        sinks.push(Box::new(h));
    }
    Ok(SinkSet { sinks, deliveries, metrics_addr, dashboard })
}

/// Validates the bot token with `getMe` on a short-lived thread (never the
/// hot one), logging the bot's name or a clear error.
fn check_bot_token(config: telegram::TelegramConfig) {
    let spawned =
        std::thread::Builder::new().name("telegram-getme".into()).spawn(move || match telegram::get_me(&config) {
            Ok(bot) => log::info!(
                "TELEGRAM | bot {} ready | chats={}",
                crate::sanitize::escape_controls(&bot.username.map_or(bot.first_name, |u| format!("@{u}"))),
                config.chat_ids.len()
            ),
            Err(e) => log::error!("TELEGRAM | getMe failed: {e} | alerts are still logged and journaled"),
        });
    if let Err(e) = spawned {
        log::warn!("TELEGRAM | could not check the bot token: {e}");
    }
}
