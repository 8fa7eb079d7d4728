//! End to end in a pseudo-terminal: the real binary's `run` (metrics
//! endpoint on, against the simulator) and `watch` attached to it, or `run
//! --tui` alone; each pair's live ratio must appear on the screen, and `q`
//! must end the dashboard with status 0.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imbalance_monitor::simulator::{Rate, RunningSimulator, SimOptions, Simulator};
use imbalance_monitor::watch::state::DashboardState;
use support::live::{http_get, scratch, wait_until};

const ETH10: &str = "tests/fixtures/ethusdt_depth10_100ms_20240808-09.txt.gz";
const BTC10: &str = support::live::BTC10;

/// The first `n` lines of a gzipped recording, as a plain file.
fn excerpt(dir: &Path, from: &str, n: usize) -> PathBuf {
    let reader = BufReader::new(flate2::read::GzDecoder::new(std::fs::File::open(from).unwrap()));
    let path = dir.join(format!("{}-{n}.txt", Path::new(from).file_name().unwrap().to_string_lossy()));
    let lines: Vec<String> = reader.lines().take(n).map(Result::unwrap).collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// Both pairs' first 150 frames, played once, fast.
fn simulator(dir: &Path) -> RunningSimulator {
    Simulator::start(SimOptions {
        replay: vec![excerpt(dir, BTC10, 150), excerpt(dir, ETH10, 150)],
        rate: Rate::PerSecond(300),
        ..SimOptions::default()
    })
    .unwrap()
}

fn write_config(dir: &Path, s: &RunningSimulator) -> PathBuf {
    let path = dir.join("config.toml");
    let text = format!(
        "pairs = [\"BTCUSDT\", \"ETHUSDT\"]\nthreshold = 0.3\n[binance]\nws_url = {:?}\n[alerts]\njournal = {:?}\n[log]\nfile = {:?}\n[runtime]\nstats_interval_sec = 1\n[metrics_http]\nlisten = \"127.0.0.1:0\"\n",
        s.url(),
        dir.join("alerts.jsonl"),
        dir.join("logs/im.log"),
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn binary() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_imbalance-monitor"));
    c.env_remove("TELEGRAM_BOT_TOKEN").env_remove("TELEGRAM_CHAT_ID").env_remove("IMBALANCE_THRESHOLD");
    c
}

/// A child on a fresh 80×24 pseudo-terminal (its controlling terminal),
/// with everything it writes collected.
struct OnPty {
    child: Child,
    master: std::fs::File,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl OnPty {
    fn spawn(mut cmd: Command) -> OnPty {
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize { ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: openpty fills the two descriptors; no name buffer or termios is passed.
        let rc = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &size) };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened and are owned here only.
        let (master, slave) = unsafe { (std::fs::File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .env("TERM", "xterm-256color");
        // SAFETY: only async-signal-safe calls between fork and exec: a new
        // session whose controlling terminal is the pty on stdin.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        drop(cmd);
        let screen = Arc::new(Mutex::new(Vec::new()));
        let (mut reader, sink) = (master.try_clone().unwrap(), Arc::clone(&screen));
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once the child and every copy of the slave are gone.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        OnPty { child, master, screen }
    }

    /// The screen as a terminal shows it now: everything written so far
    /// run through a VT100 emulator (ratatui redraws only the cells that
    /// changed, so the raw bytes alone would not tell).
    fn text(&self) -> String {
        let size = |n| std::num::NonZeroU16::new(n).unwrap();
        let mut vt = vt100::Parser::new(size(24), size(80), 0);
        vt.process(&self.screen.lock().unwrap());
        vt.screen().contents()
    }

    /// Waits until every pair and its ratio, as the dashboard prints it, are on the screen.
    fn wait_for_ratios(&self, ratios: &[(String, f64)]) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.text();
            if ratios.iter().all(|(pair, r)| text.contains(pair.as_str()) && text.contains(&shown(*r))) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "not every one of {ratios:?} on the screen:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Presses `q` and waits for the exit status.
    fn quit(mut self) -> Option<i32> {
        self.master.write_all(b"q").unwrap();
        let mut status = None;
        wait_until("the dashboard to quit", Duration::from_secs(30), || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        status.and_then(|s| s.code())
    }
}

/// How the dashboard prints a ratio.
fn shown(ratio: f64) -> String {
    format!("{ratio:>+7.4}").trim().to_string()
}

/// Kills the child if the test fails before it ends it, so no process outlives the test.
impl Drop for OnPty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed when dropped (a failing test leaves none behind).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sigterm(child: &Child) {
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
}

#[test]
fn watch_in_a_terminal_shows_each_pairs_live_ratio_and_q_quits_with_0() {
    let dir = scratch("watch-pty");
    let sim = simulator(&dir);
    let cfg = write_config(&dir, &sim);
    let mut run =
        Reaped(binary().args(["run", "-c"]).arg(&cfg).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap());
    // The endpoint's address, from the log line that announces it.
    let mut lines = BufReader::new(run.0.stdout.take().unwrap()).lines();
    let addr: std::net::SocketAddr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.split("serving http://").nth(1).and_then(|r| r.split('/').next()).map(str::to_string))
        .expect("the METRICS line")
        .parse()
        .unwrap();
    std::thread::spawn(move || lines.for_each(drop));
    // Once the recordings have played the ratios stay put.
    wait_until("the recordings to play", Duration::from_secs(60), || sim.stats().recording_finished);
    let state = || DashboardState::from_json(&http_get(addr, "/state").1).unwrap();
    wait_until("both ratios", Duration::from_secs(30), || state().pairs.iter().all(|p| p.ratio.is_some()));
    let ratios: Vec<(String, f64)> = state().pairs.iter().map(|p| (p.pair.clone(), p.ratio.unwrap())).collect();

    let mut watch = binary();
    watch.args(["watch", "--url", &format!("http://{addr}"), "--refresh-ms", "200"]);
    let pty = OnPty::spawn(watch);
    pty.wait_for_ratios(&ratios);
    let text = pty.text();
    assert!(text.contains(&format!("http://{addr}")), "{text}");
    assert!(text.contains("q quit"), "{text}");
    assert_eq!(pty.quit(), Some(0));
    sigterm(&run.0);
    assert_eq!(run.0.wait().unwrap().code(), Some(0));
}

#[test]
fn run_tui_draws_the_same_dashboard_in_process_and_q_stops_the_run_with_0() {
    let dir = scratch("watch-tui");
    let sim = simulator(&dir);
    let cfg = write_config(&dir, &sim);
    let mut run = binary();
    run.args(["run", "--tui", "-c"]).arg(&cfg);
    let pty = OnPty::spawn(run);
    wait_until("the recordings to play", Duration::from_secs(60), || sim.stats().recording_finished);
    // The last frames' ratios, as the journal cannot say: from the endpoint the run also serves.
    let log = dir.join("logs/im.log");
    let addr: std::net::SocketAddr = {
        let mut found = None;
        wait_until("the METRICS log line", Duration::from_secs(30), || {
            found = std::fs::read_to_string(&log)
                .ok()
                .and_then(|t| t.split("serving http://").nth(1).and_then(|r| r.split('/').next()).map(str::to_string));
            found.is_some()
        });
        found.unwrap().parse().unwrap()
    };
    let state = || DashboardState::from_json(&http_get(addr, "/state").1).unwrap();
    wait_until("both ratios", Duration::from_secs(30), || state().pairs.iter().all(|p| p.ratio.is_some()));
    let ratios: Vec<(String, f64)> = state().pairs.iter().map(|p| (p.pair.clone(), p.ratio.unwrap())).collect();
    pty.wait_for_ratios(&ratios);
    let text = pty.text();
    assert!(text.contains("in-process"), "{text}");
    assert!(!text.contains("INFO  |"), "no log lines on the dashboard's screen: {text}");
    assert_eq!(pty.quit(), Some(0));
    assert!(std::fs::read_to_string(&log).unwrap().contains("Runner stopped"));
}
