//! Trigger validation, the `threshold` shorthand and per-pair overrides.
//!
//! Every trigger, whether written out in `[[triggers]]`, created by the
//! shorthand or derived from a `[pair_overrides.*]` entry, goes through the
//! same [`validate_trigger`], so all three forms obey the same rules and
//! report problems under the key the user actually wrote.

use std::collections::{BTreeMap, HashSet};

use super::Problems;
use super::pairs::{PairIndex, repeats};
use super::raw::{RawConfig, RawTrigger, RawTriggerOverride};
use crate::exact::Decimal;
use crate::metrics::MetricKind;
use crate::pairs::PairId;
use crate::triggers::{Condition, Emit, MAX_CONDITIONS, Op, TriggerSpec};
use crate::units::VolumeMode;

/// Names of the two triggers `threshold = X` creates.
pub const SHORTHAND_BUY: &str = "imbalance_buy";
pub const SHORTHAND_SELL: &str = "imbalance_sell";
/// Cooldown of the shorthand triggers unless `cooldown_sec` is given.
const SHORTHAND_COOLDOWN_SEC: f64 = 10.0;

/// All triggers of the config: `[[triggers]]`, then the shorthand's, with
/// per-pair overrides split off as pair-specific copies.
pub(super) fn validate_all(raw: &RawConfig, pairs: &PairIndex, p: &mut Problems<'_>) -> Vec<TriggerSpec> {
    let mut written: Vec<(String, RawTrigger)> =
        raw.triggers.iter().enumerate().map(|(i, t)| (format!("triggers[{i}]"), t.clone())).collect();
    written.extend(shorthand(raw, p));
    if written.len() > usize::from(u16::MAX) / 2 {
        p.add("triggers", "has more than 32767 entries");
    }
    let before = p.0.len();
    let mut specs = Vec::with_capacity(written.len());
    let repeated = repeats(written.iter().map(|(_, t)| t.name.as_str()));
    for ((key, t), repeat) in written.iter().zip(repeated) {
        if let Some(first) = repeat {
            p.add(
                format_args!("{key}.name"),
                format_args!("{:?} is also the name of {}; trigger names must be unique", t.name, written[first].0),
            );
        }
        specs.push((t, validate_trigger(key, t, pairs, raw.metrics.volume_mode, p)));
    }
    // Overrides are checked against valid base triggers only, so a base
    // problem is not reported a second time under the override's key.
    if p.0.len() > before {
        return specs.into_iter().map(|(_, s)| s).collect();
    }
    apply_overrides(raw, pairs, specs, p)
}

/// `threshold = X` → an edge buy trigger `>= X` and sell trigger `<= -X`.
fn shorthand(raw: &RawConfig, p: &mut Problems<'_>) -> Vec<(String, RawTrigger)> {
    let Some(x) = raw.threshold else {
        if raw.cooldown_sec.is_some() {
            p.add(
                "cooldown_sec",
                "applies to the `threshold` shorthand, which is not set; set both or move it into a [[triggers]] entry",
            );
        }
        return Vec::new();
    };
    if !(x.is_finite() && x > 0.0 && x <= 1.0) {
        p.add("threshold", format_args!("is {x}; use a ratio in (0, 1], e.g. 0.5 (alerts at ≥ 0.5 and ≤ -0.5)"));
        return Vec::new();
    }
    let cooldown_sec = raw.cooldown_sec.unwrap_or(SHORTHAND_COOLDOWN_SEC);
    let make = |name: &str, op: Op, value: f64| RawTrigger {
        name: name.into(),
        metric: Some(MetricKind::ImbalanceRatio),
        op: Some(op),
        value: Some(value),
        all: None,
        cooldown_sec,
        emit: Emit::Edge,
        pairs: None,
        rearm: None,
        sustain_ms: 0,
        min_volume: None,
        max_spread_bps: None,
    };
    vec![
        ("threshold".to_string(), make(SHORTHAND_BUY, Op::Ge, x)),
        ("threshold".to_string(), make(SHORTHAND_SELL, Op::Le, -x)),
    ]
}

/// `[pair_overrides.P]`: for each overridden (pair, trigger), a copy of the
/// trigger restricted to the pair with the override's values, placed right
/// after the original, which stops watching the pair.
fn apply_overrides(
    raw: &RawConfig,
    pairs: &PairIndex,
    specs: Vec<(&RawTrigger, TriggerSpec)>,
    p: &mut Problems<'_>,
) -> Vec<TriggerSpec> {
    // (trigger name, pair) → (key, override)
    let mut wanted: BTreeMap<(String, String), (String, RawTriggerOverride)> = BTreeMap::new();
    let names: HashSet<&str> = specs.iter().map(|(_, s)| s.name.as_str()).collect();
    for (pair_key, o) in &raw.pair_overrides {
        let pair = pair_key.trim().to_ascii_uppercase();
        let base = format!("pair_overrides.{pair_key}");
        if pairs.get(&pair).is_none() {
            p.add(
                &base,
                format_args!("names {pair_key:?}, which is not in `pairs`; add it there or remove this table"),
            );
            continue;
        }
        if let Some(x) = o.threshold {
            if raw.threshold.is_none() {
                p.add(format_args!("{base}.threshold"), "overrides the `threshold` shorthand, which is not set");
            } else {
                for (name, value) in [(SHORTHAND_BUY, x), (SHORTHAND_SELL, -x)] {
                    let ov = RawTriggerOverride { value: Some(value), ..RawTriggerOverride::default() };
                    wanted.insert((name.into(), pair.clone()), (format!("{base}.threshold"), ov));
                }
            }
        }
        for (name, ov) in &o.triggers {
            let key = format!("{base}.triggers.{name}");
            if !names.contains(name.as_str()) {
                let known: Vec<&str> = specs.iter().map(|(_, s)| s.name.as_str()).collect();
                p.add(&key, format_args!("names no trigger; the triggers are: {}", known.join(", ")));
                continue;
            }
            wanted.insert((name.clone(), pair.clone()), (key, ov.clone()));
        }
    }
    let mut out = Vec::with_capacity(specs.len() + wanted.len());
    for (raw_t, mut spec) in specs {
        let mut copies = Vec::new();
        // The overridden pairs leave the original in one pass at the end.
        let mut moved: HashSet<PairId> = HashSet::new();
        let watched: Option<HashSet<PairId>> = spec.pairs.as_ref().map(|list| list.iter().copied().collect());
        let this_trigger = (spec.name.clone(), String::new())..;
        for ((name, pair), (key, ov)) in wanted.range(this_trigger).take_while(|((name, _), _)| *name == spec.name) {
            let Some(id) = pairs.get(pair) else { continue };
            if watched.as_ref().is_some_and(|w| !w.contains(&id)) {
                p.add(
                    key,
                    format_args!(
                        "overrides trigger {name:?} for {pair}, but that trigger's `pairs` does not include {pair}"
                    ),
                );
                continue;
            }
            // The original stops watching the pair...
            moved.insert(id);
            if ov.enabled == Some(false) {
                continue;
            }
            // ...and a copy with the overridden values watches it instead.
            if raw_t.all.is_some() && ov.value.is_some() {
                p.add(
                    format_args!("{key}.value"),
                    "cannot override the value of an `all` trigger; override its other keys or define a separate trigger",
                );
                continue;
            }
            let mut merged = raw_t.clone();
            merged.pairs = Some(vec![pair.clone()]);
            if ov.value.is_some() {
                merged.value = ov.value;
            }
            merged.cooldown_sec = ov.cooldown_sec.unwrap_or(merged.cooldown_sec);
            merged.rearm = ov.rearm.or(merged.rearm);
            merged.sustain_ms = ov.sustain_ms.unwrap_or(merged.sustain_ms);
            merged.min_volume = ov.min_volume.or(merged.min_volume);
            merged.max_spread_bps = ov.max_spread_bps.or(merged.max_spread_bps);
            copies.push(validate_trigger(key, &merged, pairs, raw.metrics.volume_mode, p));
        }
        if !moved.is_empty() {
            let all: Vec<PairId> =
                spec.pairs.take().unwrap_or_else(|| (0..pairs.symbols().len()).map(|k| PairId(k as u16)).collect());
            spec.pairs = Some(all.into_iter().filter(|q| !moved.contains(q)).collect());
        }
        out.push(spec);
        out.extend(copies);
    }
    out
}

/// Checks one trigger; problems are reported as `<key>.<field>`.
pub(super) fn validate_trigger(
    key: &str,
    t: &RawTrigger,
    pairs: &PairIndex,
    mode: VolumeMode,
    p: &mut Problems<'_>,
) -> TriggerSpec {
    let field = |f: &str| format!("{key}.{f}");
    if t.name.is_empty()
        || t.name.len() > 64
        || !t.name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
    {
        p.add(
            field("name"),
            format_args!("is {:?}; use 1 to 64 letters, digits, '_' or '-', e.g. \"imbalance_buy_strong\"", t.name),
        );
    }
    let conditions = conditions(key, t, p);
    let cooldown_ns = if t.cooldown_sec.is_finite() && (0.0..=1e9).contains(&t.cooldown_sec) {
        (t.cooldown_sec * 1e9).round() as u64
    } else {
        p.add(
            field("cooldown_sec"),
            format_args!("is {}; use a number of seconds ≥ 0, fractions allowed (e.g. 2.5)", t.cooldown_sec),
        );
        0
    };
    let trigger_pairs = t.pairs.as_ref().map(|list| {
        if list.is_empty() {
            p.add(field("pairs"), "is empty, so the trigger would never run; remove the key to watch every pair");
        }
        list.iter()
            .enumerate()
            .filter_map(|(j, s)| {
                let id = pairs.get(s);
                if id.is_none() {
                    p.add(
                        format_args!("{key}.pairs[{j}]"),
                        format_args!("is {s:?}, which is not in `pairs`; add it there or remove it here"),
                    );
                }
                id
            })
            .collect::<Vec<_>>()
    });
    let first = conditions.first().copied().unwrap_or(Condition {
        metric: MetricKind::ImbalanceRatio,
        op: Op::Ge,
        value: 0.0,
        threshold: Decimal::ZERO,
    });
    let rearm = t.rearm.and_then(|r| {
        let problem = if t.emit != Emit::Edge {
            Some("applies only to emit = \"edge\" triggers; remove it or use edge".to_string())
        } else if conditions.len() > 1 {
            Some("needs a single condition; it cannot be used with more than one `all` condition".to_string())
        } else if !r.is_finite() {
            Some(format!("is {r}; use a number"))
        } else {
            let (below, e_g) = match first.op {
                Op::Gt | Op::Ge => (true, first.value - 0.1),
                Op::Lt | Op::Le => (false, first.value + 0.1),
            };
            let wrong_side = if below { r >= first.value } else { r <= first.value };
            wrong_side.then(|| {
                format!(
                    "is {r}; it must be {} the trigger value {} (the side where `{} {}` is false), e.g. {e_g}",
                    if below { "below" } else { "above" },
                    first.value,
                    first.op,
                    first.value,
                )
            })
        };
        match problem {
            Some(m) => {
                p.add(field("rearm"), m);
                None
            }
            None => decimal_or_problem(r, &field("rearm"), p),
        }
    });
    if t.sustain_ms > 86_400_000 {
        p.add(field("sustain_ms"), format_args!("is {}; use at most 86400000 (one day)", t.sustain_ms));
    }
    let min_volume = t.min_volume.and_then(|v| {
        let digits = mode.frac_digits();
        match Decimal::from_f64(v) {
            Some(d) if !d.negative() && d.scale() <= digits => {
                Some(u128::from(d.mag()) * 10u128.pow(digits - d.scale()))
            }
            _ => {
                p.add(
                    field("min_volume"),
                    format_args!("is {v}; use a volume ≥ 0 in the {mode} unit with at most {digits} decimals"),
                );
                None
            }
        }
    });
    let max_spread_bps = t.max_spread_bps.and_then(|v| {
        if v.is_finite() && v >= 0.0 {
            decimal_or_problem(v, &field("max_spread_bps"), p)
        } else {
            p.add(field("max_spread_bps"), format_args!("is {v}; use a spread in basis points ≥ 0, e.g. 2.5"));
            None
        }
    });
    TriggerSpec {
        name: t.name.clone(),
        metric: first.metric,
        op: first.op,
        value: first.value,
        threshold: first.threshold,
        extra: conditions.get(1..).unwrap_or(&[]).to_vec(),
        cooldown_ns,
        emit: t.emit,
        pairs: trigger_pairs,
        rearm,
        sustain_ns: t.sustain_ms.min(86_400_000) * 1_000_000,
        min_volume,
        max_spread_bps,
    }
}

/// The exact decimal of a threshold-like number, or a problem.
fn decimal_or_problem(v: f64, key: &str, p: &mut Problems<'_>) -> Option<Decimal> {
    let d = Decimal::from_f64(v);
    if d.is_none() {
        p.add(key, format_args!("is {v}; use at most {} decimal places", Decimal::MAX_SCALE));
    }
    d
}

/// The conditions of a trigger: its `metric/op/value`, or its `all` list.
fn conditions(key: &str, t: &RawTrigger, p: &mut Problems<'_>) -> Vec<Condition> {
    let mut out = Vec::new();
    let mut check = |metric: MetricKind, op: Op, value: f64, key: String, p: &mut Problems<'_>| {
        let (lo, hi) = metric.range();
        if !value.is_finite() || value < lo || value > hi {
            let range =
                if metric == MetricKind::Ofi { "any finite number".to_string() } else { format!("[{lo}, {hi}]") };
            p.add(key, format_args!("is {value}; {metric} lies in {range}, so choose a threshold in that range"));
            return;
        }
        if let Some(threshold) = decimal_or_problem(value, &key, p) {
            out.push(Condition { metric, op, value, threshold });
        }
    };
    match &t.all {
        Some(all) => {
            if t.op.is_some() || t.value.is_some() || t.metric.is_some() {
                p.add(
                    format_args!("{key}.all"),
                    "is set together with metric/op/value; use one form: either `op` and `value`, or `all = [...]`",
                );
            }
            if all.is_empty() || all.len() > MAX_CONDITIONS {
                p.add(
                    format_args!("{key}.all"),
                    format_args!("has {} conditions; use 1 to {MAX_CONDITIONS}", all.len()),
                );
            }
            for (j, c) in all.iter().enumerate().take(MAX_CONDITIONS) {
                check(c.metric, c.op, c.value, format!("{key}.all[{j}].value"), p);
            }
        }
        None => match (t.op, t.value) {
            (Some(op), Some(value)) => check(t.metric.unwrap_or_default(), op, value, format!("{key}.value"), p),
            (None, _) => p.add(
                format_args!("{key}.op"),
                "is missing; add e.g. op = \">=\" (or give the conditions as `all = [...]`)",
            ),
            (_, None) => p.add(format_args!("{key}.value"), "is missing; add the threshold, e.g. value = 0.25"),
        },
    }
    out
}
