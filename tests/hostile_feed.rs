//! Servers that misbehave on purpose, on real sockets: the real binary when
//! what matters is what an operator sees (process alive, `/healthz`, exit
//! status), the live pipeline (`Runner`) when it is what goes on the wire.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use imbalance_monitor::config::Config;
use imbalance_monitor::run::{RunOptions, Runner};
use imbalance_monitor::units::UnixNanos;
use support::live::{http_get, scratch, wait_until};
use tungstenite::Message;

/// A server that answers every WebSocket upgrade with `429 Too Many
/// Requests` and the given `Retry-After`, counting the upgrades it refused.
fn refusing_server(retry_after: &'static str) -> (SocketAddr, Arc<AtomicU32>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let refused = Arc::new(AtomicU32::new(0));
    let count = Arc::clone(&refused);
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(mut tcp) = tcp else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && tcp.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let _ = write!(
                tcp,
                "HTTP/1.1 429 Too Many Requests\r\nRetry-After: {retry_after}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    (addr, refused)
}

fn write_config(dir: &Path, ws: SocketAddr) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "pairs = [\"BTCUSDT\"]\n[binance]\nws_url = \"ws://{ws}/stream\"\n[alerts]\njournal = {:?}\n[log]\nfile = {:?}\n[metrics_http]\nlisten = \"127.0.0.1:0\"\n",
            dir.join("alerts.jsonl"),
            dir.join("im.log"),
        ),
    )
    .unwrap();
    path
}

/// The binary with its stdout lines arriving on a channel.
fn spawn(config: &Path) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_imbalance-monitor"))
        .arg("run")
        .arg("-c")
        .arg(config)
        .env_remove("TELEGRAM_BOT_TOKEN")
        .env_remove("TELEGRAM_CHAT_ID")
        .env_remove("IMBALANCE_THRESHOLD")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// Waits for the line containing `needle`, keeping every line seen in `seen`.
fn wait_for_line(rx: &mpsc::Receiver<String>, seen: &mut Vec<String>, needle: &str) -> String {
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                seen.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
            Err(_) => panic!("no line containing {needle:?}; got:\n{}", seen.join("\n")),
        }
    }
}

fn sigterm(child: &Child) {
    // SAFETY: sending a signal to our own child process.
    let rc = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(rc, 0);
}

/// The next-attempt time `/healthz` states, as written (RFC 3339, UTC).
fn next_attempt(body: &str) -> &str {
    body.split("next attempt at ").nth(1).and_then(|rest| rest.split(' ').next()).unwrap_or("")
}

/// RFC 3339 of a Unix time in whole seconds, as `/healthz` writes it
/// (`2026-12-05T12:33:14Z`).
fn rfc3339_secs(unix_ns: u64) -> String {
    let text = UnixNanos(unix_ns).to_string();
    format!("{}Z", text.split('.').next().unwrap())
}

const THREE_DAYS_NS: u64 = 3 * 24 * 3600 * 1_000_000_000;

#[test]
fn a_retry_after_of_centuries_keeps_the_process_up_capped_at_three_days_and_healthz_says_why() {
    for (i, retry_after) in
        ["9223372036854775807", "18446744073709551615", "Fri, 31 Dec 9999 23:59:59 GMT"].into_iter().enumerate()
    {
        let dir = scratch(&format!("hostile-retry-after-{i}"));
        let (ws, refused) = refusing_server(retry_after);
        let before = UnixNanos::now().0;
        let (mut child, rx) = spawn(&write_config(&dir, ws));
        let mut seen = Vec::new();
        let serving = wait_for_line(&rx, &mut seen, "METRICS | serving http://");
        let metrics: SocketAddr = serving.split("http://").nth(1).unwrap().split('/').next().unwrap().parse().unwrap();
        let cap = wait_for_line(&rx, &mut seen, "capped at 3 days");
        assert!(cap.contains("WARN") && cap.contains("(Retry-After)"), "{retry_after}: {cap}");
        // The answer reaches /healthz: down, with the reason and the next attempt.
        let mut body = String::new();
        wait_until("healthz to say why", Duration::from_secs(30), || {
            assert!(child.try_wait().unwrap().is_none(), "{retry_after}: the process must still run");
            let (code, b) = http_get(metrics, "/healthz");
            body = b;
            code == 503 && body.contains("feed down")
        });
        let after = UnixNanos::now().0;
        assert!(
            body.contains("feed down for BTCUSDT: WebSocket upgrade refused with HTTP 429 (Retry-After "),
            "{retry_after}: {body}"
        );
        assert!(body.contains("(Retry-After capped at 3 days, Binance's longest ban)"), "{retry_after}: {body}");
        // Three days after the refusal, not centuries.
        let next = next_attempt(&body);
        let (lo, hi) = (rfc3339_secs(before + THREE_DAYS_NS), rfc3339_secs(after + THREE_DAYS_NS));
        assert!(lo.as_str() <= next && next <= hi.as_str(), "{retry_after}: next attempt {next}, not in [{lo}, {hi}]");
        assert!(child.try_wait().unwrap().is_none(), "{retry_after}: the process must still run");
        // It keeps waiting: no second attempt inside the ban.
        wait_until("the refusal to be counted", Duration::from_secs(30), || refused.load(Ordering::SeqCst) >= 1);
        assert_eq!(refused.load(Ordering::SeqCst), 1, "{retry_after}");
        sigterm(&child);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{retry_after}: a clean stop after SIGTERM");
    }
}

/// The live pipeline's config for a server at `ws`, with a stale window
/// long enough never to matter here.
fn pipeline_config(dir: &Path, ws: SocketAddr) -> Config {
    let text = format!(
        "pairs = [\"BTCUSDT\"]\n[binance]\nws_url = \"ws://{ws}/stream\"\nstale_after_ms = 600000\n[alerts]\njournal = {:?}\n",
        dir.join("alerts.jsonl")
    );
    Config::from_toml(&dir.join("config.toml"), &text).unwrap()
}

/// Pings the flood sends before its last one.
const FLOOD: u32 = 8_830;

#[test]
fn a_ping_flood_gets_at_most_one_pong_a_second_and_the_last_echoes_the_latest_ping() {
    let dir = scratch("hostile-ping-flood");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut ws = tungstenite::accept(tcp).unwrap();
        let start = Instant::now();
        for i in 0..=FLOOD {
            ws.write(Message::Ping(i.to_string().into_bytes().into())).unwrap();
        }
        ws.flush().unwrap();
        // Pongs until the one for the last ping; each names the ping it answers.
        let mut answered = Vec::new();
        while answered.last() != Some(&FLOOD) {
            match ws.read().unwrap() {
                Message::Pong(p) => answered.push(std::str::from_utf8(&p).unwrap().parse::<u32>().unwrap()),
                _ => continue,
            }
        }
        (answered, start.elapsed())
    });
    let runner = Runner::start(&pipeline_config(&dir, addr), RunOptions::default()).unwrap();
    let (answered, elapsed) = server.join().unwrap();
    runner.stop_handle().stop();
    runner.wait();
    // The cap is PONG_INTERVAL (1 s): the first ping's pong at once, then at
    // most one per interval. Counted: however slow the machine, more pongs
    // than whole seconds passed (+2) means the cap was broken.
    let cap = 2 + elapsed.as_secs() as usize;
    assert!(answered.len() <= cap, "{} pongs for {} pings in {elapsed:?}: {answered:?}", answered.len(), FLOOD + 1);
    // Each pong answers a newer ping than the one before, the last the latest.
    assert!(answered.windows(2).all(|w| w[0] < w[1]), "{answered:?}");
    assert_eq!(answered.last(), Some(&FLOOD));
}

#[test]
fn after_a_close_the_client_hangs_up_and_reconnects_without_waiting_for_the_server_to_drop_tcp() {
    let dir = scratch("hostile-close-keeps-tcp");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, hung_up) = mpsc::channel();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let mut ws = tungstenite::accept(tcp.unwrap()).unwrap();
            // Close, and keep TCP open: only the client can end it now.
            ws.close(None).unwrap();
            ws.flush().unwrap();
            let tcp = ws.get_mut();
            tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            // The client's Close reply, then its end of the stream.
            let mut buf = [0u8; 256];
            let eof = loop {
                match tcp.read(&mut buf) {
                    Ok(0) => break true,
                    Ok(_) => continue,
                    Err(_) => break false,
                }
            };
            if tx.send(eof).is_err() {
                return;
            }
        }
    });
    // The stale window is 10 minutes: only hanging up at once reconnects in time.
    let runner = Runner::start(&pipeline_config(&dir, addr), RunOptions::default()).unwrap();
    let first = hung_up.recv_timeout(Duration::from_secs(60)).expect("the server's first connection to end");
    assert!(first, "the client must close the socket after the server's Close");
    let second = hung_up.recv_timeout(Duration::from_secs(60)).expect("a second connection");
    assert!(second);
    runner.stop_handle().stop();
    let report = runner.wait();
    assert!(report.hot.feed.connects >= 2, "{:?}", report.hot.feed);
    assert_eq!(report.hot.feed.stale, 0, "{:?}", report.hot.feed);
}
