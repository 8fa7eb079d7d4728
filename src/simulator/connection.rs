//! One client connection as an explicit state machine: the WebSocket upgrade
//! (TLS handshake folded into the transport), streaming, and the close. Every
//! transition happens in [`Connection`]'s methods; each state holds exactly
//! what it needs.
//!
//! Nothing a client sends can panic the server: protocol violations, bad
//! requests and I/O errors end in a counted close.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Token;
use tungstenite::handshake::server::{Callback, ErrorResponse, Request, Response, ServerHandshake};
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::http::{HeaderValue, StatusCode, header};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use super::MAX_RATE_STALL;
use super::faults::{Due, FaultPlan};
use super::frame::{Frame, garbage, server_shutdown, unix_millis};
use super::keepalive::{Keepalive, Pong};
use super::requests::{self, Request as ClientRequest, RequestError};
use super::route::{Route, route};
use super::stats::SimStats;
use super::streams::{MAX_STREAMS_PER_CONNECTION, StreamId};
use super::subscriptions::Subscriptions;
use super::transport::Transport;

/// How long a client may take to complete the upgrade.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a close handshake may take before the socket is just closed.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Data frames written to one client per pump, so one fast client cannot
/// starve the others of the loop.
const PUMP_BUDGET: usize = 4096;
/// Largest message a client may send; a 1024-stream SUBSCRIBE fits easily.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

/// Per-connection settings derived from the options once.
#[derive(Clone, Debug)]
pub struct ConnConfig {
    pub ping_interval: Duration,
    pub pong_timeout: Duration,
    pub shutdown_grace: Duration,
    pub faults: FaultPlan,
    /// Data frames a client's queue holds.
    pub queue_cap: usize,
}

impl ConnConfig {
    fn websocket(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(16 * 1024)
            .max_message_size(Some(MAX_CLIENT_MESSAGE))
            .max_frame_size(Some(MAX_CLIENT_MESSAGE))
    }
}

/// What a connection works with while the network thread runs it.
pub struct Ctx<'a> {
    pub token: Token,
    pub now: Instant,
    pub cfg: &'a ConnConfig,
    pub stats: &'a mut SimStats,
    pub subs: &'a mut Subscriptions,
}

/// One client connection.
pub struct Connection {
    state: State,
}

enum State {
    Handshaking(Box<Handshake>),
    Open(Box<Session>),
    Closing(Box<Closing>),
    Closed,
}

struct Handshake {
    mid: MidHandshake<ServerHandshake<Transport, Upgrade>>,
    /// Filled by [`Upgrade`] when the request routes.
    route: Rc<Cell<Option<Route>>>,
    deadline: Instant,
}

/// A close handshake in progress (ours or the client's), or a Close frame
/// being flushed; ends when the client confirms or at `deadline`.
struct Closing {
    ws: WebSocket<Transport>,
    deadline: Instant,
}

/// An open WebSocket receiving market data.
struct Session {
    ws: WebSocket<Transport>,
    /// `{"stream":…,"data":…}` or the payload alone (`SET_PROPERTY combined`).
    combined: bool,
    /// Subscribed streams in subscription order.
    streams: Vec<StreamId>,
    queue: VecDeque<Arc<Frame>>,
    /// Since when the queue has been full at `Rate::Max`.
    full_since: Option<Instant>,
    /// The socket took less than was written; wait for a writable event.
    write_blocked: bool,
    data_sent: u64,
    /// False once a stall or reset fault stopped data.
    data_on: bool,
    /// Reset the connection once everything written has left.
    reset_pending: bool,
    /// When the `serverShutdown` grace period ends.
    close_at: Option<Instant>,
    keepalive: Keepalive,
}

/// Why a session ends.
enum End {
    /// The client sent Close; the reply is queued and goes out in `Closing`.
    ClientClosing,
    /// The close handshake completed, or the client vanished (EOF, reset).
    Gone,
    /// The client broke the WebSocket protocol.
    ProtocolError(tungstenite::Error),
    PongTimeout,
    TooSlow,
    /// The `drop_after` fault: what was sent has left the socket.
    Reset,
    /// The `serverShutdown` grace period is over.
    ShutdownClose,
}

impl End {
    fn from_ws(e: tungstenite::Error) -> Self {
        use tungstenite::error::ProtocolError;
        match e {
            tungstenite::Error::ConnectionClosed
            | tungstenite::Error::AlreadyClosed
            | tungstenite::Error::Io(_)
            | tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => End::Gone,
            other => End::ProtocolError(other),
        }
    }
}

fn would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if io.kind() == io::ErrorKind::WouldBlock)
}

/// The upgrade callback: routes the request target, or refuses it with the
/// HTTP error Binance gives.
struct Upgrade {
    route: Rc<Cell<Option<Route>>>,
}

impl Callback for Upgrade {
    fn on_request(self, request: &Request, response: Response) -> Result<Response, ErrorResponse> {
        let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
        match route(target) {
            Ok(r) => {
                self.route.set(Some(r));
                Ok(response)
            }
            Err(refusal) => {
                let body = format!("{}\n", refusal.reason);
                let mut resp = ErrorResponse::new(None);
                *resp.status_mut() = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST);
                let headers = resp.headers_mut();
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
                *resp.body_mut() = Some(body);
                Err(resp)
            }
        }
    }
}

impl Connection {
    /// A freshly accepted connection, waiting for its upgrade request.
    pub fn accept(transport: Transport, now: Instant, cfg: &ConnConfig) -> Self {
        let route = Rc::new(Cell::new(None));
        let upgrade = Upgrade { route: Rc::clone(&route) };
        let mid = ServerHandshake::start(transport, upgrade, Some(cfg.websocket()));
        Connection { state: State::Handshaking(Box::new(Handshake { mid, route, deadline: now + HANDSHAKE_TIMEOUT })) }
    }

    /// The socket is ready: read what arrived, write what waits.
    pub fn on_ready(&mut self, writable: bool, ctx: &mut Ctx<'_>) {
        self.state = match std::mem::replace(&mut self.state, State::Closed) {
            State::Handshaking(h) => Self::handshake(*h, ctx),
            State::Open(mut s) => {
                if writable {
                    s.write_blocked = false;
                }
                let result = s.read_all(ctx).and_then(|()| s.pump(ctx));
                Self::after(s, result, ctx)
            }
            State::Closing(c) => c.drive(ctx.now),
            State::Closed => State::Closed,
        };
    }

    /// Time-driven work: pings, the pong deadline, fault deadlines, timeouts.
    pub fn on_timer(&mut self, ctx: &mut Ctx<'_>) {
        self.state = match std::mem::replace(&mut self.state, State::Closed) {
            State::Handshaking(h) if ctx.now >= h.deadline => {
                ctx.stats.handshake_failures += 1;
                State::Closed
            }
            State::Open(mut s) => {
                let result = s.on_timer(ctx);
                Self::after(s, result, ctx)
            }
            State::Closing(c) if ctx.now >= c.deadline => State::Closed,
            other => other,
        };
    }

    /// Writes queued data (after new frames were queued).
    pub fn pump(&mut self, ctx: &mut Ctx<'_>) {
        if let State::Open(s) = &mut self.state {
            let result = s.pump(ctx);
            if result.is_err() {
                let State::Open(s) = std::mem::replace(&mut self.state, State::Closed) else { return };
                self.state = Self::after(s, result, ctx);
            }
        }
    }

    /// Drops a client that fell too far behind.
    pub fn drop_slow(&mut self, ctx: &mut Ctx<'_>) {
        if let State::Open(s) = std::mem::replace(&mut self.state, State::Closed) {
            self.state = Self::after(s, Err(End::TooSlow), ctx);
        }
    }

    /// Queues a market frame for this client, if it takes data. The caller
    /// checks [`Self::is_full`] first: the queue's bound is enforced there.
    pub fn enqueue(&mut self, frame: &Arc<Frame>) {
        if let State::Open(s) = &mut self.state
            && s.data_on
        {
            s.queue.push_back(Arc::clone(frame));
        }
    }

    /// True when the client's queue is at capacity and it still takes data.
    pub fn is_full(&self, cap: usize) -> bool {
        matches!(&self.state, State::Open(s) if s.data_on && s.queue.len() >= cap)
    }

    /// Notes that this client is holding the market back (`Rate::Max`).
    pub fn mark_full(&mut self, now: Instant) {
        if let State::Open(s) = &mut self.state {
            s.full_since.get_or_insert(now);
        }
    }

    /// True when queued data could be written right now.
    pub fn needs_pump(&self) -> bool {
        matches!(&self.state, State::Open(s) if s.data_on && !s.write_blocked && !s.queue.is_empty())
    }

    /// The next instant [`Self::on_timer`] has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Handshaking(h) => Some(h.deadline),
            State::Open(s) => {
                let stall = s.full_since.map(|t| t + MAX_RATE_STALL);
                [Some(s.keepalive.next_deadline()), s.close_at, stall].into_iter().flatten().min()
            }
            State::Closing(c) => Some(c.deadline),
            State::Closed => None,
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Ends the connection now (the simulator is stopping).
    pub fn close_now(&mut self, ctx: &mut Ctx<'_>) {
        if let State::Open(mut s) = std::mem::replace(&mut self.state, State::Closed) {
            s.unsubscribe_all(ctx);
            let _ = s.ws.close(Some(CloseFrame { code: CloseCode::Away, reason: "simulator stopping".into() }));
        }
    }

    fn handshake(h: Handshake, ctx: &mut Ctx<'_>) -> State {
        let Handshake { mid, route, deadline } = h;
        match mid.handshake() {
            Ok(ws) => {
                let route = route.take().unwrap_or(Route { combined: true, streams: Vec::new() });
                let mut s = Box::new(Session::new(ws, route.combined, ctx));
                let ids: Vec<StreamId> = route.streams.iter().map(|name| ctx.subs.id(name)).collect();
                s.subscribe(&ids, ctx);
                // The client may have sent requests already; with
                // edge-triggered readiness nothing else would tell us.
                let result = s
                    .apply_faults(ctx.cfg.faults.due(0), None, ctx)
                    .and_then(|()| s.read_all(ctx))
                    .and_then(|()| s.pump(ctx));
                Self::after(s, result, ctx)
            }
            Err(HandshakeError::Interrupted(mid)) => State::Handshaking(Box::new(Handshake { mid, route, deadline })),
            Err(HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
                log::debug!("simulator: upgrade refused with {}", resp.status());
                ctx.stats.upgrades_refused += 1;
                State::Closed
            }
            Err(HandshakeError::Failure(e)) => {
                log::debug!("simulator: handshake failed: {e}");
                ctx.stats.handshake_failures += 1;
                State::Closed
            }
        }
    }

    /// The state after a session step: still open, or how it ends.
    fn after(mut s: Box<Session>, result: Result<(), End>, ctx: &mut Ctx<'_>) -> State {
        let end = match result {
            Ok(()) => return State::Open(s),
            Err(end) => end,
        };
        s.unsubscribe_all(ctx);
        let closing = |ws, now| State::Closing(Box::new(Closing { ws, deadline: now + CLOSE_TIMEOUT }));
        match end {
            End::ClientClosing => {
                ctx.stats.client_disconnects += 1;
                Closing { ws: s.ws, deadline: ctx.now + CLOSE_TIMEOUT }.drive(ctx.now)
            }
            End::Gone => {
                ctx.stats.client_disconnects += 1;
                State::Closed
            }
            End::ProtocolError(e) => {
                log::debug!("simulator: closing a client that broke the protocol: {e}");
                ctx.stats.client_errors += 1;
                State::Closed
            }
            End::PongTimeout => {
                ctx.stats.dropped_no_pong += 1;
                let _ = s.ws.close(Some(CloseFrame { code: CloseCode::Policy, reason: "pong timeout".into() }));
                State::Closed
            }
            End::TooSlow => {
                ctx.stats.dropped_slow += 1;
                let _ = s.ws.close(Some(CloseFrame { code: CloseCode::Policy, reason: "client too slow".into() }));
                State::Closed
            }
            End::Reset => {
                ctx.stats.fault_resets += 1;
                if let Err(e) = s.ws.get_mut().set_reset_on_close() {
                    log::warn!("simulator: cannot set SO_LINGER for the drop_after reset: {e}");
                }
                State::Closed
            }
            End::ShutdownClose => {
                let frame = CloseFrame { code: CloseCode::Away, reason: "server shutdown".into() };
                match s.ws.close(Some(frame)) {
                    Ok(()) => closing(s.ws, ctx.now),
                    Err(e) if would_block(&e) => closing(s.ws, ctx.now),
                    Err(_) => State::Closed,
                }
            }
        }
    }
}

impl Closing {
    /// Reads until the client's Close arrives and writes until ours has gone.
    fn drive(mut self, now: Instant) -> State {
        loop {
            match self.ws.read() {
                Ok(_) => {}
                Err(e) if would_block(&e) => break,
                Err(_) => return State::Closed,
            }
        }
        match self.ws.flush() {
            Ok(()) => {}
            Err(e) if would_block(&e) => {}
            Err(_) => return State::Closed,
        }
        if now >= self.deadline { State::Closed } else { State::Closing(Box::new(self)) }
    }
}

impl Session {
    fn new(ws: WebSocket<Transport>, combined: bool, ctx: &Ctx<'_>) -> Self {
        Session {
            ws,
            combined,
            streams: Vec::new(),
            queue: VecDeque::new(),
            full_since: None,
            write_blocked: false,
            data_sent: 0,
            data_on: true,
            reset_pending: false,
            close_at: None,
            keepalive: Keepalive::new(ctx.cfg.ping_interval, ctx.cfg.pong_timeout, ctx.now),
        }
    }

    /// Reads every message that has arrived.
    fn read_all(&mut self, ctx: &mut Ctx<'_>) -> Result<(), End> {
        loop {
            match self.ws.read() {
                Ok(Message::Text(text)) => self.answer(text.as_bytes(), ctx)?,
                Ok(Message::Binary(bytes)) => self.answer(&bytes, ctx)?,
                Ok(Message::Pong(payload)) => {
                    ctx.stats.pongs_received += 1;
                    if self.keepalive.on_pong(&payload) == Pong::Unsolicited {
                        log::trace!("simulator: unsolicited pong");
                    }
                }
                // tungstenite queues the pong for a client's ping itself.
                Ok(Message::Ping(_) | Message::Frame(_)) => {}
                Ok(Message::Close(_)) => return Err(End::ClientClosing),
                Err(e) if would_block(&e) => return Ok(()),
                Err(e) => return Err(End::from_ws(e)),
            }
        }
    }

    /// Answers one client request, as Binance does.
    fn answer(&mut self, message: &[u8], ctx: &mut Ctx<'_>) -> Result<(), End> {
        let incoming = requests::parse(message);
        let result = incoming.request.and_then(|request| self.execute(request, ctx));
        let reply = match result {
            Ok(result) => requests::reply_result(&incoming.id, &result),
            Err(error) => requests::reply_error(&incoming.id, &error),
        };
        ctx.stats.requests_answered += 1;
        self.send_text(reply.into(), ctx)
    }

    /// Carries out a request; the `result` JSON on success.
    fn execute(&mut self, request: ClientRequest, ctx: &mut Ctx<'_>) -> Result<String, RequestError> {
        match request {
            ClientRequest::Subscribe(names) => {
                let mut ids: Vec<StreamId> = Vec::with_capacity(names.len());
                for name in &names {
                    let id = ctx.subs.id(name);
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                let new = ids.iter().filter(|id| !self.streams.contains(id)).count();
                if self.streams.len() + new > MAX_STREAMS_PER_CONNECTION {
                    return Err(RequestError {
                        code: 2,
                        msg: format!("Invalid request: at most {MAX_STREAMS_PER_CONNECTION} streams per connection"),
                    });
                }
                self.subscribe(&ids, ctx);
                Ok("null".into())
            }
            ClientRequest::Unsubscribe(names) => {
                self.unsubscribe(&names, ctx);
                Ok("null".into())
            }
            ClientRequest::ListSubscriptions => {
                let names: Vec<Arc<str>> = self.streams.iter().map(|&id| ctx.subs.name(id)).collect();
                Ok(requests::name_list(names.iter().map(|n| &**n)))
            }
            ClientRequest::SetCombined(combined) => {
                self.combined = combined;
                Ok("null".into())
            }
            ClientRequest::GetCombined => Ok(self.combined.to_string()),
        }
    }

    /// Subscribes to `ids`. The market hears of the new streams before it
    /// hears that this connection is subscribed (which may start its clock),
    /// so no frame of a stream asked for together is skipped.
    fn subscribe(&mut self, ids: &[StreamId], ctx: &mut Ctx<'_>) {
        let was_empty = self.streams.is_empty();
        for &id in ids {
            if !self.streams.contains(&id) {
                self.streams.push(id);
                ctx.subs.add(ctx.token, id);
            }
        }
        if was_empty && !self.streams.is_empty() {
            ctx.subs.connection_subscribed(true);
        }
    }

    fn unsubscribe(&mut self, names: &[String], ctx: &mut Ctx<'_>) {
        let was_empty = self.streams.is_empty();
        for name in names {
            let id = ctx.subs.id(name);
            let Some(pos) = self.streams.iter().position(|&s| s == id) else { continue };
            self.streams.remove(pos);
            ctx.subs.remove(ctx.token, id);
            // Nothing of an unsubscribed stream may follow the reply.
            self.queue.retain(|f| f.stream != id);
        }
        if !was_empty && self.streams.is_empty() {
            ctx.subs.connection_subscribed(false);
        }
    }

    fn unsubscribe_all(&mut self, ctx: &mut Ctx<'_>) {
        if self.streams.is_empty() {
            return;
        }
        for id in self.streams.drain(..) {
            ctx.subs.remove(ctx.token, id);
        }
        ctx.subs.connection_subscribed(false);
    }

    /// Writes queued data frames until the queue is empty, the socket is
    /// full or the budget is spent, then flushes.
    fn pump(&mut self, ctx: &mut Ctx<'_>) -> Result<(), End> {
        if self.write_blocked {
            return Ok(());
        }
        let mut budget = PUMP_BUDGET;
        while self.data_on && budget > 0 && !self.write_blocked {
            let Some(frame) = self.queue.pop_front() else { break };
            budget -= 1;
            self.send_text(frame.payload(self.combined).clone(), ctx)?;
            ctx.subs.count_sent(frame.stream);
            self.data_sent += 1;
            self.apply_faults(ctx.cfg.faults.due(self.data_sent), Some(&frame), ctx)?;
        }
        if self.queue.len() < ctx.cfg.queue_cap {
            self.full_since = None;
        }
        self.flush()
    }

    /// Carries out the faults due now; `last` is the data frame just sent.
    fn apply_faults(&mut self, due: Due, last: Option<&Frame>, ctx: &mut Ctx<'_>) -> Result<(), End> {
        if let (true, Some(frame)) = (due.garbage, last) {
            ctx.stats.fault_garbage += 1;
            self.send_text(garbage(frame.payload(self.combined)), ctx)?;
        }
        if due.announce_shutdown {
            ctx.stats.fault_shutdowns += 1;
            self.send_text(server_shutdown(self.combined, unix_millis()), ctx)?;
            self.close_at = Some(ctx.now + ctx.cfg.shutdown_grace);
        }
        if due.stall {
            ctx.stats.fault_stalls += 1;
            self.stop_data();
        }
        if due.reset {
            self.stop_data();
            self.reset_pending = true;
        }
        Ok(())
    }

    fn stop_data(&mut self) {
        self.data_on = false;
        self.queue = VecDeque::new();
        self.full_since = None;
    }

    /// Pings, the pong deadline, the shutdown grace and the slow-client limit.
    fn on_timer(&mut self, ctx: &mut Ctx<'_>) -> Result<(), End> {
        if self.keepalive.expired(ctx.now) {
            return Err(End::PongTimeout);
        }
        if self.close_at.is_some_and(|t| ctx.now >= t) {
            return Err(End::ShutdownClose);
        }
        if self.full_since.is_some_and(|t| ctx.now.saturating_duration_since(t) >= MAX_RATE_STALL) {
            return Err(End::TooSlow);
        }
        if let Some(payload) = self.keepalive.ping_due(ctx.now, unix_millis()) {
            ctx.stats.pings_sent += 1;
            self.send(Message::Ping(payload))?;
            return self.flush();
        }
        Ok(())
    }

    /// Writes a text frame (counted in `frames_sent`).
    fn send_text(&mut self, text: tungstenite::Utf8Bytes, ctx: &mut Ctx<'_>) -> Result<(), End> {
        ctx.stats.frames_sent += 1;
        self.send(Message::Text(text))
    }

    /// Writes a message into the WebSocket; a full socket only marks the
    /// session blocked (the frame is buffered and goes out when writable).
    fn send(&mut self, message: Message) -> Result<(), End> {
        match self.ws.write(message) {
            Ok(()) => Ok(()),
            Err(e) if would_block(&e) => {
                self.write_blocked = true;
                Ok(())
            }
            Err(e) => Err(End::from_ws(e)),
        }
    }

    /// Pushes buffered output to the socket; once it has all gone, a pending
    /// reset fault fires.
    fn flush(&mut self) -> Result<(), End> {
        match self.ws.flush() {
            Ok(()) => {
                self.write_blocked = false;
                if self.reset_pending { Err(End::Reset) } else { Ok(()) }
            }
            Err(e) if would_block(&e) => {
                self.write_blocked = true;
                Ok(())
            }
            Err(e) => Err(End::from_ws(e)),
        }
    }
}
