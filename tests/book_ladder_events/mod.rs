//! The real BTCUSDT diff-depth recordings as the full-depth book consumes
//! them, for the ladder's tests and its bench (`benches/book_ladder.rs`
//! includes this file): the REST snapshot line and every diff event after
//! it, decoded once with serde_json (setup may allocate; the book may not).
//! Prices and quantities are read exactly at scale 1e8, never through `f64`.

#![allow(dead_code)] // Each including crate uses a different part.

use std::path::Path;

use imbalance_monitor::book::Level;
use imbalance_monitor::recording::{Line, RecordingReader};
use imbalance_monitor::units::{FRAC_DIGITS, Price, Qty};

/// The two consecutive spot recordings, in order; the snapshot is in the first.
pub const RECORDINGS: [&str; 2] = ["tests/fixtures/btcusdt_20240808.gz", "tests/fixtures/btcusdt_20240809.gz"];

/// A REST depth snapshot, each side best first.
pub struct Snapshot {
    pub last_update_id: u64,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

/// One `depthUpdate` event: its first and final update ids and its changes
/// per side, in the order Binance sent them.
pub struct DiffEvent {
    pub first_update_id: u64,
    pub final_update_id: u64,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

impl DiffEvent {
    /// Changes on both sides.
    pub fn changes(&self) -> usize {
        self.bids.len() + self.asks.len()
    }
}

/// The recordings' snapshot and the diff events that follow it.
pub struct Recording {
    pub snapshot: Snapshot,
    /// Every event with `u` > the snapshot's `lastUpdateId`, in order; the
    /// loader has checked that they chain (`U` = previous `u` + 1) from the
    /// snapshot on, so applying them all is Binance's documented procedure.
    pub events: Vec<DiffEvent>,
}

/// A decimal string as a mantissa at scale 1e8, exactly.
pub fn decimal(s: &str) -> u64 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    assert!(frac.len() <= FRAC_DIGITS as usize && !int.is_empty(), "decimal {s:?}");
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    assert!(digits(int) && digits(frac), "decimal {s:?}");
    let padded = format!("{int}{frac:0<width$}", width = FRAC_DIGITS as usize);
    padded.parse().unwrap_or_else(|e| panic!("decimal {s:?}: {e}"))
}

fn levels(v: &serde_json::Value) -> Vec<Level> {
    v.as_array()
        .expect("a side is an array")
        .iter()
        .map(|pair| {
            let field = |i: usize| pair.get(i).and_then(|x| x.as_str()).expect("a level is [price, qty] strings");
            Level { price: Price(decimal(field(0))), qty: Qty(decimal(field(1))) }
        })
        .collect()
}

/// Reads [`RECORDINGS`]: the snapshot line and the diff events after it.
pub fn load() -> Recording {
    let mut snapshot = None;
    let mut events = Vec::new();
    for file in RECORDINGS {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let mut reader = RecordingReader::open(&path).expect("open the recording");
        while let Some(line) = reader.next_line().expect("read the recording") {
            let Line::Frame { json, .. } = line else { continue };
            let v: serde_json::Value = serde_json::from_slice(json).expect("a recording line is JSON");
            if let Some(id) = v.get("lastUpdateId").and_then(|x| x.as_u64()) {
                assert!(snapshot.is_none(), "one snapshot in the recordings");
                snapshot = Some(Snapshot { last_update_id: id, bids: levels(&v["bids"]), asks: levels(&v["asks"]) });
                continue;
            }
            let Some(data) = v.get("data").filter(|d| d["e"] == "depthUpdate") else { continue };
            let event = DiffEvent {
                first_update_id: data["U"].as_u64().expect("U"),
                final_update_id: data["u"].as_u64().expect("u"),
                bids: levels(&data["b"]),
                asks: levels(&data["a"]),
            };
            events.push(event);
        }
    }
    let snapshot = snapshot.expect("the recordings hold a snapshot");
    // Events received before the snapshot line are the buffered ones of
    // Binance's procedure: those the snapshot already holds are dropped.
    events.retain(|e| e.final_update_id > snapshot.last_update_id);
    let mut book_id = snapshot.last_update_id;
    for (n, e) in events.iter().enumerate() {
        let chained = if n == 0 { e.first_update_id <= book_id + 1 } else { e.first_update_id == book_id + 1 };
        assert!(chained, "event {n} (U {}) does not follow update id {book_id}", e.first_update_id);
        book_id = e.final_update_id;
    }
    assert!(events.len() > 1000, "{} events", events.len());
    Recording { snapshot, events }
}
