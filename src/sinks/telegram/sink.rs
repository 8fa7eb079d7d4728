//! The sink's public face: [`TelegramSink::spawn`] starts the delivery
//! thread; the [`TelegramHandle`] it returns queues alerts without blocking,
//! exposes live counters, and shuts the thread down within a grace period.
//!
//! Alerts wait in one bounded queue per chat, shared with the thread under a
//! mutex that is only ever held to push or pop (never across a request).
//! Every (alert, chat) ends in exactly one journal line: `sent`,
//! `sent_unconfirmed` (Telegram answered 200, which it does only after
//! posting, but the answer could not be read: not resent, so not shown
//! twice), `failed` (an error or a configuration problem means it will never
//! be delivered) or `dropped` (not attempted: the queue was full, or
//! shutdown came first).

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::client::Client;
use super::worker::Worker;
use crate::alert::Alert;
use crate::config::telegram::{ChatId, TelegramConfig};
use crate::sinks::journal::Journal;
use crate::sinks::{Catalog, Delivery};

/// Starts Telegram delivery; see [`TelegramSink::spawn`].
#[derive(Debug)]
pub struct TelegramSink;

impl TelegramSink {
    /// Starts the delivery thread. Spawn it when `config.enabled`; with
    /// `enabled = false` (or no token) the thread sends nothing and journals
    /// every alert as `failed` with that reason, so a sink started by
    /// mistake is never silent.
    ///
    /// `journal` is the same journal the cold thread writes alert lines to;
    /// the caller writes an alert's line before [`TelegramHandle::submit`],
    /// and this sink appends one delivery line per (alert, chat).
    pub fn spawn(
        config: TelegramConfig,
        catalog: Arc<Catalog>,
        journal: Arc<Mutex<Journal>>,
    ) -> io::Result<TelegramHandle> {
        TelegramSink::spawn_with_events(config, catalog, journal, None)
    }

    /// Like [`TelegramSink::spawn`], and also reports every request on
    /// `events` (for a latency histogram). Events are offered with
    /// `try_send`: a full channel loses the event, never delays delivery.
    pub fn spawn_with_events(
        config: TelegramConfig,
        catalog: Arc<Catalog>,
        journal: Arc<Mutex<Journal>>,
        events: Option<Sender<Delivery>>,
    ) -> io::Result<TelegramHandle> {
        let client = match (config.enabled, Client::new(&config)) {
            (false, _) => Err("Telegram is disabled (telegram.enabled = false)".to_string()),
            (true, Err(e)) => Err(e.to_string()),
            (true, Ok(c)) => Ok(c),
        };
        let agent = client.as_ref().ok().map(|c| c.agent().clone());
        let counters = Arc::new(TelegramCounters::default());
        let shared = Arc::new(Shared {
            inbox: Mutex::new(Inbox {
                queues: vec![VecDeque::new(); config.chat_ids.len()],
                chat_ids: config.chat_ids.clone(),
                closing: None,
            }),
            journal,
            counters: Arc::clone(&counters),
            max_pending: config.max_pending,
            outcomes: std::sync::OnceLock::new(),
        });
        let (wake_tx, wake_rx) = crossbeam_channel::bounded(1);
        let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
        let worker = Worker::new(&config, client, catalog, Arc::clone(&shared), wake_rx, events);
        let thread = std::thread::Builder::new().name("telegram".into()).spawn(move || {
            worker.run();
            drop(done_tx);
        })?;
        Ok(TelegramHandle { shared, wake: wake_tx, done: done_rx, thread, agent })
    }
}

/// The caller's side of a running Telegram sink.
#[derive(Debug)]
pub struct TelegramHandle {
    shared: Arc<Shared>,
    wake: Sender<()>,
    /// Disconnects when the thread ends.
    done: Receiver<()>,
    thread: JoinHandle<()>,
    /// To interrupt a request still in flight when the grace period ends.
    agent: Option<ureq::Agent>,
}

impl TelegramHandle {
    /// Queues `alert` for every chat. Never blocks on the network: it takes
    /// a mutex the delivery thread only holds to push or pop. A chat whose
    /// queue already holds `max_pending` alerts gets a `dropped` journal
    /// line instead (written here, so the queue stays bounded).
    pub fn submit(&self, alert_id: String, alert: Alert) {
        self.submit_decided(alert_id, alert, Instant::now());
    }

    /// [`TelegramHandle::submit`] for an alert decided at `decided`, so the
    /// delivery events can report decision → delivered latency.
    pub fn submit_decided(&self, alert_id: String, alert: Alert, decided: Instant) {
        let item = Arc::new(Queued { alert_id, alert, decided });
        if self.thread.is_finished() {
            self.fail_left_behind(Some(&item));
            return;
        }
        let mut full: Vec<ChatId> = Vec::new();
        {
            let mut inbox = lock(&self.shared.inbox);
            let Inbox { queues, chat_ids, .. } = &mut *inbox;
            for (queue, chat) in queues.iter_mut().zip(chat_ids.iter()) {
                if queue.len() >= self.shared.max_pending {
                    full.push(chat.clone());
                } else {
                    queue.push_back(Arc::clone(&item));
                }
            }
        }
        for chat in full {
            let reason = format!(
                "the Telegram queue for this chat is full (telegram.max_pending = {}); Telegram is slower than \
                 the alerts, or unreachable",
                self.shared.max_pending
            );
            self.shared.record(&item.alert_id, &chat, Status::Dropped, 0, Some(&reason));
        }
        // A full wake-up channel already holds a wake-up.
        let _ = self.wake.try_send(());
    }

    /// Whether the delivery thread still runs: it ends at shutdown, or
    /// after panics it could not recover from.
    pub fn is_running(&self) -> bool {
        !self.thread.is_finished()
    }

    /// Tells `observer` of every delivery outcome from now on (the first
    /// observer set stays).
    pub fn observe_outcomes(&self, observer: OutcomeObserver) {
        let _ = self.shared.outcomes.set(observer);
    }

    /// Live counters, e.g. for the Prometheus endpoint.
    pub fn counters(&self) -> Arc<TelegramCounters> {
        Arc::clone(&self.shared.counters)
    }

    /// Delivers what is pending within `grace` (rate limits and retries
    /// still apply), then journals whatever is left as `dropped` with reason
    /// "shutdown" and stops the thread. A request still in flight when
    /// `grace` ends is interrupted; Telegram may have received it, and its
    /// journal line says so. Returns the run's totals.
    pub fn shutdown(self, grace: Duration) -> DeliverySummary {
        let deadline = super::retry::after(Instant::now(), grace);
        lock(&self.shared.inbox).closing = Some(deadline);
        let _ = self.wake.try_send(());
        if let Err(RecvTimeoutError::Timeout) = self.done.recv_deadline(deadline) {
            if let Some(agent) = &self.agent {
                agent.clone().shutdown();
            }
            let _ = self.done.recv();
        }
        if self.thread.is_finished() {
            self.fail_left_behind(None);
        }
        if self.thread.join().is_err() {
            log::error!("the Telegram thread had stopped after a panic; its alerts are journaled as failed");
        }
        self.shared.counters.summary()
    }

    /// Journals as failed every alert the stopped delivery thread left in
    /// the queues, and `also` (an alert submitted after it stopped).
    fn fail_left_behind(&self, also: Option<&Arc<Queued>>) {
        const WHY: &str = "not sent, the Telegram thread stopped after repeated panics (see the log)";
        let left: Vec<(Arc<Queued>, ChatId)> = {
            let mut inbox = lock(&self.shared.inbox);
            let Inbox { queues, chat_ids, .. } = &mut *inbox;
            let mut left = Vec::new();
            for (queue, chat) in queues.iter_mut().zip(chat_ids.iter()) {
                left.extend(queue.drain(..).map(|item| (item, chat.clone())));
                if let Some(item) = also {
                    left.push((Arc::clone(item), chat.clone()));
                }
            }
            left
        };
        for (item, chat) in left {
            self.shared.record(&item.alert_id, &chat, Status::Failed, 0, Some(WHY));
        }
    }
}

/// Counters readable while the sink runs. Outcomes count (alert, chat)
/// pairs; `requests`, `retries` and `rate_limited` count HTTP requests.
#[derive(Debug, Default)]
pub struct TelegramCounters {
    pub sent: AtomicU64,
    /// Posted (Telegram answered 200) but the answer could not be read.
    pub sent_unconfirmed: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    /// Requests made.
    pub requests: AtomicU64,
    /// Resends scheduled (429, transient failures, plain-text fallback, migration).
    pub retries: AtomicU64,
    /// 429 answers.
    pub rate_limited: AtomicU64,
    responses: Mutex<BTreeMap<u16, u64>>,
}

impl TelegramCounters {
    /// A consistent-enough copy of every counter.
    pub fn summary(&self) -> DeliverySummary {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DeliverySummary {
            sent: get(&self.sent),
            sent_unconfirmed: get(&self.sent_unconfirmed),
            failed: get(&self.failed),
            dropped: get(&self.dropped),
            requests: get(&self.requests),
            retries: get(&self.retries),
            rate_limited: get(&self.rate_limited),
            responses_by_status: lock(&self.responses).clone(),
        }
    }

    pub(crate) fn count_response(&self, status: Option<u16>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(status) = status {
            *lock(&self.responses).entry(status).or_default() += 1;
            if status == 429 {
                self.rate_limited.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Totals of a run, from [`TelegramHandle::shutdown`] or
/// [`TelegramCounters::summary`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliverySummary {
    /// (alert, chat) pairs delivered.
    pub sent: u64,
    /// (alert, chat) pairs Telegram answered 200 for (so posted) with an
    /// answer that could not be read; not counted in `sent`.
    pub sent_unconfirmed: u64,
    /// (alert, chat) pairs that will never be delivered because of an error.
    pub failed: u64,
    /// (alert, chat) pairs not attempted: queue full or shutdown.
    pub dropped: u64,
    pub requests: u64,
    pub retries: u64,
    pub rate_limited: u64,
    /// HTTP answers by status code.
    pub responses_by_status: BTreeMap<u16, u64>,
}

/// A delivery outcome as journaled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Sent,
    /// Telegram answered 200 (it posted the message) but the answer could
    /// not be read; never resent.
    SentUnconfirmed,
    Failed,
    Dropped,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Sent => "sent",
            Status::SentUnconfirmed => "sent_unconfirmed",
            Status::Failed => "failed",
            Status::Dropped => "dropped",
        }
    }
}

/// One alert waiting for delivery, shared by every chat's queue.
#[derive(Debug)]
pub(crate) struct Queued {
    pub alert_id: String,
    pub alert: Alert,
    /// When the hot thread decided the alert.
    pub decided: Instant,
}

/// The per-chat queues; index `i` everywhere is the chat's position in
/// `telegram.chat_ids`.
#[derive(Debug)]
pub(crate) struct Inbox {
    pub queues: Vec<VecDeque<Arc<Queued>>>,
    /// Current ids (a migrated group has its new id here).
    pub chat_ids: Vec<ChatId>,
    /// Set by shutdown: deliver until then.
    pub closing: Option<Instant>,
}

/// Called with every (alert, chat) outcome the sink journals, right after
/// its journal line: the dashboard shows each recent alert's delivery, the
/// history database stores the line's fields.
#[derive(Clone)]
pub struct OutcomeObserver(pub Arc<OutcomeFn>);

/// What an [`OutcomeObserver`] calls.
pub type OutcomeFn = dyn Fn(&Outcome<'_>) + Send + Sync;

/// One (alert, chat) delivery outcome, exactly as its journal line states it.
#[derive(Clone, Copy, Debug)]
pub struct Outcome<'a> {
    pub alert_id: &'a str,
    pub chat: &'a ChatId,
    /// `sent`, `sent_unconfirmed`, `failed` or `dropped`.
    pub status: &'static str,
    pub attempts: u32,
    /// Why it was not simply sent (`None` for `sent`).
    pub error: Option<&'a str>,
}

impl std::fmt::Debug for OutcomeObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutcomeObserver")
    }
}

/// State shared by the handle and the thread.
#[derive(Debug)]
pub(crate) struct Shared {
    pub inbox: Mutex<Inbox>,
    pub journal: Arc<Mutex<Journal>>,
    pub counters: Arc<TelegramCounters>,
    pub max_pending: usize,
    /// Told of every outcome, once set ([`TelegramHandle::observe_outcomes`]).
    pub outcomes: std::sync::OnceLock<OutcomeObserver>,
}

impl Shared {
    /// Journals and counts one (alert, chat) outcome, and logs it unless
    /// it was a success.
    pub fn record(&self, alert_id: &str, chat: &ChatId, status: Status, attempts: u32, error: Option<&str>) {
        let counter = match status {
            Status::Sent => &self.counters.sent,
            Status::SentUnconfirmed => &self.counters.sent_unconfirmed,
            Status::Failed => &self.counters.failed,
            Status::Dropped => &self.counters.dropped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let line = delivery_line(alert_id, chat, status, attempts, error);
        if let Err(e) = lock(&self.journal).append(&line) {
            log::error!("could not journal a Telegram delivery: {e}; the line was {line}");
        }
        if let Some(observer) = self.outcomes.get() {
            let error = error.filter(|_| status != Status::Sent);
            (observer.0)(&Outcome { alert_id, chat, status: status.as_str(), attempts, error });
        }
        let why = error.unwrap_or("");
        match status {
            Status::Sent => log::debug!("Telegram: alert {alert_id} sent to chat {chat} (attempts: {attempts})"),
            Status::SentUnconfirmed => {
                log::debug!("Telegram: alert {alert_id} sent to chat {chat}, unconfirmed (attempts: {attempts})")
            }
            Status::Failed => log::error!("Telegram: alert {alert_id} to chat {chat} failed: {why}"),
            Status::Dropped => log::warn!("Telegram: alert {alert_id} to chat {chat} dropped: {why}"),
        }
    }
}

/// `{"type":"delivery","alert_id":…,"sink":"telegram","chat_id":…,"status":…,"attempts":N[,"error":…]}`
fn delivery_line(alert_id: &str, chat: &ChatId, status: Status, attempts: u32, error: Option<&str>) -> String {
    let mut s = String::with_capacity(160);
    s.push_str("{\"type\":\"delivery\",\"alert_id\":");
    crate::sanitize::json_str(&mut s, alert_id);
    s.push_str(",\"sink\":\"telegram\",\"chat_id\":");
    chat.write_json(&mut s);
    s.push_str(",\"status\":\"");
    s.push_str(status.as_str());
    s.push_str("\",\"attempts\":");
    s.push_str(&attempts.to_string());
    if let (Some(e), false) = (error, status == Status::Sent) {
        s.push_str(",\"error\":");
        crate::sanitize::json_str(&mut s, e);
    }
    s.push('}');
    s
}

/// Locks even after a panic elsewhere: the data stays usable, and losing
/// journal lines would be worse.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Telegram as one of the cold thread's [`crate::sinks::Sink`]s: alerts are
/// queued for the delivery thread (after the journal sink has written them),
/// and shutdown gives the thread what is left of the grace period.
pub struct TelegramDelivery {
    handle: Option<TelegramHandle>,
}

impl TelegramDelivery {
    pub fn new(handle: TelegramHandle) -> Self {
        TelegramDelivery { handle: Some(handle) }
    }
}

impl crate::sinks::Sink for TelegramDelivery {
    fn name(&self) -> &'static str {
        "telegram"
    }

    fn on_alert(&mut self, event: &crate::sinks::AlertEvent<'_>) {
        if let Some(h) = &self.handle {
            h.submit_decided(event.id.to_string(), *event.view.alert, event.decided);
        }
    }

    fn shutdown(&mut self, deadline: Instant) {
        if let Some(h) = self.handle.take() {
            let s = h.shutdown(deadline.saturating_duration_since(Instant::now()));
            log::info!(
                "TELEGRAM | stopped | sent={} sent_unconfirmed={} failed={} dropped={}",
                s.sent,
                s.sent_unconfirmed,
                s.failed,
                s.dropped
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_lines_have_exactly_the_documented_fields() {
        assert_eq!(
            delivery_line("a-1", &ChatId::Id(-100), Status::Sent, 1, None),
            r#"{"type":"delivery","alert_id":"a-1","sink":"telegram","chat_id":-100,"status":"sent","attempts":1}"#
        );
        assert_eq!(
            delivery_line("a-2", &ChatId::Username("@chan_x".into()), Status::Dropped, 0, Some("queue \"full\"")),
            r#"{"type":"delivery","alert_id":"a-2","sink":"telegram","chat_id":"@chan_x","status":"dropped","attempts":0,"error":"queue \"full\""}"#
        );
    }
}
