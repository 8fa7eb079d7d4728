//! `Retry-After` on a refused WebSocket upgrade (RFC 9110 §10.2.3): either
//! delay-seconds or an HTTP-date. Binance sends it with 429 (too many
//! requests) and 418 (IP banned for ignoring 429s), with bans from 2 minutes
//! up to 3 days. The value comes from the network, so every step saturates:
//! a header of "9223372036854775807" or a date in the year 9999 is a long
//! delay, never an overflow.

use std::time::Duration;

/// Binance's longest IP ban. A longer `Retry-After` is waited out only this
/// long (and logged): a server asking for years is wrong or hostile, and an
/// attempt every 3 days cannot make a ban worse.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3 * 24 * 3600);

/// The delay a `Retry-After` value asks for, counted from `now_unix_secs`
/// for an HTTP-date (a date in the past asks for none). `None` if the value
/// is neither form. Delay-seconds too large for a `u64` saturate.
pub fn parse(value: &[u8], now_unix_secs: u64) -> Option<Duration> {
    let value = value.trim_ascii();
    if !value.is_empty() && value.iter().all(u8::is_ascii_digit) {
        let secs = value.iter().fold(0u64, |n, &d| n.saturating_mul(10).saturating_add(u64::from(d - b'0')));
        return Some(Duration::from_secs(secs));
    }
    let now = i64::try_from(now_unix_secs).ok()?;
    let at = http_date(std::str::from_utf8(value).ok()?, now)?;
    Some(Duration::from_secs(u64::try_from(at.saturating_sub(now)).unwrap_or(0)))
}

/// Unix seconds of an HTTP-date in any of the three forms a recipient must
/// accept: IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, RFC 850
/// `Sunday, 06-Nov-94 08:49:37 GMT` and asctime `Sun Nov  6 08:49:37 1994`.
/// `now` (Unix seconds) places RFC 850's two-digit year.
fn http_date(s: &str, now: i64) -> Option<i64> {
    let fields: Vec<&str> = s.split_ascii_whitespace().collect();
    let (day, month, year, clock) = match fields.as_slice() {
        [wd, day, mon, year, clock, "GMT"] if wd.ends_with(',') => (*day, *mon, year.parse::<i32>().ok()?, *clock),
        [wd, date, clock, "GMT"] if wd.ends_with(',') => {
            let mut parts = date.split('-');
            let (day, mon, yy) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() || yy.len() != 2 {
                return None;
            }
            // RFC 9110: a two-digit year that would be more than 50 years
            // ahead is the most recent past year with those digits.
            let yy: i32 = yy.parse().ok()?;
            let this_year = time::OffsetDateTime::from_unix_timestamp(now).ok()?.year();
            let year = this_year - this_year.rem_euclid(100) + yy;
            (day, mon, if year > this_year + 50 { year - 100 } else { year }, *clock)
        }
        [_, mon, day, clock, year] => (*day, *mon, year.parse::<i32>().ok()?, *clock),
        _ => return None,
    };
    let month = match month {
        "Jan" => time::Month::January,
        "Feb" => time::Month::February,
        "Mar" => time::Month::March,
        "Apr" => time::Month::April,
        "May" => time::Month::May,
        "Jun" => time::Month::June,
        "Jul" => time::Month::July,
        "Aug" => time::Month::August,
        "Sep" => time::Month::September,
        "Oct" => time::Month::October,
        "Nov" => time::Month::November,
        "Dec" => time::Month::December,
        _ => return None,
    };
    let mut hms = clock.split(':').map(str::parse::<u8>);
    let (h, m, sec) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    if hms.next().is_some() {
        return None;
    }
    let date = time::Date::from_calendar_date(year, month, day.parse().ok()?).ok()?;
    let clock = time::Time::from_hms(h, m, sec).ok()?;
    Some(date.with_time(clock).assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1994-11-06 08:49:37 UTC, RFC 9110's example date.
    const EXAMPLE: u64 = 784_111_777;

    #[test]
    fn delay_seconds_parse_and_saturate_past_u64() {
        assert_eq!(parse(b"120", 0), Some(Duration::from_secs(120)));
        assert_eq!(parse(b" 0 ", 0), Some(Duration::ZERO));
        assert_eq!(parse(b"9223372036854775807", 0), Some(Duration::from_secs(i64::MAX as u64)));
        assert_eq!(parse(b"18446744073709551615", 0), Some(Duration::from_secs(u64::MAX)));
        assert_eq!(parse(b"99999999999999999999999999", 0), Some(Duration::from_secs(u64::MAX)));
    }

    #[test]
    fn the_three_http_date_forms_give_the_delay_from_now() {
        for form in ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            assert_eq!(parse(form.as_bytes(), EXAMPLE - 90), Some(Duration::from_secs(90)), "{form}");
            assert_eq!(parse(form.as_bytes(), EXAMPLE + 5), Some(Duration::ZERO), "{form} in the past");
        }
        let far = parse(b"Fri, 31 Dec 9999 23:59:59 GMT", EXAMPLE).unwrap();
        assert!(far > MAX_RETRY_AFTER);
    }

    #[test]
    fn a_two_digit_year_more_than_50_years_ahead_is_in_the_past() {
        // 2026-01-01: "76" is 2076 (50 years ahead), "77" is 1977.
        let now = 1_767_225_600;
        let y2076 = parse(b"Wednesday, 01-Jan-76 00:00:00 GMT", now).unwrap();
        assert_eq!(y2076.as_secs(), 3_345_062_400 - now);
        assert_eq!(parse(b"Saturday, 01-Jan-77 00:00:00 GMT", now), Some(Duration::ZERO));
    }

    #[test]
    fn anything_else_asks_for_nothing() {
        for bad in [
            "",
            "-5",
            "1.5",
            "soon",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 CET",
        ] {
            assert_eq!(parse(bad.as_bytes(), EXAMPLE), None, "{bad:?}");
        }
    }
}
