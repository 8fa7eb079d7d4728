//! The Bot API client: one blocking ureq agent, built once, and the two
//! methods the monitor uses (`sendMessage`, `getMe`).
//!
//! Every answer is parsed into Telegram's envelope (`ok`, `result` or
//! `error_code`/`description`/`parameters`) and every failure becomes a
//! [`TelegramError`] whose text has passed through [`BotToken::redact`]: ureq
//! quotes URLs in some errors, and the URL path carries the token. Text the
//! server chose (a description, a body) also has its control characters
//! escaped ([`crate::sanitize::escape_controls`]), so an error is one line
//! wherever it is printed.

use std::io;
use std::time::{Duration, Instant};

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};

use crate::config::telegram::{BotToken, ChatId, ParseMode, TelegramConfig};

/// Largest answer body read; Telegram's answers are a few kilobytes.
const MAX_ANSWER_BYTES: u64 = 1 << 20;

/// Why a Bot API call did not succeed. Every message reads as a sentence
/// with the fix and never contains the bot token.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TelegramError {
    /// The config lacks what the call needs.
    #[error("Telegram is not configured: {0}")]
    NotConfigured(&'static str),
    /// No HTTP answer arrived.
    #[error("could not reach the Telegram Bot API at {api_base}: {detail}; {}", .kind.hint())]
    Transport { api_base: String, kind: TransportKind, detail: String },
    /// Telegram answered with `ok: false`.
    #[error("{0}")]
    Api(ApiError),
    /// Something answered, but not with the Bot API's JSON (a proxy's error
    /// page, a wrong `api_base`).
    #[error(
        "the server at {api_base} answered HTTP {status} without the Bot API's JSON ({detail}); \
         if this persists, check that telegram.api_base points at the Bot API"
    )]
    UnexpectedAnswer { api_base: String, status: u16, detail: String },
}

/// What a transport failure says about the request's fate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// Nothing reached Telegram: connection refused or unreachable, name
    /// resolution failed, or connecting timed out.
    NotSent,
    /// The request may have reached Telegram but no answer came (a timeout
    /// or reset after sending), so a retry can show the message twice.
    NoAnswer,
    /// A local problem retrying will not fix (TLS, a malformed URL).
    Local,
}

impl TransportKind {
    fn hint(self) -> &'static str {
        match self {
            TransportKind::NotSent => {
                "nothing was sent; check the network, any firewall or proxy, and telegram.api_base"
            }
            TransportKind::NoAnswer => {
                "the request may have reached Telegram, so a retry can make it show the message twice"
            }
            TransportKind::Local => "check telegram.api_base and the TLS trust store",
        }
    }
}

/// Telegram's `ok: false` answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// Telegram's `error_code` (normally equal to `status`).
    pub error_code: i64,
    /// Telegram's `description`, e.g. `Bad Request: chat not found`.
    pub description: String,
    /// `parameters.retry_after`, or the `Retry-After` header (429 only).
    pub retry_after: Option<Duration>,
    /// `parameters.migrate_to_chat_id`: the group became this supergroup.
    pub migrate_to_chat_id: Option<i64>,
}

impl ApiError {
    /// 401, or 404 on a method that exists: the token is wrong or revoked.
    pub fn token_rejected(&self) -> bool {
        matches!(self.error_code, 401 | 404)
    }

    /// 400 because the HTML markup did not parse.
    pub fn cannot_parse_entities(&self) -> bool {
        self.error_code == 400 && self.description.contains("can't parse entities")
    }

    fn hint(&self) -> String {
        if let Some(to) = self.migrate_to_chat_id {
            return format!("the group was upgraded to a supergroup; replace its id with {to} in telegram.chat_ids");
        }
        match self.error_code {
            401 | 404 => "Telegram rejected the bot token; check telegram.bot_token or TELEGRAM_BOT_TOKEN against \
                          @BotFather (regenerating a token revokes the old one)"
                .into(),
            403 => "the bot may not post there (the user blocked it, or it was removed from the group or channel); \
                    unblock it or add it back"
                .into(),
            429 => match self.retry_after {
                Some(d) => format!("Telegram's flood control asks to wait {} s", d.as_secs()),
                None => "Telegram's flood control asks to slow down".into(),
            },
            400 if self.description.contains("chat not found") => {
                "check telegram.chat_ids: a user must have started a chat with the bot, and for a group or channel \
                 the bot must be a member"
                    .into()
            }
            400 if self.cannot_parse_entities() => {
                "the message markup was rejected; set telegram.parse_mode = \"none\" if this persists".into()
            }
            _ => "see Telegram's description above".into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Telegram answered {}: {}; {}", self.error_code, self.description, self.hint())
    }
}

/// The bot behind a token, as `getMe` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct BotInfo {
    pub id: i64,
    pub first_name: String,
    /// Without the `@`.
    pub username: Option<String>,
}

/// One HTTP exchange's result and how long it took, for the latency
/// histogram.
#[derive(Debug)]
pub(crate) struct Exchange<T> {
    pub result: Result<T, TelegramError>,
    /// HTTP status when an answer arrived.
    pub status: Option<u16>,
    pub round_trip: Duration,
}

/// A blocking Bot API client for one token.
#[derive(Clone, Debug)]
pub(crate) struct Client {
    agent: ureq::Agent,
    api_base: String,
    token: BotToken,
    connect_timeout: Duration,
    parse_mode: ParseMode,
    disable_notification: bool,
    message_thread_id: Option<i64>,
}

/// The `sendMessage` body.
#[derive(Serialize)]
struct SendMessage<'a> {
    chat_id: &'a ChatId,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parse_mode: Option<&'static str>,
    disable_notification: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_thread_id: Option<i64>,
    link_preview_options: LinkPreviewOptions,
}

/// Previews would repeat the Binance page under every alert.
#[derive(Serialize)]
struct LinkPreviewOptions {
    is_disabled: bool,
}

/// Telegram's answer envelope.
#[derive(Deserialize)]
struct Envelope<T> {
    ok: bool,
    result: Option<T>,
    error_code: Option<i64>,
    description: Option<String>,
    parameters: Option<Parameters>,
}

#[derive(Deserialize)]
struct Parameters {
    retry_after: Option<u64>,
    migrate_to_chat_id: Option<i64>,
}

impl Client {
    /// A client for `cfg`'s token; the agent (and its connection pool) is
    /// built here once.
    pub fn new(cfg: &TelegramConfig) -> Result<Client, TelegramError> {
        let token = cfg.bot_token.clone().ok_or(TelegramError::NotConfigured(
            "no bot token; export TELEGRAM_BOT_TOKEN or set telegram.bot_token to the token from @BotFather",
        ))?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(cfg.timeout))
            .timeout_connect(Some(cfg.connect_timeout))
            // The Bot API never redirects; following one could only go wrong.
            .max_redirects(0)
            .user_agent(concat!("imbalance-monitor/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(Client {
            agent,
            api_base: cfg.api_base.clone(),
            token,
            connect_timeout: cfg.connect_timeout,
            parse_mode: cfg.parse_mode,
            disable_notification: cfg.disable_notification,
            message_thread_id: cfg.message_thread_id,
        })
    }

    /// The agent, so a shutdown can interrupt a request in flight
    /// ([`ureq::Agent::shutdown`]).
    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// The token's redactor, for text that did not come from this client.
    pub fn token(&self) -> &BotToken {
        &self.token
    }

    /// Sends `text` to `chat`, as HTML when `html` (and the config's parse
    /// mode is HTML), otherwise as plain text. `limit` shortens the
    /// configured timeouts (used during shutdown).
    pub fn send_message(&self, chat: &ChatId, text: &str, html: bool, limit: Option<Duration>) -> Exchange<()> {
        let body = SendMessage {
            chat_id: chat,
            text,
            parse_mode: (html && self.parse_mode == ParseMode::Html).then_some("HTML"),
            disable_notification: self.disable_notification,
            message_thread_id: self.message_thread_id,
            link_preview_options: LinkPreviewOptions { is_disabled: true },
        };
        let json = sonic_rs::to_string(&body).expect("a struct of strings and numbers always serializes");
        let exchange = self.call::<IgnoredAny>("sendMessage", &json, limit);
        Exchange { result: exchange.result.map(|_| ()), status: exchange.status, round_trip: exchange.round_trip }
    }

    /// Asks Telegram who the token belongs to.
    pub fn get_me(&self) -> Exchange<BotInfo> {
        self.call("getMe", "{}", None)
    }

    fn call<T: DeserializeOwned>(&self, method: &str, json: &str, limit: Option<Duration>) -> Exchange<T> {
        let url = format!("{}/bot{}/{method}", self.api_base, self.token.expose_secret());
        let mut request = self.agent.post(&url).header("content-type", "application/json");
        if let Some(limit) = limit {
            request = request
                .config()
                .timeout_global(Some(limit))
                .timeout_connect(Some(limit.min(self.connect_timeout)))
                .build();
        }
        let started = Instant::now();
        let mut response = match request.send(json) {
            Ok(response) => response,
            Err(e) => {
                return Exchange { result: Err(self.transport_error(e)), status: None, round_trip: started.elapsed() };
            }
        };
        // From here on an answer arrived: whatever happens to its body, its
        // status says what Telegram did (a 200 means the message was posted).
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = response.body_mut().with_config().limit(MAX_ANSWER_BYTES).read_to_string();
        let round_trip = started.elapsed();
        let result = match body {
            Ok(body) => self.parse(status, retry_after, &body),
            Err(e) => Err(TelegramError::UnexpectedAnswer {
                api_base: self.api_base.clone(),
                status,
                detail: format!(
                    "the body could not be read: {}",
                    crate::sanitize::escape_controls(&self.token.redact(&e.to_string()))
                ),
            }),
        };
        Exchange { result, status: Some(status), round_trip }
    }

    fn parse<T: DeserializeOwned>(
        &self,
        status: u16,
        retry_after: Option<u64>,
        body: &str,
    ) -> Result<T, TelegramError> {
        let envelope: Envelope<T> = match sonic_rs::from_str(body) {
            Ok(e) => e,
            Err(_) => {
                return Err(TelegramError::UnexpectedAnswer {
                    api_base: self.api_base.clone(),
                    status,
                    detail: self.token.redact(&snippet(body)),
                });
            }
        };
        match envelope {
            Envelope { ok: true, result: Some(result), .. } => Ok(result),
            Envelope { ok: true, result: None, .. } => Err(TelegramError::UnexpectedAnswer {
                api_base: self.api_base.clone(),
                status,
                detail: "ok without a result".into(),
            }),
            Envelope { error_code, description, parameters, .. } => {
                let parameters = parameters.unwrap_or(Parameters { retry_after: None, migrate_to_chat_id: None });
                Err(TelegramError::Api(ApiError {
                    status,
                    error_code: error_code.unwrap_or(i64::from(status)),
                    description: crate::sanitize::escape_controls(
                        &self.token.redact(description.as_deref().unwrap_or("(no description)")),
                    )
                    .into_owned(),
                    retry_after: parameters.retry_after.or(retry_after).map(Duration::from_secs),
                    migrate_to_chat_id: parameters.migrate_to_chat_id,
                }))
            }
        }
    }

    fn transport_error(&self, e: ureq::Error) -> TelegramError {
        TelegramError::Transport {
            api_base: self.api_base.clone(),
            kind: transport_kind(&e),
            detail: crate::sanitize::escape_controls(&self.token.redact(&e.to_string())).into_owned(),
        }
    }
}

/// Classifies a ureq failure by whether the request can have reached Telegram.
fn transport_kind(e: &ureq::Error) -> TransportKind {
    use ureq::Error as E;
    match e {
        E::Timeout(ureq::Timeout::Resolve | ureq::Timeout::Connect) => TransportKind::NotSent,
        E::Timeout(_) | E::Protocol(_) => TransportKind::NoAnswer,
        E::HostNotFound | E::ConnectionFailed => TransportKind::NotSent,
        E::Io(io) => match io.kind() {
            io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::AddrNotAvailable
            | io::ErrorKind::NotConnected => TransportKind::NotSent,
            _ => TransportKind::NoAnswer,
        },
        _ => TransportKind::Local,
    }
}

/// The start of an unexpected body, on one line, for an error message
/// (quoted with `{:?}`, which escapes every control character).
fn snippet(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() {
        return "an empty body".into();
    }
    match flat.char_indices().nth(120) {
        Some((cut, _)) => format!("body starts {:?}…", &flat[..cut]),
        None => format!("body {flat:?}"),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;
    use crate::config::telegram::{RawTelegram, validate};

    const TOKEN: &str = "4242:SECRETsecretSECRETsecret_-42";

    fn client(api_base: &str, timeout_ms: u64) -> Client {
        let raw = RawTelegram {
            bot_token: Some(TOKEN.into()),
            api_base: "http://127.0.0.1".into(),
            timeout_ms,
            connect_timeout_ms: timeout_ms,
            ..RawTelegram::default()
        };
        let mut cfg = validate(raw, |_| None).unwrap();
        // Bypasses validation on purpose: ureq quotes malformed URLs in its errors.
        cfg.api_base = api_base.into();
        Client::new(&cfg).unwrap()
    }

    fn assert_clean(e: &TelegramError) {
        let text = format!("{e} {e:?}");
        assert!(!text.contains("SECRETsecret") && !text.contains("4242:"), "{text}");
    }

    #[test]
    fn a_refused_connection_is_not_sent_and_does_not_quote_the_token() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = client(&format!("http://127.0.0.1:{port}"), 2000).get_me().result.unwrap_err();
        assert!(matches!(e, TelegramError::Transport { kind: TransportKind::NotSent, .. }), "{e}");
        assert_clean(&e);
    }

    #[test]
    fn a_silent_server_times_out_as_ambiguous_and_does_not_quote_the_token() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            // Read the request and hold the connection, never answering, until the client gives up.
            while s.read(&mut buf).is_ok_and(|n| n > 0) {}
        });
        let e = client(&format!("http://{addr}"), 300).get_me().result.unwrap_err();
        assert!(matches!(e, TelegramError::Transport { kind: TransportKind::NoAnswer, .. }), "{e}");
        assert_clean(&e);
        server.join().unwrap();
    }

    #[test]
    fn ureq_errors_that_quote_the_url_are_redacted() {
        // An empty base leaves a bare path, which ureq quotes in full ("… is missing scheme").
        let e = client("", 200).get_me().result.unwrap_err();
        assert!(matches!(e, TelegramError::Transport { kind: TransportKind::Local, .. }), "{e}");
        assert!(e.to_string().contains("<redacted>"), "ureq no longer quotes the URL here: {e}");
        assert_clean(&e);
    }

    #[test]
    fn non_json_answers_keep_their_status_and_a_redacted_snippet() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = format!("<html><body>502 Bad Gateway for /bot{TOKEN}/getMe</body></html>");
            let _ = write!(s, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        });
        let e = client(&format!("http://{addr}"), 2000).get_me().result.unwrap_err();
        assert!(matches!(e, TelegramError::UnexpectedAnswer { status: 502, .. }), "{e}");
        assert!(e.to_string().contains("502 Bad Gateway for /<redacted>/getMe"), "{e}");
        assert_clean(&e);
    }

    #[test]
    fn api_errors_read_as_a_sentence_with_the_fix() {
        let c = client("http://127.0.0.1:9", 200);
        let body = r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234}}"#;
        let e = c.parse::<IgnoredAny>(400, None, body).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Telegram answered 400: Bad Request: group chat was upgraded to a supergroup chat; the group was \
             upgraded to a supergroup; replace its id with -1001234 in telegram.chat_ids"
        );
        let body = r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7"}"#;
        let TelegramError::Api(api) = c.parse::<IgnoredAny>(429, Some(7), body).unwrap_err() else { panic!() };
        assert_eq!(api.retry_after, Some(Duration::from_secs(7)));
        let body = r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#;
        let TelegramError::Api(api) = c.parse::<IgnoredAny>(401, None, body).unwrap_err() else { panic!() };
        assert!(api.token_rejected() && api.to_string().contains("Telegram rejected the bot token"));
    }
}
