//! The live terminal dashboard (`watch`, `run --tui`): one row per pair
//! with the imbalance as a bar between −1 and +1, the thresholds marked,
//! the book's touch and volumes, frame rate and staleness, the ratio's
//! recent history, the latest alerts with their Telegram outcome, and the
//! per-stage latency.
//!
//! Data flows one way and never through the hot thread: the hot side keeps
//! its relaxed atomic gauges, the cold side's [`hub`] collects the rest and
//! builds a [`state::DashboardState`]; the metrics endpoint serves it on
//! `/state` (fetched by [`client`]) and `run --tui` reads it in-process.
//! [`render`] draws it, [`input`] maps keys, [`terminal`] owns the screen.

pub mod client;
pub mod hub;
pub mod input;
pub mod render;
pub mod state;
pub mod terminal;
