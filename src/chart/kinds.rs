//! The chart kinds, built from summary rows (and requests files where a distribution is
//! drawn, gpu and engine-metrics files for timelines).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::figures::{Bars, BoxGroup, BoxPanel, BoxPlot, BoxStats, Heatmap};
use super::{ChartError, LinePlot, Panels, Pt, Series, XAxis, engine_color, quant_marker, save};
use crate::analysis::Slo;
use crate::analysis::{Groups, Key};
use crate::schema::requests::col as rc;
use crate::schema::{LatencyStats, Metric, Stat, Summary};

/// Which load axis a sweep uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    Concurrency,
    Rate,
}

impl Load {
    /// A summary row's level on this axis.
    pub fn of_row(self, r: &Summary) -> Option<f64> {
        match self {
            Load::Concurrency => r.concurrency.map(f64::from),
            Load::Rate => r.rate_rps,
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
    fn of_key(self, k: &Key) -> Option<f64> {
        match self {
            Load::Concurrency => k.concurrency.map(f64::from),
            Load::Rate => k.rate(),
        }
    }
    pub fn caption(self, v: f64) -> String {
        match self {
            Load::Concurrency => format!("{} user{}", super::fmt_tick(v), if v == 1.0 { "" } else { "s" }),
            Load::Rate => format!("{} req/s", super::fmt_tick(v)),
        }
    }
}

/// Series name of a row: its label (engine and quant give colour and marker).
pub fn series_name(r: &Summary) -> String {
    let mut s = label_or_run(&r.label).to_string();
    if let Some(c) = &r.category {
        s.push_str(&format!(" [{c}]"));
    }
    s
}

/// Colour (by engine), marker (by quant) and dash (non-FP16 variants) of a series.
pub fn style_of(
    engine: Option<&str>,
    label: &str,
    quant: Option<&str>,
) -> (plotters::style::RGBColor, super::Marker, bool) {
    let color = match engine {
        Some(e) => engine_color(e, false),
        None => engine_color(label, true),
    };
    // dashed: every variant but the full-precision one (the circle)
    let marker = quant_marker(quant);
    (color, marker, marker != super::Marker::Circle)
}

/// A row's label, or "run" when it has none.
fn label_or_run(label: &str) -> &str {
    if label.is_empty() { "run" } else { label }
}

fn series_style(r: &Summary) -> (plotters::style::RGBColor, super::Marker, bool) {
    style_of(r.engine.as_deref(), label_or_run(&r.label), r.quant.as_deref())
}

/// Rows grouped into series, points sorted by x.
fn series_by(
    rows: &[Summary],
    x: &dyn Fn(&Summary) -> Option<f64>,
    y: &dyn Fn(&Summary) -> Option<Pt>,
) -> (Vec<Series>, Vec<f64>) {
    let mut by: BTreeMap<String, Series> = BTreeMap::new();
    let mut xs: Vec<f64> = Vec::new();
    for r in rows {
        let Some(xv) = x(r) else { continue };
        let Some(mut p) = y(r) else { continue };
        p.x = xv;
        p.flagged = r.client_bound == Some(true);
        xs.push(xv);
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

fn pt(y: Option<f64>, lo: Option<f64>, hi: Option<f64>) -> Option<Pt> {
    Some(Pt {
        x: 0.0,
        y: y?,
        lo,
        hi,
        flagged: false,
    })
}

/// A latency statistic with its 95% CI (p50 or p99).
fn pt_ci(l: &LatencyStats, s: Stat) -> Option<Pt> {
    let (lo, hi) = match s {
        Stat::P50 => (l.p50_ci_lo, l.p50_ci_hi),
        Stat::P99 => (l.p99_ci_lo, l.p99_ci_hi),
        _ => (None, None),
    };
    pt(l.get(s), lo, hi)
}

/// A value of a summary row.
type Getter = fn(&Summary) -> Option<f64>;

/// A chart spec: file slug, title, y label, and how to get a point from a row.
type Spec = (&'static str, String, String, Box<dyn Fn(&Summary) -> Option<Pt>>);

fn loads_present(rows: &[Summary]) -> Vec<Load> {
    [Load::Concurrency, Load::Rate]
        .into_iter()
        .filter(|l| rows.iter().any(|r| l.of_row(r).is_some()))
        .collect()
}

/// Throughput and latency curves against load, for every load axis present in the rows.
pub fn load_curves(rows: &[Summary], dir: &Path, context: &str) -> Result<Vec<PathBuf>, ChartError> {
    let mut out = Vec::new();
    for load in loads_present(rows) {
        let specs: Vec<Spec> = vec![
            (
                "throughput",
                format!("Output throughput vs {} (higher is better)", load.axis()),
                "output tokens/s, 95% CI".into(),
                Box::new(|r: &Summary| pt(r.output_tok_per_s, r.output_tok_per_s_ci_lo, r.output_tok_per_s_ci_hi)),
            ),
            (
                "requests",
                format!("Request throughput vs {} (higher is better)", load.axis()),
                "completed requests/s".into(),
                Box::new(|r: &Summary| pt(r.req_per_s, None, None)),
            ),
            (
                "goodput",
                format!("Goodput vs {} (higher is better)", load.axis()),
                "requests/s meeting every SLO".into(),
                Box::new(|r: &Summary| pt(r.goodput_req_per_s, None, None)),
            ),
            (
                "ttft-p50",
                format!("Median time to first token vs {} (lower is better)", load.axis()),
                "TTFT p50 (ms), 95% CI".into(),
                Box::new(|r: &Summary| pt_ci(&r.ttft, Stat::P50)),
            ),
            (
                "ttft-p99",
                format!("p99 time to first token vs {} (lower is better)", load.axis()),
                "TTFT p99 (ms), 95% CI".into(),
                Box::new(|r: &Summary| pt_ci(&r.ttft, Stat::P99)),
            ),
            (
                "tpot-p50",
                format!("Median time per output token vs {} (lower is better)", load.axis()),
                "TPOT p50 (ms), 95% CI".into(),
                Box::new(|r: &Summary| pt_ci(&r.tpot, Stat::P50)),
            ),
            (
                "e2e-p99",
                format!("p99 end-to-end latency vs {} (lower is better)", load.axis()),
                "E2E p99 (ms), 95% CI".into(),
                Box::new(|r: &Summary| pt_ci(&r.e2e, Stat::P99)),
            ),
        ];
        for (slug, title, ylab, f) in specs {
            let (series, xs) = series_by(rows, &|r| load.of_row(r), f.as_ref());
            if series.is_empty() {
                continue;
            }
            let base = dir.join(format!("{slug}-vs-{}", load.slug()));
            if let [x] = xs.as_slice() {
                // one load level: a line would join nothing; bars per label, with the note
                out.extend(save(
                    &single_level_bars(&title, context, &ylab, load, *x, &series),
                    &base,
                )?);
                continue;
            }
            let mut plot = LinePlot::new(title, load.axis(), ylab);
            plot.subtitle = context.to_string();
            plot.x_axis = XAxis::Measured(xs);
            plot.series = series;
            out.extend(save(&plot, &base)?);
        }
    }
    Ok(out)
}

/// A "vs load" chart with a single load level measured: one bar per series (its engine's
/// colour, its 95% CI, a red outline when client-bound), titled by the level, since a line
/// through one x value would show nothing.
pub fn single_level_bars(title: &str, context: &str, ylab: &str, load: Load, x: f64, series: &[Series]) -> Bars {
    let title = match title.find(" vs ") {
        Some(i) => format!("{} at {}{}", &title[..i], load.caption(x), {
            let rest = &title[i + 4..];
            rest.rfind(" (").map_or(String::new(), |j| rest[j..].to_string())
        }),
        None => title.to_string(),
    };
    let mut b = Bars::new(
        title,
        format!(
            "{}{}only one {} was measured ({}): bars per label instead of a curve",
            context,
            if context.is_empty() { "" } else { " · " },
            match load {
                Load::Concurrency => "concurrency",
                Load::Rate => "request rate",
            },
            load.caption(x)
        ),
        ylab,
    );
    let pick = |s: &Series| s.points.iter().find(|p| (p.x - x).abs() < 1e-9).copied();
    b.categories = series.iter().map(|s| s.name.clone()).collect();
    b.series = vec![(
        load.caption(x),
        plotters::style::RGBColor(90, 90, 90),
        series.iter().map(|s| pick(s).map(|p| p.y)).collect(),
    )];
    b.cat_colors = series.iter().map(|s| s.color).collect();
    b.cat_light = series.iter().map(|s| s.dashed).collect();
    b.cat_ci = series.iter().map(|s| pick(s).and_then(|p| p.lo.zip(p.hi))).collect();
    b.cat_flagged = series.iter().map(|s| pick(s).is_some_and(|p| p.flagged)).collect();
    b
}

/// The Pareto chart the field uses: output tokens/s per GPU against tokens/s per user
/// (1000 / median TPOT), one curve per engine and quantization across load levels.
pub fn pareto(rows: &[Summary], dir: &Path, context: &str, gpus: f64) -> Result<Vec<PathBuf>, ChartError> {
    let mut out = Vec::new();
    for load in loads_present(rows) {
        let sub: Vec<Summary> = rows.iter().filter(|r| load.of_row(r).is_some()).cloned().collect();
        let (mut series, _) = series_by(&sub, &|r| r.interactivity_tok_s, &|r| {
            r.output_tok_per_s.map(|y| Pt {
                x: 0.0,
                y: y / gpus,
                lo: None,
                hi: None,
                flagged: false,
            })
        });
        if series.is_empty() {
            continue;
        }
        for s in &mut series {
            s.points.sort_by(|a, b| a.x.total_cmp(&b.x));
        }
        let mut plot = LinePlot::new(
            format!(
                "Throughput vs interactivity, across {} (up and right is better)",
                load.axis()
            ),
            "tokens/s per user (1000 / median TPOT)",
            format!(
                "output tokens/s per GPU ({} GPU{})",
                super::fmt_tick(gpus),
                if gpus == 1.0 { "" } else { "s" }
            ),
        );
        plot.subtitle = context.to_string();
        if series.iter().all(|s| s.points.len() < 2) {
            plot.subtitle = format!(
                "{context}{}one {} measured: a point per label, no curve",
                if context.is_empty() { "" } else { " · " },
                match load {
                    Load::Concurrency => "concurrency",
                    Load::Rate => "request rate",
                }
            );
        }
        plot.series = series;
        out.extend(save(&plot, &dir.join(format!("pareto-{}", load.slug())))?);
    }
    Ok(out)
}

/// Heat maps of latency by engine (label) x load level, coloured against the SLO on that
/// metric when `slo` has one.
pub fn heatmaps(rows: &[Summary], dir: &Path, context: &str, slo: &Slo) -> Result<Vec<PathBuf>, ChartError> {
    let mut out = Vec::new();
    for load in loads_present(rows) {
        let mut labels: Vec<String> = rows
            .iter()
            .filter(|r| load.of_row(r).is_some())
            .map(series_name)
            .collect();
        labels.sort();
        labels.dedup();
        let mut xs: Vec<f64> = rows.iter().filter_map(|r| load.of_row(r)).collect();
        xs.sort_by(|a, b| a.total_cmp(b));
        xs.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
        let heat: [(Getter, &str, &str, Option<f64>); 2] = [
            (|r| r.ttft.p99, "p99 TTFT", "ttft-p99", slo.ttft_ms),
            (|r| r.tpot.p50, "median TPOT", "tpot-p50", slo.tpot_ms),
        ];
        for (metric, what, slug, slo_ms) in heat {
            let values: Vec<Vec<Option<f64>>> = labels
                .iter()
                .map(|l| {
                    xs.iter()
                        .map(|x| {
                            rows.iter()
                                .find(|r| &series_name(r) == l && load.of_row(r).is_some_and(|v| (v - x).abs() < 1e-9))
                                .and_then(metric)
                        })
                        .collect()
                })
                .collect();
            let h = Heatmap {
                title: format!("{what} (ms) by engine and {} (lower is better)", load.axis()),
                subtitle: context.to_string(),
                x_label: load.axis().into(),
                x_labels: xs.iter().map(|x| super::fmt_tick(*x)).collect(),
                y_labels: labels.clone(),
                values,
                lower_is_better: true,
                unit: "ms".into(),
                slo: slo_ms,
            };
            match save(&h, &dir.join(format!("heatmap-{slug}-{}", load.slug()))) {
                Ok(f) => out.extend(f),
                Err(ChartError::NoData(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(out)
}

/// GPU memory at idle and under load, per label (needs agg --gpu).
pub fn gpu_memory(rows: &[Summary], dir: &Path, context: &str, synthetic: bool) -> Result<Vec<PathBuf>, ChartError> {
    let mut by: BTreeMap<String, (Option<f64>, Option<f64>)> = BTreeMap::new();
    for r in rows {
        let e = by.entry(label_or_run(&r.label).to_string()).or_default();
        if let Some(i) = r.gpu_mem_idle_mib {
            e.0 = Some(e.0.map_or(i, |x: f64| x.min(i)));
        }
        if let Some(p) = r.gpu_mem_peak_mib {
            e.1 = Some(e.1.map_or(p, |x: f64| x.max(p)));
        }
    }
    by.retain(|_, v| v.0.is_some() || v.1.is_some());
    if by.is_empty() {
        return Ok(Vec::new());
    }
    let cats: Vec<String> = by.keys().cloned().collect();
    let mut b = Bars::new(
        "GPU memory in use: idle before the run vs peak under load (lower is better)",
        context,
        "MiB (sum over GPUs)",
    );
    b.mark = synthetic.then(|| super::synthetic_banner("GPU readings from gpumon --fake (scripted devices)"));
    b.categories = cats.clone();
    b.series = vec![
        (
            "idle".into(),
            plotters::style::RGBColor(150, 170, 200),
            by.values().map(|v| v.0).collect(),
        ),
        (
            "peak under load".into(),
            plotters::style::RGBColor(31, 119, 180),
            by.values().map(|v| v.1).collect(),
        ),
    ];
    save(&b, &dir.join("gpu-memory"))
}

/// A latency metric in words, for chart titles.
fn metric_words(m: Metric) -> &'static str {
    match m {
        Metric::Ttft => "time to first token",
        Metric::Tpot => "time per output token",
        Metric::Itl => "inter-token latency",
        Metric::E2e => "end-to-end latency",
    }
}

/// Name of a summary row's group for a bar: its series name and, when known, its load.
fn group_name(r: &Summary) -> String {
    let mut s = series_name(r);
    for load in [Load::Concurrency, Load::Rate] {
        if let Some(v) = load.of_row(r) {
            s.push_str(&format!(" @ {}", load.caption(v)));
        }
    }
    s
}

/// Percentiles (p50, p90, p99) of TTFT, TPOT, ITL and E2E per group, as bars: what every
/// summary supports, whether or not its groups have a load level (concurrency or rate).
pub fn percentiles(rows: &[Summary], dir: &Path, context: &str) -> Result<Vec<PathBuf>, ChartError> {
    let mut out = Vec::new();
    let cats: Vec<String> = rows.iter().map(group_name).collect();
    for metric in Metric::ALL {
        let series = [
            (Stat::P50, "p50", (31, 119, 180)),
            (Stat::P90, "p90", (255, 127, 14)),
            (Stat::P99, "p99", (214, 39, 40)),
        ]
        .into_iter()
        .map(|(st, q, (r, g, b))| {
            (
                q.to_string(),
                plotters::style::RGBColor(r, g, b),
                rows.iter().map(|row| row.latency(metric).get(st)).collect::<Vec<_>>(),
            )
        })
        .collect();
        let (slug, name) = (metric.name(), metric_words(metric));
        let mut bars = Bars::new(
            format!("Percentiles of {name} by group (lower is better)"),
            context,
            format!("{} (ms)", slug.to_uppercase()),
        );
        bars.categories = cats.clone();
        bars.series = series;
        match save(&bars, &dir.join(format!("percentiles-{slug}"))) {
            Ok(f) => out.extend(f),
            Err(ChartError::NoData(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Box plots and CDFs of TTFT, TPOT and E2E from the requests (per load level, one box or
/// curve per label). `groups` must have been finished (samples sorted).
pub fn distributions(groups: &Groups, dir: &Path, context: &str) -> Result<Vec<PathBuf>, ChartError> {
    let mut out = Vec::new();
    // groups by concurrency, by rate, and those with neither (a run whose load is unknown,
    // e.g. from a trace without a declared rate) in one panel of their own
    for load in [Some(Load::Concurrency), Some(Load::Rate), None] {
        let level_of = |k: &Key| match load {
            Some(l) => l.of_key(k),
            None => (k.concurrency.is_none() && k.rate_bits.is_none()).then_some(0.0),
        };
        let caption = |v: f64| load.map_or_else(|| "all requests".to_string(), |l| l.caption(v));
        let axis = load.map_or("group", Load::axis);
        let slug = load.map_or("all", Load::slug);
        let mut levels: Vec<f64> = groups.groups.keys().filter_map(&level_of).collect();
        levels.sort_by(|a, b| a.total_cmp(b));
        levels.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
        if levels.is_empty() {
            continue;
        }
        let mut keys: Vec<&Key> = groups.groups.keys().filter(|k| level_of(k).is_some()).collect();
        keys.sort();
        for m in [Metric::Ttft, Metric::Tpot, Metric::E2e] {
            let (metric, name) = (m.name(), metric_words(m));
            let pick = |k: &Key| groups.groups[k].samples(m);
            let mut panels = Vec::new();
            let mut cdfs = Vec::new();
            for lv in &levels {
                let ks: Vec<&&Key> = keys
                    .iter()
                    .filter(|k| level_of(k).is_some_and(|v| (v - lv).abs() < 1e-9))
                    .collect();
                let mut groups_v = Vec::new();
                let mut series = Vec::new();
                for k in ks {
                    let data = pick(k);
                    let Some(st) = BoxStats::of(data) else { continue };
                    let mut nm = k.label.clone();
                    if let Some(c) = &k.category {
                        nm.push_str(&format!(" [{c}]"));
                    }
                    let (color, marker, dashed) = style_of(k.engine.as_deref(), &k.label, k.quant.as_deref());
                    groups_v.push(BoxGroup {
                        name: nm.clone(),
                        color,
                        stats: st,
                    });
                    // CDF: 400 quantiles
                    let pts: Vec<Pt> = (0..=400)
                        .filter_map(|i| {
                            let q = i as f64 / 400.0;
                            data.percentile(q).map(|x| Pt::at(x, 100.0 * q))
                        })
                        .collect();
                    series.push(Series {
                        name: nm,
                        color,
                        marker,
                        dashed,
                        points: pts,
                    });
                }
                if !groups_v.is_empty() {
                    panels.push(BoxPanel {
                        caption: caption(*lv),
                        groups: groups_v,
                    });
                }
                if !series.is_empty() && m != Metric::Tpot {
                    let mut p = LinePlot::new(caption(*lv), format!("{} (ms)", metric.to_uppercase()), "% of requests");
                    p.series = series;
                    p.markers = false;
                    p.y_range = Some((0.0, 101.0));
                    cdfs.push(p);
                }
            }
            if !panels.is_empty() {
                let b = BoxPlot {
                    title: format!("Distribution of {name} by engine and {} (lower is better)", axis),
                    subtitle: context.to_string(),
                    y_label: format!("{} (ms)", metric.to_uppercase()),
                    cols: panels.len().min(2),
                    panels,
                };
                out.extend(save(&b, &dir.join(format!("box-{metric}-{}", slug)))?);
            }
            if !cdfs.is_empty() {
                let rows = cdfs.len().div_ceil(2) as u32;
                let p = Panels {
                    title: format!("CDF of {name} by {} (left is better)", axis),
                    subtitle: context.to_string(),
                    cols: cdfs.len().min(2),
                    plots: cdfs,
                    size: (1200, 100 + 420 * rows),
                    mark: None,
                };
                out.extend(save(&p, &dir.join(format!("cdf-{metric}-{}", slug)))?);
            }
        }
    }
    Ok(out)
}

/// A named, coloured series of (seconds since start, value); a NaN value breaks the line.
pub type TrackSeries = (String, plotters::style::RGBColor, Vec<(f64, f64)>);

/// A timeline panel.
pub struct Track {
    pub title: String,
    pub y_label: String,
    pub series: Vec<TrackSeries>,
}

/// One replay run (a requests file): its label, the send times (µs) of its non-warm-up
/// requests, and its window (first send .. last response).
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub label: String,
    pub sends: Vec<i64>,
    pub start_us: i64,
    pub end_us: i64,
}

/// The runs of requests files (paths, directories or globs resolved by the caller), in time
/// order; files without a sent request are left out.
pub fn runs_of(paths: &[String]) -> Result<Vec<Run>, crate::io::DataError> {
    let mut out = Vec::new();
    for p in paths {
        let input = crate::io::open_projected(p, Some(&[rc::SENT_AT, rc::DONE_AT, rc::WARMUP, rc::LABEL]))?;
        let mut label = input.meta.get("servebench.label").unwrap_or("").to_string();
        let (mut sends, mut end) = (Vec::new(), i64::MIN);
        for b in input {
            let b = b?;
            let (Some(s), w, d) = (
                crate::io::cols::get(&b, rc::SENT_AT),
                crate::io::cols::get(&b, rc::WARMUP),
                crate::io::cols::get(&b, rc::DONE_AT),
            ) else {
                continue;
            };
            if label.is_empty()
                && let Some(l) = crate::io::cols::get(&b, rc::LABEL)
                && b.num_rows() > 0
            {
                label = crate::io::cols::str_at(l.as_ref(), 0).unwrap_or("").to_string();
            }
            for i in 0..b.num_rows() {
                let warm = w
                    .and_then(|w| w.as_any().downcast_ref::<arrow_array::BooleanArray>())
                    .is_some_and(|w| !arrow_array::Array::is_null(w, i) && w.value(i));
                if let (false, Some(t)) = (warm, crate::io::cols::ts_us(s.as_ref(), i)) {
                    sends.push(t);
                    end = end.max(t);
                }
                if let Some(t) = d.and_then(|d| crate::io::cols::ts_us(d.as_ref(), i)) {
                    end = end.max(t);
                }
            }
        }
        sends.sort_unstable();
        if let Some(&start) = sends.first() {
            out.push(Run {
                label,
                sends,
                start_us: start,
                end_us: end,
            });
        }
    }
    out.sort_by_key(|r| r.start_us);
    Ok(out)
}

/// Send times (µs) of the non-warm-up rows of requests files, for request-rate overlays.
pub fn send_times(paths: &[String]) -> Result<Vec<i64>, crate::io::DataError> {
    let mut out: Vec<i64> = runs_of(paths)?.into_iter().flat_map(|r| r.sends).collect();
    out.sort_unstable();
    Ok(out)
}

/// Consecutive runs of one label merged into one band: (start µs, end µs, label).
pub fn run_bands(runs: &[Run]) -> Vec<(i64, i64, String)> {
    let mut out: Vec<(i64, i64, String)> = Vec::new();
    for r in runs {
        let label = if r.label.is_empty() {
            "run".to_string()
        } else {
            r.label.clone()
        };
        match out.last_mut() {
            Some(last) if last.2 == label => last.1 = last.1.max(r.end_us),
            _ => out.push((r.start_us, r.end_us, label)),
        }
    }
    out
}

/// (seconds, value) samples with a NaN inserted wherever the line must break: between two
/// samples in different runs, or across a gap longer than 3 sampling intervals (and 2 s).
fn break_between_runs(pts: Vec<(f64, f64)>, bands: &[(f64, f64, String)]) -> Vec<(f64, f64)> {
    let band = |t: f64| bands.iter().position(|b| t >= b.0 && t <= b.1);
    let mut gaps: Vec<f64> = pts.windows(2).map(|w| w[1].0 - w[0].0).collect();
    gaps.sort_by(|a, b| a.total_cmp(b));
    let limit = gaps.get(gaps.len() / 2).map_or(f64::INFINITY, |m| (3.0 * m).max(2.0));
    let mut out = Vec::with_capacity(pts.len());
    // the previous sample's time, and the last run a sample fell in
    let (mut prev_t, mut last_band): (Option<f64>, Option<usize>) = (None, None);
    for (t, v) in pts {
        let b = band(t);
        let other_run = matches!((last_band, b), (Some(x), Some(y)) if x != y);
        if let Some(pt) = prev_t
            && (other_run || t - pt > limit)
        {
            out.push(((pt + t) / 2.0, f64::NAN));
        }
        prev_t = Some(t);
        last_band = b.or(last_band);
        out.push((t, v));
    }
    out
}

/// Stacked timelines sharing the time axis, with every run shaded and labelled (its label
/// above the plot) and lines broken between runs. `mark`: a synthetic-data banner.
pub fn timeline(
    title: &str,
    context: &str,
    tracks: Vec<Track>,
    bands: &[(f64, f64, String)],
    mark: Option<String>,
    base: &Path,
) -> Result<Vec<PathBuf>, ChartError> {
    let plots: Vec<LinePlot> = tracks
        .into_iter()
        .filter(|t| t.series.iter().any(|s| !s.2.is_empty()))
        .map(|t| {
            let mut p = LinePlot::new(t.title, "seconds since the first sample", t.y_label);
            p.markers = false;
            p.legend_outside = true;
            p.bands = bands.to_vec();
            p.series = t
                .series
                .into_iter()
                .map(|(name, color, pts)| Series {
                    name,
                    color,
                    marker: super::Marker::Circle,
                    dashed: false,
                    points: break_between_runs(pts, bands)
                        .into_iter()
                        .map(|(x, y)| Pt::at(x, y))
                        .collect(),
                })
                .collect();
            p
        })
        .collect();
    if plots.is_empty() {
        return Ok(Vec::new());
    }
    let n = plots.len() as u32;
    let p = Panels {
        title: title.to_string(),
        subtitle: context.to_string(),
        cols: 1,
        plots,
        size: (1200, 110 + 320 * n),
        mark,
    };
    save(&p, base)
}

const GPU_COLORS: [plotters::style::RGBColor; 8] = [
    plotters::style::RGBColor(31, 119, 180),
    plotters::style::RGBColor(255, 127, 14),
    plotters::style::RGBColor(44, 160, 44),
    plotters::style::RGBColor(214, 39, 40),
    plotters::style::RGBColor(148, 103, 189),
    plotters::style::RGBColor(140, 86, 75),
    plotters::style::RGBColor(227, 119, 194),
    plotters::style::RGBColor(23, 190, 207),
];

/// Requests sent per second, as a track series relative to `t0`: per run (a run's seconds
/// only, so the line breaks between runs).
fn rate_series(runs: &[Run], t0: i64) -> TrackSeries {
    let mut pts = Vec::new();
    for r in runs {
        let mut per: BTreeMap<i64, f64> = BTreeMap::new();
        for t in &r.sends {
            *per.entry((t - t0).div_euclid(1_000_000)).or_default() += 1.0;
        }
        if let (Some(&a), Some(&b)) = (per.keys().next(), per.keys().last()) {
            pts.extend((a..=b).map(|s| (s as f64 + 0.5, per.get(&s).copied().unwrap_or(0.0))));
        }
    }
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    ("requests sent/s".into(), plotters::style::RGBColor(90, 90, 90), pts)
}

/// Bands in seconds since `t0`.
fn bands_since(runs: &[Run], t0: i64) -> Vec<(f64, f64, String)> {
    run_bands(runs)
        .into_iter()
        .map(|(a, b, l)| ((a - t0) as f64 / 1e6, (b - t0) as f64 / 1e6, l))
        .collect()
}

/// GPU memory, utilisation and power over the runs, with the request rate beneath; each run
/// shaded and labelled. `synthetic`: the samples came from scripted devices (a banner says so).
pub fn gpu_timeline(
    gpu: &[crate::gpu::window::GpuSample],
    runs: &[Run],
    dir: &Path,
    context: &str,
    synthetic: bool,
) -> Result<Vec<PathBuf>, ChartError> {
    if gpu.is_empty() {
        return Ok(Vec::new());
    }
    let t0 = gpu
        .iter()
        .map(|s| s.t_us)
        .chain(runs.first().map(|r| r.start_us))
        .min()
        .unwrap_or(0);
    let ids: std::collections::BTreeSet<u32> = gpu.iter().map(|s| s.gpu).collect();
    let series = |f: &dyn Fn(&crate::gpu::window::GpuSample) -> Option<f64>| -> Vec<TrackSeries> {
        ids.iter()
            .map(|g| {
                let pts = gpu
                    .iter()
                    .filter(|s| s.gpu == *g)
                    .filter_map(|s| f(s).map(|v| ((s.t_us - t0) as f64 / 1e6, v)))
                    .collect();
                (format!("GPU {g}"), GPU_COLORS[*g as usize % GPU_COLORS.len()], pts)
            })
            .collect()
    };
    let tracks = vec![
        Track {
            title: "GPU memory in use".into(),
            y_label: "MiB".into(),
            series: series(&|s| s.mem_used_mib),
        },
        Track {
            title: "GPU utilisation".into(),
            y_label: "%".into(),
            series: series(&|s| s.util_pct),
        },
        Track {
            title: "Board power".into(),
            y_label: "W".into(),
            series: series(&|s| s.power_w),
        },
        Track {
            title: "Requests sent per second".into(),
            y_label: "req/s".into(),
            series: vec![rate_series(runs, t0)],
        },
    ];
    timeline(
        "GPU timeline: memory, utilisation and power over the runs",
        context,
        tracks,
        &bands_since(runs, t0),
        synthetic.then(|| super::synthetic_banner("GPU readings from gpumon --fake (scripted devices)")),
        &dir.join("gpu-timeline"),
    )
}

/// The engine's own view over the runs: running and waiting requests, KV-cache usage, with
/// the request rate beneath; each run shaded and labelled.
pub fn engine_timeline(
    eng: &[crate::enginemon::EngineRow],
    runs: &[Run],
    dir: &Path,
    context: &str,
) -> Result<Vec<PathBuf>, ChartError> {
    use crate::enginemon::{KV_USAGE, RUNNING, WAITING};
    if eng.is_empty() {
        return Ok(Vec::new());
    }
    let t0 = eng
        .iter()
        .map(|r| r.t_us)
        .chain(runs.first().map(|r| r.start_us))
        .min()
        .unwrap_or(0);
    // per scrape, sum the rows of a common series (data-parallel engines expose several)
    let per = |name: &str| -> Vec<(f64, f64)> {
        let mut m: BTreeMap<i64, f64> = BTreeMap::new();
        for r in eng.iter().filter(|r| r.common == Some(name)) {
            *m.entry(r.t_us).or_default() += r.value;
        }
        m.into_iter().map(|(t, v)| ((t - t0) as f64 / 1e6, v)).collect()
    };
    let kv: Vec<(f64, f64)> = per(KV_USAGE).into_iter().map(|(t, v)| (t, 100.0 * v)).collect();
    let tracks = vec![
        Track {
            title: "Requests in the engine".into(),
            y_label: "requests".into(),
            series: vec![
                ("running".into(), GPU_COLORS[0], per(RUNNING)),
                ("waiting".into(), GPU_COLORS[3], per(WAITING)),
            ],
        },
        Track {
            title: "KV-cache usage".into(),
            y_label: "%".into(),
            series: vec![("KV cache".into(), GPU_COLORS[2], kv)],
        },
        Track {
            title: "Requests sent per second".into(),
            y_label: "req/s".into(),
            series: vec![rate_series(runs, t0)],
        },
    ];
    timeline(
        "Engine timeline: queue and KV cache over the runs",
        context,
        tracks,
        &bands_since(runs, t0),
        None,
        &dir.join("engine-timeline"),
    )
}
