//! The local book's events as a decoder leaves them: a diff-depth event's
//! update-id range and changed levels, and a best bid/ask update. Storage is
//! allocated once ([`EventScratch::with_capacity`]); decoding only
//! overwrites it.

use super::{Level, PushError};

/// Changed levels of one side, in the order the message lists them, with a
/// capacity fixed at start: pushing past it is an error, never a
/// reallocation.
#[derive(Clone, Debug, Default)]
pub struct LevelBuf {
    levels: Vec<Level>,
    cap: usize,
}

impl LevelBuf {
    /// Room for `cap` levels.
    pub fn with_capacity(cap: usize) -> Self {
        LevelBuf { levels: Vec::with_capacity(cap), cap }
    }

    /// Empties the buffer, keeping its storage.
    #[inline]
    pub fn clear(&mut self) {
        self.levels.clear();
    }

    /// Appends a level; [`PushError::Full`] when the buffer is full.
    #[inline]
    pub fn push(&mut self, level: Level) -> Result<(), PushError> {
        if self.levels.len() >= self.cap {
            return Err(PushError::Full);
        }
        self.levels.push(level);
        Ok(())
    }

    /// The levels, in message order.
    #[inline]
    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    /// Replaces the content by `levels`; [`PushError::Full`] (content unchanged) when
    /// they do not fit.
    #[inline]
    pub fn set(&mut self, levels: &[Level]) -> Result<(), PushError> {
        if levels.len() > self.cap {
            return Err(PushError::Full);
        }
        self.levels.clear();
        self.levels.extend_from_slice(levels);
        Ok(())
    }
}

/// A diff-depth event: every level whose quantity changed between update
/// ids `first_update_id` (Binance's `U`) and `final_update_id` (`u`);
/// quantity 0 removes the level.
#[derive(Clone, Debug, Default)]
pub struct DiffEvent {
    pub first_update_id: u64,
    pub final_update_id: u64,
    /// The previous event's `u` (USD-M futures' `pu`), where the stream
    /// carries it.
    pub prev_final_update_id: Option<u64>,
    /// The exchange's event time `E` (Unix ms).
    pub event_time_ms: Option<u64>,
    pub bids: LevelBuf,
    pub asks: LevelBuf,
}

impl DiffEvent {
    /// Becomes a copy of `other` in its own storage (no allocation);
    /// [`PushError::Full`] when `other` holds more levels than this has room for.
    pub fn copy_from(&mut self, other: &DiffEvent) -> Result<(), PushError> {
        self.bids.set(other.bids.levels())?;
        self.asks.set(other.asks.levels())?;
        self.first_update_id = other.first_update_id;
        self.final_update_id = other.final_update_id;
        self.prev_final_update_id = other.prev_final_update_id;
        self.event_time_ms = other.event_time_ms;
        Ok(())
    }
}

/// A best bid/ask update (`@bookTicker`): the touch as of `update_id`,
/// which shares the diff stream's update-id space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TouchEvent {
    pub update_id: u64,
    pub bid: Level,
    pub ask: Level,
    /// The exchange's event time, where the stream carries one (spot's JSON
    /// bookTicker does not).
    pub event_time_ms: Option<u64>,
}

/// Where a decoder writes the local book's events.
#[derive(Clone, Debug, Default)]
pub struct EventScratch {
    pub diff: DiffEvent,
    pub touch: TouchEvent,
}

impl EventScratch {
    /// Room for `levels` changed levels per side in one diff event.
    pub fn with_capacity(levels: usize) -> Self {
        EventScratch {
            diff: DiffEvent {
                bids: LevelBuf::with_capacity(levels),
                asks: LevelBuf::with_capacity(levels),
                ..DiffEvent::default()
            },
            touch: TouchEvent::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{Price, Qty};

    #[test]
    fn a_level_buffer_refuses_to_grow_past_its_capacity() {
        let mut b = LevelBuf::with_capacity(2);
        let l = Level { price: Price(1), qty: Qty(1) };
        assert!(b.push(l).is_ok() && b.push(l).is_ok());
        assert!(b.push(l).is_err());
        assert_eq!(b.levels().len(), 2);
        assert!(b.set(&[l; 3]).is_err());
        assert_eq!(b.levels().len(), 2);
        b.clear();
        assert!(b.levels().is_empty());
    }
}
