//! The engine configurations the hot-path benchmarks measure, shared by the
//! criterion bench (`benches/hot_path.rs`, wall clock) and the case
//! runner (`examples/hot_path_cases.rs`, under callgrind or interleaved), so both
//! measure the same thing.

use std::hint::black_box;
use std::path::Path;

use imbalance_monitor::alert::{Alert, EngineSink};
use imbalance_monitor::engine::EngineConfig;
use imbalance_monitor::exact::Decimal;
use imbalance_monitor::metrics::VolumeSpec;
use imbalance_monitor::recording::{Line, RecordingReader};
use imbalance_monitor::triggers::{Condition, Emit, MetricKind, Op, TriggerSpec};
use imbalance_monitor::units::{UnixNanos, VolumeMode};
use imbalance_monitor::venue::binance_spot::{Depth, StreamKind, StreamTable, UpdateSpeed};

/// The real BTCUSDT depth10@100ms recording every case runs over.
pub const RECORDING: &str = "tests/fixtures/btcusdt_depth10_100ms_20240808-09.txt.gz";
/// The plain triggers' threshold.
pub const THRESHOLD: f64 = 0.3;

/// Every frame of [`RECORDING`], in memory, with its receive time.
pub fn load_frames() -> Vec<(UnixNanos, Vec<u8>)> {
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

/// The one stream of the recording.
pub fn streams() -> StreamTable {
    StreamTable::new(&["BTCUSDT".into()], StreamKind { depth: Depth::D10, speed: UpdateSpeed::Ms100 })
}

/// Counts alerts; never allocates.
#[derive(Default)]
pub struct CountingSink {
    pub alerts: u64,
}

impl EngineSink for CountingSink {
    fn alert(&mut self, alert: &Alert) {
        self.alerts += u64::from(black_box(alert).seq != 0);
    }
}

/// The engine cases, by the name the bench reports them under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// The plain ratio (notional, top 10) and two triggers on it.
    Plain,
    /// Plain plus one trigger on each other metric (weighted imbalance,
    /// microprice, spread, OFI): every metric computed on every frame.
    EveryMetric,
    /// [`Case::EveryMetric`] with every trigger option on top: sustain and
    /// both liquidity filters on each metric trigger, and a two-condition
    /// trigger.
    EveryMetricAndOption,
    /// The same seven triggers' shapes as [`Case::EveryMetricAndOption`]
    /// (sustain, volume filter, a two-condition trigger) on the plain ratio
    /// alone: the difference is what the other metrics cost, apart from
    /// what more triggers cost.
    SevenTriggersRatioOnly,
}

impl Case {
    pub const ALL: [Case; 4] =
        [Case::Plain, Case::EveryMetric, Case::EveryMetricAndOption, Case::SevenTriggersRatioOnly];

    pub fn name(self) -> &'static str {
        match self {
            Case::Plain => "engine_on_frame",
            Case::EveryMetric => "engine_on_frame_every_metric",
            Case::EveryMetricAndOption => "engine_on_frame_every_metric_and_option",
            Case::SevenTriggersRatioOnly => "engine_on_frame_seven_triggers_ratio_only",
        }
    }

    pub fn config(self) -> EngineConfig {
        let ratio =
            |name: &str, op, value, emit| TriggerSpec::simple(name, MetricKind::ImbalanceRatio, op, value, 0, emit);
        let mut triggers = vec![
            ratio("bid_heavy", Op::Gt, THRESHOLD, Emit::Edge),
            ratio("ask_heavy", Op::Lt, -THRESHOLD, Emit::Level),
        ];
        let others = [
            ("weighted", MetricKind::WeightedImbalance, Op::Gt, 0.3, 0.3),
            ("micro", MetricKind::MicropriceOffsetBps, Op::Gt, 0.05, 0.05),
            ("spread", MetricKind::SpreadBps, Op::Lt, 0.01, -0.2),
            ("ofi", MetricKind::Ofi, Op::Gt, 1.0, 0.1),
        ];
        let all =
            |metric, op, value: f64| Condition { metric, op, value, threshold: Decimal::from_f64(value).unwrap() };
        match self {
            Case::Plain => {}
            Case::EveryMetric => {
                for (name, metric, op, value, _) in others {
                    triggers.push(TriggerSpec::simple(name, metric, op, value, 0, Emit::Edge));
                }
            }
            Case::EveryMetricAndOption => {
                for (name, metric, op, value, _) in others {
                    let mut t = TriggerSpec::simple(name, metric, op, value, 0, Emit::Edge);
                    t.sustain_ns = 200_000_000;
                    t.min_volume = Some(1);
                    t.max_spread_bps = Decimal::from_f64(5.0);
                    triggers.push(t);
                }
                let mut t = ratio("all", Op::Gt, THRESHOLD, Emit::Level);
                t.extra = vec![all(MetricKind::SpreadBps, Op::Le, 2.0)];
                triggers.push(t);
            }
            Case::SevenTriggersRatioOnly => {
                for (name, _, _, _, ratio_value) in others {
                    let mut t = ratio(name, Op::Gt, ratio_value, Emit::Edge);
                    t.sustain_ns = 200_000_000;
                    t.min_volume = Some(1);
                    triggers.push(t);
                }
                let mut t = ratio("all", Op::Gt, THRESHOLD, Emit::Level);
                t.extra = vec![all(MetricKind::ImbalanceRatio, Op::Le, 0.9)];
                triggers.push(t);
            }
        }
        EngineConfig::new(streams(), VolumeSpec { mode: VolumeMode::Notional, top_n: 10 }, triggers)
    }
}
