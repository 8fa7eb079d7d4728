//! The journal on a real 64 KiB filesystem that fills, frees and fills
//! again: every line in the file is whole, nothing reported kept is lost,
//! and the order holds.
//!
//! Needs root (it mounts a tmpfs); CI runs as root. Elsewhere it says loudly
//! that it was skipped.

mod support;

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use imbalance_monitor::simulator::{Rate, SimOptions, Simulator};
use imbalance_monitor::sinks::journal::{Appended, BACKLOG_LINES, Journal};
use support::live::{BTC10, scratch, wait_until};

/// A 64 KiB tmpfs, unmounted when dropped.
struct SmallFs(PathBuf);

impl SmallFs {
    fn mount(name: &str) -> Result<SmallFs, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not running as root".into());
        }
        let dir = std::env::temp_dir().join(format!("im-{name}-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let target = CString::new(dir.as_os_str().as_bytes()).unwrap();
        let (fs, opts) = (c"tmpfs", c"size=64k,mode=0700");
        // SAFETY: every pointer is a valid NUL-terminated string for the call.
        let rc = unsafe { libc::mount(fs.as_ptr(), target.as_ptr(), fs.as_ptr(), 0, opts.as_ptr().cast()) };
        if rc != 0 {
            return Err(format!("mount tmpfs on {}: {}", dir.display(), std::io::Error::last_os_error()));
        }
        Ok(SmallFs(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let target = CString::new(self.0.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid path string; detaching an fs we mounted.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Writes `path` until the filesystem refuses another byte.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = [b'f'; 512];
    loop {
        match f.write(&chunk) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// A journal record of ~300 bytes, so lines cross page boundaries.
fn record(seq: u64) -> String {
    format!(r#"{{"seq":{seq},"pad":"{}"}}"#, "p".repeat(280))
}

/// Every line of the journal, parsed; fails on any partial or invalid line.
fn seqs(path: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "the journal ends inside a line");
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: a torn line {l:?}"));
            v["seq"].as_u64().unwrap()
        })
        .collect()
}

#[test]
fn a_full_disk_never_tears_a_line_and_kept_lines_are_appended_in_order_once_it_frees() {
    let fs = match SmallFs::mount("journal-fs") {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!(
                "\n*** SKIPPED journal_disk_full: {why}; run the tests as root to check the journal on a full disk ***\n"
            );
            return;
        }
    };
    let path = fs.path().join("alerts.jsonl");
    let filler = fs.path().join("filler");
    let mut j = Journal::open(&path).unwrap().with_backlog(BACKLOG_LINES);
    let mut next = 1u64;
    for round in 0..3 {
        // Each round starts on a new, empty file.
        let first = next;
        // Some lines fit, then the disk is full.
        for _ in 0..20 {
            assert!(matches!(j.append(&record(next)).unwrap(), Appended::Written { backlog: 0 }));
            next += 1;
        }
        fill(&filler);
        while j.waiting() < 30 {
            if let Appended::Queued { error, .. } = j.append(&record(next)).unwrap() {
                assert_eq!(error.source.raw_os_error(), Some(libc::ENOSPC), "{error}");
            }
            next += 1;
            // While full, the file holds only whole lines, all but the waiting ones.
            assert_eq!(seqs(&path).last().copied(), Some(next - 1 - j.waiting() as u64), "round {round}");
        }
        assert_eq!(j.waiting(), 30);
        // Freed: the waiting lines go first, in order.
        std::fs::remove_file(&filler).unwrap();
        assert!(matches!(j.append(&record(next)).unwrap(), Appended::Written { backlog: 30 }));
        next += 1;
        assert_eq!(seqs(&path), (first..next).collect::<Vec<_>>(), "round {round}");
        // Keep the file small enough to fill again.
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(j.append(&record(next)).unwrap(), Appended::Written { backlog: 0 }));
        assert_eq!(seqs(&path), vec![next]);
        std::fs::remove_file(&path).unwrap();
        next += 1;
    }
    let c = j.counters();
    assert!(c.queued >= 90, "{c:?}");
    assert_eq!(c.dropped, 0);
    assert_eq!(c.fragments, 0);
    assert_eq!(c.reopened, 5);
    assert!(c.failed_writes >= 90, "{c:?}");
}

#[test]
fn the_real_binary_keeps_alerts_through_a_full_disk_and_says_so_in_the_log() {
    let fs = match SmallFs::mount("journal-fs-bin") {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("\n*** SKIPPED journal_disk_full (binary): {why}; run the tests as root ***\n");
            return;
        }
    };
    let dir = scratch("journal-fs-bin-logs");
    let journal = fs.path().join("alerts.jsonl");
    let filler = fs.path().join("filler");
    let log = dir.join("im.log");
    // ~500-byte lines at 20 a second: the 64 KiB disk lasts a few seconds once freed.
    let s = Simulator::start(SimOptions {
        replay: vec![BTC10.into()],
        rate: Rate::PerSecond(20),
        looped: true,
        ..SimOptions::default()
    })
    .unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "pairs = [\"BTCUSDT\"]\n[binance]\nws_url = {:?}\n[alerts]\njournal = {journal:?}\n[log]\nfile = {log:?}\n\
             [[triggers]]\nname = \"every\"\nop = \">=\"\nvalue = -1\nemit = \"level\"\n",
            s.url(),
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_imbalance-monitor"))
        .args(["run", "-c"])
        .arg(&config)
        .env_remove("TELEGRAM_BOT_TOKEN")
        .env_remove("TELEGRAM_CHAT_ID")
        .env_remove("IMBALANCE_THRESHOLD")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let console = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let lines = || std::fs::read_to_string(&journal).map(|t| t.lines().count()).unwrap_or(0);
    wait_until("alerts in the journal", Duration::from_secs(30), || lines() >= 10);
    fill(&filler);
    wait_until("alerts waiting in memory", Duration::from_secs(30), || {
        log_text().contains("JOURNAL | not journaled yet, waiting in memory (3): ")
    });
    std::fs::remove_file(&filler).unwrap();
    wait_until("the journal to recover", Duration::from_secs(30), || {
        log_text().contains("JOURNAL | appends succeed again | ")
    });
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    let console = console.join().unwrap();
    assert_eq!(status.code(), Some(0), "{console}");

    // Every alert the run reports is in the journal, whole, in order.
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(text.ends_with('\n'));
    let ids: Vec<u64> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: a torn line {l:?}"));
            v["alert_id"].as_str().unwrap().rsplit('-').next().unwrap().parse().unwrap()
        })
        .collect();
    let stopped = console.lines().find(|l| l.contains("Runner stopped")).expect("a stop line");
    let alerts: u64 = stopped.split("alerts=").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert_eq!(ids, (1..=alerts).collect::<Vec<_>>());
    // The log tells it in order: the failure, the waiting lines, the recovery.
    let log = log_text();
    let at = |what: &str| log.find(what).unwrap_or_else(|| panic!("{what:?} not in the log:\n{log}"));
    let failed = at("No space left on device");
    assert!(failed < at("JOURNAL | not journaled yet, waiting in memory (1): {"));
    assert!(at("JOURNAL | not journaled yet, waiting in memory (3): {") < at("JOURNAL | appends succeed again | "));
    assert!(!log.contains("memory queue is full"));
}
