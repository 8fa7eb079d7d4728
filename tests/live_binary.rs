//! The real binary against an in-process simulator: signals, exit codes,
//! what the operator reads in the log.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use imbalance_monitor::simulator::{Rate, RunningSimulator, SimOptions, Simulator};
use support::live::{BTC10, recording, scratch, wait_until};

fn write_config(dir: &Path, s: &RunningSimulator, ca: &Path, extra: &str) -> PathBuf {
    let path = dir.join("config.toml");
    let mut f = std::fs::File::create(&path).unwrap();
    write!(
        f,
        "pairs = [\"BTCUSDT\"]\n[binance]\nws_url = {:?}\nca_file = {ca:?}\n[alerts]\njournal = {:?}\n[log]\nfile = {:?}\n[runtime]\nstats_interval_sec = 1\n[[triggers]]\nname = \"every\"\nop = \">=\"\nvalue = -1\nemit = \"level\"\n{extra}",
        s.url(),
        dir.join("alerts.jsonl"),
        dir.join("logs/im.log"),
    )
    .unwrap();
    path
}

fn spawn(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_imbalance-monitor"))
        .arg("run")
        .arg("-c")
        .arg(config)
        .env_remove("TELEGRAM_BOT_TOKEN")
        .env_remove("TELEGRAM_CHAT_ID")
        .env_remove("IMBALANCE_THRESHOLD")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn sigterm(child: &Child) {
    // SAFETY: sending a signal to our own child process.
    let rc = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(rc, 0);
}

fn journal_alerts(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("alerts.jsonl")).map(|t| t.lines().count()).unwrap_or(0)
}

#[test]
fn sigterm_closes_cleanly_with_the_journal_complete() {
    let dir = scratch("bin-sigterm");
    let s = Simulator::start(SimOptions {
        tls: true,
        replay: vec![BTC10.into()],
        rate: Rate::PerSecond(500),
        ..SimOptions::default()
    })
    .unwrap();
    let cfg = write_config(&dir, &s, s.ca_path().unwrap(), "");
    let child = spawn(&cfg);
    // Past one stats interval (1 s at 500 frames/s), so a STATS line is due.
    wait_until("alerts to flow", Duration::from_secs(30), || journal_alerts(&dir) > 800);
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    // The log says how many alerts there were; the journal has every one, whole.
    let stopped = stdout.lines().find(|l| l.contains("Runner stopped")).expect("a stop line");
    let alerts: usize = stopped.split("alerts=").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    let text = std::fs::read_to_string(dir.join("alerts.jsonl")).unwrap();
    assert!(text.ends_with('\n'));
    assert_eq!(text.lines().count(), alerts);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["pair"], "BTCUSDT");
    }
    // Seed-style lines, in the console and in the log file.
    assert!(stdout.lines().any(|l| l.len() > 24 && &l[23..] == " INFO  | Runner started | pairs=[BTCUSDT] | stream=depth10@100ms | connections=1 | volume=notional top_n=10 | triggers=1"), "{stdout}");
    assert!(stdout.contains("INFO  | FEED | connected | group=0 | streams=1 | handshake="));
    assert!(stdout.contains("INFO  | SUMMARY | wire_to_decision | p50="));
    let file = std::fs::read_to_string(dir.join("logs/im.log")).unwrap();
    assert!(file.contains("TRIGGER | pair=BTCUSDT | every: imbalance_ratio >= -1 | value="));
    assert!(file.contains("STATS | "), "{file}");
}

#[test]
fn a_certificate_failure_is_logged_once_per_streak() {
    let dir = scratch("bin-cert");
    let rec = recording(&dir, 1);
    let s = Simulator::start(SimOptions { tls: true, replay: vec![rec.clone()], ..SimOptions::default() }).unwrap();
    let other = Simulator::start(SimOptions { tls: true, replay: vec![rec], ..SimOptions::default() }).unwrap();
    let cfg = write_config(&dir, &s, other.ca_path().unwrap(), "");
    let child = spawn(&cfg);
    wait_until("several failed attempts", Duration::from_secs(30), || s.stats().handshake_failures >= 3);
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let warnings: Vec<&str> = stdout.lines().filter(|l| l.contains("WARN") && l.contains("FEED")).collect();
    assert_eq!(warnings.len(), 1, "one warning per streak:\n{stdout}");
    assert!(
        warnings[0].contains("connect attempt failed | group=0 | TLS failed: invalid peer certificate"),
        "{}",
        warnings[0]
    );
    assert!(warnings[0].contains("check binance.ca_file"), "{}", warnings[0]);
}

#[test]
fn a_close_reason_with_newlines_and_terminal_escapes_stays_inside_one_escaped_log_line() {
    let dir = scratch("bin-close-reason");
    let forged = "bye\n2026-11-22 03:41:07.123 INFO  | TRIGGER | pair=FAKEUSDT | forged\x1b[2K\x1b[31m";
    // A WebSocket server that closes every connection at once, with that reason.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let Ok(mut ws) = tungstenite::accept(stream) else { return };
                let frame = tungstenite::protocol::CloseFrame {
                    code: tungstenite::protocol::frame::coding::CloseCode::Normal,
                    reason: forged.into(),
                };
                let _ = ws.close(Some(frame));
                while ws.read().is_ok() {}
            });
        }
    });
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "pairs = [\"BTCUSDT\"]\n[binance]\nws_url = \"ws://127.0.0.1:{port}/stream\"\n[alerts]\njournal = {:?}\n[log]\nfile = {:?}\n",
            dir.join("alerts.jsonl"),
            dir.join("logs/im.log"),
        ),
    )
    .unwrap();
    let child = spawn(&path);
    let log_file = dir.join("logs/im.log");
    wait_until("the close to be logged", Duration::from_secs(30), || {
        std::fs::read_to_string(&log_file).is_ok_and(|t| t.contains("FAKEUSDT"))
    });
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    for (name, text) in [
        ("stdout", String::from_utf8_lossy(&out.stdout).into_owned()),
        ("log file", std::fs::read_to_string(&log_file).unwrap()),
    ] {
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("FAKEUSDT")).collect();
        assert!(!lines.is_empty(), "{name}: {text}");
        for l in &lines {
            assert!(
                l.contains(" WARN  | FEED | disconnected by server | group=0 | code 1000 (bye\\n2026-11-22 03:41:07.123 INFO  | TRIGGER | pair=FAKEUSDT | forged\\u{1b}[2K\\u{1b}[31m) | reconnecting"),
                "{name}: {l}"
            );
        }
        assert!(
            !text.lines().any(|l| l.starts_with("2026-11-22 03:41:07.123 INFO  | TRIGGER")),
            "{name}: a forged line"
        );
        assert!(!text.contains('\x1b'), "{name}: a raw ESC");
    }
}

/// Kills the child if the test fails before it stops it.
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_chatty_log_rotates_by_size_and_keeps_only_keep_files_rotated_files() {
    let dir = scratch("bin-log-size");
    let s = Simulator::start(SimOptions {
        tls: true,
        replay: vec![BTC10.into()],
        rate: Rate::PerSecond(20_000),
        looped: true,
        ..SimOptions::default()
    })
    .unwrap();
    // An alert (a TRIGGER line) on every frame, as with cooldown 0: about 2 MB of log a pass of the recording.
    let cfg = write_config(&dir, &s, s.ca_path().unwrap(), "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace("[log]\n", "[log]\nmax_size_mb = 1\nkeep_files = 2\n");
    std::fs::write(&cfg, text).unwrap();
    let mut child = KillOnDrop(Some(spawn(&cfg)));
    // Drain the console, or a full pipe would stall the logger.
    for pipe in [
        child.0.as_mut().and_then(|c| c.stdout.take()).map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        child.0.as_mut().and_then(|c| c.stderr.take()).map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        std::thread::spawn(move || std::io::copy(&mut { pipe }, &mut std::io::sink()));
    }
    let logs = dir.join("logs");
    let rotated_names = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&logs)
            .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
            .unwrap_or_default();
        names.retain(|n| n != "im.log");
        names.sort();
        names
    };
    let counter = |name: &str| -> u64 { name.rsplit('.').nth(1).and_then(|n| n.parse().ok()).unwrap_or(0) };
    // A counter of 4 or more means five rotations or more: the oldest files have been deleted by then.
    wait_until("five size rotations", Duration::from_secs(120), || {
        let running = child.0.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none());
        assert!(running, "the monitor exited");
        rotated_names().iter().any(|n| counter(n) >= 4)
    });
    let child = child.0.take().unwrap();
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));

    let rotated = rotated_names();
    assert_eq!(rotated.len(), 2, "keep_files = 2: {rotated:?}");
    let counters: Vec<u64> = rotated.iter().map(|n| counter(n)).collect();
    assert_eq!(counters[1], counters[0] + 1, "the two newest are kept: {rotated:?}");
    for name in rotated.iter().chain(["im.log".to_string()].iter()) {
        let text = std::fs::read_to_string(logs.join(name)).unwrap();
        assert!(text.len() as u64 <= 1 << 20, "{name} is {} bytes, over max_size_mb = 1", text.len());
        // Whole lines only: every line starts with its timestamp.
        assert!(text.lines().all(|l| l.len() > 24 && l.as_bytes()[4] == b'-' && l.as_bytes()[23] == b' '), "{name}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
