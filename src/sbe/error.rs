//! Why an SBE frame was rejected.

/// Why a binary frame was rejected. `Copy` and field-less so counting it is an
/// array increment; [`SbeError::ALL`] and [`SbeError::name`] label the counters,
/// and the names are stable (dashboards and alerts refer to them).
///
/// A rejected frame is skipped whole: nothing of it reaches the caller's book.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SbeError {
    #[error("the frame ends inside the message header, a block, a group header or the symbol")]
    Truncated,
    #[error("the message header names a schema other than spot_stream (id 1)")]
    WrongSchema,
    #[error("the message header names a template that is not one of the four spot_stream messages")]
    UnknownTemplate,
    #[error("a root block or group entry is shorter than the fields schema 1:0 puts in it")]
    ShortBlock,
    #[error("a group's count × entry length runs past the end of the frame")]
    GroupOverrun,
    #[error("a depth snapshot side has more than 20 levels")]
    TooManyLevels,
    #[error("depth snapshot bids are not strictly descending")]
    BidsNotDescending,
    #[error("depth snapshot asks are not strictly ascending")]
    AsksNotAscending,
    #[error("a price, quantity, update id, trade id or timestamp is negative")]
    Negative,
    #[error("a mantissa × 10^exponent needs more than 8 fractional digits (it would have to be rounded)")]
    InexactDecimal,
    #[error("a mantissa × 10^exponent does not fit in 64 bits at scale 1e8")]
    Overflow,
    #[error("a boolean field holds a value other than 0 or 1")]
    BadEnum,
    #[error("the symbol is not one of the configured pairs")]
    UnknownSymbol,
    #[error("bytes after the end of a schema 1:0 message")]
    TrailingBytes,
}

impl SbeError {
    /// Every kind, in counter order.
    pub const ALL: [SbeError; 14] = [
        SbeError::Truncated,
        SbeError::WrongSchema,
        SbeError::UnknownTemplate,
        SbeError::ShortBlock,
        SbeError::GroupOverrun,
        SbeError::TooManyLevels,
        SbeError::BidsNotDescending,
        SbeError::AsksNotAscending,
        SbeError::Negative,
        SbeError::InexactDecimal,
        SbeError::Overflow,
        SbeError::BadEnum,
        SbeError::UnknownSymbol,
        SbeError::TrailingBytes,
    ];

    /// Number of kinds; sizes counter arrays.
    pub const COUNT: usize = Self::ALL.len();

    /// Position in [`SbeError::ALL`].
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    /// snake_case label for logs and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            SbeError::Truncated => "truncated",
            SbeError::WrongSchema => "wrong_schema",
            SbeError::UnknownTemplate => "unknown_template",
            SbeError::ShortBlock => "short_block",
            SbeError::GroupOverrun => "group_overrun",
            SbeError::TooManyLevels => "too_many_levels",
            SbeError::BidsNotDescending => "bids_not_descending",
            SbeError::AsksNotAscending => "asks_not_ascending",
            SbeError::Negative => "negative",
            SbeError::InexactDecimal => "inexact_decimal",
            SbeError::Overflow => "overflow",
            SbeError::BadEnum => "bad_enum",
            SbeError::UnknownSymbol => "unknown_symbol",
            SbeError::TrailingBytes => "trailing_bytes",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_listed_in_index_order_with_distinct_names() {
        for (i, e) in SbeError::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
        }
        let mut names: Vec<_> = SbeError::ALL.iter().map(|e| e.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SbeError::COUNT);
    }
}
