//! Reject kinds: why a message was not applied, venue-neutral.
//!
//! Every decoder reports its failures as one of these kinds, so counters,
//! logs and Prometheus series are keyed the same whatever the venue. The
//! frame is then skipped whole, never half-applied.

/// Why a frame was rejected. `Copy` and field-less so counting it is an array
/// increment; [`RejectKind::ALL`] and [`RejectKind::name`] label the counters
/// (the `kind` of the `rejected` Prometheus series, the STATS and replay
/// summaries). A second venue's decoder reports the same kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RejectKind {
    #[error("input ends inside a JSON value")]
    Truncated,
    #[error("malformed JSON")]
    Syntax,
    #[error("a field has the wrong JSON type")]
    WrongType,
    #[error("a decimal has an exponent")]
    Exponent,
    #[error("a decimal has a sign")]
    Sign,
    #[error("a decimal is empty or not a plain decimal")]
    BadDecimal,
    #[error("a decimal has more than 8 fractional digits")]
    TooManyDecimals,
    #[error("a number does not fit in 64 bits")]
    Overflow,
    #[error("a side has more levels than the book or event holds")]
    TooManyLevels,
    #[error("bids are not strictly descending")]
    BidsNotDescending,
    #[error("asks are not strictly ascending")]
    AsksNotAscending,
    #[error("a required field (lastUpdateId, bids, asks, data) is missing")]
    MissingField,
    #[error("a field appears twice")]
    DuplicateField,
    #[error("JSON nested too deeply")]
    TooDeep,
    #[error("bytes after the end of the message")]
    TrailingBytes,
    #[error("the stream is not one of the configured depth streams")]
    UnknownStream,
    #[error("a depth payload without a stream name")]
    NoStream,
    #[error("a diff event's first update id is after its last")]
    UpdateIdsReversed,
    #[error("a REST depth snapshot has more levels on a side than its buffer holds")]
    SnapshotTooDeep,
}

impl RejectKind {
    /// Every kind, in counter order.
    pub const ALL: [RejectKind; 19] = [
        RejectKind::Truncated,
        RejectKind::Syntax,
        RejectKind::WrongType,
        RejectKind::Exponent,
        RejectKind::Sign,
        RejectKind::BadDecimal,
        RejectKind::TooManyDecimals,
        RejectKind::Overflow,
        RejectKind::TooManyLevels,
        RejectKind::BidsNotDescending,
        RejectKind::AsksNotAscending,
        RejectKind::MissingField,
        RejectKind::DuplicateField,
        RejectKind::TooDeep,
        RejectKind::TrailingBytes,
        RejectKind::UnknownStream,
        RejectKind::NoStream,
        RejectKind::UpdateIdsReversed,
        RejectKind::SnapshotTooDeep,
    ];

    /// Number of kinds; sizes counter arrays.
    pub const COUNT: usize = Self::ALL.len();

    /// Position in [`RejectKind::ALL`].
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    /// snake_case label for logs and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            RejectKind::Truncated => "truncated",
            RejectKind::Syntax => "syntax",
            RejectKind::WrongType => "wrong_type",
            RejectKind::Exponent => "exponent",
            RejectKind::Sign => "sign",
            RejectKind::BadDecimal => "bad_decimal",
            RejectKind::TooManyDecimals => "too_many_decimals",
            RejectKind::Overflow => "overflow",
            RejectKind::TooManyLevels => "too_many_levels",
            RejectKind::BidsNotDescending => "bids_not_descending",
            RejectKind::AsksNotAscending => "asks_not_ascending",
            RejectKind::MissingField => "missing_field",
            RejectKind::DuplicateField => "duplicate_field",
            RejectKind::TooDeep => "too_deep",
            RejectKind::TrailingBytes => "trailing_bytes",
            RejectKind::UnknownStream => "unknown_stream",
            RejectKind::NoStream => "no_stream",
            RejectKind::UpdateIdsReversed => "update_ids_reversed",
            RejectKind::SnapshotTooDeep => "snapshot_too_deep",
        }
    }
}
