//! The SBE decoder against the JSON parser, on real Binance books.
//!
//! `scripts/sbe_encode.py` (written from the schema XML, sharing no code with
//! `src/sbe`) encoded every frame of the two real depth20 recordings as a
//! DepthSnapshotStreamEvent; each must decode into the book the JSON parser
//! builds from the original frame: pair, update id, every price and quantity.
//! Then hand-made frames for the other three messages, for schema extension,
//! and one hostile frame per error kind; and property tests that no bytes
//! panic and that every decimal converts exactly or is refused.

mod sbe_common;

use std::collections::BTreeSet;

use imbalance_monitor::book::BookEvent;
use imbalance_monitor::book::{Book, Level, MAX_LEVELS};
use imbalance_monitor::pairs::PairId;
use imbalance_monitor::sbe::{SbeError, SbeEvent, SymbolTable, decode};
use imbalance_monitor::units::{Price, Qty};
use imbalance_monitor::venue::Message;
use imbalance_monitor::venue::binance_spot::{Depth, StreamKind, StreamTable, UpdateSpeed, parse_message};
use proptest::prelude::*;
use sbe_common::*;

fn tables() -> (StreamTable, SymbolTable) {
    let streams = StreamTable::new(
        &["BTCUSDT".into(), "ETHUSDT".into()],
        StreamKind { depth: Depth::D20, speed: UpdateSpeed::Ms100 },
    );
    let symbols = SymbolTable::from_streams(&streams);
    (streams, symbols)
}

fn lvl(price: u64, qty: u64) -> Level {
    Level { price: Price(price), qty: Qty(qty) }
}

fn decoded_book(bytes: &[u8]) -> Result<(PairId, u64, Book), SbeError> {
    let (_, symbols) = tables();
    let mut book = Book::default();
    match decode(bytes, &symbols, &mut book)? {
        SbeEvent::DepthSnapshot(s) => Ok((s.pair, s.event_time_us, book)),
        other => panic!("not a snapshot: {other:?}"),
    }
}

// ------------------------------------------------------------ differential

#[test]
fn every_real_depth20_frame_decodes_from_sbe_into_the_book_the_json_parser_builds() {
    let (streams, symbols) = tables();
    for recording in RECORDINGS {
        let json = json_frames(recording);
        let sbe = sbe_frames(recording);
        assert_eq!(json.len(), sbe.len(), "{recording}: one SBE frame per JSON frame");
        assert!(json.len() > 6000, "{recording}: {} frames", json.len());
        let mut levels = 0;
        for (i, ((recv, text), binary)) in json.iter().zip(&sbe).enumerate() {
            let mut from_json = Book::default();
            let Ok(Message::Book(json_pair, BookEvent::Snapshot)) = parse_message(text, &streams, &mut from_json)
            else {
                panic!("{recording} frame {i}: the JSON parser refuses it");
            };
            let mut from_sbe = Book::default();
            let event = decode(binary, &symbols, &mut from_sbe)
                .unwrap_or_else(|e| panic!("{recording} frame {i}: SBE refused: {e} ({})", e.name()));
            let SbeEvent::DepthSnapshot(snapshot) = event else { panic!("{recording} frame {i}: {event:?}") };
            assert_eq!(snapshot.pair, json_pair, "{recording} frame {i}: pair");
            assert_eq!(from_sbe.last_update_id, from_json.last_update_id, "{recording} frame {i}: update id");
            assert_eq!(from_sbe.bids.levels(), from_json.bids.levels(), "{recording} frame {i}: bids");
            assert_eq!(from_sbe.asks.levels(), from_json.asks.levels(), "{recording} frame {i}: asks");
            // The encoder put the receive time, in µs, into eventTime.
            assert_eq!(snapshot.event_time_us, recv.0 / 1000, "{recording} frame {i}: event time");
            assert_eq!(from_sbe.event_time_ms, Some(recv.0 / 1_000_000));
            levels += from_sbe.bids.len() + from_sbe.asks.len();
        }
        assert_eq!(levels, json.len() * 2 * MAX_LEVELS, "{recording}: every frame is a full depth20 book");
    }
}

#[test]
fn btc_and_eth_frames_resolve_to_their_own_pair() {
    for (recording, want) in RECORDINGS.into_iter().zip([PairId(0), PairId(1)]) {
        let frames = sbe_frames(recording);
        let (pair, _, _) = decoded_book(&frames[0]).expect("decodes");
        assert_eq!(pair, want, "{recording}");
    }
}

// ------------------------------------------------- the other three messages

#[test]
fn a_depth_diff_is_a_view_of_its_changed_levels_and_update_id_range() {
    let (_, symbols) = tables();
    let bytes = diff().bytes();
    let Ok(SbeEvent::DepthDiff(d)) = decode(&bytes, &symbols, &mut Book::default()) else { panic!("not a diff") };
    assert_eq!((d.pair, d.event_time_us), (PairId(0), 1_723_161_254_137_307));
    assert_eq!((d.first_update_id, d.last_update_id), (50_093_239_225, 50_093_239_230));
    // Quantity 0 removes a level; unordered sides are the book stage's business.
    assert_eq!(d.bids().collect::<Vec<_>>(), [lvl(6_183_763_000_000, 0), lvl(6_183_700_000_000, 5_000)]);
    assert_eq!(d.asks().len(), 1);
    assert_eq!(d.asks().collect::<Vec<_>>(), [lvl(6_183_764_000_000, 200_000_000)]);
}

#[test]
fn a_best_bid_ask_carries_the_touch_its_update_id_and_event_time() {
    let (_, symbols) = tables();
    let Ok(SbeEvent::BestBidAsk(t)) = decode(&best_bid_ask().bytes(), &symbols, &mut Book::default()) else {
        panic!("not a best bid/ask")
    };
    assert_eq!((t.pair, t.event_time_us, t.book_update_id), (PairId(1), 1_723_161_254_137_308, 50_093_239_231));
    assert_eq!(t.bid, lvl(268_380_000_000, 302_920_000));
    assert_eq!(t.ask, lvl(268_381_000_000, 70_000));
}

#[test]
fn a_trades_event_yields_each_trade_with_its_maker_side() {
    let (_, symbols) = tables();
    let bytes = trades().bytes();
    let Ok(SbeEvent::Trades(t)) = decode(&bytes, &symbols, &mut Book::default()) else { panic!("not trades") };
    assert_eq!(
        (t.pair, t.event_time_us, t.transact_time_us),
        (PairId(0), 1_723_161_254_137_309, 1_723_161_254_137_001)
    );
    let got: Vec<_> = t.trades().map(|t| (t.id, t.price.0, t.qty.0, t.buyer_is_maker)).collect();
    assert_eq!(
        got,
        [(3_736_201_001, 6_183_763_000_000, 1_000_000, true), (3_736_201_002, 6_183_764_000_000, 250_000, false)]
    );
}

// --------------------------------------------------------- schema extension

#[test]
fn a_newer_version_with_appended_fields_decodes_to_the_same_book() {
    let plain = decoded_book(&snapshot(&BIDS, &ASKS).bytes()).expect("v0 decodes");
    // Version 1: two more root bytes, 24-byte level entries, data after the symbol.
    let mut newer = snapshot(&[], &[]);
    newer.version = 1;
    newer.root.extend_from_slice(&[0xAB, 0xCD]);
    newer.body.clear();
    let mut newer = newer.levels_as(24, 3, &BIDS).levels_as(24, 3, &ASKS).symbol("BTCUSDT");
    newer.body.extend_from_slice(&[3, b'n', b'e', b'w']);
    let extended = decoded_book(&newer.bytes()).expect("v1 decodes");
    assert_eq!((extended.0, extended.1), (plain.0, plain.1));
    assert_eq!(extended.2.bids.levels(), plain.2.bids.levels());
    assert_eq!(extended.2.asks.levels(), plain.2.asks.levels());
    assert_eq!(extended.2.last_update_id, plain.2.last_update_id);
    assert_eq!(plain.2.bids.levels()[0], lvl(6_183_763_000_000, 378_826_000));
}

#[test]
fn empty_sides_decode_to_an_empty_book() {
    let (_, _, book) = decoded_book(&snapshot(&[], &[]).bytes()).expect("decodes");
    assert!(book.bids.is_empty() && book.asks.is_empty());
}

// ----------------------------------------------------------- hostile frames

/// One hand-made frame per way a frame can be wrong, and the kind it must get.
fn hostile() -> Vec<(&'static str, Vec<u8>, SbeError)> {
    let good = snapshot(&BIDS, &ASKS);
    let whole = good.bytes();
    let mut cases: Vec<(&'static str, Vec<u8>, SbeError)> = Vec::new();
    let mut case = |what, f: &Frame, e| cases.push((what, f.bytes(), e));

    let mut f = good.clone();
    f.schema = 2;
    case("schema id 2", &f, SbeError::WrongSchema);
    let mut f = good.clone();
    f.template = 10004;
    case("template 10004", &f, SbeError::UnknownTemplate);
    let mut f = good.clone();
    f.template = 0;
    case("template 0", &f, SbeError::UnknownTemplate);
    let mut f = good.clone();
    f.block_length = Some(17);
    case("root block one byte short of qtyExponent", &f, SbeError::ShortBlock);
    let mut f = good.clone();
    f.block_length = Some(u16::MAX);
    case("root block longer than the frame", &f, SbeError::Truncated);
    let mut bare = snapshot(&[], &[]);
    bare.body.clear();
    let f = bare.clone().levels_as(15, 1, &[(1, 1)]).levels(&ASKS).symbol("BTCUSDT");
    case("bid entries of 15 bytes", &f, SbeError::ShortBlock);
    let f = bare.clone().levels_as(16, 10, &BIDS).levels(&ASKS).symbol("BTCUSDT");
    case("bids announce 10 levels, the frame holds 3 and the asks", &f, SbeError::GroupOverrun);
    case("bids announce 65535 levels", &bare.clone().levels_as(16, u16::MAX, &BIDS), SbeError::GroupOverrun);
    let mut trades_overrun = trades();
    trades_overrun.body.clear();
    trades_overrun.body.extend_from_slice(&u16::MAX.to_le_bytes());
    trades_overrun.body.extend_from_slice(&u32::MAX.to_le_bytes());
    case("trades announce 2^32-1 entries of 65535 bytes", &trades_overrun, SbeError::GroupOverrun);
    let many: Vec<(i64, i64)> = (0..21).map(|i| (6_183_763 - i, 1)).collect();
    case("21 bids", &snapshot(&many, &ASKS), SbeError::TooManyLevels);
    case("bids rising", &snapshot(&[BIDS[1], BIDS[0]], &ASKS), SbeError::BidsNotDescending);
    case("two bids at one price", &snapshot(&[BIDS[0], BIDS[0]], &ASKS), SbeError::BidsNotDescending);
    case("asks falling", &snapshot(&BIDS, &[ASKS[2], ASKS[1]]), SbeError::AsksNotAscending);
    case("negative price", &snapshot(&[(-6_183_763, 1)], &ASKS), SbeError::Negative);
    case("negative quantity", &snapshot(&BIDS, &[(6_183_764, -1)]), SbeError::Negative);
    let mut f = good.clone();
    f.root[8..16].copy_from_slice(&(-1i64).to_le_bytes());
    case("negative bookUpdateId", &f, SbeError::Negative);
    let mut f = good.clone();
    f.root[0..8].copy_from_slice(&i64::MIN.to_le_bytes());
    case("negative eventTime", &f, SbeError::Negative);
    let mut f = good.clone();
    f.root[16] = (-9i8) as u8;
    case("price 9 decimals, last digit not 0", &f, SbeError::InexactDecimal);
    let mut f = good.clone();
    f.root[17] = i8::MIN as u8;
    case("qty exponent -128", &f, SbeError::InexactDecimal);
    let mut f = good.clone();
    f.root[16] = 12;
    case("price × 10^12", &f, SbeError::Overflow);
    case(
        "price 2^63-1 at exponent 0",
        &{
            let mut f = snapshot(&[(i64::MAX, 1)], &[]);
            f.root[16] = 0;
            f
        },
        SbeError::Overflow,
    );
    let mut bad_bool = trades();
    let maker_at = 6 + 24;
    bad_bool.body[maker_at] = 2;
    case("isBuyerMaker 2", &bad_bool, SbeError::BadEnum);
    let mut f = snapshot(&BIDS, &ASKS);
    f.body.truncate(f.body.len() - 8);
    case("XRPUSDT", &f.clone().symbol("XRPUSDT"), SbeError::UnknownSymbol);
    case("btcusdt (lower case)", &f.clone().symbol("btcusdt"), SbeError::UnknownSymbol);
    let mut f = good.clone();
    f.body.push(0);
    case("a byte after the symbol (version 0)", &f, SbeError::TrailingBytes);
    let mut f = best_bid_ask();
    f.block_length = Some(49);
    case("best bid/ask block without askQty's last byte", &f, SbeError::ShortBlock);
    let mut f = diff();
    f.block_length = Some(25);
    case("diff block without qtyExponent", &f, SbeError::ShortBlock);
    let mut f = diff();
    f.body[4..12].copy_from_slice(&(-5i64).to_le_bytes());
    case("diff level with a negative price", &f, SbeError::Negative);
    let mut f = trades();
    f.body[6..14].copy_from_slice(&(-1i64).to_le_bytes());
    case("negative trade id", &f, SbeError::Negative);

    // Every cut of a good frame is truncated (or, inside a group, an overrun).
    for cut in [0, 1, 7, 8, 25, 26, 27, 28, 30, whole.len() - 8, whole.len() - 1] {
        let want = if (30..whole.len() - 8).contains(&cut) { SbeError::GroupOverrun } else { SbeError::Truncated };
        cases.push(("a cut", whole[..cut].to_vec(), want));
    }
    cases
}

#[test]
fn every_hostile_frame_is_refused_with_its_own_error_kind() {
    let (_, symbols) = tables();
    let mut seen = BTreeSet::new();
    for (what, bytes, want) in hostile() {
        let mut book = Book::default();
        let got = decode(&bytes, &symbols, &mut book).map(|_| ()).expect_err(what);
        assert_eq!(got, want, "{what}: got {} ({got})", got.name());
        seen.insert(got.name());
    }
    let all: BTreeSet<_> = SbeError::ALL.iter().map(|e| e.name()).collect();
    assert_eq!(seen, all, "every error kind is reachable from some frame");
}

#[test]
fn every_cut_of_a_real_frame_is_refused_and_the_whole_frame_is_not() {
    let (_, symbols) = tables();
    let frame = &sbe_frames(RECORDINGS[0])[0];
    for cut in 0..frame.len() {
        let got = decode(&frame[..cut], &symbols, &mut Book::default()).map(|_| ());
        assert!(matches!(got, Err(SbeError::Truncated | SbeError::GroupOverrun)), "cut at {cut}: {got:?}");
    }
    assert!(decode(frame, &symbols, &mut Book::default()).is_ok());
}

#[test]
fn error_kind_names_are_stable() {
    let names: Vec<_> = SbeError::ALL.iter().map(|e| e.name()).collect();
    assert_eq!(
        names,
        [
            "truncated",
            "wrong_schema",
            "unknown_template",
            "short_block",
            "group_overrun",
            "too_many_levels",
            "bids_not_descending",
            "asks_not_ascending",
            "negative",
            "inexact_decimal",
            "overflow",
            "bad_enum",
            "unknown_symbol",
            "trailing_bytes",
        ]
    );
}

// --------------------------------------------------------------- properties

/// What `mantissa × 10^exponent` is at scale 1e8, in wide arithmetic.
fn oracle_1e8(mantissa: i64, exponent: i8) -> Result<u64, SbeError> {
    let m = u64::try_from(mantissa).map_err(|_| SbeError::Negative)?;
    let shift = i32::from(exponent) + 8;
    if m == 0 {
        return Ok(0);
    }
    if shift >= 0 {
        let f = 10u128.checked_pow(shift as u32).ok_or(SbeError::Overflow)?;
        let v = u128::from(m).checked_mul(f).ok_or(SbeError::Overflow)?;
        u64::try_from(v).map_err(|_| SbeError::Overflow)
    } else {
        // m < 10^19: a divisor of 10^20 or more leaves a remainder.
        let Some(d) = 10u128.checked_pow(shift.unsigned_abs()).filter(|d| *d <= 10u128.pow(19)) else {
            return Err(SbeError::InexactDecimal);
        };
        if u128::from(m) % d == 0 { Ok((u128::from(m) / d) as u64) } else { Err(SbeError::InexactDecimal) }
    }
}

fn a_real_frame() -> &'static [u8] {
    static FRAME: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    FRAME.get_or_init(|| sbe_frames(RECORDINGS[1])[100].clone())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let (_, symbols) = tables();
        let _ = decode(&bytes, &symbols, &mut Book::default());
    }

    #[test]
    fn arbitrary_bytes_behind_a_valid_header_never_panic(
        template in 10000u16..=10003,
        block_length in any::<u16>(),
        body in prop::collection::vec(any::<u8>(), 0..1024),
    ) {
        let (_, symbols) = tables();
        let mut bytes = Vec::new();
        for v in [block_length % 64, template, 1, 0] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        bytes.extend_from_slice(&body);
        let _ = decode(&bytes, &symbols, &mut Book::default());
    }

    #[test]
    fn mutated_real_frames_never_panic_and_what_decodes_is_a_sound_book(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let (_, symbols) = tables();
        let mut frame = a_real_frame().to_vec();
        for (at, byte) in &edits {
            let i = at.index(frame.len());
            frame[i] = *byte;
        }
        let end = frame.len() - cut.index(frame.len() / 8);
        let mut book = Book::default();
        if let Ok(SbeEvent::DepthSnapshot(s)) = decode(&frame[..end], &symbols, &mut book) {
            prop_assert!(s.pair.index() < 2);
            let (bids, asks) = (book.bids.levels(), book.asks.levels());
            prop_assert!(bids.len() <= MAX_LEVELS && asks.len() <= MAX_LEVELS);
            prop_assert!(bids.windows(2).all(|w| w[1].price < w[0].price));
            prop_assert!(asks.windows(2).all(|w| w[1].price > w[0].price));
        }
    }

    #[test]
    fn every_decimal_converts_exactly_or_is_refused_with_the_right_kind(
        mantissa in prop_oneof![any::<i64>(), 0i64..1_000_000_000, Just(0i64)],
        exponent in prop_oneof![any::<i8>(), -20i8..=12],
    ) {
        let (_, symbols) = tables();
        let frame = Frame::new(BEST_BID_ASK).i64(1).i64(1).i8(exponent).i8(-8)
            .i64(mantissa).i64(1).i64(0).i64(1).symbol("BTCUSDT");
        let bytes = frame.bytes();
        let got = decode(&bytes, &symbols, &mut Book::default());
        match (oracle_1e8(mantissa, exponent), got) {
            (Ok(want), Ok(SbeEvent::BestBidAsk(t))) => prop_assert_eq!(t.bid.price.0, want),
            (Err(want), Err(got)) => prop_assert_eq!(got, want),
            (want, got) => prop_assert!(false, "{mantissa}e{exponent}: oracle {want:?}, decoder {got:?}"),
        }
    }
}
