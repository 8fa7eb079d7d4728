//! Recordings as a frame source: combined-stream lines forwarded byte-for-byte,
//! in file order, at their recorded offsets.
//!
//! The recording is the market's clock, and like the exchange's it runs
//! whether anyone listens or not: a line of a stream nobody wants still takes
//! its time (or its slot at a fixed rate) but is not sent, so a client that
//! reconnects finds the market where it would be, not where it left it.
//!
//! Played once, the files are streamed (memory stays flat for a day-long
//! recording). Looped, they are loaded once so every pass is a walk over
//! shared frames; passes after the first shift each partial-depth
//! `lastUpdateId` by a whole span, so it keeps increasing across passes and a
//! client that deduplicates by it keeps accepting frames.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use super::frame::{Frame, split_envelope, update_id_in};
use super::market::{Peek, Source};
use super::streams::{StreamId, StreamNames};
use crate::recording::{Line, RecordingError, RecordingReader};

/// Gap before a looped recording of a single frame starts again.
const SINGLE_FRAME_LOOP_GAP: Duration = Duration::from_millis(100);

/// The recorded market.
pub struct Recorded {
    names: LocalNames,
    wanted: Vec<bool>,
    mode: Mode,
    /// The frame `peek` announced.
    pending: Option<Pending>,
}

enum Mode {
    Once(Stream),
    /// Files still to be loaded, by `prepare` on the market thread.
    Unloaded(VecDeque<RecordingReader>),
    Looped(Loop),
}

/// A frame announced by `peek`: when it is due, and where it comes from.
struct Pending {
    at: Duration,
    candidate: Candidate,
}

enum Candidate {
    /// A streamed line, wrapped as a frame only if someone wants it.
    Line(RecordedLine),
    /// Frame `index` of the loaded recording, in pass `pass`.
    Loaded { index: usize, pass: u64 },
}

/// Streaming through the files once.
struct Stream {
    readers: VecDeque<RecordingReader>,
    clock: RecordClock,
}

/// A loaded recording replayed pass after pass.
struct Loop {
    frames: Vec<Loaded>,
    next: usize,
    pass: u64,
    /// Source time one pass takes, including a typical gap before the next.
    pass_time: Duration,
    /// How far `lastUpdateId` moves per pass.
    update_id_span: u64,
}

struct Loaded {
    offset: Duration,
    frame: Arc<Frame>,
    data: Range<usize>,
    /// Where the payload's `lastUpdateId` digits are, and their value.
    update_id: Option<(Range<usize>, u64)>,
}

/// One combined-stream line of a recording.
struct RecordedLine {
    offset: Duration,
    stream: StreamId,
    json: String,
    /// The payload's range in `json`.
    data: Range<usize>,
}

/// Stream names met in the recording. The shared interner is locked only
/// for a name's first sight.
struct LocalNames {
    shared: StreamNames,
    ids: HashMap<Box<str>, StreamId>,
}

impl LocalNames {
    fn intern(&mut self, name: &str) -> StreamId {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.shared.intern(name);
        self.ids.insert(name.into(), id);
        id
    }
}

/// Turns receive times into offsets from the first line, never going back
/// (a later file that starts earlier plays without a pause, not in the past).
#[derive(Default)]
struct RecordClock {
    first_ns: Option<u64>,
    last: Duration,
}

impl RecordClock {
    fn offset(&mut self, recv_ns: u64) -> Duration {
        let first = *self.first_ns.get_or_insert(recv_ns);
        self.last = self.last.max(Duration::from_nanos(recv_ns.saturating_sub(first)));
        self.last
    }
}

/// The next combined-stream line of the files; `None` at the end. Lines that
/// are not combined-stream messages (a REST snapshot, junk) are skipped.
fn next_line(
    readers: &mut VecDeque<RecordingReader>,
    clock: &mut RecordClock,
    names: &mut LocalNames,
) -> Result<Option<RecordedLine>, RecordingError> {
    while let Some(reader) = readers.front_mut() {
        let Some(line) = reader.next_line()? else {
            readers.pop_front();
            continue;
        };
        let Line::Frame { recv, json } = line else { continue };
        let offset = clock.offset(recv.0);
        let Ok(json) = std::str::from_utf8(json) else { continue };
        let Some((name, data)) = split_envelope(json) else { continue };
        let stream = names.intern(name);
        return Ok(Some(RecordedLine { offset, stream, json: json.to_owned(), data }));
    }
    Ok(None)
}

impl Loop {
    fn load(mut readers: VecDeque<RecordingReader>, names: &mut LocalNames) -> Result<Self, RecordingError> {
        let mut clock = RecordClock::default();
        let mut frames = Vec::new();
        while let Some(RecordedLine { offset, stream, json, data }) = next_line(&mut readers, &mut clock, names)? {
            let update_id = update_id_in(&json, data.clone());
            if let Some(frame) = Frame::from_combined(stream, json, data.clone()) {
                frames.push(Loaded { offset, frame: Arc::new(frame), data, update_id });
            }
        }
        let last = frames.last().map_or(Duration::ZERO, |f| f.offset);
        let gap = match u32::try_from(frames.len().saturating_sub(1)) {
            Ok(0) | Err(_) => SINGLE_FRAME_LOOP_GAP,
            Ok(n) => last / n,
        };
        let ids = frames.iter().filter_map(|f| f.update_id.as_ref().map(|u| u.1));
        let (lo, hi) = ids.fold((u64::MAX, 0), |(lo, hi), id| (lo.min(id), hi.max(id)));
        let update_id_span = if lo <= hi { hi - lo + 1 } else { 0 };
        Ok(Loop { frames, next: 0, pass: 0, pass_time: last.saturating_add(gap), update_id_span })
    }

    /// The next frame's offset, index and pass; `None` for an empty recording.
    fn advance(&mut self) -> Option<(Duration, usize, u64)> {
        if self.frames.is_empty() {
            return None;
        }
        if self.next == self.frames.len() {
            self.next = 0;
            self.pass += 1;
        }
        let index = self.next;
        self.next += 1;
        let base = self.pass_time.saturating_mul(u32::try_from(self.pass).unwrap_or(u32::MAX));
        Some((base.saturating_add(self.frames[index].offset), index, self.pass))
    }

    /// Frame `index` as pass `pass` sends it.
    fn frame(&self, index: usize, pass: u64) -> Option<Arc<Frame>> {
        let f = self.frames.get(index)?;
        match &f.update_id {
            Some((digits, id)) if pass > 0 => {
                shifted(f, digits.clone(), id.saturating_add(pass.saturating_mul(self.update_id_span)))
            }
            _ => Some(Arc::clone(&f.frame)),
        }
    }
}

/// A copy of a loaded frame with its `lastUpdateId` digits replaced by `id`.
fn shifted(f: &Loaded, digits: Range<usize>, id: u64) -> Option<Arc<Frame>> {
    let text = f.frame.combined.as_str();
    let mut json = String::with_capacity(text.len() + 8);
    json.push_str(text.get(..digits.start)?);
    let _ = write!(json, "{id}");
    let grown = json.len() - digits.start;
    json.push_str(text.get(digits.end..)?);
    let data = f.data.start..(f.data.end + grown).checked_sub(digits.len())?;
    Frame::from_combined(f.frame.stream, json, data).map(Arc::new)
}

impl Recorded {
    /// A source over already opened files, played once or looped.
    pub fn new(readers: Vec<RecordingReader>, looped: bool, names: StreamNames) -> Self {
        let readers = VecDeque::from(readers);
        let mode = if looped {
            Mode::Unloaded(readers)
        } else {
            Mode::Once(Stream { readers, clock: RecordClock::default() })
        };
        Recorded { names: LocalNames { shared: names, ids: HashMap::new() }, wanted: Vec::new(), mode, pending: None }
    }

    fn is_wanted(&self, id: StreamId) -> bool {
        self.wanted.get(id.index()).copied().unwrap_or(false)
    }
}

impl Source for Recorded {
    fn prepare(&mut self) -> Result<(), RecordingError> {
        if let Mode::Unloaded(readers) = &mut self.mode {
            let readers = std::mem::take(readers);
            self.mode = Mode::Looped(Loop::load(readers, &mut self.names)?);
        }
        Ok(())
    }

    fn want(&mut self, id: StreamId, wanted: bool, _now: Duration) {
        if self.wanted.len() <= id.index() {
            self.wanted.resize(id.index() + 1, false);
        }
        self.wanted[id.index()] = wanted;
    }

    fn peek(&mut self, _now: Duration) -> Result<Peek, RecordingError> {
        if let Some(p) = &self.pending {
            return Ok(Peek::At(p.at));
        }
        self.prepare()?;
        let pending = match &mut self.mode {
            Mode::Once(s) => next_line(&mut s.readers, &mut s.clock, &mut self.names)?
                .map(|line| Pending { at: line.offset, candidate: Candidate::Line(line) }),
            Mode::Looped(l) => {
                l.advance().map(|(at, index, pass)| Pending { at, candidate: Candidate::Loaded { index, pass } })
            }
            Mode::Unloaded(_) => None,
        };
        Ok(match pending {
            Some(p) => {
                let at = p.at;
                self.pending = Some(p);
                Peek::At(at)
            }
            None => Peek::End,
        })
    }

    fn take(&mut self) -> Option<Arc<Frame>> {
        match self.pending.take()?.candidate {
            Candidate::Line(line) if self.is_wanted(line.stream) => {
                Frame::from_combined(line.stream, line.json, line.data).map(Arc::new)
            }
            Candidate::Loaded { index, pass } => match &self.mode {
                Mode::Looped(l) if l.frames.get(index).is_some_and(|f| self.is_wanted(f.frame.stream)) => {
                    l.frame(index, pass)
                }
                _ => None,
            },
            Candidate::Line(_) => None,
        }
    }
}
