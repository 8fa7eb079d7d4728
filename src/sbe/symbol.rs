//! The `varString8` symbol of every message, mapped to the configured pair.
//!
//! SBE frames name their pair by upper-case symbol (`BTCUSDT`), not by stream
//! name as the JSON combined stream does. The table is built once at start-up
//! and sorted, so the hot path finds a symbol by binary search over borrowed
//! bytes: no hashing, no allocation.

use crate::pairs::PairId;
use crate::venue::binance_spot::StreamTable;

use super::SbeError;
use super::wire::Reader;

/// Configured symbols and their pair ids, sorted by symbol bytes.
#[derive(Clone, Debug, Default)]
pub struct SymbolTable {
    sorted: Vec<(Box<[u8]>, PairId)>,
}

impl SymbolTable {
    /// Interns `symbols` (upper case, config order: the i-th is `PairId(i)`,
    /// as in [`StreamTable`]). A later duplicate maps to its first id.
    pub fn new(symbols: &[String]) -> Self {
        let mut sorted: Vec<(Box<[u8]>, PairId)> = Vec::with_capacity(symbols.len());
        for (i, sym) in symbols.iter().enumerate() {
            let id = PairId(u16::try_from(i).unwrap_or(u16::MAX));
            if !sorted.iter().any(|(s, _)| **s == *sym.as_bytes()) {
                sorted.push((sym.as_bytes().into(), id));
            }
        }
        sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Self { sorted }
    }

    /// The same pairs, with the same ids, as a JSON stream table.
    pub fn from_streams(streams: &StreamTable) -> Self {
        let symbols: Vec<String> = streams.pairs().map(|p| streams.symbol(p).to_owned()).collect();
        Self::new(&symbols)
    }

    /// The pair whose symbol is exactly `symbol`.
    #[inline]
    pub fn lookup(&self, symbol: &[u8]) -> Option<PairId> {
        let i = self.sorted.binary_search_by(|(s, _)| (**s).cmp(symbol)).ok()?;
        self.sorted.get(i).map(|(_, id)| *id)
    }
}

/// Reads the trailing `varString8` symbol and resolves it.
#[inline(always)]
pub(crate) fn read_pair(body: &mut Reader<'_>, symbols: &SymbolTable) -> Result<PairId, SbeError> {
    let len = body.u8().ok_or(SbeError::Truncated)?;
    let symbol = body.bytes(usize::from(len)).ok_or(SbeError::Truncated)?;
    symbols.lookup(symbol).ok_or(SbeError::UnknownSymbol)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_resolve_to_their_config_order_id_and_nothing_else_does() {
        let t = SymbolTable::new(&["ETHUSDT".into(), "BTCUSDT".into(), "BNBBTC".into(), "ETHUSDT".into()]);
        assert_eq!(t.lookup(b"ETHUSDT"), Some(PairId(0)));
        assert_eq!(t.lookup(b"BTCUSDT"), Some(PairId(1)));
        assert_eq!(t.lookup(b"BNBBTC"), Some(PairId(2)));
        assert_eq!(t.lookup(b"btcusdt"), None);
        assert_eq!(t.lookup(b"BTCUSD"), None);
        assert_eq!(t.lookup(b""), None);
    }
}
