//! The hot-path benchmark cases (`benches/common`) outside criterion, for
//! the two measurements a shared, noisy machine still allows:
//!
//! * `<case>` (or `load`): one pass over every frame of the real recording,
//!   to run under `valgrind --tool=callgrind`. The instruction count is the
//!   same on every run; subtract the `load` run (reading the recording only)
//!   and divide by the frame count printed.
//! * `interleave [rounds]`: every case over the whole recording in turn,
//!   round after round, printing each case's fastest and median round per
//!   frame. Interleaving exposes all cases to the same background load, so
//!   their differences mean something even when absolute times drift.
//!
//! ```sh
//! cargo build --release --example hot_path_cases
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/hot_path_cases engine_on_frame
//! taskset -c 1 target/release/examples/hot_path_cases interleave 60
//! ```

#[path = "../benches/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

use common::{Case, CountingSink, load_frames};
use imbalance_monitor::engine::Engine;
use imbalance_monitor::units::UnixNanos;

/// Rounds discarded before timing (caches, branch predictors, page faults).
const WARMUP_ROUNDS: usize = 5;

fn main() {
    let mut args = std::env::args().skip(1);
    let wanted = args.next().unwrap_or_else(|| "load".into());
    let frames = load_frames();
    if wanted == "load" {
        eprintln!("{} frames loaded, no case run", frames.len());
        return;
    }
    if wanted == "interleave" {
        let rounds = args.next().and_then(|r| r.parse().ok()).unwrap_or(60);
        interleave(&frames, rounds);
        return;
    }
    let Some(case) = Case::ALL.into_iter().find(|c| c.name() == wanted) else {
        let names: Vec<&str> = Case::ALL.iter().map(|c| c.name()).collect();
        eprintln!("unknown case {wanted:?}; use load, interleave or one of {names:?}");
        std::process::exit(2);
    };
    let mut engine = Engine::new(case.config());
    let mut sink = CountingSink::default();
    for (recv, frame) in &frames {
        black_box(engine.on_frame(black_box(frame), *recv, &mut sink));
    }
    eprintln!("{}: {} frames, {} alerts", case.name(), frames.len(), sink.alerts);
}

fn interleave(frames: &[(UnixNanos, Vec<u8>)], rounds: usize) {
    let mut engines: Vec<Engine> = Case::ALL.iter().map(|c| Engine::new(c.config())).collect();
    let mut per_frame: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); engines.len()];
    let mut sink = CountingSink::default();
    for round in 0..rounds + WARMUP_ROUNDS {
        for (engine, times) in engines.iter_mut().zip(&mut per_frame) {
            let start = Instant::now();
            for (recv, frame) in frames {
                black_box(engine.on_frame(black_box(frame), *recv, &mut sink));
            }
            if round >= WARMUP_ROUNDS {
                times.push(start.elapsed().as_nanos() as f64 / frames.len() as f64);
            }
        }
    }
    for (case, times) in Case::ALL.iter().zip(&mut per_frame) {
        times.sort_by(f64::total_cmp);
        let (fastest, median) =
            (times.first().copied().unwrap_or(0.0), times.get(times.len() / 2).copied().unwrap_or(0.0));
        println!("{:<45} fastest {fastest:>6.0} ns/frame   median {median:>6.0} ns/frame", case.name());
    }
}
