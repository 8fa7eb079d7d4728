//! Runs one hot-path benchmark case over every frame of the real recording,
//! once, so `valgrind --tool=callgrind` can count its instructions: unlike
//! wall-clock medians on a shared machine, the count is the same on every
//! run. Subtract the `load` run (reading the recording only) and divide by
//! the frame count printed to get instructions per frame.
//!
//! ```sh
//! cargo build --release --example hot_path_instructions
//! for case in load engine_on_frame engine_on_frame_seven_triggers_ratio_only engine_on_frame_every_metric; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/hot_path_instructions $case
//! done
//! ```

#[path = "../benches/common/mod.rs"]
mod common;

use std::hint::black_box;

use common::{Case, CountingSink, load_frames};
use imbalance_monitor::engine::Engine;

fn main() {
    let wanted = std::env::args().nth(1).unwrap_or_else(|| "load".into());
    let frames = load_frames();
    if wanted == "load" {
        eprintln!("{} frames loaded, no case run", frames.len());
        return;
    }
    let Some(case) = Case::ALL.into_iter().find(|c| c.name() == wanted) else {
        let names: Vec<&str> = Case::ALL.iter().map(|c| c.name()).collect();
        eprintln!("unknown case {wanted:?}; use load or one of {names:?}");
        std::process::exit(2);
    };
    let mut engine = Engine::new(case.config());
    let mut sink = CountingSink::default();
    for (recv, frame) in &frames {
        black_box(engine.on_frame(black_box(frame), *recv, &mut sink));
    }
    eprintln!("{}: {} frames, {} alerts", case.name(), frames.len(), sink.alerts);
}
