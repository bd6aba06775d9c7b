//! Charts (plotters), PNG and SVG, readable on a machine without fonts: DejaVu Sans is
//! embedded and registered once.
//!
//! Colours belong to engines (the same engine has the same colour on every chart); markers
//! and line styles belong to quantization variants. Every figure reports what it drew
//! ([`Geometry`]: plot areas, legend boxes and entries, plotted points, every text's box
//! measured with the embedded font), so tests check what a reader sees: legends drawn as their
//! series are, legends clear of data, no text past the canvas.

pub mod capacity;
pub mod figures;
pub mod kinds;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters_backend::{
    BackendColor, BackendCoord, BackendTextStyle, DrawingErrorKind, FontTransform,
    text_anchor::{HPos, VPos},
};

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

/// Width and height in pixels of `text` in the embedded font at `size` (what plotters draws).
pub fn text_size(text: &str, size: u32) -> (i32, i32) {
    init_fonts();
    match ("sans-serif", size).into_font().box_size(text) {
        Ok((w, h)) => (w as i32, h as i32),
        // no glyph metrics: a generous estimate
        Err(_) => ((text.chars().count() as u32 * size * 7 / 10) as i32, size as i32),
    }
}

/// `text` broken at spaces into lines no wider than `width` pixels at `size`.
pub fn wrap(text: &str, size: u32, width: i32) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for w in text.split(' ').filter(|w| !w.is_empty()) {
        let cand = if cur.is_empty() {
            w.to_string()
        } else {
            format!("{cur} {w}")
        };
        if !cur.is_empty() && text_size(&cand, size).0 > width {
            lines.push(std::mem::replace(&mut cur, w.to_string()));
        } else {
            cur = cand;
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// `text` shortened with an ellipsis to fit `width` pixels at `size` (empty when nothing fits).
pub fn fit(text: &str, size: u32, width: i32) -> String {
    if text_size(text, size).0 <= width {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    for n in (1..chars.len()).rev() {
        let s: String = chars[..n].iter().collect::<String>() + "…";
        if text_size(&s, size).0 <= width {
            return s;
        }
    }
    String::new()
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

/// By the variant's bit width, so GGUF names read like the others: 16 or 32 bits (and none
/// given) a circle; 8 bits (fp8, int8, q8_0, w8a8) a square; 4 bits (awq, gptq, int4, q4_k_m,
/// w4a16) a triangle; anything else a cross.
pub fn quant_marker(q: Option<&str>) -> Marker {
    let Some(q) = q.map(|s| s.to_ascii_lowercase()) else {
        return Marker::Circle;
    };
    let bits = |b: &str| q.contains(b);
    if matches!(q.as_str(), "fp16" | "bf16" | "f16" | "fp32" | "f32" | "exact") {
        Marker::Circle
    } else if bits("awq") || bits("gptq") || bits("4") {
        Marker::Triangle
    } else if bits("8") {
        Marker::Square
    } else {
        Marker::Cross
    }
}

/// A point, with an optional vertical interval (confidence interval). A point whose `y` is
/// NaN breaks its series' line there (a timeline between two runs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pt {
    pub x: f64,
    pub y: f64,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    /// The point's run was client-bound (drawn with a red ring, and a legend entry).
    pub flagged: bool,
}

impl Pt {
    pub fn at(x: f64, y: f64) -> Pt {
        Pt {
            x,
            y,
            lo: None,
            hi: None,
            flagged: false,
        }
    }
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
    /// Load levels (a sweep of 1, 10, 50, 100 users): placed on a log scale when they span
    /// a factor of 4 or more (else linearly), with ticks and labels only at these values.
    Measured(Vec<f64>),
    Linear,
}

/// Dash pattern of dashed series (and of their legend entries): dash, gap in pixels.
pub const DASH: (u32, u32) = (10, 6);

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
    /// Shaded x ranges, each labelled above the plot (the runs of a timeline).
    pub bands: Vec<(f64, f64, String)>,
    /// A banner under the title (synthetic data).
    pub mark: Option<String>,
    /// The legend always right of the plot (stacked timelines keep their time axes aligned).
    pub legend_outside: bool,
    /// Reference lines across the plot (an SLO's limit, a capacity), each labelled.
    pub refs: Vec<RefLine>,
    /// The legend text of the red ring around flagged points (default: client-bound).
    pub ring_label: Option<String>,
}

/// A labelled reference line across a line plot: horizontal at a y value (a limit such as
/// an SLO, labelled inside the plot at an end clear of data) or vertical at an x value (a
/// capacity, labelled above the plot). Drawn dashed, under the data.
#[derive(Debug, Clone, PartialEq)]
pub struct RefLine {
    pub at: f64,
    pub vertical: bool,
    pub color: RGBColor,
    pub label: String,
}

/// The ring's legend text by default.
pub const CLIENT_BOUND_RING: &str = "client-bound: client delivered < 95% of the asked load";

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
            bands: Vec::new(),
            mark: None,
            legend_outside: false,
            refs: Vec::new(),
            ring_label: None,
        }
    }
}

pub const SIZE: (u32, u32) = (1100, 680);

/// A rectangle in canvas pixels: x0, y0, x1, y1 (x1, y1 exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
}

impl Rect {
    pub fn new(x0: i32, y0: i32, x1: i32, y1: i32) -> Rect {
        Rect { x0, y0, x1, y1 }
    }
    pub fn grow(&self, d: i32) -> Rect {
        Rect::new(self.x0 - d, self.y0 - d, self.x1 + d, self.y1 + d)
    }
    pub fn contains(&self, (x, y): (i32, i32)) -> bool {
        x >= self.x0 && x < self.x1 && y >= self.y0 && y < self.y1
    }
    pub fn overlaps(&self, o: &Rect) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }
    /// Whether the segment a-b passes through the rectangle (sampled every 2 pixels).
    pub fn crosses(&self, a: (i32, i32), b: (i32, i32)) -> bool {
        let (dx, dy) = ((b.0 - a.0) as f64, (b.1 - a.1) as f64);
        let n = (dx.abs().max(dy.abs()) / 2.0).ceil().max(1.0) as i32;
        (0..=n).any(|i| {
            let t = i as f64 / n as f64;
            self.contains((
                (a.0 as f64 + t * dx).round() as i32,
                (a.1 as f64 + t * dy).round() as i32,
            ))
        })
    }
}

/// How a series (or its legend entry) is drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Style {
    pub name: String,
    pub color: RGBColor,
    /// Drawn as a line (else as a filled box: bars).
    pub line: bool,
    pub dashed: bool,
    pub marker: Option<Marker>,
    pub width: u32,
}

/// What one plot of a figure drew, in canvas pixels.
#[derive(Debug, Clone, Default)]
pub struct PlotGeom {
    /// "line", "bars", "box" or "heatmap".
    pub kind: &'static str,
    pub title: String,
    /// The plotting area (inside the axes).
    pub area: Option<Rect>,
    pub legend: Option<Rect>,
    /// What each legend glyph drew (line pieces: dashed when more than one; width; marker).
    pub legend_entries: Vec<Style>,
    /// Legend lines that are not series (the heat map's colour scale).
    pub legend_notes: Vec<String>,
    pub series: Vec<Style>,
    /// Markers and line vertices.
    pub points: Vec<(i32, i32)>,
    /// Lines (and error bars) drawn.
    pub segments: Vec<((i32, i32), (i32, i32))>,
    /// Bars and value labels.
    pub boxes: Vec<Rect>,
    /// Distinct x values plotted, and whether the x axis is logarithmic.
    pub x_values: Vec<f64>,
    pub log_x: bool,
    /// Labelled x ticks: data value and pixel x.
    pub x_ticks: Vec<(f64, i32)>,
    /// Heat-map cells: value and colour.
    pub cells: Vec<(f64, RGBColor)>,
    /// Labels of shaded bands (runs of a timeline), with their pixel x range.
    pub bands: Vec<(String, i32, i32)>,
    /// Reference lines drawn (SLO limits, capacities).
    pub refs: Vec<DrawnRef>,
}

impl PlotGeom {
    /// Whether a rectangle touches any plotted point, line or bar (with `pad` pixels around).
    pub fn hits(&self, r: &Rect, pad: i32) -> bool {
        let g = r.grow(pad);
        self.points.iter().any(|p| g.contains(*p))
            || self.segments.iter().any(|(a, b)| g.crosses(*a, *b))
            || self.boxes.iter().any(|b| g.overlaps(b))
    }
}

/// A reference line drawn: its label, the line's two ends, and the label's box (None when it
/// did not fit).
pub type DrawnRef = (String, (i32, i32), (i32, i32), Option<Rect>);

/// A text drawn: its string and box on the canvas (measured with the embedded font).
#[derive(Debug, Clone, PartialEq)]
pub struct DrawnText {
    pub text: String,
    pub rect: Rect,
}

/// Everything a figure drew.
#[derive(Debug, Clone, Default)]
pub struct Geometry {
    pub size: (u32, u32),
    pub plots: Vec<PlotGeom>,
    pub texts: Vec<DrawnText>,
}

/// Something that can be drawn onto a backend: every chart kind implements it, so the same
/// code writes PNG and SVG (and the geometry tests read).
pub trait Figure {
    fn size(&self) -> (u32, u32) {
        SIZE
    }
    fn draw<DB: DrawingBackend + 'static>(&self, root: &DrawingArea<DB, Shift>) -> Result<Vec<PlotGeom>, String>;
}

pub(crate) fn err<E: std::fmt::Debug>(e: E) -> String {
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

/// A backend that draws nothing and records every text with its box, as the bitmap backend
/// would place it (same font, anchor and rotation).
struct Probe {
    size: (u32, u32),
    texts: Rc<RefCell<Vec<DrawnText>>>,
}

impl DrawingBackend for Probe {
    type ErrorType = std::io::Error;
    fn get_size(&self) -> (u32, u32) {
        self.size
    }
    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        Ok(())
    }
    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        Ok(())
    }
    fn draw_pixel(&mut self, _: BackendCoord, _: BackendColor) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        Ok(())
    }
    fn draw_line<S: plotters_backend::BackendStyle>(
        &mut self,
        _: BackendCoord,
        _: BackendCoord,
        _: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        Ok(())
    }
    fn draw_rect<S: plotters_backend::BackendStyle>(
        &mut self,
        _: BackendCoord,
        _: BackendCoord,
        _: &S,
        _: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        Ok(())
    }
    fn draw_circle<S: plotters_backend::BackendStyle>(
        &mut self,
        _: BackendCoord,
        _: u32,
        _: &S,
        _: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        Ok(())
    }
    fn fill_polygon<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        _: I,
        _: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        Ok(())
    }
    fn draw_path<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        _: I,
        _: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        Ok(())
    }
    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        if text.is_empty() || style.color().alpha == 0.0 {
            return Ok(());
        }
        let ((x0, y0), (x1, y1)) = style
            .layout_box(text)
            .map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
        let (w, h) = (x1 - x0, y1 - y0);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -w,
            HPos::Center => -w / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -h / 2,
            VPos::Bottom => -h,
        };
        let t: FontTransform = style.transform();
        let corners = [(dx, dy), (dx + w, dy), (dx, dy + h), (dx + w, dy + h)].map(|(x, y)| {
            let (x, y) = t.transform(x, y);
            (pos.0 + x, pos.1 + y)
        });
        let r = Rect::new(
            corners.iter().map(|c| c.0).min().unwrap_or(0),
            corners.iter().map(|c| c.1).min().unwrap_or(0),
            corners.iter().map(|c| c.0).max().unwrap_or(0),
            corners.iter().map(|c| c.1).max().unwrap_or(0),
        );
        self.texts.borrow_mut().push(DrawnText {
            text: text.to_string(),
            rect: r,
        });
        Ok(())
    }
}

/// Draw a figure without writing a file and return what it drew.
pub fn inspect<F: Figure>(f: &F) -> Result<Geometry, ChartError> {
    init_fonts();
    let texts = Rc::new(RefCell::new(Vec::new()));
    let size = f.size();
    let plots = {
        let root = Probe {
            size,
            texts: texts.clone(),
        }
        .into_drawing_area();
        f.draw(&root).map_err(|msg| {
            if msg.starts_with("no data") {
                ChartError::NoData(msg)
            } else {
                ChartError::Draw {
                    path: "(inspect)".into(),
                    msg,
                }
            }
        })?
    };
    let texts = texts.borrow().clone();
    Ok(Geometry { size, plots, texts })
}

thread_local! {
    static RECORDED: RefCell<Option<Vec<(PathBuf, Geometry)>>> = const { RefCell::new(None) };
}

/// Run `f`, and return beside its result the geometry of every figure [`save`] wrote meanwhile
/// on this thread (with the base path each was written to): how tests check every chart a
/// command draws.
pub fn recording<T>(f: impl FnOnce() -> T) -> (T, Vec<(PathBuf, Geometry)>) {
    RECORDED.with(|r| *r.borrow_mut() = Some(Vec::new()));
    let out = f();
    let got = RECORDED.with(|r| r.borrow_mut().take()).unwrap_or_default();
    (out, got)
}

/// Render a figure to PNG and SVG at `base` (extension replaced). Returns both paths.
pub fn save<F: Figure>(f: &F, base: &Path) -> Result<Vec<PathBuf>, ChartError> {
    init_fonts();
    if RECORDED.with(|r| r.borrow().is_some()) {
        let g = inspect(f)?;
        RECORDED.with(|r| {
            if let Some(v) = r.borrow_mut().as_mut() {
                v.push((base.to_path_buf(), g));
            }
        });
    }
    // The backends borrow their path for the chart's whole life (figures draw on 'static
    // backends); a few bytes per chart are leaked on purpose.
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

/// Orange of the synthetic-data banner.
pub const SYNTHETIC: RGBColor = RGBColor(190, 75, 0);

/// Title, subtitle (wrapped to the canvas) and, for synthetic data, a banner; returns the
/// area below.
pub fn header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &str,
    mark: Option<&str>,
) -> Result<DrawingArea<DB, Shift>, String> {
    let (w, _) = root.dim_in_pixel();
    let width = w as i32 - 40;
    let title_lines = wrap(title, 26, width);
    let sub_lines = wrap(subtitle, 16, width);
    let mark_lines = mark.map(|m| wrap(m, 16, width - 16)).unwrap_or_default();
    let h = 14
        + 32 * title_lines.len() as i32
        + 21 * sub_lines.len() as i32
        + if mark_lines.is_empty() {
            0
        } else {
            8 + 21 * mark_lines.len() as i32 + 8
        }
        + 6;
    let (t, body) = root.split_vertically(h.max(48));
    let mut y = 10;
    for l in &title_lines {
        t.draw(&Text::new(
            l.clone(),
            (20, y),
            ("sans-serif", 26).into_font().color(&BLACK),
        ))
        .map_err(err)?;
        y += 32;
    }
    for l in &sub_lines {
        t.draw(&Text::new(
            l.clone(),
            (20, y),
            ("sans-serif", 16).into_font().color(&RGBColor(90, 90, 90)),
        ))
        .map_err(err)?;
        y += 21;
    }
    if !mark_lines.is_empty() {
        y += 4;
        let bh = 21 * mark_lines.len() as i32 + 8;
        t.draw(&Rectangle::new(
            [(14, y), (w as i32 - 14, y + bh)],
            RGBColor(255, 232, 204).filled(),
        ))
        .map_err(err)?;
        t.draw(&Rectangle::new(
            [(14, y), (w as i32 - 14, y + bh)],
            SYNTHETIC.stroke_width(2),
        ))
        .map_err(err)?;
        let mut ly = y + 5;
        for l in &mark_lines {
            t.draw(&Text::new(
                l.clone(),
                (22, ly),
                ("sans-serif", 16).into_font().style(FontStyle::Bold).color(&SYNTHETIC),
            ))
            .map_err(err)?;
            ly += 21;
        }
    }
    Ok(body)
}

/// The banner text of a chart drawn from synthetic data.
pub fn synthetic_banner(what: &str) -> String {
    format!("SYNTHETIC DATA: {what}. Not a measurement; decides nothing.")
}

/// Whether any gpumon file among `paths` (files, directories, globs) holds synthetic data.
pub fn gpu_files_synthetic(paths: &[String]) -> bool {
    let Ok(files) = crate::io::expand_inputs_of(paths, Some(crate::schema::GPU.name)) else {
        return false;
    };
    files
        .iter()
        .any(|p| crate::io::open(p).is_ok_and(|i| i.meta.is_synthetic()))
}

impl Figure for LinePlot {
    fn draw<DB: DrawingBackend + 'static>(&self, root: &DrawingArea<DB, Shift>) -> Result<Vec<PlotGeom>, String> {
        let body = header(root, &self.title, &self.subtitle, self.mark.as_deref())?;
        Ok(vec![draw_line_in(&body, self, 16)?])
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
    /// A banner under the title (synthetic data).
    pub mark: Option<String>,
}

impl Figure for Panels {
    fn size(&self) -> (u32, u32) {
        self.size
    }
    fn draw<DB: DrawingBackend + 'static>(&self, root: &DrawingArea<DB, Shift>) -> Result<Vec<PlotGeom>, String> {
        let body = header(root, &self.title, &self.subtitle, self.mark.as_deref())?;
        let cols = self.cols.max(1);
        let rows = self.plots.len().div_ceil(cols).max(1);
        let areas = body.split_evenly((rows, cols));
        let mut out = Vec::new();
        for (a, p) in areas.iter().zip(&self.plots) {
            let (cap, inner) = a.split_vertically(30);
            let (cw, _) = cap.dim_in_pixel();
            cap.draw(&Text::new(
                fit(&p.title, 18, cw as i32 - 80),
                (70, 6),
                ("sans-serif", 18).into_font().color(&BLACK),
            ))
            .map_err(err)?;
            out.push(draw_line_in(&inner, p, 13)?);
        }
        Ok(out)
    }
}

/// A legend entry's glyph: a box (bars), a ring (client-bound points) or a line.
#[derive(Debug, Clone, PartialEq)]
pub enum Glyph {
    Series(Style),
    Ring,
}

/// Width of a legend glyph.
const GLYPH_W: i32 = 44;

/// Size of a legend box with these entries.
pub fn legend_size(entries: &[(Glyph, String)], font: u32) -> (i32, i32) {
    let tw = entries.iter().map(|(_, t)| text_size(t, font).0).max().unwrap_or(0);
    let row = font as i32 + 9;
    (10 + GLYPH_W + 8 + tw + 12, 8 + row * entries.len() as i32 + 4)
}

/// Draw a legend box with its top-left corner at `at` (canvas pixels) on `area` (any area of
/// the canvas). Each glyph draws exactly its series' style: line width, dashes and marker.
pub fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    entries: &[(Glyph, String)],
    font: u32,
) -> Result<(Rect, Vec<Style>), String> {
    let (bw, bh) = legend_size(entries, font);
    // what each series glyph really drew: pieces of line, their width, the marker
    let mut drawn = Vec::new();
    let (ox, oy) = area.get_base_pixel();
    let (x0, y0) = (at.0 - ox, at.1 - oy);
    area.draw(&Rectangle::new([(x0, y0), (x0 + bw, y0 + bh)], WHITE.filled()))
        .map_err(err)?;
    area.draw(&Rectangle::new(
        [(x0, y0), (x0 + bw, y0 + bh)],
        RGBColor(180, 180, 180).stroke_width(1),
    ))
    .map_err(err)?;
    let row = font as i32 + 9;
    for (i, (g, t)) in entries.iter().enumerate() {
        let cy = y0 + 8 + row * i as i32 + row / 2 - 2;
        let gx = x0 + 10;
        match g {
            Glyph::Ring => {
                area.draw(&Circle::new((gx + GLYPH_W / 2, cy), 8, RED.stroke_width(3)))
                    .map_err(err)?;
            }
            Glyph::Series(s) if !s.line => {
                area.draw(&Rectangle::new(
                    [(gx + 8, cy - 7), (gx + GLYPH_W - 8, cy + 7)],
                    s.color.filled(),
                ))
                .map_err(err)?;
                drawn.push(Style {
                    name: t.clone(),
                    color: s.color,
                    line: false,
                    dashed: false,
                    marker: None,
                    width: 0,
                });
            }
            Glyph::Series(s) => {
                let st = s.color.stroke_width(s.width);
                let mut pieces = 0;
                if s.dashed {
                    let mut x = gx;
                    while x < gx + GLYPH_W {
                        let e = (x + DASH.0 as i32).min(gx + GLYPH_W);
                        area.draw(&PathElement::new(vec![(x, cy), (e, cy)], st)).map_err(err)?;
                        pieces += 1;
                        x += (DASH.0 + DASH.1) as i32;
                    }
                } else {
                    area.draw(&PathElement::new(vec![(gx, cy), (gx + GLYPH_W, cy)], st))
                        .map_err(err)?;
                    pieces += 1;
                }
                if let Some(m) = s.marker {
                    draw_marker(area, (gx + GLYPH_W / 2, cy), m, s.color)?;
                }
                drawn.push(Style {
                    name: t.clone(),
                    color: s.color,
                    line: true,
                    dashed: pieces > 1,
                    marker: s.marker,
                    width: st.stroke_width,
                });
            }
        }
        area.draw(&Text::new(
            t.clone(),
            (gx + GLYPH_W + 8, cy),
            ("sans-serif", font)
                .into_font()
                .color(&BLACK)
                .pos(plotters::style::text_anchor::Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(err)?;
    }
    Ok((Rect::new(at.0, at.1, at.0 + bw, at.1 + bh), drawn))
}

/// A marker at a pixel position of `area`'s parent canvas-relative coordinates.
fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: (i32, i32),
    m: Marker,
    color: RGBColor,
) -> Result<(), String> {
    let st = color.filled();
    match m {
        Marker::Circle => area.draw(&Circle::new(p, 6, st)),
        Marker::Triangle => area.draw(&TriangleMarker::new(p, 8, st)),
        Marker::Square => area.draw(&Rectangle::new([(p.0 - 6, p.1 - 6), (p.0 + 6, p.1 + 6)], st)),
        Marker::Cross => area.draw(&Cross::new(p, 7, color.stroke_width(3))),
    }
    .map_err(err)
}

/// Where a legend goes: the plot corner farthest from every plotted point and line, when one
/// is clear of them; None when no corner is.
pub fn free_corner(g: &PlotGeom, plot: Rect, size: (i32, i32)) -> Option<(i32, i32)> {
    let inset = 8;
    let (w, h) = size;
    if w + 2 * inset > plot.x1 - plot.x0 || h + 2 * inset > plot.y1 - plot.y0 {
        return None;
    }
    let corners = [
        (plot.x0 + inset, plot.y0 + inset),
        (plot.x1 - inset - w, plot.y0 + inset),
        (plot.x1 - inset - w, plot.y1 - inset - h),
        (plot.x0 + inset, plot.y1 - inset - h),
    ];
    corners
        .into_iter()
        // 12 pixels: a marker's radius (6, client-bound rings 12) and a little air
        .filter(|(x, y)| !g.hits(&Rect::new(*x, *y, x + w, y + h), 12))
        .max_by_key(|(x, y)| {
            // clearance: distance from the box to the nearest point
            let r = Rect::new(*x, *y, x + w, y + h);
            g.points
                .iter()
                .map(|p| {
                    let dx = (r.x0 - p.0).max(p.0 - r.x1).max(0);
                    let dy = (r.y0 - p.1).max(p.1 - r.y1).max(0);
                    dx.max(dy)
                })
                .min()
                .unwrap_or(i32::MAX)
        })
}

/// Pixel rect of a chart's plotting area.
fn plot_rect<DB: DrawingBackend, X: Ranged, Y: Ranged>(c: &ChartContext<'_, DB, Cartesian2d<X, Y>>) -> Rect {
    let (xr, yr) = c.plotting_area().get_pixel_range();
    Rect::new(xr.start, yr.start, xr.end, yr.end)
}

fn draw_line_in<DB: DrawingBackend + 'static>(
    body: &DrawingArea<DB, Shift>,
    p: &LinePlot,
    font: u32,
) -> Result<PlotGeom, String> {
    let pts: Vec<&Pt> = p
        .series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|q| q.y.is_finite())
        .collect();
    if pts.is_empty() {
        return Err(format!("no data: {}", p.title));
    }
    // x placement: measured load levels on a log scale when they span a factor of 4
    let (log_x, measured) = match &p.x_axis {
        XAxis::Measured(v) => {
            let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            (lo > 0.0 && hi / lo >= 4.0, v.clone())
        }
        XAxis::Linear => (false, Vec::new()),
    };
    let xpos = move |x: f64| -> f64 { if log_x { x.log10() } else { x } };
    // reference lines that can be drawn on these axes
    let ref_ok = |r: &RefLine| r.at.is_finite() && !(r.vertical && log_x && r.at <= 0.0);
    let xs_drawn: Vec<f64> = pts
        .iter()
        .map(|q| xpos(q.x))
        .chain(p.refs.iter().filter(|r| r.vertical && ref_ok(r)).map(|r| xpos(r.at)))
        .collect();
    let (xmin, xmax) = {
        let lo = xs_drawn.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = xs_drawn.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let frac = if measured.is_empty() { 0.03 } else { 0.07 };
        // a single x (one scrape, one level) gets a visible width: plotters cannot place its
        // key points on a range of nanoseconds
        let pad = ((hi - lo) * frac).max(if measured.is_empty() {
            (hi.abs() * 0.05).max(0.5)
        } else {
            0.2
        });
        if !measured.is_empty() || lo < 0.0 {
            (lo - pad, hi + pad)
        } else {
            ((lo - pad).max(0.0), hi + pad)
        }
    };
    let (ymin, ymax) = match p.y_range {
        Some((a, b)) if b > a => (a, b),
        Some((a, _)) => (a, a + 1.0),
        None => {
            let ymax = pts
                .iter()
                .map(|q| q.hi.unwrap_or(q.y).max(q.y))
                .chain(p.refs.iter().filter(|r| !r.vertical && ref_ok(r)).map(|r| r.at))
                .fold(0.0f64, f64::max);
            (0.0, if ymax > 0.0 { ymax * 1.12 } else { 1.0 })
        }
    };
    let flagged: Vec<&Pt> = pts.iter().copied().filter(|q| q.flagged).collect();
    let styles: Vec<Style> = p
        .series
        .iter()
        .map(|s| Style {
            name: s.name.clone(),
            color: s.color,
            line: true,
            dashed: s.dashed,
            marker: p.markers.then_some(s.marker),
            width: if p.markers { 3 } else { 2 },
        })
        .collect();
    let mut entries: Vec<(Glyph, String)> = styles
        .iter()
        .map(|s| (Glyph::Series(s.clone()), s.name.clone()))
        .collect();
    if !flagged.is_empty() {
        entries.push((
            Glyph::Ring,
            p.ring_label.clone().unwrap_or_else(|| CLIENT_BOUND_RING.into()),
        ));
    }
    let lsize = legend_size(&entries, font);
    // above the plot: a row for band labels, two for the labels of vertical reference lines
    let band_row = if p.bands.is_empty() { 0 } else { font as i32 + 8 };
    let ref_row = font as i32 + 6;
    let top = 14
        + band_row
        + if p.refs.iter().any(|r| r.vertical) {
            2 * ref_row
        } else {
            0
        };
    let build = |area: &DrawingArea<DB, Shift>| {
        ChartBuilder::on(area)
            .margin(14)
            .margin_top(top)
            .x_label_area_size(font * 3)
            .y_label_area_size(font * 5)
            .build_cartesian_2d(xmin..xmax, ymin..ymax)
            .map_err(err)
    };
    // where everything lands, to place the legend clear of it
    let layout = |c: &ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>| -> PlotGeom {
        let mut g = PlotGeom {
            kind: "line",
            title: p.title.clone(),
            area: Some(plot_rect(c)),
            series: styles.clone(),
            log_x,
            ..Default::default()
        };
        for s in &p.series {
            let mut prev: Option<(i32, i32)> = None;
            for q in &s.points {
                if !q.y.is_finite() {
                    prev = None;
                    continue;
                }
                let px = c.backend_coord(&(xpos(q.x), q.y));
                g.points.push(px);
                if let Some(a) = prev {
                    g.segments.push((a, px));
                }
                prev = Some(px);
                if let (Some(lo), Some(hi)) = (q.lo, q.hi) {
                    g.segments
                        .push((c.backend_coord(&(xpos(q.x), lo)), c.backend_coord(&(xpos(q.x), hi))));
                }
            }
        }
        let mut xv: Vec<f64> = pts.iter().map(|q| q.x).collect();
        xv.sort_by(|a, b| a.total_cmp(b));
        xv.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
        g.x_values = xv;
        // reference lines, and where their labels go: a horizontal line's inside the plot at
        // the first end clear of data; a vertical line's above the plot, in the first of two
        // rows where it overlaps no other label (else it is left out)
        let plot = plot_rect(c);
        let data = g.clone();
        let mut above: Vec<Rect> = Vec::new();
        for r in p.refs.iter().filter(|r| ref_ok(r)) {
            let (w, h) = text_size(&r.label, font);
            if r.vertical {
                let px = c.backend_coord(&(xpos(r.at), ymin)).0;
                // centred on the line, else just right or left of it; in the first row free
                let label = (0..2)
                    .flat_map(|row| {
                        let y1 = plot.y0 - band_row - 3 - row * ref_row;
                        [px - w / 2, px + 3, px - 3 - w].map(|x0| {
                            let x0 = x0.clamp(plot.x0, (plot.x1 - w).max(plot.x0));
                            Rect::new(x0, y1 - h, x0 + w, y1)
                        })
                    })
                    .find(|b| !above.iter().any(|o| o.grow(3).overlaps(b)));
                if let Some(b) = label {
                    above.push(b);
                }
                g.refs.push((r.label.clone(), (px, plot.y0), (px, plot.y1), label));
                g.segments.push(((px, plot.y0), (px, plot.y1)));
            } else {
                let py = c.backend_coord(&(xmin, r.at)).1;
                let (l, rt) = (plot.x0 + 6, plot.x1 - 6 - w);
                let spots = [
                    Rect::new(rt, py - 3 - h, rt + w, py - 3),
                    Rect::new(rt, py + 3, rt + w, py + 3 + h),
                    Rect::new(l, py - 3 - h, l + w, py - 3),
                    Rect::new(l, py + 3, l + w, py + 3 + h),
                ];
                let inside = |b: &Rect| b.y0 >= plot.y0 && b.y1 <= plot.y1 && b.x0 >= plot.x0;
                let label = spots
                    .iter()
                    .copied()
                    .find(|b| inside(b) && !data.hits(b, 4))
                    .or_else(|| spots.iter().copied().find(inside));
                if let Some(b) = label {
                    g.boxes.push(b);
                }
                g.refs.push((r.label.clone(), (plot.x0, py), (plot.x1 - 1, py), label));
                g.segments.push(((plot.x0, py), (plot.x1 - 1, py)));
            }
        }
        g
    };
    let probe = build(body)?;
    let mut geom = layout(&probe);
    let plot = plot_rect(&probe);
    let corner = if p.legend_outside {
        None
    } else {
        free_corner(&geom, plot, lsize)
    };
    let (chart_area, legend_at, legend_area) = match corner {
        Some(at) => (body.clone(), at, body.clone()),
        None => {
            let (bw, bh) = body.dim_in_pixel();
            let (bx, by) = body.get_base_pixel();
            // stacked timelines: one strip width for every panel, so their axes align
            let strip = if p.legend_outside {
                (lsize.0 + 20).max(200)
            } else {
                lsize.0 + 20
            };
            if strip + 4 <= bw as i32 * 2 / 5 {
                let (a, l) = body.split_horizontally(bw as i32 - strip);
                let ly = by + top + ((bh as i32 - top - lsize.1) / 4).max(0);
                (a, (bx + bw as i32 - strip + 10, ly), l)
            } else {
                let (a, l) = body.split_vertically(bh as i32 - lsize.1 - 8);
                (a, (bx + 14 + (font * 5) as i32, by + bh as i32 - lsize.1 - 4), l)
            }
        }
    };
    let mut chart = build(&chart_area)?;
    if chart_area.get_base_pixel() != body.get_base_pixel() || chart_area.dim_in_pixel() != body.dim_in_pixel() {
        geom = layout(&chart);
    }
    let plot = plot_rect(&chart);
    {
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(p.x_label.as_str())
            .y_desc(p.y_label.as_str())
            .label_style(("sans-serif", font))
            .axis_desc_style(("sans-serif", font + 2))
            .y_label_formatter(&|v| fmt_tick(*v))
            .x_label_formatter(&|v| fmt_tick(*v))
            .light_line_style(RGBColor(235, 235, 235));
        if !measured.is_empty() {
            // ticks and grid lines only at the measured values (drawn below)
            mesh.disable_x_mesh().x_labels(0);
        }
        mesh.draw().map_err(err)?;
    }
    if !measured.is_empty() {
        let (ox, oy) = chart_area.get_base_pixel();
        let mut last_right = i32::MIN;
        for v in &measured {
            let (px, _) = chart.backend_coord(&(xpos(*v), ymin));
            chart_area
                .draw(&PathElement::new(
                    vec![(px - ox, plot.y0 - oy), (px - ox, plot.y1 - oy)],
                    RGBColor(220, 220, 220).stroke_width(1),
                ))
                .map_err(err)?;
            chart_area
                .draw(&PathElement::new(
                    vec![(px - ox, plot.y1 - oy), (px - ox, plot.y1 - oy + 5)],
                    BLACK.stroke_width(1),
                ))
                .map_err(err)?;
            let label = fmt_tick(*v);
            let tw = text_size(&label, font).0;
            if px - tw / 2 > last_right + 4 {
                chart_area
                    .draw(&Text::new(
                        label,
                        (px - ox, plot.y1 - oy + 7),
                        ("sans-serif", font)
                            .into_font()
                            .color(&BLACK)
                            .pos(plotters::style::text_anchor::Pos::new(HPos::Center, VPos::Top)),
                    ))
                    .map_err(err)?;
                last_right = px + tw / 2;
                geom.x_ticks.push((*v, px));
            }
        }
    }
    // run bands, labelled above the plot
    let (ox, oy) = chart_area.get_base_pixel();
    for (i, (a, b, label)) in p.bands.iter().enumerate() {
        let (pa, _) = chart.backend_coord(&(xpos(*a), ymin));
        let (pb, _) = chart.backend_coord(&(xpos(*b), ymin));
        let (pa, pb) = (pa.max(plot.x0), pb.min(plot.x1));
        if pb <= pa {
            continue;
        }
        let shade = if i % 2 == 0 {
            RGBColor(228, 236, 246)
        } else {
            RGBColor(240, 232, 246)
        };
        chart_area
            .draw(&Rectangle::new(
                [(pa - ox, plot.y0 - oy), (pb - ox, plot.y1 - oy)],
                shade.mix(0.6).filled(),
            ))
            .map_err(err)?;
        let t = fit(label, font, pb - pa - 4);
        if !t.is_empty() {
            chart_area
                .draw(&Text::new(
                    t.clone(),
                    ((pa + pb) / 2 - ox, plot.y0 - oy - 3),
                    ("sans-serif", font)
                        .into_font()
                        .color(&RGBColor(40, 40, 90))
                        .pos(plotters::style::text_anchor::Pos::new(HPos::Center, VPos::Bottom)),
                ))
                .map_err(err)?;
        }
        geom.bands.push((t, pa, pb));
    }
    // reference lines, dashed, under the data
    for (r, (label, a, b, at)) in p.refs.iter().filter(|r| ref_ok(r)).zip(geom.refs.clone()) {
        // a limit bold, a level (capacity) thin
        let st = r.color.stroke_width(if r.vertical { 1 } else { 2 });
        let (horizontal, len) = (a.1 == b.1, (b.0 - a.0).max(b.1 - a.1));
        let mut d = 0;
        while d < len {
            let e = (d + DASH.0 as i32).min(len);
            let (p0, p1) = if horizontal {
                ((a.0 + d, a.1), (a.0 + e, a.1))
            } else {
                ((a.0, a.1 + d), (a.0, a.1 + e))
            };
            chart_area
                .draw(&PathElement::new(
                    vec![(p0.0 - ox, p0.1 - oy), (p1.0 - ox, p1.1 - oy)],
                    st,
                ))
                .map_err(err)?;
            d += (DASH.0 + DASH.1) as i32;
        }
        if let Some(at) = at {
            chart_area
                .draw(&Text::new(
                    label,
                    (at.x0 - ox, at.y0 - oy),
                    ("sans-serif", font)
                        .into_font()
                        .color(&r.color)
                        .pos(plotters::style::text_anchor::Pos::new(HPos::Left, VPos::Top)),
                ))
                .map_err(err)?;
        }
    }
    for (s, st) in p.series.iter().zip(&styles) {
        let color = s.color;
        let style = ShapeStyle {
            color: color.to_rgba(),
            filled: false,
            stroke_width: st.width,
        };
        // a NaN y breaks the line
        for run in s.points.split(|q| !q.y.is_finite()) {
            let line: Vec<(f64, f64)> = run.iter().map(|q| (xpos(q.x), q.y)).collect();
            if s.dashed {
                chart
                    .draw_series(DashedLineSeries::new(line, DASH.0, DASH.1, style))
                    .map_err(err)?;
            } else {
                chart.draw_series(LineSeries::new(line, style)).map_err(err)?;
            }
        }
        for q in s.points.iter().filter(|q| q.y.is_finite()) {
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
        if let Some(m) = st.marker {
            for q in s.points.iter().filter(|q| q.y.is_finite()) {
                let px = chart.backend_coord(&(xpos(q.x), q.y));
                draw_marker(&chart_area, (px.0 - ox, px.1 - oy), m, color)?;
            }
        }
    }
    for q in &flagged {
        let px = chart.backend_coord(&(xpos(q.x), q.y));
        chart_area
            .draw(&Circle::new((px.0 - ox, px.1 - oy), 12, RED.stroke_width(3)))
            .map_err(err)?;
    }
    let (rect, drawn) = draw_legend(&legend_area, legend_at, &entries, font)?;
    geom.legend = Some(rect);
    geom.legend_entries = drawn;
    Ok(geom)
}
