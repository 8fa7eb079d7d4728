//! The journal on a real 64 KiB filesystem that fills, frees and fills
//! again: every line in the file is whole, nothing reported kept is lost,
//! and the order holds.
//!
//! Needs root (it mounts a tmpfs); CI runs as root. Elsewhere it says loudly
//! that it was skipped.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use imbalance_monitor::sinks::journal::{Appended, BACKLOG_LINES, Journal};

/// A 64 KiB tmpfs, unmounted when dropped.
struct SmallFs(PathBuf);

impl SmallFs {
    fn mount(name: &str) -> Result<SmallFs, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not running as root".into());
        }
        let dir = std::env::temp_dir().join(format!("im-{name}-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let target = CString::new(dir.as_os_str().as_bytes()).unwrap();
        let (fs, opts) = (c"tmpfs", c"size=64k,mode=0700");
        // SAFETY: every pointer is a valid NUL-terminated string for the call.
        let rc = unsafe { libc::mount(fs.as_ptr(), target.as_ptr(), fs.as_ptr(), 0, opts.as_ptr().cast()) };
        if rc != 0 {
            return Err(format!("mount tmpfs on {}: {}", dir.display(), std::io::Error::last_os_error()));
        }
        Ok(SmallFs(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let target = CString::new(self.0.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid path string; detaching an fs we mounted.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Writes `path` until the filesystem refuses another byte.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = [b'f'; 512];
    loop {
        match f.write(&chunk) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// A journal record of ~300 bytes, so lines cross page boundaries.
fn record(seq: u64) -> String {
    format!(r#"{{"seq":{seq},"pad":"{}"}}"#, "p".repeat(280))
}

/// Every line of the journal, parsed; fails on any partial or invalid line.
fn seqs(path: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "the journal ends inside a line");
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: a torn line {l:?}"));
            v["seq"].as_u64().unwrap()
        })
        .collect()
}

#[test]
fn a_full_disk_never_tears_a_line_and_kept_lines_are_appended_in_order_once_it_frees() {
    let fs = match SmallFs::mount("journal-fs") {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!(
                "\n*** SKIPPED journal_disk_full: {why}; run the tests as root to check the journal on a full disk ***\n"
            );
            return;
        }
    };
    let path = fs.path().join("alerts.jsonl");
    let filler = fs.path().join("filler");
    let mut j = Journal::open(&path).unwrap().with_backlog(BACKLOG_LINES);
    let mut next = 1u64;
    for round in 0..3 {
        // Each round starts on a new, empty file.
        let first = next;
        // Some lines fit, then the disk is full.
        for _ in 0..20 {
            assert!(matches!(j.append(&record(next)).unwrap(), Appended::Written { backlog: 0 }));
            next += 1;
        }
        fill(&filler);
        while j.waiting() < 30 {
            if let Appended::Queued { error, .. } = j.append(&record(next)).unwrap() {
                assert_eq!(error.source.raw_os_error(), Some(libc::ENOSPC), "{error}");
            }
            next += 1;
            // While full, the file holds only whole lines, all but the waiting ones.
            assert_eq!(seqs(&path).last().copied(), Some(next - 1 - j.waiting() as u64), "round {round}");
        }
        assert_eq!(j.waiting(), 30);
        // Freed: the waiting lines go first, in order.
        std::fs::remove_file(&filler).unwrap();
        assert!(matches!(j.append(&record(next)).unwrap(), Appended::Written { backlog: 30 }));
        next += 1;
        assert_eq!(seqs(&path), (first..next).collect::<Vec<_>>(), "round {round}");
        // Keep the file small enough to fill again.
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(j.append(&record(next)).unwrap(), Appended::Written { backlog: 0 }));
        assert_eq!(seqs(&path), vec![next]);
        std::fs::remove_file(&path).unwrap();
        next += 1;
    }
    let c = j.counters();
    assert!(c.queued >= 90, "{c:?}");
    assert_eq!(c.dropped, 0);
    assert_eq!(c.fragments, 0);
    assert_eq!(c.reopened, 5);
    assert!(c.failed_writes >= 90, "{c:?}");
}
