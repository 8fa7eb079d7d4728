//! Every metric of the imbalance family against exact rational arithmetic
//! (Python `fractions`, `scripts/golden_metrics.py`) on real Binance frames.

use std::collections::HashMap;
use std::path::Path;

use imbalance_monitor::book::{Book, BookEvent};
use imbalance_monitor::exact::Fraction;
use imbalance_monitor::metrics::{
    LevelWeights, OfiWindow, VolumeSpec, imbalance, microprice_offset_bps, spread_bps, weighted_imbalance,
};
use imbalance_monitor::recording::{Line, RecordingReader};
use imbalance_monitor::units::VolumeMode;
use imbalance_monitor::venue::Message;
use imbalance_monitor::venue::binance_spot::{Depth, StreamKind, StreamTable, UpdateSpeed, parse_message};

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `num/den` in lowest terms, sign on the numerator, as Python prints it.
fn reduced(f: Fraction) -> String {
    if f.mag == 0 {
        return "0/1".into();
    }
    let g = gcd(f.mag, f.den);
    format!("{}{}/{}", if f.negative { "-" } else { "" }, f.mag / g, f.den / g)
}

fn golden() -> HashMap<(String, usize), HashMap<String, String>> {
    let text = std::fs::read_to_string("tests/fixtures/metrics_golden.txt").unwrap();
    text.lines()
        .map(|l| {
            let mut parts = l.split(' ');
            let file = parts.next().unwrap().to_string();
            let idx: usize = parts.next().unwrap().parse().unwrap();
            let _id = parts.next();
            let fields = parts.map(|kv| kv.split_once('=').unwrap()).map(|(k, v)| (k.into(), v.into())).collect();
            ((file, idx), fields)
        })
        .collect()
}

#[test]
fn every_metric_matches_exact_rational_arithmetic_on_real_frames() {
    let golden = golden();
    let mut checked = 0;
    for (file, sym) in [
        ("btcusdt_depth10_100ms_20240808-09.txt.gz", "BTCUSDT"),
        ("ethusdt_depth10_100ms_20240808-09.txt.gz", "ETHUSDT"),
    ] {
        let table = StreamTable::new(&[sym.into()], StreamKind { depth: Depth::D10, speed: UpdateSpeed::Ms100 });
        let mut reader = RecordingReader::open(&Path::new("tests/fixtures").join(file)).unwrap();
        let mut ofi = OfiWindow::new(10);
        let weights = LevelWeights::from_decay(0.5);
        let mut idx = 0;
        while let Some(Line::Frame { json, .. }) = reader.next_line().unwrap() {
            let Some(expected) = golden.get(&(file.to_string(), idx)) else { break };
            let mut book = Book::default();
            assert!(matches!(parse_message(json, &table, &mut book), Ok(Message::Book(_, BookEvent::Snapshot))));
            let qty10 = VolumeSpec { mode: VolumeMode::Qty, top_n: 10 };
            let notional10 = VolumeSpec { mode: VolumeMode::Notional, top_n: 10 };
            let notional5 = VolumeSpec { mode: VolumeMode::Notional, top_n: 5 };
            ofi.push(&book);
            let ours = [
                ("imbalance_qty", imbalance(&book, qty10).map(|i| i.ratio)),
                ("imbalance_notional", imbalance(&book, notional10).map(|i| i.ratio)),
                ("imbalance_notional_top5", imbalance(&book, notional5).map(|i| i.ratio)),
                ("weighted_qty", weighted_imbalance(&book, qty10, &weights)),
                ("microprice_offset_bps", microprice_offset_bps(&book)),
                ("spread_bps", spread_bps(&book)),
                ("ofi", ofi.reading()),
            ];
            for (name, reading) in ours {
                let want = &expected[name];
                let got = reading.map_or_else(|_| "-".to_string(), |r| reduced(r.exact));
                assert_eq!(&got, want, "{file} frame {idx} {name}");
                if let Ok(r) = reading {
                    // The f64 rendering is close to the exact value (the exact
                    // rounding is proven in parser_differential).
                    let approx = r.exact.approx_f64();
                    assert!((r.value() - approx).abs() <= approx.abs() * 4.0 * f64::EPSILON, "{name}: {}", r.value());
                }
                checked += 1;
            }
            idx += 1;
        }
    }
    assert_eq!(checked, 600 * 7);
}
