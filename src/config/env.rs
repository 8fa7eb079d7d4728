//! Environment overrides: the process environment, over a `.env` file that
//! sits beside the config file.
//!
//! The `.env` file is optional and never overrides a variable that is really
//! set, so a secret in systemd's `EnvironmentFile` or the shell always wins.
//! Nothing is written into the process environment (that is unsound with
//! threads); lookups go through [`Env`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::Problem;

/// Selects the config file when `-c` is not given.
pub const CONFIG_VAR: &str = "IMBALANCE_MONITOR_CONFIG";
/// Overrides the `threshold` shorthand.
pub const THRESHOLD_VAR: &str = "IMBALANCE_THRESHOLD";

/// Variable lookups: real environment first, then `.env`.
#[derive(Clone, Debug, Default)]
pub struct Env {
    dotenv: HashMap<String, String>,
    /// The `.env` file that was read, if any.
    pub dotenv_path: Option<PathBuf>,
    /// Overrides the process environment (tests); `None` reads the real one.
    fixed: Option<HashMap<String, String>>,
}

impl Env {
    /// The process environment plus `<config dir>/.env` if present.
    pub fn for_config(config: &Path) -> Result<Env, Problem> {
        let path = config.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).join(".env");
        let mut env = Env::default();
        if let Ok(text) = std::fs::read_to_string(&path) {
            env.dotenv = parse_dotenv(&text).map_err(|(line, message)| Problem {
                key: String::new(),
                line: None,
                message: format!("{}:{line}: {message}", path.display()),
            })?;
            env.dotenv_path = Some(path);
        }
        Ok(env)
    }

    /// A fixed environment (the real one is ignored), for tests.
    pub fn fixed(vars: &[(&str, &str)], dotenv: &[(&str, &str)]) -> Env {
        Env {
            dotenv: dotenv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            dotenv_path: None,
            fixed: Some(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        }
    }

    /// The value of `key`: the environment's if set, else `.env`'s.
    pub fn get(&self, key: &str) -> Option<String> {
        let real = match &self.fixed {
            Some(vars) => vars.get(key).cloned(),
            None => std::env::var(key).ok(),
        };
        real.or_else(|| self.dotenv.get(key).cloned())
    }
}

/// `KEY=VALUE` lines; blank lines and `#` comments ignored; an optional
/// `export ` prefix; values may be wrapped in matching single or double quotes.
fn parse_dotenv(text: &str) -> Result<HashMap<String, String>, (usize, String)> {
    let mut vars = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err((i + 1, "expected KEY=VALUE".into()));
        };
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err((i + 1, format!("{key:?} is not a variable name")));
        }
        let value = value.trim();
        let value =
            ['"', '\''].iter().find_map(|&q| value.strip_prefix(q).and_then(|v| v.strip_suffix(q))).unwrap_or(value);
        vars.insert(key.to_string(), value.to_string());
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_lines_parse_with_quotes_comments_and_export() {
        let vars =
            parse_dotenv("# secrets\nexport TELEGRAM_BOT_TOKEN=\"123:abc\"\n\nTELEGRAM_CHAT_ID='-100,42'\nX = y \n")
                .unwrap();
        assert_eq!(vars["TELEGRAM_BOT_TOKEN"], "123:abc");
        assert_eq!(vars["TELEGRAM_CHAT_ID"], "-100,42");
        assert_eq!(vars["X"], "y");
        assert_eq!(parse_dotenv("A=1\nnot a pair\n"), Err((2, "expected KEY=VALUE".into())));
    }

    #[test]
    fn the_real_environment_wins_over_dotenv() {
        let env = Env::fixed(&[("A", "real")], &[("A", "file"), ("B", "file")]);
        assert_eq!(env.get("A").as_deref(), Some("real"));
        assert_eq!(env.get("B").as_deref(), Some("file"));
        assert_eq!(env.get("C"), None);
    }
}
