//! Charts (plotters), PNG and SVG, readable on a machine without fonts: DejaVu Sans is
//! embedded and registered once.
//!
//! Colours belong to engines (the same engine has the same colour on every chart); markers
//! and line styles belong to quantization variants.

pub mod figures;
pub mod kinds;

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("drawing {path}: {msg}")]
    Draw { path: String, msg: String },
    #[error("{0}")]
    NoData(String),
}

static FONT: Once = Once::new();

/// Register the embedded font under "sans-serif" (once per process).
pub fn init_fonts() {
    FONT.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Fixed colours for known engines; others get a stable colour from their name. A label
/// such as `vllm-fp16` takes its engine's colour when `prefix` is set.
pub fn engine_color(name: &str, prefix: bool) -> RGBColor {
    let n = name.to_ascii_lowercase();
    let known: &[(&str, RGBColor)] = &[
        ("vllm", RGBColor(31, 119, 180)),
        ("sglang", RGBColor(255, 127, 14)),
        ("tgi", RGBColor(44, 160, 44)),
        ("trtllm", RGBColor(214, 39, 40)),
        ("friendli", RGBColor(148, 103, 189)),
        ("llamacpp", RGBColor(140, 86, 75)),
        ("ollama", RGBColor(227, 119, 194)),
        ("mock", RGBColor(96, 96, 96)),
    ];
    for (k, c) in known {
        if n == *k || (prefix && (n.starts_with(&format!("{k}-")) || n.starts_with(&format!("{k}_")))) {
            return *c;
        }
    }
    const PALETTE: &[RGBColor] = &[
        RGBColor(23, 190, 207),
        RGBColor(188, 189, 34),
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
    ];
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    PALETTE[(h % PALETTE.len() as u64) as usize]
}

/// Marker per quantization variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Triangle,
    Square,
    Cross,
}

pub fn quant_marker(q: Option<&str>) -> Marker {
    match q.map(|s| s.to_ascii_lowercase()).as_deref() {
        None | Some("fp16") | Some("bf16") | Some("exact") => Marker::Circle,
        Some("awq") | Some("gptq") | Some("int4") => Marker::Triangle,
        Some("fp8") | Some("int8") => Marker::Square,
        _ => Marker::Cross,
    }
}

/// A point, with an optional vertical interval (confidence interval).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pt {
    pub x: f64,
    pub y: f64,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    /// The point's run was client-bound (drawn with a red ring, and a legend entry).
    pub flagged: bool,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub color: RGBColor,
    pub marker: Marker,
    pub dashed: bool,
    pub points: Vec<Pt>,
}

/// How the x axis is laid out.
#[derive(Debug, Clone, PartialEq)]
pub enum XAxis {
    /// Distinct values equally spaced (a sweep of 1, 10, 50, 100 users), labelled by value.
    Categorical(Vec<f64>),
    Linear,
}

/// A line chart.
#[derive(Debug, Clone)]
pub struct LinePlot {
    pub title: String,
    pub subtitle: String,
    pub x_label: String,
    pub y_label: String,
    pub x_axis: XAxis,
    pub series: Vec<Series>,
    /// Draw point markers (off for dense curves such as CDFs and timelines).
    pub markers: bool,
    /// Fixed y range (else 0 .. max * 1.12).
    pub y_range: Option<(f64, f64)>,
}

impl LinePlot {
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> LinePlot {
        LinePlot {
            title: title.into(),
            subtitle: String::new(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_axis: XAxis::Linear,
            series: Vec::new(),
            markers: true,
            y_range: None,
        }
    }
}

pub const SIZE: (u32, u32) = (1100, 680);

/// Something that can be drawn onto a backend: every chart kind implements it, so the same
/// code writes PNG and SVG.
pub trait Figure {
    fn size(&self) -> (u32, u32) {
        SIZE
    }
    fn draw<DB: DrawingBackend + 'static>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

pub fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if (v - v.round()).abs() < 1e-9 && a < 1e4 {
        return format!("{}", v.round() as i64);
    }
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Render a figure to PNG and SVG at `base` (extension replaced). Returns both paths.
pub fn save<F: Figure>(f: &F, base: &Path) -> Result<Vec<PathBuf>, ChartError> {
    init_fonts();
    // The backends borrow their path for the chart's whole life (legend closures are
    // 'static); a few bytes per chart are leaked on purpose.
    let png: &'static Path = Box::leak(base.with_extension("png").into_boxed_path());
    let svg: &'static Path = Box::leak(base.with_extension("svg").into_boxed_path());
    let de = |p: &Path| {
        let p = p.display().to_string();
        move |msg: String| {
            if msg.starts_with("no data") {
                ChartError::NoData(msg)
            } else {
                ChartError::Draw { path: p.clone(), msg }
            }
        }
    };
    {
        let root = BitMapBackend::new(png, f.size()).into_drawing_area();
        root.fill(&WHITE).map_err(err).map_err(de(png))?;
        f.draw(&root).map_err(de(png))?;
        root.present().map_err(err).map_err(de(png))?;
    }
    {
        let root = SVGBackend::new(svg, f.size()).into_drawing_area();
        root.fill(&WHITE).map_err(err).map_err(de(svg))?;
        f.draw(&root).map_err(de(svg))?;
        root.present().map_err(err).map_err(de(svg))?;
    }
    Ok(vec![png.to_path_buf(), svg.to_path_buf()])
}

/// Render a line plot (kept for callers that only draw lines).
pub fn save_line(p: &LinePlot, base: &Path) -> Result<Vec<PathBuf>, ChartError> {
    save(p, base)
}

/// Title and subtitle at the top; returns the area below.
pub fn header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &str,
) -> Result<DrawingArea<DB, Shift>, String> {
    let (t, body) = root.split_vertically(if subtitle.is_empty() { 48 } else { 68 });
    t.draw(&Text::new(
        title.to_string(),
        (20, 10),
        ("sans-serif", 26).into_font().color(&BLACK),
    ))
    .map_err(err)?;
    if !subtitle.is_empty() {
        t.draw(&Text::new(
            subtitle.to_string(),
            (20, 42),
            ("sans-serif", 16).into_font().color(&RGBColor(90, 90, 90)),
        ))
        .map_err(err)?;
    }
    Ok(body)
}

impl Figure for LinePlot {
    fn draw<DB: DrawingBackend + 'static>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let body = header(root, &self.title, &self.subtitle)?;
        draw_line_in(&body, self, 16)
    }
}

/// Several line plots sharing one title, laid out in a grid.
#[derive(Debug, Clone)]
pub struct Panels {
    pub title: String,
    pub subtitle: String,
    pub plots: Vec<LinePlot>,
    pub cols: usize,
    pub size: (u32, u32),
}

impl Figure for Panels {
    fn size(&self) -> (u32, u32) {
        self.size
    }
    fn draw<DB: DrawingBackend + 'static>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let body = header(root, &self.title, &self.subtitle)?;
        let cols = self.cols.max(1);
        let rows = self.plots.len().div_ceil(cols).max(1);
        let areas = body.split_evenly((rows, cols));
        for (a, p) in areas.iter().zip(&self.plots) {
            let (cap, inner) = a.split_vertically(30);
            cap.draw(&Text::new(
                p.title.clone(),
                (70, 6),
                ("sans-serif", 18).into_font().color(&BLACK),
            ))
            .map_err(err)?;
            draw_line_in(&inner, p, 13)?;
        }
        Ok(())
    }
}

fn draw_line_in<DB: DrawingBackend + 'static>(
    body: &DrawingArea<DB, Shift>,
    p: &LinePlot,
    font: u32,
) -> Result<(), String> {
    let pts: Vec<&Pt> = p.series.iter().flat_map(|s| s.points.iter()).collect();
    if pts.is_empty() {
        return Err(format!("no data: {}", p.title));
    }
    let xpos = |x: f64| -> f64 {
        match &p.x_axis {
            XAxis::Categorical(v) => v.iter().position(|c| (c - x).abs() < 1e-9).unwrap_or(0) as f64,
            XAxis::Linear => x,
        }
    };
    let (xmin, xmax) = match &p.x_axis {
        XAxis::Categorical(v) => (-0.3, (v.len().max(1) - 1) as f64 + 0.3),
        XAxis::Linear => {
            let lo = pts.iter().map(|q| q.x).fold(f64::INFINITY, f64::min);
            let hi = pts.iter().map(|q| q.x).fold(f64::NEG_INFINITY, f64::max);
            let pad = ((hi - lo) * 0.03).max(1e-9);
            (if lo >= 0.0 { (lo - pad).max(0.0) } else { lo - pad }, hi + pad)
        }
    };
    let (ymin, ymax) = match p.y_range {
        Some(r) => r,
        None => {
            let ymax = pts.iter().map(|q| q.hi.unwrap_or(q.y).max(q.y)).fold(0.0f64, f64::max);
            (0.0, if ymax > 0.0 { ymax * 1.12 } else { 1.0 })
        }
    };
    let mut chart = ChartBuilder::on(body)
        .margin(14)
        .x_label_area_size(font * 3)
        .y_label_area_size(font * 5)
        .build_cartesian_2d(xmin..xmax, ymin..ymax)
        .map_err(err)?;
    let cats = match &p.x_axis {
        XAxis::Categorical(v) => v.clone(),
        XAxis::Linear => Vec::new(),
    };
    let xfmt = |v: &f64| -> String {
        if cats.is_empty() {
            fmt_tick(*v)
        } else if (v - v.round()).abs() < 1e-6 && v.round() >= 0.0 && (v.round() as usize) < cats.len() {
            fmt_tick(cats[v.round() as usize])
        } else {
            String::new()
        }
    };
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(p.x_label.as_str())
        .y_desc(p.y_label.as_str())
        .label_style(("sans-serif", font))
        .axis_desc_style(("sans-serif", font + 2))
        .y_label_formatter(&|v| fmt_tick(*v))
        .x_label_formatter(&xfmt)
        .light_line_style(RGBColor(235, 235, 235));
    if !cats.is_empty() {
        mesh.x_labels(cats.len() * 2 + 1);
    }
    mesh.draw().map_err(err)?;
    for s in &p.series {
        let color = s.color;
        let marker = if p.markers { Some(s.marker) } else { None };
        let line: Vec<(f64, f64)> = s.points.iter().map(|q| (xpos(q.x), q.y)).collect();
        let style = ShapeStyle {
            color: color.to_rgba(),
            filled: false,
            stroke_width: if p.markers { 3 } else { 2 },
        };
        let anno = if s.dashed {
            chart
                .draw_series(DashedLineSeries::new(line.clone(), 10, 6, style))
                .map_err(err)?
        } else {
            chart.draw_series(LineSeries::new(line.clone(), style)).map_err(err)?
        };
        anno.label(s.name.clone())
            .legend(move |(x, y)| legend_glyph(x, y, style, marker, color));
        for q in &s.points {
            if let (Some(lo), Some(hi)) = (q.lo, q.hi) {
                chart
                    .draw_series(std::iter::once(ErrorBar::new_vertical(
                        xpos(q.x),
                        lo,
                        q.y,
                        hi,
                        color.stroke_width(2),
                        10,
                    )))
                    .map_err(err)?;
            }
        }
        if let Some(m) = marker {
            draw_markers(&mut chart, &line, m, color).map_err(err)?;
        }
    }
    let flagged: Vec<(f64, f64)> = p
        .series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|q| q.flagged)
        .map(|q| (xpos(q.x), q.y))
        .collect();
    if !flagged.is_empty() {
        let ring = RED.stroke_width(3);
        chart
            .draw_series(flagged.iter().map(|q| Circle::new(*q, 12, ring)))
            .map_err(err)?
            .label("client-bound: client delivered < 95% of the asked load")
            .legend(move |(x, y)| Circle::new((x + 14, y), 8, ring));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", font))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// A legend entry: a short line with the series' marker in its middle.
fn legend_glyph<DB: DrawingBackend + 'static>(
    x: i32,
    y: i32,
    style: ShapeStyle,
    m: Option<Marker>,
    color: RGBColor,
) -> DynElement<'static, DB, (i32, i32)> {
    let line = PathElement::new(vec![(x, y), (x + 28, y)], style);
    let st = color.filled();
    let mark: DynElement<'static, DB, (i32, i32)> = match m {
        Some(Marker::Circle) => Circle::new((x + 14, y), 5, st).into_dyn(),
        Some(Marker::Triangle) => TriangleMarker::new((x + 14, y), 7, st).into_dyn(),
        Some(Marker::Square) => plotters::element::Rectangle::new([(x + 9, y - 5), (x + 19, y + 5)], st).into_dyn(),
        Some(Marker::Cross) => Cross::new((x + 14, y), 6, color.stroke_width(3)).into_dyn(),
        None => EmptyElement::at((x, y)).into_dyn(),
    };
    (EmptyElement::<(i32, i32), DB>::at((0, 0)) + line + mark).into_dyn()
}

/// Draw markers at points.
pub fn draw_markers<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    pts: &[(f64, f64)],
    m: Marker,
    color: RGBColor,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let st = color.filled();
    match m {
        Marker::Circle => {
            chart.draw_series(pts.iter().map(|p| Circle::new(*p, 6, st)))?;
        }
        Marker::Triangle => {
            chart.draw_series(pts.iter().map(|p| TriangleMarker::new(*p, 8, st)))?;
        }
        Marker::Square => {
            chart.draw_series(
                pts.iter()
                    .map(|p| EmptyElement::at(*p) + plotters::element::Rectangle::new([(-6, -6), (6, 6)], st)),
            )?;
        }
        Marker::Cross => {
            chart.draw_series(pts.iter().map(|p| Cross::new(*p, 7, color.stroke_width(3))))?;
        }
    }
    Ok(())
}
