//! `plot`: a chart of what happened in recordings — per pair the mid price
//! and the metrics the triggers watch, stacked on one time axis, with the
//! thresholds and a marker at each alert — as PNG or SVG (by the output's
//! extension).
//!
//! Text is laid out (and in PNG drawn) with an embedded font, a subset of
//! DejaVu Sans (see `font/LICENSE-DejaVu`), so the chart looks the same on
//! a host without any fonts installed; SVG names the family and leaves the
//! glyphs to the viewer.

pub mod chart;
pub mod series;

use std::path::PathBuf;
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::config::Config;
use crate::recording::RecordingError;
use crate::units::UnixNanos;
pub use series::{Series, Window};

/// DejaVu Sans, cut to ASCII and the few symbols the chart uses (▲ ▼ → · ≤ ≥ …).
static FONT_BYTES: &[u8] = include_bytes!("font/DejaVuSans-subset.ttf");

/// Why no chart was written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error(transparent)]
    Recording(#[from] RecordingError),
    #[error("-o {0}: the chart is written as .png or .svg; name the file so")]
    Format(PathBuf),
    #[error("nothing to plot: no evaluated book{pair} in {files}{window}")]
    Empty { pair: String, files: String, window: String },
    #[error("-o {path}: {detail}")]
    Draw { path: PathBuf, detail: String },
    #[error("the embedded font could not be loaded")]
    Font,
}

/// What to plot and where.
#[derive(Clone, Debug)]
pub struct PlotOptions {
    pub files: Vec<PathBuf>,
    pub out: PathBuf,
    pub window: Window,
}

/// What was drawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlotReport {
    pub pairs: Vec<String>,
    pub points: usize,
    pub alerts: usize,
    pub size: (u32, u32),
}

enum Format {
    Png,
    Svg,
}

/// Reads the recordings, draws the chart and writes `options.out`.
pub fn plot(config: &Config, options: &PlotOptions) -> Result<PlotReport, PlotError> {
    let format = match options.out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("png") => Format::Png,
        Some("svg") => Format::Svg,
        _ => return Err(PlotError::Format(options.out.clone())),
    };
    let series = series::collect(config, &options.files, &options.window)?;
    if series.pairs.is_empty() {
        return Err(PlotError::Empty {
            pair: options.window.pair.as_ref().map(|p| format!(" of {p}")).unwrap_or_default(),
            files: options.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "),
            window: match (options.window.from, options.window.to) {
                (None, None) => String::new(),
                (f, t) => format!(
                    " between {} and {}",
                    f.map_or("the start".into(), |t| t.to_string()),
                    t.map_or("the end".into(), |t| t.to_string())
                ),
            },
        });
    }
    let size = chart::size(&series);
    let title = title(config, &series);
    let draw_err = |detail: String| PlotError::Draw { path: options.out.clone(), detail };
    // Both backends lay text out with the font's metrics.
    register_font()?;
    match format {
        Format::Png => {
            let root = BitMapBackend::new(&options.out, size).into_drawing_area();
            chart::draw(&root, &series, config, &title).map_err(draw_err)?;
        }
        Format::Svg => {
            let root = SVGBackend::new(&options.out, size).into_drawing_area();
            chart::draw(&root, &series, config, &title).map_err(draw_err)?;
        }
    }
    Ok(PlotReport {
        pairs: series.pairs.iter().map(|p| p.pair.clone()).collect(),
        points: series.pairs.iter().map(|p| p.mid.len()).sum(),
        alerts: series.pairs.iter().map(|p| p.alerts.len()).sum(),
        size,
    })
}

fn register_font() -> Result<(), PlotError> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| plotters::style::register_font(chart::FONT, FontStyle::Normal, FONT_BYTES).is_ok());
    if ok { Ok(()) } else { Err(PlotError::Font) }
}

/// `BTCUSDT · 2024-08-08 23:54:14 → 00:05:04 UTC · config.toml: notional top_n=10 · imbalance_buy >= 0.6 edge 10s · …`
/// (the metric is named unless it is `imbalance_ratio`).
pub fn title(config: &Config, series: &Series) -> String {
    let pairs: Vec<&str> = series.pairs.iter().map(|p| p.pair.as_str()).collect();
    let from = UnixNanos(series.from).to_string();
    let day = from.get(..10).unwrap_or("");
    let clock = |t: u64| crate::watch::render::clock(t);
    let mut s = format!(
        "{} · {day} {} → {} UTC · {}: {} top_n={}",
        pairs.join(", "),
        clock(series.from),
        clock(series.to),
        config.path.file_name().map_or_else(|| config.path.display().to_string(), |n| n.to_string_lossy().into_owned()),
        config.volume.mode,
        config.volume.top_n
    );
    for t in &config.triggers {
        s.push_str(" · ");
        s.push_str(&t.name);
        for (i, c) in t.conditions().enumerate() {
            s.push_str(if i == 0 { " " } else { " and " });
            if c.metric != crate::metrics::MetricKind::ImbalanceRatio || i > 0 {
                s.push_str(c.metric.as_str());
                s.push(' ');
            }
            s.push_str(&format!("{} {}", c.op.as_str(), c.value));
        }
        s.push_str(&format!(" {}", t.emit.as_str()));
        if t.cooldown_ns > 0 {
            s.push_str(&format!(" {}s", t.cooldown_ns as f64 / 1e9));
        }
    }
    s
}

/// Reads `--from`/`--to`: RFC 3339 (`2024-08-08T23:55:00Z`) or Unix
/// seconds (`1723161300`, fractions allowed).
pub fn parse_time(s: &str) -> Result<UnixNanos, String> {
    if let Ok(secs) = s.parse::<f64>()
        && (0.0..1e11).contains(&secs)
    {
        return Ok(UnixNanos((secs * 1e9).round() as u64));
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("{s:?} is not a time ({e}); use RFC 3339 like 2024-08-08T23:55:00Z or Unix seconds"))?;
    u64::try_from(t.unix_timestamp_nanos()).map(UnixNanos).map_err(|_| format!("{s:?} is before 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_unix_seconds() {
        assert_eq!(parse_time("2024-08-08T23:55:00Z").unwrap(), UnixNanos(1_723_161_300_000_000_000));
        assert_eq!(parse_time("1723161300.5").unwrap(), UnixNanos(1_723_161_300_500_000_000));
        assert!(parse_time("yesterday").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn the_embedded_font_loads() {
        register_font().unwrap();
    }
}
