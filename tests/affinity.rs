//! Reserving the hot core: every other thread of the process leaves it, and
//! threads started afterwards never land on it. Its own test binary, because
//! it changes the whole process's placement.

use imbalance_monitor::affinity::{Isolation, allowed_cores, isolate};

#[test]
fn every_other_thread_leaves_the_hot_core_and_new_threads_stay_off_it() {
    let before = allowed_cores().expect("read the affinity mask");
    assert!(!before.is_empty());
    let hot = *before.last().unwrap();
    // A thread that exists before the move, parked until asked what it may use.
    let (ask, asked) = std::sync::mpsc::channel::<()>();
    let existing = std::thread::spawn(move || {
        asked.recv().unwrap();
        allowed_cores().unwrap()
    });
    match isolate(hot).expect("isolate the hot core") {
        Isolation::NoOtherCore => {
            assert_eq!(before, vec![hot], "only a single allowed core may leave the others on it");
            ask.send(()).unwrap();
            assert_eq!(existing.join().unwrap(), before);
        }
        Isolation::Done { threads, others } => {
            let expected: Vec<usize> = before.iter().copied().filter(|&c| c != hot).collect();
            assert_eq!(others, expected);
            assert!(threads >= 2, "the caller and the parked thread were moved, got {threads}");
            assert_eq!(allowed_cores().unwrap(), expected, "the caller");
            ask.send(()).unwrap();
            assert_eq!(existing.join().unwrap(), expected, "a thread that existed before");
            let later = std::thread::spawn(|| allowed_cores().unwrap()).join().unwrap();
            assert_eq!(later, expected, "a thread started afterwards inherits the mask");
        }
    }
}
