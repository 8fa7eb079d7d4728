//! The embedded default: one SQLite file (SQLite is compiled in, nothing to
//! install). WAL mode, so `imbalance-monitor history` and ad-hoc `sqlite3`
//! readers never block the writer for long; a short busy timeout, so a file
//! locked by someone else is an error the writer retries, not a stall.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{AlertRow, Batch, DeliveryRow, SampleRow};
use super::{Backend, Filter, HistoryError, schema};

/// How long a write waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// An open history file.
pub struct Sqlite {
    path: PathBuf,
    conn: Connection,
}

impl Sqlite {
    /// Opens `path`, creating its directory, the file and the schema as needed.
    pub fn open(path: &Path) -> Result<Sqlite, HistoryError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| HistoryError::Dir { path: path.to_path_buf(), source })?;
        }
        let conn =
            Connection::open(path).map_err(|source| HistoryError::Sqlite { path: path.to_path_buf(), source })?;
        let mut db = Sqlite { path: path.to_path_buf(), conn };
        db.init().map_err(|e| db.err(e))?;
        let found: Option<i64> = db
            .conn
            .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
            .optional()
            .map_err(|e| db.err(e))?
            .flatten();
        match found {
            None => {
                db.conn
                    .execute("INSERT INTO schema_version (version) VALUES (?1)", [schema::VERSION])
                    .map_err(|e| db.err(e))?;
            }
            Some(v) if v > schema::VERSION => {
                return Err(HistoryError::NewerSchema { path: path.display().to_string(), found: v });
            }
            Some(_) => {}
        }
        Ok(db)
    }

    fn init(&mut self) -> rusqlite::Result<()> {
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        self.conn.pragma_update(None, "journal_mode", "WAL")?;
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let tx = self.conn.transaction()?;
        for stmt in schema::CREATE {
            tx.execute(stmt, [])?;
        }
        tx.commit()
    }

    fn err(&self, source: rusqlite::Error) -> HistoryError {
        HistoryError::Sqlite { path: self.path.clone(), source }
    }

    fn write_tx(&mut self, batch: &Batch) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached(&format!(
                "INSERT INTO samples ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                schema::SAMPLE_COLUMNS
            ))?;
            for s in &batch.samples {
                st.execute(params![
                    s.time_ns,
                    s.venue,
                    s.pair,
                    s.last_update_id,
                    s.best_bid,
                    s.best_ask,
                    s.bid_volume,
                    s.ask_volume,
                    s.imbalance_ratio,
                    s.weighted_imbalance,
                    s.microprice_offset_bps,
                    s.spread_bps,
                    s.ofi
                ])?;
            }
            let mut st = tx.prepare_cached(&format!(
                "INSERT INTO alerts ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                schema::ALERT_COLUMNS
            ))?;
            for a in &batch.alerts {
                st.execute(params![
                    a.alert_id,
                    a.time_ns,
                    a.venue,
                    a.pair,
                    a.trigger,
                    a.metric,
                    a.op,
                    a.threshold,
                    a.value,
                    a.last_update_id,
                    a.bid_volume,
                    a.ask_volume,
                    a.best_bid,
                    a.best_ask
                ])?;
            }
            let mut st = tx.prepare_cached(&format!(
                "INSERT INTO deliveries ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                schema::DELIVERY_COLUMNS
            ))?;
            for d in &batch.deliveries {
                st.execute(params![d.alert_id, d.time_ns, d.sink, d.chat_id, d.status, d.attempts, d.error])?;
            }
        }
        tx.commit()
    }

    fn select<T>(
        &self,
        columns: &str,
        table: &str,
        filter: &Filter,
        by_pair: bool,
        row: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, HistoryError> {
        let pair = if by_pair { filter.pair.as_deref() } else { None };
        // A table without pairs gets a `?3` that is always NULL.
        let pair_clause = if by_pair { "(?3 IS NULL OR pair = ?3)" } else { "?3 IS NULL" };
        let sql = format!(
            "SELECT {columns} FROM {table} WHERE time_ns >= ?1 AND time_ns < ?2 AND {pair_clause} ORDER BY time_ns, rowid"
        );
        let run = || -> rusqlite::Result<Vec<T>> {
            let mut st = self.conn.prepare(&sql)?;
            let rows = st.query_map(params![filter.from_ns, filter.to_ns, pair], |r| row(r))?;
            rows.collect()
        };
        run().map_err(|e| self.err(e))
    }
}

impl Backend for Sqlite {
    fn write(&mut self, batch: &Batch) -> Result<(), HistoryError> {
        self.write_tx(batch).map_err(|e| self.err(e))
    }

    fn delete_before(&mut self, time_ns: i64) -> Result<u64, HistoryError> {
        let mut n = 0u64;
        for table in schema::TABLES {
            let deleted = self
                .conn
                .execute(&format!("DELETE FROM {table} WHERE time_ns < ?1"), [time_ns])
                .map_err(|e| self.err(e))?;
            n += deleted as u64;
        }
        Ok(n)
    }

    fn samples(&mut self, filter: &Filter) -> Result<Vec<SampleRow>, HistoryError> {
        self.select(schema::SAMPLE_COLUMNS, "samples", filter, true, |r| {
            Ok(SampleRow {
                time_ns: r.get(0)?,
                venue: r.get(1)?,
                pair: r.get(2)?,
                last_update_id: r.get(3)?,
                best_bid: r.get(4)?,
                best_ask: r.get(5)?,
                bid_volume: r.get(6)?,
                ask_volume: r.get(7)?,
                imbalance_ratio: r.get(8)?,
                weighted_imbalance: r.get(9)?,
                microprice_offset_bps: r.get(10)?,
                spread_bps: r.get(11)?,
                ofi: r.get(12)?,
            })
        })
    }

    fn alerts(&mut self, filter: &Filter) -> Result<Vec<AlertRow>, HistoryError> {
        self.select(schema::ALERT_COLUMNS, "alerts", filter, true, |r| {
            Ok(AlertRow {
                alert_id: r.get(0)?,
                time_ns: r.get(1)?,
                venue: r.get(2)?,
                pair: r.get(3)?,
                trigger: r.get(4)?,
                metric: r.get(5)?,
                op: r.get(6)?,
                threshold: r.get(7)?,
                value: r.get(8)?,
                last_update_id: r.get(9)?,
                bid_volume: r.get(10)?,
                ask_volume: r.get(11)?,
                best_bid: r.get(12)?,
                best_ask: r.get(13)?,
            })
        })
    }

    fn deliveries(&mut self, filter: &Filter) -> Result<Vec<DeliveryRow>, HistoryError> {
        self.select(schema::DELIVERY_COLUMNS, "deliveries", filter, false, |r| {
            Ok(DeliveryRow {
                alert_id: r.get(0)?,
                time_ns: r.get(1)?,
                sink: r.get(2)?,
                chat_id: r.get(3)?,
                status: r.get(4)?,
                attempts: r.get(5)?,
                error: r.get(6)?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: &str, time_ns: i64) -> AlertRow {
        AlertRow {
            alert_id: Some(id.into()),
            time_ns,
            venue: "binance".into(),
            pair: "BTCUSDT".into(),
            trigger: "buy".into(),
            metric: Some("imbalance_ratio".into()),
            op: Some(">=".into()),
            threshold: Some(0.25),
            value: 0.2859281,
            last_update_id: 50_093_239_224,
            bid_volume: "762596.0012".into(),
            ask_volume: "423467.34".into(),
            best_bid: Some("61837.63".into()),
            best_ask: None,
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("im-sqlite-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("h.sqlite")
    }

    #[test]
    fn rows_round_trip_and_retention_deletes_only_older_ones() {
        let path = scratch("roundtrip");
        let mut db = Sqlite::open(&path).unwrap();
        let delivery = DeliveryRow {
            alert_id: "1-1".into(),
            time_ns: 5,
            sink: "telegram".into(),
            chat_id: "-100123".into(),
            status: "failed".into(),
            attempts: 5,
            error: Some("HTTP 400: chat not found".into()),
        };
        let batch = Batch {
            samples: vec![],
            alerts: vec![alert("1-1", 10), alert("1-2", 20)],
            deliveries: vec![delivery.clone()],
        };
        db.write(&batch).unwrap();
        drop(db);
        // Reopening finds the schema and the rows; the version is not written twice.
        let mut db = Sqlite::open(&path).unwrap();
        let versions: i64 = db.conn.query_row("SELECT count(*) FROM schema_version", [], |r| r.get(0)).unwrap();
        assert_eq!(versions, 1);
        assert_eq!(db.alerts(&Filter::default()).unwrap(), batch.alerts);
        assert_eq!(db.deliveries(&Filter::default()).unwrap(), vec![delivery]);
        let later = Filter { from_ns: 15, ..Filter::default() };
        assert_eq!(db.alerts(&later).unwrap(), vec![alert("1-2", 20)]);
        assert_eq!(db.delete_before(15).unwrap(), 2, "one alert and one delivery");
        assert_eq!(db.alerts(&Filter::default()).unwrap(), vec![alert("1-2", 20)]);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_newer_schema_is_refused_with_the_fix() {
        let path = scratch("newer");
        let db = Sqlite::open(&path).unwrap();
        db.conn.execute("INSERT INTO schema_version (version) VALUES (99)", []).unwrap();
        drop(db);
        let e = Sqlite::open(&path).err().unwrap().to_string();
        assert!(e.contains("schema version 99 is newer") && e.contains("upgrade"), "{e}");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
