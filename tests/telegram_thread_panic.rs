//! A panic on the Telegram delivery thread (a bug) is logged at once and
//! delivery goes on; repeated panics turn Telegram off, loudly.
//!
//! The panic is injected from outside the crate: this binary's logger panics
//! when the delivery thread logs a retry, as a faulty logger (or any bug
//! under a log call) would. Its own binary, because the logger is global.

mod support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use imbalance_monitor::alert::Alert;
use imbalance_monitor::exact::Fraction;
use imbalance_monitor::metrics::VolumeSpec;
use imbalance_monitor::pairs::PairId;
use imbalance_monitor::sinks::Catalog;
use imbalance_monitor::sinks::journal::Journal;
use imbalance_monitor::sinks::telegram::{self, RawChatId, RawTelegram, TelegramSink};
use imbalance_monitor::triggers::{Emit, MetricKind, Op, TriggerId, TriggerSpec};
use imbalance_monitor::units::{Price, UnixNanos, Volume, VolumeMode};
use imbalance_monitor::venue::binance_spot::{Depth, StreamKind, StreamTable, UpdateSpeed};
use serde_json::Value;
use support::mock_bot_api::{Fault, MockBotApi};

const TOKEN: &str = "700099:AAFpanicPANICpanicPANICpanic_-99";
const PATIENCE: Duration = Duration::from_secs(20);

/// Records every log record as `LEVEL thread | message`, and panics while
/// the delivery thread logs a record that starts with `PANIC_ON`, as many
/// times as `PANICS` says.
struct PanickyLogger;

static RECORDS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static PANIC_ON: Mutex<String> = Mutex::new(String::new());
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// The delivery thread panics the next `times` it logs a line starting with `prefix`.
fn panic_on(prefix: &str, times: usize) {
    *PANIC_ON.lock().unwrap() = prefix.to_string();
    PANICS.store(times, Ordering::SeqCst);
}

/// How the delivery thread logs a retry after the mock's 500.
const RETRY_AFTER_500: &str = "WARN telegram | Telegram: chat 42: Telegram answered 500";

impl log::Log for PanickyLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        if !record.target().starts_with("imbalance_monitor") {
            return;
        }
        let thread = std::thread::current().name().unwrap_or("?").to_string();
        let text = format!("{} {thread} | {}", record.level(), record.args());
        RECORDS.lock().unwrap_or_else(|e| e.into_inner()).push(text.clone());
        let chosen = thread == "telegram" && text.starts_with(PANIC_ON.lock().unwrap().as_str());
        if chosen && PANICS.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            panic!("injected: the logger failed while the delivery thread logged {text:?}");
        }
    }

    fn flush(&self) {}
}

fn records_containing(needle: &str) -> Vec<String> {
    RECORDS.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|l| l.contains(needle)).cloned().collect()
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

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

#[test]
fn a_panic_on_the_delivery_thread_is_logged_at_once_and_delivery_goes_on_until_it_repeats() {
    log::set_logger(&PanickyLogger).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let dir: PathBuf = std::env::temp_dir().join(format!("im-telegram-panic-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let journal_path = dir.join("alerts.jsonl");
    let journal = Arc::new(Mutex::new(Journal::open(&journal_path).unwrap()));
    let catalog = Arc::new(Catalog {
        streams: StreamTable::new(&["BTCUSDT".into()], StreamKind { depth: Depth::D10, speed: UpdateSpeed::Ms100 }),
        triggers: vec![TriggerSpec::simple("buy", MetricKind::ImbalanceRatio, Op::Ge, 0.25, 0, Emit::Level)],
        volume: VolumeSpec { mode: VolumeMode::Notional, top_n: 10 },
    });
    let mock = MockBotApi::builder(TOKEN).private_chat(42).flood_interval(None).start();
    let raw = RawTelegram {
        enabled: true,
        bot_token: Some(TOKEN.into()),
        chat_ids: vec![RawChatId::Id(42)],
        api_base: mock.base_url(),
        timeout_ms: 2_000,
        ..RawTelegram::default()
    };
    let handle = TelegramSink::spawn(telegram::validate(raw, |_| None).unwrap(), catalog, journal).unwrap();
    let deliveries = || -> Vec<Value> {
        std::fs::read_to_string(&journal_path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect()
    };
    let submit = |seq: u64| handle.submit(format!("a{seq}"), alert(seq));

    // Alert 1 meets a 500; logging its retry panics the thread.
    panic_on(RETRY_AFTER_500, 1);
    mock.fault_for_chat(42, Fault::InternalError);
    submit(1);
    wait_until("the panic to be logged while the sink runs", || {
        !records_containing("ERROR telegram | Telegram: the delivery thread panicked").is_empty()
    });
    let logged = records_containing("delivery thread panicked");
    assert!(logged[0].contains("(injected: the logger failed"), "{logged:?}");
    assert!(logged[0].contains("journaled as failed and delivery continues"), "{logged:?}");
    wait_until("alert 1's delivery line", || deliveries().len() == 1);
    let failed = &deliveries()[0];
    assert_eq!((failed["alert_id"].as_str(), failed["status"].as_str()), (Some("a1"), Some("failed")));
    assert!(failed["error"].as_str().unwrap().contains("the Telegram thread failed while sending it"), "{failed}");

    // The same thread delivers the next alert.
    submit(2);
    wait_until("alert 2 sent", || deliveries().len() == 2);
    assert_eq!(deliveries()[1]["status"], "sent");
    assert_eq!(mock.messages().len(), 1);
    assert!(handle.is_running());

    // Two more panics (three within the window) turn Telegram off; later alerts fail without a request.
    panic_on(RETRY_AFTER_500, 2);
    for seq in [3, 4] {
        mock.fault_for_chat(42, Fault::InternalError);
        submit(seq);
        wait_until("the failed alert", || deliveries().len() == seq as usize);
    }
    let off = records_containing("Telegram alerts are off until restart");
    assert!(off.len() == 1 && off[0].starts_with("ERROR telegram | Telegram: the delivery thread panicked 3 times"));
    let requests = mock.requests().len();
    submit(5);
    wait_until("alert 5's delivery line", || deliveries().len() == 5);
    let last = &deliveries()[4];
    assert_eq!(last["status"], "failed");
    assert!(last["error"].as_str().unwrap().contains("Telegram is off until restart after repeated panics"), "{last}");
    assert_eq!(mock.requests().len(), requests, "no request once Telegram is off");

    // A panic after that ends the thread; what it is given from then on is journaled as failed at once.
    panic_on("ERROR telegram | Telegram: alert a6 to chat 42 failed", 1);
    submit(6);
    wait_until("the thread to stop", || !handle.is_running());
    assert_eq!(records_containing("panicked again and stops").len(), 1);
    assert_eq!(deliveries()[5]["status"], "failed");
    submit(7);
    let last = &deliveries()[6];
    assert_eq!((last["alert_id"].as_str(), last["status"].as_str()), (Some("a7"), Some("failed")));
    assert!(last["error"].as_str().unwrap().contains("the Telegram thread stopped after repeated panics"), "{last}");

    let summary = handle.shutdown(Duration::from_secs(1));
    assert_eq!((summary.sent, summary.failed, summary.dropped), (1, 6, 0), "{summary:?}");
    assert_eq!(deliveries().len(), 7, "one line per alert");
    let everything = RECORDS.lock().unwrap().join("\n") + &std::fs::read_to_string(&journal_path).unwrap();
    assert!(!everything.contains("PANICpanic"), "the token leaked");
    let _ = std::fs::remove_dir_all(&dir);
}
