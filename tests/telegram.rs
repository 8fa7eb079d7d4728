//! End-to-end tests of Telegram delivery against the mock Bot API on
//! 127.0.0.1, with real sockets, real ureq errors and the real journal.
//!
//! Time assertions are lower bounds on the mock's clock (a resend no earlier
//! than `retry_after`), never claims that something was fast. Every test
//! runs under the app's own logger at TRACE, writing one file for the whole
//! binary, and proves that no part of any token appears in it.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use imbalance_monitor::alert::Alert;
use imbalance_monitor::exact::Fraction;
use imbalance_monitor::metrics::VolumeSpec;
use imbalance_monitor::pairs::PairId;
use imbalance_monitor::sinks::journal::Journal;
use imbalance_monitor::sinks::telegram::{
    self, ChatId, RawChatId, RawTelegram, TelegramConfig, TelegramError, TelegramHandle, TelegramSink,
};
use imbalance_monitor::sinks::{Catalog, Delivery};
use imbalance_monitor::triggers::{Emit, MetricKind, Op, TriggerId, TriggerSpec};
use imbalance_monitor::units::{Price, UnixNanos, Volume, VolumeMode};
use imbalance_monitor::venue::binance_spot::{Depth, StreamKind, StreamTable, UpdateSpeed};
use serde_json::Value;
use support::mock_bot_api::{Fault, MockBotApi, parse_html};
use support::trace_log;

/// Generous bound for a stuck test; never a speed requirement.
const PATIENCE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- fixtures

/// A token unique to one test, and its secret half.
fn test_token(n: u32) -> (String, String) {
    let secret = format!("AAF{n:04}secretSECRETsecret-_{n:04}");
    (format!("70000{n:04}:{secret}"), secret)
}

/// A test's journal and catalog.
struct Fixture {
    dir: PathBuf,
    journal_path: PathBuf,
    journal: Arc<Mutex<Journal>>,
    catalog: Arc<Catalog>,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        trace_log::install();
        let dir = std::env::temp_dir().join(format!("im-telegram-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let journal_path = dir.join("alerts.jsonl");
        let journal = Arc::new(Mutex::new(Journal::open(&journal_path).unwrap()));
        Fixture { dir, journal_path, journal, catalog: Arc::new(catalog()) }
    }

    fn spawn(&self, config: TelegramConfig) -> TelegramHandle {
        TelegramSink::spawn(config, Arc::clone(&self.catalog), Arc::clone(&self.journal)).unwrap()
    }

    /// Journals the alert line (as the cold thread does) and submits it.
    fn submit(&self, handle: &TelegramHandle, seq: u64) {
        let a = alert(seq);
        let id = format!("a{seq}");
        let line = self.catalog.view(&a).journal_json(Some(&id));
        self.journal.lock().unwrap().append(&line).unwrap();
        handle.submit(id, a);
    }

    /// The delivery lines so far.
    fn deliveries(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.journal_path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("every journal line is JSON"))
            .filter(|v| v["type"] == "delivery")
            .collect()
    }

    /// Waits until the journal holds `n` delivery lines.
    fn wait_deliveries(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let d = self.deliveries();
            if d.len() >= n {
                return d;
            }
            assert!(Instant::now() < deadline, "waited for {n} delivery lines, have {d:#?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The token is nowhere: not in any log line (of any test: a piece of a
    /// token in the log is always a leak), the journal, or `texts`.
    fn assert_no_leak(&self, token: &str, secret: &str, texts: &[String]) {
        let log = trace_log::lines().join("\n");
        assert_eq!(trace_log::holding_part_of(&log, secret), Vec::<&str>::new(), "a token leaked into the log");
        for needle in [token, secret] {
            let journal = std::fs::read_to_string(&self.journal_path).unwrap_or_default();
            assert!(!journal.contains(needle), "the token leaked into the journal:\n{journal}");
            for t in texts {
                assert!(!t.contains(needle), "the token leaked into {t}");
            }
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn catalog() -> Catalog {
    let trigger =
        |name: &str, op, value: f64| TriggerSpec::simple(name, MetricKind::ImbalanceRatio, op, value, 0, Emit::Level);
    Catalog {
        venue: std::sync::Arc::new(StreamTable::new(
            &["BTCUSDT".into()],
            StreamKind { depth: Depth::D10, speed: UpdateSpeed::Ms100 },
        )),
        triggers: vec![trigger("imbalance_buy_strong", Op::Ge, 0.25), trigger("imbalance_sell_strong", Op::Le, -0.25)],
        volume: VolumeSpec { mode: VolumeMode::Notional, top_n: 10 },
    }
}

/// Alert `seq` has the value `0.3000 + seq / 10000`, so messages show which
/// alerts they carry, in order.
fn alert(seq: u64) -> Alert {
    Alert {
        seq,
        recv: UnixNanos(1_723_161_254_137_307_667 + seq * 1_000_000),
        pair: PairId(0),
        trigger: TriggerId(0),
        value: Fraction { negative: false, mag: u128::from(3000 + seq), den: 10_000 },
        extra_values: [Fraction::default(); 3],
        bid_volume: Volume { raw: 7_625_960_012_000_000_000_000, mode: VolumeMode::Notional },
        ask_volume: Volume { raw: 4_234_673_400_000_000_000_000, mode: VolumeMode::Notional },
        best_bid: Some(Price(6_183_763_000_000)),
        best_ask: Some(Price(6_183_764_000_000)),
        last_update_id: 50_093_239_224 + seq,
    }
}

/// The alert numbers a message carries, in order.
fn seqs_in(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter(|w| w.starts_with("0.30") && w.len() == 6)
        .filter_map(|w| w.parse::<f64>().ok())
        .map(|v| ((v - 0.3) * 10_000.0).round() as u64)
        .collect()
}

fn config(api_base: &str, token: &str, chats: &[&str], tweak: impl FnOnce(&mut RawTelegram)) -> TelegramConfig {
    let mut raw = RawTelegram {
        enabled: true,
        bot_token: Some(token.into()),
        chat_ids: chats.iter().map(|c| RawChatId::Name(c.to_string())).collect(),
        api_base: api_base.into(),
        timeout_ms: 2_000,
        connect_timeout_ms: 1_000,
        ..RawTelegram::default()
    };
    tweak(&mut raw);
    telegram::validate(raw, |_| None).expect("a valid test config")
}

fn of_chat(lines: &[Value], chat: i64) -> Vec<&Value> {
    lines.iter().filter(|l| l["chat_id"] == chat).collect()
}

// ---------------------------------------------------------------- tests

#[test]
fn a_burst_arrives_in_order_coalesced_under_429_and_5xx() {
    let (token, secret) = test_token(1);
    let f = Fixture::new("burst");
    let mock = MockBotApi::builder(&token).private_chat(42).group(-100_777).start();
    mock.fault_for_chat(42, Fault::InternalError);
    mock.fault_for_chat(42, Fault::TooManyRequests(1));
    mock.fault_for_chat(-100_777, Fault::BadGatewayHtml);
    mock.fault_for_chat(-100_777, Fault::Reset);
    mock.fault_for_chat(-100_777, Fault::Delay(Duration::from_millis(300)));
    let (events_tx, events) = crossbeam_channel::unbounded::<Delivery>();
    let cfg = config(&mock.base_url(), &token, &["42", "-100777"], |_| {});
    let handle =
        TelegramSink::spawn_with_events(cfg, Arc::clone(&f.catalog), Arc::clone(&f.journal), Some(events_tx)).unwrap();

    for seq in 1..=12 {
        f.submit(&handle, seq);
    }
    let lines = f.wait_deliveries(24);
    let summary = handle.shutdown(Duration::from_secs(5));

    for chat in [42, -100_777] {
        let delivered: Vec<_> = mock.messages().into_iter().filter(|m| m.chat_id == chat).collect();
        let seqs: Vec<u64> = delivered.iter().flat_map(|m| seqs_in(&m.text)).collect();
        assert_eq!(seqs, (1..=12).collect::<Vec<_>>(), "chat {chat}: every alert once, in order");
        assert!(delivered.len() < 12, "chat {chat}: the burst was not coalesced: {delivered:#?}");
        assert!(delivered.iter().any(|m| m.text.contains(" alerts:</b>\n")), "chat {chat}: {delivered:#?}");
        assert!(delivered.iter().all(|m| m.parse_mode.as_deref() == Some("HTML") && m.link_preview_disabled));
        let journaled = of_chat(&lines, chat);
        assert_eq!(journaled.len(), 12);
        assert!(journaled.iter().all(|l| l["status"] == "sent" && l.get("error").is_none()), "{journaled:#?}");
        let ids: Vec<&str> = journaled.iter().map(|l| l["alert_id"].as_str().unwrap()).collect();
        assert_eq!(ids, (1..=12).map(|s| format!("a{s}")).collect::<Vec<_>>());
    }
    // The resend after the 429 came no earlier than its retry_after.
    let to_42: Vec<_> = mock.requests().into_iter().filter(|r| r.chat.as_deref() == Some("42")).collect();
    let flood = to_42.iter().position(|r| r.status == Some(429)).expect("the scripted 429");
    assert!(to_42[flood + 1].at.duration_since(to_42[flood].at) >= Duration::from_secs(1), "{to_42:#?}");

    assert_eq!((summary.sent, summary.failed, summary.dropped), (24, 0, 0), "{summary:?}");
    assert_eq!(summary.rate_limited, 1, "{summary:?}");
    for status in [500, 502, 429, 200] {
        assert!(summary.responses_by_status.contains_key(&status), "{summary:?}");
    }
    let events: Vec<Delivery> = events.try_iter().collect();
    assert_eq!(events.len() as u64, summary.requests);
    assert_eq!(events.iter().filter(|e| e.delivered).count(), mock.messages().len());
    assert!(events.iter().any(|e| e.status.is_none()), "the reset had no HTTP status: {events:#?}");
    f.assert_no_leak(&token, &secret, &[]);
}

#[test]
fn retry_after_is_honoured_and_capped_by_max_retry_after() {
    let (token, secret) = test_token(2);
    let f = Fixture::new("retry-after");
    let mock = MockBotApi::builder(&token).private_chat(42).flood_interval(None).start();
    mock.fault_for_chat(42, Fault::TooManyRequests(2));
    mock.fault_for_chat(42, Fault::TooManyRequests(3600));
    let handle = f.spawn(config(&mock.base_url(), &token, &["42"], |r| r.max_retry_after_sec = 2));

    f.submit(&handle, 1);
    // Waiting out the second retry_after (an hour) would exceed PATIENCE: the cap applied.
    mock.wait_for("the alert after two 429s", PATIENCE, |m, _| m.len() == 1);
    let r = mock.requests();
    assert_eq!(r.iter().map(|r| r.status).collect::<Vec<_>>(), [Some(429), Some(429), Some(200)]);
    assert!(r[1].at.duration_since(r[0].at) >= Duration::from_secs(2), "retry_after 2 not honoured: {r:#?}");
    assert!(r[2].at.duration_since(r[1].at) >= Duration::from_secs(2), "the cap is a wait too: {r:#?}");
    let lines = f.wait_deliveries(1);
    assert_eq!((lines[0]["status"].as_str(), lines[0]["attempts"].as_u64()), (Some("sent"), Some(3)));
    let summary = handle.shutdown(Duration::from_secs(1));
    assert_eq!((summary.sent, summary.rate_limited, summary.retries), (1, 2, 2), "{summary:?}");
    f.assert_no_leak(&token, &secret, &[]);
}

#[test]
fn a_retry_after_of_u64_max_is_waited_out_capped_instead_of_panicking_the_thread() {
    let (token, secret) = test_token(16);
    let f = Fixture::new("retry-after-max");
    let mock = MockBotApi::builder(&token).private_chat(42).start();
    mock.fault_for_chat(42, Fault::TooManyRequests(u64::MAX));
    // Past validation, as a library user could: the sink must still cap and never overflow.
    let mut cfg = config(&mock.base_url(), &token, &["42"], |_| {});
    cfg.max_retry_after = Duration::MAX;
    let handle = f.spawn(cfg);

    f.submit(&handle, 1);
    trace_log::wait_for(
        "Telegram: chat 42: Telegram answered 429: Too Many Requests: retry after 18446744073709551615",
    );
    let waiting = trace_log::wait_for("retrying in 3600.0 s (attempt 2 of 5)");
    assert!(waiting.iter().all(|l| l.contains(" WARN  | ")), "{waiting:?}");
    let summary = handle.shutdown(Duration::from_millis(200));
    assert_eq!((summary.sent, summary.dropped), (0, 1), "{summary:?}");
    let lines = f.deliveries();
    assert!(lines[0]["error"].as_str().unwrap().starts_with("shutdown"), "{lines:?}");
    assert_eq!(trace_log::lines_containing("panicked"), Vec::<String>::new());
    f.assert_no_leak(&token, &secret, &[]);
}

#[test]
fn a_description_with_newlines_and_terminal_escapes_stays_inside_one_escaped_log_line() {
    let (token, secret) = test_token(17);
    let f = Fixture::new("injection");
    let mock = MockBotApi::builder(&token).private_chat(42).flood_interval(None).start();
    let forged =
        "Bad Request: chat not found\n2026-11-22 03:41:07.123 INFO  | TRIGGER | pair=FAKEUSDT | forged\x1b[2K\x1b[31m";
    mock.fault_for_chat(42, Fault::ApiError(400, forged.into()));
    mock.fault_for_chat(42, Fault::ApiError(400, forged.into()));
    let cfg = config(&mock.base_url(), &token, &["42"], |_| {});
    let handle = f.spawn(cfg.clone());

    f.submit(&handle, 1);
    assert_eq!(f.wait_deliveries(1)[0]["status"], "failed");
    let lines = trace_log::wait_for("pair=FAKEUSDT");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains(" ERROR | Telegram: alert a1 to chat 42 failed: Telegram answered 400: Bad Request: chat not found\\n2026-11-22 03:41:07.123 INFO  | TRIGGER | pair=FAKEUSDT | forged\\u{1b}[2K\\u{1b}[31m; "), "{lines:?}");
    let log = trace_log::lines();
    assert!(!log.iter().any(|l| l.starts_with("2026-11-22 03:41:07.123 INFO  | TRIGGER")), "a forged line");
    assert!(!log.iter().any(|l| l.contains('\x1b')), "a raw ESC in the log");
    // The error itself (telegram-test prints it to the terminal) is one line without a raw ESC.
    let results = telegram::send_test_message(&cfg).unwrap();
    let e = results[0].1.as_ref().unwrap_err().to_string();
    assert!(e.contains("chat not found\\n2026-11-22") && !e.contains(['\n', '\x1b']), "{e:?}");
    handle.shutdown(Duration::from_secs(1));
    f.assert_no_leak(&token, &secret, &[e]);
}

#[test]
fn an_ok_answer_that_cannot_be_read_is_sent_once_and_journaled_sent_unconfirmed() {
    let (token, secret) = test_token(18);
    let f = Fixture::new("unconfirmed");
    let mock = MockBotApi::builder(&token).private_chat(42).flood_interval(None).start();
    for fault in [Fault::OkNotJson, Fault::OkNotUtf8, Fault::OkTruncated] {
        mock.fault_for_chat(42, fault);
    }
    let handle = f.spawn(config(&mock.base_url(), &token, &["42"], |_| {}));

    for seq in 1..=3 {
        f.submit(&handle, seq);
        f.wait_deliveries(seq as usize);
    }
    let summary = handle.shutdown(Duration::from_secs(1));

    // Each message was posted once: Telegram answers 200 only for what it posted.
    assert_eq!(mock.messages().iter().flat_map(|m| seqs_in(&m.text)).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(mock.requests().iter().filter(|r| r.method == "sendmessage").count(), 3, "{:#?}", mock.requests());
    for l in f.deliveries() {
        assert_eq!((l["status"].as_str(), l["attempts"].as_u64()), (Some("sent_unconfirmed"), Some(1)), "{l}");
        let why = l["error"].as_str().unwrap();
        assert!(
            why.starts_with("Telegram answered HTTP 200, so it posted the message, but its answer was unusable"),
            "{l}"
        );
    }
    let warned = trace_log::wait_for("Telegram: chat 42: Telegram answered HTTP 200, so it posted the message");
    let ours: Vec<&String> = warned.iter().filter(|l| l.contains(&mock.base_url())).collect();
    assert_eq!(ours.len(), 3, "{warned:#?}");
    assert!(ours.iter().all(|l| l.contains(" WARN  | ") && l.ends_with("; it is not resent")), "{ours:#?}");
    assert_eq!((summary.sent, summary.sent_unconfirmed, summary.failed), (0, 3, 0), "{summary:?}");
    f.assert_no_leak(&token, &secret, &[]);
}

#[test]
fn pacing_holds_after_every_kind_of_answer_even_a_50_mb_one() {
    let (token, secret) = test_token(19);
    let f = Fixture::new("pacing");
    // No flood control in the mock: the sink must pace on its own.
    let mock = MockBotApi::builder(&token).private_chat(42).flood_interval(None).start();
    for fault in [
        Fault::OkHuge(50 << 20),
        Fault::InternalError,
        Fault::CantParseEntities,
        Fault::OkNotJson,
        Fault::Reset,
        Fault::ApiError(400, "Bad Request: message to reply not found".into()),
        Fault::TooManyRequests(1),
    ] {
        mock.fault_for_chat(42, fault);
    }
    let handle = f.spawn(config(&mock.base_url(), &token, &["42"], |_| {}));

    // One alert at a time, each after the previous one's outcome, so none is coalesced.
    for seq in 1..=5 {
        f.submit(&handle, seq);
        f.wait_deliveries(seq as usize);
    }
    handle.shutdown(Duration::from_secs(1));

    let sends: Vec<_> = mock.requests().into_iter().filter(|r| r.method == "sendmessage").collect();
    let statuses: Vec<Option<u16>> = sends.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [Some(200), Some(500), Some(400), Some(200), None, Some(400), Some(429), Some(200), Some(200)],
        "{sends:#?}"
    );
    for pair in sends.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= Duration::from_secs(1), "requests {} and {} only {gap:?} apart", pair[0].n, pair[1].n);
    }
    let outcomes: Vec<String> = f.deliveries().iter().map(|l| l["status"].as_str().unwrap().to_string()).collect();
    assert_eq!(outcomes, ["sent_unconfirmed", "sent_unconfirmed", "failed", "sent", "sent"]);
    f.assert_no_leak(&token, &secret, &[]);
}

#[test]
fn rejected_markup_is_resent_once_as_plain_text() {
    let (token, secret) = test_token(3);
    let f = Fixture::new("plain");
    let mock = MockBotApi::builder(&token).private_chat(42).start();
    mock.fault_for_chat(42, Fault::CantParseEntities);
    let handle = f.spawn(config(&mock.base_url(), &token, &["42"], |_| {}));

    f.submit(&handle, 7);
    mock.wait_for("the plain-text resend", PATIENCE, |m, _| m.len() == 1);
    let m = &mock.messages()[0];
    assert_eq!(m.parse_mode, None);
    assert!(!m.text.contains("<b>") && !m.text.contains("&amp;"), "{}", m.text);
    assert!(m.text.contains("imbalance_buy_strong: imbalance_ratio 0.3007 ≥ 0.25"), "{}", m.text);
    assert!(m.text.ends_with("BTC/USDT on Binance: https://www.binance.com/en/trade/BTC_USDT?type=spot"), "{}", m.text);
    let lines = f.wait_deliveries(1);
    assert_eq!((lines[0]["status"].as_str(), lines[0]["attempts"].as_u64()), (Some("sent"), Some(2)));
    trace_log::wait_for("resending it as plain text");
    handle.shutdown(Duration::from_secs(1));
    f.assert_no_leak(&token, &secret, &[]);
}

#[test]
fn a_migrated_group_is_followed_and_the_user_told_to_update_the_config() {
    let (token, secret) = test_token(4);
    let f = Fixture::new("migrate");
    let mock = MockBotApi::builder(&token).migrated_group(-4001, -1_000_000_004_001).flood_interval(None).start();
    let handle = f.spawn(config(&mock.base_url(), &token, &["-4001"], |_| {}));

    f.submit(&handle, 1);
    f.wait_deliveries(1);
    f.submit(&handle, 2);
    let lines = f.wait_deliveries(2);
    handle.shutdown(Duration::from_secs(1));

    let chats: Vec<Option<String>> = mock.requests().into_iter().map(|r| r.chat).collect();
    assert_eq!(chats, [Some("-4001".into()), Some("-1000000004001".into()), Some("-1000000004001".into())]);
    assert_eq!(mock.messages().iter().map(|m| m.chat_id).collect::<Vec<_>>(), [-1_000_000_004_001; 2]);
    assert!(lines.iter().all(|l| l["status"] == "sent" && l["chat_id"] == -1_000_000_004_001_i64), "{lines:#?}");
    assert_eq!(lines[0]["attempts"], 2);
    assert_eq!(lines[1]["attempts"], 1);
    let warning = trace_log::wait_for("replace -4001 with -1000000004001 in telegram.chat_ids");
    assert!(warning.iter().any(|w| w.contains(" WARN  | ")), "{warning:?}");
    f.assert_no_leak(&token, &secret, &[]);
}

#[test]
fn a_blocked_chat_is_disabled_while_the_others_keep_receiving() {
    let (token, secret) = test_token(5);
    let f = Fixture::new("blocked");
    let mock = MockBotApi::builder(&token).private_chat(42).blocked_chat(43).flood_interval(None).start();
    let handle = f.spawn(config(&mock.base_url(), &token, &["42", "43"], |_| {}));

    f.submit(&handle, 1);
    f.wait_deliveries(2);
    f.submit(&handle, 2);
    f.submit(&handle, 3);
    let lines = f.wait_deliveries(6);
    let summary = handle.shutdown(Duration::from_secs(3));

    let to_42 = of_chat(&lines, 42);
    assert_eq!(to_42.len(), 3);
    assert!(to_42.iter().all(|l| l["status"] == "sent"), "{to_42:#?}");
    let to_43 = of_chat(&lines, 43);
    assert_eq!(to_43.iter().map(|l| l["attempts"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 0, 0]);
    for l in &to_43 {
        assert_eq!(l["status"], "failed");
        assert!(l["error"].as_str().unwrap().contains("Forbidden: bot was blocked by the user"), "{l}");
    }
    let requests_to_43 = mock.requests().into_iter().filter(|r| r.chat.as_deref() == Some("43")).count();
    assert_eq!(requests_to_43, 1, "a disabled chat gets no more requests");
    trace_log::wait_for("disabling chat 43 until restart");
    assert_eq!((summary.sent, summary.failed, summary.dropped), (3, 3, 0));
    f.assert_no_leak(&token, &secret, &[]);
}

#[test]
fn a_rejected_token_turns_telegram_off_and_later_alerts_are_journaled_unsent() {
    let (token, secret) = test_token(6);
    let (real_token, _) = test_token(60);
    let f = Fixture::new("unauthorized");
    let mock = MockBotApi::builder(&real_token).private_chat(42).private_chat(43).start();
    let handle = f.spawn(config(&mock.base_url(), &token, &["42", "43"], |_| {}));

    f.submit(&handle, 1);
    f.wait_deliveries(2);
    f.submit(&handle, 2);
    f.submit(&handle, 3);
    let lines = f.wait_deliveries(6);
    let summary = handle.shutdown(Duration::from_secs(1));

    assert_eq!(mock.requests().len(), 1, "one 401 is enough to stop: {:#?}", mock.requests());
    assert!(lines.iter().all(|l| l["status"] == "failed"), "{lines:#?}");
    assert!(
        lines.iter().all(|l| l["error"].as_str().unwrap().contains("Telegram rejected the bot token")),
        "{lines:#?}"
    );
    let attempts: u64 = lines.iter().map(|l| l["attempts"].as_u64().unwrap()).sum();
    assert_eq!(attempts, 1, "only the first alert's first chat was tried: {lines:#?}");
    let rejected = trace_log::wait_for("Telegram rejected the bot token");
    assert!(rejected.iter().any(|l| l.contains(" ERROR | ")), "{rejected:?}");
    assert_eq!((summary.sent, summary.failed, summary.dropped), (0, 6, 0));
    f.assert_no_leak(&token, &secret, &[]);
}

#[test]
fn the_token_appears_in_no_log_journal_or_error_under_any_fault() {
    let (token, secret) = test_token(7);
    let f = Fixture::new("no-leak");
    let mock = MockBotApi::builder(&token).private_chat(42).flood_interval(None).start();
    let cfg = config(&mock.base_url(), &token, &["42"], |r| r.timeout_ms = 300);
    let handle = f.spawn(cfg.clone());
    // Every fault once, spread over two alerts so backoff stays short (each message backs off on its own).
    for (seq, faults) in [
        (1, vec![Fault::InternalError, Fault::BadGatewayHtml, Fault::Reset]),
        (2, vec![Fault::Hang, Fault::TooManyRequests(1), Fault::CantParseEntities, Fault::RecordThenHang]),
        (3, vec![Fault::Forbidden]),
    ] {
        for fault in faults {
            mock.fault_for_chat(42, fault);
        }
        f.submit(&handle, seq);
        f.wait_deliveries(seq as usize);
    }
    handle.shutdown(Duration::from_secs(1));

    let lines = f.deliveries();
    let outcomes: Vec<(&str, u64)> =
        lines.iter().map(|l| (l["status"].as_str().unwrap(), l["attempts"].as_u64().unwrap())).collect();
    assert_eq!(outcomes, [("sent", 4), ("sent", 5), ("failed", 1)], "{lines:#?}");
    // The record-then-hang request made Telegram show alert 2 twice, as documented.
    let shown = mock.messages();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    assert_eq!(shown[1].text, shown[2].text);
    trace_log::wait_for("Telegram may show it twice");

    // The tools, against a closed port, a hanging server and a wrong token.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let hanging = MockBotApi::builder(&token).start();
    hanging.fault_on_request(1, Fault::Hang);
    hanging.fault_on_request(2, Fault::Hang);
    let wrong = MockBotApi::builder(&test_token(70).0).private_chat(42).start();
    let mut texts = vec![format!("{cfg:?}")];
    for base in [format!("http://127.0.0.1:{closed}"), hanging.base_url(), wrong.base_url()] {
        let cfg = config(&base, &token, &["42"], |r| r.timeout_ms = 300);
        let e = telegram::get_me(&cfg).unwrap_err();
        texts.push(format!("{e} {e:?}"));
        let e = telegram::send_test_message(&cfg).unwrap_err();
        texts.push(format!("{e} {e:?}"));
    }
    assert!(texts[1].contains("Connection refused") || texts[1].contains("refused"), "{}", texts[1]);
    assert!(texts[3].contains("timeout"), "{}", texts[3]);
    assert!(texts[5].contains("Telegram rejected the bot token"), "{}", texts[5]);
    // ureq's own records were written (at the capped level, path hidden), so their lack of the token means something.
    let requests = trace_log::wait_for("POST http://127.0.0.1:");
    assert!(requests.iter().any(|l| l.contains(" DEBUG | ") && l.contains("/******")), "{requests:?}");
    f.assert_no_leak(&token, &secret, &texts);
}

#[test]
fn shutdown_delivers_what_is_pending_within_the_grace_period() {
    let (token, secret) = test_token(8);
    let f = Fixture::new("shutdown-delivers");
    let mock = MockBotApi::builder(&token).private_chat(42).start();
    let handle = f.spawn(config(&mock.base_url(), &token, &["42"], |_| {}));

    for seq in 1..=3 {
        f.submit(&handle, seq);
    }
    let summary = handle.shutdown(Duration::from_secs(5));

    assert_eq!((summary.sent, summary.failed, summary.dropped), (3, 0, 0), "{summary:?}");
    let seqs: Vec<u64> = mock.messages().iter().flat_map(|m| seqs_in(&m.text)).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert!(f.deliveries().iter().all(|l| l["status"] == "sent"));
    f.assert_no_leak(&token, &secret, &[]);
}

#[test]
fn shutdown_interrupts_a_hung_request_and_journals_the_rest_as_dropped() {
    let (token, secret) = test_token(9);
    let f = Fixture::new("shutdown-drops");
    let mock = MockBotApi::builder(&token).private_chat(42).start();
    mock.fault_for_chat(42, Fault::RecordThenHang);
    let handle = f.spawn(config(&mock.base_url(), &token, &["42"], |r| r.timeout_ms = 30_000));

    f.submit(&handle, 1);
    mock.wait_for("the hung request", PATIENCE, |_, r| r.len() == 1);
    f.submit(&handle, 2);
    f.submit(&handle, 3);
    let started = Instant::now();
    let summary = handle.shutdown(Duration::from_millis(300));
    // A bound, not a speed claim: waiting out the 30 s request timeout would exceed it.
    assert!(started.elapsed() < Duration::from_secs(10), "shutdown waited for the hung request");

    assert_eq!((summary.sent, summary.failed, summary.dropped), (0, 0, 3), "{summary:?}");
    let lines = f.deliveries();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l["status"] == "dropped" && l["error"].as_str().unwrap().starts_with("shutdown")));
    assert_eq!(lines[0]["alert_id"], "a1");
    assert_eq!(lines[0]["attempts"], 1);
    assert!(lines[0]["error"].as_str().unwrap().contains("may have reached Telegram"), "{}", lines[0]);
    assert_eq!(lines.iter().map(|l| l["attempts"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 0, 0]);
    f.assert_no_leak(&token, &secret, &[]);
}

#[test]
fn alerts_beyond_max_pending_are_journaled_as_dropped() {
    let (token, secret) = test_token(10);
    let f = Fixture::new("overflow");
    let mock = MockBotApi::builder(&token).private_chat(42).start();
    mock.fault_for_chat(42, Fault::Hang);
    let handle = f.spawn(config(&mock.base_url(), &token, &["42"], |r| {
        r.timeout_ms = 30_000;
        r.max_pending = 3;
    }));

    f.submit(&handle, 1);
    mock.wait_for("the hung request", PATIENCE, |_, r| r.len() == 1);
    for seq in 2..=11 {
        f.submit(&handle, seq);
    }
    // Alert 1 is in flight, 2–4 wait; 5–11 found the queue full.
    let overflow = f.deliveries();
    let ids: Vec<&str> = overflow.iter().map(|l| l["alert_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a5", "a6", "a7", "a8", "a9", "a10", "a11"]);
    for l in &overflow {
        assert_eq!((l["status"].as_str(), l["attempts"].as_u64()), (Some("dropped"), Some(0)));
        assert!(l["error"].as_str().unwrap().contains("telegram.max_pending = 3"), "{l}");
    }
    assert_eq!(handle.counters().summary().dropped, 7);
    trace_log::wait_for("Telegram: alert a11 to chat 42 dropped");

    let summary = handle.shutdown(Duration::from_millis(200));
    assert_eq!((summary.sent, summary.dropped), (0, 11));
    let after: Vec<String> = f.deliveries()[7..].iter().map(|l| l["alert_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(after, ["a1", "a2", "a3", "a4"]);
    f.assert_no_leak(&token, &secret, &[]);
}

#[test]
fn a_hanging_server_does_not_block_submit() {
    let (token, secret) = test_token(11);
    let f = Fixture::new("hang-submit");
    let mock = MockBotApi::builder(&token).private_chat(42).start();
    mock.fault_for_chat(42, Fault::Hang);
    let handle = f.spawn(config(&mock.base_url(), &token, &["42"], |r| r.timeout_ms = 30_000));

    f.submit(&handle, 1);
    mock.wait_for("the hung request", PATIENCE, |_, r| r.len() == 1);
    for seq in 2..=500 {
        handle.submit(format!("a{seq}"), alert(seq));
    }
    // Every submit returned while the only request is still unanswered.
    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].status, None);
    let summary = handle.shutdown(Duration::from_millis(200));
    assert_eq!((summary.sent, summary.dropped), (0, 500));
    f.assert_no_leak(&token, &secret, &[]);
}

#[test]
fn telegram_test_reports_each_chat_and_get_me_names_the_bot() {
    let (token, secret) = test_token(12);
    let f = Fixture::new("tools");
    let mock = MockBotApi::builder(&token).private_chat(42).channel(-100_555, "@alerts_chan").blocked_chat(43).start();
    let cfg = config(&mock.base_url(), &token, &["42", "@alerts_chan", "43", "44"], |r| {
        r.disable_notification = true;
        r.message_thread_id = Some(7);
    });

    let bot = telegram::get_me(&cfg).unwrap();
    assert_eq!(bot.username.as_deref(), Some("mock_alerts_bot"));
    let results = telegram::send_test_message(&cfg).unwrap();
    let chats: Vec<&ChatId> = results.iter().map(|(c, _)| c).collect();
    assert_eq!(chats, [&ChatId::Id(42), &ChatId::Username("@alerts_chan".into()), &ChatId::Id(43), &ChatId::Id(44)]);
    assert!(results[0].1.is_ok() && results[1].1.is_ok(), "{results:?}");
    let blocked = results[2].1.as_ref().unwrap_err().to_string();
    assert!(blocked.contains("403: Forbidden: bot was blocked by the user; the bot may not post there"), "{blocked}");
    let unknown = results[3].1.as_ref().unwrap_err().to_string();
    assert!(unknown.contains("chat not found; check telegram.chat_ids"), "{unknown}");

    let shown = mock.messages();
    assert_eq!(shown.iter().map(|m| m.chat_id).collect::<Vec<_>>(), [42, -100_555]);
    for m in &shown {
        assert!(m.text.contains("test message from @mock_alerts_bot"), "{}", m.text);
        assert_eq!(m.parse_mode.as_deref(), Some("HTML"));
        assert!(m.disable_notification && m.link_preview_disabled);
        assert_eq!(m.message_thread_id, Some(7));
    }
    let no_chats = config(&mock.base_url(), &token, &[], |r| r.enabled = false);
    assert!(matches!(telegram::send_test_message(&no_chats), Err(TelegramError::NotConfigured(_))));
    f.assert_no_leak(&token, &secret, &[blocked, unknown]);
}

#[test]
fn a_disabled_config_journals_alerts_as_not_sent() {
    let (token, secret) = test_token(13);
    let f = Fixture::new("disabled");
    let cfg = config("http://127.0.0.1:9", &token, &["42"], |r| r.enabled = false);
    let handle = f.spawn(cfg);
    f.submit(&handle, 1);
    let lines = f.wait_deliveries(1);
    assert_eq!(lines[0]["status"], "failed");
    assert!(lines[0]["error"].as_str().unwrap().contains("telegram.enabled = false"), "{}", lines[0]);
    assert_eq!(handle.shutdown(Duration::ZERO).failed, 1);
    f.assert_no_leak(&token, &secret, &[]);
}

// ------------------------------------------------------- the mock itself

/// One raw HTTP/1.1 exchange on a kept-alive connection.
fn raw_request(stream: &mut BufReader<TcpStream>, request: &str) -> (u16, Value) {
    stream.get_mut().write_all(request.as_bytes()).unwrap();
    let mut status_line = String::new();
    stream.read_line(&mut status_line).unwrap();
    let status: u16 = status_line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut len = 0;
    loop {
        let mut h = String::new();
        stream.read_line(&mut h).unwrap();
        if h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body).unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

#[test]
fn the_mock_speaks_the_bot_api_like_telegram() {
    let (token, _) = test_token(14);
    let mock = MockBotApi::builder(&token).private_chat(42).flood_interval(None).start();
    let addr = mock.base_url().trim_start_matches("http://").to_string();
    let mut s = BufReader::new(TcpStream::connect(&addr).unwrap());
    let json = |path: &str, body: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let send = format!("/bot{token}/sendMessage");

    // Form-urlencoded in a chunked body, then everything else on the same kept-alive connection.
    let form = "chat_id=42&text=a%20%3Cb%3Ebold%3C%2Fb%3E+%26amp%3B+more&parse_mode=HTML";
    let chunked = format!(
        "POST {send} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        10,
        &form[..10],
        form.len() - 10,
        &form[10..]
    );
    let (status, body) = raw_request(&mut s, &chunked);
    assert_eq!((status, &body["result"]["text"]), (200, &Value::from("a bold & more")), "{body}");

    let cases = [
        (json("/bot1:wrong/getMe", "{}"), 401, "Unauthorized"),
        (json(&format!("/bot{token}/sendPigeon"), "{}"), 404, "Not Found"),
        (json(&send, r#"{"chat_id":42,"text":""}"#), 400, "Bad Request: message text is empty"),
        (json(&send, r#"{"chat_id":99,"text":"hi"}"#), 400, "Bad Request: chat not found"),
        (
            json(&send, &format!(r#"{{"chat_id":42,"text":"{}"}}"#, "x".repeat(4097))),
            400,
            "Bad Request: message is too long",
        ),
        (
            json(&send, r#"{"chat_id":42,"text":"a < b","parse_mode":"HTML"}"#),
            400,
            "Bad Request: can't parse entities: Unsupported start tag \"\" at byte offset 2",
        ),
    ];
    for (request, want_status, want_description) in cases {
        let (status, body) = raw_request(&mut s, &request);
        assert_eq!(
            (status, body["ok"].as_bool(), body["error_code"].as_u64()),
            (want_status, Some(false), Some(u64::from(want_status)))
        );
        assert_eq!(body["description"], want_description);
    }
    // Exactly 4096 UTF-16 units after parsing (the emoji counts twice) is accepted.
    let longest = format!(r#"{{"chat_id":"42","text":"<b>🟢</b>{}","parse_mode":"HTML"}}"#, "x".repeat(4094));
    let (status, body) = raw_request(&mut s, &json(&send, &longest));
    assert_eq!(status, 200, "{body}");

    assert_eq!(parse_html("<b>a &amp; b</b> &lt;3 &#x1F7E2;").unwrap(), "a & b <3 🟢");
    assert_eq!(parse_html("<a href=\"https://x\">x</a>").unwrap(), "x");
    assert!(parse_html("a & b").unwrap_err().starts_with("Character entity expected"));
    assert!(parse_html("<b>open").unwrap_err().contains("start tag \"b\""));
    assert!(parse_html("<blink>x</blink>").unwrap_err().contains("Unsupported start tag \"blink\""));
    assert!(parse_html("<b><i>x</b></i>").unwrap_err().starts_with("Unmatched end tag"));
    assert!(parse_html("x</b>").unwrap_err().starts_with("Unexpected end tag"));
}

#[test]
fn the_mocks_flood_control_answers_429_with_retry_after() {
    let (token, _) = test_token(15);
    let mock = MockBotApi::builder(&token).private_chat(42).start();
    let addr = mock.base_url().trim_start_matches("http://").to_string();
    let mut s = BufReader::new(TcpStream::connect(&addr).unwrap());
    let body = r#"{"chat_id":42,"text":"hi"}"#;
    let request = format!(
        "POST /bot{token}/sendMessage HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(raw_request(&mut s, &request).0, 200);
    let (status, answer) = raw_request(&mut s, &request);
    assert_eq!(status, 429);
    assert_eq!(answer["parameters"]["retry_after"], 1);
    assert_eq!(answer["description"], "Too Many Requests: retry after 1");
}

/// Tests read the log while others do: flushes from many threads at once all
/// return (ftlog alone loses a second flush request that arrives while it
/// drains the queue for the first, and that caller waits forever).
#[test]
fn flushes_from_many_threads_at_once_all_return() {
    trace_log::install();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    for t in 0..8 {
        let done = done_tx.clone();
        std::thread::spawn(move || {
            for i in 0..50 {
                log::info!("FLUSH-TEST | thread {t} line {i}");
                let _ = trace_log::lines();
            }
            let _ = done.send(t);
        });
    }
    for _ in 0..8 {
        done_rx.recv_timeout(Duration::from_secs(120)).expect("a flush never returned");
    }
}
