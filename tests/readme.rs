//! The README's configuration reference lists exactly the keys the code
//! accepts. The accepted keys are read from the code itself: each table is
//! fed an unknown key and serde's `deny_unknown_fields` error names every
//! field it expected.

use std::collections::BTreeSet;
use std::path::Path;

use imbalance_monitor::config::Config;

/// (a TOML snippet placing `zzz_unknown` in a table, the README prefix of that table's keys)
const TABLES: [(&str, &str); 12] = [
    ("zzz_unknown = 1\n", ""),
    ("[binance]\nzzz_unknown = 1\n", "binance."),
    ("[metrics]\nzzz_unknown = 1\n", "metrics."),
    ("[[triggers]]\nzzz_unknown = 1\n", "triggers[]."),
    ("[[triggers]]\nall = [{ zzz_unknown = 1 }]\n", "triggers[].all[]."),
    ("[pair_overrides.BTCUSDT]\nzzz_unknown = 1\n", "pair_overrides.<PAIR>."),
    ("[pair_overrides.BTCUSDT.triggers.x]\nzzz_unknown = 1\n", "pair_overrides.<PAIR>.triggers.<NAME>."),
    ("[alerts]\nzzz_unknown = 1\n", "alerts."),
    ("[runtime]\nzzz_unknown = 1\n", "runtime."),
    ("[log]\nzzz_unknown = 1\n", "log."),
    ("[metrics_http]\nzzz_unknown = 1\n", "metrics_http."),
    ("[history]\nzzz_unknown = 1\n", "history."),
];

/// Keys that are tables themselves, documented through their own keys.
const CONTAINERS: [&str; 11] = [
    "binance",
    "metrics",
    "triggers",
    "pair_overrides",
    "alerts",
    "runtime",
    "log",
    "metrics_http",
    "telegram",
    "history",
    "pair_overrides.<PAIR>.triggers",
];

/// The fields serde expected, from its unknown-field message.
fn expected_fields(snippet: &str) -> Vec<String> {
    let err =
        Config::from_toml(Path::new("probe.toml"), snippet).expect_err("zzz_unknown must be rejected").to_string();
    let (_, expected) = err.split_once("expected").unwrap_or_else(|| panic!("no field list in: {err}"));
    expected.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

fn accepted_keys() -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut tables: Vec<(String, String)> = TABLES.iter().map(|(s, p)| (s.to_string(), p.to_string())).collect();
    tables.push(("[telegram]\nzzz_unknown = 1\n".into(), "telegram.".into()));
    for (snippet, prefix) in tables {
        for field in expected_fields(&snippet) {
            let key = format!("{prefix}{field}");
            if !CONTAINERS.contains(&key.as_str()) {
                keys.insert(key);
            }
        }
    }
    keys
}

/// Keys in the first column of the tables under "## Configuration reference".
fn documented_keys() -> BTreeSet<String> {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let section = readme.split("\n## Configuration reference").nth(1).expect("a Configuration reference section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_readme_documents_every_config_key_and_nothing_else() {
    let accepted = accepted_keys();
    let documented = documented_keys();
    assert!(accepted.len() > 50, "{accepted:?}");
    let missing: Vec<_> = accepted.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&accepted).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "undocumented keys: {missing:?}\ndocumented but not accepted: {extra:?}"
    );
}

#[test]
fn the_shipped_config_and_the_telegram_sample_use_only_documented_keys() {
    // Both load, so every key in them is accepted, hence documented.
    Config::from_toml(Path::new("config/config.toml"), &std::fs::read_to_string("config/config.toml").unwrap())
        .unwrap();
    let sample = std::fs::read_to_string("src/config/telegram_sample.toml").unwrap();
    Config::from_toml(Path::new("sample.toml"), &sample).unwrap();
}

#[test]
fn the_readme_quick_start_is_the_ci_test_command() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let ci = std::fs::read_to_string(".ci/run").unwrap();
    assert!(readme.contains("cargo test"), "README names the test command");
    assert!(ci.lines().any(|l| l.trim() == "cargo test"), "CI runs it");
}
