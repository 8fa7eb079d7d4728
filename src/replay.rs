//! `replay`: drives the engine from recordings, with each line's receive time
//! as the clock, so a recording decides exactly as the live run did.

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::alert::Alert;
use crate::config::Config;
use crate::engine::{Engine, EngineCounters, FrameOutcome};
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
}

/// Replays `files` in order through a fresh engine built from `config`,
/// printing each alert's TRIGGER line to `out` and appending it to `journal`.
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
    let mut engine = Engine::new(config.engine_config());
    let mut frame_ns =
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("static histogram bounds are valid");
    let mut report_alerts: Vec<Alert> = Vec::new();
    let mut lines = 0u64;
    let mut malformed = 0u64;
    let mut engine_time = Duration::ZERO;
    let mut journal = journal;
    let mut pending: Vec<Alert> = Vec::with_capacity(16);

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
                if let FrameOutcome::Evaluated { alerts: 1.., .. } = outcome {
                    for a in pending.drain(..) {
                        let view = catalog.view(&a);
                        writeln!(out, "{}", view.log_line())?;
                        if let Some(j) = journal.as_deref_mut() {
                            j.append(&view.journal_json(None))?;
                        }
                        report_alerts.push(a);
                    }
                }
            }
        }
        Ok(())
    })();
    Ok(ReplayReport {
        failure: result.err(),
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
