//! `imbalance-monitor evaluate` end to end on hand-made recordings: the edge
//! cases of the forward-return definitions, sweeps against separate runs,
//! and the errors a user can make.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BTC10: &str = "tests/fixtures/btcusdt_depth10_100ms_20240808-09.txt.gz";
const ETH10: &str = "tests/fixtures/ethusdt_depth10_100ms_20240808-09.txt.gz";
const T0: u64 = 1_723_161_254_000_000_000;
const MS: u64 = 1_000_000;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("im-evaluate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One book update: milliseconds after T0, best bid and best ask as
/// (price, qty) strings, either side possibly absent.
type Update<'a> = (u64, Option<(&'a str, &'a str)>, Option<(&'a str, &'a str)>);

/// A BTCUSDT depth5 recording of `updates`.
fn recording(dir: &Path, updates: &[Update<'_>]) -> PathBuf {
    let side = |l: Option<(&str, &str)>| l.map(|(p, q)| format!(r#"[["{p}","{q}"]]"#)).unwrap_or("[]".into());
    let text: String = updates
        .iter()
        .enumerate()
        .map(|(i, (ms, bid, ask))| {
            format!(
                "{} {{\"stream\":\"btcusdt@depth5@100ms\",\"data\":{{\"lastUpdateId\":{},\"bids\":{},\"asks\":{}}}}}\n",
                T0 + ms * MS,
                i + 1,
                side(*bid),
                side(*ask)
            )
        })
        .collect();
    let path = dir.join("rec.txt");
    std::fs::write(&path, text).unwrap();
    path
}

/// A BTCUSDT depth5 config (qty volume) with `body`'s top-level keys and triggers.
fn config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("config.toml");
    let text = format!("pairs = [\"BTCUSDT\"]\n{body}\n[binance]\ndepth = 5\n[metrics]\nvolume_mode = \"qty\"\n");
    std::fs::write(&path, text).unwrap();
    path
}

fn run(config: &Path, args: &[&str], files: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imbalance-monitor"))
        .arg("evaluate")
        .arg("-c")
        .arg(config)
        .args(args)
        .args(files)
        .output()
        .unwrap()
}

/// Runs `evaluate --json` and returns the JSON.
fn json(dir: &Path, config: &Path, args: &[&str], files: &[&Path]) -> Value {
    let out_path = dir.join("out.json");
    let mut all = vec!["--json", out_path.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = run(config, &all, files);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&std::fs::read_to_string(&out_path).unwrap()).unwrap()
}

/// The result row of (trigger, pair) at `horizon_ms` (`None` = aggregate).
fn row<'a>(v: &'a Value, trigger: Option<&str>, pair: Option<&str>, horizon_ms: u64) -> &'a Value {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["trigger"].as_str() == trigger && r["pair"].as_str() == pair && r["horizon_ms"] == horizon_ms)
        .unwrap_or_else(|| panic!("no row {trigger:?} {pair:?} {horizon_ms} in {v}"))
}

const BUY_HEAVY: Option<(&str, &str)> = Some(("100.00", "9"));
const SELL_HEAVY: Option<(&str, &str)> = Some(("100.00", "1"));

#[test]
fn an_alert_whose_horizon_runs_past_the_data_is_excluded_from_that_horizon_only() {
    let dir = scratch("last-second");
    let c = config(&dir, "[[triggers]]\nname = \"buy\"\nop = \">=\"\nvalue = 0.5\nemit = \"level\"\n");
    // Buy alerts at 0 ms and at 9500 ms; the data end at 10 000 ms.
    let ask = Some(("101.00", "1"));
    let calm = Some(("100.00", "1"));
    let rec = recording(
        &dir,
        &[
            (0, BUY_HEAVY, ask),
            (5000, calm, Some(("103.00", "1"))),
            (9500, BUY_HEAVY, ask),
            (10_000, calm, Some(("102.00", "1"))),
        ],
    );
    let v = json(&dir, &c, &["--horizons", "500ms,1s"], &[&rec]);
    let half = row(&v, Some("buy"), Some("BTCUSDT"), 500);
    // Both alerts resolve at 500 ms: 9500 + 500 is exactly the last update, which counts ("at or before").
    assert_eq!((half["alerts"].as_u64(), half["excluded"].as_u64()), (Some(2), Some(0)));
    // mid 100.5 → 101 after the second alert: +49.75… bps; the first sees no update yet: 0.
    let second = (101.0 - 100.5) / 100.5 * 1e4;
    assert!((half["mean_bps"].as_f64().unwrap() - second / 2.0).abs() < 1e-9, "{half}");
    let one = row(&v, Some("buy"), Some("BTCUSDT"), 1000);
    assert_eq!((one["alerts"].as_u64(), one["excluded"].as_u64()), (Some(1), Some(1)));
    assert_eq!(
        v["excluded"]["alerts"].as_array().unwrap().iter().map(|e| e["past_end"].as_u64().unwrap()).sum::<u64>(),
        1
    );
}

#[test]
fn equal_mids_are_zero_returns_counted_apart_and_not_hits() {
    let dir = scratch("equal-mids");
    let c = config(&dir, "[[triggers]]\nname = \"buy\"\nop = \">=\"\nvalue = 0.5\nemit = \"level\"\n");
    let ask = Some(("101.00", "1"));
    // The quantities move, the prices do not.
    let rec = recording(
        &dir,
        &[(0, BUY_HEAVY, ask), (100, BUY_HEAVY, ask), (200, Some(("100.00", "5")), ask), (300, SELL_HEAVY, ask)],
    );
    let v = json(&dir, &c, &["--horizons", "100ms"], &[&rec]);
    let r = row(&v, Some("buy"), Some("BTCUSDT"), 100);
    assert_eq!((r["alerts"].as_u64(), r["zero"].as_u64(), r["hit_rate"].as_f64()), (Some(3), Some(3), Some(0.0)));
    assert_eq!((r["mean_bps"].as_f64(), r["median_bps"].as_f64()), (Some(0.0), Some(0.0)));
    // No spread at all: the t-statistic is undefined, not infinite.
    assert!(r["t_stat"].is_null() && r["stderr_bps"].as_f64() == Some(0.0), "{r}");
}

#[test]
fn alerts_closer_than_the_horizon_are_counted_as_overlapping() {
    let dir = scratch("overlap");
    let c = config(&dir, "[[triggers]]\nname = \"buy\"\nop = \">=\"\nvalue = 0.5\nemit = \"level\"\n");
    let ask = Some(("101.00", "1"));
    let updates: Vec<Update<'_>> = (0..=10).map(|i| (i * 100, BUY_HEAVY, ask)).collect();
    let rec = recording(&dir, &updates);
    let v = json(&dir, &c, &["--horizons", "100ms,300ms"], &[&rec]);
    // 100 ms apart: not closer than 100 ms, so no overlap; at 300 ms every alert after the first overlaps.
    let short = row(&v, Some("buy"), Some("BTCUSDT"), 100);
    assert_eq!((short["alerts"].as_u64(), short["overlapping"].as_u64()), (Some(10), Some(0)));
    let long = row(&v, Some("buy"), Some("BTCUSDT"), 300);
    assert_eq!(
        (long["alerts"].as_u64(), long["overlapping"].as_u64(), long["excluded"].as_u64()),
        (Some(8), Some(7), Some(3))
    );
    assert_eq!(row(&v, None, None, 300)["overlapping"].as_u64(), Some(7));
}

#[test]
fn a_down_alert_scores_positive_when_the_price_falls() {
    let dir = scratch("down");
    let c = config(&dir, "[[triggers]]\nname = \"sell\"\nop = \"<=\"\nvalue = -0.5\n");
    let rec =
        recording(&dir, &[(0, SELL_HEAVY, Some(("101.00", "9"))), (1000, Some(("99.00", "1")), Some(("100.00", "1")))]);
    let v = json(&dir, &c, &["--horizons", "1s"], &[&rec]);
    let r = row(&v, Some("sell"), Some("BTCUSDT"), 1000);
    let expected = -(99.5 - 100.5) / 100.5 * 1e4;
    assert!((r["mean_bps"].as_f64().unwrap() - expected).abs() < 1e-9, "{r}");
    assert_eq!(r["hit_rate"].as_f64(), Some(1.0));
}

#[test]
fn a_trigger_without_a_direction_is_reported_and_counted_not_evaluated() {
    let dir = scratch("no-direction");
    let triggers = "[[triggers]]\nname = \"wide\"\nmetric = \"spread_bps\"\nop = \">\"\nvalue = 50\nemit = \"level\"\n\
                    [[triggers]]\nname = \"wide_down\"\nmetric = \"spread_bps\"\nop = \">\"\nvalue = 50\nemit = \"level\"\ndirection = \"down\"\n";
    let c = config(&dir, triggers);
    let ask = Some(("101.00", "1"));
    let rec = recording(&dir, &[(0, BUY_HEAVY, ask), (100, BUY_HEAVY, ask), (200, BUY_HEAVY, ask)]);
    let v = json(&dir, &c, &["--horizons", "100ms"], &[&rec]);
    let nd = &v["excluded"]["no_direction"];
    assert_eq!(nd.as_array().unwrap().len(), 1);
    assert_eq!((nd[0]["trigger"].as_str(), nd[0]["alerts"].as_u64()), (Some("wide"), Some(3)));
    assert!(v["results"].as_array().unwrap().iter().all(|r| r["trigger"] != "wide"));
    assert_eq!(row(&v, Some("wide_down"), Some("BTCUSDT"), 100)["alerts"].as_u64(), Some(2));
    let out = run(&c, &["--horizons", "100ms"], &[&rec]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no direction: wide (3 alerts not evaluated)"), "{text}");
}

#[test]
fn a_one_sided_book_has_no_mid_for_an_alert_nor_as_the_later_mid() {
    let dir = scratch("one-sided");
    let c = config(&dir, "[[triggers]]\nname = \"buy\"\nop = \">=\"\nvalue = 0.5\nemit = \"level\"\n");
    let rec = recording(
        &dir,
        &[
            (0, BUY_HEAVY, Some(("101.00", "1"))),
            // No asks: imbalance 1, the trigger fires, but there is no mid.
            (300, Some(("104.00", "1")), None),
            (1000, SELL_HEAVY, Some(("101.00", "1"))),
        ],
    );
    let v = json(&dir, &c, &["--horizons", "500ms"], &[&rec]);
    let r = row(&v, Some("buy"), Some("BTCUSDT"), 500);
    // The first alert's mid(t+500ms) is its own book's (the one-sided book is skipped): 0 bps.
    assert_eq!((r["alerts"].as_u64(), r["no_mid"].as_u64(), r["mean_bps"].as_f64()), (Some(1), Some(1), Some(0.0)));
    let base = v["baseline"].as_array().unwrap().iter().find(|b| b["horizon_ms"] == 500).unwrap();
    assert_eq!(
        (base["updates"].as_u64(), base["no_mid"].as_u64(), base["excluded"].as_u64()),
        (Some(1), Some(1), Some(1))
    );
}

/// The overall rows of a JSON, keyed by variant (or "" without a sweep).
fn overall(v: &Value) -> Vec<(String, u64, u64, Option<f64>)> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["trigger"].is_null())
        .map(|r| {
            (
                r["variant"].to_string(),
                r["horizon_ms"].as_u64().unwrap(),
                r["alerts"].as_u64().unwrap(),
                r["mean_bps"].as_f64(),
            )
        })
        .collect()
}

#[test]
fn a_sweep_in_one_pass_gives_each_variant_what_a_separate_run_gives() {
    let dir = scratch("sweep");
    let base = "pairs = [\"BTCUSDT\", \"ETHUSDT\"]\n";
    let write = |name: &str, body: String| {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    };
    let files = [Path::new(BTC10), Path::new(ETH10)];
    let swept =
        write("swept.toml", format!("{base}threshold = 0.5\ncooldown_sec = 5\n[metrics]\nvolume_mode = \"qty\"\n"));
    let v = json(&dir, &swept, &["--horizons", "1s,30s", "--sweep", "value=0.3,0.6", "--sweep", "top_n=5,10"], &files);
    let rows = overall(&v);
    assert_eq!(rows.len(), 4 * 2);
    for (value, top_n) in [("0.3", 5), ("0.3", 10), ("0.6", 5), ("0.6", 10)] {
        let single = write(
            "single.toml",
            format!(
                "pairs = [\"BTCUSDT\", \"ETHUSDT\"]\nthreshold = {value}\ncooldown_sec = 5\n[metrics]\nvolume_mode = \"qty\"\ntop_n = {top_n}\n"
            ),
        );
        let alone = overall(&json(&dir, &single, &["--horizons", "1s,30s"], &files));
        let key = format!("{{\"top_n\":{top_n},\"value\":{value}}}");
        let ours: Vec<_> = rows.iter().filter(|r| r.0 == key).map(|r| (r.1, r.2, r.3)).collect();
        let theirs: Vec<_> = alone.iter().map(|r| (r.1, r.2, r.3)).collect();
        assert_eq!(ours, theirs, "variant {key}");
        assert!(ours.iter().all(|r| r.1 > 0));
    }
}

#[test]
fn a_cooldown_sweep_matches_separate_runs() {
    let dir = scratch("sweep-cooldown");
    let files = [Path::new(BTC10)];
    let cfg = |cooldown: &str| {
        let p = dir.join(format!("c{cooldown}.toml"));
        std::fs::write(&p, format!("pairs = [\"BTCUSDT\"]\nthreshold = 0.4\ncooldown_sec = {cooldown}\n")).unwrap();
        p
    };
    let v = json(&dir, &cfg("10"), &["--horizons", "5s", "--sweep", "cooldown_sec=0,30"], &files);
    for c in ["0", "30"] {
        let alone = overall(&json(&dir, &cfg(c), &["--horizons", "5s"], &files));
        let ours: Vec<_> = overall(&v)
            .into_iter()
            .filter(|r| r.0 == format!("{{\"cooldown_sec\":{c}}}"))
            .map(|r| (r.2, r.3))
            .collect();
        assert_eq!(ours, alone.iter().map(|r| (r.2, r.3)).collect::<Vec<_>>(), "cooldown {c}");
    }
}

#[test]
fn the_plot_and_csv_are_written_for_a_sweep() {
    let dir = scratch("plot");
    let c = dir.join("c.toml");
    std::fs::write(&c, "pairs = [\"BTCUSDT\"]\nthreshold = 0.5\n").unwrap();
    let (png, svg, csv) = (dir.join("s.png"), dir.join("s.svg"), dir.join("s.csv"));
    for plot in [&png, &svg] {
        let out = run(
            &c,
            &[
                "--horizons",
                "1s,5s",
                "--sweep",
                "value=0.2:0.6:0.2",
                "--plot",
                plot.to_str().unwrap(),
                "--csv",
                csv.to_str().unwrap(),
            ],
            &[Path::new(BTC10)],
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("sweep of value: 3 variants in one pass (1 engine(s))") && text.contains("value=0.4 "),
            "{text}"
        );
    }
    assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.contains("hit rate (%)") && svg_text.contains("mean return (bps)"));
    let csv_text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = csv_text.lines();
    assert!(lines.next().unwrap().starts_with("kind,variant,trigger,pair,horizon_ms,n,mean_bps"));
    // 3 variants × 2 horizons × (2 triggers × (1 pair + all) + overall) + 2 baseline rows.
    assert_eq!(lines.clone().count(), 3 * 2 * 5 + 2);
    assert!(lines.any(|l| l.starts_with("result,value=0.6,imbalance_sell,BTCUSDT,5000,")));
}

#[test]
fn usage_errors_exit_2_before_reading_and_name_the_argument() {
    let dir = scratch("usage");
    let c = config(&dir, "threshold = 0.5\n");
    let missing = dir.join("missing.txt.gz");
    for (args, says) in [
        (vec!["--horizons", "1s,5"], "--horizons: \"5\" has no unit"),
        (vec!["--sweep", "decay=0.1"], "sweepable keys are value, top_n and cooldown_sec"),
        (vec!["--sweep", "value=1.2"], "--sweep value: 1.2 is outside imbalance_ratio [-1, 1]"),
        (vec!["--sweep", "top_n=10"], "--sweep top_n=10 is more than binance.depth (5)"),
        (vec!["--plot", "x.jpg", "--sweep", "value=0.1"], "name the file .png or .svg"),
        (vec!["--plot", "x.png"], "give exactly one --sweep"),
    ] {
        let out = run(&c, &args, &[&missing]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let out = run(&c, &[], &[&missing]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.txt.gz: cannot open"));
}

/// The text between `start` (included) and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("README has no {start:?}"));
    let len = text[from..].find(end).unwrap();
    &text[from..from + len]
}

#[test]
fn the_readme_worked_example_is_what_the_command_prints() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let section = between(&readme, "## Is the signal any good?", "\n## ");
    let toml = between(section, "pairs = [", "TOML\n");
    let table = between(section, "== evaluate: 2 file(s)", "```");
    let dir = scratch("readme");
    let c = dir.join("eval.toml");
    std::fs::write(&c, toml).unwrap();
    let out = run(&c, &["--horizons", "1s,30s"], &[Path::new(BTC10), Path::new(ETH10)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout);
    // The README leaves out the closing legend line, which its text explains.
    let printed: Vec<&str> = printed.lines().filter(|l| !l.starts_with("excluded: alerts whose")).collect();
    assert_eq!(printed.join("\n").trim_end(), table.trim_end());
}
