//! The dashboard's keys and the view state they change: sort order, pause,
//! quit. Kept apart from drawing so the keys are tested without a terminal.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::state::PairState;

/// How the pair rows are ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    /// As in the config.
    #[default]
    Config,
    /// Most bid-heavy first.
    Ratio,
    /// Most lopsided first, either way.
    AbsRatio,
    /// Longest without a frame first.
    Staleness,
}

impl SortKey {
    /// The next order (`s` cycles through them).
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Config => SortKey::Ratio,
            SortKey::Ratio => SortKey::AbsRatio,
            SortKey::AbsRatio => SortKey::Staleness,
            SortKey::Staleness => SortKey::Config,
        }
    }

    /// As the footer shows it.
    pub fn label(self) -> &'static str {
        match self {
            SortKey::Config => "config",
            SortKey::Ratio => "ratio",
            SortKey::AbsRatio => "|ratio|",
            SortKey::Staleness => "staleness",
        }
    }

    /// Orders `rows` in place (stable: ties keep the config order).
    pub fn sort(self, rows: &mut [&PairState]) {
        let key = |p: &PairState| -> f64 {
            match self {
                SortKey::Config => 0.0,
                SortKey::Ratio => -p.ratio.unwrap_or(f64::NEG_INFINITY),
                SortKey::AbsRatio => -p.ratio.map_or(-1.0, f64::abs),
                SortKey::Staleness => -p.since_last_frame_sec.unwrap_or(f64::INFINITY),
            }
        };
        rows.sort_by(|a, b| key(a).total_cmp(&key(b)));
    }
}

/// What the person at the terminal chose.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View {
    pub sort: SortKey,
    /// Frozen: the last state stays on screen, nothing is fetched.
    pub paused: bool,
    /// Where the state comes from (`http://127.0.0.1:9184` or `in-process`).
    pub source: String,
    /// Why the last fetch failed, while it does.
    pub error: Option<String>,
}

/// What a key asks of the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Continue,
    Quit,
}

impl View {
    /// Applies one key: `q`/Esc/Ctrl-C quit, `s` sorts, `p` or space pauses.
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::Continue;
        }
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => return Action::Quit,
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => return Action::Quit,
            KeyCode::Char('s') => self.sort = self.sort.next(),
            KeyCode::Char('p') | KeyCode::Char(' ') => self.paused = !self.paused,
            _ => {}
        }
        Action::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn keys_sort_pause_and_quit() {
        let mut v = View::default();
        assert_eq!(v.on_key(key('s')), Action::Continue);
        assert_eq!(v.sort, SortKey::Ratio);
        v.on_key(key('p'));
        assert!(v.paused);
        v.on_key(key(' '));
        assert!(!v.paused);
        assert_eq!(v.on_key(key('q')), Action::Quit);
        assert_eq!(v.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)), Action::Quit);
    }

    #[test]
    fn sorting_by_ratio_puts_the_most_bid_heavy_first_and_unknown_last() {
        let p = |name: &str, ratio: Option<f64>| PairState { pair: name.into(), ratio, ..PairState::default() };
        let (a, b, c) = (p("A", Some(-0.9)), p("B", None), p("C", Some(0.4)));
        let mut rows = vec![&a, &b, &c];
        SortKey::Ratio.sort(&mut rows);
        assert_eq!(rows.iter().map(|r| r.pair.as_str()).collect::<Vec<_>>(), ["C", "A", "B"]);
        SortKey::AbsRatio.sort(&mut rows);
        assert_eq!(rows.iter().map(|r| r.pair.as_str()).collect::<Vec<_>>(), ["A", "C", "B"]);
    }
}
