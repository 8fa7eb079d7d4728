//! Binance's keepalive, server side: a ping every interval, each expecting a
//! pong that echoes its payload; a client that leaves a ping unanswered for
//! the pong timeout is dropped.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tungstenite::Bytes;

use super::deadline;

/// Ping/pong bookkeeping of one connection. Time is passed in, so the rules
/// are tested without sleeping.
#[derive(Debug)]
pub struct Keepalive {
    interval: Duration,
    timeout: Duration,
    next_ping: Instant,
    /// Pings not yet answered, oldest first, with their send times.
    unanswered: VecDeque<(Bytes, Instant)>,
    last_payload_ms: u64,
}

/// What a pong turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pong {
    /// It echoed an outstanding ping: that ping and all older ones are answered.
    Answer,
    /// It echoed nothing outstanding. Binance allows unsolicited pongs but they
    /// do not keep a connection alive.
    Unsolicited,
}

impl Keepalive {
    /// The first ping goes out one interval after `now`.
    pub fn new(interval: Duration, timeout: Duration, now: Instant) -> Self {
        Keepalive {
            interval,
            timeout,
            next_ping: deadline(now, interval),
            unanswered: VecDeque::new(),
            last_payload_ms: 0,
        }
    }

    /// The payload of a ping due at `now`, if one is due; the caller sends it.
    /// Payloads are the send time in Unix milliseconds, kept strictly
    /// increasing so every outstanding ping is told apart.
    pub fn ping_due(&mut self, now: Instant, unix_ms: u64) -> Option<Bytes> {
        if now < self.next_ping {
            return None;
        }
        self.next_ping = deadline(now, self.interval);
        self.last_payload_ms = unix_ms.max(self.last_payload_ms + 1);
        let payload = Bytes::from(self.last_payload_ms.to_string());
        self.unanswered.push_back((payload.clone(), now));
        Some(payload)
    }

    /// Books a pong received.
    pub fn on_pong(&mut self, payload: &[u8]) -> Pong {
        match self.unanswered.iter().position(|(p, _)| p.as_ref() == payload) {
            Some(i) => {
                self.unanswered.drain(..=i);
                Pong::Answer
            }
            None => Pong::Unsolicited,
        }
    }

    /// True once the oldest unanswered ping is older than the timeout.
    pub fn expired(&self, now: Instant) -> bool {
        self.unanswered.front().is_some_and(|&(_, sent)| now.saturating_duration_since(sent) >= self.timeout)
    }

    /// The next instant anything here can change: a ping due or a pong
    /// deadline.
    pub fn next_deadline(&self) -> Instant {
        match self.unanswered.front() {
            Some(&(_, sent)) => self.next_ping.min(deadline(sent, self.timeout)),
            None => self.next_ping,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn pings_every_interval_and_expires_an_unanswered_one_after_the_timeout() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(20 * SEC, 60 * SEC, t0);
        assert_eq!(k.ping_due(t0, 1000), None);
        let p1 = k.ping_due(t0 + 20 * SEC, 1000).unwrap();
        assert_eq!(&p1[..], b"1000");
        assert_eq!(k.next_deadline(), t0 + 40 * SEC);
        assert!(!k.expired(t0 + 79 * SEC));
        assert!(k.expired(t0 + 80 * SEC));
    }

    #[test]
    fn a_pong_answers_its_ping_and_every_older_one() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(SEC, 3 * SEC, t0);
        let p1 = k.ping_due(t0 + SEC, 5).unwrap();
        let p2 = k.ping_due(t0 + 2 * SEC, 5).unwrap();
        assert_ne!(p1, p2);
        assert_eq!(k.on_pong(b"other"), Pong::Unsolicited);
        assert_eq!(k.on_pong(&p2), Pong::Answer);
        assert!(!k.expired(t0 + 10 * SEC));
        assert_eq!(k.on_pong(&p1), Pong::Unsolicited);
    }
}
