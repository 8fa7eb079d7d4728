//! Line charts for reports (`evaluate --plot`): PNG or SVG by the file's
//! extension, drawn with `plotters`.
//!
//! PNG text is rasterised from the font embedded for `plot` (a DejaVu Sans
//! subset, [`crate::plot`]), so a chart looks the same on a headless server
//! without fonts as on a desktop. SVG text is laid out with the same font and
//! names the `sans-serif` family; the viewer renders it.

use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Pixels of a PNG chart; SVG uses the same user units.
const SIZE: (u32, u32) = (1000, 760);

/// Why a chart was not written.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("{}: unknown chart format; name the file .png or .svg", path.display())]
    Format { path: PathBuf },
    #[error("{}: cannot draw the chart: {message}", path.display())]
    Draw { path: PathBuf, message: String },
    #[error("the embedded chart font cannot be loaded")]
    Font,
}

/// The file formats a chart can be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
}

impl Format {
    /// The format `path`'s extension names (case-insensitive).
    pub fn of(path: &Path) -> Result<Format, ChartError> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("png") => Ok(Format::Png),
            Some("svg") => Ok(Format::Svg),
            _ => Err(ChartError::Format { path: path.to_path_buf() }),
        }
    }
}

/// One line: a label and its points, in x order.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// One plot area with its own y axis.
#[derive(Clone, Debug)]
pub struct Panel {
    pub y_label: String,
    pub series: Vec<Series>,
    /// A horizontal reference line (e.g. 0 bps, or a 50 % hit rate).
    pub reference: Option<f64>,
}

/// Panels stacked vertically over one shared x axis.
#[derive(Clone, Debug)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub panels: Vec<Panel>,
}

/// Draws `chart` to `path` as PNG or SVG (by extension).
pub fn draw(chart: &Chart, path: &Path) -> Result<(), ChartError> {
    let draw_error = |e: &dyn std::fmt::Display| ChartError::Draw { path: path.to_path_buf(), message: e.to_string() };
    let format = Format::of(path)?;
    // Both backends lay text out with the font; only PNG rasterises it.
    crate::plot::register_font().map_err(|_| ChartError::Font)?;
    match format {
        Format::Png => {
            let root = BitMapBackend::new(path, SIZE).into_drawing_area();
            draw_on(&root, chart).map_err(|e| draw_error(&e))?;
            root.present().map_err(|e| draw_error(&e))
        }
        Format::Svg => {
            let root = SVGBackend::new(path, SIZE).into_drawing_area();
            draw_on(&root, chart).map_err(|e| draw_error(&e))?;
            root.present().map_err(|e| draw_error(&e))
        }
    }
}

/// Colours of the lines, in series order (then repeated).
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// `[lo, hi]` of `values` widened by 5 % (and to a unit span if flat).
fn range(values: impl Iterator<Item = f64>, with: Option<f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.chain(with).filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        return (lo - 0.5, hi + 0.5);
    }
    let pad = (hi - lo) * 0.05;
    (lo - pad, hi + pad)
}

fn draw_on<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &Chart,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let root = root.titled(&chart.title, ("sans-serif", 24))?;
    let areas = root.split_evenly((chart.panels.len().max(1), 1));
    let (x_lo, x_hi) =
        range(chart.panels.iter().flat_map(|p| p.series.iter()).flat_map(|s| s.points.iter().map(|p| p.0)), None);
    for (panel, area) in chart.panels.iter().zip(&areas) {
        let (y_lo, y_hi) = range(panel.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)), panel.reference);
        let mut ctx = ChartBuilder::on(area)
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(72)
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)?;
        ctx.configure_mesh()
            .x_desc(chart.x_label.as_str())
            .y_desc(panel.y_label.as_str())
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .light_line_style(TRANSPARENT)
            .draw()?;
        if let Some(y) = panel.reference {
            ctx.draw_series(LineSeries::new([(x_lo, y), (x_hi, y)], BLACK.mix(0.4)))?;
        }
        for (i, s) in panel.series.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            ctx.draw_series(LineSeries::new(s.points.iter().copied(), colour.stroke_width(2)))?
                .label(s.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
            ctx.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
        }
        ctx.configure_series_labels()
            .label_font(("sans-serif", 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.5))
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> Chart {
        let series = |label: &str, ys: [f64; 3]| Series {
            label: label.into(),
            points: ys.iter().enumerate().map(|(i, &y)| (0.1 * (i + 1) as f64, y)).collect(),
        };
        Chart {
            title: "mean return by value".into(),
            x_label: "value".into(),
            panels: vec![Panel {
                y_label: "mean bps".into(),
                series: vec![series("1s", [0.1, 0.3, -0.2]), series("5s", [0.2, 0.0, 0.4])],
                reference: Some(0.0),
            }],
        }
    }

    #[test]
    fn the_extension_picks_the_format() {
        assert_eq!(Format::of(Path::new("a/b.PNG")).unwrap(), Format::Png);
        assert_eq!(Format::of(Path::new("b.svg")).unwrap(), Format::Svg);
        assert!(Format::of(Path::new("b.jpg")).unwrap_err().to_string().contains("name the file .png or .svg"));
    }

    #[test]
    fn png_and_svg_charts_are_written_with_their_labels() {
        let dir = std::env::temp_dir().join(format!("imbalance-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let png = dir.join("c.png");
        draw(&chart(), &png).unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let svg = dir.join("c.svg");
        draw(&chart(), &svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.starts_with("<svg") && text.contains("mean return by value") && text.contains("\n5s\n"), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
