//! The writer thread: owns the database connection, so a slow or absent
//! database never holds up the cold thread. It collects rows into batches
//! (one transaction each), reconnects with backoff when a write fails
//! (logging once per failure streak), keeps the failed batch and retries
//! it, and deletes rows past the retention in the background.
//!
//! While it retries it takes nothing new: samples then overflow their
//! bounded channel and are dropped and counted by the sink; alerts and
//! deliveries wait in theirs (bounded too: beyond it the sink journals them
//! as not stored). At shutdown it stores what is queued until the deadline,
//! then journals every alert still not stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use super::rows::{AlertRow, Batch, DeliveryRow, SampleRow};
use super::{Backend, HistoryError, describe, open};
use crate::alert::MetricUpdate;
use crate::backoff::Backoff;
use crate::config::HistoryConfig;
use crate::prng::SplitMix64;
use crate::sinks::Catalog;
use crate::sinks::journal::SharedJournal;
use crate::units::UnixNanos;

/// Rows per transaction at most.
const MAX_BATCH: usize = 5_000;
/// How long rows may wait for more to share their transaction.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(600);

/// What the cold side hands the writer besides samples.
#[derive(Debug)]
pub enum Event {
    Alert(AlertRow),
    Delivery(DeliveryRow),
}

/// History totals, readable while the writer runs.
#[derive(Debug, Default)]
pub struct HistoryCounters {
    pub samples_written: AtomicU64,
    /// Samples lost to a full channel (overload or the database down).
    pub samples_dropped: AtomicU64,
    pub alerts_written: AtomicU64,
    /// Alerts journaled as not stored (queue full, or down past shutdown).
    pub alerts_not_stored: AtomicU64,
    pub deliveries_written: AtomicU64,
    pub deliveries_not_stored: AtomicU64,
    /// Failed connection attempts and writes.
    pub failures: AtomicU64,
}

/// Appends `{"type":"history_not_stored",…}` for an alert the history lost,
/// so the journal tells which alerts are missing from the database.
pub fn journal_not_stored(journal: &SharedJournal, alert_id: Option<&str>, reason: &str) {
    let mut line = String::from("{\"type\":\"history_not_stored\",\"alert_id\":");
    match alert_id {
        Some(id) => crate::sanitize::json_str(&mut line, id),
        None => line.push_str("null"),
    }
    line.push_str(",\"reason\":");
    crate::sanitize::json_str(&mut line, reason);
    line.push('}');
    let result = match journal.lock() {
        Ok(mut j) => j.append(&line),
        Err(poisoned) => poisoned.into_inner().append(&line),
    };
    if let Err(e) = result {
        log::error!("HISTORY | {e} | the line was {line}");
    }
}

/// The channels and settings the writer thread runs on.
pub struct WriterInput {
    pub config: HistoryConfig,
    pub catalog: Arc<Catalog>,
    pub journal: SharedJournal,
    pub counters: Arc<HistoryCounters>,
    pub samples: Receiver<MetricUpdate>,
    pub events: Receiver<Event>,
    /// Receives the shutdown deadline: store what is queued by then, then end.
    pub finish: Receiver<Instant>,
}

/// Starts the writer thread.
pub fn spawn(input: WriterInput) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("history".into()).spawn(move || Writer::new(input).run())
}

struct Writer {
    input: WriterInput,
    db: Option<Box<dyn Backend>>,
    batch: Batch,
    backoff: Backoff,
    /// When the current failure streak began (`None` while writes succeed).
    down_since: Option<Instant>,
    deadline: Option<Instant>,
    next_retention: Instant,
}

impl Writer {
    fn new(input: WriterInput) -> Self {
        Writer {
            input,
            db: None,
            batch: Batch::default(),
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5), SplitMix64::from_entropy()),
            down_since: None,
            deadline: None,
            next_retention: Instant::now(),
        }
    }

    fn run(mut self) {
        if let Err(e) = self.connect() {
            self.failed(&e);
        }
        loop {
            if self.deadline.is_none()
                && let Ok(d) = self.input.finish.try_recv()
            {
                self.deadline = Some(d);
            }
            let finishing = self.deadline.is_some();
            if self.batch.is_empty() && !finishing {
                self.wait_for_rows();
            }
            let drained = self.fill();
            if !self.batch.is_empty() && !self.store() {
                self.give_up();
                return;
            }
            self.retention();
            if finishing && drained && self.batch.is_empty() {
                return;
            }
        }
    }

    /// Waits up to [`FLUSH_EVERY`] for the first row of a batch.
    fn wait_for_rows(&mut self) {
        let catalog = Arc::clone(&self.input.catalog);
        crossbeam_channel::select! {
            recv(self.input.events) -> m => if let Ok(e) = m { self.push_event(e) },
            recv(self.input.samples) -> m => if let Ok(u) = m { self.batch.samples.push(SampleRow::from_update(&u, &catalog)) },
            recv(self.input.finish) -> m => if let Ok(d) = m { self.deadline = Some(d) },
            default(FLUSH_EVERY) => {},
        }
    }

    /// Moves queued rows into the batch, alerts first; true when both
    /// queues are empty.
    fn fill(&mut self) -> bool {
        let mut events_empty = false;
        while self.batch.len() < MAX_BATCH {
            match self.input.events.try_recv() {
                Ok(e) => self.push_event(e),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                    events_empty = true;
                    break;
                }
            }
        }
        let mut samples_empty = false;
        while self.batch.len() < MAX_BATCH {
            match self.input.samples.try_recv() {
                Ok(u) => self.batch.samples.push(SampleRow::from_update(&u, &self.input.catalog)),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                    samples_empty = true;
                    break;
                }
            }
        }
        events_empty && samples_empty
    }

    fn push_event(&mut self, e: Event) {
        match e {
            Event::Alert(a) => self.batch.alerts.push(a),
            Event::Delivery(d) => self.batch.deliveries.push(d),
        }
    }

    fn connect(&mut self) -> Result<(), HistoryError> {
        if self.db.is_none() {
            self.db = Some(open(&self.input.config.backend)?);
        }
        Ok(())
    }

    /// Writes the batch, reconnecting and retrying until it is stored (true)
    /// or the shutdown deadline has passed (false).
    fn store(&mut self) -> bool {
        loop {
            let result = self.connect().and_then(|()| match self.db.as_mut() {
                Some(db) => db.write(&self.batch),
                None => Ok(()),
            });
            match result {
                Ok(()) => {
                    self.stored();
                    return true;
                }
                Err(e) => {
                    self.db = None;
                    self.failed(&e);
                    let delay = self.backoff.next_delay().max(Duration::from_millis(20));
                    let now = Instant::now();
                    if let Some(d) = self.deadline {
                        if now >= d {
                            return false;
                        }
                        std::thread::sleep(delay.min(d - now));
                    } else {
                        // Wake early only for the shutdown deadline.
                        match self.input.finish.recv_timeout(delay) {
                            Ok(d) => self.deadline = Some(d),
                            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
                        }
                    }
                }
            }
        }
    }

    fn stored(&mut self) {
        let c = &self.input.counters;
        c.samples_written.fetch_add(self.batch.samples.len() as u64, Ordering::Relaxed);
        c.alerts_written.fetch_add(self.batch.alerts.len() as u64, Ordering::Relaxed);
        c.deliveries_written.fetch_add(self.batch.deliveries.len() as u64, Ordering::Relaxed);
        if let Some(since) = self.down_since.take() {
            log::info!(
                "HISTORY | {} | writes succeed again after {:.1} s; no queued alert was lost",
                describe(&self.input.config.backend),
                since.elapsed().as_secs_f64()
            );
        }
        self.backoff.reset();
        self.batch.clear();
    }

    fn failed(&mut self, e: &HistoryError) {
        self.input.counters.failures.fetch_add(1, Ordering::Relaxed);
        if self.down_since.is_none() {
            self.down_since = Some(Instant::now());
            log::error!(
                "HISTORY | {e} | alerts stay in the journal and wait in a bounded queue until the database is back; retrying with backoff"
            );
        }
    }

    /// Past the deadline with the database still failing: journals what
    /// could not be stored.
    fn give_up(&mut self) {
        let mut alerts: Vec<AlertRow> = std::mem::take(&mut self.batch.alerts);
        let mut deliveries = self.batch.deliveries.len() as u64;
        let mut samples = self.batch.samples.len() as u64;
        while let Ok(e) = self.input.events.try_recv() {
            match e {
                Event::Alert(a) => alerts.push(a),
                Event::Delivery(_) => deliveries += 1,
            }
        }
        samples += self.input.samples.try_iter().count() as u64;
        for a in &alerts {
            journal_not_stored(&self.input.journal, a.alert_id.as_deref(), "history database unavailable at shutdown");
        }
        let c = &self.input.counters;
        c.alerts_not_stored.fetch_add(alerts.len() as u64, Ordering::Relaxed);
        c.deliveries_not_stored.fetch_add(deliveries, Ordering::Relaxed);
        c.samples_dropped.fetch_add(samples, Ordering::Relaxed);
        log::error!(
            "HISTORY | {} | still failing at the shutdown deadline: {} alert(s) journaled as not stored, {deliveries} delivery outcome(s) and {samples} sample(s) not stored",
            describe(&self.input.config.backend),
            alerts.len()
        );
    }

    fn retention(&mut self) {
        let Some(keep) = self.input.config.retention else { return };
        let now = Instant::now();
        if now < self.next_retention {
            return;
        }
        self.next_retention = now + RETENTION_EVERY;
        let keep_ns = i64::try_from(keep.as_nanos()).unwrap_or(i64::MAX);
        let cutoff = super::rows::to_i64(UnixNanos::now().0).saturating_sub(keep_ns);
        if let Some(db) = self.db.as_mut() {
            match db.delete_before(cutoff) {
                Ok(0) => {}
                Ok(n) => log::info!(
                    "HISTORY | retention deleted {n} row(s) older than {:.1} days",
                    keep.as_secs_f64() / 86_400.0
                ),
                Err(e) => log::warn!("HISTORY | retention failed, tried again later: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Mutex;

    use super::*;
    use crate::config::HistoryBackend;
    use crate::metrics::VolumeSpec;
    use crate::sinks::journal::Journal;
    use crate::units::VolumeMode;
    use crate::venue::binance_spot::{Depth, StreamKind, StreamTable, UpdateSpeed};

    fn alert(id: &str) -> AlertRow {
        AlertRow {
            alert_id: Some(id.into()),
            time_ns: 1,
            venue: "binance".into(),
            pair: "BTCUSDT".into(),
            trigger: "buy".into(),
            metric: None,
            op: None,
            threshold: None,
            value: 0.5,
            last_update_id: 1,
            bid_volume: "1".into(),
            ask_volume: "2".into(),
            best_bid: None,
            best_ask: None,
        }
    }

    /// A locked SQLite file is a failing database like any other: the alert
    /// waits, one error is logged, and it is stored once the lock is gone.
    #[test]
    fn an_alert_waits_out_a_locked_sqlite_file_and_is_stored_after() {
        let dir = std::env::temp_dir().join(format!("im-writer-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path: PathBuf = dir.join("h.sqlite");
        drop(super::super::sqlite::Sqlite::open(&path).unwrap());
        let locker = rusqlite::Connection::open(&path).unwrap();
        locker.execute_batch("BEGIN EXCLUSIVE").unwrap();

        let (samples_tx, samples) = crossbeam_channel::bounded(4);
        let (events_tx, events) = crossbeam_channel::bounded(4);
        let (finish_tx, finish) = crossbeam_channel::bounded(1);
        let counters = Arc::new(HistoryCounters::default());
        let catalog = Arc::new(Catalog {
            venue: std::sync::Arc::new(StreamTable::new(
                &["BTCUSDT".into()],
                StreamKind { depth: Depth::D10, speed: UpdateSpeed::Ms100 },
            )),
            triggers: vec![],
            volume: VolumeSpec { mode: VolumeMode::Qty, top_n: 10 },
        });
        let journal = Arc::new(Mutex::new(Journal::open(&dir.join("alerts.jsonl")).unwrap()));
        let config = HistoryConfig {
            backend: HistoryBackend::Sqlite { path: path.clone() },
            sample: Duration::ZERO,
            retention: None,
        };
        let writer =
            spawn(WriterInput { config, catalog, journal, counters: Arc::clone(&counters), samples, events, finish })
                .unwrap();
        events_tx.send(Event::Alert(alert("7-1"))).unwrap();
        let start = Instant::now();
        while counters.failures.load(Ordering::Relaxed) < 2 {
            assert!(start.elapsed() < Duration::from_secs(30), "the writer never tried");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(counters.alerts_written.load(Ordering::Relaxed), 0);
        locker.execute_batch("ROLLBACK").unwrap();
        while counters.alerts_written.load(Ordering::Relaxed) < 1 {
            assert!(start.elapsed() < Duration::from_secs(30), "never stored after the lock was released");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(samples_tx);
        finish_tx.send(Instant::now() + Duration::from_secs(5)).unwrap();
        writer.join().unwrap();
        let mut db = super::super::sqlite::Sqlite::open(&path).unwrap();
        let stored = db.alerts(&super::super::Filter::default()).unwrap();
        assert_eq!(stored, vec![alert("7-1")]);
        assert_eq!(counters.alerts_not_stored.load(Ordering::Relaxed), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
