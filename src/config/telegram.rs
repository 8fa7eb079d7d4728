//! The `[telegram]` config section: the serde shape as written
//! ([`RawTelegram`]) and the validated [`TelegramConfig`] the sink runs on.
//!
//! The bot token is a secret: it lives in [`BotToken`], whose `Debug` and
//! `Display` print `<redacted>`, and no validation message ever quotes it.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// Environment variable that overrides `telegram.bot_token` (preferred: it
/// keeps the secret out of the config file).
pub const ENV_BOT_TOKEN: &str = "TELEGRAM_BOT_TOKEN";

/// Environment variable that overrides `telegram.chat_ids` (comma-separated).
pub const ENV_CHAT_ID: &str = "TELEGRAM_CHAT_ID";

/// Largest `telegram.max_retry_after_sec`: an hour.
pub const MAX_RETRY_AFTER_SEC: u64 = 3600;

/// The Bot API endpoint used when `api_base` is not set.
pub const DEFAULT_API_BASE: &str = "https://api.telegram.org";

/// `[telegram]` exactly as written; every key is optional.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTelegram {
    pub enabled: bool,
    pub bot_token: Option<RawSecret>,
    pub chat_ids: Vec<RawChatId>,
    pub api_base: String,
    /// `"HTML"` or `"none"`.
    pub parse_mode: String,
    pub disable_notification: bool,
    /// Forum topic to post into, for supergroups with topics.
    pub message_thread_id: Option<i64>,
    /// Whole-request limit (connect, send, answer).
    pub timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub max_attempts: u32,
    pub max_retry_after_sec: u64,
    pub max_pending: usize,
}

impl Default for RawTelegram {
    fn default() -> Self {
        RawTelegram {
            enabled: false,
            bot_token: None,
            chat_ids: Vec::new(),
            api_base: DEFAULT_API_BASE.into(),
            parse_mode: "HTML".into(),
            disable_notification: false,
            message_thread_id: None,
            timeout_ms: 10_000,
            connect_timeout_ms: 3_000,
            max_attempts: 5,
            max_retry_after_sec: 60,
            max_pending: 1_000,
        }
    }
}

/// The token as written in the file, before validation. `Debug` hides it, so
/// printing a raw config cannot leak it either.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct RawSecret(pub String);

impl fmt::Debug for RawSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<&str> for RawSecret {
    fn from(s: &str) -> Self {
        RawSecret(s.to_string())
    }
}

/// A chat as written: a number (`-1001234567890`) or a string (`"@channel"`
/// or a number in quotes).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum RawChatId {
    Id(i64),
    Name(String),
}

/// Where messages go: a numeric chat id or a public `@channelusername`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ChatId {
    Id(i64),
    /// Includes the leading `@`.
    Username(String),
}

impl ChatId {
    /// Parses `-100123`, `42` or `@name` (5 to 32 letters, digits or `_`).
    pub fn parse(text: &str) -> Option<ChatId> {
        let text = text.trim();
        if let Some(name) = text.strip_prefix('@') {
            let ok = (5..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            return ok.then(|| ChatId::Username(text.to_string()));
        }
        text.parse::<i64>().ok().filter(|&id| id != 0).map(ChatId::Id)
    }

    /// Whether Telegram's group limit (20 messages a minute) applies: groups
    /// and channels have negative ids, and only channels have usernames here.
    pub fn is_group(&self) -> bool {
        match self {
            ChatId::Id(id) => *id < 0,
            ChatId::Username(_) => true,
        }
    }

    /// Appends the id as JSON: a number, or a string for `@name`.
    pub fn write_json(&self, out: &mut String) {
        match self {
            ChatId::Id(id) => out.push_str(&id.to_string()),
            ChatId::Username(name) => crate::sanitize::json_str(out, name),
        }
    }
}

/// A number, or a string for `@name`, as the Bot API expects `chat_id`.
impl serde::Serialize for ChatId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ChatId::Id(id) => s.serialize_i64(*id),
            ChatId::Username(name) => s.serialize_str(name),
        }
    }
}

impl fmt::Display for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatId::Id(id) => write!(f, "{id}"),
            ChatId::Username(name) => f.write_str(name),
        }
    }
}

/// A bot token (`123456789:AA…` from @BotFather). Printing it in any way
/// shows `<redacted>`; [`BotToken::expose_secret`] is the only way to the
/// value, and only the request URL uses it.
///
/// Creating one registers every form of it with the log writer's redactor
/// ([`crate::sanitize::register_secret`]): whatever crate logs a URL, a
/// request or a dump that holds the token, the line shows `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct BotToken(String);

impl BotToken {
    /// Accepts the shape @BotFather hands out: digits, `:`, then letters,
    /// digits, `_` or `-`. Anything else would end up in a URL path.
    pub fn new(token: &str) -> Option<BotToken> {
        let token = token.trim();
        let (id, secret) = token.split_once(':')?;
        let id_ok = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
        let secret_ok =
            !secret.is_empty() && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        let token = (id_ok && secret_ok).then(|| BotToken(token.to_string()))?;
        for needle in token.needles() {
            crate::sanitize::register_secret(&needle);
        }
        Some(token)
    }

    /// The secret itself, for building the request URL and nothing else.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Every form the token can take in text, longest first: `bot<token>`
    /// (the URL path segment), the token, its percent-encoded forms, and
    /// the secret half alone when it is long enough not to match ordinary
    /// words (8 bytes or more).
    fn needles(&self) -> Vec<String> {
        let token = self.0.as_str();
        let secret = token.split_once(':').map_or("", |(_, s)| s);
        let mut needles =
            vec![format!("bot{token}"), token.replace(':', "%3A"), token.replace(':', "%3a"), token.to_string()];
        if secret.len() >= 8 {
            needles.push(secret.to_string());
        }
        needles
    }

    /// `text` with every occurrence of the token (and of `bot<token>`, the URL
    /// path segment) replaced by `<redacted>`. Also catches the
    /// percent-encoded form and the secret half alone, so an error that
    /// quotes part of a URL cannot leak it either.
    pub fn redact(&self, text: &str) -> String {
        let needles = self.needles();
        crate::sanitize::replace_all(text, needles.iter().map(String::as_str)).into_owned()
    }
}

impl fmt::Debug for BotToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for BotToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How message text is marked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseMode {
    /// Telegram's HTML subset (bold names, a link to the pair).
    Html,
    /// Plain text, for chats or clients where markup causes trouble.
    None,
}

/// A validated `[telegram]` section.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TelegramConfig {
    pub enabled: bool,
    /// Always set when `enabled`.
    pub bot_token: Option<BotToken>,
    /// Never empty when `enabled`.
    pub chat_ids: Vec<ChatId>,
    /// Without a trailing `/`.
    pub api_base: String,
    pub parse_mode: ParseMode,
    pub disable_notification: bool,
    pub message_thread_id: Option<i64>,
    /// Whole-request limit; a request that exceeds it may still have been
    /// delivered (see the module docs on duplicates).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Tries per message for transient failures (429, 5xx, network) before
    /// it is journaled as failed.
    pub max_attempts: u32,
    /// Longest wait a 429's `retry_after` may impose.
    pub max_retry_after: Duration,
    /// Alerts that may wait per chat; more are journaled as `dropped`.
    pub max_pending: usize,
}

impl TelegramConfig {
    /// Telegram off, every other key at its default: what a config without a
    /// `[telegram]` section means.
    pub fn disabled() -> TelegramConfig {
        TelegramConfig {
            enabled: false,
            bot_token: None,
            chat_ids: Vec::new(),
            api_base: DEFAULT_API_BASE.to_string(),
            parse_mode: ParseMode::Html,
            disable_notification: false,
            message_thread_id: None,
            timeout: Duration::from_millis(10_000),
            connect_timeout: Duration::from_millis(3_000),
            max_attempts: 5,
            max_retry_after: Duration::from_secs(60),
            max_pending: 1000,
        }
    }
}

/// One problem: the key (`telegram.chat_ids[1]` or an environment variable)
/// and what is wrong with the fix, as a sentence.
pub type ConfigProblem = (String, String);

/// Applies the environment overrides (`env` is `std::env::var` in the app, a
/// map in tests) and checks everything. All problems are returned at once;
/// none quotes the token.
pub fn validate(raw: RawTelegram, env: impl Fn(&str) -> Option<String>) -> Result<TelegramConfig, Vec<ConfigProblem>> {
    let mut problems = Problems(Vec::new());

    let (token_key, token_text) = match env(ENV_BOT_TOKEN).filter(|t| !t.trim().is_empty()) {
        Some(t) => (ENV_BOT_TOKEN, Some(t)),
        None => ("telegram.bot_token", raw.bot_token.map(|t| t.0).filter(|t| !t.trim().is_empty())),
    };
    let bot_token = token_text.as_deref().and_then(|t| {
        let token = BotToken::new(t);
        if token.is_none() {
            problems.add(
                token_key,
                "is not a bot token (the value is not shown); expected the form 123456789:AAE… that @BotFather gave you",
            );
        }
        token
    });
    if raw.enabled && token_text.is_none() {
        problems.add(
            "telegram.bot_token",
            format_args!(
                "is not set but Telegram is enabled; export {ENV_BOT_TOKEN} with the token from @BotFather \
                 (preferred) or set telegram.bot_token, or set telegram.enabled = false"
            ),
        );
    }

    let chat_texts: Vec<(String, String)> = match env(ENV_CHAT_ID).filter(|c| !c.trim().is_empty()) {
        Some(list) => {
            list.split(',').enumerate().map(|(i, item)| (format!("{ENV_CHAT_ID}[{i}]"), item.to_string())).collect()
        }
        None => (raw.chat_ids.iter().enumerate())
            .map(|(i, item)| {
                let text = match item {
                    RawChatId::Id(id) => id.to_string(),
                    RawChatId::Name(name) => name.clone(),
                };
                (format!("telegram.chat_ids[{i}]"), text)
            })
            .collect(),
    };
    let mut chat_ids: Vec<ChatId> = Vec::new();
    for (key, text) in &chat_texts {
        match ChatId::parse(text) {
            Some(id) if chat_ids.contains(&id) => {
                problems.add(key, format_args!("{id} is listed twice; remove the duplicate"))
            }
            Some(id) => chat_ids.push(id),
            None => problems.add(
                key,
                format_args!(
                    "is {text:?}; expected a numeric chat id such as -1001234567890 or a public channel's @username \
                     (5 to 32 letters, digits or _)"
                ),
            ),
        }
    }
    if raw.enabled && chat_texts.is_empty() {
        problems.add(
            "telegram.chat_ids",
            format_args!(
                "is empty but Telegram is enabled; list the chats to alert, e.g. chat_ids = [123456789, \"@mychannel\"], \
                 or export {ENV_CHAT_ID}=123456789"
            ),
        );
    }

    let api_base = raw.api_base.trim().trim_end_matches('/').to_string();
    let host = api_base.strip_prefix("https://").or_else(|| api_base.strip_prefix("http://"));
    let shown = crate::sanitize::redact_userinfo(&raw.api_base);
    if host.is_some_and(|h| h.contains('@')) {
        problems.add(
            "telegram.api_base",
            format_args!(
                "is {shown:?}; it holds a user name or password (`user:password@`), which the Bot API does not use \
                 and which would be shown wherever the URL is; remove it"
            ),
        );
    } else if host.is_none_or(|h| h.is_empty() || h.contains(['/', '?', '#']) || h.contains(char::is_whitespace)) {
        problems.add(
            "telegram.api_base",
            format_args!("is {shown:?}; expected an http:// or https:// URL such as \"{DEFAULT_API_BASE}\""),
        );
    }

    let parse_mode = match raw.parse_mode.trim() {
        p if p.eq_ignore_ascii_case("html") => ParseMode::Html,
        p if p.eq_ignore_ascii_case("none") => ParseMode::None,
        other => {
            problems.add("telegram.parse_mode", format_args!("is {other:?}; expected \"HTML\" or \"none\""));
            ParseMode::Html
        }
    };

    if raw.message_thread_id.is_some_and(|t| t <= 0) {
        problems
            .add("telegram.message_thread_id", "must be a positive forum topic id; remove it to post outside topics");
    }
    if raw.timeout_ms == 0 {
        problems.add("telegram.timeout_ms", "is 0; give the whole request a limit in milliseconds, e.g. 10000");
    }
    if raw.connect_timeout_ms == 0 {
        problems.add("telegram.connect_timeout_ms", "is 0; give connecting a limit in milliseconds, e.g. 3000");
    }
    if raw.max_attempts == 0 {
        problems.add("telegram.max_attempts", "is 0, so nothing would ever be sent; use at least 1 (default 5)");
    }
    if !(1..=MAX_RETRY_AFTER_SEC).contains(&raw.max_retry_after_sec) {
        problems.add(
            "telegram.max_retry_after_sec",
            format_args!(
                "is {}; use 1 to {MAX_RETRY_AFTER_SEC} seconds (default 60): 0 would resend into Telegram's flood \
                 control at once, and past an hour a message is stale (Telegram answers again if it wants longer)",
                raw.max_retry_after_sec
            ),
        );
    }
    if raw.max_pending == 0 {
        problems.add("telegram.max_pending", "is 0, so every alert would be dropped; use at least 1 (default 1000)");
    }

    if !problems.0.is_empty() {
        return Err(problems.0);
    }
    Ok(TelegramConfig {
        enabled: raw.enabled,
        bot_token,
        chat_ids,
        api_base,
        parse_mode,
        disable_notification: raw.disable_notification,
        message_thread_id: raw.message_thread_id,
        timeout: Duration::from_millis(raw.timeout_ms),
        connect_timeout: Duration::from_millis(raw.connect_timeout_ms),
        max_attempts: raw.max_attempts,
        max_retry_after: Duration::from_secs(raw.max_retry_after_sec.min(MAX_RETRY_AFTER_SEC)),
        max_pending: raw.max_pending,
    })
}

struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn add(&mut self, key: impl fmt::Display, message: impl fmt::Display) {
        self.0.push((key.to_string(), message.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_is_what_an_absent_section_validates_to() {
        assert_eq!(validate(RawTelegram::default(), |_| None).unwrap(), TelegramConfig::disabled());
    }

    const TOKEN: &str = "123456789:AAEhBOweik6ad9r_QXMENQjcrGbqCr4K-ms";

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn enabled() -> RawTelegram {
        RawTelegram {
            enabled: true,
            bot_token: Some(TOKEN.into()),
            chat_ids: vec![RawChatId::Id(42)],
            ..RawTelegram::default()
        }
    }

    fn problems(raw: RawTelegram, env: impl Fn(&str) -> Option<String>) -> Vec<ConfigProblem> {
        validate(raw, env).unwrap_err()
    }

    #[test]
    fn an_empty_section_gives_the_documented_defaults() {
        let c = validate(RawTelegram::default(), no_env).unwrap();
        assert!(!c.enabled);
        assert_eq!(c.api_base, "https://api.telegram.org");
        assert_eq!(c.parse_mode, ParseMode::Html);
        assert_eq!((c.timeout, c.connect_timeout), (Duration::from_secs(10), Duration::from_secs(3)));
        assert_eq!((c.max_attempts, c.max_retry_after, c.max_pending), (5, Duration::from_secs(60), 1000));
        assert!(c.bot_token.is_none() && c.chat_ids.is_empty() && !c.disable_notification);
    }

    #[test]
    fn the_sample_section_shows_every_default() {
        #[derive(Deserialize)]
        struct File {
            telegram: RawTelegram,
        }
        let sample: File = toml::from_str(include_str!("telegram_sample.toml")).unwrap();
        assert_eq!(validate(sample.telegram, no_env), validate(RawTelegram::default(), no_env));
    }

    #[test]
    fn unknown_keys_are_rejected_and_chat_ids_mix_numbers_and_names() {
        let e = toml::from_str::<RawTelegram>("enabled = true\nchat_id = 1\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `chat_id`"), "{e}");
        let raw: RawTelegram = toml::from_str("chat_ids = [-1001234567890, \"@my_channel\", \"42\"]\n").unwrap();
        let c = validate(raw, no_env).unwrap();
        assert_eq!(
            c.chat_ids,
            [ChatId::Id(-1_001_234_567_890), ChatId::Username("@my_channel".into()), ChatId::Id(42)]
        );
        assert!(c.chat_ids[0].is_group() && c.chat_ids[1].is_group() && !c.chat_ids[2].is_group());
    }

    #[test]
    fn environment_overrides_token_and_chats() {
        let other = "987654321:ZZZhBOweik6ad9r_QXMENQjcrGbqCr4K-xx";
        let env = |k: &str| match k {
            ENV_BOT_TOKEN => Some(other.to_string()),
            ENV_CHAT_ID => Some("-100123, @alerts_chan".to_string()),
            _ => None,
        };
        let c = validate(enabled(), env).unwrap();
        assert_eq!(c.bot_token.unwrap().expose_secret(), other);
        assert_eq!(c.chat_ids, [ChatId::Id(-100_123), ChatId::Username("@alerts_chan".into())]);
    }

    #[test]
    fn enabled_without_token_or_chats_names_the_keys_and_the_fix() {
        let raw = RawTelegram { enabled: true, ..RawTelegram::default() };
        let p = problems(raw, no_env);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].0, "telegram.bot_token");
        assert!(p[0].1.contains("TELEGRAM_BOT_TOKEN") && p[0].1.contains("@BotFather"), "{p:?}");
        assert_eq!(p[1].0, "telegram.chat_ids");
        assert!(p[1].1.contains("TELEGRAM_CHAT_ID"), "{p:?}");
    }

    #[test]
    fn a_malformed_token_is_reported_without_its_value() {
        let secret = "not-a-token-but-secret";
        let raw = RawTelegram { bot_token: Some(secret.into()), ..enabled() };
        let p = problems(raw, no_env);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "telegram.bot_token");
        assert!(!p[0].1.contains(secret), "{p:?}");
        let p = problems(enabled(), |k| (k == ENV_BOT_TOKEN).then(|| secret.to_string()));
        assert_eq!(p[0].0, "TELEGRAM_BOT_TOKEN");
        assert!(!p[0].1.contains(secret));
    }

    #[test]
    fn bad_values_are_all_reported_at_once() {
        let raw = RawTelegram {
            chat_ids: vec![RawChatId::Name("mychannel".into()), RawChatId::Id(42), RawChatId::Id(42)],
            api_base: "api.telegram.org".into(),
            parse_mode: "Markdown".into(),
            timeout_ms: 0,
            max_attempts: 0,
            max_retry_after_sec: u64::MAX,
            max_pending: 0,
            ..enabled()
        };
        let p = problems(raw, no_env);
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "telegram.chat_ids[0]",
                "telegram.chat_ids[2]",
                "telegram.api_base",
                "telegram.parse_mode",
                "telegram.timeout_ms",
                "telegram.max_attempts",
                "telegram.max_retry_after_sec",
                "telegram.max_pending"
            ],
            "{p:?}"
        );
        assert!(p[6].1.starts_with("is 18446744073709551615; use 1 to 3600 seconds"), "{p:?}");
        assert!(p[0].1.contains("@username"), "{p:?}");
        assert!(p[1].1.contains("42 is listed twice"), "{p:?}");
    }

    #[test]
    fn the_token_never_prints_and_redaction_covers_every_form() {
        let t = BotToken::new(TOKEN).unwrap();
        assert_eq!(format!("{t} {t:?}"), "<redacted> <redacted>");
        let c = validate(enabled(), no_env).unwrap();
        assert!(!format!("{c:?}").contains("AAEh"), "{c:?}");
        assert!(!format!("{:?}", enabled()).contains("AAEh"), "the raw section's Debug shows the token");
        let url =
            format!("http://h/bot{TOKEN}/sendMessage and {TOKEN} and 123456789%3AAAEhBOweik6ad9r_QXMENQjcrGbqCr4K-ms");
        assert_eq!(t.redact(&url), "http://h/<redacted>/sendMessage and <redacted> and <redacted>");
        assert_eq!(t.redact("only AAEhBOweik6ad9r_QXMENQjcrGbqCr4K-ms"), "only <redacted>");
        assert!(BotToken::new("12:ab/c").is_none() && BotToken::new(":abc").is_none() && BotToken::new("12").is_none());
    }
}
