//! The real binary against the simulator: the journal deleted in the middle
//! of a run is recreated, and every alert is in the old file or the new one.

mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use imbalance_monitor::simulator::{Rate, SimOptions, Simulator};
use support::live::{BTC10, scratch, wait_until};

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

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map(|t| t.lines().count()).unwrap_or(0)
}

/// The sequence numbers of the journal's alert ids (`<run>-<seq>`); every line must be whole JSON.
fn alert_seqs(text: &str) -> Vec<u64> {
    assert!(text.is_empty() || text.ends_with('\n'));
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}"));
            v["alert_id"].as_str().unwrap().rsplit('-').next().unwrap().parse().unwrap()
        })
        .collect()
}

#[test]
fn a_journal_deleted_mid_run_is_recreated_and_later_alerts_land_in_the_new_file() {
    let dir = scratch("journal-deleted");
    let s = Simulator::start(SimOptions {
        replay: vec![BTC10.into()],
        rate: Rate::PerSecond(300),
        looped: true,
        ..SimOptions::default()
    })
    .unwrap();
    let journal = dir.join("alerts.jsonl");
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "pairs = [\"BTCUSDT\"]\n[binance]\nws_url = {:?}\n[alerts]\njournal = {journal:?}\n[log]\nfile = {:?}\n\
             [[triggers]]\nname = \"every\"\nop = \">=\"\nvalue = -1\nemit = \"level\"\n",
            s.url(),
            dir.join("logs/im.log"),
        ),
    )
    .unwrap();
    let mut child = KillOnDrop(Some(
        Command::new(env!("CARGO_BIN_EXE_imbalance-monitor"))
            .args(["run", "-c"])
            .arg(&config)
            .env_remove("TELEGRAM_BOT_TOKEN")
            .env_remove("TELEGRAM_CHAT_ID")
            .env_remove("IMBALANCE_THRESHOLD")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let mut stdout = child.0.as_mut().and_then(|c| c.stdout.take()).unwrap();
    let console = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    wait_until("alerts in the journal", Duration::from_secs(30), || lines(&journal) >= 50);
    // Keep the deleted file readable through a handle, as the process does.
    let mut old = std::fs::File::open(&journal).unwrap();
    std::fs::remove_file(&journal).unwrap();
    wait_until("alerts in a new journal", Duration::from_secs(30), || lines(&journal) >= 50);

    let c = child.0.take().unwrap();
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(c.id() as i32, libc::SIGTERM) }, 0);
    let out = c.wait_with_output().unwrap();
    let console = console.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{console}{}", String::from_utf8_lossy(&out.stderr));

    let mut old_text = String::new();
    old.read_to_string(&mut old_text).unwrap();
    let before = alert_seqs(&old_text);
    let after = alert_seqs(&std::fs::read_to_string(&journal).unwrap());
    assert!(before.len() >= 50 && after.len() >= 50);
    // Every alert the run reports is in one file or the other, in order, none twice.
    let stopped = console.lines().find(|l| l.contains("Runner stopped")).expect("a stop line");
    let alerts: u64 = stopped.split("alerts=").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    let all: Vec<u64> = before.iter().chain(&after).copied().collect();
    assert_eq!(all, (1..=alerts).collect::<Vec<_>>());
    assert!(
        console.contains("WARN  | JOURNAL | ")
            && console.contains("alerts.jsonl was deleted or moved; appending to a new file there"),
        "{console}"
    );
}
