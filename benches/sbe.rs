//! SBE depth20 decode vs JSON depth20 parse, on the same real books.
//!
//! Every frame of the BTCUSDT depth20@100ms recording and its SBE encoding
//! (`tests/fixtures/sbe/`, written by `scripts/sbe_encode.py`) is loaded into
//! memory first; each iteration decodes the next frame into a `Book`, cycling,
//! so both cases see the same 6,493 books in the same order.
//!
//! Run: `cargo bench --bench sbe`.

use std::hint::black_box;
use std::io::Read;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use imbalance_monitor::book::Book;
use imbalance_monitor::exchange::binance::{Depth, StreamKind, StreamTable, UpdateSpeed, parse_message};
use imbalance_monitor::recording::{Line, RecordingReader};
use imbalance_monitor::sbe::{SymbolTable, decode};

const RECORDING: &str = "tests/fixtures/btcusdt_depth20_100ms_20240808-09.txt.gz";
const SBE: &str = "tests/fixtures/sbe/btcusdt_depth20_100ms_20240808-09.sbe.gz";

fn json_frames() -> Vec<Vec<u8>> {
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

/// The SBE fixture: gzip of (`u32` LE length, message bytes)*.
fn sbe_frames() -> Vec<Vec<u8>> {
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

fn depth20(c: &mut Criterion) {
    let json = json_frames();
    let sbe = sbe_frames();
    assert_eq!(json.len(), sbe.len(), "one SBE frame per JSON frame");
    let streams = StreamTable::new(&["BTCUSDT".into()], StreamKind { depth: Depth::D20, speed: UpdateSpeed::Ms100 });
    let symbols = SymbolTable::from_streams(&streams);
    let mut book = Book::default();
    assert!(json.iter().all(|f| parse_message(f, &streams, &mut book).is_ok()), "JSON parses every frame");
    assert!(sbe.iter().all(|f| decode(f, &symbols, &mut book).is_ok()), "SBE decodes every frame");

    let mut group = c.benchmark_group("depth20");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("sbe_decode", |b| {
        b.iter(|| {
            let frame = &sbe[i];
            i = if i + 1 == sbe.len() { 0 } else { i + 1 };
            let ok = decode(black_box(frame), &symbols, &mut book).is_ok();
            black_box(&book);
            ok
        })
    });
    let mut i = 0;
    group.bench_function("json_parse", |b| {
        b.iter(|| {
            let frame = &json[i];
            i = if i + 1 == json.len() { 0 } else { i + 1 };
            let ok = parse_message(black_box(frame), &streams, &mut book).is_ok();
            black_box(&book);
            ok
        })
    });
    group.finish();
}

criterion_group!(benches, depth20);
criterion_main!(benches);
