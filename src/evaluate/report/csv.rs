//! `--csv PATH`: the JSON's result and baseline rows as one table.
//!
//! Columns: `kind` (`result` or `baseline`), `variant` (the swept values,
//! e.g. `value=0.3 top_n=10`; empty without a sweep), `trigger` and `pair`
//! (empty in aggregate rows), `horizon_ms`, `n` (alerts, or updates for the
//! baseline), then the statistics (empty where a sample cannot give one).

use std::io::{self, Write};

use crate::evaluate::Evaluation;
use crate::evaluate::stats::Summary;

/// The header line.
pub const HEADER: &str = "kind,variant,trigger,pair,horizon_ms,n,mean_bps,median_bps,hit_rate,zero,stderr_bps,t_stat,overlapping,excluded,no_mid";

/// A field, quoted when it holds a comma, quote or line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

fn number(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite()).map(|v| format!("{v}")).unwrap_or_default()
}

fn stats(s: &Summary) -> String {
    format!(
        "{},{},{},{},{},{},{}",
        s.n,
        number(s.mean_bps),
        number(s.median_bps),
        number(s.hit_rate),
        s.zero,
        number(s.stderr_bps),
        number(s.t_stat)
    )
}

impl Evaluation {
    /// Writes [`HEADER`] and one line per result and baseline row.
    pub fn write_csv(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "{HEADER}")?;
        let name =
            |names: &[String], i: Option<usize>| i.and_then(|i| names.get(i)).map(|s| field(s)).unwrap_or_default();
        let triggers: Vec<String> = self.triggers.iter().map(|t| t.name.clone()).collect();
        for r in &self.results {
            let variant = if self.swept.is_empty() {
                String::new()
            } else {
                self.variants.get(r.variant).map(|v| field(&v.to_string())).unwrap_or_default()
            };
            writeln!(
                out,
                "result,{variant},{},{},{},{},{},{},{}",
                name(&triggers, r.trigger),
                name(&self.pairs, r.pair),
                r.horizon.ms(),
                stats(&r.summary),
                r.overlapping,
                r.past_end,
                r.no_mid
            )?;
        }
        for b in &self.baseline {
            writeln!(
                out,
                "baseline,,,{},{},{},,{},{}",
                name(&self.pairs, Some(b.pair)),
                b.horizon.ms(),
                stats(&b.summary),
                b.past_end,
                b.no_mid
            )?;
        }
        Ok(())
    }
}
