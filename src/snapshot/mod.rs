//! REST depth snapshots off the hot thread: the hot side asks for a pair's
//! snapshot without blocking, a cold thread fetches it from Binance within
//! the IP's request-weight budget, and the parsed book comes back through a
//! channel plus a wake-up (the hot side's `mio::Waker`).
//!
//! The hot side's end, [`SnapshotClient`], never blocks and never allocates
//! or frees: a request is a store into the pair's slot (a newer request for
//! the same pair replaces an older one not yet taken), a reply is a
//! `try_recv`, and a reply's book goes back with [`SnapshotClient::recycle`]
//! to the fixed pool the cold thread parses into.
//!
//! The cold thread ([`worker`]) sends one request at a time and follows
//! Binance's REST rules: weight by `limit` from a rolling budget
//! ([`budget`]), corrected by `X-MBX-USED-WEIGHT-1M`; after a `429` no
//! request before `Retry-After`; after a `418` (IP banned) none until the ban
//! ends, said once in the log; 5xx and network errors retried with the
//! project's backoff; other 4xx retried slowly. Counters
//! ([`SnapshotCounters`]) are atomics either side may read.

mod budget;
mod http;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::feed::tls::TlsConfigError;
use crate::pairs::PairId;
use crate::venue::binance_spot::snapshot::SnapshotBook;

pub use budget::{BINANCE_WEIGHT_PER_MINUTE, DEFAULT_WEIGHT_BUDGET, WEIGHT_WINDOW, depth_weight};

/// What the fetcher needs; [`FetcherConfig::new`] fills Binance's rules and
/// the project's backoff, tests shorten the clocks.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FetcherConfig {
    /// `https://api.binance.com` (or `https://data-api.binance.vision`);
    /// `http://` only for a loopback host (tests, the simulator).
    pub rest_url: String,
    /// Extra CA certificates (PEM), as for the feed (`binance.ca_file`).
    pub ca_file: Option<PathBuf>,
    /// Levels per side requested, 5..=5000; it sets the weight and each
    /// book's capacity.
    pub limit: u32,
    /// Upper-case symbols (`BTCUSDT`), indexed by [`PairId`].
    pub symbols: Vec<String>,
    /// Weight the fetcher allows itself per `weight_window`.
    pub weight_budget: u32,
    /// The budget's rolling window (Binance's: a minute).
    pub weight_window: Duration,
    /// First retry delay after a 5xx, a network error or a bad body
    /// (doubling, full jitter, up to `backoff_cap`).
    pub backoff_base: Duration,
    /// Longest backoff delay.
    pub backoff_cap: Duration,
    /// Delay before retrying a pair after another 4xx (an unknown symbol
    /// will not heal fast; retrying it often only spends weight).
    pub client_error_delay: Duration,
    /// Wait after a 429 or 418 without a usable `Retry-After`.
    pub default_retry_after: Duration,
    /// Longest `Retry-After` honoured; a longer one is capped (and logged).
    pub max_retry_after: Duration,
    /// Timeout of one whole request.
    pub request_timeout: Duration,
    /// Books allocated at start; the hot side holds at most this many
    /// replies before recycling one.
    pub books: usize,
}

impl FetcherConfig {
    /// Binance's rules and the project's backoff (1 s doubling to 60 s).
    pub fn new(rest_url: impl Into<String>, limit: u32, symbols: Vec<String>) -> Self {
        FetcherConfig {
            rest_url: rest_url.into(),
            ca_file: None,
            limit,
            symbols,
            weight_budget: DEFAULT_WEIGHT_BUDGET,
            weight_window: WEIGHT_WINDOW,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
            client_error_delay: Duration::from_secs(60),
            default_retry_after: Duration::from_secs(60),
            max_retry_after: crate::feed::retry_after::MAX_RETRY_AFTER,
            request_timeout: Duration::from_secs(10),
            books: 4,
        }
    }
}

/// A request for one pair's snapshot. `attempt` is the hot side's own count
/// (its sync attempt for that pair): the reply carries it back, so a reply to
/// an attempt since abandoned can be told apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotRequest {
    pub pair: PairId,
    pub attempt: u64,
}

/// A fetched, parsed snapshot. Give `book` back with
/// [`SnapshotClient::recycle`] once read: the pool is fixed.
#[derive(Debug)]
pub struct SnapshotReply {
    pub pair: PairId,
    pub attempt: u64,
    pub book: Box<SnapshotBook>,
}

/// Why the fetcher could not start. Each message names the setting to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    #[error("binance.snapshot_limit is {0}; expected 5..=5000")]
    Limit(u32),
    #[error(
        "binance.rest_url {0:?}: expected https://host (or http:// to a loopback host for tests), without a path or query"
    )]
    RestUrl(String),
    #[error("symbol {0:?} cannot be requested: expected upper-case letters and digits, as Binance spells symbols")]
    Symbol(String),
    #[error("the snapshot fetcher needs at least one pair, one book and a weight budget above 0")]
    Empty,
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    #[error("cannot start the snapshot fetcher thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// The fetcher's counters. Every failure counted here is followed by a
/// retry while the pair's request stands.
#[derive(Debug, Default)]
pub struct SnapshotCounters {
    /// Requests sent.
    pub requests: AtomicU64,
    /// Snapshots delivered.
    pub ok: AtomicU64,
    /// 429 answers.
    pub rate_limited: AtomicU64,
    /// 418 answers (IP bans).
    pub banned: AtomicU64,
    /// 5xx answers.
    pub server_errors: AtomicU64,
    /// Requests without an answer (connection, TLS, timeout).
    pub network_errors: AtomicU64,
    /// Other non-200 answers.
    pub client_errors: AtomicU64,
    /// 200 answers whose body was not a usable snapshot.
    pub bad_bodies: AtomicU64,
    /// Request weight sent, in total.
    pub weight_spent: AtomicU64,
    /// The server's last `X-MBX-USED-WEIGHT-1M` (a gauge).
    pub server_weight_1m: AtomicU64,
}

impl SnapshotCounters {
    /// A relaxed read of one counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// A pair's request slot holds this when no request is waiting.
const NO_REQUEST: u64 = u64::MAX;

/// State both ends share.
#[derive(Debug)]
struct Shared {
    /// Per pair, the attempt of the newest request not yet taken.
    pending: Box<[AtomicU64]>,
    stop: AtomicBool,
    counters: SnapshotCounters,
}

/// The hot side's end: non-blocking and allocation-free.
#[derive(Debug)]
pub struct SnapshotClient {
    shared: Arc<Shared>,
    replies: Receiver<SnapshotReply>,
    recycled: Sender<Box<SnapshotBook>>,
    worker: Thread,
}

impl SnapshotClient {
    /// Asks for `r.pair`'s snapshot, replacing a request for that pair not
    /// yet taken. False (and nothing asked) for a pair not configured, for
    /// `attempt == u64::MAX`, or once the fetcher stopped. Never blocks.
    pub fn request(&self, r: SnapshotRequest) -> bool {
        let Some(slot) = self.shared.pending.get(r.pair.index()) else {
            return false;
        };
        if r.attempt == NO_REQUEST || self.shared.stop.load(Ordering::Relaxed) {
            return false;
        }
        slot.store(r.attempt, Ordering::Release);
        self.worker.unpark();
        true
    }

    /// The next fetched snapshot, if one is queued.
    pub fn try_recv(&self) -> Option<SnapshotReply> {
        self.replies.try_recv().ok()
    }

    /// Returns a reply's book to the pool; the cold thread reuses (or frees)
    /// it, never the hot one. The pool's channel holds every book, so this
    /// cannot find it full for a book that came from a reply.
    pub fn recycle(&self, book: Box<SnapshotBook>) {
        // A book that does not fit (not one of the pool's) is dropped here:
        // that can only happen to a caller that made its own.
        let _ = self.recycled.try_send(book);
        self.worker.unpark();
    }

    /// The fetcher's counters.
    pub fn counters(&self) -> &SnapshotCounters {
        &self.shared.counters
    }
}

/// The cold thread's handle: stop it (or drop it) to end the thread.
#[derive(Debug)]
pub struct Fetcher {
    shared: Arc<Shared>,
    agent: ureq::Agent,
    thread: Option<JoinHandle<()>>,
}

impl Fetcher {
    /// The fetcher's counters.
    pub fn counters(&self) -> &SnapshotCounters {
        &self.shared.counters
    }

    /// Ends the thread, interrupting a request in flight, and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            self.agent.clone().shutdown();
            thread.thread().unpark();
            // A panic on the cold thread was already reported by the hook.
            let _ = thread.join();
        }
    }
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Checks `config`, builds the TLS config and the book pool, and starts the
/// cold thread. `wake` runs on that thread after each reply is queued (the
/// hot side passes a closure calling `mio::Waker::wake`).
pub fn spawn(config: FetcherConfig, wake: Box<dyn Fn() + Send>) -> Result<(SnapshotClient, Fetcher), SnapshotError> {
    validate(&config)?;
    let tls = crate::feed::tls::client_config(config.ca_file.as_deref())?;
    let http = http::DepthHttp::new(&config.rest_url, config.limit, tls, config.request_timeout);
    let agent = http.agent();
    let levels = usize::try_from(config.limit).unwrap_or(usize::MAX);
    let (reply_tx, replies) = crossbeam_channel::bounded(config.books);
    let (recycled, recycled_rx) = crossbeam_channel::bounded(config.books);
    for _ in 0..config.books {
        let _ = recycled.try_send(Box::new(SnapshotBook::with_capacity(levels)));
    }
    let shared = Arc::new(Shared {
        pending: config.symbols.iter().map(|_| AtomicU64::new(NO_REQUEST)).collect(),
        stop: AtomicBool::new(false),
        counters: SnapshotCounters::default(),
    });
    let worker = worker::Worker::new(config, Arc::clone(&shared), http, reply_tx, recycled_rx, wake);
    let thread = std::thread::Builder::new().name("snapshots".into()).spawn(move || worker.run())?;
    let client = SnapshotClient { shared: Arc::clone(&shared), replies, recycled, worker: thread.thread().clone() };
    Ok((client, Fetcher { shared, agent, thread: Some(thread) }))
}

fn validate(config: &FetcherConfig) -> Result<(), SnapshotError> {
    if !(5..=5000).contains(&config.limit) {
        return Err(SnapshotError::Limit(config.limit));
    }
    if config.symbols.is_empty() || config.books == 0 || config.weight_budget == 0 {
        return Err(SnapshotError::Empty);
    }
    if let Some(bad) =
        config.symbols.iter().find(|s| s.is_empty() || !s.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
    {
        return Err(SnapshotError::Symbol(bad.clone()));
    }
    if !rest_url_is_acceptable(&config.rest_url) {
        return Err(SnapshotError::RestUrl(config.rest_url.clone()));
    }
    Ok(())
}

/// `https://host[:port]`, or `http://` to a loopback host: TLS is never
/// skipped on a real network.
fn rest_url_is_acceptable(url: &str) -> bool {
    let url = url.trim_end_matches('/');
    let (secure, authority) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(a), _) => (true, a),
        (None, Some(a)) => (false, a),
        (None, None) => return false,
    };
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return false;
    }
    let port_ok = |tail: &str| tail.is_empty() || tail.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok());
    let (host, tail) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((ip, tail)) => (authority.get(..ip.len() + 2).unwrap_or(""), tail),
            None => return false,
        },
        None => authority.find(':').map_or((authority, ""), |at| authority.split_at(at)),
    };
    if host.is_empty() || !port_ok(tail) {
        return false;
    }
    secure || matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_refused_beyond_loopback() {
        for ok in [
            "https://api.binance.com",
            "https://data-api.binance.vision/",
            "https://127.0.0.1:8443",
            "http://127.0.0.1:9000",
            "http://localhost:1",
            "http://[::1]:80",
            "https://[::1]",
        ] {
            assert!(rest_url_is_acceptable(ok), "{ok}");
        }
        for bad in [
            "http://api.binance.com",
            "http://10.0.0.1:80",
            "http://127.0.0.1.evil.com",
            "ftp://api.binance.com",
            "https://api.binance.com/api",
            "https://user@api.binance.com",
            "https://",
            "api.binance.com",
            "https://host:port",
        ] {
            assert!(!rest_url_is_acceptable(bad), "{bad}");
        }
    }

    #[test]
    fn a_bad_config_is_refused_with_the_setting_to_fix() {
        let base = FetcherConfig::new("https://api.binance.com", 1000, vec!["BTCUSDT".into()]);
        let try_spawn = |c: FetcherConfig| spawn(c, Box::new(|| {})).map(|_| ()).unwrap_err().to_string();
        assert!(try_spawn(FetcherConfig { limit: 4, ..base.clone() }).contains("snapshot_limit is 4"));
        assert!(try_spawn(FetcherConfig { limit: 5001, ..base.clone() }).contains("5..=5000"));
        assert!(try_spawn(FetcherConfig { symbols: vec!["btc&x=1".into()], ..base.clone() }).contains("btc&x=1"));
        assert!(
            try_spawn(FetcherConfig { rest_url: "http://api.binance.com".into(), ..base.clone() }).contains("rest_url")
        );
        assert!(try_spawn(FetcherConfig { symbols: vec![], ..base }).contains("at least one pair"));
    }
}
