//! `imbalance-monitor history`: rows read back from the database, as an
//! aligned table for people or CSV for tools.

use std::io::{self, Write};

use super::rows::{AlertRow, DeliveryRow, SampleRow};
use super::{Backend, Filter, HistoryError};
use crate::units::UnixNanos;

/// Which table to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Samples,
    Alerts,
    Deliveries,
}

/// Why `history` could not print.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("writing output: {0}")]
    Output(#[from] io::Error),
}

/// A time bound: RFC 3339 (`2024-08-08T23:54:14Z`, any offset) or unix nanoseconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().map_err(|_| format!("{s:?} is too large for unix nanoseconds"));
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|e| {
        format!("{s:?} is not a time ({e}); write RFC 3339 such as 2024-08-08T23:54:14Z, or unix nanoseconds")
    })?;
    i64::try_from(t.unix_timestamp_nanos()).map_err(|_| format!("{s:?} is out of range"))
}

fn time(ns: i64) -> String {
    u64::try_from(ns).map_or_else(|_| ns.to_string(), |n| UnixNanos(n).to_string())
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(String::new, T::to_string)
}

/// A CSV field, quoted when it needs to be.
fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) { format!("\"{}\"", v.replace('"', "\"\"")) } else { v.to_string() }
}

/// The header and the cells of every row of `table` matching `filter`.
fn rows(
    db: &mut dyn Backend,
    table: Table,
    filter: &Filter,
) -> Result<(Vec<&'static str>, Vec<Vec<String>>), HistoryError> {
    Ok(match table {
        Table::Samples => (
            vec![
                "time",
                "time_ns",
                "venue",
                "pair",
                "last_update_id",
                "best_bid",
                "best_ask",
                "bid_volume",
                "ask_volume",
                "imbalance_ratio",
                "weighted_imbalance",
                "microprice_offset_bps",
                "spread_bps",
                "ofi",
            ],
            db.samples(filter)?.iter().map(sample_cells).collect(),
        ),
        Table::Alerts => (
            vec![
                "time",
                "time_ns",
                "alert_id",
                "venue",
                "pair",
                "trigger",
                "metric",
                "op",
                "threshold",
                "value",
                "last_update_id",
                "bid_volume",
                "ask_volume",
                "best_bid",
                "best_ask",
            ],
            db.alerts(filter)?.iter().map(alert_cells).collect(),
        ),
        Table::Deliveries => (
            vec!["time", "time_ns", "alert_id", "sink", "chat_id", "status", "attempts", "error"],
            db.deliveries(filter)?.iter().map(delivery_cells).collect(),
        ),
    })
}

fn sample_cells(s: &SampleRow) -> Vec<String> {
    vec![
        time(s.time_ns),
        s.time_ns.to_string(),
        s.venue.clone(),
        s.pair.clone(),
        s.last_update_id.to_string(),
        opt(&s.best_bid),
        opt(&s.best_ask),
        s.bid_volume.clone(),
        s.ask_volume.clone(),
        s.imbalance_ratio.to_string(),
        opt(&s.weighted_imbalance),
        opt(&s.microprice_offset_bps),
        opt(&s.spread_bps),
        opt(&s.ofi),
    ]
}

fn alert_cells(a: &AlertRow) -> Vec<String> {
    vec![
        time(a.time_ns),
        a.time_ns.to_string(),
        opt(&a.alert_id),
        a.venue.clone(),
        a.pair.clone(),
        a.trigger.clone(),
        opt(&a.metric),
        opt(&a.op),
        opt(&a.threshold),
        a.value.to_string(),
        a.last_update_id.to_string(),
        a.bid_volume.clone(),
        a.ask_volume.clone(),
        opt(&a.best_bid),
        opt(&a.best_ask),
    ]
}

fn delivery_cells(d: &DeliveryRow) -> Vec<String> {
    vec![
        time(d.time_ns),
        d.time_ns.to_string(),
        d.alert_id.clone(),
        d.sink.clone(),
        d.chat_id.clone(),
        d.status.clone(),
        d.attempts.to_string(),
        opt(&d.error),
    ]
}

/// Prints `table`'s rows matching `filter`; returns how many.
pub fn print(
    db: &mut dyn Backend,
    table: Table,
    filter: &Filter,
    csv: bool,
    out: &mut impl Write,
) -> Result<usize, QueryError> {
    let (header, rows) = rows(db, table, filter)?;
    if csv {
        writeln!(out, "{}", header.join(","))?;
        for r in &rows {
            let cells: Vec<String> = r.iter().map(|c| csv_field(c)).collect();
            writeln!(out, "{}", cells.join(","))?;
        }
        return Ok(rows.len());
    }
    // People read the table: the raw nanoseconds column is left to CSV.
    let shown: Vec<usize> = (0..header.len()).filter(|&i| header[i] != "time_ns").collect();
    let mut widths: Vec<usize> = shown.iter().map(|&i| header[i].len()).collect();
    for r in &rows {
        for (w, &i) in widths.iter_mut().zip(&shown) {
            *w = (*w).max(r[i].chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_string()
    };
    writeln!(out, "{}", line(shown.iter().map(|&i| header[i]).collect()))?;
    for r in &rows {
        writeln!(out, "{}", line(shown.iter().map(|&i| r[i].as_str()).collect()))?;
    }
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_unix_nanoseconds() {
        assert_eq!(parse_time("2024-08-08T23:54:14.137307667Z"), Ok(1_723_161_254_137_307_667));
        assert_eq!(parse_time("2024-08-09T01:54:14+02:00"), Ok(1_723_161_254_000_000_000));
        assert_eq!(parse_time("1723161254137307667"), Ok(1_723_161_254_137_307_667));
        let e = parse_time("14:05").unwrap_err();
        assert!(e.contains("RFC 3339"), "{e}");
    }
}
