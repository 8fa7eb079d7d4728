//! Exchanges: URL building and frame parsing per venue. A second stream type
//! or venue is a sibling module, not a flag inside the first.

pub mod binance;
