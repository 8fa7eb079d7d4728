//! Connection-group supervision state: which connections serve a group, its
//! backoff and failure streak, and why and when it rotates. The loop in
//! `feed/mod.rs` makes the transitions; the types make the impossible
//! states unrepresentable (a standby without an active connection).

use std::time::Instant;

use super::conn::Endpoint;
use crate::backoff::Backoff;

/// Which connections serve a group, by slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Serving {
    /// No connection: the group waits for its next attempt.
    Down,
    /// One connection serves (open, or being established).
    One { active: usize },
    /// A replacement (`standby`) is being established while `active` still
    /// serves: make-before-break.
    Two { active: usize, standby: usize },
}

impl Serving {
    /// The connection serving the group.
    pub fn active(self) -> Option<usize> {
        match self {
            Serving::Down => None,
            Serving::One { active } | Serving::Two { active, .. } => Some(active),
        }
    }

    /// The replacement being established, if any.
    pub fn standby(self) -> Option<usize> {
        match self {
            Serving::Two { standby, .. } => Some(standby),
            _ => None,
        }
    }

    /// Whether `slot` serves the group (active or standby).
    pub fn includes(self, slot: usize) -> bool {
        self.active() == Some(slot) || self.standby() == Some(slot)
    }

    /// A new attempt in `slot` serves the group: the active connection when
    /// there is none, else the standby.
    pub fn add(&mut self, slot: usize) {
        *self = match *self {
            Serving::Down => Serving::One { active: slot },
            Serving::One { active } => Serving::Two { active, standby: slot },
            two @ Serving::Two { .. } => two,
        };
    }

    /// The standby delivers: it serves alone now. Returns the connection it
    /// replaces, to be closed.
    pub fn promote_standby(&mut self) -> Option<usize> {
        match *self {
            Serving::Two { active, standby } => {
                *self = Serving::One { active: standby };
                Some(active)
            }
            _ => None,
        }
    }

    /// `slot` is gone; the standby, if the active one went, takes over.
    /// Returns whether `slot` was the active connection.
    pub fn remove(&mut self, slot: usize) -> bool {
        let was_active = self.active() == Some(slot);
        *self = match *self {
            Serving::One { active } if active == slot => Serving::Down,
            Serving::Two { active, standby } if active == slot => Serving::One { active: standby },
            Serving::Two { active, standby } if standby == slot => Serving::One { active },
            other => other,
        };
        was_active
    }
}

/// Connections serving one set of streams.
pub(super) struct Group {
    /// Streams the group's URL carries (for the log).
    pub streams: usize,
    pub endpoint: Endpoint,
    /// Which connections serve the group.
    pub serving: Serving,
    pub backoff: Backoff,
    pub next_attempt: Option<Instant>,
    /// The current failure streak, if the last attempt failed.
    pub streak: Option<Streak>,
    /// Why the serving connection should be replaced (age, serverShutdown).
    pub rotate: Option<&'static str>,
    /// A failed replacement attempt is retried no earlier than this.
    pub standby_retry_at: Option<Instant>,
}

/// Failed attempts in a row: the first one is logged in full, later ones
/// quietly, and the success after them says how many there were.
pub(super) struct Streak {
    /// Kind of the first failure (`ConnError::kind`).
    pub kind: &'static str,
    pub failures: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replacement_takes_over_only_from_a_serving_connection() {
        let mut s = Serving::Down;
        s.add(3);
        assert_eq!(s, Serving::One { active: 3 });
        s.add(5);
        assert_eq!((s.active(), s.standby()), (Some(3), Some(5)));
        assert_eq!(s.promote_standby(), Some(3));
        assert_eq!(s, Serving::One { active: 5 });
        assert_eq!(s.promote_standby(), None);
        s.add(7);
        assert!(s.remove(5), "the active one went");
        assert_eq!(s, Serving::One { active: 7 });
        s.add(8);
        assert!(!s.remove(8));
        assert_eq!(s, Serving::One { active: 7 });
        assert!(!s.remove(9));
        assert!(s.remove(7));
        assert_eq!(s, Serving::Down);
    }
}
