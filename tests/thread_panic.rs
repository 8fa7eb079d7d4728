//! A panic on the hot or the cold thread (a bug) ends the run at once with
//! exit status 1, and the log says which thread panicked, where and why.
//!
//! How the panic is forced, since the crate has no code path for it (and
//! must not): this test binary is its own child process. The child installs
//! a logger that panics when the chosen thread logs the chosen line, as a
//! faulty logger or any bug under a log call would; starts the pipeline with
//! `Runner::start`; and returns `cli::run_exit_code(&runner.wait())` from
//! `main`, which is what the binary's `run` does after parsing its
//! arguments and opening its log. The parent checks the child's exit status
//! and its log. Nobody stops the child: ending on its own is the point.
//! `harness = false` (Cargo.toml), so the child can return its exit code.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use imbalance_monitor::cli::run_exit_code;
use imbalance_monitor::config::Config;
use imbalance_monitor::run::{RunOptions, Runner};
use support::live::scratch;

/// Set in the child: `thread|line prefix` that makes the logger panic.
const CHILD: &str = "IM_THREAD_PANIC_CHILD";
/// The child must end on its own within this; it takes about a second.
const PATIENCE: Duration = Duration::from_secs(60);

/// Writes every record of the crate to stderr as `LEVEL thread | message`;
/// panics once, on the thread named `thread`, at a record starting with `prefix`.
struct PanickyLogger {
    thread: String,
    prefix: String,
    fired: AtomicBool,
}

impl log::Log for PanickyLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target().starts_with("imbalance_monitor") && metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let thread = std::thread::current().name().unwrap_or("?").to_string();
        let text = format!("{} {thread} | {}", record.level(), record.args());
        eprintln!("{text}");
        let chosen = thread == self.thread && record.args().to_string().starts_with(&self.prefix);
        if chosen && !self.fired.swap(true, Ordering::SeqCst) {
            panic!("injected: the logger failed while the {thread} thread logged {text:?}");
        }
    }

    fn flush(&self) {}
}

fn child(spec: &str) -> ExitCode {
    let (thread, prefix) = spec.split_once('|').expect("thread|prefix");
    let logger = PanickyLogger { thread: thread.into(), prefix: prefix.into(), fired: AtomicBool::new(false) };
    log::set_boxed_logger(Box::new(logger)).expect("the only logger");
    log::set_max_level(log::LevelFilter::Info);
    // A port nobody listens on: every connect attempt is refused at once.
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let dir = scratch(&format!("thread-panic-{thread}"));
    let text = format!(
        "pairs = [\"BTCUSDT\"]\n[binance]\nws_url = \"ws://{refused}/stream\"\n[alerts]\njournal = {:?}\n[runtime]\nstats_interval_sec = 1\n",
        dir.join("alerts.jsonl")
    );
    let config = Config::from_toml(&dir.join("config.toml"), &text).unwrap();
    let runner = Runner::start(&config, RunOptions::default()).unwrap();
    run_exit_code(&runner.wait())
}

/// Runs the child with a panic on `thread` at its first record starting
/// with `prefix`; returns its exit code and what it logged.
fn run_child(thread: &str, prefix: &str) -> (Option<i32>, Vec<String>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, format!("{thread}|{prefix}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > PATIENCE {
            let _ = child.kill();
            let _ = child.wait();
            let lines: Vec<String> = rx.try_iter().collect();
            panic!("the process did not end after its {thread} thread panicked; it logged:\n{}", lines.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The reader ends at the child's EOF.
    let lines: Vec<String> = rx.iter().collect();
    (status.code(), lines)
}

fn a_panicking_thread_ends_the_process_with_status_1_and_is_logged(thread: &str, prefix: &str) {
    let (code, lines) = run_child(thread, prefix);
    let log = lines.join("\n");
    assert_eq!(code, Some(1), "{thread}: exit status; it logged:\n{log}");
    let panic_line = format!("ERROR {thread} | PANIC | thread {thread} panicked at tests/thread_panic.rs:");
    assert!(
        lines.iter().any(|l| l.starts_with(&panic_line) && l.contains("injected: the logger failed")),
        "{thread}: no {panic_line:?} line in:\n{log}"
    );
    assert!(
        lines.iter().any(|l| l.contains(&format!("stopping with exit status 1: the {thread} thread panicked"))),
        "{thread}: no exit line in:\n{log}"
    );
}

fn main() -> ExitCode {
    if let Ok(spec) = std::env::var(CHILD) {
        return child(&spec);
    }
    // The hot thread logs a refused connect attempt first thing; the cold
    // thread logs statistics every second.
    for (thread, prefix) in [("hot", "FEED | connect attempt failed"), ("cold", "STATS | ")] {
        print!("test a_panicking_{thread}_thread_ends_the_process_with_status_1_and_is_logged ... ");
        a_panicking_thread_ends_the_process_with_status_1_and_is_logged(thread, prefix);
        println!("ok");
    }
    ExitCode::SUCCESS
}
