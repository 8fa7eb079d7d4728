//! Zero allocations per frame on the live hot thread — socket reads, TLS,
//! WebSocket framing, engine, hand-off, latency histograms and the recorder
//! all included — counted by a global allocator on the hot thread only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use imbalance_monitor::alert::{ActionHook, Alert};
use imbalance_monitor::book::BookView;
use imbalance_monitor::engine::{Engine, EngineConfig};
use imbalance_monitor::feed::{FeedConfig, tls};
use imbalance_monitor::gauges::PairGauges;
use imbalance_monitor::handoff::{self, HandOff};
use imbalance_monitor::hot::HotLoop;
use imbalance_monitor::metrics::VolumeSpec;
use imbalance_monitor::recorder::{self, RecordConfig};
use imbalance_monitor::simulator::{Rate, SimOptions, Simulator};
use imbalance_monitor::stats;
use imbalance_monitor::triggers::{Emit, MetricKind, Op, TriggerSpec};
use imbalance_monitor::units::VolumeMode;
use imbalance_monitor::venue::binance_spot::{Depth, StreamKind, StreamTable, UpdateSpeed};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// Allocator calls on this thread while counting (tests run in parallel).
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    /// Size and kind of the last counted call, for the failure message.
    static LAST: Cell<(usize, u8)> = const { Cell::new((0, 0)) };
}

/// Counts one allocator call (`kind`: 0 alloc, 1 free, 2 realloc) if this thread is counting.
fn count(size: usize, kind: u8) {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
        let _ = LAST.try_with(|l| l.set((size, kind)));
    }
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 0);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(layout.size(), 1);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size, 2);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const WARM_UP: u64 = 1000;
const MEASURED: u64 = 3000;

/// Fires on every frame (level trigger at -1): turns counting on at frame
/// `WARM_UP` and off `MEASURED` frames later — on the hot thread, inline.
#[derive(Default)]
struct Window {
    fired: u64,
    done: Arc<Mutex<Option<u64>>>,
}

impl ActionHook for Window {
    fn on_fire(&mut self, _alert: &Alert, _book: &BookView<'_>) {
        self.fired += 1;
        if self.fired == WARM_UP {
            ALLOCS.with(|n| n.set(0));
            COUNTING.with(|c| c.set(true));
        } else if self.fired == WARM_UP + MEASURED {
            COUNTING.with(|c| c.set(false));
            if let Ok(mut d) = self.done.lock() {
                *d = Some(ALLOCS.with(Cell::get));
                let (size, kind) = LAST.with(Cell::get);
                if ALLOCS.with(Cell::get) > 0 {
                    eprintln!("last counted allocator call: kind {kind} (0 alloc, 1 free, 2 realloc), {size} bytes");
                }
            }
        }
    }
}

fn allocations_per_window(tls_on: bool, history_sampling: bool) -> u64 {
    let dir = std::env::temp_dir().join(format!("im-alloc-live-{tls_on}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sim = Simulator::start(SimOptions {
        tls: tls_on,
        replay: vec!["tests/fixtures/btcusdt_depth10_100ms_20240808-09.txt.gz".into()],
        rate: Rate::PerSecond(4000),
        ..SimOptions::default()
    })
    .unwrap();
    let streams = StreamTable::new(&["BTCUSDT".into()], StreamKind { depth: Depth::D10, speed: UpdateSpeed::Ms100 });
    let every = TriggerSpec::simple("every", MetricKind::ImbalanceRatio, Op::Ge, -1.0, 0, Emit::Level);
    let done = Arc::new(Mutex::new(None));
    let engine = Engine::with_hook(
        EngineConfig::new(streams, VolumeSpec { mode: VolumeMode::Notional, top_n: 10 }, vec![every]),
        Window { fired: 0, done: Arc::clone(&done) },
    );
    let (tx, rx) = handoff::channel(4096);
    let gauges = PairGauges::new(1);
    // Every metric update crosses (`log_metrics`), or only each window's last
    // one per pair, as with `[history]` (1 ms windows: one crosses most frames).
    let mut hand_off = HandOff::new(tx, 4096, !history_sampling).with_gauges(Arc::clone(&gauges));
    if history_sampling {
        hand_off = hand_off.with_sampling(Duration::from_millis(1), 1);
    }
    let (publisher, stats_rx) = stats::stats_channel(Duration::from_millis(50));
    let (producer, writer) =
        recorder::start(RecordConfig { path: dir.join("rec.txt.gz"), rotate_bytes: None }).unwrap();
    let feed = FeedConfig {
        ws_url: sim.url(),
        max_streams_per_connection: 1024,
        stale_after: Duration::from_secs(10),
        max_connection_age: Duration::from_secs(3600),
        busy_poll: false,
        tls: tls::client_config(sim.ca_path()).unwrap(),
    };
    let hot =
        HotLoop::new(feed, engine, hand_off).unwrap().with_stats(publisher).with_gauges(gauges).with_recorder(producer);
    let stop = hot.stop_handle();
    let hot_thread = std::thread::spawn(move || hot.run());
    // A cold side: drain the channel and recycle the stats buffers.
    let start = Instant::now();
    let result = loop {
        rx.try_iter().for_each(drop);
        for mut b in stats_rx.filled.try_iter() {
            b.clear();
            let _ = stats_rx.spares.try_send(b);
        }
        if let Some(n) = *done.lock().unwrap() {
            break n;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the measured window never completed");
        std::thread::sleep(Duration::from_millis(5));
    };
    stop.stop();
    let (engine, hand_off, _) = hot_thread.join().unwrap();
    drop(hand_off);
    assert!(engine.counters().evaluated >= WARM_UP + MEASURED);
    assert!(writer.join().unwrap().frames >= WARM_UP + MEASURED, "the recorder really ran");
    result
}

/// Our code — socket reads, WebSocket framing (tungstenite), parse, book,
/// metrics, triggers, hand-off, latency histograms, the recorder — allocates
/// nothing per frame. The one exception is not per frame: tungstenite's read
/// buffer (a `BytesMut`) doubles when a burst leaves more bytes buffered than
/// it has ever held, a handful of times in a process's life; a window may
/// catch one such `realloc`, never one per frame.
#[test]
fn the_live_hot_thread_allocates_nothing_per_frame_over_ws() {
    let n = allocations_per_window(false, false);
    assert!(n <= 1, "ws://: {n} allocator calls over {MEASURED} frames");
}

/// Over TLS the only allocations are rustls's: 0.23 copies every decrypted
/// record into a fresh `Vec` (buffered and unbuffered APIs alike; in-place
/// decryption is an upstream TODO), freed when read: at most one allocation
/// and one free per record, and the simulator sends one record per frame.
#[test]
fn over_wss_only_rustls_allocates_one_buffer_per_record() {
    let n = allocations_per_window(true, false);
    eprintln!("wss://: {n} allocator calls over {MEASURED} frames");
    assert!(n <= 2 * MEASURED, "wss://: {n} allocator calls over {MEASURED} frames");
}

/// With `[history]` the hand-off keeps each pair's open sample window in
/// state allocated at start: still nothing allocated per frame.
#[test]
fn history_sampling_on_the_hot_thread_allocates_nothing_per_frame() {
    let n = allocations_per_window(false, true);
    assert!(n <= 1, "ws:// with history sampling: {n} allocator calls over {MEASURED} frames");
}
