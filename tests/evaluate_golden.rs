//! `evaluate` on the real depth10 recordings against an independent oracle:
//! tests/fixtures/evaluate/golden.json, written by scripts/evaluate_golden.py
//! with Python fractions (its own trigger rules, and a scan of each pair's
//! books for mid(t+h) instead of the streaming queue).

use std::process::Command;

use serde_json::Value;

const FILES: [&str; 2] = [
    "tests/fixtures/btcusdt_depth10_100ms_20240808-09.txt.gz",
    "tests/fixtures/ethusdt_depth10_100ms_20240808-09.txt.gz",
];

fn evaluate_json() -> Value {
    let dir = std::env::temp_dir().join(format!("im-evaluate-golden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("eval.json");
    let out = Command::new(env!("CARGO_BIN_EXE_imbalance-monitor"))
        .args(["evaluate", "-c", "tests/fixtures/evaluate/config.toml", "--json"])
        .arg(&json)
        .args(FILES)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    v
}

/// Floats agree to 1e-9 (relative, or absolute near 0): each return is the
/// correctly rounded value of the same exact fraction on both sides; sums
/// and square roots differ only in rounding.
fn close(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => a.is_null() && b.is_null(),
    }
}

fn check(kind: &str, ours: &[Value], golden: &[Value], key: &[&str], counts: &[&str], floats: &[&str]) {
    assert_eq!(ours.len(), golden.len(), "{kind}: row count");
    for g in golden {
        let row =
            ours.iter().find(|o| key.iter().all(|k| o[k] == g[k])).unwrap_or_else(|| panic!("{kind}: no row for {g}"));
        for c in counts {
            assert_eq!(row[c], g[c], "{kind} {c}: ours {row} golden {g}");
        }
        for f in floats {
            assert!(close(&row[f], &g[f]), "{kind} {f}: ours {} golden {} in {g}", row[f], g[f]);
        }
    }
}

#[test]
fn forward_returns_on_real_recordings_match_an_independent_fractions_computation() {
    let ours = evaluate_json();
    let golden: Value =
        serde_json::from_str(&std::fs::read_to_string("tests/fixtures/evaluate/golden.json").unwrap()).unwrap();
    let floats = ["mean_bps", "median_bps", "hit_rate", "stderr_bps", "t_stat"];
    let results = ours["results"].as_array().unwrap();
    check(
        "results",
        results,
        golden["results"].as_array().unwrap(),
        &["trigger", "pair", "horizon_ms"],
        &["alerts", "zero", "overlapping", "excluded"],
        &floats,
    );
    check(
        "baseline",
        ours["baseline"].as_array().unwrap(),
        golden["baseline"].as_array().unwrap(),
        &["pair", "horizon_ms"],
        &["updates", "zero", "excluded"],
        &floats,
    );
    // The data are not trivial: alerts, overlaps and exclusions all occur.
    let sum = |f: &str| results.iter().filter(|r| r["trigger"].is_null()).map(|r| r[f].as_u64().unwrap()).sum::<u64>();
    assert!(sum("alerts") > 1000 && sum("overlapping") > 100 && sum("excluded") > 10);
}
