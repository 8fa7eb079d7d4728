//! The cold thread: drains the hand-off channel and feeds every sink.
//!
//! It polls with `try_recv` and a short sleep instead of a blocking `recv`,
//! so the hot thread's `try_send` never has to wake a parked receiver (a
//! futex syscall on the hot path). It exits when the hot side has hung up and
//! everything it sent has been handled, then gives each sink the rest of the
//! shutdown grace period to finish.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};

use crate::handoff::ColdMsg;
use crate::sinks::{AlertEvent, Catalog, Sink};

/// Sleep when the channel is empty: bounds the added alert latency while
/// keeping an idle cold thread nearly free.
const IDLE_SLEEP: Duration = Duration::from_micros(200);

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
}

/// Starts the cold thread.
pub fn spawn(rx: Receiver<ColdMsg>, config: ColdConfig) -> std::io::Result<JoinHandle<ColdReport>> {
    std::thread::Builder::new().name("cold".into()).spawn(move || run(&rx, config))
}

fn run(rx: &Receiver<ColdMsg>, mut config: ColdConfig) -> ColdReport {
    let mut report = ColdReport::default();
    let mut id = String::with_capacity(40);
    loop {
        match rx.try_recv() {
            Ok(ColdMsg::Alert(alert)) => {
                report.alerts += 1;
                id.clear();
                id.push_str(&config.run_id);
                id.push('-');
                id.push_str(&alert.seq.to_string());
                let event = AlertEvent { id: &id, view: config.catalog.view(&alert) };
                for sink in &mut config.sinks {
                    sink.on_alert(&event);
                }
            }
            Ok(ColdMsg::Metric(update)) => {
                report.metrics += 1;
                for sink in &mut config.sinks {
                    sink.on_metric(&update, &config.catalog);
                }
            }
            Err(TryRecvError::Empty) => std::thread::sleep(IDLE_SLEEP),
            Err(TryRecvError::Disconnected) => break,
        }
    }
    let deadline = Instant::now() + config.shutdown_grace;
    for sink in &mut config.sinks {
        sink.shutdown(deadline);
    }
    report
}
