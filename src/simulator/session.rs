//! An open WebSocket receiving market data: its subscriptions and requests,
//! its bounded queue, its keepalive and its faults.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use tungstenite::{Message, WebSocket};

use super::connection::Ctx;
use super::faults::Due;
use super::frame::{Frame, garbage, server_shutdown, unix_millis};
use super::keepalive::{Keepalive, Pong};
use super::requests::{self, Request as ClientRequest, RequestError};
use super::route::Route;
use super::streams::{MAX_STREAMS_PER_CONNECTION, StreamId};
use super::transport::Rewound;
use super::{MAX_RATE_STALL, deadline};

/// Data frames written to one client per pump, so one fast client cannot
/// starve the others of the loop.
const PUMP_BUDGET: usize = 4096;

/// An open WebSocket receiving market data.
pub struct Session {
    ws: WebSocket<Rewound>,
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
    /// Diff-depth events taken from the queue, sent or skipped (`gap_every`).
    diffs_seen: u64,
    /// False once a stall or reset fault stopped data.
    data_on: bool,
    /// Reset the connection once everything written has left.
    reset_pending: bool,
    /// When the `serverShutdown` grace period ends.
    close_at: Option<Instant>,
    keepalive: Keepalive,
}

/// Why a session ends.
pub enum End {
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
    /// A tungstenite error other than `WouldBlock`: the peer went away, or
    /// broke the protocol.
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

/// The socket cannot take or give more now; not an error.
pub fn would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if io.kind() == io::ErrorKind::WouldBlock)
}

impl Session {
    /// A session for a completed upgrade: subscribes the URL's streams,
    /// applies the faults due at zero frames, and serves what the client may
    /// already have sent (with edge-triggered readiness nothing else would
    /// tell us about it).
    pub fn open(ws: WebSocket<Rewound>, route: &Route, ctx: &mut Ctx<'_>) -> (Box<Self>, Result<(), End>) {
        let mut s = Box::new(Session::new(ws, route.combined, ctx));
        let ids: Vec<StreamId> = route.streams.iter().map(|name| ctx.subs.id(name)).collect();
        s.subscribe(&ids, ctx);
        let result = s.apply_faults(ctx.cfg.faults.due(0), None, ctx).and_then(|()| s.on_ready(false, ctx));
        (s, result)
    }

    fn new(ws: WebSocket<Rewound>, combined: bool, ctx: &Ctx<'_>) -> Self {
        Session {
            ws,
            combined,
            streams: Vec::new(),
            queue: VecDeque::new(),
            full_since: None,
            write_blocked: false,
            data_sent: 0,
            diffs_seen: 0,
            data_on: true,
            reset_pending: false,
            close_at: None,
            keepalive: Keepalive::new(ctx.cfg.ping_interval, ctx.cfg.pong_timeout, ctx.now),
        }
    }

    /// The socket is ready: read what arrived, write what waits.
    pub fn on_ready(&mut self, writable: bool, ctx: &mut Ctx<'_>) -> Result<(), End> {
        if writable {
            self.write_blocked = false;
        }
        self.read_all(ctx)?;
        self.pump(ctx)
    }

    /// Queues a market frame, if this client takes data. The caller checks
    /// [`Self::is_full`] first: the queue's bound is enforced there.
    pub fn enqueue(&mut self, frame: &Arc<Frame>) {
        if self.data_on {
            self.queue.push_back(Arc::clone(frame));
        }
    }

    /// True when the queue is at capacity and the client still takes data.
    pub fn is_full(&self, cap: usize) -> bool {
        self.data_on && self.queue.len() >= cap
    }

    /// Notes that this client is holding the market back (`Rate::Max`).
    pub fn mark_full(&mut self, now: Instant) {
        self.full_since.get_or_insert(now);
    }

    /// True when queued data could be written right now.
    pub fn needs_pump(&self) -> bool {
        self.data_on && !self.write_blocked && !self.queue.is_empty()
    }

    /// The next instant [`Self::on_timer`] has work.
    pub fn next_deadline(&self) -> Instant {
        let mut next = self.keepalive.next_deadline();
        if let Some(t) = self.close_at {
            next = next.min(t);
        }
        if let Some(t) = self.full_since {
            next = next.min(deadline(t, MAX_RATE_STALL));
        }
        next
    }

    /// The WebSocket, for the close that follows the session.
    pub fn into_ws(self) -> WebSocket<Rewound> {
        self.ws
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

    pub fn unsubscribe_all(&mut self, ctx: &mut Ctx<'_>) {
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
    pub fn pump(&mut self, ctx: &mut Ctx<'_>) -> Result<(), End> {
        if self.write_blocked {
            return Ok(());
        }
        let mut budget = PUMP_BUDGET;
        while self.data_on && budget > 0 && !self.write_blocked {
            let Some(frame) = self.queue.pop_front() else { break };
            budget -= 1;
            if frame.diff && self.skips_diff(ctx) {
                continue;
            }
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

    /// Counts a diff-depth event; true when the `gap_every` fault skips it,
    /// which the client sees as `U` > its previous `u` + 1.
    fn skips_diff(&mut self, ctx: &mut Ctx<'_>) -> bool {
        self.diffs_seen += 1;
        let skip = ctx.cfg.gap_every.is_some_and(|n| self.diffs_seen.is_multiple_of(n));
        if skip {
            ctx.stats.fault_gaps += 1;
        }
        skip
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
            self.close_at = Some(deadline(ctx.now, ctx.cfg.shutdown_grace));
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
    pub fn on_timer(&mut self, ctx: &mut Ctx<'_>) -> Result<(), End> {
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
