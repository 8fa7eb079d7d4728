//! The journal over an injected disk that fails mid-line, and over real files.

use super::*;

/// An in-memory file whose disk holds `room` more bytes (then `ENOSPC`),
/// whose truncation can be made to fail, and whose path can be "deleted".
#[derive(Debug, Default)]
struct ScriptedFile {
    data: Vec<u8>,
    /// Bytes the disk still takes; `None` is unlimited.
    room: Option<usize>,
    truncate_fails: bool,
    /// The next `follow_path` finds the path gone and starts a new file.
    deleted: bool,
    /// Files replaced by a new one, oldest first.
    old: Vec<Vec<u8>>,
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSPC)
}

impl JournalFile for ScriptedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.room.map_or(buf.len(), |r| r.min(buf.len()));
        if n == 0 {
            return Err(enospc());
        }
        if let Some(r) = &mut self.room {
            *r -= n;
        }
        self.data.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn size(&mut self) -> io::Result<u64> {
        Ok(self.data.len() as u64)
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        if self.truncate_fails {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let freed = self.data.len() - len as usize;
        self.data.truncate(len as usize);
        if let Some(r) = &mut self.room {
            *r += freed;
        }
        Ok(())
    }

    fn ends_inside_a_line(&mut self) -> io::Result<bool> {
        Ok(self.data.last().is_some_and(|&b| b != b'\n'))
    }

    fn follow_path(&mut self) -> io::Result<bool> {
        if !std::mem::take(&mut self.deleted) {
            return Ok(false);
        }
        self.old.push(std::mem::take(&mut self.data));
        Ok(true)
    }
}

fn journal(file: ScriptedFile, backlog: usize) -> Journal<ScriptedFile> {
    Journal::with_file(Path::new("alerts.jsonl"), file).with_backlog(backlog)
}

fn rec(n: u32) -> String {
    format!(r#"{{"seq":{n},"pad":"{}"}}"#, "x".repeat(40))
}

fn text(j: &Journal<ScriptedFile>) -> String {
    String::from_utf8(j.file.data.clone()).unwrap()
}

/// Every line of the file parses as JSON; returns their `seq`s.
fn seqs(text: &str) -> Vec<u64> {
    assert!(text.is_empty() || text.ends_with('\n'), "ends inside a line: {text:?}");
    text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"].as_u64().unwrap()).collect()
}

#[test]
fn a_write_cut_short_by_a_full_disk_is_rolled_back_and_the_line_waits() {
    let mut j = journal(ScriptedFile { room: Some(70), ..ScriptedFile::default() }, 10);
    assert!(matches!(j.append(&rec(1)).unwrap(), Appended::Written { backlog: 0 }));
    // 11 bytes of room left: line 2 gets 11 bytes in, then ENOSPC.
    match j.append(&rec(2)).unwrap() {
        Appended::Queued { waiting: 1, error } => assert_eq!(error.source.raw_os_error(), Some(libc::ENOSPC)),
        other => panic!("{other:?}"),
    }
    assert_eq!(seqs(&text(&j)), vec![1], "the fragment was cut away");
    assert!(matches!(j.append(&rec(3)).unwrap(), Appended::Queued { waiting: 2, .. }));
    // Space is freed: the waiting lines go first, in order, then the new one.
    j.file.room = None;
    assert!(matches!(j.append(&rec(4)).unwrap(), Appended::Written { backlog: 2 }));
    assert_eq!(seqs(&text(&j)), vec![1, 2, 3, 4]);
    let c = j.counters();
    assert_eq!((c.written, c.queued, c.dropped, c.fragments), (4, 2, 0, 0));
    assert_eq!(c.failed_writes, 2);
}

#[test]
fn a_fragment_that_cannot_be_cut_away_is_ended_before_the_next_line() {
    let mut j = journal(ScriptedFile { room: Some(60), truncate_fails: true, ..ScriptedFile::default() }, 10);
    j.append(&rec(1)).unwrap();
    assert!(matches!(j.append(&rec(2)).unwrap(), Appended::Queued { .. }));
    assert_eq!(j.counters().fragments, 1);
    j.file.room = None;
    j.append(&rec(3)).unwrap();
    let t = text(&j);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 4, "{t}");
    assert_eq!(lines[1], &rec(2)[..1], "the fragment alone on its line");
    assert_eq!(seqs(&format!("{}\n{}\n{}\n", lines[0], lines[2], lines[3])), vec![1, 2, 3]);
}

#[test]
fn a_disk_that_takes_nothing_leaves_no_bytes_and_keeps_the_order() {
    let mut j = journal(ScriptedFile { room: Some(0), ..ScriptedFile::default() }, 10);
    for n in 1..=3 {
        assert!(matches!(j.append(&rec(n)).unwrap(), Appended::Queued { .. }));
    }
    assert_eq!(text(&j), "");
    j.file.room = None;
    j.retry_backlog();
    assert_eq!(seqs(&text(&j)), vec![1, 2, 3]);
    assert_eq!(j.waiting(), 0);
}

#[test]
fn lines_beyond_the_backlog_are_counted_as_dropped() {
    let mut j = journal(ScriptedFile { room: Some(0), ..ScriptedFile::default() }, 2);
    j.append(&rec(1)).unwrap();
    j.append(&rec(2)).unwrap();
    let err = j.append(&rec(3)).unwrap_err();
    assert_eq!(err.source.raw_os_error(), Some(libc::ENOSPC));
    assert_eq!(err.to_string(), format!("alert journal alerts.jsonl: {}", enospc()));
    j.file.room = None;
    j.append(&rec(4)).unwrap();
    assert_eq!(seqs(&text(&j)), vec![1, 2, 4]);
    assert_eq!(j.counters().dropped, 1);
}

#[test]
fn without_a_backlog_every_failure_is_returned() {
    let mut j = journal(ScriptedFile { room: Some(5), ..ScriptedFile::default() }, 0);
    assert!(j.append(&rec(1)).is_err());
    assert_eq!(text(&j), "");
    assert_eq!(j.waiting(), 0);
}

#[test]
fn a_deleted_journal_gets_the_later_lines_in_a_new_file() {
    let mut j = journal(ScriptedFile::default(), 10);
    j.append(&rec(1)).unwrap();
    j.file.deleted = true;
    j.append(&rec(2)).unwrap();
    assert_eq!(seqs(&String::from_utf8(j.file.old[0].clone()).unwrap()), vec![1]);
    assert_eq!(seqs(&text(&j)), vec![2]);
    assert_eq!(j.counters().reopened, 1);
}

#[test]
fn a_torn_last_line_from_a_crash_is_ended_before_the_first_record() {
    let file = ScriptedFile { data: format!("{}\n{{\"seq\":", rec(1)).into_bytes(), ..ScriptedFile::default() };
    let mut j = journal(file, 10);
    j.append(&rec(2)).unwrap();
    assert_eq!(text(&j), format!("{}\n{{\"seq\":\n{}\n", rec(1), rec(2)));
    assert_eq!(j.counters().fragments, 1);
}

#[test]
fn appends_lines_and_creates_the_directory() {
    let dir = std::env::temp_dir().join(format!("im-journal-{}", std::process::id()));
    let path = dir.join("sub/alerts.jsonl");
    let _ = std::fs::remove_dir_all(&dir);
    let mut j = Journal::open(&path).unwrap();
    j.append(r#"{"a":1}"#).unwrap();
    drop(j);
    let mut j = Journal::open(&path).unwrap();
    j.append(r#"{"a":2}"#).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"a\":2}\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_journal_removed_or_moved_on_disk_is_recreated_at_its_path() {
    let dir = std::env::temp_dir().join(format!("im-journal-rm-{}", std::process::id()));
    let path = dir.join("alerts.jsonl");
    let _ = std::fs::remove_dir_all(&dir);
    let mut j = Journal::open(&path).unwrap().with_backlog(10);
    j.append(r#"{"seq":1}"#).unwrap();
    std::fs::remove_file(&path).unwrap();
    j.append(r#"{"seq":2}"#).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"seq\":2}\n");
    std::fs::rename(&path, dir.join("alerts.1.jsonl")).unwrap();
    j.append(r#"{"seq":3}"#).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"seq\":3}\n");
    assert_eq!(std::fs::read_to_string(dir.join("alerts.1.jsonl")).unwrap(), "{\"seq\":2}\n");
    assert_eq!(j.counters().reopened, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}
