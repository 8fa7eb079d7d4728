//! `watch`'s side of the wire: one `GET /state` per refresh against a
//! running `run`'s `[metrics_http]` endpoint, over plain HTTP/1.1 on a fresh
//! connection (the endpoint closes every connection after one answer).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::state::{DashboardState, STATE_VERSION};

/// How long one fetch may take before the dashboard says the endpoint is slow.
const TIMEOUT: Duration = Duration::from_secs(2);
/// The largest answer accepted (a state with hundreds of pairs is far below).
const MAX_BODY: u64 = 16 << 20;

/// Why a fetch failed, as the dashboard's footer shows it.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("--url {0:?}: expected http://HOST:PORT (the run's metrics_http.listen)")]
    Url(String),
    #[error("cannot reach {url}: {source} (is `run` up with [metrics_http] listen set?)")]
    Connect {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}/state answered HTTP {status}: {body}")]
    Status { url: String, status: u16, body: String },
    #[error("{url}/state: not a dashboard state: {detail}")]
    Body { url: String, detail: String },
}

/// A parsed `http://host:port` endpoint.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// As given, without a trailing `/`.
    pub url: String,
    host: String,
}

impl Endpoint {
    /// Accepts `http://HOST:PORT`, `HOST:PORT`, with or without a trailing `/`.
    pub fn parse(url: &str) -> Result<Endpoint, FetchError> {
        let trimmed = url.trim_end_matches('/');
        let host = trimmed.strip_prefix("http://").unwrap_or(trimmed);
        if host.is_empty() || host.contains('/') || trimmed.starts_with("https://") || !host.contains(':') {
            return Err(FetchError::Url(url.to_string()));
        }
        let with_scheme = if trimmed.starts_with("http://") { trimmed.to_string() } else { format!("http://{host}") };
        Ok(Endpoint { url: with_scheme, host: host.to_string() })
    }

    fn addr(&self) -> Result<SocketAddr, FetchError> {
        let connect = |source| FetchError::Connect { url: self.url.clone(), source };
        self.host
            .to_socket_addrs()
            .map_err(connect)?
            .next()
            .ok_or_else(|| connect(std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address")))
    }

    /// Fetches and parses one state.
    pub fn fetch(&self) -> Result<DashboardState, FetchError> {
        let connect = |source| FetchError::Connect { url: self.url.clone(), source };
        let mut conn = TcpStream::connect_timeout(&self.addr()?, TIMEOUT).map_err(connect)?;
        conn.set_read_timeout(Some(TIMEOUT)).map_err(connect)?;
        conn.set_write_timeout(Some(TIMEOUT)).map_err(connect)?;
        // One write: a server may answer (and close) on the first segment it reads.
        let request = format!("GET /state HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.host);
        conn.write_all(request.as_bytes()).map_err(connect)?;
        let mut raw = Vec::new();
        conn.take(MAX_BODY).read_to_end(&mut raw).map_err(connect)?;
        let text = String::from_utf8_lossy(&raw);
        let body_err = |detail: String| FetchError::Body { url: self.url.clone(), detail };
        let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| body_err("no HTTP header".into()))?;
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| body_err("no HTTP status".into()))?;
        if status != 200 {
            return Err(FetchError::Status { url: self.url.clone(), status, body: body.trim().to_string() });
        }
        let state = DashboardState::from_json(body).map_err(|e| body_err(e.to_string()))?;
        if state.version != STATE_VERSION {
            return Err(body_err(format!("version {} (this watch reads {STATE_VERSION})", state.version)));
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_with_or_without_scheme_and_https_is_refused() {
        assert_eq!(Endpoint::parse("http://127.0.0.1:9184/").unwrap().url, "http://127.0.0.1:9184");
        assert_eq!(Endpoint::parse("localhost:9184").unwrap().url, "http://localhost:9184");
        for bad in ["https://x:1", "http://x", "http://x:1/metrics", ""] {
            assert!(matches!(Endpoint::parse(bad), Err(FetchError::Url(_))), "{bad}");
        }
    }

    #[test]
    fn a_missing_state_route_is_reported_with_its_status() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\nnot found\n");
        });
        let err = Endpoint::parse(&format!("http://{addr}")).unwrap().fetch().unwrap_err();
        assert_eq!(err.to_string(), format!("http://{addr}/state answered HTTP 404: not found"));
    }
}
