//! The delivery thread: takes alerts from the per-chat queues, coalesces
//! what piled up into one message per chat, respects the rate limits, sends,
//! applies the failure table ([`super::retry`]) and journals every outcome.
//!
//! Requests are blocking and made one at a time: a hanging Telegram delays
//! other chats by at most `telegram.timeout_ms`, and never the threads that
//! submit alerts. A chat's next message is formed only when the chat may be
//! sent to, so whatever arrived meanwhile goes out together, in order.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::client::{Client, TelegramError, TransportKind};
use super::message::{self, Text};
use super::ratelimit::RateLimiter;
use super::retry::{self, Next};
use super::sink::{Queued, Shared, Status, lock};
use crate::backoff::Backoff;
use crate::config::telegram::{ChatId, MAX_RETRY_AFTER_SEC, ParseMode, TelegramConfig};
use crate::sinks::{AlertView, Catalog, Delivery};

/// Most alerts considered for one coalesced message; more than fit anyway.
const MAX_BATCH: usize = 100;

/// Panics within [`PANIC_WINDOW`] after which Telegram is turned off.
const MAX_PANICS: usize = 3;
const PANIC_WINDOW: Duration = Duration::from_secs(600);

/// Whether the delivery loop goes on.
enum Flow {
    Continue,
    Stop,
}

/// One message for one chat, from its first attempt until it is sent or
/// given up on. Its text is fixed, so a resend after an ambiguous timeout
/// repeats exactly what Telegram may already show.
#[derive(Debug)]
struct Batch {
    items: Vec<Arc<Queued>>,
    text: Text,
    plain: bool,
    /// Requests made for it.
    attempts: u32,
    /// Transient failures (429, 5xx, network); `max_attempts` bounds these.
    failures: u32,
    not_before: Instant,
    migrated: bool,
    /// A request went out and no answer came back.
    maybe_delivered: bool,
}

#[derive(Debug)]
struct Chat {
    id: ChatId,
    /// Why the bot may no longer post here (403).
    off: Option<String>,
    batch: Option<Batch>,
}

/// The thread's state; [`Worker::run`] consumes it.
pub(crate) struct Worker {
    client: Result<Client, String>,
    catalog: Arc<Catalog>,
    shared: Arc<Shared>,
    wake: Receiver<()>,
    events: Option<Sender<Delivery>>,
    chats: Vec<Chat>,
    limiter: RateLimiter,
    backoff: Backoff,
    /// Why Telegram as a whole is off (disabled, no token, token rejected).
    telegram_off: Option<String>,
    html: bool,
    max_attempts: u32,
    max_retry_after: Duration,
    /// When recent panics happened (see [`Worker::recover`]).
    panics: Vec<Instant>,
}

impl Worker {
    /// `client` is the reason Telegram is off when it could not be built.
    pub fn new(
        config: &TelegramConfig,
        client: Result<Client, String>,
        catalog: Arc<Catalog>,
        shared: Arc<Shared>,
        wake: Receiver<()>,
        events: Option<Sender<Delivery>>,
    ) -> Worker {
        let telegram_off = client.as_ref().err().cloned();
        Worker {
            client,
            catalog,
            shared,
            wake,
            events,
            chats: config.chat_ids.iter().map(|id| Chat { id: id.clone(), off: None, batch: None }).collect(),
            limiter: RateLimiter::new(config.chat_ids.iter().map(ChatId::is_group)),
            backoff: retry::backoff(),
            telegram_off,
            html: config.parse_mode == ParseMode::Html,
            max_attempts: config.max_attempts,
            max_retry_after: config.max_retry_after.min(Duration::from_secs(MAX_RETRY_AFTER_SEC)),
            panics: Vec::new(),
        }
    }

    /// Delivers until shutdown's deadline passes or, once shutdown began,
    /// nothing is left; then journals what remains as dropped. A dropped
    /// handle counts as a shutdown with no grace.
    ///
    /// A panic (a bug) does not end the thread silently: it is caught, logged
    /// at once, the message being sent is journaled as failed and delivery
    /// goes on with the next one; see [`Worker::recover`]. Only a panic that
    /// recovery cannot handle, or one after Telegram was turned off for
    /// panicking, ends the thread (with that panic): then the handle
    /// journals every alert it is given, and every alert left, as failed.
    pub fn run(mut self) {
        loop {
            match std::panic::catch_unwind(AssertUnwindSafe(|| self.step())) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop) => break,
                Err(payload) => {
                    // Panics after Telegram was turned off for panicking, or
                    // while recovering, end the thread: looping could only
                    // repeat them. The handle journals what is left.
                    let off_already = self.panics.len() >= MAX_PANICS;
                    let recovered = std::panic::catch_unwind(AssertUnwindSafe(|| self.recover(payload.as_ref())));
                    if off_already || recovered.is_err() {
                        log::error!(
                            "Telegram: the delivery thread panicked again and stops; alerts from now on are \
                             journaled as failed. This is a bug: please report it with the log."
                        );
                        std::panic::resume_unwind(payload);
                    }
                }
            }
        }
        self.settle_disabled();
        self.drop_remaining();
    }

    /// One turn of the delivery loop: a request if one is due, else a wait
    /// for the next due time, a wake-up or the shutdown deadline.
    fn step(&mut self) -> Flow {
        self.settle_disabled();
        let now = Instant::now();
        let closing = lock(&self.shared.inbox).closing;
        if closing.is_some_and(|deadline| now >= deadline) {
            return Flow::Stop;
        }
        let due = self.next_due(now);
        if let Some((chat, at)) = due
            && at <= now
        {
            self.attempt(chat, closing);
            return Flow::Continue;
        }
        if closing.is_some() && due.is_none() {
            return Flow::Stop;
        }
        let wake_at = due.map(|(_, at)| at).into_iter().chain(closing).min();
        let woke = match wake_at {
            Some(at) => self.wake.recv_deadline(at),
            None => self.wake.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        if woke == Err(RecvTimeoutError::Disconnected) {
            let mut inbox = lock(&self.shared.inbox);
            inbox.closing = Some(inbox.closing.unwrap_or(now).min(now));
        }
        Flow::Continue
    }

    /// After a panic in [`Worker::step`]: logs it at once, journals every
    /// message in progress as failed (it may or may not have reached
    /// Telegram; resending could repeat both the message and the panic), and
    /// lets the loop go on, so queued and later alerts are still delivered.
    /// Restarting beats stopping the process: every alert is already in the
    /// log and the journal, and a restart would lose the triggers' state and
    /// the feed. But a bug that repeats would fail every message in turn:
    /// after [`MAX_PANICS`] within [`PANIC_WINDOW`] Telegram is turned off
    /// until restart, loudly, like a rejected token.
    fn recover(&mut self, payload: &(dyn Any + Send)) {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        let what = match &self.client {
            Ok(client) => client.token().redact(&what),
            Err(_) => what,
        };
        let what = crate::sanitize::escape_controls(&what).into_owned();
        let now = Instant::now();
        self.panics.retain(|at| now.duration_since(*at) < PANIC_WINDOW);
        self.panics.push(now);
        let reason = format!(
            "the Telegram thread failed while sending it (a bug: {what}); it may or may not have reached Telegram"
        );
        for i in 0..self.chats.len() {
            self.finish(i, Status::Failed, Some(&reason));
        }
        if self.panics.len() >= MAX_PANICS {
            log::error!(
                "Telegram: the delivery thread panicked {} times within {} s ({what}); Telegram alerts are off until \
                 restart; alerts are still logged and journaled. This is a bug: please report it with the log.",
                self.panics.len(),
                PANIC_WINDOW.as_secs()
            );
            self.telegram_off = Some(format!("not sent, Telegram is off until restart after repeated panics: {what}"));
        } else {
            log::error!(
                "Telegram: the delivery thread panicked ({what}); the message it was sending is journaled as failed \
                 and delivery continues. This is a bug: please report it with the log."
            );
        }
    }

    /// The chat to serve next and when: the earliest among chats with a
    /// message in progress or alerts waiting.
    fn next_due(&self, now: Instant) -> Option<(usize, Instant)> {
        if self.telegram_off.is_some() {
            return None;
        }
        let inbox = lock(&self.shared.inbox);
        (self.chats.iter().enumerate())
            .filter(|(_, chat)| chat.off.is_none())
            .filter_map(|(i, chat)| {
                let ready = self.limiter.next_allowed(i, now);
                match &chat.batch {
                    Some(b) => Some((i, b.not_before.max(ready))),
                    None => (!inbox.queues[i].is_empty()).then_some((i, ready)),
                }
            })
            .min_by_key(|&(_, at)| at)
    }

    /// One request for chat `i`, forming its next message first if needed.
    fn attempt(&mut self, i: usize, closing: Option<Instant>) {
        let limit = closing.map(|deadline| deadline.saturating_duration_since(Instant::now()));
        if limit == Some(Duration::ZERO) {
            return;
        }
        let Ok(client) = &self.client else { return };
        if self.chats[i].batch.is_none() {
            self.chats[i].batch = self.form_batch(i);
        }
        let chat = &mut self.chats[i];
        let Some(batch) = chat.batch.as_mut() else { return };
        let text = if batch.plain { &batch.text.plain } else { &batch.text.html };
        let exchange = client.send_message(&chat.id, text, !batch.plain, limit);
        let done = Instant::now();
        batch.attempts += 1;
        self.shared.counters.count_response(exchange.status);
        let next = retry::next(&exchange.result, self.max_retry_after);
        if let Some(events) = &self.events {
            let delivered = matches!(next, Next::Sent | Next::SentUnconfirmed);
            let _ = events.try_send(Delivery {
                recipient: chat.id.to_string(),
                round_trip: exchange.round_trip,
                status: exchange.status,
                delivered,
                decided: if delivered { batch.items.iter().map(|q| q.decided).collect() } else { Vec::new() },
                finished: done,
            });
        }
        let no_answer = matches!(exchange.result, Err(TelegramError::Transport { kind: TransportKind::NoAnswer, .. }));
        // Every request counts against the limits, whatever the answer: what
        // may have been posted must, and a failing Telegram is not helped by
        // faster resends. So requests to a chat are never closer than the
        // pacing interval, after a 200, a 5xx, a 400 or an answer we could
        // not read alike.
        self.limiter.record(i, done);
        let unreadable = match &exchange.result {
            Err(TelegramError::UnexpectedAnswer { api_base, detail, .. }) => format!("{detail}, from {api_base}"),
            _ => String::new(),
        };
        let error = exchange.result.err().map(|e| client.token().redact(&e.to_string())).unwrap_or_default();
        batch.maybe_delivered |= no_answer;
        match next {
            Next::Sent => self.finish(i, Status::Sent, None),
            Next::SentUnconfirmed => {
                let why = format!(
                    "Telegram answered HTTP 200, so it posted the message, but its answer was unusable \
                     ({unreadable}); it is not resent"
                );
                log::warn!("Telegram: chat {}: {why}", chat.id);
                self.finish(i, Status::SentUnconfirmed, Some(&why));
            }
            Next::RetryAfter(wait) => self.retry_later(i, retry::after(done, wait), &error),
            Next::Retry => {
                if no_answer {
                    log::warn!(
                        "Telegram: no answer for a message to chat {}; resending it, so Telegram may show it twice",
                        chat.id
                    );
                }
                let failures = batch.failures + 1;
                let backoff = self.backoff.delay(failures.saturating_sub(1));
                self.retry_later(i, retry::after(done, backoff), &error);
            }
            Next::PlainText if !batch.plain => {
                log::warn!(
                    "Telegram: chat {} rejected the message markup ({error}); resending it as plain text",
                    chat.id
                );
                batch.plain = true;
                batch.not_before = done;
                self.shared.counters.retries.fetch_add(1, Ordering::Relaxed);
            }
            Next::Migrate(to) if !batch.migrated => {
                log::warn!(
                    "Telegram: group {} was upgraded to supergroup {to}; sending there from now on. Update the \
                     config: replace {} with {to} in telegram.chat_ids (or TELEGRAM_CHAT_ID)",
                    chat.id,
                    chat.id
                );
                chat.id = ChatId::Id(to);
                batch.migrated = true;
                batch.not_before = done;
                lock(&self.shared.inbox).chat_ids[i] = ChatId::Id(to);
                self.shared.counters.retries.fetch_add(1, Ordering::Relaxed);
            }
            Next::DisableChat => {
                log::error!(
                    "Telegram: disabling chat {} until restart: {error}. Its alerts are journaled as failed.",
                    chat.id
                );
                chat.off = Some(format!("not sent, the chat is disabled until restart: {error}"));
                self.finish(i, Status::Failed, Some(&error));
            }
            Next::DisableTelegram => {
                log::error!(
                    "Telegram rejected the bot token: Telegram alerts are off until restart; alerts are still \
                     logged and journaled. {error}"
                );
                self.telegram_off = Some(format!("not sent, Telegram is off until restart: {error}"));
                self.finish(i, Status::Failed, Some(&error));
            }
            Next::PlainText | Next::Migrate(_) | Next::Fail => self.finish(i, Status::Failed, Some(&error)),
        }
    }

    /// Takes the alerts waiting for chat `i` that fit into one message.
    fn form_batch(&self, i: usize) -> Option<Batch> {
        let (peek, waiting): (Vec<Arc<Queued>>, usize) = {
            let inbox = lock(&self.shared.inbox);
            let queue = &inbox.queues[i];
            (queue.iter().take(MAX_BATCH).cloned().collect(), queue.len())
        };
        let views: Vec<AlertView<'_>> = peek.iter().map(|q| self.catalog.view(&q.alert)).collect();
        let (text, n) = match views.as_slice() {
            [] => return None,
            [one] => (message::single(one), 1),
            many => message::coalesced(many, waiting),
        };
        // Only this thread removes from queues, so the first `n` are still `peek`'s.
        let items: Vec<Arc<Queued>> = lock(&self.shared.inbox).queues[i].drain(..n).collect();
        Some(Batch {
            items,
            text,
            plain: !self.html,
            attempts: 0,
            failures: 0,
            not_before: Instant::now(),
            migrated: false,
            maybe_delivered: false,
        })
    }

    /// Schedules a resend after a transient failure, or gives up when
    /// `max_attempts` transient failures have happened.
    fn retry_later(&mut self, i: usize, at: Instant, error: &str) {
        let chat = &mut self.chats[i];
        let Some(batch) = chat.batch.as_mut() else { return };
        batch.failures += 1;
        // The pacing may hold the resend longer than the backoff: say when it really goes.
        let at = at.max(self.limiter.next_allowed(i, at));
        if batch.failures >= self.max_attempts {
            let why = format!("gave up after {} attempts: {error}", batch.attempts);
            self.finish(i, Status::Failed, Some(&why));
        } else {
            batch.not_before = at;
            self.shared.counters.retries.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "Telegram: chat {}: {error}; retrying in {:.1} s (attempt {} of {})",
                chat.id,
                at.saturating_duration_since(Instant::now()).as_secs_f64(),
                batch.failures + 1,
                self.max_attempts
            );
        }
    }

    /// Journals chat `i`'s message for each alert it carries.
    fn finish(&mut self, i: usize, status: Status, error: Option<&str>) {
        let chat = &mut self.chats[i];
        if let Some(batch) = chat.batch.take() {
            for item in &batch.items {
                self.shared.record(&item.alert_id, &chat.id, status, batch.attempts, error);
            }
        }
    }

    /// Fails whatever waits for a chat (or a Telegram) that is off.
    fn settle_disabled(&mut self) {
        for i in 0..self.chats.len() {
            let Some(reason) = self.chats[i].off.clone().or_else(|| self.telegram_off.clone()) else { continue };
            self.finish(i, Status::Failed, Some(&reason));
            let drained: Vec<Arc<Queued>> = lock(&self.shared.inbox).queues[i].drain(..).collect();
            for item in drained {
                self.shared.record(&item.alert_id, &self.chats[i].id, Status::Failed, 0, Some(&reason));
            }
        }
    }

    /// At shutdown: every message in progress and every alert still queued
    /// becomes a `dropped` line.
    fn drop_remaining(&mut self) {
        for i in 0..self.chats.len() {
            let chat = &mut self.chats[i];
            if let Some(batch) = chat.batch.take() {
                let why = if batch.maybe_delivered {
                    "shutdown: the grace period ended before delivery was confirmed; a request for it may have \
                     reached Telegram"
                } else {
                    "shutdown: the grace period ended before it could be delivered"
                };
                for item in &batch.items {
                    self.shared.record(&item.alert_id, &chat.id, Status::Dropped, batch.attempts, Some(why));
                }
            }
            let drained: Vec<Arc<Queued>> = lock(&self.shared.inbox).queues[i].drain(..).collect();
            for item in drained {
                self.shared.record(
                    &item.alert_id,
                    &chat.id,
                    Status::Dropped,
                    0,
                    Some("shutdown: the grace period ended before it could be sent"),
                );
            }
        }
    }
}
