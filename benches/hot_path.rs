//! The hot path, per real Binance frame: the whole engine (parse → book →
//! metric → triggers → sink), the scanner alone, and — for comparison — what
//! a typical Rust client writes (serde_json into `String`s, `f64` prices).
//!
//! Every frame of the BTCUSDT depth10@100ms recording is loaded into memory
//! first; each iteration processes the next frame, cycling, so the numbers are
//! per frame over the real mix of sizes and shapes.
//!
//! The `handoff` group times the hot thread's side of the hand-off — one
//! alert into the bounded channel — while a consumer thread drains it the way
//! the cold thread does, once with the old fixed 200 µs poll and once with
//! the [`IdleBackoff`] the cold thread uses now, so both are measured under
//! the same load.
//!
//! Run: `cargo bench --bench hot_path`.

mod common;

use std::hint::black_box;

use common::{Case, CountingSink, load_frames, streams};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use imbalance_monitor::alert::{Alert, EngineSink};
use imbalance_monitor::book::Book;
use imbalance_monitor::cold::IdleBackoff;
use imbalance_monitor::engine::Engine;
use imbalance_monitor::handoff::{self, ColdMsg, HandOff};
use imbalance_monitor::venue::binance_spot::parse_message;

const TOP_N: usize = 10;
const THRESHOLD: f64 = common::THRESHOLD;

// --- What a typical client writes: owned strings and f64 everywhere. ---

#[derive(serde::Deserialize)]
struct TypicalEnvelope {
    #[allow(dead_code)]
    stream: String,
    data: TypicalDepth,
}

#[derive(serde::Deserialize)]
struct TypicalDepth {
    #[serde(rename = "lastUpdateId")]
    #[allow(dead_code)]
    last_update_id: u64,
    bids: Vec<[String; 2]>,
    asks: Vec<[String; 2]>,
}

fn typical_notional(levels: &[[String; 2]]) -> Option<f64> {
    let mut sum = 0.0;
    for [price, qty] in levels.iter().take(TOP_N) {
        sum += price.parse::<f64>().ok()? * qty.parse::<f64>().ok()?;
    }
    Some(sum)
}

/// The baseline: parse, sum notional over ten levels, ratio, threshold compare.
fn typical_client(frame: &[u8]) -> Option<bool> {
    let msg: TypicalEnvelope = serde_json::from_slice(frame).ok()?;
    let bid = typical_notional(&msg.data.bids)?;
    let ask = typical_notional(&msg.data.asks)?;
    let ratio = (bid - ask) / (bid + ask);
    Some(ratio > THRESHOLD)
}

fn hot_path(c: &mut Criterion) {
    let frames = load_frames();
    let streams = streams();
    let mut group = c.benchmark_group("hot_path");
    group.throughput(Throughput::Elements(1));
    let mut sink = CountingSink::default();
    for case in Case::ALL {
        let mut engine = Engine::new(case.config());
        let mut i = 0;
        group.bench_function(case.name(), |b| {
            b.iter(|| {
                let (recv, frame) = &frames[i];
                i = if i + 1 == frames.len() { 0 } else { i + 1 };
                engine.on_frame(black_box(frame), *recv, &mut sink)
            })
        });
        assert_eq!(engine.counters().rejected(), 0, "every benchmarked frame must be a valid depth frame");
    }

    let mut book = Book::default();
    let mut i = 0;
    group.bench_function("scanner_only", |b| {
        b.iter(|| {
            let (_, frame) = &frames[i];
            i = if i + 1 == frames.len() { 0 } else { i + 1 };
            let msg = parse_message(black_box(frame), &streams, &mut book);
            black_box(&book);
            msg
        })
    });

    let mut i = 0;
    group.bench_function("baseline_serde_json", |b| {
        b.iter(|| {
            let (_, frame) = &frames[i];
            i = if i + 1 == frames.len() { 0 } else { i + 1 };
            typical_client(black_box(frame))
        })
    });
    assert!(frames.iter().all(|(_, f)| typical_client(f).is_some()), "the baseline must parse every frame");

    group.finish();
}

/// How the consumer thread waits on an empty channel.
#[derive(Clone, Copy)]
enum Consumer {
    /// The cold thread before: `try_recv`, else sleep 200 µs.
    FixedPoll200us,
    /// The cold thread now.
    Backoff,
}

/// Drains `rx` until the sender hangs up; returns the alerts received.
fn consume(rx: &crossbeam_channel::Receiver<ColdMsg>, consumer: Consumer) -> u64 {
    let mut backoff = IdleBackoff::new();
    let mut alerts = 0;
    loop {
        match rx.try_recv() {
            Ok(msg) => {
                alerts += u64::from(matches!(black_box(msg), ColdMsg::Alert(..)));
                backoff.reset();
            }
            Err(crossbeam_channel::TryRecvError::Empty) => match consumer {
                Consumer::FixedPoll200us => std::thread::sleep(std::time::Duration::from_micros(200)),
                Consumer::Backoff => backoff.wait(),
            },
            Err(crossbeam_channel::TryRecvError::Disconnected) => return alerts,
        }
    }
}

fn handoff(c: &mut Criterion) {
    let frames = load_frames();
    let mut engine = Engine::new(Case::Plain.config());
    let mut alerts: Vec<Alert> = Vec::new();
    for (recv, frame) in &frames {
        engine.on_frame(frame, *recv, &mut alerts);
    }
    assert!(!alerts.is_empty(), "the recording must fire the plain triggers");
    let mut group = c.benchmark_group("handoff");
    group.throughput(Throughput::Elements(1));
    for (name, consumer) in
        [("alert_to_fixed_200us_poll", Consumer::FixedPoll200us), ("alert_to_backoff", Consumer::Backoff)]
    {
        // The run's defaults: 4096 channel slots and 4096 overflow slots.
        let (tx, rx) = handoff::channel(4096);
        let drain = std::thread::spawn(move || consume(&rx, consumer));
        let mut hand_off = HandOff::new(tx, 4096, false);
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                let alert = &alerts[i];
                i = if i + 1 == alerts.len() { 0 } else { i + 1 };
                hand_off.alert(black_box(alert));
            })
        });
        drop(hand_off);
        assert!(drain.join().expect("the consumer thread") > 0);
    }
    group.finish();
}

criterion_group!(benches, hot_path, handoff);
criterion_main!(benches);
