//! Helpers the end-to-end tests share: scratch directories, recording
//! excerpts, polling with a timeout, a one-shot HTTP GET.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The real BTCUSDT depth10 recording (11 minutes, 6,493 frames).
pub const BTC10: &str = "tests/fixtures/btcusdt_depth10_100ms_20240808-09.txt.gz";

/// A fresh, empty directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("im-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The first `n` lines of the real BTCUSDT depth10 recording, as a plain file.
pub fn recording(dir: &Path, n: usize) -> PathBuf {
    let mut reader = std::io::BufReader::new(flate2::read::GzDecoder::new(std::fs::File::open(BTC10).unwrap()));
    let path = dir.join(format!("btc-{n}.txt"));
    let mut out = std::fs::File::create(&path).unwrap();
    let mut line = String::new();
    for _ in 0..n {
        line.clear();
        reader.read_line(&mut line).unwrap();
        out.write_all(line.as_bytes()).unwrap();
    }
    path
}

/// Polls `done` every 20 ms; fails the test after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `GET path` over a fresh connection: (status, body).
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

/// Standard base64, as the interval log encodes histograms.
pub fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
