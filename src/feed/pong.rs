//! Pong pacing: a stream decorator that answers only the most recent ping,
//! at most once per [`PONG_INTERVAL`].
//!
//! tungstenite queues a pong for every ping it reads and writes it on the
//! next read, so a server (or anyone on the path) sending pings as fast as
//! it can got one pong per ping — 880 a second in a test. Binance counts
//! pongs against its limit of 5 incoming messages per second per
//! connection and disconnects, then bans, above it. RFC 6455 §5.5.3 allows
//! answering only the most recent of several pings. So the pongs tungstenite
//! writes are caught here instead of reaching the socket: each replaces the
//! one waiting, and the owner sends the waiting one when
//! [`PongPacer::send_due`] finds the interval has passed. A ping is never
//! left unanswered: the pong goes out at most one interval late (Binance
//! allows a minute).
//!
//! Everything else tungstenite writes (the HTTP upgrade request, Close
//! frames) passes straight through; a Close also drops a waiting pong, as
//! nothing may follow it. The catch relies on how tungstenite
//! writes with `write_buffer_size(0)`: each frame is handed to `write` whole,
//! as soon as it is framed, and this decorator either takes it whole or
//! passes it on; after a pass-through that was cut short (the socket was
//! full), nothing is caught until a write completes, so a frame's tail is
//! never mistaken for a pong.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// Least time between two pongs on one connection: one pong a second is a
/// fifth of Binance's 5 incoming messages per second (pongs count), and
/// Binance pings every 20 s and waits a minute for the answer.
pub const PONG_INTERVAL: Duration = Duration::from_secs(1);

/// A client's pong frame: 2 header bytes, a 4-byte mask, at most 125 bytes
/// of payload (a control frame's limit).
const MAX_PONG: usize = 2 + 4 + 125;

/// Wraps the stream under the WebSocket; see the module docs.
pub struct PongPacer<S> {
    inner: S,
    /// The newest pong tungstenite wrote, not yet sent.
    waiting: [u8; MAX_PONG],
    waiting_len: usize,
    /// A pong being written to `inner`: `sending[sent..sending_len]` is left.
    sending: [u8; MAX_PONG],
    sending_len: usize,
    sent: usize,
    /// No pong may start before this.
    next_allowed: Instant,
    /// A pass-through write was cut short: tungstenite's next write starts
    /// with the rest of that frame.
    mid_frame: bool,
    /// Pongs tungstenite wrote (one per ping it read) and pongs sent: how
    /// many pings were coalesced.
    pub pongs_queued: u64,
    pub pongs_sent: u64,
}

impl<S: Read + Write> PongPacer<S> {
    /// Wraps `inner`; the first pong may go at `now`.
    pub fn new(inner: S, now: Instant) -> Self {
        PongPacer {
            inner,
            waiting: [0; MAX_PONG],
            waiting_len: 0,
            sending: [0; MAX_PONG],
            sending_len: 0,
            sent: 0,
            next_allowed: now,
            mid_frame: false,
            pongs_queued: 0,
            pongs_sent: 0,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// When the waiting pong may be sent, if one waits.
    pub fn pong_due(&self) -> Option<Instant> {
        (self.waiting_len > 0).then_some(self.next_allowed)
    }

    /// Whether a pong is partly written and needs the socket writable.
    pub fn wants_write(&self) -> bool {
        self.sent < self.sending_len
    }

    /// Sends the waiting pong if the interval allows, and continues one that
    /// was cut short. `WouldBlock` is not an error: what is left goes on the
    /// next call.
    pub fn send_due(&mut self, now: Instant) -> io::Result<()> {
        if !self.wants_write() && self.waiting_len > 0 && now >= self.next_allowed {
            self.sending[..self.waiting_len].copy_from_slice(&self.waiting[..self.waiting_len]);
            (self.sending_len, self.sent, self.waiting_len) = (self.waiting_len, 0, 0);
            self.next_allowed = now.checked_add(PONG_INTERVAL).unwrap_or(now);
            self.pongs_sent += 1;
        }
        match self.write_sending().and_then(|()| self.inner.flush()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            other => other,
        }
    }

    /// Writes what is left of the pong being sent.
    fn write_sending(&mut self) -> io::Result<()> {
        while self.sent < self.sending_len {
            match self.inner.write(&self.sending[self.sent..self.sending_len]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Whether `buf` is exactly one masked pong frame (FIN, no RSV bits,
/// opcode 0xA, payload ≤ 125 bytes), as tungstenite frames a client's pong.
fn is_whole_pong(buf: &[u8]) -> bool {
    match buf {
        [0x8A, len, ..] if len & 0x80 != 0 => {
            usize::from(len & 0x7F) <= 125 && buf.len() == 6 + usize::from(len & 0x7F)
        }
        _ => false,
    }
}

impl<S: Read + Write> Read for PongPacer<S> {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<S: Read + Write> Write for PongPacer<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.mid_frame && is_whole_pong(buf) {
            self.waiting[..buf.len()].copy_from_slice(buf);
            self.waiting_len = buf.len();
            self.pongs_queued += 1;
            return Ok(buf.len());
        }
        // A pong cut short goes first: frames must not interleave.
        self.write_sending()?;
        // Nothing may follow a Close (opcode 0x8), a pong included.
        if !self.mid_frame && buf.first().is_some_and(|b| b & 0x0F == 0x8) {
            self.waiting_len = 0;
        }
        let written = self.inner.write(buf);
        self.mid_frame = !matches!(written, Ok(n) if n == buf.len());
        written
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_sending()?;
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::protocol::frame::Frame;

    /// A stream that records what reaches it, with room for `room` more
    /// bytes (unlimited if `None`; full: `WouldBlock`).
    #[derive(Default)]
    struct Wire {
        out: Vec<u8>,
        room: Option<usize>,
    }

    impl Read for Wire {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }

    impl Write for Wire {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = self.room.map_or(buf.len(), |r| r.min(buf.len()));
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            if let Some(r) = &mut self.room {
                *r -= n;
            }
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A masked pong as tungstenite frames it for a client.
    fn pong(payload: &[u8]) -> Vec<u8> {
        let mut frame = Frame::pong(payload.to_vec());
        frame.header_mut().mask = Some([1, 2, 3, 4]);
        let mut out = Vec::new();
        frame.format(&mut out).unwrap();
        out
    }

    /// Payloads of the pongs on the wire (the mask is [1, 2, 3, 4]).
    fn payloads(wire: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut rest = wire;
        while let [0x8A, len, m0, m1, m2, m3, tail @ ..] = rest {
            let len = usize::from(len & 0x7F);
            let mask = [*m0, *m1, *m2, *m3];
            out.push(tail[..len].iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect());
            rest = &tail[len..];
        }
        assert!(rest.is_empty(), "only pongs on the wire");
        out
    }

    #[test]
    fn a_ping_flood_gets_one_pong_per_interval_echoing_the_latest_ping() {
        let t0 = Instant::now();
        let mut p = PongPacer::new(Wire::default(), t0);
        // A quiet connection's ping is answered at once.
        p.write_all(&pong(b"first")).unwrap();
        p.send_due(t0).unwrap();
        assert_eq!(payloads(&p.get_ref().out), [b"first".to_vec()]);
        // 10,000 pings over 5 s of injected time, the owner calling after each.
        for i in 0..10_000u32 {
            let now = t0 + Duration::from_micros(500 * u64::from(i));
            p.write_all(&pong(format!("ping {i}").as_bytes())).unwrap();
            p.send_due(now).unwrap();
        }
        let end = t0 + Duration::from_secs(5);
        assert!(p.pong_due().is_some_and(|t| t <= end + PONG_INTERVAL), "the last ping is still to be answered");
        p.send_due(end + PONG_INTERVAL).unwrap();
        let sent = payloads(&p.get_ref().out);
        // t0, then one per second of the flood, then the last: never more than one per interval.
        assert!(sent.len() <= 1 + 5 + 1, "{} pongs", sent.len());
        assert_eq!(sent.last().unwrap(), b"ping 9999", "the last pong echoes the latest ping");
        assert_eq!((p.pongs_queued, p.pongs_sent), (10_001, sent.len() as u64));
        assert_eq!(p.pong_due(), None, "nothing left unanswered");
    }

    #[test]
    fn a_pong_cut_short_is_finished_before_anything_else_and_nothing_is_mistaken_for_one() {
        let t0 = Instant::now();
        let mut p = PongPacer::new(Wire { out: Vec::new(), room: Some(3) }, t0);
        p.write_all(&pong(b"abc")).unwrap();
        p.send_due(t0).unwrap();
        assert!(p.wants_write());
        p.get_mut().room = Some(0);
        assert_eq!(p.write(b"\x88\x80\0\0\0\0").unwrap_err().kind(), io::ErrorKind::WouldBlock);
        p.get_mut().room = None;
        // A Close: the rest of the pong first, then the Close itself.
        let close = b"\x88\x80\0\0\0\0";
        assert_eq!(p.write(close).unwrap(), close.len());
        let out = &p.get_ref().out;
        assert_eq!(payloads(&out[..out.len() - close.len()]), [b"abc".to_vec()]);
        assert!(out.ends_with(close));
        // A pass-through cut short: its tail, however it looks, is passed on.
        p.get_mut().room = Some(1);
        let mut framed = vec![0x82];
        framed.extend_from_slice(&pong(b"xyz"));
        assert_eq!(p.write(&framed).unwrap(), 1);
        p.get_mut().room = None;
        let before = p.get_ref().out.len();
        p.write_all(&framed[1..]).unwrap();
        assert_eq!(p.get_ref().out.len(), before + framed.len() - 1, "passed through, not caught");
        assert_eq!(p.pongs_queued, 1);
    }

    #[test]
    fn a_close_drops_the_waiting_pong_and_other_frames_keep_it() {
        let t0 = Instant::now();
        let mut p = PongPacer::new(Wire::default(), t0);
        p.write_all(&pong(b"one")).unwrap();
        p.send_due(t0).unwrap();
        p.write_all(&pong(b"two")).unwrap();
        p.send_due(t0).unwrap();
        assert_eq!(p.pong_due(), Some(t0 + PONG_INTERVAL), "the second waits for the interval");
        // A text frame passes and the pong still waits.
        let text = b"\x81\x81\0\0\0\0x";
        p.write_all(text).unwrap();
        assert_eq!(p.pong_due(), Some(t0 + PONG_INTERVAL));
        // A Close passes and nothing may follow it.
        let close = b"\x88\x80\0\0\0\0";
        p.write_all(close).unwrap();
        assert_eq!(p.pong_due(), None);
        p.send_due(t0 + PONG_INTERVAL).unwrap();
        let out = &p.get_ref().out;
        assert_eq!(payloads(&out[..out.len() - text.len() - close.len()]), [b"one".to_vec()]);
        assert!(out.ends_with(close));
    }
}
