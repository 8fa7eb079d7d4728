//! Proof that the hot path allocates nothing: after warm-up, `Engine::on_frame`
//! runs over every frame of two real depth10 recordings and a real mixed
//! recording (diff depth, bookTicker, trade, a REST snapshot) — accepted,
//! evaluated, firing and rejected frames alike — with zero calls into the
//! global allocator.
//!
//! The allocator counts only on the thread that sets `MEASURING`; the test
//! harness allocates on its own threads. This file holds a single `#[test]`
//! so no other test runs concurrently on the measured thread.

mod counting_alloc;

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;

use counting_alloc::{ALLOCS, DEALLOCS, MEASURING, REALLOCS};

use imbalance_monitor::alert::{Alert, EngineSink, MetricUpdate};
use imbalance_monitor::engine::{Engine, EngineConfig, FrameOutcome};
use imbalance_monitor::exact::Decimal;
use imbalance_monitor::metrics::VolumeSpec;
use imbalance_monitor::pairs::PairId;
use imbalance_monitor::recording::{Line, RecordingReader};
use imbalance_monitor::triggers::{Condition, Emit, MetricKind, Op, TriggerId, TriggerSpec};
use imbalance_monitor::units::{UnixNanos, VolumeMode};
use imbalance_monitor::venue::binance_spot::{Depth, StreamKind, StreamTable, UpdateSpeed};

/// A sink as the hot thread would use: a fixed array, filled until full, then
/// only counted. It never grows. It takes metric updates too, as the hand-off
/// does with `[history]` or `metrics.log_metrics` on.
struct FixedSink {
    kept: [Option<Alert>; 64],
    alerts: usize,
    metrics: usize,
    /// The last update with every metric computed (what a history sample carries).
    full_update: Option<MetricUpdate>,
}

impl EngineSink for FixedSink {
    fn alert(&mut self, alert: &Alert) {
        if let Some(slot) = self.kept.get_mut(self.alerts) {
            *slot = Some(*alert);
        }
        self.alerts += 1;
    }

    fn metric(&mut self, update: &MetricUpdate) {
        self.metrics += 1;
        if update.weighted_imbalance.is_some()
            && update.microprice_offset_bps.is_some()
            && update.spread_bps.is_some()
            && update.ofi.is_some()
        {
            self.full_update = Some(*update);
        }
    }

    fn wants_metrics(&self) -> bool {
        true
    }
}

fn frames(name: &str) -> Vec<(UnixNanos, Vec<u8>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let mut reader = RecordingReader::open(&path).expect("open recording");
    let mut out = Vec::new();
    while let Some(line) = reader.next_line().expect("read recording") {
        if let Line::Frame { recv, json } = line {
            out.push((recv, json.to_vec()));
        }
    }
    out
}

fn trigger(name: &str, op: Op, value: f64, emit: Emit) -> TriggerSpec {
    TriggerSpec::simple(name, MetricKind::ImbalanceRatio, op, value, 0, emit)
}

#[test]
fn engine_allocates_nothing_per_frame_after_warm_up() {
    let streams = StreamTable::new(
        &["BTCUSDT".into(), "ETHUSDT".into()],
        StreamKind { depth: Depth::D10, speed: UpdateSpeed::Ms100 },
    );
    // Every metric and option is in use, so every code path that could
    // allocate per frame runs.
    let mut triggers =
        vec![trigger("bid_heavy_edge", Op::Gt, 0.3, Emit::Edge), trigger("ask_heavy_level", Op::Le, -0.3, Emit::Level)];
    for (name, metric, value) in [
        ("weighted", MetricKind::WeightedImbalance, 0.3),
        ("micro", MetricKind::MicropriceOffsetBps, 0.05),
        ("ofi", MetricKind::Ofi, 1.0),
    ] {
        let mut t = TriggerSpec::simple(name, metric, Op::Gt, value, 0, Emit::Edge);
        t.sustain_ns = 200_000_000;
        t.min_volume = Some(1);
        t.max_spread_bps = Decimal::from_f64(5.0);
        t.rearm = Decimal::from_f64(value / 2.0);
        triggers.push(t);
    }
    let mut all = trigger("all_level", Op::Gt, 0.1, Emit::Level);
    all.extra = vec![Condition {
        metric: MetricKind::SpreadBps,
        op: Op::Le,
        value: 2.0,
        threshold: Decimal::from_f64(2.0).unwrap(),
    }];
    triggers.push(all);
    let mut engine =
        Engine::new(EngineConfig::new(streams, VolumeSpec { mode: VolumeMode::Notional, top_n: 10 }, triggers));

    // Everything in memory first: reading a recording allocates.
    let mut all = frames("btcusdt_depth10_100ms_20240808-09.txt.gz");
    all.extend(frames("ethusdt_depth10_100ms_20240808-09.txt.gz"));
    all.extend(frames("btcusdt_mixed_20240808.gz"));
    all.sort_by_key(|(recv, _)| *recv); // one feed's interleaving
    let mut sink = FixedSink { kept: [None; 64], alerts: 0, metrics: 0, full_update: None };
    let mut outcomes = Vec::with_capacity(all.len());

    let (warm_up, measured) = all.split_at(16);
    for (recv, frame) in warm_up {
        engine.on_frame(frame, *recv, &mut sink);
    }
    let before = engine.counters().clone();
    let alerts_before = sink.alerts;

    MEASURING.with(|m| m.set(true));
    for (recv, frame) in measured {
        let outcome = engine.on_frame(frame, *recv, &mut sink);
        // Capacity reserved above: pushing does not allocate.
        outcomes.push(outcome);
    }
    MEASURING.with(|m| m.set(false));

    let counts = (ALLOCS.load(Relaxed), REALLOCS.load(Relaxed), DEALLOCS.load(Relaxed));
    assert_eq!(counts, (0, 0, 0), "(allocs, reallocs, deallocs) during {} frames", measured.len());

    // The run did real work on every path, so the zero above means something.
    let after = engine.counters();
    let evaluated = after.evaluated - before.evaluated;
    let rejected = after.rejected() - before.rejected();
    let alerts = sink.alerts - alerts_before;
    assert_eq!(outcomes.len(), measured.len());
    assert!(evaluated > 10_000, "{evaluated} evaluated frames");
    assert!(rejected > 40_000, "{rejected} skipped (rejected) frames");
    assert!(alerts > 100, "{alerts} alerts fired");
    for t in [TriggerId(0), TriggerId(1)] {
        let fired: u64 = [PairId(0), PairId(1)].into_iter().map(|p| after.alerts_for(t, p)).sum();
        assert!(fired > 0, "trigger {t:?} never fired");
    }
    assert!(outcomes.iter().any(|o| matches!(o, FrameOutcome::Rejected(_))));
    assert!(sink.kept.iter().all(Option::is_some), "the fixed sink filled up and kept counting");
    // Every evaluated update was handed out with every metric a sample stores.
    assert_eq!(sink.metrics as u64, after.evaluated);
    let full = sink.full_update.expect("an update with every metric");
    assert!(full.best_bid.is_some() && full.best_ask.is_some() && full.last_update_id > 0);
}
