//! `check-config` rejects, with exit status 2 and the key named, every
//! config that `run` would reject (or silently mishandle) only after
//! starting: the real binary on real files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_imbalance-monitor"));
    for var in ["IMBALANCE_MONITOR_CONFIG", "TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID", "IMBALANCE_THRESHOLD"] {
        c.env_remove(var);
    }
    c
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("im-check-config-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

/// Runs `imbalance-monitor <command> -c <dir>/config.toml` in `dir`.
fn run_in(dir: &Path, command: &str, body: &str) -> Output {
    std::fs::write(dir.join("config.toml"), body).unwrap();
    bin().current_dir(dir).arg(command).arg("-c").arg("config.toml").output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `body` is rejected by `check-config` with `want` in the message, and by
/// `run` the same way, before it connects or writes anything.
fn assert_rejected(dir: &Path, body: &str, want: &str) {
    for command in ["check-config", "run"] {
        let out = run_in(dir, command, body);
        let err = stderr(&out);
        let body = &body[..body.floor_char_boundary(300)];
        assert_eq!(out.status.code(), Some(2), "{command} {body:?}:\n{err:.2000}");
        assert!(err.contains(want), "{command} {body:?}: expected {want:?} in\n{err:.2000}");
        assert!(out.stdout.is_empty(), "{command} {body:?} printed {:.2000}", String::from_utf8_lossy(&out.stdout));
    }
}

fn assert_accepted(dir: &Path, body: &str) -> String {
    let out = run_in(dir, "check-config", body);
    assert_eq!(out.status.code(), Some(0), "{body:?}:\n{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn journal_and_log_paths_that_cannot_be_files_are_config_errors() {
    let dir = scratch("paths");
    std::fs::create_dir(dir.join("logs")).unwrap();
    std::fs::write(dir.join("plain"), "").unwrap();
    let cases = [
        ("[alerts]\njournal = \"\"\n", "config.toml:2: `alerts.journal` is empty; give it a file path"),
        ("[log]\nfile = \"\"\n", "config.toml:2: `log.file` is empty; give it a file path"),
        (
            "[alerts]\njournal = \"logs\"\n",
            "config.toml:2: `alerts.journal` is logs, a directory; name a file in it, e.g. \"logs/alerts.jsonl\"",
        ),
        ("[log]\nfile = \"logs\"\n", "config.toml:2: `log.file` is logs, a directory"),
        (
            "[alerts]\njournal = \"plain/sub/alerts.jsonl\"\n",
            "`alerts.journal` is plain/sub/alerts.jsonl, but plain is a file, so the directory cannot be created",
        ),
    ];
    for (body, want) in cases {
        assert_rejected(&dir, body, want);
    }
    assert!(!dir.join("logs/imbalance-monitor.log").exists(), "nothing was written");
}

#[test]
fn the_journal_may_not_be_the_log_file_however_it_is_spelt() {
    let dir = scratch("same");
    std::fs::create_dir(dir.join("real")).unwrap();
    std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).unwrap();
    let abs = dir.join("real/out.log");
    let cases = [
        // Both the default `logs/imbalance-monitor.log`, which does not exist yet.
        ("[alerts]\njournal = \"logs/imbalance-monitor.log\"\n".to_string(), "logs/imbalance-monitor.log"),
        // Not existing, spelt with `..` through a directory that does not exist either.
        ("[alerts]\njournal = \"new/x/../a.log\"\n[log]\nfile = \"./new/a.log\"\n".to_string(), "new/x/../a.log"),
        // Through a symlinked directory, relative against absolute.
        (format!("[alerts]\njournal = \"link/out.log\"\n[log]\nfile = {abs:?}\n"), "link/out.log"),
    ];
    for (body, journal) in &cases {
        let want = format!("config.toml:2: `alerts.journal` is {journal}, the same file as `log.file`");
        assert_rejected(&dir, body, &want);
    }
    std::fs::write(&abs, "an existing log\n").unwrap();
    assert_rejected(&dir, &cases[2].0, "the same file as `log.file`");
    assert_rejected(&dir, "[alerts]\njournal = \"config.toml\"\n", "the same file as the config file (config.toml)");
    assert_rejected(
        &dir,
        "[log]\nfile = \"./config.toml\"\n",
        "`log.file` is ./config.toml, the same file as the config file",
    );

    // Distinct files pass, and checking creates none of their directories.
    assert_accepted(&dir, "[alerts]\njournal = \"new/alerts.jsonl\"\n[log]\nfile = \"new/a.log\"\n");
    assert!(!dir.join("new").exists() && !dir.join("logs").exists());
}

/// A self-signed CA certificate, PEM and DER.
#[test]
fn a_history_file_that_cannot_be_a_file_of_its_own_is_a_config_error() {
    let dir = scratch("history-path");
    std::fs::create_dir(dir.join("data")).unwrap();
    assert_rejected(&dir, "[history]\npath = \"data\"\n", "config.toml:2: `history.path` is data, a directory");
    assert_rejected(
        &dir,
        "[alerts]\njournal = \"alerts.jsonl\"\n[history]\npath = \"./data/../alerts.jsonl\"\n",
        "`history.path` is ./data/../alerts.jsonl, the same file as `alerts.journal`",
    );
    assert_rejected(&dir, "[history]\npath = \"config.toml\"\n", "the same file as the config file");
    assert_accepted(&dir, "[history]\npath = \"data/history.sqlite\"\n");
}

fn ca_certificate() -> (String, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), cert.der().to_vec())
}

#[test]
fn a_ca_file_rustls_cannot_load_is_a_config_error() {
    let dir = scratch("ca");
    let (pem, der) = ca_certificate();
    std::fs::write(dir.join("ca.pem"), &pem).unwrap();
    std::fs::write(dir.join("ca.der"), &der).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("bad64.pem"), "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
        .unwrap();
    std::fs::write(dir.join("junk.pem"), "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n").unwrap();
    std::fs::create_dir(dir.join("certs")).unwrap();
    let body = |file: &str| format!("[binance]\nws_url = \"wss://127.0.0.1:1/stream\"\nca_file = {file:?}\n");
    let cases = [
        (
            "ca.der",
            "`binance.ca_file` is ca.der, which holds no PEM certificate; it needs `-----BEGIN CERTIFICATE-----`",
        ),
        ("key.pem", "`binance.ca_file` is key.pem, which holds no PEM certificate"),
        ("bad64.pem", "`binance.ca_file` is bad64.pem, whose certificates cannot be used: base64 decode error"),
        ("junk.pem", "`binance.ca_file` is junk.pem, whose certificates cannot be used"),
        ("certs", "`binance.ca_file` is certs, which is not a readable file"),
        ("missing.pem", "`binance.ca_file` is missing.pem, which is not a readable file"),
    ];
    for (file, want) in cases {
        assert_rejected(&dir, &body(file), &format!("config.toml:3: {want}"));
    }
    let out = assert_accepted(&dir, &body("ca.pem"));
    assert!(out.contains("ca_file = \"ca.pem\""), "{out}");
}

#[test]
fn ws_urls_the_feed_would_mishandle_are_config_errors_and_passwords_are_never_shown() {
    let dir = scratch("url");
    let secret = "wss://trader:hunter2secret@stream.binance.com:9443/stream";
    let secret_https = "https://trader:hunter2secret@stream.binance.com/stream";
    // (ws_url, as the message shows it, what the message says of it)
    let cases = [
        (
            "ws://127.0.0.1:9443/stream#top",
            "ws://127.0.0.1:9443/stream#top",
            "; it has a #fragment, and the streams appended after it (`?streams=…`) would never reach the server",
        ),
        (secret, "wss://<redacted>@stream.binance.com:9443/stream", "; it holds a user name or password"),
        (secret_https, "https://<redacted>@stream.binance.com/stream", "; expected a ws:// or wss:// URL"),
        (
            "ws://127.0.0.1:99999/stream",
            "ws://127.0.0.1:99999/stream",
            "; its port \"99999\" is not a port number (1 to 65535)",
        ),
        ("ws://127.0.0.1:0/stream", "ws://127.0.0.1:0/stream", "; its port \"0\" is not a port number"),
        (
            "wss://bad_host-/stream",
            "wss://bad_host-/stream",
            "; \"bad_host-\" is neither a DNS name nor an IP address, so TLS cannot verify it",
        ),
        ("ws:// spaced/stream", "ws:// spaced/stream", ", which is not a valid URL"),
        ("ws://", "ws://", ", which is not a valid URL"),
    ];
    for (url, shown, says) in cases {
        let body = format!("[binance]\nws_url = {url:?}\n");
        assert_rejected(&dir, &body, &format!("config.toml:2: `binance.ws_url` is {shown:?}{says}"));
        for command in ["check-config", "run"] {
            let out = run_in(&dir, command, &body);
            let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
            assert!(!all.contains("hunter2"), "{command} showed the password:\n{all}");
        }
    }
    assert_rejected(
        &dir,
        "[telegram]\napi_base = \"https://bot:hunter2secret@api.telegram.org\"\n",
        "config.toml:2: `telegram.api_base` is \"https://<redacted>@api.telegram.org\"; it holds a user name or password",
    );
    let out = run_in(&dir, "check-config", "[telegram]\napi_base = \"https://bot:hunter2secret@api.telegram.org\"\n");
    assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));
    // The URL run builds, streams appended, is checked too: a query that
    // leaves no room for them.
    let long = format!("ws://127.0.0.1:9443/stream?pad={}", "a".repeat(65_450));
    assert_rejected(
        &dir,
        &format!("[binance]\nws_url = {long:?}\n"),
        "aaaa… (65481 bytes)\"; with the streams of connection 0 appended (3 pairs, 65555 bytes) it is not a valid URL \
         (uri too long); \
         shorten it or lower `binance.max_streams_per_connection`",
    );
    for url in
        ["wss://stream.binance.com:9443/stream", "ws://[::1]:9443/stream?timeUnit=MICROSECOND", "ws://localhost/"]
    {
        assert_accepted(&dir, &format!("[binance]\nws_url = {url:?}\n"));
    }
}

/// `pairs = [...]` with `n` symbols, one per line after the first.
fn pairs_list(symbols: impl Iterator<Item = String>) -> String {
    let mut s = String::from("pairs = [\n");
    for sym in symbols {
        s.push_str(&format!("  \"{sym}\",\n"));
    }
    s.push_str("]\n");
    s
}

#[test]
fn a_list_of_sixty_thousand_pairs_is_checked_and_every_duplicate_found_on_its_line() {
    let dir = scratch("pairs");
    let n = 60_000;
    let body = pairs_list((0..n).map(|i| format!("P{i:06}USDT")));
    let out = assert_accepted(&dir, &body);
    assert!(out.contains(&format!("# OK: {n} pair(s), 0 trigger entries")), "{}", out.lines().last().unwrap_or(""));

    // Every tenth symbol repeats the one before it: 6,000 problems, each
    // located on its own line (line k+2 holds pairs[k]).
    let body = pairs_list((0..n).map(|i| format!("P{:06}USDT", if i % 10 == 9 { i - 1 } else { i })));
    let out = run_in(&dir, "check-config", &body);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(err.lines().count(), n / 10, "{}", err.lines().next().unwrap_or(""));
    assert!(
        err.starts_with("error: config.toml:11: `pairs[9]` P000008USDT is listed twice; remove the duplicate\n"),
        "{err:.200}"
    );
    assert!(
        err.contains("config.toml:60001: `pairs[59999]` P059998USDT is listed twice"),
        "{}",
        err.lines().last().unwrap()
    );
}

#[test]
fn a_metrics_address_that_is_not_this_hosts_is_a_config_error() {
    let dir = scratch("listen");
    // 192.0.2.0/24 is reserved for documentation: no host has it.
    assert_rejected(
        &dir,
        "[metrics_http]\nlisten = \"192.0.2.1:9184\"\n",
        "config.toml:2: `metrics_http.listen` is \"192.0.2.1:9184\", but 192.0.2.1 is not an address of this host",
    );
    // A port already taken (say, by the running service) is not the check's concern.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    assert_accepted(&dir, &format!("[metrics_http]\nlisten = \"{}\"\n", held.local_addr().unwrap()));
    assert_accepted(&dir, "[metrics_http]\nlisten = \"0.0.0.0:9184\"\n");
}
