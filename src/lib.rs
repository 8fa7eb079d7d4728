//! imbalance-monitor: watches Binance Spot order books and alerts when buyers
//! or sellers dominate.
//!
//! Pipeline, one module per stage: `feed` → [`exchange`] (parse) → [`book`] →
//! [`metrics`] → [`triggers`] → hand-off → [`sinks`]; [`engine`] strings the
//! deterministic middle together for live runs and replays alike.

pub mod affinity;
pub mod alert;
pub mod book;
pub mod cli;
pub mod cold;
pub mod config;
pub mod demo;
pub mod engine;
pub mod exchange;
pub mod feed;
pub mod handoff;
pub mod history;
pub mod logging;
pub mod metrics;
pub mod metrics_http;
pub mod recorder;
pub mod recording;
pub mod replay;
pub mod run;
pub mod sanitize;
pub mod simulator;
pub mod sinks;
pub mod stats;
pub mod triggers;
pub mod units;
