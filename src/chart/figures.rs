//! Figures beyond line charts: box plots, heat maps, grouped bars.

use plotters::coord::Shift;
use plotters::prelude::*;

use plotters::coord::types::RangedCoordf64;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Figure, Glyph, PlotGeom, Rect, Style, draw_legend, err, fit, fmt_tick, free_corner, header, legend_size};

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
        (1200, 100 + 420 * rows)
    }

    fn draw<DB: DrawingBackend + 'static>(&self, root: &DrawingArea<DB, Shift>) -> Result<Vec<PlotGeom>, String> {
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
            None,
        )?;
        let cols = self.cols.max(1);
        let rows = self.panels.len().div_ceil(cols).max(1);
        let areas = body.split_evenly((rows, cols));
        let mut out = Vec::new();
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
            let (iw, _) = inner.dim_in_pixel();
            let slot = (iw as i32 - 90) / n as i32 - 6;
            let names: Vec<String> = p.groups.iter().map(|g| fit(&g.name, 13, slot)).collect();
            let mut chart = ChartBuilder::on(&inner)
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(64)
                .build_cartesian_2d(-0.6f64..(n as f64 - 0.4), 0.0..ymax)
                .map_err(err)?;
            category_axes(&inner, &mut chart, &self.y_label, Some(&names), 13)?;
            let (xr, yr) = chart.plotting_area().get_pixel_range();
            let mut g = PlotGeom {
                kind: "box",
                title: p.caption.clone(),
                area: Some(Rect::new(xr.start, yr.start, xr.end, yr.end)),
                ..Default::default()
            };
            for (i, grp) in p.groups.iter().enumerate() {
                let x = i as f64;
                let s = grp.stats;
                let fill = grp.color.mix(0.35).filled();
                let edge = grp.color.stroke_width(2);
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
                        grp.color.stroke_width(4),
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
                    .draw_series(std::iter::once(Circle::new((x, s.p99), 4, grp.color.filled())))
                    .map_err(err)?;
                let a = chart.backend_coord(&(x - 0.3, s.p75));
                let b = chart.backend_coord(&(x + 0.3, s.p25));
                g.boxes.push(Rect::new(a.0, a.1, b.0, b.1));
                g.points.push(chart.backend_coord(&(x, s.p99)));
                g.segments
                    .push((chart.backend_coord(&(x, s.p5)), chart.backend_coord(&(x, s.p95))));
            }
            out.push(g);
        }
        Ok(out)
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
    /// The SLO on this metric: cells are coloured by value / SLO when given (else relative to
    /// the other cells).
    pub slo: Option<f64>,
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

impl Heatmap {
    /// A cell's colour. With an SLO (lower is better): green up to half the SLO, through
    /// yellow-green to the SLO, then orange above it and red from twice the SLO. Without one:
    /// green for the best cell to red for the worst.
    pub fn cell_color(&self, v: f64) -> RGBColor {
        match self.slo.filter(|s| *s > 0.0) {
            Some(slo) => {
                let r = v / slo;
                let t = if r <= 1.0 {
                    0.4 * ((r - 0.5) / 0.5).max(0.0)
                } else {
                    0.65 + 0.35 * (r - 1.0).min(1.0)
                };
                ramp(if self.lower_is_better { t } else { 1.0 - t })
            }
            None => {
                let all: Vec<f64> = self.values.iter().flatten().flatten().copied().collect();
                let lo = all.iter().cloned().fold(f64::INFINITY, f64::min);
                let hi = all.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
                ramp(if self.lower_is_better { t } else { 1.0 - t })
            }
        }
    }

    /// The colour key: (swatch value, text) pairs and a sentence saying what colour means.
    fn key(&self) -> (Vec<(f64, String)>, String) {
        match self.slo.filter(|s| *s > 0.0) {
            Some(slo) => (
                [0.5, 1.0, 1.5, 2.0]
                    .iter()
                    .map(|f| {
                        (
                            f * slo,
                            format!(
                                "{} {} {}",
                                if *f >= 2.0 {
                                    "≥"
                                } else if *f <= 0.5 {
                                    "≤"
                                } else {
                                    ""
                                },
                                fmt_tick(f * slo),
                                self.unit
                            )
                            .trim()
                            .to_string(),
                        )
                    })
                    .collect(),
                format!(
                    "Colour: value against the SLO ({} {}): green meets it, orange misses it, red is twice it or more.",
                    fmt_tick(slo),
                    self.unit
                ),
            ),
            None => {
                let all: Vec<f64> = self.values.iter().flatten().flatten().copied().collect();
                let lo = all.iter().cloned().fold(f64::INFINITY, f64::min);
                let hi = all.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                (
                    vec![
                        (lo, format!("{} {}", fmt_tick(lo), self.unit)),
                        (hi, format!("{} {}", fmt_tick(hi), self.unit)),
                    ],
                    "Colour: relative to the other cells (no SLO given), green best, red worst.".into(),
                )
            }
        }
    }
}

impl Figure for Heatmap {
    fn size(&self) -> (u32, u32) {
        (1100, (230 + 70 * self.y_labels.len()).max(400) as u32)
    }

    fn draw<DB: DrawingBackend + 'static>(&self, root: &DrawingArea<DB, Shift>) -> Result<Vec<PlotGeom>, String> {
        let all: Vec<f64> = self.values.iter().flatten().flatten().copied().collect();
        if all.is_empty() {
            return Err(format!("no data: {}", self.title));
        }
        let body = header(root, &self.title, &self.subtitle, None)?;
        let (_, bh) = body.dim_in_pixel();
        let (body, keyarea) = body.split_vertically(bh as i32 - 44);
        let (nx, ny) = (self.x_labels.len(), self.y_labels.len());
        let xl = self.x_labels.clone();
        let yl: Vec<String> = self.y_labels.iter().map(|l| fit(l, 15, 160)).collect();
        let mut chart = ChartBuilder::on(&body)
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(170)
            .build_cartesian_2d(0f64..nx as f64, 0f64..ny as f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(0)
            .y_labels(0)
            .x_desc(self.x_label.as_str())
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .draw()
            .map_err(err)?;
        let xs: Vec<(f64, String)> = xl
            .iter()
            .enumerate()
            .map(|(i, n)| (i as f64 + 0.5, n.clone()))
            .collect();
        let ys: Vec<(f64, String)> = yl
            .iter()
            .enumerate()
            .map(|(i, n)| ((yl.len() - 1 - i) as f64 + 0.5, n.clone()))
            .collect();
        category_labels(&body, &chart, &xs, 15, true)?;
        category_labels(&body, &chart, &ys, 15, false)?;
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        let mut g = PlotGeom {
            kind: "heatmap",
            title: self.title.clone(),
            area: Some(Rect::new(xr.start, yr.start, xr.end, yr.end)),
            ..Default::default()
        };
        let cell_px = (xr.end - xr.start) as f64 / nx.max(1) as f64;
        for (r, row) in self.values.iter().enumerate() {
            let y = (ny - 1 - r) as f64;
            for (c, v) in row.iter().enumerate() {
                let x = c as f64;
                let (color, text) = match v {
                    Some(v) => {
                        let col = self.cell_color(*v);
                        g.cells.push((*v, col));
                        (col, format!("{} {}", fmt_tick(*v), self.unit))
                    }
                    None => (RGBColor(230, 230, 230), "-".into()),
                };
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x + 0.02, y + 0.04), (x + 0.98, y + 0.96)],
                        color.filled(),
                    )))
                    .map_err(err)?;
                // the largest font (16 down to 10) whose text keeps clear of the cell's edges
                let size = (10..=16u32)
                    .rev()
                    .find(|&f| super::text_size(&text, f).0 as f64 <= cell_px - 8.0)
                    .unwrap_or(10);
                chart
                    .draw_series(std::iter::once(Text::new(
                        text,
                        (x + 0.5, y + 0.5),
                        ("sans-serif", size)
                            .into_font()
                            .color(&BLACK)
                            .pos(Pos::new(HPos::Center, VPos::Center)),
                    )))
                    .map_err(err)?;
            }
        }
        // the colour key under the map
        let (swatches, sentence) = self.key();
        let (kx, ky) = (20, 8);
        let mut x = kx;
        for (v, t) in &swatches {
            keyarea
                .draw(&Rectangle::new(
                    [(x, ky), (x + 26, ky + 18)],
                    self.cell_color(*v).filled(),
                ))
                .map_err(err)?;
            keyarea
                .draw(&Text::new(
                    t.clone(),
                    (x + 32, ky + 9),
                    ("sans-serif", 14)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                ))
                .map_err(err)?;
            x += 32 + super::text_size(t, 14).0 + 18;
        }
        let (kw, _) = keyarea.dim_in_pixel();
        keyarea
            .draw(&Text::new(
                fit(&sentence, 14, kw as i32 - x - 20),
                (x + 6, ky + 9),
                ("sans-serif", 14)
                    .into_font()
                    .color(&RGBColor(60, 60, 60))
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(err)?;
        g.legend_notes = swatches.into_iter().map(|s| s.1).chain([sentence]).collect();
        Ok(vec![g])
    }
}

/// Category names beside the plot, a few pixels off its edge, centred on their positions:
/// plotters puts its own labels right on the axis line when tick marks are off. `below`: under
/// the x axis at x positions; else left of the y axis at y positions.
fn category_labels<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    names: &[(f64, String)],
    size: u32,
    below: bool,
) -> Result<(), String> {
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    let (ox, oy) = area.get_base_pixel();
    for (at, name) in names {
        let (pos, anchor) = if below {
            let (px, _) = chart.backend_coord(&(*at, 0.0));
            ((px - ox, yr.end - oy + 7), Pos::new(HPos::Center, VPos::Top))
        } else {
            let (_, py) = chart.backend_coord(&(0.0, *at));
            ((xr.start - ox - 8, py - oy), Pos::new(HPos::Right, VPos::Center))
        };
        area.draw(&Text::new(
            name.clone(),
            pos,
            ("sans-serif", size).into_font().color(&BLACK).pos(anchor),
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// A category chart's axes: the y axis (ticks, light grid, its name) and, unless the caller
/// draws them itself (rotated), the category names under their positions 0, 1, ...
fn category_axes<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    y_label: &str,
    names: Option<&[String]>,
    size: u32,
) -> Result<(), String> {
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_label_formatter(&|v| fmt_tick(*v))
        .y_desc(y_label)
        .label_style(("sans-serif", size))
        .axis_desc_style(("sans-serif", size + 1))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    if let Some(names) = names {
        let at: Vec<(f64, String)> = names.iter().enumerate().map(|(i, n)| (i as f64, n.clone())).collect();
        category_labels(area, chart, &at, size, true)?;
    }
    Ok(())
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
    /// Per category: a colour of its own (one series whose bars are engines), a 95% CI and
    /// whether its run was client-bound. Empty when unused.
    pub cat_colors: Vec<RGBColor>,
    pub cat_ci: Vec<Option<(f64, f64)>>,
    pub cat_flagged: Vec<bool>,
    /// Per category: drawn light with a solid edge (a non-FP16 variant, dashed on line charts).
    pub cat_light: Vec<bool>,
    /// A banner under the title (synthetic data).
    pub mark: Option<String>,
}

impl Bars {
    pub fn new(title: impl Into<String>, subtitle: impl Into<String>, y_label: impl Into<String>) -> Bars {
        Bars {
            title: title.into(),
            subtitle: subtitle.into(),
            y_label: y_label.into(),
            categories: Vec::new(),
            series: Vec::new(),
            cat_colors: Vec::new(),
            cat_ci: Vec::new(),
            cat_flagged: Vec::new(),
            cat_light: Vec::new(),
            mark: None,
        }
    }
}

impl Figure for Bars {
    fn draw<DB: DrawingBackend + 'static>(&self, root: &DrawingArea<DB, Shift>) -> Result<Vec<PlotGeom>, String> {
        let all: Vec<f64> = self.series.iter().flat_map(|s| s.2.iter().flatten().copied()).collect();
        if all.is_empty() {
            return Err(format!("no data: {}", self.title));
        }
        let body = header(root, &self.title, &self.subtitle, self.mark.as_deref())?;
        let top = self
            .cat_ci
            .iter()
            .flatten()
            .map(|c| c.1)
            .chain(all.iter().copied())
            .fold(0.0f64, f64::max);
        let ymax = top * 1.15;
        let nc = self.categories.len();
        let ns = self.series.len().max(1);
        let (bw, _) = body.dim_in_pixel();
        let slot = (bw as i32 - 120) / nc.max(1) as i32 - 8;
        // category names that do not fit their slot are written vertically
        let widest = self
            .categories
            .iter()
            .map(|c| super::text_size(c, 15).0)
            .max()
            .unwrap_or(0);
        let rotate = widest > slot;
        let cats: Vec<String> = if rotate {
            self.categories.iter().map(|c| fit(c, 13, 240)).collect()
        } else {
            self.categories.clone()
        };
        let xarea = if rotate {
            (cats.iter().map(|c| super::text_size(c, 13).0).max().unwrap_or(0) + 16).clamp(48, 256) as u32
        } else {
            48
        };
        let flagged = self.cat_flagged.iter().any(|f| *f);
        let mut entries: Vec<(Glyph, String)> = Vec::new();
        if self.series.len() > 1 || self.cat_colors.is_empty() {
            for (name, color, _) in &self.series {
                entries.push((
                    Glyph::Series(Style {
                        name: name.clone(),
                        color: *color,
                        line: false,
                        dashed: false,
                        marker: None,
                        width: 0,
                    }),
                    name.clone(),
                ));
            }
        }
        if flagged {
            entries.push((
                Glyph::Ring,
                "client-bound: client delivered < 95% of the asked load".into(),
            ));
        }
        let lsize = legend_size(&entries, 15);
        let build = |area: &DrawingArea<DB, Shift>| {
            ChartBuilder::on(area)
                .margin(14)
                .x_label_area_size(xarea)
                .y_label_area_size(80)
                .build_cartesian_2d(-0.5f64..(nc as f64 - 0.5), 0.0..ymax.max(1.0))
                .map_err(err)
        };
        let w = 0.8 / ns as f64;
        let bar = |si: usize, ci: usize| -> (f64, f64) {
            let x0 = ci as f64 - 0.4 + si as f64 * w;
            (x0 + 0.01, x0 + w - 0.01)
        };
        let layout = |c: &ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>| -> PlotGeom {
            let (xr, yr) = c.plotting_area().get_pixel_range();
            let mut g = PlotGeom {
                kind: "bars",
                title: self.title.clone(),
                area: Some(Rect::new(xr.start, yr.start, xr.end, yr.end)),
                ..Default::default()
            };
            for (si, (name, color, vals)) in self.series.iter().enumerate() {
                g.series.push(Style {
                    name: name.clone(),
                    color: *color,
                    line: false,
                    dashed: false,
                    marker: None,
                    width: 0,
                });
                for (ci, v) in vals.iter().enumerate() {
                    if let Some(v) = v {
                        let (a, b) = bar(si, ci);
                        let p = c.backend_coord(&(a, *v));
                        let q = c.backend_coord(&(b, 0.0));
                        // the bar and its value label above it
                        g.boxes.push(Rect::new(p.0, p.1 - 20, q.0, q.1));
                    }
                }
            }
            for (ci, ci_v) in self.cat_ci.iter().enumerate() {
                if let Some((lo, hi)) = ci_v {
                    let x = ci as f64;
                    g.segments
                        .push((c.backend_coord(&(x, *lo)), c.backend_coord(&(x, *hi))));
                }
            }
            g
        };
        let probe = build(&body)?;
        let mut geom = layout(&probe);
        let (xr, yr) = probe.plotting_area().get_pixel_range();
        let plot = Rect::new(xr.start, yr.start, xr.end, yr.end);
        let (chart_area, legend_at, legend_area) = if entries.is_empty() {
            (body.clone(), (0, 0), body.clone())
        } else {
            match free_corner(&geom, plot, lsize) {
                Some(at) => (body.clone(), at, body.clone()),
                None => {
                    let (bw, bh) = body.dim_in_pixel();
                    let (bx, by) = body.get_base_pixel();
                    let (a, l) = body.split_vertically(bh as i32 - lsize.1 - 8);
                    let _ = bw;
                    (a, (bx + 94, by + bh as i32 - lsize.1 - 4), l)
                }
            }
        };
        let mut chart = build(&chart_area)?;
        if chart_area.dim_in_pixel() != body.dim_in_pixel() {
            geom = layout(&chart);
        }
        category_axes(
            &chart_area,
            &mut chart,
            &self.y_label,
            (!rotate).then_some(&cats[..]),
            15,
        )?;
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        let (ox, oy) = chart_area.get_base_pixel();
        if rotate {
            // vertical names, reading downwards from just under each group
            for (ci, c) in cats.iter().enumerate() {
                let (px, _) = chart.backend_coord(&(ci as f64, 0.0));
                chart_area
                    .draw(&Text::new(
                        c.clone(),
                        (px - ox, yr.end - oy + 6),
                        TextStyle::from(("sans-serif", 13).into_font().transform(FontTransform::Rotate90))
                            .color(&BLACK)
                            .pos(Pos::new(HPos::Left, VPos::Center)),
                    ))
                    .map_err(err)?;
            }
        }
        // value labels only where they fit over their bar
        let bar_px = (xr.end - xr.start) as f64 / nc.max(1) as f64 * w;
        let labels_fit = all
            .iter()
            .all(|v| super::text_size(&fmt_tick(*v), 13).0 as f64 <= bar_px + 2.0);
        for (si, (_, color, vals)) in self.series.iter().enumerate() {
            for (ci, v) in vals.iter().enumerate() {
                let Some(v) = v else { continue };
                let c = self.cat_colors.get(ci).copied().unwrap_or(*color);
                let (a, b) = bar(si, ci);
                if self.cat_light.get(ci).copied().unwrap_or(false) {
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(a, 0.0), (b, *v)],
                            c.mix(0.35).filled(),
                        )))
                        .map_err(err)?;
                    chart
                        .draw_series(std::iter::once(Rectangle::new([(a, 0.0), (b, *v)], c.stroke_width(3))))
                        .map_err(err)?;
                } else {
                    chart
                        .draw_series(std::iter::once(Rectangle::new([(a, 0.0), (b, *v)], c.filled())))
                        .map_err(err)?;
                }
                if self.cat_flagged.get(ci).copied().unwrap_or(false) {
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(a, 0.0), (b, *v)],
                            RED.stroke_width(3),
                        )))
                        .map_err(err)?;
                }
                let ci_hi = self.cat_ci.get(ci).copied().flatten();
                if let Some((lo, hi)) = ci_hi {
                    let x = (a + b) / 2.0;
                    let cap = (b - a) * 0.08;
                    for seg in [
                        vec![(x, lo), (x, hi)],
                        vec![(x - cap, lo), (x + cap, lo)],
                        vec![(x - cap, hi), (x + cap, hi)],
                    ] {
                        chart
                            .draw_series(std::iter::once(PathElement::new(seg, BLACK.stroke_width(2))))
                            .map_err(err)?;
                    }
                }
                let label_y = ci_hi.map_or(*v, |c| c.1.max(*v));
                if !labels_fit {
                    continue;
                }
                chart
                    .draw_series(std::iter::once(Text::new(
                        fmt_tick(*v),
                        ((a + b) / 2.0, label_y),
                        ("sans-serif", 13)
                            .into_font()
                            .color(&BLACK)
                            .pos(Pos::new(HPos::Center, VPos::Bottom)),
                    )))
                    .map_err(err)?;
            }
        }
        if !entries.is_empty() {
            let (rect, drawn) = draw_legend(&legend_area, legend_at, &entries, 15)?;
            geom.legend = Some(rect);
            geom.legend_entries = drawn;
        }
        Ok(vec![geom])
    }
}
