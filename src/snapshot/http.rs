//! One `GET /api/v3/depth` exchange, on a blocking ureq agent whose TLS is
//! the feed's: the rustls client config of [`crate::feed::tls`] (webpki-roots
//! plus `binance.ca_file`, verification always on), so a CA trusted for the
//! WebSocket is trusted for REST and nothing else is.
//!
//! ureq's own rustls connector takes either webpki-roots or a given list of
//! certificates, not both; [`FeedTls`] is the small connector that hands
//! ureq a TLS stream built from the feed's config instead.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, TcpConnector, Transport, TransportAdapter,
};

use crate::feed::retry_after;
use crate::reject::RejectKind;
use crate::venue::binance_spot::snapshot::{SnapshotBook, parse_snapshot};

/// Largest answer body read: a 5,000-level snapshot is about 400 kB.
const MAX_BODY_BYTES: u64 = 4 << 20;

/// Longest piece of a server's error body quoted in a log line.
const MAX_QUOTED_BYTES: usize = 200;

/// What one request came to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// 200 with a snapshot, now in the book.
    Ok,
    /// 429: over the rate limit; `Retry-After` if it parsed.
    RateLimited(Option<Duration>),
    /// 418: the IP is banned; `Retry-After` (the ban's end) if it parsed.
    Banned(Option<Duration>),
    /// 5xx: Binance's side.
    ServerError(u16),
    /// No answer: connection, TLS or timeout (the error's text, escaped).
    Network(String),
    /// Another status (400 for an unknown symbol, 403 from the WAF, a
    /// redirect): the start of the body, escaped.
    ClientError { status: u16, body: String },
    /// 200 whose body is not a snapshot this book can hold.
    BadBody(RejectKind),
}

/// An outcome and the server's count of the IP's weight this minute
/// (`X-MBX-USED-WEIGHT-1M`), when an answer carried one.
#[derive(Debug)]
pub(crate) struct Answer {
    pub outcome: Outcome,
    pub used_weight_1m: Option<u32>,
}

/// The REST side of the fetcher: one agent (a keep-alive pool), the base
/// URL and a body buffer reused across requests.
pub(crate) struct DepthHttp {
    agent: ureq::Agent,
    base: String,
    limit: u32,
    body: Vec<u8>,
}

impl DepthHttp {
    /// An agent trusting `tls`, giving up on any one request after `timeout`.
    pub(crate) fn new(base: &str, limit: u32, tls: Arc<ClientConfig>, timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            // Binance does not redirect this endpoint; a redirect is reported, not followed.
            .max_redirects(0)
            .user_agent(concat!("imbalance-monitor/", env!("CARGO_PKG_VERSION")))
            .build();
        let connector = ().chain(TcpConnector::default()).chain(FeedTls { config: tls });
        let agent = ureq::Agent::with_parts(config, connector, DefaultResolver::default());
        DepthHttp { agent, base: base.trim_end_matches('/').to_owned(), limit, body: Vec::new() }
    }

    /// A handle that interrupts a request in flight ([`ureq::Agent::shutdown`]).
    pub(crate) fn agent(&self) -> ureq::Agent {
        self.agent.clone()
    }

    /// `GET {base}/api/v3/depth?symbol={symbol}&limit={limit}` into `book`.
    pub(crate) fn fetch(&mut self, symbol: &str, book: &mut SnapshotBook) -> Answer {
        let url = format!("{}/api/v3/depth?symbol={symbol}&limit={}", self.base, self.limit);
        let mut response = match self.agent.get(&url).call() {
            Ok(r) => r,
            Err(e) => return Answer { outcome: Outcome::Network(escape(&e.to_string())), used_weight_1m: None },
        };
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).map(|v| v.as_bytes());
        let used_weight_1m =
            header("x-mbx-used-weight-1m").and_then(|v| std::str::from_utf8(v).ok()?.trim().parse().ok());
        let now_unix_secs = crate::units::UnixNanos::now().0 / 1_000_000_000;
        let retry_after = header("retry-after").and_then(|v| retry_after::parse(v, now_unix_secs));
        self.body.clear();
        let read = response.body_mut().with_config().limit(MAX_BODY_BYTES).reader().read_to_end(&mut self.body);
        let outcome = match (status, read) {
            (429, _) => Outcome::RateLimited(retry_after),
            (418, _) => Outcome::Banned(retry_after),
            (500..=599, _) => Outcome::ServerError(status),
            (200, Ok(_)) => match parse_snapshot(&self.body, book) {
                Ok(()) => Outcome::Ok,
                Err(kind) => Outcome::BadBody(kind),
            },
            (200, Err(e)) => Outcome::Network(escape(&format!("reading the body: {e}"))),
            (_, _) => Outcome::ClientError { status, body: quote(&self.body) },
        };
        Answer { outcome, used_weight_1m }
    }
}

/// Server text made safe for one log line.
fn escape(text: &str) -> String {
    crate::sanitize::escape_controls(text).into_owned()
}

/// The start of a body, lossily decoded and escaped, for a log line.
fn quote(body: &[u8]) -> String {
    let cut = body.get(..MAX_QUOTED_BYTES).unwrap_or(body);
    let text = String::from_utf8_lossy(cut);
    let ellipsis = if cut.len() < body.len() { "…" } else { "" };
    format!("{}{ellipsis}", escape(text.trim()))
}

/// The TLS step of the agent's connector chain, with the feed's config.
#[derive(Debug)]
struct FeedTls {
    config: Arc<ClientConfig>,
}

impl<In: Transport> Connector<In> for FeedTls {
    type Out = Either<In, FeedTlsTransport>;

    fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details.uri.host().ok_or(ureq::Error::Tls("the URL has no host to verify the certificate of"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| ureq::Error::Tls("the URL's host is neither a DNS name nor an IP address"))?;
        let mut conn = ClientConnection::new(Arc::clone(&self.config), name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), Arc::clone(&details.current_time));
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock)?;
        let buffers = LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        Ok(Some(Either::B(FeedTlsTransport { buffers, stream: StreamOwned { conn, sock } })))
    }
}

/// A TLS stream over the chained transport, with ureq's buffers.
struct FeedTlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl std::fmt::Debug for FeedTlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedTlsTransport").finish_non_exhaustive()
    }
}

impl Transport for FeedTlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = self.buffers.output().get(..amount).ok_or(ureq::Error::Tls("output beyond the buffer"))?;
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let amount = self.stream.read(self.buffers.input_append_buf())?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}
