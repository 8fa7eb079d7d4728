//! The network thread: one mio loop that accepts clients, runs every
//! connection's state machine, and fans each market frame out to the queues of
//! its subscribers, all in one iteration, so simultaneous clients see the same
//! frames at the same time.
//!
//! Sockets are registered edge-triggered for both directions; a connection
//! reads until `WouldBlock` and writes until its queue is empty or the socket
//! is full, and then waits for the next event.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use rustls::{ServerConfig, ServerConnection};

use super::connection::{ConnConfig, Connection, Ctx};
use super::error::SimError;
use super::frame::Frame;
use super::market::{MarketCtl, MarketEvent};
use super::rest::RestSide;
use super::stats::SimStats;
use super::streams::StreamNames;
use super::subscriptions::Subscriptions;
use super::transport::Transport;

pub const LISTENER: Token = Token(0);
pub const WAKER: Token = Token(1);
const FIRST_CLIENT: usize = 2;
/// Market batches taken per loop iteration, so sockets and timers keep their turns.
const INTAKE_BATCHES: usize = 16;

/// Requests from the [`RunningSimulator`](super::RunningSimulator) handle.
pub enum Command {
    Stats(Sender<SimStats>),
    Stop,
}

/// What the network thread is built from (all `Send`; the connections, which
/// are not, are created on the thread).
pub struct ServerParts {
    pub poll: Poll,
    pub listener: TcpListener,
    pub tls: Option<Arc<ServerConfig>>,
    pub cfg: ConnConfig,
    /// `Rate::Max`: a full client queue holds the market back instead of
    /// dropping the client.
    pub max_rate: bool,
    pub names: StreamNames,
    pub market_ctl: Sender<MarketCtl>,
    pub market: Receiver<MarketEvent>,
    pub rest: RestSide,
    pub commands: Receiver<Command>,
    /// Where the final stats are left for the handle once the loop ends.
    pub published: Arc<Mutex<SimStats>>,
}

pub struct Server {
    poll: Poll,
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    cfg: ConnConfig,
    max_rate: bool,
    conns: HashMap<Token, Connection>,
    next_token: usize,
    subs: Subscriptions,
    rest: RestSide,
    stats: SimStats,
    market: Receiver<MarketEvent>,
    commands: Receiver<Command>,
    /// Frames received from the market, not yet fanned out.
    backlog: VecDeque<Arc<Frame>>,
    /// Subscribers of the frame being fanned out (reused, never shrunk).
    scratch: Vec<Token>,
    published: Arc<Mutex<SimStats>>,
}

impl Server {
    pub fn new(parts: ServerParts) -> Self {
        Server {
            poll: parts.poll,
            listener: parts.listener,
            tls: parts.tls,
            cfg: parts.cfg,
            max_rate: parts.max_rate,
            conns: HashMap::new(),
            next_token: FIRST_CLIENT,
            subs: Subscriptions::new(parts.names, parts.market_ctl),
            rest: parts.rest,
            stats: SimStats::default(),
            market: parts.market,
            commands: parts.commands,
            backlog: VecDeque::new(),
            scratch: Vec::new(),
            published: parts.published,
        }
    }

    /// Runs until told to stop; the final stats on a clean stop.
    pub fn run(mut self) -> Result<SimStats, SimError> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                self.close_all(Instant::now());
                return Err(SimError::EventLoop(e));
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(now),
                    WAKER => {}
                    token => self.ready(token, event.is_writable(), now),
                }
            }
            if !self.commands() {
                return Ok(self.close_all(now));
            }
            self.intake(now);
            self.pump_all(now);
            self.timers(now);
            self.conns.retain(|_, c| !c.is_closed());
        }
    }

    /// How long the poll may sleep: not at all while work is waiting,
    /// otherwise until the earliest connection deadline.
    fn timeout(&self, now: Instant) -> Option<Duration> {
        let market_waiting = if self.backlog.is_empty() { !self.market.is_empty() } else { !self.backlog_blocked() };
        if market_waiting || self.conns.values().any(Connection::needs_pump) {
            return Some(Duration::ZERO);
        }
        self.conns.values().filter_map(Connection::next_deadline).min().map(|d| d.saturating_duration_since(now))
    }

    fn accept(&mut self, now: Instant) {
        loop {
            let (mut sock, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("simulator: accept failed: {e}");
                    return;
                }
            };
            self.stats.connections_accepted += 1;
            log::debug!("simulator: connection from {peer}");
            if let Err(e) = sock.set_nodelay(true) {
                log::debug!("simulator: TCP_NODELAY for {peer}: {e}");
            }
            let token = Token(self.next_token);
            self.next_token += 1;
            if let Err(e) = self.poll.registry().register(&mut sock, token, Interest::READABLE | Interest::WRITABLE) {
                log::warn!("simulator: cannot watch the connection from {peer}: {e}");
                continue;
            }
            let transport = match &self.tls {
                None => Transport::Plain(sock),
                Some(config) => match ServerConnection::new(Arc::clone(config)) {
                    Ok(conn) => Transport::tls(conn, sock),
                    Err(e) => {
                        log::warn!("simulator: TLS session for {peer}: {e}");
                        continue;
                    }
                },
            };
            self.conns.insert(token, Connection::accept(transport, now));
        }
    }

    fn ready(&mut self, token: Token, writable: bool, now: Instant) {
        if let Some(conn) = self.conns.get_mut(&token) {
            let mut ctx =
                Ctx { token, now, cfg: &self.cfg, stats: &mut self.stats, subs: &mut self.subs, rest: &mut self.rest };
            conn.on_ready(writable, &mut ctx);
        }
    }

    /// Answers the handle; false when told to stop (or the handle is gone).
    fn commands(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Stats(reply)) => {
                    let _ = reply.send(self.snapshot());
                }
                Ok(Command::Stop) | Err(TryRecvError::Disconnected) => return false,
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    /// Takes market batches and fans them out, as far as client queues allow.
    fn intake(&mut self, now: Instant) {
        for _ in 0..INTAKE_BATCHES {
            if !self.fan_out(now) {
                return;
            }
            match self.market.try_recv() {
                Ok(MarketEvent::Frames(batch)) => {
                    self.stats.market_frames += batch.len() as u64;
                    self.backlog.extend(batch);
                }
                Ok(MarketEvent::Finished) => self.stats.recording_finished = true,
                Ok(MarketEvent::Failed(e)) => self.stats.market_error = Some(e),
                Ok(MarketEvent::Snapshot(query, answer)) => {
                    let token = query.token;
                    if let Some(conn) = self.conns.get_mut(&token) {
                        let mut ctx = Ctx {
                            token,
                            now,
                            cfg: &self.cfg,
                            stats: &mut self.stats,
                            subs: &mut self.subs,
                            rest: &mut self.rest,
                        };
                        conn.on_snapshot(&query, answer, &mut ctx);
                    }
                }
                Err(_) => break,
            }
        }
        self.fan_out(now);
    }

    /// True when the next frame waits for a full client (`Rate::Max`).
    fn backlog_blocked(&self) -> bool {
        let cap = self.cfg.queue_cap;
        self.max_rate
            && self.backlog.front().is_some_and(|frame| {
                self.subs.subscribers(frame.stream).iter().any(|t| self.conns.get(t).is_some_and(|c| c.is_full(cap)))
            })
    }

    /// Queues backlog frames for their subscribers; false if a full client
    /// holds the rest back. A client whose queue is full is first given what
    /// its socket takes; if it is still full, then at a paced rate it is
    /// dropped (the market never waits for anyone), and at `Rate::Max` the
    /// market waits for it, up to [`MAX_RATE_STALL`](super::MAX_RATE_STALL).
    fn fan_out(&mut self, now: Instant) -> bool {
        let cap = self.cfg.queue_cap;
        let mut blocked = false;
        while let Some(frame) = self.backlog.front().cloned() {
            self.scratch.clear();
            self.scratch.extend_from_slice(self.subs.subscribers(frame.stream));
            for &token in &self.scratch {
                let Some(conn) = self.conns.get_mut(&token).filter(|c| c.is_full(cap)) else { continue };
                let mut ctx = Ctx {
                    token,
                    now,
                    cfg: &self.cfg,
                    stats: &mut self.stats,
                    subs: &mut self.subs,
                    rest: &mut self.rest,
                };
                conn.pump(&mut ctx);
                if !conn.is_full(cap) {
                    continue;
                }
                if self.max_rate {
                    conn.mark_full(now);
                    blocked = true;
                } else {
                    conn.drop_slow(&mut ctx);
                }
            }
            if blocked {
                break;
            }
            for token in &self.scratch {
                if let Some(conn) = self.conns.get_mut(token) {
                    conn.enqueue(&frame);
                }
            }
            self.backlog.pop_front();
        }
        !blocked
    }

    fn pump_all(&mut self, now: Instant) {
        for (&token, conn) in self.conns.iter_mut().filter(|(_, c)| c.needs_pump()) {
            let mut ctx =
                Ctx { token, now, cfg: &self.cfg, stats: &mut self.stats, subs: &mut self.subs, rest: &mut self.rest };
            conn.pump(&mut ctx);
        }
    }

    fn timers(&mut self, now: Instant) {
        for (&token, conn) in self.conns.iter_mut() {
            if conn.next_deadline().is_some_and(|d| d <= now) {
                let mut ctx = Ctx {
                    token,
                    now,
                    cfg: &self.cfg,
                    stats: &mut self.stats,
                    subs: &mut self.subs,
                    rest: &mut self.rest,
                };
                conn.on_timer(&mut ctx);
            }
        }
    }

    fn snapshot(&self) -> SimStats {
        let mut stats = self.stats.clone();
        stats.connections_open = self.conns.values().filter(|c| !c.is_closed()).count() as u64;
        stats.data_frames_by_stream = self.subs.sent_by_name().collect();
        stats
    }

    /// Closes every connection and leaves the final stats for the handle.
    fn close_all(&mut self, now: Instant) -> SimStats {
        let final_stats = self.snapshot();
        for (&token, conn) in self.conns.iter_mut() {
            let mut ctx =
                Ctx { token, now, cfg: &self.cfg, stats: &mut self.stats, subs: &mut self.subs, rest: &mut self.rest };
            conn.close_now(&mut ctx);
        }
        self.conns.clear();
        *self.published.lock().unwrap_or_else(PoisonError::into_inner) = final_stats.clone();
        final_stats
    }
}
