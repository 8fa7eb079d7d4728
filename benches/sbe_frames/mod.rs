//! The frames the SBE benchmark cases run over, shared by the criterion
//! bench (`benches/sbe.rs`) and the case runner (`examples/sbe_cases.rs`):
//! the real BTCUSDT depth20@100ms recording and its SBE encoding
//! (`tests/fixtures/sbe/`, written by `scripts/sbe_encode.py`), the same
//! 6,493 books in the same order.

#[path = "../../tests/sbe_common/mod.rs"]
mod sbe_common;

use imbalance_monitor::sbe::SymbolTable;
use imbalance_monitor::venue::binance_spot::{Depth, StreamKind, StreamTable, UpdateSpeed};

/// The recording, under `tests/fixtures`; its SBE encoding is beside it
/// under `sbe/`.
const RECORDING: &str = "btcusdt_depth20_100ms_20240808-09.txt.gz";

/// Every JSON frame of the recording, in file order.
pub fn json_frames() -> Vec<Vec<u8>> {
    sbe_common::json_frames(RECORDING).into_iter().map(|(_, json)| json).collect()
}

/// Every frame of the SBE fixture, in the same order.
pub fn sbe_frames() -> Vec<Vec<u8>> {
    sbe_common::sbe_frames(RECORDING)
}

/// The one pair of the recording, for either decoder.
pub fn tables() -> (StreamTable, SymbolTable) {
    let streams = StreamTable::new(&["BTCUSDT".into()], StreamKind { depth: Depth::D20, speed: UpdateSpeed::Ms100 });
    let symbols = SymbolTable::from_streams(&streams);
    (streams, symbols)
}
