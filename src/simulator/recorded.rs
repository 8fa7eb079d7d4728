//! Recordings as a frame source: combined-stream lines forwarded byte-for-byte,
//! in file order, at their recorded offsets.
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
    names: StreamNames,
    /// Names already interned by this thread: the shared interner is locked
    /// only for a name's first sight.
    ids: HashMap<Box<str>, StreamId>,
    wanted: Vec<bool>,
    mode: Mode,
    /// The frame `peek` announced, with its offset.
    pending: Option<(Duration, Arc<Frame>)>,
}

enum Mode {
    Once(Stream),
    /// Files still to be loaded, by `prepare` on the market thread.
    LoopPending(VecDeque<RecordingReader>),
    Looped(Loop),
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

impl Recorded {
    /// A source over already opened files, played once or looped.
    pub fn new(readers: Vec<RecordingReader>, looped: bool, names: StreamNames) -> Self {
        let readers = VecDeque::from(readers);
        let mode = if looped {
            Mode::LoopPending(readers)
        } else {
            Mode::Once(Stream { readers, clock: RecordClock::default() })
        };
        Recorded { names, ids: HashMap::new(), wanted: Vec::new(), mode, pending: None }
    }

    fn is_wanted(&self, id: StreamId) -> bool {
        self.wanted.get(id.index()).copied().unwrap_or(false)
    }

    fn intern(&mut self, name: &str) -> StreamId {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.intern(name);
        self.ids.insert(name.into(), id);
        id
    }

    /// The next combined-stream line of the files, with its stream id,
    /// offset and payload range, wanted or not; `None` at the end.
    fn next_line(
        &mut self,
        readers: &mut VecDeque<RecordingReader>,
        clock: &mut RecordClock,
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
            let stream = self.intern(name);
            return Ok(Some(RecordedLine { offset, stream, json: json.to_owned(), data }));
        }
        Ok(None)
    }

    fn peek_once(&mut self, mut stream: Stream) -> Result<(Peek, Mode), RecordingError> {
        loop {
            match self.next_line(&mut stream.readers, &mut stream.clock) {
                Err(e) => return Err(e),
                Ok(None) => return Ok((Peek::End, Mode::Once(stream))),
                Ok(Some(line)) => {
                    if !self.is_wanted(line.stream) {
                        continue;
                    }
                    if let Some(frame) = Frame::from_combined(line.stream, line.json, line.data) {
                        self.pending = Some((line.offset, Arc::new(frame)));
                        return Ok((Peek::At(line.offset), Mode::Once(stream)));
                    }
                }
            }
        }
    }

    fn load(&mut self, mut readers: VecDeque<RecordingReader>) -> Result<Loop, RecordingError> {
        let mut clock = RecordClock::default();
        let mut frames = Vec::new();
        while let Some(RecordedLine { offset, stream, json, data }) = self.next_line(&mut readers, &mut clock)? {
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
        Ok(Loop { frames, next: 0, pass: 0, pass_time: last + gap, update_id_span })
    }

    fn peek_looped(&mut self, l: &mut Loop) -> Peek {
        if l.frames.is_empty() {
            return Peek::End;
        }
        // At most one full pass of unwanted frames is skipped per peek.
        for _ in 0..l.frames.len() {
            if l.next == l.frames.len() {
                l.next = 0;
                l.pass += 1;
            }
            let f = &l.frames[l.next];
            l.next += 1;
            if !self.is_wanted(f.frame.stream) {
                continue;
            }
            let base = l.pass_time.saturating_mul(u32::try_from(l.pass).unwrap_or(u32::MAX));
            let frame = match (&f.update_id, l.pass) {
                (Some((digits, id)), pass) if pass > 0 => {
                    shifted(f, digits.clone(), id + pass * l.update_id_span).unwrap_or_else(|| Arc::clone(&f.frame))
                }
                _ => Arc::clone(&f.frame),
            };
            let at = base + f.offset;
            self.pending = Some((at, frame));
            return Peek::At(at);
        }
        Peek::Idle
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

impl Source for Recorded {
    fn prepare(&mut self) -> Result<(), RecordingError> {
        if let Mode::LoopPending(readers) = &mut self.mode {
            let readers = std::mem::take(readers);
            self.mode = Mode::Looped(self.load(readers)?);
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
        if let Some((at, frame)) = &self.pending {
            if self.is_wanted(frame.stream) {
                return Ok(Peek::At(*at));
            }
            self.pending = None;
        }
        self.prepare()?;
        let mode = std::mem::replace(&mut self.mode, Mode::LoopPending(VecDeque::new()));
        let (peek, mode) = match mode {
            Mode::Once(stream) => self.peek_once(stream)?,
            Mode::Looped(mut l) => (self.peek_looped(&mut l), Mode::Looped(l)),
            pending @ Mode::LoopPending(_) => (Peek::End, pending),
        };
        self.mode = mode;
        Ok(peek)
    }

    fn take(&mut self) -> Option<Arc<Frame>> {
        self.pending.take().map(|(_, frame)| frame)
    }
}
