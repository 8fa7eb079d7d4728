//! The live pipeline with Telegram and the Prometheus endpoint: simulator →
//! engine → cold thread → journal and the mock Bot API, all on loopback.

mod support;

use std::path::Path;
use std::time::Duration;

use imbalance_monitor::config::Config;
use imbalance_monitor::run::{RunOptions, Runner};
use imbalance_monitor::simulator::{Rate, RunningSimulator, SimOptions, Simulator};
use support::live::{http_get, recording, scratch, wait_until};
use support::mock_bot_api::{Fault, MockBotApi};
use support::trace_log;

const TOKEN: &str = "123456789:AAElivetestlivetestlivetestlivetest1";
const SECRET: &str = "AAElivetestlivetestlivetestlivetest1";

/// No piece of the token in the app's log (at TRACE) or the journal.
fn assert_no_token(dir: &Path) {
    let log = trace_log::lines().join("\n");
    assert_eq!(trace_log::holding_part_of(&log, SECRET), Vec::<&str>::new(), "the token is in the log");
    let journal = std::fs::read_to_string(dir.join("alerts.jsonl")).unwrap_or_default();
    assert_eq!(trace_log::holding_part_of(&journal, SECRET), Vec::<&str>::new(), "the token is in the journal");
}

fn config(s: &RunningSimulator, dir: &Path, api_base: &str, triggers: &str) -> Config {
    let text = format!(
        "pairs = [\"BTCUSDT\"]\n[binance]\nws_url = {:?}\nca_file = {:?}\n[alerts]\njournal = {:?}\n[telegram]\nenabled = true\nbot_token = {TOKEN:?}\nchat_ids = [42]\napi_base = {api_base:?}\ntimeout_ms = 1000\nconnect_timeout_ms = 500\n{triggers}",
        s.url(),
        s.ca_path().unwrap(),
        dir.join("alerts.jsonl")
    );
    Config::from_toml(&dir.join("config.toml"), &text).unwrap()
}

fn lines(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("alerts.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const EDGE: &str = "[[triggers]]\nname = \"buy\"\nop = \">=\"\nvalue = 0.25\n[[triggers]]\nname = \"sell\"\nop = \"<=\"\nvalue = -0.25\n";

#[test]
fn alerts_reach_telegram_after_the_journal_and_metrics_parse_with_every_series() {
    trace_log::install();
    let dir = scratch("livetg-e2e");
    let mock = MockBotApi::builder(TOKEN).private_chat(42).flood_interval(None).start();
    let s = Simulator::start(SimOptions {
        tls: true,
        replay: vec![recording(&dir, 400)],
        rate: Rate::PerSecond(100),
        ..SimOptions::default()
    })
    .unwrap();
    let cfg = config(&s, &dir, &mock.base_url(), EDGE);
    let runner =
        Runner::start(&cfg, RunOptions { metrics_listen: Some("127.0.0.1:0".into()), ..RunOptions::default() })
            .unwrap();
    let addr = runner.metrics_addr().unwrap();
    wait_until("the recording", Duration::from_secs(60), || s.stats().recording_finished);
    wait_until("deliveries", Duration::from_secs(30), || {
        let l = lines(&dir);
        let alerts = l.iter().filter(|v| v.get("type").is_none()).count();
        alerts > 0 && l.iter().filter(|v| v["type"] == "delivery").count() == alerts
    });
    std::thread::sleep(Duration::from_millis(1200)); // one stats publish
    let (_, text) = http_get(addr, "/metrics");
    runner.stop_handle().stop();
    let report = runner.wait();

    // Each alert is journaled before its delivery line, and was delivered.
    let journal = lines(&dir);
    let mut alert_ids = Vec::new();
    for (i, v) in journal.iter().enumerate() {
        if v.get("type").is_none() {
            alert_ids.push(v["alert_id"].as_str().unwrap().to_string());
        } else {
            let id = v["alert_id"].as_str().unwrap();
            assert!(
                journal[..i].iter().any(|a| a.get("type").is_none() && a["alert_id"] == id),
                "delivery before alert {id}"
            );
            assert_eq!(v["status"], "sent", "{v}");
            assert_eq!(v["chat_id"], 42);
        }
    }
    assert_eq!(alert_ids.len() as u64, report.cold.alerts);
    let delivered: String = mock.messages().iter().map(|m| m.text.clone()).collect();
    assert!(delivered.contains("BTCUSDT"));
    assert_no_token(&dir);

    // The exposition parses with a real text-format parser and has every series.
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses");
    let names: std::collections::BTreeSet<&str> = scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    for want in [
        "imbalance_monitor_frames_total",
        "imbalance_monitor_frames_rejected_total",
        "imbalance_monitor_books_skipped_total",
        "imbalance_monitor_books_evaluated_total",
        "imbalance_monitor_alerts_total",
        "imbalance_monitor_alerts_dropped_total",
        "imbalance_monitor_reconnects_total",
        "imbalance_monitor_telegram_sends_total",
        "imbalance_monitor_imbalance_ratio",
        "imbalance_monitor_connections_open",
        "imbalance_monitor_seconds_since_last_frame",
        "imbalance_monitor_latency_seconds",
    ] {
        assert!(names.contains(want), "{want} missing; have {names:?}");
    }
    let frames = scrape.samples.iter().find(|s| s.metric == "imbalance_monitor_frames_total").unwrap();
    assert_eq!(frames.labels.get("pair"), Some("BTCUSDT"));
    let stages: std::collections::BTreeSet<String> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "imbalance_monitor_latency_seconds")
        .filter_map(|s| s.labels.get("stage").map(str::to_string))
        .collect();
    for stage in
        ["wire_to_decision", "socket_read", "in_process", "parse", "eval", "queue", "telegram", "decision_to_delivered"]
    {
        assert!(stages.contains(stage), "latency stage {stage} missing: {stages:?}");
    }
    let sent = scrape
        .samples
        .iter()
        .find(|s| s.metric == "imbalance_monitor_telegram_sends_total" && s.labels.get("status") == Some("sent"))
        .unwrap();
    assert!(
        matches!(sent.value, prometheus_parse::Value::Counter(n) | prometheus_parse::Value::Untyped(n) if n >= 1.0),
        "{:?}",
        sent.value
    );
}

#[test]
fn a_hanging_telegram_never_slows_the_engine() {
    trace_log::install();
    let dir = scratch("livetg-hang");
    let mock = MockBotApi::builder(TOKEN).private_chat(42).flood_interval(None).start();
    for _ in 0..1000 {
        mock.fault_for_chat(42, Fault::Hang);
    }
    let s = Simulator::start(SimOptions {
        tls: true,
        replay: vec![recording(&dir, 1500)],
        rate: Rate::Max,
        ..SimOptions::default()
    })
    .unwrap();
    // An alert on every frame: far more than Telegram could ever take.
    let every = "[[triggers]]\nname = \"every\"\nop = \">=\"\nvalue = -1\nemit = \"level\"\n[runtime]\nshutdown_grace_sec = 1\n";
    let cfg = config(&s, &dir, &mock.base_url(), every);
    let runner = Runner::start(&cfg, RunOptions::default()).unwrap();
    wait_until("the recording", Duration::from_secs(60), || s.stats().recording_finished);
    // Journaled at once, while every Telegram request hangs.
    wait_until("every alert journaled", Duration::from_secs(30), || {
        lines(&dir).iter().filter(|v| v.get("type").is_none()).count() == 1500
    });
    assert!(mock.messages().is_empty());
    runner.stop_handle().stop();
    let report = runner.wait();
    assert_eq!(report.hot.engine.evaluated, 1500);
    assert_eq!(report.cold.alerts, 1500);
    assert_eq!(report.hot.handoff.alerts_dropped, 0, "the hot side never lost an alert");
    // Nothing was sent; every alert still ends in exactly one delivery line.
    let journal = lines(&dir);
    let deliveries: Vec<&serde_json::Value> = journal.iter().filter(|v| v["type"] == "delivery").collect();
    assert_eq!(deliveries.len(), 1500);
    assert!(deliveries.iter().all(|d| d["status"] == "dropped" || d["status"] == "failed"), "none could be sent");
    assert_no_token(&dir);
}

/// Reads a child's pipe to the end on a thread, so a chatty child never
/// blocks on a full pipe.
fn drain(pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut pipe = pipe;
        let _ = pipe.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    })
}

#[test]
fn at_trace_level_the_binary_writes_the_token_to_no_output() {
    let dir = scratch("livetg-trace-bin");
    let mock = MockBotApi::builder(TOKEN).private_chat(42).start();
    mock.fault_for_chat(42, Fault::InternalError);
    mock.fault_for_chat(42, Fault::TooManyRequests(1));
    mock.fault_for_chat(42, Fault::BadGatewayHtml);
    let s = Simulator::start(SimOptions {
        tls: true,
        replay: vec![recording(&dir, 40)],
        rate: Rate::PerSecond(20),
        ..SimOptions::default()
    })
    .unwrap();
    let log_file = dir.join("logs/im.log");
    let text = format!(
        "pairs = [\"BTCUSDT\"]\n[binance]\nws_url = {:?}\nca_file = {:?}\n[alerts]\njournal = {:?}\n[log]\nfile = {log_file:?}\nlevel = \"trace\"\n[telegram]\nenabled = true\nbot_token = {TOKEN:?}\nchat_ids = [42]\napi_base = {:?}\ntimeout_ms = 1000\nconnect_timeout_ms = 500\n{EDGE}",
        s.url(),
        s.ca_path().unwrap(),
        dir.join("alerts.jsonl"),
        mock.base_url(),
    );
    let cfg = dir.join("config.toml");
    std::fs::write(&cfg, text).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_imbalance-monitor"))
        .args(["-vv", "run", "-c"])
        .arg(&cfg)
        .env_remove("TELEGRAM_BOT_TOKEN")
        .env_remove("TELEGRAM_CHAT_ID")
        .env_remove("IMBALANCE_THRESHOLD")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    wait_until("the recording", Duration::from_secs(60), || s.stats().recording_finished);
    wait_until("every alert delivered", Duration::from_secs(60), || {
        let l = lines(&dir);
        let alerts = l.iter().filter(|v| v.get("type").is_none()).count();
        alerts > 0 && l.iter().filter(|v| v["type"] == "delivery" && v["status"] == "sent").count() == alerts
    });
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let outputs = [
        ("stdout", stdout.join().unwrap()),
        ("stderr", stderr.join().unwrap()),
        ("log file", std::fs::read_to_string(&log_file).unwrap()),
        ("journal", std::fs::read_to_string(dir.join("alerts.jsonl")).unwrap()),
    ];
    for (name, text) in &outputs {
        let leaks = trace_log::holding_part_of(text, SECRET);
        assert_eq!(leaks, Vec::<&str>::new(), "the token is in the {name}");
    }
    // The check means something: trace records were written, ureq's among them, and the retries happened.
    let (_, console) = &outputs[0];
    assert!(console.contains(" TRACE | "), "no trace records at -vv");
    assert!(console.contains(&format!("POST {}/", mock.base_url())), "no ureq request records");
    assert!(console.contains("retrying in"), "the scripted failures were not met");
}
