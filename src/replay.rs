//! `replay`: drives the engine from recordings, with each line's receive time
//! as the clock, so a recording decides exactly as the live run did.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::alert::{Alert, EngineSink, MetricUpdate};
use crate::config::Config;
use crate::engine::{Engine, EngineCounters, FrameOutcome};
use crate::history::HistoryError;
use crate::history::backfill::{Backfill, BackfillReport};
use crate::pairs::PairId;
use crate::recording::{Line, RecordingError, RecordingReader};
use crate::reject::RejectKind;
use crate::sinks::Catalog;
use crate::sinks::journal::{Journal, JournalError};
use crate::triggers::TriggerId;
use crate::venue::binance_spot::collector::{is_snapshot_line, snapshot_symbol, stream_symbol};
use crate::venue::binance_spot::snapshot::{SnapshotBook, parse_snapshot};

/// Lines a file's symbol is looked for in (its streams name it), for bare
/// snapshot lines that name none.
const SYMBOL_SCAN_LINES: usize = 100_000;

/// The bare REST snapshot lines of collector recordings, for engines that
/// keep local books: which pair each belongs to, and its levels. `replay`
/// and `evaluate` read them this one way.
pub(crate) struct SnapshotLines {
    diff_mode: bool,
    book: SnapshotBook,
    /// The current file's symbol, once looked up.
    file: Option<Option<String>>,
}

impl SnapshotLines {
    /// Snapshot lines count only for local books (`diff_mode`).
    pub(crate) fn new(diff_mode: bool) -> Self {
        SnapshotLines { diff_mode, book: SnapshotBook::with_capacity(if diff_mode { 5000 } else { 0 }), file: None }
    }

    /// A new file begins: its symbol is looked up afresh when needed.
    pub(crate) fn next_file(&mut self) {
        self.file = None;
    }

    /// For a snapshot line of `path`: `Some(Some(pair))` with
    /// [`SnapshotLines::book`] holding it, `Some(None)` for one that names
    /// no configured pair or does not parse; `None` for any other line.
    /// The line's own `"symbol"` names its pair, else the file's symbol.
    pub(crate) fn read(
        &mut self,
        json: &[u8],
        path: &Path,
        pair_of: impl Fn(&str) -> Option<PairId>,
    ) -> Option<Option<PairId>> {
        if !self.diff_mode || !is_snapshot_line(json) {
            return None;
        }
        let symbol = match snapshot_symbol(json) {
            Some(s) => Some(s.to_string()),
            None => self.file.get_or_insert_with(|| file_symbol(path)).clone(),
        };
        let pair = symbol.and_then(|s| pair_of(&s));
        Some(pair.filter(|_| parse_snapshot(json, &mut self.book).is_ok()))
    }

    /// The snapshot [`SnapshotLines::read`] last parsed.
    pub(crate) fn book(&self) -> &SnapshotBook {
        &self.book
    }
}

/// The symbol a collector file is about: the first stream its lines name.
fn file_symbol(path: &Path) -> Option<String> {
    let mut reader = RecordingReader::open(path).ok()?;
    for _ in 0..SYMBOL_SCAN_LINES {
        match reader.next_line().ok()?? {
            Line::Frame { json, .. } => {
                if let Some(sym) = stream_symbol(json) {
                    return Some(sym);
                }
            }
            Line::Malformed => {}
        }
    }
    None
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Recording(#[from] RecordingError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("writing output: {0}")]
    Output(#[from] io::Error),
    #[error(transparent)]
    History(#[from] HistoryError),
}

/// The engine's sink during a replay: alerts, and metric updates when the
/// history stores samples.
struct Collected {
    alerts: Vec<Alert>,
    metrics: Vec<MetricUpdate>,
    wants_metrics: bool,
}

impl EngineSink for Collected {
    fn alert(&mut self, alert: &Alert) {
        self.alerts.push(*alert);
    }

    fn metric(&mut self, update: &MetricUpdate) {
        self.metrics.push(*update);
    }

    fn wants_metrics(&self) -> bool {
        self.wants_metrics
    }
}

/// What a replay did.
pub struct ReplayReport {
    /// Why the replay stopped before the end of its files, if it did; the
    /// rest of the report covers the frames processed until then.
    pub failure: Option<ReplayError>,
    pub files: usize,
    pub lines: u64,
    pub malformed_lines: u64,
    /// Bare REST snapshot lines read (diff mode), and those the local book
    /// was set from.
    pub snapshot_lines: u64,
    pub snapshots_applied: u64,
    pub counters: EngineCounters,
    /// Engine time per frame, nanoseconds.
    pub frame_ns: Histogram<u64>,
    /// Wall time spent inside the engine.
    pub engine_time: Duration,
    pub alerts: Vec<Alert>,
    /// Rows written to the history database, when `[history]` is configured.
    pub history: Option<BackfillReport>,
    /// The local books' counters (diff mode).
    pub local: Option<crate::book::local::LocalCounters>,
}

/// Replays `files` in order through a fresh engine built from `config`,
/// printing each alert's TRIGGER line to `out` and appending it to `journal`
/// and, with `[history]` configured, storing the samples and alerts there.
///
/// Files are all opened before the first frame, so a missing file fails fast
/// with `Err`. A file that breaks mid-way (corrupt gzip) stops the replay and
/// is reported in [`ReplayReport::failure`], beside the frames processed.
pub fn replay(
    config: &Config,
    files: &[PathBuf],
    journal: Option<&mut Journal>,
    out: &mut impl Write,
) -> Result<ReplayReport, ReplayError> {
    let mut readers = Vec::with_capacity(files.len());
    for f in files {
        readers.push(RecordingReader::open(f)?);
    }
    let catalog = Catalog::from_config(config);
    let mut history = match &config.history {
        Some(h) => Some(Backfill::open(h, config.pairs.len())?),
        None => None,
    };
    let mut engine = Engine::new(config.engine_config());
    let mut frame_ns =
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("static histogram bounds are valid");
    let mut report_alerts: Vec<Alert> = Vec::new();
    let mut lines = 0u64;
    let mut malformed = 0u64;
    let mut engine_time = Duration::ZERO;
    let mut journal = journal;
    let mut pending =
        Collected { alerts: Vec::with_capacity(16), metrics: Vec::with_capacity(4), wants_metrics: history.is_some() };
    let mut snapshot_reader = SnapshotLines::new(engine.local_books().is_some());
    let (mut snapshot_lines, mut snapshots_applied) = (0u64, 0u64);

    let result: Result<(), ReplayError> = (|| {
        for (reader, path) in readers.iter_mut().zip(files) {
            snapshot_reader.next_file();
            while let Some(line) = reader.next_line()? {
                lines += 1;
                let Line::Frame { recv, json } = line else {
                    malformed += 1;
                    continue;
                };
                let start = Instant::now();
                let pair_of = |sym: &str| catalog.pairs().find(|&p| catalog.symbol(p) == sym);
                let outcome = if let Some(pair) = snapshot_reader.read(json, path, pair_of) {
                    // Synced from the recording's snapshots with the live code:
                    // the events held so far follow it, each as of its own time.
                    snapshot_lines += 1;
                    if let Some(pair) = pair {
                        let book = snapshot_reader.book();
                        let o =
                            engine.on_snapshot(pair, None, book.last_update_id, &book.bids, &book.asks, &mut pending);
                        if o.step == crate::book::local::SnapshotStep::Applied {
                            snapshots_applied += 1;
                        }
                    }
                    None
                } else {
                    Some(engine.on_frame(json, recv, &mut pending))
                };
                let took = start.elapsed();
                engine_time += took;
                frame_ns.saturating_record(took.as_nanos().max(1) as u64);
                if let Some(h) = history.as_mut() {
                    for m in pending.metrics.drain(..) {
                        h.sample(&m, &catalog)?;
                    }
                }
                if outcome.is_none() || matches!(outcome, Some(FrameOutcome::Evaluated { alerts: 1.., .. })) {
                    for a in pending.alerts.drain(..) {
                        let view = catalog.view(&a);
                        writeln!(out, "{}", view.log_line())?;
                        if let Some(j) = journal.as_deref_mut() {
                            j.append(&view.journal_json(None))?;
                        }
                        if let Some(h) = history.as_mut() {
                            h.alert(&view)?;
                        }
                        report_alerts.push(a);
                    }
                }
            }
        }
        Ok(())
    })();
    // What was processed is stored even when a file broke mid-way.
    let (history, history_failure) = match history.map(|h| h.finish(&catalog)) {
        None => (None, None),
        Some(Ok(r)) => (Some(r), None),
        Some(Err(e)) => (None, Some(ReplayError::History(e))),
    };
    Ok(ReplayReport {
        failure: result.err().or(history_failure),
        history,
        files: files.len(),
        lines,
        malformed_lines: malformed,
        snapshot_lines,
        snapshots_applied,
        counters: engine.counters().clone(),
        frame_ns,
        engine_time,
        alerts: report_alerts,
        local: engine.local_books().map(|l| *l.counters()),
    })
}

impl ReplayReport {
    /// The end-of-replay summary a person reads.
    pub fn write_summary(&self, catalog: &Catalog, out: &mut impl Write) -> io::Result<()> {
        let c = &self.counters;
        let skipped = c.errors[RejectKind::UnknownStream.index()] + c.errors[RejectKind::NoStream.index()];
        let errors = c.rejected() - skipped;
        let secs = self.engine_time.as_secs_f64();
        let fps = if secs > 0.0 { c.frames as f64 / secs } else { 0.0 };
        writeln!(out, "== replay summary ==")?;
        writeln!(out, "files: {} | lines: {} | malformed lines: {}", self.files, self.lines, self.malformed_lines)?;
        writeln!(
            out,
            "frames: {} | evaluated: {} | crossed: {} | empty: {} | overflow: {} | server_shutdown: {} | replies: {} | skipped (not a configured stream): {} | errors: {}",
            c.frames, c.evaluated, c.crossed, c.empty, c.overflow, c.server_shutdowns, c.replies, skipped, errors
        )?;
        for e in RejectKind::ALL {
            let n = c.errors[e.index()];
            if n > 0 {
                writeln!(out, "  {:<22} {n}", e.name())?;
            }
        }
        for pair in catalog.pairs() {
            let n = c.frames_by_pair.get(pair.index()).copied().unwrap_or(0);
            writeln!(out, "  frames {:<14} {n}", catalog.symbol(pair))?;
        }
        if let Some(l) = &self.local {
            writeln!(
                out,
                "local book: snapshot lines: {} (applied {}) | buffered: {} | stale: {} | gaps: {} | resyncs: {} | buffer overflows: {} | touches: {} (stale {}) | levels dropped: {}",
                self.snapshot_lines,
                self.snapshots_applied,
                l.buffered,
                l.stale_events,
                l.gaps,
                l.resyncs,
                l.buffer_overflows,
                l.touches,
                l.stale_touches,
                l.levels_dropped
            )?;
        }
        writeln!(out, "alerts: {}", self.alerts.len())?;
        if let Some(h) = &self.history {
            writeln!(out, "history: {} sample(s), {} alert(s) stored", h.samples, h.alerts)?;
        }
        for (t, spec) in catalog.triggers.iter().enumerate() {
            for pair in catalog.pairs() {
                let n = c.alerts_for(TriggerId(t as u16), pair);
                if n > 0 {
                    writeln!(out, "  {:<28} {:<14} {n}", spec.name, catalog.symbol(pair))?;
                }
            }
        }
        let h = &self.frame_ns;
        writeln!(
            out,
            "engine time per frame: p50={}ns p99={}ns p99.9={}ns max={}ns | {:.0} frames/s",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max(),
            fps
        )
    }
}
