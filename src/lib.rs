//! imbalance-monitor: watches Binance Spot order books and alerts when buyers
//! or sellers dominate.
//!
//! Pipeline, one module per stage: [`feed`] (transport) → [`hot`] (composes
//! the hot side) → [`venue`] (decode, on [`scan`]) → [`book`] (events and
//! sequencing) → [`metrics`] (on [`exact`]) → [`triggers`] → [`handoff`] →
//! [`cold`] → [`sinks`]; [`engine`] strings the deterministic middle together
//! for live runs and replays alike. [`pairs`], [`reject`] and [`units`] are
//! the leaves every stage may use.

pub mod affinity;
pub mod alert;
pub mod append_file;
pub mod backoff;
pub mod book;
pub mod chart;
pub mod cli;
pub mod cold;
pub mod config;
pub mod demo;
pub mod engine;
pub mod evaluate;
pub mod exact;
pub mod feed;
pub mod gauges;
pub mod handoff;
pub mod history;
pub mod hot;
pub mod logging;
pub mod metrics;
pub mod metrics_http;
pub mod pairs;
pub mod plot;
pub mod prng;
pub mod recorder;
pub mod recording;
pub mod reject;
pub mod replay;
pub mod run;
pub mod sanitize;
pub mod sbe;
pub mod scan;
pub mod simulator;
pub mod sinks;
pub mod snapshot;
pub mod stats;
pub mod triggers;
pub mod units;
pub mod venue;
pub mod watch;
