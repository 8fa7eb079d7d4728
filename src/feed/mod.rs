//! The feed stage: the hot thread's event loop.
//!
//! One `mio::Poll` owns every feed connection. Each iteration: poll (blocking
//! until the next timer deadline, or a zero timeout with `busy_poll`), read
//! every ready socket until `WouldBlock`, run each complete message through
//! the engine (parse → book → metric → triggers → hand-off), then check the
//! timers: connect/handshake timeouts, pongs that waited for the pong
//! interval, the stale-feed watchdog, 24 h rotation, reconnect backoff.
//! Nothing here blocks but the poll; DNS runs on a helper thread that wakes
//! the poll when it is done.

pub mod backoff;
pub mod conn;
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

use crate::alert::ActionHook;
use crate::engine::{Engine, FrameOutcome, StageClock};
use crate::exchange::binance::{PairId, StreamTable, combined_stream_url};
use crate::handoff::HotSink;
use crate::recorder::RecordProducer;
use crate::stats::{PairGauges, Stage, StatsPublisher, nanos};
use crate::units::UnixNanos;

use backoff::{AttemptLimiter, Backoff};
use conn::{ConnError, Connection, Endpoint, FrameKind};
use retry_after::MAX_RETRY_AFTER;
use stream::interrupted;

const WAKER: Token = Token(0);
const SIGNALS: Token = Token(1);
/// Connection tokens start here; `Token(CONN_BASE + i)` is slot `i`.
const CONN_BASE: usize = 2;

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

/// Connections serving one set of streams.
struct Group {
    pairs: Vec<PairId>,
    endpoint: Endpoint,
    /// The connection serving the group (open, or being established).
    active: Option<usize>,
    /// A replacement being established while `active` still serves.
    standby: Option<usize>,
    backoff: Backoff,
    next_attempt: Option<Instant>,
    /// The failure streak: kind of the first failure and how many so far.
    streak: Option<(&'static str, u32)>,
    /// Why the serving connection should be replaced (age, serverShutdown).
    rotate: Option<&'static str>,
    /// A failed replacement attempt is retried no earlier than this.
    standby_retry_at: Option<Instant>,
}

/// A DNS answer coming back from the resolver thread.
type DnsResult = (usize, u64, Result<Vec<SocketAddr>, String>);

/// Stage boundaries of one frame, read from the monotonic clock.
struct Marks {
    parsed: Option<Instant>,
    decided: Option<Instant>,
}

impl StageClock for Marks {
    #[inline]
    fn parsed(&mut self) {
        self.parsed = Some(Instant::now());
    }

    #[inline]
    fn decided(&mut self) {
        self.decided = Some(Instant::now());
    }
}

/// The hot thread's loop. Owns the poll, the connections and the engine.
pub struct HotLoop<H: ActionHook, S: HotSink> {
    poll: Poll,
    config: FeedConfig,
    engine: Engine<H>,
    sink: S,
    conns: Vec<Option<(usize, u64, Connection)>>,
    groups: Vec<Group>,
    limiter: AttemptLimiter,
    limiter_logged: bool,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    dns_tx: Sender<DnsResult>,
    dns_rx: Receiver<DnsResult>,
    signals: Option<signal_hook_mio::v1_0::Signals>,
    next_attempt_id: u64,
    counters: FeedCounters,
    stats: Option<StatsPublisher>,
    gauges: Option<Arc<PairGauges>>,
    recorder: Option<RecordProducer>,
    /// When the current poll returned: the start of `wire_to_decision`.
    poll_at: Instant,
    /// Connections that used up their read budget and must be read again
    /// (no new readiness edge will come for what is already buffered).
    again: Vec<usize>,
    /// Scratch for swapping with `again` while serving it.
    serving: Vec<usize>,
}

impl<H: ActionHook, S: HotSink> HotLoop<H, S> {
    /// Builds the loop: groups the engine's streams into connections of at
    /// most `max_streams_per_connection`, nothing connects yet.
    pub fn new(config: FeedConfig, engine: Engine<H>, sink: S) -> Result<Self, FeedError> {
        let poll = Poll::new().map_err(FeedError::Poll)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(FeedError::Poll)?);
        let table: &StreamTable = &engine.config().streams;
        let all: Vec<PairId> = table.pairs().collect();
        let mut groups = Vec::new();
        let seed = UnixNanos::now().0;
        for (i, chunk) in all.chunks(config.max_streams_per_connection.max(1)).enumerate() {
            let url = combined_stream_url(&config.ws_url, table, chunk);
            groups.push(Group {
                pairs: chunk.to_vec(),
                endpoint: Endpoint::parse(&url)?,
                active: None,
                standby: None,
                backoff: Backoff::standard(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                next_attempt: Some(Instant::now()),
                streak: None,
                rotate: None,
                standby_retry_at: None,
            });
        }
        let (dns_tx, dns_rx) = crossbeam_channel::unbounded();
        Ok(HotLoop {
            poll,
            config,
            engine,
            sink,
            conns: Vec::new(),
            groups,
            limiter: AttemptLimiter::binance(),
            limiter_logged: false,
            waker,
            stop: Arc::new(AtomicBool::new(false)),
            dns_tx,
            dns_rx,
            signals: None,
            next_attempt_id: 0,
            counters: FeedCounters::default(),
            stats: None,
            gauges: None,
            recorder: None,
            poll_at: Instant::now(),
            again: Vec::with_capacity(64),
            serving: Vec::with_capacity(64),
        })
    }

    /// Measures per-stage latency into `stats`' buffers (sized now, so no
    /// publish allocates).
    pub fn with_stats(mut self, mut stats: StatsPublisher) -> Self {
        stats.prime(self.engine.counters());
        self.stats = Some(stats);
        self
    }

    /// Keeps per-pair last-frame times and the open-connection count current.
    pub fn with_gauges(mut self, gauges: Arc<PairGauges>) -> Self {
        self.gauges = Some(gauges);
        self
    }

    /// Copies every received message to the recorder.
    pub fn with_recorder(mut self, recorder: RecordProducer) -> Self {
        self.recorder = Some(recorder);
        self
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
    /// the engine and sink (so the caller can read counters and drain).
    pub fn run(mut self) -> (Engine<H>, S, FeedCounters) {
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
            stream::reset_read_nanos();
            let recv = UnixNanos::now();
            for event in events.iter() {
                match event.token() {
                    WAKER => self.on_dns(now),
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
            self.sink.after_batch();
            if let Some(r) = &mut self.recorder {
                r.tick(now);
            }
            self.publish_stats(now, false);
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
        self.sink.after_batch();
        self.publish_stats(Instant::now(), true);
        (self.engine, self.sink, self.counters)
    }

    /// Hands the stats buffer to the cold side when due (or now, if `force`).
    fn publish_stats(&mut self, now: Instant, force: bool) {
        let Some(stats) = &mut self.stats else { return };
        if !force && now < stats.next_due() {
            return;
        }
        let dropped = self.recorder.as_ref().map_or(0, RecordProducer::dropped);
        stats.publish(now, force, (self.engine.counters(), self.counters, self.sink.handoff_counters(), dropped));
    }

    /// Publishes the open-connection count.
    fn update_connection_gauge(&self) {
        if let Some(g) = &self.gauges {
            let open = self.conns.iter().flatten().filter(|(_, _, c)| c.is_open()).count();
            g.connections_open.store(open as u32, Ordering::Relaxed);
        }
    }

    /// The earliest timer deadline, as a poll timeout.
    fn next_deadline(&self, now: Instant, stopping: Option<Instant>) -> Option<Duration> {
        let mut next = stopping.map(|s| s + STOP_TIMEOUT);
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        for (_, _, c) in self.conns.iter().flatten() {
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
        if let Some(s) = &self.stats {
            consider(s.next_due());
        }
        // Wake at least once a second: cheap, and bounds any missed edge.
        Some(next.map_or(Duration::from_secs(1), |t| t.saturating_duration_since(now).min(Duration::from_secs(1))))
    }

    fn on_conn_ready(&mut self, slot: usize, now: Instant, recv: UnixNanos) {
        let Some(Some((group, _, conn))) = self.conns.get_mut(slot) else { return };
        let group = *group;
        let engine = &mut self.engine;
        let sink = &mut self.sink;
        let stats = &mut self.stats;
        let gauges = self.gauges.as_deref();
        let recorder = &mut self.recorder;
        let poll_at = self.poll_at;
        let mut on_frame = |bytes: &[u8]| {
            if let Some(r) = recorder {
                r.push(recv.0, bytes);
            }
            let outcome = match stats {
                Some(stats) => {
                    let start = Instant::now();
                    let mut marks = Marks { parsed: None, decided: None };
                    let outcome = engine.on_frame_timed(bytes, recv, sink, &mut marks);
                    let st = stats.current();
                    if let Some(parsed) = marks.parsed {
                        st.record(Stage::Parse, nanos(parsed - start));
                        if let Some(decided) = marks.decided {
                            st.record(Stage::Eval, nanos(decided - parsed));
                            let wire = nanos(decided.saturating_duration_since(poll_at));
                            let read = stream::read_nanos();
                            st.record(Stage::WireToDecision, wire);
                            st.record(Stage::SocketRead, read);
                            st.record(Stage::InProcess, wire.saturating_sub(read));
                        }
                    }
                    // recv − E: includes the clock offset between Binance and us.
                    if let FrameOutcome::Evaluated { pair, .. } = outcome
                        && let Some(e_ms) = engine.book(pair).and_then(|b| b.event_time_ms)
                    {
                        st.record(Stage::Exchange, recv.0.saturating_sub(e_ms.saturating_mul(1_000_000)));
                    }
                    outcome
                }
                None => engine.on_frame(bytes, recv, sink),
            };
            if let (Some(g), Some(pair)) = (gauges, outcome.pair()) {
                g.frame(pair.index(), recv.0);
            }
            // Market data is every outcome that belongs to a pair.
            match outcome {
                FrameOutcome::ServerShutdown => FrameKind::ServerShutdown,
                o if o.pair().is_some() => FrameKind::Data,
                _ => FrameKind::Other,
            }
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
        if g.standby == Some(slot) && first_data {
            // Make-before-break: the new connection delivers; retire the old.
            if let Some(old) = g.active.replace(slot)
                && let Some(Some((_, _, c))) = self.conns.get_mut(old)
            {
                c.close(self.poll.registry(), now);
            }
            g.standby = None;
            self.counters.rotations += 1;
            log::info!(
                "FEED | rotation complete ({}) | group={group} | new connection serving",
                g.rotate.take().unwrap_or("rotation")
            );
        } else if g.active == Some(slot) && shutdown && g.rotate.is_none() {
            log::warn!("FEED | serverShutdown announced | group={group} | opening a replacement before the cut");
            g.rotate = Some("serverShutdown");
            self.maybe_rotate(group, now);
        }
    }

    fn on_opened(&mut self, slot: usize, group: usize, now: Instant) {
        self.counters.connects += 1;
        self.update_connection_gauge();
        let Some(g) = self.groups.get_mut(group) else { return };
        if let Some(gauges) = &self.gauges {
            for pair in &g.pairs {
                gauges.set_feed_down(pair.index(), "");
            }
        }
        let Some(Some((_, _, c))) = self.conns.get(slot) else { return };
        let took = now.duration_since(c.started);
        match g.streak.take() {
            Some((kind, n)) => log::info!(
                "FEED | connected | group={group} | streams={} | handshake={}ms | after {n} failed attempt(s) ({kind})",
                g.pairs.len(),
                took.as_millis()
            ),
            None => log::info!(
                "FEED | connected | group={group} | streams={} | handshake={}ms",
                g.pairs.len(),
                took.as_millis()
            ),
        }
        if g.standby == Some(slot) {
            let pairs = g.pairs.clone();
            self.engine.set_overlap(&pairs, true);
        }
    }

    fn on_closed(&mut self, slot: usize, group: usize, now: Instant) {
        let reason = self
            .conns
            .get(slot)
            .and_then(|c| c.as_ref())
            .and_then(|(_, _, c)| c.close_received.clone())
            .unwrap_or_else(|| "no Close frame".into());
        let was_serving = self.groups.get(group).is_some_and(|g| g.active == Some(slot) || g.standby == Some(slot));
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
        let was_serving = self.groups.get(group).is_some_and(|g| g.active == Some(slot) || g.standby == Some(slot));
        let was_open = self.conns.get(slot).and_then(|c| c.as_ref()).is_some_and(|(_, _, c)| c.opened.is_some());
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
        let was_active = g.active == Some(slot);
        if was_active {
            g.active = g.standby.take();
        } else if g.standby == Some(slot) {
            g.standby = None;
        }
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
            Some((_, n)) => {
                *n += 1;
                log::debug!(
                    "FEED | attempt failed again | group={group} | {reason} | retry in {}ms",
                    delay.as_millis()
                );
            }
            None => {
                g.streak = Some((kind, 1));
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
        if g.active.is_none() {
            g.next_attempt = Some(at);
            if let Some(gauges) = &self.gauges {
                let mut why = format!("{reason}; next attempt at {}", wall_clock_after(delay));
                if capped.is_some() {
                    why.push_str(" (Retry-After capped at 3 days, Binance's longest ban)");
                }
                for pair in &g.pairs {
                    gauges.set_feed_down(pair.index(), &why);
                }
            }
        } else if !was_active {
            // The replacement failed; the old connection still serves and
            // the rotation is retried after the backoff.
            g.standby_retry_at = Some(at);
        }
        let pairs = g.pairs.clone();
        self.engine.set_overlap(&pairs, false);
    }

    /// After a retired connection is gone, the group has one connection again.
    fn after_retired(&mut self, group: usize) {
        if let Some(g) = self.groups.get(group)
            && g.standby.is_none()
        {
            let pairs = g.pairs.clone();
            self.engine.set_overlap(&pairs, false);
        }
    }

    fn on_timers(&mut self, now: Instant) {
        self.check_conn_deadlines(now);
        self.send_due_pongs(now);
        for group in 0..self.groups.len() {
            let Some(g) = self.groups.get_mut(group) else { continue };
            if let Some(slot) = g.active
                && let Some(Some((_, _, c))) = self.conns.get(slot)
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
            if g.active.is_none() && g.next_attempt.is_some_and(|t| t <= now) {
                g.next_attempt = None;
                if let Some(slot) = self.start_attempt(group, now)
                    && let Some(g) = self.groups.get_mut(group)
                {
                    g.active = Some(slot);
                }
            }
        }
    }

    /// Pongs that waited for the pong interval (see [`pong`]).
    fn send_due_pongs(&mut self, now: Instant) {
        for slot in 0..self.conns.len() {
            let Some(Some((group, _, c))) = self.conns.get_mut(slot) else { continue };
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
            let Some(Some((group, _, c))) = self.conns.get(slot) else { continue };
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
        if g.standby.is_some() || g.standby_retry_at.is_some_and(|t| t > now) {
            return;
        }
        if let Some(slot) = self.start_attempt(group, now)
            && let Some(g) = self.groups.get_mut(group)
        {
            g.standby = Some(slot);
            g.standby_retry_at = None;
            log::info!("FEED | rotating connection ({reason}) | group={group} | make-before-break");
        }
    }

    /// Starts one connection attempt for `group`, if the attempt limiter allows.
    fn start_attempt(&mut self, group: usize, now: Instant) -> Option<usize> {
        if let Some(at) = self.limiter.try_acquire(now) {
            if !self.limiter_logged {
                log::warn!(
                    "FEED | 300 connection attempts in 5 minutes (Binance's per-IP limit); next attempt in {} s",
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
        let mut conn = Connection::new(Token(CONN_BASE + slot), endpoint.clone(), tls, now);
        if let Ok(ip) = endpoint.host.parse::<IpAddr>() {
            if let Err(e) = conn.connect(SocketAddr::new(ip, endpoint.port), self.poll.registry()) {
                self.conns[slot] = Some((group, attempt, conn));
                self.on_failed_start(slot, group, e, now);
                return None;
            }
        } else {
            let (tx, waker) = (self.dns_tx.clone(), Arc::clone(&self.waker));
            let (host, port) = (endpoint.host.clone(), endpoint.port);
            let spawned = std::thread::Builder::new().name("dns".into()).spawn(move || {
                let r =
                    (host.as_str(), port).to_socket_addrs().map(|a| a.collect::<Vec<_>>()).map_err(|e| e.to_string());
                let _ = tx.send((slot, attempt, r));
                let _ = waker.wake();
            });
            if let Err(e) = spawned {
                self.conns[slot] = Some((group, attempt, conn));
                let err = ConnError::Dns { host: endpoint.host.clone(), reason: e.to_string() };
                self.on_failed_start(slot, group, err, now);
                return None;
            }
        }
        self.conns[slot] = Some((group, attempt, conn));
        Some(slot)
    }

    /// A failure before the attempt was recorded as active/standby.
    fn on_failed_start(&mut self, slot: usize, group: usize, err: ConnError, now: Instant) {
        if let Some(g) = self.groups.get_mut(group) {
            if g.active.is_none() {
                g.active = Some(slot);
            } else if g.standby.is_none() {
                g.standby = Some(slot);
            }
        }
        self.on_failed(slot, group, err, now);
    }

    fn on_dns(&mut self, now: Instant) {
        while let Ok((slot, attempt, result)) = self.dns_rx.try_recv() {
            let Some(Some((group, id, conn))) = self.conns.get_mut(slot) else { continue };
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
            let Some(Some((_, _, c))) = self.conns.get_mut(slot) else { continue };
            if c.is_open() {
                c.close(self.poll.registry(), now);
            } else if !c.is_closing() {
                self.drop_conn(slot);
            }
        }
    }

    fn drop_conn(&mut self, slot: usize) {
        if let Some(entry) = self.conns.get_mut(slot)
            && let Some((_, _, mut c)) = entry.take()
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
    use crate::alert::Alert;
    use crate::engine::EngineConfig;
    use crate::exchange::binance::{Depth, StreamKind, UpdateSpeed};
    use crate::metrics::VolumeSpec;
    use crate::triggers::{Emit, MetricKind, Op, TriggerSpec};
    use crate::units::VolumeMode;
    use std::net::TcpListener;

    fn frame(id: u64, bid_qty: &str) -> String {
        format!(
            r#"{{"stream":"btcusdt@depth5@100ms","data":{{"lastUpdateId":{id},"bids":[["100.00","{bid_qty}"]],"asks":[["101.00","1.0"]]}}}}"#
        )
    }

    fn engine() -> Engine {
        Engine::new(EngineConfig::new(
            StreamTable::new(&["BTCUSDT".into()], StreamKind { depth: Depth::D5, speed: UpdateSpeed::Ms100 }),
            VolumeSpec { mode: VolumeMode::Qty, top_n: 5 },
            vec![TriggerSpec::simple("buy", MetricKind::ImbalanceRatio, Op::Ge, 0.5, 0, Emit::Level)],
        ))
    }

    fn config(url: String) -> FeedConfig {
        FeedConfig {
            ws_url: url,
            max_streams_per_connection: 1024,
            stale_after: Duration::from_secs(30),
            max_connection_age: Duration::from_secs(3600),
            busy_poll: false,
            tls: tls::client_config(None).unwrap(),
        }
    }

    #[test]
    fn streams_beyond_the_per_connection_limit_get_their_own_connections() {
        let symbols: Vec<String> = ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT"].map(String::from).to_vec();
        let streams = StreamTable::new(&symbols, StreamKind { depth: Depth::D5, speed: UpdateSpeed::Ms100 });
        let engine = Engine::new(EngineConfig::new(streams, VolumeSpec { mode: VolumeMode::Qty, top_n: 5 }, vec![]));
        let mut cfg = config("wss://stream.binance.com:9443/stream".into());
        cfg.max_streams_per_connection = 2;
        let hot = HotLoop::new(cfg, engine, Vec::<Alert>::new()).unwrap();
        assert_eq!(hot.connection_groups(), 3);
        let urls: Vec<&str> = hot.groups.iter().map(|g| g.endpoint.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "wss://stream.binance.com:9443/stream?streams=aaausdt@depth5@100ms/bbbusdt@depth5@100ms",
                "wss://stream.binance.com:9443/stream?streams=cccusdt@depth5@100ms/dddusdt@depth5@100ms",
                "wss://stream.binance.com:9443/stream?streams=eeeusdt@depth5@100ms",
            ]
        );
    }

    #[test]
    #[allow(clippy::result_large_err)] // tungstenite's callback signature
    fn frames_after_the_handshake_are_evaluated_and_pings_answered() {
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
            // Sent in one burst right after the handshake: the client must
            // drain them without waiting for a new readiness edge.
            ws.send(tungstenite::Message::text(frame(1, "3.0"))).unwrap();
            ws.send(tungstenite::Message::text(frame(2, "1.0"))).unwrap();
            ws.send(tungstenite::Message::Ping(b"p1".to_vec().into())).unwrap();
            ws.send(tungstenite::Message::text(frame(3, "5.0"))).unwrap();
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
        let hot = HotLoop::new(config(format!("ws://{addr}/stream")), engine(), Vec::<Alert>::new()).unwrap();
        let stop = hot.stop_handle();
        let runner = std::thread::spawn(move || hot.run());
        let (path, pong) = server.join().unwrap();
        stop.stop();
        let (engine, alerts, counters) = runner.join().unwrap();
        assert_eq!(path, "/stream?streams=btcusdt@depth5@100ms");
        assert_eq!(pong, b"p1");
        assert_eq!(engine.counters().evaluated, 3);
        assert_eq!(alerts.iter().map(|a| a.last_update_id).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(counters.connects, 1);
    }
}
