//! The dashboard drawn by ratatui's `TestBackend` from fixed states, at
//! 80×24: what a person over SSH sees, cell by cell.

use imbalance_monitor::watch::input::{SortKey, View};
use imbalance_monitor::watch::render::{self, FILL, THRESHOLD_MARK};
use imbalance_monitor::watch::state::{
    AlertRow, DashboardState, PairState, STATE_VERSION, Side, StageLatency, TriggerMark,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

/// 2024-08-08T23:54:14Z, the recording's time.
const NOW: u64 = 1_723_161_254_000_000_000;

fn pair(name: &str, ratio: Option<f64>, age: Option<f64>) -> PairState {
    PairState {
        pair: name.into(),
        ratio,
        bid_volume: Some(762_596.001_2),
        ask_volume: Some(423_467.34),
        best_bid: Some("61837.63".into()),
        best_ask: Some("61837.64".into()),
        spread_bps: Some(0.0016),
        frames: 600,
        frames_per_sec: 10.0,
        since_last_frame_sec: age,
        stale: age.is_none_or(|a| a > 5.0),
        history: (0..300).map(|i| Some(f64::from(i) / 150.0 - 1.0)).collect(),
        ..PairState::default()
    }
}

fn alert(pair: &str, trigger: &str, side: Side, value: f64, telegram: &str, secs: u64) -> AlertRow {
    AlertRow {
        id: format!("1-{secs}"),
        recv_ns: NOW - secs * 1_000_000_000,
        pair: pair.into(),
        trigger: trigger.into(),
        value,
        side,
        telegram: telegram.into(),
    }
}

fn state() -> DashboardState {
    let mark = |name: &str, op: &str, value: f64, pairs: Option<Vec<String>>| TriggerMark {
        name: name.into(),
        metric: "imbalance_ratio".into(),
        op: op.into(),
        value,
        pairs,
        side: Side::of_op(op),
    };
    let mut btc = pair("BTCUSDT", Some(0.2859), Some(0.1));
    btc.last_alert = Some(alert("BTCUSDT", "imbalance_buy", Side::Buy, 0.31, "sent", 3));
    let eth = pair("ETHUSDT", Some(-0.5), Some(0.3));
    let mut sol = pair("SOLUSDT", None, Some(42.0));
    sol.feed_down = Some("WebSocket upgrade refused with HTTP 404".into());
    DashboardState {
        version: STATE_VERSION,
        now_ns: NOW,
        started_ns: NOW - 754_000_000_000,
        stale_after_ms: 5000,
        volume_mode: "notional".into(),
        connections_open: 1,
        reconnects: 2,
        pairs: vec![btc, eth, sol],
        triggers: vec![
            mark("imbalance_buy", ">=", 0.25, None),
            mark("imbalance_sell", "<=", -0.25, None),
            mark("btc_strong", ">=", 0.6, Some(vec!["BTCUSDT".into()])),
        ],
        alerts: vec![
            alert("BTCUSDT", "imbalance_buy", Side::Buy, 0.31, "sent", 3),
            alert("ETHUSDT", "imbalance_sell", Side::Sell, -0.52, "failed", 9),
            alert("ETHUSDT", "imbalance_sell", Side::Sell, -0.27, "queued", 20),
        ],
        latency: vec![
            StageLatency { stage: "wire_to_decision".into(), count: 100, p50_ns: 5_000, p99_ns: 27_700 },
            StageLatency { stage: "parse".into(), count: 100, p50_ns: 480, p99_ns: 1_200 },
        ],
        telegram: Some(vec![("sent".into(), 1), ("failed".into(), 1)]),
        history_step_sec: 1.0,
    }
}

fn draw(state: &DashboardState, view: &View) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal.draw(|f| render::draw(f, state, view)).unwrap();
    terminal.backend().buffer().clone()
}

fn lines(buf: &Buffer) -> Vec<String> {
    (0..buf.area.height).map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect::<String>()).collect()
}

fn row_of(lines: &[String], starts: &str) -> usize {
    lines
        .iter()
        .position(|l| l.starts_with(starts))
        .unwrap_or_else(|| panic!("no row {starts:?}:\n{}", lines.join("\n")))
}

/// The bar's cells of the row at `y`: the text between the brackets.
fn bar(lines: &[String], y: usize) -> Vec<String> {
    let l: Vec<char> = lines[y].chars().collect();
    let open = l.iter().position(|&c| c == '[').unwrap();
    let close = l.iter().position(|&c| c == ']').unwrap();
    l[open + 1..close].iter().map(|c| c.to_string()).collect()
}

#[test]
fn every_pair_has_a_row_with_its_ratio_volumes_rate_and_age() {
    let lines = lines(&draw(&state(), &View::default()));
    let screen = lines.join("\n");
    let btc = &lines[row_of(&lines, "BTCUSDT")];
    assert!(btc.contains("+0.2859") && btc.contains("762.6k") && btc.contains("423.5k"), "{btc}");
    assert!(btc.contains(" 0.002  10.0   0.1s"), "{btc}");
    assert_eq!(btc.trim_end().chars().count(), 79, "one line at 80 columns: {btc}");
    assert!(lines[row_of(&lines, "ETHUSDT")].contains("-0.5000"));
    assert!(lines[row_of(&lines, "SOLUSDT")].contains("—"), "no ratio yet: {screen}");
    // The second line: touch, spread and the pair's last alert.
    let detail = &lines[row_of(&lines, "BTCUSDT") + 1];
    assert!(detail.contains(" 61837.63/61837.64  ▲ imbalance_buy 23:54:11"), "{detail}");
    assert!(lines[0].starts_with("feed: 1 open, 2 reconnects | up 12m34s | 23:54:14 UTC | "), "{}", lines[0]);
    assert!(screen.contains("p50/p99 wire→dec 5.0us/28us parse 480ns/1.2us"), "{screen}");
    assert!(screen.contains("telegram: sent=1 failed=1"), "{screen}");
    assert!(lines[23].starts_with("q quit  s sort: config  p pause"), "{}", lines[23]);
}

#[test]
fn bars_fill_from_the_centre_toward_the_heavier_side_with_every_threshold_marked() {
    let buf = draw(&state(), &View::default());
    let lines = lines(&buf);
    let y = row_of(&lines, "BTCUSDT");
    let cells = bar(&lines, y);
    assert_eq!(cells.len(), 21);
    // +0.2859 → cell 13 of 0..=20 (centre 10): cells 11..=13 filled, but
    // 13 is also the 0.25 threshold; 0.6 (BTC only) is cell 16, −0.25 cell 7.
    assert_eq!(cells[10], "│");
    assert_eq!(cells[11], FILL);
    assert_eq!(cells[12], FILL);
    for c in [7, 13, 16] {
        assert_eq!(cells[c], THRESHOLD_MARK, "cell {c} of {cells:?}");
    }
    assert_eq!(cells.iter().filter(|c| *c == FILL).count(), 2);
    // The threshold over the fill keeps the fill's colour behind it.
    let x = lines[y].chars().position(|c| c == '[').unwrap() as u16 + 1;
    assert_eq!(buf[(x + 13, y as u16)].bg, Color::Green);
    assert_eq!(buf[(x + 11, y as u16)].fg, Color::Green);
    // ETH leans to the ask: red cells left of the centre, only the two shared marks.
    let ey = row_of(&lines, "ETHUSDT");
    let eth = bar(&lines, ey);
    assert_eq!(eth.iter().filter(|c| *c == FILL).count(), 4, "{eth:?}");
    assert_eq!(eth[5], FILL);
    assert_eq!(buf[(x + 5, ey as u16)].fg, Color::Red);
    assert_eq!(eth.iter().filter(|c| *c == THRESHOLD_MARK).count(), 2, "the 0.6 trigger watches BTCUSDT only");
    // The sparkline under the bar rises from −1 to +1 over the history.
    let spark: String = lines[y + 1].chars().skip(9).take(23).collect();
    assert!(spark.starts_with('▁') && spark.trim_end().ends_with('█'), "{spark:?}");
}

#[test]
fn a_stale_pair_is_red_and_says_why_its_feed_is_down() {
    let buf = draw(&state(), &View::default());
    let lines = lines(&buf);
    let y = row_of(&lines, "SOLUSDT");
    assert!(lines[y].trim_end().ends_with(" 42.0s"), "{}", lines[y]);
    assert_eq!(buf[(0, y as u16)].fg, Color::Red, "pair name");
    assert!(buf[(78, y as u16)].modifier.contains(Modifier::BOLD));
    assert_eq!(buf[(78, y as u16)].fg, Color::Red, "age");
    let fresh = row_of(&lines, "BTCUSDT");
    assert_eq!(buf[(78, fresh as u16)].fg, Color::Reset);
    assert_eq!(buf[(0, fresh as u16)].fg, Color::Reset);
    assert!(lines[y + 1].contains("feed down: WebSocket upgrade refused with HTTP 404"), "{}", lines[y + 1]);
}

#[test]
fn the_alert_list_shows_the_newest_first_with_side_and_telegram_outcome() {
    let buf = draw(&state(), &View::default());
    let lines = lines(&buf);
    let title = row_of(&lines, "ALERTS");
    assert_eq!(lines[title].trim_end(), "ALERTS (3 recent, newest first)");
    let rows: Vec<&str> = lines[title + 1..title + 4].iter().map(|l| l.trim_end()).collect();
    assert_eq!(
        rows,
        [
            "23:54:11 ▲ BTCUSDT   imbalance_buy             +0.3100  telegram sent",
            "23:54:05 ▼ ETHUSDT   imbalance_sell            -0.5200  telegram failed",
            "23:53:54 ▼ ETHUSDT   imbalance_sell            -0.2700  telegram queued",
        ]
    );
    let tg = |row: usize| buf[(60, row as u16)].fg;
    assert_eq!(tg(title + 1), Color::Green);
    assert_eq!(tg(title + 2), Color::Red);
    assert_eq!(tg(title + 3), Color::Yellow);
}

#[test]
fn sorting_and_pausing_show_in_the_rows_and_footer() {
    let view = View { sort: SortKey::Staleness, paused: true, ..View::default() };
    let lines = lines(&draw(&state(), &view));
    let order: Vec<usize> = ["SOLUSDT", "ETHUSDT", "BTCUSDT"].iter().map(|p| row_of(&lines, p)).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "stalest first: {order:?}");
    assert!(lines[23].starts_with("q quit  s sort: staleness  p pause  PAUSED"), "{}", lines[23]);
}

#[test]
fn many_alerts_are_cut_to_the_screen_and_the_footer_stays() {
    let mut s = state();
    s.alerts = (0..50).map(|i| alert("BTCUSDT", "imbalance_buy", Side::Buy, 0.3, "off", i)).collect();
    let lines = lines(&draw(&s, &View { error: Some("cannot reach http://x:1".into()), ..View::default() }));
    assert_eq!(lines.len(), 24);
    assert!(lines[21].starts_with("p50/p99"), "{}", lines[21]);
    assert!(lines[23].contains("cannot reach http://x:1"), "{}", lines[23]);
    assert!(lines[20].contains("telegram off"), "the list runs up to the footer: {}", lines[20]);
}
