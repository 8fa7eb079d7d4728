//! The local-book benchmark's engine cases (`benches/local_book.rs`) outside
//! criterion, for what a shared, noisy machine still allows:
//!
//! * `diff` / `diff_ticker` (with `_warm` for the baseline): one pass over
//!   the real BTCUSDT diff recordings after their snapshot, diff lines only
//!   or diff and bookTicker lines, to run under `valgrind --tool=callgrind`.
//!   The `_warm` run loads and warms up only; subtract it and divide by the
//!   events printed for instructions per event.
//! * `per_event [rounds]`: every event of both cases timed on its own,
//!   round after round; prints the median and tail per event, which
//!   criterion's per-pass time (a mean per event) hides.
//!
//! ```sh
//! cargo build --release --example local_book_cases
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/local_book_cases diff
//! taskset -c 1 target/release/examples/local_book_cases per_event 20
//! ```

#[path = "../benches/common/mod.rs"]
#[allow(dead_code)] // Only the trigger sets and the sink are used here.
mod common;

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use common::{Case, CountingSink};
use imbalance_monitor::engine::{Engine, EngineConfig};
use imbalance_monitor::metrics::VolumeSpec;
use imbalance_monitor::pairs::PairId;
use imbalance_monitor::recording::{Line, RecordingReader};
use imbalance_monitor::units::{UnixNanos, VolumeMode};
use imbalance_monitor::venue::binance_spot::collector::is_snapshot_line;
use imbalance_monitor::venue::binance_spot::snapshot::{SnapshotBook, parse_snapshot};
use imbalance_monitor::venue::binance_spot::{DiffKind, StreamTable, UpdateSpeed};

const FILES: [&str; 2] = ["tests/fixtures/btcusdt_20240808.gz", "tests/fixtures/btcusdt_20240809.gz"];

/// The lines before the snapshot, the snapshot, the lines after it.
struct Feed {
    warm: Vec<(UnixNanos, Vec<u8>)>,
    snapshot: SnapshotBook,
    measured: Vec<(UnixNanos, Vec<u8>, bool)>,
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The recordings' diff lines, and their bookTicker lines with `ticker`;
/// the flag on a measured line says whether it is a diff.
fn load(ticker: bool) -> Feed {
    let mut f = Feed { warm: Vec::new(), snapshot: SnapshotBook::with_capacity(5000), measured: Vec::new() };
    let mut synced = false;
    for file in FILES {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let mut reader = RecordingReader::open(&path).expect("open the diff recording");
        while let Some(line) = reader.next_line().expect("read the diff recording") {
            let Line::Frame { recv, json } = line else { continue };
            if is_snapshot_line(json) {
                parse_snapshot(json, &mut f.snapshot).expect("the recording's snapshot parses");
                synced = true;
                continue;
            }
            let diff = contains(json, b"\"depthUpdate\"");
            let wanted = diff || (ticker && contains(json, b"@bookTicker\""));
            if !wanted {
                continue;
            }
            if synced {
                f.measured.push((recv, json.to_vec(), diff));
            } else {
                f.warm.push((recv, json.to_vec()));
            }
        }
    }
    f
}

fn warmed(case: Case, ticker: bool, f: &Feed, sink: &mut CountingSink) -> Engine {
    let venue = StreamTable::diff(&["BTCUSDT".into()], DiffKind { speed: UpdateSpeed::Ms100, book_ticker: ticker });
    let spec = VolumeSpec { mode: VolumeMode::Notional, top_n: 10 };
    let mut e = Engine::new(EngineConfig::new(venue, spec, case.config().triggers).with_local_book(2000));
    for (recv, json) in &f.warm {
        e.on_frame(json, *recv, sink);
    }
    let s = &f.snapshot;
    e.on_snapshot(PairId(0), None, s.last_update_id, &s.bids, &s.asks, sink);
    e
}

fn main() {
    let mut args = std::env::args().skip(1);
    let wanted = args.next().unwrap_or_default();
    let mut sink = CountingSink::default();
    match wanted.as_str() {
        "diff" | "diff_ticker" | "diff_warm" | "diff_ticker_warm" => {
            let ticker = wanted.starts_with("diff_ticker");
            let f = load(ticker);
            let mut e = warmed(Case::Plain, ticker, &f, &mut sink);
            if !wanted.ends_with("_warm") {
                for (recv, json, _) in &f.measured {
                    black_box(e.on_frame(black_box(json), *recv, &mut sink));
                }
            }
            let diffs = f.measured.iter().filter(|m| m.2).count();
            eprintln!("{wanted}: {} events ({diffs} diffs), {} alerts", f.measured.len(), sink.alerts);
        }
        "per_event" => {
            let rounds = args.next().and_then(|r| r.parse().ok()).unwrap_or(20);
            for ticker in [false, true] {
                per_event(ticker, rounds, &mut sink);
            }
        }
        _ => {
            eprintln!("use diff, diff_ticker, diff_warm, diff_ticker_warm or per_event [rounds]");
            std::process::exit(2);
        }
    }
}

fn per_event(ticker: bool, rounds: usize, sink: &mut CountingSink) {
    let f = load(ticker);
    let (mut diffs, mut tickers) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let mut e = warmed(Case::Plain, ticker, &f, sink);
        for (recv, json, diff) in &f.measured {
            let start = Instant::now();
            black_box(e.on_frame(black_box(json), *recv, sink));
            let ns = start.elapsed().as_nanos() as u64;
            if *diff { diffs.push(ns) } else { tickers.push(ns) }
        }
    }
    for (kind, mut v) in [("diff", diffs), ("bookTicker", tickers)] {
        if v.is_empty() {
            continue;
        }
        v.sort_unstable();
        let q = |p: f64| v.get(((v.len() - 1) as f64 * p) as usize).copied().unwrap_or(0);
        let mean = v.iter().sum::<u64>() as f64 / v.len() as f64;
        println!(
            "ticker={ticker:<5} {kind:<10} n={:<8} p50 {:>6} ns  p90 {:>6} ns  p99 {:>7} ns  max {:>8} ns  mean {mean:>7.0} ns",
            v.len(),
            q(0.5),
            q(0.9),
            q(0.99),
            q(1.0)
        );
    }
}
