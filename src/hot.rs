//! The hot side: what the hot thread does with each message the feed hands
//! over, composed behind the feed's [`FrameHandler`].
//!
//! Per message: copy it to the recorder, run it through the engine (decode →
//! book → metrics → triggers → hand-off), record the per-stage latencies
//! and keep the per-pair gauges current. The feed below knows none of this;
//! the engine, hand-off, stats and recorder know nothing of sockets.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::alert::ActionHook;
use crate::book::local::SnapshotStep;
use crate::engine::{Engine, FrameOutcome, StageClock};
use crate::feed::{
    Arrival, FeedConfig, FeedCounters, FeedError, FeedLoop, FrameHandler, FrameKind, GroupSpec, StopHandle,
};
use crate::gauges::PairGauges;
use crate::handoff::HotSink;
use crate::pairs::PairId;
use crate::recorder::RecordProducer;
use crate::snapshot::{SnapshotClient, SnapshotRequest};
use crate::stats::{Stage, StatsPublisher};
use crate::units::nanos;
use crate::venue::Venue;
use crate::venue::binance_spot::snapshot::SnapshotBook;

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

/// The venue's connection groups as the feed sees them (URL and stream
/// count), and the pairs each carries, by group index.
pub fn connection_groups(
    venue: &impl Venue,
    ws_url: &str,
    max_streams_per_connection: usize,
) -> (Vec<GroupSpec>, Vec<Vec<PairId>>) {
    venue
        .stream_groups(ws_url, max_streams_per_connection)
        .into_iter()
        .map(|g| (GroupSpec { url: g.url, streams: g.pairs.len() }, g.pairs))
        .unzip()
}

/// The stages behind the feed: engine, hand-off sink, latency stats,
/// gauges and recorder, each optional but the first two.
pub struct HotSide<H: ActionHook, S: HotSink> {
    engine: Engine<H>,
    sink: S,
    stats: Option<StatsPublisher>,
    gauges: Option<Arc<PairGauges>>,
    recorder: Option<RecordProducer>,
    /// The pairs each connection group carries, by group index.
    group_pairs: Vec<Vec<PairId>>,
    /// REST snapshots for the local books (diff mode).
    snapshots: Option<SnapshotClient>,
}

impl<H: ActionHook, S: HotSink> HotSide<H, S> {
    /// Hands the stats buffer to the cold side when due (or now, if `force`).
    fn publish_stats(&mut self, now: Instant, force: bool, feed: FeedCounters) {
        let Some(stats) = &mut self.stats else { return };
        if !force && now < stats.next_due() {
            return;
        }
        let dropped = self.recorder.as_ref().map_or(0, RecordProducer::dropped);
        self.engine.sync_local_counters();
        stats.publish(now, force, (self.engine.counters(), feed, self.sink.handoff_counters(), dropped));
    }

    fn pairs_of(&self, group: usize) -> &[PairId] {
        self.group_pairs.get(group).map_or(&[], Vec::as_slice)
    }

    /// After a local book fell out of sync or started buffering: hand out
    /// the snapshot requests due, log the streak once, show it on `/healthz`.
    #[cold]
    fn local_book_waiting(&mut self, pair: PairId) {
        self.request_snapshots();
        let Some(local) = self.engine.local_books_mut() else { return };
        let report = local.take_streak_report(pair);
        let why = local.unsynced(pair);
        let symbol = self.engine.config().venue.pair_table().symbol(pair);
        if let Some(why) = report {
            let resyncs = self.engine.local_books().map_or(0, |l| l.counters().resyncs);
            log::warn!("BOOK | {symbol} {} (resyncs so far: {resyncs})", why.as_str());
        }
        if let (Some(g), Some(why)) = (&self.gauges, why) {
            g.set_unsynced(pair.index(), why.as_str());
        }
    }

    /// Hands the local books' due snapshot requests to the fetcher.
    fn request_snapshots(&mut self) {
        let (Some(client), Some(local)) = (&self.snapshots, self.engine.local_books_mut()) else { return };
        if local.requests_due() {
            local.take_requests(|pair, attempt| {
                if !client.request(SnapshotRequest { pair, attempt }) {
                    log::warn!("BOOK | snapshot request queue full; pair {} will ask again", pair.index());
                }
            });
        }
    }

    /// Applies every snapshot the fetcher has delivered (never blocks).
    fn drain_snapshots(&mut self) {
        let Some(client) = self.snapshots.take() else { return };
        while let Some(reply) = client.try_recv() {
            let pair = reply.pair;
            let book = &reply.book;
            let out = self.engine.on_snapshot(
                pair,
                Some(reply.attempt),
                book.last_update_id,
                &book.bids,
                &book.asks,
                &mut self.sink,
            );
            let symbol = self.engine.config().venue.pair_table().symbol(pair).to_string();
            match out.step {
                SnapshotStep::Applied => {
                    if let Some(r) = &mut self.recorder {
                        r.push_large(crate::units::UnixNanos::now().0, &snapshot_line(book, &symbol));
                    }
                    if out.gap {
                        log::warn!(
                            "BOOK | {symbol} snapshot {} applied, but a held event skipped past it; resyncing",
                            book.last_update_id
                        );
                    } else {
                        log::info!(
                            "BOOK | {symbol} synced from snapshot lastUpdateId={} ({} held event(s) applied, {} alert(s))",
                            book.last_update_id,
                            out.evaluated,
                            out.alerts
                        );
                        if let Some(g) = &self.gauges {
                            g.set_unsynced(pair.index(), "");
                        }
                    }
                }
                SnapshotStep::TooOld => log::info!(
                    "BOOK | {symbol} snapshot lastUpdateId={} is older than the first held event; asking again",
                    book.last_update_id
                ),
                SnapshotStep::Refused => {
                    log::warn!("BOOK | {symbol} snapshot refused (sides out of order); asking again")
                }
                SnapshotStep::Unwanted => {}
            }
            client.recycle(reply.book);
        }
        self.snapshots = Some(client);
        self.request_snapshots();
    }
}

/// A snapshot as a recording line: the REST body with our `"symbol"`
/// member, so replay files it under its pair whatever else the file holds.
fn snapshot_line(book: &SnapshotBook, symbol: &str) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(64 + (book.bids.len() + book.asks.len()) * 36);
    let _ = write!(s, "{{\"lastUpdateId\":{},\"symbol\":\"{symbol}\",\"bids\":[", book.last_update_id);
    for (i, l) in book.bids.iter().enumerate() {
        let _ = write!(s, "{}[\"{}\",\"{}\"]", if i > 0 { "," } else { "" }, l.price, l.qty);
    }
    s.push_str("],\"asks\":[");
    for (i, l) in book.asks.iter().enumerate() {
        let _ = write!(s, "{}[\"{}\",\"{}\"]", if i > 0 { "," } else { "" }, l.price, l.qty);
    }
    s.push_str("]}");
    s.into_bytes()
}

impl<H: ActionHook, S: HotSink> FrameHandler for HotSide<H, S> {
    #[inline]
    fn on_frame(&mut self, _group: usize, bytes: &[u8], arrival: Arrival) -> FrameKind {
        let recv = arrival.recv;
        if let Some(r) = &mut self.recorder {
            r.push(recv.0, bytes);
        }
        let engine = &mut self.engine;
        let outcome = match &mut self.stats {
            Some(stats) => {
                let start = Instant::now();
                let mut marks = Marks { parsed: None, decided: None };
                let outcome = engine.on_frame_timed(bytes, recv, &mut self.sink, &mut marks);
                let st = stats.current();
                if let Some(parsed) = marks.parsed {
                    st.record(Stage::Parse, nanos(parsed - start));
                    if let Some(decided) = marks.decided {
                        st.record(Stage::Eval, nanos(decided - parsed));
                        let wire = nanos(decided.saturating_duration_since(arrival.poll_at));
                        let read = arrival.socket_read_ns;
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
            None => engine.on_frame(bytes, recv, &mut self.sink),
        };
        if let (Some(g), Some(pair)) = (self.gauges.as_deref(), outcome.pair()) {
            g.frame(pair.index(), recv.0);
        }
        if let FrameOutcome::Buffered(pair) | FrameOutcome::Resync(pair) = outcome {
            self.local_book_waiting(pair);
        }
        // Market data is every outcome that belongs to a pair.
        match outcome {
            FrameOutcome::ServerShutdown => FrameKind::ServerShutdown,
            o if o.pair().is_some() => FrameKind::Data,
            _ => FrameKind::Other,
        }
    }

    fn on_overlap(&mut self, group: usize, on: bool) {
        if let Some(pairs) = self.group_pairs.get(group) {
            self.engine.set_overlap(pairs, on);
        }
    }

    fn on_feed_up(&mut self, group: usize) {
        if let Some(gauges) = &self.gauges {
            for pair in self.pairs_of(group) {
                gauges.set_feed_down(pair.index(), "");
            }
        }
    }

    fn on_feed_down(&mut self, group: usize, why: &str) {
        if let Some(gauges) = &self.gauges {
            for pair in self.pairs_of(group) {
                gauges.set_feed_down(pair.index(), why);
            }
        }
        // The local books of this connection's pairs miss what arrives
        // while it is down: they resync from the next connection's events.
        if let Some(pairs) = self.group_pairs.get(group)
            && let Some(local) = self.engine.local_books_mut()
        {
            local.reconnected(pairs);
            if let Some(g) = &self.gauges {
                for pair in pairs {
                    g.set_unsynced(pair.index(), crate::book::local::Unsynced::Reconnected.as_str());
                }
            }
        }
    }

    fn on_wake(&mut self) {
        self.drain_snapshots();
    }

    fn on_connections_open(&mut self, open: usize) {
        if let Some(g) = &self.gauges {
            g.connections_open.store(open as u32, Ordering::Relaxed);
        }
    }

    fn after_batch(&mut self, now: Instant, feed: FeedCounters) {
        if self.snapshots.is_some() {
            self.drain_snapshots();
        }
        self.sink.after_batch();
        if let Some(r) = &mut self.recorder {
            r.tick(now);
        }
        self.publish_stats(now, false, feed);
    }

    fn next_due(&self) -> Option<Instant> {
        self.stats.as_ref().map(StatsPublisher::next_due)
    }

    fn on_stop(&mut self, feed: FeedCounters) {
        self.sink.after_batch();
        self.publish_stats(Instant::now(), true, feed);
    }
}

/// The hot thread's loop: the feed, with the engine and its companions
/// behind it.
pub struct HotLoop<H: ActionHook, S: HotSink> {
    feed: FeedLoop<HotSide<H, S>>,
}

impl<H: ActionHook, S: HotSink> HotLoop<H, S> {
    /// Builds the loop: groups the engine's streams into connections of at
    /// most `max_streams_per_connection`, nothing connects yet.
    pub fn new(config: FeedConfig, engine: Engine<H>, sink: S) -> Result<Self, FeedError> {
        let venue = &engine.config().venue;
        let (groups, group_pairs) = connection_groups(venue, &config.ws_url, config.max_streams_per_connection);
        let rules = venue.connection_rules();
        let side = HotSide { engine, sink, stats: None, gauges: None, recorder: None, group_pairs, snapshots: None };
        Ok(HotLoop { feed: FeedLoop::new(config, &groups, rules, side)? })
    }

    /// Measures per-stage latency into `stats`' buffers (sized now, so no
    /// publish allocates).
    pub fn with_stats(mut self, mut stats: StatsPublisher) -> Self {
        let side = self.feed.handler_mut();
        stats.prime(side.engine.counters());
        side.stats = Some(stats);
        self
    }

    /// Keeps per-pair last-frame times and the open-connection count current.
    pub fn with_gauges(mut self, gauges: Arc<PairGauges>) -> Self {
        self.feed.handler_mut().gauges = Some(gauges);
        self
    }

    /// Takes REST snapshots for the local books from `client` (diff mode).
    pub fn with_snapshots(mut self, client: SnapshotClient) -> Self {
        self.feed.handler_mut().snapshots = Some(client);
        self
    }

    /// The loop's waker, for a thread that hands it work (the snapshot
    /// fetcher wakes it when a snapshot is ready).
    pub fn waker(&self) -> Arc<mio::Waker> {
        self.feed.waker()
    }

    /// Copies every received message to the recorder.
    pub fn with_recorder(mut self, recorder: RecordProducer) -> Self {
        self.feed.handler_mut().recorder = Some(recorder);
        self
    }

    /// A handle that stops the loop from any thread.
    pub fn stop_handle(&self) -> StopHandle {
        self.feed.stop_handle()
    }

    /// Makes SIGINT and SIGTERM stop the loop (for the CLI; tests use the
    /// [`StopHandle`] instead).
    pub fn handle_signals(&mut self) -> std::io::Result<()> {
        self.feed.handle_signals()
    }

    /// Number of connections the streams are split across.
    pub fn connection_groups(&self) -> usize {
        self.feed.connection_groups()
    }

    /// Runs until stopped; closes every connection cleanly before returning
    /// the engine and sink (so the caller can read counters and drain).
    pub fn run(self) -> (Engine<H>, S, FeedCounters) {
        let (side, counters) = self.feed.run();
        (side.engine, side.sink, counters)
    }

    /// Feed counters so far.
    pub fn counters(&self) -> FeedCounters {
        self.feed.counters()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Alert;
    use crate::engine::EngineConfig;
    use crate::feed::tls;
    use crate::metrics::VolumeSpec;
    use crate::triggers::{Emit, MetricKind, Op, TriggerSpec};
    use crate::units::VolumeMode;
    use crate::venue::binance_spot::{Depth, StreamKind, StreamTable, UpdateSpeed};
    use std::net::TcpListener;
    use std::time::Duration;

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
        let (groups, pairs) = connection_groups(&streams, "wss://stream.binance.com:9443/stream", 2);
        let engine = Engine::new(EngineConfig::new(streams, VolumeSpec { mode: VolumeMode::Qty, top_n: 5 }, vec![]));
        let mut cfg = config("wss://stream.binance.com:9443/stream".into());
        cfg.max_streams_per_connection = 2;
        let hot = HotLoop::new(cfg, engine, Vec::<Alert>::new()).unwrap();
        assert_eq!(hot.connection_groups(), 3);
        assert_eq!(pairs, [vec![PairId(0), PairId(1)], vec![PairId(2), PairId(3)], vec![PairId(4)]]);
        assert_eq!(groups.iter().map(|g| g.streams).collect::<Vec<_>>(), [2, 2, 1]);
        let urls: Vec<&str> = groups.iter().map(|g| g.url.as_str()).collect();
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
