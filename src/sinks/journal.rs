//! The alert journal: one JSON object per line, appended per record, so
//! after any crash it tells exactly what was alerted.
//!
//! What holds, and why each piece is here:
//! * **A line is on disk whole or not at all.** A write cut short (a full
//!   disk accepts part of a line, then `ENOSPC`) is truncated back to the
//!   last whole line. If even that fails, the fragment stays, is counted and
//!   logged, and the next append starts with a newline, so it is never glued
//!   onto the next record.
//! * **Nothing is lost while the disk is full.** A line that could not be
//!   written waits in a bounded queue in memory ([`BACKLOG_LINES`]) and is
//!   appended, in order, before any later line once writes succeed again;
//!   only when the queue is full is a line dropped (counted and logged whole).
//! * **A deleted or renamed journal is reopened.** Before each append the
//!   path is compared with the open file (one `stat`, see [`AppendFile`]);
//!   after `rm alerts.jsonl` the next alert creates a new file there.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{AlertEvent, Sink};
use crate::append_file::AppendFile;

/// Lines that may wait in memory while the journal cannot be written (a
/// journal line is ~500 bytes: about 5 MB at most).
pub const BACKLOG_LINES: usize = 10_000;

/// Why the journal could not be written.
#[derive(Debug, thiserror::Error)]
#[error("alert journal {path}: {source}")]
pub struct JournalError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// The file operations the journal needs, so tests can inject a disk that
/// fails mid-line. [`AppendFile`] is the real one.
pub trait JournalFile: Send {
    /// One `write(2)` at the end of the file; may write only part of `buf`.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// The file's length in bytes.
    fn size(&mut self) -> io::Result<u64>;
    /// Cuts the file back to `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// Whether the file ends inside a line (its last byte is not `\n`).
    fn ends_inside_a_line(&mut self) -> io::Result<bool>;
    /// If the path no longer names the open file, opens a new one there and
    /// returns `true`. An error means the path cannot be written now.
    fn follow_path(&mut self) -> io::Result<bool>;
}

impl JournalFile for AppendFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::Write::write(self.file(), buf)
    }

    fn size(&mut self) -> io::Result<u64> {
        Ok(self.file().metadata()?.len())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file().set_len(len)
    }

    fn ends_inside_a_line(&mut self) -> io::Result<bool> {
        Ok(self.last_byte()?.is_some_and(|b| b != b'\n'))
    }

    fn follow_path(&mut self) -> io::Result<bool> {
        if !self.is_replaced() {
            return Ok(false);
        }
        self.reopen()?;
        Ok(true)
    }
}

/// What became of one appended line.
#[derive(Debug)]
pub enum Appended {
    /// On disk, after the `backlog` lines that had been waiting.
    Written { backlog: usize },
    /// Not written (`error`); it waits in memory, `waiting` lines in all.
    Queued { waiting: usize, error: JournalError },
}

/// Journal totals since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JournalCounters {
    /// Lines on disk.
    pub written: u64,
    /// Writes that failed (each rolled back, or its fragment counted).
    pub failed_writes: u64,
    /// Lines that had to wait in memory.
    pub queued: u64,
    /// Lines lost because the memory queue was full.
    pub dropped: u64,
    /// Partial lines left in the file that could not be cut away; each is
    /// ended by a newline before the next line.
    pub fragments: u64,
    /// Times the path was found deleted or replaced and opened anew.
    pub reopened: u64,
}

/// An append-only JSON-lines file (see the module docs for what holds).
#[derive(Debug)]
pub struct Journal<F: JournalFile = AppendFile> {
    path: PathBuf,
    file: F,
    /// The file ends inside a line: the next write starts with a newline.
    torn: bool,
    backlog: VecDeque<String>,
    backlog_capacity: usize,
    /// A write failed and not everything since has reached the disk (only
    /// with a backlog: without one the caller reports each failure).
    failing: bool,
    counters: JournalCounters,
    buf: Vec<u8>,
}

impl Journal {
    /// Opens (creating it and its directory if needed) `path` for appending.
    /// No backlog: every failed append is returned (what `replay` wants);
    /// a live run adds one with [`Journal::with_backlog`].
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let file = AppendFile::open(path).map_err(|source| JournalError { path: path.to_path_buf(), source })?;
        Ok(Journal::with_file(path, file))
    }
}

impl<F: JournalFile> Journal<F> {
    /// A journal over `file`, known to users as `path`.
    pub fn with_file(path: &Path, file: F) -> Journal<F> {
        let mut j = Journal {
            path: path.to_path_buf(),
            file,
            torn: false,
            backlog: VecDeque::new(),
            backlog_capacity: 0,
            failing: false,
            counters: JournalCounters::default(),
            buf: Vec::with_capacity(1024),
        };
        j.check_torn_end();
        j
    }

    /// Lets up to `capacity` lines wait in memory while writes fail; they are
    /// written in order before any later line. Failures are then logged
    /// here, once per streak, and `append` fails only when the queue is full.
    pub fn with_backlog(mut self, capacity: usize) -> Self {
        self.backlog_capacity = capacity;
        self.backlog = VecDeque::with_capacity(capacity.min(64));
        self
    }

    /// Appends one record (a JSON object without newline): the pending
    /// backlog first, then this line, each with a single write so concurrent
    /// appenders never interleave within a line. `Err` means the line is
    /// lost: no backlog, or the backlog is full.
    pub fn append(&mut self, json: &str) -> Result<Appended, JournalError> {
        let backlog = self.backlog.len();
        if let Err(e) = self.follow_path().and_then(|()| self.write_backlog()) {
            return self.keep(json, e);
        }
        match self.write_line(json.as_bytes()) {
            Ok(()) => {
                if self.failing {
                    self.failing = false;
                    log::info!(
                        "JOURNAL | appends succeed again | {backlog} waiting lines written | {}",
                        self.path.display()
                    );
                }
                Ok(Appended::Written { backlog })
            }
            Err(e) => self.keep(json, e),
        }
    }

    /// Writes what waits in memory, if the file takes it now (called
    /// periodically, so a backlog does not wait for the next alert).
    pub fn retry_backlog(&mut self) {
        if self.backlog.is_empty() {
            return;
        }
        let waiting = self.backlog.len();
        if self.follow_path().and_then(|()| self.write_backlog()).is_ok() {
            self.failing = false;
            log::info!("JOURNAL | appends succeed again | {waiting} waiting lines written | {}", self.path.display());
        }
    }

    /// Lines waiting in memory.
    pub fn waiting(&self) -> usize {
        self.backlog.len()
    }

    /// Totals so far.
    pub fn counters(&self) -> JournalCounters {
        self.counters
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn follow_path(&mut self) -> io::Result<()> {
        if self.file.follow_path()? {
            self.counters.reopened += 1;
            log::warn!(
                "JOURNAL | {} was deleted or moved; appending to a new file there from now on",
                self.path.display()
            );
            self.check_torn_end();
        }
        Ok(())
    }

    fn write_backlog(&mut self) -> io::Result<()> {
        while let Some(line) = self.backlog.pop_front() {
            if let Err(e) = self.write_line(line.as_bytes()) {
                self.backlog.push_front(line);
                return Err(e);
            }
        }
        Ok(())
    }

    /// One whole line or nothing: a partial write is cut back to where the
    /// file ended before it.
    fn write_line(&mut self, json: &[u8]) -> io::Result<()> {
        let before = self.file.size()?;
        self.buf.clear();
        if self.torn {
            self.buf.push(b'\n');
        }
        self.buf.extend_from_slice(json);
        self.buf.push(b'\n');
        let result = write_all(&mut self.file, &self.buf);
        match result {
            Ok(()) => {
                self.torn = false;
                self.counters.written += 1;
                Ok(())
            }
            Err(e) => {
                self.counters.failed_writes += 1;
                self.roll_back(before);
                Err(e)
            }
        }
    }

    fn roll_back(&mut self, to: u64) {
        if self.file.size().is_ok_and(|now| now == to) {
            return;
        }
        if let Err(e) = self.file.truncate(to) {
            let now = self.file.size().unwrap_or(u64::MAX);
            if now != to {
                self.torn = true;
                self.counters.fragments += 1;
                log::error!(
                    "JOURNAL | a partial line at byte {to} of {} could not be cut away ({e}); \
                     the next line starts on a new line",
                    self.path.display()
                );
            }
        }
    }

    /// A file that ends inside a line (a crash in mid-write, a fragment that
    /// could not be cut) gets a newline before the next record.
    fn check_torn_end(&mut self) {
        if self.file.ends_inside_a_line().unwrap_or(false) {
            self.torn = true;
            self.counters.fragments += 1;
            log::warn!("JOURNAL | {} ends inside a line; the next record starts on a new line", self.path.display());
        }
    }

    /// Keeps a line that could not be written, or reports it lost.
    fn keep(&mut self, json: &str, source: io::Error) -> Result<Appended, JournalError> {
        let error = JournalError { path: self.path.clone(), source };
        if self.backlog_capacity == 0 {
            return Err(error);
        }
        if !self.failing {
            log::error!(
                "JOURNAL | {error} | lines wait in memory (up to {}) and are appended in order once writes \
                 succeed; alerts are still logged; fix the path or disk",
                self.backlog_capacity
            );
        }
        self.failing = true;
        if self.backlog.len() >= self.backlog_capacity {
            self.counters.dropped += 1;
            log::error!("JOURNAL | not journaled, the memory queue is full ({} lines): {json}", self.backlog_capacity);
            return Err(error);
        }
        self.backlog.push_back(json.to_owned());
        self.counters.queued += 1;
        let waiting = self.backlog.len();
        log::warn!("JOURNAL | not journaled yet, waiting in memory ({waiting}): {json}");
        Ok(Appended::Queued { waiting, error })
    }
}

/// `write_all` over single writes, so a short write is seen as one.
fn write_all(file: &mut impl JournalFile, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match file.write(buf) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "the file took no bytes")),
            Ok(n) => buf = buf.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The journal shared by the cold thread (alert lines) and delivery
/// workers (outcome lines). Appends are whole lines and share one backlog,
/// so sharing is safe and keeps their order.
pub type SharedJournal = Arc<Mutex<Journal>>;

/// Appends every alert to the journal, before any network sink sees it.
/// The journal itself logs failures, waiting lines and recovery.
pub struct JournalSink {
    journal: SharedJournal,
}

impl JournalSink {
    pub fn new(journal: SharedJournal) -> Self {
        JournalSink { journal }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Journal) -> T) -> T {
        match self.journal.lock() {
            Ok(mut j) => f(&mut j),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}

impl Sink for JournalSink {
    fn name(&self) -> &'static str {
        "journal"
    }

    fn on_alert(&mut self, event: &AlertEvent<'_>) {
        let line = event.view.journal_json(Some(event.id));
        // A lost line was logged whole by the journal.
        let _ = self.with(|j| j.append(&line));
    }

    fn on_stats(&mut self, _report: &crate::stats::report::StatsReport) {
        self.with(Journal::retry_backlog);
    }

    fn shutdown(&mut self, _deadline: std::time::Instant) {
        self.with(|j| {
            j.retry_backlog();
            let c = j.counters();
            if c.failed_writes > 0 || c.fragments > 0 || c.reopened > 0 {
                log::info!(
                    "JOURNAL | totals | written={} failed_writes={} queued={} dropped={} fragments={} reopened={} \
                     still_waiting={}",
                    c.written,
                    c.failed_writes,
                    c.queued,
                    c.dropped,
                    c.fragments,
                    c.reopened,
                    j.waiting()
                );
            }
            if j.waiting() > 0 {
                log::error!(
                    "JOURNAL | {} lines never reached {} (each was logged above as waiting)",
                    j.waiting(),
                    j.path().display()
                );
            }
        });
    }
}

#[cfg(test)]
mod tests;
