//! The screen loop: raw mode and the alternate screen for as long as the
//! dashboard runs (restored on every way out, a panic included), a fresh
//! state every refresh unless paused, keys in between.

use std::io::{self, Stdout};
use std::time::{Duration, Instant};

use crossterm::event::{self, Event};
use crossterm::terminal::{
    Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use crossterm::{cursor, execute};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use super::input::{Action, View};
use super::render;
use super::state::DashboardState;

/// How often a new state is fetched and drawn.
pub const REFRESH: Duration = Duration::from_millis(500);

/// Puts the terminal back however the dashboard ends.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = disable_raw_mode();
        let _ = execute!(io::stdout(), LeaveAlternateScreen, cursor::Show);
    }
}

/// Runs the dashboard on this process's terminal until `q` (or `done()`
/// turns true, e.g. the in-process run ended). `fetch` is called once per
/// refresh; an error is shown in the footer and the last state stays.
pub fn run(
    mut view: View,
    refresh: Duration,
    mut fetch: impl FnMut() -> Result<DashboardState, String>,
    done: impl Fn() -> bool,
) -> io::Result<()> {
    enable_raw_mode()?;
    let _restore = Restore;
    // Cleared here, not by ratatui, whose clear asks the terminal for the
    // cursor position and fails on one that does not answer.
    execute!(io::stdout(), EnterAlternateScreen, cursor::Hide, Clear(ClearType::All))?;
    let mut terminal: Terminal<CrosstermBackend<Stdout>> = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    let mut state = DashboardState::default();
    let mut next = Instant::now();
    while !done() {
        let now = Instant::now();
        if now >= next {
            next = now + refresh;
            if !view.paused {
                match fetch() {
                    Ok(s) => {
                        state = s;
                        view.error = None;
                    }
                    Err(e) => view.error = Some(e),
                }
            }
            terminal.draw(|f| render::draw(f, &state, &view))?;
        }
        if event::poll(next.saturating_duration_since(Instant::now()))? {
            match event::read()? {
                Event::Key(key) => {
                    if view.on_key(key) == Action::Quit {
                        break;
                    }
                    terminal.draw(|f| render::draw(f, &state, &view))?;
                }
                Event::Resize(..) => {
                    terminal.autoresize()?;
                    terminal.draw(|f| render::draw(f, &state, &view))?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}
