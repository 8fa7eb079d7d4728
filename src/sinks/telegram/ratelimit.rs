//! Telegram's sending limits, kept on our side so bursts are coalesced
//! instead of running into flood control: at most one message a second per
//! chat, 20 a minute per group or channel, 30 a second overall.
//!
//! Time is passed in, never read here. Callers record a send when its
//! answer arrived (or when they gave up waiting), not when it started, so a
//! request the network delayed can never make two messages reach Telegram
//! closer together than the limit.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Per chat: one message a second.
pub(crate) const CHAT_INTERVAL: Duration = Duration::from_secs(1);
/// Per group or channel: 20 messages a minute.
const GROUP_WINDOW: Duration = Duration::from_secs(60);
const GROUP_MAX: usize = 20;
/// Per bot: 30 messages a second.
const GLOBAL_WINDOW: Duration = Duration::from_secs(1);
const GLOBAL_MAX: usize = 30;

#[derive(Debug)]
struct ChatWindow {
    group: bool,
    /// Recent sends, oldest first; at most `GROUP_MAX` (or 1 for private chats).
    recent: VecDeque<Instant>,
}

/// Send times per chat (by index) and overall.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    chats: Vec<ChatWindow>,
    global: VecDeque<Instant>,
}

impl RateLimiter {
    /// One entry per chat; `groups[i]` says whether chat `i` has the group limit.
    pub fn new(groups: impl IntoIterator<Item = bool>) -> Self {
        let chats = groups.into_iter().map(|group| ChatWindow { group, recent: VecDeque::new() }).collect();
        RateLimiter { chats, global: VecDeque::new() }
    }

    /// The earliest instant at or after `now` when chat `i` may be sent to.
    pub fn next_allowed(&self, chat: usize, now: Instant) -> Instant {
        let w = &self.chats[chat];
        let mut at = now;
        if let Some(&last) = w.recent.back() {
            at = at.max(last + CHAT_INTERVAL);
        }
        if w.group && w.recent.len() >= GROUP_MAX {
            at = at.max(w.recent[w.recent.len() - GROUP_MAX] + GROUP_WINDOW);
        }
        if self.global.len() >= GLOBAL_MAX {
            at = at.max(self.global[self.global.len() - GLOBAL_MAX] + GLOBAL_WINDOW);
        }
        at
    }

    /// Records a send to chat `i` that completed at `at`.
    pub fn record(&mut self, chat: usize, at: Instant) {
        let w = &mut self.chats[chat];
        w.recent.push_back(at);
        let keep = if w.group { GROUP_MAX } else { 1 };
        while w.recent.len() > keep {
            w.recent.pop_front();
        }
        self.global.push_back(at);
        while self.global.len() > GLOBAL_MAX {
            self.global.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_chat_gets_at_most_one_message_a_second() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new([false]);
        assert_eq!(r.next_allowed(0, t0), t0);
        r.record(0, t0);
        assert_eq!(r.next_allowed(0, t0 + ms(300)), t0 + ms(1000));
        assert_eq!(r.next_allowed(0, t0 + ms(1500)), t0 + ms(1500));
    }

    #[test]
    fn a_group_gets_at_most_twenty_messages_a_minute() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new([true]);
        for i in 0..20 {
            let at = r.next_allowed(0, t0 + ms(1000 * i));
            assert_eq!(at, t0 + ms(1000 * i));
            r.record(0, at);
        }
        // The 21st waits until the first of the last twenty is a minute old.
        assert_eq!(r.next_allowed(0, t0 + ms(20_000)), t0 + ms(60_000));
        r.record(0, t0 + ms(60_000));
        assert_eq!(r.next_allowed(0, t0 + ms(61_000)), t0 + ms(61_000));
    }

    #[test]
    fn all_chats_together_get_at_most_thirty_messages_a_second() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(vec![false; 31]);
        for i in 0..30 {
            r.record(i, t0 + ms(i as u64));
        }
        assert_eq!(r.next_allowed(30, t0 + ms(40)), t0 + ms(1000));
        assert_eq!(r.next_allowed(30, t0 + ms(1001)), t0 + ms(1001));
    }
}
