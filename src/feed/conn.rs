//! One feed connection as an explicit state machine:
//! `Resolving → Connecting → Handshaking → Open → Closing → Closed`, each
//! state holding exactly what it needs, moved with `std::mem::replace`.
//!
//! The connection knows sockets and WebSocket framing, not books: every data
//! message is handed to a caller-supplied closure (the engine), which says
//! what the message was.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::pki_types::ServerName;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::{Message, WebSocket};

use super::pong::PongPacer;
use super::retry_after;
use super::stream::{FeedStream, ReadClock, interrupted, would_block};

/// Where a connection goes, parsed once from the URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The full URL including `?streams=…`.
    pub url: String,
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl Endpoint {
    /// Parses a `ws://` or `wss://` URL.
    pub fn parse(url: &str) -> Result<Endpoint, ConnError> {
        let bad = |why: &str| ConnError::Url(format!("{url:?} {why}"));
        let uri: tungstenite::http::Uri = url.parse().map_err(|e| bad(&format!("is not a URL: {e}")))?;
        let tls = match uri.scheme_str() {
            Some("wss") => true,
            Some("ws") => false,
            _ => return Err(bad("must start with ws:// or wss://")),
        };
        let host = uri.host().ok_or_else(|| bad("has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Endpoint { url: url.to_string(), host, port, tls })
    }

    /// The host as a TLS server name (DNS name or IP address).
    fn server_name(&self) -> Result<ServerName<'static>, ConnError> {
        ServerName::try_from(self.host.clone()).map_err(|e| ConnError::Url(format!("host {:?}: {e}", self.host)))
    }
}

/// Why a connection failed or ended. Messages read as sentences for the log.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("bad feed URL: {0}")]
    Url(String),
    #[error("DNS lookup of {host} failed: {reason}")]
    Dns { host: String, reason: String },
    #[error("TCP connect to {addr} failed: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error("TLS failed: {0} (check binance.ca_file and the server certificate)")]
    Tls(String),
    /// `retry_after` is what the server asked for, saturated but not yet
    /// capped (the caller caps it at [`retry_after::MAX_RETRY_AFTER`]).
    #[error("WebSocket upgrade refused with HTTP {status}{}{}", retry_after.map(|d| format!(" (Retry-After {} s)", d.as_secs())).unwrap_or_default(), http_hint(*status))]
    Http { status: u16, retry_after: Option<Duration> },
    #[error("WebSocket handshake failed: {0}")]
    Handshake(String),
    #[error("{phase} did not finish within {} s", timeout.as_secs())]
    Timeout { phase: &'static str, timeout: Duration },
    #[error("connection reset or broken: {0}")]
    Io(io::Error),
    #[error("WebSocket protocol error: {0}")]
    Protocol(String),
    #[error("no data frame for {} ms (stale feed)", .0.as_millis())]
    Stale(Duration),
}

/// What to fix for a refused upgrade, where the status says it: a 404 is
/// almost always `binance.ws_url` without the combined-stream path.
fn http_hint(status: u16) -> &'static str {
    match status {
        404 => {
            ": the combined-stream path is /stream; binance.ws_url must end in /stream \
             (wss://stream.binance.com:9443/stream)"
        }
        400 => ": the server rejected the stream list in the URL (check pairs and binance.depth/update_ms)",
        _ => "",
    }
}

impl ConnError {
    /// A short stable label for counters and for "same failure again" checks.
    pub fn kind(&self) -> &'static str {
        match self {
            ConnError::Url(_) => "url",
            ConnError::Dns { .. } => "dns",
            ConnError::Connect { .. } => "connect",
            ConnError::Tls(_) => "tls",
            ConnError::Http { .. } => "http",
            ConnError::Handshake(_) => "handshake",
            ConnError::Timeout { .. } => "timeout",
            ConnError::Io(_) => "io",
            ConnError::Protocol(_) => "protocol",
            ConnError::Stale(_) => "stale",
        }
    }

    fn from_io(e: io::Error) -> ConnError {
        if let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            return ConnError::Tls(tls.to_string());
        }
        ConnError::Io(e)
    }

    fn from_ws(e: tungstenite::Error) -> ConnError {
        match e {
            tungstenite::Error::Io(e) => ConnError::from_io(e),
            tungstenite::Error::Tls(e) => ConnError::Tls(e.to_string()),
            tungstenite::Error::Http(resp) => ConnError::Http {
                status: resp.status().as_u16(),
                retry_after: resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| retry_after::parse(v.as_bytes(), crate::units::UnixNanos::now().0 / 1_000_000_000)),
            },
            other => ConnError::Protocol(other.to_string()),
        }
    }
}

/// What tungstenite reads and writes: the feed socket, its pongs paced.
type WsStream = PongPacer<FeedStream>;

enum State {
    /// Waiting for the address (DNS runs off the hot thread).
    Resolving,
    /// TCP connect in flight.
    Connecting {
        tcp: TcpStream,
        addr: SocketAddr,
    },
    /// TLS and/or HTTP upgrade in flight.
    Handshaking(MidHandshake<ClientHandshake<WsStream>>),
    Open(WebSocket<WsStream>),
    /// We sent a Close (or received one); reading until the peer finishes.
    Closing(WebSocket<WsStream>),
    Closed,
}

/// What a readiness event changed. Both can happen in one event: a server
/// may complete the handshake, send frames and close before we read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// The WebSocket handshake completed on this event.
    pub opened: bool,
    /// The connection ended cleanly (close handshake done, or EOF after Close).
    pub closed: bool,
    /// The read budget ran out before `WouldBlock`: more may be buffered and
    /// no new readiness edge will announce it, so the owner must call again.
    pub more: bool,
}

/// Messages read per readiness event before yielding to the other
/// connections and the timers (and, for latency accounting, to a fresh poll).
pub const READ_BUDGET: usize = 64;

/// What the owner's frame handler made of a data message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// Market data (counted for the stale watchdog).
    Data,
    /// `serverShutdown`: the server will close this connection soon.
    ServerShutdown,
    /// Anything else (replies, rejected frames).
    Other,
}

/// Handshake, TLS and connect must finish within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After sending a Close, give the peer this long to finish.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// One WebSocket connection to the feed.
pub struct Connection {
    pub token: Token,
    pub endpoint: Endpoint,
    state: State,
    interest: Option<Interest>,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// When the attempt started (for the handshake timeout and log).
    pub started: Instant,
    /// When the WebSocket became open.
    pub opened: Option<Instant>,
    /// When the last data frame arrived (or the connection opened).
    pub last_data: Instant,
    /// When we began closing.
    closing_since: Option<Instant>,
    /// Data frames received on this connection.
    pub data_frames: u64,
    /// The server announced `serverShutdown`.
    pub shutdown_announced: bool,
    /// A Close frame was received from the server (code and reason, for the log).
    pub close_received: Option<String>,
    /// The loop's socket-read clock, handed to the socket once connected.
    read_clock: ReadClock,
}

impl Connection {
    /// A connection in the `Resolving` state.
    pub fn new(
        token: Token,
        endpoint: Endpoint,
        tls: Option<Arc<rustls::ClientConfig>>,
        read_clock: ReadClock,
        now: Instant,
    ) -> Self {
        Connection {
            token,
            endpoint,
            state: State::Resolving,
            interest: None,
            tls,
            started: now,
            opened: None,
            last_data: now,
            closing_since: None,
            data_frames: 0,
            shutdown_announced: false,
            close_received: None,
            read_clock,
        }
    }

    /// Starts the non-blocking TCP connect to a resolved address.
    pub fn connect(&mut self, addr: SocketAddr, registry: &Registry) -> Result<(), ConnError> {
        let mut tcp = TcpStream::connect(addr).map_err(|source| ConnError::Connect { addr, source })?;
        registry
            .register(&mut tcp, self.token, Interest::READABLE | Interest::WRITABLE)
            .map_err(|source| ConnError::Connect { addr, source })?;
        self.interest = Some(Interest::READABLE | Interest::WRITABLE);
        self.state = State::Connecting { tcp, addr };
        Ok(())
    }

    /// True once the WebSocket is open and not closing.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open(_))
    }

    /// True while resolving, connecting or handshaking.
    pub fn is_pending(&self) -> bool {
        matches!(self.state, State::Resolving | State::Connecting { .. } | State::Handshaking(_))
    }

    /// True once closing has begun (or finished).
    pub fn is_closing(&self) -> bool {
        matches!(self.state, State::Closing(_) | State::Closed)
    }

    /// Deadline of the current phase, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Connecting { .. } | State::Handshaking(_) => Some(self.started + HANDSHAKE_TIMEOUT),
            State::Closing(_) => self.closing_since.map(|t| t + CLOSE_TIMEOUT),
            _ => None,
        }
    }

    /// The timeout error for the current phase, if its deadline passed.
    pub fn check_deadline(&self, now: Instant) -> Option<ConnError> {
        let deadline = self.deadline()?;
        if now < deadline {
            return None;
        }
        let phase = match self.state {
            State::Connecting { .. } => "TCP connect",
            State::Handshaking(_) => "TLS/WebSocket handshake",
            _ => "close handshake",
        };
        Some(ConnError::Timeout {
            phase,
            timeout: if phase == "close handshake" { CLOSE_TIMEOUT } else { HANDSHAKE_TIMEOUT },
        })
    }

    /// Handles a readiness event: completes the connect and handshake, then
    /// reads every complete message until `WouldBlock`, passing data messages
    /// to `on_frame`.
    pub fn on_ready(
        &mut self,
        registry: &Registry,
        now: Instant,
        on_frame: &mut impl FnMut(&[u8]) -> FrameKind,
    ) -> Result<Progress, ConnError> {
        let mut progress = Progress::default();
        if let State::Connecting { tcp, addr } = &self.state {
            let addr = *addr;
            match tcp.take_error() {
                Ok(Some(e)) | Err(e) => return Err(ConnError::Connect { addr, source: e }),
                Ok(None) => {}
            }
            match tcp.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected || would_block(&e) => return Ok(progress),
                Err(e) => return Err(ConnError::Connect { addr, source: e }),
            }
            let State::Connecting { tcp, .. } = std::mem::replace(&mut self.state, State::Closed) else {
                return Ok(progress);
            };
            self.start_handshake(tcp)?;
        }
        if let State::Handshaking(mid) = &mut self.state {
            mid.get_mut().get_mut().get_mut().rearm();
            let State::Handshaking(mid) = std::mem::replace(&mut self.state, State::Closed) else {
                return Ok(progress);
            };
            match mid.handshake() {
                Ok((ws, _response)) => {
                    self.state = State::Open(ws);
                    self.opened = Some(now);
                    self.last_data = now;
                    progress.opened = true;
                }
                Err(HandshakeError::Interrupted(mid)) => {
                    self.state = State::Handshaking(mid);
                    self.update_interest(registry);
                    return Ok(progress);
                }
                Err(HandshakeError::Failure(e)) => return Err(handshake_error(e)),
            }
        }
        if self.opened.is_none() && matches!(self.state, State::Open(_)) {
            // The handshake completed synchronously inside `start_handshake`.
            self.opened = Some(now);
            self.last_data = now;
            progress.opened = true;
        }
        // Open or Closing: drain everything readable now; frames already
        // buffered by the handshake get no new readiness edge.
        if let State::Open(ws) | State::Closing(ws) = &mut self.state {
            ws.get_mut().get_mut().rearm();
        }
        (progress.closed, progress.more) = self.read_all(now, on_frame)?;
        self.update_interest(registry);
        Ok(progress)
    }

    fn start_handshake(&mut self, tcp: TcpStream) -> Result<(), ConnError> {
        let _ = tcp.set_nodelay(true);
        let tls = match &self.tls {
            Some(cfg) if self.endpoint.tls => Some((cfg, self.endpoint.server_name()?)),
            _ => None,
        };
        let stream = FeedStream::new(tcp, tls, self.read_clock.clone()).map_err(|e| ConnError::Tls(e.to_string()))?;
        let stream = PongPacer::new(stream, self.started);
        let request = self.endpoint.url.as_str().into_client_request().map_err(ConnError::from_ws)?;
        // tungstenite zero-fills its spare read buffer on every socket read:
        // with the default 128 KiB that memset was most of wire→decision
        // (4.8 µs → 2.6 µs p50 at 10k frames/s when cut to 4 KiB, which
        // still holds a depth20 frame; larger messages grow the buffer).
        let config = WebSocketConfig::default()
            .read_buffer_size(4 << 10)
            .write_buffer_size(0)
            .max_message_size(Some(4 << 20))
            .max_frame_size(Some(4 << 20));
        match ClientHandshake::start(stream, request, Some(config)).map_err(ConnError::from_ws)?.handshake() {
            Ok((ws, _)) => {
                // Completed synchronously (only possible with buffered data);
                // treat like the readiness path does.
                self.state = State::Open(ws);
                Ok(())
            }
            Err(HandshakeError::Interrupted(mid)) => {
                self.state = State::Handshaking(mid);
                Ok(())
            }
            Err(HandshakeError::Failure(e)) => Err(handshake_error(e)),
        }
    }

    /// Reads messages until `WouldBlock` or [`READ_BUDGET`]; returns (ended
    /// cleanly, budget ran out).
    fn read_all(
        &mut self,
        now: Instant,
        on_frame: &mut impl FnMut(&[u8]) -> FrameKind,
    ) -> Result<(bool, bool), ConnError> {
        let ws = match &mut self.state {
            State::Open(ws) | State::Closing(ws) => ws,
            _ => return Ok((false, false)),
        };
        let mut must_flush = false;
        let mut budget = READ_BUDGET;
        let mut more = false;
        loop {
            if budget == 0 {
                more = true;
                break;
            }
            budget -= 1;
            match ws.read() {
                Ok(Message::Text(text)) => {
                    if handle_data(on_frame(text.as_bytes()), &mut self.data_frames, &mut self.last_data, now) {
                        self.shutdown_announced = true;
                    }
                }
                Ok(Message::Binary(bytes)) => {
                    if handle_data(on_frame(&bytes), &mut self.data_frames, &mut self.last_data, now) {
                        self.shutdown_announced = true;
                    }
                }
                // tungstenite queues a pong and writes it on the next read
                // or flush; the pacer takes it and sends the newest in time.
                Ok(Message::Ping(_)) => must_flush = true,
                Ok(Message::Pong(_)) | Ok(Message::Frame(_)) => {}
                // The server closed: once tungstenite's queued reply is sent
                // the handshake is complete, so hang up and let the owner
                // reconnect. Waiting for the server to drop TCP, as RFC 6455
                // has a client do, left a server that never did with the
                // feed down until the stale watchdog fired. A connection we
                // are closing ourselves (retired by a rotation, or at stop)
                // still reads until the server hangs up or CLOSE_TIMEOUT:
                // nothing waits on it, and while it lingers its frames stay
                // deduplicated against its replacement's.
                Ok(Message::Close(frame)) if self.closing_since.is_none() => {
                    self.close_received = Some(describe_close(frame.as_ref()));
                    let _ = ws.flush();
                    self.state = State::Closed;
                    return Ok((true, false));
                }
                Ok(Message::Close(frame)) => {
                    self.close_received = Some(describe_close(frame.as_ref()));
                    must_flush = true;
                }
                Err(tungstenite::Error::Io(e)) if would_block(&e) => break,
                Err(tungstenite::Error::Io(e)) if interrupted(&e) => {}
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    self.state = State::Closed;
                    return Ok((true, false));
                }
                // EOF without TLS close_notify after a Close: the exchange hung
                // up without the TLS goodbye, which is clean enough.
                Err(tungstenite::Error::Io(e))
                    if e.kind() == io::ErrorKind::UnexpectedEof
                        && (self.close_received.is_some() || self.closing_since.is_some()) =>
                {
                    self.state = State::Closed;
                    return Ok((true, false));
                }
                Err(e) => return Err(ConnError::from_ws(e)),
            }
        }
        if must_flush || ws.get_ref().wants_write() || ws.get_ref().get_ref().tls_wants_write() {
            match ws.flush() {
                Ok(()) => {}
                Err(tungstenite::Error::Io(e)) if would_block(&e) => {}
                Err(tungstenite::Error::ConnectionClosed) => {
                    self.state = State::Closed;
                    return Ok((true, false));
                }
                Err(e) => return Err(ConnError::from_ws(e)),
            }
        }
        let pacer = ws.get_mut();
        if pacer.pong_due().is_some_and(|t| t <= now) {
            pacer.send_due(now).map_err(ConnError::from_io)?;
        }
        Ok((false, more))
    }

    /// When the pong answering the latest ping may go, if one waits (see
    /// [`PongPacer`]): the owner calls [`Connection::send_pong`] then.
    pub fn pong_due(&self) -> Option<Instant> {
        match &self.state {
            State::Open(ws) => ws.get_ref().pong_due(),
            _ => None,
        }
    }

    /// Sends the waiting pong if it is due.
    pub fn send_pong(&mut self, registry: &Registry, now: Instant) -> Result<(), ConnError> {
        if let State::Open(ws) = &mut self.state {
            ws.get_mut().send_due(now).map_err(ConnError::from_io)?;
        }
        self.update_interest(registry);
        Ok(())
    }

    /// Starts a clean close: sends a Close frame and keeps reading until the
    /// server completes the handshake (or [`CLOSE_TIMEOUT`] passes).
    pub fn close(&mut self, registry: &Registry, now: Instant) {
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Open(mut ws) => {
                let _ = ws.close(None);
                let _ = ws.flush();
                self.closing_since = Some(now);
                self.state = State::Closing(ws);
                self.update_interest(registry);
            }
            State::Closing(ws) => self.state = State::Closing(ws),
            other => {
                self.state = other;
                self.deregister(registry);
                self.state = State::Closed;
            }
        }
    }

    /// Removes the socket from the poll and drops it.
    pub fn deregister(&mut self, registry: &Registry) {
        let tcp = match &mut self.state {
            State::Connecting { tcp, .. } => Some(tcp),
            State::Handshaking(mid) => Some(mid.get_mut().get_mut().get_mut().tcp_mut()),
            State::Open(ws) | State::Closing(ws) => Some(ws.get_mut().get_mut().tcp_mut()),
            State::Resolving | State::Closed => None,
        };
        if let Some(tcp) = tcp {
            let _ = registry.deregister(tcp);
        }
        self.state = State::Closed;
        self.interest = None;
    }

    /// Re-registers only when the wanted interest changed: WRITABLE only while
    /// TLS has records queued for the socket.
    fn update_interest(&mut self, registry: &Registry) {
        let (tcp, wants_write) = match &mut self.state {
            State::Handshaking(mid) => {
                let s = mid.get_mut().get_mut().get_mut();
                let w = s.tls_wants_write();
                (s.tcp_mut(), w)
            }
            State::Open(ws) | State::Closing(ws) => {
                let s = ws.get_mut();
                let w = s.wants_write() || s.get_ref().tls_wants_write();
                (s.get_mut().tcp_mut(), w)
            }
            _ => return,
        };
        let want = if wants_write { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
        if self.interest != Some(want) && registry.reregister(tcp, self.token, want).is_ok() {
            self.interest = Some(want);
        }
    }
}

/// Updates counters for one data message; returns whether it announced a shutdown.
#[inline]
fn handle_data(kind: FrameKind, frames: &mut u64, last_data: &mut Instant, now: Instant) -> bool {
    match kind {
        FrameKind::Data => {
            *frames += 1;
            *last_data = now;
            false
        }
        FrameKind::ServerShutdown => true,
        FrameKind::Other => false,
    }
}

fn handshake_error(e: tungstenite::Error) -> ConnError {
    match ConnError::from_ws(e) {
        ConnError::Protocol(p) => ConnError::Handshake(p),
        other => other,
    }
}

fn describe_close(frame: Option<&CloseFrame>) -> String {
    match frame {
        Some(f) if f.reason.is_empty() => format!("code {}", u16::from(f.code)),
        Some(f) => format!("code {} ({})", u16::from(f.code), crate::sanitize::escape_controls(&f.reason)),
        None => "no code".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_scheme_host_and_default_ports() {
        let e = Endpoint::parse("wss://stream.binance.com:9443/stream?streams=btcusdt@depth10@100ms").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.tls), ("stream.binance.com", 9443, true));
        let e = Endpoint::parse("ws://127.0.0.1/stream").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.tls), ("127.0.0.1", 80, false));
        let e = Endpoint::parse("wss://[::1]/stream").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 443));
        assert!(Endpoint::parse("https://example.com").is_err());
    }
}
