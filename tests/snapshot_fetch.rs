//! The snapshot fetcher against a tiny HTTP server on 127.0.0.1 that this
//! test starts itself, answering with the real REST snapshot of the BTCUSDT
//! recording or with scripted faults.
//!
//! Time is asserted only as lower bounds the fetcher must respect, from the
//! server's own instants: the fetcher sends one request at a time, so a
//! request cannot have left before the previous answer was written
//! (`prev.answered`), and the fetcher only learns of a `Retry-After` after
//! the server wrote it. "No request before the Retry-After elapsed" is then
//! `next.received >= prev.answered + retry_after`, whatever the speed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use counting_alloc::{ALLOCS, DEALLOCS, MEASURING, REALLOCS};
use imbalance_monitor::pairs::PairId;
use imbalance_monitor::snapshot::{
    Fetcher, FetcherConfig, SnapshotClient, SnapshotCounters, SnapshotReply, SnapshotRequest, depth_weight, spawn,
};
use imbalance_monitor::venue::binance_spot::snapshot::{SnapshotBook, parse_snapshot};

mod counting_alloc;

/// Runs `f` on this thread with the counting allocator watching; returns
/// its result and the allocations, reallocations and frees it made.
fn counted<T>(f: impl FnOnce() -> T) -> (T, [u64; 3]) {
    let before = [ALLOCS.load(Relaxed), REALLOCS.load(Relaxed), DEALLOCS.load(Relaxed)];
    MEASURING.set(true);
    let out = f();
    MEASURING.set(false);
    let after = [ALLOCS.load(Relaxed), REALLOCS.load(Relaxed), DEALLOCS.load(Relaxed)];
    (out, [after[0] - before[0], after[1] - before[1], after[2] - before[2]])
}

/// The bare REST snapshot line of the real recording (line 8), without its
/// receive-time prefix.
fn real_snapshot() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/btcusdt_20240808.gz");
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap());
    let line = BufReader::new(gz).split(b'\n').nth(7).unwrap().unwrap();
    let json = line.iter().position(|&c| c == b' ').unwrap() + 1;
    line[json..].to_vec()
}

/// One answer of the test server.
#[derive(Clone, Debug)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn snapshot() -> Self {
        Answer { status: 200, headers: vec![("X-MBX-USED-WEIGHT-1M", "50".into())], body: real_snapshot() }
    }

    fn status(status: u16, retry_after: Option<u64>) -> Self {
        let headers = retry_after.map(|s| ("Retry-After", s.to_string())).into_iter().collect();
        Answer { status, headers, body: br#"{"code":-1003,"msg":"Too much request weight used."}"#.to_vec() }
    }
}

/// A request as the server saw it: when its head was read, its path, and
/// when the answer was written.
#[derive(Clone, Debug)]
struct Hit {
    received: Instant,
    path: String,
    answered: Instant,
}

type Script = dyn Fn(usize, &str) -> Answer + Send + Sync;

/// HTTP/1.1 with keep-alive on 127.0.0.1; `script(n, path)` answers the
/// n-th request (0-based, over all connections).
struct Server {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Server {
    fn start(script: impl Fn(usize, &str) -> Answer + Send + Sync + 'static) -> Self {
        Self::start_with(None, script)
    }

    fn start_with(
        tls: Option<Arc<rustls::ServerConfig>>,
        script: impl Fn(usize, &str) -> Answer + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let hits = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let log = Arc::clone(&hits);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (log, script, tls) = (Arc::clone(&log), Arc::clone(&script), tls.clone());
                std::thread::spawn(move || match tls {
                    Some(config) => {
                        let conn = rustls::ServerConnection::new(config).unwrap();
                        serve(rustls::StreamOwned::new(conn, stream), &log, &*script);
                    }
                    None => serve(stream, &log, &*script),
                });
            }
        });
        Server { url: format!("{scheme}://127.0.0.1:{port}"), hits }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

/// Answers requests on one connection until the client closes it.
fn serve<S: Read + Write>(stream: S, log: &Mutex<Vec<Hit>>, script: &Script) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
        }
        let received = Instant::now();
        let path = request_line.split(' ').nth(1).unwrap_or("").to_owned();
        let n = {
            let mut log = log.lock().unwrap();
            log.push(Hit { received, path: path.clone(), answered: received });
            log.len() - 1
        };
        let answer = script(n, &path);
        let mut head = format!("HTTP/1.1 {} X\r\nContent-Length: {}\r\n", answer.status, answer.body.len());
        for (name, value) in &answer.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("Content-Type: application/json\r\n\r\n");
        let out = reader.get_mut();
        if out.write_all(head.as_bytes()).and_then(|()| out.write_all(&answer.body)).and_then(|()| out.flush()).is_err()
        {
            return;
        }
        if let Some(hit) = log.lock().unwrap().get_mut(n) {
            hit.answered = Instant::now();
        }
    }
}

/// A fetcher for `symbols` at `url`, with clocks short enough for a test,
/// and the channel its wake-ups arrive on.
fn fetcher(config: FetcherConfig) -> (SnapshotClient, Fetcher, mpsc::Receiver<()>) {
    let (woke, wakes) = mpsc::channel();
    let (client, fetcher) = spawn(
        config,
        Box::new(move || {
            let _ = woke.send(());
        }),
    )
    .unwrap();
    (client, fetcher, wakes)
}

fn config(url: &str, symbols: &[&str]) -> FetcherConfig {
    let mut c = FetcherConfig::new(url, 1000, symbols.iter().map(|s| s.to_string()).collect());
    c.backoff_base = Duration::from_millis(20);
    c.backoff_cap = Duration::from_millis(100);
    c.client_error_delay = Duration::from_millis(300);
    c
}

/// The next reply, waiting for the fetcher's wake-up.
fn next_reply(client: &SnapshotClient, wakes: &mpsc::Receiver<()>) -> SnapshotReply {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(reply) = client.try_recv() {
            return reply;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        wakes.recv_timeout(left).expect("no snapshot reply within 20 s");
    }
}

fn get(counter: &std::sync::atomic::AtomicU64) -> u64 {
    SnapshotCounters::get(counter)
}

fn ask(client: &SnapshotClient, pair: u16, attempt: u64) {
    assert!(client.request(SnapshotRequest { pair: PairId(pair), attempt }));
}

#[test]
fn a_requested_snapshot_arrives_parsed_with_its_attempt_after_a_wake_up() {
    let server = Server::start(|_, _| Answer::snapshot());
    let (client, fetcher, wakes) = fetcher(config(&server.url, &["BTCUSDT", "ETHUSDT"]));
    ask(&client, 1, 7);
    let reply = next_reply(&client, &wakes);
    assert_eq!((reply.pair, reply.attempt), (PairId(1), 7));
    assert_eq!(reply.book.last_update_id, 50_093_239_218);
    assert_eq!((reply.book.bids.len(), reply.book.asks.len()), (1000, 1000));
    assert_eq!(reply.book.bids[0].price.0, 6_183_763_000_000);
    client.recycle(reply.book);
    let hits = server.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].path, "/api/v3/depth?symbol=ETHUSDT&limit=1000");
    let c = client.counters();
    assert_eq!((get(&c.requests), get(&c.ok), get(&c.weight_spent), get(&c.server_weight_1m)), (1, 1, 50, 50));
    assert!(client.try_recv().is_none());
    // Unknown pairs and the reserved attempt are refused, not queued.
    assert!(!client.request(SnapshotRequest { pair: PairId(2), attempt: 1 }));
    assert!(!client.request(SnapshotRequest { pair: PairId(0), attempt: u64::MAX }));
    fetcher.stop();
    assert!(!client.request(SnapshotRequest { pair: PairId(0), attempt: 1 }));
}

/// After `status` with `Retry-After: 2` on the first request, no request
/// for any pair reaches the server before the 2 s have passed.
fn retry_after_is_honoured_for_every_pair(status: u16) -> SnapshotClient {
    let server = Server::start(move |n, _| if n == 0 { Answer::status(status, Some(2)) } else { Answer::snapshot() });
    let (client, _fetcher, wakes) = fetcher(config(&server.url, &["BTCUSDT", "ETHUSDT"]));
    ask(&client, 0, 1);
    ask(&client, 1, 1);
    let mut got: Vec<_> = (0..2).map(|_| next_reply(&client, &wakes)).map(|r| (r.pair, r.attempt)).collect();
    got.sort();
    assert_eq!(got, [(PairId(0), 1), (PairId(1), 1)]);
    let hits = server.hits();
    assert_eq!(hits.len(), 3, "{hits:?}");
    for later in &hits[1..] {
        assert!(
            later.received >= hits[0].answered + Duration::from_secs(2),
            "a request came {:?} after the {status}'s Retry-After: 2",
            later.received - hits[0].answered
        );
    }
    client
}

#[test]
fn after_a_429_no_request_comes_before_retry_after() {
    let client = retry_after_is_honoured_for_every_pair(429);
    assert_eq!((get(&client.counters().rate_limited), get(&client.counters().ok)), (1, 2));
}

#[test]
fn after_a_418_ban_no_request_comes_before_it_ends() {
    let client = retry_after_is_honoured_for_every_pair(418);
    assert_eq!((get(&client.counters().banned), get(&client.counters().ok)), (1, 2));
}

#[test]
fn server_errors_are_retried_until_a_snapshot_arrives() {
    let server = Server::start(|n, _| if n < 3 { Answer::status(500 + n as u16, None) } else { Answer::snapshot() });
    let (client, _fetcher, wakes) = fetcher(config(&server.url, &["BTCUSDT"]));
    ask(&client, 0, 3);
    let reply = next_reply(&client, &wakes);
    assert_eq!((reply.pair, reply.attempt, reply.book.last_update_id), (PairId(0), 3, 50_093_239_218));
    assert_eq!(server.hits().len(), 4);
    assert_eq!((get(&client.counters().server_errors), get(&client.counters().ok)), (3, 1));
}

#[test]
fn a_malformed_body_is_retried_and_a_refused_symbol_retried_slowly() {
    let server = Server::start(|n, path| match n {
        _ if path.contains("NOSUCH") => Answer {
            status: 400,
            headers: vec![],
            body: b"{\"code\":-1121,\"msg\":\"Invalid symbol.\n\x1b[31m\"}".to_vec(),
        },
        0 => Answer { status: 200, headers: vec![], body: real_snapshot()[..5000].to_vec() },
        _ => Answer::snapshot(),
    });
    let (client, _fetcher, wakes) = fetcher(config(&server.url, &["NOSUCH", "BTCUSDT"]));
    ask(&client, 1, 1);
    let reply = next_reply(&client, &wakes);
    assert_eq!((reply.pair, reply.attempt), (PairId(1), 1));
    assert_eq!(get(&client.counters().bad_bodies), 1);
    ask(&client, 0, 1);
    // Two refusals of the unknown symbol, spaced by client_error_delay.
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&client.counters().client_errors) < 2 {
        assert!(Instant::now() < deadline, "the refused symbol was not retried");
        std::thread::sleep(Duration::from_millis(20));
    }
    let refused: Vec<Hit> = server.hits().into_iter().filter(|h| h.path.contains("NOSUCH")).collect();
    assert!(refused.len() >= 2);
    for w in refused.windows(2) {
        assert!(w[1].received >= w[0].answered + Duration::from_millis(300), "retried too soon: {refused:?}");
    }
    assert!(client.try_recv().is_none(), "a refused symbol produced a reply");
}

#[test]
fn a_newer_request_replaces_an_older_one_not_yet_sent() {
    // The first request is held until the test has queued two requests for
    // the other pair: only the newer of them may be fetched.
    let (held_tx, held_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (held_tx, release_rx) = (Mutex::new(held_tx), Mutex::new(release_rx));
    let server = Server::start(move |n, _| {
        if n == 0 {
            held_tx.lock().unwrap().send(()).unwrap();
            release_rx.lock().unwrap().recv().unwrap();
        }
        Answer::snapshot()
    });
    let (client, _fetcher, wakes) = fetcher(config(&server.url, &["BTCUSDT", "ETHUSDT"]));
    ask(&client, 0, 1);
    held_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    ask(&client, 1, 1);
    ask(&client, 1, 2);
    release_tx.send(()).unwrap();
    let first = next_reply(&client, &wakes);
    let second = next_reply(&client, &wakes);
    assert_eq!([(first.pair, first.attempt), (second.pair, second.attempt)], [(PairId(0), 1), (PairId(1), 2)]);
    let paths: Vec<String> = server.hits().into_iter().map(|h| h.path).collect();
    assert_eq!(paths, ["/api/v3/depth?symbol=BTCUSDT&limit=1000", "/api/v3/depth?symbol=ETHUSDT&limit=1000"]);
}

#[test]
fn the_first_snapshots_of_many_pairs_are_staggered_within_the_weight_budget() {
    let server = Server::start(|_, _| Answer { headers: vec![], ..Answer::snapshot() });
    let symbols = ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT", "FFFUSDT"];
    let mut c = config(&server.url, &symbols);
    let window = Duration::from_millis(700);
    (c.weight_budget, c.weight_window) = (2 * depth_weight(1000), window);
    let (client, _fetcher, wakes) = fetcher(c);
    let asked = Instant::now();
    for pair in 0..symbols.len() as u16 {
        ask(&client, pair, 1);
    }
    let mut pairs: Vec<PairId> = (0..symbols.len())
        .map(|_| {
            let r = next_reply(&client, &wakes);
            client.recycle(r.book);
            r.pair
        })
        .collect();
    pairs.sort();
    assert_eq!(pairs, (0..symbols.len() as u16).map(PairId).collect::<Vec<_>>());
    let hits = server.hits();
    assert_eq!(hits.len(), symbols.len());
    // One request at a time, every pair once, in the order asked.
    for (i, hit) in hits.iter().enumerate() {
        assert!(hit.path.contains(symbols[i]), "{hits:?}");
        if let Some(prev) = i.checked_sub(1).map(|p| &hits[p]) {
            assert!(hit.received >= prev.answered, "requests overlapped: {hits:?}");
        }
    }
    // A budget of two requests per window: request i + 2 cannot have been
    // sent before request i left (after answer i − 1) plus the window.
    for i in 0..hits.len() - 2 {
        let sent_no_earlier = if i == 0 { asked } else { hits[i - 1].answered };
        assert!(hits[i + 2].received >= sent_no_earlier + window, "request {} came too early: {hits:?}", i + 2);
    }
    assert_eq!(get(&client.counters().weight_spent), 6 * 50);
}

/// A CA and a leaf for 127.0.0.1 it signs (webpki refuses a self-signed
/// leaf as its own anchor), the leaf's server config, and the CA's PEM file.
fn test_ca() -> (Arc<rustls::ServerConfig>, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&leaf_key, &ca).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    let path = std::env::temp_dir().join(format!("im-snapshot-ca-{}.pem", std::process::id()));
    std::fs::write(&path, ca_cert.pem()).unwrap();
    (Arc::new(config), path)
}

#[test]
fn https_snapshots_are_fetched_with_the_ca_file_and_refused_without_it() {
    let (tls, ca_path) = test_ca();
    let server = Server::start_with(Some(tls), |_, _| Answer::snapshot());
    let mut trusted = config(&server.url, &["BTCUSDT"]);
    trusted.ca_file = Some(ca_path.clone());
    let (client, _fetcher, wakes) = fetcher(trusted);
    ask(&client, 0, 5);
    let reply = next_reply(&client, &wakes);
    assert_eq!((reply.attempt, reply.book.asks.len()), (5, 1000));

    // Without the CA, the certificate does not verify: no reply, a network
    // error, retried (TLS verification has no switch).
    let (untrusting, _fetcher, _wakes) = fetcher(config(&server.url, &["BTCUSDT"]));
    ask(&untrusting, 0, 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&untrusting.counters().network_errors) < 2 {
        assert!(Instant::now() < deadline, "the untrusted server was not retried");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(untrusting.try_recv().is_none());
    assert_eq!(server.hits().len(), 1, "a request passed an unverified TLS handshake");
    std::fs::remove_file(ca_path).unwrap();
}

#[test]
fn the_hot_side_end_neither_allocates_nor_frees() {
    let server = Server::start(|_, _| Answer::snapshot());
    let (client, _fetcher, wakes) = fetcher(config(&server.url, &["BTCUSDT", "ETHUSDT"]));
    let mut total = [0u64; 3];
    for attempt in 1..=6 {
        let (asked, n) = counted(|| client.request(SnapshotRequest { pair: PairId((attempt % 2) as u16), attempt }));
        assert!(asked);
        total.iter_mut().zip(n).for_each(|(t, n)| *t += n);
        let deadline = Instant::now() + Duration::from_secs(20);
        let reply = loop {
            assert!(Instant::now() < deadline, "no reply to attempt {attempt} (frees so far: {})", total[2]);
            let (reply, n) = counted(|| client.try_recv());
            total.iter_mut().zip(n).for_each(|(t, n)| *t += n);
            match reply {
                Some(reply) => break reply,
                None => {
                    let _ = wakes.recv_timeout(Duration::from_millis(100));
                }
            }
        };
        assert_eq!(reply.attempt, attempt);
        let ((), n) = counted(|| client.recycle(reply.book));
        total.iter_mut().zip(n).for_each(|(t, n)| *t += n);
    }
    assert_eq!(total, [0, 0, 0], "allocations, reallocations, frees on the hot side");
}

#[test]
fn parsing_the_real_snapshot_into_a_warm_book_allocates_nothing() {
    let body = real_snapshot();
    let mut book = SnapshotBook::with_capacity(1000);
    let (parsed, n) = counted(|| [(); 3].map(|()| parse_snapshot(&body, &mut book)));
    assert_eq!(parsed, [Ok(()), Ok(()), Ok(())]);
    assert_eq!(n, [0, 0, 0], "allocations, reallocations, frees while parsing");
}
