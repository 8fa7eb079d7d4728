//! Logging with ftlog: formatting and writing happen on ftlog's own thread,
//! so a log call costs the caller a queue push.
//!
//! Lines look like the seed tracker's:
//! `2026-11-22 03:41:07.123 INFO  | METRIC | pair=SOLUSDT | imbalance_ratio=0.285928 | …`
//! (UTC). They go to the console and to a daily-rotated file. The file writer
//! is our own rather than ftlog's `FileAppender`, whose rotation panics the
//! logger thread when the log directory has vanished (ftlog#24): ours
//! recreates the directory, and if the file still cannot be written it says
//! so once on stderr and keeps logging to the console, retrying the file.

use std::fmt::Display;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{LevelFilter, Record};

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log.file {path}: cannot create the log directory or file: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the logger: {0}")]
    Init(String),
}

/// Keeps the logger alive; dropping it flushes everything logged so far.
pub struct LogGuard {
    _guard: ftlog::LoggerGuard,
}

/// Where console lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Console {
    Stdout,
    Stderr,
    Off,
}

/// Installs the global logger: console plus, when given, the daily-rotated `file`.
pub fn init(file: Option<&Path>, level: LevelFilter, console: Console) -> Result<LogGuard, LogError> {
    let writer = LineWriter { console, file: file.map(DailyFile::open).transpose()? };
    let mut builder = ftlog::builder()
        .utc()
        .time_format(time_format())
        .format(SeedFormat)
        .max_log_level(level)
        .root_log_level(level)
        .bounded(100_000, false)
        .print_omitted_count(true)
        .root(writer);
    // ureq logs request paths (which hold the bot token) at TRACE: cap it.
    for (target, cap) in crate::sinks::telegram::LOG_LEVEL_CAPS {
        builder = builder.filter(target, None, cap.min(level));
    }
    let guard = builder.try_init().map_err(|e| LogError::Init(e.to_string()))?;
    Ok(LogGuard { _guard: guard })
}

fn time_format() -> time::format_description::OwnedFormatItem {
    // A constant, valid description; parse cannot fail.
    time::format_description::parse_owned::<2>("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]")
        .unwrap_or_else(|_| time::format_description::OwnedFormatItem::Compound(Box::new([])))
}

/// `INFO  | <message>`: ftlog prepends the time.
struct SeedFormat;

impl ftlog::FtLogFormat for SeedFormat {
    fn msg(&self, record: &Record) -> Box<dyn Send + Sync + Display> {
        Box::new(format!("{:<5} | {}", record.level(), record.args()))
    }
}

/// Writes each finished line to the console and the file, removing the
/// `<delay>ms` column ftlog inserts after the time.
struct LineWriter {
    console: Console,
    file: Option<DailyFile>,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (head, tail) = split_delay(buf);
        match self.console {
            Console::Stdout => {
                let mut out = io::stdout().lock();
                let _ = out.write_all(head).and_then(|()| out.write_all(tail));
            }
            Console::Stderr => {
                let mut out = io::stderr().lock();
                let _ = out.write_all(head).and_then(|()| out.write_all(tail));
            }
            Console::Off => {}
        }
        if let Some(f) = &mut self.file {
            f.write_line(head, tail);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.console == Console::Stdout {
            let _ = io::stdout().flush();
        }
        if let Some(f) = &mut self.file {
            f.flush();
        }
        Ok(())
    }
}

/// Splits `2026-11-22 03:41:07.123 0ms INFO …` around the delay column into
/// `2026-11-22 03:41:07.123` and ` INFO …`; other lines pass whole.
fn split_delay(line: &[u8]) -> (&[u8], &[u8]) {
    let mut spaces = line.iter().enumerate().filter(|&(_, &b)| b == b' ').map(|(i, _)| i);
    if let (Some(_), Some(second), Some(third)) = (spaces.next(), spaces.next(), spaces.next())
        && let Some(token) = line.get(second + 1..third)
        && let Some(digits) = token.strip_suffix(b"ms")
        && !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
    {
        return (line.get(..second).unwrap_or(line), line.get(third..).unwrap_or(&[]));
    }
    (line, &[])
}

/// A log file rotated at UTC midnight to `<stem>-YYYYMMDD.<ext>`.
struct DailyFile {
    path: PathBuf,
    file: Option<File>,
    day: u64,
    failing_since: Option<Instant>,
}

/// How often a failing log file is retried.
const RETRY_EVERY: Duration = Duration::from_secs(5);

impl DailyFile {
    fn open(path: &Path) -> Result<DailyFile, LogError> {
        let err = |source| LogError::File { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(err)?;
        let day = file
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or_else(today, |d| d.as_secs() / 86_400);
        Ok(DailyFile { path: path.to_path_buf(), file: Some(file), day, failing_since: None })
    }

    fn write_line(&mut self, head: &[u8], tail: &[u8]) {
        let day = today();
        if day != self.day {
            self.rotate(day);
        }
        // An open handle to a deleted file (directory removed, logrotate
        // without copytruncate) accepts writes that nobody will ever read:
        // check the path still exists before each line (one stat, cold side).
        if self.file.is_some() && !self.path.exists() {
            self.file = None;
            self.failing_since = None;
        }
        if self.file.is_none() && self.failing_since.is_none_or(|t| t.elapsed() >= RETRY_EVERY) {
            self.reopen();
        }
        let Some(file) = &mut self.file else { return };
        if let Err(e) = file.write_all(head).and_then(|()| file.write_all(tail)) {
            // The directory or file vanished (or the disk is full): recreate
            // and retry once, then fall back to console-only with a notice.
            self.file = None;
            self.reopen();
            let retried = self.file.as_mut().map(|f| f.write_all(head).and_then(|()| f.write_all(tail)));
            if !matches!(retried, Some(Ok(()))) {
                self.fail(&e);
            }
        }
    }

    fn rotate(&mut self, day: u64) {
        self.file = None;
        let rotated = rotated_name(&self.path, self.day);
        let _ = std::fs::rename(&self.path, rotated);
        self.day = day;
        self.reopen();
    }

    fn reopen(&mut self) {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        match OpenOptions::new().create(true).append(true).open(&self.path) {
            Ok(f) => {
                if self.failing_since.take().is_some() {
                    eprintln!("log file {} is writable again", self.path.display());
                }
                self.file = Some(f);
            }
            Err(e) => self.fail(&e),
        }
    }

    fn fail(&mut self, e: &io::Error) {
        if self.failing_since.is_none() {
            eprintln!(
                "log file {} cannot be written ({e}); logging to the console only and retrying every {} s",
                self.path.display(),
                RETRY_EVERY.as_secs()
            );
        }
        self.failing_since = Some(Instant::now());
        self.file = None;
    }

    fn flush(&mut self) {
        if let Some(f) = &mut self.file {
            let _ = f.flush();
        }
    }
}

fn today() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400)
}

/// `logs/imbalance-monitor.log`, day 20049 → `logs/imbalance-monitor-20241122.log`.
fn rotated_name(path: &Path, day: u64) -> PathBuf {
    let stamp = crate::units::UnixNanos(day.saturating_mul(86_400).saturating_mul(1_000_000_000)).to_string();
    let date: String = stamp.chars().take(10).filter(char::is_ascii_digit).collect();
    let stem = path.file_stem().map_or_else(|| "log".into(), |s| s.to_string_lossy().into_owned());
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{date}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{date}"),
    };
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_column_is_removed() {
        let (h, t) = split_delay(b"2026-11-22 03:41:07.123 0ms INFO  | METRIC | x\n");
        assert_eq!([h, t].concat(), b"2026-11-22 03:41:07.123 INFO  | METRIC | x\n");
        let (h, t) = split_delay(b"2026-11-22 03:41:07.123 12ms WARN  | y\n");
        assert_eq!([h, t].concat(), b"2026-11-22 03:41:07.123 WARN  | y\n");
        let (h, t) = split_delay(b"no delay column here\n");
        assert_eq!((h, t), (&b"no delay column here\n"[..], &b""[..]));
    }

    #[test]
    fn rotated_files_are_named_by_their_utc_day() {
        assert_eq!(
            rotated_name(Path::new("logs/imbalance-monitor.log"), 20_049),
            PathBuf::from("logs/imbalance-monitor-20241122.log")
        );
    }

    #[test]
    fn a_vanished_log_directory_is_recreated() {
        let dir = std::env::temp_dir().join(format!("im-log-{}", std::process::id()));
        let path = dir.join("a/b.log");
        let mut f = DailyFile::open(&path).unwrap();
        f.write_line(b"one", b"\n");
        std::fs::remove_dir_all(&dir).unwrap();
        f.write_line(b"two", b"\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
