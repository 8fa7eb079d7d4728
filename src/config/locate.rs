//! Maps a key path (`triggers[1].op`) to its line in the TOML source, so
//! every validation error can point at the line to fix.

use toml::de::{DeTable, DeValue};

/// One step of a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Splits `triggers[1].pairs[0]` into segments.
pub fn parse_path(path: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    for part in path.split('.') {
        let (name, rest) = part.split_once('[').unwrap_or((part, ""));
        if !name.is_empty() {
            segs.push(Seg::Key(name.to_string()));
        }
        for idx in rest.split('[') {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                segs.push(Seg::Index(i));
            }
        }
    }
    segs
}

/// 1-based line of the deepest element of `path` present in `source`, or
/// `None` if not even its first segment is (a default was used).
pub fn line_of(source: &str, path: &str) -> Option<usize> {
    let root = DeTable::parse(source).ok()?;
    let mut table: &DeTable<'_> = root.get_ref();
    let mut array: Option<&toml::de::DeArray<'_>> = None;
    let mut found: Option<usize> = None;
    for seg in parse_path(path) {
        let value = match (&seg, array) {
            (Seg::Key(k), None) => table.get(k.as_str()),
            (Seg::Index(i), Some(a)) => a.get(*i),
            _ => None,
        };
        let Some(value) = value else { break };
        found = Some(value.span().start);
        array = None;
        match value.get_ref() {
            DeValue::Table(t) => table = t,
            DeValue::Array(a) => array = Some(a),
            _ => {}
        }
    }
    found.map(|offset| line_at(source, offset))
}

/// 1-based line number of a byte offset.
pub fn line_at(source: &str, offset: usize) -> usize {
    source.as_bytes().iter().take(offset).filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "pairs = [\"BTCUSDT\",\n  \"ETH/USDT\"]\n\n[metrics]\ntop_n = 30\n\n[[triggers]]\nname = \"a\"\n\n[[triggers]]\nname = \"b\"\nop = \"=>\"\n";

    #[test]
    fn paths_resolve_to_the_line_of_the_value() {
        assert_eq!(line_of(SRC, "pairs[1]"), Some(2));
        assert_eq!(line_of(SRC, "metrics.top_n"), Some(5));
        assert_eq!(line_of(SRC, "triggers[1].op"), Some(12));
        assert_eq!(line_of(SRC, "binance.depth"), None);
    }

    #[test]
    fn missing_leaf_falls_back_to_its_parent() {
        assert_eq!(line_of(SRC, "triggers[1].value"), line_of(SRC, "triggers[1]"));
    }
}
