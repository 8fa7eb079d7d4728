//! Forward horizons: how long after an alert its outcome is read.

use std::fmt;

/// The horizons `evaluate` uses unless `--horizons` says otherwise.
pub const DEFAULT: &str = "100ms,1s,5s,30s,60s";

/// A forward horizon in feed time (nanoseconds of receive time), > 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Horizon {
    pub ns: u64,
}

impl Horizon {
    /// Whole milliseconds, as the JSON and CSV report it.
    pub fn ms(self) -> u64 {
        self.ns / 1_000_000
    }
}

impl fmt::Display for Horizon {
    /// The shortest exact form: `250ms`, `5s`, `2m`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MS: u64 = 1_000_000;
        match self.ns {
            ns if ns % (60_000 * MS) == 0 => write!(f, "{}m", ns / (60_000 * MS)),
            ns if ns % (1_000 * MS) == 0 => write!(f, "{}s", ns / (1_000 * MS)),
            ns if ns % MS == 0 => write!(f, "{}ms", ns / MS),
            ns => write!(f, "{ns}ns"),
        }
    }
}

/// Parses `100ms,1s,5s,30s,60s` (units `ms`, `s`, `m`; whole numbers) into
/// sorted, distinct horizons; the message names the bad item.
pub fn parse(list: &str) -> Result<Vec<Horizon>, String> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim) {
        let (digits, unit_ns) = if let Some(d) = item.strip_suffix("ms") {
            (d, 1_000_000u64)
        } else if let Some(d) = item.strip_suffix('s') {
            (d, 1_000_000_000)
        } else if let Some(d) = item.strip_suffix('m') {
            (d, 60_000_000_000)
        } else {
            return Err(format!("{item:?} has no unit; write e.g. 100ms, 5s or 2m"));
        };
        let ns = digits
            .parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
            .and_then(|n| n.checked_mul(unit_ns))
            .filter(|&ns| ns <= 86_400_000_000_000)
            .ok_or_else(|| format!("{item:?} is not a horizon; use a whole number > 0 of ms, s or m, at most a day"))?;
        out.push(Horizon { ns });
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizons_parse_sorted_and_print_back_in_their_shortest_unit() {
        let h = parse("60s, 100ms,1s,5s,30s,1m").unwrap();
        let shown: Vec<String> = h.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["100ms", "1s", "5s", "30s", "1m"]);
        assert_eq!(h[0].ms(), 100);
    }

    #[test]
    fn bad_horizons_name_the_item() {
        assert!(parse("1s,5").unwrap_err().contains("\"5\" has no unit"));
        assert!(parse("0s").unwrap_err().contains("\"0s\" is not a horizon"));
        assert!(parse("1.5s").unwrap_err().contains("\"1.5s\""));
        assert!(parse("2d").is_err());
    }
}
