//! `[history]`: where book samples, alerts and deliveries are stored
//! (see [`crate::history`]).
//!
//! The PostgreSQL password is a secret, held like the bot token: it comes
//! from `IMBALANCE_MONITOR_PG_PASSWORD` (preferred) or the URL, is
//! registered with the log redactor, and no message, `Debug` or rendering
//! ever shows it.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Problems;

/// Environment variable holding the PostgreSQL password; it wins over a
/// password in `history.url`.
pub const PG_PASSWORD_VAR: &str = "IMBALANCE_MONITOR_PG_PASSWORD";

/// Longest `history.retention_days`: 100 years.
const MAX_RETENTION_DAYS: f64 = 36_500.0;
/// Longest `history.sample_ms`: one hour.
const MAX_SAMPLE_MS: u64 = 3_600_000;

/// `[history]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHistory {
    pub backend: Option<String>,
    pub path: Option<PathBuf>,
    pub url: Option<String>,
    pub sample_ms: Option<u64>,
    pub retention_days: Option<f64>,
}

/// The validated `[history]` section.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryConfig {
    pub backend: HistoryBackend,
    /// At most one sample row per pair per window of this length (feed
    /// time), the window's last evaluated update; zero keeps every update.
    pub sample: Duration,
    /// Rows older than this are deleted in the background.
    pub retention: Option<Duration>,
}

/// Which database holds the history.
#[derive(Clone, Debug, PartialEq)]
pub enum HistoryBackend {
    /// An embedded SQLite file: nothing to install or run.
    Sqlite { path: PathBuf },
    /// A PostgreSQL (or TimescaleDB) server.
    Postgres(PgTarget),
}

/// A PostgreSQL connection target; the password never leaves it except
/// through [`PgTarget::client_config`].
#[derive(Clone, PartialEq)]
pub struct PgTarget {
    /// `postgresql://user@host:port/db` with any password removed, for messages.
    pub display_url: String,
    url: String,
    password: Option<String>,
}

impl fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTarget")
            .field("url", &self.display_url)
            .field("password", &self.password.as_ref().map(|_| crate::sanitize::REDACTED))
            .finish()
    }
}

impl PgTarget {
    /// Whether a password is set (from the URL or the environment).
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// The client configuration with the password applied.
    pub fn client_config(&self) -> Result<postgres::Config, postgres::Error> {
        let mut config: postgres::Config = self.url.parse()?;
        if let Some(p) = &self.password {
            config.password(p);
        }
        Ok(config)
    }
}

/// Checks `[history]`; `None` when the section is absent.
pub(super) fn validate(
    raw: Option<RawHistory>,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems<'_>,
) -> Option<HistoryConfig> {
    let raw = raw?;
    let backend = match raw.backend.as_deref().unwrap_or("sqlite") {
        "sqlite" => {
            if raw.url.is_some() {
                p.add("history.url", "applies only to backend = \"postgres\"; remove it or set the backend");
            }
            HistoryBackend::Sqlite { path: raw.path.unwrap_or_else(|| PathBuf::from("data/history.sqlite")) }
        }
        "postgres" => {
            if raw.path.is_some() {
                p.add("history.path", "applies only to backend = \"sqlite\"; remove it or set the backend");
            }
            match raw.url.as_deref().map(|u| pg_target(u, env(PG_PASSWORD_VAR))) {
                None => {
                    p.add(
                        "history.url",
                        "is missing; backend = \"postgres\" needs url = \"postgresql://user@host:5432/db\" \
                         (the password in IMBALANCE_MONITOR_PG_PASSWORD)",
                    );
                    return None;
                }
                Some(Err(why)) => {
                    p.add("history.url", why);
                    return None;
                }
                Some(Ok(target)) => HistoryBackend::Postgres(target),
            }
        }
        other => {
            p.add("history.backend", format_args!("is {other:?}; use \"sqlite\" (the default) or \"postgres\""));
            return None;
        }
    };
    let sample_ms = raw.sample_ms.unwrap_or(1000);
    if sample_ms > MAX_SAMPLE_MS {
        p.add(
            "history.sample_ms",
            format_args!("is {sample_ms}; use 0 (every update) to {MAX_SAMPLE_MS} ms (default 1000)"),
        );
    }
    let retention = match raw.retention_days {
        None => None,
        Some(d) if d.is_finite() && d > 0.0 && d <= MAX_RETENTION_DAYS => Some(Duration::from_secs_f64(d * 86_400.0)),
        Some(d) => {
            p.add(
                "history.retention_days",
                format_args!("is {d}; use a number of days above 0 and at most {MAX_RETENTION_DAYS}, or remove it to keep everything"),
            );
            None
        }
    };
    Some(HistoryConfig { backend, sample: Duration::from_millis(sample_ms.min(MAX_SAMPLE_MS)), retention })
}

/// Parses a `postgresql://` URL. Messages quote only the password-free form.
fn pg_target(url: &str, env_password: Option<String>) -> Result<PgTarget, String> {
    let url = url.trim();
    let Some(rest) = url.strip_prefix("postgresql://").or_else(|| url.strip_prefix("postgres://")) else {
        return Err("is not a postgresql:// URL; write it as \"postgresql://user@host:5432/db\"".into());
    };
    let (authority, tail) = rest.split_once('/').map_or((rest, ""), |(a, t)| (a, t));
    let (userinfo, host) = authority.rsplit_once('@').map_or(("", authority), |(u, h)| (u, h));
    let (user, url_password) = match userinfo.split_once(':') {
        Some((u, pw)) => (u, Some(pw)),
        None => (userinfo, None),
    };
    let display_url = if userinfo.is_empty() {
        format!("postgresql://{host}/{tail}")
    } else {
        format!("postgresql://{user}@{host}/{tail}")
    };
    if host.is_empty() {
        return Err(format!("is {display_url:?} (password hidden), which names no host"));
    }
    let password = env_password.filter(|p| !p.is_empty()).or_else(|| url_password.map(percent_decode));
    if let Some(pw) = &password {
        crate::sanitize::register_secret(pw);
        if let Some(raw) = url_password {
            crate::sanitize::register_secret(raw);
        }
    }
    let target = PgTarget { url: display_url.clone(), display_url, password };
    match target.url.parse::<postgres::Config>() {
        Ok(_) => Ok(target),
        Err(e) => Err(format!("is {:?} (password hidden), which is not a valid URL: {e}", target.display_url)),
    }
}

/// `%XX` escapes decoded (URL passwords may contain `@`, `:` or `/` that way).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `[history]` lines of `check-config` (password redacted).
pub(super) fn render(h: &HistoryConfig, w: &mut String) {
    use std::fmt::Write as _;
    let _ = writeln!(w, "[history]");
    match &h.backend {
        HistoryBackend::Sqlite { path } => {
            let _ = writeln!(w, "backend = \"sqlite\"");
            let _ = writeln!(w, "path = {}", super::render::q(&path.display().to_string()));
        }
        HistoryBackend::Postgres(t) => {
            let _ = writeln!(w, "backend = \"postgres\"");
            let _ = writeln!(w, "url = {}", super::render::q(&t.display_url));
            if t.has_password() {
                let _ = writeln!(w, "# password: <redacted> (from {PG_PASSWORD_VAR} or the URL)");
            } else {
                let _ = writeln!(w, "# password: not set ({PG_PASSWORD_VAR})");
            }
        }
    }
    let _ = writeln!(w, "sample_ms = {}", h.sample.as_millis());
    match h.retention {
        Some(r) => writeln!(w, "retention_days = {}\n", r.as_secs_f64() / 86_400.0),
        None => writeln!(w, "# retention_days: not set (rows are kept)\n"),
    }
    .ok();
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;
    use crate::config::Env;
    use std::path::Path;

    fn load(text: &str, vars: &[(&str, &str)]) -> Result<Config, String> {
        Config::from_toml_with_env(Path::new("t.toml"), text, &Env::fixed(vars, &[])).map_err(|e| e.to_string())
    }

    #[test]
    fn an_empty_section_means_sqlite_with_the_documented_defaults() {
        let h = load("[history]\n", &[]).unwrap().history.unwrap();
        assert_eq!(h.backend, HistoryBackend::Sqlite { path: PathBuf::from("data/history.sqlite") });
        assert_eq!(h.sample, Duration::from_secs(1));
        assert_eq!(h.retention, None);
        assert!(load("", &[]).unwrap().history.is_none());
    }

    #[test]
    fn the_postgres_password_never_appears_in_rendering_debug_or_errors() {
        let text = "[history]\nbackend='postgres'\nurl='postgresql://mon:s3cr%40tPW@db.example:5433/hist'\n";
        let c = load(text, &[]).unwrap();
        let Some(HistoryBackend::Postgres(t)) = c.history.as_ref().map(|h| &h.backend) else { panic!() };
        assert_eq!(t.display_url, "postgresql://mon@db.example:5433/hist");
        let pg = t.client_config().unwrap();
        assert_eq!(pg.get_password(), Some(&b"s3cr@tPW"[..]));
        let shown = format!("{}{:?}", c.render(), c);
        assert!(!shown.contains("s3cr") && shown.contains("<redacted>"), "{shown}");
        // Whatever logs it (a driver's error, a URL) shows it redacted.
        assert_eq!(crate::sanitize::redact_secrets("auth s3cr@tPW and s3cr%40tPW"), "auth <redacted> and <redacted>");
        let env = load(text, &[(PG_PASSWORD_VAR, "fromEnv99")]).unwrap();
        let Some(HistoryBackend::Postgres(t)) = env.history.map(|h| h.backend) else { panic!() };
        assert_eq!(t.client_config().unwrap().get_password(), Some(&b"fromEnv99"[..]));
        let e = load("[history]\nbackend='postgres'\nurl='mysql://u:hunter2pw@h/d'\n", &[]).unwrap_err();
        assert!(e.contains("`history.url` is not a postgresql:// URL") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn bad_history_keys_are_named() {
        let e = load("[history]\nbackend='mongo'\nsample_ms=99999999\nretention_days=-1\n", &[]).unwrap_err();
        assert!(e.contains("t.toml:2: `history.backend` is \"mongo\""), "{e}");
        let e = load("[history]\nsample_ms=99999999\nretention_days=-1\n", &[]).unwrap_err();
        assert!(e.contains("t.toml:2: `history.sample_ms` is 99999999"), "{e}");
        assert!(e.contains("t.toml:3: `history.retention_days` is -1"), "{e}");
        let e = load("[history]\nbackend='postgres'\n", &[]).unwrap_err();
        assert!(e.contains("`history.url` is missing"), "{e}");
    }
}
