//! The SBE message header and the root block it announces.
//!
//! Every spot_stream frame starts with `blockLength`, `templateId`, `schemaId`
//! and `version` (four `uint16`). The root block is `blockLength` bytes long,
//! whatever this decoder knows of it: a newer compatible version may append
//! fields, which are skipped, so the groups are found where the sender put them.

use super::SbeError;
use super::wire::Reader;

/// `spot_stream`'s schema id. Another id is a breaking change (Binance's SBE
/// FAQ): its frames are refused, never guessed at.
pub const SCHEMA_ID: u16 = 1;
/// The schema version this decoder was written from (`stream_1_0.xml`).
/// Frames of a newer version of the same id decode: their longer blocks are
/// honoured and their appended data ignored (the SBE extension rules).
pub const SCHEMA_VERSION: u16 = 0;

/// The four messages of `stream_1_0.xml`, by template id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Template {
    /// `TradesStreamEvent` (`<symbol>@trade`).
    Trades = 10000,
    /// `BestBidAskStreamEvent` (`<symbol>@bestBidAsk`).
    BestBidAsk = 10001,
    /// `DepthSnapshotStreamEvent` (`<symbol>@depth20`).
    DepthSnapshot = 10002,
    /// `DepthDiffStreamEvent` (`<symbol>@depth`).
    DepthDiff = 10003,
}

impl Template {
    /// From the header's `templateId`, if it is one of ours.
    pub const fn from_id(id: u16) -> Option<Self> {
        match id {
            10000 => Some(Template::Trades),
            10001 => Some(Template::BestBidAsk),
            10002 => Some(Template::DepthSnapshot),
            10003 => Some(Template::DepthDiff),
            _ => None,
        }
    }
}

/// A frame split at its header: what it is and where its parts lie.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Framed<'a> {
    pub(crate) template: Template,
    pub(crate) version: u16,
    /// The root block, exactly `blockLength` bytes.
    pub(crate) root: Reader<'a>,
    /// Groups and variable-length data after the root block.
    pub(crate) body: Reader<'a>,
}

/// Reads the header and splits off the root block.
#[inline(always)]
pub(crate) fn split(frame: &[u8]) -> Result<Framed<'_>, SbeError> {
    let mut r = Reader::new(frame);
    let (Some(block_length), Some(template_id), Some(schema_id), Some(version)) = (r.u16(), r.u16(), r.u16(), r.u16())
    else {
        return Err(SbeError::Truncated);
    };
    if schema_id != SCHEMA_ID {
        return Err(SbeError::WrongSchema);
    }
    let template = Template::from_id(template_id).ok_or(SbeError::UnknownTemplate)?;
    let root = r.bytes(usize::from(block_length)).ok_or(SbeError::Truncated)?;
    Ok(Framed { template, version, root: Reader::new(root), body: r })
}

impl Framed<'_> {
    /// What may follow the last field this decoder knows: nothing in a
    /// schema 1:0 frame; anything (appended data) in a newer version.
    #[inline(always)]
    pub(crate) fn check_end(&self, after: Reader<'_>) -> Result<(), SbeError> {
        if after.rest().is_empty() || self.version > SCHEMA_VERSION { Ok(()) } else { Err(SbeError::TrailingBytes) }
    }
}

/// `None` from a root-block read: the block is shorter than its fields.
#[inline(always)]
pub(crate) fn short<T>(v: Option<T>) -> Result<T, SbeError> {
    v.ok_or(SbeError::ShortBlock)
}
