//! The app's own logger ([`imbalance_monitor::logging::init`]) at TRACE,
//! installed once per test binary and writing to one file, so the Telegram
//! tests run through the real log pipeline (target caps, redaction,
//! escaping) at its most verbose level, and can grep what it wrote.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use imbalance_monitor::logging::{self, Console, LogFile, LogGuard, Rotation};

struct Installed {
    path: PathBuf,
    _guard: LogGuard,
}

static LOGGER: OnceLock<Installed> = OnceLock::new();

/// Installs the logger (the first call in the binary) and returns its file.
pub fn install() -> &'static Path {
    let installed = LOGGER.get_or_init(|| {
        // One file per test binary under target/tmp, replaced by each run.
        let binary = std::env::current_exe().ok().and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()));
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("trace-{}.log", binary.unwrap_or_default()));
        let _ = std::fs::remove_file(&path);
        let file = LogFile { path: path.clone(), rotation: Rotation { max_bytes: None, keep_files: 1 } };
        let guard = logging::init(Some(&file), log::LevelFilter::Trace, Console::Off).expect("the app's logger");
        Installed { path, _guard: guard }
    });
    &installed.path
}

/// Every line written so far (after a flush).
pub fn lines() -> Vec<String> {
    let path = install();
    log::logger().flush();
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect()
}

/// Lines containing `needle`.
pub fn lines_containing(needle: &str) -> Vec<String> {
    lines().into_iter().filter(|l| l.contains(needle)).collect()
}

/// Waits until some line contains `needle` and returns those lines: the
/// logger writes on its own thread, so a record can land just after a flush
/// another test asked for.
pub fn wait_for(needle: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = lines_containing(needle);
        if !found.is_empty() {
            return found;
        }
        assert!(Instant::now() < deadline, "no log line contains {needle:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Lines of `text` holding 12 or more consecutive characters of `secret`:
/// a hex dump shows a request 16 bytes a row, so a whole token never stands
/// on one line, but some row carries a long piece of it.
pub fn holding_part_of<'t>(text: &'t str, secret: &str) -> Vec<&'t str> {
    let pieces: Vec<&str> =
        (0..=secret.len().saturating_sub(12)).map(|i| &secret[i..secret.len().min(i + 12)]).collect();
    text.lines().filter(|l| pieces.iter().any(|p| l.contains(p))).collect()
}
