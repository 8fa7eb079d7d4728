//! `pairs`: the symbols to watch, checked and interned once, so every later
//! lookup by name (trigger `pairs`, `[pair_overrides.*]`) is a hash probe.
//!
//! A config may list tens of thousands of symbols (a 10 MB file); every
//! step here is linear in the list. A `Vec` scan for duplicates made 40,000
//! pairs take seconds and 80,000 five times as long.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;

use super::Problems;
use crate::pairs::PairId;

/// Longest Binance symbol accepted.
const MAX_SYMBOL_LEN: usize = 20;

/// Most pairs a config may list: a [`PairId`] is a `u16`.
const MAX_PAIRS: usize = u16::MAX as usize;

/// The valid, distinct symbols in config order, and each one's [`PairId`].
#[derive(Debug, Default)]
pub(super) struct PairIndex {
    symbols: Vec<String>,
    ids: HashMap<String, PairId>,
}

impl PairIndex {
    /// The id of `symbol` as a user wrote it (any case, surrounding blanks).
    pub(super) fn get(&self, symbol: &str) -> Option<PairId> {
        let symbol = symbol.trim();
        match self.ids.get(symbol) {
            Some(&id) => Some(id),
            None if symbol.bytes().any(|b| b.is_ascii_lowercase()) => {
                self.ids.get(symbol.to_ascii_uppercase().as_str()).copied()
            }
            None => None,
        }
    }

    /// The symbols in config order: position `k` is `PairId(k)`.
    pub(super) fn symbols(&self) -> &[String] {
        &self.symbols
    }

    pub(super) fn into_symbols(self) -> Vec<String> {
        self.symbols
    }
}

/// For each key, in order: `None` the first time it is seen, `Some(i)` for a
/// repeat, `i` being the position of its first sighting. One hash probe per
/// key, so linear in the list.
pub(super) fn repeats<K: Hash + Eq>(keys: impl IntoIterator<Item = K>) -> Vec<Option<usize>> {
    let keys = keys.into_iter();
    let mut first: HashMap<K, usize> = HashMap::with_capacity(keys.size_hint().0);
    keys.enumerate()
        .map(|(i, key)| match first.entry(key) {
            Entry::Occupied(e) => Some(*e.get()),
            Entry::Vacant(e) => {
                e.insert(i);
                None
            }
        })
        .collect()
}

/// Checks `pairs` (symbols, no duplicates, not too many) and interns them.
pub(super) fn validate(raw: &[String], p: &mut Problems<'_>) -> PairIndex {
    if raw.is_empty() {
        p.add("pairs", "is empty; list at least one symbol, e.g. pairs = [\"BTCUSDT\"]");
    }
    let mut valid: Vec<(usize, String)> = Vec::with_capacity(raw.len());
    for (i, sym) in raw.iter().enumerate() {
        let upper = sym.trim().to_ascii_uppercase();
        if upper.is_empty() || upper.len() > MAX_SYMBOL_LEN || !upper.bytes().all(|b| b.is_ascii_alphanumeric()) {
            p.add(
                format_args!("pairs[{i}]"),
                format_args!(
                    "is {sym:?}, not a Binance symbol; write the base and quote assets together in letters and digits, e.g. \"BTCUSDT\""
                ),
            );
        } else {
            valid.push((i, upper));
        }
    }
    let repeated = repeats(valid.iter().map(|(_, s)| s.as_str()));
    let mut index = PairIndex { symbols: Vec::with_capacity(valid.len()), ids: HashMap::with_capacity(valid.len()) };
    for ((i, upper), repeat) in valid.into_iter().zip(repeated) {
        if repeat.is_some() {
            p.add(format_args!("pairs[{i}]"), format_args!("{upper} is listed twice; remove the duplicate"));
        } else {
            let id = PairId(u16::try_from(index.symbols.len()).unwrap_or(u16::MAX));
            index.ids.insert(upper.clone(), id);
            index.symbols.push(upper);
        }
    }
    if index.symbols.len() > MAX_PAIRS {
        p.add("pairs", format_args!("has {} symbols; at most {MAX_PAIRS} are supported", index.symbols.len()));
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::hash::Hasher;

    thread_local! {
        /// Key comparisons and hashes done by [`repeats`] so far.
        static WORK: Cell<u64> = const { Cell::new(0) };
    }

    /// A key that counts every hash and comparison made of it.
    struct Counted(u32);

    impl Hash for Counted {
        fn hash<H: Hasher>(&self, state: &mut H) {
            WORK.with(|w| w.set(w.get() + 1));
            self.0.hash(state);
        }
    }

    impl PartialEq for Counted {
        fn eq(&self, other: &Self) -> bool {
            WORK.with(|w| w.set(w.get() + 1));
            self.0 == other.0
        }
    }

    impl Eq for Counted {}

    /// Work per key of [`repeats`] over `n` keys, every tenth a repeat.
    fn work_per_key(n: u32) -> f64 {
        WORK.with(|w| w.set(0));
        let out = repeats((0..n).map(|i| Counted(if i % 10 == 9 { i - 1 } else { i })));
        assert_eq!(out.iter().filter(|r| r.is_some()).count(), (n / 10) as usize);
        WORK.with(|w| w.get()) as f64 / f64::from(n)
    }

    #[test]
    fn the_duplicate_check_does_constant_work_per_pair() {
        // A scan of the symbols seen so far does n/2 comparisons per key on
        // average (500 at 1,000 keys, 32,000 at 64,000); hashing does ~2.
        let small = work_per_key(1_000);
        let large = work_per_key(64_000);
        assert!(small < 3.0 && large < 3.0, "work per key: {small} at 1,000 keys, {large} at 64,000");
    }

    #[test]
    fn repeats_point_at_the_first_sighting() {
        assert_eq!(repeats(["A", "B", "A", "C", "B"]), vec![None, None, Some(0), None, Some(1)]);
    }

    #[test]
    fn lookups_ignore_case_and_blanks_and_ids_follow_config_order() {
        let mut problems = Vec::new();
        let index = validate(&["btcusdt".into(), " SOLUSDT ".into(), "BTCUSDT".into()], &mut Problems(&mut problems));
        assert_eq!(index.symbols(), ["BTCUSDT", "SOLUSDT"]);
        assert_eq!(index.get("solusdt"), Some(PairId(1)));
        assert_eq!(index.get(" BTCUSDT"), Some(PairId(0)));
        assert_eq!(index.get("XRPUSDT"), None);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "pairs[2]");
        assert_eq!(problems[0].message, "BTCUSDT is listed twice; remove the duplicate");
    }
}
