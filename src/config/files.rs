//! The files a run opens — the alert journal, the log file, the extra CA —
//! checked the way the run will use them, so `check-config` rejects what
//! `run` would only reject after starting (or, for a journal that is the
//! log file, never reject at all and interleave log lines into it).
//!
//! Nothing is created here: a journal or log directory that does not exist
//! yet is fine (the run creates it). Whether the service's user may write
//! there is not checked: `check-config` often runs as another user, and a
//! journal that is not writable is a runtime failure (exit 1).

use std::path::{Component, Path, PathBuf};

use super::Problems;
use crate::feed::tls::{self, TlsConfigError};

/// A file-valued key and its value.
pub(super) struct FileKey<'a> {
    /// The key path (`log.file`), or a description (`the config file`)
    /// for a file no key names.
    pub key: &'a str,
    pub path: &'a Path,
    /// A file name to suggest, e.g. `alerts.jsonl`.
    pub example: &'a str,
}

/// `key` names a file the run will create or append to: not empty, not a
/// directory, not below a file.
pub(super) fn check_writable_file(f: &FileKey<'_>, p: &mut Problems<'_>) {
    let (key, path) = (f.key, f.path);
    if path.as_os_str().is_empty() {
        p.add(key, format_args!("is empty; give it a file path, e.g. \"logs/{}\"", f.example));
        return;
    }
    if path.is_dir() {
        p.add(
            key,
            format_args!(
                "is {}, a directory; name a file in it, e.g. \"{}\"",
                path.display(),
                path.join(f.example).display()
            ),
        );
        return;
    }
    if let Some(blocker) = path.ancestors().skip(1).find(|a| !a.as_os_str().is_empty() && a.exists())
        && !blocker.is_dir()
    {
        p.add(
            key,
            format_args!(
                "is {}, but {} is a file, so the directory cannot be created; choose another path",
                path.display(),
                blocker.display()
            ),
        );
    }
}

/// Two file-valued keys must not name the same file (the journal and the
/// log file, or either and the config file itself).
pub(super) fn check_distinct(a: &FileKey<'_>, b: &FileKey<'_>, p: &mut Problems<'_>) {
    if a.path.as_os_str().is_empty() || b.path.as_os_str().is_empty() {
        return;
    }
    if let (Some(x), Some(y)) = (resolved(a.path), resolved(b.path))
        && x == y
    {
        let other = if b.key.contains('.') { format!("`{}`", b.key) } else { b.key.to_string() };
        p.add(
            a.key,
            format_args!(
                "is {}, the same file as {other} ({}); each needs a file of its own, or one would write into the other",
                a.path.display(),
                b.path.display()
            ),
        );
    }
}

/// The absolute path `path` names, with symlinks resolved, whether or not
/// it exists yet: its longest existing ancestor canonicalised and the rest
/// appended, `.` and `..` resolved as the directories will be created.
fn resolved(path: &Path) -> Option<PathBuf> {
    let absolute = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir().ok()?.join(path) };
    let (existing, rest) = absolute
        .ancestors()
        .find_map(|a| a.canonicalize().ok().map(|c| (c, absolute.strip_prefix(a).unwrap_or(Path::new("")))))?;
    let mut out = existing;
    for part in rest.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => out.push(name),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Some(out)
}

/// `binance.ca_file`: a readable file of PEM certificates that rustls
/// accepts as roots — the same loading the run does.
pub(super) fn check_ca_file(key: &str, path: &Path, p: &mut Problems<'_>) {
    if !path.is_file() {
        p.add(key, format_args!("is {}, which is not a readable file; point it at a PEM certificate", path.display()));
        return;
    }
    match tls::client_config(Some(path)) {
        Ok(_) => {}
        Err(TlsConfigError::CaFileEmpty { .. }) => p.add(
            key,
            format_args!(
                "is {}, which holds no PEM certificate; it needs `-----BEGIN CERTIFICATE-----` blocks \
                 (convert a DER file with `openssl x509 -inform der -in ca.der -out ca.pem`)",
                path.display()
            ),
        ),
        Err(TlsConfigError::CaFile { reason, .. }) => p.add(
            key,
            format_args!(
                "is {}, whose certificates cannot be used: {reason}; point it at a PEM certificate",
                path.display()
            ),
        ),
        Err(e @ TlsConfigError::Rustls(_)) => p.add(key, format_args!("is {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("im-config-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.canonicalize().unwrap()
    }

    #[test]
    fn paths_that_do_not_exist_yet_resolve_through_their_existing_ancestor() {
        let dir = scratch("resolve");
        std::fs::create_dir(dir.join("real")).unwrap();
        std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).unwrap();
        let want = dir.join("real/new/alerts.jsonl");
        assert_eq!(resolved(&dir.join("link/new/alerts.jsonl")), Some(want.clone()));
        assert_eq!(resolved(&dir.join("link/new/x/../alerts.jsonl")), Some(want.clone()));
        assert_eq!(resolved(&dir.join("real/./new/alerts.jsonl")), Some(want));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
