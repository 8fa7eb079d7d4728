//! The Binance feed simulator over real loopback sockets (and real TLS), seen
//! through a plain blocking tungstenite client, as a monitor would see it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use imbalance_monitor::book::{Book, BookEvent, BookShape, Sides};
use imbalance_monitor::pairs::PairId;
use imbalance_monitor::simulator::{Rate, RunningSimulator, SimOptions, SimStats, Simulator, listening_line};
use imbalance_monitor::venue::Message as Parsed;
use imbalance_monitor::venue::binance_spot::{Depth, StreamKind, StreamTable, UpdateSpeed, parse_message};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

/// Long enough that only a bug makes a test wait this long.
const PATIENCE: Duration = Duration::from_secs(15);

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

/// The payload of a combined-stream line, byte for byte.
fn payload_of<'a>(line: &'a str, stream: &str) -> &'a str {
    line.strip_prefix(&format!("{{\"stream\":\"{stream}\",\"data\":")).and_then(|s| s.strip_suffix('}')).unwrap()
}

fn replay(file: &str, rate: Rate) -> SimOptions {
    SimOptions { replay: vec![fixture(file)], rate, ..SimOptions::default() }
}

fn synthetic(rate: Rate) -> SimOptions {
    SimOptions { synthetic: true, rate, seed: 42, ..SimOptions::default() }
}

fn start(opts: SimOptions) -> RunningSimulator {
    Simulator::start(opts).expect("simulator starts")
}

enum ClientStream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl ClientStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            ClientStream::Plain(s) => s,
            ClientStream::Tls(s) => &s.sock,
        }
    }
}

impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(s) => s.read(buf),
            ClientStream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(s) => s.write(buf),
            ClientStream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            ClientStream::Plain(s) => s.flush(),
            ClientStream::Tls(s) => s.flush(),
        }
    }
}

type Client = WebSocket<ClientStream>;

fn tls_config(ca: Option<&Path>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    if let Some(ca) = ca {
        roots.add(CertificateDer::from_pem_file(ca).expect("CA PEM readable")).expect("CA accepted as a root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// Connects to `path` (`/stream?streams=…`), over TLS with `server_name` when
/// `tls` is given.
fn try_connect(
    addr: SocketAddr,
    path: &str,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
) -> tungstenite::Result<Client> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(PATIENCE))?;
    let (stream, scheme) = match tls {
        None => (ClientStream::Plain(tcp), "ws"),
        Some((config, name)) => {
            let conn = ClientConnection::new(config, name).expect("client TLS session");
            (ClientStream::Tls(Box::new(StreamOwned::new(conn, tcp))), "wss")
        }
    };
    let url = format!("{scheme}://localhost:{}{path}", addr.port());
    tungstenite::client(url.as_str(), stream).map(|(ws, _)| ws).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => e,
        tungstenite::HandshakeError::Interrupted(_) => unreachable!("blocking sockets never interrupt"),
    })
}

fn connect(sim: &RunningSimulator, path: &str) -> Client {
    let tls = sim.ca_path().map(|ca| (tls_config(Some(ca)), ServerName::try_from("localhost").unwrap()));
    try_connect(sim.addr(), path, tls).expect("client connects")
}

/// What a client read next.
#[derive(Debug)]
enum Got {
    Text(String),
    Ping,
    Close(Option<CloseCode>),
    Silence,
    Error(tungstenite::Error),
}

fn next(ws: &mut Client) -> Got {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => return Got::Text(t.to_string()),
            Ok(Message::Ping(_)) => return Got::Ping,
            Ok(Message::Close(frame)) => return Got::Close(frame.map(|f| f.code)),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
            {
                return Got::Silence;
            }
            Err(e) => return Got::Error(e),
        }
    }
}

/// The next text frame, skipping pings.
fn next_text(ws: &mut Client) -> String {
    loop {
        match next(ws) {
            Got::Text(t) => return t,
            Got::Ping => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

fn send(ws: &mut Client, json: &str) {
    ws.send(Message::Text(json.into())).unwrap();
}

/// Polls the simulator's stats until `done` holds.
fn wait_for(sim: &RunningSimulator, what: &str, done: impl Fn(&SimStats) -> bool) -> SimStats {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let stats = sim.stats();
        if done(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {stats:#?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn depth_table(symbols: &[&str], depth: Depth, speed: UpdateSpeed) -> StreamTable {
    let symbols: Vec<String> = symbols.iter().map(|s| s.to_string()).collect();
    StreamTable::new(&symbols, StreamKind { depth, speed })
}

#[test]
fn combined_stream_delivers_exactly_the_recorded_frames_of_the_requested_streams_in_order() {
    let sim = start(replay("btcusdt_mixed_20240808.gz", Rate::Max));
    let wanted = ["btcusdt@depth@100ms", "btcusdt@trade"];
    let expected: Vec<String> = recorded_json("btcusdt_mixed_20240808.gz")
        .into_iter()
        .filter(|l| wanted.iter().any(|s| l.starts_with(&format!("{{\"stream\":\"{s}\""))))
        .collect();
    assert!(expected.len() > 10_000);
    let mut ws = connect(&sim, &format!("/stream?streams={}", wanted.join("/")));
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(&next_text(&mut ws), want, "frame {i}");
    }
    let stats = wait_for(&sim, "the end of the recording", |s| s.recording_finished);
    ws.get_ref().tcp().set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    assert!(matches!(next(&mut ws), Got::Silence), "nothing follows the last recorded frame");
    assert_eq!(stats.data_frames("btcusdt@bookTicker"), 0);
    assert_eq!(stats.data_frames_total(), expected.len() as u64);
}

#[test]
fn raw_endpoint_delivers_the_payloads_alone() {
    let stream = "btcusdt@depth5@100ms";
    let sim = start(replay("btcusdt_depth5_100ms_20240808-09.txt.gz", Rate::Max));
    let lines = recorded_json("btcusdt_depth5_100ms_20240808-09.txt.gz");
    let mut ws = connect(&sim, &format!("/ws/{stream}"));
    for line in &lines {
        assert_eq!(next_text(&mut ws), payload_of(line, stream));
    }
    let stats = wait_for(&sim, "the end of the recording", |s| s.recording_finished);
    assert_eq!(stats.data_frames(stream), lines.len() as u64);
}

#[test]
fn two_connections_get_the_same_frames() {
    let opts = SimOptions { wait_for_subscribers: 2, ..replay("ethusdt_depth5_100ms_20240808-09.txt.gz", Rate::Max) };
    let sim = start(opts);
    let n = recorded_json("ethusdt_depth5_100ms_20240808-09.txt.gz").len();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let mut ws = connect(&sim, "/stream?streams=ethusdt@depth5@100ms");
            std::thread::spawn(move || (0..n).map(|_| next_text(&mut ws)).collect::<Vec<_>>())
        })
        .collect();
    let [a, b]: [Vec<String>; 2] =
        readers.into_iter().map(|r| r.join().unwrap()).collect::<Vec<_>>().try_into().unwrap();
    assert_eq!(a.len(), n);
    assert!(a == b, "both clients saw the same frames");
}

#[test]
fn live_requests_are_answered_like_binance() {
    let sim = start(synthetic(Rate::PerSecond(200)));
    let mut ws = connect(&sim, "/stream");
    send(&mut ws, r#"{"method":"LIST_SUBSCRIPTIONS","id":1}"#);
    assert_eq!(next_text(&mut ws), r#"{"result":[],"id":1}"#);

    send(&mut ws, r#"{"method":"SUBSCRIBE","params":["btcusdt@depth10@100ms","ethusdt@depth5"],"id":2}"#);
    assert_eq!(next_text(&mut ws), r#"{"result":null,"id":2}"#);
    assert!(next_text(&mut ws).starts_with(r#"{"stream":"btcusdt@depth10@100ms","data":{"lastUpdateId":"#));

    send(&mut ws, r#"{"method":"LIST_SUBSCRIPTIONS","id":3}"#);
    let reply = loop {
        let t = next_text(&mut ws);
        if !t.starts_with(r#"{"stream""#) {
            break t;
        }
    };
    assert_eq!(reply, r#"{"result":["btcusdt@depth10@100ms","ethusdt@depth5"],"id":3}"#);

    send(&mut ws, r#"{"method":"UNSUBSCRIBE","params":["btcusdt@depth10@100ms","ethusdt@depth5"],"id":4}"#);
    while next_text(&mut ws) != r#"{"result":null,"id":4}"# {}
    // Nothing of an unsubscribed stream follows the reply.
    send(&mut ws, r#"{"method":"GET_PROPERTY","params":["combined"],"id":5}"#);
    assert_eq!(next_text(&mut ws), r#"{"result":true,"id":5}"#);

    send(&mut ws, r#"{"method":"SUBSCRIBE","params":["not a stream"],"id":6}"#);
    let error = next_text(&mut ws);
    assert!(
        error.starts_with(r#"{"error":{"code":2,"msg":"Invalid request: "#) && error.ends_with(r#""},"id":6}"#),
        "{error}"
    );
    send(&mut ws, "{not json");
    let error = next_text(&mut ws);
    assert!(
        error.starts_with(r#"{"error":{"code":3,"msg":"Invalid JSON"#) && error.ends_with(r#""id":null}"#),
        "{error}"
    );
    send(&mut ws, r#"{"method":"SET_PROPERTY","params":["combined",false],"id":7}"#);
    assert_eq!(next_text(&mut ws), r#"{"result":null,"id":7}"#);
    send(&mut ws, r#"{"method":"SUBSCRIBE","params":["btcusdt@depth5@100ms"],"id":8}"#);
    assert_eq!(next_text(&mut ws), r#"{"result":null,"id":8}"#);
    assert!(next_text(&mut ws).starts_with(r#"{"lastUpdateId":"#), "raw payloads once combined is off");

    ws.send(Message::Ping("are you there".into())).unwrap();
    let pong = loop {
        match ws.read().unwrap() {
            Message::Pong(p) => break p,
            _ => continue,
        }
    };
    assert_eq!(&pong[..], b"are you there");
    assert_eq!(wait_for(&sim, "requests", |s| s.requests_answered >= 9).requests_answered, 9);
    ws.close(None).unwrap();
    while !matches!(next(&mut ws), Got::Error(tungstenite::Error::ConnectionClosed)) {}
}

#[test]
fn unknown_paths_are_404_and_malformed_stream_lists_400() {
    let sim = start(synthetic(Rate::Recorded));
    let status = |path: &str| match try_connect(sim.addr(), path, None) {
        Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        other => panic!("{path}: expected an HTTP error, got {:?}", other.map(|_| "a WebSocket")),
    };
    assert_eq!(status("/api/v3/depth"), 404);
    assert_eq!(status("/stream?streams="), 400);
    assert_eq!(status("/stream?streams=btcusdt"), 400);
    assert_eq!(status("/ws/btcusdt@depth5//x@y"), 400);
    assert_eq!(wait_for(&sim, "refusals", |s| s.upgrades_refused == 4).connections_open, 0);
}

#[test]
fn clients_breaking_the_protocol_are_closed_and_counted() {
    let sim = start(synthetic(Rate::Recorded));
    let mut ws = connect(&sim, "/ws");
    // Unmasked, and with a reserved opcode: a client frame no server may accept.
    ws.get_mut().write_all(&[0x83, 0x00]).unwrap();
    let mut not_http = TcpStream::connect(sim.addr()).unwrap();
    not_http.write_all(b"NOT HTTP AT ALL\r\n\r\n").unwrap();
    let stats = wait_for(&sim, "both closes", |s| s.client_errors == 1 && s.handshake_failures == 1);
    assert_eq!(stats.connections_open, 0);
    assert!(!matches!(next(&mut ws), Got::Text(_)), "the broken client is closed");
}

#[test]
fn synthetic_frames_parse_and_stay_uncrossed_and_repeat_for_a_seed() {
    let table = depth_table(&["BTCUSDT", "ETHUSDT"], Depth::D10, UpdateSpeed::Ms100);
    let path = "/stream?streams=btcusdt@depth10@100ms/ethusdt@depth10@100ms";
    let sim = start(synthetic(Rate::Max));
    let mut ws = connect(&sim, path);
    let frames: Vec<String> = (0..400).map(|_| next_text(&mut ws)).collect();
    let mut last_ids = [0u64; 2];
    let mut book = Book::default();
    for f in &frames {
        let Ok(Parsed::Book(pair, BookEvent::Snapshot)) = parse_message(f.as_bytes(), &table, &mut book) else {
            panic!("rejected: {f}")
        };
        assert_eq!(book.shape(), BookShape::Valid, "{f}");
        assert_eq!((book.bids.len(), book.asks.len()), (10, 10));
        assert!(book.last_update_id > last_ids[pair.index()], "lastUpdateId increases");
        last_ids[pair.index()] = book.last_update_id;
    }
    assert!(last_ids.iter().all(|&id| id > 0), "both streams are served");
    assert!(frames[0].contains(r#"["61837.63000000","#) || frames[0].contains(r#".00000000","#));

    let again = start(synthetic(Rate::Max));
    let mut ws = connect(&again, path);
    for (i, f) in frames.iter().take(50).enumerate() {
        assert_eq!(&next_text(&mut ws), f, "frame {i} repeats for the same seed");
    }

    let slow = depth_table(&["SOLUSDT"], Depth::D5, UpdateSpeed::Ms1000);
    let mut ws = connect(&again, "/stream?streams=solusdt@depth5");
    let f = next_text(&mut ws);
    assert_eq!(parse_message(f.as_bytes(), &slow, &mut book), Ok(Parsed::Book(PairId(0), BookEvent::Snapshot)));
    assert_eq!((book.bids.len(), book.asks.len()), (5, 5));
}

#[test]
fn looped_recording_replays_with_increasing_update_ids() {
    let lines: Vec<String> = recorded_json("btcusdt_depth5_100ms_20240808-09.txt.gz").into_iter().take(3).collect();
    let dir = std::env::temp_dir().join(format!("sim-loop-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("three.txt");
    let body: String =
        lines.iter().enumerate().map(|(i, l)| format!("{} {l}\n", 1_723_161_254_000_000_000u64 + i as u64)).collect();
    std::fs::write(&file, body).unwrap();

    let sim = start(SimOptions { replay: vec![file], looped: true, rate: Rate::Max, ..SimOptions::default() });
    let table = depth_table(&["BTCUSDT"], Depth::D5, UpdateSpeed::Ms100);
    let mut ws = connect(&sim, "/stream?streams=btcusdt@depth5@100ms");
    let mut book = Book::default();
    let mut last = 0;
    for i in 0..9 {
        let f = next_text(&mut ws);
        if let Some(line) = lines.get(i) {
            assert_eq!(&f, line, "the first pass is byte-for-byte");
        }
        parse_message(f.as_bytes(), &table, &mut book).unwrap();
        assert!(book.last_update_id > last, "pass {}: lastUpdateId keeps increasing", i / 3);
        last = book.last_update_id;
    }
    assert!(!sim.stats().recording_finished);
    drop(sim);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn drop_after_resets_the_connection_and_a_reconnect_finds_the_market_moved_on() {
    let file = "btcusdt_depth5_100ms_20240808-09.txt.gz";
    let sim = start(SimOptions { drop_after: Some(5), ..replay(file, Rate::PerSecond(200)) });
    let lines = recorded_json(file);
    let path = "/stream?streams=btcusdt@depth5@100ms";
    let mut ws = connect(&sim, path);
    for line in &lines[..5] {
        assert_eq!(&next_text(&mut ws), line);
    }
    match next(&mut ws) {
        Got::Error(tungstenite::Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
        other => panic!("expected a TCP reset, got {other:?}"),
    }
    assert_eq!(wait_for(&sim, "the reset", |s| s.fault_resets == 1).connections_open, 0);

    let mut again = connect(&sim, path);
    let first = next_text(&mut again);
    let position = lines.iter().position(|l| *l == first).expect("a recorded frame");
    assert!(position >= 5, "the market did not wait for the client, nor restart");
}

#[test]
fn shutdown_after_announces_keeps_streaming_then_closes() {
    let opts = SimOptions {
        shutdown_after: Some(3),
        shutdown_grace: Duration::from_millis(300),
        ..synthetic(Rate::PerSecond(100))
    };
    let sim = start(opts);
    let table = depth_table(&["BTCUSDT"], Depth::D10, UpdateSpeed::Ms100);
    let mut book = Book::default();
    let mut ws = connect(&sim, "/stream?streams=btcusdt@depth10@100ms");
    for _ in 0..3 {
        assert!(matches!(
            parse_message(next_text(&mut ws).as_bytes(), &table, &mut book),
            Ok(Parsed::Book(_, BookEvent::Snapshot))
        ));
    }
    let event = next_text(&mut ws);
    assert!(event.starts_with(r#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":"#), "{event}");
    assert_eq!(parse_message(event.as_bytes(), &table, &mut book), Ok(Parsed::ServerShutdown));
    let mut after = 0;
    let close = loop {
        match next(&mut ws) {
            Got::Text(t) => {
                assert!(matches!(
                    parse_message(t.as_bytes(), &table, &mut book),
                    Ok(Parsed::Book(_, BookEvent::Snapshot))
                ));
                after += 1;
            }
            Got::Ping => {}
            other => break other,
        }
    };
    assert!(after > 0, "data keeps flowing during the grace period");
    assert!(matches!(close, Got::Close(Some(CloseCode::Away))), "{close:?}");
    assert_eq!(sim.stats().fault_shutdowns, 1);
}

#[test]
fn garbage_every_adds_malformed_frames_between_real_ones() {
    let sim = start(SimOptions { garbage_every: Some(2), ..synthetic(Rate::PerSecond(500)) });
    let table = depth_table(&["BTCUSDT"], Depth::D20, UpdateSpeed::Ms100);
    let mut book = Book::default();
    let mut ws = connect(&sim, "/stream?streams=btcusdt@depth20@100ms");
    let mut last_id = 0;
    for i in 1..=12 {
        let frame = next_text(&mut ws);
        let parsed = parse_message(frame.as_bytes(), &table, &mut book);
        if i % 3 == 0 {
            assert!(parsed.is_err(), "message {i} is garbage: {frame}");
        } else {
            assert!(matches!(parsed, Ok(Parsed::Book(_, BookEvent::Snapshot))), "message {i} is real: {parsed:?}");
            assert!(book.last_update_id > last_id, "no real frame is replaced");
            last_id = book.last_update_id;
        }
    }
    assert!(sim.stats().fault_garbage >= 4);
}

#[test]
fn stall_after_stops_data_but_keeps_pinging() {
    let opts = SimOptions {
        stall_after: Some(3),
        ping_interval: Duration::from_millis(100),
        ..synthetic(Rate::PerSecond(200))
    };
    let sim = start(opts);
    let mut ws = connect(&sim, "/stream?streams=btcusdt@depth5@100ms");
    for _ in 0..3 {
        next_text(&mut ws);
    }
    let mut pings = 0;
    while pings < 4 {
        match next(&mut ws) {
            Got::Ping => pings += 1,
            other => panic!("a stalled feed sends only pings, got {other:?}"),
        }
    }
    let stats = sim.stats();
    assert_eq!((stats.fault_stalls, stats.connections_open, stats.data_frames_total()), (1, 1, 3));
}

#[test]
fn a_client_that_never_pongs_is_dropped_and_one_that_pongs_stays() {
    let opts = SimOptions {
        ping_interval: Duration::from_millis(100),
        pong_timeout: Duration::from_millis(300),
        ..synthetic(Rate::PerSecond(50))
    };
    let sim = start(opts);
    let silent = connect(&sim, "/ws");
    let mut ponger = connect(&sim, "/ws/btcusdt@depth5@100ms");
    ponger.get_ref().tcp().set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut pings = 0;
    while pings < 8 {
        match next(&mut ponger) {
            Got::Ping => pings += 1,
            Got::Text(_) | Got::Silence => {}
            other => panic!("the ponging client must stay connected, got {other:?}"),
        }
    }
    // The eighth pong goes out with the client's next read; seven have left.
    let stats = wait_for(&sim, "the silent client's drop", |s| s.dropped_no_pong == 1 && s.pongs_received >= 7);
    assert_eq!(stats.connections_open, 1);
    ponger.get_ref().tcp().set_read_timeout(Some(PATIENCE)).unwrap();
    send(&mut ponger, r#"{"method":"LIST_SUBSCRIPTIONS","id":1}"#);
    while next_text(&mut ponger) != r#"{"result":["btcusdt@depth5@100ms"],"id":1}"# {}
    assert_eq!(sim.stats().dropped_no_pong, 1);
    drop(silent);
}

#[test]
fn a_slow_client_is_dropped_without_slowing_the_others() {
    let opts = SimOptions {
        looped: true,
        client_queue_frames: 64,
        ..replay("btcusdt_depth20_100ms_20240808-09.txt.gz", Rate::PerSecond(10_000))
    };
    let sim = start(opts);
    let stream = "/stream?streams=btcusdt@depth20@100ms";
    let mut fast = connect(&sim, stream);
    let slow = connect(&sim, stream);
    let reader = std::thread::spawn(move || {
        let mut n = 0u64;
        while !matches!(next(&mut fast), Got::Error(_) | Got::Close(_)) {
            n += 1;
        }
        n
    });
    let stats = wait_for(&sim, "the slow client's drop", |s| s.dropped_slow == 1);
    let sent = stats.data_frames_total();
    wait_for(&sim, "frames after the drop", |s| s.data_frames_total() > sent + 1_000);
    assert_eq!(sim.stats().connections_open, 1, "the reading client is still connected");
    drop(slow);
    sim.stop();
    assert!(reader.join().unwrap() > 1_000);
}

#[test]
fn tls_certificate_verifies_against_the_written_ca_for_localhost_and_the_ip() {
    let dir = std::env::temp_dir().join(format!("sim-tls-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    let sim = start(SimOptions { tls: true, ca_out: Some(ca.clone()), ..synthetic(Rate::Max) });
    assert_eq!(sim.ca_path(), Some(ca.as_path()));
    assert!(std::fs::read_to_string(&ca).unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(sim.url(), format!("wss://{}/stream", sim.addr()));

    let path = "/stream?streams=btcusdt@depth5";
    for name in [ServerName::try_from("localhost").unwrap(), ServerName::try_from("127.0.0.1").unwrap()] {
        let mut ws = try_connect(sim.addr(), path, Some((tls_config(Some(&ca)), name.clone()))).expect("TLS verifies");
        assert!(next_text(&mut ws).starts_with(r#"{"stream":"btcusdt@depth5","data":"#), "{name:?}");
    }
    let untrusted = try_connect(sim.addr(), path, Some((tls_config(None), ServerName::try_from("localhost").unwrap())));
    assert!(untrusted.is_err(), "a client without the CA refuses the server");
    let wrong_name =
        try_connect(sim.addr(), path, Some((tls_config(Some(&ca)), ServerName::try_from("example.com").unwrap())));
    assert!(wrong_name.is_err(), "the certificate names only localhost and loopback");
    drop(sim);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn default_ca_file_lives_while_the_simulator_runs() {
    let sim = start(SimOptions { tls: true, ..synthetic(Rate::Max) });
    let ca = sim.ca_path().unwrap().to_path_buf();
    assert!(ca.exists());
    assert_eq!(sim.listening_line(), format!("listening wss://{} ca={}", sim.addr(), ca.display()));
    sim.stop();
    assert!(!ca.exists(), "the temporary CA directory is removed on stop");
}

#[test]
fn listening_line_is_machine_readable() {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 9443));
    assert_eq!(listening_line(addr, None), "listening ws://127.0.0.1:9443");
    assert_eq!(
        listening_line(addr, Some(Path::new("/tmp/sim/ca.pem"))),
        "listening wss://127.0.0.1:9443 ca=/tmp/sim/ca.pem"
    );
    let sim = start(synthetic(Rate::Recorded));
    assert_eq!(sim.listening_line(), format!("listening ws://127.0.0.1:{}", sim.addr().port()));
    assert_eq!(sim.url(), format!("ws://127.0.0.1:{}/stream", sim.addr().port()));
}

#[test]
fn bad_options_fail_before_anything_listens() {
    assert!(Simulator::start(SimOptions::default()).is_err(), "no source");
    assert!(
        Simulator::start(SimOptions { synthetic: true, rate: Rate::PerSecond(0), ..SimOptions::default() }).is_err()
    );
    let missing = SimOptions { replay: vec![fixture("no-such-recording.gz")], ..SimOptions::default() };
    let err = Simulator::start(missing).err().unwrap().to_string();
    assert!(err.contains("no-such-recording.gz"), "{err}");
}

/// Frames per second one TLS client receives at `Rate::Max`, and the rates
/// reached at fixed pacing: `cargo test --release --test simulator -- --ignored --nocapture`.
#[test]
#[ignore = "a throughput measurement, not a check; run in release"]
fn measure_throughput_to_one_tls_client() {
    let count_for = |opts: SimOptions, window: Duration| {
        let sim = start(SimOptions { tls: true, looped: true, ..opts });
        let mut ws = connect(&sim, "/stream?streams=btcusdt@depth10@100ms");
        for _ in 0..1_000 {
            next_text(&mut ws);
        }
        let t0 = Instant::now();
        let mut n = 0u64;
        while t0.elapsed() < window {
            if let Ok(Message::Text(_)) = ws.read() {
                n += 1;
            }
        }
        let rate = n as f64 / t0.elapsed().as_secs_f64();
        (rate, sim.stop())
    };
    let file = "btcusdt_depth10_100ms_20240808-09.txt.gz";
    let (rate, stats) = count_for(replay(file, Rate::Max), Duration::from_secs(5));
    println!("Rate::Max over TLS: {rate:.0} frames/s (dropped slow: {})", stats.dropped_slow);
    for target in [1_000, 10_000, 100_000] {
        let (rate, stats) = count_for(replay(file, Rate::PerSecond(target)), Duration::from_secs(3));
        println!("Rate::PerSecond({target}) over TLS: {rate:.0} frames/s (dropped slow: {})", stats.dropped_slow);
    }
}
