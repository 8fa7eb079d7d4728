//! Binance stream names, the pair registry and the combined-stream URL.
//!
//! Pairs are interned once at start-up to a [`PairId`]; the hot path maps the
//! `"stream"` of a combined message to that id with one hash lookup on the
//! borrowed bytes, never building a `String`.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::pairs::{Fnv, PairId, PairTable};

/// Depth levels of a Binance partial book depth stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Depth {
    D5 = 5,
    D10 = 10,
    D20 = 20,
}

impl Depth {
    /// Number of levels per side the stream carries.
    pub const fn levels(self) -> usize {
        self as usize
    }

    /// From a configured number, if Binance offers that depth.
    pub const fn from_levels(n: u32) -> Option<Self> {
        match n {
            5 => Some(Depth::D5),
            10 => Some(Depth::D10),
            20 => Some(Depth::D20),
            _ => None,
        }
    }
}

/// Update speed of a partial depth stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpdateSpeed {
    Ms100,
    Ms1000,
}

impl UpdateSpeed {
    /// Milliseconds between updates.
    pub const fn millis(self) -> u32 {
        match self {
            UpdateSpeed::Ms100 => 100,
            UpdateSpeed::Ms1000 => 1000,
        }
    }

    /// From a configured number, if Binance offers that speed.
    pub const fn from_millis(ms: u32) -> Option<Self> {
        match ms {
            100 => Some(UpdateSpeed::Ms100),
            1000 => Some(UpdateSpeed::Ms1000),
            _ => None,
        }
    }

    /// Stream-name suffix: Binance's 1000 ms streams carry none
    /// (`btcusdt@depth10`), the 100 ms ones `@100ms`.
    const fn suffix(self) -> &'static str {
        match self {
            UpdateSpeed::Ms100 => "@100ms",
            UpdateSpeed::Ms1000 => "",
        }
    }
}

/// Which partial-depth stream every pair is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamKind {
    pub depth: Depth,
    pub speed: UpdateSpeed,
}

impl StreamKind {
    /// `depth10@100ms`, as logged at start-up.
    pub fn label(self) -> String {
        format!("depth{}{}", self.depth.levels(), self.speed.suffix())
    }

    /// The stream name Binance uses for `symbol` (upper case in, lower case out):
    /// `btcusdt@depth10@100ms`.
    pub fn stream_name(self, symbol: &str) -> String {
        format!("{}@{}", symbol.to_ascii_lowercase(), self.label())
    }
}

/// Which streams keep a local book: diff depth at a speed, and optionally
/// the best bid/ask stream as the touch overlay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DiffKind {
    pub speed: UpdateSpeed,
    pub book_ticker: bool,
}

impl DiffKind {
    /// `depth@100ms`, or `depth` at 1000 ms (Binance's names).
    pub fn label(self) -> String {
        format!("depth{}", self.speed.suffix())
    }
}

/// What a local-book stream carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamRole {
    /// `<sym>@depth@100ms` / `<sym>@depth`.
    Diff,
    /// `<sym>@bookTicker`.
    Touch,
}

/// The configured pairs and the stream name of each.
#[derive(Clone, Debug)]
pub struct StreamTable {
    kind: StreamKind,
    /// Diff mode: the local-book streams (then `kind` is unused).
    diff: Option<DiffKind>,
    pairs: PairTable,
    /// Per pair, its streams joined by `/` (as in a combined-stream URL).
    names: Vec<String>,
    by_name: HashMap<Box<[u8]>, PairId, BuildHasherDefault<Fnv>>,
    /// Diff mode: every stream name with its pair and role.
    roles: HashMap<Box<[u8]>, (PairId, StreamRole), BuildHasherDefault<Fnv>>,
}

impl StreamTable {
    /// Interns `symbols` (upper case, config order) for streams of `kind`.
    ///
    /// Panics never; duplicate symbols are rejected by config validation first,
    /// and a later duplicate here simply maps to its first id.
    pub fn new(symbols: &[String], kind: StreamKind) -> Self {
        let mut by_name = HashMap::default();
        let mut names = Vec::with_capacity(symbols.len());
        for (i, sym) in symbols.iter().enumerate() {
            let name = kind.stream_name(sym);
            let id = PairId(u16::try_from(i).unwrap_or(u16::MAX));
            by_name.entry(name.as_bytes().into()).or_insert(id);
            names.push(name);
        }
        Self { kind, diff: None, pairs: PairTable::new(symbols), names, by_name, roles: HashMap::default() }
    }

    /// Interns `symbols` for local-book streams of `kind`.
    pub fn diff(symbols: &[String], kind: DiffKind) -> Self {
        let mut roles = HashMap::default();
        let mut names = Vec::with_capacity(symbols.len());
        for (i, sym) in symbols.iter().enumerate() {
            let id = PairId(u16::try_from(i).unwrap_or(u16::MAX));
            let lower = sym.to_ascii_lowercase();
            let diff = format!("{lower}@{}", kind.label());
            roles.entry(diff.as_bytes().into()).or_insert((id, StreamRole::Diff));
            let mut joined = diff;
            if kind.book_ticker {
                let touch = format!("{lower}@bookTicker");
                roles.entry(touch.as_bytes().into()).or_insert((id, StreamRole::Touch));
                joined.push('/');
                joined.push_str(&touch);
            }
            names.push(joined);
        }
        let kind_unused = StreamKind { depth: Depth::D20, speed: kind.speed };
        Self {
            kind: kind_unused,
            diff: Some(kind),
            pairs: PairTable::new(symbols),
            names,
            by_name: HashMap::default(),
            roles,
        }
    }

    /// Diff mode's streams, if the table is in diff mode.
    pub fn diff_kind(&self) -> Option<DiffKind> {
        self.diff
    }

    /// Streams each pair subscribes to.
    pub fn streams_per_pair(&self) -> usize {
        match self.diff {
            Some(DiffKind { book_ticker: true, .. }) => 2,
            _ => 1,
        }
    }

    /// Diff mode: the pair and role of a stream name, if it is one of ours.
    #[inline]
    pub fn lookup_role(&self, stream: &[u8]) -> Option<(PairId, StreamRole)> {
        self.roles.get(stream).copied()
    }

    /// The pair a stream name belongs to, if it is one of ours.
    #[inline]
    pub fn lookup(&self, stream: &[u8]) -> Option<PairId> {
        self.by_name.get(stream).copied()
    }

    /// The stream kind shared by every pair.
    pub fn kind(&self) -> StreamKind {
        self.kind
    }

    /// The venue-neutral pair table the streams were built from.
    pub fn pair_table(&self) -> &PairTable {
        &self.pairs
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True when no pair is configured.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Upper-case symbol of a pair (`BTCUSDT`).
    pub fn symbol(&self, pair: PairId) -> &str {
        self.pairs.symbol(pair)
    }

    /// Stream name of a pair (`btcusdt@depth10@100ms`; in diff mode with
    /// the ticker, both: `btcusdt@depth@100ms/btcusdt@bookTicker`).
    pub fn stream_name(&self, pair: PairId) -> &str {
        self.names.get(pair.index()).map_or("?", String::as_str)
    }

    /// Every pair id, in config order.
    pub fn pairs(&self) -> impl Iterator<Item = PairId> + '_ {
        self.pairs.ids()
    }
}

/// `{ws_url}?streams=a/b/c`: the combined-stream URL for the given pairs.
/// `ws_url` is the `/stream` endpoint (e.g. `wss://stream.binance.com:9443/stream`).
pub fn combined_stream_url(ws_url: &str, table: &StreamTable, pairs: &[PairId]) -> String {
    let mut url = String::with_capacity(ws_url.len() + 11 + pairs.len() * 24);
    url.push_str(ws_url);
    // Without a path (`wss://host:9443`) the request target would start
    // with `?`, which no HTTP server parses: give it `/`, so the server can
    // answer (404, with the path to use) instead of dropping the connection.
    let authority = ws_url.find("://").map_or(0, |i| i + 3);
    let end = ws_url.get(authority..).and_then(|rest| rest.find(['/', '?'])).map_or(ws_url.len(), |i| authority + i);
    if !ws_url.get(end..).is_some_and(|rest| rest.starts_with('/')) {
        url.insert(end, '/');
    }
    url.push(if ws_url.contains('?') { '&' } else { '?' });
    url.push_str("streams=");
    for (i, &p) in pairs.iter().enumerate() {
        if i > 0 {
            url.push('/');
        }
        url.push_str(table.stream_name(p));
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(kind: StreamKind) -> StreamTable {
        StreamTable::new(&["BTCUSDT".into(), "DOTUSDT".into(), "SOLUSDT".into()], kind)
    }

    #[test]
    fn stream_names_follow_binance_naming_for_both_speeds() {
        let fast = StreamKind { depth: Depth::D10, speed: UpdateSpeed::Ms100 };
        let slow = StreamKind { depth: Depth::D5, speed: UpdateSpeed::Ms1000 };
        assert_eq!(fast.stream_name("BTCUSDT"), "btcusdt@depth10@100ms");
        assert_eq!(slow.stream_name("BTCUSDT"), "btcusdt@depth5");
    }

    #[test]
    fn lookup_maps_stream_bytes_to_the_interned_pair() {
        let t = table(StreamKind { depth: Depth::D10, speed: UpdateSpeed::Ms100 });
        assert_eq!(t.lookup(b"dotusdt@depth10@100ms"), Some(PairId(1)));
        assert_eq!(t.lookup(b"dotusdt@depth20@100ms"), None);
        assert_eq!(t.lookup(b"DOTUSDT@depth10@100ms"), None);
        assert_eq!(t.lookup(b"btcusdt@bookTicker"), None);
        assert_eq!(t.symbol(PairId(2)), "SOLUSDT");
    }

    #[test]
    fn a_url_without_a_path_gets_a_slash_before_the_streams() {
        let t = StreamTable::new(&["BTCUSDT".into()], StreamKind { depth: Depth::D10, speed: UpdateSpeed::Ms100 });
        let pairs: Vec<PairId> = t.pairs().collect();
        let url = |base: &str| combined_stream_url(base, &t, &pairs);
        assert_eq!(
            url("wss://stream.binance.com:9443"),
            "wss://stream.binance.com:9443/?streams=btcusdt@depth10@100ms"
        );
        assert_eq!(url("ws://h:1?x=1"), "ws://h:1/?x=1&streams=btcusdt@depth10@100ms");
        assert_eq!(url("ws://h:1/stream"), "ws://h:1/stream?streams=btcusdt@depth10@100ms");
    }

    #[test]
    fn combined_url_lists_every_stream() {
        let t = table(StreamKind { depth: Depth::D10, speed: UpdateSpeed::Ms100 });
        let pairs: Vec<_> = t.pairs().collect();
        assert_eq!(
            combined_stream_url("wss://stream.binance.com:9443/stream", &t, &pairs),
            "wss://stream.binance.com:9443/stream?streams=btcusdt@depth10@100ms/dotusdt@depth10@100ms/solusdt@depth10@100ms"
        );
    }
}
