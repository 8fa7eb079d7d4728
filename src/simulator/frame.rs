//! A market frame, serialised once and shared by every client that gets it,
//! and the few server-made messages (`serverShutdown`, garbage).

use std::ops::Range;
use std::time::{SystemTime, UNIX_EPOCH};

use tungstenite::Bytes;
use tungstenite::protocol::frame::Utf8Bytes;

use super::streams::StreamId;

/// One market update of one stream, in both of Binance's wire shapes. The
/// bytes are reference-counted: fanning a frame out to a client clones a
/// pointer, never the JSON.
#[derive(Clone, Debug)]
pub struct Frame {
    pub stream: StreamId,
    /// `{"stream":"<name>","data":<payload>}`, as `/stream` sends it.
    pub combined: Utf8Bytes,
    /// The `<payload>` alone, as `/ws` sends it (a slice of `combined`).
    pub raw: Utf8Bytes,
    /// A diff-depth event (`<sym>@depth@100ms`, `<sym>@depth`): the
    /// `gap_every` fault skips some of these, and only these.
    pub diff: bool,
}

impl Frame {
    /// Wraps a combined-stream message whose payload sits at `data` in it.
    /// `None` if `data` is not a slice of `combined` on character boundaries.
    pub fn from_combined(stream: StreamId, combined: String, data: Range<usize>) -> Option<Self> {
        combined.get(data.clone())?;
        let combined = Utf8Bytes::from(combined);
        let raw = Utf8Bytes::try_from(Bytes::from(combined.clone()).slice(data)).ok()?;
        Some(Frame { stream, combined, raw, diff: false })
    }

    /// The same frame, marked as a diff-depth event or not.
    pub fn with_diff(self, diff: bool) -> Self {
        Frame { diff, ..self }
    }

    /// The shape a client asked for.
    pub fn payload(&self, combined: bool) -> &Utf8Bytes {
        if combined { &self.combined } else { &self.raw }
    }
}

/// The stream name and the byte range of the payload in a combined-stream
/// message `{"stream":…,"data":…}`; `None` for anything else (a REST snapshot
/// line, a raw payload, invalid JSON).
pub fn split_envelope(json: &str) -> Option<(&str, Range<usize>)> {
    let mut stream = None;
    let mut data = None;
    for entry in sonic_rs::to_object_iter(json) {
        let (key, value) = entry.ok()?;
        match &*key {
            "stream" => stream = Some(value),
            "data" => data = Some(value),
            _ => {}
        }
    }
    let (stream, data) = (stream?, data?);
    let stream = sub_slice(json, sonic_rs::JsonValueTrait::as_str(&stream)?)?;
    let raw = data.as_raw_str();
    let start = offset_in(json, raw)?;
    Some((stream, start..start + raw.len()))
}

/// Where the payload's top-level `lastUpdateId` number sits in `json` (the
/// payload being `json[data]`), and its value; `None` for payloads without one.
pub fn update_id_in(json: &str, data: Range<usize>) -> Option<(Range<usize>, u64)> {
    let payload = json.get(data)?;
    let value = sonic_rs::get(payload, ["lastUpdateId"]).ok()?;
    let digits = value.as_raw_str();
    let id = digits.parse().ok()?;
    let start = offset_in(json, digits)?;
    Some((start..start + digits.len(), id))
}

/// Where `part` starts inside `whole`, if it is a slice of it.
fn offset_in(whole: &str, part: &str) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start + part.len() <= whole.len() && whole.get(start..start + part.len()) == Some(part)).then_some(start)
}

/// `part` re-borrowed from `whole` when it is a slice of it (sonic-rs returns
/// unescaped strings borrowed from its input when they have no escapes).
fn sub_slice<'a>(whole: &'a str, part: &str) -> Option<&'a str> {
    let start = offset_in(whole, part)?;
    whole.get(start..start + part.len())
}

/// Milliseconds since the Unix epoch, as Binance stamps events (`"E"`).
pub fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Binance's announcement that it will close this connection soon, in the
/// connection's shape: combined
/// `{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":<ms>}}`,
/// raw `{"e":"serverShutdown","E":<ms>}`.
pub fn server_shutdown(combined: bool, event_ms: u64) -> Utf8Bytes {
    let event = format!("{{\"e\":\"serverShutdown\",\"E\":{event_ms}}}");
    if combined { format!("{{\"stream\":\"!serverShutdown\",\"data\":{event}}}").into() } else { event.into() }
}

/// A malformed text frame: the first half of a real one, cut on a character
/// boundary, so it starts like a valid message and ends inside a JSON value.
pub fn garbage(after: &Utf8Bytes) -> Utf8Bytes {
    let text = after.as_str();
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    Utf8Bytes::from(&text[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_splits_into_stream_and_exact_payload_bytes() {
        let line = r#"{"stream":"btcusdt@depth5","data":{"lastUpdateId":1,"bids":[],"asks":[]}}"#;
        let (stream, data) = split_envelope(line).unwrap();
        assert_eq!(stream, "btcusdt@depth5");
        assert_eq!(&line[data], r#"{"lastUpdateId":1,"bids":[],"asks":[]}"#);
        assert_eq!(split_envelope(r#"{"lastUpdateId":1,"bids":[],"asks":[]}"#), None);
        assert_eq!(split_envelope(r#"{"stream":"x@y","data":{"#), None);
        assert_eq!(split_envelope("not json"), None);
    }

    #[test]
    fn update_id_is_located_in_the_payload() {
        let line = r#"{"stream":"a@depth5","data":{"bids":[],"lastUpdateId":42,"asks":[]}}"#;
        let (_, data) = split_envelope(line).unwrap();
        let (digits, id) = update_id_in(line, data).unwrap();
        assert_eq!((&line[digits], id), ("42", 42));
        let trade = r#"{"stream":"a@trade","data":{"e":"trade"}}"#;
        assert_eq!(update_id_in(trade, split_envelope(trade).unwrap().1), None);
    }

    #[test]
    fn frames_share_one_buffer_for_both_shapes() {
        let line = r#"{"stream":"a@b","data":{"x":1}}"#.to_owned();
        let (_, data) = split_envelope(&line).unwrap();
        let frame = Frame::from_combined(StreamId(0), line.clone(), data).unwrap();
        assert_eq!(frame.payload(true).as_str(), line);
        assert_eq!(frame.payload(false).as_str(), r#"{"x":1}"#);
    }

    #[test]
    fn shutdown_event_has_binance_shape() {
        assert_eq!(
            server_shutdown(true, 1770123456789).as_str(),
            r#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}"#
        );
        assert_eq!(server_shutdown(false, 5).as_str(), r#"{"e":"serverShutdown","E":5}"#);
    }

    #[test]
    fn garbage_is_a_truncated_prefix() {
        let frame = Utf8Bytes::from(r#"{"stream":"a@b","data":{"x":1}}"#);
        let junk = garbage(&frame);
        assert!(frame.as_str().starts_with(junk.as_str()));
        assert!(junk.len() < frame.len());
    }
}
