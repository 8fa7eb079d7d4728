//! The cold thread: drains the hand-off channel and feeds every sink.
//!
//! It polls with `try_recv` and a short sleep instead of a blocking `recv`,
//! so the hot thread's `try_send` never has to wake a parked receiver (a
//! futex syscall on the hot path). It exits when the hot side has hung up and
//! everything it sent has been handled, then gives each sink the rest of the
//! shutdown grace period to finish.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};

use crate::handoff::ColdMsg;
use crate::sinks::{AlertEvent, Catalog, Delivery, Sink};
use crate::stats::report::StatsReport;
use crate::stats::{Stage, StatsReceiver, nanos};

/// Sleep when the channel is empty: bounds the added alert latency while
/// keeping an idle cold thread nearly free.
const IDLE_SLEEP: Duration = Duration::from_micros(200);

/// What the cold thread did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ColdReport {
    pub alerts: u64,
    pub metrics: u64,
}

/// Cold thread settings.
pub struct ColdConfig {
    pub catalog: Arc<Catalog>,
    /// Sinks in delivery order: the journal first, so an alert is on disk
    /// before any network attempt.
    pub sinks: Vec<Box<dyn Sink>>,
    /// Prefix of alert ids: unique per run (start time in unix ms).
    pub run_id: String,
    /// How long sinks may take to finish after the feed stops.
    pub shutdown_grace: Duration,
    /// Hot-side statistics and their cold-side report, when measured.
    pub stats: Option<(StatsReceiver, StatsReport)>,
    /// Telegram request outcomes, for the `telegram` and
    /// `decision_to_delivered` latencies.
    pub deliveries: Option<Receiver<Delivery>>,
}

/// Starts the cold thread.
pub fn spawn(rx: Receiver<ColdMsg>, config: ColdConfig) -> std::io::Result<JoinHandle<ColdReport>> {
    std::thread::Builder::new().name("cold".into()).spawn(move || run(&rx, config))
}

fn run(rx: &Receiver<ColdMsg>, mut config: ColdConfig) -> ColdReport {
    let mut report = ColdReport::default();
    let mut id = String::with_capacity(40);
    let mut stats = config.stats.take();
    loop {
        let mut idle = true;
        let hot_gone = match rx.try_recv() {
            Ok(msg) => {
                idle = false;
                handle(msg, &mut config, &mut report, &mut id, stats.as_mut().map(|(_, r)| r));
                false
            }
            Err(TryRecvError::Empty) => false,
            Err(TryRecvError::Disconnected) => true,
        };
        if let Some((receiver, stats_report)) = &mut stats {
            if let Some(deliveries) = &config.deliveries {
                record_deliveries(deliveries, stats_report);
            }
            idle &= !absorb_stats(receiver, stats_report, &mut config.sinks);
            if let Some(line) = stats_report.tick(Instant::now()) {
                log::info!("{line}");
            }
        }
        if hot_gone {
            break;
        }
        if idle {
            std::thread::sleep(IDLE_SLEEP);
        }
    }
    // The hot thread published its last buffer before hanging up.
    if let Some((receiver, stats_report)) = &mut stats {
        absorb_stats(receiver, stats_report, &mut config.sinks);
    }
    let deadline = Instant::now() + config.shutdown_grace;
    for sink in &mut config.sinks {
        sink.shutdown(deadline);
    }
    if let Some((_, stats_report)) = &mut stats {
        if let Some(deliveries) = &config.deliveries {
            record_deliveries(deliveries, stats_report);
        }
        for line in stats_report.summary() {
            log::info!("{line}");
        }
    }
    report
}

fn handle(
    msg: ColdMsg,
    config: &mut ColdConfig,
    report: &mut ColdReport,
    id: &mut String,
    stats: Option<&mut StatsReport>,
) {
    match msg {
        ColdMsg::Alert(alert, decided) => {
            if let Some(s) = stats {
                s.record(Stage::Queue, nanos(decided.elapsed()));
            }
            report.alerts += 1;
            id.clear();
            id.push_str(&config.run_id);
            id.push('-');
            id.push_str(&alert.seq.to_string());
            let event = AlertEvent { id, view: config.catalog.view(&alert), decided };
            for sink in &mut config.sinks {
                sink.on_alert(&event);
            }
        }
        ColdMsg::Metric(update) => {
            report.metrics += 1;
            for sink in &mut config.sinks {
                sink.on_metric(&update, &config.catalog);
            }
        }
    }
}

/// Telegram round trips and decision → delivered latencies.
fn record_deliveries(deliveries: &Receiver<Delivery>, report: &mut StatsReport) {
    for d in deliveries.try_iter() {
        report.record(Stage::Telegram, nanos(d.round_trip));
        for decided in d.decided {
            report.record(Stage::DecisionToDelivered, nanos(d.finished.saturating_duration_since(decided)));
        }
    }
}

/// Merges every filled hot buffer and returns it cleared; tells the sinks.
/// Returns whether anything arrived.
fn absorb_stats(receiver: &StatsReceiver, report: &mut StatsReport, sinks: &mut [Box<dyn Sink>]) -> bool {
    let mut any = false;
    while let Ok(mut buf) = receiver.filled.try_recv() {
        report.absorb(&buf);
        buf.clear();
        let _ = receiver.spares.try_send(buf);
        any = true;
    }
    if any {
        for sink in sinks.iter_mut() {
            sink.on_stats(report);
        }
    }
    any
}
