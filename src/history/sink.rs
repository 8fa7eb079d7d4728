//! The history's cold-side sink: samples through the sampler into a bounded
//! channel (offered, never waited for), alerts and delivery outcomes into
//! another bounded channel, both drained by the [`super::writer`] thread.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Sender, TrySendError};

use super::rows::{AlertRow, DeliveryRow, to_i64};
use super::sampler::Sampler;
use super::writer::{self, Event, HistoryCounters, WriterInput, journal_not_stored};
use crate::alert::MetricUpdate;
use crate::config::HistoryConfig;
use crate::sinks::journal::SharedJournal;
use crate::sinks::{AlertEvent, Catalog, Sink};
use crate::units::UnixNanos;

/// Samples that may wait for the writer; beyond, they are dropped and counted.
const SAMPLE_QUEUE: usize = 65_536;
/// Alerts and delivery outcomes that may wait for the writer (the database
/// down for a while); beyond, they are journaled as not stored.
pub const EVENT_QUEUE: usize = 100_000;

/// The history sink, last in the cold thread's sink list (after the journal).
pub struct HistorySink {
    sampler: Sampler,
    samples: Option<Sender<MetricUpdate>>,
    events: Sender<Event>,
    finish: Sender<Instant>,
    writer: Option<JoinHandle<()>>,
    counters: Arc<HistoryCounters>,
    journal: SharedJournal,
}

impl HistorySink {
    /// Starts the writer thread. The database is opened there, so one that
    /// is down at start delays nothing: its rows queue until it is up.
    pub fn start(
        config: &HistoryConfig,
        catalog: Arc<Catalog>,
        journal: SharedJournal,
    ) -> std::io::Result<HistorySink> {
        let (samples_tx, samples) = crossbeam_channel::bounded(SAMPLE_QUEUE);
        let (events_tx, events) = crossbeam_channel::bounded(EVENT_QUEUE);
        let (finish_tx, finish) = crossbeam_channel::bounded(1);
        let counters = Arc::new(HistoryCounters::default());
        let pairs = catalog.venue.pair_table().len();
        let writer = writer::spawn(WriterInput {
            config: config.clone(),
            catalog,
            journal: Arc::clone(&journal),
            counters: Arc::clone(&counters),
            samples,
            events,
            finish,
        })?;
        log::info!(
            "HISTORY | writing to {} | sample_ms={}",
            super::describe(&config.backend),
            config.sample.as_millis()
        );
        Ok(HistorySink {
            sampler: Sampler::new(config.sample, pairs),
            samples: Some(samples_tx),
            events: events_tx,
            finish: finish_tx,
            writer: Some(writer),
            counters,
            journal,
        })
    }

    /// Where the Telegram worker reports delivery outcomes.
    pub fn delivery_tap(&self) -> DeliveryTap {
        DeliveryTap { events: self.events.clone(), counters: Arc::clone(&self.counters) }
    }

    /// Totals so far.
    pub fn counters(&self) -> Arc<HistoryCounters> {
        Arc::clone(&self.counters)
    }

    fn offer(&self, update: MetricUpdate) {
        if let Some(tx) = &self.samples
            && tx.try_send(update).is_err()
        {
            self.counters.samples_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Sink for HistorySink {
    fn name(&self) -> &'static str {
        "history"
    }

    fn on_alert(&mut self, event: &AlertEvent<'_>) {
        let row = AlertRow::from_view(&event.view, Some(event.id));
        if let Err(e) = self.events.try_send(Event::Alert(row)) {
            let reason = match e {
                TrySendError::Full(_) => "history queue full (the database is down or too slow)",
                TrySendError::Disconnected(_) => "history writer stopped",
            };
            self.counters.alerts_not_stored.fetch_add(1, Ordering::Relaxed);
            journal_not_stored(&self.journal, Some(event.id), reason);
        }
    }

    fn on_metric(&mut self, update: &MetricUpdate, _catalog: &Catalog) {
        if let Some(sample) = self.sampler.push(update) {
            self.offer(sample);
        }
    }

    fn shutdown(&mut self, deadline: Instant) {
        let open: Vec<MetricUpdate> = self.sampler.drain().collect();
        for sample in open {
            self.offer(sample);
        }
        self.samples = None;
        let _ = self.finish.try_send(deadline);
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            log::error!("HISTORY | the writer thread panicked; the journal still holds every alert");
        }
        let c = &self.counters;
        log::info!(
            "HISTORY | stored samples={} alerts={} deliveries={} | samples dropped={} | alerts not stored={} (journaled)",
            c.samples_written.load(Ordering::Relaxed),
            c.alerts_written.load(Ordering::Relaxed),
            c.deliveries_written.load(Ordering::Relaxed),
            c.samples_dropped.load(Ordering::Relaxed),
            c.alerts_not_stored.load(Ordering::Relaxed)
        );
    }
}

/// A handle that puts delivery outcomes into the history; the run's sink set
/// calls it from Telegram's outcome observer, after the journal line.
/// Offered with `try_send`: delivery never waits for the database; the
/// journal has the outcome either way.
#[derive(Clone, Debug)]
pub struct DeliveryTap {
    events: Sender<Event>,
    counters: Arc<HistoryCounters>,
}

impl DeliveryTap {
    /// One (alert, chat) outcome, as its journal line states it.
    pub fn record(&self, alert_id: &str, sink: &str, chat_id: &str, status: &str, attempts: u32, error: Option<&str>) {
        let row = DeliveryRow {
            alert_id: alert_id.to_string(),
            time_ns: to_i64(UnixNanos::now().0),
            sink: sink.to_string(),
            chat_id: chat_id.to_string(),
            status: status.to_string(),
            attempts: i64::from(attempts),
            error: error.map(str::to_string),
        };
        if self.events.try_send(Event::Delivery(row)).is_err() {
            self.counters.deliveries_not_stored.fetch_add(1, Ordering::Relaxed);
        }
    }
}
