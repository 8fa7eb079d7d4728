//! `/healthz` and `/metrics` against hostile clients, on real sockets: slow
//! senders, a thousand idle connections, a flood of new ones, oversized
//! request heads. Health
//! probes are what systemd watchdogs and load balancers act on, so each must
//! be answered whatever else is connected.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use imbalance_monitor::gauges::PairGauges;
use imbalance_monitor::metrics_http::MetricsHttp;
use imbalance_monitor::units::UnixNanos;

/// How long a probe waits for its answer: generous, so a loaded test machine
/// never fails it, yet far below a blocked server's wait.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The endpoint with one fresh pair, so `/healthz` answers 200.
fn endpoint() -> (MetricsHttp, Arc<PairGauges>) {
    let gauges = PairGauges::new(1);
    gauges.frame(0, UnixNanos::now().0);
    let http =
        MetricsHttp::start("127.0.0.1:0", vec!["BTCUSDT".into()], Duration::from_secs(3600), Arc::clone(&gauges), None)
            .unwrap();
    (http, gauges)
}

/// `GET path` on a fresh connection with generous timeouts: the whole
/// response, or why there was none.
fn get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(PROBE_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(PROBE_TIMEOUT)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: probe\r\n\r\n").map_err(|e| format!("write: {e}"))?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| format!("read: {e}"))?;
    Ok(out)
}

/// A health probe that must succeed.
fn probe_ok(addr: SocketAddr) {
    match get(addr, "/healthz") {
        Ok(r) => assert!(
            r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("\r\n\r\nok: 1 pair(s) fresh within 3600000 ms\n"),
            "{r}"
        ),
        Err(e) => panic!("a health probe got no answer: {e}"),
    }
}

/// `imbalance_monitor_http_rejected_total{reason=…}` from a scrape.
fn rejected(addr: SocketAddr, reason: &str) -> u64 {
    let text = get(addr, "/metrics").unwrap();
    let want = format!("imbalance_monitor_http_rejected_total{{reason=\"{reason}\"}} ");
    let line = text.lines().find(|l| l.starts_with(&want)).unwrap_or_else(|| panic!("{want} missing:\n{text}"));
    line[want.len()..].parse().unwrap()
}

/// Sends a request one byte every 1.5 s (the pause is the read timeout
/// while it waits for an answer); returns what the server answered.
fn slowloris(addr: SocketAddr, started: mpsc::Sender<()>) -> String {
    let request = b"GET /healthz HTTP/1.1\r\nHost: slow\r\nUser-Agent: one byte at a time\r\n\r\n";
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    let mut answer = Vec::new();
    for (i, byte) in request.iter().enumerate() {
        if s.write_all(std::slice::from_ref(byte)).is_err() {
            break;
        }
        if i == 0 {
            started.send(()).unwrap();
        }
        let mut buf = [0u8; 1024];
        match s.read(&mut buf) {
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    s.set_read_timeout(Some(PROBE_TIMEOUT)).unwrap();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn slow_clients_are_cut_off_by_the_deadline_and_never_hold_up_healthz() {
    let (http, _gauges) = endpoint();
    let addr = http.addr();
    let (tx, started) = mpsc::channel();
    let slow: Vec<_> = (0..10)
        .map(|_| {
            let tx = tx.clone();
            std::thread::spawn(move || slowloris(addr, tx))
        })
        .collect();
    for _ in 0..10 {
        started.recv().unwrap();
    }
    // Probe for as long as the slow clients are connected.
    let mut probes = 0;
    while !slow.iter().all(|t| t.is_finished()) {
        probe_ok(addr);
        probes += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(probes >= 1);
    for t in slow {
        let answer = t.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "a slow client got {answer:?}");
        assert!(answer.ends_with("\r\n\r\nrequest not complete in time\n"), "{answer:?}");
    }
    assert_eq!(rejected(addr, "timed_out"), 10);
    probe_ok(addr);
}

/// Raises the open-file limit so the test can hold `want` sockets; false if
/// the hard limit does not allow it.
fn allow_open_files(want: u64) -> bool {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return false;
        }
        if lim.rlim_cur >= want {
            return true;
        }
        if lim.rlim_max < want {
            return false;
        }
        lim.rlim_cur = want;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0
    }
}

#[test]
fn a_thousand_idle_connections_never_lock_out_healthz() {
    // 1,000 client sockets here, as many in the flood test running beside it, up to 256 on each server's side.
    if !allow_open_files(4096) {
        eprintln!("skipped: the hard limit on open files is below 4096 (ulimit -Hn)");
        return;
    }
    let (http, _gauges) = endpoint();
    let addr = http.addr();
    let mut idle = Vec::with_capacity(1000);
    for _ in 0..10 {
        for _ in 0..100 {
            idle.push(TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).expect("an idle client connects"));
        }
        probe_ok(addr);
    }
    for _ in 0..10 {
        probe_ok(addr);
    }
    // The server held at most 256 of them; the others it closed, unanswered
    // to make room or answered 408 at their deadline.
    let (evicted, timed_out) = (rejected(addr, "evicted"), rejected(addr, "timed_out"));
    assert!(evicted + timed_out >= 1000 - 256, "evicted {evicted}, timed out {timed_out}");
    assert!(evicted + timed_out <= 1000, "evicted {evicted}, timed out {timed_out}");
    drop(idle);
    probe_ok(addr);
}

#[test]
fn healthz_answers_while_connections_flood_in() {
    // 1,000 client sockets here, as many in the idle test running beside it, up to 256 on each server's side.
    if !allow_open_files(4096) {
        eprintln!("skipped: the hard limit on open files is below 4096 (ulimit -Hn)");
        return;
    }
    let (http, _gauges) = endpoint();
    let addr = http.addr();
    let flood: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                (0..250).map(|_| TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)).collect::<Vec<_>>()
            })
        })
        .collect();
    let mut probes = 0;
    while !flood.iter().all(|t| t.is_finished()) || probes == 0 {
        probe_ok(addr);
        probes += 1;
    }
    let held: Vec<TcpStream> = flood.into_iter().flat_map(|t| t.join().unwrap()).map(|c| c.unwrap()).collect();
    assert_eq!(held.len(), 1000);
    probe_ok(addr);
}

#[test]
fn a_request_head_over_the_cap_gets_431_and_the_server_keeps_serving() {
    let (http, _gauges) = endpoint();
    let addr = http.addr();
    let send = |head: &str| {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(PROBE_TIMEOUT)).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let padded = |len: usize| {
        let start = "GET /healthz HTTP/1.1\r\nHost: big\r\nX-Pad: ";
        let pad = len - start.len() - 4;
        format!("{start}{}\r\n\r\n", "a".repeat(pad))
    };
    // 8 KiB exactly is still a request; a byte more is not, nor is 20 KB.
    assert!(send(&padded(8192)).starts_with("HTTP/1.1 200 OK\r\n"));
    for len in [8193, 20_000] {
        let answer = send(&padded(len));
        assert_eq!(
            answer,
            "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\nContent-Length: 25\r\nConnection: close\r\n\r\nrequest header too large\n",
        );
        probe_ok(addr);
    }
    assert_eq!(rejected(addr, "too_large"), 2);
    assert_eq!(rejected(addr, "timed_out"), 0);
}
