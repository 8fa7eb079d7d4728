//! `replay` into the embedded SQLite history, read back through the
//! library and the `history` command.

mod support;

use std::process::Command;

use imbalance_monitor::config::HistoryBackend;
use imbalance_monitor::history::{self, Filter};
use support::history::{
    assert_alert_rows_equal_journal, assert_samples_are_exact, evaluated, journal_alerts, replay, replay_config,
};
use support::live::scratch;

fn history_cmd(config: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_imbalance-monitor"))
        .arg("history")
        .arg("-c")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_replay_backfills_sqlite_with_every_evaluated_update_and_the_journals_alerts() {
    let dir = scratch("hist-sqlite");
    let db_path = dir.join("sub/history.sqlite");
    let config = replay_config(&dir, &format!("path = {:?}", db_path));
    let journal = dir.join("alerts.jsonl");
    let summary = replay(&config, &journal);
    let evaluated = evaluated(&summary);
    assert!(summary.contains(&format!("history: {evaluated} sample(s)")), "{summary}");

    let backend = HistoryBackend::Sqlite { path: db_path.clone() };
    let mut db = history::open(&backend).unwrap();
    let samples = db.samples(&Filter::default()).unwrap();
    let alerts = db.alerts(&Filter::default()).unwrap();
    let journal = journal_alerts(&journal);
    assert_samples_are_exact(&samples, evaluated, &journal);
    // Replay alerts carry no id, in the journal as in the table.
    assert!(alerts.iter().all(|a| a.alert_id.is_none()));
    assert_alert_rows_equal_journal(&alerts, &journal);
    // Metrics no trigger needs are not computed: NULL, not a made-up value.
    assert!(samples.iter().all(|s| s.spread_bps.is_none() && s.ofi.is_none()));

    // `history` prints the same rows back: CSV with a header, filtered by pair and time.
    let csv = history_cmd(&config, &["--alerts", "--csv"]);
    assert_eq!(csv.lines().count(), alerts.len() + 1);
    assert!(csv.starts_with("time,time_ns,alert_id,venue,pair,trigger,"), "{csv}");
    let eth: Vec<_> = samples.iter().filter(|s| s.pair == "ETHUSDT").collect();
    let (from, to) = (eth[10].time_ns, eth[20].time_ns);
    let table = history_cmd(
        &config,
        &[
            "--pair",
            "ethusdt",
            "--from",
            &from.to_string(),
            "--to",
            &imbalance_monitor::units::UnixNanos(to as u64).to_string(),
        ],
    );
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 11, "{table}");
    assert!(lines[0].starts_with("time") && lines[0].contains("imbalance_ratio"), "{table}");
    assert!(lines[1].contains("ETHUSDT") && lines[1].contains(&eth[10].last_update_id.to_string()), "{table}");
    assert!(lines[1..].iter().all(|l| l.contains("ETHUSDT")));
}

#[test]
fn history_without_a_history_section_is_a_config_error() {
    let dir = scratch("hist-nosection");
    let config = dir.join("c.toml");
    std::fs::write(&config, "pairs = [\"BTCUSDT\"]\n").unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_imbalance-monitor")).args(["history", "-c"]).arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no [history] section"));
}
