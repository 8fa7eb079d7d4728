//! Shared by the SBE test binaries (`mod sbe_common;`): the committed SBE
//! fixtures (written by `scripts/sbe_encode.py`), their JSON originals, and a
//! small hand encoder for frames the fixtures do not hold (diffs, touches,
//! trades, hostile frames). Each binary uses a different part, hence the allow.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};

use imbalance_monitor::recording::{Line, RecordingReader};
use imbalance_monitor::units::UnixNanos;

/// The two depth20 recordings the SBE fixtures were encoded from.
pub const RECORDINGS: [&str; 2] =
    ["btcusdt_depth20_100ms_20240808-09.txt.gz", "ethusdt_depth20_100ms_20240808-09.txt.gz"];

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Every JSON frame of a recording with its receive time, in file order.
pub fn json_frames(recording: &str) -> Vec<(UnixNanos, Vec<u8>)> {
    let mut reader = RecordingReader::open(&fixture(recording)).expect("open recording");
    let mut frames = Vec::new();
    while let Some(line) = reader.next_line().expect("read recording") {
        match line {
            Line::Frame { recv, json } => frames.push((recv, json.to_vec())),
            Line::Malformed => panic!("{recording}: malformed line"),
        }
    }
    frames
}

/// Every SBE frame encoded from `recording`: gzip of (`u32` LE length, bytes)*.
pub fn sbe_frames(recording: &str) -> Vec<Vec<u8>> {
    let name = format!("sbe/{}", recording.replace(".txt.gz", ".sbe.gz"));
    let file = std::fs::File::open(fixture(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(file).read_to_end(&mut bytes).expect("gunzip SBE fixture");
    let mut frames = Vec::new();
    let mut rest = bytes.as_slice();
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let (frame, tail) = tail.split_at(u32::from_le_bytes(*len) as usize);
        frames.push(frame.to_vec());
        rest = tail;
    }
    assert!(rest.is_empty(), "{name}: {} stray bytes at the end", rest.len());
    frames
}

pub const TRADES: u16 = 10000;
pub const BEST_BID_ASK: u16 = 10001;
pub const DEPTH_SNAPSHOT: u16 = 10002;
pub const DEPTH_DIFF: u16 = 10003;

/// Builds one SBE message by hand, in the layout of `stream_1_0.xml`.
#[derive(Clone, Debug)]
pub struct Frame {
    pub template: u16,
    pub schema: u16,
    pub version: u16,
    /// `None`: the length of `root`.
    pub block_length: Option<u16>,
    pub root: Vec<u8>,
    pub body: Vec<u8>,
}

impl Frame {
    pub fn new(template: u16) -> Self {
        Self { template, schema: 1, version: 0, block_length: None, root: Vec::new(), body: Vec::new() }
    }

    pub fn i64(mut self, v: i64) -> Self {
        self.root.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn i8(mut self, v: i8) -> Self {
        self.root.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `groupSize16Encoding` group of (price, qty) mantissa entries.
    pub fn levels(self, levels: &[(i64, i64)]) -> Self {
        self.levels_as(16, levels.len() as u16, levels)
    }

    /// A level group with a chosen announced entry length and count; entries
    /// longer than 16 bytes are padded with 0xEE.
    pub fn levels_as(mut self, block_length: u16, count: u16, levels: &[(i64, i64)]) -> Self {
        self.body.extend_from_slice(&block_length.to_le_bytes());
        self.body.extend_from_slice(&count.to_le_bytes());
        for &(p, q) in levels {
            let mut entry = Vec::new();
            entry.extend_from_slice(&p.to_le_bytes());
            entry.extend_from_slice(&q.to_le_bytes());
            entry.resize(usize::from(block_length).max(16), 0xEE);
            self.body.extend_from_slice(&entry);
        }
        self
    }

    /// A `groupSizeEncoding` trades group: (id, price, qty, isBuyerMaker).
    pub fn trades(mut self, trades: &[(i64, i64, i64, u8)]) -> Self {
        self.body.extend_from_slice(&25u16.to_le_bytes());
        self.body.extend_from_slice(&(trades.len() as u32).to_le_bytes());
        for &(id, p, q, maker) in trades {
            for v in [id, p, q] {
                self.body.extend_from_slice(&v.to_le_bytes());
            }
            self.body.push(maker);
        }
        self
    }

    /// The trailing `varString8`.
    pub fn symbol(mut self, s: &str) -> Self {
        self.body.push(s.len() as u8);
        self.body.extend_from_slice(s.as_bytes());
        self
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let block_length = self.block_length.unwrap_or(self.root.len() as u16);
        for v in [block_length, self.template, self.schema, self.version] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.root);
        out.extend_from_slice(&self.body);
        out
    }
}

/// A well-formed BTCUSDT depth snapshot (price exponent −2, qty −5).
pub fn snapshot(bids: &[(i64, i64)], asks: &[(i64, i64)]) -> Frame {
    Frame::new(DEPTH_SNAPSHOT)
        .i64(1_723_161_254_137_307)
        .i64(50_093_239_224)
        .i8(-2)
        .i8(-5)
        .levels(bids)
        .levels(asks)
        .symbol("BTCUSDT")
}

/// Three levels a side, as BTCUSDT trades.
pub const BIDS: [(i64, i64); 3] = [(6_183_763, 378_826), (6_183_762, 61_700), (6_183_724, 10_610)];
pub const ASKS: [(i64, i64); 3] = [(6_183_764, 160_520), (6_183_765, 843), (6_183_768, 16)];

/// A well-formed diff, best bid/ask and trades frame.
pub fn diff() -> Frame {
    Frame::new(DEPTH_DIFF)
        .i64(1_723_161_254_137_307)
        .i64(50_093_239_225)
        .i64(50_093_239_230)
        .i8(-2)
        .i8(-5)
        .levels(&[(6_183_763, 0), (6_183_700, 5)])
        .levels(&[(6_183_764, 200_000)])
        .symbol("BTCUSDT")
}

pub fn best_bid_ask() -> Frame {
    Frame::new(BEST_BID_ASK)
        .i64(1_723_161_254_137_308)
        .i64(50_093_239_231)
        .i8(-2)
        .i8(-4)
        .i64(268_380)
        .i64(30_292)
        .i64(268_381)
        .i64(7)
        .symbol("ETHUSDT")
}

pub fn trades() -> Frame {
    Frame::new(TRADES)
        .i64(1_723_161_254_137_309)
        .i64(1_723_161_254_137_001)
        .i8(-2)
        .i8(-5)
        .trades(&[(3_736_201_001, 6_183_763, 1_000, 1), (3_736_201_002, 6_183_764, 250, 0)])
        .symbol("BTCUSDT")
}
