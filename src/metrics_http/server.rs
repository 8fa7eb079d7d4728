//! The endpoint's transport: one thread, one `mio::Poll`, non-blocking
//! sockets and a fixed table of connections, so no client — slow, idle or
//! oversized — can keep a health probe waiting. It knows nothing of paths:
//! a complete request head goes to the handler, its [`Response`] goes back.
//!
//! Every connection has one total deadline from its accept
//! ([`Limits::request_deadline`]): its head must be complete and its answer
//! written within it. A head still incomplete then is answered 408, an
//! answer still unwritten is cut. A head longer than
//! [`Limits::max_request_bytes`] is answered 431. When every slot of the
//! table is taken, a new connection takes the slot of the oldest one already
//! answered, else the oldest one still sending its head (the idle and the
//! slowest), so a fresh probe is always served; and since at most half a
//! table is accepted between two rounds of serving, a flood of new
//! connections cannot push out a probe whose request has arrived.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use super::http::{Request, Response, head_end};
use crate::feed::stream::{interrupted, would_block};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Slot `i` of the connection table polls as `Token(FIRST_CONNECTION + i)`.
const FIRST_CONNECTION: usize = 2;

/// How soon a failed `accept` (out of file descriptors, say) is retried;
/// the connections waiting meanwhile stay in the kernel's queue.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// What bounds the server's work for any one client.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections held at once; a newer one evicts the oldest unanswered.
    pub max_connections: usize,
    /// From accept to the last byte of the answer.
    pub request_deadline: Duration,
    /// Largest request head read; a longer one is answered 431.
    pub max_request_bytes: usize,
    /// After the answer, how long what the client still sends is read and
    /// discarded (closing with unread bytes would reset the connection and
    /// could destroy the answer before the client reads it)…
    pub linger: Duration,
    /// …and how much of it, at most.
    pub max_linger_bytes: usize,
}

/// The limits the endpoint runs with.
pub const LIMITS: Limits = Limits {
    max_connections: 256,
    request_deadline: Duration::from_secs(5),
    max_request_bytes: 8192,
    linger: Duration::from_secs(2),
    max_linger_bytes: 64 * 1024,
};

/// Connections the server ended before a normal answer, by reason
/// (exported in `/metrics`).
#[derive(Debug, Default)]
pub struct ServerCounters {
    /// Closed unanswered to make room for a newer connection.
    pub evicted: AtomicU64,
    /// Head or answer not complete within the deadline.
    pub timed_out: AtomicU64,
    /// Head longer than the cap (answered 431).
    pub too_large: AtomicU64,
}

/// The running server; dropping it stops the thread and closes every
/// connection.
pub struct Server {
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `listener` (already bound, so a bad address failed before
    /// anything started) from a new thread.
    pub fn spawn<H>(
        listener: std::net::TcpListener,
        limits: Limits,
        counters: Arc<ServerCounters>,
        handler: H,
    ) -> io::Result<Server>
    where
        H: FnMut(&Request<'_>) -> Response + Send + 'static,
    {
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stop = Arc::new(AtomicBool::new(false));
        let mut event_loop = EventLoop {
            poll,
            listener,
            slots: (0..limits.max_connections.max(1)).map(|_| None).collect(),
            limits,
            counters,
            handler,
            stop: Arc::clone(&stop),
            accept_at: None,
            accept_failing: false,
        };
        let thread = std::thread::Builder::new().name("metrics-http".into()).spawn(move || event_loop.run())?;
        Ok(Server { stop, waker, thread: Some(thread) })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.waker.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct EventLoop<H> {
    poll: Poll,
    listener: TcpListener,
    slots: Vec<Option<Connection>>,
    limits: Limits,
    counters: Arc<ServerCounters>,
    handler: H,
    stop: Arc<AtomicBool>,
    /// When to accept next: now when connections may be waiting (more than
    /// one turn takes), later while `accept` fails.
    accept_at: Option<Instant>,
    /// Whether the last `accept` failed (logged once per streak).
    accept_failing: bool,
}

impl<H: FnMut(&Request<'_>) -> Response> EventLoop<H> {
    fn run(&mut self) {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = self.next_deadline().map(|d| d.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if interrupted(&e) {
                    continue;
                }
                log::error!("METRICS | the HTTP server stops: poll failed: {e}");
                return;
            }
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            for event in events.iter() {
                match event.token() {
                    // After the connections' events: their requests are read first.
                    LISTENER => self.accept_at = Some(Instant::now()),
                    WAKER => {}
                    Token(t) => self.ready(t.wrapping_sub(FIRST_CONNECTION)),
                }
            }
            let now = Instant::now();
            if self.accept_at.is_some_and(|at| at <= now) {
                self.accept();
            }
            self.expire(now);
        }
    }

    /// The earliest connection deadline or accept retry.
    fn next_deadline(&self) -> Option<Instant> {
        self.slots.iter().flatten().map(|c| c.deadline).chain(self.accept_at).min()
    }

    /// Accepts waiting connections, at most half a table's worth per turn:
    /// between turns every ready connection is served, so a probe whose
    /// request has arrived is answered before enough newer connections
    /// could be accepted to evict it.
    fn accept(&mut self) {
        self.accept_at = None;
        for _ in 0..self.slots.len().div_ceil(2) {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    self.accept_failing = false;
                    self.admit(stream);
                }
                Err(e) if would_block(&e) => return,
                Err(e) if interrupted(&e) => {}
                Err(e) => {
                    if !self.accept_failing {
                        log::warn!("METRICS | cannot accept an HTTP connection: {e}; retrying every 100 ms");
                    }
                    self.accept_failing = true;
                    self.accept_at = Some(Instant::now() + ACCEPT_RETRY);
                    return;
                }
            }
        }
        self.accept_at = Some(Instant::now());
    }

    /// Gives a new connection a slot (evicting if the table is full) and
    /// serves whatever it has sent already.
    fn admit(&mut self, mut stream: TcpStream) {
        let i = match self.slots.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                let i = self.victim();
                if self.slots[i].as_ref().is_some_and(|c| !c.answered()) {
                    self.counters.evicted.fetch_add(1, Ordering::Relaxed);
                }
                self.slots[i] = None;
                i
            }
        };
        let token = Token(FIRST_CONNECTION + i);
        if self.poll.registry().register(&mut stream, token, Interest::READABLE | Interest::WRITABLE).is_err() {
            return;
        }
        let now = Instant::now();
        let mut conn = Connection {
            stream,
            accepted: now,
            deadline: now + self.limits.request_deadline,
            phase: Phase::Reading { buf: vec![0; self.limits.max_request_bytes.max(4)], len: 0 },
        };
        if conn.advance(&self.limits, &self.counters, &mut self.handler) == Progress::Open {
            self.slots[i] = Some(conn);
        }
    }

    /// The slot a new connection takes from a full table: the oldest
    /// answered connection, else the oldest still sending its head, else the
    /// oldest being answered.
    fn victim(&self) -> usize {
        let rank = |c: &Connection| match c.phase {
            Phase::Lingering { .. } => 0,
            Phase::Reading { .. } => 1,
            Phase::Writing { .. } => 2,
        };
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (rank(c), c.accepted, i)))
            .min()
            .map_or(0, |(_, _, i)| i)
    }

    fn ready(&mut self, i: usize) {
        let Some(slot) = self.slots.get_mut(i) else { return };
        if let Some(conn) = slot
            && conn.advance(&self.limits, &self.counters, &mut self.handler) == Progress::Close
        {
            *slot = None;
        }
    }

    /// Ends what overran its deadline: a head still coming is answered 408,
    /// an answer still being written is cut, a lingering connection closes.
    fn expire(&mut self, now: Instant) {
        for slot in &mut self.slots {
            let Some(conn) = slot else { continue };
            if conn.deadline > now {
                continue;
            }
            let keep = match conn.phase {
                Phase::Reading { .. } => {
                    self.counters.timed_out.fetch_add(1, Ordering::Relaxed);
                    conn.answer(Response::text(408, "request not complete in time\n"));
                    conn.deadline = now + self.limits.linger;
                    // Best effort: a 408 that does not fit the socket at once is not waited for.
                    conn.advance(&self.limits, &self.counters, &mut self.handler) == Progress::Open && conn.answered()
                }
                Phase::Writing { .. } => {
                    self.counters.timed_out.fetch_add(1, Ordering::Relaxed);
                    false
                }
                Phase::Lingering { .. } => false,
            };
            if !keep {
                *slot = None;
            }
        }
    }
}

/// Where a connection is in its one exchange.
enum Phase {
    /// Reading the head: `buf[..len]` has arrived.
    Reading { buf: Vec<u8>, len: usize },
    /// Writing the answer: `out[sent..]` is left.
    Writing { out: Vec<u8>, sent: usize },
    /// Answered and our side shut: discarding what the client still sends
    /// until it closes, the linger time ends or too much arrives.
    Lingering { discarded: usize },
}

struct Connection {
    stream: TcpStream,
    accepted: Instant,
    deadline: Instant,
    phase: Phase,
}

#[derive(Debug, PartialEq, Eq)]
enum Progress {
    /// Waiting for the next readiness event or the deadline.
    Open,
    /// Done or broken: drop it.
    Close,
}

impl Connection {
    fn answered(&self) -> bool {
        matches!(self.phase, Phase::Lingering { .. })
    }

    fn answer(&mut self, response: Response) {
        self.phase = Phase::Writing { out: response.to_bytes(), sent: 0 };
    }

    /// Does all the I/O the socket allows now (until `WouldBlock`), moving
    /// through the phases.
    fn advance<H: FnMut(&Request<'_>) -> Response>(
        &mut self,
        limits: &Limits,
        counters: &ServerCounters,
        handler: &mut H,
    ) -> Progress {
        loop {
            let io = match &mut self.phase {
                Phase::Reading { buf, len } => {
                    let searched = *len;
                    match self.stream.read(&mut buf[searched..]) {
                        Ok(0) => return Progress::Close,
                        Ok(n) => {
                            *len += n;
                            let response = if let Some(end) = head_end(&buf[..*len], searched) {
                                handler(&Request::parse(&buf[..end]))
                            } else if *len == buf.len() {
                                counters.too_large.fetch_add(1, Ordering::Relaxed);
                                Response::text(431, "request header too large\n")
                            } else {
                                continue;
                            };
                            self.answer(response);
                            continue;
                        }
                        Err(e) => e,
                    }
                }
                Phase::Writing { out, sent } => {
                    if *sent >= out.len() {
                        let _ = self.stream.shutdown(Shutdown::Write);
                        self.deadline = self.deadline.min(Instant::now() + limits.linger);
                        self.phase = Phase::Lingering { discarded: 0 };
                        continue;
                    }
                    match self.stream.write(&out[*sent..]) {
                        Ok(0) => return Progress::Close,
                        Ok(n) => {
                            *sent += n;
                            continue;
                        }
                        Err(e) => e,
                    }
                }
                Phase::Lingering { discarded } => {
                    let mut sink = [0u8; 4096];
                    match self.stream.read(&mut sink) {
                        Ok(0) => return Progress::Close,
                        Ok(n) => {
                            *discarded += n;
                            if *discarded > limits.max_linger_bytes {
                                return Progress::Close;
                            }
                            continue;
                        }
                        Err(e) => e,
                    }
                }
            };
            if would_block(&io) {
                return Progress::Open;
            }
            if !interrupted(&io) {
                return Progress::Close;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;

    /// A server answering every path with its name, with room for two connections.
    fn two_slot_server() -> (Server, std::net::SocketAddr, Arc<ServerCounters>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let counters = Arc::new(ServerCounters::default());
        let limits = Limits { max_connections: 2, ..LIMITS };
        let server =
            Server::spawn(listener, limits, Arc::clone(&counters), |r| Response::text(200, r.path.to_string()))
                .unwrap();
        (server, addr, counters)
    }

    fn ask(s: &mut TcpStream, path: &str) -> String {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn a_full_table_gives_the_oldest_unanswered_slot_to_a_new_connection() {
        let (_server, addr, counters) = two_slot_server();
        let mut oldest = TcpStream::connect(addr).unwrap();
        let mut second = TcpStream::connect(addr).unwrap();
        // The third connection evicts the oldest and is answered.
        let answer = ask(&mut TcpStream::connect(addr).unwrap(), "/third");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n") && answer.ends_with("\r\n\r\n/third"), "{answer}");
        // The second kept its slot; the oldest was closed unanswered.
        assert!(ask(&mut second, "/second").ends_with("\r\n\r\n/second"));
        oldest.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 64];
        assert!(matches!(oldest.read(&mut buf), Ok(0) | Err(_)), "the oldest connection is closed");
        assert_eq!(counters.evicted.load(Ordering::Relaxed), 1);
    }
}
