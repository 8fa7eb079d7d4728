//! The parse stage: a hand-written byte scanner for Binance partial-depth
//! messages, straight into fixed-point levels.
//!
//! It accepts the raw payload `{"lastUpdateId":…,"bids":[["p","q"],…],"asks":[…]}`
//! and the combined-stream envelope `{"stream":"btcusdt@depth10@100ms","data":{…}}`,
//! keys in any order, unknown keys and insignificant whitespace skipped. It never
//! allocates, never panics, and never goes through `f64` or `String`: every price
//! and quantity is read from its bytes into a `u64` at scale 1e8 with checked
//! arithmetic. Anything it cannot vouch for is a typed [`ParseError`] the caller
//! counts; the frame is then skipped whole, never half-applied.
//!
//! Input is expected to be UTF-8 (WebSocket text frames are), but bytes are
//! never trusted: invalid input of any kind yields an error, not a panic.

use crate::book::{Book, BookSide, Level, PushError, SideKind};
use crate::units::{FRAC_DIGITS, Price, Qty, SCALE};

use super::streams::{PairId, StreamTable};

/// Why a frame was rejected. `Copy` and field-less so counting it is an array
/// increment; [`ParseError::ALL`] and [`ParseError::name`] label the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ParseError {
    #[error("input ends inside a JSON value")]
    Truncated,
    #[error("malformed JSON")]
    Syntax,
    #[error("a field has the wrong JSON type")]
    WrongType,
    #[error("a decimal has an exponent")]
    Exponent,
    #[error("a decimal has a sign")]
    Sign,
    #[error("a decimal is empty or not a plain decimal")]
    BadDecimal,
    #[error("a decimal has more than 8 fractional digits")]
    TooManyDecimals,
    #[error("a number does not fit in 64 bits")]
    Overflow,
    #[error("a side has more than 20 levels")]
    TooManyLevels,
    #[error("bids are not strictly descending")]
    BidsNotDescending,
    #[error("asks are not strictly ascending")]
    AsksNotAscending,
    #[error("a required field (lastUpdateId, bids, asks, data) is missing")]
    MissingField,
    #[error("a field appears twice")]
    DuplicateField,
    #[error("JSON nested too deeply")]
    TooDeep,
    #[error("bytes after the end of the message")]
    TrailingBytes,
    #[error("the stream is not one of the configured depth streams")]
    UnknownStream,
    #[error("a depth payload without a stream name")]
    NoStream,
}

impl ParseError {
    /// Every kind, in counter order.
    pub const ALL: [ParseError; 17] = [
        ParseError::Truncated,
        ParseError::Syntax,
        ParseError::WrongType,
        ParseError::Exponent,
        ParseError::Sign,
        ParseError::BadDecimal,
        ParseError::TooManyDecimals,
        ParseError::Overflow,
        ParseError::TooManyLevels,
        ParseError::BidsNotDescending,
        ParseError::AsksNotAscending,
        ParseError::MissingField,
        ParseError::DuplicateField,
        ParseError::TooDeep,
        ParseError::TrailingBytes,
        ParseError::UnknownStream,
        ParseError::NoStream,
    ];

    /// Number of kinds; sizes counter arrays.
    pub const COUNT: usize = Self::ALL.len();

    /// Position in [`ParseError::ALL`].
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    /// snake_case label for logs and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            ParseError::Truncated => "truncated",
            ParseError::Syntax => "syntax",
            ParseError::WrongType => "wrong_type",
            ParseError::Exponent => "exponent",
            ParseError::Sign => "sign",
            ParseError::BadDecimal => "bad_decimal",
            ParseError::TooManyDecimals => "too_many_decimals",
            ParseError::Overflow => "overflow",
            ParseError::TooManyLevels => "too_many_levels",
            ParseError::BidsNotDescending => "bids_not_descending",
            ParseError::AsksNotAscending => "asks_not_ascending",
            ParseError::MissingField => "missing_field",
            ParseError::DuplicateField => "duplicate_field",
            ParseError::TooDeep => "too_deep",
            ParseError::TrailingBytes => "trailing_bytes",
            ParseError::UnknownStream => "unknown_stream",
            ParseError::NoStream => "no_stream",
        }
    }
}

/// What a well-formed message turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// A configured pair's depth snapshot, now in the caller's book.
    Depth(PairId),
    /// Binance's `serverShutdown` event: the connection will be closed soon.
    ServerShutdown,
    /// A reply to a request on this connection (`{"result":…,"id":…}`).
    Reply,
}

/// Deepest JSON nesting skipped inside unknown fields.
const MAX_SKIP_DEPTH: usize = 64;

/// Parses one message. On `Ok(Message::Depth(_))`, `book` holds the snapshot;
/// on any other result `book`'s content is unspecified (it is scratch space).
pub fn parse_message(buf: &[u8], streams: &StreamTable, book: &mut Book) -> Result<Message, ParseError> {
    book.event_time_ms = None;
    if let Some(pair) = binance_depth_frame(buf, streams, book) {
        return Ok(Message::Depth(pair));
    }
    let mut s = Scan { b: buf, i: 0 };
    let msg = s.top_level(streams, book)?;
    s.ws();
    if s.i < buf.len() {
        return Err(ParseError::TrailingBytes);
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

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

/// A JSON string's raw bytes between the quotes, and whether it has escapes.
struct RawStr<'a> {
    raw: &'a [u8],
    escaped: bool,
}

impl<'a> RawStr<'a> {
    /// Compares the decoded string with `want` (plain ASCII) without allocating.
    fn eq(&self, want: &[u8]) -> bool {
        if self.escaped { self.decoded().eq(want.iter().copied()) } else { self.raw == want }
    }

    /// The string's bytes with escapes decoded.
    fn decoded(&self) -> Decoded<'a> {
        Decoded { raw: self.raw, i: 0 }
    }
}

/// Stands for a non-ASCII `\u` escape: no name or number this scanner looks
/// for contains one, and this byte matches none of them.
const NON_ASCII: u8 = 0x80;

/// The bytes of a JSON string (already validated by [`Scan::string`]) with its
/// escapes decoded; an escape of a non-ASCII character yields [`NON_ASCII`].
struct Decoded<'a> {
    raw: &'a [u8],
    i: usize,
}

impl Iterator for Decoded<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let c = *self.raw.get(self.i)?;
        self.i += 1;
        if c != b'\\' {
            return Some(c);
        }
        let e = *self.raw.get(self.i)?;
        self.i += 1;
        Some(match e {
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let hex = self.raw.get(self.i..self.i + 4)?;
                self.i += 4;
                let v = hex.iter().try_fold(0u32, |v, &h| Some(v * 16 + char::from(h).to_digit(16)?))?;
                u8::try_from(v).ok().filter(u8::is_ascii).unwrap_or(NON_ASCII)
            }
            other => other, // `"`, `\\`, `/`
        })
    }
}

/// Decodes an escaped string into `buf`; `None` when it does not fit (no
/// configured stream name is that long).
fn decode_into<'b>(s: &RawStr<'_>, buf: &'b mut [u8; 64]) -> Option<&'b [u8]> {
    let mut n = 0;
    for c in s.decoded() {
        *buf.get_mut(n)? = c;
        n += 1;
    }
    buf.get(..n)
}

impl<'a> Scan<'a> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    /// Skips whitespace and returns the next byte without consuming it.
    #[inline(always)]
    fn next_token(&mut self) -> Result<u8, ParseError> {
        self.ws();
        self.peek().ok_or(ParseError::Truncated)
    }

    #[inline(always)]
    fn expect(&mut self, want: u8) -> Result<(), ParseError> {
        if self.next_token()? == want {
            self.i += 1;
            Ok(())
        } else {
            Err(ParseError::Syntax)
        }
    }

    /// After an object member or array element: `Ok(true)` for `,` (more to
    /// come), `Ok(false)` for the closing byte.
    #[inline(always)]
    fn more(&mut self, close: u8) -> Result<bool, ParseError> {
        let c = self.next_token()?;
        self.i += 1;
        if c == b',' {
            Ok(true)
        } else if c == close {
            Ok(false)
        } else {
            Err(ParseError::Syntax)
        }
    }

    /// The byte that opens a value of a given JSON type, for type errors.
    fn type_error(&self, c: u8) -> ParseError {
        match c {
            b'{' | b'[' | b'"' | b't' | b'f' | b'n' | b'-' | b'0'..=b'9' => ParseError::WrongType,
            _ => ParseError::Syntax,
        }
    }

    /// A string, positioned at its opening quote (after whitespace).
    fn string(&mut self) -> Result<RawStr<'a>, ParseError> {
        let c = self.next_token()?;
        if c != b'"' {
            return Err(self.type_error(c));
        }
        self.i += 1;
        let start = self.i;
        let mut escaped = false;
        loop {
            // Plain bytes eight at a time; the loop below sees only the
            // special ones and the last few.
            while let Some(chunk) = self.b.get(self.i..).and_then(|r| r.first_chunk::<8>()) {
                let special = special_string_bytes(u64::from_le_bytes(*chunk));
                if special != 0 {
                    self.i += (special.trailing_zeros() / 8) as usize;
                    break;
                }
                self.i += 8;
            }
            let c = self.peek().ok_or(ParseError::Truncated)?;
            match c {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    let e = self.b.get(self.i + 1).copied().ok_or(ParseError::Truncated)?;
                    match e {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 2,
                        b'u' => {
                            let hex = self.b.get(self.i + 2..self.i + 6).ok_or(ParseError::Truncated)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return Err(ParseError::Syntax);
                            }
                            self.i += 6;
                        }
                        _ => return Err(ParseError::Syntax),
                    }
                }
                0x00..=0x1f => return Err(ParseError::Syntax),
                _ => self.i += 1,
            }
        }
        let raw = self.b.get(start..self.i).ok_or(ParseError::Truncated)?;
        self.i += 1;
        Ok(RawStr { raw, escaped })
    }

    /// An object key and its colon.
    #[inline(always)]
    fn key(&mut self) -> Result<RawStr<'a>, ParseError> {
        let k = self.string()?;
        self.expect(b':')?;
        Ok(k)
    }

    /// A non-negative JSON integer (`lastUpdateId`).
    fn uint(&mut self) -> Result<u64, ParseError> {
        let c = self.next_token()?;
        match c {
            b'0'..=b'9' => {}
            b'-' => return Err(ParseError::Sign),
            _ => return Err(self.type_error(c)),
        }
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            v = v.checked_mul(10).and_then(|v| v.checked_add(u64::from(d - b'0'))).ok_or(ParseError::Overflow)?;
            self.i += 1;
        }
        if self.i - start > 1 && c == b'0' {
            return Err(ParseError::Syntax);
        }
        match self.peek() {
            Some(b'.') => Err(ParseError::WrongType),
            Some(b'e' | b'E') => Err(ParseError::Exponent),
            _ => Ok(v),
        }
    }

    /// A decimal string (`"61837.63000000"`) as a mantissa at scale 1e8.
    /// Out of line: Binance-shaped levels never get here (see [`fast_level`]).
    #[inline(never)]
    fn decimal(&mut self) -> Result<u64, ParseError> {
        let c = self.next_token()?;
        if c != b'"' {
            return Err(self.type_error(c));
        }
        let quote = self.i;
        self.i += 1;
        if let Some((v, len)) = self.b.get(self.i..).and_then(fast_decimal) {
            self.i += len;
            return Ok(v);
        }
        match self.plain_decimal() {
            Ok(v) => Ok(v),
            Err(e) => {
                // Cold: JSON lets any character be escaped (`"\u0031.5"` is
                // `"1.5"`); read such a string by its decoded bytes.
                self.i = quote;
                match self.string() {
                    Ok(s) if s.escaped => decimal_from(s.decoded()),
                    _ => Err(e),
                }
            }
        }
    }

    /// The body of an unescaped decimal string, after its opening quote.
    fn plain_decimal(&mut self) -> Result<u64, ParseError> {
        let mut v: u64 = 0;
        let int_start = self.i;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            v = v.checked_mul(10).and_then(|v| v.checked_add(u64::from(d - b'0'))).ok_or(ParseError::Overflow)?;
            self.i += 1;
        }
        let int_digits = self.i - int_start;
        let mut frac_digits: u32 = 0;
        if self.peek() == Some(b'.') {
            self.i += 1;
            while let Some(d @ b'0'..=b'9') = self.peek() {
                frac_digits += 1;
                if frac_digits > FRAC_DIGITS {
                    return Err(ParseError::TooManyDecimals);
                }
                v = v.checked_mul(10).and_then(|v| v.checked_add(u64::from(d - b'0'))).ok_or(ParseError::Overflow)?;
                self.i += 1;
            }
            if frac_digits == 0 {
                return Err(self.decimal_error());
            }
        }
        if self.peek() != Some(b'"') {
            return Err(self.decimal_error());
        }
        if int_digits == 0 {
            return Err(ParseError::BadDecimal);
        }
        self.i += 1;
        v.checked_mul(10u64.pow(FRAC_DIGITS - frac_digits)).ok_or(ParseError::Overflow)
    }

    /// Classifies the byte that stopped a decimal.
    fn decimal_error(&self) -> ParseError {
        match self.peek() {
            None => ParseError::Truncated,
            Some(b'e' | b'E') => ParseError::Exponent,
            Some(b'+' | b'-') => ParseError::Sign,
            _ => ParseError::BadDecimal,
        }
    }

    /// `["price","qty"]` pairs into a side, best first.
    #[inline(always)]
    fn levels<S: SideKind>(&mut self, side: &mut BookSide<S>, misordered: ParseError) -> Result<(), ParseError> {
        side.clear();
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
            side.push(level).map_err(|e| match e {
                PushError::Full => ParseError::TooManyLevels,
                PushError::OutOfOrder => misordered,
            })?;
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
    fn level(&mut self) -> Result<Level, ParseError> {
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
            b',' => return Err(ParseError::WrongType),
            _ => return Err(ParseError::Syntax),
        }
        Ok(Level { price, qty })
    }

    /// One member of a depth payload; `Ok(false)` when the key is not a depth field.
    #[inline(always)]
    fn depth_member(&mut self, key: &RawStr<'_>, book: &mut Book, seen: &mut DepthFields) -> Result<bool, ParseError> {
        if key.eq(b"bids") {
            once(&mut seen.bids)?;
            self.levels(&mut book.bids, ParseError::BidsNotDescending)?;
        } else if key.eq(b"asks") {
            once(&mut seen.asks)?;
            self.levels(&mut book.asks, ParseError::AsksNotAscending)?;
        } else if key.eq(b"lastUpdateId") {
            once(&mut seen.last_update_id)?;
            book.last_update_id = self.uint()?;
        } else if key.eq(b"E") {
            // Informational (exchange latency): a value that is not a plain
            // integer is skipped like any unknown field, never an error.
            let start = self.i;
            match self.uint() {
                Ok(ms) => book.event_time_ms = Some(ms),
                Err(_) => {
                    self.i = start;
                    self.skip_value()?;
                }
            }
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    /// A depth payload object (the envelope's `data`).
    fn depth_object(&mut self, book: &mut Book) -> Result<(), ParseError> {
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
        if seen.complete() { Ok(()) } else { Err(ParseError::MissingField) }
    }

    /// Looks into a system stream's data for `"e":"serverShutdown"`.
    fn system_event(&mut self) -> Result<bool, ParseError> {
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
    fn top_level(&mut self, streams: &StreamTable, book: &mut Book) -> Result<Message, ParseError> {
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
        let mut data_result: Result<(), ParseError> = Ok(());
        let mut system_shutdown = false;
        // A bare depth payload (REST snapshot, or a raw `/ws/<stream>` frame)
        // names no stream, so it can never be evaluated: its fields are only
        // noted and skipped, whatever their content.
        let mut raw_depth = false;
        let mut raw_event_shutdown = false;
        let mut reply = false;
        if self.next_token()? == b'}' {
            self.i += 1;
            return Err(ParseError::MissingField);
        }
        loop {
            let key = self.key()?;
            if key.eq(b"stream") {
                if stream != StreamSeen::Absent {
                    return Err(ParseError::DuplicateField);
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
            StreamSeen::Pair(pair) if data_seen => data_result.map(|()| Message::Depth(pair)),
            StreamSeen::Pair(_) => Err(ParseError::MissingField),
            StreamSeen::System => {
                // A `data` read before the stream was known gets its look for
                // the shutdown event now.
                let shutdown = system_shutdown
                    || data_before_stream.is_some_and(|at| Scan { b: self.b, i: at }.system_event().unwrap_or(false));
                if shutdown { Ok(Message::ServerShutdown) } else { Err(ParseError::UnknownStream) }
            }
            StreamSeen::Unknown => Err(ParseError::UnknownStream),
            StreamSeen::Absent if raw_event_shutdown => Ok(Message::ServerShutdown),
            StreamSeen::Absent if reply => Ok(Message::Reply),
            StreamSeen::Absent if data_seen || raw_depth => Err(ParseError::NoStream),
            StreamSeen::Absent => Err(ParseError::MissingField),
        }
    }

    /// Skips one JSON value of any type, validating it, iteratively.
    fn skip_value(&mut self) -> Result<(), ParseError> {
        // Closers of the open containers: bit set = object, clear = array.
        let mut stack: u64 = 0;
        let mut depth: usize = 0;
        loop {
            // A value.
            let c = self.next_token()?;
            match c {
                b'{' | b'[' => {
                    if depth == MAX_SKIP_DEPTH {
                        return Err(ParseError::TooDeep);
                    }
                    self.i += 1;
                    let is_obj = c == b'{';
                    stack = (stack << 1) | u64::from(is_obj);
                    depth += 1;
                    let close = if is_obj { b'}' } else { b']' };
                    if self.next_token()? == close {
                        self.i += 1;
                        stack >>= 1;
                        depth -= 1;
                    } else {
                        if is_obj {
                            self.key()?;
                        }
                        continue;
                    }
                }
                b'"' => {
                    self.string()?;
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return Err(ParseError::Syntax),
            }
            // After a value: close containers or move to the next element.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let is_obj = stack & 1 == 1;
                let close = if is_obj { b'}' } else { b']' };
                if self.more(close)? {
                    if is_obj {
                        self.key()?;
                    }
                    break;
                }
                stack >>= 1;
                depth -= 1;
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), ParseError> {
        let end = self.i + word.len();
        match self.b.get(self.i..end) {
            Some(w) if w == word => {
                self.i = end;
                Ok(())
            }
            Some(_) => Err(ParseError::Syntax),
            None if self.b.get(self.i..).is_some_and(|rest| word.starts_with(rest)) => Err(ParseError::Truncated),
            None => Err(ParseError::Syntax),
        }
    }

    /// Any JSON number, validated against the grammar and skipped.
    fn number(&mut self) -> Result<(), ParseError> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let digits = |s: &mut Self| {
            let start = s.i;
            while let Some(b'0'..=b'9') = s.peek() {
                s.i += 1;
            }
            s.i - start
        };
        let first = self.peek();
        let n = digits(self);
        if n == 0 {
            return Err(if first.is_none() { ParseError::Truncated } else { ParseError::Syntax });
        }
        if n > 1 && first == Some(b'0') {
            return Err(ParseError::Syntax);
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return Err(self.peek().map_or(ParseError::Truncated, |_| ParseError::Syntax));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(self.peek().map_or(ParseError::Truncated, |_| ParseError::Syntax));
            }
        }
        Ok(())
    }
}

/// Marks a field as seen, rejecting a second occurrence.
#[inline(always)]
fn once(seen: &mut bool) -> Result<(), ParseError> {
    if std::mem::replace(seen, true) { Err(ParseError::DuplicateField) } else { Ok(()) }
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

/// SWAR: a mask whose lowest set bit is the high bit of the first byte in
/// `x` (little-endian) that ends a run of plain string bytes: `"`, `\\` or a
/// control character. Bits above the lowest may be false positives (borrows
/// only travel upward from a flagged byte), so use only `trailing_zeros`.
#[inline(always)]
fn special_string_bytes(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let quote = zero_byte(x ^ (ONES * u64::from(b'"')));
    let backslash = zero_byte(x ^ (ONES * u64::from(b'\\')));
    let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
    quote | backslash | control
}

/// The fast path: a depth frame laid out byte for byte as Binance sends it,
/// `{"stream":"…","data":{"lastUpdateId":…,"bids":[…],"asks":[…]}}`, with
/// no whitespace inside, unescaped names and levels as [`fast_level`] reads
/// them. Anything else — and any error — is `None`, and the general scanner
/// then reads the frame from the start and gives the answer (or the error)
/// itself. Whatever this accepts, the general scanner reads the same way.
#[inline]
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

/// Bytes before the closing quote of a string without escapes or control
/// characters; `None` if another special byte comes first or none does.
#[inline(always)]
fn plain_string_len(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(chunk) = b.get(i..).and_then(|r| r.first_chunk::<8>()) {
        let special = special_string_bytes(u64::from_le_bytes(*chunk));
        if special != 0 {
            i += (special.trailing_zeros() / 8) as usize;
            return (b.get(i) == Some(&b'"')).then_some(i);
        }
        i += 8;
    }
    let tail = b.get(i..)?;
    let end = tail.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    (tail.get(end) == Some(&b'"')).then_some(i + end)
}

/// A JSON integer (no sign, no leading zero) that fits in a `u64`, and the
/// bytes after it; `None` also when a fraction or exponent follows.
#[inline(always)]
fn fast_uint(b: &[u8]) -> Option<(u64, &[u8])> {
    // Eight digits at a time while there are eight (lastUpdateId has 11).
    let mut v: u64 = 0;
    let mut digits = 0;
    while let Some(chunk) = b.get(digits..).and_then(|r| r.first_chunk::<8>()) {
        let x = u64::from_le_bytes(*chunk) ^ 0x3030_3030_3030_3030;
        if non_digit_bytes(x) != 0 {
            break;
        }
        v = v.checked_mul(SCALE)?.checked_add(swar_eight_digits(x))?;
        digits += 8;
    }
    while let Some(&d @ b'0'..=b'9') = b.get(digits) {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        digits += 1;
    }
    let (int, rest) = b.split_at_checked(digits)?;
    if int.is_empty()
        || (int.len() > 1 && int.first() == Some(&b'0'))
        || matches!(rest.first(), Some(b'.' | b'e' | b'E'))
    {
        return None;
    }
    Some((v, rest))
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
fn fast_level(b: &[u8]) -> Option<(Level, usize)> {
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

/// The body of a decimal string after its opening quote, in Binance's fixed
/// shape `ddddd.dddddddd"` (1–7 integer digits, so no overflow is possible):
/// the mantissa at scale 1e8 and the bytes read including the closing quote.
#[inline(always)]
fn fast_decimal(b: &[u8]) -> Option<(u64, usize)> {
    // SWAR over the first eight bytes: the first non-digit ends the integer part.
    let (head, _) = b.split_first_chunk::<8>()?;
    let x = u64::from_le_bytes(*head) ^ 0x3030_3030_3030_3030;
    let int_digits = (non_digit_bytes(x).trailing_zeros() / 8) as usize;
    if !(1..=7).contains(&int_digits) || b.get(int_digits) != Some(&b'.') {
        return None;
    }
    // Keep the integer digits, moved to the top so they read as the last of
    // eight (the bytes below become leading zeros).
    let int = swar_eight_digits(x << (64 - 8 * int_digits as u32));
    let frac = eight_digits_then_quote(b.get(int_digits + 1..)?)?;
    Some((int * SCALE + frac, int_digits + 10))
}

/// SWAR: the eight ASCII digits of a fixed 8-decimal fraction followed by the
/// closing quote, as a number — the shape of every price Binance has sent.
#[inline(always)]
fn eight_digits_then_quote(b: &[u8]) -> Option<u64> {
    let (digits, quote) = b.split_first_chunk::<8>()?;
    if quote.first() != Some(&b'"') {
        return None;
    }
    let x = u64::from_le_bytes(*digits) ^ 0x3030_3030_3030_3030;
    if non_digit_bytes(x) != 0 {
        return None;
    }
    Some(swar_eight_digits(x))
}

/// For bytes already xor-ed with `'0'`: the high bit of every byte that was
/// not an ASCII digit (digits are now 0..=9, anything else ≥ 0x0A). Adding
/// 0x76 carries out of a byte only if that byte is flagged, so the lowest
/// flag is always exact and a zero result means all eight are digits.
#[inline(always)]
fn non_digit_bytes(x: u64) -> u64 {
    (x.wrapping_add(0x7676_7676_7676_7676) | x) & 0x8080_8080_8080_8080
}

/// Eight digit values (0..=9, one per byte, first in the lowest byte) as a number.
#[inline(always)]
fn swar_eight_digits(v: u64) -> u64 {
    // Multiply-shift pairing (as in simdjson): each step turns adjacent
    // groups into one of twice the width, `high * 10^k + low`; bits carried
    // past the top fall off and are never read.
    let v = v.wrapping_mul(10 << 8 | 1) >> 8; // pairs in bytes 0, 2, 4, 6
    let v = (v & 0x00FF_00FF_00FF_00FF).wrapping_mul(100 << 16 | 1) >> 16; // quads in 16-bit lanes 0, 2
    (v & 0x0000_FFFF_0000_FFFF).wrapping_mul(10_000 << 32 | 1) >> 32
}

/// A decimal from its decoded bytes (the cold path for escaped strings),
/// under the same rules as [`Scan::plain_decimal`].
fn decimal_from(bytes: impl Iterator<Item = u8>) -> Result<u64, ParseError> {
    let mut v: u64 = 0;
    let mut int_digits = 0u32;
    let mut frac_digits: Option<u32> = None;
    for c in bytes {
        match c {
            b'0'..=b'9' => {
                match &mut frac_digits {
                    None => int_digits += 1,
                    Some(f) if *f == FRAC_DIGITS => return Err(ParseError::TooManyDecimals),
                    Some(f) => *f += 1,
                }
                v = v.checked_mul(10).and_then(|v| v.checked_add(u64::from(c - b'0'))).ok_or(ParseError::Overflow)?;
            }
            b'.' if frac_digits.is_none() => frac_digits = Some(0),
            b'e' | b'E' => return Err(ParseError::Exponent),
            b'+' | b'-' => return Err(ParseError::Sign),
            _ => return Err(ParseError::BadDecimal),
        }
    }
    if int_digits == 0 || frac_digits == Some(0) {
        return Err(ParseError::BadDecimal);
    }
    v.checked_mul(10u64.pow(FRAC_DIGITS - frac_digits.unwrap_or(0))).ok_or(ParseError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::binance::streams::{Depth, StreamKind, UpdateSpeed};

    fn table() -> StreamTable {
        StreamTable::new(
            &["BTCUSDT".into(), "ETHUSDT".into()],
            StreamKind { depth: Depth::D10, speed: UpdateSpeed::Ms100 },
        )
    }

    fn parse(s: &str) -> Result<(Message, Book), ParseError> {
        let mut book = Book::default();
        parse_message(s.as_bytes(), &table(), &mut book).map(|m| (m, book))
    }

    fn depth(bids: &str, asks: &str) -> String {
        format!(r#"{{"stream":"btcusdt@depth10@100ms","data":{{"lastUpdateId":7,"bids":{bids},"asks":{asks}}}}}"#)
    }

    fn err(s: &str) -> ParseError {
        parse(s).unwrap_err()
    }

    #[test]
    fn combined_frame_parses_into_fixed_point_levels() {
        let (m, b) = parse(&depth(
            r#"[["61837.63000000","3.78826000"],["61837.62","0.617"]]"#,
            r#"[["61837.64000000","1.60520000"]]"#,
        ))
        .unwrap();
        assert_eq!(m, Message::Depth(PairId(0)));
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
        assert_eq!(m, Message::Depth(PairId(1)));
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
        assert_eq!(with_price("1e5"), ParseError::Exponent);
        assert_eq!(with_price("1.5E2"), ParseError::Exponent);
        assert_eq!(with_price("-1"), ParseError::Sign);
        assert_eq!(with_price("+1"), ParseError::Sign);
        assert_eq!(with_price("1.123456789"), ParseError::TooManyDecimals);
        assert_eq!(with_price("184467440737.09551616"), ParseError::Overflow);
        assert_eq!(with_price("99999999999999999999"), ParseError::Overflow);
        assert_eq!(with_price(""), ParseError::BadDecimal);
        assert_eq!(with_price(".5"), ParseError::BadDecimal);
        assert_eq!(with_price("5."), ParseError::BadDecimal);
        assert_eq!(with_price("1,5"), ParseError::BadDecimal);
        assert_eq!(with_price(" 1"), ParseError::BadDecimal);
        assert_eq!(err(&depth(r#"[[1.5,"1"]]"#, "[]")), ParseError::WrongType);
        assert_eq!(err(&depth(r#"[["1","1","1"]]"#, "[]")), ParseError::WrongType);
    }

    #[test]
    fn misordered_and_oversized_sides_are_rejected() {
        assert_eq!(err(&depth(r#"[["1","1"],["2","1"]]"#, "[]")), ParseError::BidsNotDescending);
        assert_eq!(err(&depth(r#"[["1","1"],["1","1"]]"#, "[]")), ParseError::BidsNotDescending);
        assert_eq!(err(&depth("[]", r#"[["2","1"],["1","1"]]"#)), ParseError::AsksNotAscending);
        let many: Vec<String> = (1..=21).map(|p| format!(r#"["{p}","1"]"#)).collect();
        assert_eq!(err(&depth("[]", &format!("[{}]", many.join(",")))), ParseError::TooManyLevels);
    }

    #[test]
    fn crossed_book_parses_so_the_engine_can_count_it() {
        let (_, b) = parse(&depth(r#"[["2","1"]]"#, r#"[["1","1"]]"#)).unwrap();
        assert_eq!(b.shape(), crate::book::BookShape::Crossed);
    }

    #[test]
    fn every_truncation_of_a_real_frame_is_an_error() {
        let full = depth(r#"[["61837.63000000","3.78826000"]]"#, r#"[["61837.64000000","1.60520000"]]"#);
        for n in 0..full.len() {
            let e = parse(&full[..n]).unwrap_err();
            assert!(matches!(e, ParseError::Truncated | ParseError::BadDecimal), "prefix {n}: {e:?}");
        }
        assert_eq!(parse(&format!("{full} x")).unwrap_err(), ParseError::TrailingBytes);
    }

    #[test]
    fn streams_are_resolved_or_rejected() {
        let tick = r#"{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}}"#;
        assert_eq!(err(tick), ParseError::UnknownStream);
        let other_depth = depth("[]", "[]").replace("depth10", "depth20");
        assert_eq!(err(&other_depth), ParseError::UnknownStream);
        let escaped = depth(r#"[["1","1"]]"#, "[]").replace("btcusdt@", r"btc\u0075sdt\u0040");
        assert_eq!(parse(&escaped).unwrap().0, Message::Depth(PairId(0)));
        let raw = r#"{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}"#;
        assert_eq!(err(raw), ParseError::NoStream);
        let many: Vec<String> = (1..=30).map(|p| format!(r#"["{p}","1"]"#)).collect();
        let snapshot = format!(r#"{{"lastUpdateId":1,"bids":[],"asks":[{}]}}"#, many.join(","));
        assert_eq!(err(&snapshot), ParseError::NoStream);
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
        assert_eq!(err(r#"{"stream":"btcusdt@depth10@100ms"}"#), ParseError::MissingField);
        assert_eq!(err(r#"{"stream":"btcusdt@depth10@100ms","data":{"bids":[],"asks":[]}}"#), ParseError::MissingField);
        assert_eq!(
            err(r#"{"stream":"btcusdt@depth10@100ms","data":{"lastUpdateId":1,"bids":[],"bids":[],"asks":[]}}"#),
            ParseError::DuplicateField
        );
        assert_eq!(
            err(r#"{"stream":"btcusdt@depth10@100ms","data":{"lastUpdateId":-1,"bids":[],"asks":[]}}"#),
            ParseError::Sign
        );
        assert_eq!(
            err(r#"{"stream":"btcusdt@depth10@100ms","data":{"lastUpdateId":"1","bids":[],"asks":[]}}"#),
            ParseError::WrongType
        );
        assert_eq!(
            err(
                r#"{"stream":"btcusdt@depth10@100ms","data":{"lastUpdateId":18446744073709551616,"bids":[],"asks":[]}}"#
            ),
            ParseError::Overflow
        );
        assert_eq!(err(r#"{"stream":"btcusdt@depth10@100ms","data":[]}"#), ParseError::WrongType);
        assert_eq!(err("[]"), ParseError::WrongType);
        assert_eq!(err(""), ParseError::Truncated);
        assert_eq!(err("{\"x\":\"a\u{1}b\"}"), ParseError::Syntax);
        let deep = format!(r#"{{"x":{}{}}}"#, "[".repeat(100), "]".repeat(100));
        assert_eq!(err(&deep), ParseError::TooDeep);
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
        assert_eq!(with_price(r"\u002d1"), ParseError::Sign);
        assert_eq!(with_price(r"1\u0065\u0035"), ParseError::Exponent);
        assert_eq!(with_price(r"0.123456789\u0030"), ParseError::TooManyDecimals);
        assert_eq!(with_price(r"\u00e9"), ParseError::BadDecimal);
        assert_eq!(with_price(r"1\n"), ParseError::BadDecimal);
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
            assert_eq!(m, Message::Depth(PairId(0)), "{members:?}");
            assert_eq!(b.last_update_id, 7, "{members:?}");
            assert_eq!(b.bids.levels(), &[Level { price: Price(200_000_000), qty: Qty(100_000_000) }]);
            assert_eq!(b.asks.levels(), &[Level { price: Price(300_000_000), qty: Qty(100_000_000) }]);
        }
        // Without a stream they are a bare payload that names no pair: skipped
        // as no_stream whatever its content (REST snapshots have 1000 levels).
        assert_eq!(err(r#"{"lastUpdateId":1,"bids":[["1","1"],["5","1"]],"asks":[]}"#), ParseError::NoStream);
        assert_eq!(err(r#"{"lastUpdateId":1,"bids":[],"bids":[],"asks":[]}"#), ParseError::NoStream);
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
        assert_eq!(err(no_event), ParseError::UnknownStream);
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
        assert_eq!(err(r#"{"stream":"\u00e9!","data":{"e":"serverShutdown"}}"#), ParseError::UnknownStream);
    }

    #[test]
    fn swar_string_scan_stops_at_the_first_special_byte() {
        let first = |s: &[u8; 8]| (special_string_bytes(u64::from_le_bytes(*s)).trailing_zeros() / 8) as usize;
        assert_eq!(first(b"abcdefgh"), 8);
        assert_eq!(first(b"abc\"defg"), 3);
        assert_eq!(first(b"\\bcdefgh"), 0);
        assert_eq!(first(b"abcdefg\x1f"), 7);
        assert_eq!(first(b"ab\x00\"\"\"\"\""), 2);
        assert_eq!(first(b"\x7f\xff\x20!#[]~"), 8);
        // Every byte value at every position agrees with the obvious test.
        for pos in 0..8 {
            for v in 0..=255u8 {
                let mut s = *b"xxxxxxxx";
                s[pos] = v;
                let special = v == b'"' || v == b'\\' || v < 0x20;
                assert_eq!(first(&s), if special { pos } else { 8 }, "byte {v:#x} at {pos}");
            }
        }
    }

    #[test]
    fn swar_integer_part_matches_the_digit_loop() {
        for int in ["0", "7", "61837", "1234567", "9999999", "0000001"] {
            for frac in ["00000000", "63000000", "99999999"] {
                let text = format!("{int}.{frac}\"");
                let want = int.parse::<u64>().unwrap() * SCALE + frac.parse::<u64>().unwrap();
                assert_eq!(fast_decimal(text.as_bytes()), Some((want, text.len())), "{text}");
            }
        }
        for v in 0..=255u8 {
            // One odd byte inside the integer part: never read as a digit.
            let text = [b'1', v, b'2', b'.', b'0', b'0', b'0', b'0', b'0', b'0', b'0', b'0', b'"'];
            let want = v.is_ascii_digit().then(|| (100 + u64::from(v - b'0') * 10 + 2) * SCALE);
            assert_eq!(fast_decimal(&text).map(|(m, _)| m), want, "byte {v:#x}");
        }
    }

    /// The general scanner alone, without the Binance-layout fast path.
    fn general(s: &str) -> Result<(Message, Book), ParseError> {
        let mut book = Book::default();
        let mut scan = Scan { b: s.as_bytes(), i: 0 };
        let msg = scan.top_level(&table(), &mut book)?;
        scan.ws();
        if scan.i < s.len() {
            return Err(ParseError::TrailingBytes);
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
    fn fast_integer_reads_json_integers_that_fit() {
        let read = |s: &str| fast_uint(s.as_bytes()).map(|(v, rest)| (v, rest.len()));
        assert_eq!(read("50093239224,"), Some((50_093_239_224, 1)));
        assert_eq!(read("0,"), Some((0, 1)));
        assert_eq!(read("12345678"), Some((12_345_678, 0)));
        assert_eq!(read("18446744073709551615}"), Some((u64::MAX, 1)));
        assert_eq!(read("18446744073709551616}"), None);
        assert_eq!(read("99999999999999999999999999"), None);
        for bad in ["", ",", "01", "-1", "1.5", "1e3", "1E3", "12345678.5"] {
            assert_eq!(read(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn swar_conversion_matches_the_digit_loop_on_many_values() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..100_000u64 {
            // A cheap xorshift walk plus the edges.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = match i {
                0 => 0,
                1 => 99_999_999,
                _ => x % 100_000_000,
            };
            let text = format!("{n:08}");
            let digits = u64::from_le_bytes(text.as_bytes().try_into().unwrap()) ^ 0x3030_3030_3030_3030;
            assert_eq!(swar_eight_digits(digits), n, "{text}");
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

    #[test]
    fn swar_fraction_matches_the_digit_loop() {
        assert_eq!(eight_digits_then_quote(b"12345678\""), Some(12_345_678));
        assert_eq!(eight_digits_then_quote(b"00000000\""), Some(0));
        assert_eq!(eight_digits_then_quote(b"99999999\""), Some(99_999_999));
        assert_eq!(eight_digits_then_quote(b"1234567:\""), None);
        assert_eq!(eight_digits_then_quote(b"12345678x"), None);
        assert_eq!(eight_digits_then_quote(b"1234567/\""), None);
    }
}
