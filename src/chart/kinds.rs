//! The chart kinds, built from summary rows (and requests files where a distribution is
//! drawn).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{ChartError, LinePlot, Pt, Series, XAxis, engine_color, quant_marker, save_line};
use crate::agg::Row;

/// Which load axis a sweep uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    Concurrency,
    Rate,
}

impl Load {
    pub fn column(self) -> &'static str {
        match self {
            Load::Concurrency => "concurrency",
            Load::Rate => "rate_rps",
        }
    }
    pub fn axis(self) -> &'static str {
        match self {
            Load::Concurrency => "concurrent users",
            Load::Rate => "request rate (req/s)",
        }
    }
    pub fn slug(self) -> &'static str {
        match self {
            Load::Concurrency => "concurrency",
            Load::Rate => "rate",
        }
    }
}

/// Series name of a row: its label (engine and quant give colour and marker).
pub fn series_name(r: &Row) -> String {
    let mut s = r.s("label").unwrap_or("run").to_string();
    if let Some(c) = r.s("category") {
        s.push_str(&format!(" [{c}]"));
    }
    s
}

fn series_style(r: &Row) -> (plotters::style::RGBColor, super::Marker, bool) {
    let color = match r.s("engine") {
        Some(e) => engine_color(e, false),
        None => engine_color(r.s("label").unwrap_or("run"), true),
    };
    let q = r.s("quant");
    let dashed = !matches!(
        q.map(|s| s.to_ascii_lowercase()).as_deref(),
        None | Some("fp16") | Some("bf16") | Some("exact")
    );
    (color, quant_marker(q), dashed)
}

/// Rows grouped into series, points sorted by the load value.
fn sweep(rows: &[Row], load: Load, y: &dyn Fn(&Row) -> Option<Pt>) -> (Vec<Series>, Vec<f64>) {
    let mut by: BTreeMap<String, Series> = BTreeMap::new();
    let mut xs: Vec<f64> = Vec::new();
    for r in rows {
        let Some(x) = r.f(load.column()) else {
            continue;
        };
        let Some(mut p) = y(r) else { continue };
        p.x = x;
        xs.push(x);
        let name = series_name(r);
        let (color, marker, dashed) = series_style(r);
        by.entry(name.clone())
            .or_insert_with(|| Series {
                name,
                color,
                marker,
                dashed,
                points: Vec::new(),
            })
            .points
            .push(p);
    }
    for s in by.values_mut() {
        s.points.sort_by(|a, b| a.x.total_cmp(&b.x));
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    (by.into_values().collect(), xs)
}

fn pt(r: &Row, col: &str, ci: Option<(&str, &str)>) -> Option<Pt> {
    let y = r.f(col)?;
    let (lo, hi) = match ci {
        Some((l, h)) => (r.f(l), r.f(h)),
        None => (None, None),
    };
    Some(Pt { x: 0.0, y, lo, hi })
}

/// A chart spec: file slug, title, y label, and how to get a point from a row.
type Spec = (&'static str, String, String, Box<dyn Fn(&Row) -> Option<Pt>>);

/// Throughput and latency curves against load, for every load axis present in the rows.
/// Returns the files written.
pub fn load_curves(rows: &[Row], dir: &Path, context: &str) -> Result<Vec<PathBuf>, ChartError> {
    let mut out = Vec::new();
    for load in [Load::Concurrency, Load::Rate] {
        if !rows.iter().any(|r| r.f(load.column()).is_some()) {
            continue;
        }
        let specs: Vec<Spec> = vec![
            (
                "throughput",
                format!("Output throughput vs {} (higher is better)", load.axis()),
                "output tokens/s".into(),
                Box::new(|r: &Row| pt(r, "output_tok_per_s", None)),
            ),
            (
                "requests",
                format!("Request throughput vs {} (higher is better)", load.axis()),
                "completed requests/s".into(),
                Box::new(|r: &Row| pt(r, "req_per_s", None)),
            ),
            (
                "ttft-p50",
                format!("Median time to first token vs {} (lower is better)", load.axis()),
                "TTFT p50 (ms), 95% CI".into(),
                Box::new(|r: &Row| pt(r, "ttft_p50_ms", Some(("ttft_p50_ci_lo_ms", "ttft_p50_ci_hi_ms")))),
            ),
            (
                "ttft-p99",
                format!("p99 time to first token vs {} (lower is better)", load.axis()),
                "TTFT p99 (ms), 95% CI".into(),
                Box::new(|r: &Row| pt(r, "ttft_p99_ms", Some(("ttft_p99_ci_lo_ms", "ttft_p99_ci_hi_ms")))),
            ),
            (
                "tpot-p50",
                format!("Median time per output token vs {} (lower is better)", load.axis()),
                "TPOT p50 (ms), 95% CI".into(),
                Box::new(|r: &Row| pt(r, "tpot_p50_ms", Some(("tpot_p50_ci_lo_ms", "tpot_p50_ci_hi_ms")))),
            ),
            (
                "e2e-p99",
                format!("p99 end-to-end latency vs {} (lower is better)", load.axis()),
                "E2E p99 (ms), 95% CI".into(),
                Box::new(|r: &Row| pt(r, "e2e_p99_ms", Some(("e2e_p99_ci_lo_ms", "e2e_p99_ci_hi_ms")))),
            ),
        ];
        for (slug, title, ylab, f) in specs {
            let (series, xs) = sweep(rows, load, f.as_ref());
            if series.is_empty() {
                continue;
            }
            let plot = LinePlot {
                title,
                subtitle: context.to_string(),
                x_label: load.axis().to_string(),
                y_label: ylab,
                x_axis: XAxis::Categorical(xs),
                series,
            };
            out.extend(save_line(&plot, &dir.join(format!("{slug}-vs-{}", load.slug())))?);
        }
    }
    Ok(out)
}
