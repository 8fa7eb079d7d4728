//! Drawing one [`DashboardState`] into a ratatui frame. Pure: the same
//! state and view give the same cells, which is what the `TestBackend`
//! tests check. Laid out for 80×24 (an SSH session's default) and wider.
//!
//! Per pair, two lines:
//!
//! ```text
//! BTCUSDT  [───────┃──│██┃──┃────] +0.2859    762.6k   423.5k  0.002  10.0   0.1s
//!          ▁▁▂▂▃▃▄▄▅▅▆▆▇▇██▇▆▅▄▃   61837.63/61837.64  ▲ imbalance_buy 23:54:11
//! ```
//!
//! The bar runs from −1 (left) to +1 (right), filled from the centre to the
//! ratio, green toward the bid, red toward the ask; `┃` marks each
//! threshold of a trigger on `imbalance_ratio` or `weighted_imbalance` that
//! watches the pair. Under it, the ratio over the last minutes.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::input::View;
use super::state::{AlertRow, DashboardState, PairState, Side};

/// Width of everything on a pair's first line but the bar's cells (79 in
/// all at 80 columns, so nothing is cut).
const FIXED_COLUMNS: u16 = 58;
/// Bar cells (between the brackets) at 80 columns; odd, so 0 has a cell.
const MIN_BAR: u16 = 21;
const MAX_BAR: u16 = 61;

/// The threshold mark on a bar.
pub const THRESHOLD_MARK: &str = "┃";
/// A bar's filled cell.
pub const FILL: &str = "█";

/// Latency stages the footer shows, with a short label.
const SHOWN_STAGES: [(&str, &str); 5] =
    [("wire_to_decision", "wire→dec"), ("parse", "parse"), ("eval", "eval"), ("queue", "queue"), ("telegram", "tg")];

/// Draws the whole dashboard.
pub fn draw(frame: &mut Frame<'_>, state: &DashboardState, view: &View) {
    let area = frame.area();
    let mut lines = Vec::with_capacity(area.height as usize);
    lines.push(header(state, view));
    let bar = bar_width(area.width);
    lines.push(Line::styled(
        format!(
            "{:<9}{:<w$} {:>7}  {:>8} {:>8} {:>6} {:>5} {:>6}",
            "PAIR",
            format!("-1 {:^c$} +1", "imbalance", c = (bar as usize).saturating_sub(4)),
            "RATIO",
            "BID VOL",
            "ASK VOL",
            "BPS",
            "FR/S",
            "AGE",
            w = bar as usize + 2
        ),
        Style::new().add_modifier(Modifier::BOLD),
    ));
    let mut rows: Vec<&PairState> = state.pairs.iter().collect();
    view.sort.sort(&mut rows);
    for p in rows {
        lines.push(pair_line(p, state, bar));
        lines.push(pair_detail(p, bar, area.width as usize));
    }
    let footer_rows = 3;
    let room = (area.height as usize).saturating_sub(lines.len() + footer_rows);
    if room > 0 {
        lines.push(Line::styled(
            format!("ALERTS ({} recent, newest first)", state.alerts.len()),
            Style::new().add_modifier(Modifier::BOLD),
        ));
        for a in state.alerts.iter().take(room - 1) {
            lines.push(alert_line(a));
        }
    }
    while lines.len() + footer_rows < area.height as usize {
        lines.push(Line::raw(""));
    }
    lines.push(latency_line(state));
    lines.push(telegram_line(state));
    lines.push(keys_line(view));
    frame.render_widget(Paragraph::new(lines), Rect { height: area.height, ..area });
}

/// Bar cells for a terminal `width` wide (odd, within [MIN_BAR, MAX_BAR]).
pub fn bar_width(width: u16) -> u16 {
    let w = width.saturating_sub(FIXED_COLUMNS + 1).clamp(MIN_BAR, MAX_BAR);
    if w.is_multiple_of(2) { w - 1 } else { w }
}

/// The cell of `value` (−1..=1) on a bar of `width` cells.
pub fn bar_cell(value: f64, width: u16) -> usize {
    // From the centre, so that ±x land symmetrically (rounding half away from 0).
    let half = f64::from(width.saturating_sub(1) / 2);
    (half + (value.clamp(-1.0, 1.0) * half).round()) as usize
}

fn header(state: &DashboardState, view: &View) -> Line<'static> {
    let up = state.now_ns.saturating_sub(state.started_ns) / 1_000_000_000;
    let conn_style = if state.connections_open == 0 { Style::new().fg(Color::Red) } else { Style::new() };
    Line::from(vec![
        Span::styled(format!("feed: {} open", state.connections_open), conn_style),
        Span::raw(format!(
            ", {} reconnects | up {}m{:02}s | {} UTC | ",
            state.reconnects,
            up / 60,
            up % 60,
            clock(state.now_ns)
        )),
        Span::styled(view.source.clone(), Style::new().add_modifier(Modifier::BOLD)),
    ])
}

fn pair_line(p: &PairState, state: &DashboardState, bar: u16) -> Line<'static> {
    let stale = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
    let mut spans = vec![Span::styled(format!("{:<9}", p.pair), if p.stale { stale } else { Style::new() })];
    spans.push(Span::raw("["));
    let marks: Vec<usize> = state
        .triggers
        .iter()
        .filter(|t| (t.metric == "imbalance_ratio" || t.metric == "weighted_imbalance") && t.watches(&p.pair))
        .map(|t| bar_cell(t.value, bar))
        .collect();
    let centre = bar_cell(0.0, bar);
    let at = p.ratio.map(|r| bar_cell(r, bar));
    for cell in 0..bar as usize {
        let filled = at.is_some_and(|at| {
            (at > centre && cell > centre && cell <= at) || (at < centre && cell < centre && cell >= at)
        });
        let fill_style = if at.is_some_and(|at| at > centre) { Color::Green } else { Color::Red };
        let span = if marks.contains(&cell) {
            let s = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
            Span::styled(THRESHOLD_MARK, if filled { s.bg(fill_style) } else { s })
        } else if filled {
            Span::styled(FILL, Style::new().fg(fill_style))
        } else if cell == centre {
            Span::raw("│")
        } else {
            Span::styled("─", Style::new().fg(Color::DarkGray))
        };
        spans.push(span);
    }
    spans.push(Span::raw("] "));
    spans.push(Span::raw(p.ratio.map_or_else(|| format!("{:>7}", "—"), |r| format!("{r:>+7.4}"))));
    spans.push(Span::raw(format!(
        "  {:>8} {:>8} {:>6} {:>5.1} ",
        p.bid_volume.map_or("—".to_string(), human_volume),
        p.ask_volume.map_or("—".to_string(), human_volume),
        p.spread_bps.map_or("—".to_string(), human_bps),
        p.frames_per_sec
    )));
    let age = match p.since_last_frame_sec {
        None => "never".to_string(),
        Some(s) if s < 100.0 => format!("{s:.1}s"),
        Some(s) => format!("{:.0}s", s.min(999_999.0)),
    };
    spans.push(Span::styled(format!("{age:>6}"), if p.stale { stale } else { Style::new() }));
    Line::from(spans)
}

fn pair_detail(p: &PairState, bar: u16, width: usize) -> Line<'static> {
    let indent = Span::raw(" ".repeat(9));
    // A feed that is down has no fresh history to show: the reason takes the line.
    if let Some(why) = &p.feed_down {
        return Line::from(vec![indent, Span::styled(format!("feed down: {why}"), Style::new().fg(Color::Red))]);
    }
    let mut spans = vec![
        indent,
        Span::styled(
            format!("{:<w$}", sparkline(&p.history, bar as usize + 2), w = bar as usize + 2),
            Style::new().fg(Color::Cyan),
        ),
    ];
    let bid = p.best_bid.as_deref().unwrap_or("—");
    let ask = p.best_ask.as_deref().unwrap_or("—");
    let touch = format!(" {bid}/{ask}");
    if let Some(a) = &p.last_alert {
        // The trigger's name gives way to the time when the line is short.
        let room = width.saturating_sub(9 + bar as usize + 2 + touch.chars().count() + 14);
        spans.push(Span::raw(touch));
        spans.push(Span::styled(
            format!("  {} {} {}", a.side.marker(), shorten(&a.trigger, room), clock(a.recv_ns)),
            Style::new().fg(side_color(a.side)),
        ));
    } else {
        spans.push(Span::raw(touch));
    }
    Line::from(spans)
}

/// The ratio history in `width` block characters: each column the mean of
/// its share of the samples (most recent at the right), blank where there
/// was no ratio; the height is the ratio from −1 (lowest) to +1 (highest).
pub fn sparkline(history: &[Option<f64>], width: usize) -> String {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if history.is_empty() || width == 0 {
        return String::new();
    }
    let per = history.len().div_ceil(width);
    let skip = history.len() % per;
    let mut out = String::with_capacity(width * 3);
    // The oldest partial column is dropped, so every column is whole.
    for chunk in history.get(skip..).unwrap_or_default().chunks(per) {
        let (sum, n) = chunk.iter().flatten().fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
        if n == 0 {
            out.push(' ');
        } else {
            let level = ((sum / f64::from(n) + 1.0) / 2.0 * 7.0).round().clamp(0.0, 7.0) as usize;
            out.push(LEVELS[level]);
        }
    }
    out
}

fn alert_line(a: &AlertRow) -> Line<'static> {
    let tg_color = match a.telegram.as_str() {
        "sent" => Color::Green,
        "queued" | "sent_unconfirmed" => Color::Yellow,
        "off" => Color::DarkGray,
        _ => Color::Red,
    };
    Line::from(vec![
        Span::raw(format!("{} ", clock(a.recv_ns))),
        Span::styled(format!("{} ", a.side.marker()), Style::new().fg(side_color(a.side))),
        Span::raw(format!("{:<9} {:<24} {:>+8.4}  ", a.pair, a.trigger, a.value)),
        Span::styled(format!("telegram {}", a.telegram), Style::new().fg(tg_color)),
    ])
}

fn latency_line(state: &DashboardState) -> Line<'static> {
    let mut s = String::from("p50/p99");
    for (stage, label) in SHOWN_STAGES {
        if let Some(l) = state.latency.iter().find(|l| l.stage == stage) {
            s.push_str(&format!(" {label} {}/{}", short_ns(l.p50_ns), short_ns(l.p99_ns)));
        }
    }
    if state.latency.is_empty() {
        s.push_str(" (no samples yet)");
    }
    Line::raw(s)
}

fn telegram_line(state: &DashboardState) -> Line<'static> {
    match &state.telegram {
        None => Line::styled("telegram: off", Style::new().fg(Color::DarkGray)),
        Some(counts) => Line::raw(format!(
            "telegram: {}",
            counts.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
        )),
    }
}

fn keys_line(view: &View) -> Line<'static> {
    let mut spans = vec![Span::raw(format!("q quit  s sort: {}  p pause", view.sort.label()))];
    if view.paused {
        spans.push(Span::styled("  PAUSED", Style::new().fg(Color::Black).bg(Color::Yellow)));
    }
    if let Some(e) = &view.error {
        spans.push(Span::styled(format!("  {e}"), Style::new().fg(Color::Red)));
    }
    Line::from(spans)
}

fn side_color(side: Side) -> Color {
    match side {
        Side::Buy => Color::Green,
        Side::Sell => Color::Red,
    }
}

/// `name` cut to `room` characters (with `…`), never below 4.
fn shorten(name: &str, room: usize) -> String {
    let room = room.max(4);
    if name.chars().count() <= room {
        name.to_string()
    } else {
        name.chars().take(room - 1).chain(std::iter::once('…')).collect()
    }
}

/// A latency in at most five characters: `480ns`, `5.0us`, `162us`, `1.2ms`, `35ms`, `1.5s`.
pub fn short_ns(ns: u64) -> String {
    let f = ns as f64;
    match ns {
        0..=999 => format!("{ns}ns"),
        1_000..=9_999 => format!("{:.1}us", f / 1e3),
        10_000..=999_999 => format!("{:.0}us", f / 1e3),
        1_000_000..=9_999_999 => format!("{:.1}ms", f / 1e6),
        10_000_000..=999_999_999 => format!("{:.0}ms", f / 1e6),
        _ => format!("{:.1}s", f / 1e9),
    }
}

/// A spread in six columns: `0.002`, `12.5`, `20000`.
pub fn human_bps(bps: f64) -> String {
    if bps < 10.0 {
        format!("{bps:.3}")
    } else if bps < 1000.0 {
        format!("{bps:.1}")
    } else {
        format!("{:.0}", bps.min(99_999.0))
    }
}

/// `762.6k`, `1.25M`, `0.0312`: a volume in eight columns.
pub fn human_volume(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

/// `HH:MM:SS` (UTC) of a Unix ns time.
pub fn clock(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    format!("{:02}:{:02}:{:02}", secs / 3600 % 24, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_cells_put_zero_in_the_middle_and_the_ends_at_the_edges() {
        assert_eq!(bar_width(80), 21);
        assert_eq!(bar_cell(0.0, 21), 10);
        assert_eq!(bar_cell(-1.0, 21), 0);
        assert_eq!(bar_cell(1.0, 21), 20);
        assert_eq!(bar_cell(0.25, 21), 13);
        assert_eq!(bar_cell(7.0, 21), 20, "out of range clamps");
    }

    #[test]
    fn the_sparkline_keeps_the_latest_samples_at_the_right() {
        let history: Vec<Option<f64>> = (0..10).map(|i| if i < 2 { None } else { Some(1.0) }).collect();
        assert_eq!(sparkline(&history, 10), "  ████████");
        assert_eq!(sparkline(&[Some(-1.0), Some(1.0)], 5), "▁█");
        assert_eq!(sparkline(&[Some(-1.0); 300], 23).chars().count(), 21);
    }

    #[test]
    fn latencies_fit_five_columns() {
        let shown: Vec<String> = [480, 5_049, 162_430, 1_234_567, 35_000_000, 1_500_000_000].map(short_ns).into();
        assert_eq!(shown, ["480ns", "5.0us", "162us", "1.2ms", "35ms", "1.5s"]);
    }

    #[test]
    fn volumes_fit_eight_columns() {
        assert_eq!(human_volume(762_596.001_2), "762.6k");
        assert_eq!(human_volume(12_345_678.0), "12.35M");
        assert_eq!(human_volume(3.031_25), "3.0312");
    }
}
