//! The cold thread: takes the hot side's requests, picks the next pair to
//! fetch, waits for whatever forbids sending (a `Retry-After`, the weight
//! budget, a pair's backoff, an empty book pool) and sends one request at a
//! time, so the first snapshots of many pairs go out one after another at
//! the pace the budget allows.
//!
//! Log lines are per failure streak: the first failure of a pair says why
//! and how it will retry, its first success after failures says it
//! recovered; a 418 is logged once per ban (no request is sent during one,
//! so each 418 is a new ban).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::backoff::Backoff;
use crate::pairs::PairId;
use crate::prng::SplitMix64;
use crate::venue::binance_spot::snapshot::SnapshotBook;

use super::budget::{WeightBudget, depth_weight};
use super::http::{DepthHttp, Outcome};
use super::{FetcherConfig, NO_REQUEST, Shared, SnapshotReply};

/// One pair's standing request and failure streak.
#[derive(Debug, Default)]
struct PairState {
    /// The attempt of the request to serve next.
    want: Option<u64>,
    /// No request for this pair before then (its backoff).
    not_before: Option<Instant>,
    /// Consecutive failed requests.
    failures: u32,
}

/// How a failed request is retried.
#[derive(Debug, Clone, Copy)]
enum Retry {
    /// After the global `Retry-After` gate, which was just closed for this long.
    Gate(Duration),
    /// After the pair's backoff (5xx, network, bad body).
    Backoff,
    /// After `client_error_delay` (other 4xx).
    Slow,
}

/// What the loop does next.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Fetch(usize),
    WaitUntil(Instant),
    /// Nothing to do until a request or a recycled book arrives.
    Idle,
}

pub(super) struct Worker {
    config: FetcherConfig,
    shared: Arc<Shared>,
    http: DepthHttp,
    replies: Sender<SnapshotReply>,
    recycled: Receiver<Box<SnapshotBook>>,
    wake: Box<dyn Fn() + Send>,
    /// Books free to parse into. Boxed because each one travels to the hot
    /// side and back as a pointer, never copied.
    #[expect(clippy::vec_box, reason = "the boxes move through channels; the pool only holds them in between")]
    pool: Vec<Box<SnapshotBook>>,
    pairs: Vec<PairState>,
    budget: WeightBudget,
    backoff: Backoff,
    weight: u32,
    /// No request at all before then: a 429's or 418's `Retry-After`.
    gate: Option<Instant>,
    /// Where the round-robin search for the next pair starts.
    cursor: usize,
}

impl Worker {
    pub(super) fn new(
        config: FetcherConfig,
        shared: Arc<Shared>,
        http: DepthHttp,
        replies: Sender<SnapshotReply>,
        recycled: Receiver<Box<SnapshotBook>>,
        wake: Box<dyn Fn() + Send>,
    ) -> Self {
        Worker {
            pairs: config.symbols.iter().map(|_| PairState::default()).collect(),
            budget: WeightBudget::new(config.weight_budget, config.weight_window),
            backoff: Backoff::new(config.backoff_base, config.backoff_cap, SplitMix64::from_entropy()),
            weight: depth_weight(config.limit),
            pool: Vec::with_capacity(config.books),
            gate: None,
            cursor: 0,
            config,
            shared,
            http,
            replies,
            recycled,
            wake,
        }
    }

    /// The thread's body, until [`super::Fetcher`] stops it.
    pub(super) fn run(mut self) {
        while !self.shared.stop.load(Ordering::Relaxed) {
            self.take_requests();
            self.pool.extend(self.recycled.try_iter());
            let now = Instant::now();
            match self.next_step(now) {
                Step::Fetch(pair) => self.fetch(pair),
                Step::WaitUntil(at) => std::thread::park_timeout(at.saturating_duration_since(now)),
                Step::Idle => std::thread::park(),
            }
        }
    }

    /// Moves the hot side's newest request per pair into its state,
    /// replacing one not yet served.
    fn take_requests(&mut self) {
        for (slot, state) in self.shared.pending.iter().zip(&mut self.pairs) {
            let attempt = slot.swap(NO_REQUEST, Ordering::Acquire);
            if attempt != NO_REQUEST {
                state.want = Some(attempt);
            }
        }
    }

    /// The next pair to fetch now, or how long nothing may be sent.
    fn next_step(&mut self, now: Instant) -> Step {
        if self.pool.is_empty() {
            return Step::Idle;
        }
        let n = self.pairs.len();
        let mut ready = None;
        let mut earliest: Option<Instant> = None;
        for offset in 0..n {
            let index = (self.cursor + offset) % n;
            let Some(state) = self.pairs.get(index) else { continue };
            if state.want.is_none() {
                continue;
            }
            match state.not_before {
                Some(at) if at > now => earliest = Some(earliest.map_or(at, |e| e.min(at))),
                _ => {
                    ready = Some(index);
                    break;
                }
            }
        }
        let first = match (ready, earliest) {
            (Some(_), _) => now,
            (None, Some(at)) => at,
            (None, None) => return Step::Idle,
        };
        let at = first.max(self.gate.unwrap_or(now)).max(self.budget.ready_at(self.weight, now));
        match ready {
            Some(index) if at <= now => Step::Fetch(index),
            _ => Step::WaitUntil(at),
        }
    }

    /// One request for pair `index`, and what follows from its outcome.
    fn fetch(&mut self, index: usize) {
        let (Some(mut book), Some(state)) = (self.pool.pop(), self.pairs.get(index)) else {
            return;
        };
        let Some(attempt) = state.want else {
            self.pool.push(book);
            return;
        };
        self.cursor = index + 1;
        let counters = &self.shared.counters;
        self.budget.spend(self.weight, Instant::now());
        counters.requests.fetch_add(1, Ordering::Relaxed);
        counters.weight_spent.fetch_add(u64::from(self.weight), Ordering::Relaxed);
        let symbol = self.config.symbols.get(index).map_or("?", String::as_str);
        let answer = self.http.fetch(symbol, &mut book);
        let now = Instant::now();
        if let Some(used) = answer.used_weight_1m {
            self.budget.observe_server_count(used, now);
            counters.server_weight_1m.store(u64::from(used), Ordering::Relaxed);
        }
        if answer.outcome == Outcome::Ok {
            self.deliver(index, attempt, book);
        } else {
            self.pool.push(book);
            self.failed(index, answer.outcome, now);
        }
    }

    fn deliver(&mut self, index: usize, attempt: u64, book: Box<SnapshotBook>) {
        let symbol = self.config.symbols.get(index).map_or("?", String::as_str);
        if let Some(state) = self.pairs.get_mut(index) {
            if state.failures > 0 {
                log::info!("{symbol}: depth snapshot fetched again after {} failed requests", state.failures);
            }
            state.failures = 0;
            state.not_before = None;
            if state.want == Some(attempt) {
                state.want = None;
            }
        }
        let pair = PairId(u16::try_from(index).unwrap_or(u16::MAX));
        match self.replies.try_send(SnapshotReply { pair, attempt, book }) {
            Ok(()) => {
                self.shared.counters.ok.fetch_add(1, Ordering::Relaxed);
                (self.wake)();
            }
            // Full cannot happen (the channel holds the whole pool);
            // disconnected means the hot side is gone.
            Err(TrySendError::Full(reply) | TrySendError::Disconnected(reply)) => self.pool.push(reply.book),
        }
    }

    /// Counts a failure, schedules the retry and logs the streak's start.
    fn failed(&mut self, index: usize, outcome: Outcome, now: Instant) {
        let shared = Arc::clone(&self.shared);
        let c = &shared.counters;
        let (counter, reason, retry) = match outcome {
            Outcome::Ok => return,
            Outcome::RateLimited(retry_after) => {
                let wait = self.close_gate(retry_after, now);
                (&c.rate_limited, "HTTP 429 (request rate limit)".to_owned(), Retry::Gate(wait))
            }
            Outcome::Banned(retry_after) => {
                let wait = self.close_gate(retry_after, now);
                log::warn!(
                    "Binance answered HTTP 418: this IP is banned for sending requests after 429s; \
                     no snapshot request for {} s (Retry-After), for any pair",
                    wait.as_secs()
                );
                (&c.banned, String::new(), Retry::Gate(wait))
            }
            Outcome::ServerError(status) => {
                (&c.server_errors, format!("HTTP {status} (Binance's side)"), Retry::Backoff)
            }
            Outcome::Network(detail) => {
                (&c.network_errors, format!("no answer from {}: {detail}", self.config.rest_url), Retry::Backoff)
            }
            Outcome::BadBody(kind) => {
                (&c.bad_bodies, format!("the body is not a usable snapshot ({kind})"), Retry::Backoff)
            }
            Outcome::ClientError { status, body } => (
                &c.client_errors,
                format!("refused with HTTP {status}: {body}; check the symbol and binance.rest_url"),
                Retry::Slow,
            ),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let Some(state) = self.pairs.get_mut(index) else { return };
        state.failures = state.failures.saturating_add(1);
        let failures = state.failures;
        let (pause, how) = match retry {
            Retry::Gate(wait) => (None, format!("no request for {} s (Retry-After)", wait.as_secs())),
            Retry::Backoff => (Some(now + self.backoff.delay(failures - 1)), "retrying with backoff".to_owned()),
            Retry::Slow => {
                let wait = self.config.client_error_delay;
                (Some(now + wait), format!("retrying every {} s", wait.as_secs()))
            }
        };
        state.not_before = pause;
        // A ban has its own line, once per ban.
        if failures == 1 && !reason.is_empty() {
            let symbol = self.config.symbols.get(index).map_or("?", String::as_str);
            log::warn!("{symbol}: depth snapshot request failed: {reason}; {how} (logged once until it succeeds)");
        }
    }

    /// Forbids every request for `retry_after` (capped), from `now`.
    fn close_gate(&mut self, retry_after: Option<Duration>, now: Instant) -> Duration {
        let asked = retry_after.unwrap_or(self.config.default_retry_after);
        let wait = asked.min(self.config.max_retry_after);
        if wait < asked {
            log::warn!(
                "Binance asked to wait {} s before the next request; waiting {} s, the longest ban Binance imposes",
                asked.as_secs(),
                wait.as_secs()
            );
        }
        let until = now + wait;
        self.gate = Some(self.gate.map_or(until, |g| g.max(until)));
        wait
    }
}
