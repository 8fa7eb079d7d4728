//! `binance.ws_url`, checked as the feed will use it: the streams are
//! appended as `?streams=…` (or `&streams=…`) and each connection's URL is
//! parsed by [`Endpoint::parse`], the parser the run uses.
//!
//! What the parser lets through but breaks the feed is rejected here too:
//! a `#fragment` (everything after it, the streams included, never reaches
//! the server), a port out of range (read as the scheme's default port),
//! `user:password@` (Binance needs no credentials, and the URL is printed
//! by `check-config`; messages show it as `<redacted>@`), and for `wss://`
//! a host that cannot be a TLS server name.

use std::borrow::Cow;

use rustls::pki_types::ServerName;
use tungstenite::http::Uri;

use super::Problems;
use crate::feed::conn::Endpoint;
use crate::pairs::PairId;
use crate::sanitize::redact_userinfo as redacted;
use crate::venue::binance_spot::{StreamTable, combined_stream_url};

const KEY: &str = "binance.ws_url";

/// Longest part of a URL a message repeats.
const SHOWN_CHARS: usize = 120;

/// `url` as a message shows it: redacted, and cut short if it is long.
fn shown(url: &str) -> String {
    let url = redacted(url);
    match url.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{}… ({} bytes)", &url[..cut], url.len()),
        None => url.into_owned(),
    }
}

/// The port as written in `authority` (`host:port`, `[v6]:port`; no
/// userinfo), even one the URL parser drops for being out of range.
fn port_text(authority: &str) -> Option<&str> {
    let after_host = authority.rfind(']').map_or(authority, |i| &authority[i + 1..]);
    after_host.rfind(':').map(|i| &after_host[i + 1..])
}

/// Checks the URL on its own; `false` if it is unusable (then the stream
/// URLs are not checked, so one mistake is reported once).
pub(super) fn check(ws_url: &str, p: &mut Problems<'_>) -> bool {
    let shown = shown(ws_url);
    let tls = if ws_url.starts_with("wss://") {
        true
    } else if ws_url.starts_with("ws://") {
        false
    } else {
        p.add(
            KEY,
            format_args!(
                "is {shown:?}; expected a ws:// or wss:// URL such as \"wss://stream.binance.com:9443/stream\""
            ),
        );
        return false;
    };
    let before = p.0.len();
    if matches!(redacted(ws_url), Cow::Owned(_)) {
        p.add(
            KEY,
            format_args!(
                "is {shown:?}; it holds a user name or password (`user:password@`), which Binance's streams do not \
                 use and which would be shown wherever the URL is; remove it"
            ),
        );
    }
    if ws_url.contains('#') {
        p.add(
            KEY,
            format_args!(
                "is {shown:?}; it has a #fragment, and the streams appended after it (`?streams=…`) would never \
                 reach the server; remove the `#` and what follows"
            ),
        );
    }
    if p.0.len() > before {
        return false;
    }
    let uri: Uri = match ws_url.parse() {
        Ok(u) => u,
        Err(e) => {
            p.add(KEY, format_args!("is {shown:?}, which is not a valid URL ({e})"));
            return false;
        }
    };
    let Some(host) = uri.host().filter(|h| !h.is_empty()) else {
        p.add(KEY, format_args!("is {shown:?}, which has no host; e.g. \"wss://stream.binance.com:9443/stream\""));
        return false;
    };
    if let Some(port) = uri.authority().and_then(|a| port_text(a.as_str()))
        && !matches!(port.parse::<u16>(), Ok(1..))
    {
        p.add(KEY, format_args!("is {shown:?}; its port {port:?} is not a port number (1 to 65535)"));
        return false;
    }
    let path = uri.path().trim_end_matches('/');
    if path == "/ws" || path.starts_with("/ws/") {
        let base = ws_url.get(..ws_url.find("/ws").unwrap_or(ws_url.len())).unwrap_or(ws_url);
        p.add(
            KEY,
            format_args!(
                "is {shown:?}; /ws is Binance's raw endpoint (one stream, frames without the stream's name), but the \
                 feed subscribes every pair at the combined-stream path: use \"{base}/stream\""
            ),
        );
        return false;
    }
    let name = host.trim_start_matches('[').trim_end_matches(']');
    if tls && ServerName::try_from(name.to_string()).is_err() {
        p.add(
            KEY,
            format_args!("is {shown:?}; {name:?} is neither a DNS name nor an IP address, so TLS cannot verify it"),
        );
        return false;
    }
    true
}

/// Every connection's URL, built and parsed exactly as the feed will.
pub(super) fn check_streams(ws_url: &str, table: &StreamTable, per_connection: usize, p: &mut Problems<'_>) {
    let all: Vec<PairId> = table.pairs().collect();
    for (i, chunk) in all.chunks(per_connection.max(1)).enumerate() {
        let url = combined_stream_url(ws_url, table, chunk);
        if Endpoint::parse(&url).is_err() {
            let reason = url.parse::<Uri>().err().map_or_else(|| "rejected".to_string(), |e| e.to_string());
            p.add(
                KEY,
                format_args!(
                    "is {:?}; with the streams of connection {i} appended ({} pairs, {} bytes) it is not a valid URL \
                     ({reason}); shorten it or lower `binance.max_streams_per_connection`",
                    shown(ws_url),
                    chunk.len(),
                    url.len()
                ),
            );
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_urls_are_cut_short_in_messages() {
        let long = format!("ws://h/?q={}", "é".repeat(200));
        let s = shown(&long);
        assert!(s.starts_with("ws://h/?q=é") && s.ends_with("… (410 bytes)") && s.chars().count() < 140, "{s}");
        assert_eq!(shown("ws://u:p@h/"), "ws://<redacted>@h/");
    }

    #[test]
    fn the_port_is_read_as_written() {
        assert_eq!(port_text("h:99999"), Some("99999"));
        assert_eq!(port_text("[::1]:9443"), Some("9443"));
        assert_eq!(port_text("[::1]"), None);
        assert_eq!(port_text("h:"), Some(""));
        assert_eq!(port_text("stream.binance.com"), None);
    }
}
