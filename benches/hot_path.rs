//! The hot path, per real Binance frame: the whole engine (parse → book →
//! metric → triggers → sink), the scanner alone, and — for comparison — what
//! a typical Rust client writes (serde_json into `String`s, `f64` prices).
//!
//! Every frame of the BTCUSDT depth10@100ms recording is loaded into memory
//! first; each iteration processes the next frame, cycling, so the numbers are
//! per frame over the real mix of sizes and shapes.
//!
//! Run: `cargo bench --bench hot_path`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use imbalance_monitor::alert::{Alert, EngineSink};
use imbalance_monitor::book::Book;
use imbalance_monitor::engine::{Engine, EngineConfig};
use imbalance_monitor::exchange::binance::{Depth, StreamKind, StreamTable, UpdateSpeed, parse_message};
use imbalance_monitor::metrics::{Decimal, VolumeSpec};
use imbalance_monitor::recording::{Line, RecordingReader};
use imbalance_monitor::triggers::{Condition, Emit, MetricKind, Op, TriggerSpec};
use imbalance_monitor::units::{UnixNanos, VolumeMode};

const RECORDING: &str = "tests/fixtures/btcusdt_depth10_100ms_20240808-09.txt.gz";
const TOP_N: usize = 10;
const THRESHOLD: f64 = 0.3;

fn load_frames() -> Vec<(UnixNanos, Vec<u8>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(RECORDING);
    let mut reader = RecordingReader::open(&path).expect("open the depth10 recording");
    let mut frames = Vec::new();
    while let Some(line) = reader.next_line().expect("read the depth10 recording") {
        if let Line::Frame { recv, json } = line {
            frames.push((recv, json.to_vec()));
        }
    }
    assert!(frames.len() > 1000, "the recording holds {} frames", frames.len());
    frames
}

fn trigger(name: &str, op: Op, value: f64, emit: Emit) -> TriggerSpec {
    TriggerSpec::simple(name, MetricKind::ImbalanceRatio, op, value, 0, emit)
}

/// Counts alerts; never allocates.
#[derive(Default)]
struct CountingSink {
    alerts: u64,
}

impl EngineSink for CountingSink {
    fn alert(&mut self, alert: &Alert) {
        self.alerts += u64::from(black_box(alert).seq != 0);
    }
}

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
    let streams = StreamTable::new(&["BTCUSDT".into()], StreamKind { depth: Depth::D10, speed: UpdateSpeed::Ms100 });
    let config = EngineConfig::new(
        streams.clone(),
        VolumeSpec { mode: VolumeMode::Notional, top_n: TOP_N },
        vec![
            trigger("bid_heavy", Op::Gt, THRESHOLD, Emit::Edge),
            trigger("ask_heavy", Op::Lt, -THRESHOLD, Emit::Level),
        ],
    );
    // The same two triggers plus one trigger per other metric, one with every
    // option (filters, sustain) and a multi-condition one: every metric is
    // computed on every frame.
    let mut every = config.triggers.clone();
    for (name, metric, op, value) in [
        ("weighted", MetricKind::WeightedImbalance, Op::Gt, 0.3),
        ("micro", MetricKind::MicropriceOffsetBps, Op::Gt, 0.05),
        ("spread", MetricKind::SpreadBps, Op::Lt, 0.01),
        ("ofi", MetricKind::Ofi, Op::Gt, 1.0),
    ] {
        let mut t = TriggerSpec::simple(name, metric, op, value, 0, Emit::Edge);
        t.sustain_ns = 200_000_000;
        t.min_volume = Some(1);
        t.max_spread_bps = Decimal::from_f64(5.0);
        every.push(t);
    }
    let mut all = TriggerSpec::simple("all", MetricKind::ImbalanceRatio, Op::Gt, THRESHOLD, 0, Emit::Level);
    all.extra = vec![Condition {
        metric: MetricKind::SpreadBps,
        op: Op::Le,
        value: 2.0,
        threshold: Decimal::from_f64(2.0).unwrap(),
    }];
    every.push(all);
    let every_config = EngineConfig::new(streams.clone(), config.volume, every);
    // The same seven triggers' shapes (sustain, volume filter, a two-condition
    // trigger) on the plain ratio alone: `every_metric` minus this case is
    // what the other metrics cost, apart from what more triggers cost.
    let mut seven = config.triggers.clone();
    for (name, value) in [("weighted", 0.3), ("micro", 0.05), ("spread", -0.2), ("ofi", 0.1)] {
        let mut t = TriggerSpec::simple(name, MetricKind::ImbalanceRatio, Op::Gt, value, 0, Emit::Edge);
        t.sustain_ns = 200_000_000;
        t.min_volume = Some(1);
        seven.push(t);
    }
    let mut all = TriggerSpec::simple("all", MetricKind::ImbalanceRatio, Op::Gt, THRESHOLD, 0, Emit::Level);
    all.extra = vec![Condition {
        metric: MetricKind::ImbalanceRatio,
        op: Op::Le,
        value: 0.9,
        threshold: Decimal::from_f64(0.9).unwrap(),
    }];
    seven.push(all);
    let seven_config = EngineConfig::new(streams.clone(), config.volume, seven);

    let mut group = c.benchmark_group("hot_path");
    group.throughput(Throughput::Elements(1));

    let mut engine = Engine::new(config);
    let mut sink = CountingSink::default();
    let mut i = 0;
    group.bench_function("engine_on_frame", |b| {
        b.iter(|| {
            let (recv, frame) = &frames[i];
            i = if i + 1 == frames.len() { 0 } else { i + 1 };
            engine.on_frame(black_box(frame), *recv, &mut sink)
        })
    });
    assert_eq!(engine.counters().rejected(), 0, "every benchmarked frame must be a valid depth frame");

    let mut engine = Engine::new(every_config);
    let mut i = 0;
    group.bench_function("engine_on_frame_every_metric", |b| {
        b.iter(|| {
            let (recv, frame) = &frames[i];
            i = if i + 1 == frames.len() { 0 } else { i + 1 };
            engine.on_frame(black_box(frame), *recv, &mut sink)
        })
    });

    let mut engine = Engine::new(seven_config);
    let mut i = 0;
    group.bench_function("engine_on_frame_seven_triggers_ratio_only", |b| {
        b.iter(|| {
            let (recv, frame) = &frames[i];
            i = if i + 1 == frames.len() { 0 } else { i + 1 };
            engine.on_frame(black_box(frame), *recv, &mut sink)
        })
    });

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

criterion_group!(benches, hot_path);
criterion_main!(benches);
