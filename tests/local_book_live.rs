//! The local book live over `wss://` against the simulator (the real
//! binary, real sockets, real TLS): diff events plus REST snapshots give
//! the alerts a replay of the same recording gives; gaps are detected and
//! resynced; `429`/`418` are honoured; with the REST side down the pair stays
//! unsynced and `/healthz` says so.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use imbalance_monitor::simulator::{Rate, RunningSimulator, SimOptions, Simulator, SnapshotStatus};
use support::live::{http_get, scratch, wait_until};

const BTC_DIFFS: [&str; 2] = ["tests/fixtures/btcusdt_20240808.gz", "tests/fixtures/btcusdt_20240809.gz"];

/// Level triggers fire on every book that satisfies them and edge triggers
/// on every crossing, so the comparison covers both kinds of state.
const TRIGGERS: &str = r#"
[[triggers]]
name = "buy"
op = ">="
value = 0.5
emit = "level"
cooldown_sec = 0
[[triggers]]
name = "sell_edge"
op = "<="
value = -0.5
emit = "edge"
cooldown_sec = 0
[[triggers]]
name = "micro"
metric = "microprice_offset_bps"
op = ">"
value = 0.05
emit = "level"
cooldown_sec = 0
"#;

fn sim(extra: SimOptions) -> RunningSimulator {
    Simulator::start(SimOptions {
        tls: true,
        replay: BTC_DIFFS.iter().map(PathBuf::from).collect(),
        rate: Rate::PerSecond(20_000),
        ..extra
    })
    .unwrap()
}

/// The run's config against `s`, in `dir`; `extra` goes into `[binance]`.
fn write_config(dir: &Path, s: &RunningSimulator, binance_extra: &str, tail: &str) -> PathBuf {
    let path = dir.join("config.toml");
    let mut f = std::fs::File::create(&path).unwrap();
    write!(
        f,
        "pairs = [\"BTCUSDT\"]\n[binance]\nbook = \"diff\"\nws_url = {:?}\nrest_url = {:?}\nca_file = {:?}\nstale_after_ms = 1500\n{binance_extra}\n[metrics]\ntop_n = 10\n[alerts]\njournal = {:?}\n[log]\nfile = {:?}\n{tail}\n{TRIGGERS}",
        s.url(),
        s.rest_url(),
        s.ca_path().unwrap(),
        dir.join("alerts.jsonl"),
        dir.join("im.log"),
    )
    .unwrap();
    path
}

fn spawn(config: &Path, record: Option<&Path>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imbalance-monitor"));
    cmd.arg("run").arg("-c").arg(config);
    if let Some(r) = record {
        cmd.arg("--record").arg(r);
    }
    cmd.env_remove("TELEGRAM_BOT_TOKEN")
        .env_remove("TELEGRAM_CHAT_ID")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn stop(child: Child) {
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("im.log")).unwrap_or_default()
}

/// Waits for the recording to have been played out: the feed goes stale.
fn wait_for_the_end(dir: &Path) {
    wait_until("the recording to end (stale feed)", Duration::from_secs(120), || {
        log(dir).contains("no data frame for 1500 ms")
    });
}

/// (trigger, last_update_id, value, volumes) of each journal line: what an
/// alert says about the book, without the receive time.
fn alerts(journal: &Path) -> Vec<(String, u64, String, String, String)> {
    std::fs::read_to_string(journal)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["trigger"].as_str().unwrap().to_string(),
                v["last_update_id"].as_u64().unwrap(),
                v["value"].to_string(),
                v["bid_volume"].to_string(),
                v["ask_volume"].to_string(),
            )
        })
        .collect()
}

/// Replays `recording` with the run's config into its own journal.
fn replay(dir: &Path, config: &Path, recording: &Path) -> Vec<(String, u64, String, String, String)> {
    let journal = dir.join("replayed.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_imbalance-monitor"))
        .arg("replay")
        .arg("-c")
        .arg(config)
        .arg("--journal")
        .arg(&journal)
        .arg(recording)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    alerts(&journal)
}

#[test]
fn live_diff_book_gives_the_alerts_a_replay_of_its_recording_gives() {
    let dir = scratch("lb-live");
    let s = sim(SimOptions::default());
    let cfg = write_config(&dir, &s, "", "");
    let rec = dir.join("rec.txt");
    let child = spawn(&cfg, Some(&rec));
    wait_for_the_end(&dir);
    stop(child);
    let live = alerts(&dir.join("alerts.jsonl"));
    assert!(live.len() > 300, "only {} live alerts", live.len());
    let text = log(&dir);
    assert!(text.contains("BOOK | BTCUSDT synced from snapshot lastUpdateId="), "{text}");
    assert!(
        s.requests().iter().any(|r| r.target == "/api/v3/depth?symbol=BTCUSDT&limit=1000" && r.status == Some(200))
    );
    // The recording holds the snapshot the run used, tagged with its symbol.
    let recorded = std::fs::read_to_string(&rec).unwrap();
    assert!(recorded.lines().any(|l| l.contains(r#" {"lastUpdateId":"#) && l.contains(r#""symbol":"BTCUSDT""#)));
    assert_eq!(replay(&dir, &cfg, &rec), live);
}

#[test]
fn every_gap_is_detected_and_resynced_and_the_alerts_equal_a_replay() {
    let dir = scratch("lb-gaps");
    let s = sim(SimOptions { gap_every: Some(400), ..SimOptions::default() });
    let cfg = write_config(&dir, &s, "", "");
    let rec = dir.join("rec.txt");
    let child = spawn(&cfg, Some(&rec));
    wait_for_the_end(&dir);
    stop(child);
    let text = log(&dir);
    let syncs = text.matches("BOOK | BTCUSDT synced from snapshot").count();
    // 6,495 events, one in 400 skipped: 16 gaps, each followed by a sync.
    assert!(syncs >= 15, "{syncs} syncs:\n{text}");
    assert!(text.contains("update-id gap, resyncing"), "{text}");
    let requests = s.requests().len();
    assert!(requests >= syncs, "{requests} snapshot requests for {syncs} syncs");
    let live = alerts(&dir.join("alerts.jsonl"));
    assert!(live.len() > 200, "only {} live alerts", live.len());
    assert_eq!(replay(&dir, &cfg, &rec), live);
}

#[test]
fn rate_limit_and_ban_answers_are_waited_out_before_asking_again() {
    for status in [429u16, 418] {
        let dir = scratch(&format!("lb-{status}"));
        let s = sim(SimOptions {
            snapshot_status: Some(SnapshotStatus { status, count: 1 }),
            retry_after: Duration::from_secs(2),
            ..SimOptions::default()
        });
        let cfg = write_config(&dir, &s, "", "");
        let child = spawn(&cfg, None);
        wait_until("the book to sync after the refusal", Duration::from_secs(60), || {
            log(&dir).contains("BOOK | BTCUSDT synced from snapshot")
        });
        stop(child);
        let requests = s.requests();
        let first = requests.first().expect("a snapshot request");
        assert_eq!(first.status, Some(status));
        let second = requests.get(1).expect("a second request after Retry-After");
        assert_eq!(second.status, Some(200));
        assert!(
            second.recv_unix_ns >= first.recv_unix_ns + 2_000_000_000,
            "{status}: asked again {} ms after the refusal, Retry-After was 2 s",
            (second.recv_unix_ns - first.recv_unix_ns) / 1_000_000
        );
    }
}

#[test]
fn with_the_rest_side_down_the_pair_stays_unsynced_healthz_names_it_and_nothing_fires() {
    let dir = scratch("lb-restdown");
    let s = sim(SimOptions { rest_down: true, rate: Rate::PerSecond(2_000), ..SimOptions::default() });
    let cfg = write_config(&dir, &s, "", "[metrics_http]\nlisten = \"127.0.0.1:0\"");
    let child = spawn(&cfg, None);
    wait_until("snapshot attempts", Duration::from_secs(30), || s.requests().len() >= 2);
    let text = log(&dir);
    let addr: std::net::SocketAddr = text
        .lines()
        .find_map(|l| l.split("serving http://").nth(1))
        .and_then(|rest| rest.split(['/', ' ']).next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no metrics address in the log:\n{text}"));
    let (code, body) = http_get(addr, "/healthz");
    stop(child);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("BTCUSDT (book not synced: awaiting REST snapshot)"), "{body}");
    assert!(alerts(&dir.join("alerts.jsonl")).is_empty(), "an alert fired on an unsynced book");
    assert!(s.requests().iter().all(|r| r.status.is_none()));
}
