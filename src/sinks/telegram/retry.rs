//! What to do after an attempt: the failure table, and the backoff between
//! retries of transient failures.
//!
//! | answer                                   | next                                  |
//! |------------------------------------------|---------------------------------------|
//! | 200 `ok: true`                           | sent                                  |
//! | 2xx whose body cannot be read or parsed  | sent, unconfirmed: never resent       |
//! | 429 (`retry_after` or `Retry-After`)     | wait that long, capped, then resend   |
//! | 5xx, refused, reset, connect timeout     | back off (full jitter), resend        |
//! | timeout after sending                    | same; Telegram may show it twice      |
//! | 400 "can't parse entities"               | resend once as plain text             |
//! | 400 with `migrate_to_chat_id`            | switch the chat to the new id, resend |
//! | 403                                      | disable that chat                     |
//! | 401, 404                                 | disable Telegram                      |
//! | any other 400, TLS or URL problems       | failed                                |

use std::time::{Duration, Instant};

use super::client::{TelegramError, TransportKind};
use crate::backoff::Backoff;
use crate::prng::SplitMix64;

/// First backoff ceiling; doubled per failure.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Largest backoff ceiling.
const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// The next step for a message after one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    Sent,
    /// Telegram answered 2xx, which it does only after posting, but the
    /// answer could not be read: resending would post it twice.
    SentUnconfirmed,
    /// Telegram's flood control: resend after this long (already capped).
    RetryAfter(Duration),
    /// Transient: back off, then resend while attempts remain.
    Retry,
    /// Resend once as plain text.
    PlainText,
    /// The group became this supergroup: resend there.
    Migrate(i64),
    /// The bot may not post to this chat any more.
    DisableChat,
    /// The token was rejected; nothing can be sent.
    DisableTelegram,
    /// Give up on this message.
    Fail,
}

/// Applies the failure table to one attempt's result.
pub(crate) fn next(result: &Result<(), TelegramError>, max_retry_after: Duration) -> Next {
    let e = match result {
        Ok(()) => return Next::Sent,
        Err(e) => e,
    };
    match e {
        TelegramError::Api(api) => match api.error_code {
            429 => api.retry_after.map_or(Next::Retry, |d| Next::RetryAfter(d.min(max_retry_after))),
            _ if api.token_rejected() => Next::DisableTelegram,
            403 => Next::DisableChat,
            _ if api.cannot_parse_entities() => Next::PlainText,
            _ if api.migrate_to_chat_id.is_some() => Next::Migrate(api.migrate_to_chat_id.unwrap_or_default()),
            c if c >= 500 => Next::Retry,
            _ => Next::Fail,
        },
        TelegramError::UnexpectedAnswer { status: 200..=299, .. } => Next::SentUnconfirmed,
        TelegramError::UnexpectedAnswer { status, .. } if *status == 429 || *status >= 500 => Next::Retry,
        TelegramError::Transport { kind: TransportKind::NotSent | TransportKind::NoAnswer, .. } => Next::Retry,
        _ => Next::Fail,
    }
}

/// `at + wait`, or the latest representable instant near it when the sum
/// would overflow (`Instant + Duration` panics): a wait computed from what a
/// server sent must never panic the thread.
pub(crate) fn after(at: Instant, wait: Duration) -> Instant {
    at.checked_add(wait)
        .or_else(|| at.checked_add(Duration::from_secs(crate::config::telegram::MAX_RETRY_AFTER_SEC)))
        .unwrap_or(at)
}

/// The resend backoff: the process's one full-jitter backoff with
/// Telegram's base and cap, jittered per run so several monitors do not
/// retry in lockstep. The caller counts each message's failures.
pub(crate) fn backoff() -> Backoff {
    Backoff::new(BACKOFF_BASE, BACKOFF_CAP, SplitMix64::from_entropy())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::telegram::client::ApiError;

    fn api(code: i64, description: &str) -> Result<(), TelegramError> {
        Err(TelegramError::Api(ApiError {
            status: code as u16,
            error_code: code,
            description: description.into(),
            retry_after: None,
            migrate_to_chat_id: None,
        }))
    }

    #[test]
    fn the_failure_table_holds() {
        let cap = Duration::from_secs(60);
        assert_eq!(next(&Ok(()), cap), Next::Sent);
        assert_eq!(next(&api(500, "Internal Server Error"), cap), Next::Retry);
        assert_eq!(next(&api(401, "Unauthorized"), cap), Next::DisableTelegram);
        assert_eq!(next(&api(404, "Not Found"), cap), Next::DisableTelegram);
        assert_eq!(next(&api(403, "Forbidden: bot was blocked by the user"), cap), Next::DisableChat);
        let parse = "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 3";
        assert_eq!(next(&api(400, parse), cap), Next::PlainText);
        assert_eq!(next(&api(400, "Bad Request: chat not found"), cap), Next::Fail);
        let mut flood = api(429, "Too Many Requests: retry after 90");
        if let Err(TelegramError::Api(a)) = &mut flood {
            a.retry_after = Some(Duration::from_secs(90));
        }
        assert_eq!(next(&flood, cap), Next::RetryAfter(cap));
        let mut migrated = api(400, "Bad Request: group chat was upgraded to a supergroup chat");
        if let Err(TelegramError::Api(a)) = &mut migrated {
            a.migrate_to_chat_id = Some(-1_000_042);
        }
        assert_eq!(next(&migrated, cap), Next::Migrate(-1_000_042));
        let transport = |kind| Err(TelegramError::Transport { api_base: "x".into(), kind, detail: "d".into() });
        assert_eq!(next(&transport(TransportKind::NotSent), cap), Next::Retry);
        assert_eq!(next(&transport(TransportKind::NoAnswer), cap), Next::Retry);
        assert_eq!(next(&transport(TransportKind::Local), cap), Next::Fail);
        let page = |status| Err(TelegramError::UnexpectedAnswer { api_base: "x".into(), status, detail: "d".into() });
        assert_eq!(next(&page(502), cap), Next::Retry);
        assert_eq!(next(&page(200), cap), Next::SentUnconfirmed);
        assert_eq!(next(&page(418), cap), Next::Fail);
    }

    #[test]
    fn backoff_stays_under_a_doubling_ceiling() {
        let mut j = backoff();
        for failures in 1..20 {
            let ceiling = (BACKOFF_BASE * 2u32.pow((failures - 1).min(16))).min(BACKOFF_CAP);
            for _ in 0..100 {
                assert!(j.delay(failures - 1) <= ceiling);
            }
        }
        let draws: Vec<Duration> = (0..100).map(|_| j.delay(2)).collect();
        assert!(draws.iter().any(|d| *d < Duration::from_secs(1)) && draws.iter().any(|d| *d > Duration::from_secs(1)));
    }
}
