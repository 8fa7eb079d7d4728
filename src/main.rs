//! The `imbalance-monitor` binary: parses the command line and hands it to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    imbalance_monitor::cli::run(imbalance_monitor::cli::Cli::parse())
}
