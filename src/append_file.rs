//! An append-only file that follows its path.
//!
//! A process that keeps a file open keeps writing into it after `rm`, after
//! `mv` (logrotate without `copytruncate`) or after its directory is removed:
//! the writes succeed and nobody can ever read them. [`AppendFile`] remembers
//! which file (device and inode) it opened, so its owner can ask, with one
//! `stat` of the path, whether the path still names that file, and open a new
//! one there when it does not. The journal and the log file both need this.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// A file opened for appending (and reading its own bytes), with the identity
/// of what was opened.
#[derive(Debug)]
pub struct AppendFile {
    path: PathBuf,
    file: File,
    id: FileId,
}

/// Which file a path named when it was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(meta: &Metadata) -> FileId {
        FileId { dev: meta.dev(), ino: meta.ino() }
    }
}

impl AppendFile {
    /// Opens `path` for appending, creating it and its directory if needed.
    pub fn open(path: &Path) -> io::Result<AppendFile> {
        let (file, id) = open_at(path)?;
        Ok(AppendFile { path: path.to_path_buf(), file, id })
    }

    /// The path this file is kept at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Whether the path no longer names the open file: it was deleted,
    /// renamed away or replaced by another file. One `stat`. A path that
    /// cannot be checked for another reason (permissions, I/O) counts as
    /// unchanged, since opening it again would fail the same way.
    pub fn is_replaced(&self) -> bool {
        match std::fs::metadata(&self.path) {
            Ok(meta) => FileId::of(&meta) != self.id,
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        }
    }

    /// Opens whatever the path names now (creating the file and its
    /// directory). On failure the old handle is kept.
    pub fn reopen(&mut self) -> io::Result<()> {
        let (file, id) = open_at(&self.path)?;
        self.file = file;
        self.id = id;
        Ok(())
    }

    /// The file's last byte, `None` when it is empty: tells whether it ends
    /// inside a line.
    pub fn last_byte(&self) -> io::Result<Option<u8>> {
        let len = self.file.metadata()?.len();
        let Some(at) = len.checked_sub(1) else { return Ok(None) };
        let mut byte = [0u8];
        self.file.read_exact_at(&mut byte, at)?;
        Ok(Some(byte[0]))
    }
}

fn open_at(path: &Path) -> io::Result<(File, FileId)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new().create(true).read(true).append(true).open(path)?;
    let id = FileId::of(&file.metadata()?);
    Ok((file, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("im-append-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_deleted_file_is_noticed_and_reopened_at_its_path() {
        let dir = scratch("deleted");
        let path = dir.join("sub/a.txt");
        let mut f = AppendFile::open(&path).unwrap();
        assert!(!f.is_replaced());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(f.is_replaced());
        f.reopen().unwrap();
        assert!(!f.is_replaced());
        f.file().write_all(b"x\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "x\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_renamed_file_replaced_by_a_new_one_is_noticed() {
        let dir = scratch("renamed");
        let path = dir.join("a.txt");
        let f = AppendFile::open(&path).unwrap();
        std::fs::rename(&path, dir.join("a.1.txt")).unwrap();
        std::fs::write(&path, "new\n").unwrap();
        assert!(f.is_replaced());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_last_byte_tells_whether_the_file_ends_inside_a_line() {
        let dir = scratch("last");
        let path = dir.join("a.txt");
        let mut f = AppendFile::open(&path).unwrap();
        assert_eq!(f.last_byte().unwrap(), None);
        f.file().write_all(b"{\"a\":1}\n{\"a\"").unwrap();
        assert_eq!(f.last_byte().unwrap(), Some(b'"'));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
