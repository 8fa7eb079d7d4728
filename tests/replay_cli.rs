//! `imbalance-monitor replay` end to end: the real binary on real recordings.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BTC10: &str = "tests/fixtures/btcusdt_depth10_100ms_20240808-09.txt.gz";
const MIXED: &str = "tests/fixtures/btcusdt_mixed_20240808.gz";

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_imbalance-monitor"))
}

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("im-replay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, body).unwrap();
    path
}

fn replay(config: &Path, journal: &Path, files: &[&str]) -> Output {
    bin().arg("replay").arg("-c").arg(config).arg("--journal").arg(journal).args(files).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The `alerts: N` total from the summary.
fn alert_total(o: &Output) -> usize {
    stdout(o).lines().find_map(|l| l.strip_prefix("alerts: ")).and_then(|n| n.trim().parse().ok()).unwrap()
}

const TWO_SIDED: &str = r#"
pairs = ["BTCUSDT"]
[[triggers]]
name = "buy"
op = ">="
value = 0.25
cooldown_sec = 0
REARM_BUY
[[triggers]]
name = "sell"
op = "<="
value = -0.25
cooldown_sec = 0
REARM_SELL
"#;

#[test]
fn replay_prints_triggers_writes_the_journal_and_summarises() {
    let dir = scratch("basic");
    let cfg = config(&dir, &TWO_SIDED.replace("REARM_BUY", "").replace("REARM_SELL", ""));
    let journal = dir.join("alerts.jsonl");
    let out = replay(&cfg, &journal, &[BTC10]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    let triggers: Vec<&str> = text.lines().filter(|l| l.starts_with("TRIGGER | pair=BTCUSDT | ")).collect();
    assert_eq!(triggers.len(), alert_total(&out));
    assert!(
        triggers[0].starts_with("TRIGGER | pair=BTCUSDT | buy: imbalance_ratio >= 0.25 | value="),
        "{}",
        triggers[0]
    );
    let lines = std::fs::read_to_string(&journal).unwrap();
    assert_eq!(lines.lines().count(), triggers.len());
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(first["pair"], "BTCUSDT");
    assert_eq!(first["recv_ns"], 1_723_161_254_137_307_667u64);
    assert_eq!(first["time"], "2024-08-08T23:54:14.137307667Z");
    assert!(text.contains("frames: 6493 | evaluated: 6493"), "{text}");
    assert!(text.contains("engine time per frame: p50="), "{text}");
}

#[test]
fn other_streams_and_snapshots_are_skipped_and_counted() {
    let dir = scratch("mixed");
    let cfg = config(&dir, "pairs = [\"BTCUSDT\"]\n");
    let out = replay(&cfg, &dir.join("j.jsonl"), &[MIXED]);
    assert!(out.status.success());
    let text = stdout(&out);
    // 28040 bookTicker + 9757 trade + 3451 diff depth + 1 REST snapshot, no depth10 frame.
    assert!(text.contains("evaluated: 0"), "{text}");
    assert!(text.contains("skipped (not a configured stream): 41249 | errors: 0"), "{text}");
}

#[test]
fn hysteresis_cuts_the_flicker_of_a_bare_threshold() {
    let dir = scratch("rearm");
    let bare = config(&dir, &TWO_SIDED.replace("REARM_BUY", "").replace("REARM_SELL", ""));
    let flicker = alert_total(&replay(&bare, &dir.join("a.jsonl"), &[BTC10]));
    let hyst = config(&dir, &TWO_SIDED.replace("REARM_BUY", "rearm = 0.15").replace("REARM_SELL", "rearm = -0.15"));
    let calm = alert_total(&replay(&hyst, &dir.join("b.jsonl"), &[BTC10]));
    // Measured on this recording: 361 vs 311 (README, "Signal quality").
    assert_eq!((flicker, calm), (361, 311));
}

#[test]
fn bad_files_get_one_clear_error_and_a_failing_exit() {
    let dir = scratch("bad");
    let cfg = config(&dir, "");
    let journal = dir.join("j.jsonl");

    let missing = replay(&cfg, &journal, &["/nonexistent/rec.gz"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/rec.gz: cannot open"));

    let not_rec = dir.join("config-copy.txt");
    std::fs::write(&not_rec, "[binance]\ndepth = 10\n".repeat(20)).unwrap();
    let out = replay(&cfg, &journal, &[not_rec.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a recording"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A gzip cut in half: the frames before the cut are processed, then a clear error.
    let full = std::fs::read(BTC10).unwrap();
    let cut = dir.join("cut.txt.gz");
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let out = replay(&cfg, &journal, &[cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cut.txt.gz: read failed after") && err.contains("corrupt or truncated gzip"), "{err}");
    assert!(stdout(&out).contains("== replay summary =="));
}

#[test]
fn bad_lines_inside_a_good_file_are_counted_not_fatal() {
    let dir = scratch("lines");
    let rec = dir.join("rec.txt");
    let good = r#"1723161254137307667 {"stream":"btcusdt@depth10@100ms","data":{"lastUpdateId":1,"bids":[["2","1"]],"asks":[["3","1"]]}}"#;
    std::fs::write(&rec, format!("{good}\nnot a line\n1723161254137307668 {{\"stream\":\"btcusdt@depth10@100ms\",\"data\":{{\"bids\":[\n{good}\n")).unwrap();
    let out = replay(&config(&dir, ""), &dir.join("j.jsonl"), &[rec.to_str().unwrap()]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("malformed lines: 1"), "{text}");
    assert!(text.contains("frames: 3 | evaluated: 2"), "{text}");
    assert!(text.contains("truncated"), "{text}");
}

#[test]
fn a_bad_config_exits_before_reading_anything() {
    let dir = scratch("cfg");
    let cfg = config(&dir, "[metrics]\ntop_n = 30\n");
    let out = replay(&cfg, &dir.join("j.jsonl"), &[BTC10]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config.toml:2: `metrics.top_n` is 30"), "{err}");
    assert!(!dir.join("j.jsonl").exists());
}
