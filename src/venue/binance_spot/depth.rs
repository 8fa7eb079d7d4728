//! The parse stage for Binance Spot: its partial-depth schema on the
//! venue-neutral scanner (`crate::scan`), straight into fixed-point levels,
//! with a byte-exact fast path for the layout Binance actually sends.
//!
//! It accepts the raw payload `{"lastUpdateId":…,"bids":[["p","q"],…],"asks":[…]}`
//! and the combined-stream envelope `{"stream":"btcusdt@depth10@100ms","data":{…}}`,
//! keys in any order, unknown keys and insignificant whitespace skipped. It never
//! allocates, never panics, and never goes through `f64` or `String`: every price
//! and quantity is read from its bytes into a `u64` at scale 1e8 with checked
//! arithmetic. Anything it cannot vouch for is a typed [`RejectKind`] the caller
//! counts; the frame is then skipped whole, never half-applied.
//!
//! Input is expected to be UTF-8 (WebSocket text frames are), but bytes are
//! never trusted: invalid input of any kind yields an error, not a panic.

use crate::book::{Book, BookEvent, BookSide, Level, PushError, SideKind};
use crate::pairs::PairId;
use crate::reject::RejectKind;
use crate::scan::decimal::fast_decimal;
use crate::scan::json::{RawStr, Scan, decode_into, fast_uint, once, plain_string_len};
use crate::units::{Price, Qty};

use super::streams::StreamTable;
use crate::venue::Message;

/// Parses one message. On `Ok(Message::Book(_, BookEvent::Snapshot))`, `book` holds the snapshot;
/// on any other result `book`'s content is unspecified (it is scratch space).
pub fn parse_message(buf: &[u8], streams: &StreamTable, book: &mut Book) -> Result<Message, RejectKind> {
    book.event_time_ms = None;
    if let Some(pair) = binance_depth_frame(buf, streams, book) {
        return Ok(Message::Book(pair, BookEvent::Snapshot));
    }
    let mut s = Scan { b: buf, i: 0 };
    let msg = s.top_level(streams, book)?;
    s.ws();
    if s.i < buf.len() {
        return Err(RejectKind::TrailingBytes);
    }
    Ok(msg)
}

/// Which stream the envelope named, once known.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StreamSeen {
    Absent,
    Pair(PairId),
    /// `!serverShutdown` or another `!`-prefixed system stream.
    System,
    Unknown,
}

/// Fields of a depth payload seen so far.
#[derive(Default)]
struct DepthFields {
    last_update_id: bool,
    bids: bool,
    asks: bool,
}

impl DepthFields {
    fn complete(&self) -> bool {
        self.last_update_id && self.bids && self.asks
    }
}

/// Binance Spot's schema, on the venue-neutral scanner.
impl<'a> Scan<'a> {
    /// `["price","qty"]` pairs into a side, best first.
    #[inline(always)]
    fn levels<S: SideKind>(&mut self, side: &mut BookSide<S>, misordered: RejectKind) -> Result<(), RejectKind> {
        side.clear();
        self.level_array(|level| {
            side.push(level).map_err(|e| match e {
                PushError::Full => RejectKind::TooManyLevels,
                PushError::OutOfOrder => misordered,
            })
        })
    }

    /// A JSON array of `["price","qty"]` levels, each handed to `each` in
    /// message order (Binance's layout through [`fast_level`], anything else
    /// through [`Scan::level`]): the diff and REST snapshot decoders' reader.
    #[inline(always)]
    pub(super) fn level_array(
        &mut self,
        mut each: impl FnMut(Level) -> Result<(), RejectKind>,
    ) -> Result<(), RejectKind> {
        let c = self.next_token()?;
        if c != b'[' {
            return Err(self.type_error(c));
        }
        self.i += 1;
        if self.next_token()? == b']' {
            self.i += 1;
            return Ok(());
        }
        loop {
            let level = match self.b.get(self.i..).and_then(fast_level) {
                Some((level, len)) => {
                    self.i += len;
                    level
                }
                None => self.level()?,
            };
            each(level)?;
            // Binance's layout has no whitespace here: look before scanning.
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => {
                    if !self.more(b']')? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// One `["price","qty"]` level, whitespace and all.
    #[inline(never)]
    fn level(&mut self) -> Result<Level, RejectKind> {
        let c = self.next_token()?;
        if c != b'[' {
            return Err(self.type_error(c));
        }
        self.i += 1;
        let price = Price(self.decimal()?);
        self.expect(b',')?;
        let qty = Qty(self.decimal()?);
        match self.next_token()? {
            b']' => self.i += 1,
            b',' => return Err(RejectKind::WrongType),
            _ => return Err(RejectKind::Syntax),
        }
        Ok(Level { price, qty })
    }

    /// One member of a depth payload; `Ok(false)` when the key is not a depth field.
    #[inline(always)]
    fn depth_member(&mut self, key: &RawStr<'_>, book: &mut Book, seen: &mut DepthFields) -> Result<bool, RejectKind> {
        if key.eq(b"bids") {
            once(&mut seen.bids)?;
            self.levels(&mut book.bids, RejectKind::BidsNotDescending)?;
        } else if key.eq(b"asks") {
            once(&mut seen.asks)?;
            self.levels(&mut book.asks, RejectKind::AsksNotAscending)?;
        } else if key.eq(b"lastUpdateId") {
            once(&mut seen.last_update_id)?;
            book.last_update_id = self.uint()?;
        } else if key.eq(b"E") {
            book.event_time_ms = self.optional_uint()?;
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    /// A depth payload object (the envelope's `data`).
    fn depth_object(&mut self, book: &mut Book) -> Result<(), RejectKind> {
        let c = self.next_token()?;
        if c != b'{' {
            return Err(self.type_error(c));
        }
        self.i += 1;
        let mut seen = DepthFields::default();
        if self.next_token()? == b'}' {
            self.i += 1;
        } else {
            loop {
                let key = self.key()?;
                if !self.depth_member(&key, book, &mut seen)? {
                    self.skip_value()?;
                }
                if !self.more(b'}')? {
                    break;
                }
            }
        }
        if seen.complete() { Ok(()) } else { Err(RejectKind::MissingField) }
    }

    /// An informational integer (`E`, `T`: exchange latency): a value that
    /// is not a plain integer is skipped like any unknown field, never an
    /// error.
    pub(super) fn optional_uint(&mut self) -> Result<Option<u64>, RejectKind> {
        let start = self.i;
        match self.uint() {
            Ok(v) => Ok(Some(v)),
            Err(_) => {
                self.i = start;
                self.skip_value()?;
                Ok(None)
            }
        }
    }

    /// Looks into a system stream's data for `"e":"serverShutdown"`.
    pub(super) fn system_event(&mut self) -> Result<bool, RejectKind> {
        let c = self.next_token()?;
        if c != b'{' {
            self.skip_value()?;
            return Ok(false);
        }
        self.i += 1;
        let mut shutdown = false;
        if self.next_token()? == b'}' {
            self.i += 1;
            return Ok(false);
        }
        loop {
            let key = self.key()?;
            if key.eq(b"e") && self.next_token()? == b'"' {
                shutdown |= self.string()?.eq(b"serverShutdown");
            } else {
                self.skip_value()?;
            }
            if !self.more(b'}')? {
                return Ok(shutdown);
            }
        }
    }

    /// The outermost object: a combined-stream envelope, a raw depth payload,
    /// a raw event, or a request reply.
    ///
    /// The answer does not depend on member order. A message with `stream` is
    /// an envelope: only `stream` and `data` count, every other member is
    /// skipped. Without `stream`, the message is a raw event (`e`), a reply
    /// (`result`) or a raw depth payload (always rejected: no pair to file it
    /// under). Members met before the kind is known are read provisionally and
    /// their errors held back until it is.
    fn top_level(&mut self, streams: &StreamTable, book: &mut Book) -> Result<Message, RejectKind> {
        let c = self.next_token()?;
        if c != b'{' {
            return Err(self.type_error(c));
        }
        self.i += 1;
        let mut stream = StreamSeen::Absent;
        let mut data_seen = false;
        // A `data` member met before `stream` is parsed provisionally as a depth
        // payload; its error matters only if the stream turns out to be ours.
        let mut data_before_stream: Option<usize> = None;
        let mut data_result: Result<(), RejectKind> = Ok(());
        let mut system_shutdown = false;
        // A bare depth payload (REST snapshot, or a raw `/ws/<stream>` frame)
        // names no stream, so it can never be evaluated: its fields are only
        // noted and skipped, whatever their content.
        let mut raw_depth = false;
        let mut raw_event_shutdown = false;
        let mut reply = false;
        if self.next_token()? == b'}' {
            self.i += 1;
            return Err(RejectKind::MissingField);
        }
        loop {
            let key = self.key()?;
            if key.eq(b"stream") {
                if stream != StreamSeen::Absent {
                    return Err(RejectKind::DuplicateField);
                }
                let name = self.string()?;
                stream = resolve_stream(&name, streams);
            } else if key.eq(b"data") {
                once(&mut data_seen)?;
                match stream {
                    StreamSeen::Pair(_) => self.depth_object(book)?,
                    StreamSeen::Unknown => self.skip_value()?,
                    StreamSeen::System => system_shutdown = self.system_event()?,
                    StreamSeen::Absent => {
                        let start = self.i;
                        data_before_stream = Some(start);
                        data_result = self.depth_object(book);
                        if data_result.is_err() {
                            // Re-scan from the start of the value so the outer
                            // object resumes at the right place.
                            self.i = start;
                            self.skip_value()?;
                        }
                    }
                }
            } else if key.eq(b"e") && self.next_token()? == b'"' {
                raw_event_shutdown |= self.string()?.eq(b"serverShutdown");
            } else if key.eq(b"result") {
                reply = true;
                self.skip_value()?;
            } else {
                raw_depth |= key.eq(b"bids") || key.eq(b"asks") || key.eq(b"lastUpdateId");
                self.skip_value()?;
            }
            if !self.more(b'}')? {
                break;
            }
        }
        match stream {
            StreamSeen::Pair(pair) if data_seen => data_result.map(|()| Message::Book(pair, BookEvent::Snapshot)),
            StreamSeen::Pair(_) => Err(RejectKind::MissingField),
            StreamSeen::System => {
                // A `data` read before the stream was known gets its look for
                // the shutdown event now.
                let shutdown = system_shutdown
                    || data_before_stream.is_some_and(|at| Scan { b: self.b, i: at }.system_event().unwrap_or(false));
                if shutdown { Ok(Message::ServerShutdown) } else { Err(RejectKind::UnknownStream) }
            }
            StreamSeen::Unknown => Err(RejectKind::UnknownStream),
            StreamSeen::Absent if raw_event_shutdown => Ok(Message::ServerShutdown),
            StreamSeen::Absent if reply => Ok(Message::Reply),
            StreamSeen::Absent if data_seen || raw_depth => Err(RejectKind::NoStream),
            StreamSeen::Absent => Err(RejectKind::MissingField),
        }
    }
}

/// What a `stream` value names. System streams start with `!` (Binance's
/// `!serverShutdown`); escapes are decoded first, as JSON requires.
fn resolve_stream(name: &RawStr<'_>, streams: &StreamTable) -> StreamSeen {
    let mut buf = [0u8; 64];
    let bytes = if name.escaped { decode_into(name, &mut buf) } else { Some(name.raw) };
    if let Some(pair) = bytes.and_then(|b| streams.lookup(b)) {
        StreamSeen::Pair(pair)
    } else if name.decoded().next() == Some(b'!') {
        StreamSeen::System
    } else {
        StreamSeen::Unknown
    }
}

/// The fast path: a depth frame laid out byte for byte as Binance sends it,
/// `{"stream":"…","data":{"lastUpdateId":…,"bids":[…],"asks":[…]}}`, with
/// no whitespace inside, unescaped names and levels as [`fast_level`] reads
/// them. Anything else — and any error — is `None`, and the general scanner
/// then reads the frame from the start and gives the answer (or the error)
/// itself. Whatever this accepts, the general scanner reads the same way.
#[inline(never)]
fn binance_depth_frame(b: &[u8], streams: &StreamTable, book: &mut Book) -> Option<PairId> {
    let rest = b.strip_prefix(b"{\"stream\":\"")?;
    let (name, rest) = rest.split_at_checked(plain_string_len(rest)?)?;
    let pair = small_table_lookup(streams, name)?;
    let rest = rest.strip_prefix(b"\",\"data\":{\"lastUpdateId\":")?;
    let (last_update_id, rest) = fast_uint(rest)?;
    let rest = rest.strip_prefix(b",\"bids\":[")?;
    let rest = fast_side(rest, &mut book.bids)?;
    let rest = rest.strip_prefix(b",\"asks\":[")?;
    let rest = fast_side(rest, &mut book.asks)?;
    let rest = rest.strip_prefix(b"}}")?;
    if !rest.iter().all(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t')) {
        return None;
    }
    book.last_update_id = last_update_id;
    Some(pair)
}

/// The pair whose stream is `name`: for a few pairs a direct comparison with
/// each name (most differ in length and fail at once) beats hashing it.
#[inline(always)]
fn small_table_lookup(streams: &StreamTable, name: &[u8]) -> Option<PairId> {
    if streams.len() <= 4 {
        streams.pairs().find(|&p| streams.stream_name(p).as_bytes() == name)
    } else {
        streams.lookup(name)
    }
}

/// A side's levels after its `[`, in Binance's layout, and the bytes after
/// its `]`. `None` on anything else, including a side the book refuses.
#[inline(always)]
fn fast_side<'b, S: SideKind>(b: &'b [u8], side: &mut BookSide<S>) -> Option<&'b [u8]> {
    side.clear();
    if let Some(rest) = b.strip_prefix(b"]") {
        return Some(rest);
    }
    let mut rest = b;
    loop {
        let (level, len) = fast_level(rest)?;
        side.push(level).ok()?;
        let (&next, after) = rest.get(len..)?.split_first()?;
        rest = after;
        match next {
            b',' => {}
            b']' => return Some(rest),
            _ => return None,
        }
    }
}

/// Bytes [`fast_level`] looks at: the longest level it reads,
/// `["1234567.12345678","1234567.12345678"]`, is 39 bytes.
const LEVEL_WINDOW: usize = 40;

/// A level exactly as Binance writes it, `["61837.63000000","3.78826000"]`
/// (no whitespace, 1–7 integer digits, 8 fractional digits), and its length
/// in bytes. `None` for anything else, which [`Scan::level`] then reads; for
/// every input this accepts, `Scan::level` reads the same level.
#[inline(always)]
pub(super) fn fast_level(b: &[u8]) -> Option<(Level, usize)> {
    if let Some(window) = b.first_chunk::<LEVEL_WINDOW>() {
        return fast_level_in(window);
    }
    // Near the end of the frame: pad with zero bytes. A zero byte is none of
    // the bytes a level is made of, so a level found lies wholly in `b`.
    let mut window = [0u8; LEVEL_WINDOW];
    window.get_mut(..b.len())?.copy_from_slice(b);
    fast_level_in(&window)
}

/// [`fast_level`] within a fixed window, so every index below is in range by
/// construction (the compiler sees it too: no bounds checks).
#[inline(always)]
fn fast_level_in(w: &[u8; LEVEL_WINDOW]) -> Option<(Level, usize)> {
    if w.first_chunk::<2>() != Some(b"[\"") {
        return None;
    }
    let (price, n) = fast_decimal(w.get(2..)?)?;
    let qty_at = 2 + n + 2;
    if w.get(2 + n..qty_at) != Some(b",\"") {
        return None;
    }
    let (qty, m) = fast_decimal(w.get(qty_at..)?)?;
    let close = qty_at + m;
    if w.get(close) != Some(&b']') {
        return None;
    }
    Some((Level { price: Price(price), qty: Qty(qty) }, close + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::venue::binance_spot::streams::{Depth, StreamKind, UpdateSpeed};

    fn table() -> StreamTable {
        StreamTable::new(
            &["BTCUSDT".into(), "ETHUSDT".into()],
            StreamKind { depth: Depth::D10, speed: UpdateSpeed::Ms100 },
        )
    }

    fn parse(s: &str) -> Result<(Message, Book), RejectKind> {
        let mut book = Book::default();
        parse_message(s.as_bytes(), &table(), &mut book).map(|m| (m, book))
    }

    fn depth(bids: &str, asks: &str) -> String {
        format!(r#"{{"stream":"btcusdt@depth10@100ms","data":{{"lastUpdateId":7,"bids":{bids},"asks":{asks}}}}}"#)
    }

    fn err(s: &str) -> RejectKind {
        parse(s).unwrap_err()
    }

    #[test]
    fn combined_frame_parses_into_fixed_point_levels() {
        let (m, b) = parse(&depth(
            r#"[["61837.63000000","3.78826000"],["61837.62","0.617"]]"#,
            r#"[["61837.64000000","1.60520000"]]"#,
        ))
        .unwrap();
        assert_eq!(m, Message::Book(PairId(0), BookEvent::Snapshot));
        assert_eq!(b.last_update_id, 7);
        assert_eq!(
            b.bids.levels(),
            &[
                Level { price: Price(6_183_763_000_000), qty: Qty(378_826_000) },
                Level { price: Price(6_183_762_000_000), qty: Qty(61_700_000) }
            ]
        );
        assert_eq!(b.asks.levels(), &[Level { price: Price(6_183_764_000_000), qty: Qty(160_520_000) }]);
    }

    #[test]
    fn keys_in_any_order_whitespace_and_unknown_keys_are_accepted() {
        let s = r#" {
            "data" : { "asks" : [ [ "2" , "1" ] ] , "x": [1, {"y": null}, "z", -1.5e3, true],
                       "bids" : [ ["1.5","10"] ], "lastUpdateId" : 42 } ,
            "other": {"a": [[[]]]},
            "stream" : "ethusdt@depth10@100ms"
        } "#;
        let (m, b) = parse(s).unwrap();
        assert_eq!(m, Message::Book(PairId(1), BookEvent::Snapshot));
        assert_eq!(b.last_update_id, 42);
        assert_eq!(b.bids.levels()[0].price, Price(150_000_000));
        assert_eq!(b.asks.levels()[0].qty, Qty(100_000_000));
    }

    #[test]
    fn variable_length_decimals_scale_to_1e8() {
        let (_, b) =
            parse(&depth(r#"[["0.0024","10"],["0.00000001","0"]]"#, r#"[["184467440737.09551615","1"]]"#)).unwrap();
        assert_eq!(b.bids.levels()[0], Level { price: Price(240_000), qty: Qty(1_000_000_000) });
        assert_eq!(b.bids.levels()[1].price, Price(1));
        assert_eq!(b.asks.levels()[0].price, Price(u64::MAX));
    }

    #[test]
    fn bad_decimals_are_typed_errors() {
        let with_price = |p: &str| err(&depth(&format!(r#"[["{p}","1"]]"#), "[]"));
        assert_eq!(with_price("1e5"), RejectKind::Exponent);
        assert_eq!(with_price("1.5E2"), RejectKind::Exponent);
        assert_eq!(with_price("-1"), RejectKind::Sign);
        assert_eq!(with_price("+1"), RejectKind::Sign);
        assert_eq!(with_price("1.123456789"), RejectKind::TooManyDecimals);
        assert_eq!(with_price("184467440737.09551616"), RejectKind::Overflow);
        assert_eq!(with_price("99999999999999999999"), RejectKind::Overflow);
        assert_eq!(with_price(""), RejectKind::BadDecimal);
        assert_eq!(with_price(".5"), RejectKind::BadDecimal);
        assert_eq!(with_price("5."), RejectKind::BadDecimal);
        assert_eq!(with_price("1,5"), RejectKind::BadDecimal);
        assert_eq!(with_price(" 1"), RejectKind::BadDecimal);
        assert_eq!(err(&depth(r#"[[1.5,"1"]]"#, "[]")), RejectKind::WrongType);
        assert_eq!(err(&depth(r#"[["1","1","1"]]"#, "[]")), RejectKind::WrongType);
    }

    #[test]
    fn misordered_and_oversized_sides_are_rejected() {
        assert_eq!(err(&depth(r#"[["1","1"],["2","1"]]"#, "[]")), RejectKind::BidsNotDescending);
        assert_eq!(err(&depth(r#"[["1","1"],["1","1"]]"#, "[]")), RejectKind::BidsNotDescending);
        assert_eq!(err(&depth("[]", r#"[["2","1"],["1","1"]]"#)), RejectKind::AsksNotAscending);
        let many: Vec<String> = (1..=21).map(|p| format!(r#"["{p}","1"]"#)).collect();
        assert_eq!(err(&depth("[]", &format!("[{}]", many.join(",")))), RejectKind::TooManyLevels);
    }

    #[test]
    fn crossed_book_parses_so_the_engine_can_count_it() {
        let (_, b) = parse(&depth(r#"[["2","1"]]"#, r#"[["1","1"]]"#)).unwrap();
        assert_eq!(crate::book::Sides::shape(&b), crate::book::BookShape::Crossed);
    }

    #[test]
    fn every_truncation_of_a_real_frame_is_an_error() {
        let full = depth(r#"[["61837.63000000","3.78826000"]]"#, r#"[["61837.64000000","1.60520000"]]"#);
        for n in 0..full.len() {
            let e = parse(&full[..n]).unwrap_err();
            assert!(matches!(e, RejectKind::Truncated | RejectKind::BadDecimal), "prefix {n}: {e:?}");
        }
        assert_eq!(parse(&format!("{full} x")).unwrap_err(), RejectKind::TrailingBytes);
    }

    #[test]
    fn streams_are_resolved_or_rejected() {
        let tick = r#"{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}}"#;
        assert_eq!(err(tick), RejectKind::UnknownStream);
        let other_depth = depth("[]", "[]").replace("depth10", "depth20");
        assert_eq!(err(&other_depth), RejectKind::UnknownStream);
        let escaped = depth(r#"[["1","1"]]"#, "[]").replace("btcusdt@", r"btc\u0075sdt\u0040");
        assert_eq!(parse(&escaped).unwrap().0, Message::Book(PairId(0), BookEvent::Snapshot));
        let raw = r#"{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}"#;
        assert_eq!(err(raw), RejectKind::NoStream);
        let many: Vec<String> = (1..=30).map(|p| format!(r#"["{p}","1"]"#)).collect();
        let snapshot = format!(r#"{{"lastUpdateId":1,"bids":[],"asks":[{}]}}"#, many.join(","));
        assert_eq!(err(&snapshot), RejectKind::NoStream);
    }

    #[test]
    fn server_shutdown_and_replies_are_recognised() {
        let combined = r#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}"#;
        assert_eq!(parse(combined).unwrap().0, Message::ServerShutdown);
        let data_first = r#"{"data":{"e":"serverShutdown","E":1},"stream":"!serverShutdown"}"#;
        assert_eq!(parse(data_first).unwrap().0, Message::ServerShutdown);
        assert_eq!(parse(r#"{"e":"serverShutdown","E":1770123456789}"#).unwrap().0, Message::ServerShutdown);
        assert_eq!(parse(r#"{"result":null,"id":1}"#).unwrap().0, Message::Reply);
        assert_eq!(parse(r#"{"result":["btcusdt@depth10@100ms"],"id":3}"#).unwrap().0, Message::Reply);
    }

    #[test]
    fn structural_errors_are_typed() {
        assert_eq!(err(r#"{"stream":"btcusdt@depth10@100ms"}"#), RejectKind::MissingField);
        assert_eq!(err(r#"{"stream":"btcusdt@depth10@100ms","data":{"bids":[],"asks":[]}}"#), RejectKind::MissingField);
        assert_eq!(
            err(r#"{"stream":"btcusdt@depth10@100ms","data":{"lastUpdateId":1,"bids":[],"bids":[],"asks":[]}}"#),
            RejectKind::DuplicateField
        );
        assert_eq!(
            err(r#"{"stream":"btcusdt@depth10@100ms","data":{"lastUpdateId":-1,"bids":[],"asks":[]}}"#),
            RejectKind::Sign
        );
        assert_eq!(
            err(r#"{"stream":"btcusdt@depth10@100ms","data":{"lastUpdateId":"1","bids":[],"asks":[]}}"#),
            RejectKind::WrongType
        );
        assert_eq!(
            err(
                r#"{"stream":"btcusdt@depth10@100ms","data":{"lastUpdateId":18446744073709551616,"bids":[],"asks":[]}}"#
            ),
            RejectKind::Overflow
        );
        assert_eq!(err(r#"{"stream":"btcusdt@depth10@100ms","data":[]}"#), RejectKind::WrongType);
        assert_eq!(err("[]"), RejectKind::WrongType);
        assert_eq!(err(""), RejectKind::Truncated);
        assert_eq!(err("{\"x\":\"a\u{1}b\"}"), RejectKind::Syntax);
        let deep = format!(r#"{{"x":{}{}}}"#, "[".repeat(100), "]".repeat(100));
        assert_eq!(err(&deep), RejectKind::TooDeep);
    }

    #[test]
    fn fast_level_reads_binance_shaped_levels_and_leaves_the_rest_to_the_general_path() {
        let lvl = |p, q| Level { price: Price(p), qty: Qty(q) };
        let fast = |s: &str| fast_level(s.as_bytes());
        assert_eq!(fast(r#"["61837.63000000","3.78826000"],"#), Some((lvl(6_183_763_000_000, 378_826_000), 31)));
        assert_eq!(fast(r#"["9999999.99999999","0.00000001"]"#), Some((lvl(999_999_999_999_999, 1), 33)));
        // Eight integer digits, fewer fractional digits, whitespace, an extra
        // element, a bad digit: not Binance's shape, so the general path decides.
        for other in [
            r#"["12345678.00000000","1.00000000"]"#,
            r#"["1.5","1.00000000"]"#,
            r#"[ "1.00000000","1.00000000"]"#,
            r#"["1.00000000", "1.00000000"]"#,
            r#"["1.00000000","1.00000000","1"]"#,
            r#"["1.0000000:","1.00000000"]"#,
            r#"["1:00000000","1.00000000"]"#,
            r#"[".00000000","1.00000000"]"#,
            r#"["1.00000000","1.00000000""#,
        ] {
            assert_eq!(fast(other), None, "{other}");
        }
        // Whatever the fast path declines still parses the same way.
        let (_, b) = parse(&depth(r#"[["12345678.00000000", "1.5" ],["1.00000000","1"]]"#, "[]")).unwrap();
        assert_eq!(b.bids.levels(), &[lvl(1_234_567_800_000_000, 150_000_000), lvl(100_000_000, 100_000_000)]);
    }

    #[test]
    fn escaped_decimals_read_as_their_decoded_text() {
        // RFC 8259: "\u0031.5" is the string "1.5". Binance never escapes a
        // digit, but a valid frame must not be rejected for it.
        let (_, b) = parse(&depth(r#"[["\u0031.5","\u0032\u002e\u0030"]]"#, r#"[["2\u002E00000001","1"]]"#)).unwrap();
        assert_eq!(b.bids.levels(), &[Level { price: Price(150_000_000), qty: Qty(200_000_000) }]);
        assert_eq!(b.asks.levels()[0].price, Price(200_000_001));
        let with_price = |p: &str| err(&depth(&format!(r#"[["{p}","1"]]"#), "[]"));
        assert_eq!(
            parse(&depth(r#"[["1\u00305","1"]]"#, "[]")).unwrap().1.bids.levels()[0].price,
            Price(10_500_000_000)
        );
        assert_eq!(with_price(r"\u002d1"), RejectKind::Sign);
        assert_eq!(with_price(r"1\u0065\u0035"), RejectKind::Exponent);
        assert_eq!(with_price(r"0.123456789\u0030"), RejectKind::TooManyDecimals);
        assert_eq!(with_price(r"\u00e9"), RejectKind::BadDecimal);
        assert_eq!(with_price(r"1\n"), RejectKind::BadDecimal);
    }

    #[test]
    fn depth_fields_beside_an_envelope_are_skipped_in_any_order() {
        // In an envelope only `stream` and `data` count; top-level depth fields
        // are unknown keys wherever they stand, valid or not.
        let stream = r#""stream":"btcusdt@depth10@100ms""#;
        let data = r#""data":{"lastUpdateId":7,"bids":[["2","1"]],"asks":[["3","1"]]}"#;
        let extra = r#""lastUpdateId":-1,"bids":[["1","1"],["5","1"]],"asks":5,"bids":null"#;
        for members in [
            [stream, data, extra],
            [stream, extra, data],
            [extra, stream, data],
            [extra, data, stream],
            [data, extra, stream],
            [data, stream, extra],
        ] {
            let (m, b) = parse(&format!("{{{}}}", members.join(","))).unwrap();
            assert_eq!(m, Message::Book(PairId(0), BookEvent::Snapshot), "{members:?}");
            assert_eq!(b.last_update_id, 7, "{members:?}");
            assert_eq!(b.bids.levels(), &[Level { price: Price(200_000_000), qty: Qty(100_000_000) }]);
            assert_eq!(b.asks.levels(), &[Level { price: Price(300_000_000), qty: Qty(100_000_000) }]);
        }
        // Without a stream they are a bare payload that names no pair: skipped
        // as no_stream whatever its content (REST snapshots have 1000 levels).
        assert_eq!(err(r#"{"lastUpdateId":1,"bids":[["1","1"],["5","1"]],"asks":[]}"#), RejectKind::NoStream);
        assert_eq!(err(r#"{"lastUpdateId":1,"bids":[],"bids":[],"asks":[]}"#), RejectKind::NoStream);
        // A reply is a reply whatever else it carries.
        assert_eq!(parse(r#"{"bids":5,"result":null,"id":1}"#).unwrap().0, Message::Reply);
    }

    #[test]
    fn shutdown_is_recognised_whatever_the_member_order() {
        let data = r#""data":{"e":"serverShutdown","lastUpdateId":1,"bids":[],"asks":[]}"#;
        let stream = r#""stream":"!serverShutdown""#;
        assert_eq!(parse(&format!("{{{stream},{data}}}")).unwrap().0, Message::ServerShutdown);
        assert_eq!(parse(&format!("{{{data},{stream}}}")).unwrap().0, Message::ServerShutdown);
        let no_event = r#"{"data":{"lastUpdateId":1,"bids":[],"asks":[]},"stream":"!serverShutdown"}"#;
        assert_eq!(err(no_event), RejectKind::UnknownStream);
    }

    #[test]
    fn system_streams_are_recognised_after_decoding_the_name() {
        // "!\u00e9x" is the same JSON string as "!éx": a system stream either way.
        for name in [
            "!\u{e9}x",
            r"!\u00e9x",
            r"\u0021\u00e9x",
            r"!\u00e9xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        ] {
            let frame = format!(r#"{{"stream":"{name}","data":{{"e":"serverShutdown"}}}}"#);
            assert_eq!(parse(&frame).unwrap().0, Message::ServerShutdown, "{name}");
        }
        assert_eq!(err(r#"{"stream":"\u00e9!","data":{"e":"serverShutdown"}}"#), RejectKind::UnknownStream);
    }

    /// The general scanner alone, without the Binance-layout fast path.
    fn general(s: &str) -> Result<(Message, Book), RejectKind> {
        let mut book = Book::default();
        let mut scan = Scan { b: s.as_bytes(), i: 0 };
        let msg = scan.top_level(&table(), &mut book)?;
        scan.ws();
        if scan.i < s.len() {
            return Err(RejectKind::TrailingBytes);
        }
        Ok((msg, book))
    }

    #[test]
    fn binance_layout_fast_path_agrees_with_the_general_scanner() {
        let real = r#"{"stream":"btcusdt@depth10@100ms","data":{"lastUpdateId":50093239224,"bids":[["61837.63000000","3.78826000"],["61837.62000000","0.61700000"]],"asks":[["61837.64000000","1.60520000"]]}}"#;
        let mut book = Book::default();
        assert_eq!(binance_depth_frame(real.as_bytes(), &table(), &mut book), Some(PairId(0)));
        // Near misses the fast path must leave to the general scanner, which
        // then decides; the full parse must agree with it in every case.
        let variants = [
            real.to_string(),
            format!("{real} \n"),
            format!("{real}x"),
            real.replace("50093239224", "050093239224"),
            real.replace("50093239224", "5009323922.4"),
            real.replace("50093239224", "99999999999999999999"),
            real.replace("btcusdt@", r"btc\u0075sdt@"),
            real.replace("btcusdt", "xrpusdt"),
            real.replace(r#""bids":["#, r#""bids": ["#),
            real.replace(r#""bids":[["61837.63000000","3.78826000"],"#, r#""bids":["#),
            real.replace("61837.62000000", "61837.63000000"),
            real.replace("61837.64000000", "61837.6400000"),
            real.replace(r#"],"asks""#, r#"],"x":1,"asks""#),
            real.replace(r#""asks":[["61837.64000000","1.60520000"]]"#, r#""asks":[]"#),
            real.replace("}}", "} }"),
            real[..real.len() - 1].to_string(),
        ];
        for v in &variants {
            let fast = parse(v).map(|(m, b)| (m, b.last_update_id, b.bids.levels().to_vec(), b.asks.levels().to_vec()));
            let slow =
                general(v).map(|(m, b)| (m, b.last_update_id, b.bids.levels().to_vec(), b.asks.levels().to_vec()));
            assert_eq!(fast, slow, "{v}");
        }
    }

    #[test]
    fn small_tables_resolve_streams_as_the_hash_lookup_does() {
        let t = table();
        for name in
            ["btcusdt@depth10@100ms", "ethusdt@depth10@100ms", "ethusdt@depth10@100m", "xbtusdt@depth10@100ms", ""]
        {
            assert_eq!(small_table_lookup(&t, name.as_bytes()), t.lookup(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn an_event_time_is_read_when_present_and_never_an_error() {
        let with_e = r#"{"stream":"btcusdt@depth10@100ms","data":{"e":"depthUpdate","E":1723161255408,"lastUpdateId":7,"bids":[],"asks":[["2","1"]]}}"#;
        assert_eq!(parse(with_e).unwrap().1.event_time_ms, Some(1_723_161_255_408));
        assert_eq!(parse(&with_e.replace("1723161255408", "\"x\"")).unwrap().1.event_time_ms, None);
        assert_eq!(parse(&depth("[]", r#"[["2","1"]]"#)).unwrap().1.event_time_ms, None);
    }
}
