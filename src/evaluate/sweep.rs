//! Threshold sweeps: many variants of the configured triggers evaluated over
//! one read of the data.
//!
//! A variant changes `value`, `top_n` and/or `cooldown_sec`. Variants that
//! share a `top_n` run as extra triggers of *one* engine: each frame is
//! parsed once, its metrics computed once, and every variant's trigger state
//! steps on the same readings (a comparison each). Only a different `top_n`
//! needs an engine of its own, because the volume sums differ.

use std::fmt;

use crate::config::Config;
use crate::engine::EngineConfig;
use crate::exact::{Decimal, Fraction};
use crate::triggers::{Op, TriggerSpec};

/// Most variants one evaluation accepts (the product of every `--sweep`).
pub const MAX_VARIANTS: usize = 10_000;

/// One `--sweep KEY=VALUES` argument.
#[derive(Clone, Debug, PartialEq)]
pub enum Axis {
    /// The (first) condition's threshold; a trigger whose configured value is
    /// negative (the sell side of `threshold`) gets the negated value, so one
    /// sweep moves both sides of a symmetric pair.
    Value(Vec<f64>),
    TopN(Vec<usize>),
    CooldownSec(Vec<f64>),
}

impl Axis {
    /// The key as written on the command line.
    pub fn key(&self) -> &'static str {
        match self {
            Axis::Value(_) => "value",
            Axis::TopN(_) => "top_n",
            Axis::CooldownSec(_) => "cooldown_sec",
        }
    }

    fn len(&self) -> usize {
        match self {
            Axis::Value(v) | Axis::CooldownSec(v) => v.len(),
            Axis::TopN(v) => v.len(),
        }
    }
}

/// Parses `value=0.1:0.6:0.05` (from:to:step, both ends included) or
/// `top_n=5,10,20` (a list); the message says what to write instead.
pub fn parse_axis(arg: &str) -> Result<Axis, String> {
    let (key, values) = arg
        .split_once('=')
        .ok_or_else(|| format!("{arg:?} is not KEY=VALUES; write e.g. value=0.1:0.6:0.05 or top_n=5,10,20"))?;
    let numbers = numbers(values).map_err(|e| format!("--sweep {key}={values}: {e}"))?;
    let axis = match key.trim() {
        "value" => Axis::Value(numbers),
        "cooldown_sec" => {
            if let Some(bad) = numbers.iter().find(|&&c| !(0.0..=1e9).contains(&c)) {
                return Err(format!("--sweep cooldown_sec: {bad} is not a cooldown; use seconds ≥ 0"));
            }
            Axis::CooldownSec(numbers)
        }
        "top_n" => {
            let mut levels = Vec::with_capacity(numbers.len());
            for n in numbers {
                if n.fract() != 0.0 || !(1.0..=20.0).contains(&n) {
                    return Err(format!("--sweep top_n: {n} is not a level count; use whole numbers 1 to 20"));
                }
                levels.push(n as usize);
            }
            Axis::TopN(levels)
        }
        other => return Err(format!("--sweep {other:?}: the sweepable keys are value, top_n and cooldown_sec")),
    };
    Ok(axis)
}

/// A list `a,b,c` or an inclusive range `from:to:step`, each value rounded
/// to the decimals written (so 0.1:0.3:0.1 is 0.1, 0.2, 0.3 exactly).
fn numbers(s: &str) -> Result<Vec<f64>, String> {
    let num = |t: &str| t.trim().parse::<f64>().ok().filter(|v| v.is_finite()).ok_or(format!("{t:?} is not a number"));
    let out = match s.split(':').collect::<Vec<_>>()[..] {
        [from, to, step] => {
            let (a, b, d) = (num(from)?, num(to)?, num(step)?);
            if !(d > 0.0 && b >= a) {
                return Err("a range is from:to:step with from ≤ to and step > 0".into());
            }
            let decimals = [from, to, step].iter().map(|t| t.trim().split_once('.').map_or(0, |(_, f)| f.len())).max();
            let decimals = decimals.unwrap_or(0).min(12);
            // A hair of tolerance: (0.6 − 0.1) / 0.05 is 9.999… in binary.
            let count = ((b - a) / d + 1e-6).floor() + 1.0;
            if count > MAX_VARIANTS as f64 {
                return Err(format!("the range has more than {MAX_VARIANTS} values"));
            }
            (0..count as usize)
                .map(|i| format!("{:.decimals$}", a + i as f64 * d).parse::<f64>().unwrap_or(a))
                .collect()
        }
        [list] => list.split(',').map(num).collect::<Result<Vec<_>, _>>()?,
        _ => return Err("write a list (0.2,0.3) or a range from:to:step (0.1:0.6:0.05)".into()),
    };
    Ok(out)
}

/// One combination of swept values; `None` keeps the configured value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Variant {
    pub value: Option<f64>,
    pub top_n: Option<usize>,
    pub cooldown_sec: Option<f64>,
}

impl Variant {
    /// The swept value on `axis_key`'s axis, as `f64` (for plots).
    pub fn get(&self, axis_key: &str) -> Option<f64> {
        match axis_key {
            "value" => self.value,
            "top_n" => self.top_n.map(|n| n as f64),
            "cooldown_sec" => self.cooldown_sec,
            _ => None,
        }
    }
}

impl fmt::Display for Variant {
    /// `value=0.3 top_n=10`, or `as configured` for the unswept variant.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(v) = self.value {
            parts.push(format!("value={v}"));
        }
        if let Some(n) = self.top_n {
            parts.push(format!("top_n={n}"));
        }
        if let Some(c) = self.cooldown_sec {
            parts.push(format!("cooldown_sec={c}"));
        }
        if parts.is_empty() { f.write_str("as configured") } else { f.write_str(&parts.join(" ")) }
    }
}

/// Every combination of the axes, the first axis varying slowest; one
/// unswept variant when there are no axes.
pub fn variants(axes: &[Axis]) -> Result<Vec<Variant>, String> {
    let mut seen: Vec<&str> = Vec::new();
    let mut total = 1usize;
    for a in axes {
        if seen.contains(&a.key()) {
            return Err(format!("--sweep {} is given twice; give each key once", a.key()));
        }
        seen.push(a.key());
        total = total.saturating_mul(a.len());
    }
    if total > MAX_VARIANTS {
        return Err(format!("the sweeps make {total} variants; at most {MAX_VARIANTS} are evaluated at once"));
    }
    let mut out = vec![Variant::default()];
    for a in axes {
        let mut next = Vec::with_capacity(out.len() * a.len());
        for v in &out {
            for i in 0..a.len() {
                let mut w = v.clone();
                match a {
                    Axis::Value(x) => w.value = x.get(i).copied(),
                    Axis::TopN(x) => w.top_n = x.get(i).copied(),
                    Axis::CooldownSec(x) => w.cooldown_sec = x.get(i).copied(),
                }
                next.push(w);
            }
        }
        out = next;
    }
    Ok(out)
}

/// Variants sharing a `top_n`, run as the triggers of one engine.
#[derive(Clone, Debug)]
pub struct Group {
    pub engine: EngineConfig,
    /// Engine trigger `i` is `members[i]` = (variant index, configured trigger index).
    pub members: Vec<(usize, usize)>,
}

/// Groups `variants` by `top_n` and builds each group's engine config from
/// `config`: every variant contributes a copy of every configured trigger.
pub fn groups(config: &Config, variants: &[Variant]) -> Result<Vec<Group>, String> {
    let mut out: Vec<(usize, Group)> = Vec::new();
    let depth = config.binance.stream.depth.levels();
    for (vi, v) in variants.iter().enumerate() {
        let top_n = v.top_n.unwrap_or(config.volume.top_n);
        if top_n > depth {
            return Err(format!(
                "--sweep top_n={top_n} is more than binance.depth ({depth}), the levels each message carries"
            ));
        }
        let at = match out.iter().position(|(n, _)| *n == top_n) {
            Some(i) => i,
            None => {
                let mut engine = config.engine_config();
                engine.volume.top_n = top_n;
                engine.triggers.clear();
                out.push((top_n, Group { engine, members: Vec::new() }));
                out.len() - 1
            }
        };
        let Some((_, group)) = out.get_mut(at) else { continue };
        for (ti, base) in config.triggers.iter().enumerate() {
            group.engine.triggers.push(variant_trigger(base, v)?);
            group.members.push((vi, ti));
        }
    }
    if out.iter().any(|(_, g)| g.members.len() > usize::from(u16::MAX) / 2) {
        return Err("the sweep makes more than 32767 triggers in one engine; sweep fewer values".into());
    }
    Ok(out.into_iter().map(|(_, g)| g).collect())
}

/// `base` with the variant's value and cooldown.
fn variant_trigger(base: &TriggerSpec, v: &Variant) -> Result<TriggerSpec, String> {
    let mut t = base.clone();
    if let Some(x) = v.value {
        let x = if base.value < 0.0 { -x } else { x };
        let (lo, hi) = t.metric.range();
        let threshold = Decimal::from_f64(x)
            .filter(|_| (lo..=hi).contains(&x))
            .ok_or_else(|| format!("--sweep value: {x} is outside {} [{lo}, {hi}] (trigger {:?})", t.metric, t.name))?;
        if let Some(r) = t.rearm {
            let side = Fraction::from(r).cmp_decimal(&threshold);
            let ok = match t.op {
                Op::Gt | Op::Ge => side == std::cmp::Ordering::Less,
                Op::Lt | Op::Le => side == std::cmp::Ordering::Greater,
            };
            if !ok {
                return Err(format!(
                    "--sweep value: {x} puts trigger {:?}'s rearm on the firing side; sweep values past its rearm",
                    t.name
                ));
            }
        }
        t.value = x;
        t.threshold = threshold;
    }
    if let Some(c) = v.cooldown_sec {
        t.cooldown_ns = (c * 1e9).round() as u64;
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_include_both_ends_without_float_noise() {
        assert_eq!(
            parse_axis("value=0.1:0.6:0.05").unwrap(),
            Axis::Value(vec![0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6])
        );
        assert_eq!(parse_axis("top_n=5,10,20").unwrap(), Axis::TopN(vec![5, 10, 20]));
        assert_eq!(parse_axis("cooldown_sec=0,5,30").unwrap(), Axis::CooldownSec(vec![0.0, 5.0, 30.0]));
    }

    #[test]
    fn bad_sweeps_say_what_to_write() {
        assert!(parse_axis("value").unwrap_err().contains("KEY=VALUES"));
        assert!(parse_axis("decay=0.1,0.2").unwrap_err().contains("value, top_n and cooldown_sec"));
        assert!(parse_axis("value=0.6:0.1:0.05").unwrap_err().contains("from ≤ to"));
        assert!(parse_axis("top_n=2.5").unwrap_err().contains("whole numbers"));
        assert!(parse_axis("cooldown_sec=-1").unwrap_err().contains("≥ 0"));
    }

    #[test]
    fn several_sweeps_multiply_and_a_key_is_given_once() {
        let axes = [Axis::Value(vec![0.2, 0.3]), Axis::CooldownSec(vec![0.0, 5.0, 30.0])];
        let v = variants(&axes).unwrap();
        assert_eq!(v.len(), 6);
        assert_eq!(v[1].to_string(), "value=0.2 cooldown_sec=5");
        assert!(variants(&[Axis::TopN(vec![5]), Axis::TopN(vec![10])]).unwrap_err().contains("twice"));
        assert_eq!(variants(&[]).unwrap(), vec![Variant::default()]);
    }
}
