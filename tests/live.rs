//! The live pipeline end to end: real sockets on 127.0.0.1, real TLS, each
//! test with its own simulator playing real Binance frames.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use imbalance_monitor::config::Config;
use imbalance_monitor::recorder::RecordConfig;
use imbalance_monitor::replay::replay;
use imbalance_monitor::run::{RunOptions, RunReport, Runner};
use imbalance_monitor::simulator::{Rate, RunningSimulator, SimOptions, Simulator};
use support::live::{base64_decode, http_get, recording, scratch, wait_until};

/// lastUpdateIds of a recording's frames, in order.
fn update_ids(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l.split_once(' ').unwrap().1).unwrap();
            v["data"]["lastUpdateId"].as_u64().unwrap()
        })
        .collect()
}

fn sim(opts: SimOptions) -> RunningSimulator {
    Simulator::start(opts).unwrap()
}

/// A config for the simulator at `s`; `extra` adds keys (and tables) at the end.
fn config(s: &RunningSimulator, dir: &Path, triggers: &str, extra: &str) -> Config {
    let ca = s.ca_path().map(|p| format!("ca_file = {:?}\n", p)).unwrap_or_default();
    let text = format!(
        "pairs = [\"BTCUSDT\"]\n[binance]\nws_url = {:?}\n{ca}stale_after_ms = 3000\n[alerts]\njournal = {:?}\n{triggers}\n{extra}\n",
        s.url(),
        dir.join("alerts.jsonl")
    );
    Config::from_toml(&dir.join("config.toml"), &text).unwrap()
}

/// Fires on every evaluated book: one journal line per frame.
const EVERY_FRAME: &str = "[[triggers]]\nname = \"every\"\nop = \">=\"\nvalue = -1\nemit = \"level\"\n";

/// Buy and sell at ±0.25, level, cooldown 0: the replay-comparison config.
const BOTH_SIDES: &str = "[[triggers]]\nname = \"buy\"\nop = \">=\"\nvalue = 0.25\nemit = \"level\"\n[[triggers]]\nname = \"sell\"\nop = \"<=\"\nvalue = -0.25\nemit = \"level\"\n";

fn journal(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("alerts.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v.get("type").is_none())
        .collect()
}

/// What makes two alerts the same decision, whatever the clock said.
fn decisions(alerts: &[serde_json::Value]) -> Vec<(u64, String, String, String, String)> {
    alerts
        .iter()
        .map(|a| {
            (
                a["last_update_id"].as_u64().unwrap(),
                a["trigger"].as_str().unwrap().to_string(),
                a["value"].to_string(),
                a["bid_volume"].as_str().unwrap().to_string(),
                a["ask_volume"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Runs until `done`, then stops cleanly.
fn run_until(config: &Config, options: RunOptions, what: &str, mut done: impl FnMut() -> bool) -> RunReport {
    let runner = Runner::start(config, options).unwrap();
    wait_until(what, Duration::from_secs(60), &mut done);
    runner.stop_handle().stop();
    runner.wait()
}

#[test]
fn live_over_wss_alerts_exactly_as_replay_does() {
    let dir = scratch("live-parity");
    let rec = recording(&dir, 600);
    let s =
        sim(SimOptions { tls: true, replay: vec![rec.clone()], rate: Rate::PerSecond(2000), ..SimOptions::default() });
    let cfg = config(&s, &dir, BOTH_SIDES, "");
    let report = run_until(&cfg, RunOptions::default(), "the recording to play", || {
        s.stats().recording_finished && journal(&dir).len() as u64 >= 1 && {
            std::thread::sleep(Duration::from_millis(300));
            true
        }
    });
    assert_eq!(report.hot.engine.evaluated, 600, "every frame reached the engine");
    assert_eq!(report.hot.feed.connects, 1);
    let live = decisions(&journal(&dir));
    let replay_dir = scratch("live-parity-replay");
    let mut j = imbalance_monitor::sinks::journal::Journal::open(&replay_dir.join("alerts.jsonl")).unwrap();
    let rep = replay(&cfg, &[rec], Some(&mut j), &mut std::io::sink()).unwrap();
    assert!(rep.failure.is_none());
    let offline = decisions(&journal(&replay_dir));
    assert!(live.len() > 20, "a meaningful number of alerts: {}", live.len());
    assert_eq!(live, offline);
}

#[test]
fn a_reset_connection_is_reconnected_and_the_run_continues() {
    let dir = scratch("live-drop");
    let rec = recording(&dir, 600);
    // Looped: the market keeps going however long the reconnects take.
    let s = sim(SimOptions {
        tls: true,
        replay: vec![rec],
        rate: Rate::PerSecond(300),
        looped: true,
        drop_after: Some(100),
        ..SimOptions::default()
    });
    let cfg = config(&s, &dir, EVERY_FRAME, "");
    let report = run_until(&cfg, RunOptions::default(), "two reconnects", || {
        s.stats().fault_resets >= 2 && journal(&dir).len() > 250
    });
    assert!(report.hot.feed.connects >= 3, "{:?}", report.hot.feed);
    assert!(report.hot.feed.disconnects >= 2);
    assert!(report.hot.engine.evaluated > 250);
}

#[test]
fn a_stalled_feed_is_caught_by_the_watchdog() {
    let dir = scratch("live-stall");
    let rec = recording(&dir, 600);
    let s = sim(SimOptions {
        replay: vec![rec],
        rate: Rate::PerSecond(200),
        looped: true,
        stall_after: Some(50),
        ..SimOptions::default()
    });
    let mut cfg = config(&s, &dir, EVERY_FRAME, "");
    cfg.binance.stale_after = Duration::from_millis(400);
    let report = run_until(&cfg, RunOptions::default(), "a reconnect after a stall", || {
        s.stats().fault_stalls >= 2 && s.stats().connections_accepted >= 2
    });
    assert!(report.hot.feed.stale >= 1, "{:?}", report.hot.feed);
    assert!(report.hot.feed.connects >= 2);
    assert!(report.hot.engine.evaluated >= 100);
}

#[test]
fn server_shutdown_rotates_without_missing_a_frame() {
    let dir = scratch("live-shutdown");
    let rec = recording(&dir, 600);
    let s = sim(SimOptions {
        tls: true,
        replay: vec![rec.clone()],
        rate: Rate::PerSecond(200),
        shutdown_after: Some(150),
        shutdown_grace: Duration::from_millis(800),
        ..SimOptions::default()
    });
    let cfg = config(&s, &dir, EVERY_FRAME, "");
    let report = run_until(&cfg, RunOptions::default(), "the recording to play", || {
        s.stats().recording_finished && {
            std::thread::sleep(Duration::from_millis(500));
            true
        }
    });
    assert!(report.hot.feed.rotations >= 2, "{:?}", report.hot.feed);
    assert_eq!(report.hot.feed.disconnects, 0, "rotation is not a disconnect: {:?}", report.hot.feed);
    let seen: BTreeSet<u64> = journal(&dir).iter().map(|a| a["last_update_id"].as_u64().unwrap()).collect();
    let sent: BTreeSet<u64> = update_ids(&rec).into_iter().collect();
    assert_eq!(seen, sent, "every frame the simulator sent was evaluated");
    assert_eq!(report.hot.engine.evaluated, 600, "and evaluated once");
    assert!(report.hot.engine.duplicates > 0, "the overlap was deduplicated");
}

#[test]
fn garbage_frames_are_counted_and_skipped() {
    let dir = scratch("live-garbage");
    let rec = recording(&dir, 300);
    let s = sim(SimOptions {
        replay: vec![rec],
        rate: Rate::PerSecond(1000),
        garbage_every: Some(10),
        ..SimOptions::default()
    });
    let cfg = config(&s, &dir, EVERY_FRAME, "");
    let report = run_until(&cfg, RunOptions::default(), "the recording to play", || {
        s.stats().recording_finished && {
            std::thread::sleep(Duration::from_millis(300));
            true
        }
    });
    let e = &report.hot.engine;
    assert_eq!(e.evaluated, 300);
    assert_eq!(e.rejected(), 30, "{:?}", e.errors);
    assert_eq!(report.hot.feed.connects, 1, "garbage is not a reason to reconnect");
}

#[test]
fn pings_are_answered_so_the_server_keeps_the_client() {
    let dir = scratch("live-ping");
    let rec = recording(&dir, 600);
    // Pings far more often than the client's one pong a second: each pong
    // answers the latest ping and, as at Binance, every older one with it.
    // The timeout leaves a second of slack over the pong interval.
    let s = sim(SimOptions {
        replay: vec![rec],
        rate: Rate::PerSecond(20),
        ping_interval: Duration::from_millis(150),
        pong_timeout: Duration::from_secs(2),
        ..SimOptions::default()
    });
    let cfg = config(&s, &dir, EVERY_FRAME, "");
    let report = run_until(&cfg, RunOptions::default(), "many ping intervals", || s.stats().pings_sent >= 25);
    let st = s.stats();
    assert_eq!(st.dropped_no_pong, 0);
    assert_eq!(report.hot.feed.connects, 1);
    assert!(st.pongs_received >= 2, "{st:?}");
    assert!(st.pongs_received < st.pings_sent / 2, "pongs coalesced: {st:?}");
}

#[test]
fn a_wrong_ca_is_a_clear_error_with_backoff_not_a_busy_loop() {
    let dir = scratch("live-wrong-ca");
    let rec = recording(&dir, 50);
    let server = sim(SimOptions { tls: true, replay: vec![rec.clone()], ..SimOptions::default() });
    let other = sim(SimOptions { tls: true, replay: vec![rec], ..SimOptions::default() });
    let mut cfg = config(&server, &dir, EVERY_FRAME, "");
    cfg.binance.ca_file = other.ca_path().map(Path::to_path_buf);
    let started = Instant::now();
    let report =
        run_until(&cfg, RunOptions::default(), "3 s of failing", || started.elapsed() > Duration::from_secs(3));
    let f = report.hot.feed;
    assert_eq!(f.connects, 0);
    // 100 ms doubling with full jitter: a handful of attempts in 3 s, not thousands.
    assert!((2..=20).contains(&f.attempts), "{f:?}");
    assert_eq!(server.stats().handshake_failures as u64, f.attempts, "every attempt failed in TLS");
}

#[test]
fn a_recording_made_live_replays_into_the_same_alerts() {
    let dir = scratch("live-record");
    let rec = recording(&dir, 400);
    let s = sim(SimOptions { tls: true, replay: vec![rec], rate: Rate::PerSecond(1000), ..SimOptions::default() });
    let cfg = config(&s, &dir, BOTH_SIDES, "");
    let recorded = dir.join("live.txt.gz");
    let options = RunOptions {
        record: Some(RecordConfig { path: recorded.clone(), rotate_bytes: None }),
        ..RunOptions::default()
    };
    let report = run_until(&cfg, options, "the recording to play", || {
        s.stats().recording_finished && {
            std::thread::sleep(Duration::from_millis(300));
            true
        }
    });
    assert_eq!(report.record.map(|r| r.frames), Some(400));
    let replay_dir = scratch("live-record-replay");
    let mut j = imbalance_monitor::sinks::journal::Journal::open(&replay_dir.join("alerts.jsonl")).unwrap();
    let rep = replay(&cfg, &[recorded], Some(&mut j), &mut std::io::sink()).unwrap();
    assert!(rep.failure.is_none());
    let live = journal(&dir);
    let offline = journal(&replay_dir);
    assert!(live.len() > 10);
    // Same decisions and the same receive times: the recording is what the feed saw.
    assert_eq!(decisions(&live), decisions(&offline));
    let times = |v: &[serde_json::Value]| v.iter().map(|a| a["recv_ns"].as_u64().unwrap()).collect::<Vec<_>>();
    assert_eq!(times(&live), times(&offline));
}

#[test]
fn healthz_and_metrics_follow_a_stalled_feed() {
    let dir = scratch("live-health");
    let rec = recording(&dir, 600);
    let s = sim(SimOptions {
        replay: vec![rec],
        rate: Rate::PerSecond(100),
        stall_after: Some(150),
        ..SimOptions::default()
    });
    let mut cfg = config(&s, &dir, EVERY_FRAME, "");
    cfg.binance.stale_after = Duration::from_millis(600);
    let options = RunOptions { metrics_listen: Some("127.0.0.1:0".into()), ..RunOptions::default() };
    let runner = Runner::start(&cfg, options).unwrap();
    let addr = runner.metrics_addr().unwrap();
    wait_until("a healthy feed", Duration::from_secs(20), || http_get(addr, "/healthz").0 == 200);
    // After 150 frames the feed goes silent: unhealthy within the stale window.
    wait_until("the stall to show", Duration::from_secs(20), || s.stats().fault_stalls >= 1);
    let stalled = Instant::now();
    wait_until("healthz to turn red", Duration::from_secs(20), || http_get(addr, "/healthz").0 == 503);
    assert!(stalled.elapsed() < Duration::from_secs(10));
    let (_, body) = http_get(addr, "/healthz");
    assert!(body.contains("BTCUSDT (last frame"), "{body}");
    // The watchdog reconnects and the metrics say so.
    wait_until("a reconnect in the metrics", Duration::from_secs(20), || {
        let (_, m) = http_get(addr, "/metrics");
        m.contains("imbalance_monitor_stale_feeds_total 1") || m.contains("imbalance_monitor_stale_feeds_total 2")
    });
    runner.stop_handle().stop();
    runner.wait();
}

#[test]
fn the_hdr_log_is_readable_by_hdrhistogram_tools() {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let dir = scratch("live-hdr");
    let rec = recording(&dir, 300);
    let s = sim(SimOptions { replay: vec![rec], rate: Rate::PerSecond(200), ..SimOptions::default() });
    let mut cfg = config(&s, &dir, EVERY_FRAME, "");
    cfg.runtime.stats_interval = Duration::from_millis(500);
    let hlog = dir.join("latency.hlog");
    let options = RunOptions { hdr_log: Some(hlog.clone()), ..RunOptions::default() };
    run_until(&cfg, options, "two intervals", || {
        s.stats().recording_finished && {
            std::thread::sleep(Duration::from_millis(1200));
            true
        }
    });
    let bytes = std::fs::read(&hlog).unwrap();
    let mut tags = BTreeSet::new();
    let mut split = std::collections::BTreeMap::<String, u64>::new();
    let mut max_of = std::collections::BTreeMap::<String, u64>::new();
    for entry in IntervalLogIterator::new(&bytes) {
        if let LogEntry::Interval(h) = entry.expect("a well-formed interval log") {
            let tag = h.tag().map(|t| t.as_str().to_string()).unwrap_or_default();
            let decoded: hdrhistogram::Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
                .deserialize(&mut base64_decode(h.encoded_histogram()).as_slice())
                .unwrap();
            *split.entry(tag.clone()).or_insert(0) += decoded.len();
            if tag == "wire_to_decision" || tag == "in_process" {
                let max = max_of.entry(tag.clone()).or_insert(0);
                *max = (*max).max(decoded.max());
            }
            tags.insert(tag);
        }
    }
    for stage in ["wire_to_decision", "socket_read", "in_process", "parse", "eval", "queue"] {
        assert!(tags.contains(stage), "{stage} missing from {tags:?}");
    }
    // Every decided frame has its kernel/in-process split, and the
    // in-process part never exceeds the whole.
    assert_eq!(split["socket_read"], split["wire_to_decision"]);
    assert_eq!(split["in_process"], split["wire_to_decision"]);
    assert!(max_of["in_process"] <= max_of["wire_to_decision"], "{max_of:?}");
    let recorded = split["wire_to_decision"];
    assert!(recorded >= 200, "{recorded} frames in the log");
}
