//! One client connection as an explicit state machine: the request head
//! (TLS handshake folded into the transport) that tells a REST request
//! ([`HttpConn`]) from a WebSocket upgrade, the upgrade, the open
//! [`Session`], and the close. Every transition happens in [`Connection`]'s
//! methods; each state holds exactly what it needs.
//!
//! Nothing a client sends can panic the server: protocol violations, bad
//! requests and I/O errors end in a counted close.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::Token;
use tungstenite::WebSocket;
use tungstenite::handshake::server::{Callback, ErrorResponse, Request, Response, ServerHandshake};
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::http::{HeaderValue, StatusCode, header};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};

use super::deadline;
use super::faults::FaultPlan;
use super::frame::Frame;
use super::market::{SnapshotAnswer, SnapshotQuery};
use super::rest::{HttpConn, RestCtx, RestSide, Step};
use super::route::{Route, route};
use super::session::{End, Session, would_block};
use super::stats::SimStats;
use super::subscriptions::Subscriptions;
use super::transport::{Rewound, Transport};

/// How long a client may take to send its request and complete the upgrade.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a close handshake may take before the socket is just closed.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest message a client may send; a 1024-stream SUBSCRIBE fits easily.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

/// Per-connection settings derived from the options once.
#[derive(Clone, Debug)]
pub struct ConnConfig {
    pub ping_interval: Duration,
    pub pong_timeout: Duration,
    pub shutdown_grace: Duration,
    pub faults: FaultPlan,
    /// Diff-depth events sent to one connection between two skipped ones
    /// (the `gap_every` fault), counting the skipped one.
    pub gap_every: Option<u64>,
    /// Data frames a client's queue holds.
    pub queue_cap: usize,
}

/// Limits for what a client sends: small buffers, small messages.
fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE))
}

/// What a connection works with while the network thread runs it.
pub struct Ctx<'a> {
    pub token: Token,
    pub now: Instant,
    pub cfg: &'a ConnConfig,
    pub stats: &'a mut SimStats,
    pub subs: &'a mut Subscriptions,
    pub rest: &'a mut RestSide,
}

/// One client connection.
pub struct Connection {
    state: State,
}

enum State {
    /// Reading the request head; answering a REST request.
    Http(Box<HttpConn>),
    Handshaking(Box<Handshake>),
    Open(Box<Session>),
    Closing(Box<Closing>),
    Closed,
}

struct Handshake {
    mid: MidHandshake<ServerHandshake<Rewound, Upgrade>>,
    /// Filled by [`Upgrade`] when the request routes.
    route: Rc<Cell<Option<Route>>>,
    deadline: Instant,
}

/// A close handshake in progress (ours or the client's), or a Close frame
/// being flushed; ends when the client confirms or at `deadline`.
struct Closing {
    ws: WebSocket<Rewound>,
    deadline: Instant,
}

/// The upgrade callback: routes the request target, or refuses it with the
/// HTTP error Binance gives.
struct Upgrade {
    route: Rc<Cell<Option<Route>>>,
    /// Turned on with a refusal, so the TLS side closes cleanly after it.
    clean_close: Option<Arc<AtomicBool>>,
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
                if let Some(flag) = &self.clean_close {
                    flag.store(true, Ordering::Relaxed);
                }
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
    /// A freshly accepted connection, waiting for its request.
    pub fn accept(transport: Transport, now: Instant) -> Self {
        Connection { state: State::Http(Box::new(HttpConn::new(transport, deadline(now, HANDSHAKE_TIMEOUT)))) }
    }

    /// Where an HTTP step leads: on to the WebSocket handshake (driven at
    /// once: the request has already arrived, and with edge-triggered
    /// readiness nothing else would drive it), or to the end.
    fn after_http(step: Step, ctx: &mut Ctx<'_>) -> State {
        match step {
            Step::Stay(h) => State::Http(h),
            Step::Upgrade(transport, unread) => {
                let route = Rc::new(Cell::new(None));
                let upgrade = Upgrade { route: Rc::clone(&route), clean_close: transport.clean_close() };
                let mid = ServerHandshake::start(Rewound::new(transport, unread), upgrade, Some(websocket_config()));
                let deadline = deadline(ctx.now, HANDSHAKE_TIMEOUT);
                match mid.handshake() {
                    Ok(ws) => Self::opened(ws, &route, ctx),
                    Err(e) => Self::handshake_error(e, route, deadline, ctx),
                }
            }
            Step::Done => {
                ctx.stats.rest_requests += 1;
                State::Closed
            }
            Step::Failed => {
                ctx.stats.handshake_failures += 1;
                State::Closed
            }
        }
    }

    fn rest_ctx<'a>(ctx: &'a mut Ctx<'_>) -> RestCtx<'a> {
        RestCtx { token: ctx.token, now: ctx.now, rest: ctx.rest }
    }

    /// The market's answer to this connection's snapshot query.
    pub fn on_snapshot(&mut self, query: &SnapshotQuery, answer: SnapshotAnswer, ctx: &mut Ctx<'_>) {
        self.state = match std::mem::replace(&mut self.state, State::Closed) {
            State::Http(h) => {
                let step = h.on_snapshot(query, answer, &mut Self::rest_ctx(ctx));
                Self::after_http(step, ctx)
            }
            other => other,
        };
    }

    /// The socket is ready: read what arrived, write what waits.
    pub fn on_ready(&mut self, writable: bool, ctx: &mut Ctx<'_>) {
        self.state = match std::mem::replace(&mut self.state, State::Closed) {
            State::Http(h) => {
                let step = h.drive(&mut Self::rest_ctx(ctx));
                Self::after_http(step, ctx)
            }
            State::Handshaking(h) => Self::handshake(*h, ctx),
            State::Open(mut s) => {
                let result = s.on_ready(writable, ctx);
                Self::after(s, result, ctx)
            }
            State::Closing(c) => c.drive(ctx.now),
            State::Closed => State::Closed,
        };
    }

    /// Time-driven work: pings, the pong deadline, fault deadlines, timeouts.
    pub fn on_timer(&mut self, ctx: &mut Ctx<'_>) {
        self.state = match std::mem::replace(&mut self.state, State::Closed) {
            State::Http(h) => {
                let step = h.on_timer(&mut Self::rest_ctx(ctx));
                Self::after_http(step, ctx)
            }
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
        self.state = match std::mem::replace(&mut self.state, State::Closed) {
            State::Open(s) => Self::after(s, Err(End::TooSlow), ctx),
            other => other,
        };
    }

    /// Queues a market frame for this client, if it takes data. The caller
    /// checks [`Self::is_full`] first: the queue's bound is enforced there.
    pub fn enqueue(&mut self, frame: &Arc<Frame>) {
        if let State::Open(s) = &mut self.state {
            s.enqueue(frame);
        }
    }

    /// True when the client's queue is at capacity and it still takes data.
    pub fn is_full(&self, cap: usize) -> bool {
        matches!(&self.state, State::Open(s) if s.is_full(cap))
    }

    /// Notes that this client is holding the market back (`Rate::Max`).
    pub fn mark_full(&mut self, now: Instant) {
        if let State::Open(s) = &mut self.state {
            s.mark_full(now);
        }
    }

    /// True when queued data could be written right now.
    pub fn needs_pump(&self) -> bool {
        matches!(&self.state, State::Open(s) if s.needs_pump())
    }

    /// The next instant [`Self::on_timer`] has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Http(h) => h.next_deadline(),
            State::Handshaking(h) => Some(h.deadline),
            State::Open(s) => Some(s.next_deadline()),
            State::Closing(c) => Some(c.deadline),
            State::Closed => None,
        }
    }

    /// True once the connection is over; dropping it closes the socket.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Ends the connection now (the simulator is stopping).
    pub fn close_now(&mut self, ctx: &mut Ctx<'_>) {
        if let State::Open(mut s) = std::mem::replace(&mut self.state, State::Closed) {
            s.unsubscribe_all(ctx);
            let _ = s.into_ws().close(Some(CloseFrame { code: CloseCode::Away, reason: "simulator stopping".into() }));
        }
    }

    fn handshake(h: Handshake, ctx: &mut Ctx<'_>) -> State {
        let Handshake { mid, route, deadline } = h;
        match mid.handshake() {
            Ok(ws) => Self::opened(ws, &route, ctx),
            Err(e) => Self::handshake_error(e, route, deadline, ctx),
        }
    }

    /// A completed upgrade opens its session.
    fn opened(ws: WebSocket<Rewound>, route: &Rc<Cell<Option<Route>>>, ctx: &mut Ctx<'_>) -> State {
        let route = route.take().unwrap_or(Route { combined: true, streams: Vec::new() });
        let (s, result) = Session::open(ws, &route, ctx);
        Self::after(s, result, ctx)
    }

    /// An upgrade that is not complete yet, refused, or failed.
    fn handshake_error(
        e: HandshakeError<ServerHandshake<Rewound, Upgrade>>,
        route: Rc<Cell<Option<Route>>>,
        deadline: Instant,
        ctx: &mut Ctx<'_>,
    ) -> State {
        match e {
            HandshakeError::Interrupted(mid) => State::Handshaking(Box::new(Handshake { mid, route, deadline })),
            HandshakeError::Failure(tungstenite::Error::Http(resp)) => {
                log::debug!("simulator: upgrade refused with {}", resp.status());
                ctx.stats.upgrades_refused += 1;
                State::Closed
            }
            HandshakeError::Failure(e) => {
                log::debug!("simulator: handshake failed: {}", crate::sanitize::escape_controls(&e.to_string()));
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
        let mut ws = s.into_ws();
        let closing = |ws, now| State::Closing(Box::new(Closing { ws, deadline: deadline(now, CLOSE_TIMEOUT) }));
        match end {
            End::ClientClosing => {
                ctx.stats.client_disconnects += 1;
                Closing { ws, deadline: deadline(ctx.now, CLOSE_TIMEOUT) }.drive(ctx.now)
            }
            End::Gone => {
                ctx.stats.client_disconnects += 1;
                State::Closed
            }
            End::ProtocolError(e) => {
                log::debug!(
                    "simulator: closing a client that broke the protocol: {}",
                    crate::sanitize::escape_controls(&e.to_string())
                );
                ctx.stats.client_errors += 1;
                State::Closed
            }
            End::PongTimeout => {
                ctx.stats.dropped_no_pong += 1;
                let _ = ws.close(Some(CloseFrame { code: CloseCode::Policy, reason: "pong timeout".into() }));
                State::Closed
            }
            End::TooSlow => {
                ctx.stats.dropped_slow += 1;
                let _ = ws.close(Some(CloseFrame { code: CloseCode::Policy, reason: "client too slow".into() }));
                State::Closed
            }
            End::Reset => {
                ctx.stats.fault_resets += 1;
                if let Err(e) = ws.get_mut().transport_mut().set_reset_on_close() {
                    log::warn!("simulator: cannot set SO_LINGER for the drop_after reset: {e}");
                }
                State::Closed
            }
            End::ShutdownClose => {
                let frame = CloseFrame { code: CloseCode::Away, reason: "server shutdown".into() };
                match ws.close(Some(frame)) {
                    Ok(()) => closing(ws, ctx.now),
                    Err(e) if would_block(&e) => closing(ws, ctx.now),
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
