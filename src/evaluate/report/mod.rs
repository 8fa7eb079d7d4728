//! What an evaluation tells its reader: a table on stdout, and the same rows
//! as JSON ([`json`]) or CSV ([`csv`]) for notebooks and spreadsheets.

pub mod csv;
pub mod json;

use std::io::{self, Write};

use super::{Evaluation, ResultRow};
use crate::chart::{Chart, Panel, Series};

/// Shown for a statistic a sample cannot give (no alerts, one alert).
const NONE: &str = "-";

/// `name` of a row's trigger or pair, `(all)` for an aggregate row.
fn label(names: &[String], i: Option<usize>) -> &str {
    match i {
        Some(i) => names.get(i).map_or("?", String::as_str),
        None => "(all)",
    }
}

fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| NONE.to_string(), |v| format!("{v:.decimals$}"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| NONE.to_string(), |v| format!("{:.1}%", v * 100.0))
}

impl Evaluation {
    /// The readable report: per horizon, every trigger × pair, trigger and
    /// overall row beside the pairs' baselines; with a sweep, one overall
    /// row per variant instead. Then what was left out and why.
    pub fn write_table(&self, out: &mut impl Write) -> io::Result<()> {
        let c = &self.counters;
        let horizons: Vec<String> = self.horizons.iter().map(ToString::to_string).collect();
        writeln!(
            out,
            "== evaluate: {} file(s), {} lines, {} evaluated updates of {} pair(s); horizons {} ==",
            self.files,
            self.lines,
            c.evaluated,
            self.pairs.len(),
            horizons.join(" ")
        )?;
        if !self.swept.is_empty() {
            writeln!(
                out,
                "sweep of {}: {} variants in one pass ({} engine(s))",
                self.swept.join(" × "),
                self.variants.len(),
                self.engines
            )?;
        }
        writeln!(out, "returns: signed bps of the mid after each alert (> 0: the alert's direction was right)")?;
        let trigger_names: Vec<String> = self.triggers.iter().map(|t| t.name.clone()).collect();
        for &horizon in &self.horizons {
            writeln!(out, "\n-- horizon {horizon} --")?;
            let first = if self.swept.is_empty() { "trigger" } else { "variant" };
            let second = if self.swept.is_empty() { "pair" } else { "" };
            writeln!(
                out,
                "{first:<32} {second:<10} {:>7} {:>10} {:>10} {:>8} {:>6} {:>7} {:>7} {:>8}",
                "alerts", "mean_bps", "median_bps", "hit_rate", "zero", "t_stat", "overlap", "excluded"
            )?;
            let rows = self.results.iter().filter(|r| r.horizon == horizon);
            for r in rows {
                if self.swept.is_empty() {
                    let t = match r.trigger {
                        Some(_) => label(&trigger_names, r.trigger).to_string(),
                        None => "(all triggers)".to_string(),
                    };
                    write_row(out, &t, label(&self.pairs, r.pair), r)?;
                } else if r.trigger.is_none() {
                    let v = self.variants.get(r.variant).map(ToString::to_string).unwrap_or_default();
                    write_row(out, &v, "", r)?;
                }
            }
            for b in self.baseline.iter().filter(|b| b.horizon == horizon) {
                let s = &b.summary;
                writeln!(
                    out,
                    "{:<32} {:<10} {:>7} {:>10} {:>10} {:>8} {:>6} {:>7} {:>7} {:>8}",
                    "baseline (every update, up)",
                    label(&self.pairs, Some(b.pair)),
                    s.n,
                    num(s.mean_bps, 4),
                    num(s.median_bps, 4),
                    pct(s.hit_rate),
                    s.zero,
                    num(s.t_stat, 2),
                    NONE,
                    b.past_end
                )?;
            }
        }
        writeln!(out)?;
        for (t, info) in self.triggers.iter().enumerate() {
            if info.direction.is_none() {
                let n: u64 = (0..self.variants.len()).map(|v| self.no_direction(v, t)).sum();
                writeln!(
                    out,
                    "no direction: {} ({n} alerts not evaluated) — set `direction = \"up\"` or \"down\" on it",
                    info.name
                )?;
            }
        }
        let no_mid: u64 = self
            .results
            .iter()
            .filter(|r| r.trigger.is_none() && self.horizons.first() == Some(&r.horizon))
            .map(|r| r.no_mid)
            .sum();
        if no_mid > 0 {
            writeln!(out, "alerts on a book with one empty side (no mid, no outcome): {no_mid}")?;
        }
        writeln!(
            out,
            "excluded: alerts whose horizon runs past the pair's last update; overlap: alerts less than the horizon after the previous one of their trigger and pair (outcomes shared; t assumes independence)"
        )
    }
}

fn write_row(out: &mut impl Write, first: &str, second: &str, r: &ResultRow) -> io::Result<()> {
    let s = &r.summary;
    writeln!(
        out,
        "{first:<32} {second:<10} {:>7} {:>10} {:>10} {:>8} {:>6} {:>7} {:>7} {:>8}",
        s.n,
        num(s.mean_bps, 4),
        num(s.median_bps, 4),
        pct(s.hit_rate),
        s.zero,
        num(s.t_stat, 2),
        r.overlapping,
        r.past_end
    )
}

impl Evaluation {
    /// Mean return and hit rate of every variant against the (first) swept
    /// key, one line per horizon; `None` without a sweep. Variants without
    /// alerts at a horizon leave a gap in that line.
    pub fn sweep_chart(&self) -> Option<Chart> {
        let key = *self.swept.first()?;
        let mut mean = Vec::new();
        let mut hits = Vec::new();
        for &horizon in &self.horizons {
            let overall = self.results.iter().filter(|r| r.horizon == horizon && r.trigger.is_none());
            let points = |f: &dyn Fn(&ResultRow) -> Option<f64>| -> Vec<(f64, f64)> {
                overall.clone().filter_map(|r| Some((self.variants.get(r.variant)?.get(key)?, f(r)?))).collect()
            };
            mean.push(Series { label: horizon.to_string(), points: points(&|r| r.summary.mean_bps) });
            hits.push(Series {
                label: horizon.to_string(),
                points: points(&|r| r.summary.hit_rate.map(|h| h * 100.0)),
            });
        }
        Some(Chart {
            title: format!("Signed forward return by {key} ({} variants, all triggers)", self.variants.len()),
            x_label: key.to_string(),
            panels: vec![
                Panel { y_label: "mean return (bps)".into(), series: mean, reference: Some(0.0) },
                Panel { y_label: "hit rate (%)".into(), series: hits, reference: Some(50.0) },
            ],
        })
    }
}
