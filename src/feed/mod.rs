//! The feed stage: transport only.
//!
//! One `mio::Poll` owns every feed connection. Each iteration: poll (blocking
//! until the next timer deadline, or a zero timeout with `busy_poll`), read
//! every ready socket until `WouldBlock`, hand each complete message to the
//! [`FrameHandler`], then check the timers: connect/handshake timeouts, pongs
//! that waited for the pong interval, the stale-feed watchdog, 24 h rotation,
//! reconnect backoff. Nothing here blocks but the poll; DNS runs on a helper
//! thread that wakes the poll when it is done.
//!
//! The feed knows sockets, TLS, WebSocket framing, connection groups and
//! their supervision, and nothing of what a message means: the handler
//! (the hot side, `crate::hot`) decodes, evaluates, records and measures.

pub mod conn;
mod group;
mod handler;
pub mod limiter;
pub mod pong;
pub mod retry_after;
pub mod stream;
pub mod tls;

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::{Events, Poll, Token, Waker};

use crate::backoff::Backoff;
use crate::prng::SplitMix64;
use crate::units::{UnixNanos, nanos};

use conn::{ConnError, Connection, Endpoint};
use group::{Group, Serving, Streak};
use limiter::AttemptLimiter;
use retry_after::MAX_RETRY_AFTER;
use stream::{ReadClock, interrupted};

pub use conn::FrameKind;
pub use handler::{Arrival, ConnectionRules, FrameHandler, GroupSpec};

const WAKER: Token = Token(0);
const SIGNALS: Token = Token(1);
/// Connection tokens start here; `Token(CONN_BASE + i)` is slot `i`.
const CONN_BASE: usize = 2;

/// Reconnect backoff: 100 ms doubling to a 30 s cap, as the product promises.
const RECONNECT_BASE: Duration = Duration::from_millis(100);
const RECONNECT_CAP: Duration = Duration::from_secs(30);
/// A connection that stayed up this long resets the backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);
/// Longest a stopping loop waits for Close handshakes.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// `now + delay` without the panic `Instant + Duration` has on overflow.
/// Delays from the network are capped at [`MAX_RETRY_AFTER`] before they
/// get here, so no real clock overflows; if one did, the attempt is now.
fn later(now: Instant, delay: Duration) -> Instant {
    now.checked_add(delay).unwrap_or(now)
}

/// The wall-clock time `delay` from now, RFC 3339 to the second, for people.
fn wall_clock_after(delay: Duration) -> String {
    let at = UnixNanos::now().0.saturating_add(nanos(delay)) / 1_000_000_000;
    i64::try_from(at)
        .ok()
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("Unix time {at}"))
}

/// Feed settings, validated.
#[derive(Clone)]
pub struct FeedConfig {
    /// The `/stream` endpoint (`binance.ws_url`).
    pub ws_url: String,
    pub max_streams_per_connection: usize,
    pub stale_after: Duration,
    pub max_connection_age: Duration,
    pub busy_poll: bool,
    /// Trust for `wss://`.
    pub tls: Arc<rustls::ClientConfig>,
}

/// Why the loop could not run.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("cannot create the event loop: {0}")]
    Poll(#[source] std::io::Error),
    #[error(transparent)]
    Url(#[from] ConnError),
}

/// Feed totals, owned by the hot thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedCounters {
    /// Connection attempts started.
    pub attempts: u64,
    /// WebSocket handshakes completed.
    pub connects: u64,
    /// Connections lost or abandoned (errors, stale, server close), excluding rotations.
    pub disconnects: u64,
    /// Make-before-break rotations completed (age or serverShutdown).
    pub rotations: u64,
    /// Stale-feed watchdog firings.
    pub stale: u64,
}

/// A request for the loop to stop, from another thread.
#[derive(Clone)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl StopHandle {
    /// Asks the loop to close its connections and return.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }
}

/// A connection in its slot, with the group it serves and the attempt it
/// belongs to (a late DNS answer for an older attempt is ignored).
struct Slot {
    group: usize,
    attempt: u64,
    conn: Connection,
}

/// A DNS answer coming back from the resolver thread.
struct DnsAnswer {
    slot: usize,
    attempt: u64,
    result: Result<Vec<SocketAddr>, String>,
}

/// The hot thread's transport loop. Owns the poll and the connections, and
/// hands every message to `F`.
pub struct FeedLoop<F: FrameHandler> {
    poll: Poll,
    config: FeedConfig,
    handler: F,
    conns: Vec<Option<Slot>>,
    groups: Vec<Group>,
    rules: ConnectionRules,
    limiter: AttemptLimiter,
    limiter_logged: bool,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    dns_tx: Sender<DnsAnswer>,
    dns_rx: Receiver<DnsAnswer>,
    signals: Option<signal_hook_mio::v1_0::Signals>,
    next_attempt_id: u64,
    counters: FeedCounters,
    /// When the current poll returned: the start of `wire_to_decision`.
    poll_at: Instant,
    /// Socket-read time since the current poll returned, shared with every
    /// connection's socket.
    read_clock: ReadClock,
    /// Connections that used up their read budget and must be read again
    /// (no new readiness edge will come for what is already buffered).
    again: Vec<usize>,
    /// Scratch for swapping with `again` while serving it.
    serving: Vec<usize>,
}

impl<F: FrameHandler> FeedLoop<F> {
    /// Builds the loop for `groups` (one connection each, two while
    /// rotating); nothing connects yet.
    pub fn new(
        config: FeedConfig,
        groups: &[GroupSpec],
        rules: ConnectionRules,
        handler: F,
    ) -> Result<Self, FeedError> {
        let poll = Poll::new().map_err(FeedError::Poll)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(FeedError::Poll)?);
        let seed = UnixNanos::now().0;
        let groups = groups
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                Ok(Group {
                    streams: spec.streams,
                    endpoint: Endpoint::parse(&spec.url)?,
                    serving: Serving::Down,
                    backoff: Backoff::new(
                        RECONNECT_BASE,
                        RECONNECT_CAP,
                        SplitMix64::new(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                    ),
                    next_attempt: Some(Instant::now()),
                    streak: None,
                    rotate: None,
                    standby_retry_at: None,
                })
            })
            .collect::<Result<Vec<_>, ConnError>>()?;
        let (dns_tx, dns_rx) = crossbeam_channel::unbounded();
        Ok(FeedLoop {
            poll,
            config,
            handler,
            conns: Vec::new(),
            groups,
            rules,
            limiter: AttemptLimiter::new(rules.max_attempts, rules.attempt_window),
            limiter_logged: false,
            waker,
            stop: Arc::new(AtomicBool::new(false)),
            dns_tx,
            dns_rx,
            signals: None,
            next_attempt_id: 0,
            counters: FeedCounters::default(),
            poll_at: Instant::now(),
            read_clock: ReadClock::default(),
            again: Vec::with_capacity(64),
            serving: Vec::with_capacity(64),
        })
    }

    /// The handler, e.g. to equip it before the loop runs.
    pub fn handler_mut(&mut self) -> &mut F {
        &mut self.handler
    }

    /// The poll's waker: another thread that has something for the handler
    /// wakes the loop with it ([`FrameHandler::on_wake`]).
    pub fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// A handle that stops the loop from any thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle { flag: Arc::clone(&self.stop), waker: Arc::clone(&self.waker) }
    }

    /// Makes SIGINT and SIGTERM stop the loop (for the CLI; tests use the
    /// [`StopHandle`] instead).
    pub fn handle_signals(&mut self) -> std::io::Result<()> {
        let mut signals = signal_hook_mio::v1_0::Signals::new([libc::SIGINT, libc::SIGTERM])?;
        self.poll.registry().register(&mut signals, SIGNALS, mio::Interest::READABLE)?;
        self.signals = Some(signals);
        Ok(())
    }

    /// Number of connections the streams are split across.
    pub fn connection_groups(&self) -> usize {
        self.groups.len()
    }

    /// Runs until stopped; closes every connection cleanly before returning
    /// the handler (so the caller can read its counters and drain it).
    pub fn run(mut self) -> (F, FeedCounters) {
        let mut events = Events::with_capacity(256);
        let mut stopping: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let timeout = if self.config.busy_poll || !self.again.is_empty() {
                Some(Duration::ZERO)
            } else {
                self.next_deadline(now, stopping)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if interrupted(&e) {
                    continue;
                }
                log::error!("FEED | poll failed: {e}; stopping");
                break;
            }
            let now = Instant::now();
            self.poll_at = now;
            self.read_clock.reset();
            let recv = UnixNanos::now();
            for event in events.iter() {
                match event.token() {
                    WAKER => {
                        self.on_dns(now);
                        self.handler.on_wake();
                    }
                    SIGNALS => {
                        if let Some(s) = &mut self.signals {
                            for sig in s.pending() {
                                log::info!("FEED | signal {sig} received, stopping");
                                self.stop.store(true, Ordering::Release);
                            }
                        }
                    }
                    Token(t) => self.on_conn_ready(t.wrapping_sub(CONN_BASE), now, recv),
                }
            }
            // Connections that still had data after their budget: served
            // again, each frame timed from this iteration's poll.
            std::mem::swap(&mut self.again, &mut self.serving);
            while let Some(slot) = self.serving.pop() {
                self.on_conn_ready(slot, now, recv);
            }
            self.handler.after_batch(now, self.counters);
            if stopping.is_none() && self.stop.load(Ordering::Acquire) {
                stopping = Some(now);
                self.close_all(now);
            }
            match stopping {
                Some(since) => {
                    self.check_conn_deadlines(now);
                    if self.conns.iter().all(Option::is_none) || now.duration_since(since) >= STOP_TIMEOUT {
                        break;
                    }
                }
                None => self.on_timers(now),
            }
        }
        for slot in 0..self.conns.len() {
            self.drop_conn(slot);
        }
        self.handler.on_stop(self.counters);
        (self.handler, self.counters)
    }

    /// Tells the handler how many connections are open.
    fn update_connection_gauge(&mut self) {
        let open = self.conns.iter().flatten().filter(|s| s.conn.is_open()).count();
        self.handler.on_connections_open(open);
    }

    /// The earliest timer deadline, as a poll timeout.
    fn next_deadline(&self, now: Instant, stopping: Option<Instant>) -> Option<Duration> {
        let mut next = stopping.map(|s| s + STOP_TIMEOUT);
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        for Slot { conn: c, .. } in self.conns.iter().flatten() {
            for t in [c.deadline(), c.pong_due()].into_iter().flatten() {
                consider(t);
            }
            if c.is_open() {
                consider(c.last_data + self.config.stale_after);
                if let Some(opened) = c.opened {
                    consider(opened + self.config.max_connection_age);
                    consider(opened + HEALTHY_AFTER);
                }
            }
        }
        if stopping.is_none() {
            for g in &self.groups {
                for t in [g.next_attempt, g.standby_retry_at].into_iter().flatten() {
                    consider(t);
                }
            }
        }
        if let Some(t) = self.handler.next_due() {
            consider(t);
        }
        // Wake at least once a second: cheap, and bounds any missed edge.
        Some(next.map_or(Duration::from_secs(1), |t| t.saturating_duration_since(now).min(Duration::from_secs(1))))
    }

    fn on_conn_ready(&mut self, slot: usize, now: Instant, recv: UnixNanos) {
        let Some(Some(Slot { group, conn, .. })) = self.conns.get_mut(slot) else { return };
        let group = *group;
        let handler = &mut self.handler;
        let (poll_at, read_clock) = (self.poll_at, &self.read_clock);
        let mut on_frame = |bytes: &[u8]| {
            handler.on_frame(group, bytes, Arrival { recv, poll_at, socket_read_ns: read_clock.nanos() })
        };
        let result = conn.on_ready(self.poll.registry(), now, &mut on_frame);
        let first_data = conn.data_frames > 0;
        let shutdown = conn.shutdown_announced;
        // Capacity covers every slot (see `start_attempt`): never allocates.
        if matches!(result, Ok(p) if p.more) && !self.again.contains(&slot) {
            self.again.push(slot);
        }
        let progress = match result {
            Ok(p) => p,
            Err(e) => {
                self.on_failed(slot, group, e, now);
                return;
            }
        };
        if progress.opened {
            self.on_opened(slot, group, now);
        }
        if progress.closed {
            self.on_closed(slot, group, now);
            return;
        }
        let Some(g) = self.groups.get_mut(group) else { return };
        if g.serving.standby() == Some(slot) && first_data {
            // Make-before-break: the new connection delivers; retire the old.
            if let Some(old) = g.serving.promote_standby()
                && let Some(Some(Slot { conn: c, .. })) = self.conns.get_mut(old)
            {
                c.close(self.poll.registry(), now);
            }
            self.counters.rotations += 1;
            log::info!(
                "FEED | rotation complete ({}) | group={group} | new connection serving",
                g.rotate.take().unwrap_or("rotation")
            );
        } else if g.serving.active() == Some(slot) && shutdown && g.rotate.is_none() {
            log::warn!("FEED | serverShutdown announced | group={group} | opening a replacement before the cut");
            g.rotate = Some("serverShutdown");
            self.maybe_rotate(group, now);
        }
    }

    fn on_opened(&mut self, slot: usize, group: usize, now: Instant) {
        self.counters.connects += 1;
        self.update_connection_gauge();
        self.handler.on_feed_up(group);
        let Some(g) = self.groups.get_mut(group) else { return };
        let Some(Some(Slot { conn: c, .. })) = self.conns.get(slot) else { return };
        let took = now.duration_since(c.started);
        match g.streak.take() {
            Some(Streak { kind, failures: n }) => log::info!(
                "FEED | connected | group={group} | streams={} | handshake={}ms | after {n} failed attempt(s) ({kind})",
                g.streams,
                took.as_millis()
            ),
            None => log::info!(
                "FEED | connected | group={group} | streams={} | handshake={}ms",
                g.streams,
                took.as_millis()
            ),
        }
        if g.serving.standby() == Some(slot) {
            self.handler.on_overlap(group, true);
        }
    }

    fn on_closed(&mut self, slot: usize, group: usize, now: Instant) {
        let reason = self
            .conns
            .get(slot)
            .and_then(|c| c.as_ref())
            .and_then(|s| s.conn.close_received.clone())
            .unwrap_or_else(|| "no Close frame".into());
        let was_serving = self.groups.get(group).is_some_and(|g| g.serving.includes(slot));
        self.drop_conn(slot);
        if !was_serving || self.stop.load(Ordering::Acquire) {
            self.after_retired(group);
            return;
        }
        log::warn!("FEED | disconnected by server | group={group} | {reason} | reconnecting");
        self.counters.disconnects += 1;
        self.detach(slot, group, now, None, true);
    }

    fn on_failed(&mut self, slot: usize, group: usize, err: ConnError, now: Instant) {
        let was_serving = self.groups.get(group).is_some_and(|g| g.serving.includes(slot));
        let was_open = self.conns.get(slot).and_then(|c| c.as_ref()).is_some_and(|s| s.conn.opened.is_some());
        self.drop_conn(slot);
        if !was_serving {
            // An old connection failing while it was being retired.
            self.after_retired(group);
            return;
        }
        if matches!(err, ConnError::Stale(_)) {
            self.counters.stale += 1;
        }
        self.counters.disconnects += 1;
        self.detach(slot, group, now, Some(err), was_open);
    }

    /// A serving connection is gone: schedule the next attempt with backoff,
    /// logging the first failure of a streak in full and later ones quietly.
    fn detach(&mut self, slot: usize, group: usize, now: Instant, err: Option<ConnError>, was_open: bool) {
        let Some(g) = self.groups.get_mut(group) else { return };
        let was_active = g.serving.remove(slot);
        let mut delay = g.backoff.next_delay();
        // Retry-After comes from the network: capped before any arithmetic.
        let mut capped = None;
        if let Some(ConnError::Http { retry_after: Some(ra), .. }) = &err {
            if *ra > MAX_RETRY_AFTER {
                capped = Some(*ra);
            }
            delay = delay.max((*ra).min(MAX_RETRY_AFTER));
        }
        let kind = err.as_ref().map_or("closed", ConnError::kind);
        let reason = err.as_ref().map_or_else(|| "server closed the connection".to_string(), ToString::to_string);
        if let Some(asked) = capped {
            log::warn!(
                "FEED | group={group} | the server asked to wait {} s (Retry-After), longer than Binance's longest ban; capped at 3 days",
                asked.as_secs()
            );
        }
        match &mut g.streak {
            Some(Streak { failures: n, .. }) => {
                *n += 1;
                log::debug!(
                    "FEED | attempt failed again | group={group} | {reason} | retry in {}ms",
                    delay.as_millis()
                );
            }
            None => {
                g.streak = Some(Streak { kind, failures: 1 });
                log::warn!(
                    "FEED | {} | group={group} | {reason} | retry in {}ms (further failures of this streak are logged at debug level)",
                    match (was_open, was_active) {
                        (true, true) => "connection lost",
                        (true, false) => "replacement connection lost",
                        (false, _) => "connect attempt failed",
                    },
                    delay.as_millis()
                );
            }
        }
        let at = later(now, delay);
        if g.serving == Serving::Down {
            g.next_attempt = Some(at);
            let mut why = format!("{reason}; next attempt at {}", wall_clock_after(delay));
            if capped.is_some() {
                why.push_str(" (Retry-After capped at 3 days, Binance's longest ban)");
            }
            self.handler.on_feed_down(group, &why);
        } else if !was_active {
            // The replacement failed; the old connection still serves and
            // the rotation is retried after the backoff.
            g.standby_retry_at = Some(at);
        }
        self.handler.on_overlap(group, false);
    }

    /// After a retired connection is gone, the group has one connection again.
    fn after_retired(&mut self, group: usize) {
        if let Some(g) = self.groups.get(group)
            && g.serving.standby().is_none()
        {
            self.handler.on_overlap(group, false);
        }
    }

    fn on_timers(&mut self, now: Instant) {
        self.check_conn_deadlines(now);
        self.send_due_pongs(now);
        for group in 0..self.groups.len() {
            let Some(g) = self.groups.get_mut(group) else { continue };
            if let Some(slot) = g.serving.active()
                && let Some(Some(Slot { conn: c, .. })) = self.conns.get(slot)
                && c.is_open()
            {
                if now.duration_since(c.last_data) >= self.config.stale_after {
                    let err = ConnError::Stale(self.config.stale_after);
                    self.on_failed(slot, group, err, now);
                    continue;
                }
                if let Some(opened) = c.opened {
                    if now.duration_since(opened) >= HEALTHY_AFTER {
                        g.backoff.reset();
                    }
                    if now.duration_since(opened) >= self.config.max_connection_age && g.rotate.is_none() {
                        g.rotate = Some("connection age");
                    }
                }
                self.maybe_rotate(group, now);
            }
            let Some(g) = self.groups.get_mut(group) else { continue };
            if g.serving == Serving::Down && g.next_attempt.is_some_and(|t| t <= now) {
                g.next_attempt = None;
                if let Some(slot) = self.start_attempt(group, now)
                    && let Some(g) = self.groups.get_mut(group)
                {
                    g.serving.add(slot);
                }
            }
        }
    }

    /// Pongs that waited for the pong interval (see [`pong`]).
    fn send_due_pongs(&mut self, now: Instant) {
        for slot in 0..self.conns.len() {
            let Some(Some(Slot { group, conn: c, .. })) = self.conns.get_mut(slot) else { continue };
            if c.pong_due().is_some_and(|t| t <= now) {
                let group = *group;
                if let Err(e) = c.send_pong(self.poll.registry(), now) {
                    self.on_failed(slot, group, e, now);
                }
            }
        }
    }

    /// Handshake and close timeouts.
    fn check_conn_deadlines(&mut self, now: Instant) {
        for slot in 0..self.conns.len() {
            let Some(Some(Slot { group, conn: c, .. })) = self.conns.get(slot) else { continue };
            let group = *group;
            if let Some(err) = c.check_deadline(now) {
                if c.is_closing() {
                    self.drop_conn(slot);
                    self.after_retired(group);
                } else {
                    self.on_failed(slot, group, err, now);
                }
            }
        }
    }

    /// Starts the replacement connection of a group that wants rotating,
    /// unless one is already under way or a failed one is backing off.
    fn maybe_rotate(&mut self, group: usize, now: Instant) {
        let Some(g) = self.groups.get(group) else { return };
        let Some(reason) = g.rotate else { return };
        if g.serving.standby().is_some() || g.standby_retry_at.is_some_and(|t| t > now) {
            return;
        }
        if let Some(slot) = self.start_attempt(group, now)
            && let Some(g) = self.groups.get_mut(group)
        {
            g.serving.add(slot);
            g.standby_retry_at = None;
            log::info!("FEED | rotating connection ({reason}) | group={group} | make-before-break");
        }
    }

    /// Starts one connection attempt for `group`, if the attempt limiter allows.
    fn start_attempt(&mut self, group: usize, now: Instant) -> Option<usize> {
        if let Some(at) = self.limiter.try_acquire(now) {
            if !self.limiter_logged {
                log::warn!(
                    "FEED | {} connection attempts in {} minutes ({}); next attempt in {} s",
                    self.rules.max_attempts,
                    self.rules.attempt_window.as_secs() / 60,
                    self.rules.limit_name,
                    at.saturating_duration_since(now).as_secs()
                );
                self.limiter_logged = true;
            }
            if let Some(g) = self.groups.get_mut(group) {
                g.next_attempt = Some(at);
            }
            return None;
        }
        self.limiter_logged = false;
        self.counters.attempts += 1;
        let g = self.groups.get(group)?;
        let endpoint = g.endpoint.clone();
        let slot = self.conns.iter().position(Option::is_none).unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        // The re-read lists hold each slot at most once: sized here, at
        // connection time, they never grow on the hot path.
        for list in [&mut self.again, &mut self.serving] {
            list.reserve(self.conns.len().saturating_sub(list.len()));
        }
        let attempt = self.next_attempt_id;
        self.next_attempt_id += 1;
        let tls = endpoint.tls.then(|| Arc::clone(&self.config.tls));
        let mut conn = Connection::new(Token(CONN_BASE + slot), endpoint.clone(), tls, self.read_clock.clone(), now);
        if let Ok(ip) = endpoint.host.parse::<IpAddr>() {
            if let Err(e) = conn.connect(SocketAddr::new(ip, endpoint.port), self.poll.registry()) {
                self.conns[slot] = Some(Slot { group, attempt, conn });
                self.on_failed_start(slot, group, e, now);
                return None;
            }
        } else {
            let (tx, waker) = (self.dns_tx.clone(), Arc::clone(&self.waker));
            let (host, port) = (endpoint.host.clone(), endpoint.port);
            let spawned = std::thread::Builder::new().name("dns".into()).spawn(move || {
                let r =
                    (host.as_str(), port).to_socket_addrs().map(|a| a.collect::<Vec<_>>()).map_err(|e| e.to_string());
                let _ = tx.send(DnsAnswer { slot, attempt, result: r });
                let _ = waker.wake();
            });
            if let Err(e) = spawned {
                self.conns[slot] = Some(Slot { group, attempt, conn });
                let err = ConnError::Dns { host: endpoint.host.clone(), reason: e.to_string() };
                self.on_failed_start(slot, group, err, now);
                return None;
            }
        }
        self.conns[slot] = Some(Slot { group, attempt, conn });
        Some(slot)
    }

    /// A failure before the attempt was recorded as active/standby.
    fn on_failed_start(&mut self, slot: usize, group: usize, err: ConnError, now: Instant) {
        if let Some(g) = self.groups.get_mut(group) {
            g.serving.add(slot);
        }
        self.on_failed(slot, group, err, now);
    }

    fn on_dns(&mut self, now: Instant) {
        while let Ok(DnsAnswer { slot, attempt, result }) = self.dns_rx.try_recv() {
            let Some(Some(Slot { group, attempt: id, conn })) = self.conns.get_mut(slot) else { continue };
            if *id != attempt {
                continue;
            }
            let group = *group;
            let host = conn.endpoint.host.clone();
            let outcome = match result {
                Ok(addrs) => match addrs.into_iter().next() {
                    Some(addr) => conn.connect(addr, self.poll.registry()),
                    None => Err(ConnError::Dns { host, reason: "no addresses".into() }),
                },
                Err(reason) => Err(ConnError::Dns { host, reason }),
            };
            if let Err(e) = outcome {
                self.on_failed(slot, group, e, now);
            }
        }
    }

    fn close_all(&mut self, now: Instant) {
        for slot in 0..self.conns.len() {
            let Some(Some(Slot { conn: c, .. })) = self.conns.get_mut(slot) else { continue };
            if c.is_open() {
                c.close(self.poll.registry(), now);
            } else if !c.is_closing() {
                self.drop_conn(slot);
            }
        }
    }

    fn drop_conn(&mut self, slot: usize) {
        if let Some(entry) = self.conns.get_mut(slot)
            && let Some(Slot { conn: mut c, .. }) = entry.take()
        {
            c.deregister(self.poll.registry());
            self.update_connection_gauge();
        }
    }

    /// Counters so far.
    pub fn counters(&self) -> FeedCounters {
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A handler that keeps what the feed tells it, and nothing else.
    #[derive(Default)]
    struct Collect {
        frames: Vec<(usize, Vec<u8>)>,
        ups: Vec<usize>,
        stopped: bool,
    }

    impl FrameHandler for Collect {
        fn on_frame(&mut self, group: usize, bytes: &[u8], _arrival: Arrival) -> FrameKind {
            self.frames.push((group, bytes.to_vec()));
            FrameKind::Data
        }

        fn on_overlap(&mut self, _group: usize, _on: bool) {}

        fn on_feed_up(&mut self, group: usize) {
            self.ups.push(group);
        }

        fn on_stop(&mut self, _feed: FeedCounters) {
            self.stopped = true;
        }
    }

    fn config() -> FeedConfig {
        FeedConfig {
            ws_url: String::new(),
            max_streams_per_connection: 1024,
            stale_after: Duration::from_secs(30),
            max_connection_age: Duration::from_secs(3600),
            busy_poll: false,
            tls: tls::client_config(None).unwrap(),
        }
    }

    #[test]
    #[allow(clippy::result_large_err)] // tungstenite's callback signature
    fn the_transport_delivers_every_message_in_order_and_answers_pings_without_an_application() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let mut path = String::new();
            let mut ws = tungstenite::accept_hdr(tcp, |req: &tungstenite::handshake::server::Request, resp| {
                path = req.uri().to_string();
                Ok(resp)
            })
            .unwrap();
            ws.send(tungstenite::Message::text("first")).unwrap();
            ws.send(tungstenite::Message::Ping(b"p1".to_vec().into())).unwrap();
            ws.send(tungstenite::Message::binary(b"second".to_vec())).unwrap();
            let pong = loop {
                match ws.read().unwrap() {
                    tungstenite::Message::Pong(p) => break p,
                    _ => continue,
                }
            };
            ws.close(None).unwrap();
            while ws.read().is_ok() {}
            (path, pong.to_vec())
        });
        let groups = [GroupSpec { url: format!("ws://{addr}/any/path?x=1"), streams: 1 }];
        let rules = ConnectionRules { max_attempts: 10, attempt_window: Duration::from_secs(60), limit_name: "test" };
        let feed = FeedLoop::new(config(), &groups, rules, Collect::default()).unwrap();
        let stop = feed.stop_handle();
        let runner = std::thread::spawn(move || feed.run());
        let (path, pong) = server.join().unwrap();
        stop.stop();
        let (handler, counters) = runner.join().unwrap();
        assert_eq!(path, "/any/path?x=1");
        assert_eq!(pong, b"p1");
        assert_eq!(handler.frames, [(0, b"first".to_vec()), (0, b"second".to_vec())]);
        assert_eq!(handler.ups, [0]);
        assert!(handler.stopped);
        assert_eq!(counters.connects, 1);
    }
}
