//! PostgreSQL (and TimescaleDB, which speaks the same protocol): for several
//! hosts writing one history, or months of it. The sync `postgres` client
//! runs on the writer thread only. Samples go through `COPY … FROM STDIN`
//! (one round trip per batch); alerts and deliveries, which are few, through
//! prepared `INSERT`s in the same transaction.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use postgres::{Client, NoTls};

use super::rows::{AlertRow, Batch, DeliveryRow, SampleRow};
use super::{Backend, Filter, HistoryError, schema};
use crate::config::history::PgTarget;

/// How long connecting may take before it counts as a failure.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Chunks of `samples` per hypertable chunk: one day of nanoseconds.
const CHUNK_NS: i64 = 86_400_000_000_000;

/// A connection to the history database.
pub struct Postgres {
    url: String,
    client: Client,
}

impl Postgres {
    /// Connects and creates whatever part of the schema is missing; with the
    /// `timescaledb` extension installed in the database, `samples` is made
    /// a hypertable.
    pub fn connect(target: &PgTarget) -> Result<Postgres, HistoryError> {
        let url = target.display_url.clone();
        let err = |source| HistoryError::Postgres { url: url.clone(), source };
        let mut config = target.client_config().map_err(err)?;
        config.connect_timeout(CONNECT_TIMEOUT);
        if config.get_application_name().is_none() {
            config.application_name("imbalance-monitor");
        }
        let client = config.connect(NoTls).map_err(err)?;
        let mut db = Postgres { url: url.clone(), client };
        db.init()?;
        Ok(db)
    }

    fn err(&self, source: postgres::Error) -> HistoryError {
        HistoryError::Postgres { url: self.url.clone(), source }
    }

    fn init(&mut self) -> Result<(), HistoryError> {
        let mut tx =
            self.client.transaction().map_err(|e| HistoryError::Postgres { url: self.url.clone(), source: e })?;
        let url = self.url.clone();
        let err = |source| HistoryError::Postgres { url: url.clone(), source };
        // Two hosts starting at once must not both create the tables.
        tx.execute("SELECT pg_advisory_xact_lock(7361626)", &[]).map_err(err)?;
        for stmt in schema::CREATE {
            tx.batch_execute(stmt).map_err(err)?;
        }
        let found: Option<i64> = tx.query_one("SELECT max(version) FROM schema_version", &[]).map_err(err)?.get(0);
        match found {
            None => {
                tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&schema::VERSION]).map_err(err)?;
            }
            Some(v) if v > schema::VERSION => return Err(HistoryError::NewerSchema { path: url.clone(), found: v }),
            Some(_) => {}
        }
        let timescale: i64 =
            tx.query_one("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'", &[]).map_err(err)?.get(0);
        if timescale > 0 {
            tx.execute(
                "SELECT create_hypertable('samples', 'time_ns', chunk_time_interval => $1, if_not_exists => TRUE, migrate_data => TRUE)",
                &[&CHUNK_NS],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    fn write_tx(&mut self, batch: &Batch) -> Result<(), HistoryError> {
        let url = self.url.clone();
        let err = |source| HistoryError::Postgres { url: url.clone(), source };
        let mut tx = self.client.transaction().map_err(err)?;
        if !batch.samples.is_empty() {
            let mut text = String::with_capacity(batch.samples.len() * 160);
            for s in &batch.samples {
                copy_line(&mut text, s);
            }
            let mut w = tx.copy_in(&format!("COPY samples ({}) FROM STDIN", schema::SAMPLE_COLUMNS)).map_err(err)?;
            if let Err(e) = w.write_all(text.as_bytes()) {
                return Err(HistoryError::Copy { url: url.clone(), source: e });
            }
            w.finish().map_err(err)?;
        }
        if !batch.alerts.is_empty() {
            let st = tx
                .prepare(&format!(
                    "INSERT INTO alerts ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                    schema::ALERT_COLUMNS
                ))
                .map_err(err)?;
            for a in &batch.alerts {
                tx.execute(
                    &st,
                    &[
                        &a.alert_id,
                        &a.time_ns,
                        &a.venue,
                        &a.pair,
                        &a.trigger,
                        &a.metric,
                        &a.op,
                        &a.threshold,
                        &a.value,
                        &a.last_update_id,
                        &a.bid_volume,
                        &a.ask_volume,
                        &a.best_bid,
                        &a.best_ask,
                    ],
                )
                .map_err(err)?;
            }
        }
        if !batch.deliveries.is_empty() {
            let st = tx
                .prepare(&format!(
                    "INSERT INTO deliveries ({}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    schema::DELIVERY_COLUMNS
                ))
                .map_err(err)?;
            for d in &batch.deliveries {
                tx.execute(&st, &[&d.alert_id, &d.time_ns, &d.sink, &d.chat_id, &d.status, &d.attempts, &d.error])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    fn select(
        &mut self,
        columns: &str,
        table: &str,
        filter: &Filter,
        by_pair: bool,
    ) -> Result<Vec<postgres::Row>, HistoryError> {
        let pair = if by_pair { filter.pair.as_deref() } else { None };
        let pair_clause = if by_pair { "($3::text IS NULL OR pair = $3::text)" } else { "$3::text IS NULL" };
        let sql = format!(
            "SELECT {columns} FROM {table} WHERE time_ns >= $1 AND time_ns < $2 AND {pair_clause} ORDER BY time_ns, ctid"
        );
        self.client.query(&sql, &[&filter.from_ns, &filter.to_ns, &pair]).map_err(|e| self.err(e))
    }
}

/// One `COPY` text-format line. Every value is digits, a decimal point,
/// a sign or an upper-case symbol, so nothing needs escaping; NULL is `\N`.
fn copy_line(out: &mut String, s: &SampleRow) {
    fn opt_text(out: &mut String, v: &Option<String>) {
        match v {
            Some(t) => out.push_str(t),
            None => out.push_str("\\N"),
        }
        out.push('\t');
    }
    fn opt_f64(out: &mut String, v: Option<f64>) {
        match v.filter(|x| x.is_finite()) {
            Some(x) => {
                let _ = write!(out, "{x}");
            }
            None => out.push_str("\\N"),
        }
    }
    let _ = write!(out, "{}\t{}\t{}\t{}\t", s.time_ns, s.venue, s.pair, s.last_update_id);
    opt_text(out, &s.best_bid);
    opt_text(out, &s.best_ask);
    let _ = write!(out, "{}\t{}\t", s.bid_volume, s.ask_volume);
    opt_f64(out, Some(s.imbalance_ratio));
    for v in [s.weighted_imbalance, s.microprice_offset_bps, s.spread_bps, s.ofi] {
        out.push('\t');
        opt_f64(out, v);
    }
    out.push('\n');
}

impl Backend for Postgres {
    fn write(&mut self, batch: &Batch) -> Result<(), HistoryError> {
        self.write_tx(batch)
    }

    fn delete_before(&mut self, time_ns: i64) -> Result<u64, HistoryError> {
        let mut n = 0;
        for table in schema::TABLES {
            n += self
                .client
                .execute(&format!("DELETE FROM {table} WHERE time_ns < $1"), &[&time_ns])
                .map_err(|e| self.err(e))?;
        }
        Ok(n)
    }

    fn samples(&mut self, filter: &Filter) -> Result<Vec<SampleRow>, HistoryError> {
        let rows = self.select(schema::SAMPLE_COLUMNS, "samples", filter, true)?;
        rows.iter()
            .map(|r| -> Result<SampleRow, postgres::Error> {
                Ok(SampleRow {
                    time_ns: r.try_get(0)?,
                    venue: r.try_get(1)?,
                    pair: r.try_get(2)?,
                    last_update_id: r.try_get(3)?,
                    best_bid: r.try_get(4)?,
                    best_ask: r.try_get(5)?,
                    bid_volume: r.try_get(6)?,
                    ask_volume: r.try_get(7)?,
                    imbalance_ratio: r.try_get(8)?,
                    weighted_imbalance: r.try_get(9)?,
                    microprice_offset_bps: r.try_get(10)?,
                    spread_bps: r.try_get(11)?,
                    ofi: r.try_get(12)?,
                })
            })
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    fn alerts(&mut self, filter: &Filter) -> Result<Vec<AlertRow>, HistoryError> {
        let rows = self.select(schema::ALERT_COLUMNS, "alerts", filter, true)?;
        rows.iter()
            .map(|r| -> Result<AlertRow, postgres::Error> {
                Ok(AlertRow {
                    alert_id: r.try_get(0)?,
                    time_ns: r.try_get(1)?,
                    venue: r.try_get(2)?,
                    pair: r.try_get(3)?,
                    trigger: r.try_get(4)?,
                    metric: r.try_get(5)?,
                    op: r.try_get(6)?,
                    threshold: r.try_get(7)?,
                    value: r.try_get(8)?,
                    last_update_id: r.try_get(9)?,
                    bid_volume: r.try_get(10)?,
                    ask_volume: r.try_get(11)?,
                    best_bid: r.try_get(12)?,
                    best_ask: r.try_get(13)?,
                })
            })
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    fn deliveries(&mut self, filter: &Filter) -> Result<Vec<DeliveryRow>, HistoryError> {
        let rows = self.select(schema::DELIVERY_COLUMNS, "deliveries", filter, false)?;
        rows.iter()
            .map(|r| -> Result<DeliveryRow, postgres::Error> {
                Ok(DeliveryRow {
                    alert_id: r.try_get(0)?,
                    time_ns: r.try_get(1)?,
                    sink: r.try_get(2)?,
                    chat_id: r.try_get(3)?,
                    status: r.try_get(4)?,
                    attempts: r.try_get(5)?,
                    error: r.try_get(6)?,
                })
            })
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))
    }
}
