//! `replay` into the history: the same rows a live run would have written
//! for the same frames, written synchronously (a replay waits for the
//! database instead of dropping samples), in transactions of
//! [`BATCH_ROWS`] rows.

use crate::alert::MetricUpdate;
use crate::config::HistoryConfig;
use crate::sinks::{AlertView, Catalog};

use super::rows::{AlertRow, Batch, SampleRow};
use super::sampler::Sampler;
use super::{Backend, HistoryError};

/// Rows per transaction.
pub const BATCH_ROWS: usize = 10_000;

/// Totals of one backfill.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackfillReport {
    pub samples: u64,
    pub alerts: u64,
}

/// Writes a replay's samples and alerts.
pub struct Backfill {
    db: Box<dyn Backend>,
    sampler: Sampler,
    batch: Batch,
    report: BackfillReport,
}

impl Backfill {
    /// Opens the configured database (creating the schema) before the first frame.
    pub fn open(config: &HistoryConfig, pairs: usize) -> Result<Backfill, HistoryError> {
        Ok(Backfill {
            db: super::open(&config.backend)?,
            sampler: Sampler::new(config.sample, pairs),
            batch: Batch::default(),
            report: BackfillReport::default(),
        })
    }

    /// One evaluated update.
    pub fn sample(&mut self, update: &MetricUpdate, catalog: &Catalog) -> Result<(), HistoryError> {
        if let Some(s) = self.sampler.push(update) {
            self.batch.samples.push(SampleRow::from_update(&s, catalog));
        }
        self.flush_if_full()
    }

    /// One alert, as the replay journaled it (without an id).
    pub fn alert(&mut self, view: &AlertView<'_>) -> Result<(), HistoryError> {
        self.batch.alerts.push(AlertRow::from_view(view, None));
        self.flush_if_full()
    }

    /// Writes the open windows' samples and everything pending.
    pub fn finish(mut self, catalog: &Catalog) -> Result<BackfillReport, HistoryError> {
        let open: Vec<MetricUpdate> = self.sampler.drain().collect();
        for s in &open {
            self.batch.samples.push(SampleRow::from_update(s, catalog));
        }
        self.flush()?;
        Ok(self.report)
    }

    fn flush_if_full(&mut self) -> Result<(), HistoryError> {
        if self.batch.len() >= BATCH_ROWS { self.flush() } else { Ok(()) }
    }

    fn flush(&mut self) -> Result<(), HistoryError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.db.write(&self.batch)?;
        self.report.samples += self.batch.samples.len() as u64;
        self.report.alerts += self.batch.alerts.len() as u64;
        self.batch.clear();
        Ok(())
    }
}
