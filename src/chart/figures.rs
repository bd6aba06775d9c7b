//! Figures beyond line charts: box plots, heat maps, grouped bars.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Figure, fmt_tick, header};

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// The five numbers a box shows (plus the p99 dot).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxStats {
    pub p5: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p95: f64,
    pub p99: f64,
    pub n: usize,
}

impl BoxStats {
    /// From finished samples; None when empty.
    pub fn of(s: &crate::stats::Samples) -> Option<BoxStats> {
        let p = |q| s.percentile(q);
        Some(BoxStats {
            p5: p(0.05)?,
            p25: p(0.25)?,
            p50: p(0.5)?,
            p75: p(0.75)?,
            p95: p(0.95)?,
            p99: p(0.99)?,
            n: s.len(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct BoxGroup {
    pub name: String,
    pub color: RGBColor,
    pub stats: BoxStats,
}

/// One panel of boxes (e.g. one load level).
#[derive(Debug, Clone)]
pub struct BoxPanel {
    pub caption: String,
    pub groups: Vec<BoxGroup>,
}

/// Box plots in panels: box p25-p75 with the median, whiskers p5-p95, a dot at p99.
#[derive(Debug, Clone)]
pub struct BoxPlot {
    pub title: String,
    pub subtitle: String,
    pub y_label: String,
    pub panels: Vec<BoxPanel>,
    pub cols: usize,
}

impl Figure for BoxPlot {
    fn size(&self) -> (u32, u32) {
        let rows = self.panels.len().div_ceil(self.cols.max(1)).max(1) as u32;
        (1200, 80 + 420 * rows)
    }

    fn draw<DB: DrawingBackend + 'static>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        if self.panels.iter().all(|p| p.groups.is_empty()) {
            return Err(format!("no data: {}", self.title));
        }
        let body = header(
            root,
            &self.title,
            &format!(
                "{}{}box p25-p75 with median, whiskers p5-p95, dot p99",
                self.subtitle,
                if self.subtitle.is_empty() { "" } else { " · " }
            ),
        )?;
        let cols = self.cols.max(1);
        let rows = self.panels.len().div_ceil(cols).max(1);
        let areas = body.split_evenly((rows, cols));
        for (a, p) in areas.iter().zip(&self.panels) {
            let (cap, inner) = a.split_vertically(28);
            cap.draw(&Text::new(
                p.caption.clone(),
                (70, 6),
                ("sans-serif", 17).into_font().color(&BLACK),
            ))
            .map_err(err)?;
            let n = p.groups.len().max(1);
            let ymax = p
                .groups
                .iter()
                .map(|g| g.stats.p99.max(g.stats.p95))
                .fold(0.0f64, f64::max);
            let ymax = if ymax > 0.0 { ymax * 1.1 } else { 1.0 };
            let names: Vec<String> = p.groups.iter().map(|g| g.name.clone()).collect();
            let mut chart = ChartBuilder::on(&inner)
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(64)
                .build_cartesian_2d(-0.6f64..(n as f64 - 0.4), 0.0..ymax)
                .map_err(err)?;
            let xfmt = |v: &f64| -> String {
                let r = v.round();
                if (v - r).abs() < 1e-6 && r >= 0.0 && (r as usize) < names.len() {
                    names[r as usize].clone()
                } else {
                    String::new()
                }
            };
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(n * 2 + 1)
                .x_label_formatter(&xfmt)
                .y_label_formatter(&|v| fmt_tick(*v))
                .y_desc(self.y_label.as_str())
                .label_style(("sans-serif", 13))
                .axis_desc_style(("sans-serif", 14))
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .map_err(err)?;
            for (i, g) in p.groups.iter().enumerate() {
                let x = i as f64;
                let s = g.stats;
                let fill = g.color.mix(0.35).filled();
                let edge = g.color.stroke_width(2);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x - 0.3, s.p25), (x + 0.3, s.p75)],
                        fill,
                    )))
                    .map_err(err)?;
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x - 0.3, s.p25), (x + 0.3, s.p75)],
                        edge,
                    )))
                    .map_err(err)?;
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x - 0.3, s.p50), (x + 0.3, s.p50)],
                        g.color.stroke_width(4),
                    )))
                    .map_err(err)?;
                for (a, b) in [(s.p5, s.p25), (s.p75, s.p95)] {
                    chart
                        .draw_series(std::iter::once(PathElement::new(vec![(x, a), (x, b)], edge)))
                        .map_err(err)?;
                }
                for w in [s.p5, s.p95] {
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            vec![(x - 0.12, w), (x + 0.12, w)],
                            edge,
                        )))
                        .map_err(err)?;
                }
                chart
                    .draw_series(std::iter::once(Circle::new((x, s.p99), 4, g.color.filled())))
                    .map_err(err)?;
            }
        }
        Ok(())
    }
}

/// A heat map: rows (engines) by columns (load levels), coloured by value, value in each cell.
#[derive(Debug, Clone)]
pub struct Heatmap {
    pub title: String,
    pub subtitle: String,
    pub x_label: String,
    pub x_labels: Vec<String>,
    pub y_labels: Vec<String>,
    /// values[row][col]
    pub values: Vec<Vec<Option<f64>>>,
    pub lower_is_better: bool,
    pub unit: String,
}

/// Green (good) to red (bad) through yellow.
fn ramp(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let (r, g) = if t < 0.5 {
        (2.0 * t, 1.0)
    } else {
        (1.0, 2.0 * (1.0 - t))
    };
    RGBColor((70.0 + 185.0 * r) as u8, (90.0 + 150.0 * g) as u8, 90)
}

impl Figure for Heatmap {
    fn size(&self) -> (u32, u32) {
        (1100, (180 + 70 * self.y_labels.len()).max(360) as u32)
    }

    fn draw<DB: DrawingBackend + 'static>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let all: Vec<f64> = self.values.iter().flatten().flatten().copied().collect();
        if all.is_empty() {
            return Err(format!("no data: {}", self.title));
        }
        let body = header(root, &self.title, &self.subtitle)?;
        let lo = all.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = all.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let (nx, ny) = (self.x_labels.len(), self.y_labels.len());
        let xl = self.x_labels.clone();
        let yl = self.y_labels.clone();
        let mut chart = ChartBuilder::on(&body)
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(170)
            .build_cartesian_2d(0f64..nx as f64, 0f64..ny as f64)
            .map_err(err)?;
        let xfmt = |v: &f64| -> String {
            let i = (v - 0.5).round();
            if (v - 0.5 - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < xl.len() {
                xl[i as usize].clone()
            } else {
                String::new()
            }
        };
        let yfmt = |v: &f64| -> String {
            let i = (v - 0.5).round();
            if (v - 0.5 - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < yl.len() {
                yl[yl.len() - 1 - i as usize].clone()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(nx * 2 + 1)
            .y_labels(ny * 2 + 1)
            .x_label_formatter(&xfmt)
            .y_label_formatter(&yfmt)
            .x_desc(self.x_label.as_str())
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .draw()
            .map_err(err)?;
        for (r, row) in self.values.iter().enumerate() {
            let y = (ny - 1 - r) as f64;
            for (c, v) in row.iter().enumerate() {
                let x = c as f64;
                let (color, text) = match v {
                    Some(v) => {
                        let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
                        let t = if self.lower_is_better { t } else { 1.0 - t };
                        (ramp(t), fmt_tick(*v))
                    }
                    None => (RGBColor(230, 230, 230), "-".into()),
                };
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x + 0.02, y + 0.04), (x + 0.98, y + 0.96)],
                        color.filled(),
                    )))
                    .map_err(err)?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!("{text} {}", self.unit),
                        (x + 0.5, y + 0.5),
                        ("sans-serif", 16)
                            .into_font()
                            .color(&BLACK)
                            .pos(plotters::style::text_anchor::Pos::new(
                                plotters::style::text_anchor::HPos::Center,
                                plotters::style::text_anchor::VPos::Center,
                            )),
                    )))
                    .map_err(err)?;
            }
        }
        Ok(())
    }
}

/// Grouped bars: one group per category, one bar per series.
#[derive(Debug, Clone)]
pub struct Bars {
    pub title: String,
    pub subtitle: String,
    pub y_label: String,
    pub categories: Vec<String>,
    /// (series name, colour, value per category)
    pub series: Vec<(String, RGBColor, Vec<Option<f64>>)>,
}

impl Figure for Bars {
    fn draw<DB: DrawingBackend + 'static>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let all: Vec<f64> = self.series.iter().flat_map(|s| s.2.iter().flatten().copied()).collect();
        if all.is_empty() {
            return Err(format!("no data: {}", self.title));
        }
        let body = header(root, &self.title, &self.subtitle)?;
        let ymax = all.iter().cloned().fold(0.0f64, f64::max) * 1.15;
        let nc = self.categories.len();
        let ns = self.series.len().max(1);
        let cats = self.categories.clone();
        let mut chart = ChartBuilder::on(&body)
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5f64..(nc as f64 - 0.5), 0.0..ymax.max(1.0))
            .map_err(err)?;
        let xfmt = |v: &f64| -> String {
            let r = v.round();
            if (v - r).abs() < 1e-6 && r >= 0.0 && (r as usize) < cats.len() {
                cats[r as usize].clone()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(nc * 2 + 1)
            .x_label_formatter(&xfmt)
            .y_label_formatter(&|v| fmt_tick(*v))
            .y_desc(self.y_label.as_str())
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(err)?;
        let w = 0.8 / ns as f64;
        for (si, (name, color, vals)) in self.series.iter().enumerate() {
            let color = *color;
            let bars: Vec<Rectangle<(f64, f64)>> = vals
                .iter()
                .enumerate()
                .filter_map(|(ci, v)| {
                    v.map(|v| {
                        let x0 = ci as f64 - 0.4 + si as f64 * w;
                        Rectangle::new([(x0 + 0.01, 0.0), (x0 + w - 0.01, v)], color.filled())
                    })
                })
                .collect();
            chart
                .draw_series(bars)
                .map_err(err)?
                .label(name.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], color.filled()));
            for (ci, v) in vals.iter().enumerate() {
                if let Some(v) = v {
                    let x = ci as f64 - 0.4 + (si as f64 + 0.5) * w;
                    chart
                        .draw_series(std::iter::once(Text::new(
                            fmt_tick(*v),
                            (x, *v),
                            ("sans-serif", 13)
                                .into_font()
                                .color(&BLACK)
                                .pos(plotters::style::text_anchor::Pos::new(
                                    plotters::style::text_anchor::HPos::Center,
                                    plotters::style::text_anchor::VPos::Bottom,
                                )),
                        )))
                        .map_err(err)?;
                }
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 15))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .map_err(err)?;
        Ok(())
    }
}
