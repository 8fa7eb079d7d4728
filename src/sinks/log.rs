//! The log sink: TRIGGER and METRIC lines in the seed tracker's style.

use crate::alert::MetricUpdate;

use super::{AlertEvent, Catalog, Sink};

/// Writes alerts (and metric updates, when enabled) to the log.
#[derive(Debug, Default)]
pub struct LogSink {
    /// `metrics.log_metrics`: metric updates also flow when only the
    /// history wants them, and then they are not logged.
    pub metrics: bool,
}

impl Sink for LogSink {
    fn name(&self) -> &'static str {
        "log"
    }

    fn on_alert(&mut self, event: &AlertEvent<'_>) {
        log::info!("{} | alert_id={}", event.view.log_line(), event.id);
    }

    fn on_metric(&mut self, update: &MetricUpdate, catalog: &Catalog) {
        if self.metrics {
            log::info!("{}", metric_line(update, catalog));
        }
    }
}

/// `METRIC | pair=SOLUSDT | imbalance_ratio=0.285928 | bid_vol=762596 ask_vol=423467.34`
pub fn metric_line(update: &MetricUpdate, catalog: &Catalog) -> String {
    let imb = &update.imbalance;
    format!(
        "METRIC | pair={} | imbalance_ratio={:.6} | bid_vol={} ask_vol={}",
        catalog.symbol(update.pair),
        imb.ratio.value(),
        imb.bid,
        imb.ask
    )
}
