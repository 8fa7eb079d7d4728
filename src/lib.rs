//! imbalance-monitor: watches Binance Spot order books and alerts when buyers
//! or sellers dominate.
//!
//! Pipeline, one module per stage: `feed` → [`exchange`] (parse) → [`book`] →
//! [`metrics`] → [`triggers`] → hand-off → [`sinks`]; [`engine`] strings the
//! deterministic middle together for live runs and replays alike.

pub mod alert;
pub mod book;
pub mod cli;
pub mod config;
pub mod engine;
pub mod exchange;
pub mod metrics;
pub mod recording;
pub mod replay;
pub mod simulator;
pub mod sinks;
pub mod triggers;
pub mod units;
