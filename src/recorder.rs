//! `run --record`: every received message written as `<recv_unix_ns> <raw
//! JSON>` lines — the fixture and hftbacktest collector format — so a live
//! run replays with `imbalance-monitor replay` into the same alerts.
//!
//! Bytes leave the hot thread through a fixed pool of preallocated buffers:
//! the hot side appends frames to its current buffer (a copy, no allocation)
//! and hands full buffers to a writer thread, which formats, compresses and
//! returns them. If the writer falls behind and no free buffer is left, the
//! frame is dropped and counted; the hot loop never waits.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

/// Bytes per buffer; a frame larger than this (minus its 12-byte header) is
/// counted as dropped. Partial-depth frames are 0.4–1.4 KiB.
const SLOT_BYTES: usize = 64 * 1024;
/// Buffers in the pool: 64 MiB of room before frames are dropped.
const SLOTS: usize = 1024;
/// A partly filled buffer is handed over at least this often, so the file
/// stays current on a quiet feed.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// Where and how to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordConfig {
    pub path: PathBuf,
    /// Start a new file after this many (uncompressed) bytes.
    pub rotate_bytes: Option<u64>,
}

impl RecordConfig {
    fn gzip(&self) -> bool {
        self.path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"))
    }
}

/// Why recording could not start.
#[derive(Debug, thiserror::Error)]
#[error("--record {path}: cannot create the recording: {source}")]
pub struct RecordError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// What the writer did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordReport {
    pub frames: u64,
    pub bytes: u64,
    /// Files completed by rotation (the last file is not counted).
    pub rotations: u64,
}

/// The hot side: appends frames, never blocks.
pub struct RecordProducer {
    current: Option<Vec<u8>>,
    full: Sender<Vec<u8>>,
    free: Receiver<Vec<u8>>,
    dropped: u64,
    last_handover: Instant,
}

/// Starts the writer thread and returns the hot-side producer.
pub fn start(config: RecordConfig) -> Result<(RecordProducer, JoinHandle<RecordReport>), RecordError> {
    let path = config.path.clone();
    let err = |source| RecordError { path: path.clone(), source };
    if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let sink = Output::create(&config).map_err(err)?;
    let (full_tx, full_rx) = crossbeam_channel::bounded(SLOTS);
    let (free_tx, free_rx) = crossbeam_channel::bounded(SLOTS);
    for _ in 0..SLOTS - 1 {
        let _ = free_tx.try_send(Vec::with_capacity(SLOT_BYTES));
    }
    let writer = std::thread::Builder::new()
        .name("recorder".into())
        .spawn(move || write_loop(config, sink, &full_rx, &free_tx))
        .map_err(err)?;
    let producer = RecordProducer {
        current: Some(Vec::with_capacity(SLOT_BYTES)),
        full: full_tx,
        free: free_rx,
        dropped: 0,
        last_handover: Instant::now(),
    };
    Ok((producer, writer))
}

impl RecordProducer {
    /// Appends one received message.
    #[inline]
    pub fn push(&mut self, recv_ns: u64, frame: &[u8]) {
        let need = 12 + frame.len();
        if need > SLOT_BYTES {
            self.dropped += 1;
            return;
        }
        if self.current.as_ref().is_some_and(|b| b.len() + need > SLOT_BYTES) {
            self.hand_over();
        }
        if self.current.is_none() {
            self.current = self.free.try_recv().ok();
        }
        let Some(buf) = &mut self.current else {
            self.dropped += 1;
            return;
        };
        buf.extend_from_slice(&recv_ns.to_le_bytes());
        buf.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        buf.extend_from_slice(frame);
    }

    /// Appends one message too large for a buffer (a REST snapshot line of
    /// thousands of levels) in a buffer of its own. Rare, so allocating
    /// here is fine; it is never on a per-frame path.
    pub fn push_large(&mut self, recv_ns: u64, frame: &[u8]) {
        self.hand_over();
        let mut buf = Vec::with_capacity(12 + frame.len());
        buf.extend_from_slice(&recv_ns.to_le_bytes());
        buf.extend_from_slice(&(u32::try_from(frame.len()).unwrap_or(u32::MAX)).to_le_bytes());
        buf.extend_from_slice(frame);
        if self.full.try_send(buf).is_err() {
            self.dropped += 1;
        }
    }

    /// Hands a partly filled buffer over if it has waited long enough.
    #[inline]
    pub fn tick(&mut self, now: Instant) {
        if now.duration_since(self.last_handover) >= FLUSH_EVERY {
            self.hand_over();
            self.last_handover = now;
        }
    }

    /// Frames dropped so far (writer behind, or oversize).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn hand_over(&mut self) {
        if self.current.as_ref().is_some_and(|b| !b.is_empty())
            && let Some(buf) = self.current.take()
        {
            // The channel can hold every buffer, so it is never full.
            let _ = self.full.try_send(buf);
        }
    }
}

impl Drop for RecordProducer {
    /// The last partial buffer goes to the writer, which finishes the file
    /// once the producer is gone.
    fn drop(&mut self) {
        self.hand_over();
    }
}

/// The file being written, plain or gzip.
enum Output {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
}

impl Output {
    fn create(config: &RecordConfig) -> io::Result<Output> {
        let file = BufWriter::with_capacity(1 << 16, File::create(&config.path)?);
        Ok(if config.gzip() {
            Output::Gzip(flate2::write::GzEncoder::new(file, flate2::Compression::fast()))
        } else {
            Output::Plain(file)
        })
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Output::Plain(w) => w,
            Output::Gzip(w) => w,
        }
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Output::Plain(mut w) => w.flush(),
            Output::Gzip(w) => w.finish()?.flush(),
        }
    }
}

/// `rec.txt.gz`, 3 → `rec-0003.txt.gz`.
fn rotated_path(path: &Path, n: u64) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (stem, rest) = name.split_once('.').map_or((name.as_str(), String::new()), |(s, r)| (s, format!(".{r}")));
    path.with_file_name(format!("{stem}-{n:04}{rest}"))
}

fn write_loop(config: RecordConfig, out: Output, full: &Receiver<Vec<u8>>, free: &Sender<Vec<u8>>) -> RecordReport {
    let mut out = Some(out);
    let mut report = RecordReport::default();
    let mut in_file: u64 = 0;
    let mut line = Vec::with_capacity(4096);
    let mut failed = false;
    loop {
        let mut buf = match full.try_recv() {
            Ok(buf) => buf,
            Err(TryRecvError::Empty) => {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            Err(TryRecvError::Disconnected) => break,
        };
        let mut rest: &[u8] = &buf;
        while let Some((header, tail)) = rest.split_first_chunk::<12>() {
            let (ns, len) = header.split_at(8);
            let ns = u64::from_le_bytes(ns.try_into().unwrap_or_default());
            let len = u32::from_le_bytes(len.try_into().unwrap_or_default()) as usize;
            let Some((frame, after)) = tail.split_at_checked(len) else { break };
            rest = after;
            line.clear();
            let _ = write!(line, "{ns} ");
            line.extend_from_slice(frame);
            line.push(b'\n');
            let Some(o) = &mut out else { break };
            if let Err(e) = o.writer().write_all(&line) {
                if !failed {
                    log::error!("RECORD | writing {} failed: {e}; frames are being lost", config.path.display());
                }
                failed = true;
                continue;
            }
            report.frames += 1;
            report.bytes += line.len() as u64;
            in_file += line.len() as u64;
        }
        buf.clear();
        let _ = free.try_send(buf);
        if config.rotate_bytes.is_some_and(|max| in_file >= max) {
            report.rotations += 1;
            let rotated = rotated_path(&config.path, report.rotations);
            let result = out
                .take()
                .map_or(Ok(()), Output::finish)
                .and_then(|()| std::fs::rename(&config.path, &rotated))
                .and_then(|()| Output::create(&config));
            match result {
                Ok(next) => {
                    out = Some(next);
                    in_file = 0;
                    log::info!("RECORD | rotated to {}", rotated.display());
                }
                Err(e) => {
                    log::error!("RECORD | rotation of {} failed: {e}; recording stops", config.path.display());
                    return report;
                }
            }
        }
    }
    if let Some(Err(e)) = out.map(Output::finish) {
        log::error!("RECORD | finishing {} failed: {e}", config.path.display());
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("im-rec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn frames_are_written_in_the_fixture_format() {
        let d = dir("plain");
        let path = d.join("rec.txt");
        let (mut p, writer) = start(RecordConfig { path: path.clone(), rotate_bytes: None }).unwrap();
        p.push(1_723_161_254_137_307_667, br#"{"stream":"a","data":{}}"#);
        p.push(2, b"{}");
        drop(p);
        let report = writer.join().unwrap();
        assert_eq!(report.frames, 2);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "1723161254137307667 {\"stream\":\"a\",\"data\":{}}\n2 {}\n"
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn gzip_recordings_rotate_by_size_and_read_back() {
        let d = dir("gz");
        let path = d.join("rec.txt.gz");
        let (mut p, writer) = start(RecordConfig { path: path.clone(), rotate_bytes: Some(40_000) }).unwrap();
        let frame = vec![b'x'; 1000];
        for i in 0..200u64 {
            p.push(i, &frame);
        }
        drop(p);
        let report = writer.join().unwrap();
        assert_eq!(report.frames, 200);
        assert!(report.rotations >= 1, "{report:?}");
        let mut lines = 0;
        for n in 1..=report.rotations {
            let mut r = crate::recording::RecordingReader::open(&rotated_path(&path, n)).unwrap();
            while r.next_line().unwrap().is_some() {
                lines += 1;
            }
        }
        let mut r = crate::recording::RecordingReader::open(&path).unwrap();
        while r.next_line().unwrap().is_some() {
            lines += 1;
        }
        assert_eq!(lines, 200);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn rotated_names_keep_every_extension() {
        assert_eq!(rotated_path(Path::new("/r/rec.txt.gz"), 3), PathBuf::from("/r/rec-0003.txt.gz"));
        assert_eq!(rotated_path(Path::new("rec"), 12), PathBuf::from("rec-0012"));
    }
}
