//! The cold thread: drains the hand-off channel and feeds every sink.
//!
//! It polls with `try_recv` and sleeps ([`IdleBackoff`]) instead of a
//! blocking `recv`, so the hot thread's `try_send` never has to wake a parked
//! receiver (a futex syscall on the hot path). It exits when the hot side has
//! hung up and everything it sent has been handled, then gives each sink the
//! rest of the shutdown grace period to finish.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};

use crate::handoff::ColdMsg;
use crate::sinks::{AlertEvent, Catalog, Delivery, Sink};
use crate::stats::report::StatsReport;
use crate::stats::{Stage, StatsReceiver, nanos};

/// How the cold thread waits while there is nothing to do: sleeps that
/// double from [`IdleBackoff::MIN_SLEEP`] to [`IdleBackoff::MAX_SLEEP`], back
/// to the shortest as soon as anything arrives.
///
/// Why this and not a wake-up: blocking in `recv` (or parking behind a
/// "sleeping" flag) means the hot thread must wake the cold one — a futex
/// syscall on the hot thread for every alert that finds it asleep, which is
/// nearly every alert (~9 µs measured, against ~70 ns for a `try_send`), and
/// the hot thread makes no syscalls but socket I/O and the poll. With a
/// backoff the hot side's hand-off is a `try_send` and nothing else, exactly
/// as before. Each wake-up of an idle cold thread costs ~10 µs of CPU on the
/// reference VM: the fixed 200 µs poll cost 2.4–3.6 % of a core while idle,
/// this costs one wake-up per `MAX_SLEEP` (0.05–0.1 %, see the README).
///
/// What it costs instead, the worst case added to an alert's `queue`
/// latency: `MAX_SLEEP` (20 ms) plus the kernel's timer slack (50 µs by
/// default), for an alert that arrives just after an idle cold thread went to
/// sleep (10 ms on average for an alert after a quiet spell). Nothing
/// downstream notices: Telegram paces a chat at one message a second and a
/// request takes ~100 ms or more; the journal and the log are not read in
/// real time. Traffic keeps the thread awake: each message resets the
/// backoff, so messages 50 µs or less apart are picked up within `MIN_SLEEP`.
/// 20 ms of the fastest feed (~360k frames/s, an alert on every frame) is
/// ~7,200 alerts: the 4,096-slot channel and the hot side's 4,096-slot
/// overflow ring hold them, so even that burst after a quiet spell loses
/// nothing.
#[derive(Debug)]
pub struct IdleBackoff {
    next: Duration,
}

impl IdleBackoff {
    /// The first sleep after work.
    pub const MIN_SLEEP: Duration = Duration::from_micros(50);
    /// The longest sleep: the worst case added to an alert's latency.
    pub const MAX_SLEEP: Duration = Duration::from_millis(20);

    pub fn new() -> Self {
        IdleBackoff { next: Self::MIN_SLEEP }
    }

    /// Something arrived: the next idle sleep is the shortest again.
    pub fn reset(&mut self) {
        self.next = Self::MIN_SLEEP;
    }

    /// Nothing arrived: sleeps, twice as long as last time (up to the cap).
    pub fn wait(&mut self) {
        std::thread::sleep(self.next);
        self.next = self.next.saturating_mul(2).min(Self::MAX_SLEEP);
    }

    /// The sleep the next [`IdleBackoff::wait`] takes.
    pub fn next_sleep(&self) -> Duration {
        self.next
    }
}

impl Default for IdleBackoff {
    fn default() -> Self {
        IdleBackoff::new()
    }
}

/// What the cold thread did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ColdReport {
    pub alerts: u64,
    pub metrics: u64,
}

/// Cold thread settings.
pub struct ColdConfig {
    pub catalog: Arc<Catalog>,
    /// Sinks in delivery order: the journal first, so an alert is on disk
    /// before any network attempt.
    pub sinks: Vec<Box<dyn Sink>>,
    /// Prefix of alert ids: unique per run (start time in unix ms).
    pub run_id: String,
    /// How long sinks may take to finish after the feed stops.
    pub shutdown_grace: Duration,
    /// Hot-side statistics and their cold-side report, when measured.
    pub stats: Option<(StatsReceiver, StatsReport)>,
    /// Telegram request outcomes, for the `telegram` and
    /// `decision_to_delivered` latencies.
    pub deliveries: Option<Receiver<Delivery>>,
}

/// Starts the cold thread.
pub fn spawn(rx: Receiver<ColdMsg>, config: ColdConfig) -> std::io::Result<JoinHandle<ColdReport>> {
    std::thread::Builder::new().name("cold".into()).spawn(move || run(&rx, config))
}

fn run(rx: &Receiver<ColdMsg>, mut config: ColdConfig) -> ColdReport {
    let mut report = ColdReport::default();
    let mut id = String::with_capacity(40);
    let mut stats = config.stats.take();
    let mut backoff = IdleBackoff::new();
    loop {
        let mut idle = true;
        let hot_gone = match rx.try_recv() {
            Ok(msg) => {
                idle = false;
                handle(msg, &mut config, &mut report, &mut id, stats.as_mut().map(|(_, r)| r));
                false
            }
            Err(TryRecvError::Empty) => false,
            Err(TryRecvError::Disconnected) => true,
        };
        if let Some((receiver, stats_report)) = &mut stats {
            if let Some(deliveries) = &config.deliveries {
                record_deliveries(deliveries, stats_report);
            }
            idle &= !absorb_stats(receiver, stats_report, &mut config.sinks);
            if let Some(line) = stats_report.tick(Instant::now()) {
                log::info!("{line}");
            }
        }
        if hot_gone {
            break;
        }
        if idle {
            backoff.wait();
        } else {
            backoff.reset();
        }
    }
    // The hot thread published its last buffer before hanging up.
    if let Some((receiver, stats_report)) = &mut stats {
        absorb_stats(receiver, stats_report, &mut config.sinks);
    }
    let deadline = Instant::now() + config.shutdown_grace;
    for sink in &mut config.sinks {
        sink.shutdown(deadline);
    }
    if let Some((_, stats_report)) = &mut stats {
        if let Some(deliveries) = &config.deliveries {
            record_deliveries(deliveries, stats_report);
        }
        for line in stats_report.summary() {
            log::info!("{line}");
        }
    }
    report
}

fn handle(
    msg: ColdMsg,
    config: &mut ColdConfig,
    report: &mut ColdReport,
    id: &mut String,
    stats: Option<&mut StatsReport>,
) {
    match msg {
        ColdMsg::Alert(alert, decided) => {
            if let Some(s) = stats {
                s.record(Stage::Queue, nanos(decided.elapsed()));
            }
            report.alerts += 1;
            id.clear();
            id.push_str(&config.run_id);
            id.push('-');
            id.push_str(&alert.seq.to_string());
            let event = AlertEvent { id, view: config.catalog.view(&alert), decided };
            for sink in &mut config.sinks {
                sink.on_alert(&event);
            }
        }
        ColdMsg::Metric(update) => {
            report.metrics += 1;
            for sink in &mut config.sinks {
                sink.on_metric(&update, &config.catalog);
            }
        }
    }
}

/// Telegram round trips and decision → delivered latencies.
fn record_deliveries(deliveries: &Receiver<Delivery>, report: &mut StatsReport) {
    for d in deliveries.try_iter() {
        report.record(Stage::Telegram, nanos(d.round_trip));
        for decided in d.decided {
            report.record(Stage::DecisionToDelivered, nanos(d.finished.saturating_duration_since(decided)));
        }
    }
}

/// Merges every filled hot buffer and returns it cleared; tells the sinks.
/// Returns whether anything arrived.
fn absorb_stats(receiver: &StatsReceiver, report: &mut StatsReport, sinks: &mut [Box<dyn Sink>]) -> bool {
    let mut any = false;
    while let Ok(mut buf) = receiver.filled.try_recv() {
        report.absorb(&buf);
        buf.clear();
        let _ = receiver.spares.try_send(buf);
        any = true;
    }
    if any {
        for sink in sinks.iter_mut() {
            sink.on_stats(report);
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_sleeps_double_up_to_the_cap_and_work_starts_them_over() {
        let mut b = IdleBackoff::new();
        let mut sleeps = Vec::new();
        for _ in 0..12 {
            sleeps.push(b.next_sleep().as_micros());
            b.wait();
        }
        assert_eq!(sleeps, [50, 100, 200, 400, 800, 1600, 3200, 6400, 12_800, 20_000, 20_000, 20_000]);
        b.reset();
        assert_eq!(b.next_sleep(), IdleBackoff::MIN_SLEEP);
    }
}
