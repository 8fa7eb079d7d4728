//! `evaluate`: is the signal any good? Replays recordings through the same
//! engine as `replay` and measures, for every alert, the signed move of the
//! mid price after it over fixed horizons, beside a baseline of every
//! evaluated update (the unconditional drift) — optionally for many threshold
//! variants in one pass ([`sweep`]).
//!
//! Stages: [`horizons`] (what "after" means) → [`outcomes`] (exact mids,
//! forward returns) → [`stats`] (mean, median, hit rate, t) → [`report`]
//! (table, JSON, CSV); [`crate::chart`] draws sweeps.

pub mod horizons;
pub mod outcomes;
pub mod report;
pub mod stats;
pub mod sweep;

use std::path::PathBuf;

use crate::alert::{Alert, EngineSink, MetricUpdate};
use crate::book::Book;
use crate::book::event::EventScratch;
use crate::config::{Config, Direction};
use crate::engine::{Engine, EngineCounters};
use crate::pairs::PairId;
use crate::recording::{Line, RecordingError, RecordingReader};
use crate::reject::RejectKind;
use crate::replay::SnapshotLines;
use crate::units::UnixNanos;
use crate::venue::Venue;

use horizons::Horizon;
use outcomes::{MidSum, Outcomes};
use stats::Summary;
use sweep::{Axis, Variant};

/// Why an evaluation did not run or stopped.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error(transparent)]
    Recording(#[from] RecordingError),
    /// A bad `--sweep` or `--horizons`: reported before any file is read.
    #[error("{0}")]
    Usage(String),
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Sorted, distinct, > 0.
    pub horizons: Vec<Horizon>,
    /// `--sweep` axes in the order given; empty: the configured triggers only.
    pub sweeps: Vec<Axis>,
}

/// A configured trigger as the report names it.
#[derive(Clone, Debug)]
pub struct TriggerInfo {
    pub name: String,
    /// `None`: "no direction", not evaluated (its alerts are counted).
    pub direction: Option<Direction>,
}

/// One statistics row: a variant's trigger on a pair, a trigger over all its
/// pairs (`pair: None`) or every trigger with a direction (`trigger: None`).
#[derive(Clone, Debug)]
pub struct ResultRow {
    pub variant: usize,
    pub trigger: Option<usize>,
    pub pair: Option<usize>,
    pub horizon: Horizon,
    pub summary: Summary,
    /// Alerts that came less than the horizon after the previous alert of
    /// the same trigger and pair: their windows overlap, their outcomes are
    /// not independent.
    pub overlapping: u64,
    /// Alerts left out of this horizon because it ran past the pair's last
    /// evaluated update.
    pub past_end: u64,
    /// Alerts on a book with one empty side: no mid, no outcome at any horizon.
    pub no_mid: u64,
}

/// The baseline of one pair at one horizon: every evaluated update with a
/// mid as if it were an "up" alert.
#[derive(Clone, Debug)]
pub struct BaselineRow {
    pub pair: usize,
    pub horizon: Horizon,
    pub summary: Summary,
    pub past_end: u64,
    pub no_mid: u64,
}

/// Everything one evaluation measured.
pub struct Evaluation {
    pub files: usize,
    pub lines: u64,
    pub malformed_lines: u64,
    /// The counters of the (first) engine: frames, evaluated updates, errors.
    pub counters: EngineCounters,
    pub horizons: Vec<Horizon>,
    pub pairs: Vec<String>,
    pub triggers: Vec<TriggerInfo>,
    pub variants: Vec<Variant>,
    /// The swept keys, in `--sweep` order; empty without a sweep.
    pub swept: Vec<&'static str>,
    pub results: Vec<ResultRow>,
    pub baseline: Vec<BaselineRow>,
    /// Alerts of triggers without a direction, at `variant * triggers + trigger`.
    pub no_direction: Vec<u64>,
    /// Engines the decoded data went through (one per distinct `top_n`).
    pub engines: usize,
}

impl Evaluation {
    /// Alerts of `trigger` (no direction) in `variant`.
    pub fn no_direction(&self, variant: usize, trigger: usize) -> u64 {
        self.no_direction.get(variant * self.triggers.len() + trigger).copied().unwrap_or(0)
    }
}

/// Evaluates `files` (in order, one read) under `config`.
///
/// All files are opened first and the sweep is validated before the first
/// frame, so a typo fails fast; a file that breaks mid-way stops the
/// evaluation with its error (numbers from part of the data are not reported).
pub fn evaluate(config: &Config, files: &[PathBuf], options: &EvalOptions) -> Result<Evaluation, EvaluateError> {
    if options.horizons.is_empty() {
        return Err(EvaluateError::Usage("--horizons: give at least one horizon, e.g. 1s".into()));
    }
    let variants = sweep::variants(&options.sweeps).map_err(EvaluateError::Usage)?;
    let groups = sweep::groups(config, &variants).map_err(EvaluateError::Usage)?;
    let mut readers = Vec::with_capacity(files.len());
    for f in files {
        readers.push(RecordingReader::open(f)?);
    }
    let triggers: Vec<TriggerInfo> = config
        .triggers
        .iter()
        .enumerate()
        .map(|(i, t)| TriggerInfo { name: t.name.clone(), direction: config.directions.get(i).copied().flatten() })
        .collect();
    let (npairs, ntriggers) = (config.pairs.len(), triggers.len());
    let slots = variants.len() * ntriggers * npairs;
    let mut outcomes = Outcomes::new(&options.horizons, npairs, slots);
    let mut no_direction = vec![0u64; variants.len() * ntriggers];
    let mut no_mid = vec![0u64; slots];
    let mut engines: Vec<Engine> = groups.iter().map(|g| Engine::new(g.engine.clone())).collect();
    // Each frame is decoded once, here; every engine takes the decoded event.
    let venue = config.stream_table();
    let diff_mode = venue.diff_kind().is_some();
    let mut decoded_book = Book::default();
    let mut scratch = EventScratch::with_capacity(if diff_mode { crate::engine::MAX_EVENT_LEVELS } else { 0 });
    let mut snapshots = SnapshotLines::new(diff_mode);
    let mut sink = EvalSink { seen: Vec::with_capacity(64), mids: false };
    let (mut lines, mut malformed) = (0u64, 0u64);

    for (reader, path) in readers.iter_mut().zip(files) {
        snapshots.next_file();
        while let Some(line) = reader.next_line()? {
            lines += 1;
            let Line::Frame { recv, json } = line else {
                malformed += 1;
                continue;
            };
            // A recording's snapshot line syncs every engine's local book (as in `replay`).
            let snapshot_for = match snapshots.read(json, path, |sym| venue.pairs().find(|&p| venue.symbol(p) == sym)) {
                Some(Some(pair)) => Some(pair),
                Some(None) => continue,
                None => None,
            };
            let decoded = match snapshot_for {
                Some(_) => Err(RejectKind::NoStream),
                None => venue.decode(json, &mut decoded_book, &mut scratch),
            };
            for (gi, (engine, group)) in engines.iter_mut().zip(&groups).enumerate() {
                // Every engine sees the same books; the first one feeds the mids.
                sink.mids = gi == 0;
                match snapshot_for {
                    Some(pair) => {
                        let book = snapshots.book();
                        engine.on_snapshot(pair, None, book.last_update_id, &book.bids, &book.asks, &mut sink);
                    }
                    None => {
                        engine.on_decoded(decoded, &decoded_book, &scratch, recv, &mut sink);
                    }
                }
                for seen in sink.seen.drain(..) {
                    match seen {
                        Seen::Mid(pair, at, mid) => outcomes.on_update(pair, at, mid),
                        Seen::Alert(a) => {
                            let Some(&(variant, trigger)) = group.members.get(a.trigger.index()) else { continue };
                            let tables = (&mut outcomes, no_direction.as_mut_slice(), no_mid.as_mut_slice());
                            on_alert(&a, (variant, trigger), &triggers, tables, npairs);
                        }
                    }
                }
            }
        }
    }
    outcomes.finish();

    let mut results = Vec::new();
    for vi in 0..variants.len() {
        results.extend(variant_rows(vi, &triggers, npairs, &options.horizons, &outcomes, &no_mid, config));
    }
    let mut baseline = Vec::new();
    for pair in 0..npairs {
        for (h, &horizon) in options.horizons.iter().enumerate() {
            let mut r = outcomes.baseline_samples(pair, h).to_vec();
            baseline.push(BaselineRow {
                pair,
                horizon,
                summary: Summary::of(&mut r),
                past_end: outcomes.baseline_past_end(pair, h),
                no_mid: outcomes.baseline_no_mid(pair),
            });
        }
    }
    Ok(Evaluation {
        files: files.len(),
        lines,
        malformed_lines: malformed,
        counters: engines.first().map(|e| e.counters().clone()).unwrap_or_default(),
        horizons: options.horizons.clone(),
        pairs: config.pairs.clone(),
        triggers,
        variants,
        swept: options.sweeps.iter().map(Axis::key).collect(),
        results,
        baseline,
        no_direction,
        engines: engines.len(),
    })
}

/// Files one alert: counted if its trigger has no direction or its book no
/// mid, otherwise started at every horizon.
/// What one engine call showed evaluate, in order: each evaluated book's
/// mid (from the engine that feeds the mids) and each alert. Kept in one
/// reused buffer, so the small variant's unused bytes cost no allocation.
#[expect(clippy::large_enum_variant, reason = "entries live in one reused Vec; boxing would allocate per alert")]
enum Seen {
    Mid(PairId, UnixNanos, Option<MidSum>),
    Alert(Alert),
}

/// The engines' sink during an evaluation.
struct EvalSink {
    seen: Vec<Seen>,
    /// Whether this engine's evaluated books feed the mids.
    mids: bool,
}

impl EngineSink for EvalSink {
    fn alert(&mut self, alert: &Alert) {
        self.seen.push(Seen::Alert(*alert));
    }

    fn metric(&mut self, update: &MetricUpdate) {
        self.seen.push(Seen::Mid(update.pair, update.recv, MidSum::of_prices(update.best_bid, update.best_ask)));
    }

    fn wants_metrics(&self) -> bool {
        self.mids
    }
}

fn on_alert(
    a: &Alert,
    (variant, trigger): (usize, usize),
    triggers: &[TriggerInfo],
    (outcomes, no_direction, no_mid): (&mut Outcomes, &mut [u64], &mut [u64]),
    npairs: usize,
) {
    let ntriggers = triggers.len();
    let Some(direction) = triggers.get(trigger).and_then(|t| t.direction) else {
        if let Some(n) = no_direction.get_mut(variant * ntriggers + trigger) {
            *n += 1;
        }
        return;
    };
    let slot = (variant * ntriggers + trigger) * npairs + a.pair.index();
    match MidSum::of_prices(a.best_bid, a.best_ask) {
        Some(start) => outcomes.on_alert(a.pair, a.recv, slot, start, direction.sign()),
        None => {
            if let Some(n) = no_mid.get_mut(slot) {
                *n += 1;
            }
        }
    }
}

/// The rows of one variant: per trigger × pair, per trigger, overall.
fn variant_rows(
    vi: usize,
    triggers: &[TriggerInfo],
    npairs: usize,
    horizons: &[Horizon],
    outcomes: &Outcomes,
    no_mid: &[u64],
    config: &Config,
) -> Vec<ResultRow> {
    let slot = |t: usize, p: usize| (vi * triggers.len() + t) * npairs + p;
    let mut rows = Vec::new();
    for (h, &horizon) in horizons.iter().enumerate() {
        let mut overall = Acc::default();
        for (t, info) in triggers.iter().enumerate() {
            if info.direction.is_none() {
                continue;
            }
            let mut per_trigger = Acc::default();
            for p in 0..npairs {
                if !config.triggers.get(t).is_some_and(|s| s.applies_to(PairId(p as u16))) {
                    continue;
                }
                let s = slot(t, p);
                let mut acc = Acc::default();
                acc.add(outcomes.alert_samples(s, h), horizon, outcomes.alert_past_end(s, h), no_mid.get(s).copied());
                rows.push(acc.row(vi, Some(t), Some(p), horizon));
                per_trigger.merge(&acc);
            }
            rows.push(per_trigger.row(vi, Some(t), None, horizon));
            overall.merge(&per_trigger);
        }
        rows.push(overall.row(vi, None, None, horizon));
    }
    rows
}

/// A growing sample of signed returns with its overlap and exclusion counts.
#[derive(Default)]
struct Acc {
    returns: Vec<f64>,
    overlapping: u64,
    past_end: u64,
    no_mid: u64,
}

impl Acc {
    fn add(&mut self, samples: &[outcomes::Sample], horizon: Horizon, past_end: u64, no_mid: Option<u64>) {
        self.returns.extend(samples.iter().map(|s| s.bps));
        self.overlapping +=
            samples.windows(2).filter(|w| w[1].start_ns.saturating_sub(w[0].start_ns) < horizon.ns).count() as u64;
        self.past_end += past_end;
        self.no_mid += no_mid.unwrap_or(0);
    }

    fn merge(&mut self, other: &Acc) {
        self.returns.extend_from_slice(&other.returns);
        self.overlapping += other.overlapping;
        self.past_end += other.past_end;
        self.no_mid += other.no_mid;
    }

    fn row(&self, variant: usize, trigger: Option<usize>, pair: Option<usize>, horizon: Horizon) -> ResultRow {
        let mut r = self.returns.clone();
        ResultRow {
            variant,
            trigger,
            pair,
            horizon,
            summary: Summary::of(&mut r),
            overlapping: self.overlapping,
            past_end: self.past_end,
            no_mid: self.no_mid,
        }
    }
}
