//! The history in a real PostgreSQL server the test starts itself: a replay
//! backfill (samples through COPY), and a live run against the simulator
//! with Telegram mocked through a 10 s outage of the server.
//!
//! Without PostgreSQL's server binaries each test prints a loud SKIPPED line
//! and passes; `.ci/run` installs the `postgresql` package so CI runs them.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use imbalance_monitor::config::{Config, HistoryBackend};
use imbalance_monitor::history::{self, Filter};
use imbalance_monitor::run::{RunOptions, Runner};
use imbalance_monitor::simulator::{Rate, SimOptions, Simulator};
use imbalance_monitor::units::UnixNanos;
use support::history::{
    assert_alert_rows_equal_journal, assert_samples_are_exact, evaluated, journal_alerts, replay, replay_config,
};
use support::live::{recording, scratch, wait_until};
use support::mock_bot_api::MockBotApi;
use support::postgres::PgServer;
use support::trace_log;

fn backend(config: &Path) -> HistoryBackend {
    Config::load(config).unwrap().history.unwrap().backend
}

#[test]
fn a_replay_backfills_postgres_with_the_rows_sqlite_gets() {
    let Some(pg) = PgServer::start("replay") else { return };
    let dir = scratch("hist-pg-replay");
    let config = replay_config(&dir, &format!("backend = \"postgres\"\nurl = {:?}", pg.url()));
    let journal = dir.join("alerts.jsonl");
    let summary = replay(&config, &journal);
    let mut db = history::open(&backend(&config)).unwrap();
    let samples = db.samples(&Filter::default()).unwrap();
    let alerts = db.alerts(&Filter::default()).unwrap();
    let journal = journal_alerts(&journal);
    assert_samples_are_exact(&samples, evaluated(&summary), &journal);
    assert_alert_rows_equal_journal(&alerts, &journal);

    // The same recording into SQLite stores exactly the same rows.
    let lite = scratch("hist-pg-replay-lite");
    let lite_config = replay_config(&lite, &format!("path = {:?}", lite.join("h.sqlite")));
    replay(&lite_config, &lite.join("alerts.jsonl"));
    let mut lite_db = history::open(&backend(&lite_config)).unwrap();
    assert_eq!(lite_db.samples(&Filter::default()).unwrap(), samples);
    assert_eq!(lite_db.alerts(&Filter::default()).unwrap(), alerts);
}

const TOKEN: &str = "123456789:AAEhistorytesthistorytesthistory1";

#[test]
fn a_postgres_outage_mid_run_loses_no_alert_and_is_logged_once() {
    let Some(pg) = PgServer::start("outage") else { return };
    trace_log::install();
    let dir = scratch("hist-pg-live");
    let mock = MockBotApi::builder(TOKEN).private_chat(42).flood_interval(None).start();
    let sim = Simulator::start(SimOptions {
        tls: true,
        replay: vec![recording(&dir, 2000)],
        rate: Rate::PerSecond(50),
        looped: true,
        ..SimOptions::default()
    })
    .unwrap();
    let journal = dir.join("alerts.jsonl");
    let text = format!(
        "pairs = [\"BTCUSDT\"]\n[binance]\nws_url = {:?}\nca_file = {:?}\n[alerts]\njournal = {:?}\n\
         [telegram]\nenabled = true\nbot_token = {TOKEN:?}\nchat_ids = [42]\napi_base = {:?}\n\
         [[triggers]]\nname = \"buy\"\nop = \">=\"\nvalue = 0.1\nemit = \"level\"\ncooldown_sec = 1\n\
         [[triggers]]\nname = \"sell\"\nop = \"<=\"\nvalue = -0.1\nemit = \"level\"\ncooldown_sec = 1\n\
         [history]\nbackend = \"postgres\"\nurl = {:?}\nsample_ms = 1000\n",
        sim.url(),
        sim.ca_path().unwrap(),
        journal,
        mock.base_url(),
        pg.url()
    );
    let config = Config::from_toml(&dir.join("config.toml"), &text).unwrap();
    let runner = Runner::start(&config, RunOptions::default()).unwrap();
    let alerts_in_journal = || journal_alerts(&journal).len();
    wait_until("alerts before the outage", Duration::from_secs(30), || alerts_in_journal() >= 2);

    // The seconds (the samples' clock) the server was down in.
    let second = || i64::try_from(UnixNanos::now().0 / 1_000_000_000).unwrap();
    let stopped_at = second();
    pg.pg_ctl_stop();
    let before = alerts_in_journal();
    wait_until("the failure in the log", Duration::from_secs(30), || {
        !trace_log::lines_containing("HISTORY | history database").is_empty()
    });
    std::thread::sleep(Duration::from_secs(10));
    let during = alerts_in_journal() - before;
    pg.pg_ctl_start();
    let restarted_at = second();
    wait_until("writes to succeed again", Duration::from_secs(30), || {
        !trace_log::lines_containing("writes succeed again").is_empty()
    });
    let resumed = alerts_in_journal();
    wait_until("alerts after the outage", Duration::from_secs(30), || alerts_in_journal() >= resumed + 2);
    runner.stop_handle().stop();
    runner.wait();

    let lines = journal_alerts(&journal);
    assert!(during >= 3, "alerts fired while PostgreSQL was down: {during}");
    let mut db = history::open(&config.history.as_ref().unwrap().backend).unwrap();
    // Every journaled alert is in the table, none twice, none journaled as not stored.
    let stored = db.alerts(&Filter::default()).unwrap();
    let ids: Vec<String> = stored.iter().filter_map(|a| a.alert_id.clone()).collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len(), "an alert stored twice");
    let journaled: HashSet<String> = lines.iter().map(|l| l["alert_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.iter().cloned().collect::<HashSet<_>>(), journaled);
    let raw = std::fs::read_to_string(&journal).unwrap();
    assert!(!raw.contains("history_not_stored"), "{raw}");
    // Delivery outcomes are stored too, one per journaled delivery line.
    let deliveries = db.deliveries(&Filter::default()).unwrap();
    let journaled_deliveries = raw.lines().filter(|l| l.contains("\"type\":\"delivery\"")).count();
    assert!(journaled_deliveries > 0);
    assert_eq!(deliveries.len(), journaled_deliveries);
    assert!(deliveries.iter().all(|d| d.sink == "telegram" && d.chat_id == "42" && journaled.contains(&d.alert_id)));

    // One failure line for the whole streak, one recovery line.
    assert_eq!(trace_log::lines_containing("HISTORY | history database").len(), 1, "{:?}", trace_log::lines());
    assert_eq!(trace_log::lines_containing("writes succeed again").len(), 1);

    // Samples: at most one per pair per second, none missing, and the
    // seconds of the outage are there too.
    let samples = db.samples(&Filter::default()).unwrap();
    let mut per_second: BTreeMap<i64, usize> = BTreeMap::new();
    for s in &samples {
        *per_second.entry(s.time_ns / 1_000_000_000).or_default() += 1;
    }
    assert!(per_second.values().all(|&n| n == 1), "{per_second:?}");
    let seconds: Vec<i64> = per_second.keys().copied().collect();
    assert!(seconds.windows(2).all(|w| w[1] - w[0] == 1), "a second without a sample: {seconds:?}");
    assert!(
        seconds.first().is_some_and(|&s| s <= stopped_at) && seconds.last().is_some_and(|&s| s >= restarted_at),
        "the outage ({stopped_at}..={restarted_at}) is not covered: {seconds:?}"
    );
}
