//! One book reached two ways: replaying the real diff-depth recordings with
//! `binance.book = "diff"` (REST snapshot line, buffered events, diffs)
//! gives exactly the alerts of `book = "partial"` on the depth-N frames
//! derived from the same recordings (tests/fixtures/README.md).

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_imbalance-monitor"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("im-localbook-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Triggers on every metric, level and edge, both directions.
const TRIGGERS: &str = r#"
[[triggers]]
name = "buy"
op = ">="
value = 0.4
cooldown_sec = 0
[[triggers]]
name = "sell_edge"
op = "<"
value = -0.4
emit = "edge"
cooldown_sec = 1
[[triggers]]
name = "weighted"
metric = "weighted_imbalance"
op = ">"
value = 0.3
cooldown_sec = 0
[[triggers]]
name = "micro"
metric = "microprice_offset_bps"
op = ">="
value = 0.01
cooldown_sec = 0
[[triggers]]
name = "wide"
metric = "spread_bps"
op = ">"
value = 0.002
cooldown_sec = 0
[[triggers]]
name = "ofi"
metric = "ofi"
op = "<"
value = -1.0
cooldown_sec = 0
"#;

/// Replays `files` with `binance` settings and `top_n`; returns the journal.
fn journal(dir: &Path, tag: &str, pair: &str, binance: &str, top_n: usize, files: &[&str]) -> String {
    let cfg = dir.join(format!("{tag}.toml"));
    let body = format!("pairs = [\"{pair}\"]\n[binance]\n{binance}\n[metrics]\ntop_n = {top_n}\n{TRIGGERS}");
    std::fs::write(&cfg, body).unwrap();
    let journal = dir.join(format!("{tag}.jsonl"));
    let out = bin().arg("replay").arg("-c").arg(&cfg).arg("--journal").arg(&journal).args(files).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(&journal).unwrap()
}

fn same_alerts_both_ways(sym: &str, depth: usize) {
    let lower = sym.to_ascii_lowercase();
    let dir = scratch(&format!("{lower}{depth}"));
    let diffs = [format!("tests/fixtures/{lower}_20240808.gz"), format!("tests/fixtures/{lower}_20240809.gz")];
    let diffs: Vec<&str> = diffs.iter().map(String::as_str).collect();
    let derived = format!("tests/fixtures/{lower}_depth{depth}_100ms_20240808-09.txt.gz");
    let from_diffs = journal(&dir, "diff", sym, "book = \"diff\"", depth, &diffs);
    let from_partial = journal(&dir, "partial", sym, &format!("depth = {depth}"), depth, &[&derived]);
    let lines = from_diffs.lines().count();
    assert!(lines > 500, "{sym} top {depth}: only {lines} alerts; the comparison would prove little");
    for name in ["buy", "sell_edge", "weighted", "micro", "wide", "ofi"] {
        assert!(from_diffs.contains(&format!("\"trigger\":\"{name}\"")), "{sym}: trigger {name} never fired");
    }
    if from_diffs != from_partial {
        let first = from_diffs.lines().zip(from_partial.lines()).position(|(a, b)| a != b);
        panic!(
            "{sym} top {depth}: {} alerts from diffs, {} from partial; first difference at alert {first:?}",
            lines,
            from_partial.lines().count()
        );
    }
}

#[test]
fn btcusdt_diff_book_equals_its_depth10_frames() {
    same_alerts_both_ways("BTCUSDT", 10);
}

#[test]
fn ethusdt_diff_book_equals_its_depth10_frames() {
    same_alerts_both_ways("ETHUSDT", 10);
}

#[test]
fn btcusdt_diff_book_equals_its_depth20_frames() {
    same_alerts_both_ways("BTCUSDT", 20);
}

#[test]
fn ethusdt_diff_book_equals_its_depth20_frames() {
    same_alerts_both_ways("ETHUSDT", 20);
}

/// `evaluate` on the diff recordings reports what it reports on the
/// derived depth10 frames: the same alerts, mids and returns.
#[test]
fn evaluate_reads_diff_recordings_into_the_same_report() {
    let dir = scratch("evaluate");
    let run = |tag: &str, binance: &str, files: &[&str]| -> serde_json::Value {
        let cfg = dir.join(format!("{tag}.toml"));
        std::fs::write(&cfg, format!("pairs = [\"BTCUSDT\"]\n[binance]\n{binance}\n[metrics]\ntop_n = 10\n{TRIGGERS}"))
            .unwrap();
        let json = dir.join(format!("{tag}.json"));
        let out = bin().arg("evaluate").arg("-c").arg(&cfg).arg("--json").arg(&json).args(files).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
    };
    let diff =
        run("diff", "book = \"diff\"", &["tests/fixtures/btcusdt_20240808.gz", "tests/fixtures/btcusdt_20240809.gz"]);
    let partial = run("partial", "depth = 10", &["tests/fixtures/btcusdt_depth10_100ms_20240808-09.txt.gz"]);
    assert!(diff["results"].as_array().is_some_and(|r| !r.is_empty()));
    assert_eq!(diff, partial);
}
