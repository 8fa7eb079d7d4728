//! The frames the SBE benchmark cases run over, shared by the criterion
//! bench (`benches/sbe.rs`) and the case runner (`examples/sbe_cases.rs`):
//! the real BTCUSDT depth20@100ms recording and its SBE encoding
//! (`tests/fixtures/sbe/`, written by `scripts/sbe_encode.py`), the same
//! 6,493 books in the same order.

use std::io::Read;
use std::path::Path;

use imbalance_monitor::recording::{Line, RecordingReader};
use imbalance_monitor::sbe::SymbolTable;
use imbalance_monitor::venue::binance_spot::{Depth, StreamKind, StreamTable, UpdateSpeed};

const RECORDING: &str = "tests/fixtures/btcusdt_depth20_100ms_20240808-09.txt.gz";
const SBE: &str = "tests/fixtures/sbe/btcusdt_depth20_100ms_20240808-09.sbe.gz";

/// Every JSON frame of the recording, in file order.
pub fn json_frames() -> Vec<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(RECORDING);
    let mut reader = RecordingReader::open(&path).expect("open the depth20 recording");
    let mut frames = Vec::new();
    while let Some(line) = reader.next_line().expect("read the depth20 recording") {
        if let Line::Frame { json, .. } = line {
            frames.push(json.to_vec());
        }
    }
    frames
}

/// Every frame of the SBE fixture: the file is gzip of (`u32` LE length, message bytes)*.
pub fn sbe_frames() -> Vec<Vec<u8>> {
    let file = std::fs::File::open(Path::new(env!("CARGO_MANIFEST_DIR")).join(SBE)).expect("open the SBE fixture");
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(file).read_to_end(&mut bytes).expect("gunzip the SBE fixture");
    let mut frames = Vec::new();
    let mut rest = bytes.as_slice();
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let (frame, tail) = tail.split_at(u32::from_le_bytes(*len) as usize);
        frames.push(frame.to_vec());
        rest = tail;
    }
    frames
}

/// The one pair of the recording, for either decoder.
pub fn tables() -> (StreamTable, SymbolTable) {
    let streams = StreamTable::new(&["BTCUSDT".into()], StreamKind { depth: Depth::D20, speed: UpdateSpeed::Ms100 });
    let symbols = SymbolTable::from_streams(&streams);
    (streams, symbols)
}
