//! What the history tests share: a replay config, running `replay` through
//! the real binary, and checking stored rows against the journal and the
//! exact reference (`tests/fixtures/metrics_golden.txt`, Python `fractions`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use imbalance_monitor::history::rows::{AlertRow, SampleRow};

pub const BTC10: &str = "tests/fixtures/btcusdt_depth10_100ms_20240808-09.txt.gz";
pub const ETH10: &str = "tests/fixtures/ethusdt_depth10_100ms_20240808-09.txt.gz";

/// Two pairs, notional top 10, triggers that fire often (cooldown 0), and
/// the given `[history]` body with `sample_ms = 0`.
pub fn replay_config(dir: &Path, history: &str) -> PathBuf {
    let text = format!(
        "pairs = [\"BTCUSDT\", \"ETHUSDT\"]\n\
         [[triggers]]\nname = \"buy\"\nop = \">=\"\nvalue = 0.25\ncooldown_sec = 0\n\
         [[triggers]]\nname = \"sell\"\nop = \"<=\"\nvalue = -0.25\ncooldown_sec = 0\n\
         [history]\nsample_ms = 0\n{history}\n"
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `imbalance-monitor replay` on both recordings; returns stdout.
pub fn replay(config: &Path, journal: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_imbalance-monitor"))
        .arg("replay")
        .arg("-c")
        .arg(config)
        .arg("--journal")
        .arg(journal)
        .args([BTC10, ETH10])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "replay failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// `evaluated: N` from the replay summary.
pub fn evaluated(summary: &str) -> usize {
    summary
        .split(" | ")
        .find_map(|part| part.trim().strip_prefix("evaluated: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no evaluated count in {summary}"))
}

/// The journal's alert lines. `value` is re-read from the line's text with
/// Rust's correctly rounded parser (serde_json's default float parsing may
/// be an ulp off) and kept as `value_exact`.
pub fn journal_alerts(journal: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(journal)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v = serde_json::from_str::<serde_json::Value>(l).unwrap();
            if let Some(rest) = l.split_once("\"value\":").map(|(_, r)| r) {
                let text = rest.split([',', '}']).next().unwrap();
                v["value_exact"] = serde_json::Value::String(text.to_string());
            }
            v
        })
        .filter(|v| v.get("type").is_none())
        .collect()
}

/// The alert line's `value`, parsed exactly.
pub fn value(line: &serde_json::Value) -> f64 {
    line["value_exact"].as_str().unwrap().parse().unwrap()
}

/// Every field of an `alerts` row equals its journal line's. The table is
/// read by time; the journal is in replay order (file after file), so both
/// are put in (time, pair, trigger) order first.
pub fn assert_alert_rows_equal_journal(rows: &[AlertRow], journal: &[serde_json::Value]) {
    assert_eq!(rows.len(), journal.len(), "one alerts row per journal alert line");
    assert!(!rows.is_empty());
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| (a.time_ns, &a.pair, &a.trigger).cmp(&(b.time_ns, &b.pair, &b.trigger)));
    let mut journal = journal.to_vec();
    journal.sort_by_key(|l| {
        (l["recv_ns"].as_i64(), l["pair"].as_str().map(str::to_string), l["trigger"].as_str().map(str::to_string))
    });
    for (row, line) in rows.iter().zip(&journal) {
        let text = |k: &str| line[k].as_str().map(str::to_string);
        assert_eq!(row.alert_id, text("alert_id"), "{line}");
        assert_eq!(row.time_ns, line["recv_ns"].as_i64().unwrap(), "{line}");
        assert_eq!(row.venue, "binance");
        assert_eq!(Some(row.pair.clone()), text("pair"), "{line}");
        assert_eq!(Some(row.trigger.clone()), text("trigger"), "{line}");
        assert_eq!(row.metric, text("metric"), "{line}");
        assert_eq!(row.op, text("op"), "{line}");
        assert_eq!(row.threshold, line["threshold"].as_f64(), "{line}");
        assert_eq!(row.value, value(line), "{line}");
        assert_eq!(row.last_update_id, line["last_update_id"].as_i64().unwrap(), "{line}");
        assert_eq!(Some(row.bid_volume.clone()), text("bid_volume"), "{line}");
        assert_eq!(Some(row.ask_volume.clone()), text("ask_volume"), "{line}");
        assert_eq!(row.best_bid, text("best_bid"), "{line}");
        assert_eq!(row.best_ask, text("best_ask"), "{line}");
    }
}

/// The exact `imbalance_notional` (top 10) of the first frames of each
/// recording, by (pair, lastUpdateId), correctly rounded to `f64`.
pub fn exact_reference() -> HashMap<(String, i64), f64> {
    let text = std::fs::read_to_string("tests/fixtures/metrics_golden.txt").unwrap();
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut parts = line.split(' ');
        let file = parts.next().unwrap();
        let pair = file.split('_').next().unwrap().to_ascii_uppercase();
        let _idx = parts.next();
        let id: i64 = parts.next().unwrap().parse().unwrap();
        let frac = parts.find_map(|kv| kv.strip_prefix("imbalance_notional=")).unwrap();
        let (num, den) = frac.split_once('/').unwrap();
        let (num, den): (i64, i64) = (num.parse().unwrap(), den.parse().unwrap());
        // Both below 2^53: one IEEE division is the correctly rounded value.
        assert!(num.unsigned_abs() < 1 << 53 && den.unsigned_abs() < 1 << 53, "{line}");
        out.insert((pair, id), num as f64 / den as f64);
    }
    out
}

/// Samples: one per evaluated update, ratios equal to the exact reference
/// where it has the frame and to every journal alert's value.
pub fn assert_samples_are_exact(samples: &[SampleRow], evaluated: usize, journal: &[serde_json::Value]) {
    assert_eq!(samples.len(), evaluated, "one samples row per evaluated update");
    let by_update: HashMap<(String, i64), &SampleRow> =
        samples.iter().map(|s| ((s.pair.clone(), s.last_update_id), s)).collect();
    let reference = exact_reference();
    let mut checked = 0;
    for (key, want) in &reference {
        if let Some(s) = by_update.get(key) {
            assert_eq!(s.imbalance_ratio, *want, "{key:?}");
            checked += 1;
        }
    }
    assert!(checked >= 500, "only {checked} samples had a reference frame");
    for line in journal {
        let key = (line["pair"].as_str().unwrap().to_string(), line["last_update_id"].as_i64().unwrap());
        let s = by_update.get(&key).unwrap_or_else(|| panic!("no sample for alert {line}"));
        assert_eq!(s.imbalance_ratio, value(line), "{line}");
        assert_eq!(s.time_ns, line["recv_ns"].as_i64().unwrap());
        assert_eq!(Some(s.bid_volume.clone()), line["bid_volume"].as_str().map(str::to_string));
        assert_eq!(s.best_ask, line["best_ask"].as_str().map(str::to_string));
    }
}
