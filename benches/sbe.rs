//! SBE depth20 decode vs JSON depth20 parse, on the same real books.
//!
//! Every frame of the BTCUSDT depth20@100ms recording and its SBE encoding
//! (`tests/fixtures/sbe/`, written by `scripts/sbe_encode.py`) is loaded into
//! memory first; each iteration decodes the next frame into a `Book`, cycling,
//! so both cases see the same 6,493 books in the same order.
//!
//! Run: `cargo bench --bench sbe`; instruction counts and interleaved timings
//! come from `examples/sbe_cases.rs`.

mod sbe_frames;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use imbalance_monitor::book::Book;
use imbalance_monitor::sbe::decode;
use imbalance_monitor::venue::binance_spot::parse_message;
use sbe_frames::{json_frames, sbe_frames, tables};

fn depth20(c: &mut Criterion) {
    let json = json_frames();
    let sbe = sbe_frames();
    assert_eq!(json.len(), sbe.len(), "one SBE frame per JSON frame");
    let (streams, symbols) = tables();
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
