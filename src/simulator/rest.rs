//! The REST side of the port: `GET /api/v3/depth?symbol=…&limit=…` answered
//! like Binance (validation, error objects, `X-MBX-USED-WEIGHT-1M`), from the
//! market's own books, with the snapshot faults a client's sync must survive
//! (`429`/`418`/`5xx` with `Retry-After`, slow answers, a REST side that is
//! down), and a log of every request for tests to assert on.
//!
//! A connection that sent a plain `GET` lives here ([`HttpConn`]) until its
//! one answer has been written (`Connection: close`); one that asked for a
//! WebSocket upgrade leaves at once for the handshake, with the bytes already
//! read handed back. A snapshot is asked of the market thread and arrives
//! later as a [`MarketEvent::Snapshot`](super::market::MarketEvent); a delayed
//! answer waits on the connection's own deadline, so nothing ever blocks the
//! network thread.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Sender;
use mio::Token;

use super::deadline;
use super::error::SimError;
use super::http::{self, Head, MAX_HEAD, Parsed};
use super::market::{MarketCtl, SnapshotAnswer, SnapshotQuery};
use super::transport::Transport;

/// The depth endpoint.
const DEPTH_PATH: &str = "/api/v3/depth";
/// Binance's default and largest `limit`.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 5000;
/// Bytes read per `read` call while waiting for a request head.
const READ_CHUNK: usize = 4096;

/// The `snapshot_status` fault: answer the first `count` snapshot requests
/// with HTTP `status` (and `Retry-After`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotStatus {
    pub status: u16,
    pub count: u32,
}

/// The REST faults of a run.
#[derive(Clone, Debug, Default)]
pub struct RestFaults {
    pub status: Option<SnapshotStatus>,
    /// `Retry-After` of a fault answer, whole seconds.
    pub retry_after: Duration,
    /// Every depth answer leaves this long after its request arrived.
    pub delay: Duration,
    /// Close every REST connection without an answer.
    pub down: bool,
}

/// One REST request as the request log holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestRequest {
    /// When its head had arrived, Unix nanoseconds.
    pub recv_unix_ns: u64,
    /// Path and query, as sent.
    pub target: String,
    /// The answer's status; `None` when the connection was closed without
    /// one (`rest_down`).
    pub status: Option<u16>,
}

impl RestRequest {
    /// `<recv_unix_ns> <path+query> <status|closed>`, the request log's line.
    pub fn line(&self) -> String {
        match self.status {
            Some(status) => format!("{} {} {status}", self.recv_unix_ns, self.target),
            None => format!("{} {} closed", self.recv_unix_ns, self.target),
        }
    }
}

/// The run's REST requests, kept for the handle and optionally appended to
/// a file as they are answered.
#[derive(Clone, Default)]
pub struct RequestLog {
    entries: Arc<Mutex<Vec<RestRequest>>>,
    file: Option<Arc<Mutex<File>>>,
}

impl RequestLog {
    /// A log that also writes to `path` (created or truncated now).
    pub fn new(path: Option<&Path>) -> Result<Self, SimError> {
        let file = match path {
            Some(p) => Some(Arc::new(Mutex::new(
                File::create(p).map_err(|source| SimError::RequestLog { path: p.to_path_buf(), source })?,
            ))),
            None => None,
        };
        Ok(RequestLog { entries: Arc::default(), file })
    }

    fn push(&self, request: RestRequest) {
        if let Some(file) = &self.file {
            let mut f = file.lock().unwrap_or_else(PoisonError::into_inner);
            if let Err(e) = writeln!(f, "{}", request.line()) {
                log::warn!("simulator: cannot write the request log: {e}");
            }
        }
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).push(request);
    }

    /// Every request so far, in answer order.
    pub fn entries(&self) -> Vec<RestRequest> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// A complete answer, waiting to be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Prepared {
    fn error(status: u16, code: i32, msg: &str) -> Self {
        let body = format!("{{\"code\":{code},\"msg\":{}}}", sonic_rs::to_string(msg).unwrap_or_default());
        Prepared { status, headers: Vec::new(), body }
    }
}

/// What a request gets from [`RestSide::request`].
enum Answer {
    Ready(Prepared),
    /// Asked of the market; the used weight to report with the answer.
    Market(u32),
    /// `rest_down`: close without an answer.
    Close,
}

/// A depth request's validated parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepthQuery {
    pub symbol: String,
    pub limit: usize,
}

/// Binance's request weight of a depth request of `limit` levels.
pub fn weight(limit: usize) -> u32 {
    match limit {
        0..=100 => 5,
        101..=500 => 25,
        501..=1000 => 50,
        _ => 250,
    }
}

/// Validates a depth query string like Binance: `symbol` mandatory
/// (`^[A-Z0-9-_.]{1,20}$`), `limit` optional (default 100, digits only, at
/// least 1; above 5000 gives 5000, as Binance documents).
pub fn depth_query(query: &str) -> Result<DepthQuery, Prepared> {
    let mut symbol = None;
    let mut limit = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match key {
            "symbol" => &mut symbol,
            "limit" => &mut limit,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(Prepared::error(400, -1101, "Duplicate values for a parameter detected."));
        }
    }
    let symbol = match symbol {
        None | Some("") => {
            return Err(Prepared::error(
                400,
                -1102,
                "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
            ));
        }
        Some(s) => s,
    };
    if symbol.len() > 20 || !symbol.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"-_.".contains(&b))
    {
        return Err(Prepared::error(
            400,
            -1100,
            "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'.",
        ));
    }
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(l) if (1..=20).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_digit()) => match l.parse::<u64>() {
            Ok(0) => return Err(Prepared::error(400, -1130, "Data sent for parameter 'limit' is not valid.")),
            Ok(n) => usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT),
            Err(_) => MAX_LIMIT,
        },
        Some(_) => {
            return Err(Prepared::error(
                400,
                -1100,
                "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.",
            ));
        }
    };
    Ok(DepthQuery { symbol: symbol.to_owned(), limit })
}

fn unix_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Request weight used in the current clock minute, as Binance counts it
/// for `X-MBX-USED-WEIGHT-1M`.
#[derive(Default)]
struct WeightWindow {
    minute: u64,
    used: u32,
}

impl WeightWindow {
    fn add(&mut self, now_unix_ns: u64, weight: u32) -> u32 {
        let minute = now_unix_ns / 60_000_000_000;
        if minute != self.minute {
            self.minute = minute;
            self.used = 0;
        }
        self.used = self.used.saturating_add(weight);
        self.used
    }
}

/// The network thread's REST state, shared by every connection.
pub struct RestSide {
    faults: RestFaults,
    /// Fault answers still to give.
    status_left: u32,
    market: Sender<MarketCtl>,
    log: RequestLog,
    weight: WeightWindow,
    next_seq: u64,
}

impl RestSide {
    pub fn new(faults: RestFaults, market: Sender<MarketCtl>, log: RequestLog) -> Self {
        let status_left = faults.status.map_or(0, |s| s.count);
        RestSide { faults, status_left, market, log, weight: WeightWindow::default(), next_seq: 0 }
    }

    /// Decides a request's answer: at once, or asked of the market.
    fn request(&mut self, token: Token, head: &Head, recv_unix_ns: u64) -> (Answer, u64) {
        self.next_seq += 1;
        let seq = self.next_seq;
        if self.faults.down {
            return (Answer::Close, seq);
        }
        let (path, query) = head.target.split_once('?').unwrap_or((&head.target, ""));
        if path != DEPTH_PATH {
            return (Answer::Ready(Prepared::error(404, -1000, "Unknown endpoint.")), seq);
        }
        if head.method != "GET" {
            return (Answer::Ready(Prepared::error(405, -1000, "Method not allowed; use GET.")), seq);
        }
        let q = depth_query(query);
        let used = self.weight.add(recv_unix_ns, q.as_ref().map_or(weight(DEFAULT_LIMIT), |q| weight(q.limit)));
        let used_header = ("X-MBX-USED-WEIGHT-1M", used.to_string());
        if let Some(fault) = self.faults.status.filter(|_| self.status_left > 0) {
            self.status_left -= 1;
            let mut answer = fault_answer(fault.status, self.faults.retry_after, recv_unix_ns);
            answer.headers.push(used_header);
            return (Answer::Ready(answer), seq);
        }
        match q {
            Err(mut bad) => {
                bad.headers.push(used_header);
                (Answer::Ready(bad), seq)
            }
            Ok(q) => {
                let query = SnapshotQuery { token, seq, symbol: q.symbol, limit: q.limit };
                if self.market.send(MarketCtl::Snapshot(query)).is_err() {
                    let mut gone = Prepared::error(503, -1001, "Internal error; unable to process your request.");
                    gone.headers.push(used_header);
                    return (Answer::Ready(gone), seq);
                }
                (Answer::Market(used), seq)
            }
        }
    }

    /// Turns the market's answer into the HTTP answer.
    fn market_answer(answer: SnapshotAnswer, used: u32) -> Prepared {
        let mut prepared = match answer {
            SnapshotAnswer::Body(body) => Prepared { status: 200, headers: Vec::new(), body },
            SnapshotAnswer::UnknownSymbol => Prepared::error(400, -1121, "Invalid symbol."),
            SnapshotAnswer::NoBook => Prepared::error(
                503,
                -1001,
                "Internal error; unable to process your request. Please try again. (the recording holds no \
                 snapshot of this symbol)",
            ),
        };
        prepared.headers.push(("X-MBX-USED-WEIGHT-1M", used.to_string()));
        prepared
    }
}

/// The answer of the `snapshot_status` fault, in Binance's words for 429
/// and 418.
fn fault_answer(status: u16, retry_after: Duration, now_unix_ns: u64) -> Prepared {
    let secs = retry_after.as_secs();
    let mut answer = match status {
        429 => Prepared::error(
            429,
            -1003,
            "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. Please use WebSocket \
             Streams for live updates to avoid polling the API.",
        ),
        418 => {
            let until_ms = (now_unix_ns / 1_000_000).saturating_add(secs.saturating_mul(1000));
            let msg = format!(
                "Way too much request weight used; IP banned until {until_ms}. Please use WebSocket Streams for \
                 live updates to avoid bans."
            );
            Prepared::error(418, -1003, &msg)
        }
        other => Prepared::error(other, -1001, "Internal error; unable to process your request. Please try again."),
    };
    answer.headers.push(("Retry-After", secs.to_string()));
    answer
}

/// A request waiting for its answer.
struct Waiting {
    seq: u64,
    recv_unix_ns: u64,
    target: String,
    /// Not before (the `snapshot_delay` fault).
    due: Instant,
    used: u32,
    ready: Option<Prepared>,
}

enum Phase {
    /// Reading the request head.
    Reading,
    Waiting(Box<Waiting>),
    /// Writing the answer; then the connection closes.
    Writing {
        out: Vec<u8>,
        at: usize,
    },
}

/// A new connection until it is known to be REST or WebSocket, and a REST
/// connection until its answer is written.
pub struct HttpConn {
    transport: Transport,
    input: Vec<u8>,
    phase: Phase,
    /// The head must have arrived by then.
    deadline: Instant,
    /// The head was not HTTP; its 400 answer ends the connection as a
    /// failed handshake, not as a REST request.
    bad: bool,
}

/// What reading a request head gave.
enum HeadRead {
    Head(Head),
    /// Not complete; wait for more.
    More,
    /// Not a request to serve: answered with 400.
    Bad(&'static str),
    /// The client left (or TLS failed) before a complete head.
    Gone,
}

/// Where a connection goes after [`HttpConn::drive`].
pub enum Step {
    /// Waiting for the socket, the market or the delay timer.
    Stay(Box<HttpConn>),
    /// A WebSocket upgrade: the transport and every byte read from it.
    Upgrade(Transport, Vec<u8>),
    /// The answer has been written, or the connection closed without one.
    Done,
    /// The client went away before its head was complete, or sent
    /// something that is not HTTP (answered with 400).
    Failed,
}

/// What [`HttpConn::drive`] needs from the network thread.
pub struct RestCtx<'a> {
    pub token: Token,
    pub now: Instant,
    pub rest: &'a mut RestSide,
}

impl HttpConn {
    pub fn new(transport: Transport, deadline: Instant) -> Self {
        HttpConn { transport, input: Vec::new(), phase: Phase::Reading, deadline, bad: false }
    }

    /// When [`Self::on_timer`] has work: the head deadline, or a delayed
    /// answer's due time.
    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Reading => Some(self.deadline),
            Phase::Waiting(w) => w.ready.is_some().then_some(w.due),
            Phase::Writing { .. } => None,
        }
    }

    /// A timer fired: a head that never came ends the connection; a delayed
    /// answer goes out.
    pub fn on_timer(self: Box<Self>, ctx: &mut RestCtx<'_>) -> Step {
        if matches!(self.phase, Phase::Reading) && ctx.now >= self.deadline {
            return Step::Failed;
        }
        self.drive(ctx)
    }

    /// The market's answer to this connection's snapshot query.
    pub fn on_snapshot(
        mut self: Box<Self>,
        query: &SnapshotQuery,
        answer: SnapshotAnswer,
        ctx: &mut RestCtx<'_>,
    ) -> Step {
        if let Phase::Waiting(w) = &mut self.phase
            && w.seq == query.seq
            && w.ready.is_none()
        {
            w.ready = Some(RestSide::market_answer(answer, w.used));
        }
        self.drive(ctx)
    }

    /// Makes every step possible now.
    pub fn drive(mut self: Box<Self>, ctx: &mut RestCtx<'_>) -> Step {
        loop {
            match &mut self.phase {
                Phase::Reading => match self.read_head() {
                    HeadRead::Head(head) => {
                        if head.upgrade {
                            return Step::Upgrade(self.transport, self.input);
                        }
                        if let Some(step) = self.start(&head, ctx) {
                            return step;
                        }
                    }
                    HeadRead::More => return Step::Stay(self),
                    HeadRead::Bad(reason) => {
                        let answer = Prepared::error(400, -1000, reason);
                        self.bad = true;
                        self.phase = Phase::Writing { out: http::response(400, &[], &answer.body), at: 0 };
                    }
                    HeadRead::Gone => return Step::Failed,
                },
                Phase::Waiting(w) => {
                    let Some(ready) = w.ready.take_if(|_| ctx.now >= w.due) else { return Step::Stay(self) };
                    ctx.rest.log.push(RestRequest {
                        recv_unix_ns: w.recv_unix_ns,
                        target: std::mem::take(&mut w.target),
                        status: Some(ready.status),
                    });
                    self.phase =
                        Phase::Writing { out: http::response(ready.status, &ready.headers, &ready.body), at: 0 };
                }
                Phase::Writing { out, at } => {
                    while *at < out.len() {
                        match self.transport.write(out.get(*at..).unwrap_or_default()) {
                            Ok(0) => return Step::Done,
                            Ok(n) => *at += n,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Stay(self),
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(_) => return Step::Done,
                        }
                    }
                    return match self.transport.flush() {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Step::Stay(self),
                        _ => {
                            if let Some(flag) = self.transport.clean_close() {
                                flag.store(true, std::sync::atomic::Ordering::Relaxed);
                            }
                            if self.bad { Step::Failed } else { Step::Done }
                        }
                    };
                }
            }
        }
    }

    /// Reads what has arrived and looks for a complete head.
    fn read_head(&mut self) -> HeadRead {
        let mut chunk = [0u8; READ_CHUNK];
        let mut eof = false;
        loop {
            match self.transport.read(&mut chunk) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    self.input.extend_from_slice(chunk.get(..n).unwrap_or_default());
                    if self.input.len() > MAX_HEAD {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return HeadRead::Gone,
            }
        }
        match http::parse_head(&self.input) {
            Parsed::Complete(head) => HeadRead::Head(head),
            Parsed::Partial if eof => HeadRead::Gone,
            Parsed::Partial => HeadRead::More,
            Parsed::Bad(reason) => HeadRead::Bad(reason),
        }
    }

    /// Starts answering a REST request; a step when the connection ends
    /// at once.
    fn start(&mut self, head: &Head, ctx: &mut RestCtx<'_>) -> Option<Step> {
        let recv_unix_ns = unix_nanos();
        let (answer, seq) = ctx.rest.request(ctx.token, head, recv_unix_ns);
        let depth = head.target.split('?').next() == Some(DEPTH_PATH);
        let due = if depth { deadline(ctx.now, ctx.rest.faults.delay) } else { ctx.now };
        let (ready, used) = match answer {
            Answer::Close => {
                ctx.rest.log.push(RestRequest { recv_unix_ns, target: head.target.clone(), status: None });
                return Some(Step::Done);
            }
            Answer::Ready(prepared) => (Some(prepared), 0),
            Answer::Market(used) => (None, used),
        };
        self.phase =
            Phase::Waiting(Box::new(Waiting { seq, recv_unix_ns, target: head.target.clone(), due, used, ready }));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(query: &str) -> String {
        depth_query(query).unwrap_err().body
    }

    #[test]
    fn depth_parameters_are_validated_like_binance() {
        assert_eq!(depth_query("symbol=BTCUSDT"), Ok(DepthQuery { symbol: "BTCUSDT".into(), limit: 100 }));
        assert_eq!(depth_query("limit=10&symbol=ETHUSDT").unwrap().limit, 10);
        assert_eq!(depth_query("symbol=BTCUSDT&limit=6000").unwrap().limit, 5000);
        assert_eq!(depth_query("symbol=BTCUSDT&limit=99999999999999999999").unwrap().limit, 5000);
        assert!(code("limit=5").contains("-1102"));
        assert!(code("symbol=").contains("-1102"));
        assert!(code("symbol=btcusdt").contains("-1100"));
        assert!(code("symbol=BTCUSDT&limit=abc").contains("-1100"));
        assert!(code("symbol=BTCUSDT&limit=0").contains("-1130"));
        assert!(code("symbol=BTCUSDT&symbol=ETHUSDT").contains("-1101"));
    }

    #[test]
    fn weights_follow_the_limit() {
        assert_eq!([1, 100, 101, 500, 501, 1000, 1001, 5000].map(weight), [5, 5, 25, 25, 50, 50, 250, 250]);
        let mut w = WeightWindow::default();
        assert_eq!(w.add(60_000_000_000, 5), 5);
        assert_eq!(w.add(119_000_000_000, 50), 55);
        assert_eq!(w.add(120_000_000_000, 5), 5, "a new minute starts from zero");
    }

    #[test]
    fn fault_answers_carry_retry_after_and_binance_codes() {
        let a = fault_answer(429, Duration::from_secs(3), 0);
        assert_eq!((a.status, a.headers[0].clone()), (429, ("Retry-After", "3".to_owned())));
        assert!(a.body.starts_with(r#"{"code":-1003,"msg":"Too much request weight used"#));
        let b = fault_answer(418, Duration::from_secs(2), 5_000_000_000);
        assert!(b.body.contains("banned until 7000."), "{}", b.body);
        assert!(fault_answer(500, Duration::from_secs(1), 0).body.contains("-1001"));
    }

    #[test]
    fn log_lines_name_time_target_and_status() {
        let r = RestRequest { recv_unix_ns: 17, target: "/api/v3/depth?symbol=X".into(), status: Some(429) };
        assert_eq!(r.line(), "17 /api/v3/depth?symbol=X 429");
        assert_eq!(RestRequest { status: None, ..r }.line(), "17 /api/v3/depth?symbol=X closed");
    }
}
