//! The little HTTP/1.1 the endpoint speaks: one request head in, one
//! response out, then the connection closes. No bodies, no keep-alive, no
//! chunking — a probe or a scraper needs nothing more, and nothing more can
//! be abused.

/// A request head, as much of it as routing needs.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Request<'a> {
    pub method: &'a str,
    /// The request target without its query string.
    pub path: &'a str,
}

impl<'a> Request<'a> {
    /// Reads the request line of a complete head. Anything that is not a
    /// well-formed request line yields empty fields, which routing answers
    /// like any other unknown method or path.
    pub fn parse(head: &'a [u8]) -> Request<'a> {
        let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = std::str::from_utf8(line).unwrap_or("");
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        Request { method, path: target.split('?').next().unwrap_or("") }
    }
}

/// Where a request head ends (the index just past its blank line), if it
/// has ended. `from` is how much of `buf` was searched before: only the
/// bytes that could complete a terminator with new data are searched again.
pub(super) fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    buf.get(start..)?.windows(4).position(|w| w == b"\r\n\r\n").map(|i| start + i + 4)
}

/// A complete response; the connection closes after it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Response {
    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response { status, content_type: "text/plain", body: body.into() }
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            431 => "Request Header Fields Too Large",
            503 => "Service Unavailable",
            _ => "Internal Server Error",
        };
        format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            self.status,
            self.content_type,
            self.body.len(),
            self.body
        )
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_line_gives_method_and_path_without_query() {
        let r = Request::parse(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r, Request { method: "GET", path: "/metrics" });
        assert_eq!(Request::parse(b"\xff\xfe\r\n\r\n"), Request { method: "", path: "" });
        assert_eq!(Request::parse(b"\r\n\r\n"), Request { method: "", path: "" });
    }

    #[test]
    fn a_head_ends_at_its_blank_line_even_when_it_arrives_split() {
        let full = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        assert_eq!(head_end(full, 0), Some(full.len() - 4));
        // The terminator straddles the part already searched.
        let cut = full.len() - 6;
        assert_eq!(head_end(&full[..cut], 0), None);
        assert_eq!(head_end(full, cut), Some(full.len() - 4));
        assert_eq!(head_end(b"", 0), None);
        assert_eq!(head_end(b"\r\n\r", 10), None);
    }

    #[test]
    fn responses_are_byte_for_byte_what_clients_already_parse() {
        assert_eq!(
            Response::text(404, "not found; try /metrics or /healthz\n").to_bytes(),
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 36\r\nConnection: close\r\n\r\nnot found; try /metrics or /healthz\n"
        );
    }
}
