//! The simulator as the other side of the diff-depth protocol: diff,
//! bookTicker and trade frames byte for byte from the real recordings, the
//! derived 1000 ms `@depth` stream, `GET /api/v3/depth` from its own book on
//! the same port (plain and TLS), and the faults a client's sync must survive
//! (gaps, 429/418 with `Retry-After`, slow and missing REST answers), over
//! real sockets on 127.0.0.1.
//!
//! Every expectation is computed here from the recording file, independently
//! of the simulator's code.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use imbalance_monitor::simulator::{Rate, RunningSimulator, SimOptions, Simulator, SnapshotStatus};
use tungstenite::{Message, WebSocket};

/// Long enough that only a bug makes a test wait this long.
const PATIENCE: Duration = Duration::from_secs(20);
const BTC: &str = "btcusdt_20240808.gz";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The JSON of every timestamped line of a recording, in order.
fn recorded_json(name: &str) -> Vec<String> {
    let file = std::fs::File::open(fixture(name)).unwrap();
    BufReader::new(flate2::read::MultiGzDecoder::new(file))
        .lines()
        .map(Result::unwrap)
        .filter_map(|line| {
            let (ts, json) = line.split_once(' ')?;
            ts.bytes().all(|b| b.is_ascii_digit()).then(|| json.to_owned())
        })
        .collect()
}

/// The payload of a combined-stream line of `stream`, byte for byte.
fn payload_of<'a>(line: &'a str, stream: &str) -> Option<&'a str> {
    line.strip_prefix(&format!("{{\"stream\":\"{stream}\",\"data\":"))?.strip_suffix('}')
}

/// The recording's `btcusdt@depth@100ms` payloads, in order.
fn diff_payloads(lines: &[String]) -> Vec<String> {
    diff_payloads_of(lines, "btcusdt")
}

/// The recording's `<symbol>@depth@100ms` payloads, in order.
fn diff_payloads_of(lines: &[String], symbol: &str) -> Vec<String> {
    let stream = format!("{symbol}@depth@100ms");
    lines.iter().filter_map(|l| payload_of(l, &stream)).map(str::to_owned).collect()
}

fn start(opts: SimOptions) -> RunningSimulator {
    Simulator::start(SimOptions { replay: vec![fixture(BTC)], ..opts }).expect("simulator starts")
}

type Client = WebSocket<TcpStream>;

fn connect(sim: &RunningSimulator, path: &str) -> Client {
    let tcp = TcpStream::connect(sim.addr()).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let url = format!("ws://127.0.0.1:{}{path}", sim.addr().port());
    tungstenite::client(url.as_str(), tcp).map(|(ws, _)| ws).map_err(|e| e.to_string()).expect("client connects")
}

/// The next text frame, skipping pings.
fn next_text(ws: &mut Client) -> String {
    loop {
        match ws.read().expect("a frame") {
            Message::Text(t) => return t.to_string(),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

fn agent(ca: Option<&Path>) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(PATIENCE));
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).unwrap();
        let cert = ureq::tls::Certificate::from_pem(&pem).unwrap();
        let roots = ureq::tls::RootCerts::Specific(Arc::new(vec![cert]));
        config = config.tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build());
    }
    config.build().new_agent()
}

/// An answer: status, the headers the tests look at, and the body.
struct Answer {
    status: u16,
    weight: Option<u32>,
    retry_after: Option<String>,
    content_type: Option<String>,
    body: String,
}

fn get(agent: &ureq::Agent, url: &str) -> Result<Answer, ureq::Error> {
    let mut resp = agent.get(url).call()?;
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (weight, retry_after, content_type) =
        (header("X-MBX-USED-WEIGHT-1M"), header("Retry-After"), header("Content-Type"));
    Ok(Answer {
        status: resp.status().as_u16(),
        weight: weight.map(|w| w.parse().unwrap()),
        retry_after,
        content_type,
        body: resp.body_mut().read_to_string()?,
    })
}

fn depth(sim: &RunningSimulator, query: &str) -> Answer {
    get(&agent(sim.ca_path()), &format!("{}/api/v3/depth?{query}", sim.rest_url())).expect("an HTTP answer")
}

/// Price or quantity string (8 decimals) as an ordering key.
fn key(s: &str) -> u64 {
    s.replace('.', "").parse().unwrap()
}

/// One side's levels as `(price, qty)` strings, best first.
type Side = Vec<(String, String)>;

/// A book kept here from the recording alone: price key → (price, qty) strings.
#[derive(Default, Debug, PartialEq)]
struct Book {
    id: u64,
    bids: BTreeMap<u64, (String, String)>,
    asks: BTreeMap<u64, (String, String)>,
}

fn pairs(v: &serde_json::Value) -> Side {
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| (l[0].as_str().unwrap().to_owned(), l[1].as_str().unwrap().to_owned()))
        .collect()
}

fn apply(side: &mut BTreeMap<u64, (String, String)>, levels: Side) {
    for (p, q) in levels {
        if key(&q) == 0 {
            side.remove(&key(&p));
        } else {
            side.insert(key(&p), (p, q));
        }
    }
}

impl Book {
    /// The BTCUSDT recording's snapshot line, then every diff event with
    /// `snapshot < u <= up_to`, in file order.
    fn replayed(lines: &[String], up_to: u64) -> Book {
        Book::replayed_of(lines, "btcusdt", up_to)
    }

    /// [`Book::replayed`] for the one-symbol recording of `symbol`.
    fn replayed_of(lines: &[String], symbol: &str, up_to: u64) -> Book {
        let snap_line = lines.iter().find(|l| l.starts_with("{\"lastUpdateId\"")).expect("a snapshot line");
        let snap: serde_json::Value = serde_json::from_str(snap_line).unwrap();
        let mut book = Book { id: snap["lastUpdateId"].as_u64().unwrap(), ..Book::default() };
        apply(&mut book.bids, pairs(&snap["bids"]));
        apply(&mut book.asks, pairs(&snap["asks"]));
        for payload in diff_payloads_of(lines, symbol) {
            let e: serde_json::Value = serde_json::from_str(&payload).unwrap();
            let u = e["u"].as_u64().unwrap();
            if u > book.id && u <= up_to {
                apply(&mut book.bids, pairs(&e["b"]));
                apply(&mut book.asks, pairs(&e["a"]));
                book.id = u;
            }
        }
        book
    }

    fn top(&self, n: usize) -> (Side, Side) {
        (self.bids.values().rev().take(n).cloned().collect(), self.asks.values().take(n).cloned().collect())
    }
}

#[test]
fn recorded_diff_book_ticker_and_trade_frames_arrive_byte_identical_and_snapshot_lines_are_never_sent() {
    let lines = recorded_json(BTC);
    let expected: Vec<&String> = lines.iter().filter(|l| l.starts_with("{\"stream\":")).take(3000).collect();
    assert!(
        lines.iter().take(20).any(|l| l.starts_with("{\"lastUpdateId\"")),
        "the fixture has an early snapshot line"
    );
    let sim = start(SimOptions { rate: Rate::Max, ..SimOptions::default() });
    let mut ws = connect(&sim, "/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker/btcusdt@trade");
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(&next_text(&mut ws), *want, "frame {i}");
    }
}

#[test]
fn the_1000ms_depth_stream_merges_each_ten_100ms_events_last_wins_best_first() {
    let diffs: Vec<serde_json::Value> =
        diff_payloads(&recorded_json(BTC)).iter().take(30).map(|p| serde_json::from_str(p).unwrap()).collect();
    let sim = start(SimOptions { rate: Rate::Max, ..SimOptions::default() });
    let mut ws = connect(&sim, "/ws/btcusdt@depth");
    for group in diffs.chunks(10) {
        let (mut bids, mut asks) = (BTreeMap::new(), BTreeMap::new());
        for e in group {
            for (p, q) in pairs(&e["b"]) {
                bids.insert(key(&p), (p, q));
            }
            for (p, q) in pairs(&e["a"]) {
                asks.insert(key(&p), (p, q));
            }
        }
        let side = |levels: Vec<&(String, String)>| {
            levels.iter().map(|(p, q)| format!("[\"{p}\",\"{q}\"]")).collect::<Vec<_>>().join(",")
        };
        let (first, last) = (&group[0], &group[9]);
        let want = format!(
            "{{\"e\":\"depthUpdate\",\"E\":{},\"s\":\"BTCUSDT\",\"U\":{},\"u\":{},\"b\":[{}],\"a\":[{}]}}",
            last["E"],
            first["U"],
            last["u"],
            side(bids.values().rev().collect()),
            side(asks.values().collect())
        );
        assert_eq!(next_text(&mut ws), want);
    }
}

#[test]
fn a_snapshot_asked_before_the_clock_reaches_the_snapshot_line_is_the_recorded_one() {
    let lines = recorded_json(BTC);
    let recorded = lines.iter().find(|l| l.starts_with("{\"lastUpdateId\"")).unwrap();
    // Nobody subscribes, so the market clock has not started.
    let sim = start(SimOptions::default());
    let answer = depth(&sim, "symbol=BTCUSDT&limit=1000");
    assert_eq!(answer.status, 200);
    assert_eq!(&answer.body, recorded, "byte for byte: the recording's snapshot has 1000 levels of 8 decimals");
    assert_eq!(answer.content_type.as_deref(), Some("application/json;charset=UTF-8"));
}

#[test]
fn a_later_snapshot_equals_an_independent_replay_of_the_recording_up_to_the_update_id_it_names() {
    let lines = recorded_json(BTC);
    let sim = start(SimOptions { rate: Rate::PerSecond(3000), ..SimOptions::default() });
    let mut ws = connect(&sim, "/ws/btcusdt@depth@100ms");
    let mut last_u = 0;
    for _ in 0..400 {
        let e: serde_json::Value = serde_json::from_str(&next_text(&mut ws)).unwrap();
        last_u = e["u"].as_u64().unwrap();
    }
    let answer = depth(&sim, "symbol=BTCUSDT&limit=5000");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.weight.is_some_and(|w| w >= 250), "limit 5000 weighs 250");
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    let id = body["lastUpdateId"].as_u64().unwrap();
    assert!(id >= last_u, "the snapshot ({id}) is not older than what was streamed ({last_u})");
    let expected = Book::replayed(&lines, id);
    assert_eq!(expected.id, id, "the snapshot names the u of an event of the recording");
    let (bids, asks) = expected.top(5000);
    assert!(bids.len() > 900 && asks.len() > 900);
    assert_eq!(pairs(&body["bids"]), bids);
    assert_eq!(pairs(&body["asks"]), asks);

    let small = depth(&sim, "symbol=BTCUSDT&limit=10");
    let body: serde_json::Value = serde_json::from_str(&small.body).unwrap();
    let (bids, asks) = Book::replayed(&lines, body["lastUpdateId"].as_u64().unwrap()).top(10);
    assert_eq!((pairs(&body["bids"]), pairs(&body["asks"])), (bids, asks), "truncated to the best 10");
}

#[test]
fn rest_requests_are_validated_like_binance() {
    let sim = start(SimOptions::default());
    let error = |query: &str| {
        let a = depth(&sim, query);
        let body: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        (a.status, body["code"].as_i64().unwrap())
    };
    assert_eq!(error("symbol=XRPUSDT"), (400, -1121));
    assert_eq!(error("symbol=btcusdt"), (400, -1100));
    assert_eq!(error("limit=5"), (400, -1102));
    assert_eq!(error("symbol=BTCUSDT&limit=0"), (400, -1130));
    assert_eq!(error("symbol=BTCUSDT&limit=ten"), (400, -1100));

    let default = depth(&sim, "symbol=BTCUSDT");
    let body: serde_json::Value = serde_json::from_str(&default.body).unwrap();
    assert_eq!((body["bids"].as_array().unwrap().len(), body["asks"].as_array().unwrap().len()), (100, 100));
    let over = depth(&sim, "symbol=BTCUSDT&limit=6000");
    assert_eq!(over.status, 200, "above 5000 gives 5000, as Binance documents");
    let (a, b) = (default.weight.unwrap(), over.weight.unwrap());
    assert!(b == a + 250 || b == 250, "weights add up within the minute: {a} then {b}");

    let missing = get(&agent(None), &format!("{}/api/v3/ticker", sim.rest_url())).unwrap();
    assert_eq!(missing.status, 404);
    assert_eq!(sim.requests().len(), 8, "every request is in the log");
}

#[test]
fn gap_every_skips_exactly_one_diff_event_in_n_and_nothing_else() {
    let lines = recorded_json(BTC);
    let diffs: Vec<serde_json::Value> =
        diff_payloads(&lines).iter().take(200).map(|p| serde_json::from_str(p).unwrap()).collect();
    for pair in diffs.windows(2) {
        assert_eq!(pair[1]["U"].as_u64().unwrap(), pair[0]["u"].as_u64().unwrap() + 1, "the recording is gapless");
    }
    let tickers: Vec<&str> = lines.iter().filter_map(|l| payload_of(l, "btcusdt@bookTicker")).collect();
    let sim = start(SimOptions { rate: Rate::Max, gap_every: Some(4), ..SimOptions::default() });
    let mut ws = connect(&sim, "/ws/btcusdt@depth@100ms/btcusdt@bookTicker");
    let (mut got_diffs, mut got_tickers) = (Vec::new(), Vec::new());
    while got_diffs.len() < 150 {
        let text = next_text(&mut ws);
        if text.starts_with("{\"e\":\"depthUpdate\"") {
            got_diffs.push(serde_json::from_str::<serde_json::Value>(&text).unwrap());
        } else {
            got_tickers.push(text);
        }
    }
    let kept: Vec<&serde_json::Value> = diffs.iter().enumerate().filter(|(i, _)| i % 4 != 3).map(|(_, e)| e).collect();
    assert_eq!(got_diffs.iter().collect::<Vec<_>>(), kept[..150].to_vec(), "every 4th diff event is skipped");
    let gaps = got_diffs.windows(2).filter(|w| w[1]["U"].as_u64() > w[0]["u"].as_u64().map(|u| u + 1)).count();
    // 150 events received of the first 200, 50 skipped; the 50th skip comes after the last received one.
    assert_eq!(gaps, 49, "a client sees U > previous u + 1 once per skipped event");
    assert_eq!(got_tickers, tickers[..got_tickers.len()].to_vec(), "bookTicker frames are never skipped");
    assert!(sim.stats().fault_gaps >= 50);
}

#[test]
fn snapshot_status_answers_count_times_with_retry_after_then_200_and_the_request_log_says_so() {
    let dir = std::env::temp_dir().join(format!("sim-diff-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("requests.log");
    let sim = start(SimOptions {
        snapshot_status: Some(SnapshotStatus { status: 429, count: 2 }),
        retry_after: Duration::from_secs(7),
        request_log: Some(log.clone()),
        ..SimOptions::default()
    });
    let answers: Vec<Answer> = (0..3).map(|_| depth(&sim, "symbol=BTCUSDT&limit=5")).collect();
    assert_eq!(answers.iter().map(|a| a.status).collect::<Vec<_>>(), [429, 429, 200]);
    for a in &answers[..2] {
        assert_eq!(a.retry_after.as_deref(), Some("7"));
        assert!(a.body.starts_with("{\"code\":-1003,"), "{}", a.body);
        assert!(a.weight.is_some(), "X-MBX-USED-WEIGHT-1M comes with every answer");
    }
    assert_eq!(answers[2].retry_after, None);

    let requests = sim.requests();
    assert_eq!(requests.iter().map(|r| r.status).collect::<Vec<_>>(), [Some(429), Some(429), Some(200)]);
    assert!(requests.iter().all(|r| r.target == "/api/v3/depth?symbol=BTCUSDT&limit=5"));
    assert!(requests.windows(2).all(|w| w[0].recv_unix_ns <= w[1].recv_unix_ns), "in arrival order");
    let written = std::fs::read_to_string(&log).unwrap();
    let want: String = requests.iter().map(|r| format!("{}\n", r.line())).collect();
    assert_eq!(written, want);
    assert!(written.lines().next().unwrap().ends_with(" /api/v3/depth?symbol=BTCUSDT&limit=5 429"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_delayed_snapshot_does_not_hold_the_streams_back() {
    let sim = start(SimOptions {
        rate: Rate::PerSecond(200),
        snapshot_delay: Duration::from_millis(1500),
        ..SimOptions::default()
    });
    let mut ws = connect(&sim, "/ws/btcusdt@depth@100ms/btcusdt@bookTicker");
    next_text(&mut ws);
    let answered = Arc::new(AtomicBool::new(false));
    let request = {
        let (answered, url) = (Arc::clone(&answered), format!("{}/api/v3/depth?symbol=BTCUSDT", sim.rest_url()));
        std::thread::spawn(move || {
            let a = get(&agent(None), &url).unwrap();
            answered.store(true, Ordering::SeqCst);
            a.status
        })
    };
    let mut while_waiting = 0;
    while !answered.load(Ordering::SeqCst) {
        next_text(&mut ws);
        while_waiting += 1;
    }
    assert_eq!(request.join().unwrap(), 200);
    assert!(while_waiting >= 50, "frames kept coming while the answer was held: {while_waiting}");
}

#[test]
fn rest_over_tls_verifies_against_the_simulators_ca_on_the_websocket_port() {
    let sim = start(SimOptions { tls: true, ..SimOptions::default() });
    assert!(sim.rest_url().starts_with("https://127.0.0.1:"));
    let answer = depth(&sim, "symbol=BTCUSDT&limit=5");
    assert_eq!(answer.status, 200);
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body["bids"].as_array().unwrap().len(), 5);
    let untrusted = get(&agent(None), &format!("{}/api/v3/depth?symbol=BTCUSDT", sim.rest_url()));
    assert!(untrusted.is_err(), "the simulator's certificate is not one the web trusts");
}

#[test]
fn with_the_rest_side_down_requests_are_closed_unanswered_and_logged() {
    let sim = start(SimOptions { rest_down: true, ..SimOptions::default() });
    assert!(get(&agent(None), &format!("{}/api/v3/depth?symbol=BTCUSDT", sim.rest_url())).is_err());
    let requests = sim.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].status, None);
    assert!(requests[0].line().ends_with(" /api/v3/depth?symbol=BTCUSDT closed"));
}

#[test]
fn the_simulate_command_takes_the_snapshot_fault_flags() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_imbalance-monitor"))
        .args(["simulate", "--replay"])
        .arg(fixture(BTC))
        .args(["--snapshot-status", "418:1", "--retry-after", "3", "--gap-every", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut first).unwrap();
    let addr = first.trim().strip_prefix("listening ws://").expect("the listening line").to_owned();
    let url = format!("http://{addr}/api/v3/depth?symbol=BTCUSDT&limit=5");
    let statuses: Vec<(u16, Option<String>)> =
        (0..2).map(|_| get(&agent(None), &url).map(|a| (a.status, a.retry_after)).unwrap()).collect();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(statuses, [(418, Some("3".to_owned())), (200, None)]);
}

/// Lines of several recordings merged by receive time (ties: the file given
/// first), as one market.
fn merged_json(names: &[&str]) -> Vec<String> {
    let mut lines: Vec<(u64, usize, String)> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let file = std::fs::File::open(fixture(name)).unwrap();
        for line in BufReader::new(flate2::read::MultiGzDecoder::new(file)).lines().map(Result::unwrap) {
            if let Some((ts, json)) = line.split_once(' ')
                && let Ok(ts) = ts.parse::<u64>()
            {
                lines.push((ts, i, json.to_owned()));
            }
        }
    }
    lines.sort_by_key(|(ts, i, _)| (*ts, *i));
    lines.into_iter().map(|(_, _, json)| json).collect()
}

#[test]
fn interleaved_recordings_play_as_one_market_and_each_symbol_has_its_book() {
    let files = ["btcusdt_20240808.gz", "ethusdt_20240808.gz"];
    let merged = merged_json(&files);
    let expected: Vec<&String> = merged
        .iter()
        .filter(|l| {
            l.starts_with("{\"stream\":\"btcusdt@depth@100ms\"") || l.starts_with("{\"stream\":\"ethusdt@depth@100ms\"")
        })
        .take(600)
        .collect();
    assert!(expected.iter().take(20).any(|l| l.contains("ethusdt")), "both symbols early in the merged market");
    let sim = Simulator::start(SimOptions {
        replay: files.iter().map(|f| fixture(f)).collect(),
        interleave: true,
        rate: Rate::PerSecond(3000),
        ..SimOptions::default()
    })
    .unwrap();
    let mut ws = connect(&sim, "/stream?streams=btcusdt@depth@100ms/ethusdt@depth@100ms");
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(&next_text(&mut ws), *want, "frame {i}");
    }
    let eth_lines = recorded_json("ethusdt_20240808.gz");
    let answer = depth(&sim, "symbol=ETHUSDT&limit=5000");
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    let id = body["lastUpdateId"].as_u64().unwrap();
    let eth = Book::replayed_of(&eth_lines, "ethusdt", id);
    assert_eq!(eth.id, id);
    assert_eq!((pairs(&body["bids"]), pairs(&body["asks"])), eth.top(5000));
}

/// Measurement (run with `--release -- --ignored --nocapture`): how fast the
/// market plays a real diff recording, books and all, to one client.
#[test]
#[ignore = "a measurement; run it in release"]
fn measure_diff_recording_at_max_rate() {
    let lines = recorded_json(BTC);
    let wanted = lines
        .iter()
        .filter(|l| {
            l.starts_with("{\"stream\":\"btcusdt@depth@100ms\"") || l.starts_with("{\"stream\":\"btcusdt@bookTicker\"")
        })
        .count();
    let sim = start(SimOptions { rate: Rate::Max, ..SimOptions::default() });
    let mut ws = connect(&sim, "/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker");
    let t0 = std::time::Instant::now();
    for _ in 0..wanted {
        next_text(&mut ws);
    }
    let secs = t0.elapsed().as_secs_f64();
    println!("{wanted} frames ({} lines) in {secs:.3} s: {:.0} frames/s", lines.len(), wanted as f64 / secs);
    assert_eq!(sim.stop().data_frames_total(), wanted as u64, "every recorded frame of the two streams was sent");
}
