//! Just enough HTTP/1.1 for the simulator's port: the request head of every
//! new connection is read here first, so a WebSocket upgrade and a plain REST
//! `GET` can share the port as they do at Binance, and REST answers are
//! written here. Requests with a body are refused: Binance's market-data
//! endpoints take none.

use std::fmt::Write as _;

/// Longest request head accepted (request line and headers).
pub const MAX_HEAD: usize = 16 * 1024;

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    /// The request target as sent: path and query (`/api/v3/depth?symbol=X`).
    pub target: String,
    /// An `Upgrade` header is present: this is a WebSocket handshake.
    pub upgrade: bool,
    /// Bytes of the head, blank line included.
    pub len: usize,
}

/// What the bytes read so far hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The head is not complete yet.
    Partial,
    Complete(Head),
    /// Not a request this server takes; the reason goes in a 400 answer.
    Bad(&'static str),
}

/// Parses a request head from the start of `buf`.
pub fn parse_head(buf: &[u8]) -> Parsed {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD { Parsed::Bad("request head too large") } else { Parsed::Partial };
    };
    let Ok(text) = std::str::from_utf8(buf.get(..end).unwrap_or_default()) else {
        return Parsed::Bad("request head is not UTF-8");
    };
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (request_line.next(), request_line.next(), request_line.next(), request_line.next())
    else {
        return Parsed::Bad("malformed request line");
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Parsed::Bad("malformed request line");
    }
    let mut upgrade = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Parsed::Bad("malformed header line");
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        } else if (name.eq_ignore_ascii_case("content-length") && value != "0")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            return Parsed::Bad("request bodies are not accepted");
        }
    }
    Parsed::Complete(Head { method: method.to_owned(), target: target.to_owned(), upgrade, len: end + 4 })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        418 => "I'm a teapot",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// A complete response with a JSON body; the connection closes after it.
pub fn response(status: u16, headers: &[(&str, String)], body: &str) -> Vec<u8> {
    let mut head = String::with_capacity(256);
    let _ = write!(
        head,
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: {}\r\n",
        reason(status),
        body.len()
    );
    for (name, value) in headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_and_upgrade_heads_are_told_apart() {
        let get = b"GET /api/v3/depth?symbol=BTCUSDT&limit=5 HTTP/1.1\r\nHost: x\r\n\r\nrest";
        let Parsed::Complete(head) = parse_head(get) else { panic!() };
        assert_eq!(
            (head.method.as_str(), head.target.as_str(), head.upgrade),
            ("GET", "/api/v3/depth?symbol=BTCUSDT&limit=5", false)
        );
        assert_eq!(&get[head.len..], b"rest");
        let ws = b"GET /stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
        assert!(matches!(parse_head(ws), Parsed::Complete(Head { upgrade: true, .. })));
    }

    #[test]
    fn partial_oversized_and_malformed_heads() {
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n"), Parsed::Partial);
        assert!(matches!(parse_head(&vec![b'a'; MAX_HEAD + 1]), Parsed::Bad(_)));
        assert!(matches!(parse_head(b"GET\r\n\r\n"), Parsed::Bad(_)));
        assert!(matches!(parse_head(b"GET / HTTP/1.1\r\nnocolon\r\n\r\n"), Parsed::Bad(_)));
        assert!(matches!(parse_head(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"), Parsed::Bad(_)));
        assert!(matches!(parse_head(b"GET x HTTP/1.1\r\n\r\n"), Parsed::Bad(_)));
    }

    #[test]
    fn response_has_length_headers_and_closes() {
        let r = response(429, &[("Retry-After", "2".into())], "{}");
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: 2\r\nRetry-After: 2\r\nConnection: close\r\n\r\n{}"
        );
    }
}
