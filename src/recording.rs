//! Recordings: `<recv_unix_ns> <raw JSON>` per line — the collector format of
//! hftbacktest and of `../shared/fixtures`, gzip-compressed when the file name
//! ends in `.gz`. Read by `replay` and the simulator.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::units::UnixNanos;

/// Why a recording could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("{path}: cannot open: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: read failed after {lines} lines (corrupt or truncated gzip?): {source}")]
    Read {
        path: PathBuf,
        lines: u64,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path}: not a recording: none of the first {checked} lines is `<recv_unix_ns> <json>` (e.g. `1723161254137307667 {{\"stream\":…}}`)"
    )]
    NotARecording { path: PathBuf, checked: u64 },
}

/// How many leading lines may be malformed before a file is judged not to be
/// a recording at all.
const SNIFF_LINES: u64 = 16;

/// A line-by-line reader over one recording file.
pub struct RecordingReader {
    path: PathBuf,
    input: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    lines: u64,
    good: u64,
    bad: u64,
}

/// One line of a recording.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A received message and its receive time.
    Frame { recv: UnixNanos, json: &'a [u8] },
    /// A line not of the form `<digits> <json>`.
    Malformed,
}

impl RecordingReader {
    /// Opens `path`, decompressing if it ends in `.gz`.
    pub fn open(path: &Path) -> Result<Self, RecordingError> {
        let file = File::open(path).map_err(|source| RecordingError::Open { path: path.to_path_buf(), source })?;
        let gz = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
        let input: Box<dyn Read + Send> =
            if gz { Box::new(flate2::read::MultiGzDecoder::new(file)) } else { Box::new(file) };
        Ok(RecordingReader {
            path: path.to_path_buf(),
            input: Box::new(BufReader::with_capacity(1 << 16, input)),
            buf: Vec::with_capacity(4096),
            lines: 0,
            good: 0,
            bad: 0,
        })
    }

    /// The next non-empty line, or `None` at the end of the file.
    pub fn next_line(&mut self) -> Result<Option<Line<'_>>, RecordingError> {
        loop {
            self.buf.clear();
            let n = self.input.read_until(b'\n', &mut self.buf).map_err(|source| RecordingError::Read {
                path: self.path.clone(),
                lines: self.lines,
                source,
            })?;
            if n == 0 {
                return if self.good == 0 && self.bad > 0 {
                    Err(RecordingError::NotARecording { path: self.path.clone(), checked: self.bad })
                } else {
                    Ok(None)
                };
            }
            self.lines += 1;
            if !self.buf.trim_ascii().is_empty() {
                break;
            }
        }
        match split_line(self.buf.trim_ascii_end()) {
            Some((recv, json)) => {
                self.good += 1;
                Ok(Some(Line::Frame { recv, json }))
            }
            None => {
                self.bad += 1;
                if self.good == 0 && self.bad >= SNIFF_LINES {
                    return Err(RecordingError::NotARecording { path: self.path.clone(), checked: self.bad });
                }
                Ok(Some(Line::Malformed))
            }
        }
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Splits `<digits> <rest>`; `None` if the line does not start with a
/// timestamp followed by a space and something.
pub fn split_line(line: &[u8]) -> Option<(UnixNanos, &[u8])> {
    let space = line.iter().position(|&b| b == b' ')?;
    let (digits, rest) = line.split_at(space);
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut ns: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        ns = ns.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    let json = rest.get(1..)?.trim_ascii();
    if json.is_empty() { None } else { Some((UnixNanos(ns), json)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_into_time_and_json() {
        assert_eq!(
            split_line(b"1723161254137307667 {\"a\":1}"),
            Some((UnixNanos(1_723_161_254_137_307_667), &b"{\"a\":1}"[..]))
        );
        assert_eq!(split_line(b"{\"lastUpdateId\":1}"), None);
        assert_eq!(split_line(b"12x {}"), None);
        assert_eq!(split_line(b"12 "), None);
        assert_eq!(split_line(b"99999999999999999999 {}"), None);
    }
}
