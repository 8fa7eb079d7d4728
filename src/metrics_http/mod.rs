//! The Prometheus endpoint (`[metrics_http] listen`), served from a cold-side
//! thread: `/metrics` in the OpenMetrics text format (prometheus-client's
//! encoder), `/healthz`, which answers 200 only while every pair has
//! received a frame within `binance.stale_after_ms`, and `/state`, the live
//! dashboard's JSON (`watch`).
//!
//! Split by stage: `server` holds the sockets (concurrent, bounded, with a
//! deadline per request), `routes` what each path answers (a new endpoint is
//! one arm there), `prometheus` the `/metrics` encoding, `http` the request
//! and response types between them.
//!
//! It is also a [`Sink`]: alerts are counted per trigger and pair, and every
//! statistics update refreshes a snapshot the scrape encodes. Nothing here
//! touches the hot thread except reading its relaxed atomic gauges.

mod http;
mod prometheus;
mod routes;
mod server;

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::gauges::PairGauges;
use crate::sinks::{AlertEvent, Sink};
use crate::stats::Stage;
use crate::stats::report::{StatsReport, Totals};
use crate::units::UnixNanos;
use server::{LIMITS, Server, ServerCounters};

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

/// Everything the routes need.
struct State {
    pairs: Vec<String>,
    stale_after: Duration,
    gauges: Arc<PairGauges>,
    snapshot: Mutex<Snapshot>,
    telegram: Option<TelegramCounts>,
    started_unix: f64,
    server: Arc<ServerCounters>,
    /// The dashboard's collector, for `/state` (set once the run has one).
    dashboard: std::sync::OnceLock<Arc<crate::watch::hub::WatchHub>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("pairs", &self.pairs).finish_non_exhaustive()
    }
}

/// The metrics endpoint as a cold-side sink. Dropping it stops the server.
pub struct MetricsHttp {
    state: Arc<State>,
    addr: SocketAddr,
    _server: Server,
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
        let counters = Arc::new(ServerCounters::default());
        let state = Arc::new(State {
            pairs,
            stale_after,
            gauges,
            snapshot: Mutex::new(Snapshot::default()),
            telegram,
            started_unix,
            server: Arc::clone(&counters),
            dashboard: std::sync::OnceLock::new(),
        });
        let routed = Arc::clone(&state);
        let server =
            Server::spawn(listener, LIMITS, counters, move |request| routes::route(&routed, request)).map_err(err)?;
        log::info!("METRICS | serving http://{addr}/metrics and /healthz");
        Ok(MetricsHttp { state, addr, _server: server })
    }

    /// Serves `hub`'s snapshots as JSON on `/state` (for `watch`).
    pub fn serve_dashboard(&self, hub: Arc<crate::watch::hub::WatchHub>) {
        let _ = self.state.dashboard.set(hub);
    }

    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

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
