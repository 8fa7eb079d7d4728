//! `replay`: drives the engine from recordings, with each line's receive time
//! as the clock, so a recording decides exactly as the live run did.

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::alert::{Alert, EngineSink, MetricUpdate};
use crate::config::Config;
use crate::engine::{Engine, EngineCounters, FrameOutcome};
use crate::history::HistoryError;
use crate::history::backfill::{Backfill, BackfillReport};
use crate::recording::{Line, RecordingError, RecordingReader};
use crate::reject::RejectKind;
use crate::sinks::Catalog;
use crate::sinks::journal::{Journal, JournalError};
use crate::triggers::TriggerId;

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
    pub counters: EngineCounters,
    /// Engine time per frame, nanoseconds.
    pub frame_ns: Histogram<u64>,
    /// Wall time spent inside the engine.
    pub engine_time: Duration,
    pub alerts: Vec<Alert>,
    /// Rows written to the history database, when `[history]` is configured.
    pub history: Option<BackfillReport>,
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

    let result: Result<(), ReplayError> = (|| {
        for reader in &mut readers {
            while let Some(line) = reader.next_line()? {
                lines += 1;
                let Line::Frame { recv, json } = line else {
                    malformed += 1;
                    continue;
                };
                let start = Instant::now();
                let outcome = engine.on_frame(json, recv, &mut pending);
                let took = start.elapsed();
                engine_time += took;
                frame_ns.saturating_record(took.as_nanos().max(1) as u64);
                if let Some(h) = history.as_mut() {
                    for m in pending.metrics.drain(..) {
                        h.sample(&m, &catalog)?;
                    }
                }
                if let FrameOutcome::Evaluated { alerts: 1.., .. } = outcome {
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
        counters: engine.counters().clone(),
        frame_ns,
        engine_time,
        alerts: report_alerts,
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
