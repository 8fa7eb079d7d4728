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

/// Finds the lines of keys in one source: parsed once, and each line found
/// by a binary search of the line starts, so reporting every problem of a
/// config with 40,000 bad pairs stays linear in its size.
pub struct Locator<'a> {
    /// `None` when the source does not parse (then no key has a line).
    root: Option<toml::Spanned<DeTable<'a>>>,
    /// Byte offset of the start of every line after the first.
    line_starts: Vec<usize>,
}

impl<'a> Locator<'a> {
    pub fn new(source: &'a str) -> Self {
        let line_starts = source.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| i + 1).collect();
        Locator { root: DeTable::parse(source).ok(), line_starts }
    }

    /// 1-based line of the deepest element of `path` present in the
    /// source, or `None` if not even its first segment is (a default was used).
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut table: &DeTable<'_> = self.root.as_ref()?.get_ref();
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
        found.map(|offset| self.line_at(offset))
    }

    /// The key path (`triggers[0].op`) of the value at byte `offset`, when
    /// the source parses and a value there is found: how a type error from
    /// serde, which knows only a position, gets its key.
    pub fn path_at(&self, offset: usize) -> Option<String> {
        let mut path = String::new();
        find_in_table(self.root.as_ref()?.get_ref(), offset, &mut path).then_some(path)
    }

    /// 1-based line number of a byte offset.
    pub fn line_at(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset) + 1
    }
}

/// Appends to `path` the keys down to the value at `offset`; false if none.
fn find_in_table(table: &DeTable<'_>, offset: usize, path: &mut String) -> bool {
    for (key, value) in table.iter() {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key.get_ref());
        if find_in_value(value, offset, path) {
            return true;
        }
        path.truncate(len);
    }
    false
}

fn find_in_value(value: &toml::Spanned<DeValue<'_>>, offset: usize, path: &mut String) -> bool {
    match value.get_ref() {
        // A table's span need not cover its body (`[[triggers]]`): search it whole.
        DeValue::Table(t) => find_in_table(t, offset, path),
        DeValue::Array(a) => {
            a.iter().enumerate().any(|(i, v)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = find_in_value(v, offset, path)
                    || (!matches!(v.get_ref(), DeValue::Table(_)) && v.span().contains(&offset));
                if !found {
                    path.truncate(len);
                }
                found
            }) || value.span().contains(&offset)
        }
        _ => value.span().contains(&offset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "pairs = [\"BTCUSDT\",\n  \"ETH/USDT\"]\n\n[metrics]\ntop_n = 30\n\n[[triggers]]\nname = \"a\"\n\n[[triggers]]\nname = \"b\"\nop = \"=>\"\n";

    #[test]
    fn paths_resolve_to_the_line_of_the_value() {
        let at = Locator::new(SRC);
        assert_eq!(at.line_of("pairs[1]"), Some(2));
        assert_eq!(at.line_of("metrics.top_n"), Some(5));
        assert_eq!(at.line_of("triggers[1].op"), Some(12));
        assert_eq!(at.line_of("binance.depth"), None);
    }

    #[test]
    fn an_offset_resolves_to_the_key_path_of_its_value() {
        let at = Locator::new(SRC);
        assert_eq!(at.path_at(SRC.find("=>").unwrap()).as_deref(), Some("triggers[1].op"));
        assert_eq!(at.path_at(SRC.find("30").unwrap()).as_deref(), Some("metrics.top_n"));
        assert_eq!(at.path_at(SRC.find("ETH/").unwrap()).as_deref(), Some("pairs[1]"));
        assert_eq!(at.path_at(0), None, "a key, not a value");
    }

    #[test]
    fn missing_leaf_falls_back_to_its_parent() {
        let at = Locator::new(SRC);
        assert_eq!(at.line_of("triggers[1].value"), at.line_of("triggers[1]"));
    }

    #[test]
    fn offsets_map_to_lines_at_both_ends_of_each_line() {
        let at = Locator::new("a\nbc\n\nd");
        let lines: Vec<usize> = (0..8).map(|o| at.line_at(o)).collect();
        assert_eq!(lines, [1, 1, 2, 2, 2, 3, 4, 4]);
    }

    #[test]
    fn an_unparsable_source_still_numbers_its_lines() {
        let at = Locator::new("pairs = [\n");
        assert_eq!(at.line_of("pairs"), None);
        assert_eq!((at.line_at(9), at.line_at(10)), (1, 2));
    }
}
