//! Recordings as a frame source: combined-stream lines forwarded byte-for-byte,
//! in file order, at their recorded offsets.
//!
//! Diff-depth lines (`<sym>@depth@100ms`) and the bare REST snapshot lines of
//! collector recordings (`{"lastUpdateId":…}`, no symbol: in a collector file
//! it belongs to the file's one symbol) also move the simulator's own books
//! ([`DepthBooks`]) as the clock passes them; snapshot lines are never sent.
//! Each ten 100 ms events make one derived 1000 ms `<sym>@depth` event (the
//! recordings hold none), released with the tenth.
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

use std::path::PathBuf;

use super::depth::{DepthBooks, DiffEvent, MergedDiff, SimBook, Snapshot};
use super::frame::{Frame, split_envelope, update_id_in};
use super::market::{Peek, SnapshotAnswer, Source};
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
    books: DepthBooks,
    /// Derived `<sym>@depth` frames due at the offset they are paired with.
    derived: VecDeque<(Duration, Arc<Frame>)>,
    /// The derived stream's id per symbol (`BTCUSDT` → `btcusdt@depth`).
    derived_ids: HashMap<Box<str>, StreamId>,
    /// The recordings, read again to find a symbol's first snapshot when
    /// one is asked for before the clock has reached it.
    paths: Vec<PathBuf>,
    scanned: HashMap<Box<str>, Scan>,
}

enum Mode {
    Once(Reading),
    /// Files still to be loaded, by `prepare` on the market thread.
    Unloaded(Option<Reading>),
    Looped(Loop),
}

/// What the clock passing a line does to the books.
#[derive(Clone)]
enum DepthItem {
    Diff(Arc<DiffEvent>),
    Snapshot(Box<str>, Arc<Snapshot>),
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
    /// A derived `<sym>@depth` frame (made only when wanted).
    Derived(Arc<Frame>),
}

/// Reading through the files once: one after the other, or side by side
/// merged by receive time.
struct Reading {
    files: VecDeque<File>,
    interleave: bool,
    clock: RecordClock,
    /// A line read after an unclaimed snapshot line, returned next.
    stashed: Option<RecordedLine>,
}

/// One recording being read, and its next line.
struct File {
    reader: RecordingReader,
    symbol: FileSymbol,
    /// Receive time (Unix ns) and JSON of the file's next line, once read.
    head: Option<(u64, String)>,
    ended: bool,
}

impl File {
    /// Reads the next timestamped line into `head` (or notes the end).
    fn fill(&mut self) -> Result<(), RecordingError> {
        while self.head.is_none() && !self.ended {
            match self.reader.next_line()? {
                None => {
                    self.ended = true;
                    if self.symbol.unclaimed.is_some() {
                        log::warn!(
                            "simulator: {}: a snapshot line has no symbol in its file; skipped",
                            self.reader.path().display()
                        );
                    }
                }
                Some(Line::Frame { recv, json }) => {
                    if let Ok(json) = std::str::from_utf8(json) {
                        self.head = Some((recv.0, json.to_owned()));
                    }
                }
                Some(Line::Malformed) => {}
            }
        }
        Ok(())
    }
}

impl Reading {
    fn new(readers: VecDeque<RecordingReader>, interleave: bool) -> Self {
        let files = readers
            .into_iter()
            .map(|reader| File { reader, symbol: FileSymbol::default(), head: None, ended: false })
            .collect();
        Reading { files, interleave, clock: RecordClock::default(), stashed: None }
    }

    /// The next timestamped line of the files: the index of its file, its
    /// receive time and JSON; `None` once every file has ended.
    fn next_raw(&mut self) -> Result<Option<(usize, u64, String)>, RecordingError> {
        loop {
            if self.interleave {
                for f in &mut self.files {
                    f.fill()?;
                }
                self.files.retain(|f| !f.ended || f.head.is_some());
            } else {
                let Some(front) = self.files.front_mut() else { return Ok(None) };
                front.fill()?;
                if front.head.is_none() {
                    self.files.pop_front();
                    continue;
                }
            }
            // The earliest head; on a tie, the file given first.
            let next = self.files.iter().enumerate().filter_map(|(i, f)| Some((f.head.as_ref()?.0, i))).min();
            let Some((_, index)) = next else { return Ok(None) };
            let head = self.files.get_mut(index).and_then(|f| f.head.take());
            if let Some((recv, json)) = head {
                return Ok(Some((index, recv, json)));
            }
        }
    }
}

/// Whose a bare snapshot line is: the symbol of the file's other lines.
#[derive(Default)]
struct FileSymbol {
    symbol: Option<Box<str>>,
    /// The file names more than one symbol: its snapshot lines are ambiguous.
    several: bool,
    /// A snapshot line met before any line naming the symbol.
    unclaimed: Option<Arc<Snapshot>>,
}

impl FileSymbol {
    /// Notes a line of `symbol`; a snapshot line waiting for its owner is
    /// returned with it.
    fn saw(&mut self, symbol: &str) -> Option<(Box<str>, Arc<Snapshot>)> {
        match &self.symbol {
            Some(s) if &**s != symbol => self.several = true,
            Some(_) => {}
            None => self.symbol = Some(symbol.into()),
        }
        let snapshot = self.unclaimed.take()?;
        self.symbol.clone().map(|s| (s, snapshot))
    }

    /// The owner of a snapshot line, or `None` (held until a line names it,
    /// or dropped as ambiguous).
    fn snapshot(&mut self, snapshot: Snapshot) -> Option<(Box<str>, Arc<Snapshot>)> {
        match (&self.symbol, self.several) {
            (Some(symbol), false) => Some((symbol.clone(), Arc::new(snapshot))),
            (None, _) => {
                self.unclaimed = Some(Arc::new(snapshot));
                None
            }
            (Some(_), true) => {
                log::warn!("simulator: a snapshot line in a recording of several symbols has no owner; skipped");
                None
            }
        }
    }
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
    /// `None` for a snapshot line, which only moves the books.
    frame: Option<LoadedFrame>,
    depth: Option<DepthItem>,
}

struct LoadedFrame {
    frame: Arc<Frame>,
    data: Range<usize>,
    /// Where the payload's `lastUpdateId` digits are, and their value.
    update_id: Option<(Range<usize>, u64)>,
}

/// One line of a recording the market has a use for.
struct RecordedLine {
    offset: Duration,
    /// A combined-stream message to forward (none for a snapshot line).
    message: Option<Message>,
    depth: Option<DepthItem>,
}

struct Message {
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
    /// Per stream id: a diff-depth stream.
    diff: Vec<bool>,
    /// Per stream id: recorded lines were met (a recorded `<sym>@depth` is
    /// forwarded, not derived).
    recorded: Vec<bool>,
}

impl LocalNames {
    fn intern(&mut self, name: &str) -> StreamId {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.shared.intern(name);
        self.ids.insert(name.into(), id);
        if self.diff.len() <= id.index() {
            self.diff.resize(id.index() + 1, false);
            self.recorded.resize(id.index() + 1, false);
        }
        self.diff[id.index()] = is_diff_stream(name);
        id
    }

    fn is_diff(&self, id: StreamId) -> bool {
        self.diff.get(id.index()).copied().unwrap_or(false)
    }

    fn is_recorded(&self, id: StreamId) -> bool {
        self.recorded.get(id.index()).copied().unwrap_or(false)
    }
}

/// `<sym>@depth@100ms` or `<sym>@depth`: the diff-depth streams.
fn is_diff_stream(name: &str) -> bool {
    name.split_once('@').is_some_and(|(_, kind)| kind == "depth" || kind == "depth@100ms")
}

/// The symbol a payload names (`"s"`), if any.
fn payload_symbol(payload: &str) -> Option<String> {
    let value = sonic_rs::get(payload, ["s"]).ok()?;
    sonic_rs::JsonValueTrait::as_str(&value).map(str::to_owned)
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

/// The next line of the files the market has a use for; `None` at the end.
/// Combined-stream lines are forwarded; bare REST snapshot lines only move
/// the books; anything else (junk) is skipped.
fn next_line(reading: &mut Reading, names: &mut LocalNames) -> Result<Option<RecordedLine>, RecordingError> {
    if let Some(line) = reading.stashed.take() {
        return Ok(Some(line));
    }
    while let Some((index, recv, json)) = reading.next_raw()? {
        let offset = reading.clock.offset(recv);
        let Some(file) = reading.files.get_mut(index) else { continue };
        let Some((name, data)) = split_envelope(&json) else {
            if let Some(owned) = Snapshot::parse(&json).and_then(|s| file.symbol.snapshot(s)) {
                let depth = Some(DepthItem::Snapshot(owned.0, owned.1));
                return Ok(Some(RecordedLine { offset, message: None, depth }));
            }
            continue;
        };
        let stream = names.intern(name);
        if let Some(flag) = names.recorded.get_mut(stream.index()) {
            *flag = true;
        }
        let payload = json.get(data.clone()).unwrap_or_default();
        let diff = if names.is_diff(stream) { DiffEvent::parse(payload).map(Arc::new) } else { None };
        // Other lines are looked into only to claim a waiting snapshot line
        // (partial-depth payloads name no symbol at all).
        let symbol = match &diff {
            Some(e) => Some(e.symbol.to_string()),
            None if file.symbol.unclaimed.is_some() => payload_symbol(payload),
            None => None,
        };
        let claimed = symbol.and_then(|s| file.symbol.saw(&s));
        let line =
            RecordedLine { offset, message: Some(Message { stream, json, data }), depth: diff.map(DepthItem::Diff) };
        if let Some((owner, snapshot)) = claimed {
            reading.stashed = Some(line);
            return Ok(Some(RecordedLine { offset, message: None, depth: Some(DepthItem::Snapshot(owner, snapshot)) }));
        }
        return Ok(Some(line));
    }
    Ok(None)
}

/// What the recordings hold of one symbol, read ahead of the clock.
struct Scan {
    /// Some line names the symbol.
    seen: bool,
    /// Its first snapshot line, as a book.
    first: Option<SimBook>,
}

/// Reads the recordings from the start for `symbol`'s first snapshot line.
fn scan(paths: &[PathBuf], symbol: &str) -> Result<Scan, RecordingError> {
    let readers = paths.iter().map(|p| RecordingReader::open(p)).collect::<Result<VecDeque<_>, _>>()?;
    let mut reading = Reading::new(readers, false);
    let mut names =
        LocalNames { shared: StreamNames::default(), ids: HashMap::new(), diff: Vec::new(), recorded: Vec::new() };
    let mut seen = false;
    while let Some(line) = next_line(&mut reading, &mut names)? {
        match &line.depth {
            Some(DepthItem::Snapshot(owner, s)) if &**owner == symbol => {
                return Ok(Scan { seen: true, first: Some(SimBook::from_snapshot(s)) });
            }
            Some(DepthItem::Diff(e)) if &*e.symbol == symbol => seen = true,
            _ if !seen => {
                let payload = line.message.as_ref().and_then(|m| m.json.get(m.data.clone()));
                seen = payload.and_then(payload_symbol).is_some_and(|s| s == symbol);
            }
            _ => {}
        }
    }
    Ok(Scan { seen, first: None })
}

impl Loop {
    fn load(reading: Reading, names: &mut LocalNames) -> Result<Self, RecordingError> {
        let mut reading = reading;
        let mut frames = Vec::new();
        while let Some(RecordedLine { offset, message, depth }) = next_line(&mut reading, names)? {
            let frame = match message {
                Some(Message { stream, json, data }) => {
                    let update_id = update_id_in(&json, data.clone());
                    let Some(frame) = Frame::from_combined(stream, json, data.clone()) else { continue };
                    let frame = Arc::new(frame.with_diff(names.is_diff(stream)));
                    Some(LoadedFrame { frame, data, update_id })
                }
                None => None,
            };
            frames.push(Loaded { offset, frame, depth });
        }
        let last = frames.last().map_or(Duration::ZERO, |f| f.offset);
        let gap = match u32::try_from(frames.len().saturating_sub(1)) {
            Ok(0) | Err(_) => SINGLE_FRAME_LOOP_GAP,
            Ok(n) => last / n,
        };
        let ids = frames.iter().filter_map(|f| f.frame.as_ref()?.update_id.as_ref().map(|u| u.1));
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
        Some((base.saturating_add(self.frames.get(index)?.offset), index, self.pass))
    }

    /// Frame `index` as pass `pass` sends it.
    fn frame(&self, index: usize, pass: u64) -> Option<Arc<Frame>> {
        let f = self.frames.get(index)?.frame.as_ref()?;
        match &f.update_id {
            Some((digits, id)) if pass > 0 => {
                shifted(f, digits.clone(), id.saturating_add(pass.saturating_mul(self.update_id_span)))
            }
            _ => Some(Arc::clone(&f.frame)),
        }
    }
}

/// A copy of a loaded frame with its `lastUpdateId` digits replaced by `id`.
fn shifted(f: &LoadedFrame, digits: Range<usize>, id: u64) -> Option<Arc<Frame>> {
    let text = f.frame.combined.as_str();
    let mut json = String::with_capacity(text.len() + 8);
    json.push_str(text.get(..digits.start)?);
    let _ = write!(json, "{id}");
    let grown = json.len() - digits.start;
    json.push_str(text.get(digits.end..)?);
    let data = f.data.start..(f.data.end + grown).checked_sub(digits.len())?;
    Frame::from_combined(f.frame.stream, json, data).map(|frame| Arc::new(frame.with_diff(f.frame.diff)))
}

impl Recorded {
    /// A source over already opened files, played once or looped, one
    /// after the other or side by side (`interleave`: merged by receive
    /// time, as one market of several symbols recorded one per file).
    pub fn new(readers: Vec<RecordingReader>, looped: bool, interleave: bool, names: StreamNames) -> Self {
        let paths = readers.iter().map(|r| r.path().to_path_buf()).collect();
        let reading = Reading::new(VecDeque::from(readers), interleave);
        let mode = if looped { Mode::Unloaded(Some(reading)) } else { Mode::Once(reading) };
        Recorded {
            names: LocalNames { shared: names, ids: HashMap::new(), diff: Vec::new(), recorded: Vec::new() },
            wanted: Vec::new(),
            mode,
            pending: None,
            books: DepthBooks::default(),
            derived: VecDeque::new(),
            derived_ids: HashMap::new(),
            paths,
            scanned: HashMap::new(),
        }
    }

    fn is_wanted(&self, id: StreamId) -> bool {
        self.wanted.get(id.index()).copied().unwrap_or(false)
    }

    /// The clock passes a line that moves the books (at `at`).
    fn observe(&mut self, item: &DepthItem, at: Duration) {
        match item {
            DepthItem::Diff(e) => {
                if let Some(merged) = self.books.on_diff(e) {
                    self.derive(&merged, at);
                }
            }
            DepthItem::Snapshot(symbol, s) => self.books.on_snapshot(symbol, s),
        }
    }

    /// Queues a derived `<sym>@depth` frame, when someone wants it and the
    /// recording does not hold that stream itself.
    fn derive(&mut self, merged: &MergedDiff, at: Duration) {
        let id = match self.derived_ids.get(&merged.symbol) {
            Some(&id) => id,
            None => {
                let id = self.names.intern(&format!("{}@depth", merged.symbol.to_ascii_lowercase()));
                self.derived_ids.insert(merged.symbol.clone(), id);
                id
            }
        };
        if !self.is_wanted(id) || self.names.is_recorded(id) {
            return;
        }
        let name = self.names.shared.name(id);
        let payload = merged.render();
        let mut json = String::with_capacity(payload.len() + name.len() + 22);
        let _ = write!(json, "{{\"stream\":\"{name}\",\"data\":");
        let data = json.len()..json.len() + payload.len();
        json.push_str(&payload);
        json.push('}');
        if let Some(frame) = Frame::from_combined(id, json, data) {
            self.derived.push_back((at, Arc::new(frame.with_diff(true))));
        }
    }
}

impl Source for Recorded {
    fn prepare(&mut self) -> Result<(), RecordingError> {
        if let Mode::Unloaded(reading) = &mut self.mode
            && let Some(reading) = reading.take()
        {
            self.mode = Mode::Looped(Loop::load(reading, &mut self.names)?);
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
        if let Some((at, frame)) = self.derived.pop_front() {
            self.pending = Some(Pending { at, candidate: Candidate::Derived(frame) });
            return Ok(Peek::At(at));
        }
        self.prepare()?;
        let pending = match &mut self.mode {
            Mode::Once(r) => {
                next_line(r, &mut self.names)?.map(|line| Pending { at: line.offset, candidate: Candidate::Line(line) })
            }
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
        let Pending { at, candidate } = self.pending.take()?;
        match candidate {
            Candidate::Derived(frame) => Some(frame),
            Candidate::Line(line) => {
                if let Some(item) = &line.depth {
                    self.observe(item, at);
                }
                let Message { stream, json, data } = line.message?;
                if !self.is_wanted(stream) {
                    return None;
                }
                Frame::from_combined(stream, json, data).map(|f| Arc::new(f.with_diff(self.names.is_diff(stream))))
            }
            Candidate::Loaded { index, pass } => {
                let Mode::Looped(l) = &self.mode else { return None };
                let loaded = l.frames.get(index)?;
                let stream = loaded.frame.as_ref().map(|f| f.frame.stream);
                if let Some(item) = loaded.depth.clone() {
                    self.observe(&item, at);
                }
                let Mode::Looped(l) = &self.mode else { return None };
                stream.filter(|&id| self.is_wanted(id)).and_then(|_| l.frame(index, pass))
            }
        }
    }

    fn snapshot(&mut self, symbol: &str, limit: usize) -> SnapshotAnswer {
        if let Some(book) = self.books.book(symbol) {
            return SnapshotAnswer::Body(book.render(limit));
        }
        // Not seeded yet: the recording's first snapshot, as recorded.
        if !self.scanned.contains_key(symbol) {
            let found = scan(&self.paths, symbol).unwrap_or_else(|e| {
                log::warn!("simulator: cannot read the recordings ahead for a {symbol} snapshot: {e}");
                Scan { seen: false, first: None }
            });
            self.scanned.insert(symbol.into(), found);
        }
        match self.scanned.get(symbol) {
            Some(Scan { first: Some(book), .. }) => SnapshotAnswer::Body(book.render(limit)),
            Some(Scan { seen: true, .. }) => SnapshotAnswer::NoBook,
            _ if self.books.knows(symbol) => SnapshotAnswer::NoBook,
            _ => SnapshotAnswer::UnknownSymbol,
        }
    }
}
