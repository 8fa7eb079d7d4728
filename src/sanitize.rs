//! Making text from outside safe for a log line: control characters
//! escaped, registered secrets removed. A leaf module, so the feed, the
//! sinks and the log writer can all use the same rules.
//!
//! Two guarantees the log relies on:
//!
//! * **One record, one line.** Text a server chose (a WebSocket close
//!   reason, an HTTP body, Telegram's `description`) could otherwise carry a
//!   newline and forge a whole log line, or ANSI escapes that rewrite the
//!   operator's terminal. [`escape_controls`] turns every control character
//!   (and the Unicode line separators and bidirectional overrides, which
//!   forge lines or reorder text just as well) into a visible escape. Call
//!   sites apply it to what they received; the log writer applies it to every
//!   record again as the last line of defence, which is harmless because the
//!   escaping is idempotent (its output contains nothing it would escape).
//! * **No secret in any record, from any crate.** [`register_secret`] adds a
//!   string (the bot token, in each form it can be written) that the log
//!   writer replaces with `<redacted>` in every record, whatever logged it.
//!
//! A backslash is not escaped: a literal `\n` sent by a server reads like an
//! escaped newline, but it cannot break a line.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::{PoisonError, RwLock};

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// Whether `c` must not reach a log line raw: C0 and C1 controls (newline,
/// carriage return, ESC, the 8-bit CSI), DEL, the Unicode line and paragraph
/// separators, and the bidirectional embedding, override and isolate marks.
fn must_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every character named in the module docs written as `\n`, `\r`,
/// `\t` or `\u{1b}` (Rust's escapes); borrowed when there is nothing to do.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(must_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if must_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Secrets the log writer removes from every record; longest first, so a
/// secret that contains another is replaced whole.
static SECRETS: RwLock<Vec<Box<str>>> = RwLock::new(Vec::new());

/// Secrets shorter than this are not registered: redacting a short string
/// would mangle ordinary words, and no real secret is that short.
const MIN_SECRET_LEN: usize = 8;

/// Adds `secret` to the strings [`redact_secrets`] removes. Registering the
/// same string again does nothing; strings under 8 bytes are ignored.
pub fn register_secret(secret: &str) {
    if secret.len() < MIN_SECRET_LEN {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(PoisonError::into_inner);
    if !secrets.iter().any(|s| &**s == secret) {
        secrets.push(secret.into());
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// `text` with every registered secret replaced by `<redacted>`.
pub fn redact_secrets(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.read().unwrap_or_else(PoisonError::into_inner);
    replace_all(text, secrets.iter().map(|s| &**s))
}

/// `text` with each of `needles` (in the order given) replaced by
/// `<redacted>`; borrowed when none occurs.
pub fn replace_all<'t, 'n>(text: &'t str, needles: impl IntoIterator<Item = &'n str>) -> Cow<'t, str> {
    let mut out = Cow::Borrowed(text);
    for needle in needles {
        if !needle.is_empty() && out.contains(needle) {
            out = Cow::Owned(out.replace(needle, REDACTED));
        }
    }
    out
}

/// Appends `v` as a JSON string literal (quotes, backslashes and control
/// characters escaped), for the journal, the Bot API and `check-config`.
pub fn json_str(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `url` with any userinfo (`user:password@`) shown as `<redacted>@`, for
/// messages that repeat a URL a user configured: a password written into
/// one is never printed back.
pub fn redact_userinfo(url: &str) -> Cow<'_, str> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => Cow::Owned(format!("{}{REDACTED}{}", &url[..start], &rest[at..])),
        None => Cow::Borrowed(url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_and_terminal_escapes_become_visible_escapes() {
        let forged = "bye\n2026-11-22 03:41:07.123 INFO  | TRIGGER | pair=FAKEUSDT | forged\x1b[2K\r\t\u{7f}\u{9b}";
        assert_eq!(
            escape_controls(forged),
            "bye\\n2026-11-22 03:41:07.123 INFO  | TRIGGER | pair=FAKEUSDT | forged\\u{1b}[2K\\r\\t\\u{7f}\\u{9b}"
        );
        assert_eq!(escape_controls("a\u{2028}b\u{202e}c\u{2066}"), "a\\u{2028}b\\u{202e}c\\u{2066}");
    }

    #[test]
    fn ordinary_text_is_untouched_and_escaping_is_idempotent() {
        let plain = "Bad Request: chat not found — 🟢 ≥ 0.25 \\n stays";
        assert!(matches!(escape_controls(plain), Cow::Borrowed(_)));
        let once = escape_controls("x\ny\x1b").into_owned();
        assert_eq!(escape_controls(&once), once);
    }

    #[test]
    fn registered_secrets_are_redacted_longest_first() {
        register_secret("sanitize-test-secret-ABCDEFGH");
        register_secret("bot1:sanitize-test-secret-ABCDEFGH");
        register_secret("short");
        assert_eq!(
            redact_secrets("GET /bot1:sanitize-test-secret-ABCDEFGH/getMe and sanitize-test-secret-ABCDEFGH, short"),
            "GET /<redacted>/getMe and <redacted>, short"
        );
        assert!(matches!(redact_secrets("nothing secret here"), Cow::Borrowed(_)));
    }

    #[test]
    fn userinfo_is_redacted_and_nothing_else_changes() {
        assert_eq!(redact_userinfo("wss://u:secret@h:9443/stream?a=b@c"), "wss://<redacted>@h:9443/stream?a=b@c");
        assert_eq!(redact_userinfo("u:secret@h/stream"), "<redacted>@h/stream");
        assert_eq!(redact_userinfo("ws://a:b@c@h/x"), "ws://<redacted>@h/x");
        assert_eq!(redact_userinfo("wss://h:9443/stream?x=u@v"), "wss://h:9443/stream?x=u@v");
        assert!(matches!(redact_userinfo("ws://h/"), Cow::Borrowed(_)));
    }
}
