//! The Prometheus endpoint (`[metrics_http] listen`), served from a cold-side
//! thread: `/metrics` in the OpenMetrics text format (prometheus-client's
//! encoder) and `/healthz`, which answers 200 only while every pair has
//! received a frame within `binance.stale_after_ms`.
//!
//! It is also a [`Sink`]: alerts are counted per trigger and pair, and every
//! statistics update refreshes a snapshot the scrape encodes. Nothing here
//! touches the hot thread except reading its relaxed atomic gauges.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hdrhistogram::Histogram;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::gauges::PairGauges;
use crate::reject::RejectKind;
use crate::sinks::{AlertEvent, Sink};
use crate::stats::Stage;
use crate::stats::report::{StatsReport, Totals};
use crate::units::UnixNanos;

/// Upper bounds of the latency histogram buckets, seconds.
const BUCKETS: [f64; 25] = [
    1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2,
    5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("metrics_http.listen {addr}: cannot listen: {source}")]
pub struct MetricsHttpError {
    pub addr: String,
    #[source]
    pub source: io::Error,
}

/// Telegram delivery counters by status, provided by the Telegram sink.
pub type TelegramCounts = Arc<dyn Fn() -> Vec<(&'static str, u64)> + Send + Sync>;

/// What a scrape reads.
#[derive(Default)]
struct Snapshot {
    totals: Totals,
    latency: BTreeMap<&'static str, Histogram<u64>>,
    /// (trigger, pair) → alerts.
    alerts: BTreeMap<(String, String), u64>,
}

/// Everything the collector needs.
struct State {
    pairs: Vec<String>,
    stale_after: Duration,
    gauges: Arc<PairGauges>,
    snapshot: Mutex<Snapshot>,
    telegram: Option<TelegramCounts>,
    started_unix: f64,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("pairs", &self.pairs).finish_non_exhaustive()
    }
}

/// The metrics endpoint as a cold-side sink.
pub struct MetricsHttp {
    state: Arc<State>,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    server: Option<JoinHandle<()>>,
}

impl MetricsHttp {
    /// Binds `listen` now (so a bad address fails before anything connects)
    /// and serves from a background thread.
    pub fn start(
        listen: &str,
        pairs: Vec<String>,
        stale_after: Duration,
        gauges: Arc<PairGauges>,
        telegram: Option<TelegramCounts>,
    ) -> Result<MetricsHttp, MetricsHttpError> {
        let err = |source| MetricsHttpError { addr: listen.to_string(), source };
        let listener = TcpListener::bind(listen).map_err(err)?;
        let addr = listener.local_addr().map_err(err)?;
        let started_unix = UnixNanos::now().0 as f64 / 1e9;
        let state = Arc::new(State {
            pairs,
            stale_after,
            gauges,
            snapshot: Mutex::new(Snapshot::default()),
            telegram,
            started_unix,
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (st, stop2) = (Arc::clone(&state), Arc::clone(&stop));
        let server = std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || serve(&listener, &st, &stop2))
            .map_err(err)?;
        log::info!("METRICS | serving http://{addr}/metrics and /healthz");
        Ok(MetricsHttp { state, addr, stop, server: Some(server) })
    }

    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(h) = self.server.take() {
            let _ = h.join();
        }
    }
}

impl Sink for MetricsHttp {
    fn name(&self) -> &'static str {
        "metrics_http"
    }

    fn on_alert(&mut self, event: &AlertEvent<'_>) {
        if let Ok(mut s) = self.state.snapshot.lock() {
            *s.alerts.entry((event.view.trigger_name().to_string(), event.view.pair.to_string())).or_default() += 1;
        }
    }

    fn on_stats(&mut self, report: &StatsReport) {
        if let Ok(mut s) = self.state.snapshot.lock() {
            s.totals.clone_from(report.totals());
            for stage in Stage::ALL {
                if let Some(h) = report.total(stage) {
                    match s.latency.get_mut(stage.name()) {
                        Some(mine) => mine.clone_from(h),
                        None => {
                            s.latency.insert(stage.name(), h.clone());
                        }
                    }
                }
            }
        }
    }
}

fn serve(listener: &TcpListener, state: &Arc<State>, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let Ok(mut conn) = conn else { continue };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = conn.set_write_timeout(Some(Duration::from_secs(2)));
        let _ = respond(&mut conn, state);
    }
}

/// Reads one request and answers it; the connection is then closed.
fn respond(conn: &mut TcpStream, state: &Arc<State>) -> io::Result<()> {
    let mut buf = [0u8; 8192];
    let mut len = 0;
    while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
        if len == buf.len() {
            return reply(conn, 431, "text/plain", "request header too large\n");
        }
        let n = conn.read(&mut buf[len..])?;
        if n == 0 {
            return Ok(());
        }
        len += n;
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    if method != "GET" {
        return reply(conn, 405, "text/plain", "only GET is served\n");
    }
    match path {
        "/metrics" => match encode(state) {
            Ok(body) => reply(conn, 200, "application/openmetrics-text; version=1.0.0; charset=utf-8", &body),
            Err(_) => reply(conn, 500, "text/plain", "encoding failed\n"),
        },
        "/healthz" => {
            let (healthy, body) = health(state);
            reply(conn, if healthy { 200 } else { 503 }, "text/plain", &body)
        }
        _ => reply(conn, 404, "text/plain", "not found; try /metrics or /healthz\n"),
    }
}

fn reply(conn: &mut TcpStream, status: u16, content_type: &str, body: &str) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

/// Whether every pair has had a frame within the stale window, and why not.
fn health(state: &State) -> (bool, String) {
    let now = UnixNanos::now().0;
    let limit = u64::try_from(state.stale_after.as_nanos()).unwrap_or(u64::MAX);
    let mut stale = Vec::new();
    for (i, pair) in state.pairs.iter().enumerate() {
        match state.gauges.last_frame(i) {
            None => stale.push(format!("{pair} (no frame yet)")),
            Some(t) if now.saturating_sub(t) > limit => {
                stale.push(format!("{pair} (last frame {:.1} s ago)", now.saturating_sub(t) as f64 / 1e9))
            }
            Some(_) => {}
        }
    }
    if stale.is_empty() {
        (true, format!("ok: {} pair(s) fresh within {} ms\n", state.pairs.len(), state.stale_after.as_millis()))
    } else {
        let mut body = format!("stale: {}\n", stale.join(", "));
        for (i, pair) in state.pairs.iter().enumerate() {
            if let Some(why) = state.gauges.feed_down(i) {
                body.push_str(&format!("feed down for {pair}: {why}\n"));
            }
        }
        (false, body)
    }
}

fn encode(state: &Arc<State>) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("imbalance_monitor");
    registry.register_collector(Box::new(ScrapeCollector(Arc::clone(state))));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

#[derive(Debug)]
struct ScrapeCollector(Arc<State>);

fn counter(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: u64) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(v);
    c.encode(enc.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: f64) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(v);
    g.encode(enc.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for ScrapeCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let st = &self.0;
        let snap = st.snapshot.lock().map_err(|_| std::fmt::Error)?;
        let t = &snap.totals;
        let e = &t.engine;

        let mut m = enc.encode_descriptor("frames", "Depth frames received, by pair.", None, MetricType::Counter)?;
        for (i, pair) in st.pairs.iter().enumerate() {
            let n = e.frames_by_pair.get(i).copied().unwrap_or(0);
            ConstCounter::new(n).encode(m.encode_family(&[("pair", pair.as_str())])?)?;
        }
        let mut m =
            enc.encode_descriptor("frames_rejected", "Frames rejected, by error kind.", None, MetricType::Counter)?;
        for kind in RejectKind::ALL {
            ConstCounter::new(e.errors[kind.index()]).encode(m.encode_family(&[("kind", kind.name())])?)?;
        }
        let mut m = enc.encode_descriptor(
            "books_skipped",
            "Books not evaluated, by reason (crossed, empty, overflow, duplicate).",
            None,
            MetricType::Counter,
        )?;
        for (reason, n) in
            [("crossed", e.crossed), ("empty", e.empty), ("overflow", e.overflow), ("duplicate", e.duplicates)]
        {
            ConstCounter::new(n).encode(m.encode_family(&[("reason", reason)])?)?;
        }
        counter(&mut enc, "books_evaluated", "Books evaluated by the triggers.", e.evaluated)?;
        let mut m = enc.encode_descriptor("alerts", "Alerts fired, by trigger and pair.", None, MetricType::Counter)?;
        for ((trigger, pair), n) in &snap.alerts {
            ConstCounter::new(*n)
                .encode(m.encode_family(&[("trigger", trigger.as_str()), ("pair", pair.as_str())])?)?;
        }
        counter(
            &mut enc,
            "alerts_dropped",
            "Alerts lost at the hot/cold hand-off (channel and overflow full).",
            t.handoff.alerts_dropped,
        )?;
        counter(
            &mut enc,
            "alerts_deferred",
            "Alerts that waited in the hot-side overflow ring.",
            t.handoff.alerts_deferred,
        )?;
        counter(
            &mut enc,
            "reconnects",
            "Feed connections lost (errors, stale feed, server close).",
            t.feed.disconnects,
        )?;
        counter(&mut enc, "connects", "Feed WebSocket handshakes completed.", t.feed.connects)?;
        counter(&mut enc, "stale_feeds", "Stale-feed watchdog firings.", t.feed.stale)?;
        counter(&mut enc, "rotations", "Make-before-break connection rotations.", t.feed.rotations)?;
        counter(&mut enc, "record_dropped", "Frames the recorder could not keep up with.", t.record_dropped)?;
        if let Some(tg) = &st.telegram {
            let mut m =
                enc.encode_descriptor("telegram_sends", "Telegram deliveries, by status.", None, MetricType::Counter)?;
            for (status, n) in tg() {
                ConstCounter::new(n).encode(m.encode_family(&[("status", status)])?)?;
            }
        }

        let mut m =
            enc.encode_descriptor("imbalance_ratio", "Latest imbalance_ratio, by pair.", None, MetricType::Gauge)?;
        for (i, pair) in st.pairs.iter().enumerate() {
            if let Some(v) = st.gauges.last_ratio(i) {
                ConstGauge::new(v).encode(m.encode_family(&[("pair", pair.as_str())])?)?;
            }
        }
        let now = UnixNanos::now().0;
        let mut m = enc.encode_descriptor(
            "seconds_since_last_frame",
            "Seconds since each pair's last depth frame (absent before the first).",
            None,
            MetricType::Gauge,
        )?;
        for (i, pair) in st.pairs.iter().enumerate() {
            if let Some(last) = st.gauges.last_frame(i) {
                let ago = now.saturating_sub(last) as f64 / 1e9;
                ConstGauge::new(ago).encode(m.encode_family(&[("pair", pair.as_str())])?)?;
            }
        }
        gauge(
            &mut enc,
            "connections_open",
            "Feed connections currently open.",
            f64::from(st.gauges.connections_open.load(Ordering::Relaxed)),
        )?;
        gauge(&mut enc, "start_time_seconds", "Unix time the process started.", st.started_unix)?;

        let mut m = enc.encode_descriptor(
            "latency_seconds",
            "Latency per stage (wire_to_decision, socket_read, in_process, parse, eval, exchange (includes clock offset), queue, telegram, decision_to_delivered).",
            None,
            MetricType::Histogram,
        )?;
        let mut buckets: Vec<(f64, u64)> = Vec::with_capacity(BUCKETS.len());
        for (stage, h) in &snap.latency {
            if h.is_empty() {
                continue;
            }
            buckets.clear();
            for b in BUCKETS {
                let ns = (b * 1e9) as u64;
                buckets.push((b, h.count_between(0, ns)));
            }
            let sum = h.mean() * h.len() as f64 / 1e9;
            m.encode_family(&[("stage", *stage)])?.encode_histogram::<NoLabelSet>(sum, h.len(), &buckets, None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out[9..12].parse().unwrap();
        (status, out.split_once("\r\n\r\n").unwrap().1.to_string())
    }

    #[test]
    fn healthz_turns_green_only_when_every_pair_is_fresh() {
        let gauges = PairGauges::new(2);
        let http = MetricsHttp::start(
            "127.0.0.1:0",
            vec!["BTCUSDT".into(), "ETHUSDT".into()],
            Duration::from_secs(5),
            Arc::clone(&gauges),
            None,
        )
        .unwrap();
        let (code, body) = get(http.addr(), "/healthz");
        assert_eq!(code, 503);
        assert!(body.contains("BTCUSDT (no frame yet)"), "{body}");
        gauges.frame(0, UnixNanos::now().0);
        gauges.frame(1, UnixNanos::now().0 - 10_000_000_000);
        let (code, body) = get(http.addr(), "/healthz");
        assert_eq!(code, 503);
        assert!(body.contains("ETHUSDT (last frame 10.0 s ago)"), "{body}");
        gauges.frame(1, UnixNanos::now().0);
        assert_eq!(get(http.addr(), "/healthz").0, 200);
        assert_eq!(get(http.addr(), "/nope").0, 404);
    }
}
