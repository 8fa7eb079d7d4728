//! Telegram delivery (cold side): alerts become Telegram messages, sent by
//! a thread of their own so neither the hot thread nor the cold logging
//! thread ever waits on HTTP.
//!
//! * `crate::config::telegram` — the `[telegram]` section ([`RawTelegram`],
//!   sample in `telegram_sample.toml` beside it) and its environment
//!   overrides (`TELEGRAM_BOT_TOKEN`,
//!   `TELEGRAM_CHAT_ID`), validated into [`TelegramConfig`];
//! * `client` — the Bot API over one blocking ureq agent;
//! * `message` — the text people read (HTML with a plain-text fallback);
//! * `ratelimit`, `retry` — Telegram's limits and the failure table;
//! * `sink`, `worker` — [`TelegramSink::spawn`] and the delivery thread.
//!
//! Duplicates: when a request times out after it was sent, Telegram may have
//! posted the message, but there is no way to ask. The sink resends (the
//! alert matters more than a duplicate) and logs a warning saying Telegram
//! may show it twice. The other way round, a 200 whose body cannot be read
//! is never resent: Telegram answers 200 only after posting, so the alert is
//! journaled `sent_unconfirmed`.
//!
//! The bot token is in the URL path of every request. It never appears in
//! this module's errors, logs or journal lines. ureq itself logs request
//! paths and bytes at TRACE level: the app's logger caps ureq's targets and
//! redacts the token from every record ([`crate::logging`]); a logger of
//! an embedding application must do the same (see
//! [`crate::logging::HTTP_CLIENT_CAPS`]).

mod client;
mod message;
mod ratelimit;
mod retry;
mod sink;
mod worker;

pub use crate::config::telegram::{
    BotToken, ChatId, ConfigProblem, DEFAULT_API_BASE, ENV_BOT_TOKEN, ENV_CHAT_ID, ParseMode, RawChatId, RawSecret,
    RawTelegram, TelegramConfig, validate,
};
pub use client::{ApiError, BotInfo, TelegramError, TransportKind};
pub use sink::{
    DeliverySummary, Outcome, OutcomeObserver, TelegramCounters, TelegramDelivery, TelegramHandle, TelegramSink,
};

use client::Client;

/// Checks the token with Telegram (`getMe`). The app calls it at start-up,
/// off the hot path, to log the bot's @username or a clear error before the
/// first alert needs it.
pub fn get_me(cfg: &TelegramConfig) -> Result<BotInfo, TelegramError> {
    Client::new(cfg)?.get_me().result
}

/// Each chat with its test message's result.
pub type TestResults = Vec<(ChatId, Result<(), TelegramError>)>;

/// Sends one test message to every configured chat (for
/// `imbalance-monitor telegram-test`). The outer error means nothing could
/// be tried (no token or chats, or `getMe` failed); otherwise each chat has
/// its own result. One attempt per chat: a failure is reported, not retried.
pub fn send_test_message(cfg: &TelegramConfig) -> Result<TestResults, TelegramError> {
    if cfg.chat_ids.is_empty() {
        return Err(TelegramError::NotConfigured(
            "no chats to send to; set telegram.chat_ids or export TELEGRAM_CHAT_ID",
        ));
    }
    let client = Client::new(cfg)?;
    let bot = client.get_me().result?;
    let name = bot.username.as_ref().map_or_else(|| bot.first_name.clone(), |u| format!("@{u}"));
    let text = message::test_message(&name);
    let html = cfg.parse_mode == ParseMode::Html;
    let body = if html { &text.html } else { &text.plain };
    Ok(cfg.chat_ids.iter().map(|chat| (chat.clone(), client.send_message(chat, body, html, None).result)).collect())
}
