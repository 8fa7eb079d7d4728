//! `binance.rest_url`, checked as the snapshot fetcher will use it: the
//! base to which `/api/v3/depth?symbol=…&limit=…` is appended. Only
//! `https://` (or `http://` for a loopback test server) with a host, no
//! credentials, no query or fragment (they would swallow the path).

use tungstenite::http::Uri;

use super::Problems;
use crate::sanitize::redact_userinfo;

const KEY: &str = "binance.rest_url";

/// Adds a problem for every way `url` would break the snapshot requests.
pub(super) fn check(url: &str, p: &mut Problems<'_>) {
    let shown = redact_userinfo(url);
    let example = "use https://api.binance.com (or https://data-api.binance.vision)";
    let Ok(uri) = url.parse::<Uri>() else {
        p.add(KEY, format_args!("is \"{shown}\", which is not a URL; {example}"));
        return;
    };
    match uri.scheme_str() {
        Some("https" | "http") => {}
        _ => {
            p.add(
                KEY,
                format_args!("is \"{shown}\"; it must start with https:// (or http:// for a test server); {example}"),
            );
            return;
        }
    }
    let Some(authority) = uri.authority() else {
        p.add(KEY, format_args!("is \"{shown}\", which names no host; {example}"));
        return;
    };
    if authority.as_str().contains('@') {
        p.add(KEY, format_args!("is \"{shown}\"; Binance's REST API takes no user:password@ in the URL; {example}"));
    }
    if authority.host().is_empty() {
        p.add(KEY, format_args!("is \"{shown}\", which names no host; {example}"));
    }
    if uri.query().is_some() || url.contains('#') {
        p.add(
            KEY,
            format_args!(
                "is \"{shown}\"; a base URL has no ?query or #fragment (the request path is appended to it); {example}"
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Problem;

    fn problems(url: &str) -> Vec<String> {
        let mut found: Vec<Problem> = Vec::new();
        check(url, &mut Problems(&mut found));
        found.into_iter().map(|p| format!("{} {}", p.key, p.message)).collect()
    }

    #[test]
    fn binance_and_loopback_bases_pass() {
        for ok in ["https://api.binance.com", "https://data-api.binance.vision/", "http://127.0.0.1:9443"] {
            assert!(problems(ok).is_empty(), "{ok}: {:?}", problems(ok));
        }
    }

    #[test]
    fn broken_bases_name_the_key_and_the_fix() {
        for bad in [
            "api.binance.com",
            "wss://api.binance.com",
            "https://u:secret@api.binance.com",
            "https://h/?x=1",
            "nonsense at all",
        ] {
            let found = problems(bad);
            assert!(!found.is_empty(), "{bad} passed");
            assert!(found.iter().all(|m| m.contains("binance.rest_url") && !m.contains("secret")), "{found:?}");
        }
    }
}
