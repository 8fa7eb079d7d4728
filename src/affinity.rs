//! CPU placement: the hot thread alone on its core.
//!
//! Pinning the hot thread is only half of it. Every other thread of the
//! process (cold, logger, recorder, Telegram, metrics, resolver) would still
//! be free to run on the pinned core, and each of their wake-ups there
//! preempts the hot loop for microseconds: the cold thread alone polls its
//! queue thousands of times a second. So before the hot thread starts, every
//! existing thread is moved to the other allowed cores, and threads created
//! later inherit that mask from their creators.

use std::io;

/// Logical cores this thread may run on (its affinity mask), ascending.
pub fn allowed_cores() -> io::Result<Vec<usize>> {
    let set = get(0)?;
    Ok((0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect())
}

/// What [`isolate`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// Every other thread now runs on `others`.
    Done { threads: usize, others: Vec<usize> },
    /// The hot core is the only allowed core: nothing to move the others to.
    NoOtherCore,
}

/// Moves every thread of this process off `hot` onto the remaining allowed
/// cores (including the caller, so threads it spawns later stay off too).
/// Call it before starting the thread that pins itself to `hot`.
pub fn isolate(hot: usize) -> io::Result<Isolation> {
    let others: Vec<usize> = allowed_cores()?.into_iter().filter(|&c| c != hot).collect();
    if others.is_empty() {
        return Ok(Isolation::NoOtherCore);
    }
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in &others {
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    let mut threads = 0;
    for entry in std::fs::read_dir("/proc/self/task")? {
        let Some(tid) = entry?.file_name().to_str().and_then(|s| s.parse::<libc::pid_t>().ok()) else { continue };
        match set_for(tid, &set) {
            Ok(()) => threads += 1,
            // The thread ended between listing and moving it.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Isolation::Done { threads, others })
}

/// The affinity mask of thread `tid` (0 = the caller).
fn get(tid: libc::pid_t) -> io::Result<libc::cpu_set_t> {
    // SAFETY: the set is plain data, sized by `size_of`; the kernel fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc == 0 { Ok(set) } else { Err(io::Error::last_os_error()) }
}

fn set_for(tid: libc::pid_t, set: &libc::cpu_set_t) -> io::Result<()> {
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), set) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}
