//! Drawing [`Series`] with plotters, the same way for PNG and SVG: per pair
//! a stack of panels on one time axis — the mid price, then each charted
//! metric with its triggers' thresholds as dashed lines and a marker at
//! every alert (▲ buy-side, ▼ sell-side, at the alert's value).

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::series::{PairSeries, Series};
use crate::config::Config;
use crate::metrics::MetricKind;
use crate::triggers::TriggerSpec;
use crate::watch::state::Side;

/// Canvas width, pixels.
pub const WIDTH: u32 = 1000;
/// Height of one panel, pixels.
pub const PANEL_HEIGHT: u32 = 170;
/// Height of the title strip, pixels.
const TITLE_HEIGHT: u32 = 34;
/// The font family every text uses (registered from the embedded font for PNG).
pub const FONT: &str = "sans-serif";

const BUY: RGBColor = RGBColor(0, 150, 60);
const SELL: RGBColor = RGBColor(210, 30, 30);
const PRICE: RGBColor = RGBColor(40, 70, 160);
const METRIC: RGBColor = RGBColor(90, 90, 90);

/// The canvas size for `series`.
pub fn size(series: &Series) -> (u32, u32) {
    let panels: usize = series.pairs.iter().map(|p| 1 + p.metrics.len()).sum();
    (WIDTH, TITLE_HEIGHT + PANEL_HEIGHT * panels.max(1) as u32)
}

/// Draws the whole chart on `root`.
pub fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    series: &Series,
    config: &Config,
    title: &str,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let (top, body) = root.split_vertically(TITLE_HEIGHT);
    // One line: the largest size that fits the width.
    let fits = |size: u32| {
        top.estimate_text_size(title, &TextStyle::from((FONT, size).into_font())).is_ok_and(|(w, _)| w + 20 <= WIDTH)
    };
    let size = (8..=14).rev().find(|&s| fits(s)).unwrap_or(8);
    top.draw(&Text::new(title.to_string(), (10, 10), (FONT, size).into_font().color(&BLACK))).map_err(err)?;
    let panels: usize = series.pairs.iter().map(|p| 1 + p.metrics.len()).sum();
    let areas = body.split_evenly((panels.max(1), 1));
    let mut areas = areas.iter();
    let axis = TimeAxis { from: series.from, end: ((series.to.saturating_sub(series.from)) as f64 / 1e9).max(1.0) };
    for pair in &series.pairs {
        let Some(area) = areas.next() else { break };
        price_panel(area, pair, axis).map_err(err)?;
        for (kind, points) in &pair.metrics {
            let Some(area) = areas.next() else { break };
            let triggers: Vec<&TriggerSpec> = config
                .triggers
                .iter()
                .filter(|t| {
                    t.pairs
                        .as_ref()
                        .is_none_or(|ids| ids.iter().any(|id| config.pairs.get(id.index()) == Some(&pair.pair)))
                })
                .collect();
            metric_panel(area, pair, (*kind, points), &triggers, &config.triggers, axis).map_err(err)?;
        }
    }
    root.present().map_err(err)
}

/// The shared x axis: seconds since `from` (Unix ns), up to `end`.
#[derive(Clone, Copy)]
struct TimeAxis {
    from: u64,
    end: f64,
}

/// Seconds since `from` as the wall-clock time of day.
fn clock_label(from: u64, x: f64) -> String {
    crate::watch::render::clock(from.saturating_add((x.max(0.0) * 1e9) as u64))
}

/// One panel on the shared time axis: its margins, mesh, clock labels and
/// the `y_desc` on a `y` range; the price and metric panels draw into it.
type Panel<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    axis: TimeAxis,
    y: std::ops::Range<f64>,
    y_desc: &str,
) -> Result<Panel<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = ChartBuilder::on(area)
        .margin_right(15)
        .margin_left(6)
        .margin_top(6)
        .x_label_area_size(22)
        .y_label_area_size(90)
        .build_cartesian_2d(0.0..axis.end, y)?;
    let label = |x: &f64| clock_label(axis.from, *x);
    chart
        .configure_mesh()
        .x_labels(8)
        .y_labels(5)
        .x_label_formatter(&label)
        .y_desc(y_desc)
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .draw()?;
    Ok(chart)
}

fn price_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    pair: &PairSeries,
    axis: TimeAxis,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (lo, hi) = pair.mid.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &(_, m)| (lo.min(m), hi.max(m)));
    let pad = ((hi - lo) * 0.05).max(hi.abs() * 1e-6).max(1e-8);
    let mut chart = panel(area, axis, (lo - pad)..(hi + pad), &format!("{} mid", pair.pair))?;
    chart.draw_series(LineSeries::new(pair.mid.iter().map(|&(t, m)| (secs(t, axis.from), m)), &PRICE))?;
    Ok(())
}

fn secs(t: u64, from: u64) -> f64 {
    t.saturating_sub(from) as f64 / 1e9
}

fn metric_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    pair: &PairSeries,
    (kind, points): (MetricKind, &[(u64, f64)]),
    triggers: &[&TriggerSpec],
    all_triggers: &[TriggerSpec],
    axis: TimeAxis,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let thresholds: Vec<(&TriggerSpec, f64, Side)> = triggers
        .iter()
        .flat_map(|t| {
            t.conditions().filter(|c| c.metric == kind).map(move |c| (*t, c.value, Side::of_op(c.op.as_str())))
        })
        .collect();
    let mut values: Vec<f64> = points.iter().map(|&(_, v)| v).chain(thresholds.iter().map(|&(_, v, _)| v)).collect();
    values.extend(pair.alerts.iter().map(|a| a.value_f64()));
    let (lo, hi) = match kind {
        MetricKind::ImbalanceRatio | MetricKind::WeightedImbalance => (-1.0, 1.0),
        _ => values.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v))),
    };
    let (lo, hi) = if lo > hi { (-1.0, 1.0) } else { (lo, hi) };
    let pad = ((hi - lo) * 0.06).max(1e-6);
    let mut chart = panel(area, axis, (lo - pad)..(hi + pad), kind.as_str())?;
    chart.draw_series(LineSeries::new(points.iter().map(|&(t, v)| (secs(t, axis.from), v)), &METRIC))?;
    for (t, value, side) in &thresholds {
        let color = side_color(*side);
        chart
            .draw_series(DashedLineSeries::new([(0.0, *value), (axis.end, *value)], 6, 4, color.stroke_width(1)))?
            .label(format!("{} {} {}", t.name, t.op.as_str(), value))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
    }
    // An alert is marked once, on the panel of its trigger's (first) metric.
    let alerts = pair.alerts.iter().filter_map(|a| {
        let t = all_triggers.get(a.trigger.index()).filter(|t| t.metric == kind)?;
        let side = Side::of_op(t.op.as_str());
        let style = (FONT, 16).into_font().color(&side_color(side)).pos(Pos::new(HPos::Center, VPos::Center));
        Some(Text::new(side.marker().to_string(), (secs(a.recv.0, axis.from), a.value_f64()), style))
    });
    chart.draw_series(alerts)?;
    if !thresholds.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .label_font((FONT, 12))
            .draw()?;
    }
    Ok(())
}

fn side_color(side: Side) -> RGBColor {
    match side {
        Side::Buy => BUY,
        Side::Sell => SELL,
    }
}
