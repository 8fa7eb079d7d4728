//! Shared stand-ins for end-to-end tests. Each test binary includes this
//! with `mod support;` and uses a different part of it, hence the allow.
#![allow(dead_code)]

pub mod history;
pub mod live;
pub mod mock_bot_api;
pub mod postgres;
pub mod trace_log;
