//! The command line: argument definitions and the dispatch to each command.
//!
//! Exit codes: 0 success; 1 a runtime failure (unreadable recording, journal
//! not writable…); 2 a usage or config error, reported before anything
//! connects or writes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, Config};
use crate::logging::{self, Console};
use crate::replay::replay;
use crate::run::Runner;
use crate::sinks::Catalog;
use crate::sinks::journal::Journal;

/// Exit code for a usage or config error.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for a runtime failure.
pub const EXIT_FAILURE: u8 = 1;

/// Watches Binance Spot order books and alerts when buyers or sellers dominate.
#[derive(Debug, Parser)]
#[command(name = "imbalance-monitor", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The command; `run` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch the configured pairs live and alert (the default command).
    #[command(after_help = "Example:\n  imbalance-monitor run -c config/config.toml")]
    Run,
    /// Replay recordings (`<recv_unix_ns> <json>` lines, .gz by extension) through the engine.
    #[command(
        after_help = "Example:\n  imbalance-monitor replay -c config/config.toml --journal /tmp/alerts.jsonl btcusdt_depth10.txt.gz"
    )]
    Replay(ReplayArgs),
}

/// `-c/--config`, accepted before or after the subcommand.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Config file.
    #[arg(short, long, value_name = "CONFIG", default_value = config::DEFAULT_PATH, global = true)]
    pub config: PathBuf,
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

/// Runs the parsed command line; the process exits with the returned code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run_live(&cli.config),
        Command::Replay(args) => run_replay(&cli.config, args),
    }
}

fn run_live(config_arg: &ConfigArg) -> ExitCode {
    let config = match load_config(config_arg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let _log = match logging::init(&config.log.file, config.log.level, Console::Stdout) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match Runner::start(&config, Vec::new(), true) {
        Ok(runner) => {
            runner.wait();
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("cannot start: {e}");
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn load_config(arg: &ConfigArg) -> Result<Config, ExitCode> {
    Config::load(&arg.config).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_CONFIG)
    })
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
