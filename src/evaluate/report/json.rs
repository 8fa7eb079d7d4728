//! `--json PATH`: every row, machine-readable.
//!
//! ```text
//! {"results": [{"variant"?, "trigger", "pair", "horizon_ms", "alerts", "mean_bps", "median_bps",
//!               "hit_rate", "zero", "stderr_bps", "t_stat", "overlapping", "excluded", "no_mid"}],
//!  "baseline": [{"pair", "horizon_ms", "updates", "mean_bps", "median_bps", "hit_rate", "zero",
//!                "stderr_bps", "t_stat", "excluded", "no_mid"}],
//!  "excluded": {"no_direction": [{"variant"?, "trigger", "alerts"}],
//!               "alerts": [{"variant"?, "horizon_ms", "past_end", "no_mid"}],
//!               "baseline": [{"pair", "horizon_ms", "past_end", "no_mid"}]}}
//! ```
//!
//! `trigger`/`pair` are `null` in aggregate rows; a statistic a sample cannot
//! give is `null`; `variant` (the swept keys and their values) only with `--sweep`.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::evaluate::Evaluation;
use crate::evaluate::stats::Summary;

/// A JSON string literal.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn opt_string(names: &[String], i: Option<usize>) -> String {
    i.and_then(|i| names.get(i)).map_or_else(|| "null".to_string(), |n| string(n))
}

/// A JSON number, `null` for none (and for a non-finite value, never produced).
fn number(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite()).map_or_else(|| "null".to_string(), |v| format!("{v}"))
}

fn summary_fields(s: &Summary) -> String {
    format!(
        "\"mean_bps\":{},\"median_bps\":{},\"hit_rate\":{},\"zero\":{},\"stderr_bps\":{},\"t_stat\":{}",
        number(s.mean_bps),
        number(s.median_bps),
        number(s.hit_rate),
        s.zero,
        number(s.stderr_bps),
        number(s.t_stat)
    )
}

impl Evaluation {
    /// The `"variant":{…},` prefix of a row, empty without a sweep.
    fn variant_field(&self, variant: usize) -> String {
        if self.swept.is_empty() {
            return String::new();
        }
        let Some(v) = self.variants.get(variant) else { return String::new() };
        let fields: Vec<String> = self.swept.iter().map(|k| format!("{}:{}", string(k), number(v.get(k)))).collect();
        format!("\"variant\":{{{}}},", fields.join(","))
    }

    /// Writes the whole evaluation as one JSON object.
    pub fn write_json(&self, out: &mut impl Write) -> io::Result<()> {
        let names: Vec<String> = self.triggers.iter().map(|t| t.name.clone()).collect();
        let results: Vec<String> = self
            .results
            .iter()
            .map(|r| {
                format!(
                    "{{{}\"trigger\":{},\"pair\":{},\"horizon_ms\":{},\"alerts\":{},{},\"overlapping\":{},\"excluded\":{},\"no_mid\":{}}}",
                    self.variant_field(r.variant),
                    opt_string(&names, r.trigger),
                    opt_string(&self.pairs, r.pair),
                    r.horizon.ms(),
                    r.summary.n,
                    summary_fields(&r.summary),
                    r.overlapping,
                    r.past_end,
                    r.no_mid
                )
            })
            .collect();
        let baseline: Vec<String> = self
            .baseline
            .iter()
            .map(|b| {
                format!(
                    "{{\"pair\":{},\"horizon_ms\":{},\"updates\":{},{},\"excluded\":{},\"no_mid\":{}}}",
                    opt_string(&self.pairs, Some(b.pair)),
                    b.horizon.ms(),
                    b.summary.n,
                    summary_fields(&b.summary),
                    b.past_end,
                    b.no_mid
                )
            })
            .collect();
        let mut no_direction = Vec::new();
        for v in 0..self.variants.len() {
            for (t, info) in self.triggers.iter().enumerate() {
                if info.direction.is_none() {
                    no_direction.push(format!(
                        "{{{}\"trigger\":{},\"alerts\":{}}}",
                        self.variant_field(v),
                        string(&info.name),
                        self.no_direction(v, t)
                    ));
                }
            }
        }
        let alerts: Vec<String> = self
            .results
            .iter()
            .filter(|r| r.trigger.is_none())
            .map(|r| {
                format!(
                    "{{{}\"horizon_ms\":{},\"past_end\":{},\"no_mid\":{}}}",
                    self.variant_field(r.variant),
                    r.horizon.ms(),
                    r.past_end,
                    r.no_mid
                )
            })
            .collect();
        let base_excluded: Vec<String> = self
            .baseline
            .iter()
            .map(|b| {
                format!(
                    "{{\"pair\":{},\"horizon_ms\":{},\"past_end\":{},\"no_mid\":{}}}",
                    opt_string(&self.pairs, Some(b.pair)),
                    b.horizon.ms(),
                    b.past_end,
                    b.no_mid
                )
            })
            .collect();
        writeln!(
            out,
            "{{\"results\":[\n{}\n],\n\"baseline\":[\n{}\n],\n\"excluded\":{{\"no_direction\":[{}],\n\"alerts\":[{}],\n\"baseline\":[{}]}}}}",
            results.join(",\n"),
            baseline.join(",\n"),
            no_direction.join(","),
            alerts.join(","),
            base_excluded.join(",")
        )
    }
}
