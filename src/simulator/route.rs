//! The upgrade request's path: which endpoint, which streams up front, and the
//! HTTP error Binance answers for anything else.

use super::streams::{MAX_STREAMS_PER_CONNECTION, is_valid_stream_name};

/// What a connection asked for in its URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// `/stream` sends `{"stream":…,"data":…}`; `/ws` sends the payload alone.
    pub combined: bool,
    /// Streams subscribed from the URL, in order, without duplicates.
    pub streams: Vec<String>,
}

/// Why an upgrade is refused: the HTTP status and a one-line body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

impl Refusal {
    fn not_found(path: &str) -> Self {
        Refusal {
            status: 404,
            reason: format!("no such endpoint `{path}`; use /stream?streams=a/b, /ws/<stream> or /ws"),
        }
    }

    fn bad(reason: String) -> Self {
        Refusal { status: 400, reason }
    }
}

/// Routes a request target (`/stream?streams=btcusdt@depth5/ethusdt@depth5`).
///
/// Endpoints as Binance's: `/stream` (combined, streams from the `streams`
/// query parameter, or none to `SUBSCRIBE` later), `/ws/<stream>[/<stream>…]`
/// and `/ws` (raw). Unknown paths are 404; an empty or malformed stream list,
/// or more than 1024 streams, is 400.
pub fn route(target: &str) -> Result<Route, Refusal> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    match path {
        "/stream" | "/stream/" => {
            let list = query.split('&').find_map(|kv| kv.strip_prefix("streams="));
            let streams = match list {
                Some(list) => stream_list(&percent_decode(list))?,
                None => Vec::new(),
            };
            Ok(Route { combined: true, streams })
        }
        "/ws" => Ok(Route { combined: false, streams: Vec::new() }),
        _ => match path.strip_prefix("/ws/") {
            Some(list) => Ok(Route { combined: false, streams: stream_list(&percent_decode(list))? }),
            None => Err(Refusal::not_found(path)),
        },
    }
}

fn stream_list(list: &str) -> Result<Vec<String>, Refusal> {
    if list.is_empty() {
        return Err(Refusal::bad("empty stream list; name at least one stream, e.g. btcusdt@depth10@100ms".into()));
    }
    let mut streams: Vec<String> = Vec::new();
    for name in list.split('/') {
        if !is_valid_stream_name(name) {
            return Err(Refusal::bad(format!("invalid stream name `{name}` in the stream list")));
        }
        if !streams.iter().any(|s| s == name) {
            streams.push(name.to_owned());
        }
    }
    if streams.len() > MAX_STREAMS_PER_CONNECTION {
        return Err(Refusal::bad(format!(
            "{} streams; at most {MAX_STREAMS_PER_CONNECTION} per connection",
            streams.len()
        )));
    }
    Ok(streams)
}

/// Decodes `%XX` escapes (some clients escape the `@` of stream names); an
/// escape that does not decode is kept as written, and fails validation.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_route_like_binance() {
        assert_eq!(
            route("/stream?streams=btcusdt@depth10@100ms/ethusdt@depth5"),
            Ok(Route { combined: true, streams: vec!["btcusdt@depth10@100ms".into(), "ethusdt@depth5".into()] })
        );
        assert_eq!(route("/stream"), Ok(Route { combined: true, streams: vec![] }));
        assert_eq!(route("/ws/btcusdt@depth5"), Ok(Route { combined: false, streams: vec!["btcusdt@depth5".into()] }));
        assert_eq!(route("/ws"), Ok(Route { combined: false, streams: vec![] }));
        assert_eq!(route("/stream?streams=btcusdt%40depth5").unwrap().streams, vec!["btcusdt@depth5".to_owned()]);
    }

    #[test]
    fn unknown_paths_are_404_and_bad_lists_400() {
        assert_eq!(route("/").unwrap_err().status, 404);
        assert_eq!(route("/api/v3/depth").unwrap_err().status, 404);
        assert_eq!(route("/stream?streams=").unwrap_err().status, 400);
        assert_eq!(route("/stream?streams=btcusdt@depth5//x@y").unwrap_err().status, 400);
        assert_eq!(route("/stream?streams=btcusdt").unwrap_err().status, 400);
        assert_eq!(route("/ws/").unwrap_err().status, 400);
        let many: Vec<String> = (0..1025).map(|i| format!("s{i}@depth5")).collect();
        assert_eq!(route(&format!("/stream?streams={}", many.join("/"))).unwrap_err().status, 400);
    }
}
