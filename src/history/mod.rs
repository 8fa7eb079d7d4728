//! The history stage (cold side): every book sample, alert and delivery in
//! a real database, so "what was the imbalance on SOLUSDT at 14:05, and
//! which alerts fired around it?" is a query, not a replay.
//!
//! * [`rows`] — what is stored, built from the hot side's records.
//! * [`schema`] — the tables, shared by both databases.
//! * [`sqlite`] — the embedded default (bundled SQLite, nothing to install).
//! * [`postgres`] — PostgreSQL or TimescaleDB, samples through `COPY`.
//! * [`sampler`] — at most one sample per pair per `sample_ms` window.
//! * [`writer`] — the thread that owns the connection: batches,
//!   transactions, reconnect with backoff, retention.
//! * [`sink`] — the cold thread's [`crate::sinks::Sink`] in front of it.
//! * [`query`] — the `history` command's output.
//! * [`backfill`] — `replay` writing the same rows synchronously.
//!
//! The journal stays the source of truth: it is written before the history,
//! and what the history could not store is journaled as not stored.

pub mod backfill;
pub mod postgres;
pub mod query;
pub mod rows;
pub mod sampler;
pub mod schema;
pub mod sink;
pub mod sqlite;
pub mod writer;

use std::path::PathBuf;

use crate::config::HistoryBackend;
use rows::{AlertRow, Batch, DeliveryRow, SampleRow};

pub use sink::{DeliveryTap, HistorySink};

/// Why the history database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("history database {path}: cannot create its directory: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `url` is the password-free form.
    #[error("history database {url}: {source}")]
    Postgres {
        url: String,
        #[source]
        source: ::postgres::Error,
    },
    #[error("history database {url}: COPY of samples failed: {source}")]
    Copy {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "history database {path}: schema version {found} is newer than this build's {}; upgrade imbalance-monitor",
        schema::VERSION
    )]
    NewerSchema { path: String, found: i64 },
}

/// Which rows a query returns: `[from_ns, to_ns)`, optionally one pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub pair: Option<String>,
    pub from_ns: i64,
    pub to_ns: i64,
}

impl Default for Filter {
    fn default() -> Self {
        Filter { pair: None, from_ns: i64::MIN, to_ns: i64::MAX }
    }
}

/// A history database: SQLite or PostgreSQL behind one interface, used by
/// the writer thread, `replay` and the `history` command.
pub trait Backend: Send {
    /// Writes every row of `batch` in one transaction: all or nothing.
    fn write(&mut self, batch: &Batch) -> Result<(), HistoryError>;

    /// Deletes rows older than `time_ns` from every table; returns how many.
    fn delete_before(&mut self, time_ns: i64) -> Result<u64, HistoryError>;

    /// Samples matching `filter`, by time.
    fn samples(&mut self, filter: &Filter) -> Result<Vec<SampleRow>, HistoryError>;

    /// Alerts matching `filter`, by time.
    fn alerts(&mut self, filter: &Filter) -> Result<Vec<AlertRow>, HistoryError>;

    /// Delivery outcomes in `filter`'s time range (they have no pair), by time.
    fn deliveries(&mut self, filter: &Filter) -> Result<Vec<DeliveryRow>, HistoryError>;
}

/// Opens (creating the file, tables and indexes if missing) the configured database.
pub fn open(backend: &HistoryBackend) -> Result<Box<dyn Backend>, HistoryError> {
    Ok(match backend {
        HistoryBackend::Sqlite { path } => Box::new(sqlite::Sqlite::open(path)?),
        HistoryBackend::Postgres(target) => Box::new(postgres::Postgres::connect(target)?),
    })
}

/// Where the history goes, for messages (never with a password).
pub fn describe(backend: &HistoryBackend) -> String {
    match backend {
        HistoryBackend::Sqlite { path } => format!("sqlite {}", path.display()),
        HistoryBackend::Postgres(target) => format!("postgres {}", target.display_url),
    }
}
