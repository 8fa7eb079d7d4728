//! The SBE benchmark cases (`benches/sbe.rs`) outside criterion, for the two
//! measurements a shared, noisy machine still allows:
//!
//! * `sbe_decode` / `json_parse` (or `load`): one pass over all 6,493 frames,
//!   to run under `valgrind --tool=callgrind`. The instruction count is the
//!   same on every run; subtract the `load` run and divide by the frame count.
//! * `interleave [rounds]`: both decoders over all frames in turn, round after
//!   round, printing each one's fastest and median round per frame, so both see
//!   the same background load and their ratio means something.
//!
//! ```sh
//! cargo build --release --example sbe_cases
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/sbe_cases sbe_decode
//! taskset -c 1 target/release/examples/sbe_cases interleave 60
//! ```

#[path = "../benches/sbe_frames/mod.rs"]
mod sbe_frames;

use std::hint::black_box;
use std::time::Instant;

use imbalance_monitor::book::Book;
use imbalance_monitor::sbe::{SymbolTable, decode};
use imbalance_monitor::venue::binance_spot::{StreamTable, parse_message};
use sbe_frames::{json_frames, sbe_frames, tables};

/// Rounds discarded before timing (caches, branch predictors, page faults).
const WARMUP_ROUNDS: usize = 5;

/// Decodes every SBE frame once; the count of accepted frames.
fn sbe_pass(frames: &[Vec<u8>], symbols: &SymbolTable, book: &mut Book) -> usize {
    frames.iter().filter(|f| decode(black_box(f), symbols, book).is_ok() && !black_box(&*book).bids.is_empty()).count()
}

/// Parses every JSON frame once; the count of accepted frames.
fn json_pass(frames: &[Vec<u8>], streams: &StreamTable, book: &mut Book) -> usize {
    frames
        .iter()
        .filter(|f| parse_message(black_box(f), streams, book).is_ok() && !black_box(&*book).bids.is_empty())
        .count()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let wanted = args.next().unwrap_or_else(|| "load".into());
    let (json, sbe) = (json_frames(), sbe_frames());
    let (streams, symbols) = tables();
    let mut book = Book::default();
    let accepted = match wanted.as_str() {
        "load" => {
            eprintln!("{} JSON and {} SBE frames loaded, no case run", json.len(), sbe.len());
            return;
        }
        "sbe_decode" => sbe_pass(&sbe, &symbols, &mut book),
        "json_parse" => json_pass(&json, &streams, &mut book),
        "interleave" => {
            let rounds = args.next().and_then(|r| r.parse().ok()).unwrap_or(60);
            interleave(&json, &sbe, &streams, &symbols, rounds);
            return;
        }
        other => {
            eprintln!("unknown case {other:?}; use load, sbe_decode, json_parse or interleave [rounds]");
            std::process::exit(2);
        }
    };
    eprintln!("{wanted}: {accepted} of {} frames accepted", sbe.len());
}

fn interleave(json: &[Vec<u8>], sbe: &[Vec<u8>], streams: &StreamTable, symbols: &SymbolTable, rounds: usize) {
    let mut book = Book::default();
    let mut ns = [Vec::with_capacity(rounds), Vec::with_capacity(rounds)];
    for round in 0..WARMUP_ROUNDS + rounds {
        let start = Instant::now();
        assert_eq!(sbe_pass(sbe, symbols, &mut book), sbe.len());
        let mid = Instant::now();
        assert_eq!(json_pass(json, streams, &mut book), json.len());
        let end = Instant::now();
        if round >= WARMUP_ROUNDS {
            ns[0].push((mid - start).as_nanos() as f64 / sbe.len() as f64);
            ns[1].push((end - mid).as_nanos() as f64 / json.len() as f64);
        }
    }
    for v in &mut ns {
        v.sort_by(f64::total_cmp);
    }
    let [sbe_ns, json_ns] = &ns;
    let (fast, median) = (|v: &[f64]| v[0], |v: &[f64]| v[v.len() / 2]);
    println!("case        fastest  median   (ns per frame, {rounds} rounds)");
    println!("sbe_decode  {:7.1}  {:7.1}", fast(sbe_ns), median(sbe_ns));
    println!("json_parse  {:7.1}  {:7.1}", fast(json_ns), median(json_ns));
    println!("json / sbe  {:7.1}× {:7.1}×", fast(json_ns) / fast(sbe_ns), median(json_ns) / median(sbe_ns));
}
