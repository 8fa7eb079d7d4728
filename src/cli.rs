//! The command line: argument definitions and the dispatch to each command.
//!
//! Exit codes: 0 success; 1 a runtime failure (unreadable recording, journal
//! not writable…); 2 a usage or config error, reported before anything
//! connects or writes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Parser, Subcommand};

use crate::config::{self, Config};
use crate::demo;
use crate::evaluate::{self, EvalOptions, EvaluateError};
use crate::logging::{self, Console};
use crate::plot::{self, PlotError, PlotOptions, Window};
use crate::recorder::RecordConfig;
use crate::replay::replay;
use crate::run::{RunOptions, RunReport, Runner};
use crate::simulator::{self, Rate, SimOptions, SnapshotStatus};
use crate::sinks::Catalog;
use crate::sinks::journal::Journal;
use crate::sinks::telegram;
use crate::units::UnixNanos;
use crate::watch::client::Endpoint;
use crate::watch::input::View;
use crate::watch::terminal;

const EXAMPLES: &str = "Examples:
  imbalance-monitor                          watch the pairs in config/config.toml live
  imbalance-monitor check-config -c my.toml  validate a config and print it with every default
  imbalance-monitor replay rec.txt.gz        replay a recording into alerts
  imbalance-monitor evaluate rec.txt.gz      did the alerts come before the moves they point to?
  imbalance-monitor history --pair SOLUSDT   print stored samples back ([history] in the config)

Exit codes: 0 success; 1 runtime failure; 2 usage or config error.
Environment: IMBALANCE_MONITOR_CONFIG (config file), TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_ID,
IMBALANCE_THRESHOLD, IMBALANCE_MONITOR_PG_PASSWORD; a .env file beside the config is read too (the real environment wins).";

/// Exit code for a usage or config error.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for a runtime failure.
pub const EXIT_FAILURE: u8 = 1;

/// Watches Binance Spot order books and alerts when buyers or sellers dominate.
#[derive(Debug, Parser)]
#[command(name = "imbalance-monitor", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArg,
    /// More log output (-v debug, -vv trace); overrides `log.level`.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Less log output (-q warnings and errors, -qq errors only).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub quiet: u8,
    /// The command; `run` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch the configured pairs live and alert (the default command).
    #[command(
        after_help = "Examples:\n  imbalance-monitor run -c config/config.toml\n  imbalance-monitor run --record rec/live.txt.gz --record-rotate-mb 512 --hdr-log latency.hlog"
    )]
    Run(RunArgs),
    /// Serve Binance's stream protocol on loopback from recordings or a synthetic book (tests, demos, benchmarks).
    #[command(
        after_help = "Examples:\n  imbalance-monitor simulate --listen 127.0.0.1:9443 --tls --replay tests/fixtures/btcusdt_depth10_100ms_20240808-09.txt.gz --rate 1000 --loop\n  imbalance-monitor simulate --synthetic --shutdown-after 500\nThe first stdout line is `listening ws[s]://127.0.0.1:PORT [ca=PATH]`."
    )]
    Simulate(SimulateArgs),
    /// Run the simulator over TLS with a bundled real recording and the live pipeline against it (no network needed).
    #[command(after_help = "Example:\n  imbalance-monitor demo --rate 100")]
    Demo(DemoArgs),
    /// Send one test message to every configured Telegram chat; exit 1 if any fails.
    #[command(
        after_help = "Example:\n  TELEGRAM_BOT_TOKEN=123:abc TELEGRAM_CHAT_ID=-1001234 imbalance-monitor telegram-test"
    )]
    TelegramTest,
    /// Validate the config and print the effective configuration (secrets redacted).
    #[command(after_help = "Example:\n  imbalance-monitor check-config -c config/config.toml")]
    CheckConfig,
    /// Chart recordings: per pair the mid price and the triggers' metrics, thresholds and alerts (PNG or SVG).
    #[command(
        after_help = "Example:\n  imbalance-monitor plot -c config/config.toml tests/fixtures/btcusdt_depth10_100ms_20240808-09.txt.gz -o chart.png --from 2024-08-08T23:55:00Z --to 2024-08-09T00:00:00Z\nMarkers: ▲ a buy-side alert (>, >=), ▼ a sell-side one (<, <=), at the alert's value."
    )]
    Plot(PlotArgs),
    /// A live terminal dashboard of a running `run`, through its `[metrics_http]` endpoint.
    #[command(
        after_help = "Example:\n  imbalance-monitor watch --url http://127.0.0.1:9184\nKeys: q quit (exit 0), s sort (config, ratio, |ratio|, staleness), p pause."
    )]
    Watch(WatchArgs),
    /// Replay recordings (`<recv_unix_ns> <json>` lines, .gz by extension) through the engine.
    #[command(
        after_help = "Example:\n  imbalance-monitor replay -c config/config.toml --journal /tmp/alerts.jsonl btcusdt_depth10.txt.gz"
    )]
    Replay(ReplayArgs),
    /// Measure the mid's move after every alert (signed by the trigger's direction) against a baseline; sweep thresholds in one pass.
    #[command(
        after_help = "Examples:\n  imbalance-monitor evaluate -c config/config.toml rec.txt.gz\n  imbalance-monitor evaluate --horizons 1s,5s,30s --sweep value=0.1:0.6:0.05 --plot sweep.png --json eval.json rec.txt.gz\nExit status 2 for a bad config, horizon, sweep or plot path (before any file is read); 1 if a recording cannot be read."
    )]
    Evaluate(EvaluateArgs),
    /// Print samples, alerts or delivery outcomes back from the history database (`[history]`).
    #[command(
        after_help = "Examples:\n  imbalance-monitor history --pair SOLUSDT --from 2024-08-08T14:00:00Z --to 2024-08-08T15:00:00Z\n  imbalance-monitor history --alerts --from 2024-08-08T14:00:00Z --csv > alerts.csv\nTimes: RFC 3339 or unix nanoseconds; --from is inclusive, --to exclusive."
    )]
    History(HistoryArgs),
}

/// `history` arguments.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this pair (samples and alerts).
    #[arg(long, value_name = "PAIR")]
    pub pair: Option<String>,
    /// Rows at or after this time.
    #[arg(long, value_name = "TIME", value_parser = crate::history::query::parse_time)]
    pub from: Option<i64>,
    /// Rows before this time.
    #[arg(long, value_name = "TIME", value_parser = crate::history::query::parse_time)]
    pub to: Option<i64>,
    /// Print alerts instead of samples.
    #[arg(long, conflicts_with = "deliveries")]
    pub alerts: bool,
    /// Print Telegram delivery outcomes instead of samples.
    #[arg(long)]
    pub deliveries: bool,
    /// Comma-separated values with a header line, every column.
    #[arg(long)]
    pub csv: bool,
}

/// `-c/--config`, accepted before or after the subcommand.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Config file.
    #[arg(short, long, value_name = "CONFIG", default_value = config::DEFAULT_PATH, global = true, env = config::env::CONFIG_VAR)]
    pub config: PathBuf,
}

/// `run` arguments.
#[derive(Debug, Default, Args)]
pub struct RunArgs {
    /// Record every received message to PATH as `<recv_unix_ns> <json>` lines (gzip if it ends in .gz).
    #[arg(long, value_name = "PATH")]
    pub record: Option<PathBuf>,
    /// Start a new recording file every N MiB (uncompressed); old ones get a -0001… suffix.
    #[arg(long, value_name = "N", requires = "record")]
    pub record_rotate_mb: Option<u64>,
    /// Write an HdrHistogram interval log of every latency stage to PATH.
    #[arg(long, value_name = "PATH")]
    pub hdr_log: Option<PathBuf>,
    /// Show the live dashboard in this terminal instead of console log lines (the log file still gets them).
    #[arg(long)]
    pub tui: bool,
}

/// `plot` arguments.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Recordings, in order (`<recv_unix_ns> <json>` lines, .gz by extension).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The chart to write: `.png` or `.svg`.
    #[arg(short, long, value_name = "CHART")]
    pub out: PathBuf,
    /// Only this pair (default: every configured pair with data).
    #[arg(long, value_name = "PAIR")]
    pub pair: Option<String>,
    /// Start of the window: RFC 3339 (2024-08-08T23:55:00Z) or Unix seconds.
    #[arg(long, value_name = "T", value_parser = crate::plot::parse_time)]
    pub from: Option<UnixNanos>,
    /// End of the window, the same forms.
    #[arg(long, value_name = "T", value_parser = crate::plot::parse_time)]
    pub to: Option<UnixNanos>,
}

/// `watch` arguments.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The running `run`'s metrics endpoint (`metrics_http.listen`).
    #[arg(long, default_value = "http://127.0.0.1:9184")]
    pub url: String,
    /// Milliseconds between two refreshes.
    #[arg(long, value_name = "MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub refresh_ms: u64,
}

/// `simulate` arguments.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// Serve wss:// with a fresh self-signed CA (its PEM path is printed).
    #[arg(long)]
    pub tls: bool,
    /// Where to write the CA certificate (default: a new temporary directory).
    #[arg(long, value_name = "PATH", requires = "tls")]
    pub ca_out: Option<PathBuf>,
    /// Recordings to play, in order (`<recv_unix_ns> <json>` lines, .gz by extension).
    #[arg(long, value_name = "FILE", num_args = 1.., required_unless_present = "synthetic", conflicts_with = "synthetic")]
    pub replay: Vec<PathBuf>,
    /// Play the recordings side by side, merged by receive time (one symbol per file), not one after the other.
    #[arg(long, requires = "replay")]
    pub interleave: bool,
    /// A seeded random-walk book for any requested depth stream.
    #[arg(long)]
    pub synthetic: bool,
    /// Seed of the synthetic walk.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Frames per second, `max` (as fast as sockets take them) or `recorded` (the recording's own timing).
    #[arg(long, default_value = "recorded", value_parser = parse_rate)]
    pub rate: Rate,
    /// Start the recording again when it ends.
    #[arg(long = "loop")]
    pub looped: bool,
    /// Seconds between server pings (Binance: 20).
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    pub ping_interval: f64,
    /// Seconds a client has to answer a ping (Binance: 60).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub pong_timeout: f64,
    /// Start the market clock only once this many clients subscribed (0: at once, like the exchange).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub wait_for: usize,
    /// Fault: reset the TCP connection after N data frames.
    #[arg(long, value_name = "N")]
    pub drop_after: Option<u64>,
    /// Fault: send Binance's serverShutdown event after N data frames.
    #[arg(long, value_name = "N")]
    pub shutdown_after: Option<u64>,
    /// Fault: after every N data frames send one malformed frame.
    #[arg(long, value_name = "N")]
    pub garbage_every: Option<u64>,
    /// Fault: after N data frames stay connected but send no more data.
    #[arg(long, value_name = "N")]
    pub stall_after: Option<u64>,
    /// Fault: skip every N-th diff-depth event sent to a connection (N >= 2): the client sees a U/u gap.
    #[arg(long, value_name = "N")]
    pub gap_every: Option<u64>,
    /// Fault: answer the first COUNT (default 1) GET /api/v3/depth requests with HTTP CODE (429, 418, 500...).
    #[arg(long, value_name = "CODE[:COUNT]", value_parser = parse_snapshot_status)]
    pub snapshot_status: Option<SnapshotStatus>,
    /// The Retry-After header (seconds) of a --snapshot-status answer.
    #[arg(long, value_name = "SECS", default_value_t = 1)]
    pub retry_after: u64,
    /// Fault: each snapshot answer leaves this many milliseconds after its request (the streams keep flowing).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub snapshot_delay_ms: u64,
    /// Fault: the REST side is down; REST connections are closed unanswered.
    #[arg(long)]
    pub rest_down: bool,
    /// Write every REST request as `<recv_unix_ns> <path+query> <status>` to this file.
    #[arg(long, value_name = "PATH")]
    pub request_log: Option<PathBuf>,
}

fn parse_snapshot_status(s: &str) -> Result<SnapshotStatus, String> {
    let (code, count) = s.split_once(':').unwrap_or((s, "1"));
    let status = code.parse::<u16>().ok().filter(|c| (400..=599).contains(c));
    let count = count.parse::<u32>().ok().filter(|&n| n > 0);
    match (status, count) {
        (Some(status), Some(count)) => Ok(SnapshotStatus { status, count }),
        _ => Err(format!("{s:?} is not CODE[:COUNT]; give an HTTP error status 400..=599 and a count > 0, e.g. 429:3")),
    }
}

fn parse_rate(s: &str) -> Result<Rate, String> {
    match s {
        "max" => Ok(Rate::Max),
        "recorded" => Ok(Rate::Recorded),
        n => n
            .parse::<u32>()
            .ok()
            .filter(|&n| n > 0)
            .map(Rate::PerSecond)
            .ok_or_else(|| format!("{n:?} is not a rate; use frames per second (> 0), `max` or `recorded`")),
    }
}

fn seconds(s: f64) -> Result<std::time::Duration, String> {
    std::time::Duration::try_from_secs_f64(s).map_err(|_| format!("{s} is not a number of seconds"))
}

/// `demo` arguments.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Frames per second to play the two-minute recording at (its own pace is 20/s).
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Play the recording again and again until Ctrl-C.
    #[arg(long = "loop")]
    pub looped: bool,
    /// Directory for the demo's config, CA, journal and log (default: a new temporary one).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `replay` arguments.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Journal to append alerts to (default: `alerts.journal` from the config).
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,
    /// Recordings to replay, in order.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// `evaluate` arguments.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Forward horizons after each alert (ms, s or m).
    #[arg(long, value_name = "LIST", default_value = evaluate::horizons::DEFAULT)]
    pub horizons: String,
    /// Evaluate variants in one pass: value=FROM:TO:STEP, top_n=5,10,20, cooldown_sec=0,5,30; several multiply.
    #[arg(long, value_name = "KEY=VALUES")]
    pub sweep: Vec<String>,
    /// Write every row as JSON.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Write every row as CSV.
    #[arg(long, value_name = "PATH")]
    pub csv: Option<PathBuf>,
    /// Draw mean return and hit rate against the swept value, one line per horizon (.png or .svg; needs one --sweep).
    #[arg(long, value_name = "PATH")]
    pub plot: Option<PathBuf>,
    /// Recordings to evaluate, in time order.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Runs the parsed command line; the process exits with the returned code.
pub fn run(cli: Cli) -> ExitCode {
    let verbosity = Verbosity { verbose: cli.verbose, quiet: cli.quiet };
    match cli.command.unwrap_or(Command::Run(RunArgs::default())) {
        Command::Run(args) => run_live(&cli.config, &args, verbosity),
        Command::CheckConfig => check_config(&cli.config),
        Command::TelegramTest => telegram_test(&cli.config),
        Command::Simulate(args) => simulate(args, verbosity),
        Command::Demo(args) => demo(&args, verbosity),
        Command::Replay(args) => run_replay(&cli.config, args),
        Command::Evaluate(args) => run_evaluate(&cli.config, &args),
        Command::History(args) => print_history(&cli.config, &args),
        Command::Watch(args) => watch(&args),
        Command::Plot(args) => run_plot(&cli.config, args),
    }
}

/// `-v`/`-q` counts.
#[derive(Clone, Copy, Debug)]
struct Verbosity {
    verbose: u8,
    quiet: u8,
}

impl Verbosity {
    /// The log level: the config's, unless `-v`/`-q` say otherwise.
    fn level(self, configured: log::LevelFilter) -> log::LevelFilter {
        use log::LevelFilter::*;
        match (self.verbose, self.quiet) {
            (0, 0) => configured,
            (1, _) => Debug,
            (v, _) if v > 1 => Trace,
            (_, 1) => Warn,
            _ => Error,
        }
    }
}

fn check_config(config_arg: &ConfigArg) -> ExitCode {
    match load_config(config_arg) {
        Ok(config) => {
            print!("{}", config.render());
            println!(
                "# OK: {} pair(s), {} trigger entr{} — {}",
                config.pairs.len(),
                config.triggers.len(),
                if config.triggers.len() == 1 { "y" } else { "ies" },
                config.path.display()
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn simulate(args: SimulateArgs, verbosity: Verbosity) -> ExitCode {
    let (ping_interval, pong_timeout) = match (seconds(args.ping_interval), seconds(args.pong_timeout)) {
        (Ok(p), Ok(t)) => (p, t),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // Logs go to stderr: stdout's first line is for machines.
    let _log = logging::init(None, verbosity.level(log::LevelFilter::Info), Console::Stderr);
    let options = SimOptions {
        listen: args.listen,
        tls: args.tls,
        ca_out: args.ca_out,
        replay: args.replay,
        interleave: args.interleave,
        synthetic: args.synthetic,
        seed: args.seed,
        rate: args.rate,
        looped: args.looped,
        wait_for_subscribers: args.wait_for,
        ping_interval,
        pong_timeout,
        drop_after: args.drop_after,
        shutdown_after: args.shutdown_after,
        garbage_every: args.garbage_every,
        stall_after: args.stall_after,
        gap_every: args.gap_every,
        snapshot_status: args.snapshot_status,
        retry_after: std::time::Duration::from_secs(args.retry_after),
        snapshot_delay: std::time::Duration::from_millis(args.snapshot_delay_ms),
        rest_down: args.rest_down,
        request_log: args.request_log,
        ..SimOptions::default()
    };
    match simulator::run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn demo(args: &DemoArgs, verbosity: Verbosity) -> ExitCode {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("imbalance-monitor-demo-{}", std::process::id())));
    let _log = match logging::init(
        Some(&logging::LogFile { path: dir.join("imbalance-monitor.log"), rotation: logging::Rotation::DEFAULT }),
        verbosity.level(log::LevelFilter::Info),
        Console::Stdout,
    ) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [libc::SIGINT, libc::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&interrupted)) {
            eprintln!("error: cannot handle signals: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    }
    let options = demo::DemoOptions { rate: args.rate, looped: args.looped, dir };
    match demo::run(&options, &|| interrupted.load(Ordering::Relaxed)) {
        Ok((report, journal)) => {
            println!(
                "demo finished: {} frames evaluated, {} alerts — journal {}",
                report.hot.engine.evaluated,
                report.cold.alerts,
                journal.display()
            );
            run_exit_code(&report)
        }
        Err(e) => {
            log::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn telegram_test(config_arg: &ConfigArg) -> ExitCode {
    let config = match load_config(config_arg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match telegram::send_test_message(&config.telegram) {
        Err(e) => {
            eprintln!("error: Telegram test failed: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
        Ok(results) => {
            let mut failed = 0;
            for (chat, result) in &results {
                match result {
                    Ok(()) => println!("chat {chat}: test message sent"),
                    Err(e) => {
                        failed += 1;
                        eprintln!("chat {chat}: FAILED: {e}");
                    }
                }
            }
            if failed == 0 {
                println!("all {} chat(s) received the test message", results.len());
                ExitCode::SUCCESS
            } else {
                eprintln!("error: {failed} of {} chat(s) failed", results.len());
                ExitCode::from(EXIT_FAILURE)
            }
        }
    }
}

fn run_live(config_arg: &ConfigArg, args: &RunArgs, verbosity: Verbosity) -> ExitCode {
    let config = match load_config(config_arg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // The dashboard owns the screen: log lines go to the file only.
    let console = if args.tui { Console::Off } else { Console::Stdout };
    let _log = match logging::init(Some(&config.log.log_file()), verbosity.level(config.log.level), console) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let options = RunOptions {
        handle_signals: true,
        record: args.record.clone().map(|path| RecordConfig {
            path,
            rotate_bytes: args.record_rotate_mb.map(|mb| mb.saturating_mul(1 << 20)),
        }),
        hdr_log: args.hdr_log.clone(),
        metrics_listen: None,
        dashboard: args.tui,
    };
    match Runner::start(&config, options) {
        Ok(runner) => {
            if let Some(hub) = runner.dashboard().filter(|_| args.tui).cloned() {
                let view = View { source: "in-process".into(), ..View::default() };
                let shown = terminal::run(view, terminal::REFRESH, || Ok(hub.snapshot()), || runner.is_finished());
                if let Err(e) = shown {
                    log::error!("TUI | the terminal failed: {e}; stopping");
                    eprintln!("error: the terminal failed: {e}");
                }
                runner.stop_handle().stop();
            }
            run_exit_code(&runner.wait())
        }
        Err(e) => {
            log::error!("cannot start: {e}");
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// The exit status of a finished `run`: 1 if a thread panicked, so that a
/// supervisor (systemd `Restart=on-failure`) sees a failure, not a clean stop.
pub fn run_exit_code(report: &RunReport) -> ExitCode {
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        log::error!("stopping with exit status {EXIT_FAILURE}: the {} thread panicked", report.panicked.join(" and "));
        ExitCode::from(EXIT_FAILURE)
    }
}

fn load_config(arg: &ConfigArg) -> Result<Config, ExitCode> {
    Config::load(&arg.config).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_CONFIG)
    })
}

fn run_plot(config_arg: &ConfigArg, args: PlotArgs) -> ExitCode {
    let config = match load_config(config_arg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let pair = args.pair.map(|p| p.to_ascii_uppercase());
    if let Some(p) = pair.as_ref().filter(|p| !config.pairs.contains(p)) {
        eprintln!("error: --pair {p}: not one of the config's pairs ({})", config.pairs.join(", "));
        return ExitCode::from(EXIT_CONFIG);
    }
    let options =
        PlotOptions { files: args.files, out: args.out, window: Window { pair, from: args.from, to: args.to } };
    match plot::plot(&config, &options) {
        Ok(report) => {
            println!(
                "{}: {} × {} px, {} book(s) of {}, {} alert(s)",
                options.out.display(),
                report.size.0,
                report.size.1,
                report.points,
                report.pairs.join(", "),
                report.alerts
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(if matches!(e, PlotError::Format(_)) { EXIT_CONFIG } else { EXIT_FAILURE })
        }
    }
}

fn watch(args: &WatchArgs) -> ExitCode {
    let endpoint = match Endpoint::parse(&args.url) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let view = View { source: endpoint.url.clone(), ..View::default() };
    let refresh = std::time::Duration::from_millis(args.refresh_ms);
    match terminal::run(view, refresh, || endpoint.fetch().map_err(|e| e.to_string()), || false) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: the terminal failed: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn run_replay(config_arg: &ConfigArg, args: ReplayArgs) -> ExitCode {
    let config = match load_config(config_arg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let journal_path = args.journal.unwrap_or_else(|| config.alerts.journal.clone());
    let mut journal = match Journal::open(&journal_path) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let catalog = Catalog::from_config(&config);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let failure = match replay(&config, &args.files, Some(&mut journal), &mut out) {
        Ok(mut report) => {
            let _ = report.write_summary(&catalog, &mut out);
            let _ = writeln!(out, "journal: {}", journal.path().display());
            report.failure.take()
        }
        Err(e) => Some(e),
    };
    let _ = out.flush();
    match failure {
        None => ExitCode::SUCCESS,
        Some(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn run_evaluate(config_arg: &ConfigArg, args: &EvaluateArgs) -> ExitCode {
    let usage = |e: &dyn std::fmt::Display| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_CONFIG)
    };
    let config = match load_config(config_arg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let horizons = match evaluate::horizons::parse(&args.horizons) {
        Ok(h) => h,
        Err(e) => return usage(&format_args!("--horizons: {e}")),
    };
    let mut sweeps = Vec::with_capacity(args.sweep.len());
    for s in &args.sweep {
        match evaluate::sweep::parse_axis(s) {
            Ok(a) => sweeps.push(a),
            Err(e) => return usage(&e),
        }
    }
    if let Some(plot) = &args.plot {
        if let Err(e) = crate::chart::Format::of(plot) {
            return usage(&e);
        }
        if sweeps.len() != 1 {
            return usage(&"--plot draws one swept key on its x axis; give exactly one --sweep");
        }
    }
    let options = EvalOptions { horizons, sweeps };
    let evaluation = match evaluate::evaluate(&config, &args.files, &options) {
        Ok(e) => e,
        Err(EvaluateError::Usage(e)) => return usage(&e),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut result = evaluation.write_table(&mut out).and_then(|()| out.flush()).map_err(|e| format!("stdout: {e}"));
    let write = |path: &PathBuf, f: &dyn Fn(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>| {
        std::fs::File::create(path)
            .map(std::io::BufWriter::new)
            .and_then(|mut w| f(&mut w).and_then(|()| w.flush()))
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    if let Some(p) = &args.json {
        result = result.and_then(|()| write(p, &|w| evaluation.write_json(w)));
    }
    if let Some(p) = &args.csv {
        result = result.and_then(|()| write(p, &|w| evaluation.write_csv(w)));
    }
    if let Some(p) = &args.plot
        && let Some(chart) = evaluation.sweep_chart()
    {
        result = result.and_then(|()| crate::chart::draw(&chart, p).map_err(|e| e.to_string()));
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn print_history(config_arg: &ConfigArg, args: &HistoryArgs) -> ExitCode {
    use crate::history::query::{self, Table};
    let config = match load_config(config_arg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(history) = &config.history else {
        eprintln!("error: {}: no [history] section; add one (see the README's History section)", config.path.display());
        return ExitCode::from(EXIT_CONFIG);
    };
    let mut db = match crate::history::open(&history.backend) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let filter = crate::history::Filter {
        pair: args.pair.as_ref().map(|p| p.trim().to_ascii_uppercase()),
        from_ns: args.from.unwrap_or(i64::MIN),
        to_ns: args.to.unwrap_or(i64::MAX),
    };
    let table = if args.alerts {
        Table::Alerts
    } else if args.deliveries {
        Table::Deliveries
    } else {
        Table::Samples
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = query::print(db.as_mut(), table, &filter, args.csv, &mut out);
    let flushed = out.flush();
    match (result, flushed) {
        (Ok(_), Ok(())) => ExitCode::SUCCESS,
        (Err(e), _) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
        (_, Err(e)) => {
            eprintln!("error: writing output: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
