//! Stream names as the simulator sees them: validation like Binance's, a
//! shared interner so frames and subscriptions meet on a small integer, and the
//! partial-depth names the synthetic walk can serve.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::venue::binance_spot::{Depth, UpdateSpeed};

/// Most streams one connection may listen to (Binance's limit).
pub const MAX_STREAMS_PER_CONNECTION: usize = 1024;

/// Longest stream name accepted; Binance's longest real names are far shorter.
const MAX_NAME_LEN: usize = 128;

/// A stream name interned for this simulator run. Frames carry it so the
/// network loop fans a frame out with a vector index, never a string hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u32);

impl StreamId {
    /// Index into per-stream vectors.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The run's interner, shared by the market thread (which meets names in
/// recordings) and the network thread (which meets them in subscriptions).
/// Locked only when a name is seen for the first time on either side.
#[derive(Clone, Default)]
pub struct StreamNames {
    inner: Arc<Mutex<Interner>>,
}

#[derive(Default)]
struct Interner {
    by_name: HashMap<Arc<str>, StreamId>,
    names: Vec<Arc<str>>,
}

impl StreamNames {
    /// The id of `name`, assigning the next one on first sight.
    pub fn intern(&self, name: &str) -> StreamId {
        let mut interner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(&id) = interner.by_name.get(name) {
            return id;
        }
        let id = StreamId(u32::try_from(interner.names.len()).unwrap_or(u32::MAX));
        let name: Arc<str> = name.into();
        interner.names.push(Arc::clone(&name));
        interner.by_name.insert(name, id);
        id
    }

    /// The name of an interned id.
    pub fn name(&self, id: StreamId) -> Arc<str> {
        let interner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        interner.names.get(id.index()).cloned().unwrap_or_else(|| Arc::from("?"))
    }
}

/// Whether `name` is shaped like a Binance stream name: `<symbol>@<kind>…`
/// (`btcusdt@depth10@100ms`, `btcusdt@kline_1m`) or a `!`-prefixed market-wide
/// stream (`!miniTicker@arr`). Binance rejects anything else, and so do we, so
/// a client bug surfaces here rather than as a silent, empty subscription.
pub fn is_valid_stream_name(name: &str) -> bool {
    let shaped = name.contains('@') || name.starts_with('!');
    let charset = name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'@' | b'_' | b'!' | b'-' | b'.'));
    shaped && charset && !name.starts_with('@') && !name.ends_with('@') && name.len() <= MAX_NAME_LEN
}

/// A partial book depth stream the synthetic walk can serve:
/// `<symbol>@depth<5|10|20>` (1000 ms) or `<symbol>@depth<5|10|20>@100ms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepthStream {
    /// Lower-case symbol (`btcusdt`).
    pub symbol: String,
    pub depth: Depth,
    pub speed: UpdateSpeed,
}

impl DepthStream {
    /// Parses a Binance partial-depth stream name; `None` for any other stream.
    pub fn parse(name: &str) -> Option<Self> {
        let (symbol, kind) = name.split_once('@')?;
        if symbol.is_empty() || !symbol.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
            return None;
        }
        let (levels, speed) = match kind.strip_suffix("@100ms") {
            Some(levels) => (levels, UpdateSpeed::Ms100),
            None => (kind, UpdateSpeed::Ms1000),
        };
        let depth = match levels {
            "depth5" => Depth::D5,
            "depth10" => Depth::D10,
            "depth20" => Depth::D20,
            _ => return None,
        };
        Some(DepthStream { symbol: symbol.to_owned(), depth, speed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binance_shaped_names_are_valid_and_others_are_not() {
        for ok in
            ["btcusdt@depth10@100ms", "btcusdt@depth5", "btcusdt@kline_1m", "!miniTicker@arr", "btcusdt@bookTicker"]
        {
            assert!(is_valid_stream_name(ok), "{ok}");
        }
        for bad in ["", "btcusdt", "@depth5", "btcusdt@", "btc usdt@depth5", "btcusdt@depth5\"", "btcusdt@dépth5"] {
            assert!(!is_valid_stream_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn only_partial_depth_names_are_synthesizable() {
        assert_eq!(
            DepthStream::parse("btcusdt@depth10@100ms"),
            Some(DepthStream { symbol: "btcusdt".into(), depth: Depth::D10, speed: UpdateSpeed::Ms100 })
        );
        assert_eq!(
            DepthStream::parse("ethusdt@depth5"),
            Some(DepthStream { symbol: "ethusdt".into(), depth: Depth::D5, speed: UpdateSpeed::Ms1000 })
        );
        for other in
            ["btcusdt@depth", "btcusdt@depth@100ms", "btcusdt@depth15", "BTCUSDT@depth5", "btcusdt@depth5@250ms"]
        {
            assert_eq!(DepthStream::parse(other), None, "{other}");
        }
    }

    #[test]
    fn interning_is_stable_and_shared() {
        let names = StreamNames::default();
        let other = names.clone();
        let a = names.intern("btcusdt@depth5");
        let b = other.intern("ethusdt@depth5");
        assert_ne!(a, b);
        assert_eq!(other.intern("btcusdt@depth5"), a);
        assert_eq!(&*names.name(b), "ethusdt@depth5");
    }
}
