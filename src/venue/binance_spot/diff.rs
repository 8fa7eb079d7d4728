//! The parse stage for Binance Spot's local-book streams: diff depth
//! (`<sym>@depth@100ms`, `<sym>@depth`) and best bid/ask (`<sym>@bookTicker`),
//! on the venue-neutral scanner, straight into the engine's event scratch.
//!
//! Diff depth: `{"e":"depthUpdate","E":…,"s":"BNBBTC","U":…,"u":…,"b":[["p","q"],…],"a":[…]}`
//! (USD-M futures add `T` and `pu`, read where present). bookTicker:
//! `{"u":…,"s":"BNBUSDT","b":"p","B":"q","a":"p","A":"q"}`. Keys in any
//! order, unknown keys skipped; levels are read exactly at scale 1e8 and
//! kept in message order (quantity 0 removes a level; the book stage sorts
//! nothing out of order, it looks each price up). Like the partial-depth
//! decoder it never allocates, never panics, and never goes through `f64`.

use crate::book::BookEvent;
use crate::book::event::{DiffEvent, EventScratch, LevelBuf, TouchEvent};
use crate::pairs::PairId;
use crate::reject::RejectKind;
use crate::scan::json::{Scan, decode_into, once};
use crate::units::{Price, Qty};
use crate::venue::Message;

use super::streams::{StreamRole, StreamTable};

/// What the envelope's `stream` named.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Named {
    Absent,
    Ours(PairId, StreamRole),
    System,
    Unknown,
}

/// Parses one message of a diff-mode connection into `events`.
pub fn parse_diff_message(buf: &[u8], streams: &StreamTable, events: &mut EventScratch) -> Result<Message, RejectKind> {
    let mut s = Scan { b: buf, i: 0 };
    let msg = s.envelope(streams, events)?;
    s.ws();
    if s.i < buf.len() {
        return Err(RejectKind::TrailingBytes);
    }
    Ok(msg)
}

impl<'a> Scan<'a> {
    /// The outermost object: an envelope, a reply, a raw event. A `data`
    /// member met before `stream` is skipped and read again once the stream
    /// is known (its errors count only if the stream is ours).
    fn envelope(&mut self, streams: &StreamTable, events: &mut EventScratch) -> Result<Message, RejectKind> {
        let c = self.next_token()?;
        if c != b'{' {
            return Err(self.type_error(c));
        }
        self.i += 1;
        if self.next_token()? == b'}' {
            self.i += 1;
            return Err(RejectKind::MissingField);
        }
        let mut named = Named::Absent;
        let mut data_at: Option<usize> = None;
        let mut read = false;
        let (mut reply, mut raw_shutdown, mut raw_depth) = (false, false, false);
        loop {
            let key = self.key()?;
            if key.eq(b"stream") {
                if named != Named::Absent {
                    return Err(RejectKind::DuplicateField);
                }
                let name = self.string()?;
                let mut tmp = [0u8; 64];
                let bytes = if name.escaped { decode_into(&name, &mut tmp) } else { Some(name.raw) };
                named = match bytes.and_then(|b| streams.lookup_role(b)) {
                    Some((pair, role)) => Named::Ours(pair, role),
                    None if name.decoded().next() == Some(b'!') => Named::System,
                    None => Named::Unknown,
                };
            } else if key.eq(b"data") {
                if data_at.is_some() {
                    return Err(RejectKind::DuplicateField);
                }
                data_at = Some(self.i);
                if let Named::Ours(_, role) = named {
                    self.payload(role, events)?;
                    read = true;
                } else {
                    self.skip_value()?;
                }
            } else if key.eq(b"result") {
                reply = true;
                self.skip_value()?;
            } else if key.eq(b"e") && self.next_token()? == b'"' {
                raw_shutdown |= self.string()?.eq(b"serverShutdown");
            } else {
                raw_depth |= key.eq(b"lastUpdateId") || key.eq(b"b") || key.eq(b"bids");
                self.skip_value()?;
            }
            if !self.more(b'}')? {
                break;
            }
        }
        match (named, data_at) {
            (Named::Ours(pair, role), Some(at)) => {
                if !read {
                    Scan { b: self.b, i: at }.payload(role, events)?;
                }
                Ok(Message::Book(pair, role.event()))
            }
            (Named::Ours(..), None) => Err(RejectKind::MissingField),
            (Named::System, Some(at)) => {
                let shutdown = Scan { b: self.b, i: at }.system_event().unwrap_or(false);
                if shutdown { Ok(Message::ServerShutdown) } else { Err(RejectKind::UnknownStream) }
            }
            (Named::System | Named::Unknown, _) => Err(RejectKind::UnknownStream),
            (Named::Absent, _) if raw_shutdown => Ok(Message::ServerShutdown),
            (Named::Absent, _) if reply => Ok(Message::Reply),
            (Named::Absent, _) if data_at.is_some() || raw_depth => Err(RejectKind::NoStream),
            (Named::Absent, _) => Err(RejectKind::MissingField),
        }
    }

    fn payload(&mut self, role: StreamRole, events: &mut EventScratch) -> Result<(), RejectKind> {
        match role {
            StreamRole::Diff => self.diff_object(&mut events.diff),
            StreamRole::Touch => self.touch_object(&mut events.touch),
        }
    }

    /// A diff-depth payload.
    fn diff_object(&mut self, e: &mut DiffEvent) -> Result<(), RejectKind> {
        let c = self.next_token()?;
        if c != b'{' {
            return Err(self.type_error(c));
        }
        self.i += 1;
        e.event_time_ms = None;
        e.prev_final_update_id = None;
        let (mut first, mut last, mut bids, mut asks) = (false, false, false, false);
        if self.next_token()? == b'}' {
            return Err(RejectKind::MissingField);
        }
        loop {
            let key = self.key()?;
            if key.eq(b"b") {
                once(&mut bids)?;
                self.changes(&mut e.bids)?;
            } else if key.eq(b"a") {
                once(&mut asks)?;
                self.changes(&mut e.asks)?;
            } else if key.eq(b"U") {
                once(&mut first)?;
                e.first_update_id = self.uint()?;
            } else if key.eq(b"u") {
                once(&mut last)?;
                e.final_update_id = self.uint()?;
            } else if key.eq(b"pu") {
                e.prev_final_update_id = Some(self.uint()?);
            } else if key.eq(b"E") {
                e.event_time_ms = self.optional_uint()?;
            } else {
                self.skip_value()?;
            }
            if !self.more(b'}')? {
                break;
            }
        }
        if !(first && last && bids && asks) {
            return Err(RejectKind::MissingField);
        }
        if e.first_update_id > e.final_update_id {
            return Err(RejectKind::UpdateIdsReversed);
        }
        Ok(())
    }

    /// A side's changed levels, in message order.
    fn changes(&mut self, out: &mut LevelBuf) -> Result<(), RejectKind> {
        out.clear();
        self.level_array(|level| out.push(level).map_err(|_| RejectKind::TooManyLevels))
    }

    /// A bookTicker payload.
    fn touch_object(&mut self, t: &mut TouchEvent) -> Result<(), RejectKind> {
        let c = self.next_token()?;
        if c != b'{' {
            return Err(self.type_error(c));
        }
        self.i += 1;
        t.event_time_ms = None;
        let mut seen = [false; 5];
        if self.next_token()? == b'}' {
            return Err(RejectKind::MissingField);
        }
        loop {
            let key = self.key()?;
            let slot = if key.eq(b"u") {
                0
            } else if key.eq(b"b") {
                1
            } else if key.eq(b"B") {
                2
            } else if key.eq(b"a") {
                3
            } else if key.eq(b"A") {
                4
            } else {
                if key.eq(b"E") {
                    t.event_time_ms = self.optional_uint()?;
                } else {
                    self.skip_value()?;
                }
                5
            };
            if let Some(seen) = seen.get_mut(slot) {
                once(seen)?;
                match slot {
                    0 => t.update_id = self.uint()?,
                    1 => t.bid.price = Price(self.decimal()?),
                    2 => t.bid.qty = Qty(self.decimal()?),
                    3 => t.ask.price = Price(self.decimal()?),
                    _ => t.ask.qty = Qty(self.decimal()?),
                }
            }
            if !self.more(b'}')? {
                break;
            }
        }
        if seen.iter().all(|&s| s) { Ok(()) } else { Err(RejectKind::MissingField) }
    }
}

impl StreamRole {
    /// The book event a message of this stream carries.
    const fn event(self) -> BookEvent {
        match self {
            StreamRole::Diff => BookEvent::Diff,
            StreamRole::Touch => BookEvent::Touch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::Level;
    use crate::venue::binance_spot::{DiffKind, UpdateSpeed};

    fn table(book_ticker: bool) -> StreamTable {
        StreamTable::diff(&["BTCUSDT".into(), "ETHUSDT".into()], DiffKind { speed: UpdateSpeed::Ms100, book_ticker })
    }

    fn parse(s: &str) -> (Result<Message, RejectKind>, EventScratch) {
        let mut ev = EventScratch::with_capacity(8);
        let r = parse_diff_message(s.as_bytes(), &table(true), &mut ev);
        (r, ev)
    }

    const REAL_DIFF: &str = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":50093239203,"u":50093239207,"b":[["55653.87000000","0.00000000"]],"a":[["61838.04000000","0.32332000"],["61844.30000000","0.40163000"],["61862.50000000","0.05019000"],["61862.51000000","0.00000000"]]}}"#;
    const REAL_TICKER: &str = r#"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#;

    fn lvl(p: u64, q: u64) -> Level {
        Level { price: Price(p), qty: Qty(q) }
    }

    #[test]
    fn a_real_diff_event_decodes_exactly() {
        let (r, ev) = parse(REAL_DIFF);
        assert_eq!(r, Ok(Message::Book(PairId(0), BookEvent::Diff)));
        let d = &ev.diff;
        assert_eq!(
            (d.first_update_id, d.final_update_id, d.event_time_ms),
            (50093239203, 50093239207, Some(1723161255308))
        );
        assert_eq!(d.bids.levels(), &[lvl(5_565_387_000_000, 0)]);
        assert_eq!(d.asks.levels().len(), 4);
        assert_eq!(d.asks.levels()[3], lvl(6_186_251_000_000, 0));
        assert_eq!(d.prev_final_update_id, None);
    }

    #[test]
    fn a_real_book_ticker_decodes_exactly() {
        let (r, ev) = parse(REAL_TICKER);
        assert_eq!(r, Ok(Message::Book(PairId(0), BookEvent::Touch)));
        assert_eq!(ev.touch.update_id, 50093239212);
        assert_eq!(ev.touch.bid, lvl(6_183_763_000_000, 378_826_000));
        assert_eq!(ev.touch.ask, lvl(6_183_764_000_000, 154_698_000));
        assert_eq!(ev.touch.event_time_ms, None);
    }

    #[test]
    fn data_before_stream_and_keys_in_any_order_decode_the_same() {
        let reordered =
            r#"{"data":{"a":[["2","1"]],"u":9,"b":[ [ "1.5" , "0" ] ],"U":7,"E":3},"stream":"ethusdt@depth@100ms"}"#;
        let (r, ev) = parse(reordered);
        assert_eq!(r, Ok(Message::Book(PairId(1), BookEvent::Diff)));
        assert_eq!((ev.diff.first_update_id, ev.diff.final_update_id), (7, 9));
        assert_eq!(ev.diff.bids.levels(), &[lvl(150_000_000, 0)]);
        assert_eq!(ev.diff.asks.levels(), &[lvl(200_000_000, 100_000_000)]);
    }

    #[test]
    fn hostile_events_are_typed_errors() {
        let d = |body: &str| parse(&format!(r#"{{"stream":"btcusdt@depth@100ms","data":{body}}}"#)).0;
        assert_eq!(d(r#"{"U":1,"u":2,"b":[]}"#), Err(RejectKind::MissingField));
        assert_eq!(d(r#"{"U":3,"u":2,"b":[],"a":[]}"#), Err(RejectKind::UpdateIdsReversed));
        assert_eq!(d(r#"{"U":1,"U":1,"u":2,"b":[],"a":[]}"#), Err(RejectKind::DuplicateField));
        assert_eq!(d(r#"{"U":1,"u":99999999999999999999,"b":[],"a":[]}"#), Err(RejectKind::Overflow));
        assert_eq!(d(r#"{"U":1,"u":2,"b":[["1e5","1"]],"a":[]}"#), Err(RejectKind::Exponent));
        assert_eq!(d(r#"{"U":1,"u":2,"b":[["-1","1"]],"a":[]}"#), Err(RejectKind::Sign));
        let nine: Vec<String> = (1..=9).map(|p| format!(r#"["{p}","1"]"#)).collect();
        assert_eq!(d(&format!(r#"{{"U":1,"u":2,"b":[{}],"a":[]}}"#, nine.join(","))), Err(RejectKind::TooManyLevels));
        let t = |body: &str| parse(&format!(r#"{{"stream":"btcusdt@bookTicker","data":{body}}}"#)).0;
        assert_eq!(t(r#"{"u":1,"b":"1","B":"1","a":"2"}"#), Err(RejectKind::MissingField));
        assert_eq!(t(r#"{"u":1,"b":"1","B":"1","a":"2","A":"x"}"#), Err(RejectKind::BadDecimal));
        assert_eq!(parse(r#"{"stream":"btcusdt@trade","data":{"e":"trade"}}"#).0, Err(RejectKind::UnknownStream));
        assert_eq!(parse(r#"{"lastUpdateId":1,"bids":[],"asks":[]}"#).0, Err(RejectKind::NoStream));
        assert_eq!(parse(r#"{"result":null,"id":1}"#).0, Ok(Message::Reply));
        assert_eq!(
            parse(r#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1}}"#).0,
            Ok(Message::ServerShutdown)
        );
    }

    #[test]
    fn every_truncation_of_a_real_event_is_an_error_not_a_panic() {
        for cut in 0..REAL_DIFF.len() {
            let mut ev = EventScratch::with_capacity(8);
            assert!(parse_diff_message(&REAL_DIFF.as_bytes()[..cut], &table(true), &mut ev).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn without_book_ticker_the_ticker_stream_is_not_ours() {
        let mut ev = EventScratch::with_capacity(8);
        assert_eq!(parse_diff_message(REAL_TICKER.as_bytes(), &table(false), &mut ev), Err(RejectKind::UnknownStream));
    }
}
