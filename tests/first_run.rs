//! Papercuts a new user meets, on the real binary's output: config errors
//! name their key and show the offending line with a caret, the README's
//! error examples are exactly what the binary prints, and a `ws_url` with
//! the wrong path is reported with the server's HTTP status and the fix.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use imbalance_monitor::simulator::{SimOptions, Simulator};

use support::live::{recording, scratch, wait_until};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_imbalance-monitor"));
    c.env_remove("TELEGRAM_BOT_TOKEN").env_remove("TELEGRAM_CHAT_ID").env_remove("IMBALANCE_THRESHOLD");
    c
}

fn check_config(dir: &Path, body: &str) -> Output {
    std::fs::write(dir.join("bad.toml"), body).unwrap();
    bin().current_dir(dir).args(["check-config", "-c", "bad.toml"]).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The README's pairs of a `# bad.toml` block and the console block after it.
fn readme_examples() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let mut out = Vec::new();
    let mut rest = readme.as_str();
    while let Some(i) = rest.find("```toml\n# bad.toml\n") {
        let body_start = i + "```toml\n".len();
        let body_end = body_start + rest[body_start..].find("```\n").unwrap();
        let body = rest[body_start..body_end].to_string();
        let console = "```console\n$ imbalance-monitor check-config -c bad.toml\n";
        let c = body_end + rest[body_end..].find(console).expect("the output after the config");
        let out_start = c + console.len();
        let out_end = out_start + rest[out_start..].find("```\n").unwrap();
        out.push((body, rest[out_start..out_end].to_string()));
        rest = &rest[out_end..];
    }
    out
}

#[test]
fn the_readmes_config_errors_are_what_the_binary_prints() {
    let dir = scratch("first-run-readme");
    let examples = readme_examples();
    assert!(examples.len() >= 3, "the README shows its config error examples");
    for (body, shown) in examples {
        let o = check_config(&dir, &body);
        assert_eq!(o.status.code(), Some(2), "{body}");
        assert_eq!(stderr(&o), shown, "for\n{body}");
    }
}

#[test]
fn an_unknown_enum_value_names_its_key_and_the_choices() {
    let dir = scratch("first-run-enum");
    let cases = [
        (
            "[[triggers]]\nname = \"a\"\nop = \">\"\nvalue = 0.1\nemit = \"once\"\n",
            "bad.toml:5: `triggers[0].emit` is \"once\"; expected edge or level\n 5 | emit = \"once\"\n   |        ^^^^^^\n",
        ),
        (
            "[metrics]\nvolume_mode = \"base\"\n",
            "bad.toml:2: `metrics.volume_mode` is \"base\"; expected qty or notional\n 2 | volume_mode = \"base\"\n",
        ),
        (
            "[[triggers]]\nname = \"a\"\nop = \">\"\nvalue = 0.1\n[[triggers]]\nname = \"b\"\nmetric = \"imbalance\"\nop = \"<\"\nvalue = -0.1\n",
            "bad.toml:7: `triggers[1].metric` is \"imbalance\"; expected one of ",
        ),
        (
            "[metrics]\ntop_n = \"five\"\n",
            "bad.toml:2: `metrics.top_n` is string \"five\"; expected u32\n 2 | top_n = \"five\"\n   |         ^^^^^^\n",
        ),
    ];
    for (body, want) in cases {
        let o = check_config(&dir, body);
        assert_eq!(o.status.code(), Some(2), "{body}");
        assert!(stderr(&o).starts_with(&format!("error: {want}")), "{body}\ngot:\n{}", stderr(&o));
    }
}

#[test]
fn a_toml_syntax_error_shows_the_line_with_a_caret_at_the_problem() {
    let dir = scratch("first-run-syntax");
    let o = check_config(&dir, "pairs = [\"BTCUSDT\"]\n[binance]\nws_url = \"wss://stream.binance.com:9443/stream\n");
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines[0].starts_with("error: bad.toml:3: "), "{err}");
    assert_eq!(lines[1], " 3 | ws_url = \"wss://stream.binance.com:9443/stream");
    let caret = lines[2].find('^').unwrap();
    assert!(lines[2].starts_with("   | ") && caret >= "   | ws_url = ".len(), "{err}");
}

/// A `run` of the real binary against `ws_url`, until `done(log)`.
fn run_until(dir: &Path, ws_url: &str, ca: &Path, done: impl Fn(&str) -> bool) -> String {
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "pairs = [\"BTCUSDT\"]\n[binance]\nws_url = {ws_url:?}\nca_file = {ca:?}\n[alerts]\njournal = {:?}\n[log]\nfile = {:?}\n",
            dir.join("alerts.jsonl"),
            dir.join("im.log")
        ),
    )
    .unwrap();
    let mut child =
        Reaped(bin().arg("run").arg("-c").arg(&cfg).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    let log = || std::fs::read_to_string(dir.join("im.log")).unwrap_or_default();
    wait_until("the log line", Duration::from_secs(30), || done(&log()));
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) }, 0);
    assert_eq!(child.0.wait().unwrap().code(), Some(0));
    log()
}

/// A child process killed when dropped (a failing test leaves none behind).
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_ws_url_without_the_stream_path_reports_the_404_and_the_path_to_use() {
    let dir = scratch("first-run-404");
    let sim =
        Simulator::start(SimOptions { tls: true, replay: vec![recording(&dir, 10)], ..SimOptions::default() }).unwrap();
    let bare = sim.url().trim_end_matches("/stream").to_string();
    let log = run_until(&dir, &bare, sim.ca_path().unwrap(), |log| log.contains("HTTP 404"));
    let line = log.lines().find(|l| l.contains("HTTP 404")).unwrap();
    assert!(
        line.contains(
            "connect attempt failed | group=0 | WebSocket upgrade refused with HTTP 404: the combined-stream path is \
             /stream; binance.ws_url must end in /stream (wss://stream.binance.com:9443/stream)"
        ),
        "{line}"
    );
    assert!(!log.contains("close_notify"), "{log}");
    assert!(sim.stats().upgrades_refused >= 1);
}

#[test]
fn the_simulator_ends_a_refused_upgrade_with_a_clean_tls_close() {
    use std::io::{Read, Write};
    let dir = scratch("first-run-close-notify");
    let sim =
        Simulator::start(SimOptions { tls: true, replay: vec![recording(&dir, 10)], ..SimOptions::default() }).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(sim.ca_path().unwrap()).unwrap();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let addr = sim.url().trim_start_matches("wss://").trim_end_matches("/stream").to_string();
    let mut tls = rustls::StreamOwned::new(conn, std::net::TcpStream::connect(addr).unwrap());
    tls.write_all(
        b"GET /?streams=btcusdt@depth10@100ms HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    // An end without close_notify would be an UnexpectedEof error here.
    tls.read_to_string(&mut answer).expect("the answer, then close_notify");
    assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{answer}");
    assert!(answer.ends_with("no such endpoint `/`; use /stream?streams=a/b, /ws/<stream> or /ws\n"), "{answer}");
}

#[test]
fn a_ws_url_at_the_raw_ws_endpoint_is_a_config_error_naming_the_stream_path() {
    let dir = scratch("first-run-ws");
    let o = check_config(
        &dir,
        "pairs = [\"BTCUSDT\", \"ETHUSDT\"]\n[binance]\nws_url = \"wss://stream.binance.com:9443/ws\"\n",
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "error: bad.toml:3: `binance.ws_url` is \"wss://stream.binance.com:9443/ws\"; /ws is Binance's raw endpoint (one \
         stream, frames without the stream's name), but the feed subscribes every pair at the combined-stream path: \
         use \"wss://stream.binance.com:9443/stream\"\n"
    );
}
