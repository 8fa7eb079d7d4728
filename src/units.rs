//! Fixed-point units shared by every pipeline stage.
//!
//! Binance sends prices and quantities as decimal strings with (so far) exactly
//! eight fractional digits. They are kept as integer mantissas at scale 1e8 from
//! the moment they leave the wire until a person reads them, so every sum and
//! every comparison is exact; `f64` appears only for the final ratio a person
//! reads, never for a decision about money.

use std::fmt;

/// Fractional digits of a [`Price`] or [`Qty`] mantissa.
pub const FRAC_DIGITS: u32 = 8;

/// `10^FRAC_DIGITS`: the mantissa of one unit.
pub const SCALE: u64 = 100_000_000;

/// A price at scale 1e8 (`"61837.63000000"` is `Price(6_183_763_000_000)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Price(pub u64);

/// A quantity at scale 1e8.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Qty(pub u64);

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_decimal(f, u128::from(self.0), FRAC_DIGITS)
    }
}

impl fmt::Display for Qty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_decimal(f, u128::from(self.0), FRAC_DIGITS)
    }
}

/// How a side's volume is measured; decides the unit of [`Volume`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeMode {
    /// Σ qty, in base-asset units at scale 1e8.
    Qty,
    /// Σ price × qty, in quote-asset units at scale 1e16.
    #[default]
    Notional,
}

impl VolumeMode {
    /// Fractional digits of a volume mantissa in this mode.
    pub const fn frac_digits(self) -> u32 {
        match self {
            VolumeMode::Qty => FRAC_DIGITS,
            VolumeMode::Notional => 2 * FRAC_DIGITS,
        }
    }

    /// The name used in config files, logs and the journal.
    pub const fn as_str(self) -> &'static str {
        match self {
            VolumeMode::Qty => "qty",
            VolumeMode::Notional => "notional",
        }
    }
}

impl fmt::Display for VolumeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An exact side volume: the mantissa carries its mode so it can never be
/// printed or compared at the wrong scale.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Volume {
    /// Mantissa at `10^mode.frac_digits()`.
    pub raw: u128,
    /// Unit of `raw`.
    pub mode: VolumeMode,
}

impl Volume {
    /// The volume in (lossy) floating point, for gauges and human-facing ratios only.
    pub fn as_f64(self) -> f64 {
        self.raw as f64 / 10f64.powi(self.mode.frac_digits() as i32)
    }
}

impl fmt::Display for Volume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_decimal(f, self.raw, self.mode.frac_digits())
    }
}

/// Writes `raw / 10^frac_digits` exactly: no exponent, trailing fractional
/// zeros trimmed, no trailing point (`1234500000, 8` → `12.345`; `0, 8` → `0`).
pub fn write_decimal(out: &mut impl fmt::Write, raw: u128, frac_digits: u32) -> fmt::Result {
    let scale = 10u128.pow(frac_digits);
    let int = raw / scale;
    let mut frac = raw % scale;
    write!(out, "{int}")?;
    if frac == 0 {
        return Ok(());
    }
    let mut digits = frac_digits as usize;
    while frac.is_multiple_of(10) {
        frac /= 10;
        digits -= 1;
    }
    write!(out, ".{frac:0digits$}")
}

/// A feed timestamp: nanoseconds since the Unix epoch, as stamped on receipt.
///
/// Live runs and replays both drive the engine with it, so cooldowns are
/// measured in feed time and a replay decides exactly as the live run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixNanos(pub u64);

impl UnixNanos {
    /// The current wall-clock time. Only the feed's receive path calls this.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        UnixNanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}

/// A duration in whole nanoseconds, saturating: what latency histograms and
/// the feed's socket-read clock record.
#[inline]
pub fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl fmt::Display for UnixNanos {
    /// RFC 3339 in UTC with nanoseconds: `2024-08-08T23:54:14.137307667Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / 1_000_000_000;
        let nanos = self.0 % 1_000_000_000;
        let (y, m, d) = civil_from_days((secs / 86_400) as i64);
        let sod = secs % 86_400;
        write!(f, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z", sod / 3600, sod % 3600 / 60, sod % 60)
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); Howard
/// Hinnant's `civil_from_days`, exact for every `u64` nanosecond timestamp.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(raw: u128, digits: u32) -> String {
        let mut s = String::new();
        write_decimal(&mut s, raw, digits).unwrap();
        s
    }

    #[test]
    fn decimals_print_exactly_without_trailing_zeros() {
        assert_eq!(dec(6_183_763_000_000, 8), "61837.63");
        assert_eq!(dec(0, 8), "0");
        assert_eq!(dec(1, 8), "0.00000001");
        assert_eq!(dec(100_000_000, 8), "1");
        assert_eq!(dec(10, 16), "0.000000000000001");
        assert_eq!(dec(u128::MAX, 16), "34028236692093846346337.4607431768211455");
    }

    #[test]
    fn notional_volume_prints_at_scale_1e16() {
        let v = Volume { raw: 7_625_960_012_000_000_000_000, mode: VolumeMode::Notional };
        assert_eq!(v.to_string(), "762596.0012");
        let q = Volume { raw: 378_826_000, mode: VolumeMode::Qty };
        assert_eq!(q.to_string(), "3.78826");
    }

    #[test]
    fn timestamps_print_as_rfc3339_utc_nanoseconds() {
        assert_eq!(UnixNanos(1_723_161_254_137_307_667).to_string(), "2024-08-08T23:54:14.137307667Z");
        assert_eq!(UnixNanos(0).to_string(), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(UnixNanos(951_782_400_000_000_000).to_string(), "2000-02-29T00:00:00.000000000Z");
        assert_eq!(UnixNanos(u64::MAX).to_string(), "2554-07-21T23:34:33.709551615Z");
    }
}
