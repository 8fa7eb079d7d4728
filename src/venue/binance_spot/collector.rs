//! Collector recordings (hftbacktest's format, and ours): which pair a bare
//! REST snapshot line belongs to.
//!
//! A snapshot body names no symbol. hftbacktest writes one symbol per file,
//! so there the line belongs to the file's symbol, the one its streams name.
//! Our own recorder adds a `"symbol"` member to each snapshot line it writes
//! (readers that do not know it skip it, hftbacktest's included), so a
//! recording of several pairs stays unambiguous.

/// Whether `json` is a bare depth snapshot (`{"lastUpdateId":…}` with no
/// stream envelope), judged by its first member as both writers emit it.
pub fn is_snapshot_line(json: &[u8]) -> bool {
    let t = json.trim_ascii_start();
    t.starts_with(b"{\"lastUpdateId\"")
        || (t.starts_with(b"{") && !contains(t, b"\"stream\"") && contains(t, b"\"lastUpdateId\""))
}

/// The `"symbol"` member of a snapshot line, as our recorder writes it.
pub fn snapshot_symbol(json: &[u8]) -> Option<&str> {
    let at = find(json, b"\"symbol\":\"")? + 10;
    let rest = json.get(at..)?;
    let end = rest.iter().position(|&c| c == b'"')?;
    std::str::from_utf8(rest.get(..end)?).ok().filter(|s| !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric()))
}

/// The symbol a combined-stream line is about (`btcusdt@depth@100ms` →
/// `BTCUSDT`), for telling a collector file's symbol.
pub fn stream_symbol(json: &[u8]) -> Option<String> {
    let at = find(json, b"\"stream\":\"")? + 10;
    let rest = json.get(at..)?;
    let end = rest.iter().position(|&c| c == b'@' || c == b'"')?;
    let sym = std::str::from_utf8(rest.get(..end)?).ok()?;
    (!sym.is_empty() && sym.bytes().all(|c| c.is_ascii_alphanumeric())).then(|| sym.to_ascii_uppercase())
}

/// The snapshot line our recorder writes for `symbol`: the REST body with a
/// `"symbol"` member first after `lastUpdateId`.
pub fn tagged_snapshot_line(body: &[u8], symbol: &str) -> Option<Vec<u8>> {
    let t = body.trim_ascii();
    let inner = t.strip_prefix(b"{")?;
    let mut out = Vec::with_capacity(t.len() + symbol.len() + 16);
    // Keep `lastUpdateId` first, where readers (and `is_snapshot_line`) look.
    let comma = inner.iter().position(|&c| c == b',')?;
    let (first, rest) = inner.split_at(comma);
    out.push(b'{');
    out.extend_from_slice(first);
    out.extend_from_slice(b",\"symbol\":\"");
    out.extend_from_slice(symbol.as_bytes());
    out.push(b'"');
    out.extend_from_slice(rest);
    Some(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_lines_and_their_symbols_are_told_apart_from_stream_lines() {
        let bare = br#"{"lastUpdateId":50093239218,"bids":[["1.0","2.0"]],"asks":[]}"#;
        assert!(is_snapshot_line(bare));
        assert_eq!(snapshot_symbol(bare), None);
        let tagged = tagged_snapshot_line(bare, "BTCUSDT").unwrap();
        assert!(is_snapshot_line(&tagged));
        assert_eq!(snapshot_symbol(&tagged), Some("BTCUSDT"));
        assert_eq!(&tagged[..33], br#"{"lastUpdateId":50093239218,"symb"#);
        let mut book = crate::venue::binance_spot::snapshot::SnapshotBook::with_capacity(4);
        crate::venue::binance_spot::snapshot::parse_snapshot(&tagged, &mut book).unwrap();
        assert_eq!(book.last_update_id, 50093239218);
        let stream = br#"{"stream":"btcusdt@depth@100ms","data":{"U":1,"u":2,"lastUpdateId":3}}"#;
        assert!(!is_snapshot_line(stream));
        assert_eq!(stream_symbol(stream).as_deref(), Some("BTCUSDT"));
    }
}
