//! Logging with ftlog: formatting and writing happen on ftlog's own thread,
//! so a log call costs the caller a queue push.
//!
//! Lines look like the seed tracker's:
//! `2026-11-22 03:41:07.123 INFO  | METRIC | pair=SOLUSDT | imbalance_ratio=0.285928 | …`
//! (UTC). They go to the console and to a file rotated at UTC midnight and
//! by size, keeping `log.keep_files` rotated files. The file writer is our
//! own rather than ftlog's `FileAppender`, whose rotation panics the logger
//! thread when the log directory has vanished (ftlog#24): ours recreates the
//! directory, and if the file still cannot be written it says so once on
//! stderr and keeps logging to the console, retrying the file.
//!
//! Three layers keep the bot token (and forged lines) out of every output,
//! whatever crate logs and at whatever level:
//!
//! 1. **Target caps** ([`HTTP_CLIENT_CAPS`]): records of the HTTP client
//!    crates are dropped above DEBUG, and the logger's `enabled` answers per
//!    target. The second half matters: ureq prints a request's path only
//!    when `log_enabled!(Trace)` holds for its own module, and ftlog's
//!    logger answers that from the global level alone, so at `-vv` ureq's
//!    DEBUG records carried `/bot<token>/…`, and ureq_proto's TRACE hex
//!    dumps carry the request bytes 16 at a time, where no text search can
//!    find the token.
//! 2. **Redaction** on the writer thread: every registered secret
//!    ([`crate::sanitize::register_secret`]; a bot token registers itself)
//!    becomes `<redacted>` in every record.
//! 3. **Escaping** on the writer thread: control characters in a record
//!    become visible escapes ([`crate::sanitize::escape_controls`]), so a
//!    record is one line and no text a server sent reaches the terminal raw.
//!
//! Layers 2 and 3 run when ftlog's thread writes the line, off every thread
//! that logs.

use std::fmt::Display;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::append_file::AppendFile;

use log::{LevelFilter, Log, Metadata, Record};

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
    _private: (),
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        log::logger().flush();
    }
}

/// Where console lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Console {
    Stdout,
    Stderr,
    Off,
}

/// When the log file is rotated besides UTC midnight, and how many rotated
/// files are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate before a line would make the file larger than this; `None`
    /// rotates at midnight only.
    pub max_bytes: Option<u64>,
    /// Rotated files kept beside the active one; older ones are deleted.
    pub keep_files: usize,
}

impl Rotation {
    /// `log.max_size_mb = 100`, `log.keep_files = 14`: two weeks of daily
    /// files when the log is quiet, and at most 15 × 100 MiB however chatty.
    pub const DEFAULT: Rotation = Rotation { max_bytes: Some(100 << 20), keep_files: 14 };
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation::DEFAULT
    }
}

/// The log file and its rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFile {
    pub path: PathBuf,
    pub rotation: Rotation,
}

/// Records of these crates are capped at these levels (layer 1 above):
/// ureq logs request paths (`/bot<token>/sendMessage`) at TRACE, and
/// ureq_proto hex-dumps the bytes sent at TRACE. At DEBUG, with `enabled`
/// answering per target, both print the path as `/******`.
pub const HTTP_CLIENT_CAPS: [(&str, LevelFilter); 2] =
    [("ureq", LevelFilter::Debug), ("ureq_proto", LevelFilter::Debug)];

/// The most verbose level a record of `target` may have, given the
/// configured `level`: `target` is a crate in [`HTTP_CLIENT_CAPS`] or one
/// of its modules (`ureq::unversioned::transport`).
pub fn level_for(target: &str, level: LevelFilter) -> LevelFilter {
    let cap = HTTP_CLIENT_CAPS
        .iter()
        .find(|(krate, _)| target.strip_prefix(krate).is_some_and(|rest| rest.is_empty() || rest.starts_with("::")));
    cap.map_or(level, |&(_, cap)| cap.min(level))
}

/// Installs the global logger: console plus, when given, the rotated `file`.
pub fn init(file: Option<&LogFile>, level: LevelFilter, console: Console) -> Result<LogGuard, LogError> {
    let writer = LineWriter { console, file: file.map(RotatingFile::open).transpose()? };
    let logger = ftlog::builder()
        .utc()
        .time_format(time_format())
        .format(SeedFormat)
        .max_log_level(level)
        .root_log_level(level)
        .bounded(100_000, false)
        .print_omitted_count(true)
        .root(writer)
        .build()
        .map_err(|e| LogError::Init(e.to_string()))?;
    log::set_boxed_logger(Box::new(Gate { inner: logger, level, flushing: std::sync::Mutex::new(()) }))
        .map_err(|e| LogError::Init(e.to_string()))?;
    log::set_max_level(level);
    Ok(LogGuard { _private: () })
}

/// ftlog's logger behind a per-target `enabled` (see [`level_for`]), with
/// one flush at a time: ftlog's writer thread, draining its queue for one
/// flush request, discards a second request it finds there, and that
/// flusher would wait for its answer forever (seen as a test hung in
/// `flush` while another test flushed; in a run, a panic hook flushing
/// beside another could hang the same way).
struct Gate {
    inner: ftlog::Logger,
    level: LevelFilter,
    flushing: std::sync::Mutex<()>,
}

impl Log for Gate {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= level_for(metadata.target(), self.level)
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            self.inner.log(record);
        }
    }

    fn flush(&self) {
        let _one_at_a_time = self.flushing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.inner.flush();
    }
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
        Box::new(SafeMessage(format!("{:<5} | {}", record.level(), record.args())))
    }
}

/// A formatted record whose `Display` (run on ftlog's thread when the line
/// is written) redacts registered secrets and escapes control characters:
/// layers 2 and 3 of the module docs.
struct SafeMessage(String);

impl Display for SafeMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::sanitize::escape_controls(&crate::sanitize::redact_secrets(&self.0)))
    }
}

/// Writes each finished line to the console and the file, removing the
/// `<delay>ms` column ftlog inserts after the time.
struct LineWriter {
    console: Console,
    file: Option<RotatingFile>,
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

/// The log file: rotated at UTC midnight to `<stem>-YYYYMMDD.<ext>`, and
/// before a line would take it past `max_bytes` to the next free name of
/// its day (`<stem>-YYYYMMDD.<ext>`, then `<stem>-YYYYMMDD.1.<ext>`, `.2`,
/// …); after each rotation only the newest `keep_files` rotated files stay.
struct RotatingFile {
    path: PathBuf,
    rotation: Rotation,
    file: Option<AppendFile>,
    /// The UTC day the open file's lines belong to.
    day: u64,
    /// Bytes in the open file.
    size: u64,
    failing_since: Option<Instant>,
}

/// How often a failing log file is retried.
const RETRY_EVERY: Duration = Duration::from_secs(5);

impl RotatingFile {
    fn open(log: &LogFile) -> Result<RotatingFile, LogError> {
        let path = log.path.as_path();
        let err = |source| LogError::File { path: path.to_path_buf(), source };
        let mut file = AppendFile::open(path).map_err(err)?;
        let meta = file.file().metadata().ok();
        let day = (meta.as_ref())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or_else(today, |d| d.as_secs() / 86_400);
        let size = meta.map_or(0, |m| m.len());
        let f = RotatingFile {
            path: path.to_path_buf(),
            rotation: log.rotation,
            file: Some(file),
            day,
            size,
            failing_since: None,
        };
        // A lowered keep_files takes effect at start, not at the next rotation.
        f.prune();
        Ok(f)
    }

    fn write_line(&mut self, head: &[u8], tail: &[u8]) {
        let day = today();
        if day != self.day {
            self.rotate(day);
        }
        // An open handle to a deleted or moved file (directory removed,
        // logrotate without copytruncate) accepts writes that nobody will
        // ever read: check the path still names the open file before each
        // line (one stat, cold side).
        if self.file.as_ref().is_some_and(AppendFile::is_replaced) {
            self.file = None;
            self.failing_since = None;
        }
        if self.file.is_none() && self.failing_since.is_none_or(|t| t.elapsed() >= RETRY_EVERY) {
            self.reopen();
        }
        let len = (head.len() + tail.len()) as u64;
        if let Some(max) = self.rotation.max_bytes
            && self.file.is_some()
            && self.size > 0
            && self.size.saturating_add(len) > max
        {
            self.rotate(day);
        }
        let Some(file) = &mut self.file else { return };
        let file = file.file();
        match file.write_all(head).and_then(|()| file.write_all(tail)) {
            Ok(()) => self.size = self.size.saturating_add(len),
            Err(e) => {
                // The directory or file vanished (or the disk is full): recreate
                // and retry once, then fall back to console-only with a notice.
                self.file = None;
                self.reopen();
                let retried = self
                    .file
                    .as_mut()
                    .map(AppendFile::file)
                    .map(|f| f.write_all(head).and_then(|()| f.write_all(tail)));
                match retried {
                    Some(Ok(())) => self.size = self.size.saturating_add(len),
                    _ => self.fail(&e),
                }
            }
        }
    }

    /// Moves the open file aside under its day's next free name, starts a
    /// new one for `day`, and deletes rotated files beyond `keep_files`.
    fn rotate(&mut self, day: u64) {
        self.file = None;
        let _ = std::fs::rename(&self.path, free_rotated_name(&self.path, self.day));
        self.day = day;
        self.reopen();
        self.prune();
    }

    fn reopen(&mut self) {
        match AppendFile::open(&self.path) {
            Ok(mut f) => {
                if self.failing_since.take().is_some() {
                    eprintln!("log file {} is writable again", self.path.display());
                }
                self.size = f.file().metadata().map_or(0, |m| m.len());
                self.file = Some(f);
            }
            Err(e) => self.fail(&e),
        }
    }

    /// Deletes the oldest rotated files of this log until `keep_files` remain.
    fn prune(&self) {
        let mut rotated = rotated_files(&self.path);
        if rotated.len() <= self.rotation.keep_files {
            return;
        }
        rotated.sort();
        let excess = rotated.len() - self.rotation.keep_files;
        for (_, old) in rotated.into_iter().take(excess) {
            if let Err(e) = std::fs::remove_file(&old) {
                eprintln!("cannot delete the old log file {} (log.keep_files): {e}", old.display());
            }
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
            let _ = f.file().flush();
        }
    }
}

fn today() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400)
}

/// The stem and extension rotated names are built from.
fn stem_and_ext(path: &Path) -> (String, Option<String>) {
    let stem = path.file_stem().map_or_else(|| "log".into(), |s| s.to_string_lossy().into_owned());
    (stem, path.extension().map(|e| e.to_string_lossy().into_owned()))
}

/// Day 20049 → `20241122`.
fn day_stamp(day: u64) -> String {
    let stamp = crate::units::UnixNanos(day.saturating_mul(86_400).saturating_mul(1_000_000_000)).to_string();
    stamp.chars().take(10).filter(char::is_ascii_digit).collect()
}

/// `logs/imbalance-monitor.log`, day 20049 → `logs/imbalance-monitor-20241122.log`
/// (`n = 0`) or `logs/imbalance-monitor-20241122.<n>.log`.
fn rotated_name(path: &Path, day: u64, n: u64) -> PathBuf {
    let (stem, ext) = stem_and_ext(path);
    let date = day_stamp(day);
    let counter = if n == 0 { String::new() } else { format!(".{n}") };
    let name = match ext {
        Some(ext) => format!("{stem}-{date}{counter}.{ext}"),
        None => format!("{stem}-{date}{counter}"),
    };
    path.with_file_name(name)
}

/// The directory `path` is in.
fn dir_of(path: &Path) -> PathBuf {
    path.parent().filter(|d| !d.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `path`'s rotated files: (YYYYMMDD, counter) and path, in no order.
fn rotated_files(path: &Path) -> Vec<((u64, u64), PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir_of(path)) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| rotation_order(path, e.file_name().to_str()?).map(|order| (order, e.path())))
        .collect()
}

/// Day `day`'s next rotated name: one past the highest counter its files
/// have, so names keep their order even after older ones were deleted.
fn free_rotated_name(path: &Path, day: u64) -> PathBuf {
    let date: u64 = day_stamp(day).parse().unwrap_or(0);
    let next = rotated_files(path).iter().filter(|((d, _), _)| *d == date).map(|((_, n), _)| n + 1).max();
    rotated_name(path, day, next.unwrap_or(0))
}

/// Where `name` (a file beside `path`) stands among `path`'s rotated files,
/// oldest first: (YYYYMMDD, counter); `None` for any other file.
fn rotation_order(path: &Path, name: &str) -> Option<(u64, u64)> {
    let (stem, ext) = stem_and_ext(path);
    let rest = name.strip_prefix(stem.as_str())?.strip_prefix('-')?;
    let rest = match &ext {
        Some(ext) => rest.strip_suffix(ext.as_str())?.strip_suffix('.')?,
        None => rest,
    };
    let (date, counter) = match rest.split_once('.') {
        Some((date, n)) => (date, n),
        None => (rest, "0"),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if date.len() != 8 || !digits(date) || !digits(counter) {
        return None;
    }
    Some((date.parse().ok()?, counter.parse().ok()?))
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
    fn rotated_files_are_named_by_their_utc_day_and_counter() {
        let path = Path::new("logs/imbalance-monitor.log");
        assert_eq!(rotated_name(path, 20_049, 0), PathBuf::from("logs/imbalance-monitor-20241122.log"));
        assert_eq!(rotated_name(path, 20_049, 3), PathBuf::from("logs/imbalance-monitor-20241122.3.log"));
        assert_eq!(rotation_order(path, "imbalance-monitor-20241122.log"), Some((20_241_122, 0)));
        assert_eq!(rotation_order(path, "imbalance-monitor-20241122.3.log"), Some((20_241_122, 3)));
        for other in ["imbalance-monitor.log", "imbalance-monitor-2024112.log", "imbalance-monitor-20241122.x.log"] {
            assert_eq!(rotation_order(path, other), None, "{other}");
        }
        assert_eq!(rotation_order(path, "other-20241122.log"), None);
        assert_eq!(rotation_order(Path::new("x/run"), "run-20241122.2"), Some((20_241_122, 2)));
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("im-log-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn open(path: &Path, rotation: Rotation) -> RotatingFile {
        RotatingFile::open(&LogFile { path: path.to_path_buf(), rotation }).unwrap()
    }

    #[test]
    fn a_vanished_log_directory_is_recreated() {
        let dir = scratch("vanish");
        let path = dir.join("a/b.log");
        let mut f = open(&path, Rotation::DEFAULT);
        f.write_line(b"one", b"\n");
        std::fs::remove_dir_all(&dir).unwrap();
        f.write_line(b"two", b"\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_log_moved_away_and_replaced_by_a_new_file_is_written_to_the_new_one() {
        // logrotate's default `create`: rename the file, create an empty one.
        let dir = scratch("moved");
        let path = dir.join("im.log");
        let mut f = open(&path, Rotation::DEFAULT);
        f.write_line(b"one", b"\n");
        std::fs::rename(&path, dir.join("im.log.1")).unwrap();
        std::fs::write(&path, "").unwrap();
        f.write_line(b"two", b"\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(std::fs::read_to_string(dir.join("im.log.1")).unwrap(), "one\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_log_rotates_by_size_and_keeps_only_the_newest_files() {
        let dir = scratch("size");
        let path = dir.join("im.log");
        // 100-byte lines, at most 350 bytes a file: three lines each.
        let mut f = open(&path, Rotation { max_bytes: Some(350), keep_files: 2 });
        let line = |i: usize| format!("{i:0>99}");
        for i in 0..20 {
            f.write_line(line(i).as_bytes(), b"\n");
        }
        let mut names: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        let day = rotated_name(&path, today(), 0).file_name().unwrap().to_str().unwrap().replace(".log", "");
        // Rotations 0 (unnumbered) to 5 happened; the newest two are kept.
        assert_eq!(names, [format!("{day}.4.log"), format!("{day}.5.log"), "im.log".to_string()]);
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(read(&names[0]), (12..15).map(|i| line(i) + "\n").collect::<String>());
        assert_eq!(read(&names[1]), (15..18).map(|i| line(i) + "\n").collect::<String>());
        assert_eq!(read("im.log"), (18..20).map(|i| line(i) + "\n").collect::<String>());
        for name in &names {
            assert!(std::fs::metadata(dir.join(name)).unwrap().len() <= 350, "{name}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_restart_continues_the_days_numbering_and_applies_a_lower_keep_files() {
        let dir = scratch("restart");
        let path = dir.join("im.log");
        let rotation = Rotation { max_bytes: Some(150), keep_files: 5 };
        let mut f = open(&path, rotation);
        for i in 0..4 {
            f.write_line(format!("first run {i:0>89}").as_bytes(), b"\n");
        }
        drop(f);
        // Three rotated files now (the day's unnumbered one, .1 and .2).
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 4);
        let mut f = open(&path, Rotation { keep_files: 1, ..rotation });
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2, "keep_files = 1 applies at start");
        f.write_line(format!("second run {:0>88}", 0).as_bytes(), b"\n");
        let rotated = rotated_name(&path, today(), 3);
        assert!(std::fs::read_to_string(&rotated).unwrap().ends_with("3\n"), "numbering continues at .3");
        assert!(std::fs::read_to_string(&path).unwrap().starts_with("second run"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_line_longer_than_the_limit_gets_a_file_of_its_own() {
        let dir = scratch("long");
        let path = dir.join("im.log");
        let mut f = open(&path, Rotation { max_bytes: Some(10), keep_files: 3 });
        f.write_line(b"short", b"\n");
        f.write_line(&[b'x'; 50], b"\n");
        f.write_line(b"after", b"\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn http_client_targets_are_capped_at_debug_and_only_they() {
        use LevelFilter::{Debug, Info, Trace};
        for target in ["ureq", "ureq::util", "ureq::unversioned::transport::tcp", "ureq_proto", "ureq_proto::util"] {
            assert_eq!(level_for(target, Trace), Debug, "{target}");
            assert_eq!(level_for(target, Info), Info, "{target}");
        }
        for target in ["imbalance_monitor::sinks::telegram", "rustls::client", "ureqx", "tungstenite"] {
            assert_eq!(level_for(target, Trace), Trace, "{target}");
        }
    }

    #[test]
    fn a_written_record_has_no_secret_and_no_raw_control_character() {
        crate::sanitize::register_secret("4711:logging-test-secret-xyz");
        let line = SafeMessage("WARN  | GET /bot4711:logging-test-secret-xyz/getMe said \"a\nb\x1b[31m\"".into());
        assert_eq!(line.to_string(), "WARN  | GET /bot<redacted>/getMe said \"a\\nb\\u{1b}[31m\"");
    }
}
