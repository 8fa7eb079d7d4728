//! The alert journal: one JSON object per line, appended and flushed per
//! record, so after any crash it tells exactly what was alerted.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{AlertEvent, Sink};

/// Why the journal could not be written.
#[derive(Debug, thiserror::Error)]
#[error("alert journal {path}: {source}")]
pub struct JournalError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// An append-only JSON-lines file.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Opens (creating it and its directory if needed) `path` for appending.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let err = |source| JournalError { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(err)?;
        Ok(Journal { path: path.to_path_buf(), file })
    }

    /// Appends one record (a JSON object without newline) with a single
    /// `write` so concurrent appenders never interleave within a line.
    pub fn append(&mut self, json: &str) -> Result<(), JournalError> {
        let mut line = String::with_capacity(json.len() + 1);
        line.push_str(json);
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|source| JournalError { path: self.path.clone(), source })
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The journal shared by the cold thread (alert lines) and delivery
/// workers (outcome lines). Appends are whole lines, so sharing is safe.
pub type SharedJournal = Arc<Mutex<Journal>>;

/// Appends every alert to the journal, before any network sink sees it.
pub struct JournalSink {
    journal: SharedJournal,
    /// Set while appends fail, so the error is logged once per streak.
    failing: bool,
}

impl JournalSink {
    pub fn new(journal: SharedJournal) -> Self {
        JournalSink { journal, failing: false }
    }
}

impl Sink for JournalSink {
    fn name(&self) -> &'static str {
        "journal"
    }

    fn on_alert(&mut self, event: &AlertEvent<'_>) {
        let line = event.view.journal_json(Some(event.id));
        let result = match self.journal.lock() {
            Ok(mut j) => j.append(&line),
            Err(poisoned) => poisoned.into_inner().append(&line),
        };
        match result {
            Ok(()) if self.failing => {
                self.failing = false;
                log::info!("JOURNAL | appends succeed again");
            }
            Ok(()) => {}
            Err(e) => {
                if !self.failing {
                    log::error!("JOURNAL | {e} | alerts are still logged; fix the path or disk");
                }
                self.failing = true;
                log::error!("JOURNAL | not journaled: {line}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_lines_and_creates_the_directory() {
        let dir = std::env::temp_dir().join(format!("im-journal-{}", std::process::id()));
        let path = dir.join("sub/alerts.jsonl");
        let _ = std::fs::remove_dir_all(&dir);
        let mut j = Journal::open(&path).unwrap();
        j.append(r#"{"a":1}"#).unwrap();
        drop(j);
        let mut j = Journal::open(&path).unwrap();
        j.append(r#"{"a":2}"#).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"a\":2}\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
